//! Real peers: aiortc 1.16.0 participants (their own ICE, DTLS and libsrtp) in a room worker
//! process, each in its own network namespace joined to the worker's by a veth pair, with
//! tcpdump in every namespace. The test plays the server (it relays SDP over the worker's
//! control pipe; no HTTP server involved).
//!
//! - Three participants publish PCMU audio carrying a known payload (the canary) and VP8;
//!   everyone receives everyone else's tracks, and the audio they decrypt is the canary the
//!   others sent.
//! - The same publisher packet leaves on two subscriber legs with different ciphertext, each
//!   decryptable only with that subscriber's keys (checked with libsrtp on the keys aiortc
//!   derived), never with the publisher's.
//! - Every datagram in every namespace is STUN, DTLS, SRTP or SRTCP (RFC 7983) and no capture
//!   contains the canary. The worker has its memory locked and writes nothing to storage.
//! - Two rooms are two processes; `kill -9` of one stops its participants' media while the
//!   other room's keeps flowing.
//!
//! Needs root (namespaces), tcpdump, and `.venv` with aiortc (interop/rooms/requirements.txt).

mod support;

use std::collections::HashSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mediaseal_rooms::control::{Request, WorkerEvent};
use serde_json::{Value, json};
use support::{
    Capture, HEAVY, Server, Topology, WORKER_IP, capture_udp, collect, files_open_for_writing,
    frames_from, interop_script, peer_ip, proc_status_kb, proc_write_bytes, python, spawn_peer,
    spawn_worker,
};

/// Waits until every peer in `peers` receives audio and video from every other peer of its room.
fn wait_for_full_mesh(server: &mut Server, peers: &[usize], limit: Duration) -> Vec<Value> {
    let end = Instant::now() + limit;
    loop {
        server.pump_for(Duration::from_millis(500));
        let reports: Vec<Value> = peers.iter().map(|&i| server.report(i)).collect();
        let complete = peers.iter().zip(&reports).all(|(&i, report)| {
            peers.iter().filter(|&&j| j != i).all(|&j| {
                let sid = server.peers[j].sid.clone();
                frames_from(report, &sid, "audio") >= 50 && frames_from(report, &sid, "video") >= 15
            })
        });
        if complete {
            return reports;
        }
        assert!(
            Instant::now() < end,
            "media did not reach every participant: {}",
            reports
                .iter()
                .map(|r| format!("{} {}", r["state"], r["tracks"]))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
}

#[test]
fn three_aiortc_participants_in_namespaces() {
    let _turn = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let topology = Topology::new("a", 3);
    let dir = tempdir();
    let mut captures: Vec<(String, Capture)> = Vec::new();
    captures.push((
        "worker".into(),
        capture_udp(&topology.worker_ns, &dir.join("worker.pcap")),
    ));
    for (k, ns) in topology.peer_ns.iter().enumerate() {
        captures.push((
            format!("peer-{k}"),
            capture_udp(ns, &dir.join(format!("peer-{k}.pcap"))),
        ));
    }

    let mut server = Server::new();
    let room = "RM00000000000000000000000000000b01";
    let udp = format!("{WORKER_IP}:0");
    let prefix = ["ip", "netns", "exec", topology.worker_ns.as_str()];
    let (worker, stderr) = spawn_worker(&prefix, "room", room, &udp, &[], &server.tx);
    let worker_logs = collect(stderr);
    let pid = worker.pid;
    assert!(worker.hardening.memory_locked, "{:?}", worker.hardening);
    server.workers.insert("room".into(), worker);
    let write_bytes_at_start = proc_write_bytes(pid);

    for k in 0..3 {
        let peer = spawn_peer(&topology.peer_ns[k], &peer_ip(k), k, "room", &server.tx);
        server.peers.push(peer);
    }
    wait_for_full_mesh(&mut server, &[0, 1, 2], Duration::from_secs(60));

    // Let media flow a little longer while the process is watched.
    server.pump_for(Duration::from_secs(4));
    let vm_lck = proc_status_kb(pid, "VmLck");
    assert!(vm_lck > 0, "VmLck {vm_lck} kB");
    assert_eq!(
        proc_write_bytes(pid),
        write_bytes_at_start,
        "the worker wrote to storage during the call"
    );
    // No absolute check on `write_bytes_at_start`: the worker runs under `ip netns exec`, which
    // execs it in its own process, so the counter also holds what `ip` wrote before the exec.
    assert!(
        files_open_for_writing(pid).is_empty(),
        "{:?}",
        files_open_for_writing(pid)
    );

    let WorkerEvent::Stats {
        room: stats,
        process,
    } = server.worker_stats("room")
    else {
        unreachable!()
    };
    assert_eq!(stats.participants.len(), 3);
    for p in &stats.participants {
        assert!(p.connected);
        assert_eq!(p.subscriptions.len(), 4, "{p:?}");
        assert!(
            p.subscriptions
                .iter()
                .all(|s| s.state == "open" && s.frames_out > 0)
        );
    }
    assert!(stats.forwarded_frames > 1000, "{}", stats.forwarded_frames);
    assert!(process.hardening.memory_locked);
    eprintln!(
        "worker: forwarded {} frames, {} datagrams in, {} out, VmLck {vm_lck} kB, \
         write_bytes {}",
        stats.forwarded_frames,
        process.datagrams_in,
        process.datagrams_out,
        proc_write_bytes(pid)
    );

    // Final reports with keys and payloads, then the room ends.
    let reports: Vec<Value> = (0..3).map(|i| server.report(i)).collect();
    reports_initial_check(&server, &reports);
    server
        .workers
        .get_mut("room")
        .unwrap()
        .send(&Request::Complete);
    let end = Instant::now() + Duration::from_secs(10);
    while !server
        .events
        .iter()
        .any(|(_, e)| matches!(e, WorkerEvent::RoomEnded { .. }))
    {
        assert!(Instant::now() < end, "no room_ended");
        server.pump_for(Duration::from_millis(50));
    }
    let status = server
        .workers
        .get_mut("room")
        .unwrap()
        .wait(Duration::from_secs(5));
    assert!(status.success(), "{status:?}");
    let disconnected = server
        .events
        .iter()
        .filter(|(_, e)| matches!(e, WorkerEvent::ParticipantDisconnected { .. }))
        .count();
    assert_eq!(disconnected, 3);
    for p in &mut server.peers {
        p.send(&json!({"type": "close"}));
    }
    std::thread::sleep(Duration::from_millis(500));
    let captures: Vec<(String, std::path::PathBuf)> =
        captures.into_iter().map(|(n, c)| (n, c.stop())).collect();
    let _ = worker_logs.join();

    // Everyone received everyone else, and the audio each decrypted is the others' canary.
    for (i, report) in reports.iter().enumerate() {
        eprintln!("peer {i}: SRTP profile {}", report["profile"]);
        assert!(
            report["profile"].as_str().unwrap_or("").contains("GCM"),
            "SRTP profile with aiortc: {}",
            report["profile"]
        );
        let received: HashSet<&str> = report["received_pcmu"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for (j, other) in reports.iter().enumerate() {
            let sent: HashSet<&str> = other["sent_pcmu"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let common = received.intersection(&sent).count();
            if i == j {
                assert_eq!(common, 0, "peer {i} received its own audio");
            } else {
                assert!(
                    common >= 50,
                    "peer {i} decrypted {common} canary frames of peer {j}"
                );
            }
        }
    }

    // The captures, checked with libsrtp against the keys the peers derived.
    let request = json!({
        "worker_ip": WORKER_IP,
        "captures": captures.iter().map(|(n, p)| (n.clone(), json!(p))).collect::<serde_json::Map<_, _>>(),
        "peers": reports.iter().enumerate().map(|(k, r)| json!({
            "sid": server.peers[k].sid,
            "ip": peer_ip(k),
            "keys": r["keys"],
            "sent_pcmu": r["sent_pcmu"],
        })).collect::<Vec<_>>(),
    });
    let verdict = analyze(&request);
    eprintln!("{}", serde_json::to_string_pretty(&verdict).unwrap());
    assert!(verdict["canaries"].as_u64().unwrap() >= 300);
    for (name, capture) in verdict["captures"].as_object().unwrap() {
        let classes = &capture["classes"];
        assert!(capture["udp"].as_u64().unwrap() > 500, "{name}: {capture}");
        assert_eq!(
            classes["other"], 0,
            "{name}: a datagram outside RFC 7983: {capture}"
        );
        assert!(classes["stun"].as_u64().unwrap() > 0, "{name}: {capture}");
        assert!(classes["dtls"].as_u64().unwrap() > 0, "{name}: {capture}");
        assert!(classes["srtp"].as_u64().unwrap() > 0, "{name}: {capture}");
        assert!(classes["srtcp"].as_u64().unwrap() > 0, "{name}: {capture}");
        assert_eq!(
            capture["canary_full"], 0,
            "{name}: plaintext canary on the wire"
        );
        assert_eq!(
            capture["canary_window"], 0,
            "{name}: canary fragment on the wire"
        );
    }
    for (sid, leg) in verdict["legs"].as_object().unwrap() {
        let down = leg["down"].as_u64().unwrap();
        let own = leg["down_own_key"].as_u64().unwrap();
        assert!(down > 500, "{sid}: {leg}");
        assert!(
            own * 100 >= down * 99,
            "{sid}: room→peer packets decrypt with its key: {leg}"
        );
        assert_eq!(
            leg["down_other_keys"], 0,
            "{sid}: another subscriber's key worked: {leg}"
        );
        assert_eq!(
            leg["down_outbound_keys"], 0,
            "{sid}: a publisher's key worked: {leg}"
        );
        let up = leg["up"].as_u64().unwrap();
        assert!(
            leg["up_own_key"].as_u64().unwrap() * 100 >= up * 99,
            "{sid}: {leg}"
        );
    }
    let fanout = &verdict["fanout"];
    assert!(
        fanout["publisher_packets_on_two_legs"].as_u64().unwrap() >= 100,
        "{fanout}"
    );
    assert_eq!(fanout["identical_ciphertexts"], 0, "{fanout}");
    assert_eq!(fanout["decrypted_with_other_leg_key"], 0, "{fanout}");
    drop(topology);
}

/// Sanity of the reports before the room ends (kept separate so the failure says which).
fn reports_initial_check(server: &Server, reports: &[Value]) {
    for (i, r) in reports.iter().enumerate() {
        assert_eq!(r["state"], "connected", "peer {i}: {r}");
        assert_eq!(r["keys"].as_array().map(Vec::len), Some(2), "peer {i} keys");
        for (j, p) in server.peers.iter().enumerate() {
            if i != j {
                assert!(frames_from(r, &p.sid, "audio") > 0 && frames_from(r, &p.sid, "video") > 0);
            }
        }
    }
}

#[test]
fn two_rooms_are_two_processes_and_killing_one_spares_the_other() {
    let _turn = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let topology = Topology::new("b", 4);
    let mut server = Server::new();
    let udp = format!("{WORKER_IP}:0");
    let prefix = ["ip", "netns", "exec", topology.worker_ns.as_str()];
    for (tag, sid) in [
        ("A", "RM00000000000000000000000000000c0a"),
        ("B", "RM00000000000000000000000000000c0b"),
    ] {
        let (worker, stderr) = spawn_worker(&prefix, tag, sid, &udp, &[], &server.tx);
        let _ = collect(stderr);
        server.workers.insert(tag.into(), worker);
    }
    let (pid_a, pid_b) = (server.workers["A"].pid, server.workers["B"].pid);
    assert_ne!(pid_a, pid_b);
    assert_ne!(server.workers["A"].udp, server.workers["B"].udp);
    for k in 0..4 {
        let room = if k < 2 { "A" } else { "B" };
        let peer = spawn_peer(&topology.peer_ns[k], &peer_ip(k), k, room, &server.tx);
        server.peers.push(peer);
    }
    wait_for_full_mesh(&mut server, &[0, 1], Duration::from_secs(60));
    wait_for_full_mesh(&mut server, &[2, 3], Duration::from_secs(30));

    let WorkerEvent::Stats { room: b_before, .. } = server.worker_stats("B") else {
        unreachable!()
    };
    // kill -9 room A's process.
    let killed = Command::new("kill")
        .args(["-9", &pid_a.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = server
        .workers
        .get_mut("A")
        .unwrap()
        .wait(Duration::from_secs(5));
    assert!(!status.success());
    let end = Instant::now() + Duration::from_secs(5);
    while !server.gone_workers.iter().any(|t| t == "A") {
        assert!(Instant::now() < end, "room A's control pipe did not close");
        server.pump_for(Duration::from_millis(50));
    }
    // Give in-flight frames a moment to land, then measure three seconds.
    server.pump_for(Duration::from_millis(500));
    let before: Vec<Value> = (0..4).map(|i| server.report(i)).collect();
    server.pump_for(Duration::from_secs(3));
    let after: Vec<Value> = (0..4).map(|i| server.report(i)).collect();
    let audio_gain = |i: usize, from: usize| {
        let sid = server.peers[from].sid.clone();
        frames_from(&after[i], &sid, "audio").saturating_sub(frames_from(&before[i], &sid, "audio"))
    };
    assert!(
        audio_gain(0, 1) <= 2 && audio_gain(1, 0) <= 2,
        "room A's media stopped"
    );
    assert!(
        audio_gain(2, 3) >= 100 && audio_gain(3, 2) >= 100,
        "room B's media flows on"
    );
    let WorkerEvent::Stats { room: b_after, .. } = server.worker_stats("B") else {
        unreachable!()
    };
    assert!(b_after.forwarded_frames > b_before.forwarded_frames + 300);
    assert_eq!(b_after.participants.len(), 2);
    eprintln!(
        "room B forwarded {} → {} frames after room A was killed",
        b_before.forwarded_frames, b_after.forwarded_frames
    );
    drop(topology);
}

fn tempdir() -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("mediaseal-rooms-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn analyze(request: &Value) -> Value {
    let mut child = Command::new(python())
        .arg(interop_script("analyze.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "analyze.py failed");
    serde_json::from_slice(&out.stdout).unwrap()
}
