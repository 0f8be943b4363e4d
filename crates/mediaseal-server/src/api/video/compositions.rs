//! Compositions (`CJ…`): requests are checked and queued here; `mediaseal-compose` makes them.
//!
//! Seed 001: recordings encrypted with the customer's key cannot be composed, so a request whose
//! sources include one is refused, naming them. The result is sealed as the account's
//! composition settings say at the time of the request.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mediaseal_compose::{Template, parse_layout, parse_resolution};
use mediaseal_store::model::Sealing;
use mediaseal_store::video::{Composition, CompositionFilter};
use serde::Serialize;
use serde_json::{Map, Value};

use super::{
    MAX_PAGE, MediaLinks, cursor, date_param, one_of, source_list, stored_layout, stored_list,
};
use crate::api::Authed;
use crate::clock::{iso8601, now_us};
use crate::error::{ApiError, ApiResult};
use crate::paging::{EnvelopeV1, Page, PageRequest, envelope_v1};
use crate::params::Params;
use crate::sid::is_sid;
use crate::state::AppState;

const STATUSES: [&str; 5] = ["enqueued", "processing", "completed", "deleted", "failed"];

/// Reads and checks the composition parameters Twilio defines.
pub(super) fn template_from_params(
    form: &Params,
    webhooks: &mediaseal_service::egress::WebhookPolicy,
) -> ApiResult<Template> {
    let resolution = form
        .get("Resolution")
        .filter(|v| !v.is_empty())
        .unwrap_or("640x480");
    let dims = parse_resolution(resolution).map_err(|e| ApiError::bad_param("Resolution", e))?;
    let layout: Value = match form.get("VideoLayout").filter(|v| !v.trim().is_empty()) {
        None => Value::Object(Map::new()),
        Some(text) => {
            let v: Value = serde_json::from_str(text)
                .map_err(|e| ApiError::bad_param("VideoLayout", format!("not valid JSON: {e}")))?;
            parse_layout(&v, dims).map_err(|e| ApiError::bad_param("VideoLayout", e))?;
            v
        }
    };
    let audio_sources = source_list(form, "AudioSources")?;
    let has_layout = layout.as_object().is_some_and(|o| !o.is_empty());
    if audio_sources.is_empty() && !has_layout {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            20001,
            "Either VideoLayout or AudioSources must be given, to say which tracks to compose",
        ));
    }
    let trim = form.boolean("Trim")?.unwrap_or(true);
    Ok(Template {
        audio_sources,
        audio_sources_excluded: source_list(form, "AudioSourcesExcluded")?,
        video_layout: layout.to_string(),
        resolution: resolution.to_owned(),
        format: one_of(form, "Format", &["webm", "mp4"])?
            .unwrap_or("webm")
            .to_owned(),
        trim,
        status_callback: crate::params::webhook_url(form, "StatusCallback", webhooks)?
            .map(str::to_owned),
        status_callback_method: form.method("StatusCallbackMethod")?,
    })
}

/// A composition as the API shows it (fields in alphabetical order, as clients have always seen
/// them).
#[derive(Debug, Serialize)]
pub(crate) struct CompositionResource {
    account_sid: String,
    audio_sources: Vec<String>,
    audio_sources_excluded: Vec<String>,
    bitrate: i64,
    date_completed: Option<String>,
    date_created: String,
    date_deleted: Option<String>,
    duration: i64,
    format: String,
    links: MediaLinks,
    media_external_location: Option<String>,
    resolution: String,
    room_sid: String,
    sid: String,
    size: i64,
    status: String,
    status_callback: Option<String>,
    status_callback_method: String,
    trim: bool,
    url: String,
    /// The client's layout, as given.
    video_layout: Value,
}

impl CompositionResource {
    fn from_record(base: &str, c: &Composition) -> Self {
        let url = format!("{base}/v1/Compositions/{}", c.sid);
        let size = match c.sealing {
            Sealing::Customer => c.sealed_size,
            Sealing::AtRest => c.plain_size,
            Sealing::None => 0,
        };
        Self {
            account_sid: c.account_sid.clone(),
            audio_sources: stored_list(&c.audio_sources),
            audio_sources_excluded: stored_list(&c.audio_sources_excluded),
            bitrate: c.bitrate,
            date_completed: c.date_completed.map(iso8601),
            date_created: iso8601(c.date_created),
            date_deleted: c.date_deleted.map(iso8601),
            duration: c.duration,
            format: c.format.clone(),
            links: MediaLinks::of(&url),
            media_external_location: None,
            resolution: c.resolution.clone(),
            room_sid: c.room_sid.clone(),
            sid: c.sid.clone(),
            size,
            status: c.status.clone(),
            status_callback: c.status_callback.clone(),
            status_callback_method: c.status_callback_method.clone(),
            trim: c.trim,
            url,
            video_layout: stored_layout(&c.video_layout),
        }
    }
}

pub(crate) async fn create(
    State(st): State<AppState>,
    auth: Authed,
    body: Bytes,
) -> ApiResult<Response> {
    let account = auth.principal.sid().to_owned();
    let form = Params::from_form(&body);
    let room_sid = form.required("RoomSid")?;
    if !is_sid(room_sid, "RM") {
        return Err(ApiError::bad_param(
            "RoomSid",
            format!("'{room_sid}' is not a room SID (RM followed by 32 hex digits)"),
        ));
    }
    let template = template_from_params(&form, &st.services.config.webhook_policy)?;
    let room = st.meta.room(&account, room_sid).await?.ok_or_else(|| {
        ApiError::bad_param(
            "RoomSid",
            format!("no room {room_sid} belongs to this account"),
        )
    })?;
    if room.status != "completed" {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            20001,
            format!(
                "Room {room_sid} is {}; compositions can be made once it has completed",
                room.status
            ),
        ));
    }
    if !st.composer.available() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            20503,
            "Compositions are unavailable: this server has no ffmpeg installed",
        ));
    }
    let composition = match st
        .composer
        .prepare(&room, &template, None)
        .await
        .map_err(ApiError::internal)?
    {
        Ok(c) => c,
        Err(reason) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                20001,
                format!("Cannot compose room {room_sid}: {reason}"),
            ));
        }
    };
    st.services
        .enqueue_composition(&composition)
        .await
        .map_err(ApiError::internal)?;
    Ok((
        StatusCode::CREATED,
        Json(CompositionResource::from_record(
            &auth.base_url,
            &composition,
        )),
    )
        .into_response())
}

pub(crate) async fn list(
    State(st): State<AppState>,
    auth: Authed,
) -> ApiResult<Json<EnvelopeV1<CompositionResource>>> {
    let q = &auth.query;
    let req = PageRequest::from_params(q, MAX_PAGE)?;
    let filter = CompositionFilter {
        room_sid: q.sid("RoomSid", "RM")?.map(str::to_owned),
        status: one_of(q, "Status", &STATUSES)?.map(str::to_owned),
        created_after: date_param(q, "DateCreatedAfter")?,
        created_before: date_param(q, "DateCreatedBefore")?,
    };
    let rows = st
        .meta
        .list_compositions(
            auth.principal.sid(),
            &filter,
            req.cursor.as_ref(),
            req.fetch_limit(),
        )
        .await?;
    let page = Page::cut(rows, &req, |c| cursor(c.date_created, &c.sid));
    let base = auth.base_url.clone();
    let keep = ["Status", "RoomSid", "DateCreatedAfter", "DateCreatedBefore"];
    Ok(Json(envelope_v1(
        "compositions",
        &base,
        "/v1/Compositions",
        &page,
        &req,
        q,
        &keep,
        |c| CompositionResource::from_record(&base, c),
    )))
}

pub(super) async fn find(
    st: &AppState,
    account: &str,
    sid: &str,
    path: &str,
) -> ApiResult<Composition> {
    if !is_sid(sid, "CJ") {
        return Err(ApiError::not_found(path));
    }
    st.meta
        .composition(account, sid)
        .await?
        .ok_or_else(|| ApiError::not_found(path))
}

pub(crate) async fn fetch(
    State(st): State<AppState>,
    auth: Authed,
    Path(sid): Path<String>,
) -> ApiResult<Json<CompositionResource>> {
    let c = find(&st, auth.principal.sid(), &sid, &auth.path).await?;
    Ok(Json(CompositionResource::from_record(&auth.base_url, &c)))
}

pub(crate) async fn delete(
    State(st): State<AppState>,
    auth: Authed,
    Path(sid): Path<String>,
) -> ApiResult<StatusCode> {
    let account = auth.principal.sid().to_owned();
    find(&st, &account, &sid, &auth.path).await?;
    let before = st
        .meta
        .delete_composition(&account, &sid, now_us())
        .await?
        .ok_or_else(|| ApiError::not_found(&auth.path))?;
    if let Some(key) = before.object_key
        && let Err(e) = st.objects.delete(&key).await
    {
        // The row no longer points at the object; the orphan sweeper finishes the job.
        tracing::warn!(composition = %sid, error = %e, "object deletion deferred to the sweeper");
    }
    tracing::info!(composition = %sid, account = %account, "composition deleted");
    Ok(StatusCode::NO_CONTENT)
}
