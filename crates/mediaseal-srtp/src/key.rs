//! Master keys: the secret an SDES line or a DTLS-SRTP exporter hands to a session.

use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::SrtpProfile;

const MAX_KEY_SALT: usize = 32 + 14;

/// A master key and master salt for one direction of one SRTP profile.
///
/// Zeroized on drop; `Debug` prints only the profile.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey {
    #[zeroize(skip)]
    profile: SrtpProfile,
    bytes: [u8; MAX_KEY_SALT],
}

/// A key or salt had the wrong length for its profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The master key length does not match the profile.
    #[error("{profile} needs a {expected}-byte master key, got {actual} bytes")]
    KeyLength {
        /// The profile the key was for.
        profile: SrtpProfile,
        /// Bytes the profile needs.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// The master salt length does not match the profile.
    #[error("{profile} needs a {expected}-byte master salt, got {actual} bytes")]
    SaltLength {
        /// The profile the salt was for.
        profile: SrtpProfile,
        /// Bytes the profile needs.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// The system random generator failed.
    #[error("could not generate a random key")]
    Random,
}

impl MasterKey {
    /// Builds a master key from separate key and salt (the DTLS-SRTP exporter layout).
    pub fn new(profile: SrtpProfile, key: &[u8], salt: &[u8]) -> Result<Self, KeyError> {
        let (kl, sl) = (profile.master_key_len(), profile.master_salt_len());
        if key.len() != kl {
            return Err(KeyError::KeyLength {
                profile,
                expected: kl,
                actual: key.len(),
            });
        }
        if salt.len() != sl {
            return Err(KeyError::SaltLength {
                profile,
                expected: sl,
                actual: salt.len(),
            });
        }
        let mut bytes = [0u8; MAX_KEY_SALT];
        bytes[..kl].copy_from_slice(key);
        bytes[kl..kl + sl].copy_from_slice(salt);
        Ok(Self { profile, bytes })
    }

    /// Builds a master key from `key ‖ salt` concatenated (the SDES `inline:` layout).
    pub fn from_key_salt(profile: SrtpProfile, key_salt: &[u8]) -> Result<Self, KeyError> {
        let kl = profile.master_key_len();
        let want = kl + profile.master_salt_len();
        if key_salt.len() != want {
            return Err(KeyError::KeyLength {
                profile,
                expected: want,
                actual: key_salt.len(),
            });
        }
        let (key, salt) = key_salt.split_at(kl);
        Self::new(profile, key, salt)
    }

    /// Generates a fresh random master key and salt with AWS-LC's CSPRNG.
    pub fn generate(profile: SrtpProfile) -> Result<Self, KeyError> {
        let mut bytes = [0u8; MAX_KEY_SALT];
        let n = profile.master_key_len() + profile.master_salt_len();
        aws_lc_rs::rand::fill(&mut bytes[..n]).map_err(|_| KeyError::Random)?;
        Ok(Self { profile, bytes })
    }

    /// The profile this key is for.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// The master key bytes. Secret: never log them.
    pub fn key(&self) -> &[u8] {
        &self.bytes[..self.profile.master_key_len()]
    }

    /// The master salt bytes. Secret: never log them.
    pub fn salt(&self) -> &[u8] {
        let kl = self.profile.master_key_len();
        &self.bytes[kl..kl + self.profile.master_salt_len()]
    }

    /// `key ‖ salt`, as carried in an SDES `inline:` parameter. Secret: never log it.
    pub fn key_salt(&self) -> &[u8] {
        &self.bytes[..self.profile.master_key_len() + self.profile.master_salt_len()]
    }
}

impl PartialEq for MasterKey {
    /// Constant-time in the key bytes.
    fn eq(&self, other: &Self) -> bool {
        self.profile == other.profile
            && self
                .bytes
                .iter()
                .zip(other.bytes.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

impl Eq for MasterKey {}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_validates() {
        let ks: Vec<u8> = (0..30).collect();
        let k = MasterKey::from_key_salt(SrtpProfile::AesCm128HmacSha1_80, &ks).unwrap();
        assert_eq!(k.key(), &ks[..16]);
        assert_eq!(k.salt(), &ks[16..]);
        assert_eq!(k.key_salt(), &ks[..]);
        assert!(matches!(
            MasterKey::from_key_salt(SrtpProfile::AeadAes128Gcm, &ks),
            Err(KeyError::KeyLength {
                expected: 28,
                actual: 30,
                ..
            })
        ));
        assert!(MasterKey::new(SrtpProfile::AeadAes256Gcm, &[0; 32], &[0; 14]).is_err());
    }

    #[test]
    fn debug_is_redacted_and_generate_is_random() {
        let a = MasterKey::generate(SrtpProfile::AesCm128HmacSha1_80).unwrap();
        let b = MasterKey::generate(SrtpProfile::AesCm128HmacSha1_80).unwrap();
        assert_ne!(a, b);
        let dbg = format!("{a:?}");
        assert!(!dbg.contains(&format!("{:?}", a.key())));
        assert!(dbg.contains("AesCm128HmacSha1_80"));
    }
}
