//! Video records: recording and composition settings, rooms, track recordings, compositions
//! (which are also the composition job queue) and composition hooks.
//!
//! Like the rest of the store, nothing here is media: only SIDs, settings, track descriptions and
//! the bookkeeping around sealed objects.

use super::spelling::spelled_enum;
use super::voice::Sealing;

spelled_enum! {
    /// Which of the two independent video settings resources (`video_settings.kind`).
    pub enum SettingsKind ("video settings kind") {
        /// `/v1/RecordingSettings/Default`: track recordings.
        Recording = "recording",
        /// `/v1/CompositionSettings/Default`: compositions.
        Composition = "composition",
    }
}

spelled_enum! {
    /// Where a room is (`rooms.status`).
    pub enum RoomStatus ("room status") {
        /// Participants may connect.
        InProgress = "in-progress",
        /// Ended.
        Completed = "completed",
        /// Ended by an error.
        Failed = "failed",
    }
}

spelled_enum! {
    /// The kind of a room (`rooms.room_type`).
    pub enum RoomType ("room type") {
        /// A group room.
        Group = "group",
        /// A WebRTC Go room.
        Go = "go",
        /// Media relayed between two peers.
        PeerToPeer = "peer-to-peer",
        /// A small group room.
        GroupSmall = "group-small",
    }
}

spelled_enum! {
    /// Where a track recording is (`track_recordings.status`).
    pub enum TrackRecordingStatus ("track recording status") {
        /// Being sealed and stored.
        Processing = "processing",
        /// Stored.
        Completed = "completed",
        /// Deleted: metadata kept, object destroyed.
        Deleted = "deleted",
        /// Nothing usable is stored.
        Failed = "failed",
    }
}

spelled_enum! {
    /// The kind of a recorded track (`track_recordings.media_type`).
    pub enum MediaType ("track media type") {
        /// Sound.
        Audio = "audio",
        /// Pictures.
        Video = "video",
        /// Application data.
        Data = "data",
    }
}

spelled_enum! {
    /// The container a track is recorded in (`track_recordings.container_format`).
    pub enum ContainerFormat ("track container format") {
        /// Matroska audio.
        Mka = "mka",
        /// Matroska video.
        Mkv = "mkv",
    }
}

spelled_enum! {
    /// Where a composition job is (`compositions.status`).
    pub enum CompositionStatus ("composition status") {
        /// Waiting for a worker.
        Enqueued = "enqueued",
        /// A worker holds it.
        Processing = "processing",
        /// Its media is stored.
        Completed = "completed",
        /// Deleted: metadata kept, media destroyed.
        Deleted = "deleted",
        /// It could not be composed.
        Failed = "failed",
    }
}

spelled_enum! {
    /// The container a composition is written in (`compositions.format`,
    /// `composition_hooks.format`).
    pub enum CompositionFormat ("composition format") {
        /// MP4 (H.264 and AAC).
        Mp4 = "mp4",
        /// WebM (VP8 and Opus).
        Webm = "webm",
    }
}

/// Video recording or composition settings of one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoSettings {
    /// Owner.
    pub account_sid: String,
    /// Which resource.
    pub kind: SettingsKind,
    /// Display name (required by the API on every change).
    pub friendly_name: Option<String>,
    /// Seal new objects with the customer's key.
    pub encryption_enabled: bool,
    /// The `CR…` public key to seal with.
    pub encryption_key_sid: Option<String>,
    /// Also deliver to the customer's S3 bucket (stored; acted on by the S3 delivery backend).
    pub aws_storage_enabled: bool,
    /// The bucket URL.
    pub aws_s3_url: Option<String>,
    /// The `CR…` AWS credential.
    pub aws_credentials_sid: Option<String>,
    /// Creation time.
    pub date_created: i64,
    /// Last change.
    pub date_updated: i64,
}

impl VideoSettings {
    /// The settings of an account that never set them.
    pub fn default_for(account_sid: &str, kind: SettingsKind) -> Self {
        Self {
            account_sid: account_sid.to_owned(),
            kind,
            friendly_name: None,
            encryption_enabled: false,
            encryption_key_sid: None,
            aws_storage_enabled: false,
            aws_s3_url: None,
            aws_credentials_sid: None,
            date_created: 0,
            date_updated: 0,
        }
    }
}

/// A video room (`RM…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    /// `RM…`.
    pub sid: String,
    /// Owner.
    pub account_sid: String,
    /// The application's name for it (the SID when none was given).
    pub unique_name: String,
    /// A [`RoomType`] spelling: `group`, `go`, `peer-to-peer`, `group-small`.
    pub room_type: String,
    /// A [`RoomStatus`] spelling: `in-progress`, `completed`, `failed`.
    pub status: String,
    /// Where room events go.
    pub status_callback: Option<String>,
    /// An [`HttpMethod`](crate::model::HttpMethod) spelling: `GET` or `POST`.
    pub status_callback_method: String,
    /// Participant limit.
    pub max_participants: i64,
    /// Record tracks as participants connect.
    pub record_participants_on_connect: bool,
    /// Audio-only room.
    pub audio_only: bool,
    /// Media region.
    pub media_region: Option<String>,
    /// Creation time.
    pub date_created: i64,
    /// Last change.
    pub date_updated: i64,
    /// When it completed.
    pub end_time: Option<i64>,
    /// Twilio's `EmptyRoomTimeout`: minutes the room stays after its last participant left.
    pub empty_room_timeout: i64,
    /// Twilio's `UnusedRoomTimeout`: minutes the room stays if nobody joins.
    pub unused_room_timeout: i64,
    /// The node whose media process runs the room (`None`: no media process).
    pub node: Option<String>,
}

/// Filters of the room list.
#[derive(Debug, Clone, Default)]
pub struct RoomFilter {
    /// Only rooms in this status.
    pub status: Option<String>,
    /// Only rooms with this unique name.
    pub unique_name: Option<String>,
    /// Created at or after (µs).
    pub created_after: Option<i64>,
    /// Created at or before (µs).
    pub created_before: Option<i64>,
}

/// A track recording (`RT…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackRecording {
    /// `RT…`.
    pub sid: String,
    /// Owner.
    pub account_sid: String,
    /// The room it belongs to.
    pub room_sid: String,
    /// The participant who published the track (`PA…`).
    pub participant_sid: String,
    /// The track (`MT…`).
    pub source_sid: String,
    /// The track's name, which composition source patterns match.
    pub track_name: String,
    /// A [`MediaType`] spelling: `audio`, `video` or `data`.
    pub media_type: String,
    /// `VP8`, `H264`, `OPUS`, `PCMU`.
    pub codec: String,
    /// A [`ContainerFormat`] spelling: `mka` or `mkv`.
    pub container_format: String,
    /// Milliseconds from a point common to the room's tracks to this track's start.
    pub offset_ms: i64,
    /// Length in milliseconds, when known.
    pub duration_ms: Option<i64>,
    /// A [`TrackRecordingStatus`] spelling: `processing`, `completed`, `deleted`, `failed`.
    pub status: String,
    /// Which key sealed the object.
    pub sealing: Sealing,
    /// The customer key, when sealed with one.
    pub encryption_key_sid: Option<String>,
    /// Where the sealed object is, while it exists.
    pub object_key: Option<String>,
    /// Bytes stored.
    pub sealed_size: i64,
    /// Bytes received.
    pub plain_size: i64,
    /// Where recording events go.
    pub status_callback: Option<String>,
    /// An [`HttpMethod`](crate::model::HttpMethod) spelling: `GET` or `POST`.
    pub status_callback_method: String,
    /// False until the object is durably stored.
    pub visible: bool,
    /// Deleted: metadata kept, object destroyed.
    pub deleted: bool,
    /// Creation time.
    pub date_created: i64,
    /// Last change.
    pub date_updated: i64,
    /// When it was deleted.
    pub date_deleted: Option<i64>,
}

/// Filters of the track recording list.
#[derive(Debug, Clone, Default)]
pub struct TrackRecordingFilter {
    /// Only this room's recordings.
    pub room_sid: Option<String>,
    /// Only in this status (`deleted` shows deleted ones).
    pub status: Option<String>,
    /// Only of this track.
    pub source_sid: Option<String>,
    /// Only recordings whose room or participant is one of these.
    pub grouping_sids: Vec<String>,
    /// Only of this media type.
    pub media_type: Option<String>,
    /// Created at or after (µs).
    pub created_after: Option<i64>,
    /// Created at or before (µs).
    pub created_before: Option<i64>,
}

/// A composition (`CJ…`), and its job state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composition {
    /// `CJ…`.
    pub sid: String,
    /// Owner.
    pub account_sid: String,
    /// The room composed.
    pub room_sid: String,
    /// The hook that created it, if any.
    pub hook_sid: Option<String>,
    /// A [`CompositionStatus`] spelling: `enqueued`, `processing`, `completed`, `deleted`,
    /// `failed`.
    pub status: String,
    /// JSON array of track name patterns.
    pub audio_sources: String,
    /// JSON array of track name patterns.
    pub audio_sources_excluded: String,
    /// JSON object (`{}` when none).
    pub video_layout: String,
    /// `WIDTHxHEIGHT`.
    pub resolution: String,
    /// A [`CompositionFormat`] spelling: `mp4` or `webm`.
    pub format: String,
    /// Remove the silence before the first and after the last source.
    pub trim: bool,
    /// Where composition events go.
    pub status_callback: Option<String>,
    /// An [`HttpMethod`](crate::model::HttpMethod) spelling: `GET` or `POST`.
    pub status_callback_method: String,
    /// The customer key to seal the result with (decided when the composition was created).
    pub seal_key_sid: Option<String>,
    /// Which key sealed the object.
    pub sealing: Sealing,
    /// Where the sealed result is, while it exists.
    pub object_key: Option<String>,
    /// Bytes stored.
    pub sealed_size: i64,
    /// Bytes of the composed media.
    pub plain_size: i64,
    /// Average bits per second.
    pub bitrate: i64,
    /// Seconds.
    pub duration: i64,
    /// Why it failed.
    pub error_code: Option<i64>,
    /// Why it failed, in words.
    pub error_message: Option<String>,
    /// Times a worker took it.
    pub attempts: i64,
    /// The node working on it (or reserved to start it).
    pub lease_owner: Option<String>,
    /// Until when the lease holds (µs).
    pub lease_until: Option<i64>,
    /// Deleted: metadata kept, media destroyed.
    pub deleted: bool,
    /// Creation time.
    pub date_created: i64,
    /// Last change.
    pub date_updated: i64,
    /// When media processing finished.
    pub date_completed: Option<i64>,
    /// When the media was deleted.
    pub date_deleted: Option<i64>,
}

/// Filters of the composition list.
#[derive(Debug, Clone, Default)]
pub struct CompositionFilter {
    /// Only of this room.
    pub room_sid: Option<String>,
    /// Only in this status.
    pub status: Option<String>,
    /// Created at or after (µs).
    pub created_after: Option<i64>,
    /// Created at or before (µs).
    pub created_before: Option<i64>,
}

/// A composition hook (`HK…`): a composition template applied to every completed room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompositionHook {
    /// `HK…`.
    pub sid: String,
    /// Owner.
    pub account_sid: String,
    /// Unique within the account.
    pub friendly_name: String,
    /// Whether it fires.
    pub enabled: bool,
    /// JSON array of track name patterns.
    pub audio_sources: String,
    /// JSON array of track name patterns.
    pub audio_sources_excluded: String,
    /// JSON object (`{}` when none).
    pub video_layout: String,
    /// `WIDTHxHEIGHT`.
    pub resolution: String,
    /// A [`CompositionFormat`] spelling: `mp4` or `webm`.
    pub format: String,
    /// As for compositions.
    pub trim: bool,
    /// Where the compositions' events go.
    pub status_callback: Option<String>,
    /// An [`HttpMethod`](crate::model::HttpMethod) spelling: `GET` or `POST`.
    pub status_callback_method: String,
    /// Creation time.
    pub date_created: i64,
    /// Last change.
    pub date_updated: i64,
}

/// Filters of the hook list.
#[derive(Debug, Clone, Default)]
pub struct HookFilter {
    /// Only enabled (or disabled) hooks.
    pub enabled: Option<bool>,
    /// Only the hook with this name.
    pub friendly_name: Option<String>,
    /// Created at or after (µs).
    pub created_after: Option<i64>,
    /// Created at or before (µs).
    pub created_before: Option<i64>,
}

/// What completing a room did.
#[derive(Debug, Clone)]
pub struct RoomCompletion {
    /// The room as it is now.
    pub room: Room,
    /// False when it was already completed (nothing was queued then).
    pub transitioned: bool,
}
