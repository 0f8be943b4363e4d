//! The media processes behind group rooms: the REST handlers start and end them through
//! [`RoomProcesses`], an optional part of the [`AppState`] (without it a room is only a row).
//! [`install_room_host`] puts a [`RoomHost`] there and watches its workers: one that dies
//! unasked makes its room `failed`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
pub use mediaseal_room_host::{
    ExitOutcome, HostConfig, PublishedTrack, RecordingEvents, RoomExit, RoomHost, RoomSpec,
    RoomSubscription, StartError, WORKER_BIN,
};
use mediaseal_rooms::control::{RecordingSeal, Request};
use mediaseal_store::video::Room;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::state::AppState;

/// Starts and ends the media process of a room.
#[async_trait]
pub trait RoomProcesses: Send + Sync {
    /// Starts the room's process and waits until it is ready.
    async fn start(&self, room: &Room) -> Result<(), StartError>;
    /// Ends the room's process (`complete`, then a kill after a grace period); returns once it
    /// is gone. `false` if the room had none.
    async fn complete(&self, room_sid: &str) -> bool;
    /// The process id of the room's process, while it runs.
    fn pid(&self, room_sid: &str) -> Option<u32>;
    /// Relays a participant's request to the room's process; `false` if it has none. (The
    /// default is for stand-ins without participants.)
    async fn send(&self, _room_sid: &str, _request: Request) -> bool {
        false
    }
    /// The room's participants and tracks now and its events from now on (the signalling
    /// endpoint's view); `None` if it has no process.
    fn subscribe(&self, _room_sid: &str) -> Option<RoomSubscription> {
        None
    }
    /// Starts recording the tracks published in the room that its recording rules select (the
    /// last `recording_rules` sent, else all), sealed in its process as `seal` says; the stream of its `recording_*` events (ciphertext only). `None` if it has no
    /// process or already records.
    async fn record(&self, _room_sid: &str, _seal: RecordingSeal) -> Option<RecordingEvents> {
        None
    }
    /// How long one minute of a room's `EmptyRoomTimeout` / `UnusedRoomTimeout` lasts (the
    /// peer-to-peer relay keeps the same time as the room processes).
    fn room_timeout_minute(&self) -> Duration {
        Duration::from_secs(60)
    }
}

#[async_trait]
impl RoomProcesses for RoomHost {
    async fn start(&self, room: &Room) -> Result<(), StartError> {
        let spec = RoomSpec {
            room_sid: room.sid.clone(),
            account_sid: room.account_sid.clone(),
            max_participants: u32::try_from(room.max_participants).unwrap_or(50),
            empty_room_timeout: u32::try_from(room.empty_room_timeout).ok(),
            unused_room_timeout: u32::try_from(room.unused_room_timeout).ok(),
        };
        Self::start(self, spec).await.map(|_| ())
    }

    async fn complete(&self, room_sid: &str) -> bool {
        Self::complete(self, room_sid).await
    }

    fn pid(&self, room_sid: &str) -> Option<u32> {
        Self::pid(self, room_sid)
    }

    async fn send(&self, room_sid: &str, request: Request) -> bool {
        Self::send(self, room_sid, request).await
    }

    fn subscribe(&self, room_sid: &str) -> Option<RoomSubscription> {
        Self::subscribe(self, room_sid)
    }

    async fn record(&self, room_sid: &str, seal: RecordingSeal) -> Option<RecordingEvents> {
        Self::record(self, room_sid, seal).await
    }

    fn room_timeout_minute(&self) -> Duration {
        self.config().room_timeout_minute
    }
}

/// `serve`'s room settings (`--room-worker`, `--max-rooms`, `--room-udp`).
#[derive(Debug, Clone)]
pub struct RoomOptions {
    /// The worker executable; `None`: [`WORKER_BIN`] next to the running executable, and
    /// rooms run without media processes (with a warning) if it is not there.
    pub worker: Option<PathBuf>,
    /// Rooms with a process on this node at once.
    pub max_rooms: usize,
    /// UDP addresses each room process binds (its ICE host candidates).
    pub udp: Vec<SocketAddr>,
}

impl Default for RoomOptions {
    fn default() -> Self {
        let defaults = HostConfig::new(PathBuf::new());
        Self {
            worker: None,
            max_rooms: defaults.max_rooms,
            udp: defaults.udp,
        }
    }
}

/// The host configuration `options` ask for; `Ok(None)` when no worker was named and none is
/// installed next to this executable.
pub fn host_config(options: &RoomOptions) -> Result<Option<HostConfig>, String> {
    let worker = match &options.worker {
        Some(path) if path.is_file() => path.clone(),
        Some(path) => {
            return Err(format!(
                "--room-worker {}: no such file (build mediaseal-room-worker)",
                path.display()
            ));
        }
        None => match mediaseal_room_host::worker_next_to_current_exe() {
            Ok(path) => path,
            Err(e) => {
                tracing::warn!(error = %e, "group rooms will have no media process");
                return Ok(None);
            }
        },
    };
    if options.max_rooms == 0 || options.udp.is_empty() {
        return Err("--max-rooms must be at least 1 and --room-udp needs an address".to_owned());
    }
    let mut config = HostConfig::new(worker);
    config.max_rooms = options.max_rooms;
    config.udp.clone_from(&options.udp);
    Ok(Some(config))
}

/// Puts a [`RoomHost`] into `state` (and every clone of it) and watches its workers, marking
/// rooms whose process died `failed`. Needs a tokio runtime. `None` if `state` already has
/// room processes.
pub fn install_room_host(state: &AppState, config: HostConfig) -> Option<RoomHost> {
    let (host, exits) = RoomHost::new(config);
    if !state.set_room_processes(Arc::new(host.clone())) {
        return None;
    }
    tokio::spawn(watch_exits(state.clone(), exits));
    Some(host)
}

/// At a node's start, before it runs any room: the group rooms its previous process left
/// `in-progress` (recorded under this node's [`crate::state::Config::room_node`]) lost their
/// media processes with it and become `failed`, with `room-ended` (`RoomStatus=failed`) to
/// their status callbacks. Other nodes' rooms are untouched; a second call fails nothing.
/// Returns how many rooms it failed. `serve` calls it before installing its room host.
pub async fn fail_abandoned_rooms(state: &AppState) -> crate::error::ApiResult<usize> {
    crate::api::video::rooms::fail_abandoned_rooms(state).await
}

async fn watch_exits(state: AppState, mut exits: UnboundedReceiver<RoomExit>) {
    while let Some(exit) = exits.recv().await {
        if let Err(e) = crate::api::video::rooms::worker_exited(&state, &exit).await {
            tracing::error!(room = %exit.room_sid, error = ?e, "the room's status could not be updated after its process ended");
        }
    }
}

/// Where the signalling endpoint finds the secret of the API key a room Access Token names in
/// `iss` (HS256 needs the secret itself, not the SHA-256 requests are authenticated with).
/// Installed with [`AppState::set_access_token_keys`] (`serve` installs
/// [`crate::access_token_keys::StoredApiKeys`]); without one every token is refused with
/// 20107, exactly as a token signed by an unknown key.
#[async_trait]
pub trait AccessTokenKeys: Send + Sync {
    /// API key `api_key_sid` (`SK…`): its account and secret, or `None` if there is no such
    /// key.
    async fn api_key(&self, api_key_sid: &str) -> Option<mediaseal_rooms::token::ApiKey>;
}
