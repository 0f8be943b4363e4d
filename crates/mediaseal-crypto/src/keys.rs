//! RSA keys: reading them in every shape customers paste, generating them, and fingerprints.
//!
//! Public keys are accepted as SubjectPublicKeyInfo or PKCS#1 `RSAPublicKey`, PEM or DER, with or
//! without line breaks. Private keys are accepted as PKCS#8 or PKCS#1, PEM or DER. Keys outside
//! 2048..=8192 bits are refused, and so is a private key offered where a public key belongs.

use core::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    self, KeySize, PrivateDecryptingKey, PublicEncryptingKey, PublicKeyComponents,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::der;

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits.
pub const MAX_RSA_BITS: usize = 8192;

/// Why a key could not be read or made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The input is empty or holds no PEM block and is not DER either.
    #[error("no key found: expected a PEM block such as '-----BEGIN PUBLIC KEY-----' or DER bytes")]
    NotAKey,
    /// A PEM block was found but its body is not valid base64.
    #[error("the {label} PEM block is not valid base64: {reason}")]
    PemBase64 {
        /// The PEM label, e.g. `PUBLIC KEY`.
        label: String,
        /// What the base64 decoder reported.
        reason: String,
    },
    /// A PEM block has a BEGIN line without its END line, or the labels differ.
    #[error("the PEM block '{label}' is not terminated by a matching '-----END {label}-----' line")]
    PemUnterminated {
        /// The label of the BEGIN line.
        label: String,
    },
    /// The PEM label names something that is not an RSA key we handle.
    #[error("a '{label}' PEM block is not an RSA key mediaseal can use{hint}")]
    UnsupportedPem {
        /// The PEM label found.
        label: String,
        /// Extra advice, starting with "; " when present.
        hint: &'static str,
    },
    /// A private key was given where a public key was expected. It is not kept anywhere.
    #[error(
        "this is a private key, but a public key is needed here; never share the private key. \
         Extract the public half with 'openssl rsa -in private_key.pem -pubout -out public_key.pem'"
    )]
    PrivateKeyGivenAsPublic,
    /// The structure parsed, but it is not an RSA key or is internally inconsistent.
    #[error("the {what} is malformed or is not an RSA key")]
    Malformed {
        /// `public key` or `private key`.
        what: &'static str,
    },
    /// The modulus is too small to be safe.
    #[error("the RSA key has {bits} bits; at least {MIN_RSA_BITS} are required")]
    TooSmall {
        /// Modulus size found.
        bits: usize,
    },
    /// The modulus is larger than this implementation accepts.
    #[error("the RSA key has {bits} bits; at most {MAX_RSA_BITS} are accepted")]
    TooLarge {
        /// Modulus size found.
        bits: usize,
    },
    /// Key generation was asked for a size it does not offer.
    #[error("cannot generate a {bits}-bit key: choose 2048, 3072 or 4096")]
    UnsupportedSize {
        /// The size asked for.
        bits: usize,
    },
    /// The crypto library failed while generating or serialising a key.
    #[error("the crypto library failed while {0}")]
    Crypto(&'static str),
}

/// SHA-256 of a public key's SubjectPublicKeyInfo DER: how mediaseal names a key without a SID.
///
/// The same value comes out of
/// `openssl pkey -pubin -in public_key.pem -outform DER | sha256sum`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Computes the fingerprint of SubjectPublicKeyInfo DER bytes.
    pub fn of_spki(spki_der: &[u8]) -> Self {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, spki_der);
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Self(out)
    }

    /// Lowercase hex of all 32 bytes.
    pub fn to_hex(&self) -> String {
        hex_lower(&self.0)
    }

    /// The first 16 hex digits: enough to tell keys apart in a message.
    pub fn short(&self) -> String {
        hex_lower(&self.0[..8])
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SHA256:{}", self.to_hex())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.short())
    }
}

pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// A validated RSA public key (2048 to 8192 bits).
#[derive(Clone)]
pub struct PublicKey {
    key: PublicEncryptingKey,
    spki: Vec<u8>,
    fingerprint: Fingerprint,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("bits", &self.bits())
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl PublicKey {
    /// Reads a public key from PEM (any line layout) or DER, SPKI or PKCS#1.
    pub fn from_bytes(input: &[u8]) -> Result<Self, KeyError> {
        match find_pem(input)? {
            Some(block) => match block.label.as_str() {
                "PUBLIC KEY" | "RSA PUBLIC KEY" => Self::from_der(&block.der),
                label if label.contains("PRIVATE KEY") => Err(KeyError::PrivateKeyGivenAsPublic),
                "CERTIFICATE" => Err(KeyError::UnsupportedPem {
                    label: block.label,
                    hint: "; extract its key with 'openssl x509 -in cert.pem -pubkey -noout'",
                }),
                _ => Err(KeyError::UnsupportedPem {
                    label: block.label,
                    hint: "",
                }),
            },
            None if input.iter().all(u8::is_ascii_whitespace) => Err(KeyError::NotAKey),
            None if looks_like_der(input) => Self::from_der(input),
            None => Err(KeyError::NotAKey),
        }
    }

    /// Reads a public key from DER: SubjectPublicKeyInfo or PKCS#1 `RSAPublicKey`.
    pub fn from_der(der_bytes: &[u8]) -> Result<Self, KeyError> {
        if is_private_der(der_bytes) {
            return Err(KeyError::PrivateKeyGivenAsPublic);
        }
        // `rsa::PublicKey` accepts both encodings and does not limit the size, so the size check
        // below can report the real number of bits.
        let parsed = rsa::PublicKey::from_der(der_bytes)
            .map_err(|_| KeyError::Malformed { what: "public key" })?;
        let bits = modulus_bits(&parsed);
        check_bits(bits)?;
        let spki = parsed
            .as_der()
            .map_err(|_| KeyError::Malformed { what: "public key" })?
            .as_ref()
            .to_vec();
        let key = PublicEncryptingKey::from_der(&spki)
            .map_err(|_| KeyError::Malformed { what: "public key" })?;
        let fingerprint = Fingerprint::of_spki(&spki);
        Ok(Self {
            key,
            spki,
            fingerprint,
        })
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.key.key_size_bits()
    }

    /// SHA-256 of the SubjectPublicKeyInfo DER.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// SubjectPublicKeyInfo PEM (`BEGIN PUBLIC KEY`), 64-column lines.
    pub fn to_pem(&self) -> String {
        to_pem("PUBLIC KEY", &self.spki)
    }

    pub(crate) fn inner(&self) -> &PublicEncryptingKey {
        &self.key
    }
}

/// A validated RSA private key. Its DER form is zeroized when dropped, and AWS-LC cleanses its own
/// copy when the key is freed.
pub struct PrivateKey {
    key: PrivateDecryptingKey,
    public: PublicKey,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("bits", &self.public.bits())
            .field("fingerprint", &self.public.fingerprint)
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl PrivateKey {
    /// Generates a fresh key of 2048, 3072 or 4096 bits.
    pub fn generate(bits: usize) -> Result<Self, KeyError> {
        let size = match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            _ => return Err(KeyError::UnsupportedSize { bits }),
        };
        let key = PrivateDecryptingKey::generate(size)
            .map_err(|_| KeyError::Crypto("generating an RSA key"))?;
        Self::from_decrypting_key(key)
    }

    /// Reads a private key from PEM or DER, PKCS#8 or PKCS#1.
    pub fn from_bytes(input: &[u8]) -> Result<Self, KeyError> {
        match find_pem(input)? {
            Some(block) => match block.label.as_str() {
                "PRIVATE KEY" | "RSA PRIVATE KEY" => Self::from_der(&block.der),
                "ENCRYPTED PRIVATE KEY" => Err(KeyError::UnsupportedPem {
                    label: block.label,
                    hint: "; remove the passphrase first with \
                           'openssl pkcs8 -in key.pem -out plain_key.pem' and keep the result safe",
                }),
                "PUBLIC KEY" | "RSA PUBLIC KEY" => Err(KeyError::UnsupportedPem {
                    label: block.label,
                    hint: "; decryption needs the private key that belongs to it",
                }),
                _ => Err(KeyError::UnsupportedPem {
                    label: block.label,
                    hint: "",
                }),
            },
            None if looks_like_der(input) => Self::from_der(input),
            None => Err(KeyError::NotAKey),
        }
    }

    /// Reads a private key from DER: PKCS#8 `PrivateKeyInfo` or PKCS#1 `RSAPrivateKey`.
    pub fn from_der(der_bytes: &[u8]) -> Result<Self, KeyError> {
        let malformed = KeyError::Malformed {
            what: "private key",
        };
        // Size first, read from the structure alone, so a small key is called small rather than
        // malformed whichever of its encodings the crypto library gives up on.
        if let Some(bits) = der::modulus_bits_of_private(der_bytes) {
            check_bits(bits)?;
        }
        // PKCS#1 is re-wrapped as PKCS#8 because that is what the decrypting key type reads.
        let pkcs8: Zeroizing<Vec<u8>> = match rsa::KeyPair::from_pkcs8(der_bytes) {
            Ok(_) => Zeroizing::new(der_bytes.to_vec()),
            Err(_) => match rsa::KeyPair::from_der(der_bytes) {
                Ok(pair) => Zeroizing::new(pair.as_der().map_err(|_| malformed)?.as_ref().to_vec()),
                Err(rejected) => return Err(map_rejection(rejected, der_bytes, "private key")),
            },
        };
        let key = PrivateDecryptingKey::from_pkcs8(&pkcs8)
            .map_err(|rejected| map_rejection(rejected, der_bytes, "private key"))?;
        Self::from_decrypting_key(key)
    }

    fn from_decrypting_key(key: PrivateDecryptingKey) -> Result<Self, KeyError> {
        let spki = key
            .public_key()
            .as_der()
            .map_err(|_| KeyError::Crypto("encoding the public key"))?
            .as_ref()
            .to_vec();
        let public = PublicKey::from_der(&spki)?;
        Ok(Self { key, public })
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Fingerprint of the matching public key.
    pub fn fingerprint(&self) -> Fingerprint {
        self.public.fingerprint
    }

    /// PKCS#8 PEM (`BEGIN PRIVATE KEY`), what OpenSSL 3 writes by default.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        let der = self.pkcs8_der()?;
        Ok(Zeroizing::new(to_pem("PRIVATE KEY", &der)))
    }

    /// PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`), what `openssl genrsa` in the seeds shows.
    pub fn to_pkcs1_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        let pkcs8 = self.pkcs8_der()?;
        let pkcs1 =
            der::pkcs1_from_pkcs8(&pkcs8).ok_or(KeyError::Crypto("encoding the private key"))?;
        Ok(Zeroizing::new(to_pem("RSA PRIVATE KEY", pkcs1)))
    }

    fn pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let der = self
            .key
            .as_der()
            .map_err(|_| KeyError::Crypto("encoding the private key"))?;
        Ok(Zeroizing::new(der.as_ref().to_vec()))
    }

    pub(crate) fn inner(&self) -> &PrivateDecryptingKey {
        &self.key
    }
}

fn modulus_bits(key: &rsa::PublicKey) -> usize {
    let components: PublicKeyComponents<Vec<u8>> = key.into();
    let n = components.n.as_slice();
    let first = n.iter().position(|&b| b != 0).unwrap_or(n.len());
    let n = &n[first..];
    match n.first() {
        Some(&top) => (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
        None => 0,
    }
}

fn check_bits(bits: usize) -> Result<(), KeyError> {
    if bits < MIN_RSA_BITS {
        Err(KeyError::TooSmall { bits })
    } else if bits > MAX_RSA_BITS {
        Err(KeyError::TooLarge { bits })
    } else {
        Ok(())
    }
}

fn map_rejection(
    rejected: aws_lc_rs::error::KeyRejected,
    der_bytes: &[u8],
    what: &'static str,
) -> KeyError {
    match rejected.description_() {
        "TooSmall" | "TooLarge" => {
            // Report the real size when the public half can be read out of the structure.
            let bits = der::modulus_bits_of_private(der_bytes).unwrap_or(0);
            if rejected.description_() == "TooSmall" {
                KeyError::TooSmall { bits }
            } else {
                KeyError::TooLarge { bits }
            }
        }
        _ => KeyError::Malformed { what },
    }
}

fn is_private_der(der_bytes: &[u8]) -> bool {
    der::looks_like_private_key(der_bytes)
}

fn looks_like_der(input: &[u8]) -> bool {
    // Every key structure is a DER SEQUENCE.
    input.first() == Some(&0x30)
}

struct PemBlock {
    label: String,
    der: Zeroizing<Vec<u8>>,
}

/// Finds the first PEM block, tolerating pastes without line breaks, CRLF, indentation, and the
/// literal `\n` escapes that JSON or shell quoting leaves behind.
fn find_pem(input: &[u8]) -> Result<Option<PemBlock>, KeyError> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    const DASHES: &[u8] = b"-----";
    let Some(start) = find(input, BEGIN) else {
        return Ok(None);
    };
    let after_begin = &input[start + BEGIN.len()..];
    let Some(label_end) = find(after_begin, DASHES) else {
        return Err(KeyError::NotAKey);
    };
    let label = String::from_utf8_lossy(&after_begin[..label_end])
        .trim()
        .to_owned();
    let body_and_rest = &after_begin[label_end + DASHES.len()..];
    let end_marker = format!("-----END {label}-----");
    let Some(body_end) = find(body_and_rest, end_marker.as_bytes()) else {
        return Err(KeyError::PemUnterminated { label });
    };
    let body = &body_and_rest[..body_end];
    let mut cleaned = Zeroizing::new(Vec::with_capacity(body.len()));
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        if b == b'\\' && matches!(body.get(i + 1), Some(b'n' | b'r')) {
            i += 2;
            continue;
        }
        if !b.is_ascii_whitespace() {
            cleaned.push(b);
        }
        i += 1;
    }
    if cleaned.contains(&b':') {
        return Err(KeyError::UnsupportedPem {
            label,
            hint: "; it carries PEM headers (an encrypted legacy key?), decrypt it with openssl first",
        });
    }
    let der = STANDARD
        .decode(cleaned.as_slice())
        .map(Zeroizing::new)
        .map_err(|e| KeyError::PemBase64 {
            label: label.clone(),
            reason: e.to_string(),
        })?;
    Ok(Some(PemBlock { label, der }))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn to_pem(label: &str, der_bytes: &[u8]) -> String {
    let b64 = Zeroizing::new(STANDARD.encode(der_bytes));
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 64);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(core::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> &'static PrivateKey {
        use std::sync::OnceLock;
        static KEY: OnceLock<PrivateKey> = OnceLock::new();
        KEY.get_or_init(|| PrivateKey::generate(2048).unwrap())
    }

    #[test]
    fn pem_round_trips_in_both_private_encodings() {
        let k = key();
        let pkcs8 = k.to_pkcs8_pem().unwrap();
        assert!(pkcs8.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let pkcs1 = k.to_pkcs1_pem().unwrap();
        assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
        for pem in [pkcs8.as_str(), pkcs1.as_str()] {
            let back = PrivateKey::from_bytes(pem.as_bytes()).unwrap();
            assert_eq!(back.fingerprint(), k.fingerprint());
        }
    }

    #[test]
    fn public_pem_without_line_breaks_and_with_escaped_newlines() {
        let pem = key().public_key().to_pem();
        let one_line: String = pem.lines().collect();
        let escaped = pem.replace('\n', "\\n");
        let crlf = pem.replace('\n', "\r\n");
        for variant in [pem, one_line, escaped, crlf] {
            let pk = PublicKey::from_bytes(variant.as_bytes()).unwrap();
            assert_eq!(pk.fingerprint(), key().fingerprint());
            assert_eq!(pk.bits(), 2048);
        }
    }

    #[test]
    fn private_key_offered_as_public_is_refused() {
        let pem = key().to_pkcs8_pem().unwrap();
        assert!(matches!(
            PublicKey::from_bytes(pem.as_bytes()),
            Err(KeyError::PrivateKeyGivenAsPublic)
        ));
        let pkcs1 = key().to_pkcs1_pem().unwrap();
        assert!(matches!(
            PublicKey::from_bytes(pkcs1.as_bytes()),
            Err(KeyError::PrivateKeyGivenAsPublic)
        ));
        let der = find_pem(pem.as_bytes()).unwrap().unwrap().der;
        assert!(matches!(
            PublicKey::from_bytes(&der),
            Err(KeyError::PrivateKeyGivenAsPublic)
        ));
    }

    #[test]
    fn garbage_gets_a_named_error() {
        assert!(matches!(PublicKey::from_bytes(b""), Err(KeyError::NotAKey)));
        assert!(matches!(
            PublicKey::from_bytes(b"hello"),
            Err(KeyError::NotAKey)
        ));
        assert!(matches!(
            PublicKey::from_bytes(b"-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n"),
            Err(KeyError::PemBase64 { .. })
        ));
        assert!(matches!(
            PublicKey::from_bytes(b"-----BEGIN PUBLIC KEY-----\nMIIB\n"),
            Err(KeyError::PemUnterminated { .. })
        ));
        assert!(matches!(
            PublicKey::from_bytes(b"-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n"),
            Err(KeyError::Malformed { .. })
        ));
    }

    #[test]
    fn fingerprint_is_sha256_of_spki() {
        let pk = key().public_key();
        let expected = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, pk.spki_der());
        assert_eq!(pk.fingerprint().0.as_slice(), expected.as_ref());
        assert_eq!(pk.fingerprint().to_hex().len(), 64);
    }

    #[test]
    fn debug_never_shows_secrets() {
        let shown = format!("{:?}", key());
        assert!(shown.contains("[redacted]"));
        assert!(!shown.contains("MII"));
    }
}
