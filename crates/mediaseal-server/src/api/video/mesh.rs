//! Peer-to-peer rooms on this node: the signalling WebSocket of a `Type=peer-to-peer` room
//! (docs/ROOMS.md §3, "Peer-to-peer rooms"), delegated here by `connect.rs` once the
//! participant's token is verified and the room found.
//!
//! The server never sees media: a per-room [`Hub`] in this process drives the sans-IO
//! [`MeshRoom`] (membership, `MaxParticipants` capped at 10, routing of `peer_offer` /
//! `peer_answer` / `peer_candidate` to a participant of the same room only) and hands each
//! participant its messages through a bounded inbox. Participants reach each other directly or
//! through the TURN servers (with short-lived credentials) their `joined` lists.
//!
//! The hub also publishes `participant_connected` / `participant_disconnected` in the room
//! processes' shape ([`RoomSubscription`]), so the participant rows and status callbacks of a
//! peer-to-peer room are kept by the same code as a group room's (`participants::record`,
//! `rooms::follow`). A participant is connected once its signalling is: the server cannot see
//! whether its peer connections came up.
//!
//! Limit: the hub lives in the memory of the node that serves the room's WebSocket. Every
//! participant of a room must reach the same node (route `/v1/Rooms/{room}/Connect` by room);
//! a room's hub is made on first use, so a restarted node serves its rooms again, empty.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::ws::{Message, WebSocket};
use mediaseal_room_host::EVENT_BUFFER;
use mediaseal_rooms::control::WorkerEvent;
use mediaseal_rooms::mesh::{MeshError, MeshRoom, Outgoing};
use mediaseal_rooms::room::DisconnectReason;
use mediaseal_rooms::signal::{ClientMessage, ParticipantInfo, ServerMessage};
use mediaseal_store::video::Room;
use tokio::sync::{broadcast, mpsc};

use super::connect::{
    PARTICIPANT_TURN_TTL, PING_INTERVAL, Refusal, close_with, next_message, send, send_raw,
};
use super::room_access::{CODE_ROOM_COMPLETED, CODE_SIGNALING};
use crate::room_processes::RoomSubscription;
use crate::sid::new_sid;
use crate::state::AppState;

/// Messages waiting for one participant's socket; one that falls this far behind is dropped.
const INBOX: usize = 256;

/// The room type relayed here.
pub(crate) const PEER_TO_PEER: &str = "peer-to-peer";

/// This node's peer-to-peer rooms, by `RM…` SID.
#[derive(Default)]
pub(crate) struct MeshRooms(Mutex<HashMap<String, Arc<Hub>>>);

impl MeshRooms {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Hub>>> {
        // The map stays consistent whatever panicked while holding it.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The hub of `room` (a peer-to-peer room in progress), made on first use; a new one
    /// starts the room's participant rows and status callbacks.
    pub(crate) fn open(&self, st: &AppState, room: &Room) -> Arc<Hub> {
        let mut rooms = self.lock();
        if let Some(hub) = rooms.get(&room.sid) {
            return hub.clone();
        }
        let max = usize::try_from(room.max_participants).unwrap_or(1);
        let hub = Arc::new(Hub::new(MeshRoom::new(max)));
        rooms.insert(room.sid.clone(), hub.clone());
        // Subscribed before anyone can join, so no event is missed.
        super::rooms::follow(st, room, || hub.subscribe());
        hub
    }

    /// The hub of room `room_sid`, if this node has one.
    pub(crate) fn get(&self, room_sid: &str) -> Option<Arc<Hub>> {
        self.lock().get(room_sid).cloned()
    }

    /// The room ended: every participant's socket closes with 53118 and the hub goes.
    pub(crate) fn end(&self, room_sid: &str) {
        let hub = self.lock().remove(room_sid);
        if let Some(hub) = hub {
            hub.end();
        }
    }
}

/// What a participant's socket is handed.
enum Delivery {
    Message(ServerMessage),
    /// The connection ends with this.
    End(Refusal),
}

/// One peer-to-peer room's relay.
pub(crate) struct Hub(Mutex<HubState>);

struct HubState {
    core: MeshRoom,
    inboxes: HashMap<String, mpsc::Sender<Delivery>>,
    /// Participant events for the recorder and the status callbacks; `None` once the room
    /// ended (dropping it closes their subscriptions).
    events: Option<broadcast::Sender<Arc<WorkerEvent>>>,
}

impl Hub {
    fn new(core: MeshRoom) -> Self {
        Self(Mutex::new(HubState {
            core,
            inboxes: HashMap::new(),
            events: Some(broadcast::channel(EVENT_BUFFER).0),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The room's participants now and its participant events from now on; `None` once the
    /// room ended.
    pub(crate) fn subscribe(&self) -> Option<RoomSubscription> {
        let state = self.lock();
        let events = state.events.as_ref()?.subscribe();
        Some(RoomSubscription {
            participants: state.core.participants().to_vec(),
            tracks: Vec::new(),
            events,
        })
    }

    /// Admits a participant: the others already in the room, and its inbox.
    fn join(
        &self,
        me: &ParticipantInfo,
    ) -> Result<(Vec<ParticipantInfo>, mpsc::Receiver<Delivery>), Refusal> {
        let mut state = self.lock();
        if state.events.is_none() {
            return Err(Refusal::new(CODE_ROOM_COMPLETED, "Room completed"));
        }
        let (others, notices) = state
            .core
            .join(me.clone())
            .map_err(|e| Refusal::new(e.code(), e.to_string()))?;
        let (tx, rx) = mpsc::channel(INBOX);
        state.inboxes.insert(me.sid.clone(), tx);
        state.deliver(notices);
        state.publish(WorkerEvent::ParticipantConnected {
            participant_sid: me.sid.clone(),
            identity: me.identity.clone(),
        });
        Ok((others, rx))
    }

    /// Relays a message of participant `from` to its addressee.
    fn relay(&self, from: &str, message: ClientMessage) -> Result<(), MeshError> {
        let mut state = self.lock();
        let out = state.core.relay(from, message)?;
        state.deliver(vec![out]);
        Ok(())
    }

    /// Removes `sid` (a no-op if it is already gone), telling the others and the recorder.
    fn leave(&self, sid: &str, reason: DisconnectReason) {
        self.lock().remove(sid, reason, None);
    }

    /// Removes `sid` at the control plane's request; `false` if it was not in the room.
    pub(crate) fn kick(&self, sid: &str) -> bool {
        let refusal = Refusal::new(
            CODE_SIGNALING,
            "disconnected from the room: kicked".to_owned(),
        );
        self.lock()
            .remove(sid, DisconnectReason::Kicked, Some(refusal))
    }

    fn end(&self) {
        let mut state = self.lock();
        let sids: Vec<String> = state
            .core
            .participants()
            .iter()
            .map(|p| p.sid.clone())
            .collect();
        for sid in sids {
            let refusal = Refusal::new(CODE_ROOM_COMPLETED, "Room completed");
            state.remove(&sid, DisconnectReason::RoomEnded, Some(refusal));
        }
        state.events = None;
    }
}

impl HubState {
    fn publish(&self, event: WorkerEvent) {
        if let Some(events) = &self.events {
            // No subscriber (nothing recorded yet) is not an error.
            let _ = events.send(Arc::new(event));
        }
    }

    /// Hands each message to its recipient's inbox. A recipient that fell [`INBOX`] messages
    /// behind is removed: a slow client must not hold up the room.
    fn deliver(&mut self, messages: Vec<Outgoing>) {
        let mut stuck = Vec::new();
        for Outgoing { to, message } in messages {
            let Some(inbox) = self.inboxes.get(&to) else {
                continue;
            };
            if inbox.try_send(Delivery::Message(message)).is_err() {
                stuck.push(to);
            }
        }
        for sid in stuck {
            tracing::warn!(participant = %sid, "peer-to-peer participant too slow: disconnected");
            // Its inbox is full: closing it (below) ends its socket.
            self.remove(&sid, DisconnectReason::Left, None);
        }
    }

    /// Removes `sid` from the room; `ending` goes to its socket first. `false` if it was not
    /// in the room.
    fn remove(&mut self, sid: &str, reason: DisconnectReason, ending: Option<Refusal>) -> bool {
        let inbox = self.inboxes.remove(sid);
        if let (Some(inbox), Some(ending)) = (inbox, ending) {
            let _ = inbox.try_send(Delivery::End(ending));
        }
        let Some((gone, notices)) = self.core.leave(sid) else {
            return false;
        };
        self.publish(WorkerEvent::ParticipantDisconnected {
            participant_sid: gone.sid,
            identity: gone.identity,
            reason,
            code: reason.twilio_code(),
        });
        self.deliver(notices);
        true
    }
}

/// A verified participant's session in peer-to-peer `room`, until it leaves, is removed, or
/// the room ends.
pub(super) async fn session(st: AppState, room: Room, identity: String, mut socket: WebSocket) {
    if room.status != "in-progress" {
        close_with(
            &mut socket,
            Refusal::new(CODE_ROOM_COMPLETED, "Room completed"),
        )
        .await;
        return;
    }
    let hub = st.mesh_rooms.open(&st, &room);
    let me = ParticipantInfo {
        sid: new_sid("PA"),
        identity,
    };
    let (others, mut inbox) = match hub.join(&me) {
        Ok(joined) => joined,
        Err(refusal) => {
            close_with(&mut socket, refusal).await;
            return;
        }
    };
    tracing::info!(room = %room.sid, participant = %me.sid, "participant joined a peer-to-peer room");
    let joined = ServerMessage::Joined {
        room_sid: room.sid.clone(),
        room_name: room.unique_name.clone(),
        participant: me.clone(),
        participants: others,
        // TURN credentials named after the participant, living as long as it may stay.
        ice_servers: st.config.turn.ice_servers_for(
            &me.sid,
            st.services.now_us().div_euclid(1_000_000),
            PARTICIPANT_TURN_TTL,
        ),
    };
    let ending = if send(&mut socket, &joined).await {
        relay(&hub, &me, &mut inbox, &mut socket).await
    } else {
        None
    };
    hub.leave(&me.sid, DisconnectReason::Left);
    tracing::info!(room = %room.sid, participant = %me.sid, "participant left a peer-to-peer room");
    match ending {
        Some(refusal) => close_with(&mut socket, refusal).await,
        None => {
            let _ = send_raw(&mut socket, Message::Close(None)).await;
        }
    }
}

/// Moves messages between the socket and the hub; what the connection ends with, if anything.
async fn relay(
    hub: &Hub,
    me: &ParticipantInfo,
    inbox: &mut mpsc::Receiver<Delivery>,
    socket: &mut WebSocket,
) -> Option<Refusal> {
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.tick().await;
    loop {
        tokio::select! {
            message = next_message(socket) => {
                let refused = match message {
                    None | Some(Ok(ClientMessage::Leave)) => return None,
                    Some(Err(e)) => Some(e.to_server_message()),
                    Some(Ok(ClientMessage::Join { .. })) => Some(ServerMessage::Error {
                        code: mediaseal_rooms::signal::CODE_INVALID_CLIENT_MESSAGE,
                        message: "already joined: join is the first message only".to_owned(),
                    }),
                    Some(Ok(message)) => hub
                        .relay(&me.sid, message)
                        .err()
                        .map(|e| e.to_server_message()),
                };
                // A bad or misaddressed message is answered; the connection stays.
                if let Some(refused) = refused
                    && !send(socket, &refused).await
                {
                    return None;
                }
            },
            delivery = inbox.recv() => match delivery {
                Some(Delivery::Message(message)) => {
                    if !send(socket, &message).await {
                        return None;
                    }
                }
                Some(Delivery::End(refusal)) => return Some(refusal),
                // Removed without a word: it fell behind.
                None => {
                    return Some(Refusal::new(
                        CODE_SIGNALING,
                        "this connection fell behind the room and was disconnected",
                    ));
                }
            },
            _ = ping.tick() => {
                if !send_raw(socket, Message::Ping(Default::default())).await {
                    return None;
                }
            }
        }
    }
}
