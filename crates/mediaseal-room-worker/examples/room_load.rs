//! Load generator for room worker processes: R rooms, each its own real `mediaseal-room-worker`
//! process driven over its own control pipe (the generator plays the server), with str0m peers
//! that each have their own ICE, DTLS and SRTP over UDP loopback.
//!
//! A room holds either P publishers and S subscribers (`--publishers`, `--subscribers`), or, with
//! `--participants N`, N participants that each publish and receive the other N − 1 (a
//! four-person call is `--participants 4`). Every publisher sends audio at `--pps` packets/s
//! (and VP8 with `--video`): the Opus packets of `--opus FILE` and the VP8 frames of `--vp8
//! FILE` replayed in a loop, or synthetic Opus- and VP8-shaped payloads (`room_load/media.rs`).
//! Each frame ends with the publisher index, a sequence number and the send time, so receivers
//! measure loss and send→receive latency; publishers answer PLI and count NACKs. Only frames
//! sent inside the measurement window count. Per worker: CPU time (utime + stime from
//! `/proc/PID/stat`) around the window, memory (VmRSS, RssAnon, VmHWM from `/proc/PID/status`,
//! Pss from `smaps_rollup`). `--record` makes every worker record its tracks, sealed with a
//! freshly generated RSA key, and counts the sealed bytes that come back. One `RESULT
//! key=value…` line on stdout per run; `scripts/bench-rooms.sh` and
//! `scripts/bench-rooms-many.sh` tabulate.
//!
//! With `--janus-url` the rooms are Janus VideoRooms instead (an anchor through the same
//! generator, see `room_load/janus.rs`): same peers, media and measures, with the CPU time and
//! memory of the Janus process given by `--janus-pid` (all its threads).
//!
//! Usage: `room_load --worker target/release/mediaseal-room-worker [--rooms 100]
//! (--participants 4 | --publishers 4 --subscribers 4) [--pps 50] [--seconds 10] [--video]
//! [--opus clip.ogg] [--vp8 clip.ivf]
//! [--record [--record-seal at-rest|s3-cbc]] [--worker-cpu 1] [--gen-cpu 0]`, or
//! `room_load --janus-url http://127.0.0.1:8088/janus --janus-pid PID --peer-ip 192.0.2.2
//! --publishers 4 --subscribers 4 …`

#![allow(clippy::disallowed_methods)] // a benchmark reads the clock

use std::error::Error;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::Parser;
use mediaseal_crypto::{Format, PrivateKey};
use mediaseal_rooms::control::{FrameDecoder, RecordingSeal, Request, WorkerEvent, encode_frame};
use mediaseal_rooms::str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use mediaseal_rooms::str0m::format::Codec;
use mediaseal_rooms::str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use mediaseal_rooms::str0m::net::{Protocol, Receive};
use mediaseal_rooms::str0m::{self, Candidate, Event, Rtc, RtcError};
use rustix::event::{Timespec, epoll};

#[path = "room_load/janus.rs"]
mod janus;
#[path = "room_load/media.rs"]
mod media;

type Res<T> = Result<T, Box<dyn Error>>;

#[derive(Debug, Parser)]
struct Args {
    /// The worker binary.
    #[arg(
        long,
        required_unless_present = "janus_url",
        conflicts_with = "janus_url"
    )]
    worker: Option<PathBuf>,
    /// Rooms are Janus VideoRooms behind this HTTP API URL instead of worker processes
    /// (publishers and subscribers only, no recording).
    #[arg(long, requires = "janus_pid")]
    janus_url: Option<String>,
    /// The Janus process, whose CPU time and memory are measured.
    #[arg(long)]
    janus_pid: Option<u32>,
    /// Address the peers bind to. Janus gathers no candidates on loopback interfaces, so for
    /// Janus this is a non-loopback address of this host.
    #[arg(long, default_value = "127.0.0.1")]
    peer_ip: IpAddr,
    /// Rooms, each its own worker process.
    #[arg(long, default_value_t = 1)]
    rooms: usize,
    /// Participants per room that each publish and receive everyone else (overrides
    /// `--publishers` and `--subscribers`).
    #[arg(long)]
    participants: Option<usize>,
    /// Publishers per room (without `--participants`).
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    /// Subscribers per room (without `--participants`).
    #[arg(long, default_value_t = 4)]
    subscribers: usize,
    /// Audio packets per second per publisher.
    #[arg(long, default_value_t = 50)]
    pps: u32,
    /// Also send VP8 (without `--vp8`: 30 frames/s, one ~1 kB packet each).
    #[arg(long)]
    video: bool,
    /// Replay the Opus packets of this Ogg Opus file (looped) instead of synthetic audio.
    #[arg(long)]
    opus: Option<PathBuf>,
    /// Replay the VP8 frames of this IVF file (looped, at its frame rate) as the video; needs
    /// `--video`.
    #[arg(long, requires = "video")]
    vp8: Option<PathBuf>,
    /// Measurement window, seconds (after a 2 s warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Every worker records every track (sealed with a fresh RSA key; the sealed bytes are
    /// counted and dropped).
    #[arg(long)]
    record: bool,
    /// How recordings are sealed: `at-rest` (the `native` envelope) or `s3-cbc` (customer key).
    #[arg(long, default_value = "at-rest")]
    record_seal: String,
    /// Longest wait for every peer to connect, seconds.
    #[arg(long, default_value_t = 120)]
    setup_seconds: u64,
    /// Pin every worker to this CPU (taskset).
    #[arg(long)]
    worker_cpu: Option<usize>,
    /// Pin the generator to this CPU.
    #[arg(long)]
    gen_cpu: Option<usize>,
}

struct Peer {
    room: usize,
    sid: String,
    sock: UdpSocket,
    local: SocketAddr,
    rtc: Rtc,
    pending: Option<SdpPendingOffer>,
    connected: bool,
    publisher: Option<u16>,
    audio: Option<Mid>,
    video: Option<Mid>,
    next_audio: Instant,
    next_video: Instant,
    seq: u64,
    vseq: u64,
    /// Place in the video clip and feedback received (publishers).
    replay: media::Replay,
    timeout: Instant,
}

/// What one room measured.
#[derive(Default)]
struct Tally {
    sent_audio: u64,
    sent_video: u64,
    got_audio: u64,
    got_video: u64,
    /// Frames str0m refused (its send queue full): the generator fell behind.
    write_drops: u64,
    latencies_us: Vec<u64>,
}

/// Sealed recording traffic of one room.
#[derive(Default)]
struct RecordTally {
    started: u64,
    finished: u64,
    failed: u64,
    bytes: u64,
    window_bytes: u64,
}

/// Where a room's requests go.
enum Control {
    /// A worker's control pipe.
    Worker(ChildStdin),
    /// Janus's HTTP API.
    Janus(janus::Room),
}

struct Room {
    sid: String,
    /// The worker process (none for Janus, which the caller runs).
    child: Option<Child>,
    control: Control,
    events: Receiver<WorkerEvent>,
    pid: u32,
    memory_locked: bool,
    /// Receivers of each published packet.
    fanout: u64,
    tally: Tally,
    record: RecordTally,
    errors: u64,
    disconnects: u64,
    ended: bool,
    dead: bool,
}

/// Everything the generator's single loop drives.
struct Gen {
    rooms: Vec<Room>,
    peers: Vec<Peer>,
    epoll: OwnedFd,
    ready: Vec<epoll::Event>,
    buf: Vec<u8>,
    window: Option<(Instant, Instant)>,
    epoch: Instant,
    pps: u32,
    /// What publishers send.
    media: media::Source,
    peer_ip: IpAddr,
    /// Set once the rooms are being completed: departures are expected then.
    ending: bool,
}

fn main() -> Res<()> {
    let args = Args::parse();
    if args.rooms == 0 || args.pps == 0 {
        return Err("--rooms and --pps must be at least 1".into());
    }
    if args.participants.is_some_and(|n| n < 2) {
        return Err("--participants needs at least 2 (each receives the others)".into());
    }
    if args.janus_url.is_some() && (args.participants.is_some() || args.record) {
        return Err(
            "--janus-url takes --publishers and --subscribers, not --participants \
                    or --record"
                .into(),
        );
    }
    if let Some(cpu) = args.gen_cpu {
        let mut set = rustix::thread::CpuSet::new();
        set.set(cpu);
        rustix::thread::sched_setaffinity(None, &set)
            .map_err(|e| format!("pin the generator to CPU {cpu}: {e}"))?;
    }
    let seal = if args.record {
        Some(recording_seal(&args.record_seal)?)
    } else {
        None
    };
    let media = media::Source::load(args.opus.as_deref(), args.vp8.as_deref())?;
    media.announce();
    let mem_before = meminfo_kb("MemAvailable")?;
    let epoch = Instant::now();
    let mut generator = Gen {
        rooms: Vec::with_capacity(args.rooms),
        peers: Vec::new(),
        epoll: epoll::create(epoll::CreateFlags::CLOEXEC)?,
        ready: Vec::with_capacity(1024),
        buf: vec![0u8; 2000],
        window: None,
        epoch,
        pps: args.pps,
        media,
        peer_ip: args.peer_ip,
        ending: false,
    };
    let result = run(&args, &mut generator, seal.as_ref(), mem_before);
    // Workers never outlive the run, whatever happened; Janus rooms are taken down.
    for room in &mut generator.rooms {
        if let Some(child) = &mut room.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Control::Janus(janus) = &mut room.control {
            janus.close();
        }
    }
    result
}

fn run(args: &Args, g: &mut Gen, seal: Option<&RecordingSeal>, mem_before: u64) -> Res<()> {
    let (publishers, per_room) = match args.participants {
        Some(n) => (n, n),
        None => (args.publishers, args.publishers + args.subscribers),
    };
    let fanout = match args.participants {
        Some(n) => n - 1,
        None => args.subscribers,
    };
    for r in 0..args.rooms {
        let room = match &args.janus_url {
            Some(url) => {
                let pid = args.janus_pid.ok_or("--janus-url needs --janus-pid")?;
                let (janus, events) = janus::Room::open(url, r, publishers)?;
                let sid = janus.name();
                Room::new(
                    sid,
                    Control::Janus(janus),
                    None,
                    events,
                    pid,
                    false,
                    fanout as u64,
                )
            }
            None => spawn_worker(args, r, per_room, publishers, fanout as u64)?,
        };
        g.rooms.push(room);
        if let Some(seal) = seal {
            send(
                &mut g.rooms[r].control,
                &Request::Record { seal: seal.clone() },
            )?;
        }
    }
    let setup = Duration::from_secs(args.setup_seconds);
    // Publishers (or every participant) first; plain subscribers once tracks exist, so their
    // offered receive slots fill without renegotiation.
    for r in 0..args.rooms {
        for p in 0..publishers {
            let mut peer = g.new_peer(r, Some(g.peers.len() as u16))?;
            let mut api = peer.rtc.sdp_api();
            let stream = Some(format!("load{p}"));
            peer.audio = Some(api.add_media(
                MediaKind::Audio,
                Direction::SendOnly,
                stream.clone(),
                Some(format!("mic{p}")),
                None,
            ));
            if args.video {
                peer.video = Some(api.add_media(
                    MediaKind::Video,
                    Direction::SendOnly,
                    stream,
                    Some(format!("cam{p}")),
                    None,
                ));
            }
            let receives = if args.participants.is_some() {
                fanout
            } else {
                0
            };
            for _ in 0..receives {
                api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
                if args.video {
                    api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
                }
            }
            let (offer, pending) = api.apply().ok_or("publisher offer")?;
            peer.pending = Some(pending);
            join(
                &mut g.rooms[r].control,
                &peer,
                offer.to_sdp_string(),
                args.participants.is_some(),
            )?;
            g.add_peer(peer)?;
        }
    }
    g.run_until_connected(setup)?;
    if args.participants.is_none() {
        for r in 0..args.rooms {
            for _ in 0..args.subscribers {
                let mut peer = g.new_peer(r, None)?;
                if args.janus_url.is_some() {
                    // Janus makes the subscriber's offer; the join carries no SDP.
                    join(&mut g.rooms[r].control, &peer, String::new(), true)?;
                    g.add_peer(peer)?;
                    continue;
                }
                let mut api = peer.rtc.sdp_api();
                for _ in 0..args.publishers {
                    api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
                    if args.video {
                        api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
                    }
                }
                let (offer, pending) = api.apply().ok_or("subscriber offer")?;
                peer.pending = Some(pending);
                join(&mut g.rooms[r].control, &peer, offer.to_sdp_string(), true)?;
                g.add_peer(peer)?;
            }
        }
        g.run_until_connected(setup)?;
    }
    let connected_at = Instant::now();
    // Warm-up: subscriptions settle, str0m's buffers fill.
    g.run_for(Duration::from_secs(2))?;

    let start = Instant::now();
    let end = start + Duration::from_secs(args.seconds);
    g.window = Some((start, end));
    let mut pids: Vec<u32> = g.rooms.iter().map(|r| r.pid).collect();
    // Janus rooms share one process: count it once.
    pids.dedup();
    let cpu0 = pids
        .iter()
        .map(|&p| proc_cpu_ticks(p))
        .collect::<Res<Vec<u64>>>()?;
    let gen0 = proc_cpu_ticks(std::process::id())?;
    let wait0: Vec<u64> = pids
        .iter()
        .map(|&p| proc_runq_wait_ns(p).unwrap_or(0))
        .collect();
    let gen_wait0 = proc_runq_wait_ns(std::process::id())?;
    g.run_for(end - start)?;
    // A worker that died during the window has no /proc entry: it counts as dead, not as an
    // error of the generator.
    let cpu1: Vec<Option<u64>> = pids.iter().map(|&p| proc_cpu_ticks(p).ok()).collect();
    let gen1 = proc_cpu_ticks(std::process::id())?;
    let wait1: Vec<Option<u64>> = pids.iter().map(|&p| proc_runq_wait_ns(p).ok()).collect();
    let gen_wait1 = proc_runq_wait_ns(std::process::id())?;
    let rss: Vec<u64> = pids
        .iter()
        .filter_map(|&p| proc_status_kb(p, "VmRSS").ok())
        .collect();
    let anon: Vec<u64> = pids
        .iter()
        .filter_map(|&p| proc_status_kb(p, "RssAnon").ok())
        .collect();
    let pss: Vec<u64> = pids.iter().filter_map(|&p| proc_pss_kb(p).ok()).collect();
    let mem_during = meminfo_kb("MemAvailable")?;
    // Packets sent late in the window are still in flight: let them land (not counted as CPU).
    g.run_for(Duration::from_millis(500))?;
    let hwm: Vec<u64> = pids
        .iter()
        .filter_map(|&p| proc_status_kb(p, "VmHWM").ok())
        .collect();
    if args.record {
        g.complete_rooms(Duration::from_secs(15))?;
    }

    let secs = args.seconds as f64;
    let tick_us = 1_000_000.0 / clock_ticks_per_second() as f64;
    let worker_cpu_us: Vec<f64> = cpu0
        .iter()
        .zip(&cpu1)
        .filter_map(|(a, b)| b.map(|b| b.saturating_sub(*a) as f64 * tick_us))
        .collect();
    let cpu_us: f64 = worker_cpu_us.iter().sum();
    let cpu_frac = cpu_us / (secs * 1e6);
    let room_cpu_pct: Vec<f64> = worker_cpu_us
        .iter()
        .map(|us| 100.0 * us / (secs * 1e6))
        .collect();
    // Time runnable but not running (waiting for a CPU), ms per second of the window.
    let room_wait_ms_s: Vec<f64> = wait0
        .iter()
        .zip(&wait1)
        .filter_map(|(a, b)| b.map(|b| b.saturating_sub(*a) as f64 / 1e6 / secs))
        .collect();
    let gen_wait_ms_s = gen_wait1.saturating_sub(gen_wait0) as f64 / 1e6 / secs;
    // The generator's own share: near its core's capacity, loss may be the generator's.
    let gen_pct = 100.0 * (gen1 - gen0) as f64 * tick_us / (secs * 1e6);

    let mut sent = 0u64;
    let mut expected = 0u64;
    let mut got = 0u64;
    let mut room_loss = Vec::with_capacity(g.rooms.len());
    let mut room_p99 = Vec::with_capacity(g.rooms.len());
    let mut all_latencies = Vec::new();
    for room in &mut g.rooms {
        let t = &mut room.tally;
        let room_sent = t.sent_audio + t.sent_video;
        let room_expected = room_sent * room.fanout;
        let room_got = t.got_audio + t.got_video;
        sent += room_sent;
        expected += room_expected;
        got += room_got;
        room_loss.push(loss_pct(room_expected, room_got));
        t.latencies_us.sort_unstable();
        room_p99.push(quantile_ms(&t.latencies_us, 0.99));
        all_latencies.extend_from_slice(&t.latencies_us);
    }
    all_latencies.sort_unstable();
    let fwd_pps = got as f64 / secs;
    let us_per_pkt = if got == 0 { 0.0 } else { cpu_us / got as f64 };
    let sum = |f: fn(&Room) -> u64| g.rooms.iter().map(f).sum::<u64>();
    let rec_started = sum(|r| r.record.started);
    let rec_finished = sum(|r| r.record.finished);
    let rec_failed = sum(|r| r.record.failed);
    let rec_bytes = sum(|r| r.record.bytes);
    let rec_window_bytes = sum(|r| r.record.window_bytes);
    let errors = sum(|r| r.errors);
    let write_drops = sum(|r| r.tally.write_drops);
    // What the generator was asked to send in the window, to set `sent` against.
    let per_publisher = f64::from(args.pps) + if args.video { g.media.fps() } else { 0.0 };
    let sent_target = (args.rooms * publishers) as f64 * per_publisher * secs;
    let disconnects = sum(|r| r.disconnects);
    let dead = g.rooms.iter().filter(|r| r.dead && !r.ended).count();
    let unlocked = g.rooms.iter().filter(|r| !r.memory_locked).count();
    // Publisher feedback over the whole run (str0m answers NACKs from its resend cache).
    let publishers_iter = || g.peers.iter().filter(|p| p.publisher.is_some());
    let plis: u64 = publishers_iter().map(|p| p.replay.plis).sum();
    let keyframes_on_request: u64 = publishers_iter()
        .map(|p| p.replay.keyframes_on_request)
        .sum();
    let nacks: u64 = publishers_iter().map(|p| p.replay.nacks()).sum();
    let rtp_sent: u64 = publishers_iter().map(|p| p.replay.rtp_packets()).sum();
    println!(
        "RESULT target={} rooms={} mesh={} publishers={} subscribers={} pps={} video={} record={} \
         seconds={} setup_s={:.1} sent_target={:.0} sent={} gen_write_drops={} expected={} forwarded={} fwd_pps={:.0} \
         loss_pct={:.3} rooms_with_loss={} room_loss_max_pct={:.3} p50_ms={:.2} p99_ms={:.2} \
         max_ms={:.2} room_p99_med_ms={:.2} room_p99_max_ms={:.2} cpu_pct={:.1} \
         room_cpu_med_pct={:.2} room_cpu_max_pct={:.2} cpu_us_per_pkt={:.2} fwd_per_core={:.0} \
         rss_kb={} rss_max_kb={} anon_kb={} anon_max_kb={} pss_kb={} hwm_kb={} hwm_max_kb={} \
         mem_avail_drop_kb={} gen_cpu_pct={:.1} runq_wait_ms_s={:.1} \
         room_runq_wait_med_ms_s={:.2} gen_runq_wait_ms_s={:.1} rec_started={} rec_finished={} rec_failed={} \
         rec_bytes={} rec_window_bytes={} errors={} disconnects={} dead_workers={} \
         unlocked_workers={} {} plis_received={} keyframes_on_request={} nacks_received={} \
         rtp_sent_run={}",
        if args.janus_url.is_some() {
            "janus"
        } else {
            "worker"
        },
        args.rooms,
        args.participants.is_some(),
        publishers,
        fanout,
        args.pps,
        args.video,
        args.record,
        args.seconds,
        connected_at.duration_since(g.epoch).as_secs_f64(),
        sent_target,
        sent,
        write_drops,
        expected,
        got,
        fwd_pps,
        loss_pct(expected, got),
        room_loss.iter().filter(|&&l| l > 0.0).count(),
        room_loss.iter().copied().fold(0.0, f64::max),
        quantile_ms(&all_latencies, 0.5),
        quantile_ms(&all_latencies, 0.99),
        quantile_ms(&all_latencies, 1.0),
        median_f(&room_p99),
        room_p99.iter().copied().fold(0.0, f64::max),
        100.0 * cpu_frac,
        median_f(&room_cpu_pct),
        room_cpu_pct.iter().copied().fold(0.0, f64::max),
        us_per_pkt,
        if cpu_frac > 0.0 {
            fwd_pps / cpu_frac
        } else {
            0.0
        },
        median_u(&rss),
        rss.iter().max().copied().unwrap_or(0),
        median_u(&anon),
        anon.iter().max().copied().unwrap_or(0),
        median_u(&pss),
        median_u(&hwm),
        hwm.iter().max().copied().unwrap_or(0),
        mem_before.saturating_sub(mem_during),
        gen_pct,
        room_wait_ms_s.iter().sum::<f64>(),
        median_f(&room_wait_ms_s),
        gen_wait_ms_s,
        rec_started,
        rec_finished,
        rec_failed,
        rec_bytes,
        rec_window_bytes,
        errors,
        disconnects,
        dead,
        unlocked,
        g.media.describe(),
        plis,
        keyframes_on_request,
        nacks,
        rtp_sent,
    );
    Ok(())
}

/// A recording seal as the server builds it for a worker: public half only, of a key made now.
fn recording_seal(kind: &str) -> Res<RecordingSeal> {
    let key = PrivateKey::generate(2048).map_err(|e| format!("generate an RSA key: {e}"))?;
    let public_key = BASE64.encode(key.public_key().spki_der());
    Ok(match kind {
        "at-rest" => RecordingSeal {
            customer: false,
            format: Format::Native.name().to_owned(),
            key_id: mediaseal_sink::AT_REST_KEY_ID.to_owned(),
            public_key,
        },
        "s3-cbc" => RecordingSeal {
            customer: true,
            format: Format::S3Cbc.name().to_owned(),
            key_id: "CR00000000000000000000000000000b01".to_owned(),
            public_key,
        },
        other => {
            return Err(
                format!("--record-seal '{other}' is unknown: use at-rest or s3-cbc").into(),
            );
        }
    })
}

fn spawn_worker(
    args: &Args,
    index: usize,
    participants: usize,
    publishers: usize,
    fanout: u64,
) -> Res<Room> {
    let worker = args.worker.as_ref().ok_or("--worker is required")?;
    let sid = format!("RM{:032x}", 0xb01 + index);
    let mut cmd = match args.worker_cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &cpu.to_string()]).arg(worker);
            c
        }
        None => Command::new(worker),
    };
    let mut child = cmd
        .args(["--room-sid", &sid, "--udp", "127.0.0.1:0"])
        .args(["--max-participants", &(participants + 1).to_string()])
        .args(["--max-published-tracks", &(2 * publishers + 2).to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("spawn {} for room {index}: {e}", worker.display()))?;
    let control = child.stdin.take().ok_or("worker stdin")?;
    let events = match read_events(&mut child) {
        Ok(e) => e,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    // The worker's host candidate arrives in its SDP answers.
    let first = events.recv_timeout(Duration::from_secs(10));
    let (pid, memory_locked) = match first {
        Ok(WorkerEvent::Ready { pid, hardening, .. }) => (pid, hardening.memory_locked),
        other => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("room {index}: first worker frame is not ready: {other:?}").into());
        }
    };
    Ok(Room::new(
        sid,
        Control::Worker(control),
        Some(child),
        events,
        pid,
        memory_locked,
        fanout,
    ))
}

impl Room {
    fn new(
        sid: String,
        control: Control,
        child: Option<Child>,
        events: Receiver<WorkerEvent>,
        pid: u32,
        memory_locked: bool,
        fanout: u64,
    ) -> Self {
        Self {
            sid,
            child,
            control,
            events,
            pid,
            memory_locked,
            fanout,
            tally: Tally::default(),
            record: RecordTally::default(),
            errors: 0,
            disconnects: 0,
            ended: false,
            dead: false,
        }
    }
}

impl Gen {
    fn new_peer(&self, room: usize, publisher: Option<u16>) -> Res<Peer> {
        let sock = UdpSocket::bind((self.peer_ip, 0))?;
        sock.set_nonblocking(true)?;
        let local = sock.local_addr()?;
        let now = Instant::now();
        // Publishers report str0m's egress statistics: the NACKs they got.
        let stats = publisher.map(|_| Duration::from_secs(1));
        let mut rtc = Rtc::builder().set_stats_interval(stats).build(now);
        rtc.add_local_candidate(Candidate::host(local, "udp")?);
        Ok(Peer {
            room,
            sid: format!("PA{:032x}", self.peers.len() + 1),
            sock,
            local,
            rtc,
            pending: None,
            connected: false,
            publisher,
            audio: None,
            video: None,
            next_audio: now,
            next_video: now,
            seq: 0,
            vseq: 0,
            replay: media::Replay::default(),
            timeout: now,
        })
    }

    fn add_peer(&mut self, peer: Peer) -> Res<()> {
        let data = epoll::EventData::new_u64(self.peers.len() as u64);
        epoll::add(&self.epoll, &peer.sock, data, epoll::EventFlags::IN)?;
        self.peers.push(peer);
        Ok(())
    }

    fn run_until_connected(&mut self, limit: Duration) -> Res<()> {
        let end = Instant::now() + limit;
        while !self.peers.iter().all(|p| p.connected) {
            if Instant::now() >= end {
                let waiting = self.peers.iter().filter(|p| !p.connected).count();
                return Err(format!(
                    "{waiting} of {} peers not connected after {limit:?} (raise --setup-seconds \
                     or run fewer rooms)",
                    self.peers.len()
                )
                .into());
            }
            self.step()?;
        }
        Ok(())
    }

    fn run_for(&mut self, d: Duration) -> Res<()> {
        let end = Instant::now() + d;
        while Instant::now() < end {
            self.step()?;
        }
        Ok(())
    }

    /// Ends every room (`complete`) so recordings finish, and waits for the workers to say so.
    fn complete_rooms(&mut self, limit: Duration) -> Res<()> {
        self.ending = true;
        for room in &mut self.rooms {
            if !room.dead {
                // A worker that already went away has nothing to complete.
                let _ = send(&mut room.control, &Request::Complete);
            }
        }
        // Only the control pipes matter now: the peers are being closed by the workers.
        let end = Instant::now() + limit;
        while Instant::now() < end && !self.rooms.iter().all(|r| r.ended || r.dead) {
            self.pump_events()?;
            thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    fn pump_events(&mut self) -> Res<()> {
        for r in 0..self.rooms.len() {
            loop {
                match self.rooms[r].events.try_recv() {
                    Ok(event) => self.on_event(r, event)?,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.rooms[r].dead = true;
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// One turn of the loop: wait for a datagram or the next due thing, read what arrived, fire
    /// timers, send media, handle worker events.
    fn step(&mut self) -> Res<()> {
        let now = Instant::now();
        let mut next = now + Duration::from_millis(5);
        for p in &self.peers {
            next = next.min(p.timeout);
            if p.connected && p.publisher.is_some() {
                next = next.min(p.next_audio);
                if p.video.is_some() {
                    next = next.min(p.next_video);
                }
            }
        }
        let wait = next.saturating_duration_since(now);
        let ts = Timespec {
            tv_sec: 0,
            tv_nsec: wait.as_nanos().min(999_999_999) as _,
        };
        self.ready.clear();
        match epoll::wait(
            &self.epoll,
            rustix::buffer::spare_capacity(&mut self.ready),
            Some(&ts),
        ) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        let ready = std::mem::take(&mut self.ready);
        for event in &ready {
            // A copy: the kernel's event struct is packed.
            let data = event.data;
            self.read_peer(data.u64() as usize)?;
        }
        self.ready = ready;
        let window = self.window;
        for peer in &mut self.peers {
            let tally = &mut self.rooms[peer.room].tally;
            let now = Instant::now();
            if now >= peer.timeout {
                peer.rtc.handle_input(str0m::Input::Timeout(now))?;
                drain(peer, tally, window, self.epoch)?;
            }
            if peer.connected && peer.publisher.is_some() {
                send_media(peer, tally, window, self.epoch, self.pps, &self.media)?;
            }
        }
        self.pump_events()
    }

    fn read_peer(&mut self, i: usize) -> Res<()> {
        let window = self.window;
        let Some(peer) = self.peers.get_mut(i) else {
            return Ok(());
        };
        let tally = &mut self.rooms[peer.room].tally;
        loop {
            match peer.sock.recv_from(&mut self.buf) {
                Ok((n, source)) => {
                    let now = Instant::now();
                    if let Ok(r) = Receive::new(Protocol::Udp, source, peer.local, &self.buf[..n]) {
                        peer.rtc.handle_input(str0m::Input::Receive(now, r))?;
                        drain(peer, tally, window, self.epoch)?;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                // ICMP port unreachable from a worker that exited (room completed or died):
                // the run reports dead workers and loss, the generator carries on.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The generator plays the server: answers go to their peer, worker offers are answered,
    /// recording traffic is counted and dropped.
    fn on_event(&mut self, r: usize, event: WorkerEvent) -> Res<()> {
        let room = &mut self.rooms[r];
        match event {
            WorkerEvent::Answer {
                participant_sid,
                sdp,
            } => {
                let peer = self
                    .peers
                    .iter_mut()
                    .find(|p| p.room == r && p.sid == participant_sid)
                    .ok_or("answer for an unknown peer")?;
                let pending = peer.pending.take().ok_or("answer without an offer")?;
                peer.rtc
                    .sdp_api()
                    .accept_answer(pending, SdpAnswer::from_sdp_string(&sdp)?)?;
                // Poll now: the timeout str0m gave before the answer is its 3 s idle one, and
                // our ICE checks would wait for it.
                peer.timeout = Instant::now();
            }
            WorkerEvent::Offer {
                participant_sid,
                sdp,
            } => {
                let peer = self
                    .peers
                    .iter_mut()
                    .find(|p| p.room == r && p.sid == participant_sid)
                    .ok_or("offer for an unknown peer")?;
                let answer = peer
                    .rtc
                    .sdp_api()
                    .accept_offer(SdpOffer::from_sdp_string(&sdp)?)?;
                peer.timeout = Instant::now();
                send(
                    &mut room.control,
                    &Request::Answer {
                        participant_sid,
                        sdp: answer.to_sdp_string(),
                    },
                )?;
            }
            WorkerEvent::Error { code, message, .. } if !self.ending => {
                if room.errors == 0 {
                    eprintln!("room {} ({}): worker error {code}: {message}", r, room.sid);
                }
                room.errors += 1;
            }
            WorkerEvent::ParticipantDisconnected {
                participant_sid,
                reason,
                ..
            } if !self.ending => {
                eprintln!(
                    "room {} ({}): {participant_sid} disconnected: {reason:?}",
                    r, room.sid
                );
                room.disconnects += 1;
            }
            WorkerEvent::RecordingStarted { .. } => room.record.started += 1,
            WorkerEvent::RecordingData { sealed, .. } => {
                let n = base64_decoded_len(&sealed);
                room.record.bytes += n;
                let now = Instant::now();
                if self.window.is_some_and(|(a, b)| now >= a && now < b) {
                    room.record.window_bytes += n;
                }
            }
            WorkerEvent::RecordingFinished { .. } => room.record.finished += 1,
            WorkerEvent::RecordingFailed { message, .. } => {
                eprintln!("room {} ({}): recording failed: {message}", r, room.sid);
                room.record.failed += 1;
            }
            WorkerEvent::RoomEnded { .. } => room.ended = true,
            _ => {}
        }
        Ok(())
    }
}

/// Length of the bytes behind standard padded base64, without decoding them.
fn base64_decoded_len(s: &str) -> u64 {
    let pad = s.bytes().rev().take_while(|&b| b == b'=').count();
    ((s.len() / 4) * 3).saturating_sub(pad) as u64
}

fn join(control: &mut Control, peer: &Peer, sdp: String, subscribe: bool) -> Res<()> {
    send(
        control,
        &Request::Join {
            participant_sid: peer.sid.clone(),
            identity: peer.sid.to_lowercase(),
            sdp,
            subscribe,
            // Every receive slot is in the first offer, so no renegotiation.
            renegotiate: false,
        },
    )
}

fn send(control: &mut Control, request: &Request) -> Res<()> {
    match control {
        Control::Worker(pipe) => {
            pipe.write_all(&encode_frame(request))?;
            pipe.flush()?;
            Ok(())
        }
        Control::Janus(janus) => janus.send(request),
    }
}

/// Worker events, read on their own thread.
fn read_events(child: &mut Child) -> Res<Receiver<WorkerEvent>> {
    let mut stdout = child.stdout.take().ok_or("worker stdout")?;
    let (tx, rx) = channel();
    thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let mut decoder = FrameDecoder::new();
            let mut buf = vec![0u8; 65536];
            loop {
                while let Ok(Some(event)) = decoder.next_message::<WorkerEvent>() {
                    if tx.send(event).is_err() {
                        return;
                    }
                }
                match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => decoder.push(&buf[..n]),
                }
            }
        })?;
    Ok(rx)
}

fn in_window(window: Option<(Instant, Instant)>, t: Instant) -> bool {
    window.is_some_and(|(a, b)| t >= a && t < b)
}

fn send_media(
    peer: &mut Peer,
    tally: &mut Tally,
    window: Option<(Instant, Instant)>,
    epoch: Instant,
    pps: u32,
    media: &media::Source,
) -> Res<()> {
    let index = peer.publisher.unwrap_or(0);
    let interval = Duration::from_secs(1) / pps;
    let due = Instant::now();
    if due < peer.next_audio && (peer.video.is_none() || due < peer.next_video) {
        return Ok(());
    }
    // str0m packetizes one queued frame per media per timeout: this extra one lets a queue
    // left by a slow turn of the loop drain instead of staying full.
    peer.rtc.handle_input(str0m::Input::Timeout(due))?;
    drain(peer, tally, window, epoch)?;
    while Instant::now() >= peer.next_audio {
        let now = Instant::now();
        let mid = peer.audio.ok_or("publisher without audio")?;
        let writer = peer.rtc.writer(mid).ok_or("audio writer")?;
        let pt = writer
            .payload_params()
            .find(|p| p.spec().codec == Codec::Opus)
            .ok_or("Opus not negotiated")?
            .pt();
        let payload = media.audio(index, peer.seq, now, epoch);
        let time = MediaTime::new(
            peer.seq * u64::from(48_000 / pps),
            Frequency::FORTY_EIGHT_KHZ,
        );
        match writer.write(pt, now, time, payload) {
            Ok(()) if in_window(window, now) => tally.sent_audio += 1,
            Ok(()) => {}
            Err(RtcError::WriteWithoutPoll) => tally.write_drops += 1,
            Err(e) => return Err(e.into()),
        }
        // str0m packetizes one queued frame per media per timeout: one now for this frame.
        peer.rtc
            .handle_input(str0m::Input::Timeout(Instant::now()))?;
        peer.seq += 1;
        peer.next_audio += interval;
        drain(peer, tally, window, epoch)?;
    }
    if let Some(mid) = peer.video {
        while Instant::now() >= peer.next_video {
            let now = Instant::now();
            let writer = peer.rtc.writer(mid).ok_or("video writer")?;
            let pt = writer
                .payload_params()
                .find(|p| p.spec().codec == Codec::Vp8)
                .ok_or("VP8 not negotiated")?
                .pt();
            let payload = media.video(&mut peer.replay, index, peer.vseq, now, epoch);
            let time = MediaTime::new(media.video_rtp_time(peer.vseq), Frequency::NINETY_KHZ);
            match writer.write(pt, now, time, payload) {
                Ok(()) if in_window(window, now) => tally.sent_video += 1,
                Ok(()) => {}
                Err(RtcError::WriteWithoutPoll) => tally.write_drops += 1,
                Err(e) => return Err(e.into()),
            }
            peer.rtc
                .handle_input(str0m::Input::Timeout(Instant::now()))?;
            peer.vseq += 1;
            peer.next_video += media.video_interval();
            drain(peer, tally, window, epoch)?;
        }
    }
    Ok(())
}

fn drain(
    peer: &mut Peer,
    tally: &mut Tally,
    window: Option<(Instant, Instant)>,
    epoch: Instant,
) -> Res<()> {
    loop {
        match peer.rtc.poll_output()? {
            str0m::Output::Timeout(t) => {
                peer.timeout = t;
                return Ok(());
            }
            str0m::Output::Transmit(t) => {
                // A full socket buffer is loss the run reports, not an error.
                let _ = peer.sock.send_to(&t.contents, t.destination);
            }
            str0m::Output::Event(Event::Connected) => {
                // Media starts now, not at creation: a long setup (many rooms) must not turn
                // into a burst of back-dated packets.
                let now = Instant::now();
                peer.connected = true;
                peer.next_audio = now;
                peer.next_video = now;
            }
            str0m::Output::Event(Event::MediaData(d)) => {
                let now = Instant::now();
                // The marker ends every frame, however str0m packetized it.
                if let Some(sent_ns) = media::read_marker(&d.data) {
                    let sent = epoch + Duration::from_nanos(sent_ns);
                    if in_window(window, sent) {
                        if d.params.spec().codec == Codec::Opus {
                            tally.got_audio += 1;
                        } else {
                            tally.got_video += 1;
                        }
                        tally
                            .latencies_us
                            .push(now.duration_since(sent).as_micros() as u64);
                    }
                }
            }
            str0m::Output::Event(Event::KeyframeRequest(r)) => {
                peer.replay.on_keyframe_request(&r, peer.video);
            }
            str0m::Output::Event(Event::MediaEgressStats(s)) => {
                peer.replay.on_egress(&s, peer.audio, peer.video);
            }
            str0m::Output::Event(_) => {}
        }
    }
}

fn loss_pct(expected: u64, got: u64) -> f64 {
    if expected == 0 {
        0.0
    } else {
        100.0 * expected.saturating_sub(got) as f64 / expected as f64
    }
}

/// Quantile of sorted microseconds, in ms (NaN when empty).
fn quantile_ms(sorted_us: &[u64], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    sorted_us[((sorted_us.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0
}

fn median_f(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

fn median_u(v: &[u64]) -> u64 {
    let mut s = v.to_vec();
    s.sort_unstable();
    s.get(s.len() / 2).copied().unwrap_or(0)
}

fn proc_cpu_ticks(pid: u32) -> Res<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').ok_or("malformed /proc stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Ok(f.get(11).ok_or("utime")?.parse::<u64>()? + f.get(12).ok_or("stime")?.parse::<u64>()?)
}

/// Nanoseconds the process's main thread spent runnable but waiting for a CPU (second field
/// of `/proc/PID/schedstat`).
fn proc_runq_wait_ns(pid: u32) -> Res<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/schedstat"))?;
    Ok(stat
        .split_whitespace()
        .nth(1)
        .ok_or("malformed /proc schedstat")?
        .parse()?)
}

fn kb_field(text: &str, key: &str, whence: &str) -> Res<u64> {
    let line = text
        .lines()
        .find(|l| l.split(':').next() == Some(key))
        .ok_or_else(|| format!("{key} not in {whence}"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or("status value")?
        .parse()?)
}

fn proc_status_kb(pid: u32, key: &str) -> Res<u64> {
    let path = format!("/proc/{pid}/status");
    kb_field(&std::fs::read_to_string(&path)?, key, &path)
}

/// Proportional set size: shared pages (the binary, libraries) divided among their users, so
/// it is the worker's own share of memory.
fn proc_pss_kb(pid: u32) -> Res<u64> {
    let path = format!("/proc/{pid}/smaps_rollup");
    kb_field(&std::fs::read_to_string(&path)?, "Pss", &path)
}

fn meminfo_kb(key: &str) -> Res<u64> {
    kb_field(
        &std::fs::read_to_string("/proc/meminfo")?,
        key,
        "/proc/meminfo",
    )
}

/// USER_HZ, the unit of `/proc/PID/stat` times: 100 on every Linux architecture this runs on.
fn clock_ticks_per_second() -> u64 {
    100
}
