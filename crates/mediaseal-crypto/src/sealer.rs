//! [`Sealer`]: one sans-IO sealer for all four formats, and the receipt it hands back.
//!
//! This is the only place that decides, from a [`Format`], which cipher, which key wrap and which
//! key-material record an object gets. Callers feed plaintext in whatever pieces they have and
//! write the bytes that come out, in order; at the end the [`Receipt`] says what the customer
//! needs besides the object (the `encryption_details` JSON, the `x-amz-meta-*` headers, or
//! nothing for the self-describing native format).
//!
//! [`Sealer::seal_reader`] and [`Sealer::seal_file`] drive a sealer over `Read`/`Write` for the
//! CLI; the native format is sealed there on several threads (its segments are independent).

use core::fmt;
use std::fs::File;
use std::io::{Read, Write};

use crate::cek::ContentKey;
use crate::details::{EncryptionDetails, S3Headers, Scheme};
use crate::envelope::{CbcSealer, GcmSealer, STREAM_CHUNK};
use crate::error::EncryptError;
use crate::format::Format;
use crate::keys::Fingerprint;
use crate::native::{self, DEFAULT_SEGMENT_LOG2, MAX_KEY_ID_LEN, NativeSealer, RecipientKey};
use crate::pump::{self, PumpConfig, PumpError};

/// AES block size: CBC output runs at most one block ahead of or behind its input.
const AES_BLOCK: usize = 16;

/// Seals one object in any [`Format`], bytes in, bytes out.
///
/// ```
/// use mediaseal_crypto::{Format, PrivateKey, RecipientKey, Sealer};
///
/// let key = PrivateKey::generate(2048)?;
/// let recipients = [RecipientKey { key: key.public_key(), key_id: "CR0123456789abcdef0123456789abcdef" }];
/// let mut sealer = Sealer::new(Format::RsaAes, &recipients)?;
/// let mut object = Vec::new();
/// for piece in [&b"hello "[..], b"world"] {
///     sealer.update(piece, &mut object)?;
/// }
/// let receipt = sealer.finish(&mut object)?;
/// assert_eq!(receipt.plaintext_len, 11);
/// assert_eq!(object.len(), 11 + 16); // ciphertext, then the GCM tag
/// let details = receipt.encryption_details().expect("rsa-aes has encryption_details");
/// assert_eq!(details.public_key_sid.as_deref(), Some("CR0123456789abcdef0123456789abcdef"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// The content-encryption key lives only inside the cipher state: the native format keeps it in
/// a [`ContentKey`] that is wiped on drop; the single-key formats hand it to an AWS-LC cipher
/// context, which wipes it when freed, and drop their own copy at once. `Debug` shows the format
/// and the byte counts only.
pub struct Sealer {
    state: State,
    plaintext_len: u64,
    sealed_len: u64,
}

/// What one format needs while sealing.
enum State {
    Native {
        sealer: Box<NativeSealer>,
        header_written: bool,
    },
    RsaAes {
        cipher: GcmSealer,
        key: KeyRecord,
    },
    S3Gcm {
        cipher: GcmSealer,
        key: KeyRecord,
    },
    S3Cbc {
        cipher: CbcSealer,
        key: KeyRecord,
    },
}

/// The single recipient of an `rsa-aes`/`s3-*` object, as its receipt will name it.
struct KeyRecord {
    wrapped_cek: Vec<u8>,
    iv: Vec<u8>,
    sid: Option<String>,
    fingerprint: Fingerprint,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("format", &self.format())
            .field("plaintext_len", &self.plaintext_len)
            .field("sealed_len", &self.sealed_len)
            .finish_non_exhaustive()
    }
}

/// What sealing produced besides the object's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Receipt {
    /// The format sealed.
    pub format: Format,
    /// Plaintext bytes sealed.
    pub plaintext_len: u64,
    /// Bytes of the sealed object (header, ciphertext and tags).
    pub sealed_len: u64,
    /// The key material the object needs beside it, by format.
    pub details: ReceiptDetails,
}

/// The per-format part of a [`Receipt`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReceiptDetails {
    /// `native`: the object describes itself; its header is the first `header_len` bytes.
    Native {
        /// Length of the native header at the start of the object.
        header_len: usize,
    },
    /// `rsa-aes`: the Recording's `encryption_details` (seed 000).
    RsaAes(EncryptionDetails),
    /// `s3-cbc` and `s3-gcm`: the `x-amz-meta-*` object headers (seeds 001 and 002), with the
    /// plaintext length and the key's SID and fingerprint.
    S3(S3Headers),
}

impl Receipt {
    /// The `encryption_details` of an `rsa-aes` object.
    pub fn encryption_details(&self) -> Option<&EncryptionDetails> {
        match &self.details {
            ReceiptDetails::RsaAes(details) => Some(details),
            ReceiptDetails::Native { .. } | ReceiptDetails::S3(_) => None,
        }
    }

    /// The object headers of an `s3-cbc` or `s3-gcm` object.
    pub fn s3_headers(&self) -> Option<&S3Headers> {
        match &self.details {
            ReceiptDetails::S3(headers) => Some(headers),
            ReceiptDetails::Native { .. } | ReceiptDetails::RsaAes(_) => None,
        }
    }

    /// The header length of a native object.
    pub fn native_header_len(&self) -> Option<usize> {
        match &self.details {
            ReceiptDetails::Native { header_len } => Some(*header_len),
            ReceiptDetails::RsaAes(_) | ReceiptDetails::S3(_) => None,
        }
    }

    /// The details as the text a `--details` file holds: the JSON object and a newline for
    /// `rsa-aes`, one `name: value` line per header for `s3-*`; `None` for native.
    pub fn details_text(&self) -> Option<String> {
        match &self.details {
            ReceiptDetails::Native { .. } => None,
            ReceiptDetails::RsaAes(details) => Some(details.to_json() + "\n"),
            ReceiptDetails::S3(headers) => Some(headers.to_lines()),
        }
    }
}

impl Sealer {
    /// Starts an object in `format`, sealed to `recipients`: 1 to 16 for native (64 KiB
    /// segments), exactly one for `rsa-aes`, `s3-cbc` and `s3-gcm`. Each recipient's `key_id`
    /// (typically its `CR…` SID; empty for none) is recorded in the native header, the
    /// `encryption_details` or the S3 headers.
    pub fn new(format: Format, recipients: &[RecipientKey<'_>]) -> Result<Self, EncryptError> {
        Self::with_segment_log2(format, recipients, DEFAULT_SEGMENT_LOG2)
    }

    /// Like [`Sealer::new`], with native segments of 2^`segment_log2` bytes (12..=24). The
    /// other formats have no segments and ignore it.
    pub fn with_segment_log2(
        format: Format,
        recipients: &[RecipientKey<'_>],
        segment_log2: u8,
    ) -> Result<Self, EncryptError> {
        // The one dispatch over the formats in the workspace: every other caller goes through
        // this type, so a fifth format is added here and nowhere else.
        let state = match format {
            Format::Native => State::Native {
                sealer: Box::new(NativeSealer::new(recipients, segment_log2)?),
                header_written: false,
            },
            Format::RsaAes => {
                let (cipher, key) = single_gcm(format, recipients)?;
                State::RsaAes { cipher, key }
            }
            Format::S3Gcm => {
                let (cipher, key) = single_gcm(format, recipients)?;
                State::S3Gcm { cipher, key }
            }
            Format::S3Cbc => {
                let recipient = single_recipient(format, recipients)?;
                let cek = ContentKey::generate();
                let wrapped_cek = cek
                    .wrap_pkcs1(recipient.key)
                    .map_err(|_| EncryptError::Wrap)?;
                let cipher = CbcSealer::new(&cek)?;
                let key = KeyRecord::new(recipient, wrapped_cek, cipher.iv().to_vec());
                State::S3Cbc { cipher, key }
            }
        };
        Ok(Self {
            state,
            plaintext_len: 0,
            sealed_len: 0,
        })
    }

    /// The format being sealed.
    pub fn format(&self) -> Format {
        match &self.state {
            State::Native { .. } => Format::Native,
            State::RsaAes { .. } => Format::RsaAes,
            State::S3Gcm { .. } => Format::S3Gcm,
            State::S3Cbc { .. } => Format::S3Cbc,
        }
    }

    /// Plaintext bytes fed so far.
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// Sealed bytes handed out so far.
    pub fn sealed_len(&self) -> u64 {
        self.sealed_len
    }

    /// Seals `input`, appending to `out` whatever ciphertext is ready (the native header comes
    /// first, on the first call). Write `out` to storage in order; nothing is held back that a
    /// later call would need to rewrite.
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), EncryptError> {
        let start = out.len();
        self.update_at(input, out, start)
    }

    /// Ends the object: appends the tail (the last segment, the GCM tag, the CBC padding block)
    /// to `out` and returns the receipt.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<Receipt, EncryptError> {
        let start = out.len();
        self.write_header_if_due(out);
        let format = self.format();
        let details = match self.state {
            State::Native { sealer, .. } => {
                let header_len = sealer.header().len();
                sealer.finish(out)?;
                ReceiptDetails::Native { header_len }
            }
            State::RsaAes { cipher, key } => {
                out.extend_from_slice(&cipher.finish()?);
                ReceiptDetails::RsaAes(EncryptionDetails::new(key.sid, &key.wrapped_cek, &key.iv))
            }
            State::S3Gcm { cipher, key } => {
                out.extend_from_slice(&cipher.finish()?);
                ReceiptDetails::S3(key.s3_headers(Scheme::GcmOaep, self.plaintext_len))
            }
            State::S3Cbc { cipher, key } => {
                cipher.finish_into(out)?;
                ReceiptDetails::S3(key.s3_headers(Scheme::CbcPkcs1, self.plaintext_len))
            }
        };
        self.sealed_len += (out.len() - start) as u64;
        Ok(Receipt {
            format,
            plaintext_len: self.plaintext_len,
            sealed_len: self.sealed_len,
            details,
        })
    }

    /// Seals `input` into `out` from byte `start` on, replacing whatever `out` held there.
    ///
    /// The drivers pass `start = 0` with a buffer that still holds the previous chunk, so growing
    /// it to the new length costs nothing in the steady state (no zeroing of bytes the cipher
    /// overwrites anyway).
    fn update_at(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        start: usize,
    ) -> Result<(), EncryptError> {
        match &mut self.state {
            State::Native { .. } => {
                out.truncate(start);
                self.write_header_if_due(out);
                if let State::Native { sealer, .. } = &mut self.state {
                    sealer.update(input, out)?;
                }
            }
            State::RsaAes { cipher, .. } | State::S3Gcm { cipher, .. } => {
                out.resize(start + input.len(), 0);
                cipher.seal_slice(input, &mut out[start..])?;
            }
            State::S3Cbc { cipher, .. } => {
                out.resize(start + input.len() + AES_BLOCK, 0);
                let written = cipher.seal_slice(input, &mut out[start..])?;
                out.truncate(start + written);
            }
        }
        self.plaintext_len += input.len() as u64;
        self.sealed_len += (out.len() - start) as u64;
        Ok(())
    }

    /// Appends the native header if it has not been written yet.
    fn write_header_if_due(&mut self, out: &mut Vec<u8>) {
        if let State::Native {
            sealer,
            header_written,
        } = &mut self.state
            && !*header_written
        {
            out.extend_from_slice(sealer.header());
            *header_written = true;
        }
    }

    /// Seals everything `reader` yields into `writer` and returns the receipt. Native segments
    /// are sealed on `threads` threads; the single-tag and CBC formats are serial by nature and
    /// use one cipher thread beside the I/O. Memory stays bounded whatever the input size.
    pub fn seal_reader<R: Read + Send, W: Write + Send>(
        self,
        reader: R,
        writer: W,
        threads: usize,
    ) -> Result<(Receipt, W), EncryptError> {
        self.seal_source(reader, writer, threads)
    }

    /// Like [`Sealer::seal_reader`] for a regular file, read from its current offset with large
    /// sequential reads (and the kernel told so), so a file that is not in the page cache streams
    /// off the disk at full speed. Fails if the file changes size while it is read.
    pub fn seal_file<W: Write + Send>(
        self,
        file: &File,
        writer: W,
        threads: usize,
    ) -> Result<(Receipt, W), EncryptError> {
        pump::advise_sequential(file);
        let expected = pump::remaining_len(file)?;
        let (receipt, writer) = self.seal_source(file, writer, threads)?;
        if receipt.plaintext_len != expected {
            return Err(EncryptError::Io(pump::changed_size()));
        }
        Ok((receipt, writer))
    }

    fn seal_source<R: Read + Send, W: Write + Send>(
        mut self,
        source: R,
        mut writer: W,
        threads: usize,
    ) -> Result<(Receipt, W), EncryptError> {
        if let State::Native { sealer, .. } = &mut self.state {
            // Segments are independent: seal them in parallel instead of through `update`.
            let header = sealer.header().to_vec();
            writer.write_all(&header)?;
            let (plaintext_len, sealed_body, writer) =
                native::seal_parallel(sealer.keys(), source, writer, threads)?;
            let sealed_len = header.len() as u64 + sealed_body;
            return Ok((
                Receipt {
                    format: Format::Native,
                    plaintext_len,
                    sealed_len,
                    details: ReceiptDetails::Native {
                        header_len: header.len(),
                    },
                },
                writer,
            ));
        }
        let config = PumpConfig {
            chunk: STREAM_CHUNK,
            overlap_io: true,
        };
        let mut sealer = Some(self);
        let mut receipt = None;
        let writer = pump::pump(source, writer, config, |input, out, last| {
            let s = sealer.as_mut().ok_or(EncryptError::Crypto)?;
            s.update_at(input, out, 0)?;
            if last {
                let s = sealer.take().ok_or(EncryptError::Crypto)?;
                receipt = Some(s.finish(out)?);
            }
            Ok(())
        })
        .map_err(|e| match e {
            PumpError::Io(io) => EncryptError::Io(io),
            PumpError::Transform(t) => t,
        })?;
        let receipt = receipt.ok_or(EncryptError::Crypto)?;
        Ok((receipt, writer))
    }
}

/// Checks a single-key format got exactly one recipient.
fn single_recipient<'a, 'k>(
    format: Format,
    recipients: &'a [RecipientKey<'k>],
) -> Result<&'a RecipientKey<'k>, EncryptError> {
    match recipients {
        [] => Err(EncryptError::NoRecipients),
        [one] => {
            if one.key_id.len() > MAX_KEY_ID_LEN
                || !one.key_id.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(EncryptError::BadKeySid(one.key_id.to_owned()));
            }
            Ok(one)
        }
        many => Err(EncryptError::TooManyRecipients {
            given: many.len(),
            max: 1,
            format: format.name(),
        }),
    }
}

/// A fresh CEK, OAEP-wrapped to the one recipient, and a GCM sealer under it.
fn single_gcm(
    format: Format,
    recipients: &[RecipientKey<'_>],
) -> Result<(GcmSealer, KeyRecord), EncryptError> {
    let recipient = single_recipient(format, recipients)?;
    let cek = ContentKey::generate();
    let wrapped_cek = cek
        .wrap_oaep(recipient.key)
        .map_err(|_| EncryptError::Wrap)?;
    let cipher = GcmSealer::new(&cek)?;
    let key = KeyRecord::new(recipient, wrapped_cek, cipher.iv().to_vec());
    Ok((cipher, key))
}

impl KeyRecord {
    fn new(recipient: &RecipientKey<'_>, wrapped_cek: Vec<u8>, iv: Vec<u8>) -> Self {
        Self {
            wrapped_cek,
            iv,
            sid: Some(recipient.key_id)
                .filter(|sid| !sid.is_empty())
                .map(str::to_owned),
            fingerprint: recipient.key.fingerprint(),
        }
    }

    /// The headers exactly as the server has always set them.
    fn s3_headers(&self, scheme: Scheme, plaintext_len: u64) -> S3Headers {
        S3Headers::new(scheme, &self.wrapped_cek, &self.iv, Some(plaintext_len))
            .with_key(self.sid.as_deref(), self.fingerprint)
    }
}

#[cfg(test)]
mod tests;
