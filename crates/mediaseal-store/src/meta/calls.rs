//! Calls in the metadata store. Every lookup is scoped to an account.

use async_trait::async_trait;

use super::StoreResult;
use crate::model::{Call, CallChange, CallFilter, Callback, Cursor};

/// The Calls resource.
#[async_trait]
pub trait CallStore: Send + Sync {
    /// Applies one status change, creating the call if it is new, and queues `callbacks` in the
    /// same transaction. A change that would not move the call forward (a repeat, or a late
    /// non-final status after a final one) changes nothing and queues nothing: `Ok(None)`.
    /// Otherwise the call as it is now.
    async fn apply_call_change(
        &self,
        change: &CallChange,
        callbacks: &[Callback],
    ) -> StoreResult<Option<Call>>;
    /// One call of an account.
    async fn call(&self, account_sid: &str, sid: &str) -> StoreResult<Option<Call>>;
    /// An account's calls, newest first.
    async fn list_calls(
        &self,
        account_sid: &str,
        filter: &CallFilter,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<Call>>;
}
