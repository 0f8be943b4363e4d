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
//! parsing, no crypto).
//!
//! `cargo run --release -p mediaseal-voice --example relay_bench -- --mode srtp --calls 200`
//! prints one JSON line.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mediaseal_call::g711::Law;
use mediaseal_call::recording::{FrameSink, Layout, Mixer, TapFrame, TapTracks};
use mediaseal_call::{CallId, LegSetup, Side};
use mediaseal_srtp::negotiate::SrtpKeys;
use mediaseal_srtp::{InboundSession, MasterKey, OutboundSession, SessionConfig, SrtpProfile};
use mediaseal_voice::{MediaRelay, VoiceMetrics};

const PAYLOAD: usize = 160;
const PROFILE: SrtpProfile = SrtpProfile::AesCm128HmacSha1_80;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Srtp,
    SrtpRecord,
    Plain,
    Forward,
}

struct Args {
    mode: Mode,
    calls: usize,
    seconds: u64,
    threads: usize,
    base_port: u16,
}

fn args() -> Args {
    let mut a = Args {
        mode: Mode::Srtp,
        calls: 100,
        seconds: 10,
        threads: 1,
        base_port: 40000,
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
                    other => panic!("unknown mode {other}"),
                }
            }
            "--calls" => a.calls = val.parse().expect("--calls N"),
            "--seconds" => a.seconds = val.parse().expect("--seconds N"),
            "--threads" => a.threads = val.parse().expect("--threads N"),
            "--base-port" => a.base_port = val.parse().expect("--base-port P"),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    a
}

/// CPU nanoseconds of this process's threads whose name starts with `prefix`.
fn thread_cpu_ns(prefix: &str) -> u64 {
    let mut total = 0;
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
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
                let mut buf = [0u8; 2048];
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
                        while let Ok((n, _)) = sockets[idx].recv_from(&mut buf) {
                            let (out, dest) = if from_a { (idx + 1, b) } else { (idx - 1, a) };
                            if sockets[out].send_to(&buf[..n], dest).is_ok() {
                                counter.fetch_add(1, Ordering::Relaxed);
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
            while let Ok((call, frame)) = rx.recv() {
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
    } else {
        relay = Some(MediaRelay::start(a.threads, bind, &metrics).expect("relay"));
    }
    for i in 0..a.calls {
        let pa = a.base_port + (i as u16) * 4;
        let pb = pa + 2;
        let call = CallId(i as u64 + 1);
        let (mut txa, mut txb) = (None, None);
        if let Some(relay) = relay.as_mut() {
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
                        lat.push((now.saturating_sub(sent) / 1000) as u32);
                        stats.received.fetch_add(1, Ordering::Relaxed);
                    }
                    stats.latencies.lock().expect("lock").extend(lat);
                })
                .expect("thread"),
        );
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
    let mut measured_sent = 0u64;
    while start.elapsed() < total {
        let tick_start = start + Duration::from_millis(20 * tick);
        let measuring = start.elapsed() >= warmup;
        if measuring && cpu0.is_none() {
            cpu0 = Some(thread_cpu_ns(prefix));
            fwd0 = match a.mode {
                Mode::Forward => forwarded.load(Ordering::Relaxed),
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
    let cpu = thread_cpu_ns(prefix).saturating_sub(cpu0.unwrap_or(0));
    let fwd = match a.mode {
        Mode::Forward => forwarded.load(Ordering::Relaxed),
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
         \"auth_failures\":{},\"recorder_frames\":{},\"recorder_bytes\":{},\"recorder_dropped\":{},\"tap_frames\":{}}}",
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
        rec_frames,
        rec_bytes,
        m.recorder_frames_dropped,
        m.tap_frames,
    );
}
