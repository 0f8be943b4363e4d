//! Safe wrappers over the AWS-LC primitives that `aws-lc-rs` does not expose.
//!
//! This crate is the only place in the mediaseal workspace where `unsafe` is allowed. Everything it
//! exports is a safe API; each `unsafe` block carries a `SAFETY:` comment stating why the pointers
//! and lengths handed to AWS-LC are valid. Keep it small: reach for `aws-lc-rs` first and add a
//! wrapper here only when a needed operation has no safe equivalent there.
//!
//! What lives here and why:
//! - [`gcm`]: incremental (streaming) AES-256-GCM with a single tag over the whole message. The
//!   `rsa-aes` and `s3-gcm` formats are single-tag GCM over objects of any size, and `aws-lc-rs`
//!   only offers one-shot AEAD calls, which would force the whole object into memory.
//! - [`ctr`]: AES-CTR keystream over a key schedule expanded once. SRTP encrypts one short packet
//!   per call with a fixed key; `aws-lc-rs` sets up an `EVP_CIPHER` context per call.
//! - [`hmac_sha1`]: HMAC-SHA1 with precomputed pad states and no per-message allocation, for SRTP
//!   packet authentication.

#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]
#![allow(
    unsafe_code,
    reason = "this crate is the workspace's one FFI boundary; see the crate docs"
)]

pub mod ctr;
pub mod gcm;
pub mod hmac_sha1;
