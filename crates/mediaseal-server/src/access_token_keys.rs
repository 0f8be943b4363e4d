//! The API key secrets room Access Tokens are verified with, read from the store: the
//! [`AccessTokenKeys`] that `serve` installs. HS256 needs the secret itself, so API keys keep
//! it sealed beside their hash ([`mediaseal_service::sealed`]); it is opened per lookup into a
//! zeroizing buffer and dropped with the verification.

use std::sync::Arc;

use async_trait::async_trait;
use mediaseal_rooms::token::ApiKey;
use mediaseal_service::sealed::SealingKey;
use mediaseal_store::MetadataStore;

use crate::room_processes::AccessTokenKeys;
use crate::state::AppState;

/// API keys from the metadata store (see the module docs).
pub struct StoredApiKeys {
    meta: Arc<dyn MetadataStore>,
    sealing: Arc<SealingKey>,
}

impl std::fmt::Debug for StoredApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredApiKeys").finish_non_exhaustive()
    }
}

impl StoredApiKeys {
    /// The keys of `state`'s store; `None` when `state` has no sealing key for API key secrets
    /// (its at-rest key could not be encoded, and no key can have been created).
    pub fn from_state(state: &AppState) -> Option<Self> {
        Some(Self {
            meta: state.meta.clone(),
            sealing: state.api_key_secrets.clone()?,
        })
    }
}

#[async_trait]
impl AccessTokenKeys for StoredApiKeys {
    async fn api_key(&self, api_key_sid: &str) -> Option<ApiKey> {
        let key = match self.meta.api_key(api_key_sid).await {
            Ok(Some(key)) => key,
            Ok(None) => return None,
            Err(e) => {
                tracing::error!(key = %api_key_sid, error = %e, "an API key could not be read to verify an Access Token");
                return None;
            }
        };
        // A key of a suspended or closed account signs nothing.
        match self.meta.account(&key.account_sid).await {
            Ok(Some(account)) if account.status == "active" => {}
            Ok(_) => return None,
            Err(e) => {
                tracing::error!(account = %key.account_sid, error = %e, "an account could not be read to verify an Access Token");
                return None;
            }
        }
        let Some(sealed) = key.secret_sealed.as_deref() else {
            tracing::info!(
                key = %key.sid,
                account = %key.account_sid,
                "a room Access Token signed with an API key created before mediaseal kept API \
                 key secrets was refused (20107): create a new API key (POST \
                 /2010-04-01/Accounts/{{AccountSid}}/Keys.json) and sign tokens with it"
            );
            return None;
        };
        match self.sealing.open(&key.sid, sealed) {
            // Moved, not copied, into the key's zeroizing buffer.
            Ok(secret) => Some(ApiKey::new(key.account_sid, secret.as_bytes().to_vec())),
            Err(e) => {
                tracing::error!(key = %key.sid, error = %e, "an API key's secret could not be opened to verify an Access Token");
                None
            }
        }
    }
}

/// Installs [`StoredApiKeys`] as `state`'s Access Token keys (in every clone of it). `false`
/// if `state` already has keys or cannot seal API key secrets.
pub fn install(state: &AppState) -> bool {
    match StoredApiKeys::from_state(state) {
        Some(keys) => state.set_access_token_keys(Arc::new(keys)),
        None => false,
    }
}
