//! Room participants (`PA…`): who connected to a video room's media process, and when they left.

use super::spelling::spelled_enum;

spelled_enum! {
    /// Where a participant is (`room_participants.status`).
    pub enum ParticipantStatus ("participant status") {
        /// Its media connection is up.
        Connected = "connected",
        /// It left, was kicked, or its room ended.
        Disconnected = "disconnected",
    }
}

/// A participant of a room (`PA…`): one connection of one identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// `PA…`.
    pub sid: String,
    /// Owner (the room's account).
    pub account_sid: String,
    /// `RM…`.
    pub room_sid: String,
    /// The identity of its Access Token.
    pub identity: String,
    /// A [`ParticipantStatus`] spelling: `connected` or `disconnected`.
    pub status: String,
    /// When its media connection came up.
    pub start_time: i64,
    /// When it disconnected.
    pub end_time: Option<i64>,
    /// Seconds connected, once disconnected.
    pub duration: Option<i64>,
    /// Creation time.
    pub date_created: i64,
    /// Last change.
    pub date_updated: i64,
}

/// Filters of a room's participant list.
#[derive(Debug, Clone, Default)]
pub struct ParticipantFilter {
    /// Only participants in this status.
    pub status: Option<String>,
    /// Only participants with this identity.
    pub identity: Option<String>,
    /// Created at or after (µs).
    pub created_after: Option<i64>,
    /// Created at or before (µs).
    pub created_before: Option<i64>,
}

spelled_enum! {
    /// What a published track carries (`room_published_tracks.kind`).
    pub enum PublishedTrackKind ("published track kind") {
        /// Audio.
        Audio = "audio",
        /// Video.
        Video = "video",
        /// Data.
        Data = "data",
    }
}

/// A track a participant publishes now (`MT…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedTrack {
    /// `MT…`, made by the room's process.
    pub sid: String,
    /// Owner (the room's account).
    pub account_sid: String,
    /// `RM…`.
    pub room_sid: String,
    /// `PA…` of the publisher.
    pub participant_sid: String,
    /// A [`PublishedTrackKind`] spelling: `audio`, `video` or `data`.
    pub kind: String,
    /// The publisher's name for it.
    pub name: String,
    /// Not muted.
    pub enabled: bool,
    /// Creation time.
    pub date_created: i64,
    /// Last change.
    pub date_updated: i64,
}

/// A track a participant receives now (`MT…` of the publisher's track, seen from a subscriber).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribedTrack {
    /// `MT…` of the published track.
    pub sid: String,
    /// Owner (the room's account).
    pub account_sid: String,
    /// `RM…`.
    pub room_sid: String,
    /// `PA…` of the subscriber.
    pub participant_sid: String,
    /// `PA…` of the publisher.
    pub publisher_sid: String,
    /// A [`PublishedTrackKind`] spelling: `audio`, `video` or `data`.
    pub kind: String,
    /// The publisher's name for it.
    pub name: String,
    /// Not muted.
    pub enabled: bool,
    /// Creation time.
    pub date_created: i64,
    /// Last change.
    pub date_updated: i64,
}
