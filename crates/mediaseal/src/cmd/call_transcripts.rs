//! `AutoTranscribe` for call recordings: the SIP edge's recorder, wrapped so that a recording of
//! an account with an `AutoTranscribe` service keeps its plaintext in memory while it is sealed
//! and is transcribed from there once published — the same tap an uploaded recording gets
//! ([`AutoTranscribeTap`]), so a call recorded with the customer's key is transcribed without
//! its plaintext ever resting anywhere.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mediaseal_server::{AppState, AutoTranscribeTap};
use mediaseal_voice::{
    CallRecorder, RecorderError, RecordingInfo, RecordingRequest, RecordingSink,
};

/// A [`CallRecorder`] whose recordings are followed by `AutoTranscribe`.
pub(crate) struct TranscribingRecorder {
    inner: Arc<dyn CallRecorder>,
    state: AppState,
}

impl TranscribingRecorder {
    pub(crate) fn new(inner: Arc<dyn CallRecorder>, state: AppState) -> Self {
        Self { inner, state }
    }
}

#[async_trait]
impl CallRecorder for TranscribingRecorder {
    async fn start(
        &self,
        request: &RecordingRequest,
    ) -> Result<Option<Box<dyn RecordingSink>>, RecorderError> {
        let Some(sink) = self.inner.start(request).await? else {
            return Ok(None);
        };
        Ok(Some(
            match AutoTranscribeTap::for_account(&self.state, &request.account_sid).await {
                Some(tap) => Box::new(TappedSink {
                    inner: sink,
                    tap,
                    state: self.state.clone(),
                    account_sid: request.account_sid.clone(),
                }),
                None => sink,
            },
        ))
    }
}

/// A recording being written, its plaintext also kept by the tap.
struct TappedSink {
    inner: Box<dyn RecordingSink>,
    tap: AutoTranscribeTap,
    state: AppState,
    account_sid: String,
}

#[async_trait]
impl RecordingSink for TappedSink {
    async fn write(&mut self, wav: &[u8]) -> Result<(), RecorderError> {
        self.tap.feed(wav);
        self.inner.write(wav).await
    }

    async fn finish(
        self: Box<Self>,
        duration: Duration,
    ) -> Result<Option<RecordingInfo>, RecorderError> {
        let Self {
            inner,
            tap,
            state,
            account_sid,
        } = *self;
        let info = inner.finish(duration).await?;
        if let Some(info) = &info {
            // The call goes on (or ends) without waiting for the transcript jobs to be queued.
            let sid = info.sid.clone();
            tokio::spawn(async move { tap.recorded(&state, &account_sid, &sid).await });
        }
        Ok(info)
    }

    async fn abort(self: Box<Self>) {
        // The tap is dropped (and wiped) with the rest of the recording.
        self.inner.abort().await;
    }

    fn recording(&self) -> Option<mediaseal_store::model::Recording> {
        self.inner.recording()
    }
}
