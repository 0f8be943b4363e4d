//! `/Media` of recordings and compositions, and the signed download URL it points at.
//!
//! As on Twilio (seed 001), `/Media` answers 302 with the URL in `Location` and in a JSON body
//! `{"redirect_to": …}`; clients read the body rather than follow the redirect. The URL expires
//! after `Ttl` seconds (default 3600, at most 604800, S3's own presigning limit).
//!
//! Where the media is sealed with the customer's key, the URL serves the stored bytes with the
//! `x-amz-meta-x-amz-key`/`-iv`/`-unencrypted-content-length`/`-matdesc` headers, so the seed's
//! `wget -S` + `openssl rsautl` + `openssl enc -d -aes-256-cbc` steps open it. When the object
//! store can presign (S3), the URL is the store's own. Media sealed with the service's at-rest
//! key is always served through this service's own signed URL, decrypted on the way out.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mediaseal_store::StoreError;
use mediaseal_store::model::{AccountStatus, Sealing};
use serde::Serialize;

use crate::api::Authed;
use crate::error::{ApiError, ApiResult};
use crate::media::{serve_at_rest, serve_stored};
use crate::signed_url::{Refusal, ServeMode, sign, verify};
use crate::state::AppState;

/// Default lifetime of a media URL, seconds.
const DEFAULT_TTL: i64 = 3600;
/// Longest lifetime of a media URL, seconds (7 days, like S3 presigned URLs).
const MAX_TTL: i64 = 604_800;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The body of a `/Media` answer: where to download from.
#[derive(Debug, Serialize)]
struct MediaRedirect {
    redirect_to: String,
}

/// The 302 answer for an object.
async fn redirect(
    st: &AppState,
    auth: &Authed,
    key: &str,
    sealing: Sealing,
    plain_type: &'static str,
) -> ApiResult<Response> {
    let ttl = auth
        .query
        .int_in("Ttl", 1..=MAX_TTL)?
        .unwrap_or(DEFAULT_TTL);
    let presigned = match sealing {
        // Only ciphertext the customer can open may be handed out straight from the store.
        Sealing::Customer if st.config.media_from_store => {
            st.objects
                .presign_get(key, Duration::from_secs(ttl as u64))
                .await?
        }
        _ => None,
    };
    let url = match presigned {
        Some(url) => url,
        None => {
            let (mode, content_type) = match sealing {
                Sealing::Customer => (ServeMode::Sealed, "application/octet-stream"),
                _ => (ServeMode::AtRest, plain_type),
            };
            let token = sign(
                &st.config.url_signing_key,
                key,
                mode,
                content_type,
                unix_now() + ttl as u64,
            );
            format!("{}/v1/MediaDownload/{token}", auth.base_url)
        }
    };
    let location = header::HeaderValue::from_str(&url);
    let mut response =
        (StatusCode::FOUND, Json(MediaRedirect { redirect_to: url })).into_response();
    if let Ok(v) = location {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("private, no-store"),
    );
    Ok(response)
}

fn no_media(what: &str, sid: &str, status: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        20404,
        format!("{what} {sid} has no media (status {status})"),
    )
}

async fn recording_media(
    st: &AppState,
    auth: &Authed,
    room: Option<&str>,
    sid: &str,
) -> ApiResult<Response> {
    let account = auth.principal.sid();
    let room = match room {
        Some(ident) => Some(super::rooms::resolve(st, account, ident, &auth.path).await?),
        None => None,
    };
    let r = super::recordings::find(st, account, room.as_ref(), sid, &auth.path).await?;
    if r.status == "processing" {
        // Its object is still being written: no URL, so no client ever reads part of it.
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            20404,
            format!(
                "Recording {sid} is still being recorded (status processing): its media can be \
                 fetched once its status is completed"
            ),
        ));
    }
    let Some(key) = r.object_key.clone().filter(|_| r.status == "completed") else {
        return Err(no_media("Recording", sid, &r.status));
    };
    let plain_type = if r.media_type == "video" {
        "video/x-matroska"
    } else {
        "audio/x-matroska"
    };
    redirect(st, auth, &key, r.sealing, plain_type).await
}

pub(crate) async fn recording(
    State(st): State<AppState>,
    auth: Authed,
    Path(sid): Path<String>,
) -> ApiResult<Response> {
    recording_media(&st, &auth, None, &sid).await
}

pub(crate) async fn room_recording(
    State(st): State<AppState>,
    auth: Authed,
    Path((room, sid)): Path<(String, String)>,
) -> ApiResult<Response> {
    recording_media(&st, &auth, Some(&room), &sid).await
}

pub(crate) async fn composition(
    State(st): State<AppState>,
    auth: Authed,
    Path(sid): Path<String>,
) -> ApiResult<Response> {
    let c = super::compositions::find(&st, auth.principal.sid(), &sid, &auth.path).await?;
    let Some(key) = c.object_key.clone().filter(|_| c.status == "completed") else {
        return Err(no_media("Composition", &sid, &c.status));
    };
    let plain_type = if c.format == "mp4" {
        "video/mp4"
    } else {
        "video/webm"
    };
    redirect(&st, &auth, &key, c.sealing, plain_type).await
}

/// Whether the account that owns object `key` is active. Every object key starts with its
/// account's SID (`AC…/…`); a key that does not counts as inactive, so the check fails closed.
async fn owner_is_active(st: &AppState, key: &str) -> ApiResult<bool> {
    let Some((account, _)) = key.split_once('/') else {
        return Ok(false);
    };
    if !crate::sid::is_sid(account, "AC") {
        return Ok(false);
    }
    Ok(st
        .meta
        .account(account)
        .await?
        .is_some_and(|a| a.status == AccountStatus::Active.as_str()))
}

/// `GET /v1/MediaDownload/{token}`: no credentials; the token is the permission, as long as the
/// account that owns the media is active.
pub(crate) async fn download(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> ApiResult<Response> {
    let grant = match verify(&st.config.url_signing_key, &token, unix_now()) {
        Ok(g) => g,
        Err(Refusal::Expired) => {
            return Err(ApiError::forbidden(
                "This media URL has expired; fetch the resource's /Media again for a new one",
            ));
        }
        Err(Refusal::Invalid) => return Err(ApiError::forbidden("This media URL is not valid")),
    };
    // A URL stops working once its account is suspended or closed (issue 10). Checked before the
    // object is looked at, and answered exactly like a forged URL, so the answer says nothing
    // about the object or the account.
    if !owner_is_active(&st, &grant.key).await? {
        return Err(ApiError::forbidden("This media URL is not valid"));
    }
    let gone = |e: StoreError| match e {
        StoreError::ObjectNotFound(_) => {
            ApiError::new(StatusCode::NOT_FOUND, 20404, "This media no longer exists")
        }
        other => ApiError::internal(other),
    };
    match grant.mode {
        ServeMode::Sealed => {
            let info = st.objects.head(&grant.key).await.map_err(gone)?;
            let extra: Vec<(String, String)> = info
                .meta
                .into_iter()
                .filter(|(k, _)| k.starts_with("x-amz-meta-"))
                .collect();
            serve_stored(
                st.objects.as_ref(),
                &grant.key,
                &headers,
                grant.content_type,
                &extra,
            )
            .await
        }
        ServeMode::AtRest => {
            st.objects.head(&grant.key).await.map_err(gone)?;
            serve_at_rest(&st.reader, &grant.key, &headers, grant.content_type).await
        }
    }
}
