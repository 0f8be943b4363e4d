//! Envelope encryption for mediaseal: the customer-held-key formats of the seeds and the native
//! chunked format.
//!
//! Every object gets a fresh 256-bit content-encryption key (CEK). The content is encrypted with
//! AES-256; the CEK is wrapped with the recipient's RSA public key, so only the private-key holder
//! can read it. Four formats share that shape:
//!
//! | [`Format`] | content | CEK wrap | key material travels as |
//! |---|---|---|---|
//! | `rsa-aes` (voice) | AES-256-GCM, one tag | RSA-OAEP-SHA256 | [`EncryptionDetails`] JSON |
//! | `s3-cbc` (video) | AES-256-CBC, PKCS#7 | RSA PKCS#1 v1.5 | [`S3Headers`] |
//! | `s3-gcm` (transcripts) | AES-256-GCM, one tag | RSA-OAEP-SHA256 | [`S3Headers`] |
//! | `native` | AES-256-GCM segments | RSA-OAEP-SHA256, 1..16 recipients | its own header |
//!
//! The cores are sans-IO: bytes in, bytes out, no files, sockets or threads, so an async server
//! drives them from a request body or an object-store stream.
//!
//! - [`Sealer`] seals one object in any [`Format`]: `update` appends ciphertext (the native
//!   header first), `finish` appends the tail and returns a [`Receipt`] with what the object
//!   needs beside it (the `encryption_details`, the S3 headers, or nothing for native). It is
//!   the one place in the workspace that dispatches on the format.
//! - [`UnlockedHeader`] unwraps a native object's key (one RSA operation), and [`NativeOpener`]
//!   then opens the object fed in pieces of any size, releasing each segment only once it
//!   authenticates, or opens just the segments that cover a plaintext byte range.
//!
//! Around them, synchronous drivers over `Read`/`Write` ([`Sealer::seal_reader`],
//! [`native::open_stream`], [`open_to_path`], …) work in bounded memory whatever the object size,
//! read regular files sequentially in large reads so that cold files stream off the disk, and
//! never hand out plaintext they have not authenticated where the format allows authentication
//! at all. How to use them is in `docs/FORMAT.md`, "Using the library".

#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

mod cek;
mod der;
mod details;
mod envelope;
mod error;
mod format;
pub mod gcm;
mod keys;
pub mod native;
mod output;
mod pump;
mod sealer;

pub use cek::{CEK_LEN, ContentKey, UnwrapError, WrapError};
pub use details::{
    CBC_IV_LEN, CEK_ALG_CBC, CEK_ALG_GCM, DetailsError, EncryptionDetails, Envelope,
    HEADER_KEY_FINGERPRINT, HEADER_KEY_SID, S3Headers, Scheme, WRAP_ALG_OAEP, envelope_from_raw,
    parse_details,
};
pub use envelope::{
    CbcSealer, GcmSealer, STREAM_CHUNK, Sealed, open_seekable_to_writer, open_to_path, seal_stream,
    spool_ciphertext, unwrap_envelope_key,
};
pub use error::{DecryptError, EncryptError};
pub use format::{Format, UnknownFormat};
pub use keys::{Fingerprint, KeyError, MAX_RSA_BITS, MIN_RSA_BITS, PrivateKey, PublicKey};
pub use native::{NativeOpener, RecipientKey, UnlockedHeader};
pub use output::AtomicFile;
pub use sealer::{Receipt, ReceiptDetails, Sealer};

/// Hooks for the fuzz targets (`fuzz/fuzz_targets/`); not part of the stable API.
#[doc(hidden)]
pub mod fuzzing {
    use crate::cek::ContentKey;
    use crate::details::{Envelope, Scheme};
    use crate::error::DecryptError;
    use crate::keys::PrivateKey;
    use crate::native::{Header, SegmentKeys, open_body, unlock};

    /// Parses a native header from arbitrary bytes; whatever parses must serialise back to the
    /// same bytes (the encoding is canonical).
    pub fn parse_native_header(data: &[u8]) {
        if let Ok((header, len)) = Header::parse(data) {
            let again = header.to_bytes();
            assert_eq!(
                again.ok().as_deref(),
                data.get(..len),
                "a parsed header did not serialise back to its bytes"
            );
        }
        let streamed = Header::read_from(&mut &data[..]);
        assert_eq!(
            streamed.is_ok(),
            Header::parse(data).is_ok(),
            "read_from and parse disagree"
        );
    }

    /// A native file's header, unlocked once, so body decryption can be fuzzed without an RSA
    /// operation per input.
    pub struct UnlockedNative(SegmentKeys);

    impl core::fmt::Debug for UnlockedNative {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str("UnlockedNative")
        }
    }

    impl UnlockedNative {
        /// Reads the header at the start of `file` and unlocks it with `key`.
        pub fn new(file: &[u8], key: &PrivateKey) -> Option<Self> {
            let (header, len) = Header::parse(file).ok()?;
            unlock(&header, file.get(..len)?, key).ok().map(Self)
        }

        /// Opens `body` as the segments after that header, on `threads` threads.
        pub fn open_body(&self, body: &[u8], threads: usize) -> Result<Vec<u8>, DecryptError> {
            open_body(body, Vec::new(), &self.0, threads).map(|(_, out)| out)
        }
    }

    /// Opens `data` as a single-tag GCM (`gcm == true`) or CBC body under a known key, without
    /// the RSA unwrap.
    pub fn open_envelope_body(
        gcm: bool,
        cek: [u8; 32],
        iv: &[u8],
        plaintext_len: Option<u64>,
        data: &[u8],
    ) -> Result<Vec<u8>, DecryptError> {
        let envelope = Envelope {
            scheme: if gcm {
                Scheme::GcmOaep
            } else {
                Scheme::CbcPkcs1
            },
            wrapped_cek: Vec::new(),
            iv: iv.to_vec(),
            key_sid: None,
            plaintext_len,
            key_fingerprint: None,
        };
        crate::envelope::open_into(data, Vec::new(), &envelope, &ContentKey::from_bytes(cek))
    }
}
