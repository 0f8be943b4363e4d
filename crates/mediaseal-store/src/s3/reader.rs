//! Reading from a blocking task: a `Read + Seek` over ranged GETs with an adaptive read-ahead.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

use bytes::Bytes;

use super::Inner;
use crate::error::StoreError;

/// Read-ahead bounds of the blocking reader: small after a seek, doubling while reads are
/// sequential.
const READ_AHEAD_MIN: u64 = 256 << 10;
const READ_AHEAD_MAX: u64 = 8 << 20;

/// A blocking `Read + Seek` over ranged GETs. Runs the requests on the store's runtime from the
/// calling (blocking) thread.
pub(super) struct S3Reader {
    inner: Arc<Inner>,
    full: String,
    key: String,
    size: Option<u64>,
    pos: u64,
    buffer: Bytes,
    buffer_start: u64,
    ahead: u64,
}

fn to_io(e: StoreError) -> io::Error {
    match e {
        StoreError::ObjectNotFound(_) => io::Error::new(io::ErrorKind::NotFound, e.to_string()),
        StoreError::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

impl S3Reader {
    pub(super) fn new(inner: Arc<Inner>, full: String, key: &str) -> Self {
        Self {
            inner,
            full,
            key: key.to_owned(),
            size: None,
            pos: 0,
            buffer: Bytes::new(),
            buffer_start: 0,
            ahead: READ_AHEAD_MIN,
        }
    }

    fn size(&mut self) -> io::Result<u64> {
        if let Some(size) = self.size {
            return Ok(size);
        }
        let inner = self.inner.clone();
        let size = inner
            .runtime
            .block_on(inner.head_full(&self.full, &self.key))
            .map_err(to_io)?
            .size;
        self.size = Some(size);
        Ok(size)
    }

    fn fill(&mut self, size: u64) -> io::Result<()> {
        let sequential =
            self.pos == self.buffer_start + self.buffer.len() as u64 && !self.buffer.is_empty();
        self.ahead = if sequential {
            (self.ahead * 2).min(READ_AHEAD_MAX)
        } else {
            READ_AHEAD_MIN
        };
        let end = (self.pos + self.ahead).min(size);
        let inner = self.inner.clone();
        let bytes = inner
            .runtime
            .block_on(inner.get_range(&self.full, &self.key, self.pos..end))
            .map_err(to_io)?;
        if (bytes.len() as u64) < end - self.pos {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} shrank while being read", self.key),
            ));
        }
        self.buffer = bytes;
        self.buffer_start = self.pos;
        Ok(())
    }
}

impl Read for S3Reader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let size = self.size()?;
        if out.is_empty() || self.pos >= size {
            return Ok(0);
        }
        let buffered = self.buffer_start..self.buffer_start + self.buffer.len() as u64;
        if !buffered.contains(&self.pos) {
            self.fill(size)?;
        }
        let offset = (self.pos - self.buffer_start) as usize;
        let available = &self.buffer[offset..];
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for S3Reader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.size()?.checked_add_signed(d),
        };
        self.pos = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}
