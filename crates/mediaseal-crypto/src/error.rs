//! One error type per operation: sealing and opening.

use std::io;

use crate::keys::Fingerprint;
use crate::native::HeaderError;

/// Why sealing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptError {
    /// Reading the input or writing the output failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// No recipient was given.
    #[error("at least one public key is needed to encrypt to")]
    NoRecipients,
    /// More recipients than the format carries.
    #[error("{given} public keys given; {format} carries at most {max}")]
    TooManyRecipients {
        /// How many were given.
        given: usize,
        /// The most the format allows.
        max: usize,
        /// The format's name.
        format: &'static str,
    },
    /// A recipient's key SID is not printable ASCII of at most 64 characters.
    #[error("the key SID '{0}' is not printable ASCII of at most 64 characters")]
    BadKeySid(String),
    /// The segment size is not a power of two in the supported range.
    #[error("segment size {0} is not a power of two between 4 KiB and 16 MiB")]
    BadSegmentSize(usize),
    /// Wrapping the content key failed.
    #[error("the content key could not be wrapped to the public key")]
    Wrap,
    /// The cipher failed (allocation failure inside AWS-LC).
    #[error("the cipher failed unexpectedly")]
    Crypto,
}

/// Why opening failed.
///
/// Content failures are deliberately coarse: whether a tag, a padding byte or a length was wrong is
/// never reported, so an attacker learns nothing from the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// Reading the input or writing the output failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The native header could not be read.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The private key given is not one the object was sealed for.
    #[error("this key does not match: the object was sealed for {}, but the private key given has fingerprint {given} ({detail})", sealed_for_text(.sealed_for))]
    WrongKey {
        /// SIDs and/or fingerprints of the keys the object was sealed for.
        sealed_for: Vec<String>,
        /// Fingerprint of the key given.
        given: Fingerprint,
        /// What exactly did not fit.
        detail: String,
    },
    /// The ciphertext or the details were modified, truncated or reordered.
    #[error(
        "authentication failed: the file was modified, truncated or reordered, or does not belong to these encryption details; no output was written"
    )]
    AuthenticationFailed,
    /// CBC decryption produced invalid padding or length. CBC carries no tag, so this is all that
    /// can be said.
    #[error(
        "decryption failed: the key, the IV or the file is wrong (AES-CBC carries no integrity check, so which one cannot be told); no output was written"
    )]
    DecryptionFailed,
    /// The byte range asked for lies outside the plaintext.
    #[error("the range starting at byte {start} is outside the {len}-byte plaintext")]
    RangeOutOfBounds {
        /// First byte asked for.
        start: u64,
        /// Plaintext length.
        len: u64,
    },
}

fn sealed_for_text(keys: &[String]) -> String {
    match keys {
        [] => "an unnamed public key".to_owned(),
        [one] => format!("public key {one}"),
        many => format!("public keys {}", many.join(", ")),
    }
}
