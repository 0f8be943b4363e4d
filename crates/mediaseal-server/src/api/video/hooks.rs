//! Composition hooks (`HK…`): composition templates applied to every room of the account when it
//! completes. A hook whose sources cannot be composed (encrypted recordings, nothing matching)
//! still leaves a trace: a `failed` composition with a `composition-failed` callback.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mediaseal_store::model::Callback;
use mediaseal_store::video::{Composition, CompositionHook, HookFilter, Room};
use serde::Serialize;
use serde_json::Value;

use super::compositions::template_from_params;
use super::{MAX_PAGE, cursor, date_param, stored_layout, stored_list};
use crate::api::Authed;
use crate::clock::{iso8601, now_us};
use crate::error::{ApiError, ApiResult};
use crate::paging::{EnvelopeV1, Page, PageRequest, envelope_v1};
use crate::params::Params;
use crate::sid::{is_sid, new_sid};
use crate::state::AppState;
use mediaseal_compose::Template;

/// A composition hook as the API shows it (fields in alphabetical order, as clients have always
/// seen them).
#[derive(Debug, Serialize)]
pub(crate) struct HookResource {
    account_sid: String,
    audio_sources: Vec<String>,
    audio_sources_excluded: Vec<String>,
    date_created: String,
    date_updated: String,
    enabled: bool,
    format: String,
    friendly_name: String,
    resolution: String,
    sid: String,
    status_callback: Option<String>,
    status_callback_method: String,
    trim: bool,
    url: String,
    /// The client's layout, as given.
    video_layout: Value,
}

impl HookResource {
    fn from_record(base: &str, h: &CompositionHook) -> Self {
        Self {
            account_sid: h.account_sid.clone(),
            audio_sources: stored_list(&h.audio_sources),
            audio_sources_excluded: stored_list(&h.audio_sources_excluded),
            date_created: iso8601(h.date_created),
            date_updated: iso8601(h.date_updated),
            enabled: h.enabled,
            format: h.format.clone(),
            friendly_name: h.friendly_name.clone(),
            resolution: h.resolution.clone(),
            sid: h.sid.clone(),
            status_callback: h.status_callback.clone(),
            status_callback_method: h.status_callback_method.clone(),
            trim: h.trim,
            url: format!("{base}/v1/CompositionHooks/{}", h.sid),
            video_layout: stored_layout(&h.video_layout),
        }
    }
}

fn template_of(h: &CompositionHook) -> Template {
    Template {
        audio_sources: serde_json::from_str(&h.audio_sources).unwrap_or_default(),
        audio_sources_excluded: serde_json::from_str(&h.audio_sources_excluded).unwrap_or_default(),
        video_layout: h.video_layout.clone(),
        resolution: h.resolution.clone(),
        format: h.format.clone(),
        trim: h.trim,
        status_callback: h.status_callback.clone(),
        status_callback_method: h.status_callback_method.clone(),
    }
}

/// The compositions the account's enabled hooks make of a room that just completed, each with
/// its callbacks; the caller stores them together with the room's completion.
pub(super) async fn compositions_for(
    st: &AppState,
    room: &Room,
) -> ApiResult<Vec<(Composition, Vec<Callback>)>> {
    let filter = HookFilter {
        enabled: Some(true),
        ..Default::default()
    };
    let hooks = st
        .meta
        .list_hooks(&room.account_sid, &filter, None, 100)
        .await?;
    let mut out = Vec::new();
    for hook in hooks {
        let template = template_of(&hook);
        match st
            .composer
            .prepare(room, &template, Some(&hook.sid))
            .await
            .map_err(ApiError::internal)?
        {
            Ok(c) => {
                let callbacks = st
                    .services
                    .composition_callback(&c, "composition-enqueued", &[])
                    .into_iter()
                    .collect();
                out.push((c, callbacks));
            }
            Err(reason) => {
                // The same row prepare would have made, recorded as failed with the reason.
                let now = now_us();
                let c = Composition {
                    sid: new_sid("CJ"),
                    account_sid: room.account_sid.clone(),
                    room_sid: room.sid.clone(),
                    hook_sid: Some(hook.sid.clone()),
                    status: "failed".to_owned(),
                    audio_sources: hook.audio_sources.clone(),
                    audio_sources_excluded: hook.audio_sources_excluded.clone(),
                    video_layout: hook.video_layout.clone(),
                    resolution: hook.resolution.clone(),
                    format: hook.format.clone(),
                    trim: hook.trim,
                    status_callback: hook.status_callback.clone(),
                    status_callback_method: hook.status_callback_method.clone(),
                    seal_key_sid: None,
                    sealing: mediaseal_store::model::Sealing::None,
                    object_key: None,
                    sealed_size: 0,
                    plain_size: 0,
                    bitrate: 0,
                    duration: 0,
                    error_code: None,
                    error_message: Some(reason.clone()),
                    attempts: 0,
                    lease_owner: None,
                    lease_until: None,
                    deleted: false,
                    date_created: now,
                    date_updated: now,
                    date_completed: None,
                    date_deleted: None,
                };
                tracing::warn!(hook = %hook.sid, room = %room.sid, reason = %reason, "composition hook could not compose the room");
                let extra = [
                    ("FailedOperation", "composition".to_owned()),
                    ("ErrorMessage", reason),
                ];
                let callbacks = st
                    .services
                    .composition_callback(&c, "composition-failed", &extra)
                    .into_iter()
                    .collect();
                out.push((c, callbacks));
            }
        }
    }
    Ok(out)
}

fn friendly_name(form: &Params) -> ApiResult<String> {
    let name = form.required("FriendlyName")?;
    if name.chars().count() > 100 {
        return Err(ApiError::bad_param(
            "FriendlyName",
            "longer than 100 characters",
        ));
    }
    Ok(name.to_owned())
}

fn duplicate(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        53118,
        format!("A composition hook named '{name}' already exists in this account"),
    )
}

pub(crate) async fn create(
    State(st): State<AppState>,
    auth: Authed,
    body: Bytes,
) -> ApiResult<Response> {
    let form = Params::from_form(&body);
    let name = friendly_name(&form)?;
    let t = template_from_params(&form, &st.services.config.webhook_policy)?;
    let now = now_us();
    let hook = CompositionHook {
        sid: new_sid("HK"),
        account_sid: auth.principal.sid().to_owned(),
        friendly_name: name.clone(),
        enabled: form.boolean("Enabled")?.unwrap_or(true),
        audio_sources: Value::from(t.audio_sources).to_string(),
        audio_sources_excluded: Value::from(t.audio_sources_excluded).to_string(),
        video_layout: t.video_layout,
        resolution: t.resolution,
        format: t.format,
        trim: t.trim,
        status_callback: t.status_callback,
        status_callback_method: t.status_callback_method,
        date_created: now,
        date_updated: now,
    };
    if !st.meta.insert_hook(&hook).await? {
        return Err(duplicate(&name));
    }
    tracing::info!(hook = %hook.sid, account = %hook.account_sid, "composition hook created");
    Ok((
        StatusCode::CREATED,
        Json(HookResource::from_record(&auth.base_url, &hook)),
    )
        .into_response())
}

pub(crate) async fn list(
    State(st): State<AppState>,
    auth: Authed,
) -> ApiResult<Json<EnvelopeV1<HookResource>>> {
    let q = &auth.query;
    let req = PageRequest::from_params(q, MAX_PAGE)?;
    let filter = HookFilter {
        enabled: q.boolean("Enabled")?,
        friendly_name: q
            .get("FriendlyName")
            .filter(|v| !v.is_empty())
            .map(str::to_owned),
        created_after: date_param(q, "DateCreatedAfter")?,
        created_before: date_param(q, "DateCreatedBefore")?,
    };
    let rows = st
        .meta
        .list_hooks(
            auth.principal.sid(),
            &filter,
            req.cursor.as_ref(),
            req.fetch_limit(),
        )
        .await?;
    let page = Page::cut(rows, &req, |h| cursor(h.date_created, &h.sid));
    let base = auth.base_url.clone();
    let keep = [
        "Enabled",
        "FriendlyName",
        "DateCreatedAfter",
        "DateCreatedBefore",
    ];
    Ok(Json(envelope_v1(
        "composition_hooks",
        &base,
        "/v1/CompositionHooks",
        &page,
        &req,
        q,
        &keep,
        |h| HookResource::from_record(&base, h),
    )))
}

async fn find(st: &AppState, account: &str, sid: &str, path: &str) -> ApiResult<CompositionHook> {
    if !is_sid(sid, "HK") {
        return Err(ApiError::not_found(path));
    }
    st.meta
        .hook(account, sid)
        .await?
        .ok_or_else(|| ApiError::not_found(path))
}

pub(crate) async fn fetch(
    State(st): State<AppState>,
    auth: Authed,
    Path(sid): Path<String>,
) -> ApiResult<Json<HookResource>> {
    let hook = find(&st, auth.principal.sid(), &sid, &auth.path).await?;
    Ok(Json(HookResource::from_record(&auth.base_url, &hook)))
}

/// Replaces a hook's settings (`FriendlyName` is required, as on create).
pub(crate) async fn update(
    State(st): State<AppState>,
    auth: Authed,
    Path(sid): Path<String>,
    body: Bytes,
) -> ApiResult<Json<HookResource>> {
    let before = find(&st, auth.principal.sid(), &sid, &auth.path).await?;
    let form = Params::from_form(&body);
    let name = friendly_name(&form)?;
    let t = template_from_params(&form, &st.services.config.webhook_policy)?;
    let hook = CompositionHook {
        friendly_name: name.clone(),
        enabled: form.boolean("Enabled")?.unwrap_or(before.enabled),
        audio_sources: Value::from(t.audio_sources).to_string(),
        audio_sources_excluded: Value::from(t.audio_sources_excluded).to_string(),
        video_layout: t.video_layout,
        resolution: t.resolution,
        format: t.format,
        trim: t.trim,
        status_callback: t.status_callback,
        status_callback_method: t.status_callback_method,
        date_updated: now_us(),
        ..before
    };
    if !st.meta.update_hook(&hook).await? {
        return Err(duplicate(&name));
    }
    Ok(Json(HookResource::from_record(&auth.base_url, &hook)))
}

pub(crate) async fn delete(
    State(st): State<AppState>,
    auth: Authed,
    Path(sid): Path<String>,
) -> ApiResult<StatusCode> {
    find(&st, auth.principal.sid(), &sid, &auth.path).await?;
    if st.meta.delete_hook(auth.principal.sid(), &sid).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(&auth.path))
    }
}
