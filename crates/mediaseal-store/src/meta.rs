//! The metadata store traits. The API layer only ever sees `Arc<dyn MetadataStore>`, so a backend
//! is chosen by configuration without touching it.
//!
//! The store never reads the clock: callers pass `now`, which keeps behaviour testable and the
//! same on every node.

use async_trait::async_trait;

use crate::error::StoreError;
use crate::model::{
    Account, ApiKey, Callback, Cursor, Notification, PublicKeyRecord, Recording, RecordingFilter,
    RecordingSettings,
};

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// Accounts, API keys and public keys.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Adds an account.
    async fn insert_account(&self, account: &Account) -> StoreResult<()>;
    /// One account by SID.
    async fn account(&self, sid: &str) -> StoreResult<Option<Account>>;
    /// `owner` and its subaccounts, newest first.
    async fn list_accounts(
        &self,
        owner: &str,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<Account>>;
    /// Changes the name and/or status; returns the new record.
    async fn update_account(
        &self,
        sid: &str,
        friendly_name: Option<&str>,
        status: Option<&str>,
        now: i64,
    ) -> StoreResult<Option<Account>>;

    /// Adds an API key.
    async fn insert_api_key(&self, key: &ApiKey) -> StoreResult<()>;
    /// One API key by SID.
    async fn api_key(&self, sid: &str) -> StoreResult<Option<ApiKey>>;
    /// An account's API keys, newest first.
    async fn list_api_keys(
        &self,
        account_sid: &str,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<ApiKey>>;
    /// Renames an API key.
    async fn update_api_key(
        &self,
        sid: &str,
        friendly_name: &str,
        now: i64,
    ) -> StoreResult<Option<ApiKey>>;
    /// Removes an API key; false if there was none.
    async fn delete_api_key(&self, sid: &str) -> StoreResult<bool>;

    /// Adds a public key.
    async fn insert_public_key(&self, key: &PublicKeyRecord) -> StoreResult<()>;
    /// One public key by SID.
    async fn public_key(&self, sid: &str) -> StoreResult<Option<PublicKeyRecord>>;
    /// An account's public keys, newest first.
    async fn list_public_keys(
        &self,
        account_sid: &str,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<PublicKeyRecord>>;
    /// The account's most recently added public key.
    async fn latest_public_key(&self, account_sid: &str) -> StoreResult<Option<PublicKeyRecord>>;
    /// Renames a public key.
    async fn update_public_key(
        &self,
        sid: &str,
        friendly_name: &str,
        now: i64,
    ) -> StoreResult<Option<PublicKeyRecord>>;
    /// Removes a public key; false if there was none.
    async fn delete_public_key(&self, sid: &str) -> StoreResult<bool>;
}

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

/// The durable webhook outbox, shared by every node.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Queues callbacks outside any other change.
    async fn enqueue_callbacks(&self, callbacks: &[Callback]) -> StoreResult<()>;
    /// Takes up to `limit` due callbacks for `owner` until `lease_until`; no other node gets them
    /// until the lease runs out.
    async fn lease_due_callbacks(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<Callback>>;
    /// Records a successful delivery.
    async fn mark_delivered(&self, id: &str, now: i64) -> StoreResult<()>;
    /// Records a failed try; `give_up` ends retries.
    async fn mark_attempt_failed(
        &self,
        id: &str,
        attempts: i64,
        next_attempt_at: i64,
        error: &str,
        give_up: bool,
    ) -> StoreResult<()>;
    /// Every callback about a resource (diagnostics and tests).
    async fn callbacks_for(&self, resource_sid: &str) -> StoreResult<Vec<Callback>>;
}

/// Everything the service keeps besides the sealed objects.
pub trait MetadataStore:
    AccountStore + VoiceStore + OutboxStore + crate::video::VideoStore
{
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
}
