//! The control pipe between the server and a room worker process: length-prefixed JSON frames
//! over the worker's stdin (requests) and stdout (events).
//!
//! A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON, one object
//! tagged by `"type"`. Frames larger than [`MAX_FRAME_LEN`] are a protocol error and end the
//! worker. The codec is sans-IO: [`FrameDecoder`] takes whatever bytes arrived and yields whole
//! frames; [`encode_frame`] gives the bytes to write. The server drives it from tokio, the
//! worker from its poll loop.
//!
//! Requests ([`Request`], server → worker): `join`, `offer`, `answer`, `candidate`,
//! `select_layer`, `leave`, `kick`, `complete`, `stats`, `record`, `recording_rules`,
//! `subscribe_rules`.
//!
//! Events ([`WorkerEvent`], worker → server): `ready` (first frame, with the UDP addresses and the
//! hardening report), `answer`, `offer`, `participant_connected`, `participant_disconnected`,
//! `track_published`, `track_unpublished`, `track_subscribed`, `track_unsubscribed`, `error`,
//! `stats`, `recording_started`, `recording_data`, `recording_finished`, `recording_failed`,
//! `room_ended` (last frame before exit). Plaintext media never crosses this pipe: track
//! recordings are sealed in the worker and only their ciphertext does.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::recording_rules::RecordingRules;
use crate::room::{Command, DisconnectReason, RoomEndReason, RoomEvent, RoomStats};
use crate::signal::TrackInfo;
use crate::subscribe_rules::SubscribeRules;

/// Largest control frame, in bytes: an SDP ([`crate::signal::MAX_SDP_LEN`]) plus room for the
/// envelope; stats of a full room fit too.
pub const MAX_FRAME_LEN: usize = 1024 * 1024;

/// A request from the server to the room worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Admit a participant whose token the server verified, with its SDP offer. The worker
    /// answers with `answer` (or `error`).
    Join {
        /// `PA…` SID the server allotted.
        participant_sid: String,
        /// Identity from the Access Token.
        identity: String,
        /// The participant's SDP offer.
        sdp: String,
        /// Subscribe to the other participants' tracks (`false` for WHIP publishers).
        #[serde(default = "yes")]
        subscribe: bool,
        /// Send the participant offers when tracks come and go (`false` for WHIP and WHEP,
        /// which have no way to receive them: tracks then fill the recvonly m-lines it
        /// offered).
        #[serde(default = "yes")]
        renegotiate: bool,
    },
    /// A participant's renegotiation offer.
    Offer {
        /// Whose.
        participant_sid: String,
        /// SDP text.
        sdp: String,
    },
    /// A participant's answer to the worker's last `offer`.
    Answer {
        /// Whose.
        participant_sid: String,
        /// SDP text.
        sdp: String,
    },
    /// A trickled remote ICE candidate.
    Candidate {
        /// Whose.
        participant_sid: String,
        /// `candidate:…` attribute value.
        candidate: String,
    },
    /// A subscriber's simulcast preference for one track (`null`: the best flowing layer).
    SelectLayer {
        /// The subscriber.
        participant_sid: String,
        /// `MT…` SID of the track.
        track_sid: String,
        /// RTP stream id of the wanted layer.
        #[serde(default)]
        layer: Option<String>,
    },
    /// The participant left (WebSocket closed, WHIP/WHEP `DELETE`).
    Leave {
        /// Who.
        participant_sid: String,
    },
    /// Remove the participant (REST `Status=disconnected`).
    Kick {
        /// Who.
        participant_sid: String,
    },
    /// End the room (REST `Status=completed`): every participant is disconnected, the worker
    /// sends `room_ended` and exits.
    Complete,
    /// Ask for a `stats` event.
    Stats,
    /// Record the published tracks the room's recording rules select, from now on, each as one
    /// Matroska file sealed in this process as `seal` says; the ciphertext comes back as
    /// `recording_*` events. Sent once: before the first participant joins for rooms that
    /// record participants on connect, else when rules first include something. The rules are
    /// the last `recording_rules` sent before it, or "include all" if none was.
    Record {
        /// How to seal.
        seal: RecordingSeal,
    },
    /// The room's recording rules changed (REST `RecordingRules`): tracks that match now start
    /// recording at their next usable frame, tracks that no longer match have their recordings
    /// finished (`recording_finished`). Before `record`, it only sets the rules `record` uses.
    RecordingRules {
        /// The rules, already checked by the server.
        rules: RecordingRules,
    },
    /// A participant's subscribe rules changed (REST `SubscribeRules`): it receives only the
    /// other participants' tracks they include, from now on (`track_unsubscribed` and a room
    /// `offer` for tracks taken away, an `offer` then `track_subscribed` for tracks added).
    SubscribeRules {
        /// Whose.
        participant_sid: String,
        /// The rules, already checked by the server.
        rules: SubscribeRules,
    },
}

/// How a room worker seals its track recordings: one RSA public key (the customer's, or the
/// service's at-rest key) and the envelope format. Public material only: the worker can seal but
/// never read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingSeal {
    /// Sealed with the customer's key (`true`: `s3-cbc`, seed 001) or at rest (`false`).
    pub customer: bool,
    /// Envelope format name (`s3-cbc`, `native`).
    pub format: String,
    /// The key's id in the envelope: the customer key's `CR…` SID, or the at-rest key id.
    pub key_id: String,
    /// The RSA public key, SubjectPublicKeyInfo DER, base64.
    pub public_key: String,
}

fn yes() -> bool {
    true
}

impl Request {
    /// The room command this request carries; `None` for requests the worker shell answers
    /// itself (`stats`, `record`, `recording_rules`).
    pub fn into_command(self) -> Option<Command> {
        Some(match self {
            Self::Join {
                participant_sid,
                identity,
                sdp,
                subscribe,
                renegotiate,
            } => Command::Join {
                participant_sid,
                identity,
                offer: sdp,
                subscribe,
                renegotiate,
            },
            Self::Offer {
                participant_sid,
                sdp,
            } => Command::Offer {
                participant_sid,
                sdp,
            },
            Self::Answer {
                participant_sid,
                sdp,
            } => Command::Answer {
                participant_sid,
                sdp,
            },
            Self::Candidate {
                participant_sid,
                candidate,
            } => Command::Candidate {
                participant_sid,
                candidate,
            },
            Self::SelectLayer {
                participant_sid,
                track_sid,
                layer,
            } => Command::SelectLayer {
                participant_sid,
                track_sid,
                layer,
            },
            Self::Leave { participant_sid } => Command::Leave { participant_sid },
            Self::Kick { participant_sid } => Command::Kick { participant_sid },
            Self::SubscribeRules {
                participant_sid,
                rules,
            } => Command::SubscribeRules {
                participant_sid,
                rules,
            },
            Self::Complete => Command::Complete,
            Self::Stats | Self::Record { .. } | Self::RecordingRules { .. } => return None,
        })
    }
}

/// What the worker did to protect the plaintext it holds (see `docs/ROOMS.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct HardeningReport {
    /// `prctl(PR_SET_DUMPABLE, 0)` succeeded: no core dumps, no ptrace by same-uid processes.
    pub not_dumpable: bool,
    /// `RLIMIT_CORE` is 0.
    pub core_limit_zero: bool,
    /// `mlockall(MCL_CURRENT | MCL_FUTURE)` succeeded: memory never reaches swap.
    pub memory_locked: bool,
    /// Why `mlockall` failed, when it did (typically `RLIMIT_MEMLOCK`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_lock_error: Option<String>,
    /// `prctl(PR_SET_NO_NEW_PRIVS, 1)` succeeded: exec cannot gain privileges.
    pub no_new_privs: bool,
}

/// An event from the room worker to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkerEvent {
    /// First frame: the worker is listening.
    Ready {
        /// `RM…` SID.
        room_sid: String,
        /// The worker's process id.
        pid: u32,
        /// UDP addresses the room's media uses (its host ICE candidates).
        udp: Vec<SocketAddr>,
        /// What hardening took effect.
        hardening: HardeningReport,
    },
    /// Reply to `join` or to a participant `offer`.
    Answer {
        /// For whom.
        participant_sid: String,
        /// SDP text.
        sdp: String,
    },
    /// A worker offer for a participant (relay it; send back its `answer`).
    Offer {
        /// For whom.
        participant_sid: String,
        /// SDP text.
        sdp: String,
    },
    /// ICE and DTLS are up for this participant.
    ParticipantConnected {
        /// Who.
        participant_sid: String,
        /// Identity.
        identity: String,
    },
    /// The participant is gone.
    ParticipantDisconnected {
        /// Who.
        participant_sid: String,
        /// Identity.
        identity: String,
        /// Why.
        reason: DisconnectReason,
        /// Twilio error code that goes with the reason, if any (53205 duplicate identity,
        /// 53405 media failure, 53118 room completed…).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<u32>,
    },
    /// A participant published a track.
    TrackPublished {
        /// Publisher.
        participant_sid: String,
        /// The track.
        track: TrackInfo,
    },
    /// A published track ended.
    TrackUnpublished {
        /// Publisher.
        participant_sid: String,
        /// `MT…` SID.
        track_sid: String,
    },
    /// A subscriber's m-line for a track was negotiated.
    TrackSubscribed {
        /// Subscriber.
        participant_sid: String,
        /// Publisher.
        publisher_sid: String,
        /// `MT…` SID.
        track_sid: String,
    },
    /// A subscription ended.
    TrackUnsubscribed {
        /// Subscriber.
        participant_sid: String,
        /// `MT…` SID.
        track_sid: String,
    },
    /// A request failed.
    Error {
        /// The participant the request concerned, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        participant_sid: Option<String>,
        /// Twilio error code.
        code: u32,
        /// For people.
        message: String,
    },
    /// Reply to `stats`.
    Stats {
        /// Room counters.
        room: RoomStats,
        /// Worker process facts.
        process: ProcessStats,
    },
    /// A track's recording began (its first frame was muxed): the server reserves the `RT…`
    /// recording that the following `recording_data` fill.
    RecordingStarted {
        /// `MT…` SID of the track.
        track_sid: String,
        /// `PA…` SID of its publisher.
        participant_sid: String,
        /// The publisher's track name.
        track_name: String,
        /// `audio` or `video`.
        kind: crate::signal::TrackKind,
        /// `opus`, `pcmu`, `vp8` or `h264`.
        codec: String,
        /// `mka` or `mkv`.
        container: String,
        /// Where the track starts, in ms after the room's process started.
        offset_ms: u64,
    },
    /// Sealed bytes of a track recording, in order.
    RecordingData {
        /// `MT…` SID of the track.
        track_sid: String,
        /// Ciphertext, base64.
        sealed: String,
    },
    /// A track recording is complete: every `recording_data` was sent.
    RecordingFinished {
        /// `MT…` SID of the track.
        track_sid: String,
        /// Length measured from the muxed frames.
        duration_ms: u64,
        /// Plaintext bytes sealed.
        plain_size: u64,
        /// Object headers of the sealed object (the `s3-cbc` key material), empty for `native`.
        #[serde(default)]
        object_meta: std::collections::BTreeMap<String, String>,
    },
    /// A track recording failed in the worker: nothing of it may be kept.
    RecordingFailed {
        /// `MT…` SID of the track.
        track_sid: String,
        /// Why, for the log.
        message: String,
    },
    /// The room is over; the worker exits after this frame.
    RoomEnded {
        /// Why.
        reason: RoomEndReason,
    },
}

/// Worker-process facts reported with `stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ProcessStats {
    /// Process id.
    pub pid: u32,
    /// Hardening state (including the `mlockall` fallback).
    pub hardening: HardeningReport,
    /// Datagrams received on the room's sockets.
    pub datagrams_in: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Datagrams that could not be sent (socket errors).
    pub send_errors: u64,
}

impl From<RoomEvent> for WorkerEvent {
    fn from(event: RoomEvent) -> Self {
        match event {
            RoomEvent::Answer {
                participant_sid,
                sdp,
            } => Self::Answer {
                participant_sid,
                sdp,
            },
            RoomEvent::Offer {
                participant_sid,
                sdp,
            } => Self::Offer {
                participant_sid,
                sdp,
            },
            RoomEvent::ParticipantConnected {
                participant_sid,
                identity,
            } => Self::ParticipantConnected {
                participant_sid,
                identity,
            },
            RoomEvent::ParticipantDisconnected {
                participant_sid,
                identity,
                reason,
            } => Self::ParticipantDisconnected {
                participant_sid,
                identity,
                code: reason.twilio_code(),
                reason,
            },
            RoomEvent::TrackPublished {
                participant_sid,
                track,
            } => Self::TrackPublished {
                participant_sid,
                track,
            },
            RoomEvent::TrackUnpublished {
                participant_sid,
                track_sid,
            } => Self::TrackUnpublished {
                participant_sid,
                track_sid,
            },
            RoomEvent::TrackSubscribed {
                participant_sid,
                publisher_sid,
                track_sid,
            } => Self::TrackSubscribed {
                participant_sid,
                publisher_sid,
                track_sid,
            },
            RoomEvent::TrackUnsubscribed {
                participant_sid,
                track_sid,
            } => Self::TrackUnsubscribed {
                participant_sid,
                track_sid,
            },
            RoomEvent::Error {
                participant_sid,
                code,
                message,
            } => Self::Error {
                participant_sid,
                code,
                message,
            },
            RoomEvent::RoomEnded { reason } => Self::RoomEnded { reason },
        }
    }
}

/// A control frame that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix exceeds [`MAX_FRAME_LEN`].
    #[error("control frame of {len} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Announced length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The frame is not a valid message.
    #[error("control frame is not a valid message: {0}")]
    Invalid(String),
}

/// Splits a byte stream into frames. Keeps at most one partial frame buffered.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buffer: Vec<u8>,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the pipe.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Bytes held that do not yet form a whole frame.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// The next whole frame's payload, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let Some(prefix) = self.buffer.first_chunk::<4>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*prefix) as usize;
        if len > MAX_FRAME_LEN {
            return Err(FrameError::TooLarge {
                len,
                limit: MAX_FRAME_LEN,
            });
        }
        if self.buffer.len() < 4 + len {
            return Ok(None);
        }
        let payload = self.buffer[4..4 + len].to_vec();
        self.buffer.drain(..4 + len);
        Ok(Some(payload))
    }

    /// The next whole frame parsed as `T`.
    pub fn next_message<T: for<'de> Deserialize<'de>>(&mut self) -> Result<Option<T>, FrameError> {
        match self.next_frame()? {
            None => Ok(None),
            Some(payload) => serde_json::from_slice(&payload)
                .map(Some)
                .map_err(|e| FrameError::Invalid(e.to_string())),
        }
    }
}

/// The bytes of one frame carrying `message`.
pub fn encode_frame<T: Serialize>(message: &T) -> Vec<u8> {
    // Our message types are plain data with string keys: serialization cannot fail.
    let json = serde_json::to_vec(message).unwrap_or_default();
    let mut frame = Vec::with_capacity(4 + json.len());
    frame.extend_from_slice(&u32::try_from(json.len()).unwrap_or(u32::MAX).to_be_bytes());
    frame.extend_from_slice(&json);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_and_join() {
        let a = encode_frame(&Request::Stats);
        let b = encode_frame(&Request::Kick {
            participant_sid: "PA1".into(),
        });
        let mut stream = a;
        stream.extend_from_slice(&b);
        let mut decoder = FrameDecoder::new();
        let mut seen = Vec::new();
        for byte in stream {
            decoder.push(&[byte]);
            while let Some(m) = decoder.next_message::<Request>().unwrap() {
                seen.push(m);
            }
        }
        assert_eq!(
            seen,
            vec![
                Request::Stats,
                Request::Kick {
                    participant_sid: "PA1".into()
                }
            ]
        );
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn oversized_and_invalid_frames_are_errors() {
        let mut decoder = FrameDecoder::new();
        decoder.push(&u32::MAX.to_be_bytes());
        assert!(matches!(
            decoder.next_frame(),
            Err(FrameError::TooLarge { .. })
        ));
        let mut decoder = FrameDecoder::new();
        decoder.push(&encode_frame(&"just a string"));
        assert!(matches!(
            decoder.next_message::<Request>(),
            Err(FrameError::Invalid(_))
        ));
    }

    #[test]
    fn recording_rules_travel_in_twilios_shape() {
        let request = Request::RecordingRules {
            rules: RecordingRules::include_all(),
        };
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(
            json,
            r#"{"type":"recording_rules","rules":[{"type":"include","all":true}]}"#
        );
        let mut decoder = FrameDecoder::new();
        decoder.push(&encode_frame(&request));
        assert_eq!(decoder.next_message::<Request>().unwrap(), Some(request));
    }

    #[test]
    fn join_defaults_to_a_full_participant() {
        let r: Request = serde_json::from_str(
            r#"{"type":"join","participant_sid":"PA1","identity":"a","sdp":"v=0"}"#,
        )
        .unwrap();
        assert!(matches!(
            r,
            Request::Join {
                subscribe: true,
                renegotiate: true,
                ..
            }
        ));
    }
}
