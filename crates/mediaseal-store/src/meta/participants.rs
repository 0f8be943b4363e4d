//! Room participants in the metadata store. Every lookup is scoped to an account and a room.

use async_trait::async_trait;

use super::StoreResult;
use crate::model::Cursor;
use crate::model::participants::{Participant, ParticipantFilter, PublishedTrack, SubscribedTrack};

/// The Participants resource of video rooms.
#[async_trait]
pub trait ParticipantStore: Send + Sync {
    /// Records a participant that connected. A SID already stored is left as it is (the room's
    /// snapshot and its events may both report one participant), so this is idempotent.
    async fn insert_participant(&self, participant: &Participant) -> StoreResult<()>;
    /// Closes a connected participant at `now` (status `disconnected`, end time, duration).
    /// `None` when there is no such participant; an already disconnected one is returned
    /// unchanged.
    async fn disconnect_participant(
        &self,
        account_sid: &str,
        room_sid: &str,
        sid: &str,
        now: i64,
    ) -> StoreResult<Option<Participant>>;
    /// Closes every participant of the room still connected (its process ended); how many.
    async fn disconnect_room_participants(
        &self,
        account_sid: &str,
        room_sid: &str,
        now: i64,
    ) -> StoreResult<u64>;
    /// One participant of a room, by `PA…` SID.
    async fn participant(
        &self,
        account_sid: &str,
        room_sid: &str,
        sid: &str,
    ) -> StoreResult<Option<Participant>>;
    /// The participant of a room with this identity: the connected one if any, else the one
    /// that connected last.
    async fn participant_by_identity(
        &self,
        account_sid: &str,
        room_sid: &str,
        identity: &str,
    ) -> StoreResult<Option<Participant>>;
    /// A room's participants, newest first.
    async fn list_participants(
        &self,
        account_sid: &str,
        room_sid: &str,
        filter: &ParticipantFilter,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<Participant>>;
    /// Records a track a participant published; a SID already stored is left as it is.
    async fn insert_published_track(&self, track: &PublishedTrack) -> StoreResult<()>;
    /// Forgets published tracks of a room: all of them, one participant's, or one track
    /// (`participant_sid` and `track_sid` narrow it). How many.
    async fn remove_published_tracks(
        &self,
        account_sid: &str,
        room_sid: &str,
        participant_sid: Option<&str>,
        track_sid: Option<&str>,
    ) -> StoreResult<u64>;
    /// One track a participant publishes.
    async fn published_track(
        &self,
        account_sid: &str,
        room_sid: &str,
        participant_sid: &str,
        sid: &str,
    ) -> StoreResult<Option<PublishedTrack>>;
    /// The tracks a participant publishes, newest first.
    async fn list_published_tracks(
        &self,
        account_sid: &str,
        room_sid: &str,
        participant_sid: &str,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<PublishedTrack>>;
    /// Records a track a participant receives; a (subscriber, track) pair already stored is left
    /// as it is.
    async fn insert_subscribed_track(&self, track: &SubscribedTrack) -> StoreResult<()>;
    /// Forgets subscribed tracks of a room: every one matching all the given narrowings (the
    /// subscriber, the publisher, the track); none given forgets all of the room's. How many.
    async fn remove_subscribed_tracks(
        &self,
        account_sid: &str,
        room_sid: &str,
        subscriber_sid: Option<&str>,
        publisher_sid: Option<&str>,
        track_sid: Option<&str>,
    ) -> StoreResult<u64>;
    /// One track a participant receives.
    async fn subscribed_track(
        &self,
        account_sid: &str,
        room_sid: &str,
        subscriber_sid: &str,
        sid: &str,
    ) -> StoreResult<Option<SubscribedTrack>>;
    /// The tracks a participant receives, newest first.
    async fn list_subscribed_tracks(
        &self,
        account_sid: &str,
        room_sid: &str,
        subscriber_sid: &str,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<SubscribedTrack>>;
}
