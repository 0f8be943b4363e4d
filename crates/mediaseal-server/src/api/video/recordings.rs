//! Track recordings (`RT…`): the ingest door `POST /v1/Rooms/{RM}/Recordings`, which seals the
//! media on arrival, and fetch/list/delete at `/v1/Recordings` and under the room.
//!
//! With recording encryption on, the media is sealed in `s3-cbc` to the configured key (seed 001)
//! and nobody but the customer can read it, this service included; otherwise it is sealed with
//! the service's at-rest key, which lets it be composed and served decrypted.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use mediaseal_crypto::{PublicKey, Scheme};
use mediaseal_store::model::{Callback, Sealing};
use mediaseal_store::video::{Room, SettingsKind, TrackRecording, TrackRecordingFilter};
use serde_json::{Value, json};

use super::rooms::resolve;
use super::{MAX_PAGE, cursor, date_param, one_of};
use crate::api::Authed;
use crate::callbacks::new_callback;
use crate::clock::{iso8601, now_us};
use crate::compose::sniff_matroska;
use crate::error::{ApiError, ApiResult};
use crate::ingest::{IngestError, SealDetails, SealTo, seal_body};
use crate::paging::{Page, PageRequest, envelope_v1};
use crate::sid::{is_sid, new_sid};
use crate::state::AppState;

/// The size a client downloads: the sealed bytes for customer-sealed media, the plaintext for
/// media the service decrypts on the way out.
fn size(r: &TrackRecording) -> i64 {
    match r.sealing {
        Sealing::Customer => r.sealed_size,
        Sealing::AtRest => r.plain_size,
        Sealing::None => 0,
    }
}

/// `room_scoped` renders the `/v1/Rooms/{RM}/Recordings/{RT}` shape (with `room_sid`).
pub(super) fn render(base: &str, r: &TrackRecording, room_scoped: bool) -> Value {
    let url = if room_scoped {
        format!("{base}/v1/Rooms/{}/Recordings/{}", r.room_sid, r.sid)
    } else {
        format!("{base}/v1/Recordings/{}", r.sid)
    };
    let mut v = json!({
        "account_sid": r.account_sid,
        "status": r.status,
        "date_created": iso8601(r.date_created),
        "sid": r.sid,
        "source_sid": r.source_sid,
        "size": size(r),
        "url": url,
        "type": r.media_type,
        "duration": r.duration_ms.map(|ms| (ms + 500) / 1000),
        "container_format": r.container_format,
        "codec": r.codec,
        "grouping_sids": { "room_sid": r.room_sid, "participant_sid": r.participant_sid },
        "track_name": r.track_name,
        "offset": r.offset_ms,
        "media_external_location": null,
        "status_callback": r.status_callback,
        "status_callback_method": r.status_callback_method,
        "links": { "media": format!("{url}/Media") },
    });
    if room_scoped && let Some(obj) = v.as_object_mut() {
        obj.insert("room_sid".to_owned(), json!(r.room_sid));
    }
    v
}

fn stored_key(hex: &str) -> Option<PublicKey> {
    let der: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<_>>()?;
    PublicKey::from_der(&der).ok()
}

/// Reads and discards a body whose bytes must not be kept.
async fn discard(body: Body) {
    let mut stream = body.into_data_stream();
    while let Some(Ok(_)) = stream.next().await {}
}

fn track_callback(
    url: &str,
    method: &str,
    room: &Room,
    r: &TrackRecording,
    event: &str,
) -> Callback {
    let params: Vec<(String, String)> = [
        ("AccountSid", r.account_sid.clone()),
        ("RoomSid", room.sid.clone()),
        ("RoomName", room.unique_name.clone()),
        ("RoomStatus", room.status.clone()),
        ("RoomType", room.room_type.clone()),
        ("StatusCallbackEvent", event.to_owned()),
        ("Timestamp", iso8601(now_us())),
        ("ParticipantSid", r.participant_sid.clone()),
        ("SourceSid", r.source_sid.clone()),
        ("TrackName", r.track_name.clone()),
        ("RecordingSid", r.sid.clone()),
        ("RecordingUri", format!("/v1/Recordings/{}", r.sid)),
        ("MediaUri", format!("/v1/Recordings/{}/Media", r.sid)),
        ("Container", r.container_format.clone()),
        ("Codec", r.codec.clone()),
        ("Type", r.media_type.clone()),
        (
            "Duration",
            r.duration_ms.map_or(0, |ms| (ms + 500) / 1000).to_string(),
        ),
        ("Size", size(r).to_string()),
        ("OffsetFromTwilioVectorEpoch", r.offset_ms.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    new_callback(&r.account_sid, &r.sid, url, method, &params)
}

/// `POST /v1/Rooms/{RM}/Recordings?ParticipantSid=PA…&TrackName=…&Type=audio|video|data&…` with
/// the track's media (Matroska) as the body. Every parameter is checked before a byte of the body
/// is read; the body is sealed as it arrives.
pub(crate) async fn ingest(
    State(st): State<AppState>,
    auth: Authed,
    Path(room_ident): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let account = auth.principal.sid().to_owned();
    let room = resolve(&st, &account, &room_ident, &auth.path).await?;
    if room.status != "in-progress" {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            20001,
            format!(
                "Room {} is {}; track recordings can only be added while it is in progress",
                room.sid, room.status
            ),
        ));
    }
    let q = &auth.query;
    let participant_sid = q
        .sid("ParticipantSid", "PA")?
        .ok_or_else(|| ApiError::missing_param("ParticipantSid"))?
        .to_owned();
    let track_name = q.required("TrackName")?;
    if track_name.len() > 256 || track_name.chars().any(char::is_control) {
        return Err(ApiError::bad_param(
            "TrackName",
            "must be at most 256 printable characters",
        ));
    }
    let track_name = track_name.to_owned();
    let media_type = one_of(q, "Type", &["audio", "video", "data"])?
        .ok_or_else(|| ApiError::missing_param("Type"))?
        .to_owned();
    let codec = match q.get("Codec") {
        None => match media_type.as_str() {
            "video" => "vp8".to_owned(),
            _ => "opus".to_owned(),
        },
        Some(c) if ["vp8", "h264", "opus", "pcmu"].contains(&c.to_ascii_lowercase().as_str()) => {
            c.to_ascii_lowercase()
        }
        Some(c) => {
            return Err(ApiError::bad_param(
                "Codec",
                format!("'{c}' is not VP8, H264, OPUS or PCMU"),
            ));
        }
    };
    let container_format = match (q.get("ContainerFormat"), media_type.as_str()) {
        (None, "video") => "mkv".to_owned(),
        (None, _) => "mka".to_owned(),
        (Some(f @ ("mka" | "mkv")), _) => f.to_owned(),
        (Some(f), _) => {
            return Err(ApiError::bad_param(
                "ContainerFormat",
                format!("'{f}' is not mka or mkv"),
            ));
        }
    };
    if (media_type == "audio" && container_format != "mka")
        || (media_type == "video" && container_format != "mkv")
    {
        return Err(ApiError::bad_param(
            "ContainerFormat",
            format!(
                "{media_type} tracks are recorded as {}",
                if media_type == "audio" { "mka" } else { "mkv" }
            ),
        ));
    }
    let offset_ms = q.int_in("Offset", 0..=i64::MAX / 2)?.unwrap_or(0);
    let duration_param = q.int_in("Duration", 0..=86_400 * 7)?;
    let source_sid = match q.sid("SourceSid", "MT")? {
        Some(s) => s.to_owned(),
        None => new_sid("MT"),
    };
    let status_callback = q.url("StatusCallback")?.map(str::to_owned);
    let status_callback_method = q.method("StatusCallbackMethod")?;

    let settings = super::settings::current(&st, &account, SettingsKind::Recording).await?;
    let customer_key = if settings.encryption_enabled {
        let sid = settings.encryption_key_sid.clone().unwrap_or_default();
        match st.meta.public_key(&sid).await? {
            Some(k) if k.account_sid == account => match stored_key(&k.spki_der_hex) {
                Some(key) => Some((k.sid, key)),
                None => {
                    return Err(ApiError::internal(format!(
                        "stored public key {sid} does not parse"
                    )));
                }
            },
            _ => {
                discard(body).await;
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    20001,
                    format!(
                        "Recording encryption is on, but its public key {sid} no longer exists; the media was not \
                         stored. Set a key in /v1/RecordingSettings/Default"
                    ),
                ));
            }
        }
    } else {
        None
    };

    let now = now_us();
    let sid = new_sid("RT");
    let object_key = format!("{account}/{sid}");
    let mut rec = TrackRecording {
        sid: sid.clone(),
        account_sid: account.clone(),
        room_sid: room.sid.clone(),
        participant_sid,
        source_sid,
        track_name,
        media_type,
        codec,
        container_format,
        offset_ms,
        duration_ms: duration_param.map(|s| s * 1000),
        status: "processing".to_owned(),
        sealing: Sealing::None,
        encryption_key_sid: customer_key.as_ref().map(|(s, _)| s.clone()),
        object_key: Some(object_key.clone()),
        sealed_size: 0,
        plain_size: 0,
        status_callback,
        status_callback_method,
        visible: false,
        deleted: false,
        date_created: now,
        date_updated: now,
        date_deleted: None,
    };
    st.meta.reserve_track_recording(&rec).await?;
    let to = match &customer_key {
        Some((sid, key)) => SealTo::CustomerS3 {
            key,
            sid,
            scheme: Scheme::CbcPkcs1,
        },
        None => SealTo::AtRest(st.at_rest.public_key()),
    };
    let sealed = match seal_body(st.objects.as_ref(), &object_key, body, to).await {
        Ok(s) => s,
        Err(e) => {
            st.meta.drop_track_reservation(&sid).await?;
            return Err(match e {
                IngestError::Body(why) => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    20001,
                    format!("The recording upload was interrupted: {why}"),
                ),
                other => ApiError::internal(other),
            });
        }
    };
    let refuse = |why: String| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            20001,
            format!("The recording was not stored: {why}"),
        )
    };
    let problem = if sealed.plain_size == 0 {
        Some("the body is empty; send the track's media".to_owned())
    } else {
        match sniff_matroska(&sealed.head) {
            Ok(info) => {
                if rec.duration_ms.is_none() {
                    rec.duration_ms = info.duration_ms.and_then(|ms| i64::try_from(ms).ok());
                }
                None
            }
            Err(e) => Some(e),
        }
    };
    if let Some(why) = problem {
        st.objects.delete(&object_key).await?;
        st.meta.drop_track_reservation(&sid).await?;
        return Err(refuse(why));
    }
    rec.plain_size = sealed.plain_size as i64;
    rec.sealed_size = sealed.sealed_size as i64;
    rec.sealing = match sealed.details {
        SealDetails::Native => Sealing::AtRest,
        _ => Sealing::Customer,
    };
    rec.status = "completed".to_owned();
    rec.visible = true;
    rec.date_updated = now_us();
    let mut callbacks = Vec::new();
    // Recording events go to the room's status callback, as Twilio's do, and to the track's own.
    for (url, method) in [
        (
            room.status_callback.as_deref(),
            room.status_callback_method.as_str(),
        ),
        (
            rec.status_callback.as_deref(),
            rec.status_callback_method.as_str(),
        ),
    ] {
        if let Some(url) = url {
            callbacks.push(track_callback(
                url,
                method,
                &room,
                &rec,
                "recording-started",
            ));
            callbacks.push(track_callback(
                url,
                method,
                &room,
                &rec,
                "recording-completed",
            ));
        }
    }
    if let Err(e) = st.meta.publish_track_recording(&rec, &callbacks).await {
        // The row stays invisible; the worker's sweep removes it and its object.
        return Err(ApiError::internal(e));
    }
    metrics::counter!("mediaseal_track_recordings_ingested_total", "sealing" => rec.sealing.as_str()).increment(1);
    tracing::info!(recording = %rec.sid, room = %room.sid, account = %account, sealing = rec.sealing.as_str(), bytes = rec.plain_size, "track recording stored");
    Ok((
        StatusCode::CREATED,
        Json(render(&auth.base_url, &rec, true)),
    )
        .into_response())
}

async fn list_inner(st: AppState, auth: Authed, room: Option<Room>) -> ApiResult<Json<Value>> {
    let q = &auth.query;
    let req = PageRequest::from_params(q, MAX_PAGE)?;
    let mut grouping = Vec::new();
    for g in q.all("GroupingSid") {
        if !(is_sid(g, "RM") || is_sid(g, "PA")) {
            return Err(ApiError::bad_param(
                "GroupingSid",
                format!("'{g}' is not a room (RM…) or participant (PA…) SID"),
            ));
        }
        grouping.push(g.to_owned());
    }
    let filter = TrackRecordingFilter {
        room_sid: room.as_ref().map(|r| r.sid.clone()),
        status: one_of(
            q,
            "Status",
            &["processing", "completed", "deleted", "failed"],
        )?
        .map(str::to_owned),
        source_sid: q.sid("SourceSid", "MT")?.map(str::to_owned),
        grouping_sids: grouping,
        media_type: one_of(q, "MediaType", &["audio", "video", "data"])?.map(str::to_owned),
        created_after: date_param(q, "DateCreatedAfter")?,
        created_before: date_param(q, "DateCreatedBefore")?,
    };
    let rows = st
        .meta
        .list_track_recordings(
            auth.principal.sid(),
            &filter,
            req.cursor.as_ref(),
            req.fetch_limit(),
        )
        .await?;
    let page = Page::cut(rows, &req, |r| cursor(r.date_created, &r.sid));
    let base = auth.base_url.clone();
    let keep = [
        "Status",
        "SourceSid",
        "GroupingSid",
        "MediaType",
        "DateCreatedAfter",
        "DateCreatedBefore",
    ];
    let scoped = room.is_some();
    let path = match &room {
        Some(r) => format!("/v1/Rooms/{}/Recordings", r.sid),
        None => "/v1/Recordings".to_owned(),
    };
    Ok(Json(envelope_v1(
        "recordings",
        &base,
        &path,
        &page,
        &req,
        q,
        &keep,
        |r| render(&base, r, scoped),
    )))
}

pub(crate) async fn list(State(st): State<AppState>, auth: Authed) -> ApiResult<Json<Value>> {
    list_inner(st, auth, None).await
}

pub(crate) async fn list_for_room(
    State(st): State<AppState>,
    auth: Authed,
    Path(room): Path<String>,
) -> ApiResult<Json<Value>> {
    let room = resolve(&st, auth.principal.sid(), &room, &auth.path).await?;
    list_inner(st, auth, Some(room)).await
}

/// The account's recording `sid` (in `room`, when given), or a 404 for `path`.
pub(super) async fn find(
    st: &AppState,
    account: &str,
    room: Option<&Room>,
    sid: &str,
    path: &str,
) -> ApiResult<TrackRecording> {
    if !is_sid(sid, "RT") {
        return Err(ApiError::not_found(path));
    }
    st.meta
        .track_recording(account, sid)
        .await?
        .filter(|r| room.is_none_or(|room| room.sid == r.room_sid))
        .ok_or_else(|| ApiError::not_found(path))
}

pub(crate) async fn fetch(
    State(st): State<AppState>,
    auth: Authed,
    Path(sid): Path<String>,
) -> ApiResult<Json<Value>> {
    let r = find(&st, auth.principal.sid(), None, &sid, &auth.path).await?;
    Ok(Json(render(&auth.base_url, &r, false)))
}

pub(crate) async fn fetch_in_room(
    State(st): State<AppState>,
    auth: Authed,
    Path((room, sid)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let room = resolve(&st, auth.principal.sid(), &room, &auth.path).await?;
    let r = find(&st, auth.principal.sid(), Some(&room), &sid, &auth.path).await?;
    Ok(Json(render(&auth.base_url, &r, true)))
}

async fn delete_inner(
    st: &AppState,
    auth: &Authed,
    room: Option<&Room>,
    sid: &str,
) -> ApiResult<StatusCode> {
    let account = auth.principal.sid();
    let r = find(st, account, room, sid, &auth.path).await?;
    if r.deleted {
        return Err(ApiError::not_found(&auth.path));
    }
    let before = st
        .meta
        .delete_track_recording(account, sid, now_us())
        .await?
        .ok_or_else(|| ApiError::not_found(&auth.path))?;
    if let Some(key) = before.object_key
        && let Err(e) = st.objects.delete(&key).await
    {
        // The row no longer points at the object; the orphan sweeper finishes the job.
        tracing::warn!(recording = %sid, error = %e, "object deletion deferred to the sweeper");
    }
    tracing::info!(recording = %sid, account = %account, "track recording deleted");
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn delete(
    State(st): State<AppState>,
    auth: Authed,
    Path(sid): Path<String>,
) -> ApiResult<StatusCode> {
    delete_inner(&st, &auth, None, &sid).await
}

pub(crate) async fn delete_in_room(
    State(st): State<AppState>,
    auth: Authed,
    Path((room, sid)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let room = resolve(&st, auth.principal.sid(), &room, &auth.path).await?;
    delete_inner(&st, &auth, Some(&room), &sid).await
}
