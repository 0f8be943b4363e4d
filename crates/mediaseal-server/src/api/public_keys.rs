//! Customer public keys: `/v1/Credentials/PublicKeys` (accounts v1). The key is validated when
//! it arrives and is never returned.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mediaseal_crypto::{KeyError, PublicKey};
use mediaseal_store::model::{Cursor, PublicKeyRecord};
use serde::Serialize;

use super::Authed;
use crate::auth::accessible_account;
use crate::clock::{iso8601, now_us};
use crate::error::{ApiError, ApiResult};
use crate::paging::{EnvelopeV1, Page, PageRequest, envelope_v1};
use crate::params::Params;
use crate::sid::{hex, new_sid};
use crate::state::AppState;

const PATH: &str = "/v1/Credentials/PublicKeys";

/// A public key as the API shows it (never the key itself; fields in alphabetical order, as
/// clients have always seen them).
#[derive(Debug, Serialize)]
pub(crate) struct PublicKeyResource {
    account_sid: String,
    date_created: String,
    date_updated: String,
    friendly_name: String,
    sid: String,
    url: String,
}

impl PublicKeyResource {
    fn from_record(base: &str, k: &PublicKeyRecord) -> Self {
        Self {
            account_sid: k.account_sid.clone(),
            date_created: iso8601(k.date_created),
            date_updated: iso8601(k.date_updated),
            friendly_name: k.friendly_name.clone(),
            sid: k.sid.clone(),
            url: format!("{base}{PATH}/{}", k.sid),
        }
    }
}

/// Why a submitted key is refused, in words that help the customer fix it.
fn key_problem(e: &KeyError) -> String {
    match e {
        KeyError::PrivateKeyGivenAsPublic => {
            "this is a private key; it was not stored. Send only the public key \
             ('openssl rsa -in private_key.pem -pubout -out public_key.pem')"
                .to_owned()
        }
        other => other.to_string(),
    }
}

pub(crate) async fn create(
    State(st): State<AppState>,
    auth: Authed,
    body: Bytes,
) -> ApiResult<Response> {
    let form = Params::from_form(&body);
    let pem = form.required("PublicKey")?;
    let key = PublicKey::from_bytes(pem.as_bytes())
        .map_err(|e| ApiError::bad_param("PublicKey", key_problem(&e)))?;
    let name = form
        .friendly_name("FriendlyName", 64)?
        .unwrap_or("")
        .to_owned();
    let owner = match form.sid("AccountSid", "AC")? {
        Some(sid) => accessible_account(&st, &auth.principal, sid, &auth.path).await?,
        None => auth.principal.account.clone(),
    };
    let now = now_us();
    let record = PublicKeyRecord {
        sid: new_sid("CR"),
        account_sid: owner.sid.clone(),
        friendly_name: name,
        spki_der_hex: hex(key.spki_der()),
        fingerprint: key.fingerprint().to_hex(),
        date_created: now,
        date_updated: now,
    };
    st.meta.insert_public_key(&record).await?;
    tracing::info!(key = %record.sid, account = %owner.sid, bits = key.bits(), "public key added");
    Ok((
        StatusCode::CREATED,
        Json(PublicKeyResource::from_record(&auth.base_url, &record)),
    )
        .into_response())
}

pub(crate) async fn list(
    State(st): State<AppState>,
    auth: Authed,
) -> ApiResult<Json<EnvelopeV1<PublicKeyResource>>> {
    let owner = match auth.query.sid("AccountSid", "AC")? {
        Some(sid) => {
            accessible_account(&st, &auth.principal, sid, &auth.path)
                .await?
                .sid
        }
        None => auth.principal.sid().to_owned(),
    };
    let req = PageRequest::from_params(&auth.query, 1000)?;
    let rows = st
        .meta
        .list_public_keys(&owner, req.cursor.as_ref(), req.fetch_limit())
        .await?;
    let page = Page::cut(rows, &req, |k| Cursor {
        date_created: k.date_created,
        sid: k.sid.clone(),
    });
    let base = auth.base_url.clone();
    Ok(Json(envelope_v1(
        "credentials",
        &base,
        PATH,
        &page,
        &req,
        &auth.query,
        &["AccountSid"],
        |k| PublicKeyResource::from_record(&base, k),
    )))
}

/// The key `sid` if the caller may see it; 404 otherwise.
async fn visible_key(st: &AppState, auth: &Authed, sid: &str) -> ApiResult<PublicKeyRecord> {
    if !crate::sid::is_sid(sid, "CR") {
        return Err(ApiError::not_found(&auth.path));
    }
    let Some(key) = st.meta.public_key(sid).await? else {
        return Err(ApiError::not_found(&auth.path));
    };
    accessible_account(st, &auth.principal, &key.account_sid, &auth.path).await?;
    Ok(key)
}

pub(crate) async fn fetch(
    State(st): State<AppState>,
    auth: Authed,
    Path(sid): Path<String>,
) -> ApiResult<Json<PublicKeyResource>> {
    let key = visible_key(&st, &auth, &sid).await?;
    Ok(Json(PublicKeyResource::from_record(&auth.base_url, &key)))
}

pub(crate) async fn update(
    State(st): State<AppState>,
    auth: Authed,
    Path(sid): Path<String>,
    body: Bytes,
) -> ApiResult<Json<PublicKeyResource>> {
    let key = visible_key(&st, &auth, &sid).await?;
    let form = Params::from_form(&body);
    let name = form
        .friendly_name("FriendlyName", 64)?
        .unwrap_or(&key.friendly_name)
        .to_owned();
    let updated = st
        .meta
        .update_public_key(&key.sid, &name, now_us())
        .await?
        .ok_or_else(|| ApiError::not_found(&auth.path))?;
    Ok(Json(PublicKeyResource::from_record(
        &auth.base_url,
        &updated,
    )))
}

pub(crate) async fn delete(
    State(st): State<AppState>,
    auth: Authed,
    Path(sid): Path<String>,
) -> ApiResult<StatusCode> {
    let key = visible_key(&st, &auth, &sid).await?;
    st.meta.delete_public_key(&key.sid).await?;
    tracing::info!(key = %key.sid, account = %key.account_sid, "public key deleted");
    Ok(StatusCode::NO_CONTENT)
}
