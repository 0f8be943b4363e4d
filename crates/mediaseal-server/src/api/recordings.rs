//! Voice recordings (api/2010-04-01) and Voice Recording Encryption (seed 000): settings, the
//! ingest door, fetch/list/delete, media, and the fallback and failure rules.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use mediaseal_service::voice::{RecordingSubscription, VoiceRequest, VoiceStart};
use mediaseal_store::model::{Cursor, Recording, RecordingFilter, RecordingSettings, Sealing};
use serde::Serialize;
use serde_json::Value;

use super::{Authed, declared_length, split_sid};
use crate::auth::accessible_account;
use crate::clock::{DAY_US, now_us, parse_date, rfc2822};
use crate::error::{ApiError, ApiResult};
use crate::media;
use crate::paging::{Envelope2010, Page, PageRequest, envelope_2010};
use crate::params::Params;
use crate::state::AppState;

fn account_path(account: &str) -> String {
    format!("/2010-04-01/Accounts/{account}")
}

/// A voice recording as the API shows it (fields in alphabetical order, as clients have always
/// seen them).
#[derive(Debug, Serialize)]
pub(crate) struct RecordingResource {
    account_sid: String,
    api_version: &'static str,
    call_sid: Option<String>,
    channels: i64,
    conference_sid: Option<String>,
    date_created: String,
    date_updated: String,
    /// Seconds, as a string; `"-1"` until known.
    duration: String,
    /// The stored `encryption_details` blob as written when the recording was sealed (null when
    /// it is not sealed with the customer's key).
    encryption_details: Option<Value>,
    error_code: Option<i64>,
    media_url: String,
    price: Option<String>,
    price_unit: &'static str,
    sid: String,
    source: String,
    start_time: String,
    status: String,
    subresource_uris: RecordingSubresources,
    track: Option<String>,
    uri: String,
}

/// `subresource_uris` of a voice recording.
#[derive(Debug, Serialize)]
struct RecordingSubresources {
    add_on_results: String,
    transcriptions: String,
}

impl RecordingResource {
    fn from_record(base_url: &str, r: &Recording) -> Self {
        let path = format!("{}/Recordings/{}", account_path(&r.account_sid), r.sid);
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
                .and_then(|d| serde_json::from_str::<Value>(d).ok()),
            error_code: r.error_code,
            media_url: format!("{base_url}{path}"),
            price: None,
            price_unit: "USD",
            sid: r.sid.clone(),
            source: r.source.clone(),
            start_time: rfc2822(r.start_time),
            status: r.status.clone(),
            subresource_uris: RecordingSubresources {
                add_on_results: format!("{path}/AddOnResults.json"),
                transcriptions: format!("{path}/Transcriptions.json"),
            },
            track: r.track.clone(),
            uri: format!("{path}.json"),
        }
    }
}

// ---- settings ------------------------------------------------------------------------------

/// An account's recording settings as the API shows them; the dates are null until first set.
#[derive(Debug, Serialize)]
pub(crate) struct RecordingSettingsResource {
    account_sid: String,
    date_created: Option<String>,
    date_updated: Option<String>,
    encryption_enabled: bool,
    encryption_public_key_sid: Option<String>,
    uri: String,
}

impl RecordingSettingsResource {
    fn from_record(s: &RecordingSettings) -> Self {
        let date = |us: i64| (us != 0).then(|| rfc2822(us));
        Self {
            account_sid: s.account_sid.clone(),
            date_created: date(s.date_created),
            date_updated: date(s.date_updated),
            encryption_enabled: s.encryption_enabled,
            encryption_public_key_sid: s.encryption_public_key_sid.clone(),
            uri: format!("{}/RecordingSettings.json", account_path(&s.account_sid)),
        }
    }
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
) -> ApiResult<Json<RecordingSettingsResource>> {
    let account = accessible_account(&st, &auth.principal, &account_sid, &auth.path).await?;
    Ok(Json(RecordingSettingsResource::from_record(
        &settings_of(&st, &account.sid).await?,
    )))
}

pub(crate) async fn post_settings(
    State(st): State<AppState>,
    auth: Authed,
    Path(account_sid): Path<String>,
    body: Bytes,
) -> ApiResult<Json<RecordingSettingsResource>> {
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
    Ok(Json(RecordingSettingsResource::from_record(&settings)))
}

// ---- ingest --------------------------------------------------------------------------------

/// Reads and discards a body whose bytes must not be kept.
async fn discard(body: Body) {
    let mut stream = body.into_data_stream();
    while let Some(Ok(_)) = stream.next().await {}
}

/// `POST …/Recordings.json?…` with the audio as the body: parse, then the service's voice
/// recording lifecycle (seed 000), fed from the body as it arrives.
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
    let policy = &st.services.config.webhook_policy;
    let subscription = match crate::params::webhook_url(q, "RecordingStatusCallback", policy)? {
        None => None,
        Some(url) => {
            let method = q.method("RecordingStatusCallbackMethod")?;
            Some(
                RecordingSubscription::new(url, &method, &q.all("RecordingStatusCallbackEvent"))
                    .map_err(|e| ApiError::bad_param("RecordingStatusCallbackEvent", e))?,
            )
        }
    };
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
    let request = VoiceRequest {
        account_sid: account.sid.clone(),
        call_sid,
        conference_sid,
        channels,
        source,
        track,
        duration,
        start_time,
        content_type,
        subscription,
        base_url: auth.base_url.clone(),
        request_url: format!("{}{}", auth.base_url, auth.path),
    };
    // Admission: a body announced over the size limit, or one upload too many for the account,
    // is refused before anything is reserved or a byte of the body is read.
    let mut permit = st
        .services
        .begin_upload(&account.sid, declared_length(&headers))?;
    let mut recorder = match st
        .services
        .start_voice_recording(request)
        .await
        .map_err(ApiError::internal)?
    {
        VoiceStart::Recording(r) => r,
        VoiceStart::Failed(rec) => {
            // Seed 000: the bytes are destroyed (never stored).
            discard(body).await;
            return Ok(created(&auth, &rec));
        }
    };
    // AutoTranscribe keeps the plaintext in memory on its way in (the only way to transcribe a
    // recording sealed with the customer's key).
    let mut tap = super::intelligence::AutoTranscribeTap::for_account(&st, &account.sid).await;
    let mut stream = body.into_data_stream();
    while let Some(frame) = stream.next().await {
        let chunk = match frame {
            Ok(chunk) => chunk,
            Err(e) => {
                recorder.interrupted().await.map_err(ApiError::internal)?;
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    20001,
                    format!("The recording upload was interrupted: {e}"),
                ));
            }
        };
        if let Err(refused) = permit.admit(chunk.len()) {
            // Over the limit while streaming: the reservation and what was sealed so far are
            // abandoned through the ledger; nothing is stored.
            recorder.interrupted().await.map_err(ApiError::internal)?;
            return Err(refused.into());
        }
        if let Some(tap) = tap.as_mut() {
            tap.feed(&chunk);
        }
        if let Err(e) = recorder.write(&chunk).await {
            // A customer-key sealing failure is seed 000's failed recording; a store failure
            // is ours.
            let rec = recorder.failed(e).await.map_err(ApiError::internal)?;
            return Ok(created(&auth, &rec));
        }
    }
    let rec = recorder.finish().await.map_err(ApiError::internal)?;
    super::intelligence::auto_transcribe(&st, &rec, tap).await;
    Ok(created(&auth, &rec))
}

fn created(auth: &Authed, rec: &Recording) -> Response {
    (
        StatusCode::CREATED,
        Json(RecordingResource::from_record(&auth.base_url, rec)),
    )
        .into_response()
}

// ---- fetch, list, delete, media -------------------------------------------------------------

pub(crate) async fn list(
    State(st): State<AppState>,
    auth: Authed,
    Path(account_sid): Path<String>,
) -> ApiResult<Json<Envelope2010<RecordingResource>>> {
    list_inner(st, auth, account_sid, None).await
}

pub(crate) async fn list_for_call(
    State(st): State<AppState>,
    auth: Authed,
    Path((account_sid, call_file)): Path<(String, String)>,
) -> ApiResult<Json<Envelope2010<RecordingResource>>> {
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
) -> ApiResult<Json<Envelope2010<RecordingResource>>> {
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
        |r| RecordingResource::from_record(&base, r),
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
            Ok(Json(RecordingResource::from_record(&auth.base_url, &rec)).into_response())
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
            Some(ffmpeg) => media::serve_at_rest_mp3(st.reader.clone(), key, ffmpeg).await,
            None => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                20415,
                "MP3 is not available: this server has no transcoder (ffmpeg) installed; download the .wav instead",
            )),
        },
        (Sealing::AtRest, _) => {
            media::serve_at_rest(&st.reader, &key, headers, &rec.content_type).await
        }
        (Sealing::None, _) => Err(ApiError::not_found(&auth.path)),
    }
}
