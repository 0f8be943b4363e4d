//! The path of a room's `recording_*` events from its worker to the server's recording task.
//!
//! The events cannot go on the participants' broadcast ring: a lost block would corrupt a
//! recording. They go on an unbounded channel instead, guarded by a [`RecordingGate`] that
//! counts the ciphertext waiting in it. When the reader (which writes to the object store) falls
//! more than [`MAX_QUEUED_RECORDING_BYTES`] behind, the track whose block does not fit is failed
//! (`recording_failed`, so nothing of it is kept) rather than letting the server's memory grow
//! without bound; the worker and the room's media are never held up.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mediaseal_rooms::control::WorkerEvent;
use tokio::sync::mpsc;

/// Ciphertext of one room's recordings that may wait for the object store.
pub const MAX_QUEUED_RECORDING_BYTES: usize = 64 << 20;

/// The room's recording events, as [`crate::RoomHost::record`] hands them over. Closed when the
/// worker is gone.
#[derive(Debug)]
pub struct RecordingEvents {
    rx: mpsc::UnboundedReceiver<WorkerEvent>,
    backlog: Arc<AtomicUsize>,
}

impl RecordingEvents {
    /// The next event; `None` once the worker is gone and everything was read.
    pub async fn recv(&mut self) -> Option<WorkerEvent> {
        let event = self.rx.recv().await?;
        if let WorkerEvent::RecordingData { sealed, .. } = &event {
            self.backlog.fetch_sub(sealed.len(), Ordering::AcqRel);
        }
        Some(event)
    }
}

/// The worker side of the channel: admits events while the backlog fits.
#[derive(Debug)]
pub(crate) struct RecordingGate {
    tx: mpsc::UnboundedSender<WorkerEvent>,
    backlog: Arc<AtomicUsize>,
    cap: usize,
    /// Tracks failed for the backlog: their later events are dropped.
    failed: HashSet<String>,
}

impl RecordingGate {
    /// A gate and its reader, holding at most `cap` bytes of ciphertext.
    pub(crate) fn new(cap: usize) -> (Self, RecordingEvents) {
        let (tx, rx) = mpsc::unbounded_channel();
        let backlog = Arc::new(AtomicUsize::new(0));
        (
            Self {
                tx,
                backlog: Arc::clone(&backlog),
                cap,
                failed: HashSet::new(),
            },
            RecordingEvents { rx, backlog },
        )
    }

    /// Passes a `recording_*` event on, or fails its track if the reader is too far behind.
    pub(crate) fn admit(&mut self, room_sid: &str, event: WorkerEvent) {
        let (WorkerEvent::RecordingStarted {
            track_sid: track, ..
        }
        | WorkerEvent::RecordingData {
            track_sid: track, ..
        }
        | WorkerEvent::RecordingFinished {
            track_sid: track, ..
        }
        | WorkerEvent::RecordingFailed {
            track_sid: track, ..
        }) = &event
        else {
            return;
        };
        if self.failed.contains(track) {
            return;
        }
        if let WorkerEvent::RecordingData { sealed, .. } = &event {
            let queued = self.backlog.load(Ordering::Acquire);
            if queued.saturating_add(sealed.len()) > self.cap {
                tracing::warn!(room = %room_sid, track = %track, queued, "the object store is too far behind this room's recordings: the track's recording is dropped");
                let failed = WorkerEvent::RecordingFailed {
                    track_sid: track.clone(),
                    message: format!(
                        "more than {} MiB of this room's recordings were waiting for the object store",
                        self.cap >> 20
                    ),
                };
                self.failed.insert(track.clone());
                // Nobody reading means the room was never asked to record: nothing to keep.
                let _ = self.tx.send(failed);
                return;
            }
            self.backlog.fetch_add(sealed.len(), Ordering::AcqRel);
        }
        let _ = self.tx.send(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(track: &str, len: usize) -> WorkerEvent {
        WorkerEvent::RecordingData {
            track_sid: track.to_owned(),
            sealed: "A".repeat(len),
        }
    }

    fn finished(track: &str) -> WorkerEvent {
        WorkerEvent::RecordingFinished {
            track_sid: track.to_owned(),
            duration_ms: 1000,
            plain_size: 10,
            object_meta: Default::default(),
        }
    }

    #[tokio::test]
    async fn a_reader_that_falls_behind_fails_the_track_that_does_not_fit_and_only_it() {
        let (mut gate, mut events) = RecordingGate::new(100);
        gate.admit("RM1", data("MTa", 60));
        gate.admit("RM1", data("MTb", 30));
        // 90 queued: 20 more do not fit, so MTa fails and its later events are dropped.
        gate.admit("RM1", data("MTa", 20));
        gate.admit("RM1", data("MTa", 1));
        gate.admit("RM1", finished("MTa"));
        assert!(
            matches!(events.recv().await, Some(WorkerEvent::RecordingData { sealed, .. }) if sealed.len() == 60)
        );
        assert!(
            matches!(events.recv().await, Some(WorkerEvent::RecordingData { sealed, .. }) if sealed.len() == 30)
        );
        match events.recv().await {
            Some(WorkerEvent::RecordingFailed { track_sid, message }) => {
                assert_eq!(track_sid, "MTa");
                assert!(message.contains("object store"), "{message}");
            }
            other => panic!("expected MTa to fail, got {other:?}"),
        }
        // The reader caught up: MTb goes on, and its end arrives.
        gate.admit("RM1", data("MTb", 90));
        gate.admit("RM1", finished("MTb"));
        assert!(
            matches!(events.recv().await, Some(WorkerEvent::RecordingData { sealed, .. }) if sealed.len() == 90)
        );
        assert!(
            matches!(events.recv().await, Some(WorkerEvent::RecordingFinished { track_sid, .. }) if track_sid == "MTb")
        );
        drop(gate);
        assert!(events.recv().await.is_none());
    }

    #[tokio::test]
    async fn other_events_do_not_pass_the_gate() {
        let (mut gate, mut events) = RecordingGate::new(100);
        gate.admit(
            "RM1",
            WorkerEvent::TrackUnpublished {
                participant_sid: "PA1".to_owned(),
                track_sid: "MT1".to_owned(),
            },
        );
        drop(gate);
        assert!(events.recv().await.is_none());
    }
}
