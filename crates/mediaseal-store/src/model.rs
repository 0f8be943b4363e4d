//! The records the metadata store keeps. Times are microseconds since the Unix epoch.
//!
//! Nothing here is ever plaintext media, a transcript, a private key or a CEK: the store holds
//! SIDs, settings, public keys, wrapped keys and the bookkeeping around sealed objects.

use serde::{Deserialize, Serialize};

/// An account or subaccount (`AC…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// `AC…`.
    pub sid: String,
    /// The owning account, for subaccounts.
    pub parent_sid: Option<String>,
    /// Display name.
    pub friendly_name: String,
    /// `active`, `suspended` or `closed`.
    pub status: String,
    /// The auth token. Kept because webhook signatures are keyed with it (twilio-api.md §2.2).
    pub auth_token: String,
    /// Creation time.
    pub date_created: i64,
    /// Last change.
    pub date_updated: i64,
}

/// An API key (`SK…`). Only a SHA-256 of the secret is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// `SK…`.
    pub sid: String,
    /// The account the key acts for.
    pub account_sid: String,
    /// Display name.
    pub friendly_name: String,
    /// Hex SHA-256 of the secret.
    pub secret_hash: String,
    /// Creation time.
    pub date_created: i64,
    /// Last change.
    pub date_updated: i64,
}

/// A customer public key resource (`CR…`). The key itself is never returned by the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyRecord {
    /// `CR…`.
    pub sid: String,
    /// Owner.
    pub account_sid: String,
    /// Display name.
    pub friendly_name: String,
    /// Hex of the SubjectPublicKeyInfo DER.
    pub spki_der_hex: String,
    /// Hex SHA-256 of the SPKI DER.
    pub fingerprint: String,
    /// Creation time; "most recently added" is the largest.
    pub date_created: i64,
    /// Last change.
    pub date_updated: i64,
}

/// Voice recording encryption settings of one account.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordingSettings {
    /// Owner.
    pub account_sid: String,
    /// Seal new recordings with the customer's key.
    pub encryption_enabled: bool,
    /// The configured key.
    pub encryption_public_key_sid: Option<String>,
    /// Creation time.
    pub date_created: i64,
    /// Last change.
    pub date_updated: i64,
}

/// How a stored object is sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sealing {
    /// With the customer's public key: the service cannot read it.
    Customer,
    /// With the service's own at-rest key: decrypted on download.
    AtRest,
    /// Nothing is stored (failed or deleted).
    None,
}

impl Sealing {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::AtRest => "at_rest",
            Self::None => "none",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Self {
        match s {
            "customer" => Self::Customer,
            "at_rest" => Self::AtRest,
            _ => Self::None,
        }
    }
}

/// A voice recording (`RE…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    /// `RE…`.
    pub sid: String,
    /// Owner.
    pub account_sid: String,
    /// Parent call.
    pub call_sid: Option<String>,
    /// Conference, for conference recordings.
    pub conference_sid: Option<String>,
    /// 1 or 2.
    pub channels: i64,
    /// e.g. `OutboundAPI`, `DialVerb`.
    pub source: String,
    /// `inbound`, `outbound`, `both`.
    pub track: Option<String>,
    /// Seconds.
    pub duration: Option<i64>,
    /// `processing`, `completed`, `failed`, `deleted`, …
    pub status: String,
    /// 16104 when sealing failed.
    pub error_code: Option<i64>,
    /// When the recording started.
    pub start_time: i64,
    /// Creation time.
    pub date_created: i64,
    /// Last change.
    pub date_updated: i64,
    /// `encryption_details` JSON when sealed with the customer's key.
    pub encryption_details: Option<String>,
    /// Which key sealed the object.
    pub sealing: Sealing,
    /// Where the sealed object is, while it exists.
    pub object_key: Option<String>,
    /// Bytes stored.
    pub sealed_size: i64,
    /// Bytes received.
    pub plain_size: i64,
    /// Content type of the media as received (e.g. `audio/x-wav`).
    pub content_type: String,
    /// False until the object is durably stored; invisible rows are swept if never finished.
    pub visible: bool,
    /// Soft-deleted: metadata kept, object destroyed.
    pub deleted: bool,
    /// When it was deleted.
    pub date_deleted: Option<i64>,
}

/// Filters of the recording list.
#[derive(Debug, Clone, Default)]
pub struct RecordingFilter {
    /// Only recordings of this call.
    pub call_sid: Option<String>,
    /// Only recordings of this conference.
    pub conference_sid: Option<String>,
    /// Created at or after (µs).
    pub created_from: Option<i64>,
    /// Created before (µs).
    pub created_before: Option<i64>,
    /// Include soft-deleted recordings.
    pub include_deleted: bool,
}

/// A debugger notification (`NO…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// `NO…`.
    pub sid: String,
    /// Owner.
    pub account_sid: String,
    /// Related call, if any.
    pub call_sid: Option<String>,
    /// Related resource, e.g. the recording.
    pub resource_sid: Option<String>,
    /// Twilio error code, e.g. 16104.
    pub error_code: i64,
    /// 0 = error, 1 = warning.
    pub log_level: i64,
    /// What happened.
    pub message_text: String,
    /// Documentation link.
    pub more_info: String,
    /// The request that caused it.
    pub request_method: Option<String>,
    /// The request that caused it.
    pub request_url: Option<String>,
    /// Creation time.
    pub date_created: i64,
}

/// A webhook waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// Also sent as the `I-Twilio-Idempotency-Token` header.
    pub id: String,
    /// The account whose auth token signs it.
    pub account_sid: String,
    /// The resource it reports on.
    pub resource_sid: String,
    /// Where to deliver.
    pub url: String,
    /// `GET` or `POST`.
    pub method: String,
    /// Form parameters as a JSON array of `[name, value]` pairs.
    pub params: String,
    /// Deliveries tried so far.
    pub attempts: i64,
    /// Earliest next try (µs).
    pub next_attempt_at: i64,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// Why the last try failed.
    pub last_error: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Delivery time.
    pub delivered_at: Option<i64>,
}

/// A position in a newest-first listing: the last item of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// `date_created` of the last item shown.
    pub date_created: i64,
    /// `sid` of the last item shown.
    pub sid: String,
}
