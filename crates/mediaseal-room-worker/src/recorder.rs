//! The track recorder: a [`FrameSink`] that muxes the published tracks its recording rules
//! select into Matroska and seals them in this process, so the only bytes that leave are
//! ciphertext.
//!
//! The server sends `record` with a [`RecordingSeal`] (public key only), before anyone joins
//! for rooms that record participants on connect, else when recording rules first include
//! something. Which tracks are recorded is a [`RecordingPlan`] over the room's rules: when
//! `recording_rules` change, tracks that no longer match are finished as below, and tracks that
//! match now start at their next usable frame (a keyframe for video, which the worker asks the
//! publisher for), each start being a new recording.
//! A recorded track's first usable frame opens a [`LiveMatroska`] and a
//! [`SealingStream`]; every frame is muxed, the muxed bytes sealed at once and wiped, and the
//! ciphertext queued as `recording_data` events in blocks of [`DATA_BLOCK`]. When the track ends
//! (unpublished, its publisher gone, the room over) the tail is sealed and `recording_finished`
//! carries the receipt's object headers. Nothing touches the disk; the plaintext exists only in
//! the mux buffer between a frame's arrival and its sealing.
//!
//! Simulcast tracks are recorded from one layer: the first one seen.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use mediaseal_crypto::{Format, PublicKey};
use mediaseal_media::mkv_writer::{LiveMatroska, TrackCodec};
use mediaseal_rooms::control::{RecordingSeal, WorkerEvent};
use mediaseal_rooms::recording_rules::{RecordingChange, RecordingPlan, RecordingRules};
use mediaseal_rooms::room::{FrameSink, SinkFrame, SinkTrack};
use mediaseal_rooms::signal::TrackKind;
use mediaseal_rooms::str0m::format::Codec;
use mediaseal_sink::{CustomerKey, Seal, SealingStream, receipt_object_meta};
use zeroize::Zeroize;

/// Ciphertext is sent to the server in blocks of about this size.
pub(crate) const DATA_BLOCK: usize = 128 * 1024;

/// The `record` request could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RecordSetupError {
    /// The public key is not base64 DER of an RSA key.
    #[error("the recording key is not a usable RSA public key: {0}")]
    Key(String),
    /// The envelope format is unknown.
    #[error("the recording format '{0}' is unknown")]
    Format(String),
}

/// How tracks are sealed, resolved from a [`RecordingSeal`].
struct SealWith {
    seal: Seal,
    key: PublicKey,
}

/// One track being recorded.
struct Recording {
    mux: LiveMatroska,
    stream: SealingStream,
    /// Ciphertext not yet sent.
    sealed: Vec<u8>,
    /// The simulcast layer recorded.
    layer: Option<String>,
    /// Media time of the first frame, in its clock's ticks, and the clock rate.
    first_ticks: u64,
    clock_hz: u64,
}

/// A track seen but not recorded yet (no frame, or a codec it cannot record).
struct Announced {
    participant_sid: String,
    kind: TrackKind,
    name: String,
    /// Unsupported codec: logged once, then ignored.
    refused: bool,
}

struct State {
    with: SealWith,
    started: Instant,
    /// Which tracks the rules record.
    plan: RecordingPlan,
    announced: HashMap<String, Announced>,
    recording: HashMap<String, Recording>,
    /// Events for the control pipe, in order.
    outbox: Vec<WorkerEvent>,
    /// Muxed plaintext of one frame, sealed and wiped at once.
    plain: Vec<u8>,
}

/// The worker's handle on the recorder: the events it queued.
#[derive(Clone)]
pub struct Recorder {
    state: Arc<Mutex<State>>,
}

impl core::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Recorder")
            .field("recording", &state.recording.len())
            .field("queued_events", &state.outbox.len())
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// A recorder sealing as `seal` says and recording what `rules` select; `started` is when
    /// the room process started (track offsets count from it).
    pub fn new(
        seal: &RecordingSeal,
        started: Instant,
        rules: RecordingRules,
    ) -> Result<Self, RecordSetupError> {
        let der = BASE64
            .decode(seal.public_key.as_bytes())
            .map_err(|e| RecordSetupError::Key(e.to_string()))?;
        let key = PublicKey::from_der(&der).map_err(|e| RecordSetupError::Key(e.to_string()))?;
        let seal_kind = if seal.customer {
            let format = Format::from_str(&seal.format)
                .map_err(|_| RecordSetupError::Format(seal.format.clone()))?;
            Seal::Customer {
                format,
                key: CustomerKey {
                    sid: seal.key_id.clone(),
                    key: key.clone(),
                },
            }
        } else {
            Seal::AtRest
        };
        Ok(Self {
            state: Arc::new(Mutex::new(State {
                with: SealWith {
                    seal: seal_kind,
                    key,
                },
                started,
                plan: RecordingPlan::new(rules),
                announced: HashMap::new(),
                recording: HashMap::new(),
                outbox: Vec::new(),
                plain: Vec::with_capacity(64 * 1024),
            })),
        })
    }

    /// The sink to add to the room.
    pub fn sink(&self) -> Box<dyn FrameSink + Send> {
        Box::new(RecorderSink {
            state: Arc::clone(&self.state),
        })
    }

    /// Applies new rules: recordings of tracks that no longer match are finished (their events
    /// queued), tracks that match now are recorded from their next usable frame.
    pub fn set_rules(&self, rules: RecordingRules) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for change in state.plan.set_rules(rules) {
            match change {
                RecordingChange::Stop(track_sid) => state.finish(&track_sid),
                RecordingChange::Start(track_sid) => {
                    tracing::debug!(track = %track_sid, "track recording resumes at its next usable frame");
                }
            }
        }
    }

    /// Video tracks the rules record that have not started yet: each needs a keyframe to begin
    /// at, which the publisher may not send on its own.
    pub fn awaiting_keyframe(&self) -> Vec<String> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .announced
            .iter()
            .filter(|(sid, a)| {
                a.kind == TrackKind::Video
                    && !a.refused
                    && state.plan.is_recorded(sid)
                    && !state.recording.contains_key(*sid)
            })
            .map(|(sid, _)| sid.clone())
            .collect()
    }

    /// Takes the events queued since the last call.
    pub fn take_events(&self) -> Vec<WorkerEvent> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut state.outbox)
    }
}

struct RecorderSink {
    state: Arc<Mutex<State>>,
}

impl FrameSink for RecorderSink {
    fn track_started(&mut self, track: SinkTrack<'_>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .plan
            .track_published(track.track_sid, track.identity, track.name, track.kind);
        state.announced.insert(
            track.track_sid.to_owned(),
            Announced {
                participant_sid: track.participant_sid.to_owned(),
                kind: track.kind,
                name: track.name.to_owned(),
                refused: false,
            },
        );
    }

    fn frame(&mut self, frame: SinkFrame<'_>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.frame(&frame);
    }

    fn track_ended(&mut self, track_sid: &str, _at: Instant) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.announced.remove(track_sid);
        state.plan.track_ended(track_sid);
        state.finish(track_sid);
    }
}

/// What the recorder calls a codec, and how it muxes it.
fn track_codec(codec: Codec) -> Option<(TrackCodec, &'static str)> {
    Some(match codec {
        Codec::Opus => (
            TrackCodec::Opus {
                channels: 2,
                sample_rate: 48_000,
            },
            "opus",
        ),
        Codec::PCMU => (TrackCodec::Pcmu, "pcmu"),
        Codec::Vp8 => (TrackCodec::Vp8, "vp8"),
        Codec::H264 => (TrackCodec::H264, "h264"),
        _ => return None,
    })
}

impl State {
    fn frame(&mut self, frame: &SinkFrame<'_>) {
        if !self.recording.contains_key(frame.track_sid)
            && (!self.plan.is_recorded(frame.track_sid) || !self.begin(frame))
        {
            return;
        }
        let Some(rec) = self.recording.get_mut(frame.track_sid) else {
            return;
        };
        if rec.layer.as_deref() != frame.layer {
            return;
        }
        let ticks = frame.media_time.numer().saturating_sub(rec.first_ticks);
        let pts_ms = ticks.saturating_mul(1000) / rec.clock_hz.max(1);
        self.plain.clear();
        if let Err(e) = rec
            .mux
            .push(pts_ms, frame.keyframe, frame.data, &mut self.plain)
        {
            // One bad frame (the writer wrote nothing of it) does not end the recording.
            tracing::debug!(track = %frame.track_sid, error = %e, "frame not recorded");
            wipe(&mut self.plain);
            return;
        }
        let sealed = rec.stream.write(&self.plain, &mut rec.sealed);
        wipe(&mut self.plain);
        match sealed {
            Ok(()) => {
                if rec.sealed.len() >= DATA_BLOCK {
                    let data = BASE64.encode(&rec.sealed);
                    rec.sealed.clear();
                    self.outbox.push(WorkerEvent::RecordingData {
                        track_sid: frame.track_sid.to_owned(),
                        sealed: data,
                    });
                }
            }
            Err(e) => self.fail(frame.track_sid, e.to_string()),
        }
    }

    /// Opens the recording of the frame's track; `false` if it cannot be recorded.
    fn begin(&mut self, frame: &SinkFrame<'_>) -> bool {
        let Some(announced) = self.announced.get_mut(frame.track_sid) else {
            return false;
        };
        if announced.refused {
            return false;
        }
        // Video starts at a keyframe: a recording that resumes mid-stream must not open with
        // frames nothing can decode, nor count their time.
        if announced.kind == TrackKind::Video && !frame.keyframe {
            return false;
        }
        let Some((codec, codec_name)) = track_codec(frame.codec) else {
            tracing::warn!(track = %frame.track_sid, codec = ?frame.codec, "track not recorded: its codec cannot be muxed into Matroska here");
            announced.refused = true;
            return false;
        };
        let stream = match SealingStream::new(&self.with.seal, &self.with.key) {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(track = %frame.track_sid, error = %e, "track not recorded: sealing failed to start");
                announced.refused = true;
                return false;
            }
        };
        let mux = LiveMatroska::new(codec);
        let offset_ms = frame
            .received_at
            .saturating_duration_since(self.started)
            .as_millis();
        self.outbox.push(WorkerEvent::RecordingStarted {
            track_sid: frame.track_sid.to_owned(),
            participant_sid: announced.participant_sid.clone(),
            track_name: announced.name.clone(),
            kind: announced.kind,
            codec: codec_name.to_owned(),
            container: mux.extension().to_owned(),
            offset_ms: u64::try_from(offset_ms).unwrap_or(u64::MAX),
        });
        self.recording.insert(
            frame.track_sid.to_owned(),
            Recording {
                mux,
                stream,
                sealed: Vec::with_capacity(DATA_BLOCK + 16 * 1024),
                layer: frame.layer.map(str::to_owned),
                first_ticks: frame.media_time.numer(),
                clock_hz: u64::from(frame.media_time.denom()),
            },
        );
        true
    }

    /// Seals the tail of a track's recording and reports it.
    fn finish(&mut self, track_sid: &str) {
        let Some(mut rec) = self.recording.remove(track_sid) else {
            return;
        };
        if rec.mux.frames_written() == 0 {
            self.outbox.push(WorkerEvent::RecordingFailed {
                track_sid: track_sid.to_owned(),
                message: "the track ended before a frame could be recorded".to_owned(),
            });
            return;
        }
        let duration_ms = rec.mux.duration_ms();
        self.plain.clear();
        rec.mux.finish(&mut self.plain);
        let written = rec.stream.write(&self.plain, &mut rec.sealed);
        wipe(&mut self.plain);
        let finished = written.and_then(|()| {
            let plain_size = rec.stream.plain_size();
            rec.stream
                .finish(&mut rec.sealed)
                .map(|(receipt, _head)| (receipt, plain_size))
        });
        match finished {
            Ok((receipt, plain_size)) => {
                if !rec.sealed.is_empty() {
                    self.outbox.push(WorkerEvent::RecordingData {
                        track_sid: track_sid.to_owned(),
                        sealed: BASE64.encode(&rec.sealed),
                    });
                }
                let object_meta: BTreeMap<String, String> = receipt_object_meta(&receipt);
                self.outbox.push(WorkerEvent::RecordingFinished {
                    track_sid: track_sid.to_owned(),
                    duration_ms,
                    plain_size,
                    object_meta,
                });
            }
            Err(e) => self.fail(track_sid, e.to_string()),
        }
    }

    fn fail(&mut self, track_sid: &str, message: String) {
        if self.recording.remove(track_sid).is_some() {
            tracing::warn!(track = %track_sid, error = %message, "track recording failed");
            self.outbox.push(WorkerEvent::RecordingFailed {
                track_sid: track_sid.to_owned(),
                message,
            });
        }
    }
}

/// Wipes the muxed plaintext of one frame. Only the bytes written are zeroed: everything past
/// them was wiped when it was last used, so a buffer grown to a whole cluster is not cleared in
/// full for every frame.
fn wipe(plain: &mut Vec<u8>) {
    plain.as_mut_slice().zeroize();
    plain.clear();
}
