//! Peer-to-peer rooms, sans-IO: membership and the routing of peer-addressed signalling.
//!
//! In a `peer-to-peer` room the server sees no media: participants open WebRTC connections to
//! each other (directly or through TURN) and the server only relays their SDP and ICE
//! candidates. A [`MeshRoom`] is that relay's state: who is in the room (at most
//! [`MAX_P2P_PARTICIPANTS`], as Twilio caps peer-to-peer rooms), what the others are told when
//! someone joins or leaves, and where a `peer_offer` / `peer_answer` / `peer_candidate` goes.
//! A message is delivered only to a participant of the same room, marked `from` its sender;
//! one addressed to anybody else is refused and goes nowhere.
//!
//! Who offers is the clients' convention (docs/ROOMS.md): the newcomer offers to everyone in
//! `joined.participants`.

use std::fmt;

use crate::signal::{CODE_INVALID_CLIENT_MESSAGE, ClientMessage, ParticipantInfo, ServerMessage};

/// Most participants a peer-to-peer room takes (Twilio's cap: each one connects to every other).
pub const MAX_P2P_PARTICIPANTS: usize = 10;

/// Twilio's "Room participant limit reached" (too many participants).
pub const CODE_TOO_MANY_PARTICIPANTS: u32 = 53105;

/// One message for one participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// `PA…` SID of the recipient.
    pub to: String,
    /// What it is told.
    pub message: ServerMessage,
}

/// Why the mesh refused something.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MeshError {
    /// The room already holds its maximum.
    RoomFull {
        /// The room's maximum.
        max: usize,
    },
    /// A participant with this SID is already in the room.
    AlreadyJoined,
    /// The sender is not in the room (it left or was removed).
    NotJoined,
    /// The message is addressed to nobody in this room.
    UnknownPeer {
        /// The SID it was addressed to (at most `MAX_SID_LEN` bytes: the parser checked).
        to: String,
    },
    /// The message is addressed to its sender.
    ToSelf,
    /// Not a peer-addressed message (`offer`, `answer`, `candidate`, `select_layer` go to a
    /// group room's media process, which a peer-to-peer room does not have).
    NotPeerAddressed,
}

impl MeshError {
    /// Twilio's code for the refusal: 53105 for a full room, else 53004 (invalid message).
    pub fn code(&self) -> u32 {
        match self {
            Self::RoomFull { .. } => CODE_TOO_MANY_PARTICIPANTS,
            _ => CODE_INVALID_CLIENT_MESSAGE,
        }
    }

    /// This error as a message to send back.
    pub fn to_server_message(&self) -> ServerMessage {
        ServerMessage::Error {
            code: self.code(),
            message: self.to_string(),
        }
    }
}

impl fmt::Display for MeshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RoomFull { max } => write!(
                f,
                "Room participant limit reached: this peer-to-peer room takes {max} participants"
            ),
            Self::AlreadyJoined => f.write_str("this participant has already joined the room"),
            Self::NotJoined => f.write_str("this participant is no longer in the room"),
            Self::UnknownPeer { to } => write!(
                f,
                "no participant {to} in this room: address peer_offer, peer_answer and \
                 peer_candidate to a SID from joined.participants or participant_connected"
            ),
            Self::ToSelf => f.write_str("a peer message cannot be addressed to its sender"),
            Self::NotPeerAddressed => f.write_str(
                "this is a peer-to-peer room: the server has no media session, so send \
                 peer_offer, peer_answer and peer_candidate addressed to another participant",
            ),
        }
    }
}

impl std::error::Error for MeshError {}

/// The membership and signalling routes of one peer-to-peer room.
#[derive(Debug, Clone)]
pub struct MeshRoom {
    max: usize,
    /// In order of joining.
    members: Vec<ParticipantInfo>,
}

impl MeshRoom {
    /// A room for at most `max_participants` (the room's `MaxParticipants`), capped at
    /// [`MAX_P2P_PARTICIPANTS`] and at least 1.
    pub fn new(max_participants: usize) -> Self {
        Self {
            max: max_participants.clamp(1, MAX_P2P_PARTICIPANTS),
            members: Vec::new(),
        }
    }

    /// The most participants this room takes.
    pub fn max_participants(&self) -> usize {
        self.max
    }

    /// Everyone in the room, in order of joining.
    pub fn participants(&self) -> &[ParticipantInfo] {
        &self.members
    }

    /// Whether `sid` is in the room.
    pub fn contains(&self, sid: &str) -> bool {
        self.members.iter().any(|p| p.sid == sid)
    }

    /// Admits `participant`. On success: the participants already there (for its `joined`),
    /// and `participant_connected` for each of them.
    pub fn join(
        &mut self,
        participant: ParticipantInfo,
    ) -> Result<(Vec<ParticipantInfo>, Vec<Outgoing>), MeshError> {
        if self.contains(&participant.sid) {
            return Err(MeshError::AlreadyJoined);
        }
        if self.members.len() >= self.max {
            return Err(MeshError::RoomFull { max: self.max });
        }
        let others = self.members.clone();
        let notices = others
            .iter()
            .map(|p| Outgoing {
                to: p.sid.clone(),
                message: ServerMessage::ParticipantConnected {
                    participant: participant.clone(),
                },
            })
            .collect();
        self.members.push(participant);
        Ok((others, notices))
    }

    /// Removes `sid`; `participant_disconnected` for everyone left. `None` if it was not in the
    /// room (so a second leave tells nobody anything).
    pub fn leave(&mut self, sid: &str) -> Option<(ParticipantInfo, Vec<Outgoing>)> {
        let at = self.members.iter().position(|p| p.sid == sid)?;
        let gone = self.members.remove(at);
        let notices = self
            .members
            .iter()
            .map(|p| Outgoing {
                to: p.sid.clone(),
                message: ServerMessage::ParticipantDisconnected {
                    participant: gone.clone(),
                },
            })
            .collect();
        Some((gone, notices))
    }

    /// Routes a message from participant `from`: a peer-addressed one to its target, marked
    /// `from` the sender. Anything else, or a target outside this room, is refused.
    pub fn relay(&self, from: &str, message: ClientMessage) -> Result<Outgoing, MeshError> {
        if !self.contains(from) {
            return Err(MeshError::NotJoined);
        }
        let sender = from;
        let from = from.to_owned();
        let (to, message) = match message {
            ClientMessage::PeerOffer { to, sdp } => (to, ServerMessage::PeerOffer { from, sdp }),
            ClientMessage::PeerAnswer { to, sdp } => (to, ServerMessage::PeerAnswer { from, sdp }),
            ClientMessage::PeerCandidate {
                to,
                candidate,
                sdp_mid,
            } => (
                to,
                ServerMessage::PeerCandidate {
                    from,
                    candidate,
                    sdp_mid,
                },
            ),
            _ => return Err(MeshError::NotPeerAddressed),
        };
        if !self.contains(&to) {
            return Err(MeshError::UnknownPeer { to });
        }
        if to == sender {
            return Err(MeshError::ToSelf);
        }
        Ok(Outgoing { to, message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(n: usize) -> ParticipantInfo {
        ParticipantInfo {
            sid: format!("PA{n:032}"),
            identity: format!("user-{n}"),
        }
    }

    #[test]
    fn join_lists_the_others_and_tells_them() {
        let mut room = MeshRoom::new(10);
        let (others, notices) = room.join(who(1)).unwrap();
        assert!(others.is_empty() && notices.is_empty());
        let (others, notices) = room.join(who(2)).unwrap();
        assert_eq!(others, [who(1)]);
        assert_eq!(
            notices,
            [Outgoing {
                to: who(1).sid,
                message: ServerMessage::ParticipantConnected {
                    participant: who(2)
                },
            }]
        );
        assert_eq!(room.join(who(2)), Err(MeshError::AlreadyJoined));
        assert_eq!(room.participants(), [who(1), who(2)]);
    }

    #[test]
    fn the_room_is_capped_at_its_maximum_and_at_twilios() {
        let mut room = MeshRoom::new(2);
        room.join(who(1)).unwrap();
        room.join(who(2)).unwrap();
        let e = room.join(who(3)).unwrap_err();
        assert_eq!(e, MeshError::RoomFull { max: 2 });
        assert_eq!(e.code(), 53105);
        assert!(!room.contains(&who(3).sid));
        // A place frees up when someone leaves.
        room.leave(&who(1).sid).unwrap();
        room.join(who(3)).unwrap();

        let mut big = MeshRoom::new(50);
        assert_eq!(big.max_participants(), MAX_P2P_PARTICIPANTS);
        for n in 0..MAX_P2P_PARTICIPANTS {
            big.join(who(n)).unwrap();
        }
        assert_eq!(
            big.join(who(99)).unwrap_err().code(),
            CODE_TOO_MANY_PARTICIPANTS
        );
        assert_eq!(MeshRoom::new(0).max_participants(), 1);
    }

    #[test]
    fn leave_tells_the_others_once() {
        let mut room = MeshRoom::new(10);
        for n in 1..=3 {
            room.join(who(n)).unwrap();
        }
        let (gone, notices) = room.leave(&who(2).sid).unwrap();
        assert_eq!(gone, who(2));
        let told: Vec<_> = notices.iter().map(|o| o.to.clone()).collect();
        assert_eq!(told, [who(1).sid, who(3).sid]);
        assert!(notices.iter().all(|o| o.message
            == ServerMessage::ParticipantDisconnected {
                participant: who(2)
            }));
        assert!(room.leave(&who(2).sid).is_none());
    }

    #[test]
    fn peer_messages_reach_only_their_target_marked_from_the_sender() {
        let mut room = MeshRoom::new(10);
        for n in 1..=3 {
            room.join(who(n)).unwrap();
        }
        let out = room
            .relay(
                &who(1).sid,
                ClientMessage::PeerOffer {
                    to: who(3).sid,
                    sdp: "v=0\r\n".into(),
                },
            )
            .unwrap();
        assert_eq!(
            out,
            Outgoing {
                to: who(3).sid,
                message: ServerMessage::PeerOffer {
                    from: who(1).sid,
                    sdp: "v=0\r\n".into()
                },
            }
        );
        let out = room
            .relay(
                &who(3).sid,
                ClientMessage::PeerCandidate {
                    to: who(1).sid,
                    candidate: "candidate:1 1 udp 1 192.0.2.1 9 typ host".into(),
                    sdp_mid: Some("0".into()),
                },
            )
            .unwrap();
        assert_eq!(out.to, who(1).sid);
        assert!(matches!(
            out.message,
            ServerMessage::PeerCandidate { ref from, .. } if *from == who(3).sid
        ));
        let out = room
            .relay(
                &who(2).sid,
                ClientMessage::PeerAnswer {
                    to: who(1).sid,
                    sdp: "v=0\r\n".into(),
                },
            )
            .unwrap();
        assert!(matches!(out.message, ServerMessage::PeerAnswer { .. }));
    }

    #[test]
    fn misaddressed_messages_are_refused_and_go_nowhere() {
        let mut room = MeshRoom::new(10);
        room.join(who(1)).unwrap();
        room.join(who(2)).unwrap();
        let offer = |to: String| ClientMessage::PeerOffer {
            to,
            sdp: "v=0\r\n".into(),
        };
        // A participant of another room, or nobody.
        let e = room.relay(&who(1).sid, offer(who(7).sid)).unwrap_err();
        assert_eq!(e, MeshError::UnknownPeer { to: who(7).sid });
        assert_eq!(e.code(), 53004);
        assert!(e.to_string().contains(&who(7).sid));
        assert_eq!(
            room.relay(&who(1).sid, offer(who(1).sid)),
            Err(MeshError::ToSelf)
        );
        // A sender that is not (or no longer) in the room cannot use it as a relay.
        assert_eq!(
            room.relay(&who(9).sid, offer(who(1).sid)),
            Err(MeshError::NotJoined)
        );
        room.leave(&who(2).sid);
        assert_eq!(
            room.relay(&who(2).sid, offer(who(1).sid)),
            Err(MeshError::NotJoined)
        );
        assert_eq!(
            room.relay(&who(1).sid, offer(who(2).sid)),
            Err(MeshError::UnknownPeer { to: who(2).sid })
        );
        // Messages for a group room's media process have no place here.
        for m in [
            ClientMessage::Offer { sdp: "v=0".into() },
            ClientMessage::Answer { sdp: "v=0".into() },
            ClientMessage::Candidate {
                candidate: String::new(),
                sdp_mid: None,
            },
            ClientMessage::Leave,
        ] {
            assert_eq!(room.relay(&who(1).sid, m), Err(MeshError::NotPeerAddressed));
        }
    }
}
