//! The four format names as users type them.

use core::fmt;
use core::str::FromStr;

use crate::details::Scheme;

/// An envelope format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// mediaseal's chunked format: authenticated segments, several recipients, random access.
    Native,
    /// Voice recordings: AES-256-GCM + RSA-OAEP-SHA256, details as JSON.
    RsaAes,
    /// Video recordings and compositions: AES-256-CBC + RSA PKCS#1 v1.5, details as S3 headers.
    S3Cbc,
    /// Transcripts and operator results: AES-256-GCM + RSA-OAEP-SHA256, details as S3 headers.
    S3Gcm,
}

impl Format {
    /// The name used on the command line and in docs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::RsaAes => "rsa-aes",
            Self::S3Cbc => "s3-cbc",
            Self::S3Gcm => "s3-gcm",
        }
    }

    /// The content/wrap scheme of the single-key formats; `None` for native.
    pub fn scheme(self) -> Option<Scheme> {
        match self {
            Self::Native => None,
            Self::RsaAes | Self::S3Gcm => Some(Scheme::GcmOaep),
            Self::S3Cbc => Some(Scheme::CbcPkcs1),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that is not one of the four.
#[derive(Debug, thiserror::Error)]
#[error("unknown format '{0}': choose native, rsa-aes, s3-cbc or s3-gcm")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "native" => Ok(Self::Native),
            "rsa-aes" => Ok(Self::RsaAes),
            "s3-cbc" => Ok(Self::S3Cbc),
            "s3-gcm" => Ok(Self::S3Gcm),
            _ => Err(UnknownFormat(s.to_owned())),
        }
    }
}
