//! Video metadata in the metadata store. Compositions are claimed by workers with a lease, so
//! several nodes can share one queue and a job whose node died is taken over once its lease ends.

use async_trait::async_trait;

use super::StoreResult;
use crate::model::video::{
    Composition, CompositionFilter, CompositionHook, HookFilter, Room, RoomCompletion, RoomFilter,
    SettingsKind, TrackRecording, TrackRecordingFilter, VideoSettings,
};
use crate::model::{Callback, Cursor};

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

    /// Every room (of any account) still `in-progress` whose media process `node` runs or
    /// ran, oldest first: at a node's start, the rooms its dead predecessor left behind.
    async fn rooms_in_progress_on(&self, node: &str) -> StoreResult<Vec<Room>>;

    /// Marks an in-progress room `failed` (its media process died) and queues `callbacks`, but
    /// only if this call did the transition. `None` when the room does not exist.
    async fn fail_room(
        &self,
        account_sid: &str,
        sid: &str,
        now: i64,
        callbacks: &[Callback],
    ) -> StoreResult<Option<RoomCompletion>>;

    /// Reserves an invisible track recording row before its object is written.
    async fn reserve_track_recording(&self, recording: &TrackRecording) -> StoreResult<()>;
    /// Stores a visible state of a track recording (its final one, or `processing` while a
    /// room records it) and queues its callbacks.
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
    /// Visible track recordings still `processing` whose room ended (completed or failed)
    /// before `before`: their producer is gone, so they can never complete.
    async fn orphaned_track_recordings(
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
    /// Takes the next composition to work on for `owner` until `lease_until`: one reserved for
    /// `owner`, or any whose lease ran out (queued, or abandoned mid-processing by a node that
    /// died). Sets it `processing` and counts the attempt.
    ///
    /// Fair across accounts: among the claimable rows, the account with the fewest
    /// compositions running goes first, then the account served longest ago; an account with
    /// `max_per_account` running (on any node) waits. Two nodes claiming at the same instant
    /// may each start one, so the cap can be passed by one per racing node.
    async fn claim_composition(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        max_per_account: i64,
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
