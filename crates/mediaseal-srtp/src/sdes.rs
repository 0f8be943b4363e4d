//! SDES `a=crypto` attributes (RFC 4568 §9.1): parsing and formatting.
//!
//! The parser is faithful to the grammar (tag, suite, one or more `inline:` key parameters with
//! optional lifetime and MKI, session parameters) and applies no policy; the
//! [`negotiate`](crate::negotiate) module decides what is acceptable.
//!
//! ```text
//! a=crypto:<tag> <crypto-suite> inline:<base64 key‖salt>[|<lifetime>][|<MKI>:<length>][;inline:…] [<session-param> …]
//! ```

use core::fmt;
use core::str::FromStr;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use zeroize::{Zeroize, Zeroizing};

use crate::{MasterKey, SrtpProfile};

/// Standard alphabet; accepts keys with or without `=` padding (both are seen in the wild).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Longest key‖salt we decode (AES-256 plus a 14-byte salt is 46; leave room for other suites).
const MAX_KEY_SALT: usize = 64;
/// Longest line we look at; real ones are under 200 bytes.
const MAX_LINE: usize = 4096;

/// The crypto suite named in an `a=crypto` line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CryptoSuite {
    /// A suite this crate implements.
    Known(SrtpProfile),
    /// A suite we do not implement (e.g. `AES_192_CM_HMAC_SHA1_80`, `F8_128_HMAC_SHA1_80`); kept
    /// so an offer containing it can still be parsed and the line skipped.
    Unknown(String),
}

impl CryptoSuite {
    /// The profile, if this suite is supported.
    pub fn profile(&self) -> Option<SrtpProfile> {
        match self {
            Self::Known(p) => Some(*p),
            Self::Unknown(_) => None,
        }
    }
}

impl fmt::Display for CryptoSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Known(p) => p.fmt(f),
            Self::Unknown(s) => f.write_str(s),
        }
    }
}

/// Key lifetime from a key parameter (`|2^31` or `|1048576`), in packets. Kept for display;
/// like libsrtp we do not re-key on it (the session's own limits are 2^48 / 2^31 packets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lifetime {
    /// Written as `2^n`.
    PowerOfTwo(u8),
    /// Written as a decimal count.
    Packets(u64),
}

impl Lifetime {
    /// The lifetime in packets (saturating at `u64::MAX`).
    pub fn packets(self) -> u64 {
        match self {
            Self::PowerOfTwo(n) => 1u64.checked_shl(u32::from(n)).unwrap_or(u64::MAX),
            Self::Packets(n) => n,
        }
    }
}

impl fmt::Display for Lifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PowerOfTwo(n) => write!(f, "2^{n}"),
            Self::Packets(n) => write!(f, "{n}"),
        }
    }
}

/// A master key identifier (`|<value>:<length>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mki {
    /// The MKI value (up to 31 decimal digits).
    pub value: u128,
    /// Its length on the wire, in bytes (1..=128).
    pub length: u8,
}

/// One `inline:` key parameter.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyParam {
    key_salt: Zeroizing<Vec<u8>>,
    /// The key lifetime, if given.
    pub lifetime: Option<Lifetime>,
    /// The MKI, if given.
    pub mki: Option<Mki>,
}

impl KeyParam {
    /// The decoded `key ‖ salt`. Secret: never log it.
    pub fn key_salt(&self) -> &[u8] {
        &self.key_salt
    }

    /// The key as a [`MasterKey`] for `profile`, if its length fits.
    pub fn master_key(&self, profile: SrtpProfile) -> Result<MasterKey, crate::KeyError> {
        MasterKey::from_key_salt(profile, &self.key_salt)
    }
}

impl fmt::Debug for KeyParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyParam")
            .field(
                "key_salt",
                &format_args!("<{} bytes redacted>", self.key_salt.len()),
            )
            .field("lifetime", &self.lifetime)
            .field("mki", &self.mki)
            .finish()
    }
}

/// Why an `a=crypto` line could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdesError {
    /// Fewer than the three required fields (tag, suite, key parameters).
    #[error("a=crypto needs a tag, a crypto suite and key parameters")]
    MissingField,
    /// The tag is not 1 to 9 decimal digits.
    #[error("a=crypto tag must be 1 to 9 digits")]
    BadTag,
    /// A key parameter does not start with `inline:`.
    #[error("unsupported key method (only inline: is defined)")]
    UnsupportedKeyMethod,
    /// The key is not valid base64 or too long.
    #[error("key is not valid base64")]
    BadKeyEncoding,
    /// The key‖salt length does not match the suite.
    #[error("{suite} needs {expected} bytes of key and salt, got {actual}")]
    KeyLength {
        /// The suite named on the line.
        suite: SrtpProfile,
        /// Bytes the suite needs.
        expected: usize,
        /// Bytes decoded.
        actual: usize,
    },
    /// A lifetime that is neither decimal nor `2^n` (n ≤ 63).
    #[error("invalid key lifetime")]
    BadLifetime,
    /// An MKI that is not `<1-31 digits>:<1-128>`.
    #[error("invalid MKI")]
    BadMki,
    /// Extra `|` fields in a key parameter, or lifetime after MKI.
    #[error("invalid key parameter layout")]
    BadKeyParam,
    /// The line is unreasonably long.
    #[error("a=crypto line too long")]
    TooLong,
}

/// A parsed `a=crypto` attribute.
///
/// `Display` writes the attribute value (`<tag> <suite> inline:…`), **including the key**: it is
/// meant for building SDP, which must then only travel over TLS. Never log it; `Debug` redacts.
#[derive(Clone, PartialEq, Eq)]
pub struct CryptoAttribute {
    /// The tag (0..=999 999 999), echoed in the answer.
    pub tag: u32,
    /// The crypto suite.
    pub suite: CryptoSuite,
    /// One or more key parameters.
    pub keys: Vec<KeyParam>,
    /// Session parameters, verbatim (e.g. `UNENCRYPTED_SRTCP`, `KDR=1`, `WSH=128`).
    pub session_params: Vec<String>,
}

impl fmt::Debug for CryptoAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CryptoAttribute")
            .field("tag", &self.tag)
            .field("suite", &self.suite)
            .field("keys", &self.keys)
            .field("session_params", &self.session_params)
            .finish()
    }
}

impl CryptoAttribute {
    /// An attribute with one key parameter holding `key` and no lifetime, MKI or parameters.
    pub fn new(tag: u32, key: &MasterKey) -> Self {
        Self {
            tag,
            suite: CryptoSuite::Known(key.profile()),
            keys: vec![KeyParam {
                key_salt: Zeroizing::new(key.key_salt().to_vec()),
                lifetime: None,
                mki: None,
            }],
            session_params: Vec::new(),
        }
    }

    /// Parses an `a=crypto` line, with or without the `a=crypto:` / `crypto:` prefix.
    pub fn parse(line: &str) -> Result<Self, SdesError> {
        if line.len() > MAX_LINE {
            return Err(SdesError::TooLong);
        }
        let line = line.trim();
        let value = line
            .strip_prefix("a=crypto:")
            .or_else(|| line.strip_prefix("crypto:"))
            .unwrap_or(line);
        let mut fields = value.split_ascii_whitespace();
        let tag = fields.next().ok_or(SdesError::MissingField)?;
        let suite = fields.next().ok_or(SdesError::MissingField)?;
        let key_params = fields.next().ok_or(SdesError::MissingField)?;
        if tag.is_empty() || tag.len() > 9 || !tag.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SdesError::BadTag);
        }
        let tag: u32 = tag.parse().map_err(|_| SdesError::BadTag)?;
        // ABNF literals are case-insensitive (RFC 5234 §2.3); everyone writes upper case.
        let suite = match suite.to_ascii_uppercase().parse::<SrtpProfile>() {
            Ok(p) => CryptoSuite::Known(p),
            Err(_) => CryptoSuite::Unknown(suite.to_owned()),
        };
        let keys = key_params
            .split(';')
            .map(|kp| parse_key_param(kp, &suite))
            .collect::<Result<Vec<_>, _>>()?;
        let session_params = fields.map(str::to_owned).collect();
        Ok(Self {
            tag,
            suite,
            keys,
            session_params,
        })
    }

    /// The whole SDP line, `a=crypto:<value>`. Contains the key: see the type docs.
    pub fn to_sdp_line(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("a=crypto:{self}"))
    }
}

impl FromStr for CryptoAttribute {
    type Err = SdesError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn parse_key_param(kp: &str, suite: &CryptoSuite) -> Result<KeyParam, SdesError> {
    // ABNF literals are case-insensitive (RFC 5234 §2.3).
    let info = kp
        .get(..7)
        .filter(|m| m.eq_ignore_ascii_case("inline:"))
        .and_then(|_| kp.get(7..))
        .ok_or(SdesError::UnsupportedKeyMethod)?;
    let mut parts = info.split('|');
    let b64 = parts.next().unwrap_or_default();
    let mut buf = Zeroizing::new([0u8; MAX_KEY_SALT]);
    // Base64 of MAX_KEY_SALT bytes is at most 88 characters; longer input is not a key we use.
    if b64.is_empty() || b64.len() > 88 {
        return Err(SdesError::BadKeyEncoding);
    }
    let n = LENIENT
        .decode_slice(b64, &mut buf[..])
        .map_err(|_| SdesError::BadKeyEncoding)?;
    let key_salt = Zeroizing::new(buf.get(..n).unwrap_or_default().to_vec());
    if let CryptoSuite::Known(p) = suite {
        let expected = p.master_key_len() + p.master_salt_len();
        if n != expected {
            return Err(SdesError::KeyLength {
                suite: *p,
                expected,
                actual: n,
            });
        }
    }
    let mut lifetime = None;
    let mut mki = None;
    for part in parts {
        if let Some((v, l)) = part.split_once(':') {
            if mki.is_some() {
                return Err(SdesError::BadKeyParam);
            }
            mki = Some(parse_mki(v, l)?);
        } else {
            if lifetime.is_some() || mki.is_some() {
                return Err(SdesError::BadKeyParam);
            }
            lifetime = Some(parse_lifetime(part)?);
        }
    }
    Ok(KeyParam {
        key_salt,
        lifetime,
        mki,
    })
}

fn digits(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
}

fn parse_lifetime(s: &str) -> Result<Lifetime, SdesError> {
    if let Some(exp) = s.strip_prefix("2^") {
        if !digits(exp, 2) {
            return Err(SdesError::BadLifetime);
        }
        let n: u8 = exp.parse().map_err(|_| SdesError::BadLifetime)?;
        if n > 63 {
            return Err(SdesError::BadLifetime);
        }
        return Ok(Lifetime::PowerOfTwo(n));
    }
    if !digits(s, 20) {
        return Err(SdesError::BadLifetime);
    }
    s.parse()
        .map(Lifetime::Packets)
        .map_err(|_| SdesError::BadLifetime)
}

fn parse_mki(value: &str, len: &str) -> Result<Mki, SdesError> {
    if !digits(value, 31) || !digits(len, 3) {
        return Err(SdesError::BadMki);
    }
    let value: u128 = value.parse().map_err(|_| SdesError::BadMki)?;
    let length: u8 = len.parse().map_err(|_| SdesError::BadMki)?;
    if !(1..=128).contains(&length) {
        return Err(SdesError::BadMki);
    }
    Ok(Mki { value, length })
}

impl fmt::Display for CryptoAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ", self.tag, self.suite)?;
        for (i, k) in self.keys.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            let mut b64 = STANDARD.encode(k.key_salt());
            let r = write!(f, "inline:{b64}");
            b64.zeroize();
            r?;
            if let Some(l) = k.lifetime {
                write!(f, "|{l}")?;
            }
            if let Some(m) = k.mki {
                write!(f, "|{}:{}", m.value, m.length)?;
            }
        }
        for p in &self.session_params {
            write!(f, " {p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC4568_EXAMPLE: &str = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32";

    #[test]
    fn parses_the_rfc_example() {
        let a = CryptoAttribute::parse(RFC4568_EXAMPLE).unwrap();
        assert_eq!(a.tag, 1);
        assert_eq!(
            a.suite,
            CryptoSuite::Known(SrtpProfile::AesCm128HmacSha1_80)
        );
        assert_eq!(a.keys.len(), 1);
        assert_eq!(a.keys[0].key_salt().len(), 30);
        assert_eq!(a.keys[0].lifetime, Some(Lifetime::PowerOfTwo(20)));
        assert_eq!(
            a.keys[0].mki,
            Some(Mki {
                value: 1,
                length: 32
            })
        );
        assert_eq!(a.to_sdp_line().as_str(), RFC4568_EXAMPLE);
        assert!(!format!("{a:?}").contains("PS1uQ"));
    }

    #[test]
    fn lifetime_forms_and_params() {
        let a = CryptoAttribute::parse(
            "2 AES_CM_128_HMAC_SHA1_32 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|1048576 \
             UNENCRYPTED_SRTCP KDR=1",
        )
        .unwrap();
        assert_eq!(a.keys[0].lifetime, Some(Lifetime::Packets(1 << 20)));
        assert_eq!(a.keys[0].lifetime.unwrap().packets(), 1 << 20);
        assert_eq!(a.session_params, ["UNENCRYPTED_SRTCP", "KDR=1"]);
        // MKI alone (no lifetime).
        let a = CryptoAttribute::parse(
            "crypto:3 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|7:4",
        )
        .unwrap();
        assert_eq!(
            (a.keys[0].lifetime, a.keys[0].mki),
            (
                None,
                Some(Mki {
                    value: 7,
                    length: 4
                })
            )
        );
    }

    #[test]
    fn multiple_keys_and_unknown_suites() {
        let k = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
        let a = CryptoAttribute::parse(&format!(
            "1 AES_CM_128_HMAC_SHA1_80 inline:{k}|2^20|1:4;inline:{k}|2^20|2:4"
        ))
        .unwrap();
        assert_eq!(a.keys.len(), 2);
        let a = CryptoAttribute::parse(&format!("4 F8_128_HMAC_SHA1_80 inline:{k}")).unwrap();
        assert_eq!(a.suite, CryptoSuite::Unknown("F8_128_HMAC_SHA1_80".into()));
        let a = CryptoAttribute::parse(&format!("5 aes_cm_128_hmac_sha1_32 INLINE:{k}")).unwrap();
        assert_eq!(
            a.suite,
            CryptoSuite::Known(SrtpProfile::AesCm128HmacSha1_32)
        );
    }

    #[test]
    fn rejects_malformed() {
        let k = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
        let bad = [
            ("".to_owned(), SdesError::MissingField),
            (
                "1 AES_CM_128_HMAC_SHA1_80".to_owned(),
                SdesError::MissingField,
            ),
            (
                format!("x AES_CM_128_HMAC_SHA1_80 inline:{k}"),
                SdesError::BadTag,
            ),
            (
                format!("1234567890 AES_CM_128_HMAC_SHA1_80 inline:{k}"),
                SdesError::BadTag,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 uri:{k}"),
                SdesError::UnsupportedKeyMethod,
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:!!!!".to_owned(),
                SdesError::BadKeyEncoding,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k}|2^99"),
                SdesError::BadLifetime,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k}|1:0"),
                SdesError::BadMki,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k}|1:4|2^20"),
                SdesError::BadKeyParam,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k}|2^20|2^20"),
                SdesError::BadKeyParam,
            ),
        ];
        for (line, want) in bad {
            assert_eq!(CryptoAttribute::parse(&line), Err(want), "{line}");
        }
        assert!(matches!(
            CryptoAttribute::parse(&format!("1 AEAD_AES_128_GCM inline:{k}")),
            Err(SdesError::KeyLength {
                expected: 28,
                actual: 30,
                ..
            })
        ));
    }

    #[test]
    fn padding_is_optional_and_output_is_padded() {
        let key = MasterKey::from_key_salt(SrtpProfile::Aes256CmHmacSha1_80, &[9u8; 46]).unwrap();
        let line = CryptoAttribute::new(5, &key).to_string();
        assert!(line.ends_with("=="), "{line}");
        let unpadded = line.trim_end_matches('=');
        let back = CryptoAttribute::parse(unpadded).unwrap();
        assert_eq!(
            back.keys[0]
                .master_key(SrtpProfile::Aes256CmHmacSha1_80)
                .unwrap(),
            key
        );
    }
}
