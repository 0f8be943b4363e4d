//! The native format's header: magic, version, segment size, nonce prefix and recipients.
//! The byte layout is specified in `docs/FORMAT.md`; this is its only reader and writer.

use std::io::{self, Read};

use crate::keys::Fingerprint;

/// First eight bytes of every native file. The high first byte and the CR LF catch 7-bit and
/// line-ending mangling, as PNG's signature does.
pub const MAGIC: [u8; 8] = [0x89, b'M', b'S', b'E', b'A', b'L', b'\r', b'\n'];
/// The only version this implementation writes and reads.
pub const VERSION: u8 = 1;
/// Suite 1: AES-256-GCM segments, nonce = prefix‖counter‖last-flag, AAD = SHA-256(header).
pub const SUITE_AES256GCM_SEGMENTS: u8 = 1;
/// Recipient kind 1: the CEK wrapped with RSA-OAEP, SHA-256, MGF1-SHA-256, empty label.
pub const RECIPIENT_RSA_OAEP_SHA256: u8 = 1;
/// Bytes of the per-file nonce prefix.
pub const NONCE_PREFIX_LEN: usize = 7;
/// Smallest and largest segment size exponents (4 KiB to 16 MiB).
pub const SEGMENT_LOG2_RANGE: core::ops::RangeInclusive<u8> = 12..=24;
/// Default segment size exponent: 64 KiB segments.
pub const DEFAULT_SEGMENT_LOG2: u8 = 16;
/// Most recipients a header carries.
pub const MAX_RECIPIENTS: usize = 16;
/// Longest key identifier (a `CR…` SID is 34).
pub const MAX_KEY_ID_LEN: usize = 64;
/// Length of the fixed part before the recipients.
pub const FIXED_LEN: usize = 23;
/// Largest header accepted, far above what 16 recipients of 8192-bit keys need.
pub const MAX_HEADER_LEN: usize = 64 * 1024;

const WRAPPED_RANGE: core::ops::RangeInclusive<usize> = 256..=1024;

/// Why a native header could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The input does not start with the native magic bytes.
    #[error(
        "not a mediaseal native file (the first bytes are not the native magic); use --details or --encrypted-key/--iv for the rsa-aes, s3-cbc and s3-gcm formats"
    )]
    NotNative,
    /// The input ended inside the header.
    #[error("the native header is truncated")]
    Truncated,
    /// A version this implementation does not know.
    #[error("native format version {0} is not supported by this mediaseal (it reads version 1)")]
    UnsupportedVersion(u8),
    /// A cipher suite this implementation does not know.
    #[error("native header names cipher suite {0}, which this mediaseal does not support")]
    UnsupportedSuite(u8),
    /// A segment size outside 4 KiB..16 MiB.
    #[error("native header has segment size 2^{0}, outside the allowed 2^12..2^24")]
    BadSegmentSize(u8),
    /// Zero recipients, or more than the maximum.
    #[error("native header lists {0} recipients; 1 to 16 are allowed")]
    BadRecipientCount(u8),
    /// A recipient kind this implementation does not know.
    #[error("native header recipient {index} has unknown kind {kind}")]
    UnknownRecipientKind {
        /// Position in the list.
        index: usize,
        /// The kind byte.
        kind: u8,
    },
    /// A key identifier that is too long or not printable ASCII.
    #[error("native header recipient {0} has a malformed key identifier")]
    BadKeyId(usize),
    /// A wrapped key whose length fits no RSA key from 2048 to 8192 bits.
    #[error(
        "native header recipient {index} has a wrapped key of {len} bytes; 256 to 1024 are allowed"
    )]
    BadWrappedLength {
        /// Position in the list.
        index: usize,
        /// The length found.
        len: usize,
    },
    /// The length field disagrees with the content, or a reserved field is not zero.
    #[error("native header length field says {declared} bytes but the header holds {actual}")]
    LengthMismatch {
        /// The length field.
        declared: usize,
        /// What parsing consumed.
        actual: usize,
    },
    /// Reading the header failed.
    #[error("I/O error while reading the native header: {0}")]
    Io(#[from] io::Error),
}

/// One party that can open the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// A name for the key, typically its `CR…` SID. May be empty.
    pub key_id: String,
    /// SHA-256 of the key's SubjectPublicKeyInfo DER.
    pub fingerprint: Fingerprint,
    /// The CEK wrapped with RSA-OAEP-SHA256 to this key.
    pub wrapped_cek: Vec<u8>,
}

/// A parsed native header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// log2 of the plaintext segment size.
    pub segment_log2: u8,
    /// The per-file nonce prefix.
    pub nonce_prefix: [u8; NONCE_PREFIX_LEN],
    /// Who can open the file.
    pub recipients: Vec<Recipient>,
}

impl Header {
    /// Plaintext bytes per segment.
    pub fn segment_size(&self) -> usize {
        1usize << self.segment_log2
    }

    /// Serialises the header. Fails only on values the parser would also refuse.
    pub fn to_bytes(&self) -> Result<Vec<u8>, HeaderError> {
        if !SEGMENT_LOG2_RANGE.contains(&self.segment_log2) {
            return Err(HeaderError::BadSegmentSize(self.segment_log2));
        }
        let count = u8::try_from(self.recipients.len()).unwrap_or(u8::MAX);
        if self.recipients.is_empty() || self.recipients.len() > MAX_RECIPIENTS {
            return Err(HeaderError::BadRecipientCount(count));
        }
        let mut out = Vec::with_capacity(FIXED_LEN + self.recipients.len() * 300);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(SUITE_AES256GCM_SEGMENTS);
        out.push(self.segment_log2);
        out.push(count);
        out.extend_from_slice(&self.nonce_prefix);
        out.extend_from_slice(&[0; 4]); // total length, filled in below
        for (index, r) in self.recipients.iter().enumerate() {
            if !valid_key_id(r.key_id.as_bytes()) {
                return Err(HeaderError::BadKeyId(index));
            }
            if !WRAPPED_RANGE.contains(&r.wrapped_cek.len()) {
                return Err(HeaderError::BadWrappedLength {
                    index,
                    len: r.wrapped_cek.len(),
                });
            }
            out.push(RECIPIENT_RSA_OAEP_SHA256);
            out.push(r.key_id.len() as u8);
            out.extend_from_slice(r.key_id.as_bytes());
            out.extend_from_slice(&r.fingerprint.0);
            out.extend_from_slice(&(r.wrapped_cek.len() as u16).to_be_bytes());
            out.extend_from_slice(&r.wrapped_cek);
        }
        let total = u32::try_from(out.len()).map_err(|_| HeaderError::LengthMismatch {
            declared: 0,
            actual: out.len(),
        })?;
        out[19..23].copy_from_slice(&total.to_be_bytes());
        Ok(out)
    }

    /// Parses a header from the start of `bytes`; returns it and its length in bytes.
    pub fn parse(bytes: &[u8]) -> Result<(Self, usize), HeaderError> {
        if bytes.get(..MAGIC.len()) != Some(&MAGIC[..]) {
            return Err(HeaderError::NotNative);
        }
        let mut cur = Cursor {
            bytes,
            pos: MAGIC.len(),
        };
        let version = cur.u8()?;
        if version != VERSION {
            return Err(HeaderError::UnsupportedVersion(version));
        }
        let suite = cur.u8()?;
        if suite != SUITE_AES256GCM_SEGMENTS {
            return Err(HeaderError::UnsupportedSuite(suite));
        }
        let segment_log2 = cur.u8()?;
        if !SEGMENT_LOG2_RANGE.contains(&segment_log2) {
            return Err(HeaderError::BadSegmentSize(segment_log2));
        }
        let count = cur.u8()?;
        if count == 0 || usize::from(count) > MAX_RECIPIENTS {
            return Err(HeaderError::BadRecipientCount(count));
        }
        let mut nonce_prefix = [0u8; NONCE_PREFIX_LEN];
        nonce_prefix.copy_from_slice(cur.take(NONCE_PREFIX_LEN)?);
        let declared = u32::from_be_bytes(cur.array()?) as usize;
        if !(FIXED_LEN..=MAX_HEADER_LEN).contains(&declared) {
            return Err(HeaderError::LengthMismatch {
                declared,
                actual: FIXED_LEN,
            });
        }
        // Parse only within the declared length so a lying length cannot make us read the body.
        let mut cur = Cursor {
            bytes: bytes.get(..declared).ok_or(HeaderError::Truncated)?,
            pos: cur.pos,
        };
        let mut recipients = Vec::with_capacity(usize::from(count));
        for index in 0..usize::from(count) {
            let kind = cur.u8().map_err(|_| mismatch(declared, bytes.len()))?;
            if kind != RECIPIENT_RSA_OAEP_SHA256 {
                return Err(HeaderError::UnknownRecipientKind { index, kind });
            }
            let id_len = usize::from(cur.u8().map_err(|_| mismatch(declared, bytes.len()))?);
            let key_id = cur
                .take(id_len)
                .map_err(|_| mismatch(declared, bytes.len()))?;
            if !valid_key_id(key_id) {
                return Err(HeaderError::BadKeyId(index));
            }
            let key_id = String::from_utf8_lossy(key_id).into_owned();
            let fingerprint =
                Fingerprint(cur.array().map_err(|_| mismatch(declared, bytes.len()))?);
            let wrapped_len = usize::from(u16::from_be_bytes(
                cur.array().map_err(|_| mismatch(declared, bytes.len()))?,
            ));
            if !WRAPPED_RANGE.contains(&wrapped_len) {
                return Err(HeaderError::BadWrappedLength {
                    index,
                    len: wrapped_len,
                });
            }
            let wrapped_cek = cur
                .take(wrapped_len)
                .map_err(|_| mismatch(declared, bytes.len()))?
                .to_vec();
            recipients.push(Recipient {
                key_id,
                fingerprint,
                wrapped_cek,
            });
        }
        if cur.pos != declared {
            return Err(HeaderError::LengthMismatch {
                declared,
                actual: cur.pos,
            });
        }
        Ok((
            Self {
                segment_log2,
                nonce_prefix,
                recipients,
            },
            declared,
        ))
    }

    /// How long the header at the start of `prefix` is, once `prefix` holds its fixed part
    /// ([`FIXED_LEN`] bytes): `Ok(None)` means "gather more bytes", `Ok(Some(len))` means the
    /// whole header is the first `len` bytes. Fails as soon as the bytes seen cannot start a
    /// native header (wrong magic, unknown version or suite, bad sizes).
    pub fn declared_len(prefix: &[u8]) -> Result<Option<usize>, HeaderError> {
        let magic_seen = prefix.len().min(MAGIC.len());
        if prefix.get(..magic_seen) != MAGIC.get(..magic_seen) {
            return Err(HeaderError::NotNative);
        }
        let Some(fixed) = prefix.get(..FIXED_LEN) else {
            return Ok(None);
        };
        // The fixed part alone never holds a whole header (at least one recipient follows), so
        // parsing it either reports what is wrong with it or stops for want of the rest.
        match Self::parse(fixed) {
            Err(HeaderError::Truncated) => {}
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        Ok(Some(
            u32::from_be_bytes([fixed[19], fixed[20], fixed[21], fixed[22]]) as usize,
        ))
    }

    /// Reads exactly one header from `reader`, returning it with its raw bytes.
    pub fn read_from(reader: &mut impl Read) -> Result<(Self, Vec<u8>), HeaderError> {
        let mut raw = vec![0u8; FIXED_LEN];
        // Something shorter than the magic, or not starting with it, is not a native file at all
        // (rather than a truncated one).
        let got = crate::pump::read_full(reader, &mut raw)?;
        if got < MAGIC.len() || raw[..MAGIC.len()] != MAGIC {
            return Err(HeaderError::NotNative);
        }
        if got < FIXED_LEN {
            return Err(HeaderError::Truncated);
        }
        let declared = u32::from_be_bytes([raw[19], raw[20], raw[21], raw[22]]) as usize;
        if !(FIXED_LEN..=MAX_HEADER_LEN).contains(&declared) {
            // Let `parse` report the most specific problem (version, suite, …) first.
            return Self::parse(&raw).and(Err(HeaderError::LengthMismatch {
                declared,
                actual: FIXED_LEN,
            }));
        }
        raw.resize(declared, 0);
        read_exact_or_truncated(reader, &mut raw[FIXED_LEN..])?;
        let (header, _) = Self::parse(&raw)?;
        Ok((header, raw))
    }
}

fn mismatch(declared: usize, available: usize) -> HeaderError {
    if available < declared {
        HeaderError::Truncated
    } else {
        HeaderError::LengthMismatch {
            declared,
            actual: declared + 1,
        }
    }
}

fn read_exact_or_truncated(reader: &mut impl Read, buf: &mut [u8]) -> Result<(), HeaderError> {
    reader.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            HeaderError::Truncated
        } else {
            HeaderError::Io(e)
        }
    })
}

fn valid_key_id(id: &[u8]) -> bool {
    id.len() <= MAX_KEY_ID_LEN && id.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// Bounds-checked reading over a byte slice.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], HeaderError> {
        let end = self.pos.checked_add(n).ok_or(HeaderError::Truncated)?;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or(HeaderError::Truncated)?;
        self.pos = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, HeaderError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], HeaderError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            segment_log2: 16,
            nonce_prefix: [1, 2, 3, 4, 5, 6, 7],
            recipients: vec![
                Recipient {
                    key_id: "CR0123".into(),
                    fingerprint: Fingerprint([9; 32]),
                    wrapped_cek: vec![4; 256],
                },
                Recipient {
                    key_id: String::new(),
                    fingerprint: Fingerprint([8; 32]),
                    wrapped_cek: vec![5; 512],
                },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let h = sample();
        let bytes = h.to_bytes().unwrap();
        let (back, len) = Header::parse(&bytes).unwrap();
        assert_eq!(back, h);
        assert_eq!(len, bytes.len());
        let (back2, raw) = Header::read_from(&mut &bytes[..]).unwrap();
        assert_eq!(back2, h);
        assert_eq!(raw, bytes);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample().to_bytes().unwrap();
        for cut in 0..bytes.len() {
            assert!(Header::parse(&bytes[..cut]).is_err(), "cut at {cut}");
            assert!(
                Header::read_from(&mut &bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn specific_errors() {
        let bytes = sample().to_bytes().unwrap();
        let mut b = bytes.clone();
        b[0] = b'X';
        assert!(matches!(Header::parse(&b), Err(HeaderError::NotNative)));
        let mut b = bytes.clone();
        b[8] = 2;
        assert!(matches!(
            Header::parse(&b),
            Err(HeaderError::UnsupportedVersion(2))
        ));
        let mut b = bytes.clone();
        b[10] = 30;
        assert!(matches!(
            Header::parse(&b),
            Err(HeaderError::BadSegmentSize(30))
        ));
        let mut b = bytes.clone();
        b[11] = 0;
        assert!(matches!(
            Header::parse(&b),
            Err(HeaderError::BadRecipientCount(0))
        ));
        let mut b = bytes;
        b[22] = b[22].wrapping_add(1);
        assert!(Header::parse(&b).is_err());
    }
}
