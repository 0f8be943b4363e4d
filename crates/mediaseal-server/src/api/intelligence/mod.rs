//! Conversational Intelligence v2 (seed 002): services (`GA…`), transcripts (`GT…`) of voice
//! recordings, their sentences, and the encrypted sentences download; language operators
//! (`EY…` types, `LY…` operators) attached to services, and their results.
//!
//! Every resource belongs to the authenticated account (v2 paths carry no account), and every
//! lookup is scoped to it: another account's SID is a 404, as a SID that does not exist. The
//! work is done by `mediaseal-intelligence`; these handlers parse, call it and render.

mod media_url;
mod operators;
mod services;
mod transcripts;

use async_trait::async_trait;
use axum::Router;
use axum::routing::get;
use futures::StreamExt;
use std::sync::Arc;

use mediaseal_intelligence::recovery::{Abandoned, Recovered, Sources};
use mediaseal_intelligence::tap::IngestTap;
use mediaseal_intelligence::transcripts::{AudioSource, TranscriptRequest};
use mediaseal_intelligence::{ChannelSpec, channel::MediaProperties};
use mediaseal_readback::AtRestReader;
use mediaseal_store::model::intelligence::IntelligenceService;
use mediaseal_store::model::{Recording, Sealing};
use zeroize::Zeroizing;

use crate::state::AppState;

/// The intelligence routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v2/Services", get(services::list).post(services::create))
        .route(
            "/v2/Services/{sid}",
            get(services::fetch)
                .post(services::update)
                .delete(services::delete),
        )
        .route(
            "/v2/Transcripts",
            get(transcripts::list).post(transcripts::create),
        )
        .route(
            "/v2/Transcripts/{sid}",
            get(transcripts::fetch).delete(transcripts::delete),
        )
        .route(
            "/v2/Transcripts/{sid}/Sentences",
            get(transcripts::sentences),
        )
        .route(
            "/v2/Transcripts/{sid}/Sentences/Encrypted",
            get(transcripts::encrypted_sentences),
        )
        .route("/v2/Transcripts/{sid}/Media", get(transcripts::media))
        .route("/v2/OperatorTypes", get(operators::list_types))
        .route("/v2/OperatorTypes/{sid}", get(operators::fetch_type))
        .route("/v2/Operators", get(operators::list))
        .route("/v2/Operators/PreBuilt", get(operators::list_prebuilt))
        .route(
            "/v2/Operators/PreBuilt/{sid}",
            get(operators::fetch_prebuilt),
        )
        .route("/v2/Operators/{sid}", get(operators::fetch))
        .route(
            "/v2/Operators/Custom",
            get(operators::list_custom).post(operators::create_custom),
        )
        .route(
            "/v2/Operators/Custom/{sid}",
            get(operators::fetch_custom)
                .post(operators::update_custom)
                .delete(operators::delete_custom),
        )
        .route("/v2/Services/{sid}/Operators", get(operators::attachments))
        .route(
            "/v2/Services/{sid}/Operators/{operator}",
            axum::routing::post(operators::attach).delete(operators::detach),
        )
        .route(
            "/v2/Transcripts/{sid}/OperatorResults",
            get(operators::results),
        )
        .route(
            "/v2/Transcripts/{sid}/OperatorResults/Encrypted",
            get(operators::encrypted_results),
        )
        .route(
            "/v2/Transcripts/{sid}/OperatorResults/{operator}",
            get(operators::result),
        )
}

/// Largest page of an intelligence list.
const MAX_PAGE: i64 = 1000;

/// Opens at-rest objects into memory for the transcript job and the plain sentences: the
/// plaintext is held in one buffer sized up front (no reallocation leaves copies behind) and
/// wiped when dropped.
#[derive(Debug, Clone)]
pub(crate) struct AtRestSource(pub(crate) AtRestReader);

#[async_trait]
impl AudioSource for AtRestSource {
    async fn read_all(&self, object_key: &str, limit: u64) -> Result<Zeroizing<Vec<u8>>, String> {
        let object = self.0.unlock(object_key).await.map_err(|e| e.to_string())?;
        let len = object.len();
        if len > limit {
            return Err(format!(
                "{len} bytes is more than the {limit} bytes a transcript can be made of"
            ));
        }
        let capacity = usize::try_from(len).map_err(|_| "too large for this machine".to_owned())?;
        let mut stream = self
            .0
            .stream(&object, 0..len)
            .await
            .map_err(|e| e.to_string())?;
        let mut out = Zeroizing::new(Vec::with_capacity(capacity));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            if out.len() + chunk.len() > capacity {
                return Err("the object is longer than its header says".to_owned());
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }
}

/// The account's services that transcribe every new recording.
async fn auto_services(st: &AppState, account_sid: &str) -> Vec<IntelligenceService> {
    match st
        .meta
        .list_intelligence_services(account_sid, None, 1000)
        .await
    {
        Ok(services) => services.into_iter().filter(|s| s.auto_transcribe).collect(),
        Err(e) => {
            tracing::warn!(account = %account_sid, error = %e, "auto-transcribe: services not readable");
            Vec::new()
        }
    }
}

/// `AutoTranscribe` for one recording on its way into the sealing sink, whoever produces it (an
/// upload, a call recorder): the plaintext is kept in memory as it is sealed — the one way to
/// transcribe a recording sealed with the customer's key — and handed to the transcript jobs
/// once the recording is published. Nothing of it touches a disk; dropped, it is wiped.
#[derive(Debug)]
pub struct AutoTranscribeTap(IngestTap);

impl AutoTranscribeTap {
    /// A tap for a new recording of `account_sid`, when a service of the account transcribes
    /// every new recording.
    pub async fn for_account(st: &AppState, account_sid: &str) -> Option<Self> {
        (!auto_services(st, account_sid).await.is_empty()).then(|| Self(IngestTap::new()))
    }

    /// The next plaintext bytes, as they go into the sink.
    pub fn feed(&mut self, plain: &[u8]) {
        mediaseal_sink::PlainTap::feed(&mut self.0, plain);
    }

    /// Recording `recording_sid` was published: each `AutoTranscribe` service of the account
    /// transcribes it. Failures are logged, never returned: the recording stands either way.
    pub async fn recorded(self, st: &AppState, account_sid: &str, recording_sid: &str) {
        match st.meta.recording(account_sid, recording_sid, false).await {
            Ok(Some(rec)) => auto_transcribe(st, &rec, Some(self)).await,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(recording = %recording_sid, error = %e, "auto-transcribe: recording not readable");
            }
        }
    }
}

/// `AutoTranscribe`: a transcript of `rec` under every service of its account that asks for one.
/// A recording sealed at rest is read back; one sealed with the customer's key is transcribed
/// from the plaintext `tap` kept in memory while it was sealed (without it, or when it was too
/// long, it cannot be). Failures are logged and never fail the ingest.
pub(crate) async fn auto_transcribe(
    st: &AppState,
    rec: &Recording,
    tap: Option<AutoTranscribeTap>,
) {
    let (Some(key), true) = (rec.object_key.clone(), rec.status == "completed") else {
        return;
    };
    let source: Arc<dyn AudioSource> = match rec.sealing {
        Sealing::AtRest => Arc::new(AtRestSource(st.reader.clone())),
        Sealing::Customer => match tap.and_then(|tap| tap.0.into_audio()) {
            Some(audio) => Arc::new(audio),
            None => {
                tracing::info!(recording = %rec.sid, "auto-transcribe skipped: no tapped audio of a customer-key recording");
                return;
            }
        },
        Sealing::None => return,
    };
    for service in auto_services(st, &rec.account_sid).await {
        let seal = match st.intelligence.transcript_seal(&service).await {
            Ok(Ok(seal)) => seal,
            Ok(Err(refusal)) => {
                tracing::warn!(recording = %rec.sid, service = %service.sid, reason = %refusal, "auto-transcribe refused");
                continue;
            }
            Err(e) => {
                tracing::warn!(recording = %rec.sid, service = %service.sid, error = %e, "auto-transcribe failed");
                continue;
            }
        };
        let request = TranscriptRequest {
            account_sid: rec.account_sid.clone(),
            service: service.clone(),
            channel: ChannelSpec {
                media_properties: MediaProperties {
                    source_sid: Some(rec.sid.clone()),
                    media_url: None,
                },
                participants: Vec::new(),
            },
            customer_key: None,
            media_start_time: None,
        };
        match st.intelligence.create_transcript(request, &seal).await {
            Ok(t) => {
                drop(
                    st.intelligence
                        .start(t, service, seal, key.clone(), source.clone()),
                );
            }
            Err(e) => {
                tracing::warn!(recording = %rec.sid, service = %service.sid, error = %e, "auto-transcribe failed");
            }
        }
    }
}

/// Resolves the transcripts whose job died with its node: run again from recordings sealed at
/// rest, failed (with the webhook) when their audio cannot be read again. At the start of a node
/// alone on its SQLite database every unfinished transcript is its dead predecessor's; on a
/// shared PostgreSQL only those whose lease lapsed are taken, so other nodes' live jobs are left
/// alone (the sweeper repeats this every pass).
pub async fn recover_transcripts(st: &AppState, at_start: bool) -> Recovered {
    let which = if at_start && st.meta.backend() == "sqlite" {
        Abandoned::AllUnfinished
    } else {
        Abandoned::LapsedLeases
    };
    let sources = Sources {
        at_rest: Arc::new(AtRestSource(st.reader.clone())),
        url: Arc::new(media_url::UrlSource::new(
            st.services.config.webhook_policy.clone(),
        )),
    };
    st.intelligence.recover_abandoned(&sources, which).await
}

/// Switches data logging of Intelligence Service `sid` on or off: an operator's command on the
/// server (`mediaseal intelligence data-logging`), since the API cannot switch it on (seed 002).
/// Transcripts made from then on keep, when sealed with the customer's key, a second copy sealed
/// with the service's at-rest key. `None` when no such service exists.
pub async fn set_data_logging(
    meta: &dyn mediaseal_store::MetadataStore,
    sid: &str,
    on: bool,
) -> Result<Option<IntelligenceService>, mediaseal_store::StoreError> {
    let service = meta
        .set_intelligence_data_logging(sid, on, crate::clock::now_us())
        .await?;
    if let Some(s) = &service {
        tracing::info!(service = %s.sid, account = %s.account_sid, data_logging = on, "data logging switched by the operator");
    }
    Ok(service)
}
