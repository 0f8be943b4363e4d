//! Shared harness for the room worker tests: spawning workers and talking the control
//! protocol, aiortc peers, network namespaces joined by veth pairs, tcpdump, /proc probes.
//! The harness plays the server: it relays SDP between peers and workers.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread;
use std::time::{Duration, Instant};

use mediaseal_rooms::control::{FrameDecoder, HardeningReport, Request, WorkerEvent, encode_frame};
use serde_json::{Value, json};

/// Tests that start aiortc peers take turns: the machine has two cores.
pub static HEAVY: Mutex<()> = Mutex::new(());

pub fn workspace_root() -> PathBuf {
    mediaseal_test_support::workspace_root()
}

pub fn worker_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mediaseal-room-worker"))
}

pub fn python() -> PathBuf {
    mediaseal_test_support::python(&["aiortc"])
}

pub fn interop_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(name)
}

pub fn sh(command: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(command)
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "`{command}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Messages from the child processes, gathered on one channel.
#[derive(Debug)]
pub enum Msg {
    Worker(String, WorkerEvent),
    WorkerGone(String),
    Peer(usize, Value),
    PeerGone(usize),
}

/// A room worker process and the write end of its control pipe.
pub struct Worker {
    pub tag: String,
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub pid: u32,
    pub udp: Vec<SocketAddr>,
    pub hardening: HardeningReport,
}

impl Worker {
    pub fn send(&mut self, request: &Request) {
        if let Some(stdin) = &mut self.stdin {
            // A dead worker is the test's business, not a harness panic.
            let _ = stdin.write_all(&encode_frame(request));
            let _ = stdin.flush();
        }
    }

    pub fn close_control(&mut self) {
        self.stdin = None;
    }

    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let end = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < end, "worker {} did not exit", self.tag);
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns a worker (`prefix` is e.g. `["ip", "netns", "exec", "ns"]`), waits for `ready`.
pub fn spawn_worker(
    prefix: &[&str],
    tag: &str,
    room_sid: &str,
    udp: &str,
    extra: &[&str],
    tx: &Sender<Msg>,
) -> (Worker, std::process::ChildStderr) {
    let bin = worker_bin();
    let mut argv: Vec<String> = prefix.iter().map(|s| (*s).to_owned()).collect();
    argv.push(bin.display().to_string());
    argv.extend(["--room-sid", room_sid, "--udp", udp].map(str::to_owned));
    argv.extend(extra.iter().map(|s| (*s).to_owned()));
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the room worker");
    let stdin = child.stdin.take();
    let mut stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let pid = child.id();

    // First frame: ready.
    let mut decoder = FrameDecoder::new();
    let mut buf = [0u8; 4096];
    let ready = loop {
        if let Some(event) = decoder.next_message::<WorkerEvent>().unwrap() {
            break event;
        }
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "worker {tag} exited before ready");
        decoder.push(&buf[..n]);
    };
    let WorkerEvent::Ready {
        udp,
        hardening,
        pid: reported_pid,
        ..
    } = ready
    else {
        panic!("first frame is not ready: {ready:?}");
    };
    assert_eq!(reported_pid, pid, "ready reports the worker's own pid");

    let tx = tx.clone();
    let reader_tag = tag.to_owned();
    thread::spawn(move || {
        loop {
            while let Ok(Some(event)) = decoder.next_message::<WorkerEvent>() {
                if tx.send(Msg::Worker(reader_tag.clone(), event)).is_err() {
                    return;
                }
            }
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.send(Msg::WorkerGone(reader_tag));
                    return;
                }
                Ok(n) => decoder.push(&buf[..n]),
            }
        }
    });
    (
        Worker {
            tag: tag.to_owned(),
            child,
            stdin,
            pid,
            udp,
            hardening,
        },
        stderr,
    )
}

/// Collects a child's stderr into a string on a thread (read it after the child ends).
pub fn collect(mut stderr: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    })
}

/// An aiortc participant.
pub struct Peer {
    pub index: usize,
    pub sid: String,
    pub room: String,
    pub ip: String,
    pub child: Child,
    pub stdin: ChildStdin,
    pub joined: bool,
}

impl Peer {
    pub fn send(&mut self, value: &Value) {
        let _ = writeln!(self.stdin, "{value}");
        let _ = self.stdin.flush();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn participant_sid(index: usize) -> String {
    format!("PA{:032x}", 0xa000 + index)
}

pub fn spawn_peer(ns: &str, ip: &str, index: usize, room: &str, tx: &Sender<Msg>) -> Peer {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(python())
        .arg(interop_script("peer.py"))
        .args(["--index", &index.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn an aiortc peer");
    let stdout = child.stdout.take().unwrap();
    let stdin = child.stdin.take().unwrap();
    let tx = tx.clone();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            match serde_json::from_str::<Value>(&line) {
                Ok(v) => {
                    if tx.send(Msg::Peer(index, v)).is_err() {
                        return;
                    }
                }
                Err(_) => eprintln!("peer {index} stdout: {line}"),
            }
        }
        let _ = tx.send(Msg::PeerGone(index));
    });
    Peer {
        index,
        sid: participant_sid(index),
        room: room.to_owned(),
        ip: ip.to_owned(),
        child,
        stdin,
        joined: false,
    }
}

/// Plays the server: relays SDP between peers and their room's worker, keeps the events.
pub struct Server {
    pub rx: Receiver<Msg>,
    pub tx: Sender<Msg>,
    pub workers: HashMap<String, Worker>,
    pub peers: Vec<Peer>,
    pub events: Vec<(String, WorkerEvent)>,
    pub reports: HashMap<usize, Value>,
    pub stats: HashMap<String, WorkerEvent>,
    pub gone_workers: Vec<String>,
}

impl Server {
    pub fn new() -> Self {
        let (tx, rx) = channel();
        Self {
            rx,
            tx,
            workers: HashMap::new(),
            peers: Vec::new(),
            events: Vec::new(),
            reports: HashMap::new(),
            stats: HashMap::new(),
            gone_workers: Vec::new(),
        }
    }

    fn peer_by_sid(&mut self, sid: &str) -> Option<&mut Peer> {
        self.peers.iter_mut().find(|p| p.sid == sid)
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Peer(i, v) => match v["type"].as_str() {
                Some("offer") => {
                    let peer = &mut self.peers[i];
                    let sdp = v["sdp"].as_str().unwrap().to_owned();
                    let request = if peer.joined {
                        Request::Offer {
                            participant_sid: peer.sid.clone(),
                            sdp,
                        }
                    } else {
                        peer.joined = true;
                        Request::Join {
                            participant_sid: peer.sid.clone(),
                            identity: format!("peer-{i}"),
                            sdp,
                            subscribe: true,
                            renegotiate: true,
                        }
                    };
                    let room = peer.room.clone();
                    if let Some(w) = self.workers.get_mut(&room) {
                        w.send(&request);
                    }
                }
                Some("answer") => {
                    let peer = &self.peers[i];
                    let request = Request::Answer {
                        participant_sid: peer.sid.clone(),
                        sdp: v["sdp"].as_str().unwrap().to_owned(),
                    };
                    let room = peer.room.clone();
                    if let Some(w) = self.workers.get_mut(&room) {
                        w.send(&request);
                    }
                }
                Some("report") => {
                    self.reports.insert(i, v);
                }
                _ => {}
            },
            Msg::Worker(tag, event) => {
                match &event {
                    WorkerEvent::Answer {
                        participant_sid,
                        sdp,
                    } => {
                        let sdp = sdp.clone();
                        if let Some(p) = self.peer_by_sid(participant_sid) {
                            p.send(&json!({"type": "answer", "sdp": sdp}));
                        }
                    }
                    WorkerEvent::Offer {
                        participant_sid,
                        sdp,
                    } => {
                        let sdp = sdp.clone();
                        if let Some(p) = self.peer_by_sid(participant_sid) {
                            p.send(&json!({"type": "offer", "sdp": sdp}));
                        }
                    }
                    WorkerEvent::Stats { .. } => {
                        self.stats.insert(tag.clone(), event.clone());
                    }
                    _ => {}
                }
                self.events.push((tag, event));
            }
            Msg::WorkerGone(tag) => self.gone_workers.push(tag),
            Msg::PeerGone(i) => eprintln!("peer {i} exited"),
        }
    }

    /// Relays until `deadline`.
    pub fn pump_until(&mut self, deadline: Instant) {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            match self.rx.recv_timeout(deadline - now) {
                Ok(msg) => self.handle(msg),
                Err(RecvTimeoutError::Timeout) => return,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    pub fn pump_for(&mut self, d: Duration) {
        self.pump_until(Instant::now() + d);
    }

    /// Asks peer `i` for a report and waits for it.
    pub fn report(&mut self, i: usize) -> Value {
        self.reports.remove(&i);
        self.peers[i].send(&json!({"type": "report"}));
        let end = Instant::now() + Duration::from_secs(30);
        while !self.reports.contains_key(&i) {
            assert!(Instant::now() < end, "peer {i} did not report");
            self.pump_for(Duration::from_millis(50));
        }
        self.reports.remove(&i).unwrap()
    }

    /// Asks worker `tag` for stats and waits for them.
    pub fn worker_stats(&mut self, tag: &str) -> WorkerEvent {
        self.stats.remove(tag);
        self.workers.get_mut(tag).unwrap().send(&Request::Stats);
        let end = Instant::now() + Duration::from_secs(10);
        while !self.stats.contains_key(tag) {
            assert!(Instant::now() < end, "worker {tag} did not answer stats");
            self.pump_for(Duration::from_millis(50));
        }
        self.stats.remove(tag).unwrap()
    }
}

/// Frames peer report `report` received per publisher SID and kind.
pub fn frames_from(report: &Value, publisher: &str, kind: &str) -> u64 {
    report["tracks"]
        .as_array()
        .map(|tracks| {
            tracks
                .iter()
                .filter(|t| t["publisher"] == publisher && t["kind"] == kind)
                .map(|t| t["frames"].as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

/// Network namespaces: one for the room worker(s) with a bridge at 10.79.0.1/24, one per
/// peer at 10.79.0.(10+k), each joined to the bridge by a veth pair. Nothing else is
/// reachable, so every datagram the capture sees is the room's.
pub struct Topology {
    pub worker_ns: String,
    pub peer_ns: Vec<String>,
}

pub const WORKER_IP: &str = "10.79.0.1";

pub fn peer_ip(k: usize) -> String {
    format!("10.79.0.{}", 10 + k)
}

impl Topology {
    pub fn new(tag: &str, peers: usize) -> Self {
        let base = format!("msrw{}{tag}", std::process::id() % 100_000);
        let worker_ns = format!("{base}w");
        let _ = Command::new("ip")
            .args(["netns", "del", &worker_ns])
            .output();
        sh(&format!(
            "ip netns add {worker_ns} && ip -n {worker_ns} link set lo up && \
             ip -n {worker_ns} link add br0 type bridge && \
             ip -n {worker_ns} addr add {WORKER_IP}/24 dev br0 && ip -n {worker_ns} link set br0 up"
        ));
        let mut topology = Self {
            worker_ns,
            peer_ns: Vec::new(),
        };
        for k in 0..peers {
            let ns = format!("{base}p{k}");
            let _ = Command::new("ip").args(["netns", "del", &ns]).output();
            topology.peer_ns.push(ns.clone());
            let w = &topology.worker_ns;
            let ip = peer_ip(k);
            sh(&format!(
                "ip netns add {ns} && ip -n {ns} link set lo up && \
                 ip -n {ns} link add eth0 type veth peer name v{k} netns {w} && \
                 ip -n {ns} addr add {ip}/24 dev eth0 && ip -n {ns} link set eth0 up && \
                 ip -n {w} link set v{k} master br0 && ip -n {w} link set v{k} up"
            ));
        }
        topology
    }

    pub fn all(&self) -> Vec<&str> {
        std::iter::once(self.worker_ns.as_str())
            .chain(self.peer_ns.iter().map(String::as_str))
            .collect()
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in self.all() {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

pub use mediaseal_test_support::capture::Capture;

/// `tcpdump -i any` of every UDP datagram in namespace `ns`, written to `path`.
pub fn capture_udp(ns: &str, path: &Path) -> Capture {
    Capture::start(&["ip", "netns", "exec", ns], "any", "udp", path)
}

/// A field of `/proc/PID/status` (e.g. `VmLck`), in kB.
pub fn proc_status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{field} missing from /proc/{pid}/status"))
}

/// `write_bytes` of `/proc/PID/io`: bytes this process caused to be sent to storage.
pub fn proc_write_bytes(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

/// Paths of regular files the process holds open for writing.
pub fn files_open_for_writing(pid: u32) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let entry = entry.unwrap();
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.display().to_string();
        if !target.starts_with('/') || target.starts_with("/dev/") {
            continue; // pipes, sockets, anon inodes, /dev/null
        }
        let fdinfo = std::fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            entry.file_name().to_string_lossy()
        ))
        .unwrap_or_default();
        let flags = fdinfo
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            .unwrap_or(0);
        if flags & 0o3 != 0 {
            out.push(target);
        }
    }
    out
}
