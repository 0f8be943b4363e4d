//! Voice recordings in the metadata store.

use async_trait::async_trait;

use super::StoreResult;
use crate::model::{Callback, Cursor, Notification, Recording, RecordingFilter, RecordingSettings};

/// Voice recordings, their settings, and debugger notifications.
#[async_trait]
pub trait VoiceStore: Send + Sync {
    /// The account's settings, if ever set.
    async fn recording_settings(&self, account_sid: &str)
    -> StoreResult<Option<RecordingSettings>>;
    /// Creates or replaces the account's settings.
    async fn put_recording_settings(&self, settings: &RecordingSettings) -> StoreResult<()>;

    /// Reserves a recording row before its object is written. The row stays invisible to the API
    /// until [`VoiceStore::publish_recording`]; rows never published are swept.
    async fn reserve_recording(&self, recording: &Recording) -> StoreResult<()>;
    /// In one transaction: stores the final state of a recording (visible), and queues its
    /// callbacks and notifications.
    async fn publish_recording(
        &self,
        recording: &Recording,
        callbacks: &[Callback],
        notifications: &[Notification],
    ) -> StoreResult<()>;
    /// One recording of an account.
    async fn recording(
        &self,
        account_sid: &str,
        sid: &str,
        include_deleted: bool,
    ) -> StoreResult<Option<Recording>>;
    /// An account's recordings, newest first.
    async fn list_recordings(
        &self,
        account_sid: &str,
        filter: &RecordingFilter,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<Recording>>;
    /// Marks a recording deleted and forgets its object key; returns the record as it was.
    async fn delete_recording(
        &self,
        account_sid: &str,
        sid: &str,
        now: i64,
    ) -> StoreResult<Option<Recording>>;
    /// Reserved rows older than `before` that never got published (crash mid-upload).
    async fn stale_reservations(&self, before: i64, limit: i64) -> StoreResult<Vec<Recording>>;
    /// Drops a reserved, never-published row.
    async fn drop_reservation(&self, sid: &str) -> StoreResult<()>;
    /// Every object key some row still points at, for the orphan sweeper.
    async fn object_in_use(&self, object_key: &str) -> StoreResult<bool>;

    /// Records a notification on its own.
    async fn insert_notification(&self, notification: &Notification) -> StoreResult<()>;
    /// One notification.
    async fn notification(&self, account_sid: &str, sid: &str)
    -> StoreResult<Option<Notification>>;
    /// An account's notifications, newest first.
    async fn list_notifications(
        &self,
        account_sid: &str,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<Notification>>;
}
