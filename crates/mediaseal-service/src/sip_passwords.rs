//! SIP credential passwords, sealed for storage.
//!
//! A digest HA1 is `H(username:realm:password)` and the realm is the SIP Domain's name, so a
//! credential list mapped to a domain later (or to several) needs the password itself. It is
//! therefore kept sealed: AES-256-GCM under a key derived (HKDF-SHA256) from the service's
//! at-rest private key, with the credential's SID as associated data, so a sealed password
//! copied onto another row does not open. Nodes sharing the at-rest key share this key. The
//! plaintext exists only in [`Zeroizing`] buffers while an HA1 is derived.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use mediaseal_crypto::PrivateKey;
use zeroize::Zeroizing;

/// Salt of the derivation: this key's purpose, so it never equals any other key derived from
/// the at-rest key.
const SALT: &[u8] = b"mediaseal sip credential passwords v1";
/// Prefix of a sealed value: the scheme, for a later change of it.
const PREFIX: &str = "v1:";

/// Why a password could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SipPasswordError {
    /// The at-rest key could not be encoded to derive from.
    #[error("cannot derive the SIP password key from the at-rest key: {0}")]
    Derive(String),
    /// No randomness for a nonce.
    #[error("no randomness available to seal a SIP password")]
    Random,
    /// The sealed value is damaged, for another credential, or from another at-rest key.
    #[error(
        "a stored SIP password does not open with this node's at-rest key (damaged, or sealed \
         by a node with another key)"
    )]
    Open,
}

/// The key that seals SIP credential passwords (see the module docs).
pub struct SipPasswordKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for SipPasswordKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipPasswordKey").finish_non_exhaustive()
    }
}

impl SipPasswordKey {
    /// Derives the key from the at-rest private key.
    pub fn derive(at_rest: &PrivateKey) -> Result<Self, SipPasswordError> {
        let pem = at_rest
            .to_pkcs8_pem()
            .map_err(|e| SipPasswordError::Derive(e.to_string()))?;
        let prk = Salt::new(HKDF_SHA256, SALT).extract(pem.as_bytes());
        let okm = prk
            .expand(&[b"aes-256-gcm"], &AES_256_GCM)
            .map_err(|_| SipPasswordError::Derive("HKDF expand failed".to_owned()))?;
        Ok(Self {
            key: LessSafeKey::new(UnboundKey::from(okm)),
        })
    }

    /// Seals `password` for the credential `credential_sid`.
    pub fn seal(&self, credential_sid: &str, password: &str) -> Result<String, SipPasswordError> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| SipPasswordError::Random)?;
        let mut buf = Zeroizing::new(password.as_bytes().to_vec());
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(credential_sid.as_bytes()),
                &mut *buf,
            )
            .map_err(|_| SipPasswordError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(format!("{PREFIX}{}", STANDARD_NO_PAD.encode(out)))
    }

    /// Opens what [`Self::seal`] made for `credential_sid`.
    pub fn open(
        &self,
        credential_sid: &str,
        sealed: &str,
    ) -> Result<Zeroizing<String>, SipPasswordError> {
        let raw = sealed
            .strip_prefix(PREFIX)
            .and_then(|b| STANDARD_NO_PAD.decode(b).ok())
            .filter(|r| r.len() >= NONCE_LEN)
            .ok_or(SipPasswordError::Open)?;
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SipPasswordError::Open)?;
        let mut buf = Zeroizing::new(body.to_vec());
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(credential_sid.as_bytes()), &mut buf)
            .map_err(|_| SipPasswordError::Open)?;
        let text = std::str::from_utf8(plain).map_err(|_| SipPasswordError::Open)?;
        Ok(Zeroizing::new(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_for_the_same_credential_and_key() {
        let k1 = PrivateKey::generate(2048).unwrap();
        let k2 = PrivateKey::generate(2048).unwrap();
        let a = SipPasswordKey::derive(&k1).unwrap();
        let a_again = SipPasswordKey::derive(&k1).unwrap();
        let b = SipPasswordKey::derive(&k2).unwrap();
        let sealed = a.seal("CR1", "Secret-Passw0rd").unwrap();
        assert!(!sealed.contains("Secret"));
        assert_eq!(
            a_again.open("CR1", &sealed).unwrap().as_str(),
            "Secret-Passw0rd"
        );
        assert_eq!(a.open("CR2", &sealed), Err(SipPasswordError::Open));
        assert_eq!(b.open("CR1", &sealed), Err(SipPasswordError::Open));
        assert_eq!(a.open("CR1", "v1:AAAA"), Err(SipPasswordError::Open));
        assert_ne!(a.seal("CR1", "x").unwrap(), a.seal("CR1", "x").unwrap());
    }
}
