//! Sans-IO SRTP and SRTCP (RFC 3711, RFC 6188, RFC 7714) with SDES keying (RFC 4568).
//!
//! No sockets, no clocks, no threads: callers hand in packet buffers and get them back
//! protected or unprotected, in place.
//!
//! - [`SrtpProfile`]: the suites `AES_CM_128_HMAC_SHA1_80`, `AES_CM_128_HMAC_SHA1_32`,
//!   `AES_256_CM_HMAC_SHA1_80/_32`, `AEAD_AES_128_GCM` and `AEAD_AES_256_GCM`.
//! - [`MasterKey`]: master key + salt for one direction (from SDES or a DTLS-SRTP exporter).
//! - [`OutboundSession`] / [`InboundSession`]: protect / unprotect for any number of SSRCs,
//!   with RFC 3711 Appendix A ROC estimation and replay windows; state advances only after a
//!   packet authenticates.
//! - [`sdes`] and [`negotiate`]: `a=crypto` parsing/formatting and the offer/answer policy.
//!
//! Crypto is AWS-LC: AES-CTR and HMAC-SHA1 through the `mediaseal-lc` wrappers (key schedule
//! and HMAC pad states computed once per session), AES-GCM through `aws-lc-rs`.
//!
//! ```
//! use mediaseal_srtp::{InboundSession, MasterKey, OutboundSession, SessionConfig, SrtpProfile};
//!
//! let key = MasterKey::generate(SrtpProfile::AesCm128HmacSha1_80)?;
//! let mut tx = OutboundSession::new(&key, &SessionConfig::default())?;
//! let mut rx = InboundSession::new(&key, &SessionConfig::default())?;
//!
//! // A 12-byte RTP header and 160 bytes of G.711, plus room for the trailer.
//! let mut buf = [0u8; 172 + mediaseal_srtp::MAX_TRAILER_LEN];
//! buf[0] = 0x80;
//! let srtp_len = tx.protect_rtp(&mut buf, 172)?;
//! let rtp_len = rx.unprotect_rtp(&mut buf[..srtp_len])?;
//! assert_eq!(rtp_len, 172);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

mod cipher;
mod key;
pub mod negotiate;
mod packet;
mod profile;
mod replay;
pub mod sdes;
mod session;

pub use key::{KeyError, MasterKey};
pub use packet::{MalformedPacket, is_rtcp};
pub use profile::{MAX_TRAILER_LEN, SrtpProfile, UnknownProfile};
pub use session::{
    InboundSession, MAX_REPLAY_WINDOW, MIN_REPLAY_WINDOW, OutboundSession, ProtectError,
    SessionConfig, SessionError, UnprotectError,
};

/// Hooks for test vectors and fuzzing; not a stable API.
#[doc(hidden)]
pub mod internal {
    use crate::cipher::{Cipher, Label, derive};
    use crate::{
        InboundSession, MasterKey, OutboundSession, SessionConfig, SessionError, SrtpProfile,
    };

    /// Session keys given directly (RFC 7714's vectors skip the KDF).
    #[derive(Debug, Clone, Copy)]
    pub struct RawKeys<'a> {
        /// Encryption key.
        pub enc: &'a [u8],
        /// Authentication key (empty for GCM).
        pub auth: &'a [u8],
        /// Session salt.
        pub salt: &'a [u8],
    }

    fn ciphers(
        profile: SrtpProfile,
        rtp: RawKeys<'_>,
        rtcp: RawKeys<'_>,
    ) -> Result<(Cipher, Cipher), SessionError> {
        let r = Cipher::from_session_keys(profile, rtp.enc, rtp.auth, rtp.salt)
            .map_err(|_| SessionError::Crypto)?;
        let c = Cipher::from_session_keys(profile, rtcp.enc, rtcp.auth, rtcp.salt)
            .map_err(|_| SessionError::Crypto)?;
        Ok((r, c))
    }

    /// An outbound session from session keys.
    pub fn outbound_from_session_keys(
        profile: SrtpProfile,
        rtp: RawKeys<'_>,
        rtcp: RawKeys<'_>,
        config: &SessionConfig,
    ) -> Result<OutboundSession, SessionError> {
        let (r, c) = ciphers(profile, rtp, rtcp)?;
        Ok(OutboundSession::from_ciphers(profile, r, c, config))
    }

    /// An inbound session from session keys.
    pub fn inbound_from_session_keys(
        profile: SrtpProfile,
        rtp: RawKeys<'_>,
        rtcp: RawKeys<'_>,
        config: &SessionConfig,
    ) -> Result<InboundSession, SessionError> {
        let (r, c) = ciphers(profile, rtp, rtcp)?;
        Ok(InboundSession::from_ciphers(profile, r, c, config))
    }

    /// The RFC 3711 §4.3 KDF: `out` = PRF output for `label` (0..=5).
    pub fn derive_session_key(master: &MasterKey, label: u8, out: &mut [u8]) {
        let label = match label {
            0 => Label::RtpEncryption,
            1 => Label::RtpAuth,
            2 => Label::RtpSalt,
            3 => Label::RtcpEncryption,
            4 => Label::RtcpAuth,
            _ => Label::RtcpSalt,
        };
        if let Ok(prf) = mediaseal_lc::ctr::AesCtr::new(master.key()) {
            derive(&prf, master, label, out);
        }
    }
}
