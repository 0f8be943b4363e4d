//! Auth token rotation (accounts v1): `/v1/AuthTokens/Secondary` creates or deletes a secondary
//! auth token, which authenticates beside the primary; `/v1/AuthTokens/Promote` makes it the
//! primary and discards the old one. The same operations back `mediaseal account
//! secondary-token` and `promote-token`, which work on the store offline.
//!
//! Webhook signatures are keyed with whatever the primary is when a callback is delivered, so a
//! callback queued before a promotion is signed with the new primary.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mediaseal_store::model::AccountStatus;
use mediaseal_store::{MetadataStore, StoreError};
use serde::Serialize;

use super::Authed;
use crate::clock::{iso8601, now_us};
use crate::error::{ApiError, ApiResult};
use crate::sid::new_secret;
use crate::state::AppState;

const SECONDARY_PATH: &str = "/v1/AuthTokens/Secondary";
const PROMOTE_PATH: &str = "/v1/AuthTokens/Promote";

/// An auth token made by a rotation step: a new secondary, or the secondary just promoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotatedToken {
    /// The account it belongs to.
    pub account_sid: String,
    /// The token.
    pub token: String,
    /// When the token was made.
    pub date_created: i64,
    /// When the account's tokens last changed (this step).
    pub date_updated: i64,
}

/// Why a rotation step was refused.
#[derive(Debug, thiserror::Error)]
pub enum RotateTokenError {
    /// No account has this SID.
    #[error("there is no account {0}; check the SID (mediaseal account create prints it)")]
    NoSuchAccount(String),
    /// The account is closed: its credentials never work again, so they are not rotated.
    #[error("account {0} is closed, and a closed account's auth tokens cannot be changed")]
    Closed(String),
    /// Delete or promote asked for, but there is no secondary token.
    #[error(
        "account {0} has no secondary auth token; create one first \
         (POST /v1/AuthTokens/Secondary, or mediaseal account secondary-token create)"
    )]
    NoSecondary(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The account `sid`, which must exist and not be closed.
async fn rotatable(meta: &dyn MetadataStore, sid: &str) -> Result<(), RotateTokenError> {
    match meta.account(sid).await? {
        None => Err(RotateTokenError::NoSuchAccount(sid.to_owned())),
        Some(a) if a.status == AccountStatus::Closed.as_str() => {
            Err(RotateTokenError::Closed(sid.to_owned()))
        }
        Some(_) => Ok(()),
    }
}

/// Gives account `sid` a new secondary auth token, replacing any it had (as on Twilio, an account
/// has at most one).
pub async fn create_secondary_auth_token(
    meta: &dyn MetadataStore,
    sid: &str,
) -> Result<RotatedToken, RotateTokenError> {
    rotatable(meta, sid).await?;
    let now = now_us();
    let token = new_secret();
    meta.set_secondary_auth_token(sid, &token, now)
        .await?
        .ok_or_else(|| RotateTokenError::NoSuchAccount(sid.to_owned()))?;
    Ok(RotatedToken {
        account_sid: sid.to_owned(),
        token,
        date_created: now,
        date_updated: now,
    })
}

/// Removes account `sid`'s secondary auth token; it stops authenticating at once.
pub async fn delete_secondary_auth_token(
    meta: &dyn MetadataStore,
    sid: &str,
) -> Result<(), RotateTokenError> {
    rotatable(meta, sid).await?;
    if meta.clear_secondary_auth_token(sid, now_us()).await? {
        Ok(())
    } else {
        Err(RotateTokenError::NoSecondary(sid.to_owned()))
    }
}

/// Makes account `sid`'s secondary auth token its primary; the old primary stops working at
/// once, for requests and for webhook signatures.
pub async fn promote_secondary_auth_token(
    meta: &dyn MetadataStore,
    sid: &str,
) -> Result<RotatedToken, RotateTokenError> {
    rotatable(meta, sid).await?;
    let now = now_us();
    let promoted = meta
        .promote_secondary_auth_token(sid, now)
        .await?
        .ok_or_else(|| RotateTokenError::NoSecondary(sid.to_owned()))?;
    Ok(RotatedToken {
        account_sid: sid.to_owned(),
        token: promoted.token,
        date_created: promoted.date_created,
        date_updated: now,
    })
}

impl From<RotateTokenError> for ApiError {
    fn from(e: RotateTokenError) -> Self {
        match e {
            // Authentication already required an active account, so these mean it changed
            // under the request; answer as for a resource that is not there.
            e @ (RotateTokenError::NoSuchAccount(_)
            | RotateTokenError::Closed(_)
            | RotateTokenError::NoSecondary(_)) => {
                Self::new(StatusCode::NOT_FOUND, 20404, e.to_string())
            }
            RotateTokenError::Store(e) => e.into(),
        }
    }
}

/// `accounts.v1.secondary_auth_token` (fields in alphabetical order, as Twilio's).
#[derive(Debug, Serialize)]
pub(crate) struct SecondaryAuthTokenResource {
    account_sid: String,
    date_created: String,
    date_updated: String,
    secondary_auth_token: String,
    url: String,
}

/// `accounts.v1.auth_token_promotion`.
#[derive(Debug, Serialize)]
pub(crate) struct AuthTokenPromotionResource {
    account_sid: String,
    auth_token: String,
    date_created: String,
    date_updated: String,
    url: String,
}

/// Only the account's own auth token may rotate it, as on Twilio: an API key that could mint an
/// auth token would outlive its own revocation (issue 10). Acts on the calling account only.
fn require_auth_token(auth: &Authed) -> ApiResult<()> {
    if auth.principal.api_key.is_some() {
        return Err(ApiError::forbidden(
            "API keys cannot manage auth tokens; use the account's auth token \
             (AccountSid:AuthToken) for this resource",
        ));
    }
    Ok(())
}

pub(crate) async fn create_secondary(
    State(st): State<AppState>,
    auth: Authed,
) -> ApiResult<Response> {
    require_auth_token(&auth)?;
    let made = create_secondary_auth_token(st.meta.as_ref(), auth.principal.sid()).await?;
    tracing::info!(account = %made.account_sid, "secondary auth token created");
    Ok((
        StatusCode::CREATED,
        Json(SecondaryAuthTokenResource {
            account_sid: made.account_sid,
            date_created: iso8601(made.date_created),
            date_updated: iso8601(made.date_updated),
            secondary_auth_token: made.token,
            url: format!("{}{SECONDARY_PATH}", auth.base_url),
        }),
    )
        .into_response())
}

pub(crate) async fn delete_secondary(
    State(st): State<AppState>,
    auth: Authed,
) -> ApiResult<StatusCode> {
    require_auth_token(&auth)?;
    delete_secondary_auth_token(st.meta.as_ref(), auth.principal.sid()).await?;
    tracing::info!(account = %auth.principal.sid(), "secondary auth token deleted");
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn promote(
    State(st): State<AppState>,
    auth: Authed,
) -> ApiResult<Json<AuthTokenPromotionResource>> {
    require_auth_token(&auth)?;
    let promoted = promote_secondary_auth_token(st.meta.as_ref(), auth.principal.sid()).await?;
    tracing::info!(account = %promoted.account_sid, "secondary auth token promoted to primary");
    Ok(Json(AuthTokenPromotionResource {
        account_sid: promoted.account_sid,
        auth_token: promoted.token,
        date_created: iso8601(promoted.date_created),
        date_updated: iso8601(promoted.date_updated),
        url: format!("{}{PROMOTE_PATH}", auth.base_url),
    }))
}
