//! Compositions (`CJ…`): requests are checked and queued here; [`crate::compose`] makes them.
//!
//! Seed 001: recordings encrypted with the customer's key cannot be composed, so a request whose
//! sources include one is refused, naming them. The result is sealed as the account's
//! composition settings say at the time of the request.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mediaseal_store::model::{Callback, Sealing};
use mediaseal_store::video::{Composition, CompositionFilter, Room, SettingsKind};
use serde_json::{Value, json};

use super::{MAX_PAGE, cursor, date_param, one_of, source_list};
use crate::api::Authed;
use crate::clock::{iso8601, now_us};
use crate::compose::{
    MAX_SOURCES, RESERVATION, Spec, composition_callback, parse_layout, parse_resolution, select,
};
use crate::error::{ApiError, ApiResult};
use crate::paging::{Page, PageRequest, envelope_v1};
use crate::params::Params;
use crate::sid::{is_sid, new_sid};
use crate::state::AppState;

const STATUSES: [&str; 5] = ["enqueued", "processing", "completed", "deleted", "failed"];

/// What to compose, as a request or a hook states it.
#[derive(Debug, Clone)]
pub(super) struct Template {
    pub(super) audio_sources: Vec<String>,
    pub(super) audio_sources_excluded: Vec<String>,
    /// Canonical JSON of the layout (`{}` when none).
    pub(super) video_layout: String,
    pub(super) resolution: String,
    pub(super) format: String,
    pub(super) trim: bool,
    pub(super) status_callback: Option<String>,
    pub(super) status_callback_method: String,
}

impl Template {
    /// Reads and checks the composition parameters Twilio defines.
    pub(super) fn from_params(form: &Params) -> ApiResult<Self> {
        let resolution = form
            .get("Resolution")
            .filter(|v| !v.is_empty())
            .unwrap_or("640x480");
        let dims =
            parse_resolution(resolution).map_err(|e| ApiError::bad_param("Resolution", e))?;
        let layout: Value = match form.get("VideoLayout").filter(|v| !v.trim().is_empty()) {
            None => json!({}),
            Some(text) => {
                let v: Value = serde_json::from_str(text).map_err(|e| {
                    ApiError::bad_param("VideoLayout", format!("not valid JSON: {e}"))
                })?;
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
        Ok(Self {
            audio_sources,
            audio_sources_excluded: source_list(form, "AudioSourcesExcluded")?,
            video_layout: layout.to_string(),
            resolution: resolution.to_owned(),
            format: one_of(form, "Format", &["webm", "mp4"])?
                .unwrap_or("webm")
                .to_owned(),
            trim,
            status_callback: form.url("StatusCallback")?.map(str::to_owned),
            status_callback_method: form.method("StatusCallbackMethod")?,
        })
    }

    pub(super) fn spec(&self) -> Result<Spec, String> {
        Spec::from_stored(
            &json!(self.audio_sources).to_string(),
            &json!(self.audio_sources_excluded).to_string(),
            &self.video_layout,
            &self.resolution,
            &self.format,
            self.trim,
        )
    }
}

pub(super) fn render(base: &str, c: &Composition) -> Value {
    let url = format!("{base}/v1/Compositions/{}", c.sid);
    let list = |s: &str| serde_json::from_str::<Value>(s).unwrap_or_else(|_| json!([]));
    let size = match c.sealing {
        Sealing::Customer => c.sealed_size,
        Sealing::AtRest => c.plain_size,
        Sealing::None => 0,
    };
    json!({
        "account_sid": c.account_sid,
        "status": c.status,
        "date_created": iso8601(c.date_created),
        "date_completed": c.date_completed.map(iso8601),
        "date_deleted": c.date_deleted.map(iso8601),
        "sid": c.sid,
        "room_sid": c.room_sid,
        "audio_sources": list(&c.audio_sources),
        "audio_sources_excluded": list(&c.audio_sources_excluded),
        "video_layout": serde_json::from_str::<Value>(&c.video_layout).unwrap_or_else(|_| json!({})),
        "resolution": c.resolution,
        "trim": c.trim,
        "format": c.format,
        "bitrate": c.bitrate,
        "size": size,
        "duration": c.duration,
        "media_external_location": null,
        "status_callback": c.status_callback,
        "status_callback_method": c.status_callback_method,
        "url": url,
        "links": { "media": format!("{url}/Media") },
    })
}

/// A new composition of `room` per `t`, queued (reserved for this node for a moment), or the
/// reason it cannot be made.
pub(super) async fn prepare(
    st: &AppState,
    room: &Room,
    t: &Template,
    hook_sid: Option<&str>,
) -> ApiResult<Result<Composition, String>> {
    let now = now_us();
    let mut c = Composition {
        sid: new_sid("CJ"),
        account_sid: room.account_sid.clone(),
        room_sid: room.sid.clone(),
        hook_sid: hook_sid.map(str::to_owned),
        status: "enqueued".to_owned(),
        audio_sources: json!(t.audio_sources).to_string(),
        audio_sources_excluded: json!(t.audio_sources_excluded).to_string(),
        video_layout: t.video_layout.clone(),
        resolution: t.resolution.clone(),
        format: t.format.clone(),
        trim: t.trim,
        status_callback: t.status_callback.clone(),
        status_callback_method: t.status_callback_method.clone(),
        seal_key_sid: None,
        sealing: Sealing::None,
        object_key: None,
        sealed_size: 0,
        plain_size: 0,
        bitrate: 0,
        duration: 0,
        error_code: None,
        error_message: None,
        attempts: 0,
        lease_owner: Some(st.config.node_id.clone()),
        lease_until: Some(now + RESERVATION.as_micros() as i64),
        deleted: false,
        date_created: now,
        date_updated: now,
        date_completed: None,
        date_deleted: None,
    };
    if st.config.ffmpeg.is_none() {
        return Ok(Err(
            "this server has no ffmpeg installed, which compositions need".to_owned(),
        ));
    }
    let spec = match t.spec() {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    let recordings = st
        .meta
        .room_track_recordings(&room.account_sid, &room.sid)
        .await?;
    let sel = select(&recordings, &spec);
    if sel.is_empty() {
        return Ok(Err(format!(
            "no completed audio or video recording of room {} matches the requested AudioSources/VideoLayout",
            room.sid
        )));
    }
    let encrypted = sel.encrypted();
    if !encrypted.is_empty() {
        return Ok(Err(format!(
            "recordings {} are encrypted with your public key, so they cannot be composed (seed: \"if you encrypt \
             your Recordings, you will not be able to compose them\"); exclude them, or store the recordings you \
             want to compose unencrypted",
            encrypted.join(", ")
        )));
    }
    if sel.all().count() > MAX_SOURCES {
        return Ok(Err(format!(
            "more than {MAX_SOURCES} recordings match; narrow AudioSources or VideoLayout"
        )));
    }
    let settings =
        super::settings::current(st, &room.account_sid, SettingsKind::Composition).await?;
    if settings.encryption_enabled {
        let sid = settings.encryption_key_sid.clone().unwrap_or_default();
        match st.meta.public_key(&sid).await? {
            Some(k) if k.account_sid == room.account_sid => c.seal_key_sid = Some(k.sid),
            _ => {
                return Ok(Err(format!(
                    "composition encryption is on, but its public key {sid} no longer exists; set a key in \
                     /v1/CompositionSettings/Default"
                )));
            }
        }
    }
    Ok(Ok(c))
}

/// The callbacks of a newly queued composition.
pub(super) fn enqueued_callbacks(c: &Composition) -> Vec<Callback> {
    composition_callback(c, "composition-enqueued", &[])
        .into_iter()
        .collect()
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
    let template = Template::from_params(&form)?;
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
    if st.config.ffmpeg.is_none() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            20503,
            "Compositions are unavailable: this server has no ffmpeg installed",
        ));
    }
    let composition = match prepare(&st, &room, &template, None).await? {
        Ok(c) => c,
        Err(reason) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                20001,
                format!("Cannot compose room {room_sid}: {reason}"),
            ));
        }
    };
    st.meta
        .insert_composition(&composition, &enqueued_callbacks(&composition))
        .await?;
    crate::compose::kick(&st);
    tracing::info!(composition = %composition.sid, room = %room.sid, account = %account, "composition queued");
    Ok((
        StatusCode::CREATED,
        Json(render(&auth.base_url, &composition)),
    )
        .into_response())
}

pub(crate) async fn list(State(st): State<AppState>, auth: Authed) -> ApiResult<Json<Value>> {
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
        |c| render(&base, c),
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
) -> ApiResult<Json<Value>> {
    let c = find(&st, auth.principal.sid(), &sid, &auth.path).await?;
    Ok(Json(render(&auth.base_url, &c)))
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
