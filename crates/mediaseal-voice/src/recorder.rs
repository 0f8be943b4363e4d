//! The recorder consumer: tap frames from a relay thread's bounded queue, mixed into WAV by
//! [`Mixer`], written into the recording sink as the audio arrives.
//!
//! The relay offers each frame with `try_send`: a full queue drops the frame (counted as
//! `mediaseal_recorder_frames_dropped_total`) and never blocks the packet path. When the tap
//! stops (or the call closes) the relay drops its end of the queue; this task then writes the
//! tail, finishes the recording and reports it to the signalling task.

use std::time::Duration;

use mediaseal_call::recording::{FrameSink, Layout, Mixer, TapFrame};
use mediaseal_call::{CallId, RecordingId};
use mediaseal_twiml::RecordingInfo;
use tokio::sync::mpsc::{Receiver, Sender, UnboundedSender};

use crate::seams::RecordingSink;

/// Mixing latency: a frame is written once it is this far behind the newest audio.
const MIX_LATENCY_MS: u32 = 240;
/// Bytes gathered before a write to the sink (about a quarter second of two-channel audio).
const WRITE_CHUNK: usize = 8 * 1024;

/// The relay's end of a recording queue.
#[derive(Debug)]
pub(crate) struct TapSender(pub(crate) Sender<TapFrame>);

impl FrameSink for TapSender {
    fn try_push(&mut self, frame: TapFrame) -> Result<(), TapFrame> {
        self.0.try_send(frame).map_err(|e| match e {
            tokio::sync::mpsc::error::TrySendError::Full(f)
            | tokio::sync::mpsc::error::TrySendError::Closed(f) => f,
        })
    }
}

/// A recording's end, for the signalling task.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) call: CallId,
    pub(crate) recording: RecordingId,
    pub(crate) info: Option<RecordingInfo>,
}

/// Consumes frames until the relay drops the queue, then finishes the recording.
pub(crate) async fn consume(
    call: CallId,
    recording: RecordingId,
    layout: Layout,
    mut frames: Receiver<TapFrame>,
    mut sink: Box<dyn RecordingSink>,
    done: UnboundedSender<Finished>,
) {
    let mut mixer = Mixer::new(layout, MIX_LATENCY_MS);
    let mut out = Vec::with_capacity(WRITE_CHUNK * 2);
    let mut failed = false;
    while let Some(frame) = frames.recv().await {
        mixer.push(&frame, &mut out);
        if out.len() >= WRITE_CHUNK {
            if let Err(e) = sink.write(&out).await {
                tracing::error!(%call, error = %e, "recording write failed; the recording is discarded");
                failed = true;
                break;
            }
            out.clear();
        }
    }
    let info = if failed {
        // Closing the queue makes the relay count further frames as dropped.
        frames.close();
        sink.abort().await;
        None
    } else {
        mixer.finish(&mut out);
        let mut ok = true;
        if !out.is_empty()
            && let Err(e) = sink.write(&out).await
        {
            tracing::error!(%call, error = %e, "recording write failed; the recording is discarded");
            ok = false;
        }
        if ok {
            let duration = Duration::from_millis(mixer.duration_ms());
            match sink.finish(duration).await {
                Ok(info) => info,
                Err(e) => {
                    tracing::error!(%call, error = %e, "recording could not be finished");
                    None
                }
            }
        } else {
            sink.abort().await;
            None
        }
    };
    let _ = done.send(Finished {
        call,
        recording,
        info,
    });
}
