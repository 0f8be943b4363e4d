//! Video metadata: recording and composition settings, rooms, track recordings, compositions
//! (which are also the composition job queue) and composition hooks.
//!
//! Like the rest of the store, nothing here is media: only SIDs, settings, track descriptions and
//! the bookkeeping around sealed objects. Compositions are claimed by workers with a lease, so
//! several nodes can share one queue and a job whose node died is taken over once its lease ends.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::meta::StoreResult;
use crate::model::{Callback, Cursor, Sealing};
use crate::sql::{SqlStore, insert_callback, newest_first_page};

/// Which of the two independent video settings resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsKind {
    /// `/v1/RecordingSettings/Default`: track recordings.
    Recording,
    /// `/v1/CompositionSettings/Default`: compositions.
    Composition,
}

impl SettingsKind {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recording => "recording",
            Self::Composition => "composition",
        }
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
    /// `group`, `go`, `peer-to-peer`, `group-small`.
    pub room_type: String,
    /// `in-progress`, `completed`, `failed`.
    pub status: String,
    /// Where room events go.
    pub status_callback: Option<String>,
    /// `GET` or `POST`.
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
    /// `audio`, `video` or `data`.
    pub media_type: String,
    /// `VP8`, `H264`, `OPUS`, `PCMU`.
    pub codec: String,
    /// `mka` or `mkv`.
    pub container_format: String,
    /// Milliseconds from a point common to the room's tracks to this track's start.
    pub offset_ms: i64,
    /// Length in milliseconds, when known.
    pub duration_ms: Option<i64>,
    /// `processing`, `completed`, `deleted`, `failed`.
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
    /// `GET` or `POST`.
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
    /// `enqueued`, `processing`, `completed`, `deleted`, `failed`.
    pub status: String,
    /// JSON array of track name patterns.
    pub audio_sources: String,
    /// JSON array of track name patterns.
    pub audio_sources_excluded: String,
    /// JSON object (`{}` when none).
    pub video_layout: String,
    /// `WIDTHxHEIGHT`.
    pub resolution: String,
    /// `mp4` or `webm`.
    pub format: String,
    /// Remove the silence before the first and after the last source.
    pub trim: bool,
    /// Where composition events go.
    pub status_callback: Option<String>,
    /// `GET` or `POST`.
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
    /// `mp4` or `webm`.
    pub format: String,
    /// As for compositions.
    pub trim: bool,
    /// Where the compositions' events go.
    pub status_callback: Option<String>,
    /// `GET` or `POST`.
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

/// Video metadata.
#[async_trait]
pub trait VideoStore: Send + Sync {
    /// An account's settings of one kind, if ever set.
    async fn video_settings(
        &self,
        account_sid: &str,
        kind: SettingsKind,
    ) -> StoreResult<Option<VideoSettings>>;
    /// Creates or replaces settings.
    async fn put_video_settings(&self, settings: &VideoSettings) -> StoreResult<()>;

    /// Adds a room and queues its callbacks, in one transaction.
    async fn insert_room(&self, room: &Room, callbacks: &[Callback]) -> StoreResult<()>;
    /// One room of an account.
    async fn room(&self, account_sid: &str, sid: &str) -> StoreResult<Option<Room>>;
    /// The account's newest room with this unique name, preferring one in progress.
    async fn room_by_name(&self, account_sid: &str, unique_name: &str)
    -> StoreResult<Option<Room>>;
    /// An account's rooms, newest first.
    async fn list_rooms(
        &self,
        account_sid: &str,
        filter: &RoomFilter,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<Room>>;
    /// Completes an in-progress room; in the same transaction queues `callbacks` and inserts
    /// `compositions` (from hooks), but only if this call did the transition. `None` when the
    /// room does not exist.
    async fn complete_room(
        &self,
        account_sid: &str,
        sid: &str,
        now: i64,
        callbacks: &[Callback],
        compositions: &[(Composition, Vec<Callback>)],
    ) -> StoreResult<Option<RoomCompletion>>;

    /// Reserves an invisible track recording row before its object is written.
    async fn reserve_track_recording(&self, recording: &TrackRecording) -> StoreResult<()>;
    /// Stores the final, visible state of a track recording and queues its callbacks.
    async fn publish_track_recording(
        &self,
        recording: &TrackRecording,
        callbacks: &[Callback],
    ) -> StoreResult<()>;
    /// Drops a reserved, never-published row.
    async fn drop_track_reservation(&self, sid: &str) -> StoreResult<()>;
    /// Reserved rows older than `before` (a crash mid-upload).
    async fn stale_track_reservations(
        &self,
        before: i64,
        limit: i64,
    ) -> StoreResult<Vec<TrackRecording>>;
    /// One visible track recording of an account.
    async fn track_recording(
        &self,
        account_sid: &str,
        sid: &str,
    ) -> StoreResult<Option<TrackRecording>>;
    /// An account's track recordings, newest first.
    async fn list_track_recordings(
        &self,
        account_sid: &str,
        filter: &TrackRecordingFilter,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<TrackRecording>>;
    /// Every visible, undeleted recording of a room, oldest first (composition sources).
    async fn room_track_recordings(
        &self,
        account_sid: &str,
        room_sid: &str,
    ) -> StoreResult<Vec<TrackRecording>>;
    /// Marks a recording deleted and forgets its object; returns the record as it was.
    async fn delete_track_recording(
        &self,
        account_sid: &str,
        sid: &str,
        now: i64,
    ) -> StoreResult<Option<TrackRecording>>;

    /// Adds a composition (a queued job) and its callbacks, in one transaction.
    async fn insert_composition(
        &self,
        composition: &Composition,
        callbacks: &[Callback],
    ) -> StoreResult<()>;
    /// One composition of an account.
    async fn composition(&self, account_sid: &str, sid: &str) -> StoreResult<Option<Composition>>;
    /// An account's compositions, newest first.
    async fn list_compositions(
        &self,
        account_sid: &str,
        filter: &CompositionFilter,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<Composition>>;
    /// Marks a composition deleted and forgets its object; returns the record as it was.
    async fn delete_composition(
        &self,
        account_sid: &str,
        sid: &str,
        now: i64,
    ) -> StoreResult<Option<Composition>>;
    /// Takes the next composition to work on for `owner` until `lease_until`: one leased to
    /// `owner` first, then any whose lease ran out (queued, or abandoned mid-processing by a
    /// node that died). Sets it `processing` and counts the attempt.
    async fn claim_composition(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
    ) -> StoreResult<Option<Composition>>;
    /// Extends `owner`'s lease; false when the lease was lost or the composition deleted.
    async fn renew_composition_lease(
        &self,
        sid: &str,
        owner: &str,
        lease_until: i64,
    ) -> StoreResult<bool>;
    /// Stores the final state of a composition `owner` processed, and queues its callbacks, in
    /// one transaction; false (and nothing changed) when `owner` no longer holds it.
    async fn finish_composition(
        &self,
        composition: &Composition,
        owner: &str,
        callbacks: &[Callback],
    ) -> StoreResult<bool>;

    /// Adds a hook; false when the account already has one with that name.
    async fn insert_hook(&self, hook: &CompositionHook) -> StoreResult<bool>;
    /// One hook of an account.
    async fn hook(&self, account_sid: &str, sid: &str) -> StoreResult<Option<CompositionHook>>;
    /// An account's hooks, newest first.
    async fn list_hooks(
        &self,
        account_sid: &str,
        filter: &HookFilter,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<CompositionHook>>;
    /// Replaces a hook; false when another hook of the account has the new name.
    async fn update_hook(&self, hook: &CompositionHook) -> StoreResult<bool>;
    /// Removes a hook; false if there was none.
    async fn delete_hook(&self, account_sid: &str, sid: &str) -> StoreResult<bool>;
}

fn b(v: bool) -> i64 {
    i64::from(v)
}

fn flag(row: &AnyRow, col: &str) -> StoreResult<bool> {
    Ok(row.try_get::<i64, _>(col)? != 0)
}

fn opt(row: &AnyRow, col: &str) -> StoreResult<Option<String>> {
    Ok(row.try_get::<Option<String>, _>(col)?)
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                || db
                    .code()
                    .is_some_and(|c| c == "23505" || c == "2067" || c == "1555")
        }
        _ => false,
    }
}

const SETTINGS_COLS: &str = "account_sid, kind, friendly_name, encryption_enabled, encryption_key_sid, \
     aws_storage_enabled, aws_s3_url, aws_credentials_sid, date_created, date_updated";
const ROOM_COLS: &str = "sid, account_sid, unique_name, room_type, status, status_callback, status_callback_method, \
     max_participants, record_participants_on_connect, audio_only, media_region, date_created, date_updated, end_time";
const TRACK_COLS: &str = "sid, account_sid, room_sid, participant_sid, source_sid, track_name, media_type, codec, \
     container_format, offset_ms, duration_ms, status, sealing, encryption_key_sid, object_key, sealed_size, plain_size, \
     status_callback, status_callback_method, visible, deleted, date_created, date_updated, date_deleted";
const COMPOSITION_COLS: &str = "sid, account_sid, room_sid, hook_sid, status, audio_sources, audio_sources_excluded, \
     video_layout, resolution, format, trim_media, status_callback, status_callback_method, seal_key_sid, sealing, \
     object_key, sealed_size, plain_size, bitrate, duration, error_code, error_message, attempts, lease_owner, \
     lease_until, deleted, date_created, date_updated, date_completed, date_deleted";
const HOOK_COLS: &str = "sid, account_sid, friendly_name, enabled, audio_sources, audio_sources_excluded, video_layout, \
     resolution, format, trim_media, status_callback, status_callback_method, date_created, date_updated";

fn settings_from(row: &AnyRow, kind: SettingsKind) -> StoreResult<VideoSettings> {
    Ok(VideoSettings {
        account_sid: row.try_get("account_sid")?,
        kind,
        friendly_name: opt(row, "friendly_name")?,
        encryption_enabled: flag(row, "encryption_enabled")?,
        encryption_key_sid: opt(row, "encryption_key_sid")?,
        aws_storage_enabled: flag(row, "aws_storage_enabled")?,
        aws_s3_url: opt(row, "aws_s3_url")?,
        aws_credentials_sid: opt(row, "aws_credentials_sid")?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
    })
}

fn room_from(row: &AnyRow) -> StoreResult<Room> {
    Ok(Room {
        sid: row.try_get("sid")?,
        account_sid: row.try_get("account_sid")?,
        unique_name: row.try_get("unique_name")?,
        room_type: row.try_get("room_type")?,
        status: row.try_get("status")?,
        status_callback: opt(row, "status_callback")?,
        status_callback_method: row.try_get("status_callback_method")?,
        max_participants: row.try_get("max_participants")?,
        record_participants_on_connect: flag(row, "record_participants_on_connect")?,
        audio_only: flag(row, "audio_only")?,
        media_region: opt(row, "media_region")?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
        end_time: row.try_get("end_time")?,
    })
}

fn track_from(row: &AnyRow) -> StoreResult<TrackRecording> {
    Ok(TrackRecording {
        sid: row.try_get("sid")?,
        account_sid: row.try_get("account_sid")?,
        room_sid: row.try_get("room_sid")?,
        participant_sid: row.try_get("participant_sid")?,
        source_sid: row.try_get("source_sid")?,
        track_name: row.try_get("track_name")?,
        media_type: row.try_get("media_type")?,
        codec: row.try_get("codec")?,
        container_format: row.try_get("container_format")?,
        offset_ms: row.try_get("offset_ms")?,
        duration_ms: row.try_get("duration_ms")?,
        status: row.try_get("status")?,
        sealing: Sealing::parse(&row.try_get::<String, _>("sealing")?),
        encryption_key_sid: opt(row, "encryption_key_sid")?,
        object_key: opt(row, "object_key")?,
        sealed_size: row.try_get("sealed_size")?,
        plain_size: row.try_get("plain_size")?,
        status_callback: opt(row, "status_callback")?,
        status_callback_method: row.try_get("status_callback_method")?,
        visible: flag(row, "visible")?,
        deleted: flag(row, "deleted")?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
        date_deleted: row.try_get("date_deleted")?,
    })
}

fn composition_from(row: &AnyRow) -> StoreResult<Composition> {
    Ok(Composition {
        sid: row.try_get("sid")?,
        account_sid: row.try_get("account_sid")?,
        room_sid: row.try_get("room_sid")?,
        hook_sid: opt(row, "hook_sid")?,
        status: row.try_get("status")?,
        audio_sources: row.try_get("audio_sources")?,
        audio_sources_excluded: row.try_get("audio_sources_excluded")?,
        video_layout: row.try_get("video_layout")?,
        resolution: row.try_get("resolution")?,
        format: row.try_get("format")?,
        trim: flag(row, "trim_media")?,
        status_callback: opt(row, "status_callback")?,
        status_callback_method: row.try_get("status_callback_method")?,
        seal_key_sid: opt(row, "seal_key_sid")?,
        sealing: Sealing::parse(&row.try_get::<String, _>("sealing")?),
        object_key: opt(row, "object_key")?,
        sealed_size: row.try_get("sealed_size")?,
        plain_size: row.try_get("plain_size")?,
        bitrate: row.try_get("bitrate")?,
        duration: row.try_get("duration")?,
        error_code: row.try_get("error_code")?,
        error_message: opt(row, "error_message")?,
        attempts: row.try_get("attempts")?,
        lease_owner: opt(row, "lease_owner")?,
        lease_until: row.try_get("lease_until")?,
        deleted: flag(row, "deleted")?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
        date_completed: row.try_get("date_completed")?,
        date_deleted: row.try_get("date_deleted")?,
    })
}

fn hook_from(row: &AnyRow) -> StoreResult<CompositionHook> {
    Ok(CompositionHook {
        sid: row.try_get("sid")?,
        account_sid: row.try_get("account_sid")?,
        friendly_name: row.try_get("friendly_name")?,
        enabled: flag(row, "enabled")?,
        audio_sources: row.try_get("audio_sources")?,
        audio_sources_excluded: row.try_get("audio_sources_excluded")?,
        video_layout: row.try_get("video_layout")?,
        resolution: row.try_get("resolution")?,
        format: row.try_get("format")?,
        trim: flag(row, "trim_media")?,
        status_callback: opt(row, "status_callback")?,
        status_callback_method: row.try_get("status_callback_method")?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
    })
}

async fn upsert_track<'e, E>(executor: E, r: &TrackRecording) -> StoreResult<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(&format!(
        "INSERT INTO track_recordings ({TRACK_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
         $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24) \
         ON CONFLICT (sid) DO UPDATE SET duration_ms = excluded.duration_ms, status = excluded.status, \
         sealing = excluded.sealing, encryption_key_sid = excluded.encryption_key_sid, object_key = excluded.object_key, \
         sealed_size = excluded.sealed_size, plain_size = excluded.plain_size, visible = excluded.visible, \
         deleted = excluded.deleted, date_updated = excluded.date_updated, date_deleted = excluded.date_deleted"
    ))
    .bind(&r.sid)
    .bind(&r.account_sid)
    .bind(&r.room_sid)
    .bind(&r.participant_sid)
    .bind(&r.source_sid)
    .bind(&r.track_name)
    .bind(&r.media_type)
    .bind(&r.codec)
    .bind(&r.container_format)
    .bind(r.offset_ms)
    .bind(r.duration_ms)
    .bind(&r.status)
    .bind(r.sealing.as_str())
    .bind(&r.encryption_key_sid)
    .bind(&r.object_key)
    .bind(r.sealed_size)
    .bind(r.plain_size)
    .bind(&r.status_callback)
    .bind(&r.status_callback_method)
    .bind(b(r.visible))
    .bind(b(r.deleted))
    .bind(r.date_created)
    .bind(r.date_updated)
    .bind(r.date_deleted)
    .execute(executor)
    .await?;
    Ok(())
}

async fn insert_composition_row<'e, E>(executor: E, c: &Composition) -> StoreResult<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(&format!(
        "INSERT INTO compositions ({COMPOSITION_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
         $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30)"
    ))
    .bind(&c.sid)
    .bind(&c.account_sid)
    .bind(&c.room_sid)
    .bind(&c.hook_sid)
    .bind(&c.status)
    .bind(&c.audio_sources)
    .bind(&c.audio_sources_excluded)
    .bind(&c.video_layout)
    .bind(&c.resolution)
    .bind(&c.format)
    .bind(b(c.trim))
    .bind(&c.status_callback)
    .bind(&c.status_callback_method)
    .bind(&c.seal_key_sid)
    .bind(c.sealing.as_str())
    .bind(&c.object_key)
    .bind(c.sealed_size)
    .bind(c.plain_size)
    .bind(c.bitrate)
    .bind(c.duration)
    .bind(c.error_code)
    .bind(&c.error_message)
    .bind(c.attempts)
    .bind(&c.lease_owner)
    .bind(c.lease_until)
    .bind(b(c.deleted))
    .bind(c.date_created)
    .bind(c.date_updated)
    .bind(c.date_completed)
    .bind(c.date_deleted)
    .execute(executor)
    .await?;
    Ok(())
}

#[async_trait]
impl VideoStore for SqlStore {
    async fn video_settings(
        &self,
        account_sid: &str,
        kind: SettingsKind,
    ) -> StoreResult<Option<VideoSettings>> {
        let row = sqlx::query(&format!(
            "SELECT {SETTINGS_COLS} FROM video_settings WHERE account_sid = $1 AND kind = $2"
        ))
        .bind(account_sid)
        .bind(kind.as_str())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(|r| settings_from(r, kind)).transpose()
    }

    async fn put_video_settings(&self, s: &VideoSettings) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO video_settings ({SETTINGS_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (account_sid, kind) DO UPDATE SET friendly_name = excluded.friendly_name, \
             encryption_enabled = excluded.encryption_enabled, encryption_key_sid = excluded.encryption_key_sid, \
             aws_storage_enabled = excluded.aws_storage_enabled, aws_s3_url = excluded.aws_s3_url, \
             aws_credentials_sid = excluded.aws_credentials_sid, date_updated = excluded.date_updated"
        ))
        .bind(&s.account_sid)
        .bind(s.kind.as_str())
        .bind(&s.friendly_name)
        .bind(b(s.encryption_enabled))
        .bind(&s.encryption_key_sid)
        .bind(b(s.aws_storage_enabled))
        .bind(&s.aws_s3_url)
        .bind(&s.aws_credentials_sid)
        .bind(s.date_created)
        .bind(s.date_updated)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn insert_room(&self, r: &Room, callbacks: &[Callback]) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(&format!(
            "INSERT INTO rooms ({ROOM_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(&r.sid)
        .bind(&r.account_sid)
        .bind(&r.unique_name)
        .bind(&r.room_type)
        .bind(&r.status)
        .bind(&r.status_callback)
        .bind(&r.status_callback_method)
        .bind(r.max_participants)
        .bind(b(r.record_participants_on_connect))
        .bind(b(r.audio_only))
        .bind(&r.media_region)
        .bind(r.date_created)
        .bind(r.date_updated)
        .bind(r.end_time)
        .execute(&mut *tx)
        .await?;
        for c in callbacks {
            insert_callback(&mut *tx, c).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn room(&self, account_sid: &str, sid: &str) -> StoreResult<Option<Room>> {
        let row = sqlx::query(&format!(
            "SELECT {ROOM_COLS} FROM rooms WHERE account_sid = $1 AND sid = $2"
        ))
        .bind(account_sid)
        .bind(sid)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(room_from).transpose()
    }

    async fn room_by_name(
        &self,
        account_sid: &str,
        unique_name: &str,
    ) -> StoreResult<Option<Room>> {
        let row = sqlx::query(&format!(
            "SELECT {ROOM_COLS} FROM rooms WHERE account_sid = $1 AND unique_name = $2 \
             ORDER BY CASE WHEN status = 'in-progress' THEN 0 ELSE 1 END, date_created DESC, sid DESC LIMIT 1"
        ))
        .bind(account_sid)
        .bind(unique_name)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(room_from).transpose()
    }

    async fn list_rooms(
        &self,
        account_sid: &str,
        filter: &RoomFilter,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<Room>> {
        let mut sql = format!(
            "SELECT {ROOM_COLS} FROM rooms WHERE account_sid = $1 AND ($3 IS NULL OR status = $3) \
             AND ($4 IS NULL OR unique_name = $4) AND ($5 IS NULL OR date_created >= $5) \
             AND ($6 IS NULL OR date_created <= $6)"
        );
        newest_first_page(&mut sql, after, 7);
        let mut q = sqlx::query(&sql)
            .bind(account_sid)
            .bind(limit)
            .bind(&filter.status)
            .bind(&filter.unique_name)
            .bind(filter.created_after)
            .bind(filter.created_before);
        if let Some(c) = after {
            q = q.bind(c.date_created).bind(&c.sid);
        }
        q.fetch_all(self.pool())
            .await?
            .iter()
            .map(room_from)
            .collect()
    }

    async fn complete_room(
        &self,
        account_sid: &str,
        sid: &str,
        now: i64,
        callbacks: &[Callback],
        compositions: &[(Composition, Vec<Callback>)],
    ) -> StoreResult<Option<RoomCompletion>> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE rooms SET status = 'completed', end_time = $3, date_updated = $3 \
             WHERE account_sid = $1 AND sid = $2 AND status = 'in-progress'",
        )
        .bind(account_sid)
        .bind(sid)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let transitioned = done.rows_affected() > 0;
        if transitioned {
            for c in callbacks {
                insert_callback(&mut *tx, c).await?;
            }
            for (composition, composition_callbacks) in compositions {
                insert_composition_row(&mut *tx, composition).await?;
                for c in composition_callbacks {
                    insert_callback(&mut *tx, c).await?;
                }
            }
        }
        let row = sqlx::query(&format!(
            "SELECT {ROOM_COLS} FROM rooms WHERE account_sid = $1 AND sid = $2"
        ))
        .bind(account_sid)
        .bind(sid)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row
            .as_ref()
            .map(room_from)
            .transpose()?
            .map(|room| RoomCompletion { room, transitioned }))
    }

    async fn reserve_track_recording(&self, recording: &TrackRecording) -> StoreResult<()> {
        let mut tx = self.begin_reservation().await?;
        upsert_track(&mut *tx, recording).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn publish_track_recording(
        &self,
        recording: &TrackRecording,
        callbacks: &[Callback],
    ) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        upsert_track(&mut *tx, recording).await?;
        for c in callbacks {
            insert_callback(&mut *tx, c).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn drop_track_reservation(&self, sid: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM track_recordings WHERE sid = $1 AND visible = 0")
            .bind(sid)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn stale_track_reservations(
        &self,
        before: i64,
        limit: i64,
    ) -> StoreResult<Vec<TrackRecording>> {
        let rows = sqlx::query(&format!(
            "SELECT {TRACK_COLS} FROM track_recordings WHERE visible = 0 AND date_created < $1 \
             ORDER BY date_created LIMIT $2"
        ))
        .bind(before)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(track_from).collect()
    }

    async fn track_recording(
        &self,
        account_sid: &str,
        sid: &str,
    ) -> StoreResult<Option<TrackRecording>> {
        let row = sqlx::query(&format!(
            "SELECT {TRACK_COLS} FROM track_recordings WHERE account_sid = $1 AND sid = $2 AND visible = 1"
        ))
        .bind(account_sid)
        .bind(sid)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(track_from).transpose()
    }

    async fn list_track_recordings(
        &self,
        account_sid: &str,
        filter: &TrackRecordingFilter,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<TrackRecording>> {
        let mut sql = format!(
            "SELECT {TRACK_COLS} FROM track_recordings WHERE account_sid = $1 AND visible = 1 \
             AND ($3 IS NULL OR room_sid = $3) AND ($4 IS NULL OR status = $4) \
             AND ($5 IS NULL OR source_sid = $5) AND ($6 IS NULL OR media_type = $6) \
             AND ($7 IS NULL OR date_created >= $7) AND ($8 IS NULL OR date_created <= $8)"
        );
        let mut next = 9;
        if !filter.grouping_sids.is_empty() {
            let list: Vec<String> = (0..filter.grouping_sids.len())
                .map(|i| format!("${}", next + i))
                .collect();
            let list = list.join(", ");
            sql.push_str(&format!(
                " AND (room_sid IN ({list}) OR participant_sid IN ({list}))"
            ));
            next += filter.grouping_sids.len();
        }
        newest_first_page(&mut sql, after, next);
        let mut q = sqlx::query(&sql)
            .bind(account_sid)
            .bind(limit)
            .bind(&filter.room_sid)
            .bind(&filter.status)
            .bind(&filter.source_sid)
            .bind(&filter.media_type)
            .bind(filter.created_after)
            .bind(filter.created_before);
        for g in &filter.grouping_sids {
            q = q.bind(g);
        }
        if let Some(c) = after {
            q = q.bind(c.date_created).bind(&c.sid);
        }
        q.fetch_all(self.pool())
            .await?
            .iter()
            .map(track_from)
            .collect()
    }

    async fn room_track_recordings(
        &self,
        account_sid: &str,
        room_sid: &str,
    ) -> StoreResult<Vec<TrackRecording>> {
        let rows = sqlx::query(&format!(
            "SELECT {TRACK_COLS} FROM track_recordings WHERE account_sid = $1 AND room_sid = $2 AND visible = 1 \
             AND deleted = 0 ORDER BY date_created, sid"
        ))
        .bind(account_sid)
        .bind(room_sid)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(track_from).collect()
    }

    async fn delete_track_recording(
        &self,
        account_sid: &str,
        sid: &str,
        now: i64,
    ) -> StoreResult<Option<TrackRecording>> {
        let Some(before) = self.track_recording(account_sid, sid).await? else {
            return Ok(None);
        };
        if before.deleted {
            return Ok(None);
        }
        sqlx::query(
            "UPDATE track_recordings SET deleted = 1, status = 'deleted', date_deleted = $3, date_updated = $3, \
             object_key = NULL, sealing = 'none' WHERE account_sid = $1 AND sid = $2 AND deleted = 0",
        )
        .bind(account_sid)
        .bind(sid)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(Some(before))
    }

    async fn insert_composition(
        &self,
        composition: &Composition,
        callbacks: &[Callback],
    ) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        insert_composition_row(&mut *tx, composition).await?;
        for c in callbacks {
            insert_callback(&mut *tx, c).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn composition(&self, account_sid: &str, sid: &str) -> StoreResult<Option<Composition>> {
        let row = sqlx::query(&format!(
            "SELECT {COMPOSITION_COLS} FROM compositions WHERE account_sid = $1 AND sid = $2"
        ))
        .bind(account_sid)
        .bind(sid)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(composition_from).transpose()
    }

    async fn list_compositions(
        &self,
        account_sid: &str,
        filter: &CompositionFilter,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<Composition>> {
        let mut sql = format!(
            "SELECT {COMPOSITION_COLS} FROM compositions WHERE account_sid = $1 AND ($3 IS NULL OR room_sid = $3) \
             AND ($4 IS NULL OR status = $4) AND ($5 IS NULL OR date_created >= $5) \
             AND ($6 IS NULL OR date_created <= $6)"
        );
        newest_first_page(&mut sql, after, 7);
        let mut q = sqlx::query(&sql)
            .bind(account_sid)
            .bind(limit)
            .bind(&filter.room_sid)
            .bind(&filter.status)
            .bind(filter.created_after)
            .bind(filter.created_before);
        if let Some(c) = after {
            q = q.bind(c.date_created).bind(&c.sid);
        }
        q.fetch_all(self.pool())
            .await?
            .iter()
            .map(composition_from)
            .collect()
    }

    async fn delete_composition(
        &self,
        account_sid: &str,
        sid: &str,
        now: i64,
    ) -> StoreResult<Option<Composition>> {
        let Some(before) = self.composition(account_sid, sid).await? else {
            return Ok(None);
        };
        if before.deleted {
            return Ok(None);
        }
        sqlx::query(
            "UPDATE compositions SET deleted = 1, status = 'deleted', date_deleted = $3, date_updated = $3, \
             object_key = NULL, sealing = 'none', lease_owner = NULL, lease_until = NULL \
             WHERE account_sid = $1 AND sid = $2 AND deleted = 0",
        )
        .bind(account_sid)
        .bind(sid)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(Some(before))
    }

    async fn claim_composition(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
    ) -> StoreResult<Option<Composition>> {
        let sql = format!(
            "UPDATE compositions SET status = 'processing', lease_owner = $1, lease_until = $2, \
             attempts = attempts + 1, date_updated = $3 WHERE sid IN (\
               SELECT sid FROM compositions WHERE deleted = 0 AND (\
                 (status = 'enqueued' AND (lease_owner = $1 OR lease_until IS NULL OR lease_until < $3)) \
                 OR (status = 'processing' AND lease_until < $3)) \
               ORDER BY CASE WHEN lease_owner = $1 THEN 0 ELSE 1 END, date_created LIMIT 1{}) \
             RETURNING {COMPOSITION_COLS}",
            self.skip_locked()
        );
        let row = sqlx::query(&sql)
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(composition_from).transpose()
    }

    async fn renew_composition_lease(
        &self,
        sid: &str,
        owner: &str,
        lease_until: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE compositions SET lease_until = $3 WHERE sid = $1 AND lease_owner = $2 \
             AND status = 'processing' AND deleted = 0",
        )
        .bind(sid)
        .bind(owner)
        .bind(lease_until)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn finish_composition(
        &self,
        c: &Composition,
        owner: &str,
        callbacks: &[Callback],
    ) -> StoreResult<bool> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE compositions SET status = $3, sealing = $4, object_key = $5, sealed_size = $6, plain_size = $7, \
             bitrate = $8, duration = $9, error_code = $10, error_message = $11, date_updated = $12, \
             date_completed = $13, lease_owner = NULL, lease_until = NULL \
             WHERE sid = $1 AND lease_owner = $2 AND status = 'processing' AND deleted = 0",
        )
        .bind(&c.sid)
        .bind(owner)
        .bind(&c.status)
        .bind(c.sealing.as_str())
        .bind(&c.object_key)
        .bind(c.sealed_size)
        .bind(c.plain_size)
        .bind(c.bitrate)
        .bind(c.duration)
        .bind(c.error_code)
        .bind(&c.error_message)
        .bind(c.date_updated)
        .bind(c.date_completed)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        for cb in callbacks {
            insert_callback(&mut *tx, cb).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_hook(&self, h: &CompositionHook) -> StoreResult<bool> {
        let result = sqlx::query(&format!(
            "INSERT INTO composition_hooks ({HOOK_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
             $13, $14)"
        ))
        .bind(&h.sid)
        .bind(&h.account_sid)
        .bind(&h.friendly_name)
        .bind(b(h.enabled))
        .bind(&h.audio_sources)
        .bind(&h.audio_sources_excluded)
        .bind(&h.video_layout)
        .bind(&h.resolution)
        .bind(&h.format)
        .bind(b(h.trim))
        .bind(&h.status_callback)
        .bind(&h.status_callback_method)
        .bind(h.date_created)
        .bind(h.date_updated)
        .execute(self.pool())
        .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn hook(&self, account_sid: &str, sid: &str) -> StoreResult<Option<CompositionHook>> {
        let row = sqlx::query(&format!(
            "SELECT {HOOK_COLS} FROM composition_hooks WHERE account_sid = $1 AND sid = $2"
        ))
        .bind(account_sid)
        .bind(sid)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(hook_from).transpose()
    }

    async fn list_hooks(
        &self,
        account_sid: &str,
        filter: &HookFilter,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<CompositionHook>> {
        let mut sql = format!(
            "SELECT {HOOK_COLS} FROM composition_hooks WHERE account_sid = $1 AND ($3 IS NULL OR enabled = $3) \
             AND ($4 IS NULL OR friendly_name = $4) AND ($5 IS NULL OR date_created >= $5) \
             AND ($6 IS NULL OR date_created <= $6)"
        );
        newest_first_page(&mut sql, after, 7);
        let mut q = sqlx::query(&sql)
            .bind(account_sid)
            .bind(limit)
            .bind(filter.enabled.map(b))
            .bind(&filter.friendly_name)
            .bind(filter.created_after)
            .bind(filter.created_before);
        if let Some(c) = after {
            q = q.bind(c.date_created).bind(&c.sid);
        }
        q.fetch_all(self.pool())
            .await?
            .iter()
            .map(hook_from)
            .collect()
    }

    async fn update_hook(&self, h: &CompositionHook) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE composition_hooks SET friendly_name = $3, enabled = $4, audio_sources = $5, \
             audio_sources_excluded = $6, video_layout = $7, resolution = $8, format = $9, trim_media = $10, \
             status_callback = $11, status_callback_method = $12, date_updated = $13 \
             WHERE account_sid = $1 AND sid = $2",
        )
        .bind(&h.account_sid)
        .bind(&h.sid)
        .bind(&h.friendly_name)
        .bind(b(h.enabled))
        .bind(&h.audio_sources)
        .bind(&h.audio_sources_excluded)
        .bind(&h.video_layout)
        .bind(&h.resolution)
        .bind(&h.format)
        .bind(b(h.trim))
        .bind(&h.status_callback)
        .bind(&h.status_callback_method)
        .bind(h.date_updated)
        .execute(self.pool())
        .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_hook(&self, account_sid: &str, sid: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM composition_hooks WHERE account_sid = $1 AND sid = $2")
            .bind(account_sid)
            .bind(sid)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
