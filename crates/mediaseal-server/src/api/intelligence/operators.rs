//! Language operators (issue 13): the built-in operator types (`EY…`), operators (`LY…`: the
//! built-in PII operator and the account's custom phrase-matching ones), attaching them to a
//! service, and a transcript's operator results.
//!
//! Each result is its own sealed object. With the service's `EncryptionCredentialSid` the plain
//! `/OperatorResults` resources are refused and `/OperatorResults/Encrypted` answers one signed
//! URL per result object (the download carries `x-amz-meta-x-amz-key`/`-iv`, as the encrypted
//! sentences do); without a key the results are sealed at rest and served decrypted in memory.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mediaseal_intelligence::operators::{
    OPERATOR_TYPES, OperatorResult, OperatorType, PHRASE_CONFIG_SCHEMA, PII_OPERATOR_NAME,
    PII_OPERATOR_SID, PII_TYPE, parse_config, redacted_key,
};
use mediaseal_intelligence::transcripts::{AudioSource as _, MAX_AUDIO_BYTES};
use mediaseal_store::model::Cursor;
use mediaseal_store::model::Sealing;
use mediaseal_store::model::intelligence::Transcript;
use mediaseal_store::model::operators::{CustomOperator, OperatorResultRecord, OperatorUpdate};
use serde::Serialize;

use super::transcripts::{find as find_transcript, location_of};
use super::{AtRestSource, MAX_PAGE};
use crate::api::Authed;
use crate::clock::{iso8601, now_us};
use crate::error::{ApiError, ApiResult};
use crate::paging::{EnvelopeV1, Page, PageRequest, envelope_v1};
use crate::params::Params;
use crate::sid::{is_sid, new_sid};
use crate::state::AppState;

/// When the built-in types and operators were defined (2026-01-01), their `date_created`.
const BUILT_IN_DATE: i64 = 1_767_225_600_000_000;
/// Most custom operators of one account.
const MAX_CUSTOM_OPERATORS: usize = 1000;
/// Longest `FriendlyName` of a custom operator (the spec: "up to 64 characters").
const MAX_NAME: usize = 64;

// ---- Operator types ----------------------------------------------------------------------

/// An operator type as the API shows it (fields in alphabetical order).
#[derive(Debug, Serialize)]
pub(crate) struct OperatorTypeResource {
    availability: &'static str,
    config_schema: serde_json::Value,
    configurable: bool,
    date_created: String,
    date_updated: String,
    description: &'static str,
    docs_link: Option<String>,
    friendly_name: &'static str,
    name: &'static str,
    output_type: &'static str,
    provider: &'static str,
    sid: &'static str,
    supported_languages: [&'static str; 1],
    url: String,
}

impl OperatorTypeResource {
    fn of(base: &str, t: &OperatorType) -> Self {
        let config_schema = if t.configurable {
            serde_json::from_str(PHRASE_CONFIG_SCHEMA).unwrap_or_default()
        } else {
            serde_json::Value::Object(serde_json::Map::new())
        };
        Self {
            availability: "general-availability",
            config_schema,
            configurable: t.configurable,
            date_created: iso8601(BUILT_IN_DATE),
            date_updated: iso8601(BUILT_IN_DATE),
            description: t.description,
            docs_link: None,
            friendly_name: t.friendly_name,
            name: t.name,
            output_type: t.output_type,
            provider: "twilio",
            sid: t.sid,
            supported_languages: ["en"],
            url: format!("{base}/v2/OperatorTypes/{}", t.sid),
        }
    }
}

/// Pages a list held in memory: the cursor's `date_created` is the index of the last item shown.
fn page_in_memory<T>(all: Vec<T>, req: &PageRequest, sid_of: impl Fn(&T) -> String) -> Page<T> {
    let start = req.cursor.as_ref().map_or(0, |c| {
        usize::try_from(c.date_created).map_or(usize::MAX, |i| i + 1)
    });
    let rows: Vec<(usize, T)> = all
        .into_iter()
        .enumerate()
        .skip(start)
        .take(usize::try_from(req.fetch_limit()).unwrap_or(usize::MAX))
        .collect();
    let page = Page::cut(rows, req, |(i, t)| Cursor {
        date_created: i64::try_from(*i).unwrap_or(i64::MAX),
        sid: sid_of(t),
    });
    Page {
        items: page.items.into_iter().map(|(_, t)| t).collect(),
        next: page.next,
    }
}

pub(crate) async fn list_types(auth: Authed) -> ApiResult<Json<EnvelopeV1<OperatorTypeResource>>> {
    let q = &auth.query;
    let req = PageRequest::from_params(q, MAX_PAGE)?;
    let types: Vec<OperatorType> = OPERATOR_TYPES
        .into_iter()
        .filter(|_| speaks(q.get("LanguageCode")))
        .collect();
    let page = page_in_memory(types, &req, |t| t.sid.to_owned());
    let base = auth.base_url.clone();
    Ok(Json(envelope_v1(
        "operator_types",
        &base,
        "/v2/OperatorTypes",
        &page,
        &req,
        q,
        &["LanguageCode"],
        |t| OperatorTypeResource::of(&base, t),
    )))
}

/// Whether a `LanguageCode` filter includes English, the one language the operators speak.
fn speaks(code: Option<&str>) -> bool {
    code.is_none_or(|c| {
        c.is_empty()
            || c.split(['-', '_'])
                .next()
                .is_some_and(|p| p.eq_ignore_ascii_case("en"))
    })
}

pub(crate) async fn fetch_type(
    auth: Authed,
    Path(sid): Path<String>,
) -> ApiResult<Json<OperatorTypeResource>> {
    let t = OPERATOR_TYPES
        .iter()
        .find(|t| t.sid == sid)
        .ok_or_else(|| ApiError::not_found(&auth.path))?;
    Ok(Json(OperatorTypeResource::of(&auth.base_url, t)))
}

// ---- Operators ---------------------------------------------------------------------------

/// An operator as the API shows it (fields in alphabetical order).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct OperatorResource {
    account_sid: Option<String>,
    author: String,
    availability: &'static str,
    config: serde_json::Value,
    date_created: String,
    date_updated: String,
    description: Option<String>,
    friendly_name: String,
    operator_type: &'static str,
    sid: String,
    url: String,
    version: i64,
}

impl OperatorResource {
    /// The built-in PII operator; `path` is where it is shown (`Operators` or
    /// `Operators/PreBuilt`).
    fn pii(base: &str, path: &str) -> Self {
        Self {
            account_sid: None,
            author: "twilio".to_owned(),
            availability: "general-availability",
            config: serde_json::Value::Object(serde_json::Map::new()),
            date_created: iso8601(BUILT_IN_DATE),
            date_updated: iso8601(BUILT_IN_DATE),
            description: Some(PII_TYPE.description.to_owned()),
            friendly_name: PII_OPERATOR_NAME.to_owned(),
            operator_type: PII_TYPE.name,
            sid: PII_OPERATOR_SID.to_owned(),
            url: format!("{base}/v2/{path}/{PII_OPERATOR_SID}"),
            version: 1,
        }
    }

    fn custom(base: &str, path: &str, o: &CustomOperator) -> Self {
        let kind = OperatorType::find(&o.operator_type);
        Self {
            account_sid: Some(o.account_sid.clone()),
            author: o.account_sid.clone(),
            availability: "public",
            config: serde_json::from_str(&o.config).unwrap_or_default(),
            date_created: iso8601(o.date_created),
            date_updated: iso8601(o.date_updated),
            description: None,
            friendly_name: o.friendly_name.clone(),
            operator_type: kind.map_or("unknown", |k| k.name),
            sid: o.sid.clone(),
            url: format!("{base}/v2/{path}/{}", o.sid),
            version: o.version,
        }
    }
}

/// Every custom operator of the account, newest first (they are capped per account).
async fn all_custom(st: &AppState, account: &str) -> ApiResult<Vec<CustomOperator>> {
    Ok(st
        .meta
        .list_custom_operators(
            account,
            None,
            i64::try_from(MAX_CUSTOM_OPERATORS).unwrap_or(i64::MAX),
        )
        .await?)
}

/// The `Availability` filter: `None` when absent, else whether `value` passes.
fn availability_ok(q: &Params, value: &str) -> bool {
    q.get("Availability")
        .is_none_or(|a| a.is_empty() || a.eq_ignore_ascii_case(value))
}

/// `GET /v2/Operators`: the built-in PII operator, then the account's custom ones.
pub(crate) async fn list(
    State(st): State<AppState>,
    auth: Authed,
) -> ApiResult<Json<EnvelopeV1<OperatorResource>>> {
    let q = &auth.query;
    let req = PageRequest::from_params(q, MAX_PAGE)?;
    let base = auth.base_url.clone();
    let mut all = Vec::new();
    if speaks(q.get("LanguageCode")) {
        all.push(OperatorResource::pii(&base, "Operators"));
        all.extend(
            all_custom(&st, auth.principal.sid())
                .await?
                .iter()
                .map(|o| OperatorResource::custom(&base, "Operators", o)),
        );
    }
    all.retain(|o| availability_ok(q, o.availability));
    let page = page_in_memory(all, &req, |o| o.sid.clone());
    Ok(Json(envelope_v1(
        "operators",
        &base,
        "/v2/Operators",
        &page,
        &req,
        q,
        &["Availability", "LanguageCode"],
        OperatorResource::clone,
    )))
}

/// `GET /v2/Operators/PreBuilt`: the built-in PII operator.
pub(crate) async fn list_prebuilt(auth: Authed) -> ApiResult<Json<EnvelopeV1<OperatorResource>>> {
    let q = &auth.query;
    let req = PageRequest::from_params(q, MAX_PAGE)?;
    let base = auth.base_url.clone();
    let mut all = vec![OperatorResource::pii(&base, "Operators/PreBuilt")];
    all.retain(|o| availability_ok(q, o.availability) && speaks(q.get("LanguageCode")));
    let page = page_in_memory(all, &req, |o| o.sid.clone());
    Ok(Json(envelope_v1(
        "operators",
        &base,
        "/v2/Operators/PreBuilt",
        &page,
        &req,
        q,
        &["Availability", "LanguageCode"],
        OperatorResource::clone,
    )))
}

pub(crate) async fn fetch_prebuilt(
    auth: Authed,
    Path(sid): Path<String>,
) -> ApiResult<Json<OperatorResource>> {
    if sid != PII_OPERATOR_SID {
        return Err(ApiError::not_found(&auth.path));
    }
    Ok(Json(OperatorResource::pii(
        &auth.base_url,
        "Operators/PreBuilt",
    )))
}

/// The account's custom operator `sid`, else 404 (also for another account's).
async fn find_custom(
    st: &AppState,
    account: &str,
    sid: &str,
    path: &str,
) -> ApiResult<CustomOperator> {
    if !is_sid(sid, "LY") {
        return Err(ApiError::not_found(path));
    }
    st.meta
        .custom_operator(account, sid)
        .await?
        .ok_or_else(|| ApiError::not_found(path))
}

/// `GET /v2/Operators/{LY}`: the built-in operator or one of the account's.
pub(crate) async fn fetch(
    State(st): State<AppState>,
    auth: Authed,
    Path(sid): Path<String>,
) -> ApiResult<Json<OperatorResource>> {
    if sid == PII_OPERATOR_SID {
        return Ok(Json(OperatorResource::pii(&auth.base_url, "Operators")));
    }
    let o = find_custom(&st, auth.principal.sid(), &sid, &auth.path).await?;
    Ok(Json(OperatorResource::custom(
        &auth.base_url,
        "Operators",
        &o,
    )))
}

// ---- Custom operators --------------------------------------------------------------------

fn custom_etag(o: &CustomOperator) -> String {
    format!("\"{}\"", o.version)
}

fn render_custom(base: &str, o: &CustomOperator, status: StatusCode) -> Response {
    let mut response = (
        status,
        Json(OperatorResource::custom(base, "Operators/Custom", o)),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&custom_etag(o)) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

fn friendly_name(form: &Params, required: bool) -> ApiResult<Option<String>> {
    match form.friendly_name("FriendlyName", MAX_NAME)? {
        Some(n) if !n.trim().is_empty() => Ok(Some(n.trim().to_owned())),
        Some(_) => Err(ApiError::bad_param(
            "FriendlyName",
            format!("must be 1 to {MAX_NAME} characters"),
        )),
        None if required => Err(ApiError::missing_param("FriendlyName")),
        None => Ok(None),
    }
}

/// `Config`, parsed for operator type `kind`; a bad one is a 400 naming the field.
fn config(form: &Params, kind: OperatorType, required: bool) -> ApiResult<Option<String>> {
    match form.get("Config") {
        None if required => Err(ApiError::missing_param("Config")),
        None => Ok(None),
        Some(text) => parse_config(kind, text)
            .map(|c| Some(c.to_json()))
            .map_err(|e| ApiError::bad_param("Config", e)),
    }
}

pub(crate) async fn create_custom(
    State(st): State<AppState>,
    auth: Authed,
    body: Bytes,
) -> ApiResult<Response> {
    let form = Params::from_form(&body);
    let account = auth.principal.sid().to_owned();
    let name = friendly_name(&form, true)?.unwrap_or_default();
    let type_name = form.required("OperatorType")?;
    let kind = OperatorType::find(type_name).ok_or_else(|| {
        ApiError::bad_param(
            "OperatorType",
            format!(
                "'{type_name}' is not an operator type; GET /v2/OperatorTypes lists them (phrase-matching can be created)"
            ),
        )
    })?;
    if !kind.configurable {
        return Err(ApiError::bad_param(
            "OperatorType",
            format!(
                "{} operators are built in ({PII_OPERATOR_SID}); only phrase-matching operators can be created",
                kind.name
            ),
        ));
    }
    let config = config(&form, kind, true)?.unwrap_or_default();
    if all_custom(&st, &account).await?.len() >= MAX_CUSTOM_OPERATORS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            20001,
            format!(
                "This account already has {MAX_CUSTOM_OPERATORS} custom operators; delete one first"
            ),
        ));
    }
    let now = now_us();
    let o = CustomOperator {
        sid: new_sid("LY"),
        account_sid: account.clone(),
        friendly_name: name,
        operator_type: kind.name.to_owned(),
        config,
        version: 1,
        date_created: now,
        date_updated: now,
    };
    st.meta.insert_custom_operator(&o).await?;
    tracing::info!(operator = %o.sid, account = %account, "custom operator created");
    Ok(render_custom(&auth.base_url, &o, StatusCode::ACCEPTED))
}

pub(crate) async fn list_custom(
    State(st): State<AppState>,
    auth: Authed,
) -> ApiResult<Json<EnvelopeV1<OperatorResource>>> {
    let q = &auth.query;
    let req = PageRequest::from_params(q, MAX_PAGE)?;
    let rows = if availability_ok(q, "public") && speaks(q.get("LanguageCode")) {
        st.meta
            .list_custom_operators(auth.principal.sid(), req.cursor.as_ref(), req.fetch_limit())
            .await?
    } else {
        Vec::new()
    };
    let page = Page::cut(rows, &req, |o| Cursor {
        date_created: o.date_created,
        sid: o.sid.clone(),
    });
    let base = auth.base_url.clone();
    Ok(Json(envelope_v1(
        "operators",
        &base,
        "/v2/Operators/Custom",
        &page,
        &req,
        q,
        &["Availability", "LanguageCode"],
        |o| OperatorResource::custom(&base, "Operators/Custom", o),
    )))
}

pub(crate) async fn fetch_custom(
    State(st): State<AppState>,
    auth: Authed,
    Path(sid): Path<String>,
) -> ApiResult<Response> {
    let o = find_custom(&st, auth.principal.sid(), &sid, &auth.path).await?;
    Ok(render_custom(&auth.base_url, &o, StatusCode::OK))
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
    text.trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .map(Some)
        .map_err(|_| stale())
}

fn stale() -> ApiError {
    ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        20412,
        "The operator changed since the ETag in If-Match was read; fetch it again and retry",
    )
}

pub(crate) async fn update_custom(
    State(st): State<AppState>,
    auth: Authed,
    headers: HeaderMap,
    Path(sid): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let before = find_custom(&st, auth.principal.sid(), &sid, &auth.path).await?;
    if if_match(&headers)?.is_some_and(|v| v != before.version) {
        return Err(stale());
    }
    let form = Params::from_form(&body);
    let kind = OperatorType::find(&before.operator_type)
        .ok_or_else(|| ApiError::internal("a stored operator has an unknown type"))?;
    let mut o = before.clone();
    if let Some(name) = friendly_name(&form, false)? {
        o.friendly_name = name;
    }
    if let Some(config) = config(&form, kind, false)? {
        o.config = config;
    }
    o.version = before.version + 1;
    o.date_updated = now_us();
    match st.meta.update_custom_operator(&o, before.version).await? {
        OperatorUpdate::Updated => Ok(render_custom(&auth.base_url, &o, StatusCode::ACCEPTED)),
        OperatorUpdate::VersionMismatch => Err(stale()),
    }
}

pub(crate) async fn delete_custom(
    State(st): State<AppState>,
    auth: Authed,
    Path(sid): Path<String>,
) -> ApiResult<StatusCode> {
    find_custom(&st, auth.principal.sid(), &sid, &auth.path).await?;
    if st
        .meta
        .delete_custom_operator(auth.principal.sid(), &sid)
        .await?
    {
        tracing::info!(operator = %sid, account = %auth.principal.sid(), "custom operator deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(&auth.path))
    }
}

// ---- Attachments -------------------------------------------------------------------------

/// `{operator_sid, service_sid, url}`.
#[derive(Debug, Serialize)]
pub(crate) struct AttachmentResource {
    operator_sid: String,
    service_sid: String,
    url: String,
}

/// `{operator_sids, service_sid, url}`.
#[derive(Debug, Serialize)]
pub(crate) struct AttachmentsResource {
    operator_sids: Vec<String>,
    service_sid: String,
    url: String,
}

/// The operator `sid` exists for the account (built in, or its own custom one), else 404.
async fn check_operator(st: &AppState, account: &str, sid: &str, path: &str) -> ApiResult<()> {
    if sid == PII_OPERATOR_SID {
        return Ok(());
    }
    find_custom(st, account, sid, path).await.map(drop)
}

pub(crate) async fn attach(
    State(st): State<AppState>,
    auth: Authed,
    Path((service_sid, operator_sid)): Path<(String, String)>,
) -> ApiResult<Response> {
    let account = auth.principal.sid();
    super::services::find(&st, account, &service_sid, &auth.path).await?;
    check_operator(&st, account, &operator_sid, &auth.path).await?;
    st.meta
        .attach_operator(account, &service_sid, &operator_sid, now_us())
        .await?;
    tracing::info!(service = %service_sid, operator = %operator_sid, account = %account, "operator attached");
    Ok((
        StatusCode::ACCEPTED,
        Json(AttachmentResource {
            url: format!(
                "{}/v2/Services/{service_sid}/Operators/{operator_sid}",
                auth.base_url
            ),
            operator_sid,
            service_sid,
        }),
    )
        .into_response())
}

pub(crate) async fn detach(
    State(st): State<AppState>,
    auth: Authed,
    Path((service_sid, operator_sid)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let account = auth.principal.sid();
    super::services::find(&st, account, &service_sid, &auth.path).await?;
    if st
        .meta
        .detach_operator(account, &service_sid, &operator_sid)
        .await?
    {
        tracing::info!(service = %service_sid, operator = %operator_sid, account = %account, "operator detached");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(&auth.path))
    }
}

pub(crate) async fn attachments(
    State(st): State<AppState>,
    auth: Authed,
    Path(service_sid): Path<String>,
) -> ApiResult<Json<AttachmentsResource>> {
    let account = auth.principal.sid();
    super::services::find(&st, account, &service_sid, &auth.path).await?;
    let operator_sids = st.meta.attached_operators(account, &service_sid).await?;
    Ok(Json(AttachmentsResource {
        operator_sids,
        url: format!("{}/v2/Services/{service_sid}/Operators", auth.base_url),
        service_sid,
    }))
}

// ---- Operator results --------------------------------------------------------------------

/// An operator result as `/OperatorResults` shows it: the sealed object's fields, the ones its
/// operator type does not produce as null, and `url` (fields in alphabetical order).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct OperatorResultResource {
    extract_match: bool,
    extract_results: serde_json::Value,
    json_results: Option<serde_json::Value>,
    label_probabilities: Option<serde_json::Value>,
    match_probability: Option<String>,
    name: String,
    normalized_result: Option<String>,
    operator_sid: String,
    operator_type: String,
    predicted_label: Option<String>,
    predicted_probability: Option<String>,
    text_generation_results: Option<serde_json::Value>,
    transcript_sid: String,
    url: String,
    utterance_match: bool,
    utterance_results: serde_json::Value,
}

impl OperatorResultResource {
    /// `r` for `base`; with `redacted`, what a PII operator found is shown as its type only.
    fn of(base: &str, mut r: OperatorResult, redacted: bool) -> ApiResult<Self> {
        if redacted {
            r.redact();
        }
        let url = format!(
            "{base}/v2/Transcripts/{}/OperatorResults/{}",
            r.transcript_sid, r.operator_sid
        );
        Ok(Self {
            extract_match: r.extract_match,
            extract_results: serde_json::to_value(&r.extract_results)
                .map_err(ApiError::internal)?,
            json_results: None,
            label_probabilities: None,
            match_probability: None,
            name: r.name.clone(),
            normalized_result: None,
            operator_sid: r.operator_sid.clone(),
            operator_type: r.operator_type.clone(),
            predicted_label: None,
            predicted_probability: None,
            text_generation_results: None,
            transcript_sid: r.transcript_sid.clone(),
            url,
            utterance_match: r.utterance_match,
            utterance_results: serde_json::to_value(&r.utterance_results)
                .map_err(ApiError::internal)?,
        })
    }
}

fn customer_sealed(t: &Transcript) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        20403,
        format!(
            "The operator results of transcript {} are encrypted with your public key {}; fetch \
             /v2/Transcripts/{}/OperatorResults/Encrypted and decrypt each download with your private key",
            t.sid,
            t.encryption_credential_sid
                .as_deref()
                .unwrap_or("(deleted)"),
            t.sid
        ),
    )
}

/// The transcript, refused when its results are sealed with the customer's key.
async fn plain_transcript(st: &AppState, auth: &Authed, sid: &str) -> ApiResult<Transcript> {
    let t = find_transcript(st, auth.principal.sid(), sid, &auth.path).await?;
    if t.sealing == Sealing::Customer || t.encryption_credential_sid.is_some() {
        return Err(customer_sealed(&t));
    }
    Ok(t)
}

/// Opens an at-rest result object in memory.
async fn open_result(st: &AppState, r: &OperatorResultRecord) -> ApiResult<OperatorResult> {
    if r.sealing != Sealing::AtRest {
        return Err(ApiError::internal(
            "a plain operator result is not sealed at rest",
        ));
    }
    let plain = AtRestSource(st.reader.clone())
        .read_all(&r.object_key, MAX_AUDIO_BYTES)
        .await
        .map_err(ApiError::internal)?;
    OperatorResult::parse(&plain).map_err(ApiError::internal)
}

fn redacted(t: &Transcript, q: &Params) -> ApiResult<bool> {
    Ok(q.boolean("Redacted")?.unwrap_or(t.redaction))
}

/// `GET /v2/Transcripts/{GT}/OperatorResults`.
pub(crate) async fn results(
    State(st): State<AppState>,
    auth: Authed,
    Path(sid): Path<String>,
) -> ApiResult<Json<EnvelopeV1<OperatorResultResource>>> {
    let t = plain_transcript(&st, &auth, &sid).await?;
    let q = &auth.query;
    let req = PageRequest::from_params(q, MAX_PAGE)?;
    let redact = redacted(&t, q)?;
    let records = st.meta.operator_results(auth.principal.sid(), &sid).await?;
    let page = page_in_memory(records, &req, |r| r.operator_sid.clone());
    let mut shown = Vec::with_capacity(page.items.len());
    for r in &page.items {
        shown.push(OperatorResultResource::of(
            &auth.base_url,
            open_result(&st, r).await?,
            redact,
        )?);
    }
    let page = Page {
        items: shown,
        next: page.next,
    };
    let path = format!("/v2/Transcripts/{sid}/OperatorResults");
    let envelope = envelope_v1(
        "operator_results",
        &auth.base_url,
        &path,
        &page,
        &req,
        q,
        &["Redacted"],
        OperatorResultResource::clone,
    );
    Ok(Json(envelope))
}

/// `GET /v2/Transcripts/{GT}/OperatorResults/{LY}`.
pub(crate) async fn result(
    State(st): State<AppState>,
    auth: Authed,
    Path((sid, operator_sid)): Path<(String, String)>,
) -> ApiResult<Json<OperatorResultResource>> {
    let t = plain_transcript(&st, &auth, &sid).await?;
    let redact = redacted(&t, &auth.query)?;
    let record = st
        .meta
        .operator_results(auth.principal.sid(), &sid)
        .await?
        .into_iter()
        .find(|r| r.operator_sid == operator_sid)
        .ok_or_else(|| ApiError::not_found(&auth.path))?;
    Ok(Json(OperatorResultResource::of(
        &auth.base_url,
        open_result(&st, &record).await?,
        redact,
    )?))
}

/// `{locations, transcript_sid, url}` (fields in alphabetical order).
#[derive(Debug, Serialize)]
pub(crate) struct EncryptedOperatorResults {
    locations: Vec<String>,
    transcript_sid: String,
    url: String,
}

/// `GET /v2/Transcripts/{GT}/OperatorResults/Encrypted`: one download per result object, each
/// sealed with the customer's key and carrying its key material as `x-amz-meta-*` headers.
pub(crate) async fn encrypted_results(
    State(st): State<AppState>,
    auth: Authed,
    Path(sid): Path<String>,
) -> ApiResult<Json<EncryptedOperatorResults>> {
    let t = find_transcript(&st, auth.principal.sid(), &sid, &auth.path).await?;
    if t.encryption_credential_sid.is_none() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            20001,
            format!(
                "Transcript {sid} is not encrypted with your public key (its service has no EncryptionCredentialSid); \
                 read /v2/Transcripts/{sid}/OperatorResults instead"
            ),
        ));
    }
    if t.sealing != Sealing::Customer {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            20404,
            format!(
                "Transcript {sid} has no operator results (status {})",
                t.status
            ),
        ));
    }
    let redact = redacted(&t, &auth.query)?;
    let mut locations = Vec::new();
    for r in st.meta.operator_results(auth.principal.sid(), &sid).await? {
        if r.sealing != Sealing::Customer {
            continue;
        }
        // The redacted view was sealed beside the result when it was generated (the server
        // cannot redact what it cannot open); results from before it existed have none.
        let redacted_view = redacted_key(&r.object_key);
        let key = if redact
            && OperatorResult::has_redacted_view(&r.operator_type)
            && st.services.objects().head(&redacted_view).await.is_ok()
        {
            redacted_view.as_str()
        } else {
            r.object_key.as_str()
        };
        locations.push(location_of(&st, &auth.base_url, key).await?);
    }
    Ok(Json(EncryptedOperatorResults {
        locations,
        url: format!(
            "{}/v2/Transcripts/{}/OperatorResults/Encrypted",
            auth.base_url, t.sid
        ),
        transcript_sid: t.sid,
    }))
}
