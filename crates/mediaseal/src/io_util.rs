//! Inputs, outputs and progress for the file commands.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use mediaseal_crypto::{AtomicFile, KeyError, PrivateKey, PublicKey};
use zeroize::Zeroizing;

use crate::error::CliError;

/// Largest key file read; real keys are a few KiB.
const MAX_KEY_FILE: u64 = 1 << 20;

pub(crate) fn is_dash(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// An opened input: a regular file (seekable, length known) or a stream.
pub(crate) enum Input {
    File(File, u64),
    Stream(Box<dyn Read + Send>),
}

impl Input {
    pub(crate) fn open(path: &Path) -> Result<Self, CliError> {
        if is_dash(path) {
            // Standard input redirected from a regular file can be re-read and measured.
            if let Ok(fd) = io::stdin().as_fd().try_clone_to_owned() {
                let file = File::from(fd);
                if let Ok(meta) = file.metadata()
                    && meta.is_file()
                {
                    return Ok(Self::File(file, meta.len()));
                }
            }
            return Ok(Self::Stream(Box::new(io::stdin())));
        }
        let file = File::open(path).map_err(|e| CliError::io("open", path, &e))?;
        let meta = file
            .metadata()
            .map_err(|e| CliError::io("read", path, &e))?;
        if meta.is_dir() {
            return Err(CliError::new(format!(
                "'{}' is a directory, not a file",
                path.display()
            )));
        }
        let len = meta.len();
        Ok(Self::File(file, len))
    }

    /// True when a regular file begins with `prefix` (read without moving the file offset);
    /// always false for a stream, which cannot be peeked at without consuming it.
    pub(crate) fn starts_with(&self, prefix: &[u8]) -> bool {
        use std::os::unix::fs::FileExt;
        let Self::File(file, _) = self else {
            return false;
        };
        let mut buf = vec![0u8; prefix.len()];
        file.read_exact_at(&mut buf, 0).is_ok() && buf == prefix
    }

    pub(crate) fn len(&self) -> Option<u64> {
        match self {
            Self::File(_, len) => Some(*len),
            Self::Stream(_) => None,
        }
    }

    /// The input as a plain reader, wrapped in a progress bar when one is shown.
    pub(crate) fn into_reader(self, progress: &Progress) -> Box<dyn Read + Send> {
        let reader: Box<dyn Read + Send> = match self {
            Self::File(f, _) => Box::new(f),
            Self::Stream(s) => s,
        };
        progress.wrap(reader)
    }
}

/// A destination that appears whole or not at all (files), or a stream (stdout).
pub(crate) enum Output {
    File(AtomicFile),
    /// Standard output as a plain file descriptor: unbuffered (writes are large) and `Send`.
    Stdout(File),
}

impl Output {
    /// Opens the destination. Binary output is never sent to a terminal.
    pub(crate) fn create(path: &Path, binary: bool) -> Result<Self, CliError> {
        if is_dash(path) {
            let stdout = io::stdout();
            if binary && stdout.is_terminal() {
                return Err(
                    CliError::usage("refusing to write binary data to a terminal").with_hint(
                        "pass --out FILE, or redirect standard output to a file or pipe",
                    ),
                );
            }
            let fd = stdout
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| CliError::io("use", path, &e))?;
            return Ok(Self::Stdout(File::from(fd)));
        }
        if path.is_dir() {
            return Err(CliError::new(format!(
                "'{}' is a directory; --out needs a file name",
                path.display()
            )));
        }
        AtomicFile::create(path)
            .map(Self::File)
            .map_err(|e| CliError::io("create a file beside", path, &e))
    }

    /// Makes a file output visible at its path; a no-op for stdout.
    pub(crate) fn commit(self, path: &Path) -> Result<(), CliError> {
        match self {
            Self::File(f) => f.commit().map_err(|e| CliError::io("write", path, &e)),
            Self::Stdout(mut s) => s.flush().map_err(|e| CliError::io("write", path, &e)),
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::File(f) => f.write(buf),
            Self::Stdout(s) => s.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Self::File(f) => f.write_all(buf),
            Self::Stdout(s) => s.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::File(f) => f.flush(),
            Self::Stdout(s) => s.flush(),
        }
    }
}

/// A progress bar on stderr, only when stderr is a terminal and the user did not ask for quiet.
pub(crate) struct Progress(Option<ProgressBar>);

impl Progress {
    pub(crate) fn new(quiet: bool, total: Option<u64>, verb: &str) -> Self {
        if quiet || !io::stderr().is_terminal() {
            return Self(None);
        }
        let bar = match total {
            Some(len) => ProgressBar::new(len),
            None => ProgressBar::no_length(),
        };
        let template = match total {
            Some(_) => "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            None => "{msg} {spinner} {bytes} {bytes_per_sec}",
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(verb.to_owned());
        Self(Some(bar))
    }

    pub(crate) fn wrap(&self, reader: Box<dyn Read + Send>) -> Box<dyn Read + Send> {
        match &self.0 {
            Some(bar) => Box::new(bar.wrap_read(reader)),
            None => reader,
        }
    }

    /// Counts the bytes written through `writer` on the bar (for inputs read with `pread`, which
    /// a wrapped reader would not see).
    pub(crate) fn counting<W: Write>(&self, writer: W) -> Counted<W> {
        Counted {
            inner: writer,
            bar: self.0.clone(),
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

fn read_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let file = File::open(path).map_err(|e| CliError::io("open key file", path, &e))?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::io("read key file", path, &e))?;
    if bytes.len() as u64 > MAX_KEY_FILE {
        return Err(CliError::new(format!(
            "'{}' is larger than 1 MiB; that is not a key file",
            path.display()
        )));
    }
    Ok(bytes)
}

pub(crate) fn load_public_key(path: &Path) -> Result<PublicKey, CliError> {
    let bytes = read_key_file(path)?;
    PublicKey::from_bytes(&bytes).map_err(|e: KeyError| CliError::key(path, &e))
}

pub(crate) fn load_private_key(path: &Path) -> Result<PrivateKey, CliError> {
    let bytes = read_key_file(path)?;
    PrivateKey::from_bytes(&bytes).map_err(|e| CliError::key(path, &e))
}

/// A small text file (details, headers) that must exist and be readable.
pub(crate) fn read_text(path: &Path, what: &str) -> Result<String, CliError> {
    let file = File::open(path).map_err(|e| CliError::io(&format!("open {what}"), path, &e))?;
    let mut text = String::new();
    file.take(16 << 20)
        .read_to_string(&mut text)
        .map_err(|e| CliError::io(&format!("read {what}"), path, &e))?;
    Ok(text)
}

/// Writes a small text file atomically.
pub(crate) fn write_text(path: &Path, text: &str) -> Result<(), CliError> {
    if is_dash(path) {
        return io::stdout()
            .write_all(text.as_bytes())
            .map_err(|e| CliError::io("write", path, &e));
    }
    let mut file = AtomicFile::create(path).map_err(|e| CliError::io("create", path, &e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| CliError::io("write", path, &e))?;
    file.commit().map_err(|e| CliError::io("write", path, &e))
}

pub(crate) fn threads(requested: Option<usize>) -> usize {
    requested
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1)
}

/// A writer that advances a progress bar by the bytes it passes on.
pub(crate) struct Counted<W> {
    inner: W,
    bar: Option<ProgressBar>,
}

impl<W> Counted<W> {
    pub(crate) fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(bar) = &self.bar {
            bar.inc(n as u64);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
