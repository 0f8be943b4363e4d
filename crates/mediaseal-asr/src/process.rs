//! Starting engine processes the same careful way, and describing how they ended.
//!
//! Every engine child is started through `/bin/sh -c 'ulimit -c 0 && exec "$0" "$@"'`, so it runs
//! with `RLIMIT_CORE=0` (a crash leaves no core file holding audio) without `unsafe` `pre_exec`
//! code here; `exec` replaces the shell, so the child's pid is the engine's. The environment is
//! cleared down to an allow-list, the working directory is one the engine does not need to write.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Variables passed through from our environment: the search path, the locale, and the CPU
/// quirk switches this machine sets for OpenBLAS (numpy in the sidecar needs them).
const PASS_THROUGH: &[&str] = &[
    "PATH",
    "LANG",
    "LC_ALL",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OMP_NUM_THREADS",
];

/// A command for `program args…` that runs with core dumps off, a cleared environment (plus
/// the pass-through list and `env`) and `working_dir` as its working directory.
pub(crate) fn hardened_command(
    program: &Path,
    args: &[OsString],
    env: &[(OsString, OsString)],
    working_dir: &Path,
) -> Command {
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg("ulimit -c 0 && exec \"$0\" \"$@\"")
        .arg(program)
        .args(args);
    command.env_clear();
    for name in PASS_THROUGH {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    if std::env::var_os("PATH").is_none() {
        command.env("PATH", "/usr/local/bin:/usr/bin:/bin");
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command.current_dir(working_dir);
    command
}

/// "exit status 3", "killed by signal 9 (SIGKILL)", …
pub(crate) fn describe_status(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    match status.signal() {
        Some(signal) => {
            let name = match signal {
                6 => " (SIGABRT)",
                9 => " (SIGKILL)",
                11 => " (SIGSEGV)",
                15 => " (SIGTERM)",
                _ => "",
            };
            format!("killed by signal {signal}{name}")
        }
        None => "ended for an unknown reason".to_owned(),
    }
}

/// Waits up to `grace` for the child to exit, then kills it; returns how it ended.
pub(crate) fn reap(child: &mut Child, grace: Duration) -> String {
    let deadline = Instant::now() + grace;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return describe_status(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            _ => break,
        }
    }
    let _ = child.kill();
    match child.wait() {
        Ok(status) => describe_status(status),
        Err(e) => format!("could not be waited for: {e}"),
    }
}

/// Finds `name` on `PATH` (or returns it if it already is a path to an executable file).
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    let is_executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if name.contains('/') {
        let path = PathBuf::from(name);
        return is_executable(&path).then_some(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// Keeps the last bytes a child wrote to stderr, for start-up error messages only.
#[derive(Debug, Clone, Default)]
pub(crate) struct StderrTail(Arc<Mutex<TailState>>);

#[derive(Debug, Default)]
struct TailState {
    bytes: Vec<u8>,
    stopped: bool,
}

const TAIL_BYTES: usize = 4096;

impl StderrTail {
    /// Drains `stderr` on a thread until it closes, keeping the tail until
    /// [`Self::stop_keeping`].
    pub(crate) fn collect(stderr: impl Read + Send + 'static) -> Self {
        let tail = Self::default();
        let shared = Arc::clone(&tail.0);
        thread::Builder::new()
            .name("asr-engine-stderr".into())
            .spawn(move || {
                let mut stderr = stderr;
                let mut buf = [0u8; 4096];
                loop {
                    match stderr.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let mut state = shared.lock().unwrap_or_else(|e| e.into_inner());
                            if state.stopped {
                                continue;
                            }
                            state
                                .bytes
                                .extend_from_slice(buf.get(..n).unwrap_or_default());
                            let excess = state.bytes.len().saturating_sub(TAIL_BYTES);
                            state.bytes.drain(..excess);
                        }
                    }
                }
            })
            .ok();
        tail
    }

    /// The kept text, lossily decoded and trimmed.
    pub(crate) fn text(&self) -> String {
        let state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&state.bytes).trim().to_owned()
    }

    /// Forgets what was kept and keeps nothing more: called once the engine is up, after which
    /// its stderr could in principle carry request data.
    pub(crate) fn stop_keeping(&self) {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        state.stopped = true;
        state.bytes.clear();
        state.bytes.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_run_without_core_dumps_and_with_a_clean_environment() {
        let out = hardened_command(
            Path::new("sh"),
            &[
                "-c".into(),
                "ulimit -c; echo \"${HOME-unset} $X\"; pwd".into(),
            ],
            &[("X".into(), "y".into())],
            Path::new("/"),
        )
        .output()
        .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "0\nunset y\n/\n");
    }

    #[test]
    fn statuses_are_described() {
        let status = Command::new("sh")
            .args(["-c", "kill -9 $$"])
            .status()
            .unwrap();
        assert_eq!(describe_status(status), "killed by signal 9 (SIGKILL)");
        let status = Command::new("sh").args(["-c", "exit 3"]).status().unwrap();
        assert_eq!(describe_status(status), "exit status 3");
        assert!(find_program("sh").is_some());
        assert!(find_program("no-such-program-here").is_none());
    }
}
