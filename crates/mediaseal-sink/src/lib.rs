//! The sealing sink: the one way any media producer turns plaintext into a stored object.
//!
//! Every producer (the recording ingest doors, the composition worker, and next the call
//! recorder, the room workers and the transcription pipeline) asks the [`policy`] how its
//! product must be sealed, opens a [`SealingSink`] on an object key, writes plaintext into it as
//! it is produced, and either [`finish`](SealingSink::finish)es it into a [`Stored`] record or
//! abandons it. Only ciphertext leaves the sink; the only plaintext that survives a `write` is
//! what the caller's [`PlainTap`]s keep in memory.
//!
//! This crate can seal but cannot read anything back: it holds public keys only. Reading
//! at-rest objects is the separate `mediaseal-readback` crate, which needs the service's private
//! key; a process that only records (a room worker, the call relay) is built without it.

#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

mod keys;
pub mod policy;
mod sink;
mod tap;

pub use keys::{StoredKeyError, stored_public_key};
pub use policy::{CustomerKey, Decision, Notice, Product, Refusal, Seal};
pub use sink::{
    AT_REST_KEY_ID, SealingSink, SealingStream, SinkError, SinkFactory, Stored, receipt_object_meta,
};
pub use tap::{HeadTap, PlainTap};
