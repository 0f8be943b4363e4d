//! SRTP protection profiles (crypto suites) and their parameters.

use core::fmt;
use core::str::FromStr;

/// An SRTP protection profile, named in SDES (`a=crypto`) by its RFC name.
///
/// `Display` and `FromStr` use the SDES names (RFC 4568 §6.2, RFC 6188 §3, RFC 7714 §12).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SrtpProfile {
    /// `AES_CM_128_HMAC_SHA1_80`: AES-128 counter mode, 80-bit HMAC-SHA1 tag (RFC 3711, 4568).
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32`: as `_80` but a 32-bit tag on SRTP (SRTCP keeps 80 bits).
    AesCm128HmacSha1_32,
    /// `AES_256_CM_HMAC_SHA1_80`: AES-256 counter mode, 80-bit HMAC-SHA1 tag (RFC 6188).
    Aes256CmHmacSha1_80,
    /// `AES_256_CM_HMAC_SHA1_32`: as `AES_256_CM_HMAC_SHA1_80` with a 32-bit SRTP tag.
    Aes256CmHmacSha1_32,
    /// `AEAD_AES_128_GCM`: AES-128-GCM with a 128-bit tag (RFC 7714).
    AeadAes128Gcm,
    /// `AEAD_AES_256_GCM`: AES-256-GCM with a 128-bit tag (RFC 7714).
    AeadAes256Gcm,
}

impl SrtpProfile {
    /// Every supported profile, strongest first.
    pub const ALL: [Self; 6] = [
        Self::AeadAes256Gcm,
        Self::AeadAes128Gcm,
        Self::Aes256CmHmacSha1_80,
        Self::AesCm128HmacSha1_80,
        Self::Aes256CmHmacSha1_32,
        Self::AesCm128HmacSha1_32,
    ];

    /// The RFC name used in SDES `a=crypto` lines.
    pub const fn name(self) -> &'static str {
        match self {
            Self::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Self::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Self::Aes256CmHmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            Self::Aes256CmHmacSha1_32 => "AES_256_CM_HMAC_SHA1_32",
            Self::AeadAes128Gcm => "AEAD_AES_128_GCM",
            Self::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    /// Master key length in bytes.
    pub const fn master_key_len(self) -> usize {
        match self {
            Self::AesCm128HmacSha1_80 | Self::AesCm128HmacSha1_32 | Self::AeadAes128Gcm => 16,
            Self::Aes256CmHmacSha1_80 | Self::Aes256CmHmacSha1_32 | Self::AeadAes256Gcm => 32,
        }
    }

    /// Master salt length in bytes (112 bits for counter mode, 96 bits for GCM).
    pub const fn master_salt_len(self) -> usize {
        if self.is_aead() { 12 } else { 14 }
    }

    /// Whether this is an AEAD (GCM) profile.
    pub const fn is_aead(self) -> bool {
        matches!(self, Self::AeadAes128Gcm | Self::AeadAes256Gcm)
    }

    /// Authentication tag length on SRTP packets, in bytes.
    pub const fn rtp_tag_len(self) -> usize {
        match self {
            Self::AesCm128HmacSha1_80 | Self::Aes256CmHmacSha1_80 => 10,
            Self::AesCm128HmacSha1_32 | Self::Aes256CmHmacSha1_32 => 4,
            Self::AeadAes128Gcm | Self::AeadAes256Gcm => 16,
        }
    }

    /// Authentication tag length that we *send* on SRTCP packets, in bytes.
    ///
    /// RFC 3711 §5.2 forbids HMAC-SHA1 tags shorter than 80 bits on SRTCP, so the `_32` profiles
    /// use 10 bytes here (as libsrtp does). On receive we also accept 4-byte tags on `_32`
    /// streams, which baresip and Asterisk send.
    pub const fn rtcp_tag_len(self) -> usize {
        if self.is_aead() { 16 } else { 10 }
    }

    /// Bytes [`crate::OutboundSession::protect_rtp`] appends to an RTP packet.
    pub const fn rtp_trailer_len(self) -> usize {
        self.rtp_tag_len()
    }

    /// Bytes [`crate::OutboundSession::protect_rtcp`] appends to an RTCP packet (tag plus the
    /// 4-byte E-flag/SRTCP-index word).
    pub const fn rtcp_trailer_len(self) -> usize {
        self.rtcp_tag_len() + 4
    }

    /// The DTLS-SRTP protection profile identifier (RFC 5764 §4.1.2, RFC 7714 §14.2), if the
    /// profile has one.
    pub const fn dtls_id(self) -> Option<u16> {
        match self {
            Self::AesCm128HmacSha1_80 => Some(0x0001),
            Self::AesCm128HmacSha1_32 => Some(0x0002),
            Self::AeadAes128Gcm => Some(0x0007),
            Self::AeadAes256Gcm => Some(0x0008),
            Self::Aes256CmHmacSha1_80 | Self::Aes256CmHmacSha1_32 => None,
        }
    }

    /// The profile with DTLS-SRTP identifier `id`, if supported.
    pub fn from_dtls_id(id: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.dtls_id() == Some(id))
    }
}

/// The largest trailer any profile appends to a packet: what a buffer needs beyond the packet
/// for [`crate::OutboundSession::protect_rtp`] and [`crate::OutboundSession::protect_rtcp`] to
/// succeed whatever the profile (like libsrtp's `SRTP_MAX_TRAILER_LEN`).
pub const MAX_TRAILER_LEN: usize = 20;

impl fmt::Display for SrtpProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The string did not name a supported SRTP profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported SRTP crypto suite")]
pub struct UnknownProfile;

impl FromStr for SrtpProfile {
    type Err = UnknownProfile;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(p) = Self::ALL.into_iter().find(|p| p.name() == s) {
            return Ok(p);
        }
        // FreeSWITCH and some SBCs write the AES-256 suites with the key size after "CM".
        match s {
            "AES_CM_256_HMAC_SHA1_80" => Ok(Self::Aes256CmHmacSha1_80),
            "AES_CM_256_HMAC_SHA1_32" => Ok(Self::Aes256CmHmacSha1_32),
            _ => Err(UnknownProfile),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in SrtpProfile::ALL {
            assert_eq!(p.to_string().parse::<SrtpProfile>(), Ok(p));
            assert!(p.rtp_trailer_len() <= MAX_TRAILER_LEN);
            assert!(p.rtcp_trailer_len() <= MAX_TRAILER_LEN);
        }
        assert_eq!(
            "AES_CM_256_HMAC_SHA1_80".parse(),
            Ok(SrtpProfile::Aes256CmHmacSha1_80)
        );
        assert!("AES_192_CM_HMAC_SHA1_80".parse::<SrtpProfile>().is_err());
        assert!("aes_cm_128_hmac_sha1_80".parse::<SrtpProfile>().is_err());
    }

    #[test]
    fn dtls_ids() {
        assert_eq!(
            SrtpProfile::from_dtls_id(1),
            Some(SrtpProfile::AesCm128HmacSha1_80)
        );
        assert_eq!(
            SrtpProfile::from_dtls_id(8),
            Some(SrtpProfile::AeadAes256Gcm)
        );
        assert_eq!(SrtpProfile::from_dtls_id(3), None);
    }
}
