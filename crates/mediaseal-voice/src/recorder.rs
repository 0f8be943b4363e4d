//! The recorder consumer: tap frames from a relay thread's bounded queue, mixed into WAV by
//! [`Mixer`], written into the recording sink as the audio arrives.
//!
//! The relay offers each frame with `try_send`: a full queue drops the frame (counted as
//! `mediaseal_recorder_frames_dropped_total`) and never blocks the packet path. This task
//! drains the queue on a timer rather than waiting on it: a task parked on `recv` has the relay
//! thread wake it (a syscall and a cross-CPU wakeup) for every frame, which cost the relay more
//! than decrypting and re-encrypting the packet. When the tap stops (or the call closes) the
//! relay drops its end of the queue; this task then writes the tail, finishes the recording and
//! reports it to the signalling task.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mediaseal_call::recording::{FrameSink, Layout, Mixer, TapFrame};
use mediaseal_call::{CallId, RecordingId};
use mediaseal_twiml::RecordingInfo;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::mpsc::{Receiver, Sender, UnboundedSender};
use tokio::time::MissedTickBehavior;

use crate::seams::RecordingSink;

/// Mixing latency: a frame is written once it is this far behind the newest audio.
const MIX_LATENCY_MS: u32 = 240;
/// Bytes gathered before a write to the sink (about a quarter second of two-channel audio).
const WRITE_CHUNK: usize = 8 * 1024;
/// How often the queue is drained: 5 frames of a two-party call, far below the queue's
/// capacity (`recorder_queue`, 500 by default), and well inside the mixing latency.
const DRAIN_INTERVAL: Duration = Duration::from_millis(50);

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

/// Set by the signalling task while the API has a recording paused.
pub(crate) type PauseFlag = Arc<AtomicBool>;

/// Consumes frames until the relay drops the queue, then finishes the recording.
pub(crate) async fn consume(
    call: CallId,
    recording: RecordingId,
    layout: Layout,
    mut frames: Receiver<TapFrame>,
    mut sink: Box<dyn RecordingSink>,
    done: UnboundedSender<Finished>,
    paused: PauseFlag,
) {
    let mut mixer = Mixer::new(layout, MIX_LATENCY_MS);
    let mut out = Vec::with_capacity(WRITE_CHUNK * 2);
    let mut failed = false;
    // Twilio's `PauseBehavior=skip`: paused audio is dropped and the timeline closes over the
    // gap, so the recording (and its duration) holds only what was recorded. `skipped` is the
    // paused span in samples; `pause_from` where the current pause began on the timeline.
    let mut skipped: u64 = 0;
    let mut pause_from: Option<u64> = None;
    let mut next_position: u64 = 0;
    let mut tick = tokio::time::interval(DRAIN_INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let mut frame = match frames.try_recv() {
            Ok(frame) => frame,
            Err(TryRecvError::Empty) => {
                tick.tick().await;
                continue;
            }
            Err(TryRecvError::Disconnected) => break,
        };
        if paused.load(Ordering::Relaxed) {
            pause_from.get_or_insert(next_position);
            continue;
        }
        if let Some(from) = pause_from.take() {
            skipped = skipped.saturating_add(frame.position.saturating_sub(from));
        }
        frame.position = frame.position.saturating_sub(skipped);
        next_position = next_position.max(
            frame
                .position
                .saturating_add(skipped)
                .saturating_add(frame.samples.len() as u64),
        );
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use mediaseal_call::recording::Track;

    use super::*;
    use crate::seams::RecorderError;

    /// Keeps the duration it was finished with.
    struct Sink(Arc<Mutex<Option<Duration>>>);

    #[async_trait]
    impl RecordingSink for Sink {
        async fn write(&mut self, _wav: &[u8]) -> Result<(), RecorderError> {
            Ok(())
        }

        async fn finish(
            self: Box<Self>,
            duration: Duration,
        ) -> Result<Option<RecordingInfo>, RecorderError> {
            *self.0.lock().unwrap() = Some(duration);
            Ok(None)
        }

        async fn abort(self: Box<Self>) {}
    }

    fn frame(position: u64) -> TapFrame {
        TapFrame {
            track: Track::Caller,
            position,
            samples: vec![1000; 160],
        }
    }

    #[tokio::test]
    async fn paused_audio_is_skipped_not_filled_with_silence() {
        let finished = Arc::new(Mutex::new(None));
        let (tx, rx) = tokio::sync::mpsc::channel(1000);
        let (done, mut reports) = tokio::sync::mpsc::unbounded_channel();
        let paused = PauseFlag::default();
        let task = tokio::spawn(consume(
            CallId(1),
            RecordingId(1),
            Layout::Mono,
            rx,
            Box::new(Sink(finished.clone())),
            done,
            paused.clone(),
        ));
        // 1 s recorded, 2 s paused, 1 s recorded: 20 ms frames at 8 kHz.
        for i in 0..200u64 {
            if i == 50 {
                // Frames already queued are consumed before the switch is seen; wait for them.
                while tx.capacity() < tx.max_capacity() {
                    tokio::task::yield_now().await;
                }
                paused.store(true, Ordering::Relaxed);
            }
            if i == 150 {
                while tx.capacity() < tx.max_capacity() {
                    tokio::task::yield_now().await;
                }
                paused.store(false, Ordering::Relaxed);
            }
            tx.send(frame(i * 160)).await.unwrap();
        }
        drop(tx);
        task.await.unwrap();
        assert!(reports.recv().await.is_some());
        let duration = finished.lock().unwrap().expect("finished");
        assert!(
            (1900..=2100).contains(&duration.as_millis()),
            "2 s recorded, the 2 s pause skipped: {duration:?}"
        );
    }
}
