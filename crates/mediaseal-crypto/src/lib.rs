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
//! Everything here is synchronous and generic over `Read`/`Write`, works in bounded memory
//! whatever the object size, and never hands out plaintext it has not authenticated where the
//! format allows authentication at all. The sans-IO sealers ([`GcmSealer`], [`CbcSealer`],
//! [`native::NativeSealer`]) let an async server drive the same code from a request body.

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

pub use cek::{CEK_LEN, ContentKey, UnwrapError, WrapError};
pub use details::{
    CBC_IV_LEN, CEK_ALG_CBC, CEK_ALG_GCM, DetailsError, HEADER_KEY_FINGERPRINT, HEADER_KEY_SID, EncryptionDetails, Envelope, S3Headers, Scheme,
    WRAP_ALG_OAEP, envelope_from_raw, parse_details,
};
pub use envelope::{
    CbcSealer, GcmSealer, STREAM_CHUNK, Sealed, open_seekable_to_writer, open_to_path, seal_stream,
    spool_ciphertext, unwrap_envelope_key,
};
pub use error::{DecryptError, EncryptError};
pub use format::{Format, UnknownFormat};
pub use keys::{Fingerprint, KeyError, MAX_RSA_BITS, MIN_RSA_BITS, PrivateKey, PublicKey};
pub use output::AtomicFile;

/// Hooks for the fuzz targets; not part of the stable API.
#[doc(hidden)]
pub mod fuzzing {
    /// Parses a native header from arbitrary bytes.
    pub fn parse_native_header(data: &[u8]) {
        if let Ok((header, len)) = crate::native::Header::parse(data) {
            // Whatever parses must serialise back to the same bytes.
            let again = header.to_bytes();
            assert_eq!(again.ok().as_deref(), data.get(..len));
        }
    }
}
