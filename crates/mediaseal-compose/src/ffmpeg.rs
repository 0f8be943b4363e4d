//! Running ffmpeg over FIFOs, with no plaintext on disk.
//!
//! Each source track (sealed at rest with the service's own key) is decrypted in memory by a
//! feeder thread and written into a FIFO in a private 0700 directory; a FIFO is a kernel pipe
//! with a name, so its data lives only in kernel buffers. ffmpeg reads the FIFOs and writes the
//! composition to its stdout pipe, whose bytes the worker seals as they stream out. The
//! directory is removed when ffmpeg and the feeders are done.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use mediaseal_readback::AtRestReader;
use tokio::sync::{mpsc, oneshot, watch};

use crate::plan::{Plan, ffmpeg_args};

/// A directory only this process's user can enter, removed (with its FIFOs) on drop.
#[derive(Debug)]
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn new(parent: &Path) -> io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let path = parent.join(format!(
            "mediaseal-compose-{}",
            mediaseal_service::sid::new_secret()
        ));
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(Self(path))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mkfifo(path: &Path) -> io::Result<()> {
    use rustix::fs::{CWD, Mode, mkfifoat};
    mkfifoat(CWD, path, Mode::RUSR | Mode::WUSR).map_err(io::Error::from)
}

/// Opens a FIFO for writing once its reader (ffmpeg) has opened it, giving up when `cancel` is
/// set (ffmpeg exited without opening it). A blocking open would hang forever in that case.
fn open_fifo_writer(path: &Path, cancel: &AtomicBool) -> io::Result<File> {
    use rustix::fs::{Mode, OFlags, fcntl_setfl, open};
    loop {
        match open(
            path,
            OFlags::WRONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => {
                fcntl_setfl(&fd, OFlags::empty()).map_err(io::Error::from)?;
                return Ok(File::from(fd));
            }
            Err(rustix::io::Errno::NXIO) => {
                if cancel.load(Ordering::Relaxed) {
                    return Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "ffmpeg never opened this input",
                    ));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Why a feeder stopped.
enum FeedError {
    /// ffmpeg stopped reading (it exited, or had read all it needed).
    ReaderGone,
    /// The recording could not be read or did not authenticate.
    Source(String),
}

/// Decrypts an at-rest object into `out`; plaintext exists only in this thread's buffers.
fn feed(reader: &AtRestReader, key: &str, out: &mut dyn Write) -> Result<(), FeedError> {
    let mut reader = reader
        .open_blocking(key)
        .map_err(|e| FeedError::Source(e.to_string()))?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(FeedError::Source(e.to_string())),
        };
        if let Err(e) = out.write_all(&buf[..n]) {
            buf.iter_mut().for_each(|b| *b = 0);
            return Err(if e.kind() == io::ErrorKind::BrokenPipe {
                FeedError::ReaderGone
            } else {
                FeedError::Source(e.to_string())
            });
        }
    }
    // Plaintext does not outlive its use, even in freed memory.
    buf.iter_mut().for_each(|b| *b = 0);
    Ok(())
}

/// The length in ms of an at-rest recording whose header had none: ffmpeg reads it (decrypted
/// through its stdin pipe) without decoding and reports how far it got.
pub fn probe_duration_ms(ffmpeg: &Path, reader: AtRestReader, key: &str) -> Result<u64, String> {
    let mut child = Command::new(ffmpeg)
        .args([
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-nostats",
            "-progress",
            "pipe:1",
            "-f",
            "matroska",
            "-i",
            "pipe:0",
        ])
        .args(["-map", "0", "-c", "copy", "-f", "null", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run ffmpeg: {e}"))?;
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err("ffmpeg pipes missing".to_owned());
    };
    let key = key.to_owned();
    let feeder = std::thread::spawn(move || feed(&reader, &key, &mut stdin));
    let mut last = None;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if let Some(v) = line.strip_prefix("out_time_us=") {
            last = v.trim().parse::<i64>().ok().or(last);
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    match feeder.join() {
        Ok(Err(FeedError::Source(e))) => return Err(e),
        Err(_) => return Err("the feeder thread panicked".to_owned()),
        _ => {}
    }
    if !status.success() {
        return Err(format!("ffmpeg could not read the recording ({status})"));
    }
    last.and_then(|us| u64::try_from(us).ok())
        .map(|us| us / 1000)
        .ok_or_else(|| "ffmpeg reported no duration".to_owned())
}

/// A running composition: ffmpeg, its feeders, and the stream of its output.
pub(crate) struct Running {
    pub(crate) child: Arc<Mutex<Child>>,
    pub(crate) output: mpsc::Receiver<io::Result<Bytes>>,
    pub(crate) progress: watch::Receiver<u64>,
    pub(crate) outcome: oneshot::Receiver<Result<(), String>>,
}

impl Running {
    pub(crate) fn kill(&self) {
        if let Ok(mut c) = self.child.lock() {
            let _ = c.kill();
        }
    }
}

pub(crate) fn start(
    ffmpeg: &Path,
    scratch: &Path,
    plan: &Plan,
    reader: &AtRestReader,
) -> io::Result<Running> {
    let dir = PrivateDir::new(scratch)?;
    let fifos: Vec<PathBuf> = (0..plan.inputs.len())
        .map(|i| dir.0.join(format!("in{i}")))
        .collect();
    for f in &fifos {
        mkfifo(f)?;
    }
    let mut child = Command::new(ffmpeg)
        .args(ffmpeg_args(plan, &fifos))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(io::Error::other("ffmpeg pipes missing"));
    };
    let child = Arc::new(Mutex::new(child));
    let cancel = Arc::new(AtomicBool::new(false));

    let mut feeders = Vec::new();
    for (input, fifo) in plan.inputs.iter().zip(&fifos) {
        let (reader, cancel) = (reader.clone(), cancel.clone());
        let (fifo, key, sid) = (fifo.clone(), input.object_key.clone(), input.sid.clone());
        feeders.push(std::thread::spawn(move || -> Result<(), String> {
            // Not opened means ffmpeg exited early; its own failure is what gets reported.
            let Ok(mut out) = open_fifo_writer(&fifo, &cancel) else {
                return Ok(());
            };
            match feed(&reader, &key, &mut out) {
                Ok(()) | Err(FeedError::ReaderGone) => Ok(()),
                Err(FeedError::Source(e)) => Err(format!("recording {sid} could not be read: {e}")),
            }
        }));
    }

    let (progress_tx, progress) = watch::channel(0u64);
    let stderr_thread = std::thread::spawn(move || {
        // ffmpeg's errors; kept in memory only, never logged (they can quote media metadata).
        let mut errors: Vec<String> = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(v) = line.strip_prefix("out_time_us=") {
                if let Ok(us) = v.trim().parse::<u64>() {
                    let _ = progress_tx.send(us);
                }
            } else if !line.contains('=') || line.contains(' ') {
                errors.push(line.chars().take(300).collect());
                if errors.len() > 5 {
                    errors.remove(0);
                }
            }
        }
        errors
    });

    let (tx, output) = mpsc::channel::<io::Result<Bytes>>(8);
    let (outcome_tx, outcome) = oneshot::channel();
    let waiter = child.clone();
    std::thread::spawn(move || {
        let mut stdout = stdout;
        let mut reader_gone = false;
        loop {
            let mut buf = vec![0u8; 256 * 1024];
            match stdout.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        reader_gone = true;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if reader_gone && let Ok(mut c) = waiter.lock() {
            let _ = c.kill();
        }
        drop(stdout);
        let status = loop {
            let polled = waiter.lock().map(|mut c| c.try_wait());
            match polled {
                Ok(Ok(Some(status))) => break Some(status),
                Ok(Ok(None)) => std::thread::sleep(Duration::from_millis(10)),
                _ => break None,
            }
        };
        cancel.store(true, Ordering::Relaxed);
        let mut result = Ok(());
        for f in feeders {
            match f.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e),
                Err(_) => result = Err("a feeder thread panicked".to_owned()),
            }
        }
        let errors = stderr_thread.join().unwrap_or_default();
        drop(dir);
        if result.is_ok() {
            result = match status {
                Some(s) if s.success() => Ok(()),
                Some(s) => Err(match errors.last() {
                    Some(last) => format!("ffmpeg failed ({s}): {last}"),
                    None => format!("ffmpeg failed ({s})"),
                }),
                None => Err("ffmpeg could not be waited for".to_owned()),
            };
        }
        if let Err(e) = &result {
            // Makes the sealing side discard what it wrote instead of storing a truncated file.
            let _ = tx.blocking_send(Err(io::Error::other(e.clone())));
        }
        let _ = outcome_tx.send(result);
    });
    Ok(Running {
        child,
        output,
        progress,
        outcome,
    })
}
