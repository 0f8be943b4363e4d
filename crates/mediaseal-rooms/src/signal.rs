//! The WebSocket room signalling protocol between a participant and mediaseal
//! (`wss://…/v1/Rooms/{RoomSidOrUniqueName}/Connect`): JSON text messages, one object per
//! message, discriminated by `"type"`.
//!
//! Client → server ([`ClientMessage`]): `join{token}` first, then `offer{sdp}` (the first offer
//! publishes, later ones renegotiate), `answer{sdp}` (to a server offer), `candidate{candidate}`
//! (trickle ICE), `select_layer{track_sid, layer}` (simulcast preference), `leave`. In a
//! peer-to-peer room ([`crate::mesh`]) the server has no media session: `peer_offer{to, sdp}`,
//! `peer_answer{to, sdp}` and `peer_candidate{to, candidate, sdp_mid}` are addressed to another
//! participant's `PA…` SID and relayed to it as the same type with `from` instead of `to`.
//!
//! Server → client ([`ServerMessage`]): `joined`, `answer`, `offer` (the server adds or removes
//! subscribed tracks), `participant_connected` / `participant_disconnected`, `track_published` /
//! `track_unpublished`, `error{code, message}`.
//!
//! Parsing is bounded: a message over [`MAX_MESSAGE_LEN`] bytes is refused before JSON parsing,
//! and each field has its own limit ([`MAX_SDP_LEN`], [`crate::token::MAX_TOKEN_LEN`],
//! [`MAX_CANDIDATE_LEN`], [`MAX_SID_LEN`], [`MAX_LAYER_LEN`]). Unknown fields are ignored so
//! clients may add their own; an unknown `type` is an error.

use serde::{Deserialize, Serialize};

use crate::token::MAX_TOKEN_LEN;

/// Largest message accepted, in bytes (checked before parsing).
pub const MAX_MESSAGE_LEN: usize = 128 * 1024;
/// Largest SDP accepted, in bytes. Browser offers with a dozen m-lines stay under 20 KiB.
pub const MAX_SDP_LEN: usize = 64 * 1024;
/// Largest ICE candidate line, in bytes.
pub const MAX_CANDIDATE_LEN: usize = 1024;
/// Largest SID or media id, in bytes (Twilio SIDs are 34).
pub const MAX_SID_LEN: usize = 64;
/// Largest simulcast layer name (RTP stream id), in bytes.
pub const MAX_LAYER_LEN: usize = 16;

/// Longest parser detail quoted back in an error.
const MAX_ERROR_DETAIL: usize = 160;

/// Twilio error code for "Client sent an invalid signaling message".
pub const CODE_INVALID_CLIENT_MESSAGE: u32 = 53004;

/// A message from a participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Authenticate with a Twilio Access Token. Must be the first message.
    Join {
        /// The Access Token (JWT).
        token: String,
    },
    /// An SDP offer: the first one joins the media session, later ones renegotiate.
    Offer {
        /// SDP text.
        sdp: String,
    },
    /// An SDP answer to the server's last offer.
    Answer {
        /// SDP text.
        sdp: String,
    },
    /// A trickled ICE candidate (`candidate:…`), as `RTCIceCandidate.candidate` gives it.
    Candidate {
        /// The candidate attribute value; empty means end of candidates.
        candidate: String,
        /// The m-line's mid, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp_mid: Option<String>,
    },
    /// Prefer a simulcast layer of a subscribed track; `layer: null` returns to the default
    /// (the best layer that is flowing).
    SelectLayer {
        /// `MT…` SID of the subscribed track.
        track_sid: String,
        /// RTP stream id (`rid`) of the wanted layer, e.g. `"h"`, `"m"`, `"l"`.
        #[serde(default)]
        layer: Option<String>,
    },
    /// Leave the room.
    Leave,
    /// Peer-to-peer rooms: an SDP offer for participant `to`.
    PeerOffer {
        /// `PA…` SID of the participant it is for.
        to: String,
        /// SDP text.
        sdp: String,
    },
    /// Peer-to-peer rooms: an SDP answer to `to`'s offer.
    PeerAnswer {
        /// `PA…` SID of the participant it is for.
        to: String,
        /// SDP text.
        sdp: String,
    },
    /// Peer-to-peer rooms: a trickled ICE candidate for participant `to`.
    PeerCandidate {
        /// `PA…` SID of the participant it is for.
        to: String,
        /// The candidate attribute value; empty means end of candidates.
        candidate: String,
        /// The m-line's mid, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp_mid: Option<String>,
    },
}

/// A participant as other participants see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantInfo {
    /// `PA…` SID.
    pub sid: String,
    /// The identity from the participant's Access Token.
    pub identity: String,
}

/// Kind of a published track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackKind {
    /// Audio.
    Audio,
    /// Video.
    Video,
    /// Data (not forwarded by this version).
    Data,
}

/// A published track as subscribers see it. The SFU's offers carry `a=msid:<participant
/// SID> <track SID>`, so clients can tie received tracks to these records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackInfo {
    /// `MT…` SID.
    pub sid: String,
    /// Audio or video.
    pub kind: TrackKind,
    /// The publisher's track name (its MediaStreamTrack id unless it set one).
    pub name: String,
}

/// A STUN or TURN server, shaped as WebRTC's `RTCIceServer` so a client passes it to
/// `RTCPeerConnection` as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:`, `stuns:`, `turn:` or `turns:` URL.
    pub urls: String,
    /// TURN username (coturn's `<expiry unix time>:<name>`); absent for STUN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN password for `username`; absent for STUN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// A message to a participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The token was accepted.
    Joined {
        /// `RM…` SID.
        room_sid: String,
        /// The room's UniqueName.
        room_name: String,
        /// This participant.
        participant: ParticipantInfo,
        /// Everyone already in the room.
        participants: Vec<ParticipantInfo>,
        /// STUN and TURN servers for this participant's peer connection, with short-lived
        /// TURN credentials; left out when the server has none.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ice_servers: Vec<IceServer>,
    },
    /// The answer to the participant's offer.
    Answer {
        /// SDP text.
        sdp: String,
    },
    /// A server offer (tracks to subscribe to were added or removed); reply with `answer`.
    Offer {
        /// SDP text.
        sdp: String,
    },
    /// Someone's media connection came up.
    ParticipantConnected {
        /// Who.
        participant: ParticipantInfo,
    },
    /// Someone left or was removed.
    ParticipantDisconnected {
        /// Who.
        participant: ParticipantInfo,
    },
    /// Someone published a track.
    TrackPublished {
        /// `PA…` SID of the publisher.
        participant_sid: String,
        /// The track.
        track: TrackInfo,
    },
    /// A track went away.
    TrackUnpublished {
        /// `PA…` SID of the publisher.
        participant_sid: String,
        /// `MT…` SID of the track.
        track_sid: String,
    },
    /// Peer-to-peer rooms: participant `from` offers a connection; reply with `peer_answer`.
    PeerOffer {
        /// `PA…` SID of the sender.
        from: String,
        /// SDP text.
        sdp: String,
    },
    /// Peer-to-peer rooms: participant `from` answers this participant's offer.
    PeerAnswer {
        /// `PA…` SID of the sender.
        from: String,
        /// SDP text.
        sdp: String,
    },
    /// Peer-to-peer rooms: an ICE candidate of participant `from`.
    PeerCandidate {
        /// `PA…` SID of the sender.
        from: String,
        /// The candidate attribute value; empty means end of candidates.
        candidate: String,
        /// The m-line's mid, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp_mid: Option<String>,
    },
    /// Something failed; `code` is a Twilio error code.
    Error {
        /// Twilio error code (20101…, 53xxx).
        code: u32,
        /// What went wrong, for people.
        message: String,
    },
}

/// Why a signalling message was refused. All map to Twilio code 53004.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignalError {
    /// The message is larger than [`MAX_MESSAGE_LEN`].
    #[error("the signalling message is {len} bytes; the limit is {limit}")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// Not JSON, or not one of the message types with its fields.
    #[error("the signalling message is not valid: {0}")]
    Invalid(String),
    /// A field is longer than its limit.
    #[error("the {field} field is {len} bytes; the limit is {limit}")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its size.
        len: usize,
        /// The limit.
        limit: usize,
    },
}

impl SignalError {
    /// Twilio's error code: 53004, "Client sent an invalid signaling message".
    pub fn code(&self) -> u32 {
        CODE_INVALID_CLIENT_MESSAGE
    }

    /// This error as a message to send back.
    pub fn to_server_message(&self) -> ServerMessage {
        ServerMessage::Error {
            code: self.code(),
            message: self.to_string(),
        }
    }
}

fn check_len(field: &'static str, value: &str, limit: usize) -> Result<(), SignalError> {
    if value.len() > limit {
        return Err(SignalError::FieldTooLong {
            field,
            len: value.len(),
            limit,
        });
    }
    Ok(())
}

fn parse_bounded<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, SignalError> {
    if bytes.len() > MAX_MESSAGE_LEN {
        return Err(SignalError::TooLarge {
            len: bytes.len(),
            limit: MAX_MESSAGE_LEN,
        });
    }
    serde_json::from_slice(bytes).map_err(|e| {
        // serde_json names the expected shape and the position; a mistyped value can appear
        // in it, so keep the echo short.
        let mut message = e.to_string();
        if message.len() > MAX_ERROR_DETAIL {
            let mut end = MAX_ERROR_DETAIL;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        SignalError::Invalid(message)
    })
}

impl ClientMessage {
    /// Parses one WebSocket text (or binary) message, enforcing the size limits.
    pub fn from_json(bytes: &[u8]) -> Result<Self, SignalError> {
        let message: Self = parse_bounded(bytes)?;
        message.check_limits()?;
        Ok(message)
    }

    fn check_limits(&self) -> Result<(), SignalError> {
        match self {
            Self::Join { token } => check_len("token", token, MAX_TOKEN_LEN),
            Self::Offer { sdp } | Self::Answer { sdp } => check_len("sdp", sdp, MAX_SDP_LEN),
            Self::Candidate { candidate, sdp_mid } => {
                check_len("candidate", candidate, MAX_CANDIDATE_LEN)?;
                check_len("sdp_mid", sdp_mid.as_deref().unwrap_or(""), MAX_SID_LEN)
            }
            Self::SelectLayer { track_sid, layer } => {
                check_len("track_sid", track_sid, MAX_SID_LEN)?;
                check_len("layer", layer.as_deref().unwrap_or(""), MAX_LAYER_LEN)
            }
            Self::Leave => Ok(()),
            Self::PeerOffer { to, sdp } | Self::PeerAnswer { to, sdp } => {
                check_len("to", to, MAX_SID_LEN)?;
                check_len("sdp", sdp, MAX_SDP_LEN)
            }
            Self::PeerCandidate {
                to,
                candidate,
                sdp_mid,
            } => {
                check_len("to", to, MAX_SID_LEN)?;
                check_len("candidate", candidate, MAX_CANDIDATE_LEN)?;
                check_len("sdp_mid", sdp_mid.as_deref().unwrap_or(""), MAX_SID_LEN)
            }
        }
    }

    /// Serializes to JSON text.
    pub fn to_json(&self) -> String {
        // Plain data with string keys: serialization cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl ServerMessage {
    /// Parses a server message (for clients and tests), with the same size limit.
    pub fn from_json(bytes: &[u8]) -> Result<Self, SignalError> {
        parse_bounded(bytes)
    }

    /// Serializes to JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_round_trip() {
        let messages = [
            ClientMessage::Join {
                token: "a.b.c".into(),
            },
            ClientMessage::Offer {
                sdp: "v=0\r\n".into(),
            },
            ClientMessage::Answer {
                sdp: "v=0\r\n".into(),
            },
            ClientMessage::Candidate {
                candidate: "candidate:1 1 udp 1 192.0.2.1 9 typ host".into(),
                sdp_mid: Some("0".into()),
            },
            ClientMessage::SelectLayer {
                track_sid: "MT0".into(),
                layer: Some("l".into()),
            },
            ClientMessage::Leave,
            ClientMessage::PeerOffer {
                to: "PA1".into(),
                sdp: "v=0\r\n".into(),
            },
            ClientMessage::PeerAnswer {
                to: "PA1".into(),
                sdp: "v=0\r\n".into(),
            },
            ClientMessage::PeerCandidate {
                to: "PA1".into(),
                candidate: String::new(),
                sdp_mid: None,
            },
        ];
        for m in messages {
            let json = m.to_json();
            assert_eq!(
                ClientMessage::from_json(json.as_bytes()).unwrap(),
                m,
                "{json}"
            );
        }
    }

    #[test]
    fn wire_shape_is_tagged_snake_case() {
        assert_eq!(
            ClientMessage::from_json(br#"{"type":"join","token":"x","extra":1}"#).unwrap(),
            ClientMessage::Join { token: "x".into() }
        );
        let m = ServerMessage::TrackUnpublished {
            participant_sid: "PA1".into(),
            track_sid: "MT1".into(),
        };
        assert_eq!(
            m.to_json(),
            r#"{"type":"track_unpublished","participant_sid":"PA1","track_sid":"MT1"}"#
        );
    }

    #[test]
    fn limits_are_enforced() {
        let big = vec![b' '; MAX_MESSAGE_LEN + 1];
        assert!(matches!(
            ClientMessage::from_json(&big),
            Err(SignalError::TooLarge { .. })
        ));
        let sdp = "x".repeat(MAX_SDP_LEN + 1);
        let json = format!(r#"{{"type":"offer","sdp":"{sdp}"}}"#);
        assert!(matches!(
            ClientMessage::from_json(json.as_bytes()),
            Err(SignalError::FieldTooLong { field: "sdp", .. })
        ));
        let to = "P".repeat(MAX_SID_LEN + 1);
        let json = format!(r#"{{"type":"peer_candidate","to":"{to}","candidate":""}}"#);
        assert!(matches!(
            ClientMessage::from_json(json.as_bytes()),
            Err(SignalError::FieldTooLong { field: "to", .. })
        ));
        assert_eq!(
            ClientMessage::from_json(br#"{"type":"peer_offer","to":"PA1","sdp":"v=0"}"#).unwrap(),
            ClientMessage::PeerOffer {
                to: "PA1".into(),
                sdp: "v=0".into()
            }
        );
        for bad in [
            &br#"{"type":"shout"}"#[..],
            br#"{"type":"peer_offer","sdp":"v=0"}"#,
            br#"{"token":"x"}"#,
            br#"[]"#,
            b"\xff",
        ] {
            let e = ClientMessage::from_json(bad).unwrap_err();
            assert_eq!(e.code(), 53004);
        }
    }
}
