//! Random access to a native file's plaintext: `Read + Seek` over the authenticated segments.

use std::io::{self, Read, Seek, SeekFrom, Write};

use mediaseal_lc::gcm::GcmSegmentCipher;
use zeroize::Zeroize;

use super::{Header, SegmentKeys, plaintext_len, unlock};
use crate::error::DecryptError;
use crate::gcm::TAG_LEN;
use crate::keys::PrivateKey;

/// Reads the plaintext of a native file in any order, decrypting only the segments touched.
/// Every byte it returns has been authenticated, including the last-segment flag of the final
/// segment, so a truncated file fails when its end is read.
pub struct NativeReader<R> {
    inner: R,
    keys: SegmentKeys,
    cipher: GcmSegmentCipher,
    header_len: u64,
    len: u64,
    segment_count: u64,
    pos: u64,
    loaded: Option<u64>,
    plain: Vec<u8>,
    sealed: Vec<u8>,
}

impl<R> core::fmt::Debug for NativeReader<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NativeReader")
            .field("len", &self.len)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl<R: Read + Seek> NativeReader<R> {
    /// Reads the header, finds `key` among the recipients and measures the file.
    pub fn new(mut inner: R, key: &PrivateKey) -> Result<Self, DecryptError> {
        inner.seek(SeekFrom::Start(0))?;
        let (header, header_bytes) = Header::read_from(&mut inner)?;
        let keys = unlock(&header, &header_bytes, key)?;
        let cipher = keys.opening_cipher()?;
        let header_len = header_bytes.len() as u64;
        let file_len = inner.seek(SeekFrom::End(0))?;
        let segment = keys.segment_size as u64;
        let len = plaintext_len(header_len, segment, file_len)
            .ok_or(DecryptError::AuthenticationFailed)?;
        let segment_count = len.div_ceil(segment).max(1);
        Ok(Self {
            inner,
            cipher,
            header_len,
            len,
            segment_count,
            pos: 0,
            loaded: None,
            plain: Vec::with_capacity(keys.segment_size),
            sealed: Vec::with_capacity(keys.segment_size + TAG_LEN),
            keys,
        })
    }

    /// Plaintext length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the plaintext is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn load(&mut self, index: u64) -> Result<(), DecryptError> {
        if self.loaded == Some(index) {
            return Ok(());
        }
        self.loaded = None;
        let segment = self.keys.segment_size as u64;
        let stride = segment + TAG_LEN as u64;
        let last = index + 1 == self.segment_count;
        let plain_len = if last {
            self.len - index * segment
        } else {
            segment
        };
        let plain_len =
            usize::try_from(plain_len).map_err(|_| DecryptError::AuthenticationFailed)?;
        self.inner
            .seek(SeekFrom::Start(self.header_len + index * stride))?;
        self.sealed.resize(plain_len + TAG_LEN, 0);
        self.inner.read_exact(&mut self.sealed)?;
        self.plain.zeroize();
        self.plain.resize(plain_len, 0);
        self.keys
            .open_segment(&mut self.cipher, index, last, &self.sealed, &mut self.plain)?;
        self.loaded = Some(index);
        Ok(())
    }
}

impl<R: Read + Seek> Read for NativeReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let segment = self.keys.segment_size as u64;
        let index = self.pos / segment;
        self.load(index).map_err(|e| match e {
            DecryptError::Io(io) => io,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        })?;
        let offset = (self.pos - index * segment) as usize;
        let available = &self.plain[offset..];
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for NativeReader<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let target = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the plaintext",
            )
        })?;
        self.pos = target;
        Ok(target)
    }
}

impl<R> Drop for NativeReader<R> {
    fn drop(&mut self) {
        self.plain.zeroize();
    }
}

/// Writes plaintext bytes `start..start + len` (clamped to the end) of a native file to `writer`,
/// reading only the segments that hold them. Returns the number of bytes written.
pub fn decrypt_range<R: Read + Seek, W: Write>(
    reader: R,
    key: &PrivateKey,
    start: u64,
    len: u64,
    mut writer: W,
) -> Result<u64, DecryptError> {
    let mut native = NativeReader::new(reader, key)?;
    if start > native.len() || (start == native.len() && len > 0) {
        return Err(DecryptError::RangeOutOfBounds {
            start,
            len: native.len(),
        });
    }
    native.seek(SeekFrom::Start(start))?;
    let mut limited = native.take(len);
    let copied = io::copy(&mut limited, &mut writer).map_err(|e| {
        if e.kind() == io::ErrorKind::InvalidData {
            DecryptError::AuthenticationFailed
        } else {
            DecryptError::Io(e)
        }
    })?;
    Ok(copied)
}
