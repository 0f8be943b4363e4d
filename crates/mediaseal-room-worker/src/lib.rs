//! The room worker: one operating-system process per video room.
//!
//! The server spawns `mediaseal-room-worker` when a room starts. The worker hardens itself
//! ([`harden_process`]), binds the room's UDP socket(s), and runs one single-threaded loop that
//! owns every participant's peer connection and SRTP keys (a [`mediaseal_rooms::room::Room`]).
//! The server talks to it only through the control pipe on stdin/stdout (length-prefixed JSON,
//! [`mediaseal_rooms::control`]); media never crosses the pipe, and logs go to stderr.
//!
//! The worker exits when the room ends (`complete`, or a room timeout) after sending
//! `room_ended`, or when its control pipe closes (then it closes every participant's DTLS
//! connection first). If it dies, only its room's participants lose their media. It writes
//! nothing to disk.
//!
//! The loop: drain the room's output (send datagrams, write events), wait with `poll(2)` on
//! stdin and the sockets until the room's next deadline, feed what arrived (control frames,
//! up to [`DATAGRAM_BATCH`] datagrams per socket) or the timeout, repeat. The receive buffer is
//! allocated once.

#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

mod hardening;
mod recorder;

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use mediaseal_rooms::control::{
    FrameDecoder, FrameError, HardeningReport, ProcessStats, Request, WorkerEvent, encode_frame,
};
use mediaseal_rooms::recording_rules::RecordingRules;
use mediaseal_rooms::room::{Input, Output, Room, RoomConfig, RoomEvent, RoomSetupError};
use rustix::event::{PollFd, PollFlags, Timespec, poll};

pub use hardening::{harden_process, log_hardening};
pub use recorder::{RecordSetupError, Recorder};

/// Datagrams read from one socket per wake-up before the loop looks at the others.
pub const DATAGRAM_BATCH: usize = 64;

/// Most UDP sockets one room binds (say one IPv4 and one IPv6 address per interface).
pub const MAX_SOCKETS: usize = 8;

/// Largest datagram read; anything longer is not WebRTC media (path MTUs are ~1500).
const RECV_BUFFER_LEN: usize = 4096;

/// What the worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The room's settings.
    pub room: RoomConfig,
    /// UDP addresses to bind, one socket each; port 0 picks a free port. Each must be a
    /// concrete IP the participants can reach: it becomes their host ICE candidate.
    pub bind: Vec<SocketAddr>,
}

/// Why the worker stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerExit {
    /// The room ended (`room_ended` was sent).
    RoomEnded,
    /// The control pipe closed; participants were disconnected.
    ControlClosed,
}

/// The worker could not run or had to stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// No address, or more than [`MAX_SOCKETS`].
    #[error("a room worker binds 1 to {MAX_SOCKETS} UDP addresses, not {0}")]
    SocketCount(usize),
    /// A UDP socket could not be bound.
    #[error("cannot bind the room's UDP socket on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The room refused its addresses.
    #[error(transparent)]
    Setup(#[from] RoomSetupError),
    /// The control pipe carried something that is not a control frame.
    #[error("control pipe protocol error: {0}")]
    Control(#[from] FrameError),
    /// Reading the control pipe or waiting for input failed.
    #[error("control pipe or poll failed: {0}")]
    Io(#[from] io::Error),
}

struct Counters {
    datagrams_in: u64,
    datagrams_out: u64,
    send_errors: u64,
}

struct Worker<W: Write> {
    room: Room,
    sockets: Vec<(UdpSocket, SocketAddr)>,
    out: W,
    out_broken: bool,
    hardening: HardeningReport,
    counters: Counters,
    ended: bool,
    /// Started by `record`; its events go out before the room's next one.
    recorder: Option<Recorder>,
    /// The last `recording_rules`, for a `record` that comes after them.
    rules: Option<RecordingRules>,
    started: Instant,
}

impl<W: Write> Worker<W> {
    fn write_event(&mut self, event: &WorkerEvent) {
        if self.out_broken {
            return;
        }
        let frame = encode_frame(event);
        if let Err(e) = self.out.write_all(&frame).and_then(|()| self.out.flush()) {
            // The server is gone; the control-pipe EOF on stdin will end the loop.
            tracing::warn!(error = %e, "control pipe write failed");
            self.out_broken = true;
        }
    }

    /// Writes the recorder's queued events (they precede whatever the room emits next, so a
    /// recording's last frame goes out before `room_ended`).
    fn flush_recordings(&mut self) {
        let Some(recorder) = &self.recorder else {
            return;
        };
        for event in recorder.take_events() {
            self.write_event(&event);
        }
    }

    /// Sends and reports everything the room has queued; returns its next deadline.
    fn flush(&mut self) -> Instant {
        loop {
            match self.room.poll_output() {
                Output::Timeout(t) => {
                    self.flush_recordings();
                    return t;
                }
                Output::Transmit(t) => {
                    let Some((socket, _)) = self.sockets.iter().find(|(_, a)| *a == t.source)
                    else {
                        self.counters.send_errors += 1;
                        continue;
                    };
                    match socket.send_to(&t.contents, t.destination) {
                        Ok(_) => self.counters.datagrams_out += 1,
                        Err(e) => {
                            self.counters.send_errors += 1;
                            tracing::debug!(destination = %t.destination, error = %e, "send failed");
                        }
                    }
                }
                Output::Event(event) => {
                    self.flush_recordings();
                    if matches!(event, RoomEvent::RoomEnded { .. }) {
                        self.ended = true;
                    }
                    self.write_event(&WorkerEvent::from(event));
                }
            }
        }
    }

    fn stats(&mut self) {
        let event = WorkerEvent::Stats {
            room: self.room.stats(),
            process: ProcessStats {
                pid: std::process::id(),
                hardening: self.hardening.clone(),
                datagrams_in: self.counters.datagrams_in,
                datagrams_out: self.counters.datagrams_out,
                send_errors: self.counters.send_errors,
            },
        };
        self.write_event(&event);
    }

    /// Asks publishers for the keyframes recorded video tracks need to start at.
    fn request_recording_keyframes(&mut self) {
        let Some(recorder) = &self.recorder else {
            return;
        };
        for track_sid in recorder.awaiting_keyframe() {
            self.room.request_track_keyframe(Instant::now(), &track_sid);
        }
    }

    fn on_request(&mut self, request: Request) {
        if let Request::RecordingRules { rules } = request {
            tracing::info!(rules = rules.rules.len(), "recording rules changed");
            if let Some(recorder) = &self.recorder {
                recorder.set_rules(rules.clone());
            }
            self.rules = Some(rules);
            self.request_recording_keyframes();
            return;
        }
        if let Request::Record { seal } = &request {
            if self.recorder.is_some() {
                return;
            }
            // Rooms that record on connect send no rules first: they record every track.
            let rules = self
                .rules
                .clone()
                .unwrap_or_else(RecordingRules::include_all);
            match Recorder::new(seal, self.started, rules) {
                Ok(recorder) => {
                    self.room.add_sink(recorder.sink());
                    self.recorder = Some(recorder);
                    tracing::info!(
                        customer_key = seal.customer,
                        "recording the tracks the room's rules select"
                    );
                    self.request_recording_keyframes();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "recording not started");
                    self.write_event(&WorkerEvent::Error {
                        participant_sid: None,
                        code: 53000,
                        message: format!("Recording could not start: {e}"),
                    });
                }
            }
            return;
        }
        match request.into_command() {
            Some(command) => {
                self.room
                    .handle_input(Input::Command(Instant::now(), command));
            }
            None => self.stats(),
        }
    }

    /// Reads up to [`DATAGRAM_BATCH`] datagrams from socket `index` into the room.
    fn read_socket(&mut self, index: usize, buf: &mut [u8]) {
        for _ in 0..DATAGRAM_BATCH {
            let (socket, local) = &self.sockets[index];
            let local = *local;
            match socket.recv_from(buf) {
                Ok((len, source)) => {
                    self.counters.datagrams_in += 1;
                    let Some(contents) = buf.get(..len) else {
                        continue;
                    };
                    self.room.handle_input(Input::Receive {
                        at: Instant::now(),
                        source,
                        destination: local,
                        contents,
                    });
                    self.flush();
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    // ICMP errors (port unreachable from a departed peer) surface here.
                    tracing::debug!(error = %e, "recv failed");
                    return;
                }
            }
        }
    }
}

/// Binds the sockets, reports `ready`, and runs the room until it ends or `control_in` closes.
/// Events go to `control_out`. The binary passes stdin and stdout.
pub fn run<R, W>(
    config: WorkerConfig,
    hardening: HardeningReport,
    mut control_in: R,
    control_out: W,
) -> Result<WorkerExit, WorkerError>
where
    R: Read + AsFd,
    W: Write,
{
    if config.bind.is_empty() || config.bind.len() > MAX_SOCKETS {
        return Err(WorkerError::SocketCount(config.bind.len()));
    }
    let mut sockets = Vec::with_capacity(config.bind.len());
    for addr in &config.bind {
        let socket = UdpSocket::bind(addr).map_err(|source| WorkerError::Bind {
            addr: *addr,
            source,
        })?;
        socket.set_nonblocking(true)?;
        let local = socket.local_addr()?;
        sockets.push((socket, local));
    }
    let addrs: Vec<SocketAddr> = sockets.iter().map(|(_, a)| *a).collect();
    let room_sid = config.room.room_sid.clone();
    let room = Room::new(config.room, &addrs, Instant::now())?;
    let mut worker = Worker {
        room,
        sockets,
        out: control_out,
        out_broken: false,
        hardening: hardening.clone(),
        counters: Counters {
            datagrams_in: 0,
            datagrams_out: 0,
            send_errors: 0,
        },
        ended: false,
        recorder: None,
        rules: None,
        started: Instant::now(),
    };
    tracing::info!(room = %room_sid, udp = ?addrs, "room worker ready");
    worker.write_event(&WorkerEvent::Ready {
        room_sid,
        pid: std::process::id(),
        udp: addrs,
        hardening,
    });

    let mut decoder = FrameDecoder::new();
    let mut datagram = vec![0u8; RECV_BUFFER_LEN];
    let mut control = vec![0u8; 64 * 1024];
    loop {
        let deadline = worker.flush();
        if worker.ended {
            return Ok(WorkerExit::RoomEnded);
        }
        let wait = deadline.saturating_duration_since(Instant::now());
        let (stdin_ready, ready_sockets) = wait_for_input(&control_in, &worker.sockets, wait)?;

        if stdin_ready {
            match control_in.read(&mut control) {
                Ok(0) => {
                    tracing::info!("control pipe closed; disconnecting participants");
                    worker.out_broken = true;
                    worker.room.handle_input(Input::Command(
                        Instant::now(),
                        mediaseal_rooms::room::Command::Complete,
                    ));
                    worker.flush();
                    return Ok(WorkerExit::ControlClosed);
                }
                Ok(n) => {
                    decoder.push(&control[..n]);
                    while let Some(request) = decoder.next_message::<Request>()? {
                        worker.on_request(request);
                        worker.flush();
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        for (index, ready) in ready_sockets.iter().take(worker.sockets.len()).enumerate() {
            if *ready {
                worker.read_socket(index, &mut datagram);
            }
        }
        let now = Instant::now();
        if now >= deadline {
            worker.room.handle_input(Input::Timeout(now));
        }
    }
}

/// Waits until stdin or a socket is readable, or `wait` passes. Returns whether stdin is
/// readable and, per socket, whether it is. No heap allocation: the loop runs once per wake-up.
fn wait_for_input(
    control_in: &impl AsFd,
    sockets: &[(UdpSocket, SocketAddr)],
    wait: Duration,
) -> io::Result<(bool, [bool; MAX_SOCKETS])> {
    let used = 1 + sockets.len().min(MAX_SOCKETS);
    // Unused slots repeat stdin; only the first `used` go to poll(2).
    let mut fds: [PollFd<'_>; 1 + MAX_SOCKETS] =
        std::array::from_fn(|i| match i.checked_sub(1).and_then(|s| sockets.get(s)) {
            Some((socket, _)) => PollFd::new(socket, PollFlags::IN),
            None => PollFd::new(control_in, PollFlags::IN),
        });
    let timeout = Timespec {
        tv_sec: i64::try_from(wait.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(wait.subsec_nanos()),
    };
    loop {
        match poll(&mut fds[..used], Some(&timeout)) {
            Ok(_) => break,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let readable = |fd: &PollFd<'_>| {
        fd.revents()
            .intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR)
    };
    let mut ready = [false; MAX_SOCKETS];
    for (flag, fd) in ready.iter_mut().zip(&fds[1..used]) {
        *flag = readable(fd);
    }
    Ok((readable(&fds[0]), ready))
}
