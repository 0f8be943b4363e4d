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
use mediaseal_service::tracks::{TrackRequest, track_size};
use mediaseal_sink::Refusal;
use mediaseal_store::video::{Room, TrackRecording, TrackRecordingFilter};
use serde::Serialize;

use super::rooms::resolve;
use super::{MAX_PAGE, MediaLinks, cursor, date_param, one_of};
use crate::api::Authed;
use crate::clock::{iso8601, now_us};
use crate::error::{ApiError, ApiResult};
use crate::paging::{EnvelopeV1, Page, PageRequest, envelope_v1};
use crate::sid::{is_sid, new_sid};
use crate::state::AppState;

/// A track recording as the API shows it (fields in alphabetical order, as clients have always
/// seen them).
#[derive(Debug, Serialize)]
pub(crate) struct TrackRecordingResource {
    account_sid: String,
    codec: String,
    container_format: String,
    date_created: String,
    /// Seconds, rounded; null until known.
    duration: Option<i64>,
    grouping_sids: GroupingSids,
    links: MediaLinks,
    media_external_location: Option<String>,
    offset: i64,
    /// Only in the room-scoped shape (`/v1/Rooms/{RM}/Recordings/{RT}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    room_sid: Option<String>,
    sid: String,
    size: i64,
    source_sid: String,
    status: String,
    status_callback: Option<String>,
    status_callback_method: String,
    track_name: String,
    #[serde(rename = "type")]
    media_type: String,
    url: String,
}

/// `grouping_sids` of a track recording.
#[derive(Debug, Serialize)]
struct GroupingSids {
    participant_sid: String,
    room_sid: String,
}

impl TrackRecordingResource {
    /// `room_scoped` renders the `/v1/Rooms/{RM}/Recordings/{RT}` shape (with `room_sid`).
    fn from_record(base: &str, r: &TrackRecording, room_scoped: bool) -> Self {
        let url = if room_scoped {
            format!("{base}/v1/Rooms/{}/Recordings/{}", r.room_sid, r.sid)
        } else {
            format!("{base}/v1/Recordings/{}", r.sid)
        };
        Self {
            account_sid: r.account_sid.clone(),
            codec: r.codec.clone(),
            container_format: r.container_format.clone(),
            date_created: iso8601(r.date_created),
            duration: r.duration_ms.map(|ms| (ms + 500) / 1000),
            grouping_sids: GroupingSids {
                participant_sid: r.participant_sid.clone(),
                room_sid: r.room_sid.clone(),
            },
            links: MediaLinks::of(&url),
            media_external_location: None,
            offset: r.offset_ms,
            room_sid: room_scoped.then(|| r.room_sid.clone()),
            sid: r.sid.clone(),
            size: track_size(r),
            source_sid: r.source_sid.clone(),
            status: r.status.clone(),
            status_callback: r.status_callback.clone(),
            status_callback_method: r.status_callback_method.clone(),
            track_name: r.track_name.clone(),
            media_type: r.media_type.clone(),
            url,
        }
    }
}

/// Reads and discards a body whose bytes must not be kept.
async fn discard(body: Body) {
    let mut stream = body.into_data_stream();
    while let Some(Ok(_)) = stream.next().await {}
}

/// `POST /v1/Rooms/{RM}/Recordings?ParticipantSid=PA…&TrackName=…&Type=audio|video|data&…` with
/// the track's media (Matroska) as the body. Every parameter is checked before a byte of the body
/// is read; the body is sealed as it arrives.
pub(crate) async fn ingest(
    State(st): State<AppState>,
    auth: Authed,
    Path(room_ident): Path<String>,
    headers: axum::http::HeaderMap,
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
    // Accepted for compatibility, never trusted: the length is measured from the media's own
    // blocks as it is ingested (a claimed week over two seconds of media made week-long
    // compositions; issue 10).
    q.int_in("Duration", 0..=86_400 * 7)?;
    let source_sid = match q.sid("SourceSid", "MT")? {
        Some(s) => s.to_owned(),
        None => new_sid("MT"),
    };
    let status_callback =
        crate::params::webhook_url(q, "StatusCallback", &st.services.config.webhook_policy)?
            .map(str::to_owned);
    let status_callback_method = q.method("StatusCallbackMethod")?;

    let request = TrackRequest {
        room,
        participant_sid,
        source_sid,
        track_name,
        media_type,
        codec,
        container_format,
        offset_ms,
        status_callback,
        status_callback_method,
    };
    // Admission before anything is reserved: the announced size and the account's uploads in
    // progress.
    let mut permit = st
        .services
        .begin_upload(&account, crate::api::declared_length(&headers))?;
    let mut recorder = match st
        .services
        .start_track_recording(request)
        .await
        .map_err(ApiError::internal)?
    {
        Ok(r) => r,
        Err(Refusal::KeyGone { sid, .. }) => {
            discard(body).await;
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                20001,
                format!(
                    "Recording encryption is on, but its public key {} no longer exists; the media was not \
                     stored. Set a key in /v1/RecordingSettings/Default",
                    sid.unwrap_or_default()
                ),
            ));
        }
        Err(other) => return Err(ApiError::internal(other)),
    };
    let mut stream = body.into_data_stream();
    while let Some(frame) = stream.next().await {
        let written = match frame {
            Ok(chunk) => match permit.admit(chunk.len()) {
                // Over the limit while streaming: abandoned below, nothing stored.
                Err(refused) => Err(refused.into()),
                Ok(()) => recorder.write(&chunk).await.map_err(ApiError::internal),
            },
            Err(e) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                20001,
                format!("The recording upload was interrupted: {e}"),
            )),
        };
        if let Err(e) = written {
            recorder.interrupted().await.map_err(ApiError::internal)?;
            return Err(e);
        }
    }
    let rec = match recorder.finish().await.map_err(ApiError::internal)? {
        Ok(rec) => rec,
        Err(rejected) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                20001,
                format!("The recording was not stored: {rejected}"),
            ));
        }
    };
    Ok((
        StatusCode::CREATED,
        Json(TrackRecordingResource::from_record(
            &auth.base_url,
            &rec,
            true,
        )),
    )
        .into_response())
}

async fn list_inner(
    st: AppState,
    auth: Authed,
    room: Option<Room>,
) -> ApiResult<Json<EnvelopeV1<TrackRecordingResource>>> {
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
        |r| TrackRecordingResource::from_record(&base, r, scoped),
    )))
}

pub(crate) async fn list(
    State(st): State<AppState>,
    auth: Authed,
) -> ApiResult<Json<EnvelopeV1<TrackRecordingResource>>> {
    list_inner(st, auth, None).await
}

pub(crate) async fn list_for_room(
    State(st): State<AppState>,
    auth: Authed,
    Path(room): Path<String>,
) -> ApiResult<Json<EnvelopeV1<TrackRecordingResource>>> {
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
) -> ApiResult<Json<TrackRecordingResource>> {
    let r = find(&st, auth.principal.sid(), None, &sid, &auth.path).await?;
    Ok(Json(TrackRecordingResource::from_record(
        &auth.base_url,
        &r,
        false,
    )))
}

pub(crate) async fn fetch_in_room(
    State(st): State<AppState>,
    auth: Authed,
    Path((room, sid)): Path<(String, String)>,
) -> ApiResult<Json<TrackRecordingResource>> {
    let room = resolve(&st, auth.principal.sid(), &room, &auth.path).await?;
    let r = find(&st, auth.principal.sid(), Some(&room), &sid, &auth.path).await?;
    Ok(Json(TrackRecordingResource::from_record(
        &auth.base_url,
        &r,
        true,
    )))
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
    if r.status == "processing" {
        // The room is still writing it; deleting now would race the recording's completion.
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            20001,
            format!(
                "Recording {sid} is still being recorded (status processing): delete it once it \
                 is completed, or stop recording its track with the room's RecordingRules"
            ),
        ));
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
