//! Conversational Intelligence operators: the account's custom operators (`LY…`), which
//! operators a service runs, and where a transcript's operator results are sealed.
//!
//! No result text is here: each result is one sealed object, named by
//! [`OperatorResultRecord::object_key`].

use super::voice::Sealing;

/// A custom operator of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomOperator {
    /// `LY…`.
    pub sid: String,
    /// Owner.
    pub account_sid: String,
    /// Free text, up to 64 characters.
    pub friendly_name: String,
    /// The operator type's name (`phrase-matching`).
    pub operator_type: String,
    /// The configuration as accepted (normalised JSON).
    pub config: String,
    /// Bumped by every update; the `ETag`.
    pub version: i64,
    /// Creation time.
    pub date_created: i64,
    /// Last change.
    pub date_updated: i64,
}

/// What an update of a custom operator did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorUpdate {
    /// Stored.
    Updated,
    /// The operator changed (or was deleted) since the expected version.
    VersionMismatch,
}

/// One operator's result for a transcript: where it is sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorResultRecord {
    /// Owner.
    pub account_sid: String,
    /// The `GT…` transcript.
    pub transcript_sid: String,
    /// The `LY…` operator.
    pub operator_sid: String,
    /// The result's `operator_type` (`pii-extract`, `extract`).
    pub operator_type: String,
    /// The operator's name when it ran.
    pub name: String,
    /// How the object is sealed.
    pub sealing: Sealing,
    /// The sealed result.
    pub object_key: String,
    /// Data logging's second copy of a customer-sealed result, sealed at rest.
    pub log_object_key: Option<String>,
    /// When it was stored.
    pub date_created: i64,
}
