//! Conversational Intelligence records: services (`GA…`) and transcripts (`GT…`).
//!
//! No transcript text is here: a transcript's sentences are one sealed object, named by
//! [`Transcript::object_key`].

use super::spelling::spelled_enum;
use super::voice::Sealing;

spelled_enum! {
    /// Where a transcript is (`transcripts.status`).
    pub enum TranscriptStatus ("transcript status") {
        /// Accepted, waiting for the recogniser.
        Queued = "queued",
        /// Being recognised and sealed.
        InProgress = "in-progress",
        /// Sentences sealed and stored.
        Completed = "completed",
        /// Nothing usable was produced; `error_message` says why.
        Failed = "failed",
    }
}

/// An Intelligence Service: the settings transcripts are made under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntelligenceService {
    /// `GA…`.
    pub sid: String,
    /// Owner.
    pub account_sid: String,
    /// Unique per account.
    pub unique_name: String,
    /// Free text.
    pub friendly_name: Option<String>,
    /// BCP-47 language of the calls, e.g. `en-US`.
    pub language_code: String,
    /// Transcribe every new recording of the account (those sealed at rest, for now).
    pub auto_transcribe: bool,
    /// Keep an operator-readable second copy; only an operator can turn it on (seed 002).
    pub data_logging: bool,
    /// Serve redacted sentences by default.
    pub auto_redaction: bool,
    /// Make a redacted copy of the audio.
    pub media_redaction: bool,
    /// Where transcript events go.
    pub webhook_url: Option<String>,
    /// `GET` or `POST` (an [`HttpMethod`](crate::model::HttpMethod) spelling).
    pub webhook_http_method: Option<String>,
    /// The account's `CR…` public key that transcripts are sealed with, if any.
    pub encryption_credential_sid: Option<String>,
    /// Bumped by every update; the `ETag`.
    pub version: i64,
    /// Creation time.
    pub date_created: i64,
    /// Last change.
    pub date_updated: i64,
}

/// What an update of a service did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceUpdate {
    /// Stored.
    Updated,
    /// Another service of the account has the unique name.
    DuplicateName,
    /// The service changed (or was deleted) since the expected version.
    VersionMismatch,
}

/// A transcript of a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    /// `GT…`.
    pub sid: String,
    /// Owner.
    pub account_sid: String,
    /// The `GA…` service it was made under.
    pub service_sid: String,
    /// A [`TranscriptStatus`] spelling.
    pub status: String,
    /// The `Channel` JSON as accepted (normalised).
    pub channel: String,
    /// The `RE…` recording transcribed, if the source was one.
    pub source_sid: Option<String>,
    /// The service's language at creation.
    pub language_code: String,
    /// The customer's own reference (≤ 64 characters).
    pub customer_key: Option<String>,
    /// `MediaStartTime`, µs.
    pub media_start_time: Option<i64>,
    /// Audio length in seconds, once known.
    pub duration: Option<i64>,
    /// The service's data logging at creation.
    pub data_logging: bool,
    /// The service's redaction at creation.
    pub redaction: bool,
    /// The key the sentences are sealed with, when the customer's.
    pub encryption_credential_sid: Option<String>,
    /// How the sentences object is sealed (`none` until it exists).
    pub sealing: Sealing,
    /// The sealed sentences.
    pub object_key: Option<String>,
    /// Data logging's second copy of a customer-sealed transcript, sealed at rest.
    pub log_object_key: Option<String>,
    /// The redacted sentences (PII replaced by its type), sealed like the sentences, when the
    /// service redacts.
    pub redacted_object_key: Option<String>,
    /// The service's `MediaRedaction` at creation: make a copy of the audio with the PII
    /// silenced.
    pub media_redaction: bool,
    /// That copy (a WAV in the source's format), sealed like the sentences.
    pub redacted_media_key: Option<String>,
    /// Number of sentences sealed.
    pub sentence_count: i64,
    /// Why it failed (never transcript text).
    pub error_message: Option<String>,
    /// Deleted: metadata kept, object destroyed.
    pub deleted: bool,
    /// Creation time.
    pub date_created: i64,
    /// Last change.
    pub date_updated: i64,
    /// The node whose job owns a `queued` or `in-progress` transcript (`None` once it ended).
    pub lease_owner: Option<String>,
    /// Until when (µs) that job's lease holds; its node renews it while the job lives, so a
    /// lapsed lease means the job died with its node.
    pub lease_until: Option<i64>,
}

/// A transcript claimed after its job died with its node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbandonedTranscript {
    /// The row, with the claiming node's lease.
    pub transcript: Transcript,
    /// How many times it was claimed so, this claim included.
    pub recoveries: i64,
}

/// Filters of the transcript list.
#[derive(Debug, Clone, Default)]
pub struct TranscriptFilter {
    /// Only transcripts of this service.
    pub service_sid: Option<String>,
    /// Only in this status.
    pub status: Option<String>,
    /// Only of this source recording.
    pub source_sid: Option<String>,
    /// Created at or after (µs).
    pub created_after: Option<i64>,
    /// Created at or before (µs).
    pub created_before: Option<i64>,
}
