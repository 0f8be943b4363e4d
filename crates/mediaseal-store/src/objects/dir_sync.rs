//! Group fsync of directories.
//!
//! A rename is durable only once its directory is fsynced. Concurrent writers finishing objects
//! in the same directory each need that, but one fsync issued *after* all their renames serves
//! them all. [`DirSyncer::sync`] gives that: a caller whose rename is done waits for a directory
//! fsync that *started* after it called; if one is running, it waits for it to end and then for
//! the next, which one of the waiters starts on behalf of everyone who arrived meanwhile.
//!
//! Blocking (a mutex and a condition variable): it is called from blocking tasks, where the
//! file work already runs.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// The fsync generations of one directory.
#[derive(Debug, Default)]
struct DirState {
    /// How many fsyncs have been started.
    started: u64,
    /// How many have ended (successfully or not); equals `started` when none is running.
    ended: u64,
    /// The generation of the last one that failed, with its error.
    failed: Option<(u64, io::ErrorKind, String)>,
}

/// Coalesces directory fsyncs of concurrent callers.
#[derive(Debug, Default)]
pub(super) struct DirSyncer {
    dirs: Mutex<HashMap<PathBuf, DirState>>,
    changed: Condvar,
}

impl DirSyncer {
    fn lock(&self) -> MutexGuard<'_, HashMap<PathBuf, DirState>> {
        // The state is a pair of counters updated in single steps: still sound after a panic.
        self.dirs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Returns once `dir` has been fsynced by a call that started after this one was made, so
    /// every change to `dir` made before calling (a rename into it) is durable.
    pub(super) fn sync(&self, dir: &Path) -> io::Result<()> {
        let mut dirs = self.lock();
        let state = dirs.entry(dir.to_path_buf()).or_default();
        // A running fsync (generation `started`) may have begun before our rename: only the next
        // generation is sure to include it.
        let needed = state.started + 1;
        loop {
            let state = dirs.entry(dir.to_path_buf()).or_default();
            if state.ended >= needed {
                return match &state.failed {
                    // A failure at or after our generation may have been ours: report it.
                    Some((generation, kind, message)) if *generation >= needed => {
                        Err(io::Error::new(*kind, message.clone()))
                    }
                    _ => Ok(()),
                };
            }
            if state.started == state.ended {
                // None running: start generation `needed` for everyone waiting on it.
                state.started += 1;
                let generation = state.started;
                drop(dirs);
                let result = fsync_dir(dir);
                dirs = self.lock();
                let state = dirs.entry(dir.to_path_buf()).or_default();
                state.ended = generation;
                if let Err(e) = &result {
                    state.failed = Some((generation, e.kind(), e.to_string()));
                }
                self.changed.notify_all();
                return result;
            }
            dirs = self
                .changed
                .wait(dirs)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Makes the entries of `dir` durable. Some filesystems refuse to fsync a directory (and some
/// platforms to open one); there the rename is as durable as that filesystem makes it, which is
/// not an error of ours.
fn fsync_dir(dir: &Path) -> io::Result<()> {
    let handle = match std::fs::File::open(dir) {
        Ok(handle) => handle,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Ok(()),
        Err(e) => return Err(e),
    };
    match handle.sync_all() {
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported
            ) =>
        {
            Ok(())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn concurrent_callers_share_fsyncs_and_all_return() {
        let dir = tempfile::tempdir().unwrap();
        let syncer = Arc::new(DirSyncer::default());
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (syncer, path) = (syncer.clone(), dir.path().to_path_buf());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        syncer.sync(&path).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let dirs = syncer.lock();
        let state = &dirs[dir.path()];
        assert_eq!(state.started, state.ended, "an fsync was left running");
        assert!(
            state.started <= 16 * 20,
            "more fsyncs than callers: {}",
            state.started
        );
    }

    #[test]
    fn a_missing_directory_is_an_error_for_its_caller() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let syncer = DirSyncer::default();
        assert_eq!(
            syncer.sync(&gone).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        std::fs::create_dir(&gone).unwrap();
        syncer.sync(&gone).unwrap();
    }
}
