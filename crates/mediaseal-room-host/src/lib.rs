//! The room supervisor: one `mediaseal-room-worker` process per group room.
//!
//! [`RoomHost::start`] spawns the worker for a room, waits for its `ready` frame and keeps it
//! in a map by room SID; [`RoomHost::complete`] sends `complete` and kills the worker if it has
//! not exited after a grace period. A worker that exits without being asked (a crash,
//! `kill -9`, a protocol error) is reported on the [`RoomExit`] channel as
//! [`ExitOutcome::Failed`]; one that ended the room itself (its empty/unused-room timeouts)
//! as [`ExitOutcome::Ended`]. The caller (the server) turns those into room statuses.
//!
//! The control pipe is the worker's stdin/stdout, framed by
//! [`mediaseal_rooms::control`]; the worker's stderr is its log, forwarded line by line to
//! `tracing` with the room SID (the worker never logs media). The worker gets a cleared
//! environment (only `RUST_LOG` passes), so the server's credentials never reach it. If the
//! server process dies, the pipes close and every worker exits on its own.
//!
//! [`RoomHost::subscribe`] is the signalling endpoint's view of a room: who is connected and
//! what is published now, then every participant and track event from that moment on. Events
//! go out on a bounded broadcast ring ([`EVENT_BUFFER`] per room); a subscriber that falls
//! that far behind loses its place (`RecvError::Lagged`) instead of holding the worker's pipe
//! up, so one slow participant never stalls a room.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mediaseal_rooms::control::{
    FrameDecoder, FrameError, HardeningReport, RecordingSeal, Request, WorkerEvent, encode_frame,
};
use mediaseal_rooms::room::RoomEndReason;
use mediaseal_rooms::signal::{ParticipantInfo, TrackInfo};
use recordings::RecordingGate;
pub use recordings::{MAX_QUEUED_RECORDING_BYTES, RecordingEvents};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

mod recordings;

/// File name of the worker binary, looked for next to the current executable by default.
pub const WORKER_BIN: &str = "mediaseal-room-worker";

/// Longest worker log line forwarded at once; a longer one continues as the next line.
const MAX_LOG_LINE: u64 = 4096;

/// How long a worker may leave a control request unread before it counts as hung.
const CONTROL_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Worker events a room's subscribers may be behind by before they lose their place.
pub const EVENT_BUFFER: usize = 512;

/// How a [`RoomHost`] runs workers.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The `mediaseal-room-worker` executable.
    pub worker: PathBuf,
    /// UDP addresses each worker binds (`--udp`, port 0 = any free port); they become the
    /// room's host ICE candidates, so participants must reach them.
    pub udp: Vec<SocketAddr>,
    /// Rooms this node runs at once; one more is refused with [`StartError::Full`].
    pub max_rooms: usize,
    /// How long a new worker may take to send `ready`.
    pub ready_timeout: Duration,
    /// How long a worker may take to exit after `complete` before it is killed.
    pub complete_grace: Duration,
    /// More arguments for every worker, after the ones the host sets (e.g. `--dtls 1.3`,
    /// `--ice-lite`; see `mediaseal-room-worker --help`).
    pub worker_args: Vec<String>,
    /// How long one minute of a room's `EmptyRoomTimeout` / `UnusedRoomTimeout` lasts: 60 s.
    /// An operator and test knob only (tests set 1 s so a 1-minute timeout ends a room in a
    /// second); the REST API never changes it.
    pub room_timeout_minute: Duration,
}

impl HostConfig {
    /// Defaults: loopback UDP on a free port, 64 rooms, 10 s to get ready, 1 s to end.
    pub fn new(worker: PathBuf) -> Self {
        Self {
            worker,
            udp: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            max_rooms: 64,
            ready_timeout: Duration::from_secs(10),
            complete_grace: Duration::from_secs(1),
            worker_args: Vec::new(),
            room_timeout_minute: Duration::from_secs(60),
        }
    }
}

/// The worker binary next to the running executable (where `cargo build` and the packages put
/// it).
pub fn worker_next_to_current_exe() -> Result<PathBuf, LocateError> {
    let exe = std::env::current_exe().map_err(LocateError::CurrentExe)?;
    let path = exe
        .parent()
        .map(|dir| dir.join(WORKER_BIN))
        .unwrap_or_else(|| PathBuf::from(WORKER_BIN));
    if path.is_file() {
        Ok(path)
    } else {
        Err(LocateError::Missing(path))
    }
}

/// The worker binary could not be found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocateError {
    /// The running executable's path is unknown.
    #[error("cannot tell where this executable is ({0}): pass --room-worker PATH")]
    CurrentExe(#[source] std::io::Error),
    /// Nothing at the expected place.
    #[error("no room worker at {0}: build mediaseal-room-worker or pass --room-worker PATH")]
    Missing(PathBuf),
}

/// The room a worker is started for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSpec {
    /// `RM…` SID.
    pub room_sid: String,
    /// Owner of the room, handed back in [`RoomExit`].
    pub account_sid: String,
    /// `MaxParticipants`.
    pub max_participants: u32,
    /// `EmptyRoomTimeout` in minutes: the worker ends the room this long after the last
    /// participant left (`None`: never).
    pub empty_room_timeout: Option<u32>,
    /// `UnusedRoomTimeout` in minutes: the worker ends the room this long after it started if
    /// nobody joined (`None`: never).
    pub unused_room_timeout: Option<u32>,
}

/// A running worker, as reported by its `ready` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    /// Process id.
    pub pid: u32,
    /// The UDP addresses it listens on.
    pub udp: Vec<SocketAddr>,
    /// What hardening took effect.
    pub hardening: HardeningReport,
}

/// How a worker's process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitOutcome {
    /// The host asked it to end ([`RoomHost::complete`]); the caller already knows.
    Completed,
    /// It ended the room itself (empty or unused room timeout) and exited cleanly.
    Ended(RoomEndReason),
    /// It died without being asked: the room is `failed`. Says how (exit status or signal).
    Failed(String),
}

/// A worker ended; sent on the channel [`RoomHost::new`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomExit {
    /// `RM…` SID.
    pub room_sid: String,
    /// Owner, from the [`RoomSpec`].
    pub account_sid: String,
    /// How.
    pub outcome: ExitOutcome,
}

/// A worker could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Not an `RM` + 32 hex digits SID (it becomes a command-line argument).
    #[error("'{0}' is not a room SID")]
    BadSid(String),
    /// The room already has a worker.
    #[error("room {0} already has a worker")]
    AlreadyRunning(String),
    /// The node runs `max_rooms` rooms.
    #[error("this node already runs its maximum of {0} rooms (--max-rooms)")]
    Full(usize),
    /// The executable could not be run.
    #[error("cannot run the room worker {path}: {source}")]
    Spawn {
        /// The executable.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The worker did not say `ready`.
    #[error("the room worker for {room_sid} did not get ready: {reason}")]
    NotReady {
        /// The room.
        room_sid: String,
        /// Exit, timeout or an unexpected first frame (its log has details).
        reason: String,
    },
}

/// What the supervising task of one worker is told.
#[derive(Debug)]
enum Control {
    /// End the room: send `complete`, kill after the grace period.
    Complete,
    /// Relay a control request (the signalling endpoint's door into the worker).
    Request(Request),
}

/// A slot of the map: reserved while the worker starts, then its handle.
#[derive(Debug)]
enum Slot {
    Starting,
    Running(Handle),
}

#[derive(Debug, Clone)]
struct Handle {
    pid: u32,
    control: mpsc::Sender<Control>,
    exited: watch::Receiver<bool>,
    view: Arc<Mutex<RoomView>>,
    /// The room's `recording_*` events, until [`RoomHost::record`] takes them.
    recordings: Arc<Mutex<Option<RecordingEvents>>>,
}

/// What the worker reported so far: the participants connected and the tracks published now,
/// and the ring their events go out on. Updated and sent under one lock, so a
/// [`RoomHost::subscribe`] snapshot and the events after it neither miss nor repeat one.
#[derive(Debug)]
struct RoomView {
    participants: Vec<ParticipantInfo>,
    tracks: Vec<PublishedTrack>,
    events: broadcast::Sender<Arc<WorkerEvent>>,
}

impl RoomView {
    fn new() -> Self {
        Self {
            participants: Vec::new(),
            tracks: Vec::new(),
            events: broadcast::channel(EVENT_BUFFER).0,
        }
    }

    fn apply(&mut self, event: WorkerEvent) {
        match &event {
            WorkerEvent::ParticipantConnected {
                participant_sid,
                identity,
            } => self.participants.push(ParticipantInfo {
                sid: participant_sid.clone(),
                identity: identity.clone(),
            }),
            WorkerEvent::ParticipantDisconnected {
                participant_sid, ..
            } => {
                self.participants.retain(|p| &p.sid != participant_sid);
                self.tracks
                    .retain(|t| &t.participant_sid != participant_sid);
            }
            WorkerEvent::TrackPublished {
                participant_sid,
                track,
            } => self.tracks.push(PublishedTrack {
                participant_sid: participant_sid.clone(),
                track: track.clone(),
            }),
            WorkerEvent::TrackUnpublished { track_sid, .. } => {
                self.tracks.retain(|t| &t.track.sid != track_sid);
            }
            _ => {}
        }
        // No subscriber is not an error: nobody is listening yet.
        let _ = self.events.send(Arc::new(event));
    }
}

/// A track published in a room, with its publisher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedTrack {
    /// `PA…` SID of the publisher.
    pub participant_sid: String,
    /// The track.
    pub track: TrackInfo,
}

/// A room as a new subscriber finds it ([`RoomHost::subscribe`]).
#[derive(Debug)]
pub struct RoomSubscription {
    /// Participants whose media connection is up.
    pub participants: Vec<ParticipantInfo>,
    /// Tracks published now.
    pub tracks: Vec<PublishedTrack>,
    /// Every worker event after the snapshot except `ready`, `stats` and `room_ended`
    /// (answers, offers and errors for every participant: filter by `participant_sid`).
    /// Closed when the worker is gone; `RecvError::Lagged` when this subscriber fell
    /// [`EVENT_BUFFER`] events behind.
    pub events: broadcast::Receiver<Arc<WorkerEvent>>,
}

#[derive(Debug)]
struct Inner {
    config: HostConfig,
    rooms: Mutex<HashMap<String, Slot>>,
    exits: mpsc::UnboundedSender<RoomExit>,
}

/// Runs this node's room workers. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RoomHost {
    inner: Arc<Inner>,
}

impl RoomHost {
    /// A host with no rooms, and the channel on which it reports workers that ended (at most
    /// one report per started worker).
    pub fn new(config: HostConfig) -> (Self, mpsc::UnboundedReceiver<RoomExit>) {
        let (exits, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            config,
            rooms: Mutex::new(HashMap::new()),
            exits,
        });
        (Self { inner }, rx)
    }

    /// The configuration.
    pub fn config(&self) -> &HostConfig {
        &self.inner.config
    }

    fn rooms(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        // A panic while holding this lock leaves a plain map behind: keep using it.
        self.inner
            .rooms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts the worker of `spec`'s room and waits for its `ready`.
    pub async fn start(&self, spec: RoomSpec) -> Result<WorkerInfo, StartError> {
        if !is_room_sid(&spec.room_sid) {
            return Err(StartError::BadSid(spec.room_sid));
        }
        {
            let mut rooms = self.rooms();
            if rooms.contains_key(&spec.room_sid) {
                return Err(StartError::AlreadyRunning(spec.room_sid));
            }
            if rooms.len() >= self.inner.config.max_rooms {
                return Err(StartError::Full(self.inner.config.max_rooms));
            }
            rooms.insert(spec.room_sid.clone(), Slot::Starting);
        }
        match self.spawn(&spec).await {
            Ok(info) => Ok(info),
            Err(e) => {
                self.rooms().remove(&spec.room_sid);
                Err(e)
            }
        }
    }

    async fn spawn(&self, spec: &RoomSpec) -> Result<WorkerInfo, StartError> {
        let config = &self.inner.config;
        let mut command = Command::new(&config.worker);
        command
            .env_clear()
            .arg("--room-sid")
            .arg(&spec.room_sid)
            .arg("--max-participants")
            .arg(spec.max_participants.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(filter) = std::env::var_os("RUST_LOG") {
            command.env("RUST_LOG", filter);
        }
        for addr in &config.udp {
            command.arg("--udp").arg(addr.to_string());
        }
        // The worker counts in seconds; a minute lasts `room_timeout_minute`.
        let timeouts = [
            ("--empty-room-timeout", spec.empty_room_timeout),
            ("--unused-room-timeout", spec.unused_room_timeout),
        ];
        for (flag, minutes) in timeouts {
            if let Some(minutes) = minutes {
                let secs = config
                    .room_timeout_minute
                    .as_secs()
                    .saturating_mul(u64::from(minutes));
                command.arg(flag).arg(secs.max(1).to_string());
            }
        }
        command.args(&config.worker_args);
        let mut child = command.spawn().map_err(|source| StartError::Spawn {
            path: config.worker.clone(),
            source,
        })?;
        let not_ready = |reason: String| StartError::NotReady {
            room_sid: spec.room_sid.clone(),
            reason,
        };
        let (Some(stdin), Some(mut stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(not_ready("its pipes were not set up".to_owned()));
        };
        tokio::spawn(forward_log(spec.room_sid.clone(), stderr));
        let mut decoder = FrameDecoder::new();
        let first =
            tokio::time::timeout(config.ready_timeout, next_event(&mut stdout, &mut decoder)).await;
        let info = match first {
            Ok(Ok(Some(WorkerEvent::Ready {
                pid,
                udp,
                hardening,
                ..
            }))) => WorkerInfo {
                pid,
                udp,
                hardening,
            },
            Ok(Ok(Some(other))) => {
                return Err(not_ready(format!(
                    "its first frame was not `ready` but {}",
                    event_name(&other)
                )));
            }
            Ok(Ok(None)) => {
                let status = child.wait().await.ok();
                return Err(not_ready(format!(
                    "it exited ({}); its log says why",
                    status.map_or_else(|| "status unknown".to_owned(), describe)
                )));
            }
            Ok(Err(e)) => return Err(not_ready(e.to_string())),
            Err(_) => {
                return Err(not_ready(format!(
                    "no `ready` within {:?}",
                    config.ready_timeout
                )));
            }
        };
        let (control, control_rx) = mpsc::channel(64);
        let (exited_tx, exited) = watch::channel(false);
        let view = Arc::new(Mutex::new(RoomView::new()));
        // Not the ring: losing a block of a recording would corrupt it. Only a room asked to
        // record produces these; the gate bounds what waits for the object store.
        let (recordings_tx, recordings_rx) = RecordingGate::new(MAX_QUEUED_RECORDING_BYTES);
        self.rooms().insert(
            spec.room_sid.clone(),
            Slot::Running(Handle {
                pid: info.pid,
                control,
                exited,
                view: view.clone(),
                recordings: Arc::new(Mutex::new(Some(recordings_rx))),
            }),
        );
        tracing::info!(room = %spec.room_sid, pid = info.pid, udp = ?info.udp, "room worker ready");
        let worker = Worker {
            host: self.clone(),
            spec: spec.clone(),
            child,
            stdin,
            stdout,
            decoder,
            control: control_rx,
            exited: exited_tx,
            view,
            recordings: recordings_tx,
        };
        tokio::spawn(worker.supervise());
        Ok(info)
    }

    /// Ends the room's worker: `complete`, then a kill if it has not exited after the grace
    /// period. Returns once the process is gone; `false` if the room had no worker.
    pub async fn complete(&self, room_sid: &str) -> bool {
        let handle = match self.rooms().get(room_sid) {
            Some(Slot::Running(h)) => h.clone(),
            _ => return false,
        };
        let mut exited = handle.exited;
        // A closed channel means the worker is already on its way out.
        let _ = handle.control.send(Control::Complete).await;
        let _ = exited.wait_for(|gone| *gone).await;
        true
    }

    /// Relays a control request to the room's worker; `false` if it has none (or is ending).
    pub async fn send(&self, room_sid: &str, request: Request) -> bool {
        let control = match self.rooms().get(room_sid) {
            Some(Slot::Running(h)) => h.control.clone(),
            _ => return false,
        };
        control.send(Control::Request(request)).await.is_ok()
    }

    /// What the room's worker reported so far and its events from now on; `None` if the room
    /// has no running worker.
    pub fn subscribe(&self, room_sid: &str) -> Option<RoomSubscription> {
        let view = match self.rooms().get(room_sid) {
            Some(Slot::Running(h)) => h.view.clone(),
            _ => return None,
        };
        let view = lock(&view);
        Some(RoomSubscription {
            participants: view.participants.clone(),
            tracks: view.tracks.clone(),
            events: view.events.subscribe(),
        })
    }

    /// Starts recording the published tracks of the room that its recording rules select (the
    /// last `recording_rules` sent through [`RoomHost::send`], else all), sealed in the worker
    /// as `seal` says, and hands over the stream of its `recording_started`, `recording_data`,
    /// `recording_finished` and `recording_failed` events (closed when the worker is gone).
    /// `None` if the room has no running worker or is already recording.
    pub async fn record(&self, room_sid: &str, seal: RecordingSeal) -> Option<RecordingEvents> {
        let (control, recordings) = match self.rooms().get(room_sid) {
            Some(Slot::Running(h)) => (h.control.clone(), h.recordings.clone()),
            _ => return None,
        };
        let events = recordings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()?;
        control
            .send(Control::Request(Request::Record { seal }))
            .await
            .ok()?;
        Some(events)
    }

    /// The process id of the room's worker, while it runs.
    pub fn pid(&self, room_sid: &str) -> Option<u32> {
        match self.rooms().get(room_sid) {
            Some(Slot::Running(h)) => Some(h.pid),
            _ => None,
        }
    }

    /// Rooms with a worker (starting or running).
    pub fn len(&self) -> usize {
        self.rooms().len()
    }

    /// No room has a worker.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One worker's supervising task: relays control requests, reads its events, notices its
/// exit.
struct Worker {
    host: RoomHost,
    spec: RoomSpec,
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    decoder: FrameDecoder,
    control: mpsc::Receiver<Control>,
    exited: watch::Sender<bool>,
    view: Arc<Mutex<RoomView>>,
    recordings: RecordingGate,
}

/// Locks a room view; a panic while it was held leaves plain data behind: keep using it.
fn lock(view: &Mutex<RoomView>) -> MutexGuard<'_, RoomView> {
    view.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Worker {
    async fn supervise(mut self) {
        let room = self.spec.room_sid.clone();
        let grace = self.host.inner.config.complete_grace;
        let mut asked_to_end = false;
        let mut ended: Option<RoomEndReason> = None;
        let mut kill_at: Option<Instant> = None;
        let mut control_open = true;
        let mut stdout_open = true;
        let mut buf = vec![0u8; 64 * 1024];
        let status = loop {
            tokio::select! {
                status = self.child.wait() => break status,
                control = self.control.recv(), if control_open => match control {
                    Some(Control::Complete) => {
                        asked_to_end = true;
                        kill_at.get_or_insert_with(|| Instant::now() + grace);
                        if !self.write(&Request::Complete, grace).await {
                            let _ = self.child.start_kill();
                        }
                    }
                    Some(Control::Request(request)) => {
                        if !self.write(&request, CONTROL_WRITE_TIMEOUT).await {
                            tracing::warn!(room = %room, "room worker does not read its control pipe: killing it");
                            let _ = self.child.start_kill();
                        }
                    }
                    None => control_open = false,
                },
                read = self.stdout.read(&mut buf), if stdout_open => match read {
                    Ok(0) | Err(_) => stdout_open = false,
                    Ok(n) => {
                        self.decoder.push(&buf[..n]);
                        if self.drain_events(&mut ended).is_err() {
                            stdout_open = false;
                        }
                    }
                },
                () = sleep_until(kill_at) => {
                    tracing::warn!(room = %room, "room worker did not exit after `complete`: killing it");
                    kill_at = None;
                    let _ = self.child.start_kill();
                }
            }
        };
        // A `room_ended` may still sit in the pipe when the exit is seen first.
        if stdout_open {
            let mut rest = Vec::new();
            let _ = tokio::time::timeout(
                Duration::from_millis(500),
                self.stdout.read_to_end(&mut rest),
            )
            .await;
            self.decoder.push(&rest);
            let _ = self.drain_events(&mut ended);
        }
        let outcome = match (&status, asked_to_end, ended) {
            (_, true, _) => ExitOutcome::Completed,
            (Ok(s), false, Some(reason)) if s.success() => ExitOutcome::Ended(reason),
            (Ok(s), false, _) => ExitOutcome::Failed(describe(*s)),
            (Err(e), false, _) => ExitOutcome::Failed(format!("its exit was not seen: {e}")),
        };
        match &outcome {
            ExitOutcome::Failed(how) => {
                tracing::warn!(room = %room, pid = ?self.child.id(), exit = %how, "room worker died: the room failed");
            }
            _ => tracing::info!(room = %room, "room worker exited"),
        }
        self.host.rooms().remove(&room);
        // Subscribers see their event stream close once the last sender is gone.
        drop(self.view);
        let _ = self.exited.send(true);
        let _ = self.host.inner.exits.send(RoomExit {
            room_sid: room,
            account_sid: self.spec.account_sid.clone(),
            outcome,
        });
    }

    /// Writes one request; `false` if the worker did not take it within `timeout` (it is hung).
    /// A write error means the worker is gone: its exit comes next, so that is `true`.
    async fn write(&mut self, request: &Request, timeout: Duration) -> bool {
        let frame = encode_frame(request);
        tokio::time::timeout(timeout, self.stdin.write_all(&frame))
            .await
            .is_ok()
    }

    /// Handles the whole frames received so far.
    fn drain_events(&mut self, ended: &mut Option<RoomEndReason>) -> Result<(), FrameError> {
        let room = &self.spec.room_sid;
        loop {
            match self.decoder.next_message::<WorkerEvent>() {
                Ok(Some(WorkerEvent::RoomEnded { reason })) => *ended = Some(reason),
                Ok(Some(event @ (WorkerEvent::Ready { .. } | WorkerEvent::Stats { .. }))) => {
                    tracing::debug!(room = %room, event = event_name(&event), "room worker event");
                }
                Ok(Some(
                    event @ (WorkerEvent::RecordingStarted { .. }
                    | WorkerEvent::RecordingData { .. }
                    | WorkerEvent::RecordingFinished { .. }
                    | WorkerEvent::RecordingFailed { .. }),
                )) => {
                    self.recordings.admit(room, event);
                }
                Ok(Some(event)) => {
                    tracing::debug!(room = %room, event = event_name(&event), "room worker event");
                    lock(&self.view).apply(event);
                }
                Ok(None) => return Ok(()),
                Err(e) => {
                    tracing::warn!(room = %room, error = %e, "room worker sent a bad control frame");
                    return Err(e);
                }
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Reads until one whole event arrived; `Ok(None)` at end of stream.
async fn next_event(
    stdout: &mut ChildStdout,
    decoder: &mut FrameDecoder,
) -> Result<Option<WorkerEvent>, FrameError> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if let Some(event) = decoder.next_message::<WorkerEvent>()? {
            return Ok(Some(event));
        }
        match stdout.read(&mut buf).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(n) => decoder.push(&buf[..n]),
        }
    }
}

/// The worker's log, one `tracing` event per line, at the level the line names.
async fn forward_log(room_sid: String, stderr: ChildStderr) {
    let mut lines = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        // Bounded: a worker cannot make the server buffer an endless line.
        match (&mut lines)
            .take(MAX_LOG_LINE)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        if text.contains(" ERROR ") {
            tracing::error!(target: "mediaseal_room_worker", room = %room_sid, "{text}");
        } else if text.contains(" WARN ") {
            tracing::warn!(target: "mediaseal_room_worker", room = %room_sid, "{text}");
        } else {
            tracing::info!(target: "mediaseal_room_worker", room = %room_sid, "{text}");
        }
    }
}

fn event_name(event: &WorkerEvent) -> &'static str {
    match event {
        WorkerEvent::Ready { .. } => "ready",
        WorkerEvent::Answer { .. } => "answer",
        WorkerEvent::Offer { .. } => "offer",
        WorkerEvent::ParticipantConnected { .. } => "participant_connected",
        WorkerEvent::ParticipantDisconnected { .. } => "participant_disconnected",
        WorkerEvent::TrackPublished { .. } => "track_published",
        WorkerEvent::TrackUnpublished { .. } => "track_unpublished",
        WorkerEvent::TrackSubscribed { .. } => "track_subscribed",
        WorkerEvent::TrackUnsubscribed { .. } => "track_unsubscribed",
        WorkerEvent::Error { .. } => "error",
        WorkerEvent::Stats { .. } => "stats",
        WorkerEvent::RecordingStarted { .. } => "recording_started",
        WorkerEvent::RecordingData { .. } => "recording_data",
        WorkerEvent::RecordingFinished { .. } => "recording_finished",
        WorkerEvent::RecordingFailed { .. } => "recording_failed",
        WorkerEvent::RoomEnded { .. } => "room_ended",
    }
}

/// "exit status 2", "killed by signal 9".
fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    }
}

fn is_room_sid(s: &str) -> bool {
    s.len() == 34 && s.starts_with("RM") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(sid: &str) -> TrackInfo {
        TrackInfo {
            sid: sid.to_owned(),
            kind: mediaseal_rooms::signal::TrackKind::Audio,
            name: "mic".to_owned(),
        }
    }

    #[test]
    fn the_room_view_follows_participants_and_tracks_and_fans_events_out() {
        let mut view = RoomView::new();
        let mut early = view.events.subscribe();
        view.apply(WorkerEvent::ParticipantConnected {
            participant_sid: "PA1".into(),
            identity: "alice".into(),
        });
        view.apply(WorkerEvent::TrackPublished {
            participant_sid: "PA1".into(),
            track: track("MT1"),
        });
        view.apply(WorkerEvent::ParticipantConnected {
            participant_sid: "PA2".into(),
            identity: "bob".into(),
        });
        view.apply(WorkerEvent::TrackPublished {
            participant_sid: "PA2".into(),
            track: track("MT2"),
        });
        view.apply(WorkerEvent::TrackUnpublished {
            participant_sid: "PA2".into(),
            track_sid: "MT2".into(),
        });
        view.apply(WorkerEvent::ParticipantDisconnected {
            participant_sid: "PA1".into(),
            identity: "alice".into(),
            reason: mediaseal_rooms::room::DisconnectReason::Left,
            code: None,
        });
        let sids: Vec<&str> = view.participants.iter().map(|p| p.sid.as_str()).collect();
        assert_eq!(sids, ["PA2"]);
        assert!(view.tracks.is_empty(), "{:?}", view.tracks);
        let mut seen = 0;
        while early.try_recv().is_ok() {
            seen += 1;
        }
        assert_eq!(seen, 6, "every event reaches a subscriber");
    }

    #[test]
    fn a_subscriber_that_falls_behind_loses_its_place_not_the_room() {
        let mut view = RoomView::new();
        let mut slow = view.events.subscribe();
        for n in 0..EVENT_BUFFER + 10 {
            view.apply(WorkerEvent::TrackUnpublished {
                participant_sid: "PA1".into(),
                track_sid: format!("MT{n}"),
            });
        }
        assert!(matches!(
            slow.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(10))
        ));
    }

    #[test]
    fn sids_are_checked_before_they_become_arguments() {
        assert!(is_room_sid("RM0123456789abcdef0123456789abcdef"));
        assert!(!is_room_sid("--udp"));
        assert!(!is_room_sid("RM0123456789abcdef0123456789abcdeg"));
        assert!(!is_room_sid("PA0123456789abcdef0123456789abcdef"));
    }

    #[test]
    fn exits_are_described_for_people() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(describe(ExitStatus::from_raw(2 << 8)), "exit status 2");
        assert_eq!(describe(ExitStatus::from_raw(9)), "killed by signal 9");
    }
}
