//! The recording rules a client set on a group room (`room_recording_rules`).

/// A room's recording rules, as last set through the REST API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRecordingRules {
    /// Owner (the room's account).
    pub account_sid: String,
    /// `RM…`.
    pub room_sid: String,
    /// The rules as a JSON array, in the API's shape (checked by the API before it is stored).
    pub rules: String,
    /// When rules were first set.
    pub date_created: i64,
    /// When they were last set.
    pub date_updated: i64,
}
