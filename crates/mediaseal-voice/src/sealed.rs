//! The call recorder on the service layer: every call recording goes through
//! [`Services::start_voice_recording`], so it is sealed as the audio arrives under the account's
//! RecordingSettings (the customer's key in `rsa-aes`, else at rest) with seed 000's rules (the
//! fallback key and its notice, the 16104 failure) and published with its
//! `recordingStatusCallback` in the same transaction as the row.
//!
//! The plaintext WAV only ever exists in the mixer's buffers and the sealing sink's; what
//! reaches the object store is ciphertext.

use std::time::Duration;

use async_trait::async_trait;
use mediaseal_call::RecordingRequest;
use mediaseal_call::recording::TapTracks;
use mediaseal_service::Services;
use mediaseal_service::voice::{RecordingSubscription, VoiceRecorder, VoiceRequest, VoiceStart};
use mediaseal_twiml::{RecordingEvents, RecordingInfo};
use zeroize::Zeroizing;

use crate::seams::{CallRecorder, RecorderError, RecordingSink};

/// Bytes held back while waiting for a WAV header to complete; past this, whatever arrived is
/// not a header this adapter understands and is passed on as it is.
const HEADER_HOLD_LIMIT: usize = 4096;

/// A [`CallRecorder`] that seals into the service layer (see the module docs).
#[derive(Clone)]
pub struct SealedCallRecorder {
    services: Services,
    base_url: String,
}

impl std::fmt::Debug for SealedCallRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedCallRecorder")
            .field("services", &self.services)
            .field("base_url", &self.base_url)
            .finish()
    }
}

impl SealedCallRecorder {
    /// Records into `services`. `base_url` is this service as customers see it (no trailing
    /// slash), for `RecordingUrl` and the callbacks.
    pub fn new(services: Services, base_url: &str) -> Self {
        Self {
            services,
            base_url: base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// The service layer's request for a call recording.
    pub fn voice_request(&self, request: &RecordingRequest) -> VoiceRequest {
        voice_request(request, &self.base_url)
    }
}

fn voice_request(request: &RecordingRequest, base_url: &str) -> VoiceRequest {
    // `inbound` is what the caller sends (Twilio's RecordingTrack).
    let track = match request.tracks {
        TapTracks::CallerOnly => "inbound",
        TapTracks::Both => "both",
    };
    let subscription = request
        .status_callback
        .as_ref()
        .map(|cb| RecordingSubscription {
            url: cb.target.url.to_string(),
            method: cb.target.method.as_str().to_owned(),
            events: event_names(cb.events),
        });
    VoiceRequest {
        account_sid: request.account_sid.clone(),
        call_sid: Some(request.call_sid.clone()),
        conference_sid: None,
        channels: i64::from(request.layout.channels()),
        source: request.source.as_str().to_owned(),
        track: Some(track.to_owned()),
        // Known only when the call ends: the sink sets it then.
        duration: None,
        start_time: None,
        content_type: "audio/x-wav".to_owned(),
        subscription,
        base_url: base_url.to_owned(),
        request_url: format!(
            "{base_url}/2010-04-01/Accounts/{}/Calls/{}.json",
            request.account_sid, request.call_sid
        ),
    }
}

fn event_names(events: RecordingEvents) -> Vec<String> {
    let mut names = Vec::new();
    if events.in_progress {
        names.push("in-progress".to_owned());
    }
    if events.completed {
        names.push("completed".to_owned());
    }
    if events.absent {
        names.push("absent".to_owned());
    }
    if events.failed {
        names.push("failed".to_owned());
    }
    if names.is_empty() {
        names.push("completed".to_owned());
    }
    names
}

#[async_trait]
impl CallRecorder for SealedCallRecorder {
    async fn start(
        &self,
        request: &RecordingRequest,
    ) -> Result<Option<Box<dyn RecordingSink>>, RecorderError> {
        let voice = self.voice_request(request);
        let start = self
            .services
            .start_voice_recording(voice)
            .await
            .map_err(|e| RecorderError(format!("cannot start the recording: {e}")))?;
        match start {
            VoiceStart::Recording(recorder) => {
                tracing::info!(call = %request.call_sid, recording = %recorder.sid(), "call recording started");
                Ok(Some(Box::new(SealedSink {
                    recorder,
                    base_url: self.base_url.clone(),
                    held: Zeroizing::new(Vec::new()),
                    audio_started: false,
                    failure: None,
                })))
            }
            VoiceStart::Failed(rec) => {
                // Seed 000: the failure (16104) is published; the call goes on unrecorded.
                tracing::warn!(call = %request.call_sid, recording = %rec.sid, "call recording refused: no usable public key");
                Ok(None)
            }
        }
    }
}

/// One call recording being sealed.
struct SealedSink {
    recorder: VoiceRecorder,
    base_url: String,
    /// The mixer writes its WAV header before any audio: held here until the first sample
    /// follows, so a recording that never got audio stores nothing and is `absent`.
    held: Zeroizing<Vec<u8>>,
    audio_started: bool,
    /// Why a write failed, for [`RecordingSink::abort`].
    failure: Option<mediaseal_sink::SinkError>,
}

/// Whether `bytes` hold at least one byte past a complete WAV header (or are not a WAV
/// header this adapter can wait for).
fn holds_audio(bytes: &[u8]) -> bool {
    match mediaseal_media::wav::parse_header(bytes) {
        Some(info) => bytes.len() as u64 > info.data_offset,
        None => bytes.len() >= HEADER_HOLD_LIMIT,
    }
}

impl SealedSink {
    async fn forward(&mut self, bytes: &[u8]) -> Result<(), RecorderError> {
        if let Err(e) = self.recorder.write(bytes).await {
            let message = format!("sealing recording {} failed: {e}", self.recorder.sid());
            self.failure = Some(e);
            return Err(RecorderError(message));
        }
        Ok(())
    }
}

#[async_trait]
impl RecordingSink for SealedSink {
    fn recording(&self) -> Option<mediaseal_store::model::Recording> {
        Some(self.recorder.recording().clone())
    }

    async fn write(&mut self, wav: &[u8]) -> Result<(), RecorderError> {
        if self.failure.is_some() {
            return Err(RecorderError(format!(
                "recording {} already failed",
                self.recorder.sid()
            )));
        }
        if self.audio_started {
            return self.forward(wav).await;
        }
        self.held.extend_from_slice(wav);
        if !holds_audio(&self.held) {
            return Ok(());
        }
        self.audio_started = true;
        let held = std::mem::take(&mut self.held);
        self.forward(&held).await
    }

    async fn finish(
        self: Box<Self>,
        duration: Duration,
    ) -> Result<Option<RecordingInfo>, RecorderError> {
        let mut this = *self;
        if let Some(error) = this.failure.take() {
            fail(this.recorder, error).await;
            return Ok(None);
        }
        // A tail that is not a WAV header we understand is kept; a lone header is no audio.
        if !this.audio_started
            && !this.held.is_empty()
            && mediaseal_media::wav::parse_header(&this.held).is_none()
        {
            let held = std::mem::take(&mut this.held);
            if let Err(e) = this.forward(&held).await {
                if let Some(error) = this.failure.take() {
                    fail(this.recorder, error).await;
                }
                return Err(e);
            }
        }
        // The mixer counted the samples it wrote: that is the duration, rounded to the
        // nearest second, rather than a measure of the WAV whose header never gets its lengths.
        let seconds = (duration.as_millis() + 500) / 1000;
        let seconds = u32::try_from(seconds).unwrap_or(u32::MAX);
        this.recorder.set_duration(i64::from(seconds));
        let sid = this.recorder.sid().to_owned();
        let rec =
            this.recorder.finish().await.map_err(|e| {
                RecorderError(format!("recording {sid} could not be published: {e}"))
            })?;
        if rec.status != "completed" {
            tracing::info!(recording = %rec.sid, status = %rec.status, "call recording not kept");
            return Ok(None);
        }
        Ok(Some(RecordingInfo {
            url: format!(
                "{}/2010-04-01/Accounts/{}/Recordings/{}",
                this.base_url, rec.account_sid, rec.sid
            ),
            duration_secs: rec
                .duration
                .and_then(|d| u32::try_from(d).ok())
                .unwrap_or(seconds),
            sid: rec.sid,
        }))
    }

    async fn abort(self: Box<Self>) {
        let this = *self;
        match this.failure {
            Some(error) => fail(this.recorder, error).await,
            None => {
                let sid = this.recorder.sid().to_owned();
                if let Err(e) = this.recorder.interrupted().await {
                    tracing::error!(recording = %sid, error = %e, "an aborted call recording could not be discarded; the sweeper will remove it");
                }
            }
        }
    }
}

/// The service layer's failure path: with the customer's key, seed 000's `failed` (16104) is
/// published; otherwise nothing is kept.
async fn fail(recorder: VoiceRecorder, error: mediaseal_sink::SinkError) {
    let sid = recorder.sid().to_owned();
    match recorder.failed(error).await {
        Ok(rec) => {
            tracing::warn!(recording = %rec.sid, status = %rec.status, "call recording failed")
        }
        Err(e) => {
            tracing::error!(recording = %sid, error = %e, "call recording discarded after a storage failure")
        }
    }
}

#[cfg(test)]
mod tests {
    use mediaseal_call::recording::{Layout, TapTracks};
    use mediaseal_call::{CallId, RecordingId, RecordingRequest, RecordingSource};
    use mediaseal_twiml::{Callback, FetchTarget, HttpMethod, RecordingEvents, Trim};

    use super::*;

    fn request(status_callback: Option<Callback<RecordingEvents>>) -> RecordingRequest {
        RecordingRequest {
            call: CallId(7),
            recording: RecordingId(1),
            account_sid: "AC00000000000000000000000000000001".to_owned(),
            call_sid: "CA0123456789abcdef0123456789abcdef".to_owned(),
            layout: Layout::Dual,
            tracks: TapTracks::Both,
            source: RecordingSource::DialVerb,
            trim: Trim::DoNotTrim,
            status_callback,
        }
    }

    #[test]
    fn a_dual_dial_recording_maps_to_the_service_request() {
        let cb = Callback {
            target: FetchTarget {
                url: "https://app.example/rec".parse().expect("url"),
                method: HttpMethod::Get,
            },
            events: RecordingEvents {
                in_progress: false,
                completed: true,
                absent: true,
                failed: true,
            },
        };
        let v = voice_request(&request(Some(cb)), "https://ms.example");
        assert_eq!(v.account_sid, "AC00000000000000000000000000000001");
        assert_eq!(
            v.call_sid.as_deref(),
            Some("CA0123456789abcdef0123456789abcdef")
        );
        assert_eq!(v.channels, 2);
        assert_eq!(v.source, "DialVerb");
        assert_eq!(v.track.as_deref(), Some("both"));
        assert_eq!(v.duration, None);
        assert_eq!(v.content_type, "audio/x-wav");
        assert_eq!(v.base_url, "https://ms.example");
        let sub = v.subscription.expect("subscription");
        assert_eq!(sub.url, "https://app.example/rec");
        assert_eq!(sub.method, "GET");
        assert_eq!(sub.events, ["completed", "absent", "failed"]);
    }

    #[test]
    fn a_record_verb_is_the_caller_only_and_unsubscribed_without_a_callback() {
        let mut r = request(None);
        r.layout = Layout::Mono;
        r.tracks = TapTracks::CallerOnly;
        r.source = RecordingSource::RecordVerb;
        let v = voice_request(&r, "https://ms.example");
        assert_eq!(v.channels, 1);
        assert_eq!(v.source, "RecordVerb");
        assert_eq!(v.track.as_deref(), Some("inbound"));
        assert!(v.subscription.is_none());
    }

    #[test]
    fn a_lone_wav_header_is_held_until_audio_follows() {
        let header =
            mediaseal_media::wav::streaming_header(mediaseal_media::wav::Coding::Pcm, 2, 8000);
        assert!(!holds_audio(&header));
        assert!(!holds_audio(&header[..10]));
        let mut with_audio = header;
        with_audio.extend_from_slice(&[1, 0, 2, 0]);
        assert!(holds_audio(&with_audio));
        // Not a WAV header: passed on once it cannot be one.
        assert!(holds_audio(&[0x55; HEADER_HOLD_LIMIT]));
    }
}
