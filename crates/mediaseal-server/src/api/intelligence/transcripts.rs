//! Transcripts (`GT…`) of voice recordings, their sentences, and the encrypted sentences.
//!
//! Only recordings sealed at rest can be transcribed on request: the server opens them in
//! memory. A recording sealed with the customer's key is refused with 422, since nobody but the
//! customer can open it (the tap at ingest is the way to transcribe those, later).
//!
//! With the service's `EncryptionCredentialSid`, the sentences are sealed with that key in the
//! seed's `s3-gcm` format: plain `/Sentences` is refused and `/Sentences/Encrypted` answers a
//! signed URL of the sealed bytes with their `x-amz-meta-x-amz-key`/`-iv` headers. Without a key
//! they are sealed at rest and `/Sentences` serves them, decrypted in memory.
//!
//! A `media_url` source is fetched by the job through the webhook egress policy (see
//! `media_url`). `/Media` hands out a signed URL of the redacted audio (`MediaRedaction`) or of
//! the original.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mediaseal_intelligence::ChannelSpec;
use mediaseal_intelligence::sentences::{SentencesDoc, Word};
use mediaseal_intelligence::transcripts::{AudioSource, MAX_AUDIO_BYTES, TranscriptRequest};
use mediaseal_store::model::intelligence::{Transcript, TranscriptFilter, TranscriptStatus};
use mediaseal_store::model::{Cursor, Sealing};
use serde::Serialize;

use super::media_url::UrlSource;
use super::{AtRestSource, MAX_PAGE};
use crate::api::Authed;
use crate::clock::{iso8601, now_us, parse_date};
use crate::error::{ApiError, ApiResult};
use crate::paging::{EnvelopeV1, Page, PageRequest, envelope_v1};
use crate::params::Params;
use crate::sid::is_sid;
use crate::signed_url::{ServeMode, sign};
use crate::state::AppState;

/// Largest page of sentences.
const MAX_SENTENCE_PAGE: i64 = 5000;
/// Lifetime of an encrypted-sentences URL, seconds.
const LOCATION_TTL: u64 = 3600;

/// `links` of a transcript (absolute URLs).
#[derive(Debug, Serialize)]
struct TranscriptLinks {
    encrypted_operator_results: String,
    encrypted_sentences: String,
    media: String,
    operator_results: String,
    sentences: String,
}

/// A transcript as the API shows it (fields in alphabetical order).
#[derive(Debug, Serialize)]
pub(crate) struct TranscriptResource {
    account_sid: String,
    channel: Option<ChannelSpec>,
    customer_key: Option<String>,
    data_logging: bool,
    date_created: String,
    date_updated: String,
    duration: Option<i64>,
    encryption_credential_sid: Option<String>,
    /// Why a `failed` transcript failed (a mediaseal addition; never transcript text).
    error_message: Option<String>,
    language_code: String,
    links: TranscriptLinks,
    media_start_time: Option<String>,
    redaction: bool,
    service_sid: String,
    sid: String,
    status: String,
    url: String,
}

impl TranscriptResource {
    fn from_record(base: &str, t: &Transcript) -> Self {
        let url = format!("{base}/v2/Transcripts/{}", t.sid);
        Self {
            account_sid: t.account_sid.clone(),
            channel: ChannelSpec::parse(&t.channel).ok(),
            customer_key: t.customer_key.clone(),
            data_logging: t.data_logging,
            date_created: iso8601(t.date_created),
            date_updated: iso8601(t.date_updated),
            duration: t.duration,
            encryption_credential_sid: t.encryption_credential_sid.clone(),
            error_message: t.error_message.clone(),
            language_code: t.language_code.clone(),
            links: TranscriptLinks {
                encrypted_operator_results: format!("{url}/OperatorResults/Encrypted"),
                encrypted_sentences: format!("{url}/Sentences/Encrypted"),
                media: format!("{url}/Media"),
                operator_results: format!("{url}/OperatorResults"),
                sentences: format!("{url}/Sentences"),
            },
            media_start_time: t.media_start_time.map(iso8601),
            redaction: t.redaction,
            service_sid: t.service_sid.clone(),
            sid: t.sid.clone(),
            status: t.status.clone(),
            url,
        }
    }
}

fn cannot_transcribe(message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, 20422, message)
}

pub(crate) async fn create(
    State(st): State<AppState>,
    auth: Authed,
    body: Bytes,
) -> ApiResult<Response> {
    let form = Params::from_form(&body);
    let account = auth.principal.sid().to_owned();
    let service_sid = form.required("ServiceSid")?;
    let service = if is_sid(service_sid, "GA") {
        st.meta.intelligence_service(&account, service_sid).await?
    } else {
        None
    }
    .ok_or_else(|| {
        ApiError::bad_param(
            "ServiceSid",
            format!("service {service_sid} does not exist in this account"),
        )
    })?;
    let channel = ChannelSpec::parse(form.required("Channel")?)
        .map_err(|e| ApiError::bad_param("Channel", e))?;
    let customer_key = match form.get("CustomerKey") {
        Some(k) if k.chars().count() > 64 || k.chars().any(char::is_control) => {
            return Err(ApiError::bad_param(
                "CustomerKey",
                "at most 64 characters without control characters",
            ));
        }
        other => other.map(str::to_owned),
    };
    let media_start_time = match form.get("MediaStartTime") {
        None | Some("") => None,
        Some(v) => Some(parse_date(v).map(|(t, _)| t).ok_or_else(|| {
            ApiError::bad_param(
                "MediaStartTime",
                format!("'{v}' is not a date (YYYY-MM-DDTHH:MM:SSZ)"),
            )
        })?),
    };

    let (audio_key, source): (String, Arc<dyn AudioSource>) = match channel.media_url() {
        Some(url) => {
            let fetcher = UrlSource::new(st.services.config.webhook_policy.clone());
            fetcher
                .check(url)
                .map_err(|e| ApiError::bad_param("Channel", e))?;
            (url.to_owned(), Arc::new(fetcher))
        }
        None => (
            recording_audio(&st, &account, channel.source_sid().unwrap_or_default()).await?,
            Arc::new(AtRestSource(st.reader.clone())),
        ),
    };
    let seal = match st.intelligence.transcript_seal(&service).await? {
        Ok(seal) => seal,
        Err(refusal) => {
            return Err(cannot_transcribe(format!(
                "{refusal}; set the service's EncryptionCredentialSid to an existing public key, or clear it"
            )));
        }
    };
    let request = TranscriptRequest {
        account_sid: account,
        service: service.clone(),
        channel,
        customer_key,
        media_start_time,
    };
    let transcript = st.intelligence.create_transcript(request, &seal).await?;
    // The job runs on after this answer; its end is visible in the status and the webhook.
    drop(
        st.intelligence
            .start(transcript.clone(), service, seal, audio_key, source),
    );
    Ok((
        StatusCode::CREATED,
        Json(TranscriptResource::from_record(&auth.base_url, &transcript)),
    )
        .into_response())
}

/// The object key of recording `source_sid` of `account`, if the server can read it to
/// transcribe it.
async fn recording_audio(st: &AppState, account: &str, source_sid: &str) -> ApiResult<String> {
    let recording = st
        .meta
        .recording(account, source_sid, false)
        .await?
        .ok_or_else(|| {
            ApiError::bad_param(
                "Channel",
                format!("recording {source_sid} does not exist in this account"),
            )
        })?;
    let audio_key = match (recording.sealing, recording.object_key.clone()) {
        (Sealing::Customer, _) => {
            return Err(cannot_transcribe(format!(
                "Recording {source_sid} is encrypted with your public key, so the server cannot read its audio to \
                 transcribe it; transcribe recordings that are stored without customer encryption"
            )));
        }
        (Sealing::AtRest, Some(key)) if recording.status == "completed" => key,
        _ => {
            return Err(cannot_transcribe(format!(
                "Recording {source_sid} has no audio to transcribe (status {})",
                recording.status
            )));
        }
    };
    if u64::try_from(recording.plain_size).unwrap_or(u64::MAX) > MAX_AUDIO_BYTES {
        return Err(cannot_transcribe(format!(
            "Recording {source_sid} is larger than the {MAX_AUDIO_BYTES} bytes a transcript can be made of"
        )));
    }
    Ok(audio_key)
}

fn date_param(q: &Params, name: &str) -> ApiResult<Option<i64>> {
    match q.get(name) {
        None | Some("") => Ok(None),
        Some(v) => parse_date(v).map(|(t, _)| Some(t)).ok_or_else(|| {
            ApiError::bad_param(name, format!("'{v}' is not a date (YYYY-MM-DDTHH:MM:SSZ)"))
        }),
    }
}

pub(crate) async fn list(
    State(st): State<AppState>,
    auth: Authed,
) -> ApiResult<Json<EnvelopeV1<TranscriptResource>>> {
    let q = &auth.query;
    let req = PageRequest::from_params(q, MAX_PAGE)?;
    let status = match q.get("Status") {
        None | Some("") => None,
        Some(s) => match s.parse::<TranscriptStatus>() {
            Ok(s) => Some(s.as_str().to_owned()),
            Err(e) => return Err(ApiError::bad_param("Status", e)),
        },
    };
    let nonempty = |name: &str| q.get(name).filter(|v| !v.is_empty()).map(str::to_owned);
    let filter = TranscriptFilter {
        service_sid: nonempty("ServiceSid"),
        status,
        source_sid: nonempty("SourceSid"),
        created_after: date_param(q, "AfterDateCreated")?,
        created_before: date_param(q, "BeforeDateCreated")?,
    };
    let rows = st
        .meta
        .list_transcripts(
            auth.principal.sid(),
            &filter,
            req.cursor.as_ref(),
            req.fetch_limit(),
        )
        .await?;
    let page = Page::cut(rows, &req, |t| Cursor {
        date_created: t.date_created,
        sid: t.sid.clone(),
    });
    let base = auth.base_url.clone();
    let keep = [
        "ServiceSid",
        "Status",
        "SourceSid",
        "AfterDateCreated",
        "BeforeDateCreated",
    ];
    Ok(Json(envelope_v1(
        "transcripts",
        &base,
        "/v2/Transcripts",
        &page,
        &req,
        q,
        &keep,
        |t| TranscriptResource::from_record(&base, t),
    )))
}

pub(super) async fn find(
    st: &AppState,
    account: &str,
    sid: &str,
    path: &str,
) -> ApiResult<Transcript> {
    if !is_sid(sid, "GT") {
        return Err(ApiError::not_found(path));
    }
    st.meta
        .transcript(account, sid)
        .await?
        .ok_or_else(|| ApiError::not_found(path))
}

pub(crate) async fn fetch(
    State(st): State<AppState>,
    auth: Authed,
    Path(sid): Path<String>,
) -> ApiResult<Json<TranscriptResource>> {
    let t = find(&st, auth.principal.sid(), &sid, &auth.path).await?;
    Ok(Json(TranscriptResource::from_record(&auth.base_url, &t)))
}

pub(crate) async fn delete(
    State(st): State<AppState>,
    auth: Authed,
    Path(sid): Path<String>,
) -> ApiResult<StatusCode> {
    find(&st, auth.principal.sid(), &sid, &auth.path).await?;
    let before = st
        .meta
        .delete_transcript(auth.principal.sid(), &sid, now_us())
        .await?
        .ok_or_else(|| ApiError::not_found(&auth.path))?;
    for key in [
        before.object_key,
        before.log_object_key,
        before.redacted_object_key,
        before.redacted_media_key,
    ]
    .into_iter()
    .flatten()
    {
        if let Err(e) = st.objects.delete(&key).await {
            // The row no longer points at it: the orphan sweeper finishes the job.
            tracing::warn!(transcript = %sid, error = %e, "sentences deletion deferred to the sweeper");
        }
    }
    st.intelligence
        .purge_operator_results(auth.principal.sid(), &sid)
        .await;
    tracing::info!(transcript = %sid, account = %auth.principal.sid(), "transcript deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// The object `Redacted` asks for: the redacted view by default when the service redacts
/// (`Redacted=false` for the full one); a transcript without redaction has only the full one.
fn sentences_key<'t>(t: &'t Transcript, q: &Params) -> ApiResult<Option<&'t String>> {
    let redacted = q.boolean("Redacted")?.unwrap_or(t.redaction);
    Ok(match (&t.redacted_object_key, redacted) {
        (Some(key), true) => Some(key),
        _ => t.object_key.as_ref(),
    })
}

/// A sentence as `/Sentences` shows it: `words` only when `WordTimestamps=true`.
#[derive(Debug, Serialize)]
pub(crate) struct SentenceResource<'a> {
    confidence: Option<&'a str>,
    end_time: Option<&'a str>,
    media_channel: u32,
    sentence_index: u64,
    sid: &'a str,
    start_time: Option<&'a str>,
    transcript: &'a str,
    words: Option<&'a [Word]>,
}

fn customer_sealed(t: &Transcript) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        20403,
        format!(
            "Transcript {} is encrypted with your public key {}; fetch /v2/Transcripts/{}/Sentences/Encrypted and \
             decrypt the download with your private key",
            t.sid,
            t.encryption_credential_sid
                .as_deref()
                .unwrap_or("(deleted)"),
            t.sid
        ),
    )
}

/// `GET /v2/Transcripts/{GT}/Sentences`: the at-rest sentences, opened in memory, paged in
/// sentence order.
pub(crate) async fn sentences(
    State(st): State<AppState>,
    auth: Authed,
    Path(sid): Path<String>,
) -> ApiResult<Response> {
    let t = find(&st, auth.principal.sid(), &sid, &auth.path).await?;
    if t.sealing == Sealing::Customer || t.encryption_credential_sid.is_some() {
        return Err(customer_sealed(&t));
    }
    let q = &auth.query;
    let req = PageRequest::from_params(q, MAX_SENTENCE_PAGE)?;
    let word_timestamps = q.boolean("WordTimestamps")?.unwrap_or(false);
    let doc = match (sentences_key(&t, q)?, t.sealing) {
        (Some(key), Sealing::AtRest) => {
            let plain = AtRestSource(st.reader.clone())
                .read_sentences(key)
                .await
                .map_err(ApiError::internal)?;
            SentencesDoc::parse(&plain).map_err(ApiError::internal)?
        }
        // Not completed (yet): no sentences.
        _ => SentencesDoc::default(),
    };
    let after = req.cursor.as_ref().map(|c| c.date_created);
    let rows: Vec<_> = doc
        .sentences
        .iter()
        .filter(|s| after.is_none_or(|a| i64::try_from(s.sentence_index).unwrap_or(i64::MAX) > a))
        .take(usize::try_from(req.fetch_limit()).unwrap_or(usize::MAX))
        .collect();
    let page = Page::cut(rows, &req, |s| Cursor {
        date_created: i64::try_from(s.sentence_index).unwrap_or(i64::MAX),
        sid: s.sid.clone(),
    });
    let path = format!("/v2/Transcripts/{sid}/Sentences");
    let envelope = envelope_v1(
        "sentences",
        &auth.base_url,
        &path,
        &page,
        &req,
        q,
        &["Redacted", "WordTimestamps"],
        |s| SentenceResource {
            confidence: s.confidence.as_deref(),
            end_time: s.end_time.as_deref(),
            media_channel: s.media_channel,
            sentence_index: s.sentence_index,
            sid: &s.sid,
            start_time: s.start_time.as_deref(),
            transcript: &s.transcript,
            words: word_timestamps.then_some(s.words.as_slice()),
        },
    );
    Ok(Json(envelope).into_response())
}

impl AtRestSource {
    async fn read_sentences(&self, key: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
        use mediaseal_intelligence::transcripts::AudioSource as _;
        self.read_all(key, MAX_AUDIO_BYTES).await
    }
}

/// `{location, transcript_sid, url}` (fields in alphabetical order).
#[derive(Debug, Serialize)]
pub(crate) struct EncryptedSentences {
    location: String,
    transcript_sid: String,
    url: String,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `GET /v2/Transcripts/{GT}/Sentences/Encrypted`: where to download the sentences sealed with
/// the customer's key; the download carries the key material as `x-amz-meta-*` headers.
pub(crate) async fn encrypted_sentences(
    State(st): State<AppState>,
    auth: Authed,
    Path(sid): Path<String>,
) -> ApiResult<Json<EncryptedSentences>> {
    let t = find(&st, auth.principal.sid(), &sid, &auth.path).await?;
    if t.encryption_credential_sid.is_none() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            20001,
            format!(
                "Transcript {sid} is not encrypted with your public key (its service has no EncryptionCredentialSid); \
                 read /v2/Transcripts/{sid}/Sentences instead"
            ),
        ));
    }
    let key = match (sentences_key(&t, &auth.query)?, t.sealing) {
        (Some(key), Sealing::Customer) => key.clone(),
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                20404,
                format!("Transcript {sid} has no sentences (status {})", t.status),
            ));
        }
    };
    let location = location_of(&st, &auth.base_url, &key).await?;
    Ok(Json(EncryptedSentences {
        location,
        transcript_sid: t.sid.clone(),
        url: format!(
            "{}/v2/Transcripts/{}/Sentences/Encrypted",
            auth.base_url, t.sid
        ),
    }))
}

/// A signed URL of the sealed object `key`: the object store's own when media is served from
/// it, else this server's download, which carries the key material as `x-amz-meta-*` headers.
pub(super) async fn location_of(st: &AppState, base_url: &str, key: &str) -> ApiResult<String> {
    let presigned = if st.config.media_from_store {
        st.objects
            .presign_get(key, Duration::from_secs(LOCATION_TTL))
            .await?
    } else {
        None
    };
    Ok(match presigned {
        Some(url) => url,
        None => {
            let token = sign(
                &st.config.url_signing_key,
                key,
                ServeMode::Sealed,
                "application/octet-stream",
                unix_now() + LOCATION_TTL,
            );
            format!("{base_url}/v1/MediaDownload/{token}")
        }
    })
}

/// `GET /v2/Transcripts/{GT}/Media` (fields in alphabetical order).
#[derive(Debug, Serialize)]
pub(crate) struct TranscriptMedia {
    account_sid: String,
    media_url: String,
    service_sid: String,
    sid: String,
    url: String,
}

/// `GET /v2/Transcripts/{GT}/Media`: a signed URL (an hour) of the audio. `Redacted` (default:
/// the transcript's `redaction`) asks for the copy with the PII silenced (`MediaRedaction`),
/// else the recording it was made of. Sealed with the customer's key, the download is the sealed
/// bytes with the `x-amz-meta-*` headers, like `/Sentences/Encrypted`; sealed at rest, the WAV
/// decrypted on the way out.
pub(crate) async fn media(
    State(st): State<AppState>,
    auth: Authed,
    Path(sid): Path<String>,
) -> ApiResult<Json<TranscriptMedia>> {
    let account = auth.principal.sid();
    let t = find(&st, account, &sid, &auth.path).await?;
    let no_media = |why: String| ApiError::new(StatusCode::NOT_FOUND, 20404, why);
    let redacted = auth.query.boolean("Redacted")?.unwrap_or(t.redaction);
    let media_url = if redacted {
        let Some(key) = &t.redacted_media_key else {
            let why = if t.status == TranscriptStatus::Completed.as_str() {
                "its service did not have MediaRedaction when it was made".to_owned()
            } else {
                format!("it is {}", t.status)
            };
            return Err(no_media(format!(
                "Transcript {sid} has no redacted media: {why}; ask with Redacted=false for the recording it was \
                 made of"
            )));
        };
        download_url(&st, &auth.base_url, key, t.sealing).await?
    } else if let Some(url) = ChannelSpec::parse(&t.channel)
        .ok()
        .and_then(|c| c.media_url().map(str::to_owned))
    {
        // Made of the customer's own URL: that is where the original is.
        url
    } else {
        let source = t.source_sid.as_deref().unwrap_or_default();
        let recording = st
            .meta
            .recording(account, source, false)
            .await?
            .filter(|r| r.status == "completed");
        match recording
            .as_ref()
            .and_then(|r| Some((r.object_key.as_deref()?, r.sealing)))
        {
            Some((key, sealing)) => download_url(&st, &auth.base_url, key, sealing).await?,
            None => {
                return Err(no_media(format!(
                    "Transcript {sid} has no media: recording {source} no longer exists"
                )));
            }
        }
    };
    Ok(Json(TranscriptMedia {
        account_sid: t.account_sid.clone(),
        media_url,
        service_sid: t.service_sid.clone(),
        sid: t.sid.clone(),
        url: format!("{}/v2/Transcripts/{}/Media", auth.base_url, t.sid),
    }))
}

/// A signed URL of the audio object `key`: the sealed bytes with their key material when sealed
/// with the customer's key ([`location_of`]), else the WAV decrypted by this server.
async fn download_url(
    st: &AppState,
    base_url: &str,
    key: &str,
    sealing: Sealing,
) -> ApiResult<String> {
    if sealing == Sealing::Customer {
        return location_of(st, base_url, key).await;
    }
    let token = sign(
        &st.config.url_signing_key,
        key,
        ServeMode::AtRest,
        "audio/x-wav",
        unix_now() + LOCATION_TTL,
    );
    Ok(format!("{base_url}/v1/MediaDownload/{token}"))
}
