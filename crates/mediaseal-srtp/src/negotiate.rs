//! SDES offer/answer (RFC 4568 §7): choosing a suite and keys.
//!
//! Policy (matches the Secure Media requirements and what Asterisk/baresip do):
//! - the answerer picks, in **our** preference order, the first offered line that is acceptable;
//! - a line is acceptable when its suite is in our preference list, it has exactly one key
//!   parameter, no MKI, and no session parameters other than `WSH` (a window-size hint that
//!   only asks for at least the window we already keep);
//! - lifetimes are accepted and not enforced (libsrtp does the same);
//! - the answer echoes the tag and suite with a freshly generated key and nothing else.
//!
//! Every rejection is a [`NegotiationError`]; for a SIP UA all of them except
//! [`NegotiationError::KeyGeneration`] mean `488 Not Acceptable Here`, and their `Display` text
//! suits a `Warning: 399` header.

use core::fmt;

use crate::sdes::{CryptoAttribute, CryptoSuite, SdesError};
use crate::{KeyError, MasterKey, SrtpProfile};

/// Why an SDES offer or answer was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NegotiationError {
    /// The SDP carried no `a=crypto` line.
    #[error("no a=crypto attribute offered")]
    NoCryptoAttributes,
    /// None of the offered suites is one we accept.
    #[error("no acceptable SRTP crypto suite offered (offered: {})", .offered.join(", "))]
    NoAcceptableSuite {
        /// The suite names that were offered, in offer order.
        offered: Vec<String>,
    },
    /// The only acceptable lines carried an MKI, which we do not support.
    #[error("SRTP master key identifier (MKI) not supported")]
    MkiUnsupported,
    /// The only acceptable lines carried more than one key.
    #[error("multiple SRTP master keys not supported")]
    MultipleKeysUnsupported,
    /// The only acceptable lines carried a session parameter we do not support.
    #[error("unsupported SDES session parameter {0}")]
    UnsupportedSessionParameter(String),
    /// Every `a=crypto` line was malformed; the error of the first one.
    #[error("malformed a=crypto attribute: {0}")]
    Malformed(SdesError),
    /// The answer's tag matches none of our offered lines.
    #[error("answer tag {0} does not match any offered a=crypto tag")]
    UnknownTag(u32),
    /// The answer's suite differs from the suite we offered under that tag.
    #[error("answer suite {answered} does not match offered suite {offered}")]
    SuiteMismatch {
        /// What we offered under that tag.
        offered: SrtpProfile,
        /// What the answer named.
        answered: String,
    },
    /// Generating our key failed (an internal error, not the peer's fault: SIP 500).
    #[error("could not generate an SRTP key")]
    KeyGeneration,
}

impl NegotiationError {
    /// The SIP status code to answer with: 488, or 500 for [`Self::KeyGeneration`].
    pub fn sip_status(&self) -> u16 {
        match self {
            Self::KeyGeneration => 500,
            _ => 488,
        }
    }
}

/// The keys negotiated for one media stream.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    /// The chosen profile.
    pub profile: SrtpProfile,
    /// Our key: use for [`crate::OutboundSession`].
    pub outbound: MasterKey,
    /// The peer's key: use for [`crate::InboundSession`].
    pub inbound: MasterKey,
}

impl fmt::Debug for SrtpKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpKeys")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// Our answer to an SDES offer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The `a=crypto` attribute to put in the answer SDP (contains our key).
    pub attribute: CryptoAttribute,
    /// Keys for both directions.
    pub keys: SrtpKeys,
}

/// Checks one offered line against the policy; returns the peer's key when acceptable.
fn acceptable(
    offer: &CryptoAttribute,
    profile: SrtpProfile,
) -> Result<MasterKey, NegotiationError> {
    let [key] = offer.keys.as_slice() else {
        return Err(NegotiationError::MultipleKeysUnsupported);
    };
    if key.mki.is_some() {
        return Err(NegotiationError::MkiUnsupported);
    }
    if let Some(p) = offer.session_params.iter().find(|p| !is_harmless_param(p)) {
        return Err(NegotiationError::UnsupportedSessionParameter(p.clone()));
    }
    // The parser checked the length for known suites; this cannot fail for them.
    key.master_key(profile).map_err(|_| {
        NegotiationError::Malformed(SdesError::KeyLength {
            suite: profile,
            expected: profile.master_key_len() + profile.master_salt_len(),
            actual: key.key_salt().len(),
        })
    })
}

/// `WSH=<n>` (RFC 4568 §6.3.7) only hints at a minimum replay window; ours is at least 128 and
/// RFC 4568 makes 64 the minimum hint, so it never asks for something we lack in practice.
fn is_harmless_param(p: &str) -> bool {
    p.strip_prefix("WSH=")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Answers an SDES offer: picks by `preference` (most preferred first) among `offers` and returns
/// our answer line (same tag, fresh key) and the keys for both directions.
pub fn answer(
    offers: &[CryptoAttribute],
    preference: &[SrtpProfile],
) -> Result<Answer, NegotiationError> {
    if offers.is_empty() {
        return Err(NegotiationError::NoCryptoAttributes);
    }
    let mut first_rejection = None;
    for &profile in preference {
        for offer in offers
            .iter()
            .filter(|o| o.suite == CryptoSuite::Known(profile))
        {
            match acceptable(offer, profile) {
                Ok(inbound) => {
                    let outbound = MasterKey::generate(profile)
                        .map_err(|_| NegotiationError::KeyGeneration)?;
                    let attribute = CryptoAttribute::new(offer.tag, &outbound);
                    return Ok(Answer {
                        attribute,
                        keys: SrtpKeys {
                            profile,
                            outbound,
                            inbound,
                        },
                    });
                }
                Err(e) => {
                    first_rejection.get_or_insert(e);
                }
            }
        }
    }
    Err(
        first_rejection.unwrap_or_else(|| NegotiationError::NoAcceptableSuite {
            offered: offers.iter().map(|o| o.suite.to_string()).collect(),
        }),
    )
}

/// [`answer`] for raw `a=crypto` lines: malformed lines are skipped, and reported only if no
/// line parses at all.
pub fn answer_lines<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    preference: &[SrtpProfile],
) -> Result<Answer, NegotiationError> {
    let mut offers = Vec::new();
    let mut first_error = None;
    for line in lines {
        match CryptoAttribute::parse(line) {
            Ok(a) => offers.push(a),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match (offers.is_empty(), first_error) {
        (true, Some(e)) => Err(NegotiationError::Malformed(e)),
        _ => answer(&offers, preference),
    }
}

/// Our SDES offer: one line per preferred profile, each with its own fresh key.
#[derive(Debug, Clone)]
pub struct Offer {
    attributes: Vec<CryptoAttribute>,
}

impl Offer {
    /// Builds an offer with tags 1, 2, … in `preference` order (duplicates are dropped).
    pub fn new(preference: &[SrtpProfile]) -> Result<Self, KeyError> {
        let mut attributes: Vec<CryptoAttribute> = Vec::with_capacity(preference.len());
        for &profile in preference {
            if attributes
                .iter()
                .any(|a| a.suite == CryptoSuite::Known(profile))
            {
                continue;
            }
            let key = MasterKey::generate(profile)?;
            // At most six profiles exist, so the tag always fits.
            let tag = u32::try_from(attributes.len() + 1).unwrap_or(u32::MAX);
            attributes.push(CryptoAttribute::new(tag, &key));
        }
        Ok(Self { attributes })
    }

    /// The lines to put in the SDP, most preferred first (they contain our keys).
    pub fn attributes(&self) -> &[CryptoAttribute] {
        &self.attributes
    }

    /// Accepts the peer's answer: checks tag and suite against what we offered and applies the
    /// same per-line policy as [`answer`]. Returns the keys for both directions.
    pub fn accept(&self, answer: &CryptoAttribute) -> Result<SrtpKeys, NegotiationError> {
        let ours = self
            .attributes
            .iter()
            .find(|a| a.tag == answer.tag)
            .ok_or(NegotiationError::UnknownTag(answer.tag))?;
        let Some(profile) = ours.suite.profile() else {
            return Err(NegotiationError::UnknownTag(answer.tag));
        };
        if answer.suite != ours.suite {
            return Err(NegotiationError::SuiteMismatch {
                offered: profile,
                answered: answer.suite.to_string(),
            });
        }
        let inbound = acceptable(answer, profile)?;
        let [our_key] = ours.keys.as_slice() else {
            return Err(NegotiationError::MultipleKeysUnsupported);
        };
        let outbound = our_key
            .master_key(profile)
            .map_err(|_| NegotiationError::KeyGeneration)?;
        Ok(SrtpKeys {
            profile,
            outbound,
            inbound,
        })
    }

    /// [`Self::accept`] for a raw `a=crypto` line.
    pub fn accept_line(&self, line: &str) -> Result<SrtpKeys, NegotiationError> {
        let a = CryptoAttribute::parse(line).map_err(NegotiationError::Malformed)?;
        self.accept(&a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SrtpProfile::*;

    const K: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";

    fn line(tag: u32, suite: &str, extra: &str) -> CryptoAttribute {
        CryptoAttribute::parse(&format!("{tag} {suite} inline:{K}{extra}")).unwrap()
    }

    #[test]
    fn picks_our_preference_and_echoes_the_tag() {
        let offers = [
            line(1, "AES_CM_128_HMAC_SHA1_32", ""),
            line(2, "AES_CM_128_HMAC_SHA1_80", "|2^31"),
        ];
        let a = answer(&offers, &[AesCm128HmacSha1_80, AesCm128HmacSha1_32]).unwrap();
        assert_eq!(a.attribute.tag, 2);
        assert_eq!(a.keys.profile, AesCm128HmacSha1_80);
        assert_eq!(a.keys.inbound.key_salt(), offers[1].keys[0].key_salt());
        assert_ne!(a.keys.outbound, a.keys.inbound);
        let back = CryptoAttribute::parse(&a.attribute.to_string()).unwrap();
        assert_eq!(
            back.keys[0].master_key(AesCm128HmacSha1_80).unwrap(),
            a.keys.outbound
        );
        assert!(back.keys[0].lifetime.is_none() && back.session_params.is_empty());

        let a = answer(&offers, &[AesCm128HmacSha1_32]).unwrap();
        assert_eq!((a.attribute.tag, a.keys.profile), (1, AesCm128HmacSha1_32));
    }

    #[test]
    fn rejections_carry_reasons() {
        assert_eq!(
            answer(&[], &[AesCm128HmacSha1_80]).unwrap_err(),
            NegotiationError::NoCryptoAttributes
        );
        let e = answer(
            &[line(1, "AES_CM_128_HMAC_SHA1_80", "|2^20|1:4")],
            &[AesCm128HmacSha1_80],
        )
        .unwrap_err();
        assert_eq!(e, NegotiationError::MkiUnsupported);
        assert_eq!(e.sip_status(), 488);
        assert!(e.to_string().contains("MKI"));
        let e = answer(
            &[line(1, "AES_CM_128_HMAC_SHA1_80", " UNENCRYPTED_SRTP")],
            &[AesCm128HmacSha1_80],
        )
        .unwrap_err();
        assert_eq!(
            e,
            NegotiationError::UnsupportedSessionParameter("UNENCRYPTED_SRTP".into())
        );
        let two =
            CryptoAttribute::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{K};inline:{K}"))
                .unwrap();
        assert_eq!(
            answer(&[two], &[AesCm128HmacSha1_80]).unwrap_err(),
            NegotiationError::MultipleKeysUnsupported
        );
        let e = answer(
            &[line(1, "AES_CM_128_HMAC_SHA1_32", "")],
            &[AesCm128HmacSha1_80],
        )
        .unwrap_err();
        assert_eq!(
            e,
            NegotiationError::NoAcceptableSuite {
                offered: vec!["AES_CM_128_HMAC_SHA1_32".into()]
            }
        );
        // A clean lower-preference line wins over a rejected preferred one.
        let offers = [
            line(1, "AES_CM_128_HMAC_SHA1_80", "|1:4"),
            line(2, "AES_CM_128_HMAC_SHA1_32", " WSH=128"),
        ];
        let a = answer(&offers, &[AesCm128HmacSha1_80, AesCm128HmacSha1_32]).unwrap();
        assert_eq!(a.attribute.tag, 2);
    }

    #[test]
    fn answer_lines_skips_garbage() {
        let good = format!("a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{K}");
        let a = answer_lines(["a=crypto:x junk", good.as_str()], &[AesCm128HmacSha1_80]).unwrap();
        assert_eq!(a.attribute.tag, 3);
        assert_eq!(
            answer_lines(["a=crypto:x junk"], &[AesCm128HmacSha1_80]).unwrap_err(),
            NegotiationError::Malformed(SdesError::MissingField)
        );
    }

    #[test]
    fn offer_then_accept_round_trip() {
        let offer = Offer::new(&[
            AesCm128HmacSha1_80,
            AesCm128HmacSha1_32,
            AesCm128HmacSha1_80,
        ])
        .unwrap();
        assert_eq!(offer.attributes().len(), 2);
        let lines: Vec<String> = offer.attributes().iter().map(ToString::to_string).collect();
        // The peer answers the _32 line.
        let theirs =
            answer_lines(lines.iter().map(String::as_str), &[AesCm128HmacSha1_32]).unwrap();
        let ours = offer.accept_line(&theirs.attribute.to_string()).unwrap();
        assert_eq!(ours.profile, AesCm128HmacSha1_32);
        assert_eq!(ours.outbound, theirs.keys.inbound);
        assert_eq!(ours.inbound, theirs.keys.outbound);
        assert_eq!(
            offer
                .accept_line(&format!("9 AES_CM_128_HMAC_SHA1_80 inline:{K}"))
                .unwrap_err(),
            NegotiationError::UnknownTag(9)
        );
        assert!(matches!(
            offer
                .accept_line(&format!("1 AES_CM_128_HMAC_SHA1_32 inline:{K}"))
                .unwrap_err(),
            NegotiationError::SuiteMismatch { .. }
        ));
    }
}
