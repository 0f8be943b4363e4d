//! Relay load test: N concurrent G.711 calls, 50 packets/s each way on each leg, through the
//! relay threads (`MediaRelay`), with a load generator that keys its own SRTP.
//!
//! Every call has two legs with their own keys; the generator plays both phones: it sends SRTP
//! for A and B (each packet carries its send time), receives what the relay forwards, decrypts
//! it with the relay's outbound key for that leg, and measures loss and one-way latency (same
//! host, same monotonic clock). Relay CPU is read from `/proc/self/task/*/schedstat` of the
//! relay threads.
//!
//! Modes: `srtp` (secure legs), `srtp-record` (plus a recording tap of both parties mixed by a
//! consumer thread, as `record-from-answer-dual`), `plain` (the relay with plain RTP legs),
//! `forward` (the anchor: a bare UDP forwarder with the same threads-own-sockets strategy, no
//! parsing, no crypto), `rtpengine` (the second anchor: a running `rtpengine` daemon, driven over
//! its ng control protocol with SDES on both legs and `no-passthrough`, so every packet is
//! authenticated, decrypted and re-encrypted in its userspace; `--ng ADDR --rtpengine-pid PID`).
//!
//! `cargo run --release -p mediaseal-voice --example relay_bench -- --mode srtp --calls 200`
//! prints one JSON line.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mediaseal_call::g711::Law;
use mediaseal_call::recording::{FrameSink, Layout, Mixer, TapFrame, TapTracks};
use mediaseal_call::{CallId, LegSetup, Side};
use mediaseal_srtp::negotiate::SrtpKeys;
use mediaseal_srtp::{InboundSession, MasterKey, OutboundSession, SessionConfig, SrtpProfile};
use mediaseal_voice::batch::{DATAGRAM_BUF, RECV_BATCH, RecvBatch};
use mediaseal_voice::{MediaRelay, RealtimePriority, VoiceMetrics};

const PAYLOAD: usize = 160;
/// Packets arriving later than this after they were sent count as lost: a relay that queues
/// instead of dropping must not pass the loss criterion on a backlog.
const LATE_US: u32 = 50_000;
const PROFILE: SrtpProfile = SrtpProfile::AesCm128HmacSha1_80;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Srtp,
    SrtpRecord,
    Plain,
    Forward,
    Rtpengine,
}

struct Args {
    mode: Mode,
    calls: usize,
    seconds: u64,
    threads: usize,
    base_port: u16,
    ng: SocketAddr,
    rtpengine_pid: u32,
    /// CPU for the relay's threads (and the recorder, which is relay work), or rtpengine's.
    relay_cpu: Option<usize>,
    /// CPU for the generator's threads.
    gen_cpu: Option<usize>,
    /// Real-time (`SCHED_FIFO`) priority for the relay's threads (the forwarder's too), as
    /// rtpengine's `--scheduling=fifo --priority=N` gives its own.
    relay_fifo: Option<u8>,
    /// The generator's threads at `SCHED_BATCH` (`--gen-batch 1`): see [`batch_threads`].
    gen_batch: bool,
}

fn args() -> Args {
    let mut a = Args {
        mode: Mode::Srtp,
        calls: 100,
        seconds: 10,
        threads: 1,
        base_port: 40000,
        // Below the generator's ports (20000 + 4 per call) and rtpengine's (10000–19999).
        ng: SocketAddr::from(([127, 0, 0, 1], 9922)),
        rtpengine_pid: 0,
        relay_cpu: None,
        gen_cpu: None,
        relay_fifo: None,
        gen_batch: false,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i + 1 < v.len() {
        let val = &v[i + 1];
        match v[i].as_str() {
            "--mode" => {
                a.mode = match val.as_str() {
                    "srtp" => Mode::Srtp,
                    "srtp-record" => Mode::SrtpRecord,
                    "plain" => Mode::Plain,
                    "forward" => Mode::Forward,
                    "rtpengine" => Mode::Rtpengine,
                    other => panic!("unknown mode {other}"),
                }
            }
            "--calls" => a.calls = val.parse().expect("--calls N"),
            "--seconds" => a.seconds = val.parse().expect("--seconds N"),
            "--threads" => a.threads = val.parse().expect("--threads N"),
            "--base-port" => a.base_port = val.parse().expect("--base-port P"),
            "--ng" => a.ng = val.parse().expect("--ng IP:PORT"),
            "--rtpengine-pid" => a.rtpengine_pid = val.parse().expect("--rtpengine-pid PID"),
            "--relay-cpu" => a.relay_cpu = Some(val.parse().expect("--relay-cpu N")),
            "--gen-cpu" => a.gen_cpu = Some(val.parse().expect("--gen-cpu N")),
            "--relay-fifo" => a.relay_fifo = Some(val.parse().expect("--relay-fifo PRIORITY")),
            "--gen-batch" => a.gen_batch = val == "1",
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    a
}

/// CPU nanoseconds of this process's threads whose name starts with `prefix`.
fn thread_cpu_ns(prefix: &str) -> u64 {
    process_cpu_ns("self", prefix)
}

/// CPU nanoseconds of the threads of process `pid` (`self` or a number) named `prefix…`.
fn process_cpu_ns(pid: &str, prefix: &str) -> u64 {
    let mut total = 0;
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    for t in dir.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if !comm.starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
        total += stat
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
    }
    total
}

/// Pins the threads of process `pid` (`self` or a number) for which `pick(comm)` holds to
/// `cpu`, with util-linux's `taskset`: the relay and its load generator then stop preempting
/// each other, as a room worker and its generator are pinned in the room benchmark.
fn pin_threads(pid: &str, cpu: usize, pick: impl Fn(&str) -> bool) {
    each_thread(pid, pick, |tid| {
        std::process::Command::new("taskset")
            .args(["-p", "-c", &cpu.to_string(), tid])
            .stdout(std::process::Stdio::null())
            .status()
    });
}

/// Gives the picked threads of `pid` `SCHED_FIFO` at `priority`, with util-linux's `chrt`.
fn fifo_threads(pid: &str, priority: u8, pick: impl Fn(&str) -> bool) {
    each_thread(pid, pick, |tid| {
        std::process::Command::new("chrt")
            .args(["-f", "-p", &priority.to_string(), tid])
            .stdout(std::process::Stdio::null())
            .status()
    });
}

/// Gives the picked threads of `pid` `SCHED_BATCH` (`chrt -b`). The generator stands for
/// phones on other hosts, but on this host every packet the relay sends wakes a generator
/// thread, and a woken normal thread preempts the relay on its CPU (the scheduler puts the
/// wakee next to its waker): on a 2-vCPU machine that is a preemption for more than half the
/// packets, whose context switches are charged to the relay. A woken `SCHED_BATCH` thread
/// waits for the tick or a free CPU instead; it still gets its CPU share.
fn batch_threads(pid: &str, pick: impl Fn(&str) -> bool) {
    each_thread(pid, pick, |tid| {
        std::process::Command::new("chrt")
            .args(["-b", "-p", "0", tid])
            .stdout(std::process::Stdio::null())
            .status()
    });
}

fn each_thread(
    pid: &str,
    pick: impl Fn(&str) -> bool,
    apply: impl Fn(&str) -> std::io::Result<std::process::ExitStatus>,
) {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return;
    };
    for t in dir.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if !pick(comm.trim_end()) {
            continue;
        }
        let tid = t.file_name().to_string_lossy().into_owned();
        if !apply(&tid).is_ok_and(|s| s.success()) {
            eprintln!("could not set up thread {tid} ({})", comm.trim_end());
        }
    }
}

fn udp(bind: &str, buffer: usize) -> UdpSocket {
    let s =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).expect("socket");
    let _ = s.set_recv_buffer_size(buffer);
    let _ = s.set_send_buffer_size(buffer);
    let addr: SocketAddr = bind.parse().expect("addr");
    s.bind(&addr.into()).expect("bind");
    s.into()
}

/// The generator's state for one call leg.
struct Phone {
    relay_port: u16,
    tx: Option<OutboundSession>,
    seq: u16,
    ts: u32,
    ssrc: u32,
}

struct Stats {
    sent: AtomicU64,
    received: AtomicU64,
    auth_failures: AtomicU64,
    latencies: Mutex<Vec<u32>>,
}

/// A bare forwarder: threads that own their sockets (mio), recv → send to the other leg's peer.
fn forwarder(
    threads: usize,
    calls: &[(u16, u16, SocketAddr, SocketAddr)],
    counter: &Arc<AtomicU64>,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<()>> {
    let mut handles = Vec::new();
    for t in 0..threads {
        let mine: Vec<(u16, u16, SocketAddr, SocketAddr)> =
            calls.iter().copied().skip(t).step_by(threads).collect();
        let counter = counter.clone();
        let stop = stop.clone();
        let h = std::thread::Builder::new()
            .name(format!("mediaseal-relay-fwd{t}"))
            .spawn(move || {
                let mut poll = mio::Poll::new().expect("poll");
                let mut sockets = Vec::new();
                for (i, (pa, pb, _, _)) in mine.iter().enumerate() {
                    for (j, port) in [*pa, *pb].into_iter().enumerate() {
                        let s = UdpSocket::bind(("127.0.0.1", port)).expect("bind");
                        s.set_nonblocking(true).expect("nb");
                        let mut s = mio::net::UdpSocket::from_std(s);
                        poll.registry()
                            .register(&mut s, mio::Token(i * 2 + j), mio::Interest::READABLE)
                            .expect("register");
                        sockets.push(s);
                    }
                }
                let mut events = mio::Events::with_capacity(1024);
                // The relay's own receive path (`recvmmsg`, drained until a short batch), so
                // the anchor differs from the relay only in what happens to each packet.
                let mut batch = RecvBatch::new();
                while !stop.load(Ordering::Relaxed) {
                    if poll
                        .poll(&mut events, Some(Duration::from_millis(100)))
                        .is_err()
                    {
                        continue;
                    }
                    for ev in events.iter() {
                        let idx = ev.token().0;
                        let call = idx / 2;
                        let from_a = idx % 2 == 0;
                        let (_, _, a, b) = mine[call];
                        let (out, dest) = if from_a { (idx + 1, b) } else { (idx - 1, a) };
                        loop {
                            let got = batch.recv(&sockets[idx], DATAGRAM_BUF).unwrap_or(0);
                            for i in 0..got {
                                let Some((buf, n, _)) = batch.datagram(i) else {
                                    continue;
                                };
                                if sockets[out].send_to(&buf[..n], dest).is_ok() {
                                    counter.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            if got < RECV_BATCH {
                                break;
                            }
                        }
                    }
                }
            })
            .expect("thread");
        handles.push(h);
    }
    handles
}

struct RecordSink {
    call: u32,
    tx: SyncSender<(u32, TapFrame)>,
}

impl FrameSink for RecordSink {
    fn try_push(&mut self, frame: TapFrame) -> Result<(), TapFrame> {
        self.tx.try_send((self.call, frame)).map_err(|e| match e {
            TrySendError::Full((_, f)) | TrySendError::Disconnected((_, f)) => f,
        })
    }
}

fn recorder(rx: Receiver<(u32, TapFrame)>) -> std::thread::JoinHandle<(u64, u64)> {
    std::thread::Builder::new()
        .name("bench-recorder".into())
        .spawn(move || {
            let mut mixers: HashMap<u32, Mixer> = HashMap::new();
            let mut out = Vec::with_capacity(1 << 16);
            let (mut frames, mut bytes) = (0u64, 0u64);
            // Drained on a timer, as the server's recorder task does: blocking on `recv` would
            // make the relay thread wake this one for every frame.
            loop {
                let (call, frame) = match rx.try_recv() {
                    Ok(f) => f,
                    Err(TryRecvError::Empty) => {
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => break,
                };
                let m = mixers
                    .entry(call)
                    .or_insert_with(|| Mixer::new(Layout::Dual, 240));
                m.push(&frame, &mut out);
                frames += 1;
                bytes += out.len() as u64;
                out.clear();
            }
            (frames, bytes)
        })
        .expect("thread")
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A bencoded value, as rtpengine's ng control protocol speaks it.
enum Bencode {
    Bytes(Vec<u8>),
    Int(i64),
    List(Vec<Self>),
    Dict(Vec<(Vec<u8>, Self)>),
}

impl Bencode {
    fn str(s: &str) -> Self {
        Self::Bytes(s.as_bytes().to_vec())
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Bytes(b) => {
                out.extend_from_slice(format!("{}:", b.len()).as_bytes());
                out.extend_from_slice(b);
            }
            Self::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
            Self::List(items) => {
                out.push(b'l');
                items.iter().for_each(|i| i.encode(out));
                out.push(b'e');
            }
            Self::Dict(entries) => {
                out.push(b'd');
                for (k, v) in entries {
                    Self::Bytes(k.clone()).encode(out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }

    /// Decodes one value from the front of `input`; `None` on anything malformed.
    fn decode(input: &mut &[u8]) -> Option<Self> {
        let (&first, rest) = input.split_first()?;
        match first {
            b'i' => {
                let end = rest.iter().position(|&b| b == b'e')?;
                let n = std::str::from_utf8(&rest[..end]).ok()?.parse().ok()?;
                *input = &rest[end + 1..];
                Some(Self::Int(n))
            }
            b'l' | b'd' => {
                *input = rest;
                let mut items = Vec::new();
                while input.first() != Some(&b'e') {
                    items.push(Self::decode(input)?);
                }
                *input = &input[1..];
                if first == b'l' {
                    return Some(Self::List(items));
                }
                let mut entries = Vec::new();
                let mut it = items.into_iter();
                while let (Some(Self::Bytes(k)), Some(v)) = (it.next(), it.next()) {
                    entries.push((k, v));
                }
                Some(Self::Dict(entries))
            }
            b'0'..=b'9' => {
                let colon = input.iter().position(|&b| b == b':')?;
                let len: usize = std::str::from_utf8(&input[..colon]).ok()?.parse().ok()?;
                let body = input.get(colon + 1..colon + 1 + len)?.to_vec();
                *input = &input[colon + 1 + len..];
                Some(Self::Bytes(body))
            }
            _ => None,
        }
    }

    fn get(&self, key: &str) -> Option<&Self> {
        match self {
            Self::Dict(entries) => entries
                .iter()
                .find(|(k, _)| k == key.as_bytes())
                .map(|(_, v)| v),
            _ => None,
        }
    }

    fn text(&self) -> Option<String> {
        match self {
            Self::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }
}

/// Calls where rtpengine handed B the key A encrypts with (its SDES "passthrough" copy): it
/// still decrypts and re-encrypts with `no-passthrough`, but the legs share a key.
static SAME_KEY_LEGS: AtomicU64 = AtomicU64::new(0);

/// One rtpengine ng request/response over UDP.
struct Ng {
    socket: UdpSocket,
    daemon: SocketAddr,
    cookie: u64,
}

impl Ng {
    fn new(daemon: SocketAddr) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("ng socket");
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        Self {
            socket,
            daemon,
            cookie: 0,
        }
    }

    fn request(&mut self, entries: Vec<(&str, Bencode)>) -> Bencode {
        self.cookie += 1;
        let cookie = format!("b{}_{}", std::process::id(), self.cookie);
        let mut msg = format!("{cookie} ").into_bytes();
        Bencode::Dict(
            entries
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect(),
        )
        .encode(&mut msg);
        self.socket.send_to(&msg, self.daemon).expect("ng send");
        let mut buf = vec![0u8; 65536];
        loop {
            let n = self
                .socket
                .recv(&mut buf)
                .expect("rtpengine did not answer");
            let Some(body) = buf[..n].strip_prefix(format!("{cookie} ").as_bytes()) else {
                continue; // a late answer to an earlier request
            };
            let mut body = body;
            let reply = Bencode::decode(&mut body).expect("malformed ng reply");
            let result = reply.get("result").and_then(Bencode::text);
            if result.as_deref() != Some("ok") {
                let why = reply.get("error-reason").and_then(Bencode::text);
                panic!("rtpengine refused: {result:?} {why:?}");
            }
            return reply;
        }
    }
}

fn phone_sdp(port: u16, crypto_line: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=rtcp-mux\r\n{crypto_line}\r\na=sendrecv\r\n"
    )
}

/// The media port and `a=crypto` lines of an SDP rtpengine returned.
fn sdp_port_and_crypto(sdp: &str) -> (u16, Vec<String>) {
    let port = sdp
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|p| p.parse().ok())
        .expect("m=audio port in rtpengine's SDP");
    let crypto = sdp
        .lines()
        .filter(|l| l.starts_with("a=crypto:"))
        .map(str::to_owned)
        .collect();
    (port, crypto)
}

/// Sets up one call through rtpengine (offer from A, answer from B, `recrypt` so it never
/// passes SRTP through) and returns, per side: the port to send to, the phone's sender and
/// the receiver for what rtpengine sends that phone.
fn rtpengine_call(
    ng: &mut Ng,
    call_id: &str,
    addr_a: SocketAddr,
    addr_b: SocketAddr,
    cfg: &SessionConfig,
) -> [(u16, OutboundSession, InboundSession); 2] {
    use mediaseal_srtp::negotiate::{Offer, answer_lines};
    let flags = || Bencode::List(vec![Bencode::str("no-passthrough")]);
    let offer = Offer::new(&[PROFILE]).expect("offer");
    let a_sdp = phone_sdp(addr_a.port(), &offer.attributes()[0].to_sdp_line());
    let reply = ng.request(vec![
        ("command", Bencode::str("offer")),
        ("call-id", Bencode::str(call_id)),
        ("from-tag", Bencode::str("a")),
        ("sdp", Bencode::str(&a_sdp)),
        ("flags", flags()),
        ("replace", Bencode::List(vec![Bencode::str("origin")])),
    ]);
    let to_b = reply.get("sdp").and_then(Bencode::text).expect("offer sdp");
    let (port_b, lines) = sdp_port_and_crypto(&to_b);
    // B picks the `_32` line: rtpengine copies keys between legs that use the same suite (its
    // SDES passthrough), so a different suite is what gives every leg its own key. The work per
    // packet is the same (HMAC-SHA1 either way; only the tag is shorter).
    let b = answer_lines(
        lines.iter().map(String::as_str),
        &[SrtpProfile::AesCm128HmacSha1_32],
    )
    .expect("answer B");
    let b_sdp = phone_sdp(addr_b.port(), &b.attribute.to_sdp_line());
    let reply = ng.request(vec![
        ("command", Bencode::str("answer")),
        ("call-id", Bencode::str(call_id)),
        ("from-tag", Bencode::str("a")),
        ("to-tag", Bencode::str("b")),
        ("sdp", Bencode::str(&b_sdp)),
        ("flags", flags()),
    ]);
    let to_a = reply
        .get("sdp")
        .and_then(Bencode::text)
        .expect("answer sdp");
    let (port_a, lines) = sdp_port_and_crypto(&to_a);
    let line = lines.first().expect("a crypto line in rtpengine's answer");
    let a = offer.accept_line(line).expect("rtpengine's answer");
    if a.outbound.key_salt() == b.keys.inbound.key_salt() {
        SAME_KEY_LEGS.fetch_add(1, Ordering::Relaxed);
    }
    [
        (
            port_a,
            OutboundSession::new(&a.outbound, cfg).expect("tx"),
            InboundSession::new(&a.inbound, cfg).expect("rx"),
        ),
        (
            port_b,
            OutboundSession::new(&b.keys.outbound, cfg).expect("tx"),
            InboundSession::new(&b.keys.inbound, cfg).expect("rx"),
        ),
    ]
}

fn main() {
    let a = args();
    let secure = matches!(a.mode, Mode::Srtp | Mode::SrtpRecord);
    let epoch = Instant::now();
    let bind: IpAddr = "127.0.0.1".parse().expect("ip");
    // The phones: one socket for every A side, one for every B side.
    let sock_a = udp("127.0.0.1:0", 4 << 20);
    let sock_b = udp("127.0.0.1:0", 4 << 20);
    let addr_a = sock_a.local_addr().expect("addr");
    let addr_b = sock_b.local_addr().expect("addr");
    let metrics = Arc::new(VoiceMetrics::default());
    let stop = Arc::new(AtomicBool::new(false));
    let forwarded = Arc::new(AtomicU64::new(0));
    let mut relay = None;
    let mut fwd_threads = Vec::new();
    let (rec_tx, rec_rx) = sync_channel::<(u32, TapFrame)>(500 * a.calls.max(1));
    let rec_thread = (a.mode == Mode::SrtpRecord).then(|| recorder(rec_rx));
    let mut phones_a = Vec::new();
    let mut phones_b = Vec::new();
    // Receive side: the relay's outbound key per leg, by relay source port.
    let mut rx_a: HashMap<u16, Option<InboundSession>> = HashMap::new();
    let mut rx_b: HashMap<u16, Option<InboundSession>> = HashMap::new();
    let cfg = SessionConfig::default();
    let mut forward_calls = Vec::new();
    if a.mode == Mode::Forward {
        for i in 0..a.calls {
            let pa = a.base_port + (i as u16) * 4;
            let pb = pa + 2;
            forward_calls.push((pa, pb, addr_a, addr_b));
        }
        fwd_threads = forwarder(a.threads, &forward_calls, &forwarded, &stop);
    } else if a.mode != Mode::Rtpengine {
        // The product's own switch (`serve --rtp-priority`), not an outside `chrt`.
        let realtime = a
            .relay_fifo
            .map(|p| RealtimePriority::new(p).expect("--relay-fifo 1-99"));
        relay = Some(
            MediaRelay::start_with_priority(a.threads, bind, &metrics, realtime).expect("relay"),
        );
    }
    let mut ng = (a.mode == Mode::Rtpengine).then(|| Ng::new(a.ng));
    let run = format!("{}-{}", std::process::id(), epoch.elapsed().as_nanos());
    let mut ng_calls = Vec::new();
    for i in 0..a.calls {
        let mut pa = a.base_port + (i as u16) * 4;
        let mut pb = pa + 2;
        let call = CallId(i as u64 + 1);
        let (mut txa, mut txb) = (None, None);
        if let Some(ng) = ng.as_mut() {
            let call_id = format!("bench-{run}-{i}");
            let [(port_a, ta, ra), (port_b, tb, rb)] =
                rtpengine_call(ng, &call_id, addr_a, addr_b, &cfg);
            ng_calls.push(call_id);
            (pa, pb) = (port_a, port_b);
            (txa, txb) = (Some(ta), Some(tb));
            rx_a.insert(pa, Some(ra));
            rx_b.insert(pb, Some(rb));
        } else if let Some(relay) = relay.as_mut() {
            relay.open(call, Side::Caller, pa);
            relay.open(call, Side::Callee, pb);
            let keys = |remote: SocketAddr,
                        rxmap: &mut HashMap<u16, Option<InboundSession>>,
                        port: u16| {
                let srtp = secure.then(|| {
                    let relay_out = MasterKey::generate(PROFILE).expect("key");
                    let phone_out = MasterKey::generate(PROFILE).expect("key");
                    rxmap.insert(
                        port,
                        Some(InboundSession::new(&relay_out, &cfg).expect("rx")),
                    );
                    (
                        SrtpKeys {
                            profile: PROFILE,
                            outbound: relay_out,
                            inbound: phone_out.clone(),
                        },
                        OutboundSession::new(&phone_out, &cfg).expect("tx"),
                    )
                });
                if !secure {
                    rxmap.insert(port, None);
                }
                let (keys, tx) = match srtp {
                    Some((k, t)) => (Some(k), Some(t)),
                    None => (None, None),
                };
                (
                    LegSetup {
                        srtp: keys,
                        remote_rtp: Some(remote),
                        remote_rtcp: None,
                        rtcp_mux: true,
                        law: Law::Mu,
                        payload_type: 0,
                        telephone_event: None,
                    },
                    tx,
                )
            };
            let (setup_a, ta) = keys(addr_a, &mut rx_a, pa);
            let (setup_b, tb) = keys(addr_b, &mut rx_b, pb);
            txa = ta;
            txb = tb;
            relay.configure(call, Side::Caller, setup_a);
            relay.configure(call, Side::Callee, setup_b);
            relay.bridge(call, true);
            if a.mode == Mode::SrtpRecord {
                relay.start_tap(
                    call,
                    TapTracks::Both,
                    Box::new(RecordSink {
                        call: i as u32,
                        tx: rec_tx.clone(),
                    }),
                );
            }
        } else {
            rx_a.insert(pa, None);
            rx_b.insert(pb, None);
        }
        phones_a.push(Phone {
            relay_port: pa,
            tx: txa,
            seq: 1,
            ts: 0,
            ssrc: 0x1000_0000 + i as u32,
        });
        phones_b.push(Phone {
            relay_port: pb,
            tx: txb,
            seq: 1,
            ts: 0,
            ssrc: 0x2000_0000 + i as u32,
        });
    }
    drop(rec_tx);
    // Let the relay threads bind everything.
    std::thread::sleep(Duration::from_millis(300 + a.calls as u64));
    let stats = Arc::new(Stats {
        sent: AtomicU64::new(0),
        received: AtomicU64::new(0),
        auth_failures: AtomicU64::new(0),
        latencies: Mutex::new(Vec::with_capacity(a.calls * 100 * a.seconds as usize)),
    });
    // Receivers: A's socket gets what the relay forwards to A (from B), and vice versa.
    let mut receivers = Vec::new();
    for (sock, mut sessions) in [
        (sock_a.try_clone().expect("clone"), rx_a),
        (sock_b.try_clone().expect("clone"), rx_b),
    ] {
        let stats = stats.clone();
        let stop = stop.clone();
        receivers.push(
            std::thread::Builder::new()
                .name("bench-rx".into())
                .spawn(move || {
                    sock.set_read_timeout(Some(Duration::from_millis(100)))
                        .expect("timeout");
                    let mut buf = [0u8; 2048];
                    let mut lat = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let Ok((n, from)) = sock.recv_from(&mut buf) else {
                            continue;
                        };
                        if n >= 2 && (192..=223).contains(&buf[1]) {
                            continue; // RTCP reports
                        }
                        // The relay (or forwarder) port that sent it names the leg.
                        let Some(session) = sessions.get_mut(&from.port()) else {
                            continue;
                        };
                        let len = match session.as_mut() {
                            Some(s) => match s.unprotect_rtp(&mut buf[..n]) {
                                Ok(m) => m,
                                Err(_) => {
                                    stats.auth_failures.fetch_add(1, Ordering::Relaxed);
                                    continue;
                                }
                            },
                            None => n,
                        };
                        if len < 20 {
                            continue;
                        }
                        let sent = u64::from_be_bytes(buf[12..20].try_into().unwrap_or_default());
                        let now = epoch.elapsed().as_nanos() as u64;
                        let latency_us = (now.saturating_sub(sent) / 1000) as u32;
                        lat.push(latency_us);
                        // A phone's jitter buffer discards what comes this late: lost, too.
                        if latency_us <= LATE_US {
                            stats.received.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    stats.latencies.lock().expect("lock").extend(lat);
                })
                .expect("thread"),
        );
    }
    let relay_work = |comm: &str| comm.starts_with("mediaseal-relay") || comm == "bench-recorder";
    if let Some(cpu) = a.relay_cpu {
        match a.mode {
            Mode::Rtpengine => pin_threads(&a.rtpengine_pid.to_string(), cpu, |_| true),
            _ => pin_threads("self", cpu, relay_work),
        }
    }
    if let Some(cpu) = a.gen_cpu {
        pin_threads("self", cpu, |comm| !relay_work(comm));
    }
    if a.gen_batch {
        batch_threads("self", |comm| !relay_work(comm));
    }
    // The relay's threads took theirs when they started; rtpengine takes its own from its
    // command line (`--scheduling=fifo --priority=N`, see scripts/bench-relay.sh).
    if let (Some(priority), Mode::Forward) = (a.relay_fifo, a.mode) {
        fifo_threads("self", priority, relay_work);
    }
    // The sender: every 20 ms each phone sends one packet, spread evenly over the 20 ms.
    let warmup = Duration::from_secs(1);
    let total = warmup + Duration::from_secs(a.seconds);
    let start = Instant::now();
    let mut cpu0 = None;
    let mut fwd0 = 0;
    let mut buf = vec![0u8; 2048];
    let n = a.calls;
    let slot = Duration::from_micros(20_000 / (2 * n.max(1)) as u64);
    let mut tick = 0u64;
    let prefix = "mediaseal-relay";
    let rtpengine_pid = a.rtpengine_pid.to_string();
    let relay_cpu_ns = || match a.mode {
        // Every thread of the daemon: its pollers, timers and control.
        Mode::Rtpengine => process_cpu_ns(&rtpengine_pid, ""),
        _ => thread_cpu_ns(prefix),
    };
    let mut measured_sent = 0u64;
    while start.elapsed() < total {
        let tick_start = start + Duration::from_millis(20 * tick);
        let measuring = start.elapsed() >= warmup;
        if measuring && cpu0.is_none() {
            cpu0 = Some(relay_cpu_ns());
            fwd0 = match a.mode {
                Mode::Forward => forwarded.load(Ordering::Relaxed),
                // rtpengine keeps no counter we can read: what arrived is what it relayed.
                Mode::Rtpengine => 0,
                _ => metrics.snapshot().relay_forwarded,
            };
            stats.latencies.lock().expect("lock").clear();
            stats.received.store(0, Ordering::Relaxed);
        }
        for i in 0..2 * n {
            let due = tick_start + slot * i as u32;
            let now = Instant::now();
            if due > now + Duration::from_micros(200) {
                std::thread::sleep(due - now);
            }
            let (phone, sock) = if i % 2 == 0 {
                (&mut phones_a[i / 2], &sock_a)
            } else {
                (&mut phones_b[i / 2], &sock_b)
            };
            buf[0] = 0x80;
            buf[1] = 0;
            buf[2..4].copy_from_slice(&phone.seq.to_be_bytes());
            buf[4..8].copy_from_slice(&phone.ts.to_be_bytes());
            buf[8..12].copy_from_slice(&phone.ssrc.to_be_bytes());
            let sent_at = epoch.elapsed().as_nanos() as u64;
            buf[12..20].copy_from_slice(&sent_at.to_be_bytes());
            buf[20..12 + PAYLOAD].fill(0xff);
            let len = match phone.tx.as_mut() {
                Some(tx) => tx.protect_rtp(&mut buf, 12 + PAYLOAD).expect("protect"),
                None => 12 + PAYLOAD,
            };
            phone.seq = phone.seq.wrapping_add(1);
            phone.ts = phone.ts.wrapping_add(PAYLOAD as u32);
            let dest = SocketAddr::new(bind, phone.relay_port);
            if sock.send_to(&buf[..len], dest).is_ok() && measuring {
                measured_sent += 1;
            }
            stats.sent.fetch_add(1, Ordering::Relaxed);
        }
        tick += 1;
    }
    let measured_wall = start.elapsed().saturating_sub(warmup);
    let cpu = relay_cpu_ns().saturating_sub(cpu0.unwrap_or(0));
    let fwd = match a.mode {
        Mode::Forward => forwarded.load(Ordering::Relaxed),
        Mode::Rtpengine => stats.received.load(Ordering::Relaxed),
        _ => metrics.snapshot().relay_forwarded,
    }
    .saturating_sub(fwd0);
    // Drain what is in flight.
    std::thread::sleep(Duration::from_millis(400));
    stop.store(true, Ordering::Relaxed);
    for r in receivers {
        let _ = r.join();
    }
    let received = stats.received.load(Ordering::Relaxed);
    let mut lat = std::mem::take(&mut *stats.latencies.lock().expect("lock"));
    lat.sort_unstable();
    let m = metrics.snapshot();
    if let Some(relay) = relay {
        relay.shutdown();
    }
    for t in fwd_threads {
        let _ = t.join();
    }
    if let Some(ng) = ng.as_mut() {
        for call_id in &ng_calls {
            ng.request(vec![
                ("command", Bencode::str("delete")),
                ("call-id", Bencode::str(call_id)),
            ]);
        }
    }
    let (rec_frames, rec_bytes) = rec_thread.map_or((0, 0), |t| t.join().unwrap_or((0, 0)));
    let loss = if measured_sent == 0 {
        1.0
    } else {
        1.0 - (received as f64 / measured_sent as f64).min(1.0)
    };
    let relay_cpu_share = cpu as f64 / measured_wall.as_nanos() as f64;
    println!(
        "{{\"mode\":\"{:?}\",\"calls\":{},\"relay_threads\":{},\"seconds\":{:.1},\"sent\":{},\"received\":{},\"loss\":{:.5},\
         \"relay_cpu_us_per_packet\":{:.2},\"relay_cpu_cores\":{:.3},\"latency_p50_us\":{},\"latency_p99_us\":{},\
         \"auth_failures\":{},\"anchor_same_key_calls\":{},\"recorder_frames\":{},\"recorder_bytes\":{},\"recorder_dropped\":{},\"tap_frames\":{}}}",
        a.mode,
        a.calls,
        a.threads,
        measured_wall.as_secs_f64(),
        measured_sent,
        received,
        loss,
        if fwd > 0 {
            cpu as f64 / 1000.0 / fwd as f64
        } else {
            0.0
        },
        relay_cpu_share,
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        stats.auth_failures.load(Ordering::Relaxed) + m.srtp_auth_failures,
        SAME_KEY_LEGS.load(Ordering::Relaxed),
        rec_frames,
        rec_bytes,
        m.recorder_frames_dropped,
        m.tap_frames,
    );
}
