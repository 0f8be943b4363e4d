//! Output files that appear whole or not at all.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use tempfile::NamedTempFile;

/// A file written under a temporary name beside its target and renamed into place by
/// [`AtomicFile::commit`] after an fsync. Dropped without a commit, it is deleted, so a failed
/// decryption never leaves plaintext (or half a file) at the target path.
///
/// The final fsync would otherwise write the whole file to disk only after the last byte, so a
/// helper thread starts that writeback early: every 64 MiB it runs
/// `fdatasync` on its own handle while the writer carries on, and the disk works alongside the
/// cipher instead of after it. (It is skipped while the previous one is still running.)
#[derive(Debug)]
pub struct AtomicFile {
    temp: NamedTempFile,
    target: PathBuf,
    written: u64,
    since_writeback: u64,
    writeback: Option<Writeback>,
}

/// Bytes written between two early writebacks.
pub(crate) const WRITEBACK_EVERY: u64 = 64 << 20;

/// The helper thread that syncs a file's data while it is still being written.
#[derive(Debug)]
struct Writeback {
    kick: Option<mpsc::SyncSender<()>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Writeback {
    fn start(file: &File) -> io::Result<Self> {
        let file = file.try_clone()?;
        let (kick, kicks) = mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("mediaseal-writeback".to_owned())
            .spawn(move || -> io::Result<()> {
                for () in kicks {
                    file.sync_data()?;
                }
                Ok(())
            })?;
        Ok(Self {
            kick: Some(kick),
            thread: Some(thread),
        })
    }

    /// Asks for a writeback unless one is already waiting to run.
    fn kick(&self) {
        if let Some(kick) = &self.kick {
            let _ = kick.try_send(());
        }
    }

    /// Stops the thread after its current sync and reports whether every sync succeeded.
    fn finish(&mut self) -> io::Result<()> {
        drop(self.kick.take());
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the writeback thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for Writeback {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

impl AtomicFile {
    /// Creates the temporary file in the target's directory (mode 0600 on Unix).
    pub fn create(target: &Path) -> io::Result<Self> {
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let temp = tempfile::Builder::new()
            .prefix(".mediaseal-partial-")
            .tempfile_in(&dir)?;
        Ok(Self {
            temp,
            target: target.to_path_buf(),
            written: 0,
            since_writeback: 0,
            writeback: None,
        })
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The open temporary file.
    pub fn file(&self) -> &File {
        self.temp.as_file()
    }

    /// Flushes, fsyncs and renames the file to its target, then fsyncs the directory.
    pub fn commit(mut self) -> io::Result<()> {
        if let Some(mut writeback) = self.writeback.take() {
            writeback.finish()?;
        }
        self.temp.as_file().sync_all()?;
        let file = self.temp.persist(&self.target).map_err(|e| e.error)?;
        drop(file);
        if let Some(dir) = self.target.parent().filter(|p| !p.as_os_str().is_empty()) {
            // Directory fsync makes the rename durable; not every filesystem supports it.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl AtomicFile {
    fn count(&mut self, n: usize) -> io::Result<()> {
        self.written += n as u64;
        self.since_writeback += n as u64;
        if self.since_writeback >= WRITEBACK_EVERY {
            self.since_writeback = 0;
            if self.writeback.is_none() {
                self.writeback = Some(Writeback::start(self.temp.as_file())?);
            }
            if let Some(writeback) = &self.writeback {
                writeback.kick();
            }
        }
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.temp.write(buf)?;
        self.count(n)?;
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.temp.write_all(buf)?;
        self.count(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.temp.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_whole_files_with_early_writeback_and_drops_failed_ones() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let chunk = vec![0xa5u8; 1 << 20];
        let mut file = AtomicFile::create(&target).unwrap();
        for _ in 0..(2 * WRITEBACK_EVERY as usize / chunk.len() + 3) {
            file.write_all(&chunk).unwrap();
        }
        assert!(file.writeback.is_some(), "no early writeback started");
        assert!(!target.exists(), "visible before the commit");
        let len = file.written();
        file.commit().unwrap();
        assert_eq!(std::fs::metadata(&target).unwrap().len(), len);

        let other = dir.path().join("failed");
        let mut file = AtomicFile::create(&other).unwrap();
        for _ in 0..(WRITEBACK_EVERY as usize / chunk.len() + 1) {
            file.write_all(&chunk).unwrap();
        }
        drop(file);
        assert!(!other.exists());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "a temporary file was left behind"
        );
    }
}
