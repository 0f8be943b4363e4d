//! Voice recordings (api/2010-04-01) and Voice Recording Encryption (seed 000): settings, the
//! ingest door, fetch/list/delete, media, and the fallback and failure rules.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use mediaseal_crypto::PublicKey;
use mediaseal_store::model::{
    Callback, Cursor, Notification, PublicKeyRecord, Recording, RecordingFilter, RecordingSettings,
    Sealing,
};
use serde_json::{Value, json};

use super::{Authed, split_sid};
use crate::auth::accessible_account;
use crate::callbacks::new_callback;
use crate::clock::{DAY_US, now_us, parse_date, rfc2822};
use crate::error::{ApiError, ApiResult};
use crate::ingest::{IngestError, SealDetails, SealTo, seal_body, wav_duration};
use crate::media;
use crate::paging::{Page, PageRequest, envelope_2010};
use crate::params::Params;
use crate::sid::new_sid;
use crate::state::AppState;

/// Twilio's error for "the recording could not be encrypted".
pub(crate) const ERROR_ENCRYPTION_FAILED: i64 = 16104;
/// mediaseal's warning code for "the configured key was not found; another key was used".
pub(crate) const WARNING_FALLBACK_KEY: i64 = 16105;
/// Twilio's error for a recording with no audio.
pub(crate) const ERROR_RECORDING_EMPTY: i64 = 16101;

fn account_path(account: &str) -> String {
    format!("/2010-04-01/Accounts/{account}")
}

pub(crate) fn recording_json(base_url: &str, r: &Recording) -> Value {
    let path = format!("{}/Recordings/{}", account_path(&r.account_sid), r.sid);
    let details = r
        .encryption_details
        .as_deref()
        .and_then(|d| serde_json::from_str::<Value>(d).ok());
    json!({
        "account_sid": r.account_sid,
        "api_version": "2010-04-01",
        "call_sid": r.call_sid,
        "conference_sid": r.conference_sid,
        "channels": r.channels,
        "date_created": rfc2822(r.date_created),
        "date_updated": rfc2822(r.date_updated),
        "start_time": rfc2822(r.start_time),
        "price": null,
        "price_unit": "USD",
        "duration": r.duration.map_or_else(|| "-1".to_owned(), |d| d.to_string()),
        "sid": r.sid,
        "source": r.source,
        "status": r.status,
        "error_code": r.error_code,
        "track": r.track,
        "uri": format!("{path}.json"),
        "encryption_details": details,
        "subresource_uris": {
            "add_on_results": format!("{path}/AddOnResults.json"),
            "transcriptions": format!("{path}/Transcriptions.json"),
        },
        "media_url": format!("{base_url}{path}"),
    })
}

// ---- settings ------------------------------------------------------------------------------

fn settings_json(s: &RecordingSettings) -> Value {
    json!({
        "account_sid": s.account_sid,
        "encryption_enabled": s.encryption_enabled,
        "encryption_public_key_sid": s.encryption_public_key_sid,
        "date_created": if s.date_created == 0 { Value::Null } else { json!(rfc2822(s.date_created)) },
        "date_updated": if s.date_updated == 0 { Value::Null } else { json!(rfc2822(s.date_updated)) },
        "uri": format!("{}/RecordingSettings.json", account_path(&s.account_sid)),
    })
}

async fn settings_of(st: &AppState, account_sid: &str) -> ApiResult<RecordingSettings> {
    Ok(st
        .meta
        .recording_settings(account_sid)
        .await?
        .unwrap_or_else(|| RecordingSettings {
            account_sid: account_sid.to_owned(),
            ..Default::default()
        }))
}

pub(crate) async fn get_settings(
    State(st): State<AppState>,
    auth: Authed,
    Path(account_sid): Path<String>,
) -> ApiResult<Json<Value>> {
    let account = accessible_account(&st, &auth.principal, &account_sid, &auth.path).await?;
    Ok(Json(settings_json(&settings_of(&st, &account.sid).await?)))
}

pub(crate) async fn post_settings(
    State(st): State<AppState>,
    auth: Authed,
    Path(account_sid): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let account = accessible_account(&st, &auth.principal, &account_sid, &auth.path).await?;
    let form = Params::from_form(&body);
    let mut settings = settings_of(&st, &account.sid).await?;
    if let Some(enabled) = form.boolean("EncryptionEnabled")? {
        settings.encryption_enabled = enabled;
    }
    if form.has("EncryptionPublicKeySid") {
        match form.get("EncryptionPublicKeySid").filter(|v| !v.is_empty()) {
            None => settings.encryption_public_key_sid = None,
            Some(sid) => {
                let key = form.sid("EncryptionPublicKeySid", "CR")?.unwrap_or(sid);
                match st.meta.public_key(key).await? {
                    Some(k) if k.account_sid == account.sid => {
                        settings.encryption_public_key_sid = Some(k.sid)
                    }
                    _ => {
                        return Err(ApiError::bad_param(
                            "EncryptionPublicKeySid",
                            format!("no public key {key} belongs to account {}", account.sid),
                        ));
                    }
                }
            }
        }
    }
    let now = now_us();
    if settings.date_created == 0 {
        settings.date_created = now;
    }
    settings.date_updated = now;
    st.meta.put_recording_settings(&settings).await?;
    tracing::info!(account = %account.sid, enabled = settings.encryption_enabled, "recording settings changed");
    Ok(Json(settings_json(&settings)))
}

// ---- ingest --------------------------------------------------------------------------------

/// The key a new recording is sealed with, by the rules of seed 000.
enum KeyChoice {
    /// The configured key.
    Configured(PublicKeyRecord, PublicKey),
    /// The configured key is gone (or none is configured): the most recently added key is used.
    Fallback {
        configured: Option<String>,
        used: PublicKeyRecord,
        key: PublicKey,
    },
    /// No usable key at all.
    Missing { configured: Option<String> },
}

fn parse_stored_key(record: &PublicKeyRecord) -> Option<PublicKey> {
    let der: Vec<u8> = (0..record.spki_der_hex.len())
        .step_by(2)
        .map(|i| {
            record
                .spki_der_hex
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<_>>()?;
    PublicKey::from_der(&der).ok()
}

async fn choose_key(st: &AppState, settings: &RecordingSettings) -> ApiResult<KeyChoice> {
    let configured = settings.encryption_public_key_sid.clone();
    if let Some(sid) = &configured
        && let Some(record) = st.meta.public_key(sid).await?
        && record.account_sid == settings.account_sid
        && let Some(key) = parse_stored_key(&record)
    {
        return Ok(KeyChoice::Configured(record, key));
    }
    let latest = st.meta.latest_public_key(&settings.account_sid).await?;
    Ok(
        match latest.and_then(|r| parse_stored_key(&r).map(|k| (r, k))) {
            Some((used, key)) => KeyChoice::Fallback {
                configured,
                used,
                key,
            },
            None => KeyChoice::Missing { configured },
        },
    )
}

/// Callback subscription of one ingest.
struct Subscription {
    url: String,
    method: String,
    events: Vec<String>,
}

impl Subscription {
    fn from_params(q: &Params) -> ApiResult<Option<Self>> {
        let Some(url) = q.url("RecordingStatusCallback")? else {
            return Ok(None);
        };
        let method = q.method("RecordingStatusCallbackMethod")?;
        let mut events = Vec::new();
        for raw in q.all("RecordingStatusCallbackEvent") {
            // TwiML spells the list space-separated; the REST API repeats the key. Accept both.
            for e in raw.split([' ', ',']).filter(|e| !e.is_empty()) {
                match e {
                    "in-progress" | "completed" | "absent" | "failed" => events.push(e.to_owned()),
                    other => {
                        return Err(ApiError::bad_param(
                            "RecordingStatusCallbackEvent",
                            format!("'{other}' is not in-progress, completed, absent or failed"),
                        ));
                    }
                }
            }
        }
        if events.is_empty() {
            events.push("completed".to_owned());
        }
        Ok(Some(Self {
            url: url.to_owned(),
            method,
            events,
        }))
    }

    fn callback_for(&self, base_url: &str, r: &Recording) -> Option<Callback> {
        if !self.events.contains(&r.status) {
            return None;
        }
        let path = format!("{}/Recordings/{}", account_path(&r.account_sid), r.sid);
        let mut params = vec![
            ("AccountSid".to_owned(), r.account_sid.clone()),
            ("CallSid".to_owned(), r.call_sid.clone().unwrap_or_default()),
            ("RecordingSid".to_owned(), r.sid.clone()),
            ("RecordingUrl".to_owned(), format!("{base_url}{path}")),
            ("RecordingStatus".to_owned(), r.status.clone()),
            (
                "RecordingDuration".to_owned(),
                r.duration.unwrap_or(0).to_string(),
            ),
            ("RecordingChannels".to_owned(), r.channels.to_string()),
            ("RecordingStartTime".to_owned(), rfc2822(r.start_time)),
            ("RecordingSource".to_owned(), r.source.clone()),
            (
                "ErrorCode".to_owned(),
                r.error_code.unwrap_or(0).to_string(),
            ),
        ];
        if let Some(track) = &r.track {
            params.push(("RecordingTrack".to_owned(), track.clone()));
        }
        if let Some(conf) = &r.conference_sid {
            params.push(("ConferenceSid".to_owned(), conf.clone()));
        }
        // Seed 000: EncryptionDetails travels with completed callbacks, never with failed ones.
        if let Some(details) = &r.encryption_details
            && r.status == "completed"
        {
            params.push(("EncryptionDetails".to_owned(), details.clone()));
        }
        Some(new_callback(
            &r.account_sid,
            &r.sid,
            &self.url,
            &self.method,
            &params,
        ))
    }
}

fn notification(
    account: &str,
    resource: &Recording,
    code: i64,
    level: i64,
    text: String,
    req: &str,
) -> Notification {
    Notification {
        sid: new_sid("NO"),
        account_sid: account.to_owned(),
        call_sid: resource.call_sid.clone(),
        resource_sid: Some(resource.sid.clone()),
        error_code: code,
        log_level: level,
        message_text: text,
        more_info: format!("https://www.twilio.com/docs/errors/{code}"),
        request_method: Some("POST".to_owned()),
        request_url: Some(req.to_owned()),
        date_created: now_us(),
    }
}

/// Reads and discards a body whose bytes must not be kept.
async fn discard(body: Body) {
    let mut stream = body.into_data_stream();
    while let Some(Ok(_)) = stream.next().await {}
}

pub(crate) async fn ingest(
    State(st): State<AppState>,
    auth: Authed,
    Path(account_sid): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let account = accessible_account(&st, &auth.principal, &account_sid, &auth.path).await?;
    let q = &auth.query;
    // Every parameter is checked before a byte of the body is read.
    let subscription = Subscription::from_params(q)?;
    let call_sid = q.sid("CallSid", "CA")?.map(str::to_owned);
    let conference_sid = q.sid("ConferenceSid", "CF")?.map(str::to_owned);
    let channels = q.int_in("Channels", 1..=2)?.unwrap_or(1);
    let duration = q.int_in("Duration", 0..=86_400 * 7)?;
    let source = match q.get("Source") {
        None => "StartCallRecordingAPI".to_owned(),
        Some(s)
            if !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            s.to_owned()
        }
        Some(s) => {
            return Err(ApiError::bad_param(
                "Source",
                format!("'{s}' is not a recording source name"),
            ));
        }
    };
    let track = match q.get("Track") {
        None => None,
        Some(t @ ("inbound" | "outbound" | "both")) => Some(t.to_owned()),
        Some(t) => {
            return Err(ApiError::bad_param(
                "Track",
                format!("'{t}' is not inbound, outbound or both"),
            ));
        }
    };
    let start_time = match q.get("StartTime") {
        None => None,
        Some(t) => Some(
            parse_date(t)
                .ok_or_else(|| ApiError::bad_param("StartTime", "not a date"))?
                .0,
        ),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with("audio/") || *v == "application/octet-stream")
        .map_or("audio/x-wav", |v| {
            if v == "application/octet-stream" {
                "audio/x-wav"
            } else {
                v
            }
        })
        .to_owned();

    let now = now_us();
    let sid = new_sid("RE");
    let object_key = format!("{}/{}", account.sid, sid);
    let mut rec = Recording {
        sid: sid.clone(),
        account_sid: account.sid.clone(),
        call_sid,
        conference_sid,
        channels,
        source,
        track,
        duration,
        status: "processing".to_owned(),
        error_code: None,
        start_time: start_time.unwrap_or(now),
        date_created: now,
        date_updated: now,
        encryption_details: None,
        sealing: Sealing::None,
        object_key: Some(object_key.clone()),
        sealed_size: 0,
        plain_size: 0,
        content_type,
        visible: false,
        deleted: false,
        date_deleted: None,
    };
    let request_url = format!("{}{}", auth.base_url, auth.path);
    let settings = settings_of(&st, &account.sid).await?;
    let mut notifications = Vec::new();

    let (customer_key, customer_sid) = if settings.encryption_enabled {
        match choose_key(&st, &settings).await? {
            KeyChoice::Configured(record, key) => (Some(key), Some(record.sid)),
            KeyChoice::Fallback {
                configured,
                used,
                key,
            } => {
                let text = match &configured {
                    Some(c) => format!(
                        "Voice Recording Encryption: the configured public key {c} could not be found; \
                         the account's most recently added public key {} was used for recording {sid}",
                        used.sid
                    ),
                    None => format!(
                        "Voice Recording Encryption: no public key is configured; the account's most recently \
                         added public key {} was used for recording {sid}",
                        used.sid
                    ),
                };
                notifications.push(notification(
                    &account.sid,
                    &rec,
                    WARNING_FALLBACK_KEY,
                    1,
                    text,
                    &request_url,
                ));
                (Some(key), Some(used.sid))
            }
            KeyChoice::Missing { configured } => {
                // Seed 000: the bytes are destroyed (never stored), the recording fails with
                // 16104, no encryption details, a failed callback if subscribed, a notification.
                discard(body).await;
                let reason = match configured {
                    Some(c) => format!(
                        "the configured public key {c} could not be found and the account has no other public key"
                    ),
                    None => "the account has no public key".to_owned(),
                };
                return finish_failed(
                    &st,
                    &auth,
                    rec,
                    subscription.as_ref(),
                    notifications,
                    reason,
                    &request_url,
                )
                .await;
            }
        }
    } else {
        (None, None)
    };

    st.meta.reserve_recording(&rec).await?;
    let to = match (&customer_key, &customer_sid) {
        (Some(key), Some(sid)) => SealTo::CustomerRsaAes { key, sid },
        _ => SealTo::AtRest(st.at_rest.public_key()),
    };
    let sealed = match seal_body(st.objects.as_ref(), &object_key, body, to).await {
        Ok(s) => s,
        Err(IngestError::Seal(e)) if customer_key.is_some() => {
            tracing::error!(recording = %rec.sid, error = %e, "sealing with the customer key failed");
            rec.object_key = None;
            return finish_failed(
                &st,
                &auth,
                rec,
                subscription.as_ref(),
                notifications,
                format!("sealing failed ({e})"),
                &request_url,
            )
            .await;
        }
        Err(IngestError::Body(e)) => {
            st.meta.drop_reservation(&rec.sid).await?;
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                20001,
                format!("The recording upload was interrupted: {e}"),
            ));
        }
        Err(e) => {
            st.meta.drop_reservation(&rec.sid).await?;
            return Err(ApiError::internal(e));
        }
    };

    rec.plain_size = sealed.plain_size as i64;
    rec.sealed_size = sealed.sealed_size as i64;
    rec.date_updated = now_us();
    if rec.duration.is_none() {
        rec.duration = wav_duration(&sealed.head, sealed.plain_size);
    }
    if sealed.plain_size == 0 {
        // Nothing was recorded: Twilio calls this "absent".
        st.objects.delete(&object_key).await?;
        rec.object_key = None;
        rec.status = "absent".to_owned();
        rec.error_code = Some(ERROR_RECORDING_EMPTY);
        rec.sealing = Sealing::None;
    } else {
        rec.status = "completed".to_owned();
        match sealed.details {
            SealDetails::RsaAes(details) => {
                rec.sealing = Sealing::Customer;
                rec.encryption_details = Some(details.to_json());
            }
            _ => rec.sealing = Sealing::AtRest,
        }
    }
    rec.visible = true;
    let callbacks: Vec<Callback> = subscription
        .iter()
        .filter_map(|s| s.callback_for(&auth.base_url, &rec))
        .collect();
    if let Err(e) = st
        .meta
        .publish_recording(&rec, &callbacks, &notifications)
        .await
    {
        // The row stays invisible; the sweeper removes it and its object.
        return Err(ApiError::internal(e));
    }
    metrics::counter!("mediaseal_recordings_ingested_total", "sealing" => rec.sealing.as_str())
        .increment(1);
    metrics::counter!("mediaseal_bytes_sealed_total").increment(sealed.plain_size);
    tracing::info!(recording = %rec.sid, account = %rec.account_sid, sealing = rec.sealing.as_str(), bytes = sealed.plain_size, "recording stored");
    Ok((
        StatusCode::CREATED,
        Json(recording_json(&auth.base_url, &rec)),
    )
        .into_response())
}

async fn finish_failed(
    st: &AppState,
    auth: &Authed,
    mut rec: Recording,
    subscription: Option<&Subscription>,
    mut notifications: Vec<Notification>,
    reason: String,
    request_url: &str,
) -> ApiResult<Response> {
    if let Some(key) = rec.object_key.take() {
        st.objects.delete(&key).await?;
    }
    rec.status = "failed".to_owned();
    rec.error_code = Some(ERROR_ENCRYPTION_FAILED);
    rec.encryption_details = None;
    rec.sealing = Sealing::None;
    rec.visible = true;
    rec.date_updated = now_us();
    let text = format!(
        "Voice Recording Encryption failed for recording {}: {reason}; the recording was deleted",
        rec.sid
    );
    notifications.push(notification(
        &rec.account_sid.clone(),
        &rec,
        ERROR_ENCRYPTION_FAILED,
        0,
        text,
        request_url,
    ));
    let callbacks: Vec<Callback> = subscription
        .iter()
        .filter_map(|s| s.callback_for(&auth.base_url, &rec))
        .collect();
    st.meta
        .publish_recording(&rec, &callbacks, &notifications)
        .await?;
    metrics::counter!("mediaseal_recordings_failed_total").increment(1);
    tracing::warn!(recording = %rec.sid, account = %rec.account_sid, "recording failed: no usable public key");
    Ok((
        StatusCode::CREATED,
        Json(recording_json(&auth.base_url, &rec)),
    )
        .into_response())
}

// ---- fetch, list, delete, media -------------------------------------------------------------

pub(crate) async fn list(
    State(st): State<AppState>,
    auth: Authed,
    Path(account_sid): Path<String>,
) -> ApiResult<Json<Value>> {
    list_inner(st, auth, account_sid, None).await
}

pub(crate) async fn list_for_call(
    State(st): State<AppState>,
    auth: Authed,
    Path((account_sid, call_file)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    if !crate::sid::is_sid(&call_file, "CA") {
        return Err(ApiError::not_found(&auth.path));
    }
    list_inner(st, auth, account_sid, Some(call_file)).await
}

async fn list_inner(
    st: AppState,
    auth: Authed,
    account_sid: String,
    call: Option<String>,
) -> ApiResult<Json<Value>> {
    let account = accessible_account(&st, &auth.principal, &account_sid, &auth.path).await?;
    let q = &auth.query;
    let req = PageRequest::from_params(q, 1000)?;
    let mut filter = RecordingFilter {
        call_sid: call.or(q.sid("CallSid", "CA")?.map(str::to_owned)),
        conference_sid: q.sid("ConferenceSid", "CF")?.map(str::to_owned),
        include_deleted: q.boolean("IncludeSoftDeleted")?.unwrap_or(false),
        ..Default::default()
    };
    let date = |name: &str| -> ApiResult<Option<(i64, bool)>> {
        match q.get(name) {
            None => Ok(None),
            Some(v) => parse_date(v).map(Some).ok_or_else(|| {
                ApiError::bad_param(name, format!("'{v}' is not a date (YYYY-MM-DD)"))
            }),
        }
    };
    if let Some((t, day)) = date("DateCreated")? {
        filter.created_from = Some(t);
        filter.created_before = Some(if day { t + DAY_US } else { t + 1_000_000 });
    }
    if let Some((t, day)) = date("DateCreated<")? {
        filter.created_before = Some(if day { t + DAY_US } else { t + 1 });
    }
    if let Some((t, _)) = date("DateCreated>")? {
        filter.created_from = Some(t);
    }
    let rows = st
        .meta
        .list_recordings(
            &account.sid,
            &filter,
            req.cursor.as_ref(),
            req.fetch_limit(),
        )
        .await?;
    let page = Page::cut(rows, &req, |r| Cursor {
        date_created: r.date_created,
        sid: r.sid.clone(),
    });
    let path = auth.path.clone();
    let base = auth.base_url.clone();
    Ok(Json(envelope_2010(
        "recordings",
        &path,
        &page,
        &req,
        q,
        &[
            "CallSid",
            "ConferenceSid",
            "DateCreated",
            "DateCreated<",
            "DateCreated>",
            "IncludeSoftDeleted",
        ],
        |r| recording_json(&base, r),
    )))
}

/// `GET|HEAD|DELETE …/Recordings/{RE}[.json|.wav|.mp3]`.
pub(crate) async fn instance(
    State(st): State<AppState>,
    auth: Authed,
    method: Method,
    headers: HeaderMap,
    Path((account_sid, file)): Path<(String, String)>,
) -> ApiResult<Response> {
    let account = accessible_account(&st, &auth.principal, &account_sid, &auth.path).await?;
    let (sid, ext) = split_sid(&file, "RE", &auth.path)?;
    match (method.clone(), ext) {
        (Method::GET | Method::HEAD, "json") => {
            let include_deleted = auth.query.boolean("IncludeSoftDeleted")?.unwrap_or(false);
            let rec = st
                .meta
                .recording(&account.sid, sid, include_deleted)
                .await?
                .ok_or_else(|| ApiError::not_found(&auth.path))?;
            Ok(Json(recording_json(&auth.base_url, &rec)).into_response())
        }
        (Method::DELETE, "json") => {
            let before = st
                .meta
                .delete_recording(&account.sid, sid, now_us())
                .await?
                .ok_or_else(|| ApiError::not_found(&auth.path))?;
            if let Some(key) = before.object_key {
                // The row no longer points at the object; if this fails, the orphan sweeper
                // finishes the job.
                if let Err(e) = st.objects.delete(&key).await {
                    tracing::warn!(recording = %sid, error = %e, "object deletion deferred to the sweeper");
                }
            }
            tracing::info!(recording = %sid, account = %account.sid, "recording deleted");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (Method::GET | Method::HEAD, "" | "wav" | "mp3") => {
            media(&st, &auth, &headers, &account.sid, sid, ext).await
        }
        (_, "json" | "" | "wav" | "mp3") => Err(ApiError::method_not_allowed()),
        _ => Err(ApiError::not_found(&auth.path)),
    }
}

async fn media(
    st: &AppState,
    auth: &Authed,
    headers: &HeaderMap,
    account: &str,
    sid: &str,
    ext: &str,
) -> ApiResult<Response> {
    let rec = st
        .meta
        .recording(account, sid, false)
        .await?
        .ok_or_else(|| ApiError::not_found(&auth.path))?;
    let Some(key) = rec.object_key.clone().filter(|_| rec.status == "completed") else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            20404,
            format!("Recording {sid} has no media (status {})", rec.status),
        ));
    };
    match (rec.sealing, ext) {
        (Sealing::Customer, "mp3") => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            20415,
            format!(
                "Recording {sid} is encrypted with your public key, so the server cannot transcode it; \
                 download {}/Recordings/{sid}.wav and decrypt it with your private key",
                account_path(account)
            ),
        )),
        (Sealing::Customer, _) => {
            let extra = [("x-mediaseal-encryption".to_owned(), "rsa-aes".to_owned())];
            media::serve_stored(
                st.objects.as_ref(),
                &key,
                headers,
                "application/octet-stream",
                &extra,
            )
            .await
        }
        (Sealing::AtRest, "mp3") => match st.config.ffmpeg.clone() {
            Some(ffmpeg) => {
                media::serve_at_rest_mp3(st.objects.clone(), key, st.at_rest.clone(), ffmpeg).await
            }
            None => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                20415,
                "MP3 is not available: this server has no transcoder (ffmpeg) installed; download the .wav instead",
            )),
        },
        (Sealing::AtRest, _) => {
            media::serve_at_rest(
                st.objects.clone(),
                key,
                st.at_rest.clone(),
                headers,
                &rec.content_type,
            )
            .await
        }
        (Sealing::None, _) => Err(ApiError::not_found(&auth.path)),
    }
}
