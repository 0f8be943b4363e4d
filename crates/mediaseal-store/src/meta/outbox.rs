//! The webhook outbox in the metadata store.

use async_trait::async_trait;

use super::StoreResult;
use crate::model::Callback;

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
    /// Up to `limit` accounts with callbacks due and unleased at `now`, the longest-waiting
    /// first; the outbox leases per account so that one account's backlog cannot fill a node.
    async fn accounts_with_due_callbacks(&self, now: i64, limit: i64) -> StoreResult<Vec<String>>;
    /// As [`Self::lease_due_callbacks`], for one account's callbacks only.
    async fn lease_due_callbacks_of(
        &self,
        owner: &str,
        account_sid: &str,
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
