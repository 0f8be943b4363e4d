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
//! It keeps the room limits of a group room too: a second participant with an identity already
//! in the room replaces the first (Twilio's 53205 for the one replaced), and the room ends
//! itself after its `UnusedRoomTimeout` (nobody ever joined) or `EmptyRoomTimeout` (the last
//! participant left and nobody came back). Time comes in as arguments, so the caller owns the
//! clock: it asks [`MeshRoom::next_timeout`] when to call [`MeshRoom::handle_timeout`].
//!
//! Who offers is the clients' convention (docs/ROOMS.md): the newcomer offers to everyone in
//! `joined.participants`.

use std::fmt;
use std::time::{Duration, Instant};

use crate::room::RoomEndReason;
use crate::signal::{CODE_INVALID_CLIENT_MESSAGE, ClientMessage, ParticipantInfo, ServerMessage};

/// Most participants a peer-to-peer room takes (Twilio's cap: each one connects to every other).
pub const MAX_P2P_PARTICIPANTS: usize = 10;

/// Twilio's "Room participant limit reached" (too many participants).
pub const CODE_TOO_MANY_PARTICIPANTS: u32 = 53105;

/// Twilio's "Room completed": the room has ended.
pub const CODE_ROOM_COMPLETED: u32 = 53118;

/// A room's `EmptyRoomTimeout` and `UnusedRoomTimeout` as durations (`None`: never).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoomTimeouts {
    /// End the room this long after its last participant left, unless someone came back.
    pub empty_room: Option<Duration>,
    /// End the room this long after it was created if nobody joined.
    pub unused_room: Option<Duration>,
}

/// A participant admitted by [`MeshRoom::join`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// The participants already there (for its `joined`), in order of joining.
    pub others: Vec<ParticipantInfo>,
    /// The participant with the same identity it replaced, now out of the room: it is to be
    /// told 53205 and disconnected (Twilio's `DuplicateIdentity`).
    pub replaced: Option<ParticipantInfo>,
    /// `participant_disconnected` for the one replaced, if any, then `participant_connected`
    /// for the newcomer, to each of the others.
    pub notices: Vec<Outgoing>,
}

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
    /// The room has ended (timed out or completed): it takes nobody.
    Ended,
    /// Not a peer-addressed message (`offer`, `answer`, `candidate`, `select_layer` go to a
    /// group room's media process, which a peer-to-peer room does not have).
    NotPeerAddressed,
}

impl MeshError {
    /// Twilio's code for the refusal: 53105 for a full room, 53118 for an ended one, else
    /// 53004 (invalid message).
    pub fn code(&self) -> u32 {
        match self {
            Self::RoomFull { .. } => CODE_TOO_MANY_PARTICIPANTS,
            Self::Ended => CODE_ROOM_COMPLETED,
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
            Self::Ended => f.write_str("Room completed: create a new room to meet again"),
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

/// The membership, signalling routes and timeouts of one peer-to-peer room.
#[derive(Debug, Clone)]
pub struct MeshRoom {
    max: usize,
    /// In order of joining.
    members: Vec<ParticipantInfo>,
    timeouts: RoomTimeouts,
    created_at: Instant,
    ever_joined: bool,
    /// When the last participant left (only while the room is empty).
    empty_since: Option<Instant>,
    ended: Option<RoomEndReason>,
}

impl MeshRoom {
    /// A room created at `now` for at most `max_participants` (the room's `MaxParticipants`),
    /// capped at [`MAX_P2P_PARTICIPANTS`] and at least 1, ending itself after `timeouts`.
    pub fn new(max_participants: usize, timeouts: RoomTimeouts, now: Instant) -> Self {
        Self {
            max: max_participants.clamp(1, MAX_P2P_PARTICIPANTS),
            members: Vec::new(),
            timeouts,
            created_at: now,
            ever_joined: false,
            empty_since: None,
            ended: None,
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

    /// Why the room ended, once it has.
    pub fn ended(&self) -> Option<RoomEndReason> {
        self.ended
    }

    /// Admits `participant`. A participant already in the room with the same identity is
    /// replaced (and does not count against the maximum), as in a group room.
    pub fn join(&mut self, participant: ParticipantInfo) -> Result<Admission, MeshError> {
        if self.ended.is_some() {
            return Err(MeshError::Ended);
        }
        if self.contains(&participant.sid) {
            return Err(MeshError::AlreadyJoined);
        }
        let duplicate = self
            .members
            .iter()
            .position(|p| p.identity == participant.identity);
        if self.members.len() - usize::from(duplicate.is_some()) >= self.max {
            return Err(MeshError::RoomFull { max: self.max });
        }
        let mut notices = Vec::new();
        let replaced = duplicate.map(|at| {
            let (gone, told) = self.remove_at(at);
            notices.extend(told);
            gone
        });
        let others = self.members.clone();
        notices.extend(others.iter().map(|p| Outgoing {
            to: p.sid.clone(),
            message: ServerMessage::ParticipantConnected {
                participant: participant.clone(),
            },
        }));
        self.members.push(participant);
        self.ever_joined = true;
        self.empty_since = None;
        Ok(Admission {
            others,
            replaced,
            notices,
        })
    }

    /// Removes `sid` at `now`; `participant_disconnected` for everyone left. `None` if it was
    /// not in the room (so a second leave tells nobody anything).
    pub fn leave(&mut self, sid: &str, now: Instant) -> Option<(ParticipantInfo, Vec<Outgoing>)> {
        let at = self.members.iter().position(|p| p.sid == sid)?;
        let left = self.remove_at(at);
        if self.members.is_empty() {
            self.empty_since = Some(now);
        }
        Some(left)
    }

    fn remove_at(&mut self, at: usize) -> (ParticipantInfo, Vec<Outgoing>) {
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
        (gone, notices)
    }

    /// The instant at which the room ends itself if nobody joins before: its creation plus
    /// `UnusedRoomTimeout` if nobody ever joined, the last departure plus `EmptyRoomTimeout`
    /// if it is empty again. `None` while anybody is in it, once it ended, or with no timeout.
    pub fn next_timeout(&self) -> Option<Instant> {
        if self.ended.is_some() || !self.members.is_empty() {
            return None;
        }
        if self.ever_joined {
            self.empty_since?.checked_add(self.timeouts.empty_room?)
        } else {
            self.created_at.checked_add(self.timeouts.unused_room?)
        }
    }

    /// Ends the room if its timeout has come by `now`: why (it then takes nobody). `None`
    /// if it goes on (or had already ended).
    pub fn handle_timeout(&mut self, now: Instant) -> Option<RoomEndReason> {
        let due = self.next_timeout().is_some_and(|at| now >= at);
        if !due {
            return None;
        }
        let reason = if self.ever_joined {
            RoomEndReason::EmptyRoomTimeout
        } else {
            RoomEndReason::UnusedRoomTimeout
        };
        self.ended = Some(reason);
        Some(reason)
    }

    /// Ends the room at the control plane's request (REST `Status=completed`): it takes
    /// nobody from now on. Its participants are for the caller to remove ([`Self::leave`]).
    pub fn complete(&mut self) {
        self.ended.get_or_insert(RoomEndReason::Completed);
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

    /// The start of simulated time (the one reading of the clock here).
    #[allow(clippy::disallowed_methods)]
    fn epoch() -> Instant {
        Instant::now()
    }

    /// A room without timeouts, created at some instant.
    fn mesh(max: usize) -> MeshRoom {
        MeshRoom::new(max, RoomTimeouts::default(), epoch())
    }

    fn who(n: usize) -> ParticipantInfo {
        ParticipantInfo {
            sid: format!("PA{n:032}"),
            identity: format!("user-{n}"),
        }
    }

    #[test]
    fn join_lists_the_others_and_tells_them() {
        let mut room = mesh(10);
        let Admission {
            others, notices, ..
        } = room.join(who(1)).unwrap();
        assert!(others.is_empty() && notices.is_empty());
        let Admission {
            others,
            replaced,
            notices,
        } = room.join(who(2)).unwrap();
        assert_eq!(replaced, None);
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
        let mut room = mesh(2);
        room.join(who(1)).unwrap();
        room.join(who(2)).unwrap();
        let e = room.join(who(3)).unwrap_err();
        assert_eq!(e, MeshError::RoomFull { max: 2 });
        assert_eq!(e.code(), 53105);
        assert!(!room.contains(&who(3).sid));
        // A place frees up when someone leaves.
        room.leave(&who(1).sid, epoch()).unwrap();
        room.join(who(3)).unwrap();

        let mut big = mesh(50);
        assert_eq!(big.max_participants(), MAX_P2P_PARTICIPANTS);
        for n in 0..MAX_P2P_PARTICIPANTS {
            big.join(who(n)).unwrap();
        }
        assert_eq!(
            big.join(who(99)).unwrap_err().code(),
            CODE_TOO_MANY_PARTICIPANTS
        );
        assert_eq!(mesh(0).max_participants(), 1);
    }

    #[test]
    fn leave_tells_the_others_once() {
        let mut room = mesh(10);
        for n in 1..=3 {
            room.join(who(n)).unwrap();
        }
        let (gone, notices) = room.leave(&who(2).sid, epoch()).unwrap();
        assert_eq!(gone, who(2));
        let told: Vec<_> = notices.iter().map(|o| o.to.clone()).collect();
        assert_eq!(told, [who(1).sid, who(3).sid]);
        assert!(notices.iter().all(|o| o.message
            == ServerMessage::ParticipantDisconnected {
                participant: who(2)
            }));
        assert!(room.leave(&who(2).sid, epoch()).is_none());
    }

    #[test]
    fn peer_messages_reach_only_their_target_marked_from_the_sender() {
        let mut room = mesh(10);
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
        let mut room = mesh(10);
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
        room.leave(&who(2).sid, epoch());
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

    fn named(n: usize, identity: &str) -> ParticipantInfo {
        ParticipantInfo {
            identity: identity.to_owned(),
            ..who(n)
        }
    }

    #[test]
    fn a_second_join_with_the_same_identity_replaces_the_first() {
        let mut room = mesh(3);
        room.join(named(1, "alice")).unwrap();
        room.join(named(2, "bob")).unwrap();
        let Admission {
            others,
            replaced,
            notices,
        } = room.join(named(3, "alice")).unwrap();
        assert_eq!(replaced, Some(named(1, "alice")));
        // The newcomer is not told of the one it replaced; Bob hears the departure first.
        assert_eq!(others, [named(2, "bob")]);
        assert_eq!(
            notices,
            [
                Outgoing {
                    to: who(2).sid,
                    message: ServerMessage::ParticipantDisconnected {
                        participant: named(1, "alice")
                    },
                },
                Outgoing {
                    to: who(2).sid,
                    message: ServerMessage::ParticipantConnected {
                        participant: named(3, "alice")
                    },
                },
            ]
        );
        assert_eq!(room.participants(), [named(2, "bob"), named(3, "alice")]);
        // The one replaced is out: it can relay nothing, and leaving again tells nobody.
        assert_eq!(
            room.relay(
                &who(1).sid,
                ClientMessage::PeerOffer {
                    to: who(2).sid,
                    sdp: "v=0\r\n".into()
                }
            ),
            Err(MeshError::NotJoined)
        );
        assert!(room.leave(&who(1).sid, epoch()).is_none());
    }

    #[test]
    fn a_full_room_still_takes_a_replacement_but_no_one_else() {
        let mut room = mesh(2);
        room.join(named(1, "alice")).unwrap();
        room.join(named(2, "bob")).unwrap();
        assert_eq!(
            room.join(named(3, "carol")),
            Err(MeshError::RoomFull { max: 2 })
        );
        let admitted = room.join(named(4, "bob")).unwrap();
        assert_eq!(admitted.replaced, Some(named(2, "bob")));
        assert_eq!(room.participants(), [named(1, "alice"), named(4, "bob")]);
    }

    fn timed(empty: u64, unused: u64, created: Instant) -> MeshRoom {
        MeshRoom::new(
            10,
            RoomTimeouts {
                empty_room: Some(Duration::from_secs(empty)),
                unused_room: Some(Duration::from_secs(unused)),
            },
            created,
        )
    }

    #[test]
    fn a_room_nobody_joins_ends_after_its_unused_timeout() {
        let t0 = epoch();
        let s = Duration::from_secs;
        let mut room = timed(120, 60, t0);
        assert_eq!(room.next_timeout(), Some(t0 + s(60)));
        assert_eq!(room.handle_timeout(t0 + s(59)), None);
        assert_eq!(room.ended(), None);
        assert_eq!(
            room.handle_timeout(t0 + s(60)),
            Some(RoomEndReason::UnusedRoomTimeout)
        );
        assert_eq!(room.ended(), Some(RoomEndReason::UnusedRoomTimeout));
        // Ended for good: no second end, nobody admitted, no timer.
        assert_eq!(room.handle_timeout(t0 + s(600)), None);
        assert_eq!(room.next_timeout(), None);
        let e = room.join(who(1)).unwrap_err();
        assert_eq!(e, MeshError::Ended);
        assert_eq!(e.code(), CODE_ROOM_COMPLETED);
    }

    #[test]
    fn a_room_emptied_ends_after_its_empty_timeout_unless_someone_comes_back() {
        let t0 = epoch();
        let s = Duration::from_secs;
        let mut room = timed(120, 60, t0);
        room.join(who(1)).unwrap();
        // Occupied: no timer, and the unused timeout no longer applies.
        assert_eq!(room.next_timeout(), None);
        assert_eq!(room.handle_timeout(t0 + s(3600)), None);
        room.join(who(2)).unwrap();
        room.leave(&who(1).sid, t0 + s(100)).unwrap();
        assert_eq!(room.next_timeout(), None, "someone is still there");
        room.leave(&who(2).sid, t0 + s(200)).unwrap();
        assert_eq!(room.next_timeout(), Some(t0 + s(320)));
        assert_eq!(room.handle_timeout(t0 + s(319)), None);
        // Someone comes back in time: the room goes on, and its clock starts again when it
        // empties again.
        room.join(who(3)).unwrap();
        assert_eq!(room.handle_timeout(t0 + s(330)), None);
        room.leave(&who(3).sid, t0 + s(400)).unwrap();
        assert_eq!(room.next_timeout(), Some(t0 + s(520)));
        assert_eq!(room.handle_timeout(t0 + s(519)), None);
        assert_eq!(
            room.handle_timeout(t0 + s(521)),
            Some(RoomEndReason::EmptyRoomTimeout)
        );
        assert_eq!(room.join(who(4)), Err(MeshError::Ended));
    }

    #[test]
    fn without_timeouts_or_with_huge_ones_the_room_waits() {
        let t0 = epoch();
        let mut room = mesh(10);
        assert_eq!(room.next_timeout(), None);
        assert_eq!(room.handle_timeout(t0 + Duration::from_secs(86_400)), None);
        // A timeout past the end of time is never, not a panic.
        let mut huge = MeshRoom::new(
            10,
            RoomTimeouts {
                empty_room: Some(Duration::MAX),
                unused_room: Some(Duration::MAX),
            },
            t0,
        );
        assert_eq!(huge.next_timeout(), None);
        assert_eq!(huge.handle_timeout(t0 + Duration::from_secs(86_400)), None);
        huge.join(who(1)).unwrap();
        huge.leave(&who(1).sid, t0).unwrap();
        assert_eq!(huge.next_timeout(), None);
    }

    #[test]
    fn a_completed_room_takes_nobody() {
        let mut room = mesh(10);
        room.join(who(1)).unwrap();
        room.complete();
        assert_eq!(room.ended(), Some(RoomEndReason::Completed));
        assert_eq!(room.join(who(2)), Err(MeshError::Ended));
        room.leave(&who(1).sid, epoch()).unwrap();
        // Completed is final: emptied now, it does not time out into another ending.
        assert_eq!(room.next_timeout(), None);
    }
}
