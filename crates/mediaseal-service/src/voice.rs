//! Voice recordings (`RE…`) and the rules of seed 000: sealed with the customer's key in
//! `rsa-aes` as they arrive (or at rest), the fallback key with its notice, and the 16104
//! failure with its callback and notification.
//!
//! Every voice recording producer uses [`Services::start_voice_recording`]: the ingest door
//! today, the call recorder next. The producer writes the WAV bytes as they come and
//! [`finish`](VoiceRecorder::finish)es; the rules live here once.

use mediaseal_sink::policy::{self, Setting};
use mediaseal_sink::{Decision, Notice, Product, Refusal, SinkError};
use mediaseal_store::model::{Callback, Notification, Recording, RecordingSettings, Sealing};

use crate::Services;
use crate::clock::rfc2822;
use crate::ledger::{LedgerError, Pending};
use crate::outbox::new_callback;
use crate::sid::new_sid;

/// Twilio's error for "the recording could not be encrypted".
pub const ERROR_ENCRYPTION_FAILED: i64 = 16104;
/// mediaseal's warning code for "the configured key was not found; another key was used".
pub const WARNING_FALLBACK_KEY: i64 = 16105;
/// Twilio's error for a recording with no audio.
pub const ERROR_RECORDING_EMPTY: i64 = 16101;

/// Where a recording's status callbacks go, and for which events.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordingSubscription {
    /// The receiver.
    pub url: String,
    /// `GET` or `POST`.
    pub method: String,
    /// Of `in-progress`, `completed`, `absent`, `failed`.
    pub events: Vec<String>,
}

/// An event name that is not a recording status event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not in-progress, completed, absent or failed")]
pub struct UnknownRecordingEvent(pub String);

impl RecordingSubscription {
    /// A subscription from `RecordingStatusCallbackEvent` values: TwiML spells the list
    /// space-separated and the REST API repeats the key, so both are accepted. No events means
    /// `completed`.
    pub fn new(url: &str, method: &str, events: &[&str]) -> Result<Self, UnknownRecordingEvent> {
        let mut parsed = Vec::new();
        for raw in events {
            for e in raw.split([' ', ',']).filter(|e| !e.is_empty()) {
                match e {
                    "in-progress" | "completed" | "absent" | "failed" => parsed.push(e.to_owned()),
                    other => return Err(UnknownRecordingEvent(other.to_owned())),
                }
            }
        }
        if parsed.is_empty() {
            parsed.push("completed".to_owned());
        }
        Ok(Self {
            url: url.to_owned(),
            method: method.to_owned(),
            events: parsed,
        })
    }
}

/// A voice recording about to be made.
#[derive(Debug, Clone)]
pub struct VoiceRequest {
    /// The owner.
    pub account_sid: String,
    /// The call, if any.
    pub call_sid: Option<String>,
    /// The conference, if any.
    pub conference_sid: Option<String>,
    /// 1 or 2.
    pub channels: i64,
    /// `StartCallRecordingAPI`, `RecordVerb`, `DialVerb`, …
    pub source: String,
    /// `inbound`, `outbound` or `both`.
    pub track: Option<String>,
    /// Seconds, when the producer knows; otherwise measured from the WAV.
    pub duration: Option<i64>,
    /// When recording started; default now.
    pub start_time: Option<i64>,
    /// The media type served back.
    pub content_type: String,
    /// Status callbacks.
    pub subscription: Option<RecordingSubscription>,
    /// The base URL of this service as the customer sees it (for `RecordingUrl`).
    pub base_url: String,
    /// The request that made the recording, for notifications.
    pub request_url: String,
}

/// Kept with a reservation so that the sweeper can report a recording whose upload a crash cut
/// off as seed 000's intermittent failure, with the callback and request the upload had.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Interruption {
    subscription: Option<RecordingSubscription>,
    base_url: String,
    request_url: String,
}

/// How a voice recording starts.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "made once per recording and matched at once; boxing would buy nothing"
)]
pub enum VoiceStart {
    /// Recording: write the audio into it.
    Recording(VoiceRecorder),
    /// Seed 000: encryption is on and no key can be used. The recording was published as
    /// `failed` (16104) with its callback and notification; the producer must destroy its
    /// audio without storing it.
    Failed(Recording),
}

/// A voice recording being sealed.
#[derive(Debug)]
pub struct VoiceRecorder {
    pending: Pending<Recording>,
    customer: bool,
    subscription: Option<RecordingSubscription>,
    notifications: Vec<Notification>,
    base_url: String,
    request_url: String,
}

fn recording_path(r: &Recording) -> String {
    format!(
        "/2010-04-01/Accounts/{}/Recordings/{}",
        r.account_sid, r.sid
    )
}

impl Services {
    /// The account's voice recording settings, or the defaults.
    pub async fn recording_settings(
        &self,
        account_sid: &str,
    ) -> Result<RecordingSettings, LedgerError> {
        Ok(self
            .meta
            .recording_settings(account_sid)
            .await?
            .unwrap_or_else(|| RecordingSettings {
                account_sid: account_sid.to_owned(),
                ..Default::default()
            }))
    }

    /// Starts a voice recording under the account's settings (seed 000).
    pub async fn start_voice_recording(
        &self,
        req: VoiceRequest,
    ) -> Result<VoiceStart, LedgerError> {
        let now = self.now_us();
        let sid = new_sid("RE");
        let mut rec = Recording {
            sid: sid.clone(),
            account_sid: req.account_sid.clone(),
            call_sid: req.call_sid,
            conference_sid: req.conference_sid,
            channels: req.channels,
            source: req.source,
            track: req.track,
            duration: req.duration,
            status: "processing".to_owned(),
            error_code: None,
            start_time: req.start_time.unwrap_or(now),
            date_created: now,
            date_updated: now,
            encryption_details: None,
            sealing: Sealing::None,
            object_key: Some(format!("{}/{}", req.account_sid, sid)),
            sealed_size: 0,
            plain_size: 0,
            content_type: req.content_type,
            visible: false,
            deleted: false,
            date_deleted: None,
            interruption: None,
        };
        let settings = self.recording_settings(&req.account_sid).await?;
        let setting = Setting {
            enabled: settings.encryption_enabled,
            key_sid: settings.encryption_public_key_sid.as_deref(),
        };
        let decision = policy::resolve(
            self.meta.as_ref(),
            Product::VoiceRecording,
            &req.account_sid,
            setting,
        )
        .await?;
        let mut notifications = Vec::new();
        let Decision { seal, notice } = match decision {
            Ok(d) => d,
            Err(refusal) => {
                rec.object_key = None;
                let reason = match refusal {
                    Refusal::NoPublicKey { .. } => refusal.to_string(),
                    other => format!("the public key could not be used ({other})"),
                };
                let failed = self
                    .publish_voice_failure(
                        rec,
                        req.subscription.as_ref(),
                        notifications,
                        &reason,
                        &req.base_url,
                        &req.request_url,
                    )
                    .await?;
                return Ok(VoiceStart::Failed(failed));
            }
        };
        if let Some(Notice::FallbackKey { configured, used }) = notice {
            let text = match &configured {
                Some(c) => format!(
                    "Voice Recording Encryption: the configured public key {c} could not be found; \
                     the account's most recently added public key {used} was used for recording {sid}"
                ),
                None => format!(
                    "Voice Recording Encryption: no public key is configured; the account's most recently \
                     added public key {used} was used for recording {sid}"
                ),
            };
            notifications.push(self.notification(
                &rec,
                WARNING_FALLBACK_KEY,
                1,
                text,
                &req.request_url,
            ));
        }
        let customer = seal.customer_key_sid().is_some();
        rec.interruption = serde_json::to_string(&Interruption {
            subscription: req.subscription.clone(),
            base_url: req.base_url.clone(),
            request_url: req.request_url.clone(),
        })
        .ok();
        let pending = self.reserve(rec, &seal).await?;
        Ok(VoiceStart::Recording(VoiceRecorder {
            pending,
            customer,
            subscription: req.subscription,
            notifications,
            base_url: req.base_url,
            request_url: req.request_url,
        }))
    }

    fn notification(
        &self,
        resource: &Recording,
        code: i64,
        level: i64,
        text: String,
        request_url: &str,
    ) -> Notification {
        Notification {
            sid: new_sid("NO"),
            account_sid: resource.account_sid.clone(),
            call_sid: resource.call_sid.clone(),
            resource_sid: Some(resource.sid.clone()),
            error_code: code,
            log_level: level,
            message_text: text,
            more_info: format!("https://www.twilio.com/docs/errors/{code}"),
            request_method: Some("POST".to_owned()),
            request_url: Some(request_url.to_owned()),
            date_created: self.now_us(),
        }
    }

    /// The callback of `r`'s current status, if `subscription` asked for it.
    pub fn recording_callback(
        &self,
        subscription: &RecordingSubscription,
        base_url: &str,
        r: &Recording,
    ) -> Option<Callback> {
        if !subscription.events.contains(&r.status) {
            return None;
        }
        let mut params = vec![
            ("AccountSid".to_owned(), r.account_sid.clone()),
            ("CallSid".to_owned(), r.call_sid.clone().unwrap_or_default()),
            ("RecordingSid".to_owned(), r.sid.clone()),
            (
                "RecordingUrl".to_owned(),
                format!("{base_url}{}", recording_path(r)),
            ),
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
            self,
            &r.account_sid,
            &r.sid,
            &subscription.url,
            &subscription.method,
            &params,
        ))
    }

    /// Seed 000's failure: no object, status `failed`, 16104, no encryption details, a failed
    /// callback where subscribed, and a notification.
    async fn publish_voice_failure(
        &self,
        mut rec: Recording,
        subscription: Option<&RecordingSubscription>,
        mut notifications: Vec<Notification>,
        reason: &str,
        base_url: &str,
        request_url: &str,
    ) -> Result<Recording, LedgerError> {
        rec.object_key = None;
        rec.status = "failed".to_owned();
        rec.error_code = Some(ERROR_ENCRYPTION_FAILED);
        rec.encryption_details = None;
        rec.sealing = Sealing::None;
        rec.visible = true;
        rec.interruption = None;
        rec.date_updated = self.now_us();
        let text = format!(
            "Voice Recording Encryption failed for recording {}: {reason}; the recording was deleted",
            rec.sid
        );
        notifications.push(self.notification(&rec, ERROR_ENCRYPTION_FAILED, 0, text, request_url));
        let callbacks: Vec<Callback> = subscription
            .and_then(|s| self.recording_callback(s, base_url, &rec))
            .into_iter()
            .collect();
        self.publish_without_object(&rec, &callbacks, &notifications)
            .await?;
        metrics::counter!("mediaseal_recordings_failed_total").increment(1);
        tracing::warn!(recording = %rec.sid, account = %rec.account_sid, "recording failed: no usable public key");
        Ok(rec)
    }
}

impl Services {
    /// A reservation a crash left behind (its upload cut off, its partial object already
    /// removed): seed 000's intermittent failure, `failed` with 16104, the `failed` callback
    /// where the upload subscribed, and a notification. `Ok(None)` when the reservation predates
    /// the record of its subscription and can only be dropped.
    pub async fn report_interrupted_recording(
        &self,
        rec: Recording,
    ) -> Result<Option<Recording>, LedgerError> {
        let Some(interruption) = rec
            .interruption
            .as_deref()
            .and_then(|json| serde_json::from_str::<Interruption>(json).ok())
        else {
            return Ok(None);
        };
        let failed = self
            .publish_voice_failure(
                rec,
                interruption.subscription.as_ref(),
                Vec::new(),
                "the upload was cut off by a server failure before it could be sealed",
                &interruption.base_url,
                &interruption.request_url,
            )
            .await?;
        Ok(Some(failed))
    }
}

impl VoiceRecorder {
    /// The recording's SID.
    pub fn sid(&self) -> &str {
        &self.pending.row().sid
    }

    /// The recording's row as it will be published (`in-progress` until then): what the
    /// start-recording API answers with.
    pub fn recording(&self) -> &Recording {
        self.pending.row()
    }

    /// The producer measured the audio itself (the call recorder counts the samples it
    /// mixed): the recording gets this duration in seconds instead of one read from the WAV
    /// header when it [`finish`](Self::finish)es.
    pub fn set_duration(&mut self, seconds: i64) {
        self.pending.row_mut().duration = Some(seconds);
    }

    /// Seals the next audio bytes.
    pub async fn write(&mut self, audio: &[u8]) -> Result<(), SinkError> {
        self.pending.write(audio).await
    }

    /// The producer's audio stopped short (an interrupted upload): nothing is kept.
    pub async fn interrupted(self) -> Result<(), LedgerError> {
        self.pending.abandon().await
    }

    /// Seals the tail and publishes the recording: `completed` (or `absent` when no audio
    /// arrived) with its callbacks; when sealing with the customer's key fails, seed 000's
    /// `failed` (16104).
    pub async fn finish(mut self) -> Result<Recording, LedgerError> {
        let services = self.pending_services();
        let stored = match self.pending.seal().await {
            Ok(stored) => stored,
            Err(e) => return self.failed(e).await,
        };
        let now = services.now_us();
        let rec = self.pending.row_mut();
        rec.plain_size = i64::try_from(stored.plain_size).unwrap_or(i64::MAX);
        rec.sealed_size = i64::try_from(stored.sealed_size).unwrap_or(i64::MAX);
        rec.date_updated = now;
        if rec.duration.is_none() {
            rec.duration = mediaseal_media::wav::duration_secs(&stored.head, stored.plain_size)
                .and_then(|s| i64::try_from(s).ok());
        }
        let empty = stored.plain_size == 0;
        if empty {
            // Nothing was recorded: Twilio calls this "absent".
            rec.object_key = None;
            rec.status = "absent".to_owned();
            rec.error_code = Some(ERROR_RECORDING_EMPTY);
            rec.sealing = Sealing::None;
        } else {
            rec.status = "completed".to_owned();
            rec.sealing = stored.sealing;
            rec.encryption_details = stored.encryption_details_json();
        }
        rec.visible = true;
        rec.interruption = None;
        let rec = rec.clone();
        let callbacks: Vec<Callback> = self
            .subscription
            .iter()
            .filter_map(|s| services.recording_callback(s, &self.base_url, &rec))
            .collect();
        let rec = if empty {
            let rec = self.pending.destroy_object().await?;
            services
                .publish_without_object(&rec, &callbacks, &self.notifications)
                .await?;
            rec
        } else {
            self.pending
                .publish(&callbacks, &self.notifications)
                .await?
        };
        metrics::counter!("mediaseal_recordings_ingested_total", "sealing" => rec.sealing.as_str())
            .increment(1);
        metrics::counter!("mediaseal_bytes_sealed_total").increment(stored.plain_size);
        tracing::info!(recording = %rec.sid, account = %rec.account_sid, sealing = rec.sealing.as_str(), bytes = stored.plain_size, "recording stored");
        Ok(rec)
    }

    /// Sealing failed part-way: with the customer's key that is seed 000's `failed` (16104) and
    /// the recording is published so; otherwise (the object store failed) nothing is kept and the
    /// error is returned.
    pub async fn failed(self, error: SinkError) -> Result<Recording, LedgerError> {
        let services = self.pending_services();
        match error {
            SinkError::Seal(e) if self.customer => {
                tracing::error!(recording = %self.sid(), error = %e, "sealing with the customer key failed");
                let rec = self.pending.destroy_object().await?;
                services
                    .publish_voice_failure(
                        rec,
                        self.subscription.as_ref(),
                        self.notifications,
                        &format!("sealing failed ({e})"),
                        &self.base_url,
                        &self.request_url,
                    )
                    .await
            }
            other => {
                self.pending.abandon().await?;
                Err(other.into())
            }
        }
    }

    fn pending_services(&self) -> Services {
        self.pending.services().clone()
    }
}
