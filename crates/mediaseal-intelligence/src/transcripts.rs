//! Transcripts (`GT…`): creation and the background job that recognises the audio, seals the
//! sentences as they are produced, and publishes the result with the service's webhook.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mediaseal_asr::audio::prepare_wav;
use mediaseal_asr::{AsrOptions, SpeechEngine, Transcript as AsrTranscript};
use mediaseal_service::outbox::new_callback;
use mediaseal_service::sid::new_sid;
use mediaseal_sink::{Seal, SinkError};
use mediaseal_store::StoreError;
use mediaseal_store::model::Sealing;
use mediaseal_store::model::intelligence::{IntelligenceService, Transcript, TranscriptStatus};
use zeroize::Zeroizing;

use crate::Intelligence;
use crate::channel::ChannelSpec;
use crate::sentences::{DOC_HEAD, DOC_TAIL, Sentence, merge, sentence_json};

/// Largest source audio transcribed (plaintext bytes held in memory at once).
pub const MAX_AUDIO_BYTES: u64 = 512 << 20;

/// How long a transcript job's lease holds without renewal: a lease that lapsed means the job
/// died with its node (see [`recover_abandoned`](Intelligence::recover_abandoned)).
pub const LEASE: Duration = Duration::from_secs(120);
/// How often a live job renews its lease: several times per [`LEASE`], so that a slow store
/// does not make a live job look dead.
pub const HEARTBEAT: Duration = Duration::from_secs(20);

/// `d` in µs, the store's unit.
pub(crate) fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Stops a job's heartbeat however the job ends.
struct StopOnDrop(tokio::task::JoinHandle<()>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Opens a stored object's plaintext into memory. Implemented by the process that holds the
/// at-rest private key (the HTTP server); this crate cannot read anything back itself.
#[async_trait]
pub trait AudioSource: Send + Sync {
    /// The whole plaintext of `object_key`, refused when larger than `limit` bytes. The
    /// error says what went wrong, never what the object holds.
    async fn read_all(&self, object_key: &str, limit: u64) -> Result<Zeroizing<Vec<u8>>, String>;
}

/// What a new transcript is made from.
#[derive(Debug, Clone)]
pub struct TranscriptRequest {
    /// Its account.
    pub account_sid: String,
    /// The service, already checked to be the account's.
    pub service: IntelligenceService,
    /// The parsed `Channel`.
    pub channel: ChannelSpec,
    /// `CustomerKey`.
    pub customer_key: Option<String>,
    /// `MediaStartTime`, µs.
    pub media_start_time: Option<i64>,
}

/// Why a transcript job stopped. Shown to the customer as `error_message`: never transcript
/// text.
#[derive(Debug, thiserror::Error)]
enum JobError {
    #[error("no speech recognition engine is available: {0}")]
    NoEngine(String),
    #[error("the recording's audio could not be read: {0}")]
    Audio(String),
    #[error("the recording's audio could not be decoded: {0}")]
    Decode(String),
    #[error("speech recognition failed: {0}")]
    Engine(String),
    #[error("the transcript could not be sealed: {0}")]
    Sink(#[from] SinkError),
    #[error("the transcript could not be stored: {0}")]
    Store(#[from] StoreError),
    #[error("the operator results could not be sealed: {0}")]
    Operators(#[from] crate::operators::OperatorsError),
    #[error("the redacted media could not be made: {0}")]
    Media(String),
}

impl Intelligence {
    /// Stores a new `queued` transcript of `req` sealed as `seal` decides, and returns it;
    /// [`start`](Self::start) runs it.
    pub async fn create_transcript(
        &self,
        req: TranscriptRequest,
        seal: &Seal,
    ) -> Result<Transcript, StoreError> {
        let now = self.services.now_us();
        let t = Transcript {
            sid: new_sid("GT"),
            account_sid: req.account_sid,
            service_sid: req.service.sid.clone(),
            status: TranscriptStatus::Queued.as_str().to_owned(),
            channel: req.channel.to_json(),
            source_sid: req.channel.source_sid().map(str::to_owned),
            language_code: req.service.language_code.clone(),
            customer_key: req.customer_key,
            media_start_time: req.media_start_time,
            duration: None,
            data_logging: req.service.data_logging,
            redaction: req.service.auto_redaction,
            encryption_credential_sid: seal.customer_key_sid().map(str::to_owned),
            sealing: Sealing::None,
            object_key: None,
            log_object_key: None,
            redacted_object_key: None,
            media_redaction: req.service.media_redaction,
            redacted_media_key: None,
            sentence_count: 0,
            error_message: None,
            deleted: false,
            date_created: now,
            date_updated: now,
            // Owned by this node from the start: a sweeper elsewhere must not take it while it
            // waits for a free slot.
            lease_owner: Some(self.services.config.node_id.clone()),
            lease_until: Some(now + micros(LEASE)),
        };
        self.services.meta.insert_transcript(&t).await?;
        tracing::info!(transcript = %t.sid, account = %t.account_sid, service = %t.service_sid, "transcript queued");
        Ok(t)
    }

    /// Runs `transcript` in the background: the audio of `audio_key` is opened from `source`,
    /// recognised channel by channel on a blocking thread, and the sentences sealed as `seal`
    /// says. Failures end the transcript as `failed` (with the webhook), never the process.
    pub fn start(
        &self,
        transcript: Transcript,
        service: IntelligenceService,
        seal: Seal,
        audio_key: String,
        source: Arc<dyn AudioSource>,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            // The lease is renewed while the job waits and runs, and no longer once it ends.
            let _heartbeat = StopOnDrop(this.heartbeat(transcript.sid.clone()));
            // Never closed, so this only waits.
            let Ok(_slot) = this.jobs.clone().acquire_owned().await else {
                return;
            };
            let sid = transcript.sid.clone();
            let mut row = transcript;
            row.status = TranscriptStatus::InProgress.as_str().to_owned();
            row.date_updated = this.services.now_us();
            match this.services.meta.update_transcript(&row, &[]).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(transcript = %sid, error = %e, "transcript could not start");
                    return;
                }
            }
            let result = this.run(&mut row, &seal, &audio_key, source.as_ref()).await;
            let (status, event) = match &result {
                Ok(()) => (
                    TranscriptStatus::Completed,
                    "voice_intelligence_transcript_available",
                ),
                Err(_) => (
                    TranscriptStatus::Failed,
                    "voice_intelligence_transcript_failed",
                ),
            };
            if let Err(e) = &result {
                tracing::warn!(transcript = %sid, error = %e, "transcript failed");
                row.error_message = Some(e.to_string());
                row.sealing = Sealing::None;
                row.object_key = None;
                row.log_object_key = None;
                row.redacted_object_key = None;
                row.redacted_media_key = None;
                row.sentence_count = 0;
            }
            row.status = status.as_str().to_owned();
            row.date_updated = this.services.now_us();
            let callbacks: Vec<_> = this.webhook(&service, &row, event).into_iter().collect();
            let published = this.services.meta.update_transcript(&row, &callbacks).await;
            if !matches!(published, Ok(true)) {
                // Deleted meanwhile, or the store failed: nothing may point at the objects, so
                // they go (the orphan sweeper finishes the job if this fails too).
                for key in [
                    row.object_key.as_deref(),
                    row.log_object_key.as_deref(),
                    row.redacted_object_key.as_deref(),
                    row.redacted_media_key.as_deref(),
                ]
                .into_iter()
                .flatten()
                {
                    if let Err(e) = this.services.objects().delete(key).await {
                        tracing::warn!(transcript = %sid, error = %e, "sentences left to the sweeper");
                    }
                }
                this.purge_operator_results(&row.account_sid, &sid).await;
            }
            match published {
                Ok(_) => {
                    metrics::counter!("mediaseal_transcripts_total", "status" => status.as_str())
                        .increment(1);
                    tracing::info!(transcript = %sid, status = status.as_str(), sentences = row.sentence_count, "transcript finished");
                }
                Err(e) => {
                    tracing::warn!(transcript = %sid, error = %e, "transcript result not stored")
                }
            }
        })
    }

    async fn run(
        &self,
        row: &mut Transcript,
        seal: &Seal,
        audio_key: &str,
        source: &dyn AudioSource,
    ) -> Result<(), JobError> {
        let engine = self.speech.engine().await.map_err(JobError::NoEngine)?;
        let audio = source
            .read_all(audio_key, MAX_AUDIO_BYTES)
            .await
            .map_err(JobError::Audio)?;
        let options = AsrOptions {
            language: language_of(&row.language_code),
            word_timestamps: true,
            prompt: None,
        };
        // The audio comes back from the recogniser's thread: the redacted copy is made of it.
        let (recognised, audio) = tokio::task::spawn_blocking(move || {
            (recognise(engine.as_ref(), &audio, &options), audio)
        })
        .await
        .map_err(|e| JobError::Engine(format!("the recogniser thread stopped: {e}")))?;
        let (duration, channels) = recognised?;
        row.duration = Some(duration);
        let sentences = merge(&channels);
        drop(channels);

        let key = format!("{}/{}", row.account_sid, row.sid);
        let stored = self.seal_sentences(&key, seal, &sentences).await?;
        row.sealing = stored.sealing;
        row.object_key = Some(stored.object_key);
        row.sentence_count = sentences.len() as i64;
        let extra = match self.seal_extras(row, &key, seal, &sentences).await {
            Ok(()) if row.media_redaction => {
                self.seal_redacted_media(row, &key, &sentences, audio).await
            }
            Ok(()) => Ok(()),
            Err(e) => Err(JobError::from(e)),
        };
        let extra = match extra {
            // Each attached operator's result is sealed as its own object (issue 13).
            Ok(()) => self
                .run_operators(row, &key, &sentences)
                .await
                .map(drop)
                .map_err(JobError::from),
            Err(e) => Err(e),
        };
        if let Err(e) = extra {
            // Nothing of a failed transcript is kept.
            for k in [
                row.object_key.take(),
                row.log_object_key.take(),
                row.redacted_object_key.take(),
                row.redacted_media_key.take(),
            ]
            .into_iter()
            .flatten()
            {
                if let Err(e) = self.services.objects().delete(&k).await {
                    tracing::warn!(transcript = %row.sid, error = %e, "sentences left to the sweeper");
                }
            }
            return Err(e);
        }
        Ok(())
    }

    /// The objects beside the sentences: the redacted view when the service redacts (sealed
    /// like the sentences), and data logging's copy (an operator's switch, seed 002: readable
    /// by the service, sealed at rest) of a transcript sealed with the customer's key.
    async fn seal_extras(
        &self,
        row: &mut Transcript,
        key: &str,
        seal: &Seal,
        sentences: &[Sentence],
    ) -> Result<(), SinkError> {
        if row.redaction {
            let redacted = crate::pii::redact(sentences);
            let stored = self
                .seal_sentences(&format!("{key}-redacted"), seal, &redacted)
                .await?;
            row.redacted_object_key = Some(stored.object_key);
        }
        if row.data_logging && row.sealing == Sealing::Customer {
            let stored = self
                .seal_sentences(&format!("{key}-log"), &Seal::AtRest, sentences)
                .await?;
            row.log_object_key = Some(stored.object_key);
        }
        Ok(())
    }

    /// `MediaRedaction`: the source audio with the PII the sentences hold silenced (see
    /// [`media`](crate::media)), made in place in the job's own buffer and sealed as
    /// [`Product::RedactedMedia`](mediaseal_sink::Product::RedactedMedia) with the
    /// transcript's key, under `{key}-media-redacted`.
    async fn seal_redacted_media(
        &self,
        row: &mut Transcript,
        key: &str,
        sentences: &[Sentence],
        mut audio: Zeroizing<Vec<u8>>,
    ) -> Result<(), JobError> {
        let spans = crate::media::pii_spans(sentences);
        crate::media::silence(&mut audio, &spans).map_err(|e| JobError::Media(e.to_string()))?;
        let setting = mediaseal_sink::policy::Setting {
            enabled: row.encryption_credential_sid.is_some(),
            key_sid: row.encryption_credential_sid.as_deref(),
        };
        let seal = mediaseal_sink::policy::resolve(
            self.services.meta.as_ref(),
            mediaseal_sink::Product::RedactedMedia,
            &row.account_sid,
            setting,
        )
        .await?
        .map_err(|r| JobError::Media(r.to_string()))?
        .seal;
        let mut sink = self
            .services
            .sinks
            .open(&format!("{key}-media-redacted"), &seal)
            .await?;
        // In pieces, as the sink seals them; the buffer is wiped when `audio` drops.
        for chunk in audio.chunks(64 << 10) {
            sink.write(chunk).await?;
        }
        let stored = sink.finish().await?;
        row.redacted_media_key = Some(stored.object_key);
        tracing::info!(transcript = %row.sid, spans = spans.len(), "redacted media sealed");
        Ok(())
    }

    /// One object of `sentences` under `key`, written sentence by sentence: each is sealed the
    /// moment it is serialised, and its plaintext buffer wiped.
    async fn seal_sentences(
        &self,
        key: &str,
        seal: &Seal,
        sentences: &[Sentence],
    ) -> Result<mediaseal_sink::Stored, SinkError> {
        let mut sink = self.services.sinks.open(key, seal).await?;
        sink.write(DOC_HEAD).await?;
        for (i, sentence) in sentences.iter().enumerate() {
            if i > 0 {
                sink.write(b",").await?;
            }
            sink.write(&sentence_json(sentence)).await?;
        }
        sink.write(DOC_TAIL).await?;
        sink.finish().await
    }

    /// Renews this node's lease on transcript `sid` every [`HEARTBEAT`] until it is no longer
    /// this node's (the job ended, the transcript was deleted) or the task is stopped.
    fn heartbeat(&self, sid: String) -> tokio::task::JoinHandle<()> {
        let services = self.services.clone();
        tokio::spawn(async move {
            let node = services.config.node_id.clone();
            loop {
                tokio::time::sleep(HEARTBEAT).await;
                let until = services.now_us() + micros(LEASE);
                match services
                    .meta
                    .renew_transcript_lease(&sid, &node, until)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => {
                        tracing::warn!(transcript = %sid, error = %e, "transcript lease not renewed")
                    }
                }
            }
        })
    }

    /// The service's webhook about `t`, if it has one.
    pub(crate) fn webhook(
        &self,
        service: &IntelligenceService,
        t: &Transcript,
        event: &str,
    ) -> Option<mediaseal_store::model::Callback> {
        let url = service.webhook_url.as_deref()?;
        let method = service.webhook_http_method.as_deref().unwrap_or("POST");
        let mut params: Vec<(String, String)> = vec![
            ("AccountSid".to_owned(), t.account_sid.clone()),
            ("ServiceSid".to_owned(), t.service_sid.clone()),
            ("TranscriptSid".to_owned(), t.sid.clone()),
            ("EventType".to_owned(), event.to_owned()),
            ("TranscriptStatus".to_owned(), t.status.clone()),
        ];
        if let Some(k) = &t.customer_key {
            params.push(("CustomerKey".to_owned(), k.clone()));
        }
        Some(new_callback(
            &self.services,
            &t.account_sid,
            &t.sid,
            url,
            method,
            &params,
        ))
    }
}

/// `en-US` → `en`: the engines take ISO 639-1.
fn language_of(code: &str) -> Option<String> {
    let primary = code.split(['-', '_']).next()?.to_ascii_lowercase();
    (primary.len() == 2 && primary.bytes().all(|b| b.is_ascii_lowercase())).then_some(primary)
}

/// Decodes the WAV and transcribes each channel (1-based), the channels and the pieces of long
/// ones side by side when the engine can run several requests at once. Blocking.
fn recognise(
    engine: &dyn SpeechEngine,
    wav: &[u8],
    options: &AsrOptions,
) -> Result<(i64, Vec<(u32, AsrTranscript)>), JobError> {
    let prepared = prepare_wav(wav).map_err(|e| JobError::Decode(e.to_string()))?;
    let duration = prepared.duration_secs().round() as i64;
    let channels: Vec<&[i16]> = prepared.channels.iter().map(|pcm| pcm.as_slice()).collect();
    let transcripts = mediaseal_asr::transcribe_channels(engine, &channels, options)
        .map_err(|e| JobError::Engine(e.to_string()))?;
    Ok((duration, (1u32..).zip(transcripts).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages() {
        assert_eq!(language_of("en-US").as_deref(), Some("en"));
        assert_eq!(language_of("de").as_deref(), Some("de"));
        assert_eq!(language_of("").as_deref(), None);
        assert_eq!(language_of("eng").as_deref(), None);
    }
}
