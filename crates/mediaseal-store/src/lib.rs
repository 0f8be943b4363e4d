//! Storage for mediaseal: metadata and sealed objects, each behind a trait.
//!
//! - Metadata: [`MetadataStore`], implemented by [`SqlStore`] on SQLite (embedded default) or
//!   PostgreSQL (several nodes), with one set of portable migrations.
//! - Objects: [`ObjectStore`], implemented by [`FsObjectStore`] (a directory; the embedded
//!   default) and [`S3ObjectStore`] (any S3-compatible store; several nodes). Only ciphertext
//!   is ever handed to an object store.
//!
//! Inside, dependencies point one way: records (`model`) ← traits (`meta`) ← SQL
//! implementations (`sql`); objects (`objects`, `s3`) use only the records and the error.
//! [`video`] gathers the video records and trait under the path the API layer uses.

#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

mod error;
mod meta;
pub mod model;
mod objects;
pub mod perms;
mod s3;
mod sql;
pub mod video;

pub use error::StoreError;
pub use meta::{
    AccountStore, CallStore, IntelligenceStore, MetadataStore, OperatorStore, OutboxStore,
    ParticipantStore, RecordingRuleStore, SipStore, StoreResult, VideoStore, VoiceStore,
};
pub use objects::{
    ByteStream, FsObjectStore, ObjectInfo, ObjectMeta, ObjectStore, ObjectWriter, ReadSeek,
    validate_key,
};
pub use s3::{S3Config, S3ObjectStore};
pub use sql::{Dialect, SqlStore, redact_url};
