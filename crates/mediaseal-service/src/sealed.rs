//! Secrets the service must read back later, sealed for storage.
//!
//! Some secrets cannot be kept as a hash because the service needs the secret itself: a SIP
//! digest HA1 is `H(username:realm:password)` with the realm known only when the credential
//! list is mapped, and an Access Token is HS256-signed with the API key's secret. Such a secret
//! is sealed with AES-256-GCM under a key derived (HKDF-SHA256) from the service's at-rest
//! private key, one key per [`Purpose`], with the owning row's SID as associated data, so a
//! sealed value copied onto another row (or used for another purpose) does not open. Nodes
//! sharing the at-rest key share these keys. The plaintext exists only in [`Zeroizing`]
//! buffers.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use mediaseal_crypto::PrivateKey;
use zeroize::Zeroizing;

/// Prefix of a sealed value: the scheme, for a later change of it.
const PREFIX: &str = "v1:";

/// What a sealing key is for; each purpose has its own key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Purpose {
    /// SIP credential passwords (bound to the credential's `CR…` SID).
    SipPasswords,
    /// API key secrets (bound to the key's `SK…` SID).
    ApiKeySecrets,
}

impl Purpose {
    /// The HKDF salt: the purpose, so no two derived keys are equal. The SIP salt predates
    /// this module and must not change (stored passwords are sealed under it).
    const fn salt(self) -> &'static [u8] {
        match self {
            Self::SipPasswords => b"mediaseal sip credential passwords v1",
            Self::ApiKeySecrets => b"mediaseal api key secrets v1",
        }
    }

    const fn what(self) -> &'static str {
        match self {
            Self::SipPasswords => "SIP password",
            Self::ApiKeySecrets => "API key secret",
        }
    }
}

/// Why a secret could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The at-rest key could not be encoded to derive from.
    #[error("cannot derive the {0} key from the at-rest key: {1}")]
    Derive(&'static str, String),
    /// No randomness for a nonce.
    #[error("no randomness available to seal a {0}")]
    Random(&'static str),
    /// The sealed value is damaged, for another row, or from another at-rest key.
    #[error(
        "a stored {0} does not open with this node's at-rest key (damaged, or sealed by a node \
         with another key)"
    )]
    Open(&'static str),
}

/// A key that seals one [`Purpose`]'s secrets (see the module docs).
pub struct SealingKey {
    key: LessSafeKey,
    purpose: Purpose,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealingKey")
            .field("purpose", &self.purpose)
            .finish_non_exhaustive()
    }
}

impl SealingKey {
    /// Derives `purpose`'s key from the at-rest private key.
    pub fn derive(at_rest: &PrivateKey, purpose: Purpose) -> Result<Self, SealError> {
        let what = purpose.what();
        let pem = at_rest
            .to_pkcs8_pem()
            .map_err(|e| SealError::Derive(what, e.to_string()))?;
        let prk = Salt::new(HKDF_SHA256, purpose.salt()).extract(pem.as_bytes());
        let okm = prk
            .expand(&[b"aes-256-gcm"], &AES_256_GCM)
            .map_err(|_| SealError::Derive(what, "HKDF expand failed".to_owned()))?;
        Ok(Self {
            key: LessSafeKey::new(UnboundKey::from(okm)),
            purpose,
        })
    }

    /// Seals `secret` for the row `sid`.
    pub fn seal(&self, sid: &str, secret: &str) -> Result<String, SealError> {
        let what = self.purpose.what();
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| SealError::Random(what))?;
        let mut buf = Zeroizing::new(secret.as_bytes().to_vec());
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(sid.as_bytes()),
                &mut *buf,
            )
            .map_err(|_| SealError::Random(what))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(format!("{PREFIX}{}", STANDARD_NO_PAD.encode(out)))
    }

    /// Opens what [`Self::seal`] made for `sid`.
    pub fn open(&self, sid: &str, sealed: &str) -> Result<Zeroizing<String>, SealError> {
        let err = SealError::Open(self.purpose.what());
        let raw = sealed
            .strip_prefix(PREFIX)
            .and_then(|b| STANDARD_NO_PAD.decode(b).ok())
            .filter(|r| r.len() >= NONCE_LEN)
            .ok_or_else(|| err.clone())?;
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| err.clone())?;
        let mut buf = Zeroizing::new(body.to_vec());
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(sid.as_bytes()), &mut buf)
            .map_err(|_| err.clone())?;
        let text = std::str::from_utf8(plain).map_err(|_| err)?;
        Ok(Zeroizing::new(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_for_the_same_row_purpose_and_key() {
        let k1 = PrivateKey::generate(2048).unwrap();
        let k2 = PrivateKey::generate(2048).unwrap();
        let a = SealingKey::derive(&k1, Purpose::ApiKeySecrets).unwrap();
        let a_again = SealingKey::derive(&k1, Purpose::ApiKeySecrets).unwrap();
        let other_purpose = SealingKey::derive(&k1, Purpose::SipPasswords).unwrap();
        let b = SealingKey::derive(&k2, Purpose::ApiKeySecrets).unwrap();
        let sealed = a.seal("SK1", "the-api-key-secret").unwrap();
        assert!(!sealed.contains("secret"));
        assert_eq!(
            a_again.open("SK1", &sealed).unwrap().as_str(),
            "the-api-key-secret"
        );
        let refused = Err(SealError::Open("API key secret"));
        assert_eq!(a.open("SK2", &sealed), refused);
        assert_eq!(b.open("SK1", &sealed), refused);
        assert_eq!(
            other_purpose.open("SK1", &sealed),
            Err(SealError::Open("SIP password"))
        );
        assert_eq!(a.open("SK1", "v1:AAAA"), refused);
        assert_ne!(a.seal("SK1", "x").unwrap(), a.seal("SK1", "x").unwrap());
    }
}
