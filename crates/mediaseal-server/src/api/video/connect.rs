//! The participant signalling WebSocket, `GET /v1/Rooms/{RoomSidOrUniqueName}/Connect`
//! (docs/ROOMS.md §3): a participant's door into a group room's media process.
//!
//! No HTTP authentication: the first message must be `join` with a Twilio Access Token,
//! admitted by the rules every door into a room shares ([`super::room_access`]: the token's
//! account scopes the room lookup, so a refusal says nothing about rooms of other accounts,
//! and a token limited to one room learns nothing about the others). Then the server allots
//! the participant's `PA…` SID, relays its SDP and candidates to the room's worker
//! ([`RoomProcesses::send`]) and the worker's answers, offers, errors and the room's
//! participant and track events back ([`RoomProcesses::subscribe`]). A peer-to-peer room has
//! no worker: its participants are relayed to each other by [`super::mesh`].
//!
//! Bounds: messages are at most [`MAX_MESSAGE_LEN`] (checked by the WebSocket layer before
//! they are buffered, and again by the parser); `join` must come within [`JOIN_TIMEOUT`]; a
//! message to the client that cannot be written within [`SEND_TIMEOUT`], or a connection that
//! fell [`mediaseal_room_host::EVENT_BUFFER`] room events behind, is disconnected, so a slow
//! client costs the room nothing. A ping every [`PING_INTERVAL`] keeps an idle connection
//! inside the listener's idle timeout. The socket closing is `leave`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Path, State};
use axum::response::Response;
use mediaseal_rooms::control::{Request, WorkerEvent};
use mediaseal_rooms::signal::{
    ClientMessage, MAX_MESSAGE_LEN, ParticipantInfo, ServerMessage, SignalError,
};
use tokio::sync::broadcast::error::RecvError;

use super::room_access::{
    AccessError, CODE_ROOM_COMPLETED, CODE_SIGNALING, find_room, room_media, verify,
};
use crate::room_processes::{RoomProcesses, RoomSubscription};
use crate::sid::new_sid;
use crate::state::AppState;
use mediaseal_rooms::token::VerifiedAccessToken;
use mediaseal_store::video::Room;

/// How long a new connection may take to send `join`.
pub(crate) const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one message to the client may take to be written.
pub(crate) const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the server pings (below the listener's 60 s idle timeout).
pub(crate) const PING_INTERVAL: Duration = Duration::from_secs(20);
/// Lifetime of the TURN credentials a participant gets in `joined`, in seconds: the longest a
/// participant may stay (`--max-participant-duration` of the worker, 4 h), since TURN
/// allocations are refreshed with the same credentials (capped by `--turn-ttl-max`).
pub(crate) const PARTICIPANT_TURN_TTL: u32 = 14_400;

/// `GET /v1/Rooms/{RoomSidOrUniqueName}/Connect`.
pub(crate) async fn connect(
    State(st): State<AppState>,
    Path(ident): Path<String>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.max_message_size(MAX_MESSAGE_LEN)
        .max_frame_size(MAX_MESSAGE_LEN)
        .on_upgrade(move |socket| session(st, ident, socket))
}

/// Why a connection ends, and what the client is told.
pub(super) struct Refusal {
    code: u32,
    message: String,
}

impl Refusal {
    pub(super) fn new(code: u32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<AccessError> for Refusal {
    fn from(e: AccessError) -> Self {
        Self::new(e.code(), e.message())
    }
}

impl From<SignalError> for Refusal {
    fn from(e: SignalError) -> Self {
        Self::new(e.code(), e.to_string())
    }
}

/// A joined participant's connection.
struct Participant {
    room_sid: String,
    sid: String,
    identity: String,
    processes: Arc<dyn RoomProcesses>,
    /// The worker was sent `join` (the client's first offer).
    in_worker: bool,
    /// That `join` has no answer yet: a worker error for it ends the connection.
    awaiting_join: bool,
}

async fn session(st: AppState, ident: String, mut socket: WebSocket) {
    let (verified, room) = match authenticate(&st, &ident, &mut socket).await {
        Ok(Some(found)) => found,
        Ok(None) => return,
        Err(refusal) => {
            close_with(&mut socket, refusal).await;
            return;
        }
    };
    if room.room_type == super::mesh::PEER_TO_PEER {
        super::mesh::session(st, room, verified.identity, socket).await;
        return;
    }
    let (participant, subscription) = match admit(&st, verified, &room, &mut socket).await {
        Ok(Some(joined)) => joined,
        Ok(None) => return,
        Err(refusal) => {
            close_with(&mut socket, refusal).await;
            return;
        }
    };
    tracing::info!(room = %participant.room_sid, participant = %participant.sid, "participant joined the signalling channel");
    run(participant, subscription, socket).await;
}

/// Waits for `join`, verifies its token and finds the room; `Ok(None)` if the client went
/// away first.
async fn authenticate(
    st: &AppState,
    ident: &str,
    socket: &mut WebSocket,
) -> Result<Option<(VerifiedAccessToken, Room)>, Refusal> {
    let token = match tokio::time::timeout(JOIN_TIMEOUT, next_message(socket)).await {
        Err(_) => {
            return Err(Refusal::new(
                SignalError::Invalid(String::new()).code(),
                format!("send join with an Access Token within {JOIN_TIMEOUT:?} of connecting"),
            ));
        }
        Ok(None) => return Ok(None),
        Ok(Some(Err(e))) => return Err(e.into()),
        Ok(Some(Ok(ClientMessage::Join { token }))) => token,
        Ok(Some(Ok(_))) => {
            return Err(Refusal::new(
                SignalError::Invalid(String::new()).code(),
                "the first message must be join with an Access Token",
            ));
        }
    };
    let verified = verify(st, &token).await?;
    let room = find_room(st, &verified, ident).await?;
    Ok(Some((verified, room)))
}

/// Admits a verified participant to a group room's media process; `Ok(None)` if the client
/// went away first.
async fn admit(
    st: &AppState,
    verified: VerifiedAccessToken,
    room: &Room,
    socket: &mut WebSocket,
) -> Result<Option<(Participant, RoomSubscription)>, Refusal> {
    let (processes, subscription) = room_media(st, room)?;
    let participant = Participant {
        room_sid: room.sid.clone(),
        sid: new_sid("PA"),
        identity: verified.identity,
        processes,
        in_worker: false,
        awaiting_join: false,
    };
    let joined = ServerMessage::Joined {
        room_sid: room.sid.clone(),
        room_name: room.unique_name.clone(),
        participant: ParticipantInfo {
            sid: participant.sid.clone(),
            identity: participant.identity.clone(),
        },
        participants: subscription.participants.clone(),
        // TURN credentials named after the participant, living as long as it may stay.
        ice_servers: st.config.turn.ice_servers_for(
            &participant.sid,
            st.services.now_us().div_euclid(1_000_000),
            PARTICIPANT_TURN_TTL,
        ),
    };
    if !send(socket, &joined).await {
        return Ok(None);
    }
    // A late joiner learns the tracks already published (its offers carry their msids).
    for published in &subscription.tracks {
        let message = ServerMessage::TrackPublished {
            participant_sid: published.participant_sid.clone(),
            track: published.track.clone(),
        };
        if !send(socket, &message).await {
            return Ok(None);
        }
    }
    Ok(Some((participant, subscription)))
}

/// Relays until the client leaves, the participant is removed, or the room ends.
async fn run(mut me: Participant, mut subscription: RoomSubscription, mut socket: WebSocket) {
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.tick().await;
    let ending: Option<Refusal> = loop {
        tokio::select! {
            message = next_message(&mut socket) => match message {
                None => break None,
                Some(Err(e)) => {
                    // A bad message is answered; the connection stays.
                    if !send(&mut socket, &Refusal::from(e).into_message()).await {
                        break None;
                    }
                }
                Some(Ok(ClientMessage::Leave)) => break None,
                Some(Ok(message)) => {
                    if let Err(refusal) = me.on_client(message, &mut socket).await {
                        break Some(refusal);
                    }
                }
            },
            event = subscription.events.recv() => match event {
                Ok(event) => match me.on_worker(&event) {
                    Relay::Skip => {}
                    Relay::Send(message) => {
                        if !send(&mut socket, &message).await {
                            break None;
                        }
                    }
                    Relay::End(refusal) => break Some(refusal),
                },
                Err(RecvError::Closed) => {
                    me.in_worker = false;
                    break Some(Refusal::new(CODE_ROOM_COMPLETED, "Room completed"));
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(room = %me.room_sid, participant = %me.sid, behind = n, "participant too slow: disconnected");
                    break Some(Refusal::new(
                        CODE_SIGNALING,
                        format!("this connection fell {n} room events behind and was disconnected"),
                    ));
                }
            },
            _ = ping.tick() => {
                if !send_raw(&mut socket, Message::Ping(Default::default())).await {
                    break None;
                }
            }
        }
    };
    if me.in_worker {
        let leave = Request::Leave {
            participant_sid: me.sid.clone(),
        };
        me.processes.send(&me.room_sid, leave).await;
    }
    tracing::info!(room = %me.room_sid, participant = %me.sid, "participant left the signalling channel");
    match ending {
        Some(refusal) => close_with(&mut socket, refusal).await,
        None => {
            let _ = tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Close(None))).await;
        }
    }
}

/// What to do with one worker event.
enum Relay {
    Skip,
    Send(ServerMessage),
    End(Refusal),
}

impl Refusal {
    fn into_message(self) -> ServerMessage {
        ServerMessage::Error {
            code: self.code,
            message: self.message,
        }
    }
}

impl Participant {
    /// Relays a client message to the worker. `Err`: the connection ends.
    async fn on_client(
        &mut self,
        message: ClientMessage,
        socket: &mut WebSocket,
    ) -> Result<(), Refusal> {
        let participant_sid = self.sid.clone();
        let request = match message {
            ClientMessage::Join { .. } => {
                return self
                    .refuse(socket, "already joined: join is the first message only")
                    .await;
            }
            ClientMessage::PeerOffer { .. }
            | ClientMessage::PeerAnswer { .. }
            | ClientMessage::PeerCandidate { .. } => {
                return self
                    .refuse(
                        socket,
                        "peer_offer, peer_answer and peer_candidate are for peer-to-peer rooms; \
                         in this room send offer, answer and candidate to the server",
                    )
                    .await;
            }
            ClientMessage::Offer { sdp } if !self.in_worker => {
                self.in_worker = true;
                self.awaiting_join = true;
                Request::Join {
                    participant_sid,
                    identity: self.identity.clone(),
                    sdp,
                    subscribe: true,
                    renegotiate: true,
                }
            }
            _ if !self.in_worker => {
                return self
                    .refuse(
                        socket,
                        "send your offer before answers, candidates or layers",
                    )
                    .await;
            }
            ClientMessage::Offer { sdp } => Request::Offer {
                participant_sid,
                sdp,
            },
            ClientMessage::Answer { sdp } => Request::Answer {
                participant_sid,
                sdp,
            },
            ClientMessage::Candidate { candidate, .. } => Request::Candidate {
                participant_sid,
                candidate,
            },
            ClientMessage::SelectLayer { track_sid, layer } => Request::SelectLayer {
                participant_sid,
                track_sid,
                layer,
            },
            ClientMessage::Leave => Request::Leave { participant_sid },
        };
        if self.processes.send(&self.room_sid, request).await {
            Ok(())
        } else {
            self.in_worker = false;
            Err(Refusal::new(CODE_ROOM_COMPLETED, "Room completed"))
        }
    }

    /// Tells the client its message was out of order; the connection stays.
    async fn refuse(&self, socket: &mut WebSocket, why: &str) -> Result<(), Refusal> {
        let refusal = Refusal::new(SignalError::Invalid(String::new()).code(), why);
        if send(socket, &refusal.into_message()).await {
            Ok(())
        } else {
            Err(Refusal::new(CODE_SIGNALING, "the client stopped reading"))
        }
    }

    /// What a worker event means for this participant.
    fn on_worker(&mut self, event: &WorkerEvent) -> Relay {
        let mine = |sid: &str| sid == self.sid;
        match event {
            WorkerEvent::Answer {
                participant_sid,
                sdp,
            } if mine(participant_sid) => {
                self.awaiting_join = false;
                Relay::Send(ServerMessage::Answer { sdp: sdp.clone() })
            }
            WorkerEvent::Offer {
                participant_sid,
                sdp,
            } if mine(participant_sid) => Relay::Send(ServerMessage::Offer { sdp: sdp.clone() }),
            WorkerEvent::Error {
                participant_sid: Some(participant_sid),
                code,
                message,
            } if mine(participant_sid) => {
                let refusal = Refusal::new(*code, message.clone());
                if self.awaiting_join {
                    // The worker refused the join (room full, bad offer): not in the room.
                    self.in_worker = false;
                    Relay::End(refusal)
                } else {
                    Relay::Send(refusal.into_message())
                }
            }
            WorkerEvent::ParticipantConnected {
                participant_sid,
                identity,
            } if !mine(participant_sid) => Relay::Send(ServerMessage::ParticipantConnected {
                participant: ParticipantInfo {
                    sid: participant_sid.clone(),
                    identity: identity.clone(),
                },
            }),
            WorkerEvent::ParticipantDisconnected {
                participant_sid,
                identity,
                reason,
                code,
            } => {
                let participant = ParticipantInfo {
                    sid: participant_sid.clone(),
                    identity: identity.clone(),
                };
                if !mine(participant_sid) {
                    return Relay::Send(ServerMessage::ParticipantDisconnected { participant });
                }
                // This participant was removed (kicked, replaced, media failed, room ended).
                self.in_worker = false;
                let why = serde_json::to_string(reason).unwrap_or_default();
                Relay::End(Refusal::new(
                    code.unwrap_or(CODE_SIGNALING),
                    format!("disconnected from the room: {}", why.trim_matches('"')),
                ))
            }
            WorkerEvent::TrackPublished {
                participant_sid,
                track,
            } => Relay::Send(ServerMessage::TrackPublished {
                participant_sid: participant_sid.clone(),
                track: track.clone(),
            }),
            WorkerEvent::TrackUnpublished {
                participant_sid,
                track_sid,
            } => Relay::Send(ServerMessage::TrackUnpublished {
                participant_sid: participant_sid.clone(),
                track_sid: track_sid.clone(),
            }),
            _ => Relay::Skip,
        }
    }
}

/// The next client message; `None` when the connection closed.
pub(super) async fn next_message(
    socket: &mut WebSocket,
) -> Option<Result<ClientMessage, SignalError>> {
    loop {
        match socket.recv().await? {
            Ok(Message::Text(text)) => return Some(ClientMessage::from_json(text.as_bytes())),
            Ok(Message::Binary(bytes)) => return Some(ClientMessage::from_json(&bytes)),
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(Message::Close(_)) | Err(_) => return None,
        }
    }
}

/// Sends a message; `false` if the client is gone or did not take it within [`SEND_TIMEOUT`].
pub(super) async fn send(socket: &mut WebSocket, message: &ServerMessage) -> bool {
    send_raw(socket, Message::Text(message.to_json().into())).await
}

pub(super) async fn send_raw(socket: &mut WebSocket, message: Message) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(message)).await,
        Ok(Ok(()))
    )
}

/// Sends the refusal as an `error` message, then closes.
pub(super) async fn close_with(socket: &mut WebSocket, refusal: Refusal) {
    let code = refusal.code;
    if send(socket, &refusal.into_message()).await {
        let frame = CloseFrame {
            code: close_code::POLICY,
            reason: code.to_string().into(),
        };
        let _ = tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Close(Some(frame)))).await;
    }
}
