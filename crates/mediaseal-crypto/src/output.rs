//! Output files that appear whole or not at all.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// A file written under a temporary name beside its target and renamed into place by
/// [`AtomicFile::commit`] after an fsync. Dropped without a commit, it is deleted, so a failed
/// decryption never leaves plaintext (or half a file) at the target path.
#[derive(Debug)]
pub struct AtomicFile {
    temp: NamedTempFile,
    target: PathBuf,
    written: u64,
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
    pub fn commit(self) -> io::Result<()> {
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

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.temp.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.temp.write_all(buf)?;
        self.written += buf.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.temp.flush()
    }
}
