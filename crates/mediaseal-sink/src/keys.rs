//! Public keys as the metadata store keeps them (hex of the SubjectPublicKeyInfo DER), parsed
//! in this one place.

use mediaseal_crypto::PublicKey;
use mediaseal_store::model::PublicKeyRecord;

/// A stored public key that no longer parses: the database was altered or damaged.
#[derive(Debug, thiserror::Error)]
#[error(
    "stored public key {sid} is damaged and cannot be used; delete it and upload the key again"
)]
pub struct StoredKeyError {
    /// The key's `CR…` SID.
    pub sid: String,
}

/// The RSA public key of a stored `CR…` record.
pub fn stored_public_key(record: &PublicKeyRecord) -> Result<PublicKey, StoredKeyError> {
    let damaged = || StoredKeyError {
        sid: record.sid.clone(),
    };
    let hex = record.spki_der_hex.as_bytes();
    if !hex.len().is_multiple_of(2) {
        return Err(damaged());
    }
    let der = hex
        .chunks_exact(2)
        .map(|pair| {
            core::str::from_utf8(pair)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(damaged)?;
    PublicKey::from_der(&der).map_err(|_| damaged())
}
