//! The account side of the metadata store.

use async_trait::async_trait;

use super::StoreResult;
use crate::model::{Account, ApiKey, Cursor, PublicKeyRecord, SecondaryAuthToken};

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
    /// Changes the name and/or status; returns the new record. A closed account stays closed:
    /// its status is never changed again (the name still may be).
    async fn update_account(
        &self,
        sid: &str,
        friendly_name: Option<&str>,
        status: Option<&str>,
        now: i64,
    ) -> StoreResult<Option<Account>>;
    /// Gives the account a secondary auth token, replacing any it had; returns the new record,
    /// `None` if there is no such account.
    async fn set_secondary_auth_token(
        &self,
        sid: &str,
        token: &str,
        now: i64,
    ) -> StoreResult<Option<Account>>;
    /// Removes the account's secondary auth token; false if it had none (or does not exist).
    async fn clear_secondary_auth_token(&self, sid: &str, now: i64) -> StoreResult<bool>;
    /// Makes the secondary auth token the primary and discards the old primary, in one
    /// statement, so no request ever sees a state with neither or both as primary. Returns the
    /// token that became primary; `None` when the account has no secondary token (also when a
    /// concurrent delete or replacement took it first).
    async fn promote_secondary_auth_token(
        &self,
        sid: &str,
        now: i64,
    ) -> StoreResult<Option<SecondaryAuthToken>>;

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
