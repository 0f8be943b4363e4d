//! AES-256-GCM parameters shared by the single-tag envelopes and the native segments.

/// IV (nonce) length in bytes.
pub const IV_LEN: usize = mediaseal_lc::gcm::IV_LEN;
/// Authentication tag length in bytes.
pub const TAG_LEN: usize = mediaseal_lc::gcm::TAG_LEN;
