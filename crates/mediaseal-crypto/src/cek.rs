//! The per-object content-encryption key (CEK) and how it is wrapped to an RSA key.

use core::fmt;

use aws_lc_rs::rsa::{
    OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
    Pkcs1PrivateDecryptingKey, Pkcs1PublicEncryptingKey,
};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::keys::{PrivateKey, PublicKey};

/// Length of a content-encryption key: AES-256.
pub const CEK_LEN: usize = 32;

/// A 256-bit content-encryption key. Zeroized on drop; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ContentKey([u8; CEK_LEN]);

impl fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ContentKey([redacted])")
    }
}

/// Wrapping a key failed inside the crypto library.
#[derive(Debug, thiserror::Error)]
#[error("the crypto library could not wrap the content key to the RSA public key")]
pub struct WrapError;

/// Unwrapping failed. Deliberately says nothing about why: any detail here is a padding oracle.
#[derive(Debug, thiserror::Error)]
#[error("the private key could not unwrap the content key")]
pub struct UnwrapError;

impl ContentKey {
    /// A fresh key from the system CSPRNG.
    pub fn generate() -> Self {
        let mut key = [0u8; CEK_LEN];
        fill_random(&mut key);
        Self(key)
    }

    /// Wraps an existing 32-byte key (e.g. one just unwrapped by a caller).
    pub fn from_bytes(bytes: [u8; CEK_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw key bytes, for handing to a cipher.
    pub fn expose(&self) -> &[u8; CEK_LEN] {
        &self.0
    }

    /// RSAES-OAEP with SHA-256 and MGF1-SHA-256, empty label: the `rsa-aes`, `s3-gcm` and native wrap.
    pub fn wrap_oaep(&self, to: &PublicKey) -> Result<Vec<u8>, WrapError> {
        let key = OaepPublicEncryptingKey::new(to.inner().clone()).map_err(|_| WrapError)?;
        let mut out = vec![0u8; key.ciphertext_size()];
        let len = key
            .encrypt(&OAEP_SHA256_MGF1SHA256, &self.0, &mut out, None)
            .map_err(|_| WrapError)?
            .len();
        out.truncate(len);
        Ok(out)
    }

    /// Undoes [`ContentKey::wrap_oaep`].
    pub fn unwrap_oaep(wrapped: &[u8], with: &PrivateKey) -> Result<Self, UnwrapError> {
        let key = OaepPrivateDecryptingKey::new(with.inner().clone()).map_err(|_| UnwrapError)?;
        let mut out = zeroize::Zeroizing::new(vec![0u8; key.min_output_size()]);
        let plain = key
            .decrypt(&OAEP_SHA256_MGF1SHA256, wrapped, &mut out, None)
            .map_err(|_| UnwrapError)?;
        let bytes: [u8; CEK_LEN] = (&*plain).try_into().map_err(|_| UnwrapError)?;
        Ok(Self(bytes))
    }

    /// RSA PKCS#1 v1.5 encryption: the `s3-cbc` wrap, which `openssl rsautl -decrypt` undoes.
    ///
    /// Kept only because the seed's video format requires it; see [`ContentKey::unwrap_pkcs1_implicit`].
    pub fn wrap_pkcs1(&self, to: &PublicKey) -> Result<Vec<u8>, WrapError> {
        let key = Pkcs1PublicEncryptingKey::new(to.inner().clone()).map_err(|_| WrapError)?;
        let mut out = vec![0u8; key.ciphertext_size()];
        let len = key.encrypt(&self.0, &mut out).map_err(|_| WrapError)?.len();
        out.truncate(len);
        Ok(out)
    }

    /// Undoes [`ContentKey::wrap_pkcs1`] without revealing whether the padding was valid.
    ///
    /// PKCS#1 v1.5 unwrapping is the Bleichenbacher/Marvin surface. Instead of failing on bad
    /// padding (or a wrong length), this returns a random key, exactly as TLS servers do, so the
    /// only observable outcome is the later, coarse "decryption failed" of the content itself.
    pub fn unwrap_pkcs1_implicit(wrapped: &[u8], with: &PrivateKey) -> Self {
        let mut fallback = Self::generate();
        let Ok(key) = Pkcs1PrivateDecryptingKey::new(with.inner().clone()) else {
            return fallback;
        };
        let mut out = zeroize::Zeroizing::new(vec![0u8; key.min_output_size()]);
        let unwrapped = key
            .decrypt(wrapped, &mut out)
            .ok()
            .filter(|p| p.len() == CEK_LEN);
        if let Some(plain) = unwrapped {
            fallback.0.copy_from_slice(plain);
        }
        fallback
    }
}

/// Fills `dest` from the system CSPRNG. Failure here means the OS cannot provide randomness at
/// all, and continuing would produce predictable keys, so it aborts.
pub(crate) fn fill_random(dest: &mut [u8]) {
    #[allow(
        clippy::expect_used,
        reason = "no safe way to continue without randomness"
    )]
    aws_lc_rs::rand::fill(dest).expect("the system random number generator failed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oaep_round_trip_and_wrong_key() {
        let k1 = PrivateKey::generate(2048).unwrap();
        let k2 = PrivateKey::generate(2048).unwrap();
        let cek = ContentKey::generate();
        let wrapped = cek.wrap_oaep(k1.public_key()).unwrap();
        assert_eq!(wrapped.len(), 256);
        assert_eq!(
            ContentKey::unwrap_oaep(&wrapped, &k1).unwrap().expose(),
            cek.expose()
        );
        assert!(ContentKey::unwrap_oaep(&wrapped, &k2).is_err());
        assert!(ContentKey::unwrap_oaep(&wrapped[1..], &k1).is_err());
    }

    #[test]
    fn pkcs1_round_trip_and_implicit_rejection() {
        let k1 = PrivateKey::generate(2048).unwrap();
        let k2 = PrivateKey::generate(2048).unwrap();
        let cek = ContentKey::generate();
        let wrapped = cek.wrap_pkcs1(k1.public_key()).unwrap();
        assert_eq!(
            ContentKey::unwrap_pkcs1_implicit(&wrapped, &k1).expose(),
            cek.expose()
        );
        // A wrong key yields some other key, never an error that distinguishes padding failures.
        assert_ne!(
            ContentKey::unwrap_pkcs1_implicit(&wrapped, &k2).expose(),
            cek.expose()
        );
        assert_ne!(
            ContentKey::unwrap_pkcs1_implicit(b"short", &k1).expose(),
            cek.expose()
        );
    }

    #[test]
    fn content_keys_are_wiped_when_dropped() {
        fn assert_zeroize_on_drop<T: ZeroizeOnDrop>() {}
        assert_zeroize_on_drop::<ContentKey>();
        let mut key = ContentKey::from_bytes([0xa5; CEK_LEN]);
        key.zeroize();
        assert_eq!(key.expose(), &[0u8; CEK_LEN]);
    }

    #[test]
    fn debug_is_redacted() {
        assert_eq!(
            format!("{:?}", ContentKey::generate()),
            "ContentKey([redacted])"
        );
    }
}
