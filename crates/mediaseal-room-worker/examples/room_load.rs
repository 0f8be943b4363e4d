//! Load generator for one room worker process: P publishers and S subscribers, each a str0m peer
//! with its own ICE, DTLS and SRTP over UDP loopback, against the real `mediaseal-room-worker`
//! binary driven over its control pipe (the generator plays the server).
//!
//! Every publisher sends Opus-shaped audio at `--pps` packets/s; each payload carries the
//! publisher index, a sequence number and the send time, so subscribers measure loss and
//! send→receive latency. Only packets sent inside the measurement window count. The worker's CPU
//! time (utime + stime from `/proc/PID/stat`) and memory (VmRSS, VmHWM) are read around the
//! window. One `RESULT key=value…` line on stdout per run; `scripts/bench-rooms.sh` tabulates.
//!
//! Usage: `room_load --worker target/release/mediaseal-room-worker --publishers 4
//! --subscribers 4 [--pps 50] [--seconds 10] [--worker-cpu 1] [--gen-cpu 0] [--video]`

#![allow(clippy::disallowed_methods)] // a benchmark reads the clock

use std::error::Error;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use mediaseal_rooms::control::{FrameDecoder, Request, WorkerEvent, encode_frame};
use mediaseal_rooms::str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use mediaseal_rooms::str0m::format::Codec;
use mediaseal_rooms::str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use mediaseal_rooms::str0m::net::{Protocol, Receive};
use mediaseal_rooms::str0m::{self, Candidate, Event, Rtc};
use rustix::event::{PollFd, PollFlags, Timespec, poll};

type Res<T> = Result<T, Box<dyn Error>>;

const ROOM: &str = "RM00000000000000000000000000000b01";
/// Payload marker: publisher index (2 bytes), sequence (8), send time in ns since the epoch (8).
const MARK: u8 = b'L';
const OPUS_LEN: usize = 80;
const VP8_LEN: usize = 1000;

#[derive(Debug, Parser)]
struct Args {
    /// The worker binary.
    #[arg(long)]
    worker: PathBuf,
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    #[arg(long, default_value_t = 4)]
    subscribers: usize,
    /// Audio packets per second per publisher.
    #[arg(long, default_value_t = 50)]
    pps: u32,
    /// Also send VP8 (30 frames/s, one ~1 kB packet each).
    #[arg(long)]
    video: bool,
    /// Measurement window, seconds (after a 2 s warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Pin the worker to this CPU (taskset).
    #[arg(long)]
    worker_cpu: Option<usize>,
    /// Pin the generator to this CPU.
    #[arg(long)]
    gen_cpu: Option<usize>,
}

struct Peer {
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
    timeout: Instant,
}

/// What one run measured, shared by every peer's event handling.
#[derive(Default)]
struct Tally {
    window: Option<(Instant, Instant)>,
    sent_audio: u64,
    sent_video: u64,
    got_audio: u64,
    got_video: u64,
    latencies_us: Vec<u64>,
}

impl Tally {
    fn in_window(&self, t: Instant) -> bool {
        self.window.is_some_and(|(a, b)| t >= a && t < b)
    }
}

fn main() -> Res<()> {
    let args = Args::parse();
    if let Some(cpu) = args.gen_cpu {
        let mut set = rustix::thread::CpuSet::new();
        set.set(cpu);
        rustix::thread::sched_setaffinity(None, &set)
            .map_err(|e| format!("pin the generator to CPU {cpu}: {e}"))?;
    }
    let epoch = Instant::now();

    let mut cmd = match args.worker_cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &cpu.to_string()]).arg(&args.worker);
            c
        }
        None => Command::new(&args.worker),
    };
    let total = args.publishers + args.subscribers;
    let mut child = cmd
        .args(["--room-sid", ROOM, "--udp", "127.0.0.1:0"])
        .args(["--max-participants", &(total + 1).to_string()])
        .args([
            "--max-published-tracks",
            &(2 * args.publishers + 2).to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", args.worker.display()))?;
    let mut control = child.stdin.take().ok_or("worker stdin")?;
    let events = read_events(&mut child)?;
    // The worker's host candidate arrives in its SDP answers.
    let pid = match events.recv_timeout(Duration::from_secs(10))? {
        WorkerEvent::Ready { pid, .. } => pid,
        other => return Err(format!("first worker frame is not ready: {other:?}").into()),
    };

    let mut peers: Vec<Peer> = Vec::new();
    let mut tally = Tally::default();
    for p in 0..args.publishers {
        let mut peer = new_peer(peers.len(), Some(p as u16))?;
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
        let (offer, pending) = api.apply().ok_or("publisher offer")?;
        peer.pending = Some(pending);
        join(&mut control, &peer, offer.to_sdp_string(), false)?;
        peers.push(peer);
    }
    let setup = Duration::from_secs(30);
    run_until(
        &mut peers,
        &events,
        &mut control,
        &mut tally,
        &args,
        epoch,
        setup,
        |ps| ps.iter().all(|p| p.connected),
    )?;
    for _ in 0..args.subscribers {
        let mut peer = new_peer(peers.len(), None)?;
        let mut api = peer.rtc.sdp_api();
        for _ in 0..args.publishers {
            api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
            if args.video {
                api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
            }
        }
        let (offer, pending) = api.apply().ok_or("subscriber offer")?;
        peer.pending = Some(pending);
        join(&mut control, &peer, offer.to_sdp_string(), true)?;
        peers.push(peer);
    }
    run_until(
        &mut peers,
        &events,
        &mut control,
        &mut tally,
        &args,
        epoch,
        setup,
        |ps| ps.iter().all(|p| p.connected),
    )?;
    let connected_at = Instant::now();
    // Warm-up: subscriptions settle, str0m's buffers fill.
    run_for(
        &mut peers,
        &events,
        &mut control,
        &mut tally,
        &args,
        epoch,
        Duration::from_secs(2),
    )?;

    let start = Instant::now();
    let end = start + Duration::from_secs(args.seconds);
    tally.window = Some((start, end));
    let cpu0 = proc_cpu_ticks(pid)?;
    let gen0 = proc_cpu_ticks(std::process::id())?;
    run_for(
        &mut peers,
        &events,
        &mut control,
        &mut tally,
        &args,
        epoch,
        end - start,
    )?;
    let cpu1 = proc_cpu_ticks(pid)?;
    let gen1 = proc_cpu_ticks(std::process::id())?;
    let rss = proc_status_kb(pid, "VmRSS")?;
    // Packets sent late in the window are still in flight: let them land (not counted as CPU).
    run_for(
        &mut peers,
        &events,
        &mut control,
        &mut tally,
        &args,
        epoch,
        Duration::from_millis(500),
    )?;
    let hwm = proc_status_kb(pid, "VmHWM")?;

    let _ = child.kill();
    let _ = child.wait();

    let secs = args.seconds as f64;
    let subs = args.subscribers as u64;
    let expected = (tally.sent_audio + tally.sent_video) * subs;
    let got = tally.got_audio + tally.got_video;
    let loss = if expected == 0 {
        0.0
    } else {
        100.0 * (expected.saturating_sub(got)) as f64 / expected as f64
    };
    // Forwarded packets: every subscriber leg the worker delivered.
    let fwd_pps = got as f64 / secs;
    let tick_us = 1_000_000.0 / clock_ticks_per_second() as f64;
    let cpu_us = (cpu1 - cpu0) as f64 * tick_us;
    let cpu_frac = cpu_us / (secs * 1e6);
    // The generator's own share: if it nears 100 %, loss may be the generator's, not the worker's.
    let gen_pct = 100.0 * (gen1 - gen0) as f64 * tick_us / (secs * 1e6);
    let us_per_pkt = if got == 0 { 0.0 } else { cpu_us / got as f64 };
    tally.latencies_us.sort_unstable();
    let pct = |q: f64| -> f64 {
        let v = &tally.latencies_us;
        if v.is_empty() {
            return f64::NAN;
        }
        v[((v.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0
    };
    println!(
        "RESULT publishers={} subscribers={} pps={} video={} seconds={} setup_s={:.1} \
         sent={} expected={} forwarded={} fwd_pps={:.0} loss_pct={:.3} p50_ms={:.2} \
         p99_ms={:.2} max_ms={:.2} cpu_pct={:.1} cpu_us_per_pkt={:.2} fwd_per_core={:.0} \
         rss_kb={} hwm_kb={} gen_cpu_pct={:.1}",
        args.publishers,
        args.subscribers,
        args.pps,
        args.video,
        args.seconds,
        connected_at.duration_since(epoch).as_secs_f64(),
        tally.sent_audio + tally.sent_video,
        expected,
        got,
        fwd_pps,
        loss,
        pct(0.5),
        pct(0.99),
        pct(1.0),
        100.0 * cpu_frac,
        us_per_pkt,
        if cpu_frac > 0.0 {
            fwd_pps / cpu_frac
        } else {
            0.0
        },
        rss,
        hwm,
        gen_pct,
    );
    Ok(())
}

fn new_peer(index: usize, publisher: Option<u16>) -> Res<Peer> {
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    sock.set_nonblocking(true)?;
    let local = sock.local_addr()?;
    let now = Instant::now();
    let mut rtc = Rtc::builder().build(now);
    rtc.add_local_candidate(Candidate::host(local, "udp")?);
    Ok(Peer {
        sid: format!("PA{:032x}", index + 1),
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
        timeout: now,
    })
}

fn join(control: &mut ChildStdin, peer: &Peer, sdp: String, subscribe: bool) -> Res<()> {
    send(
        control,
        &Request::Join {
            participant_sid: peer.sid.clone(),
            identity: peer.sid.to_lowercase(),
            sdp,
            subscribe,
            // Subscribers offer one receive slot per published track, so no renegotiation.
            renegotiate: false,
        },
    )
}

fn send(control: &mut ChildStdin, request: &Request) -> Res<()> {
    control.write_all(&encode_frame(request))?;
    control.flush()?;
    Ok(())
}

/// Worker events, read on their own thread.
fn read_events(child: &mut Child) -> Res<Receiver<WorkerEvent>> {
    let mut stdout = child.stdout.take().ok_or("worker stdout")?;
    let (tx, rx) = channel();
    thread::spawn(move || {
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
    });
    Ok(rx)
}

#[allow(clippy::too_many_arguments)]
fn run_until(
    peers: &mut [Peer],
    events: &Receiver<WorkerEvent>,
    control: &mut ChildStdin,
    tally: &mut Tally,
    args: &Args,
    epoch: Instant,
    limit: Duration,
    done: impl Fn(&[Peer]) -> bool,
) -> Res<()> {
    let end = Instant::now() + limit;
    while !done(peers) {
        if Instant::now() >= end {
            let waiting = peers.iter().filter(|p| !p.connected).count();
            return Err(format!("{waiting} peers not connected after {limit:?}").into());
        }
        step(peers, events, control, tally, args, epoch)?;
    }
    Ok(())
}

fn run_for(
    peers: &mut [Peer],
    events: &Receiver<WorkerEvent>,
    control: &mut ChildStdin,
    tally: &mut Tally,
    args: &Args,
    epoch: Instant,
    d: Duration,
) -> Res<()> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        step(peers, events, control, tally, args, epoch)?;
    }
    Ok(())
}

/// One turn of the generator's loop: signalling, datagrams, timers, media, then sleep until the
/// next thing is due or a datagram arrives.
fn step(
    peers: &mut [Peer],
    events: &Receiver<WorkerEvent>,
    control: &mut ChildStdin,
    tally: &mut Tally,
    args: &Args,
    epoch: Instant,
) -> Res<()> {
    while let Ok(event) = events.try_recv() {
        signal(peers, control, event)?;
    }
    let mut buf = vec![0u8; 2000];
    for peer in peers.iter_mut() {
        loop {
            match peer.sock.recv_from(&mut buf) {
                Ok((n, source)) => {
                    let now = Instant::now();
                    if let Ok(r) = Receive::new(Protocol::Udp, source, peer.local, &buf[..n]) {
                        peer.rtc.handle_input(str0m::Input::Receive(now, r))?;
                        drain(peer, tally, epoch)?;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e.into()),
            }
        }
        let now = Instant::now();
        if now >= peer.timeout {
            peer.rtc.handle_input(str0m::Input::Timeout(now))?;
            drain(peer, tally, epoch)?;
        }
        if peer.connected && peer.publisher.is_some() {
            send_media(peer, tally, args, epoch)?;
        }
    }
    let now = Instant::now();
    let mut next = now + Duration::from_millis(5);
    for p in peers.iter() {
        next = next.min(p.timeout);
        if p.connected && p.publisher.is_some() {
            next = next.min(p.next_audio);
            if p.video.is_some() {
                next = next.min(p.next_video);
            }
        }
    }
    let wait = next.saturating_duration_since(now);
    if !wait.is_zero() {
        let mut fds: Vec<PollFd<'_>> = peers
            .iter()
            .map(|p| PollFd::new(&p.sock, PollFlags::IN))
            .collect();
        let ts = Timespec {
            tv_sec: 0,
            tv_nsec: wait.as_nanos().min(999_999_999) as _,
        };
        poll(&mut fds, Some(&ts))?;
    }
    Ok(())
}

fn send_media(peer: &mut Peer, tally: &mut Tally, args: &Args, epoch: Instant) -> Res<()> {
    let index = peer.publisher.unwrap_or(0);
    let interval = Duration::from_secs(1) / args.pps;
    while Instant::now() >= peer.next_audio {
        let now = Instant::now();
        let mid = peer.audio.ok_or("publisher without audio")?;
        let writer = peer.rtc.writer(mid).ok_or("audio writer")?;
        let pt = writer
            .payload_params()
            .find(|p| p.spec().codec == Codec::Opus)
            .ok_or("Opus not negotiated")?
            .pt();
        // TOC byte of a 20 ms CELT frame, then the marker.
        let payload = marked(0xfc, index, peer.seq, now, epoch, OPUS_LEN);
        let time = MediaTime::new(
            peer.seq * u64::from(48_000 / args.pps),
            Frequency::FORTY_EIGHT_KHZ,
        );
        writer.write(pt, now, time, payload)?;
        if tally.in_window(now) {
            tally.sent_audio += 1;
        }
        peer.seq += 1;
        peer.next_audio += interval;
        drain(peer, tally, epoch)?;
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
            // VP8 frame tag: bit 0 clear on keyframes (one a second).
            let tag = if peer.vseq.is_multiple_of(30) {
                0x00
            } else {
                0x01
            };
            let payload = marked(tag, index, peer.vseq, now, epoch, VP8_LEN);
            let time = MediaTime::new(peer.vseq * 3000, Frequency::NINETY_KHZ);
            writer.write(pt, now, time, payload)?;
            if tally.in_window(now) {
                tally.sent_video += 1;
            }
            peer.vseq += 1;
            peer.next_video += Duration::from_micros(33_333);
            drain(peer, tally, epoch)?;
        }
    }
    Ok(())
}

fn marked(first: u8, index: u16, seq: u64, now: Instant, epoch: Instant, len: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(len);
    p.push(first);
    p.push(MARK);
    p.extend_from_slice(&index.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(now.duration_since(epoch).as_nanos() as u64).to_be_bytes());
    p.resize(len, 0x5a);
    p
}

fn drain(peer: &mut Peer, tally: &mut Tally, epoch: Instant) -> Res<()> {
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
            str0m::Output::Event(Event::Connected) => peer.connected = true,
            str0m::Output::Event(Event::MediaData(d)) => {
                let now = Instant::now();
                let b: &[u8] = &d.data;
                if b.len() >= 20 && b[1] == MARK {
                    let sent_ns = u64::from_be_bytes(b[12..20].try_into()?);
                    let sent = epoch + Duration::from_nanos(sent_ns);
                    if tally.in_window(sent) {
                        if b[0] == 0xfc {
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
            str0m::Output::Event(_) => {}
        }
    }
}

/// The generator plays the server: answers go to their peer, worker offers are answered.
fn signal(peers: &mut [Peer], control: &mut ChildStdin, event: WorkerEvent) -> Res<()> {
    match event {
        WorkerEvent::Answer {
            participant_sid,
            sdp,
        } => {
            let peer = peers
                .iter_mut()
                .find(|p| p.sid == participant_sid)
                .ok_or("answer for an unknown peer")?;
            let pending = peer.pending.take().ok_or("answer without an offer")?;
            peer.rtc
                .sdp_api()
                .accept_answer(pending, SdpAnswer::from_sdp_string(&sdp)?)?;
        }
        WorkerEvent::Offer {
            participant_sid,
            sdp,
        } => {
            let peer = peers
                .iter_mut()
                .find(|p| p.sid == participant_sid)
                .ok_or("offer for an unknown peer")?;
            let answer = peer
                .rtc
                .sdp_api()
                .accept_offer(SdpOffer::from_sdp_string(&sdp)?)?;
            send(
                control,
                &Request::Answer {
                    participant_sid,
                    sdp: answer.to_sdp_string(),
                },
            )?;
        }
        WorkerEvent::Error { .. } | WorkerEvent::ParticipantDisconnected { .. } => {
            return Err(format!("worker: {event:?}").into());
        }
        _ => {}
    }
    Ok(())
}

fn proc_cpu_ticks(pid: u32) -> Res<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').ok_or("malformed /proc stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Ok(f.get(11).ok_or("utime")?.parse::<u64>()? + f.get(12).ok_or("stime")?.parse::<u64>()?)
}

fn proc_status_kb(pid: u32, key: &str) -> Res<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(key))
        .ok_or_else(|| format!("{key} not in /proc/{pid}/status"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or("status value")?
        .parse()?)
}

/// USER_HZ, the unit of `/proc/PID/stat` times: 100 on every Linux architecture this runs on.
fn clock_ticks_per_second() -> u64 {
    100
}
