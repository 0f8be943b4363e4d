//! Intelligence Services (`GA…`): the settings transcripts are made under.
//!
//! `DataLogging` cannot be switched on through the API, as on Twilio ("cannot be activated via
//! API"): asking for `true` is refused, `false` switches it off. Only an operator of this server
//! can turn it on for a service (`mediaseal intelligence data-logging GA… on`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mediaseal_store::model::Cursor;
use mediaseal_store::model::intelligence::{IntelligenceService, ServiceUpdate};
use serde::Serialize;

use super::MAX_PAGE;
use crate::api::Authed;
use crate::clock::{iso8601, now_us};
use crate::error::{ApiError, ApiResult};
use crate::paging::{EnvelopeV1, Page, PageRequest, envelope_v1};
use crate::params::{Params, webhook_url};
use crate::sid::{is_sid, new_sid};
use crate::state::AppState;

/// A service as the API shows it (fields in alphabetical order).
#[derive(Debug, Serialize)]
pub(crate) struct ServiceResource {
    account_sid: String,
    auto_redaction: bool,
    auto_transcribe: bool,
    data_logging: bool,
    date_created: String,
    date_updated: String,
    encryption_credential_sid: Option<String>,
    friendly_name: Option<String>,
    language_code: String,
    media_redaction: bool,
    /// The operators attached (`/v2/Services/{GA}/Operators/{LY}`), in attachment order.
    read_only_attached_operator_sids: Vec<String>,
    sid: String,
    unique_name: String,
    url: String,
    version: i64,
    webhook_http_method: Option<String>,
    webhook_url: Option<String>,
}

impl ServiceResource {
    fn from_record(base: &str, s: &IntelligenceService, attached: Vec<String>) -> Self {
        Self {
            account_sid: s.account_sid.clone(),
            auto_redaction: s.auto_redaction,
            auto_transcribe: s.auto_transcribe,
            data_logging: s.data_logging,
            date_created: iso8601(s.date_created),
            date_updated: iso8601(s.date_updated),
            encryption_credential_sid: s.encryption_credential_sid.clone(),
            friendly_name: s.friendly_name.clone(),
            language_code: s.language_code.clone(),
            media_redaction: s.media_redaction,
            read_only_attached_operator_sids: attached,
            sid: s.sid.clone(),
            unique_name: s.unique_name.clone(),
            url: format!("{base}/v2/Services/{}", s.sid),
            version: s.version,
            webhook_http_method: s.webhook_http_method.clone(),
            webhook_url: s.webhook_url.clone(),
        }
    }
}

fn etag(s: &IntelligenceService) -> String {
    format!("\"{}\"", s.version)
}

/// The operators attached to `s`.
async fn attached(st: &AppState, s: &IntelligenceService) -> ApiResult<Vec<String>> {
    Ok(st.meta.attached_operators(&s.account_sid, &s.sid).await?)
}

/// The answer for one service, with its `ETag`.
fn render(
    base: &str,
    s: &IntelligenceService,
    attached: Vec<String>,
    status: StatusCode,
) -> Response {
    let mut response = (
        status,
        Json(ServiceResource::from_record(base, s, attached)),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&etag(s)) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

fn unique_name(form: &Params, required: bool) -> ApiResult<Option<String>> {
    let name = match form.get("UniqueName") {
        None if required => return Err(ApiError::missing_param("UniqueName")),
        None => return Ok(None),
        Some(n) => n.trim(),
    };
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_param(
            "UniqueName",
            "must be 1 to 100 characters without control characters",
        ));
    }
    if is_sid(name, "GA") {
        return Err(ApiError::bad_param(
            "UniqueName",
            "must not look like a service SID",
        ));
    }
    Ok(Some(name.to_owned()))
}

/// A BCP-47-like tag: letters, then `-` parts of letters and digits (`en-US`, `es-419`).
fn language_code(form: &Params) -> ApiResult<Option<String>> {
    let Some(code) = form.get("LanguageCode") else {
        return Ok(None);
    };
    let mut parts = code.split('-');
    let first_ok = parts
        .next()
        .is_some_and(|p| (2..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphabetic()));
    let rest_ok =
        parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    if !(first_ok && rest_ok) || code.len() > 35 {
        return Err(ApiError::bad_param(
            "LanguageCode",
            format!("'{code}' is not a language tag such as en-US"),
        ));
    }
    Ok(Some(code.to_owned()))
}

fn data_logging(form: &Params) -> ApiResult<()> {
    if form.boolean("DataLogging")? == Some(true) {
        return Err(ApiError::bad_param(
            "DataLogging",
            "data logging cannot be switched on through the API; an operator of this server enables it per service",
        ));
    }
    Ok(())
}

/// `EncryptionCredentialSid`: `Some(None)` clears it (an empty value), `Some(Some(sid))` sets a
/// key checked to belong to the account.
async fn credential(
    st: &AppState,
    account: &str,
    form: &Params,
) -> ApiResult<Option<Option<String>>> {
    let Some(sid) = form.get("EncryptionCredentialSid") else {
        return Ok(None);
    };
    if sid.is_empty() {
        return Ok(Some(None));
    }
    match st.intelligence.check_credential(account, sid).await? {
        Ok(()) => Ok(Some(Some(sid.to_owned()))),
        Err(e) => Err(ApiError::bad_param("EncryptionCredentialSid", e)),
    }
}

/// `WebhookUrl` (empty clears it) and `WebhookHttpMethod`.
fn webhook(st: &AppState, form: &Params) -> ApiResult<(Option<Option<String>>, Option<String>)> {
    let url = match form.get("WebhookUrl") {
        None => None,
        Some("") => Some(None),
        Some(_) => Some(
            webhook_url(form, "WebhookUrl", &st.services.config.webhook_policy)?.map(str::to_owned),
        ),
    };
    let method = match form.get("WebhookHttpMethod") {
        None => None,
        Some(m) if m.eq_ignore_ascii_case("NULL") || m.is_empty() => None,
        Some(_) => Some(form.method("WebhookHttpMethod")?),
    };
    Ok((url, method))
}

/// Twilio: "The auto_redaction flag must be enabled" for media redaction.
fn redaction(s: &IntelligenceService) -> ApiResult<()> {
    if s.media_redaction && !s.auto_redaction {
        return Err(ApiError::bad_param(
            "MediaRedaction",
            "needs AutoRedaction=true as well",
        ));
    }
    Ok(())
}

fn duplicate(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        20409,
        format!("A service with UniqueName '{name}' already exists in this account"),
    )
}

pub(crate) async fn create(
    State(st): State<AppState>,
    auth: Authed,
    body: Bytes,
) -> ApiResult<Response> {
    let form = Params::from_form(&body);
    let account = auth.principal.sid().to_owned();
    let name = unique_name(&form, true)?.unwrap_or_default();
    data_logging(&form)?;
    let (url, method) = webhook(&st, &form)?;
    let url = url.flatten();
    let now = now_us();
    let service = IntelligenceService {
        sid: new_sid("GA"),
        account_sid: account.clone(),
        unique_name: name.clone(),
        friendly_name: form.friendly_name("FriendlyName", 255)?.map(str::to_owned),
        language_code: language_code(&form)?.unwrap_or_else(|| "en-US".to_owned()),
        auto_transcribe: form.boolean("AutoTranscribe")?.unwrap_or(false),
        data_logging: false,
        auto_redaction: form.boolean("AutoRedaction")?.unwrap_or(false),
        media_redaction: form.boolean("MediaRedaction")?.unwrap_or(false),
        webhook_http_method: url
            .as_ref()
            .map(|_| method.unwrap_or_else(|| "POST".to_owned())),
        webhook_url: url,
        encryption_credential_sid: credential(&st, &account, &form).await?.flatten(),
        version: 1,
        date_created: now,
        date_updated: now,
    };
    redaction(&service)?;
    if !st.meta.insert_intelligence_service(&service).await? {
        return Err(duplicate(&name));
    }
    tracing::info!(service = %service.sid, account = %account, "intelligence service created");
    Ok(render(
        &auth.base_url,
        &service,
        Vec::new(),
        StatusCode::CREATED,
    ))
}

pub(crate) async fn list(
    State(st): State<AppState>,
    auth: Authed,
) -> ApiResult<Json<EnvelopeV1<ServiceResource>>> {
    let q = &auth.query;
    let req = PageRequest::from_params(q, MAX_PAGE)?;
    let rows = st
        .meta
        .list_intelligence_services(auth.principal.sid(), req.cursor.as_ref(), req.fetch_limit())
        .await?;
    let page = Page::cut(rows, &req, |s| Cursor {
        date_created: s.date_created,
        sid: s.sid.clone(),
    });
    let mut shown = Vec::with_capacity(page.items.len());
    for s in &page.items {
        shown.push((s, attached(&st, s).await?));
    }
    let base = auth.base_url.clone();
    Ok(Json(envelope_v1(
        "services",
        &base,
        "/v2/Services",
        &Page {
            items: shown,
            next: page.next.clone(),
        },
        &req,
        q,
        &[],
        |(s, ops)| ServiceResource::from_record(&base, s, ops.clone()),
    )))
}

/// The account's service `sid`, else 404 (also for another account's).
pub(super) async fn find(
    st: &AppState,
    account: &str,
    sid: &str,
    path: &str,
) -> ApiResult<IntelligenceService> {
    if !is_sid(sid, "GA") {
        return Err(ApiError::not_found(path));
    }
    st.meta
        .intelligence_service(account, sid)
        .await?
        .ok_or_else(|| ApiError::not_found(path))
}

pub(crate) async fn fetch(
    State(st): State<AppState>,
    auth: Authed,
    Path(sid): Path<String>,
) -> ApiResult<Response> {
    let s = find(&st, auth.principal.sid(), &sid, &auth.path).await?;
    let ops = attached(&st, &s).await?;
    Ok(render(&auth.base_url, &s, ops, StatusCode::OK))
}

/// The version an `If-Match` header names (`"3"`, `W/"3"` or `3`), or `*`/absent: `None`.
fn if_match(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(None);
    }
    let bare = text.trim_start_matches("W/").trim_matches('"');
    bare.parse().map(Some).map_err(|_| {
        ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            20412,
            "If-Match must be the ETag of a fetch of this service",
        )
    })
}

fn stale() -> ApiError {
    ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        20412,
        "The service changed since the ETag in If-Match was read; fetch it again and retry",
    )
}

pub(crate) async fn update(
    State(st): State<AppState>,
    auth: Authed,
    headers: HeaderMap,
    Path(sid): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let account = auth.principal.sid().to_owned();
    let before = find(&st, &account, &sid, &auth.path).await?;
    let expected = if_match(&headers)?;
    if expected.is_some_and(|v| v != before.version) {
        return Err(stale());
    }
    let form = Params::from_form(&body);
    data_logging(&form)?;
    let (url, method) = webhook(&st, &form)?;
    let mut s = before.clone();
    // Switching data logging off is the customer's right; only switching it on is not theirs.
    if form.boolean("DataLogging")? == Some(false) {
        s.data_logging = false;
    }
    if let Some(name) = unique_name(&form, false)? {
        s.unique_name = name;
    }
    if let Some(name) = form.friendly_name("FriendlyName", 255)? {
        s.friendly_name = Some(name.to_owned());
    }
    if let Some(code) = language_code(&form)?
        && code != s.language_code
    {
        // Twilio: "it cannot be updated once it's set": the transcripts of a service share it.
        return Err(ApiError::bad_param(
            "LanguageCode",
            format!(
                "a service's language cannot be changed (it is {}); create another service for '{code}'",
                s.language_code
            ),
        ));
    }
    for (name, field) in [
        ("AutoTranscribe", &mut s.auto_transcribe),
        ("AutoRedaction", &mut s.auto_redaction),
        ("MediaRedaction", &mut s.media_redaction),
    ] {
        if let Some(v) = form.boolean(name)? {
            *field = v;
        }
    }
    if let Some(url) = url {
        s.webhook_url = url;
    }
    if let Some(method) = method {
        s.webhook_http_method = Some(method);
    }
    if s.webhook_url.is_none() {
        s.webhook_http_method = None;
    } else if s.webhook_http_method.is_none() {
        s.webhook_http_method = Some("POST".to_owned());
    }
    if let Some(key) = credential(&st, &account, &form).await? {
        s.encryption_credential_sid = key;
    }
    redaction(&s)?;
    s.version = before.version + 1;
    s.date_updated = now_us();
    match st
        .meta
        .update_intelligence_service(&s, before.version)
        .await?
    {
        ServiceUpdate::Updated => {
            let ops = attached(&st, &s).await?;
            Ok(render(&auth.base_url, &s, ops, StatusCode::OK))
        }
        ServiceUpdate::DuplicateName => Err(duplicate(&s.unique_name)),
        ServiceUpdate::VersionMismatch => Err(stale()),
    }
}

pub(crate) async fn delete(
    State(st): State<AppState>,
    auth: Authed,
    Path(sid): Path<String>,
) -> ApiResult<StatusCode> {
    find(&st, auth.principal.sid(), &sid, &auth.path).await?;
    if st
        .meta
        .delete_intelligence_service(auth.principal.sid(), &sid)
        .await?
    {
        st.meta
            .detach_all_operators(auth.principal.sid(), &sid)
            .await?;
        tracing::info!(service = %sid, account = %auth.principal.sid(), "intelligence service deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(&auth.path))
    }
}
