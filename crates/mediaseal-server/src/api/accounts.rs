//! Accounts, subaccounts and API keys (api/2010-04-01).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mediaseal_store::MetadataStore;
use mediaseal_store::model::{Account, ApiKey, Cursor};
use serde::Serialize;

use super::{Authed, json_sid};
use crate::auth::{accessible_account, hash_secret};
use crate::clock::{now_us, rfc2822};
use crate::error::{ApiError, ApiResult};
use crate::paging::{Envelope2010, Page, PageRequest, envelope_2010};
use crate::params::Params;
use crate::sid::{new_secret, new_sid};
use crate::state::AppState;

/// Creates an account (a main account when `parent` is `None`). Used by the API for subaccounts
/// and by `mediaseal account create` for main accounts.
pub async fn create_account(
    meta: &dyn MetadataStore,
    friendly_name: Option<&str>,
    parent: Option<&str>,
) -> Result<Account, mediaseal_store::StoreError> {
    let now = now_us();
    let sid = new_sid("AC");
    let account = Account {
        friendly_name: friendly_name.map_or_else(
            || format!("mediaseal account {}", &sid[..10]),
            str::to_owned,
        ),
        sid,
        parent_sid: parent.map(str::to_owned),
        status: "active".to_owned(),
        auth_token: new_secret(),
        secondary_auth_token: None,
        date_created: now,
        date_updated: now,
    };
    meta.insert_account(&account).await?;
    Ok(account)
}

/// An account as the API shows it (fields in alphabetical order, as clients have always seen
/// them).
#[derive(Debug, Serialize)]
pub(crate) struct AccountResource {
    auth_token: String,
    date_created: String,
    date_updated: String,
    friendly_name: String,
    owner_account_sid: String,
    sid: String,
    status: String,
    subresource_uris: AccountSubresources,
    #[serde(rename = "type")]
    kind: &'static str,
    uri: String,
}

/// `subresource_uris` of an account.
#[derive(Debug, Serialize)]
struct AccountSubresources {
    keys: String,
    notifications: String,
    recordings: String,
}

impl AccountResource {
    fn from_record(a: &Account) -> Self {
        let base = format!("/2010-04-01/Accounts/{}", a.sid);
        Self {
            auth_token: a.auth_token.clone(),
            date_created: rfc2822(a.date_created),
            date_updated: rfc2822(a.date_updated),
            friendly_name: a.friendly_name.clone(),
            owner_account_sid: a.parent_sid.as_deref().unwrap_or(&a.sid).to_owned(),
            sid: a.sid.clone(),
            status: a.status.clone(),
            subresource_uris: AccountSubresources {
                keys: format!("{base}/Keys.json"),
                notifications: format!("{base}/Notifications.json"),
                recordings: format!("{base}/Recordings.json"),
            },
            kind: "Full",
            uri: format!("{base}.json"),
        }
    }
}

/// An API key as the API shows it; the secret only in the answer that created it.
#[derive(Debug, Serialize)]
pub(crate) struct KeyResource {
    date_created: String,
    date_updated: String,
    friendly_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    sid: String,
}

impl KeyResource {
    fn from_record(k: &ApiKey, secret: Option<String>) -> Self {
        Self {
            date_created: rfc2822(k.date_created),
            date_updated: rfc2822(k.date_updated),
            friendly_name: k.friendly_name.clone(),
            secret,
            sid: k.sid.clone(),
        }
    }
}

/// The Accounts and Keys resources need the auth token itself, as on Twilio, where standard API
/// keys can neither read nor manage accounts or keys. An account answer carries the auth token,
/// and with it a key holder could mint keys that outlive the revocation of their own; so an API
/// key gets 403 here before anything is looked up (the same answer for every account SID).
fn require_auth_token(auth: &Authed) -> ApiResult<()> {
    if auth.principal.api_key.is_some() {
        return Err(ApiError::forbidden(
            "API keys cannot read or manage accounts or keys; use the account's auth token \
             (AccountSid:AuthToken) for this resource",
        ));
    }
    Ok(())
}

pub(crate) async fn create_subaccount(
    State(st): State<AppState>,
    auth: Authed,
    body: Bytes,
) -> ApiResult<Response> {
    require_auth_token(&auth)?;
    if auth.principal.account.parent_sid.is_some() {
        return Err(ApiError::forbidden(
            "a subaccount cannot create subaccounts",
        ));
    }
    let form = Params::from_form(&body);
    let name = form.friendly_name("FriendlyName", 64)?;
    let account = create_account(st.meta.as_ref(), name, Some(auth.principal.sid())).await?;
    tracing::info!(account = %account.sid, parent = %auth.principal.sid(), "subaccount created");
    Ok((
        StatusCode::CREATED,
        Json(AccountResource::from_record(&account)),
    )
        .into_response())
}

pub(crate) async fn list_accounts(
    State(st): State<AppState>,
    auth: Authed,
) -> ApiResult<Json<Envelope2010<AccountResource>>> {
    require_auth_token(&auth)?;
    let req = PageRequest::from_params(&auth.query, 1000)?;
    let rows = st
        .meta
        .list_accounts(auth.principal.sid(), req.cursor.as_ref(), req.fetch_limit())
        .await?;
    let page = Page::cut(rows, &req, |a| Cursor {
        date_created: a.date_created,
        sid: a.sid.clone(),
    });
    Ok(Json(envelope_2010(
        "accounts",
        "/2010-04-01/Accounts.json",
        &page,
        &req,
        &auth.query,
        &[],
        AccountResource::from_record,
    )))
}

pub(crate) async fn fetch_account(
    State(st): State<AppState>,
    auth: Authed,
    Path(file): Path<String>,
) -> ApiResult<Json<AccountResource>> {
    require_auth_token(&auth)?;
    let sid = json_sid(&file, "AC", &auth.path)?;
    let account = accessible_account(&st, &auth.principal, sid, &auth.path).await?;
    Ok(Json(AccountResource::from_record(&account)))
}

pub(crate) async fn update_account(
    State(st): State<AppState>,
    auth: Authed,
    Path(file): Path<String>,
    body: Bytes,
) -> ApiResult<Json<AccountResource>> {
    require_auth_token(&auth)?;
    let sid = json_sid(&file, "AC", &auth.path)?;
    let account = accessible_account(&st, &auth.principal, sid, &auth.path).await?;
    let form = Params::from_form(&body);
    let name = form.friendly_name("FriendlyName", 64)?;
    let status = match form.get("Status") {
        None => None,
        Some(s @ ("active" | "suspended" | "closed")) => {
            if account.sid == auth.principal.sid() && s != "active" {
                return Err(ApiError::bad_param(
                    "Status",
                    "an account cannot suspend or close itself",
                ));
            }
            if account.status == "closed" && s != "closed" {
                return Err(ApiError::bad_param(
                    "Status",
                    format!(
                        "account {} is closed, and a closed account cannot be re-opened or \
                         suspended; create a new subaccount instead",
                        account.sid
                    ),
                ));
            }
            Some(s)
        }
        Some(other) => {
            return Err(ApiError::bad_param(
                "Status",
                format!("'{other}' is not active, suspended or closed"),
            ));
        }
    };
    let updated = st
        .meta
        .update_account(&account.sid, name, status, now_us())
        .await?
        .ok_or_else(|| ApiError::not_found(&auth.path))?;
    Ok(Json(AccountResource::from_record(&updated)))
}

pub(crate) async fn create_key(
    State(st): State<AppState>,
    auth: Authed,
    Path(account_sid): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    require_auth_token(&auth)?;
    let account = accessible_account(&st, &auth.principal, &account_sid, &auth.path).await?;
    let form = Params::from_form(&body);
    let name = form
        .friendly_name("FriendlyName", 64)?
        .unwrap_or("")
        .to_owned();
    let sealing = st
        .api_key_secrets
        .as_ref()
        .ok_or_else(|| ApiError::internal("the API key secret sealing key is unavailable"))?;
    let secret = new_secret();
    let sid = new_sid("SK");
    // Sealed as well as hashed: the hash authenticates requests, the sealed secret verifies
    // the HS256 room Access Tokens the key signs.
    let secret_sealed = sealing.seal(&sid, &secret).map_err(ApiError::internal)?;
    let now = now_us();
    let key = ApiKey {
        sid,
        account_sid: account.sid.clone(),
        friendly_name: name,
        secret_hash: hash_secret(&secret),
        secret_sealed: Some(secret_sealed),
        date_created: now,
        date_updated: now,
    };
    st.meta.insert_api_key(&key).await?;
    tracing::info!(key = %key.sid, account = %account.sid, "API key created");
    // The secret is shown here once and never again; only its hash and its sealed form are
    // kept.
    Ok((
        StatusCode::CREATED,
        Json(KeyResource::from_record(&key, Some(secret))),
    )
        .into_response())
}

pub(crate) async fn list_keys(
    State(st): State<AppState>,
    auth: Authed,
    Path(account_sid): Path<String>,
) -> ApiResult<Json<Envelope2010<KeyResource>>> {
    require_auth_token(&auth)?;
    let account = accessible_account(&st, &auth.principal, &account_sid, &auth.path).await?;
    let req = PageRequest::from_params(&auth.query, 1000)?;
    let rows = st
        .meta
        .list_api_keys(&account.sid, req.cursor.as_ref(), req.fetch_limit())
        .await?;
    let page = Page::cut(rows, &req, |k| Cursor {
        date_created: k.date_created,
        sid: k.sid.clone(),
    });
    let path = format!("/2010-04-01/Accounts/{}/Keys.json", account.sid);
    Ok(Json(envelope_2010(
        "keys",
        &path,
        &page,
        &req,
        &auth.query,
        &[],
        |k| KeyResource::from_record(k, None),
    )))
}

async fn owned_key(
    st: &AppState,
    auth: &Authed,
    account_sid: &str,
    file: &str,
) -> ApiResult<ApiKey> {
    require_auth_token(auth)?;
    let account = accessible_account(st, &auth.principal, account_sid, &auth.path).await?;
    let sid = json_sid(file, "SK", &auth.path)?;
    match st.meta.api_key(sid).await? {
        Some(k) if k.account_sid == account.sid => Ok(k),
        _ => Err(ApiError::not_found(&auth.path)),
    }
}

pub(crate) async fn fetch_key(
    State(st): State<AppState>,
    auth: Authed,
    Path((account_sid, file)): Path<(String, String)>,
) -> ApiResult<Json<KeyResource>> {
    let key = owned_key(&st, &auth, &account_sid, &file).await?;
    Ok(Json(KeyResource::from_record(&key, None)))
}

pub(crate) async fn update_key(
    State(st): State<AppState>,
    auth: Authed,
    Path((account_sid, file)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<KeyResource>> {
    let key = owned_key(&st, &auth, &account_sid, &file).await?;
    let form = Params::from_form(&body);
    let name = form
        .friendly_name("FriendlyName", 64)?
        .unwrap_or(&key.friendly_name)
        .to_owned();
    let updated = st
        .meta
        .update_api_key(&key.sid, &name, now_us())
        .await?
        .ok_or_else(|| ApiError::not_found(&auth.path))?;
    Ok(Json(KeyResource::from_record(&updated, None)))
}

pub(crate) async fn delete_key(
    State(st): State<AppState>,
    auth: Authed,
    Path((account_sid, file)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let key = owned_key(&st, &auth, &account_sid, &file).await?;
    st.meta.delete_api_key(&key.sid).await?;
    Ok(StatusCode::NO_CONTENT)
}
