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
//! Room limits as in a group room: a second connection with an identity already in the room
//! replaces the first (which is told 53205 and disconnected), and a timer task per hub ends
//! the room after its `UnusedRoomTimeout` or `EmptyRoomTimeout` (the core says when; a minute
//! lasts the room host's `room_timeout_minute`), completing it as REST would. `MaxParticipants`
//! above 10 is refused when the room is created ([`max_participants`]).
//!
//! Limit: the hub lives in the memory of the node that serves the room's WebSocket. Every
//! participant of a room must reach the same node (route `/v1/Rooms/{room}/Connect` by room);
//! a room's hub is made on first use, so a restarted node serves its rooms again, empty.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket};
use axum::http::StatusCode;
use mediaseal_room_host::EVENT_BUFFER;
use mediaseal_rooms::control::WorkerEvent;
use mediaseal_rooms::mesh::{
    Admission, MAX_P2P_PARTICIPANTS, MeshError, MeshRoom, Outgoing, RoomTimeouts,
};
use mediaseal_rooms::room::DisconnectReason;
use mediaseal_rooms::signal::{ClientMessage, ParticipantInfo, ServerMessage};
use mediaseal_store::video::Room;
use tokio::sync::{Notify, broadcast, mpsc};

use super::connect::{
    PARTICIPANT_TURN_TTL, PING_INTERVAL, Refusal, close_with, next_message, send, send_raw,
};
use super::room_access::{CODE_ROOM_COMPLETED, CODE_SIGNALING};
use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::room_processes::RoomSubscription;
use crate::sid::new_sid;
use crate::state::AppState;

/// Messages waiting for one participant's socket; one that falls this far behind is dropped.
const INBOX: usize = 256;

/// The room type relayed here.
pub(crate) const PEER_TO_PEER: &str = "peer-to-peer";

/// Twilio's "Room MaxParticipants is out of range".
const CODE_MAX_PARTICIPANTS_OUT_OF_RANGE: u32 = 53107;

/// Most participants of a group room, and its default `MaxParticipants`.
const MAX_GROUP_PARTICIPANTS: i64 = 50;

/// The `MaxParticipants` of a new room of `room_type`: 1 to 50, default 50; for a
/// peer-to-peer room at most 10, its default, and more is Twilio's 53107 (refused when the
/// room is created rather than surfacing as 53105 at the eleventh join).
pub(super) fn max_participants(form: &Params, room_type: &str) -> ApiResult<i64> {
    if room_type != PEER_TO_PEER {
        return Ok(form
            .int_in("MaxParticipants", 1..=MAX_GROUP_PARTICIPANTS)?
            .unwrap_or(MAX_GROUP_PARTICIPANTS));
    }
    let cap = i64::try_from(MAX_P2P_PARTICIPANTS).unwrap_or(i64::MAX);
    let asked = form
        .get("MaxParticipants")
        .and_then(|v| v.trim().parse::<i64>().ok());
    match asked {
        Some(n) if n > cap => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            CODE_MAX_PARTICIPANTS_OUT_OF_RANGE,
            format!(
                "Room MaxParticipants is out of range: {n}; a peer-to-peer room takes 1 to \
                 {cap} participants (use Type=group for more)"
            ),
        )),
        _ => Ok(form.int_in("MaxParticipants", 1..=cap)?.unwrap_or(cap)),
    }
}

/// `room`'s `EmptyRoomTimeout` and `UnusedRoomTimeout`, with a minute lasting `minute`.
fn timeouts(room: &Room, minute: Duration) -> RoomTimeouts {
    let scaled = |minutes: i64| {
        u32::try_from(minutes)
            .ok()
            .filter(|m| *m > 0)
            .map(|m| minute.saturating_mul(m))
    };
    RoomTimeouts {
        empty_room: scaled(room.empty_room_timeout),
        unused_room: scaled(room.unused_room_timeout),
    }
}

/// This node's peer-to-peer rooms, by `RM…` SID.
#[derive(Default)]
pub(crate) struct MeshRooms(Mutex<HashMap<String, Arc<Hub>>>);

impl MeshRooms {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Hub>>> {
        // The map stays consistent whatever panicked while holding it.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The hub of `room` (a peer-to-peer room in progress), made on first use; a new one
    /// starts the room's participant rows, status callbacks and timeouts. Its clock starts
    /// now: on a restarted node, a room reopened gets a whole `UnusedRoomTimeout` again.
    pub(crate) fn open(&self, st: &AppState, room: &Room) -> Arc<Hub> {
        let mut rooms = self.lock();
        if let Some(hub) = rooms.get(&room.sid) {
            return hub.clone();
        }
        let max = usize::try_from(room.max_participants).unwrap_or(1);
        // The same minute as a group room's process: the room host's (tests shorten it).
        let minute = st
            .room_processes()
            .map_or(Duration::from_secs(60), |p| p.room_timeout_minute());
        let core = MeshRoom::new(max, timeouts(room, minute), Instant::now());
        let hub = Arc::new(Hub::new(core));
        rooms.insert(room.sid.clone(), hub.clone());
        // Subscribed before anyone can join, so no event is missed.
        super::rooms::follow(st, room, || hub.subscribe());
        tokio::spawn(expire(st.clone(), room.clone(), hub.clone()));
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
pub(crate) struct Hub {
    state: Mutex<HubState>,
    /// Woken when the room's membership changes or it ends (its timer may have moved).
    changed: Notify,
}

struct HubState {
    core: MeshRoom,
    inboxes: HashMap<String, mpsc::Sender<Delivery>>,
    /// Participant events for the recorder and the status callbacks; `None` once the room
    /// ended (dropping it closes their subscriptions).
    events: Option<broadcast::Sender<Arc<WorkerEvent>>>,
}

impl Hub {
    fn new(core: MeshRoom) -> Self {
        Self {
            state: Mutex::new(HubState {
                core,
                inboxes: HashMap::new(),
                events: Some(broadcast::channel(EVENT_BUFFER).0),
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
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

    /// Admits a participant: the others already in the room, and its inbox. One already in
    /// the room with the same identity is disconnected with 53205 first.
    fn join(
        &self,
        me: &ParticipantInfo,
    ) -> Result<(Vec<ParticipantInfo>, mpsc::Receiver<Delivery>), Refusal> {
        let mut state = self.lock();
        if state.events.is_none() {
            return Err(Refusal::new(CODE_ROOM_COMPLETED, "Room completed"));
        }
        let Admission {
            others,
            replaced,
            notices,
        } = state
            .core
            .join(me.clone())
            .map_err(|e| Refusal::new(e.code(), e.to_string()))?;
        if let Some(old) = replaced {
            let reason = DisconnectReason::DuplicateIdentity;
            state.close_inbox(&old.sid, Some(removal(reason)));
            state.departed(old, reason);
        }
        let (tx, rx) = mpsc::channel(INBOX);
        state.inboxes.insert(me.sid.clone(), tx);
        state.deliver(notices);
        state.publish(WorkerEvent::ParticipantConnected {
            participant_sid: me.sid.clone(),
            identity: me.identity.clone(),
        });
        drop(state);
        self.changed.notify_one();
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
        self.changed.notify_one();
    }

    /// Removes `sid` at the control plane's request; `false` if it was not in the room.
    pub(crate) fn kick(&self, sid: &str) -> bool {
        let reason = DisconnectReason::Kicked;
        let removed = self.lock().remove(sid, reason, Some(removal(reason)));
        self.changed.notify_one();
        removed
    }

    fn end(&self) {
        let mut state = self.lock();
        state.core.complete();
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
        drop(state);
        self.changed.notify_one();
    }
}

/// What a participant removed for `reason` is told, as a group room's connection says it.
fn removal(reason: DisconnectReason) -> Refusal {
    let why = serde_json::to_string(&reason).unwrap_or_default();
    Refusal::new(
        reason.twilio_code().unwrap_or(CODE_SIGNALING),
        format!("disconnected from the room: {}", why.trim_matches('"')),
    )
}

/// Ends `room` when its hub's core says its `UnusedRoomTimeout` or `EmptyRoomTimeout` has
/// come: the room completes as by REST (row, `room-ended` callback, compositions) and the hub
/// goes. Returns once the room has ended, whoever ended it.
async fn expire(st: AppState, room: Room, hub: Arc<Hub>) {
    loop {
        let wake = {
            let state = hub.lock();
            if state.events.is_none() {
                return;
            }
            state.core.next_timeout()
        };
        // A change wakes this early (`notify_one` keeps the wake-up if it came just before).
        match wake {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at.into()) => {}
                    () = hub.changed.notified() => continue,
                }
            }
            None => {
                hub.changed.notified().await;
                continue;
            }
        }
        // Decided under the hub's lock: a participant joining now is refused with 53118.
        let Some(reason) = hub.lock().core.handle_timeout(Instant::now()) else {
            continue;
        };
        tracing::info!(room = %room.sid, ?reason, "peer-to-peer room ended itself");
        if let Err(e) = super::rooms::complete_now(&st, &room).await {
            tracing::error!(room = %room.sid, error = ?e, "a timed-out peer-to-peer room could not be marked completed");
        }
        st.mesh_rooms.end(&room.sid);
        return;
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
        self.close_inbox(sid, ending);
        let Some((gone, notices)) = self.core.leave(sid, Instant::now()) else {
            return false;
        };
        self.departed(gone, reason);
        self.deliver(notices);
        true
    }

    /// Drops `sid`'s inbox, handing it `ending` first: its socket closes with that.
    fn close_inbox(&mut self, sid: &str, ending: Option<Refusal>) {
        let inbox = self.inboxes.remove(sid);
        if let (Some(inbox), Some(ending)) = (inbox, ending) {
            let _ = inbox.try_send(Delivery::End(ending));
        }
    }

    /// Tells the recorder and the status callbacks that `gone` left the room.
    fn departed(&self, gone: ParticipantInfo, reason: DisconnectReason) {
        self.publish(WorkerEvent::ParticipantDisconnected {
            participant_sid: gone.sid,
            identity: gone.identity,
            reason,
            code: reason.twilio_code(),
        });
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
