//! The secure-media policy of a SIP Domain (seed 004, "Secure Media"), as a pure function.
//!
//! Inputs: whether the domain is `Secure`, the transport the INVITE **arrived on** (from the IO
//! shell, never from the Via header), and the SDP offer. Output: the audio section and SDES
//! line to answer, or a [`RejectReason`] that carries the final status, the `Warning` code and
//! text, and a stable label for metrics.
//!
//! | domain | case | status | Warning |
//! |---|---|---|---|
//! | secure | INVITE over UDP or TCP | 403 | 399 "Secure media requires SIP over TLS …" |
//! | any | no SDP offer in the INVITE (late offer) | 488 | 399 |
//! | any | no audio section with a non-zero port | 488 | 304 |
//! | secure | audio is `RTP/AVP`/`RTP/AVPF` | 488 | 302 "Incompatible transport protocol …" |
//! | secure | audio is `UDP/TLS/RTP/SAVP[F]` (DTLS-SRTP) | 488 | 302 |
//! | any | another transport protocol | 488 | 302 |
//! | secure | `RTP/SAVP` without `a=crypto` | 488 | 399 |
//! | secure | no line with `AES_CM_128_HMAC_SHA1_80` or `_32` | 488 | 399 |
//! | secure | the only such lines carry an MKI | 488 | 399 |
//! | secure | … more than one key | 488 | 399 |
//! | secure | … a session parameter (`UNENCRYPTED_SRTP`, `UNENCRYPTED_SRTCP`, `UNAUTHENTICATED_SRTP`, `FEC_ORDER`, `FEC_KEY`, `WSH`, `KDR`, any other) | 488 | 399 |
//! | secure | … a key lifetime below 2^20 packets | 488 | 399 |
//! | secure | every `a=crypto` line is malformed | 488 | 399 |
//! | not secure | `RTP/SAVP[F]`, DTLS-SRTP, or `a=crypto` in `RTP/AVP` | 488 | 302 |
//! | secure | TLS, `RTP/SAVP`, an acceptable `_80`/`_32` line | accept | |
//! | not secure | `RTP/AVP` without `a=crypto`, any transport | accept | |
//!
//! Decisions beyond the seed:
//! - Each `a=crypto` line is judged on its own, **in the offerer's order of preference**
//!   (RFC 4568 §7.1.1 lets the answerer pick any acceptable line); the first acceptable line
//!   wins, so `_80 with MKI` followed by a clean `_32` answers `_32`. When no line is acceptable
//!   the reason is the first problem found on a line with a supported suite, else "no supported
//!   suite", else "malformed".
//! - Key lifetimes (`|2^31`) are accepted from 2^20 packets up (Asterisk's floor). A shorter
//!   lifetime would expire within a four-hour call (720,000 packets at 50 per second) and we
//!   never re-key, so it is refused rather than silently overrun.
//! - Session parameters are refused, `WSH` included (stricter than
//!   [`mediaseal_srtp::negotiate`], which tolerates `WSH`): the seed allows none, and Asterisk
//!   refuses them all.
//! - With several audio sections the first acceptable one is answered and the others are
//!   declined (port 0), so an offer that duplicates its audio as `RTP/SAVP` and `RTP/AVP`
//!   works on both kinds of domain. The reason reported is that of the first audio section.
//! - `a=crypto` inside `RTP/AVP` (opportunistic SRTP, RFC 8643) is refused on a non-secure
//!   domain, as the seed says SRTP offers are.

use core::fmt;

use mediaseal_srtp::SrtpProfile;
use mediaseal_srtp::negotiate::{self, NegotiationError};
use mediaseal_srtp::sdes::{CryptoAttribute, CryptoSuite};

use crate::message::{StatusCode, Transport, Warning};
use crate::sdp::{MediaDescription, SessionDescription};

/// The suites a secure domain accepts.
pub const SECURE_SUITES: [SrtpProfile; 2] = [
    SrtpProfile::AesCm128HmacSha1_80,
    SrtpProfile::AesCm128HmacSha1_32,
];

/// The shortest SDES key lifetime accepted, in packets (2^20).
pub const MIN_KEY_LIFETIME: u64 = 1 << 20;

/// An accepted offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedOffer {
    /// The audio section to answer (pass it to [`crate::sdp::audio_answer`]).
    pub media_index: usize,
    /// For a secure domain: the chosen suite and the peer's `a=crypto` line.
    pub srtp: Option<ChosenCrypto>,
}

/// The SDES line chosen from the offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChosenCrypto {
    /// The suite.
    pub profile: SrtpProfile,
    /// The peer's line (its key is the peer's sending key). `Debug` redacts the key.
    pub offered: CryptoAttribute,
}

impl ChosenCrypto {
    /// Generates our key and the answer line (same tag and suite) through
    /// [`mediaseal_srtp::negotiate::answer`].
    pub fn answer(&self) -> Result<negotiate::Answer, NegotiationError> {
        negotiate::answer(std::slice::from_ref(&self.offered), &[self.profile])
    }
}

/// Why an offer was refused. Every variant is a metric label ([`Self::label`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectReason {
    /// Secure domain, INVITE not received over TLS.
    InsecureSignalling {
        /// The transport it arrived on.
        transport: Transport,
    },
    /// The INVITE has no SDP offer.
    NoOffer,
    /// No audio section with a non-zero port.
    NoAudio,
    /// Secure domain, plain RTP offered.
    PlainRtpOnSecureDomain {
        /// The offered protocol.
        protocol: String,
    },
    /// DTLS-SRTP offered; SIP calls use SDES.
    DtlsSrtpNotSupported,
    /// A transport protocol that is neither RTP nor SRTP.
    UnsupportedMediaProtocol {
        /// The offered protocol.
        protocol: String,
    },
    /// `RTP/SAVP` without any `a=crypto` line.
    NoCryptoAttribute,
    /// Every `a=crypto` line is malformed.
    MalformedCrypto,
    /// No line offers `AES_CM_128_HMAC_SHA1_80` or `_32`.
    UnsupportedCryptoSuite {
        /// The suites offered, in order.
        offered: Vec<String>,
    },
    /// The acceptable suites carry an MKI.
    MkiNotSupported,
    /// The acceptable suites carry more than one key.
    MultipleKeys,
    /// The acceptable suites carry a session parameter.
    SessionParameter {
        /// The first offending parameter, as written.
        parameter: String,
    },
    /// The acceptable suites carry a key lifetime below [`MIN_KEY_LIFETIME`].
    KeyLifetimeTooShort {
        /// The lifetime in packets.
        packets: u64,
    },
    /// Non-secure domain, SRTP (or `a=crypto`) offered.
    SrtpOnNonSecureDomain,
}

impl RejectReason {
    /// The final response status: 403 for signalling, 488 for media.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InsecureSignalling { .. } => StatusCode::FORBIDDEN,
            _ => StatusCode::NOT_ACCEPTABLE_HERE,
        }
    }

    /// The `Warning` code (RFC 3261 §20.43).
    pub fn warn_code(&self) -> u16 {
        match self {
            Self::NoAudio => 304,
            Self::PlainRtpOnSecureDomain { .. }
            | Self::DtlsSrtpNotSupported
            | Self::UnsupportedMediaProtocol { .. }
            | Self::SrtpOnNonSecureDomain => 302,
            _ => 399,
        }
    }

    /// A stable label for metrics (`sip_policy_rejections_total{reason=…}`).
    pub fn label(&self) -> &'static str {
        match self {
            Self::InsecureSignalling { .. } => "insecure_signalling",
            Self::NoOffer => "no_offer",
            Self::NoAudio => "no_audio",
            Self::PlainRtpOnSecureDomain { .. } => "plain_rtp_on_secure_domain",
            Self::DtlsSrtpNotSupported => "dtls_srtp_not_supported",
            Self::UnsupportedMediaProtocol { .. } => "unsupported_media_protocol",
            Self::NoCryptoAttribute => "no_crypto_attribute",
            Self::MalformedCrypto => "malformed_crypto",
            Self::UnsupportedCryptoSuite { .. } => "unsupported_crypto_suite",
            Self::MkiNotSupported => "mki_not_supported",
            Self::MultipleKeys => "multiple_keys",
            Self::SessionParameter { .. } => "session_parameter",
            Self::KeyLifetimeTooShort { .. } => "key_lifetime_too_short",
            Self::SrtpOnNonSecureDomain => "srtp_on_non_secure_domain",
        }
    }

    /// The `Warning` header value with `agent` (our host name) as warn-agent.
    pub fn warning(&self, agent: &str) -> Warning {
        Warning::new(self.warn_code(), agent, &self.to_string())
    }

    /// Every label, for pre-registering metrics.
    pub const LABELS: [&'static str; 14] = [
        "insecure_signalling",
        "no_offer",
        "no_audio",
        "plain_rtp_on_secure_domain",
        "dtls_srtp_not_supported",
        "unsupported_media_protocol",
        "no_crypto_attribute",
        "malformed_crypto",
        "unsupported_crypto_suite",
        "mki_not_supported",
        "multiple_keys",
        "session_parameter",
        "key_lifetime_too_short",
        "srtp_on_non_secure_domain",
    ];
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InsecureSignalling { transport } => write!(
                f,
                "Secure media requires SIP over TLS; this request arrived over {transport}"
            ),
            Self::NoOffer => f.write_str("INVITE without an SDP offer is not supported"),
            Self::NoAudio => f.write_str("Media type not available: no active audio stream offered"),
            Self::PlainRtpOnSecureDomain { protocol } => write!(
                f,
                "Incompatible transport protocol: secure media requires RTP/SAVP with SDES, offered {protocol}"
            ),
            Self::DtlsSrtpNotSupported => f.write_str(
                "Incompatible transport protocol: DTLS-SRTP is not supported, offer RTP/SAVP with a=crypto",
            ),
            Self::UnsupportedMediaProtocol { protocol } => {
                write!(f, "Incompatible transport protocol: {protocol} is not supported")
            }
            Self::NoCryptoAttribute => f.write_str("RTP/SAVP offered without an a=crypto attribute"),
            Self::MalformedCrypto => f.write_str("Malformed a=crypto attribute"),
            Self::UnsupportedCryptoSuite { offered } => write!(
                f,
                "No supported SRTP crypto suite (offered {}; supported AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32)",
                offered.join(", ")
            ),
            Self::MkiNotSupported => f.write_str("SRTP master key identifier (MKI) is not supported"),
            Self::MultipleKeys => f.write_str("More than one SRTP master key per crypto attribute is not supported"),
            Self::SessionParameter { parameter } => {
                let name = parameter.split('=').next().unwrap_or(parameter);
                write!(f, "SDES session parameter {name} is not supported")
            }
            Self::KeyLifetimeTooShort { packets } => write!(
                f,
                "SRTP key lifetime of {packets} packets is below the minimum of 2^20"
            ),
            Self::SrtpOnNonSecureDomain => f.write_str(
                "Incompatible transport protocol: secure media is disabled for this domain, offer RTP/AVP without a=crypto",
            ),
        }
    }
}

/// Applies the policy. `offer` is `None` for an INVITE without a body.
pub fn evaluate_offer(
    secure: bool,
    transport: Transport,
    offer: Option<&SessionDescription>,
) -> Result<AcceptedOffer, RejectReason> {
    if secure && transport != Transport::Tls {
        return Err(RejectReason::InsecureSignalling { transport });
    }
    let offer = offer.ok_or(RejectReason::NoOffer)?;
    let mut first_reason = None;
    for index in offer.active_audio() {
        let Some(media) = offer.media.get(index) else {
            continue;
        };
        let verdict = if secure {
            secure_media(media).map(Some)
        } else {
            plain_media(media).map(|()| None)
        };
        match verdict {
            Ok(srtp) => {
                return Ok(AcceptedOffer {
                    media_index: index,
                    srtp,
                });
            }
            Err(reason) => {
                first_reason.get_or_insert(reason);
            }
        }
    }
    Err(first_reason.unwrap_or(RejectReason::NoAudio))
}

fn plain_media(media: &MediaDescription) -> Result<(), RejectReason> {
    if media.is_savp() || media.is_dtls_srtp() {
        return Err(RejectReason::SrtpOnNonSecureDomain);
    }
    if !media.is_avp() {
        return Err(RejectReason::UnsupportedMediaProtocol {
            protocol: media.protocol.clone(),
        });
    }
    if media.attribute("crypto").is_some() {
        return Err(RejectReason::SrtpOnNonSecureDomain);
    }
    Ok(())
}

fn secure_media(media: &MediaDescription) -> Result<ChosenCrypto, RejectReason> {
    if media.is_dtls_srtp() {
        return Err(RejectReason::DtlsSrtpNotSupported);
    }
    if media.is_avp() {
        return Err(RejectReason::PlainRtpOnSecureDomain {
            protocol: media.protocol.clone(),
        });
    }
    if !media.is_savp() {
        return Err(RejectReason::UnsupportedMediaProtocol {
            protocol: media.protocol.clone(),
        });
    }
    let lines = media.crypto();
    if lines.is_empty() {
        return Err(RejectReason::NoCryptoAttribute);
    }
    let mut line_problem = None;
    let mut offered = Vec::new();
    for line in lines {
        let Ok(attr) = line else { continue };
        offered.push(attr.suite.to_string());
        let profile = match &attr.suite {
            CryptoSuite::Known(p) if SECURE_SUITES.contains(p) => *p,
            _ => continue,
        };
        match judge_line(&attr) {
            Ok(()) => {
                return Ok(ChosenCrypto {
                    profile,
                    offered: attr,
                });
            }
            Err(reason) => {
                line_problem.get_or_insert(reason);
            }
        }
    }
    Err(line_problem.unwrap_or(if offered.is_empty() {
        RejectReason::MalformedCrypto
    } else {
        RejectReason::UnsupportedCryptoSuite { offered }
    }))
}

fn judge_line(attr: &CryptoAttribute) -> Result<(), RejectReason> {
    let [key] = attr.keys.as_slice() else {
        return Err(RejectReason::MultipleKeys);
    };
    if key.mki.is_some() {
        return Err(RejectReason::MkiNotSupported);
    }
    if let Some(p) = attr.session_params.first() {
        return Err(RejectReason::SessionParameter {
            parameter: p.clone(),
        });
    }
    if let Some(lifetime) = key.lifetime
        && lifetime.packets() < MIN_KEY_LIFETIME
    {
        return Err(RejectReason::KeyLifetimeTooShort {
            packets: lifetime.packets(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";

    fn offer(proto: &str, crypto: &[&str]) -> SessionDescription {
        let mut s = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 {proto} 0\r\n"
        );
        for c in crypto {
            s.push_str(&format!("a=crypto:{}\r\n", c.replace("KEY", KEY)));
        }
        SessionDescription::parse(s.as_bytes()).unwrap()
    }

    fn secure(sd: &SessionDescription) -> Result<AcceptedOffer, RejectReason> {
        evaluate_offer(true, Transport::Tls, Some(sd))
    }

    #[test]
    fn secure_accepts_in_the_offerers_order() {
        let sd = offer(
            "RTP/SAVP",
            &[
                "1 AES_CM_128_HMAC_SHA1_32 inline:KEY",
                "2 AES_CM_128_HMAC_SHA1_80 inline:KEY|2^31",
            ],
        );
        let a = secure(&sd).unwrap();
        let c = a.srtp.unwrap();
        assert_eq!(
            (c.profile, c.offered.tag),
            (SrtpProfile::AesCm128HmacSha1_32, 1)
        );
        let answer = c.answer().unwrap();
        assert_eq!(answer.attribute.tag, 1);
        assert_eq!(answer.keys.profile, SrtpProfile::AesCm128HmacSha1_32);
        // A clean later line beats a bad first one.
        let sd = offer(
            "RTP/SAVP",
            &[
                "1 AES_CM_128_HMAC_SHA1_80 inline:KEY|2^20|1:4",
                "2 AES_CM_128_HMAC_SHA1_32 inline:KEY",
            ],
        );
        assert_eq!(secure(&sd).unwrap().srtp.unwrap().offered.tag, 2);
    }

    #[test]
    fn secure_rejections() {
        let cases: Vec<(SessionDescription, &str)> = vec![
            (offer("RTP/AVP", &[]), "plain_rtp_on_secure_domain"),
            (offer("UDP/TLS/RTP/SAVPF", &[]), "dtls_srtp_not_supported"),
            (offer("RTP/SAVP", &[]), "no_crypto_attribute"),
            (offer("RTP/SAVP", &["x junk"]), "malformed_crypto"),
            (
                offer(
                    "RTP/SAVP",
                    &[
                        "1 AEAD_AES_256_GCM inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKis=",
                    ],
                ),
                "unsupported_crypto_suite",
            ),
            (
                offer("RTP/SAVP", &["1 AES_192_CM_HMAC_SHA1_80 inline:KEY"]),
                "unsupported_crypto_suite",
            ),
            (
                offer(
                    "RTP/SAVP",
                    &["1 AES_CM_128_HMAC_SHA1_80 inline:KEY|2^20|1:4"],
                ),
                "mki_not_supported",
            ),
            (
                offer(
                    "RTP/SAVP",
                    &["1 AES_CM_128_HMAC_SHA1_80 inline:KEY UNENCRYPTED_SRTP"],
                ),
                "session_parameter",
            ),
            (
                offer(
                    "RTP/SAVP",
                    &["1 AES_CM_128_HMAC_SHA1_80 inline:KEY WSH=128"],
                ),
                "session_parameter",
            ),
            (
                offer(
                    "RTP/SAVP",
                    &["1 AES_CM_128_HMAC_SHA1_80 inline:KEY;inline:KEY"],
                ),
                "multiple_keys",
            ),
            (
                offer("RTP/SAVP", &["1 AES_CM_128_HMAC_SHA1_80 inline:KEY|2^10"]),
                "key_lifetime_too_short",
            ),
            (offer("udp", &[]), "unsupported_media_protocol"),
        ];
        for (sd, label) in cases {
            let r = secure(&sd).unwrap_err();
            assert_eq!(r.label(), label, "{r}");
            assert_eq!(r.status(), StatusCode::NOT_ACCEPTABLE_HERE);
        }
        let r = secure(&offer("RTP/AVP", &[])).unwrap_err();
        let w = r.warning("edge.example").to_string();
        assert!(
            w.starts_with("302 edge.example \"Incompatible transport protocol"),
            "{w}"
        );
    }

    #[test]
    fn signalling_and_missing_offer() {
        let sd = offer("RTP/SAVP", &["1 AES_CM_128_HMAC_SHA1_80 inline:KEY"]);
        for t in [Transport::Udp, Transport::Tcp] {
            let r = evaluate_offer(true, t, Some(&sd)).unwrap_err();
            assert_eq!(r, RejectReason::InsecureSignalling { transport: t });
            assert_eq!(r.status(), StatusCode::FORBIDDEN);
            assert_eq!(r.warn_code(), 399);
        }
        assert_eq!(secure(&sd).unwrap().media_index, 0);
        assert_eq!(
            evaluate_offer(false, Transport::Udp, None).unwrap_err(),
            RejectReason::NoOffer
        );
        let mut no_audio = offer("RTP/AVP", &[]);
        no_audio.media[0].port = 0;
        assert_eq!(
            evaluate_offer(false, Transport::Udp, Some(&no_audio)).unwrap_err(),
            RejectReason::NoAudio
        );
    }

    #[test]
    fn non_secure_domain() {
        for t in [Transport::Udp, Transport::Tcp, Transport::Tls] {
            let a = evaluate_offer(false, t, Some(&offer("RTP/AVP", &[]))).unwrap();
            assert_eq!(
                a,
                AcceptedOffer {
                    media_index: 0,
                    srtp: None
                }
            );
        }
        for sd in [
            offer("RTP/SAVP", &["1 AES_CM_128_HMAC_SHA1_80 inline:KEY"]),
            offer("RTP/AVP", &["1 AES_CM_128_HMAC_SHA1_80 inline:KEY"]),
            offer("UDP/TLS/RTP/SAVP", &[]),
        ] {
            assert_eq!(
                evaluate_offer(false, Transport::Tls, Some(&sd)).unwrap_err(),
                RejectReason::SrtpOnNonSecureDomain
            );
        }
    }

    #[test]
    fn duplicated_audio_sections_pick_the_matching_one() {
        let text = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n\
             m=audio 4002 RTP/AVP 0\r\n"
        );
        let sd = SessionDescription::parse(text.as_bytes()).unwrap();
        assert_eq!(
            evaluate_offer(true, Transport::Tls, Some(&sd))
                .unwrap()
                .media_index,
            0
        );
        assert_eq!(
            evaluate_offer(false, Transport::Udp, Some(&sd))
                .unwrap()
                .media_index,
            1
        );
    }

    #[test]
    fn labels_are_listed() {
        assert!(RejectReason::LABELS.contains(&RejectReason::NoOffer.label()));
        assert!(RejectReason::LABELS.contains(&RejectReason::SrtpOnNonSecureDomain.label()));
    }
}
