//! Voice recordings, their settings, how objects are sealed, and debugger notifications.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::spelling::{UnknownValue, spelled_enum};

spelled_enum! {
    /// Where a voice recording is (`recordings.status`; twilio-api.md, Recording resource).
    pub enum RecordingStatus ("recording status") {
        /// Being recorded.
        InProgress = "in-progress",
        /// Recording paused.
        Paused = "paused",
        /// Recording stopped.
        Stopped = "stopped",
        /// Being sealed and stored.
        Processing = "processing",
        /// Stored.
        Completed = "completed",
        /// Nothing was recorded.
        Absent = "absent",
        /// Sealing failed; nothing is stored.
        Failed = "failed",
        /// Deleted: metadata kept, object destroyed.
        Deleted = "deleted",
    }
}

/// How a stored object is sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// Every value, in declaration order.
    pub const ALL: &'static [Self] = &[Self::Customer, Self::AtRest, Self::None];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::AtRest => "at_rest",
            Self::None => "none",
        }
    }

    /// Parses the stored spelling leniently: anything unknown is [`Sealing::None`]. The row
    /// readers use the strict [`FromStr`] instead, which refuses unknown spellings.
    pub fn parse(s: &str) -> Self {
        s.parse().unwrap_or(Self::None)
    }
}

impl FromStr for Sealing {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "customer" => Ok(Self::Customer),
            "at_rest" => Ok(Self::AtRest),
            "none" => Ok(Self::None),
            _ => Err(UnknownValue {
                what: "sealing",
                value: s.to_owned(),
            }),
        }
    }
}

impl fmt::Display for Sealing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
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
    /// A [`RecordingStatus`] spelling: `processing`, `completed`, `failed`, `deleted`, …
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
    /// While reserved: what the service needs to report the recording as failed if a crash
    /// cuts the upload off (its own JSON; the store keeps it opaque).
    pub interruption: Option<String>,
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
