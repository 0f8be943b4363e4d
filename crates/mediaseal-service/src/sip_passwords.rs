//! SIP credential passwords, sealed for storage.
//!
//! A digest HA1 is `H(username:realm:password)` and the realm is the SIP Domain's name, so a
//! credential list mapped to a domain later (or to several) needs the password itself. It is
//! therefore kept sealed ([`crate::sealed`], purpose [`Purpose::SipPasswords`]), with the
//! credential's SID as associated data. The plaintext exists only in [`Zeroizing`] buffers
//! while an HA1 is derived.

use mediaseal_crypto::PrivateKey;
use zeroize::Zeroizing;

use crate::sealed::{Purpose, SealError, SealingKey};

/// Why a password could not be sealed or opened.
pub type SipPasswordError = SealError;

/// The key that seals SIP credential passwords (see the module docs).
#[derive(Debug)]
pub struct SipPasswordKey(SealingKey);

impl SipPasswordKey {
    /// Derives the key from the at-rest private key.
    pub fn derive(at_rest: &PrivateKey) -> Result<Self, SipPasswordError> {
        SealingKey::derive(at_rest, Purpose::SipPasswords).map(Self)
    }

    /// Seals `password` for the credential `credential_sid`.
    pub fn seal(&self, credential_sid: &str, password: &str) -> Result<String, SipPasswordError> {
        self.0.seal(credential_sid, password)
    }

    /// Opens what [`Self::seal`] made for `credential_sid`.
    pub fn open(
        &self,
        credential_sid: &str,
        sealed: &str,
    ) -> Result<Zeroizing<String>, SipPasswordError> {
        self.0.open(credential_sid, sealed)
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
        let refused = Err(SipPasswordError::Open("SIP password"));
        assert_eq!(a.open("CR2", &sealed), refused);
        assert_eq!(b.open("CR1", &sealed), refused);
        assert_eq!(a.open("CR1", "v1:AAAA"), refused);
        assert_ne!(a.seal("CR1", "x").unwrap(), a.seal("CR1", "x").unwrap());
    }
}
