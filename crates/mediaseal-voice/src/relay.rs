//! The media relay's threads: a few OS threads, each owning the UDP sockets of the calls it
//! was given and an epoll instance (through `mio`). No async runtime and no task per packet:
//! a thread wakes when any of its sockets is readable, drains each one until it would block,
//! runs every datagram through its call's sans-IO [`RelayCall`], and sends what comes out on
//! the other leg's socket. Timers (prompt frames, RTCP reports, silence detection) live in a
//! per-thread heap. Calls are spread over the threads round-robin and stay on one thread for
//! their whole life, so a call's SRTP state is never shared or locked.
//!
//! Commands arrive on a channel with a `mio::Waker`; media events (DTMF, end of prompt) go to
//! the signalling task on an unbounded tokio channel. Per-call counters are folded into the
//! shared [`VoiceMetrics`] four times a second.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use mediaseal_call::recording::{FrameSink, TapTracks};
use mediaseal_call::relay::{Component, PacketOutcome, PromptAudio};
use mediaseal_call::{CallId, LegSetup, MediaEvent, RelayCall, RelayConfig, Side};
use mediaseal_srtp::{MAX_TRAILER_LEN, SessionConfig};
use mediaseal_twiml::Repeat;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use tokio::sync::mpsc::UnboundedSender;

use crate::batch::{DATAGRAM_BUF, RECV_BATCH, RecvBatch};
use crate::metrics::VoiceMetrics;

const WAKER: Token = Token(usize::MAX);
const BUF_LEN: usize = DATAGRAM_BUF;
const COUNTER_INTERVAL: Duration = Duration::from_millis(250);

/// Something for one relay thread to do.
pub(crate) enum RelayCommand {
    Open {
        call: CallId,
        side: Side,
        port: u16,
    },
    Configure {
        call: CallId,
        side: Side,
        setup: Box<LegSetup>,
    },
    CloseLeg {
        call: CallId,
        side: Side,
    },
    Bridge {
        call: CallId,
        bridged: bool,
    },
    /// `generation` comes back with the end of these prompts
    /// ([`RelayNotice::PlaybackDone`]), so a late report is known for what it is.
    Play {
        call: CallId,
        prompts: Vec<(PromptAudio, Repeat)>,
        generation: u64,
    },
    StopPlayback {
        call: CallId,
    },
    ArmSilence {
        call: CallId,
        timeout: Option<Duration>,
    },
    StartTap {
        call: CallId,
        tracks: TapTracks,
        sink: Box<dyn FrameSink>,
    },
    StopTap {
        call: CallId,
    },
    Close {
        call: CallId,
    },
    Shutdown,
}

impl RelayCommand {
    fn call(&self) -> Option<CallId> {
        match self {
            Self::Open { call, .. }
            | Self::Configure { call, .. }
            | Self::CloseLeg { call, .. }
            | Self::Bridge { call, .. }
            | Self::Play { call, .. }
            | Self::StopPlayback { call }
            | Self::ArmSilence { call, .. }
            | Self::StartTap { call, .. }
            | Self::StopTap { call }
            | Self::Close { call } => Some(*call),
            Self::Shutdown => None,
        }
    }
}

/// What a relay thread tells the signalling task.
#[derive(Debug)]
pub(crate) enum RelayNotice {
    Media(CallId, MediaEvent),
    /// The prompts of the `Play` with this generation finished.
    PlaybackDone(CallId, u64),
    OpenFailed(CallId, Side),
}

struct Worker {
    tx: Sender<RelayCommand>,
    waker: Arc<Waker>,
    join: Option<JoinHandle<()>>,
}

/// The relay threads.
pub(crate) struct RelayPool {
    workers: Vec<Worker>,
    assigned: HashMap<CallId, usize>,
    next: usize,
}

impl std::fmt::Debug for RelayPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayPool")
            .field("threads", &self.workers.len())
            .field("calls", &self.assigned.len())
            .finish()
    }
}

/// A `SCHED_FIFO` priority for the relay threads (`serve --rtp-priority`), as rtpengine's
/// `--scheduling=fifo --priority=N`: a relay thread then runs as soon as a packet wakes it,
/// ahead of every normal thread on the host (HTTP, database, transcription, compilers), which
/// is what keeps its added latency under a millisecond on a busy machine. Valid: 1–99.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RealtimePriority(u8);

impl RealtimePriority {
    /// `priority` when it is a valid `SCHED_FIFO` priority (1–99).
    pub fn new(priority: u8) -> Option<Self> {
        (1..=99).contains(&priority).then_some(Self(priority))
    }

    /// The priority.
    pub fn get(self) -> u8 {
        self.0
    }

    /// Without the privilege (root, `CAP_SYS_NICE`, or `RLIMIT_RTPRIO` at least this high) the
    /// thread keeps normal scheduling and says so once: the relay works either way.
    fn apply_to_this_thread(self) {
        use thread_priority::{
            RealtimeThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue,
            ThreadSchedulePolicy, set_thread_priority_and_policy, thread_native_id,
        };
        let result = ThreadPriorityValue::try_from(self.0).and_then(|value| {
            set_thread_priority_and_policy(
                thread_native_id(),
                ThreadPriority::Crossplatform(value),
                ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo),
            )
            .map_err(|e| format!("{e:?}"))
        });
        match result {
            Ok(()) => tracing::info!(priority = self.0, "relay thread runs at SCHED_FIFO"),
            Err(error) => tracing::warn!(
                priority = self.0,
                %error,
                "relay thread keeps normal scheduling: SCHED_FIFO needs root, CAP_SYS_NICE or \
                 RLIMIT_RTPRIO >= the priority (systemd: LimitRTPRIO=, or \
                 AmbientCapabilities=CAP_SYS_NICE)"
            ),
        }
    }
}

impl RelayPool {
    /// Starts `threads` relay threads binding media sockets on `bind`.
    pub(crate) fn start(
        threads: usize,
        bind: IpAddr,
        metrics: &Arc<VoiceMetrics>,
        notices: &UnboundedSender<RelayNotice>,
        realtime: Option<RealtimePriority>,
    ) -> std::io::Result<Self> {
        let mut workers = Vec::new();
        for i in 0..threads.max(1) {
            let poll = Poll::new()?;
            let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
            let (tx, rx) = channel();
            let state = Thread {
                poll,
                rx,
                bind,
                slots: Vec::new(),
                free: Vec::new(),
                by_call: HashMap::new(),
                timers: BinaryHeap::new(),
                metrics: metrics.clone(),
                notices: notices.clone(),
                buf: vec![0; BUF_LEN],
            };
            let join = std::thread::Builder::new()
                .name(format!("mediaseal-relay-{i}"))
                .spawn(move || {
                    if let Some(priority) = realtime {
                        priority.apply_to_this_thread();
                    }
                    state.run()
                })?;
            workers.push(Worker {
                tx,
                waker,
                join: Some(join),
            });
        }
        Ok(Self {
            workers,
            assigned: HashMap::new(),
            next: 0,
        })
    }

    /// Sends a command to the thread that owns the call (assigning one on first use).
    pub(crate) fn send(&mut self, command: RelayCommand) {
        let Some(call) = command.call() else {
            return;
        };
        let index = match self.assigned.get(&call) {
            Some(&i) => i,
            None => {
                if !matches!(command, RelayCommand::Open { .. }) {
                    // Nothing was ever opened for this call on any thread.
                    return;
                }
                let i = self.next % self.workers.len();
                self.next = self.next.wrapping_add(1);
                self.assigned.insert(call, i);
                i
            }
        };
        if matches!(command, RelayCommand::Close { .. }) {
            self.assigned.remove(&call);
        }
        if let Some(w) = self.workers.get(index) {
            let _ = w.tx.send(command);
            let _ = w.waker.wake();
        }
    }

    /// Stops every thread and waits for them.
    pub(crate) fn shutdown(&mut self) {
        for w in &self.workers {
            let _ = w.tx.send(RelayCommand::Shutdown);
            let _ = w.waker.wake();
        }
        for w in &mut self.workers {
            if let Some(j) = w.join.take() {
                let _ = j.join();
            }
        }
    }
}

impl Drop for RelayPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Entry {
    call: CallId,
    relay: RelayCall,
    /// The generation of the last `Play` (what a `PlaybackDone` reports the end of).
    playing: u64,
    sockets: [[Option<UdpSocket>; 2]; 2],
    scheduled: Option<Instant>,
}

struct Thread {
    poll: Poll,
    rx: Receiver<RelayCommand>,
    bind: IpAddr,
    slots: Vec<Option<Entry>>,
    free: Vec<usize>,
    by_call: HashMap<CallId, usize>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    metrics: Arc<VoiceMetrics>,
    notices: UnboundedSender<RelayNotice>,
    buf: Vec<u8>,
}

fn side_index(side: Side) -> usize {
    match side {
        Side::Caller => 0,
        Side::Callee => 1,
    }
}

fn component_index(c: Component) -> usize {
    match c {
        Component::Rtp => 0,
        Component::Rtcp => 1,
    }
}

fn token(slot: usize, side: usize, component: usize) -> Token {
    Token(slot * 4 + side * 2 + component)
}

fn random_seeds() -> [u32; 4] {
    let mut bytes = [0u8; 16];
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    let mut out = [0u32; 4];
    for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
        *o = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    out
}

impl Thread {
    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        // Made here: its headers hold raw pointers, so it never crosses threads.
        let mut batch = RecvBatch::new();
        let mut next_counters = Instant::now() + COUNTER_INTERVAL;
        loop {
            let now = Instant::now();
            let mut deadline = next_counters;
            if let Some(Reverse((at, _))) = self.timers.peek() {
                deadline = deadline.min(*at);
            }
            let timeout = deadline.saturating_duration_since(now);
            if self.poll.poll(&mut events, Some(timeout)).is_err() {
                // EINTR and friends: just go round again.
                continue;
            }
            // One clock read for the packets of a wakeup: they arrived together, and the tap
            // and silence detection count in 125 µs samples. Timers get a fresh reading below.
            let now = Instant::now();
            for event in events.iter() {
                if event.token() == WAKER {
                    if !self.commands() {
                        self.drain_all_counters();
                        return;
                    }
                } else {
                    self.readable(&mut batch, event.token(), now);
                }
            }
            let now = Instant::now();
            self.fire_timers(now);
            if now >= next_counters {
                self.drain_all_counters();
                next_counters = now + COUNTER_INTERVAL;
            }
        }
    }

    fn drain_all_counters(&mut self) {
        for e in self.slots.iter_mut().flatten() {
            let c = e.relay.take_counters();
            self.metrics.add_relay(&c);
        }
    }

    /// Applies queued commands; `false` on shutdown.
    fn commands(&mut self) -> bool {
        while let Ok(command) = self.rx.try_recv() {
            let now = Instant::now();
            let touched = command.call();
            match command {
                RelayCommand::Shutdown => return false,
                RelayCommand::Open { call, side, port } => self.open(call, side, port, now),
                RelayCommand::Configure { call, side, setup } => {
                    if let Some(e) = self.entry(call)
                        && e.relay.set_leg(side, *setup, now).is_err()
                    {
                        let _ = self.notices.send(RelayNotice::OpenFailed(call, side));
                    }
                }
                RelayCommand::CloseLeg { call, side } => {
                    let poll = &self.poll;
                    if let Some(slot) = self.by_call.get(&call).copied()
                        && let Some(Some(e)) = self.slots.get_mut(slot)
                    {
                        e.relay.remove_leg(side);
                        for s in e.sockets[side_index(side)].iter_mut() {
                            if let Some(mut sock) = s.take() {
                                let _ = poll.registry().deregister(&mut sock);
                            }
                        }
                    }
                }
                RelayCommand::Bridge { call, bridged } => {
                    if let Some(e) = self.entry(call) {
                        e.relay.set_bridged(bridged);
                    }
                }
                RelayCommand::Play {
                    call,
                    prompts,
                    generation,
                } => {
                    if let Some(e) = self.entry(call) {
                        e.playing = generation;
                        e.relay.play(prompts, now);
                    }
                }
                RelayCommand::StopPlayback { call } => {
                    if let Some(e) = self.entry(call) {
                        e.relay.stop_playback();
                    }
                }
                RelayCommand::ArmSilence { call, timeout } => {
                    if let Some(e) = self.entry(call) {
                        e.relay.arm_silence(timeout, now);
                    }
                }
                RelayCommand::StartTap { call, tracks, sink } => {
                    if let Some(e) = self.entry(call) {
                        e.relay.start_tap(tracks, sink, now);
                    }
                }
                RelayCommand::StopTap { call } => {
                    if let Some(e) = self.entry(call) {
                        e.relay.stop_tap();
                    }
                }
                RelayCommand::Close { call } => self.close(call),
            }
            if let Some(slot) = touched.and_then(|c| self.by_call.get(&c).copied()) {
                // The command may have started a prompt or changed the call's timers.
                self.after_activity(slot, now);
            }
        }
        true
    }

    fn entry(&mut self, call: CallId) -> Option<&mut Entry> {
        let slot = *self.by_call.get(&call)?;
        self.slots.get_mut(slot)?.as_mut()
    }

    fn open(&mut self, call: CallId, side: Side, port: u16, now: Instant) {
        let slot = match self.by_call.get(&call) {
            Some(&s) => s,
            None => {
                let entry = Entry {
                    call,
                    relay: RelayCall::new(RelayConfig {
                        session: SessionConfig::default(),
                        wallclock: SystemTime::now()
                            .duration_since(SystemTime::UNIX_EPOCH)
                            .unwrap_or_default(),
                        started: now,
                        seeds: random_seeds(),
                    }),
                    playing: 0,
                    sockets: [[None, None], [None, None]],
                    scheduled: None,
                };
                let slot = match self.free.pop() {
                    Some(s) => {
                        self.slots[s] = Some(entry);
                        s
                    }
                    None => {
                        self.slots.push(Some(entry));
                        self.slots.len() - 1
                    }
                };
                self.by_call.insert(call, slot);
                slot
            }
        };
        let si = side_index(side);
        let mut opened: [Option<UdpSocket>; 2] = [None, None];
        for (ci, p) in [(0usize, port), (1usize, port.wrapping_add(1))] {
            let addr = SocketAddr::new(self.bind, p);
            let sock = std::net::UdpSocket::bind(addr).and_then(|s| {
                s.set_nonblocking(true)?;
                Ok(UdpSocket::from_std(s))
            });
            match sock {
                Ok(mut s) => {
                    if self
                        .poll
                        .registry()
                        .register(&mut s, token(slot, si, ci), Interest::READABLE)
                        .is_err()
                    {
                        let _ = self.notices.send(RelayNotice::OpenFailed(call, side));
                        return;
                    }
                    opened[ci] = Some(s);
                }
                Err(e) => {
                    tracing::warn!(%call, port = p, error = %e, "cannot bind a media port");
                    for s in opened.iter_mut() {
                        if let Some(mut s) = s.take() {
                            let _ = self.poll.registry().deregister(&mut s);
                        }
                    }
                    let _ = self.notices.send(RelayNotice::OpenFailed(call, side));
                    return;
                }
            }
        }
        if let Some(Some(e)) = self.slots.get_mut(slot) {
            e.sockets[si] = opened;
        }
    }

    fn close(&mut self, call: CallId) {
        let Some(slot) = self.by_call.remove(&call) else {
            return;
        };
        if let Some(mut e) = self.slots.get_mut(slot).and_then(Option::take) {
            let c = e.relay.take_counters();
            self.metrics.add_relay(&c);
            for s in e.sockets.iter_mut().flatten() {
                if let Some(mut sock) = s.take() {
                    let _ = self.poll.registry().deregister(&mut sock);
                }
            }
            // Dropping the relay drops its SRTP sessions (keys zeroize) and its tap sink
            // (which tells the recorder the audio ended).
        }
        self.free.push(slot);
    }

    fn readable(&mut self, batch: &mut RecvBatch, t: Token, now: Instant) {
        let slot = t.0 / 4;
        let si = (t.0 / 2) % 2;
        let ci = t.0 % 2;
        let side = if si == 0 { Side::Caller } else { Side::Callee };
        let component = if ci == 0 {
            Component::Rtp
        } else {
            Component::Rtcp
        };
        let Some(Some(e)) = self.slots.get_mut(slot) else {
            return;
        };
        while let Some(sock) = e.sockets[si][ci].as_ref() {
            // Edge-triggered: read until a batch comes back short, which means the queue is
            // empty (see `batch`); an error other than "empty" ends the drain the same way.
            let got = batch.recv(sock, BUF_LEN - MAX_TRAILER_LEN).unwrap_or(0);
            for i in 0..got {
                let Some((buf, len, source)) = batch.datagram(i) else {
                    continue;
                };
                if let PacketOutcome::Forward(tx) = e
                    .relay
                    .handle_packet(side, component, source, buf, len, now)
                {
                    let out =
                        e.sockets[side_index(tx.side)][component_index(tx.component)].as_ref();
                    let sent = out.map(|s| s.send_to(&buf[..tx.len], tx.destination));
                    if !matches!(sent, Some(Ok(_))) {
                        self.metrics
                            .send_errors
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
            if got < RECV_BATCH {
                break;
            }
        }
        // Received packets never queue generated ones (prompts and reports come from timers),
        // so only events and the call's timer need looking at here.
        self.notify_and_schedule(slot, now);
    }

    /// Sends generated packets due now and events, and reschedules the call's timer.
    fn after_activity(&mut self, slot: usize, now: Instant) {
        let Some(Some(e)) = self.slots.get_mut(slot) else {
            return;
        };
        while let Some(tx) = e.relay.poll_transmit(now, &mut self.buf) {
            let out = e.sockets[side_index(tx.side)][component_index(tx.component)].as_ref();
            let sent = out.map(|s| s.send_to(&self.buf[..tx.len], tx.destination));
            if !matches!(sent, Some(Ok(_))) {
                self.metrics
                    .send_errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        self.notify_and_schedule(slot, now);
    }

    /// Sends the call's events and reschedules its timer.
    fn notify_and_schedule(&mut self, slot: usize, now: Instant) {
        let Some(Some(e)) = self.slots.get_mut(slot) else {
            return;
        };
        while let Some(ev) = e.relay.poll_event() {
            let notice = match ev {
                MediaEvent::PlaybackDone => RelayNotice::PlaybackDone(e.call, e.playing),
                other => RelayNotice::Media(e.call, other),
            };
            let _ = self.notices.send(notice);
        }
        if let Some(at) = e.relay.poll_timeout()
            && e.scheduled.is_none_or(|s| at < s || s <= now)
        {
            e.scheduled = Some(at);
            self.timers.push(Reverse((at, slot)));
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, slot))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let due = matches!(self.slots.get(slot), Some(Some(e)) if e.scheduled == Some(at));
            if !due {
                continue;
            }
            if let Some(Some(e)) = self.slots.get_mut(slot) {
                e.scheduled = None;
                e.relay.handle_timeout(now);
            }
            self.after_activity(slot, now);
        }
    }
}

/// The relay threads on their own, without SIP: for benchmarks, and for callers that set up
/// media themselves. Events (digits, end of prompts) are discarded.
pub struct MediaRelay {
    pool: RelayPool,
    _notices: tokio::sync::mpsc::UnboundedReceiver<RelayNotice>,
}

impl std::fmt::Debug for MediaRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaRelay")
            .field("pool", &self.pool)
            .finish()
    }
}

impl MediaRelay {
    /// Starts `threads` relay threads binding media sockets on `bind`; counters go to
    /// `metrics`.
    pub fn start(
        threads: usize,
        bind: IpAddr,
        metrics: &Arc<VoiceMetrics>,
    ) -> std::io::Result<Self> {
        Self::start_with_priority(threads, bind, metrics, None)
    }

    /// [`start`](Self::start), with the relay threads at a real-time priority when
    /// `realtime` is given (see [`RealtimePriority`]).
    pub fn start_with_priority(
        threads: usize,
        bind: IpAddr,
        metrics: &Arc<VoiceMetrics>,
        realtime: Option<RealtimePriority>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        Ok(Self {
            pool: RelayPool::start(threads, bind, metrics, &tx, realtime)?,
            _notices: rx,
        })
    }

    /// Binds a leg's sockets (`port`, `port + 1`).
    pub fn open(&mut self, call: CallId, side: Side, port: u16) {
        self.pool.send(RelayCommand::Open { call, side, port });
    }

    /// Keys, codec and peer address of a leg.
    pub fn configure(&mut self, call: CallId, side: Side, setup: LegSetup) {
        self.pool.send(RelayCommand::Configure {
            call,
            side,
            setup: Box::new(setup),
        });
    }

    /// Connects or disconnects the legs.
    pub fn bridge(&mut self, call: CallId, bridged: bool) {
        self.pool.send(RelayCommand::Bridge { call, bridged });
    }

    /// Starts handing decoded audio of `tracks` to `sink`.
    pub fn start_tap(&mut self, call: CallId, tracks: TapTracks, sink: Box<dyn FrameSink>) {
        self.pool
            .send(RelayCommand::StartTap { call, tracks, sink });
    }

    /// Closes the call's sockets and drops its keys.
    pub fn close(&mut self, call: CallId) {
        self.pool.send(RelayCommand::Close { call });
    }

    /// Stops the threads.
    pub fn shutdown(mut self) {
        self.pool.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use mediaseal_call::g711::Law;

    use super::*;

    /// The scheduling policies of this process's threads named `name`, from field 41 of
    /// `/proc/self/task/TID/stat` (0 normal, 1 `SCHED_FIFO`). Other tests run relay threads
    /// of the same name at the same time.
    fn policies_of_threads(name: &str) -> Vec<u32> {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return Vec::new();
        };
        tasks
            .flatten()
            .filter(|task| {
                std::fs::read_to_string(task.path().join("comm"))
                    .is_ok_and(|comm| comm.trim_end() == name)
            })
            .filter_map(|task| {
                let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
                // The fields after the parenthesised command name, which may hold spaces.
                let rest = stat.get(stat.rfind(')')? + 2..)?;
                rest.split(' ').nth(41 - 3)?.parse().ok()
            })
            .collect()
    }

    #[test]
    fn relay_threads_run_at_the_realtime_priority_they_are_given() {
        assert_eq!(RealtimePriority::new(0), None);
        assert_eq!(RealtimePriority::new(100), None);
        let metrics = Arc::new(VoiceMetrics::default());
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let priority = RealtimePriority::new(7).unwrap();
        let pool = RelayPool::start(
            1,
            IpAddr::from([127, 0, 0, 1]),
            &metrics,
            &tx,
            Some(priority),
        )
        .unwrap();
        // Thread names are cut to 15 bytes: "mediaseal-relay-0" reads "mediaseal-relay".
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut policies = Vec::new();
        while Instant::now() < deadline {
            policies = policies_of_threads("mediaseal-relay");
            if policies.contains(&1) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(pool);
        // Root (CI) may always raise its priority; elsewhere the relay keeps normal scheduling,
        // which must not stop it either.
        let privileged = std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
        if privileged {
            assert!(
                policies.contains(&1),
                "no relay thread at SCHED_FIFO: {policies:?}"
            );
        } else {
            assert!(!policies.is_empty(), "the relay thread started");
        }
    }

    fn silence(ms: u64) -> Vec<(PromptAudio, Repeat)> {
        vec![(
            PromptAudio::Silence(Duration::from_millis(ms)),
            Repeat::Times(NonZeroU32::MIN),
        )]
    }

    /// The end of prompts is reported with the generation of the `Play` it ends, and a `Play`
    /// that replaces another reports only its own end: the edge can then tell a late report
    /// (prompts that ended while newer ones were on their way) from the end of the current one.
    #[test]
    fn the_end_of_prompts_carries_the_generation_of_its_play() {
        let metrics = Arc::new(VoiceMetrics::default());
        let (tx, mut notices) = tokio::sync::mpsc::unbounded_channel();
        let mut pool =
            RelayPool::start(1, IpAddr::from([127, 0, 0, 1]), &metrics, &tx, None).unwrap();
        let phone = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = {
            // An even port whose successor is free too, as the edge allots them.
            let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let p = probe.local_addr().unwrap().port() & !1;
            drop(probe);
            p
        };
        let call = CallId(7);
        pool.send(RelayCommand::Open {
            call,
            side: Side::Caller,
            port,
        });
        pool.send(RelayCommand::Configure {
            call,
            side: Side::Caller,
            setup: Box::new(LegSetup {
                srtp: None,
                remote_rtp: Some(phone.local_addr().unwrap()),
                remote_rtcp: None,
                rtcp_mux: true,
                law: Law::Mu,
                payload_type: 0,
                telephone_event: None,
            }),
        });
        let wait = |notices: &mut tokio::sync::mpsc::UnboundedReceiver<RelayNotice>| {
            let end = Instant::now() + Duration::from_secs(5);
            loop {
                match notices.try_recv() {
                    Ok(RelayNotice::PlaybackDone(c, generation)) if c == call => {
                        return generation;
                    }
                    Ok(RelayNotice::OpenFailed(..)) => panic!("the leg's ports were taken"),
                    Ok(_) => {}
                    Err(_) => {
                        assert!(Instant::now() < end, "no end of prompts within 5 s");
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
        };
        pool.send(RelayCommand::Play {
            call,
            prompts: silence(200),
            generation: 1,
        });
        pool.send(RelayCommand::Play {
            call,
            prompts: silence(60),
            generation: 2,
        });
        assert_eq!(wait(&mut notices), 2, "the replaced prompts report nothing");
        pool.send(RelayCommand::Play {
            call,
            prompts: silence(40),
            generation: 3,
        });
        assert_eq!(wait(&mut notices), 3);
        pool.shutdown();
    }
}
