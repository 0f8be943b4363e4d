//! Calls (api/2010-04-01 `Calls`): the calls the SIP edge has carried, kept by its ledger, with
//! Twilio's list filters. `Calls/{CA}/Recordings.json` is served with the recordings.
//!
//! Owners and their parent accounts see a call; anyone else gets the 404 of a call that does not
//! exist. `Status=completed|canceled` ends a live call and `Url`/`Twiml` give it new TwiML
//! through the SIP edge's live-call seam ([`mediaseal_service::calls::LiveCalls`], installed
//! by `serve` when it starts the edge). `POST …/Calls.json` places a call to a `sip:` URI
//! through the same seam, recorded from the answer with `Record=true`.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use mediaseal_service::calls::{
    CallRedirect, HangUp, LiveCallError, LiveRecordingOptions, OutboundCall, RecordingChange,
    SipAuth,
};
use mediaseal_store::model::Recording;
use mediaseal_store::model::{Call, CallDirection, CallFilter, CallStatus, Cursor};
use serde::Serialize;

use crate::api::{Authed, json_sid};
use crate::auth::accessible_account;
use crate::clock::{DAY_US, parse_date, rfc2822};
use crate::error::{ApiError, ApiResult};
use crate::paging::{Envelope2010, Page, PageRequest, envelope_2010};
use crate::params::Params;
use crate::state::AppState;

/// Twilio's "Call is not in-progress" (an update of a call that has ended).
const ERROR_CALL_NOT_IN_PROGRESS: u32 = 21220;

/// The Calls routes.
pub(crate) fn routes() -> Router<AppState> {
    const BASE: &str = "/2010-04-01/Accounts/{account}";
    Router::new()
        .route(&format!("{BASE}/Calls.json"), get(list).post(create))
        // `{call}`, as the recordings route below it names the same segment.
        .route(&format!("{BASE}/Calls/{{call}}"), get(fetch).post(update))
        // `POST …/Calls/{CA}/Recordings.json` (start) is routed with the list, in `lib.rs`.
        .route(
            &format!("{BASE}/Calls/{{call}}/Recordings/{{file}}"),
            axum::routing::post(update_recording),
        )
}

/// The lists under a call.
#[derive(Debug, Serialize)]
pub(crate) struct CallSubresources {
    notifications: String,
    recordings: String,
}

/// A call as the API shows it (fields in alphabetical order, as clients have always seen them).
#[derive(Debug, Serialize)]
pub(crate) struct CallResource {
    account_sid: String,
    annotation: Option<String>,
    answered_by: Option<String>,
    api_version: &'static str,
    caller_name: Option<String>,
    date_created: String,
    date_updated: String,
    direction: &'static str,
    duration: Option<String>,
    end_time: Option<String>,
    forwarded_from: Option<String>,
    from: String,
    from_formatted: String,
    group_sid: Option<String>,
    parent_call_sid: Option<String>,
    phone_number_sid: Option<String>,
    price: Option<String>,
    price_unit: &'static str,
    queue_time: &'static str,
    sid: String,
    start_time: Option<String>,
    status: &'static str,
    subresource_uris: CallSubresources,
    to: String,
    to_formatted: String,
    trunk_sid: Option<String>,
    uri: String,
}

impl CallResource {
    fn from_record(c: &Call) -> Self {
        let base = format!("/2010-04-01/Accounts/{}/Calls/{}", c.account_sid, c.sid);
        Self {
            account_sid: c.account_sid.clone(),
            annotation: None,
            answered_by: None,
            api_version: "2010-04-01",
            caller_name: None,
            date_created: rfc2822(c.date_created),
            date_updated: rfc2822(c.date_updated),
            direction: c.direction.as_str(),
            duration: c.duration.map(|d| d.to_string()),
            end_time: c.end_time.map(rfc2822),
            forwarded_from: None,
            from: c.from.clone(),
            from_formatted: c.from.clone(),
            group_sid: None,
            parent_call_sid: c.parent_call_sid.clone(),
            phone_number_sid: None,
            price: None,
            price_unit: "USD",
            queue_time: "0",
            sid: c.sid.clone(),
            start_time: c.start_time.map(rfc2822),
            status: c.status.as_str(),
            subresource_uris: CallSubresources {
                notifications: format!("{base}/Notifications.json"),
                recordings: format!("{base}/Recordings.json"),
            },
            to: c.to.clone(),
            to_formatted: c.to.clone(),
            trunk_sid: None,
            uri: format!("{base}.json"),
        }
    }
}

/// The filters of a list request. Dates are `YYYY-MM-DD` (a whole day) or
/// `YYYY-MM-DDTHH:MM:SSZ`; `StartTime>`/`StartTime<` mean on or after / on or before.
fn filter(q: &Params) -> ApiResult<CallFilter> {
    let date = |name: &str| -> ApiResult<Option<(i64, bool)>> {
        match q.get(name) {
            None | Some("") => Ok(None),
            Some(v) => parse_date(v).map(Some).ok_or_else(|| {
                ApiError::bad_param(
                    name,
                    format!("'{v}' is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)"),
                )
            }),
        }
    };
    // (on the day or at the second, on or before, on or after) → [from, before)
    let range = |name: &str| -> ApiResult<(Option<i64>, Option<i64>)> {
        let (mut from, mut before) = (None, None);
        if let Some((t, day)) = date(name)? {
            from = Some(t);
            before = Some(if day { t + DAY_US } else { t + 1_000_000 });
        }
        if let Some((t, day)) = date(&format!("{name}<"))? {
            before = Some(if day { t + DAY_US } else { t + 1 });
        }
        if let Some((t, _)) = date(&format!("{name}>"))? {
            from = Some(t);
        }
        Ok((from, before))
    };
    let status = match q.get("Status") {
        None | Some("") => None,
        Some(s) => Some(
            s.parse::<CallStatus>()
                .map_err(|e| ApiError::bad_param("Status", e))?,
        ),
    };
    let text = |name: &str| q.get(name).filter(|v| !v.is_empty()).map(str::to_owned);
    let (started_from, started_before) = range("StartTime")?;
    let (ended_from, ended_before) = range("EndTime")?;
    Ok(CallFilter {
        to: text("To"),
        from: text("From"),
        status,
        parent_call_sid: q.sid("ParentCallSid", "CA")?.map(str::to_owned),
        started_from,
        started_before,
        ended_from,
        ended_before,
    })
}

pub(crate) async fn list(
    State(st): State<AppState>,
    auth: Authed,
    Path(account_sid): Path<String>,
) -> ApiResult<Json<Envelope2010<CallResource>>> {
    let account = accessible_account(&st, &auth.principal, &account_sid, &auth.path).await?;
    let q = &auth.query;
    let req = PageRequest::from_params(q, 1000)?;
    let filter = filter(q)?;
    let rows = st
        .services
        .list_calls(
            &account.sid,
            &filter,
            req.cursor.as_ref(),
            req.fetch_limit(),
        )
        .await
        .map_err(ApiError::internal)?;
    let page = Page::cut(rows, &req, |c| Cursor {
        date_created: c.date_created,
        sid: c.sid.clone(),
    });
    let path = auth.path.clone();
    Ok(Json(envelope_2010(
        "calls",
        &path,
        &page,
        &req,
        q,
        &[
            "To",
            "From",
            "Status",
            "ParentCallSid",
            "StartTime",
            "StartTime<",
            "StartTime>",
            "EndTime",
            "EndTime<",
            "EndTime>",
        ],
        CallResource::from_record,
    )))
}

/// The call `file` (`CA….json`) of an account the caller may see; else 404.
async fn owned(st: &AppState, auth: &Authed, account_sid: &str, file: &str) -> ApiResult<Call> {
    let account = accessible_account(st, &auth.principal, account_sid, &auth.path).await?;
    let sid = json_sid(file, "CA", &auth.path)?;
    st.services
        .call(&account.sid, sid)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(&auth.path))
}

pub(crate) async fn fetch(
    State(st): State<AppState>,
    auth: Authed,
    Path((account_sid, file)): Path<(String, String)>,
) -> ApiResult<Json<CallResource>> {
    let call = owned(&st, &auth, &account_sid, &file).await?;
    Ok(Json(CallResource::from_record(&call)))
}

/// `POST …/Calls/{CA}.json`: `Status=completed` ends a live call (BYE to both legs, 487 to a
/// ringing caller), `Status=canceled` ends it if it has not been answered (an answered call is
/// left alone, as on Twilio), through the SIP edge's live-call seam. Without `Status`, `Url`
/// (+`Method`, `FallbackUrl`, `FallbackMethod`) or `Twiml` redirects the call: its current
/// TwiML stops (a `<Dial>`led leg is hung up) and the new TwiML runs. A call that has ended,
/// or that no edge in this process carries, gets Twilio's 21220.
pub(crate) async fn update(
    State(st): State<AppState>,
    auth: Authed,
    Path((account_sid, file)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<CallResource>> {
    let call = owned(&st, &auth, &account_sid, &file).await?;
    let form = Params::from_form(&body);
    let how = match form.get("Status") {
        None | Some("") => None,
        Some("completed") => Some(HangUp::Completed),
        Some("canceled") => Some(HangUp::Canceled),
        Some(s) => {
            return Err(ApiError::bad_param(
                "Status",
                format!("'{s}' is not completed or canceled"),
            ));
        }
    };
    let not_in_progress = |why: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ERROR_CALL_NOT_IN_PROGRESS,
            format!(
                "Call is not in-progress. Cannot redirect. (call {} {why})",
                call.sid
            ),
        )
    };
    if call.status.is_final() {
        return Err(not_in_progress(&format!("is {}", call.status.as_str())));
    }
    // `Status` wins over a redirect given with it, as on Twilio.
    let redirect = match how {
        Some(_) => None,
        None => redirect_of(&form, &st)?,
    };
    if how.is_none() && redirect.is_none() {
        return Err(ApiError::bad_param(
            "Status",
            "a call update needs Status=completed or Status=canceled, or Url or Twiml to \
             redirect the call",
        ));
    }
    let Some(live) = st.live_calls() else {
        return Err(not_in_progress(
            "is not carried by a SIP edge in this server",
        ));
    };
    let Some(how) = how else {
        if let Some(to) = redirect {
            live.redirect(&call.account_sid, &call.sid, &to)
                .await
                .map_err(|e| live_call_error(&e))?;
        }
        // The call goes on under its new TwiML: answer with its row as it is now.
        let latest = st
            .services
            .call(&call.account_sid, &call.sid)
            .await
            .map_err(ApiError::internal)?
            .unwrap_or(call);
        return Ok(Json(CallResource::from_record(&latest)));
    };
    match live.hang_up(&call.account_sid, &call.sid, how).await {
        Ok(()) => {}
        // Twilio leaves an answered call alone on `canceled` and answers with the call.
        Err(LiveCallError::Answered { .. }) => return Ok(Json(CallResource::from_record(&call))),
        Err(e) => return Err(live_call_error(&e)),
    }
    // The edge's ledger writes the final status as the call ends; answer with it when it
    // lands soon (it normally takes milliseconds), else with the row as it is.
    let mut latest = call;
    for _ in 0..40 {
        match st.services.call(&latest.account_sid, &latest.sid).await {
            Ok(Some(c)) if c.status.is_final() => return Ok(Json(CallResource::from_record(&c))),
            Ok(Some(c)) => latest = c,
            Ok(None) | Err(_) => break,
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Ok(Json(CallResource::from_record(&latest)))
}

/// A recording of a call as `…/Calls/{CA}/Recordings…` shows it (Twilio's `call_recording`,
/// fields in alphabetical order).
#[derive(Debug, Serialize)]
pub(crate) struct CallRecordingResource {
    account_sid: String,
    api_version: &'static str,
    call_sid: Option<String>,
    channels: i64,
    conference_sid: Option<String>,
    date_created: String,
    date_updated: String,
    /// Seconds, as a string; `"-1"` until known.
    duration: String,
    encryption_details: Option<serde_json::Value>,
    error_code: Option<i64>,
    price: Option<String>,
    price_unit: &'static str,
    sid: String,
    source: String,
    start_time: String,
    status: String,
    track: Option<String>,
    uri: String,
}

impl CallRecordingResource {
    /// `status` overrides the row's (the row says `in-progress` until it is stored; the API
    /// answers a pause or stop with the state asked for, as Twilio does).
    fn from_record(call_sid: &str, r: &Recording, status: Option<&str>) -> Self {
        Self {
            account_sid: r.account_sid.clone(),
            api_version: "2010-04-01",
            call_sid: r.call_sid.clone(),
            channels: r.channels,
            conference_sid: r.conference_sid.clone(),
            date_created: rfc2822(r.date_created),
            date_updated: rfc2822(r.date_updated),
            duration: r
                .duration
                .map_or_else(|| "-1".to_owned(), |d| d.to_string()),
            encryption_details: r
                .encryption_details
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok()),
            error_code: r.error_code,
            price: None,
            price_unit: "USD",
            sid: r.sid.clone(),
            source: r.source.clone(),
            start_time: rfc2822(r.start_time),
            status: status.unwrap_or(&r.status).to_owned(),
            track: r.track.clone(),
            uri: format!(
                "/2010-04-01/Accounts/{}/Calls/{call_sid}/Recordings/{}.json",
                r.account_sid, r.sid
            ),
        }
    }
}

/// The API's answer to a refusal of the SIP edge.
fn live_call_error(e: &LiveCallError) -> ApiError {
    match e {
        LiveCallError::NotLive { .. } => ApiError::new(
            StatusCode::BAD_REQUEST,
            ERROR_CALL_NOT_IN_PROGRESS,
            format!("Call is not in-progress. ({e})"),
        ),
        LiveCallError::Unavailable { .. } => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, 20503, e.to_string())
        }
        LiveCallError::NotRecording { .. } => {
            ApiError::new(StatusCode::NOT_FOUND, 20404, e.to_string())
        }
        // The call is live but not in the state the request needs.
        LiveCallError::Answered { .. } | LiveCallError::NotAnswered { .. } => ApiError::new(
            StatusCode::BAD_REQUEST,
            ERROR_CALL_NOT_IN_PROGRESS,
            e.to_string(),
        ),
        LiveCallError::AlreadyRecording { .. }
        | LiveCallError::RecordingFailed { .. }
        | LiveCallError::Invalid { .. } => {
            ApiError::new(StatusCode::BAD_REQUEST, 20001, e.to_string())
        }
    }
}

/// A live call of an account the caller may see, by its bare `CA…` SID, and the edge that
/// carries it; 404 for a call the caller cannot see, 21220 for one that has ended or that no
/// edge here carries.
async fn live_call(
    st: &AppState,
    auth: &Authed,
    account_sid: &str,
    call_sid: &str,
) -> ApiResult<(
    Call,
    std::sync::Arc<dyn mediaseal_service::calls::LiveCalls>,
)> {
    let account = accessible_account(st, &auth.principal, account_sid, &auth.path).await?;
    if !crate::sid::is_sid(call_sid, "CA") {
        return Err(ApiError::not_found(&auth.path));
    }
    let call = st
        .services
        .call(&account.sid, call_sid)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(&auth.path))?;
    let not_in_progress = |why: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ERROR_CALL_NOT_IN_PROGRESS,
            format!("Call is not in-progress. (call {} {why})", call.sid),
        )
    };
    if call.status.is_final() {
        return Err(not_in_progress(&format!("is {}", call.status.as_str())));
    }
    let Some(live) = st.live_calls().cloned() else {
        return Err(not_in_progress(
            "is not carried by a SIP edge in this server",
        ));
    };
    Ok((call, live))
}

/// `POST …/Calls/{CA}/Recordings.json`: starts recording a live call (source
/// `StartCallRecordingAPI`), sealed as the audio arrives like every call recording; 201 with
/// the recording (`in-progress`, duration `-1` until it is stored).
pub(crate) async fn start_recording(
    State(st): State<AppState>,
    auth: Authed,
    Path((account_sid, call_sid)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let form = Params::from_form(&body);
    // Every parameter is checked before the edge is asked.
    let options = recording_options(&form, &st)?;
    let (call, live) = live_call(&st, &auth, &account_sid, &call_sid).await?;
    let rec = live
        .start_recording(&call.account_sid, &call.sid, &options)
        .await
        .map_err(|e| live_call_error(&e))?;
    Ok((
        StatusCode::CREATED,
        // The row is `processing` until stored; to the API it is recording.
        Json(CallRecordingResource::from_record(
            &call.sid,
            &rec,
            Some("in-progress"),
        )),
    )
        .into_response())
}

/// The `Recording*` and `Trim` options of the start-recording API and of `Record=true`.
fn recording_options(form: &Params, st: &AppState) -> ApiResult<LiveRecordingOptions> {
    let policy = &st.services.config.webhook_policy;
    let status_callback =
        crate::params::webhook_url(form, "RecordingStatusCallback", policy)?.map(str::to_owned);
    let status_callback_method = form.method("RecordingStatusCallbackMethod")?;
    let mut status_callback_events = Vec::new();
    for e in form.all("RecordingStatusCallbackEvent") {
        // Twilio takes repeated keys or one space-separated value.
        for name in e.split([' ', ',']).filter(|n| !n.is_empty()) {
            if !["in-progress", "completed", "absent", "failed"].contains(&name) {
                return Err(ApiError::bad_param(
                    "RecordingStatusCallbackEvent",
                    format!("'{name}' is not in-progress, completed, absent or failed"),
                ));
            }
            status_callback_events.push(name.to_owned());
        }
    }
    let dual = match form.get("RecordingChannels") {
        None | Some("") | Some("mono") => false,
        Some("dual") => true,
        Some(v) => {
            return Err(ApiError::bad_param(
                "RecordingChannels",
                format!("'{v}' is not mono or dual"),
            ));
        }
    };
    let inbound_only = match form.get("RecordingTrack") {
        None | Some("") | Some("both") => false,
        Some("inbound") => true,
        Some(v) => {
            return Err(ApiError::bad_param(
                "RecordingTrack",
                format!("'{v}' is not inbound or both (outbound is not supported yet)"),
            ));
        }
    };
    let trim_silence = match form.get("Trim") {
        None | Some("") | Some("trim-silence") => true,
        Some("do-not-trim") => false,
        Some(v) => {
            return Err(ApiError::bad_param(
                "Trim",
                format!("'{v}' is not trim-silence or do-not-trim"),
            ));
        }
    };
    Ok(LiveRecordingOptions {
        dual,
        inbound_only,
        trim_silence,
        status_callback,
        status_callback_method,
        status_callback_events,
    })
}

/// `POST …/Calls/{CA}/Recordings/{RE}.json` with `Status=paused|in-progress|stopped`: pauses
/// (the paused time is left out: `PauseBehavior=skip`), resumes or stops a recording the API
/// started. A stopped recording is stored and its callback sent as for any recording.
pub(crate) async fn update_recording(
    State(st): State<AppState>,
    auth: Authed,
    Path((account_sid, call_sid, file)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Json<CallRecordingResource>> {
    let recording_sid = json_sid(&file, "RE", &auth.path)?.to_owned();
    let form = Params::from_form(&body);
    let change = match form.get("Status") {
        Some("paused") => RecordingChange::Paused,
        Some("in-progress") => RecordingChange::InProgress,
        Some("stopped") => RecordingChange::Stopped,
        None | Some("") => {
            return Err(ApiError::bad_param(
                "Status",
                "required: paused, in-progress or stopped",
            ));
        }
        Some(v) => {
            return Err(ApiError::bad_param(
                "Status",
                format!("'{v}' is not paused, in-progress or stopped"),
            ));
        }
    };
    match form.get("PauseBehavior") {
        None | Some("") | Some("skip") => {}
        Some(v) => {
            return Err(ApiError::bad_param(
                "PauseBehavior",
                format!("'{v}' is not supported: paused audio is skipped (skip)"),
            ));
        }
    }
    let (call, live) = live_call(&st, &auth, &account_sid, &call_sid).await?;
    let rec = live
        .change_recording(&call.account_sid, &call.sid, &recording_sid, change)
        .await
        .map_err(|e| live_call_error(&e))?;
    Ok(Json(CallRecordingResource::from_record(
        &call.sid,
        &rec,
        Some(change.as_str()),
    )))
}

/// Twilio's "No 'To' number is specified".
const ERROR_TO_MISSING: u32 = 21201;
/// Twilio's "Invalid 'To' Phone Number" (here: not a `sip:` URI).
const ERROR_TO_INVALID: u32 = 21211;
/// Twilio's "Invalid URL" (also: neither `Url` nor `Twiml` given).
const ERROR_URL: u32 = 21205;
/// Twilio's "No 'From' number is specified".
const ERROR_FROM_MISSING: u32 = 21213;

/// The outbound call a `POST …/Calls.json` form asks for, every parameter checked before the
/// edge is asked.
fn outbound_call(form: &Params, st: &AppState) -> ApiResult<OutboundCall> {
    let policy = &st.services.config.webhook_policy;
    let to = match form.get("To").map(str::trim) {
        None | Some("") => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                ERROR_TO_MISSING,
                "No 'To' number is specified: To must be a SIP URI (sip:user@host, \
                 ;secure=true for TLS and SRTP)",
            ));
        }
        Some(v) => v,
    };
    let is_sip = to.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("sip:"))
        && to.len() > 4
        && to.len() <= 1024
        && !to.chars().any(|c| c.is_whitespace() || c.is_control());
    if !is_sip {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ERROR_TO_INVALID,
            format!(
                "Invalid 'To': '{}' is not a sip: URI; this server places calls to SIP \
                 endpoints only (sip:user@host, ;secure=true for TLS and SRTP)",
                mediaseal_service::egress::bounded(to, 100)
            ),
        ));
    }
    let from = match form.get("From").map(str::trim) {
        None | Some("") => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                ERROR_FROM_MISSING,
                "No 'From' number is specified: From is the caller ID (a number or a SIP URI)",
            ));
        }
        Some(v) if v.len() > 256 || v.chars().any(char::is_control) => {
            return Err(ApiError::bad_param(
                "From",
                "must be at most 256 characters without control characters",
            ));
        }
        Some(v) => v.to_owned(),
    };
    let url = crate::params::webhook_url(form, "Url", policy)?.map(str::to_owned);
    let twiml = form
        .get("Twiml")
        .filter(|t| !t.trim().is_empty())
        .map(str::to_owned);
    if let Some(t) = &twiml
        && t.len() > 64 * 1024
    {
        return Err(ApiError::bad_param("Twiml", "must be at most 64 KiB"));
    }
    match (&url, &twiml) {
        (None, None) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                ERROR_URL,
                "Url or Twiml is required: the TwiML to run once the call is answered",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_param("Twiml", "give Url or Twiml, not both"));
        }
        _ => {}
    }
    if form.has("ApplicationSid") {
        return Err(ApiError::bad_param(
            "ApplicationSid",
            "applications are not supported by this server; give Url or Twiml",
        ));
    }
    refuse_unsupported(form)?;
    let caller_id = caller_id(form)?;
    let sip_auth = sip_auth(form)?;
    // `Record=true`: from the answer, with the start-recording API's options.
    let record = match form.boolean("Record")? {
        Some(true) => Some(recording_options(form, st)?),
        _ => None,
    };
    let send_digits = match form.get("SendDigits") {
        None | Some("") => None,
        Some(d) if d.chars().count() > MAX_SEND_DIGITS => {
            return Err(ApiError::bad_param(
                "SendDigits",
                format!("must be at most {MAX_SEND_DIGITS} keys and pauses"),
            ));
        }
        Some(d) => {
            if let Some(c) = d.chars().find(|c| !SEND_DIGITS_KEYS.contains(*c)) {
                return Err(ApiError::bad_param(
                    "SendDigits",
                    format!(
                        "'{}' is not a key (0-9, A-D, *, #) or a pause (w: half a second, W: a second)",
                        c.escape_default()
                    ),
                ));
            }
            Some(d.to_owned())
        }
    };
    let mut status_callback_events = Vec::new();
    for e in form.all("StatusCallbackEvent") {
        for name in e.split([' ', ',']).filter(|n| !n.is_empty()) {
            if !["initiated", "ringing", "answered", "completed"].contains(&name) {
                return Err(ApiError::bad_param(
                    "StatusCallbackEvent",
                    format!("'{name}' is not initiated, ringing, answered or completed"),
                ));
            }
            status_callback_events.push(name.to_owned());
        }
    }
    let timeout = form.int_in("Timeout", 1..=600)?.unwrap_or(60);
    let time_limit = form
        .int_in("TimeLimit", 1..=DEFAULT_TIME_LIMIT_SECS)?
        .unwrap_or(DEFAULT_TIME_LIMIT_SECS);
    Ok(OutboundCall {
        to: to.to_owned(),
        from,
        caller_id,
        url,
        method: form.method("Method")?,
        twiml,
        fallback_url: crate::params::webhook_url(form, "FallbackUrl", policy)?.map(str::to_owned),
        fallback_method: form.method("FallbackMethod")?,
        status_callback: crate::params::webhook_url(form, "StatusCallback", policy)?
            .map(str::to_owned),
        status_callback_method: form.method("StatusCallbackMethod")?,
        status_callback_events,
        // Bounded above to 600.
        timeout_secs: u32::try_from(timeout).unwrap_or(60),
        // Bounded above to 4 hours.
        time_limit_secs: u32::try_from(time_limit).unwrap_or(14_400),
        record,
        send_digits,
        sip_auth,
    })
}

/// `TimeLimit`'s default and largest value, in seconds: Twilio's 4 hours.
const DEFAULT_TIME_LIMIT_SECS: i64 = 14_400;

/// `POST …/Calls.json` parameters this server does not implement, with what each would have
/// changed. Dropping them would place a call that behaves differently from the one asked for
/// (no AMD result, no branded call), so they are refused by name. Accepted and
/// unused, on purpose: the `Recording*` and `Trim` options without `Record=true` (they describe a
/// recording that is not made, as on Twilio) and `AsyncAmd=false` (it asks for nothing).
const UNSUPPORTED_CREATE_PARAMS: &[(&str, &str)] = &[
    ("MachineDetection", "answering machine detection"),
    ("MachineDetectionTimeout", "answering machine detection"),
    (
        "MachineDetectionSpeechThreshold",
        "answering machine detection",
    ),
    (
        "MachineDetectionSpeechEndThreshold",
        "answering machine detection",
    ),
    (
        "MachineDetectionSilenceTimeout",
        "answering machine detection",
    ),
    ("AsyncAmd", "answering machine detection"),
    ("AsyncAmdStatusCallback", "answering machine detection"),
    (
        "AsyncAmdStatusCallbackMethod",
        "answering machine detection",
    ),
    (
        "Byoc",
        "BYOC trunks (the call goes to the To SIP URI directly)",
    ),
    (
        "Trunk",
        "SIP trunks (the call goes to the To SIP URI directly)",
    ),
    ("CallReason", "branded calls"),
    (
        "CallToken",
        "forwarding a caller's identity with a CallToken",
    ),
    (
        "ClientNotificationUrl",
        "Voice SDK clients (To must be a SIP URI)",
    ),
];

/// 400 naming the first parameter in [`UNSUPPORTED_CREATE_PARAMS`] given with a value.
fn refuse_unsupported(form: &Params) -> ApiResult<()> {
    for &(name, feature) in UNSUPPORTED_CREATE_PARAMS {
        let Some(value) = form.get(name).map(str::trim) else {
            continue;
        };
        if value.is_empty() || (name == "AsyncAmd" && value.eq_ignore_ascii_case("false")) {
            continue;
        }
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            20001,
            format!(
                "Unsupported parameter {name}: {feature} is not supported by mediaseal; \
                 leave {name} out of the request"
            ),
        ));
    }
    Ok(())
}

/// Twilio's "Invalid 'From' number (caller ID)", also for a malformed `CallerId`.
const ERROR_CALLER_ID: u32 = 21212;

/// `CallerId`: who the callee sees calling (the INVITE's From) instead of `From`. A number
/// or name (`+15551230000`, `alice`: the user part at the edge's address) or a SIP address
/// (`sip:alice@example.com` or `alice@example.com`). Checked here with the edge's grammar so
/// a bad value is a 400 before any call is placed.
fn caller_id(form: &Params) -> ApiResult<Option<String>> {
    let Some(value) = form
        .get("CallerId")
        .map(str::trim)
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    let user_ok = |u: &str| {
        !u.is_empty()
            && u.len() <= 64
            && u.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-_.!~*'()".contains(c))
    };
    let host_ok = |h: &str| {
        let (name_ok, port) = if let Some(v6) = h.strip_prefix('[') {
            match v6.split_once(']') {
                Some((addr, rest)) => (
                    addr.parse::<std::net::Ipv6Addr>().is_ok(),
                    match rest.strip_prefix(':') {
                        Some(p) => Some(p),
                        None if rest.is_empty() => None,
                        None => return false,
                    },
                ),
                None => return false,
            }
        } else {
            let (name, port) = match h.split_once(':') {
                Some((n, p)) => (n, Some(p)),
                None => (h, None),
            };
            let ok = !name.is_empty()
                && name.len() <= 253
                && name.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                });
            (ok, port)
        };
        name_ok && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0))
    };
    let address = match value.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("sip:") => Some(&value[4..]),
        _ => value.contains('@').then_some(value),
    };
    let ok = match address {
        Some(a) => a
            .split_once('@')
            .is_some_and(|(user, host)| user_ok(user) && host_ok(host)),
        None => user_ok(value),
    };
    if !ok {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ERROR_CALLER_ID,
            format!(
                "Invalid CallerId '{}': give a number (+15551230000), a name of letters, digits \
                 and +-_.!~*'() (alice), or a SIP address (sip:alice@example.com)",
                mediaseal_service::egress::bounded(value, 100)
            ),
        ));
    }
    Ok(Some(value.to_owned()))
}

/// Longest `SipAuthUsername` / `SipAuthPassword` accepted.
const MAX_SIP_AUTH_LEN: usize = 256;

/// `SipAuthUsername` + `SipAuthPassword`: both or neither, for the callee's digest challenge.
fn sip_auth(form: &Params) -> ApiResult<Option<SipAuth>> {
    let field = |name: &str| -> ApiResult<Option<String>> {
        match form.get(name) {
            None | Some("") => Ok(None),
            Some(v) if v.len() > MAX_SIP_AUTH_LEN || v.chars().any(char::is_control) => {
                Err(ApiError::bad_param(
                    name,
                    format!("must be at most {MAX_SIP_AUTH_LEN} bytes without control characters"),
                ))
            }
            Some(v) => Ok(Some(v.to_owned())),
        }
    };
    match (field("SipAuthUsername")?, field("SipAuthPassword")?) {
        (None, None) => Ok(None),
        (Some(username), Some(password)) => Ok(Some(SipAuth { username, password })),
        (Some(_), None) => Err(ApiError::bad_param(
            "SipAuthPassword",
            "SipAuthUsername was given without it; give both or neither",
        )),
        (None, Some(_)) => Err(ApiError::bad_param(
            "SipAuthUsername",
            "SipAuthPassword was given without it; give both or neither",
        )),
    }
}

/// Twilio's bound on `SendDigits`.
const MAX_SEND_DIGITS: usize = 32;
/// What `SendDigits` may hold: keys, and `w`/`W` pauses.
const SEND_DIGITS_KEYS: &str = "0123456789ABCDabcd*#wW";

/// The redirect a call update asks for (`Url`+`Method`, `Twiml`, `FallbackUrl`+
/// `FallbackMethod`), checked as for a new call; `None` without `Url` or `Twiml`.
fn redirect_of(form: &Params, st: &AppState) -> ApiResult<Option<CallRedirect>> {
    let policy = &st.services.config.webhook_policy;
    let url = crate::params::webhook_url(form, "Url", policy)?.map(str::to_owned);
    let twiml = form
        .get("Twiml")
        .filter(|t| !t.trim().is_empty())
        .map(str::to_owned);
    if let Some(t) = &twiml
        && t.len() > 64 * 1024
    {
        return Err(ApiError::bad_param("Twiml", "must be at most 64 KiB"));
    }
    if url.is_some() && twiml.is_some() {
        return Err(ApiError::bad_param("Twiml", "give Url or Twiml, not both"));
    }
    if url.is_none() && twiml.is_none() {
        return Ok(None);
    }
    Ok(Some(CallRedirect {
        url,
        method: form.method("Method")?,
        twiml,
        fallback_url: crate::params::webhook_url(form, "FallbackUrl", policy)?.map(str::to_owned),
        fallback_method: form.method("FallbackMethod")?,
    }))
}

/// `POST …/Calls.json`: places a call to a `sip:` URI through the SIP edge (`;secure=true`:
/// TLS to 5061 with the peer's certificate verified and an SRTP offer, as `<Dial><Sip>`), runs
/// `Url` (fetched, signed, `Direction=outbound-api`) or `Twiml` once answered, and sends the
/// `StatusCallbackEvent`s asked for. 201 with the call, `queued` until it rings.
pub(crate) async fn create(
    State(st): State<AppState>,
    auth: Authed,
    Path(account_sid): Path<String>,
    body: Bytes,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let account = accessible_account(&st, &auth.principal, &account_sid, &auth.path).await?;
    let form = Params::from_form(&body);
    let request = outbound_call(&form, &st)?;
    let Some(live) = st.live_calls().cloned() else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            20001,
            "Placing calls through the API (POST Calls.json) is not supported by this server \
             without its SIP edge; start serve with --sip-listen or --sip-tls-listen",
        ));
    };
    let sid = live
        .originate(&account.sid, &request)
        .await
        .map_err(|e| match e {
            LiveCallError::Invalid { param, reason } => {
                let code = if param == "To" {
                    ERROR_TO_INVALID
                } else {
                    20001
                };
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    code,
                    format!("Invalid parameter {param}: {reason}"),
                )
            }
            other => live_call_error(&other),
        })?;
    // The edge's ledger writes the `queued` row as the call is placed; answer with it (it
    // normally lands in milliseconds), else with the call as it was asked for.
    for _ in 0..40 {
        if let Ok(Some(c)) = st.services.call(&account.sid, &sid).await {
            return Ok((StatusCode::CREATED, Json(CallResource::from_record(&c))).into_response());
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let now = st.services.now_us();
    let queued = Call {
        sid,
        account_sid: account.sid.clone(),
        parent_call_sid: None,
        direction: CallDirection::OutboundApi,
        from: request.from,
        to: request.to,
        status: CallStatus::Queued,
        start_time: None,
        end_time: None,
        duration: None,
        sip_call_id: None,
        date_created: now,
        date_updated: now,
    };
    Ok((
        StatusCode::CREATED,
        Json(CallResource::from_record(&queued)),
    )
        .into_response())
}
