//! Issue 12, peer-to-peer rooms (docs/ROOMS.md §3, "Peer-to-peer rooms"): the server relays
//! signalling only, and media goes end to end between the participants through a real coturn.
//!
//! A server on a real listener with TURN configured (a coturn `use-auth-secret` server), a `Type=peer-to-peer` room, and two aiortc participants
//! (`tests/interop/p2p_peer.py`) that join through the signalling WebSocket with twilio-python
//! Access Tokens, take their TURN credentials from `joined`, and exchange `peer_offer`,
//! `peer_answer` and `peer_candidate` through mediaseal (candidates only as `peer_candidate`:
//! the SDP goes without them), using TURN relay candidates only. Asserted:
//!
//! - each decodes the other's canary audio, over a relay/relay pair; the first hears
//!   `participant_connected` and later `participant_disconnected` for the second;
//! - REST lists both participants `connected`, then `disconnected`; the status callback queued
//!   `participant-connected` and `participant-disconnected` for each; no room process ran;
//! - misaddressed peer messages (another room's participant, an unknown SID) are refused with
//!   53004 and reach nobody; `MaxParticipants` is enforced with 53105; REST `Status=disconnected`
//!   and `Status=completed` close p2p sockets (the latter with 53118);
//! - the room limits of a group room: a second connection with the same identity replaces the
//!   first (53205; its row and callback say disconnected); `UnusedRoomTimeout` and
//!   `EmptyRoomTimeout` complete the room (row, `room-ended` callback) with a minute shortened
//!   to a second by the room host's knob; `MaxParticipants` above 10 is refused at creation
//!   with 53107;
//! - a capture of the server's port holds no UDP at all and no canary; a capture of coturn's
//!   listening and relay ports holds only STUN and ChannelData (or Send/Data indications)
//!   around DTLS, SRTP and SRTCP (RFC 7983), and no canary byte string.
//!
//! The call runs twice: on loopback (where the relay-only ICE policy is what keeps media on
//! TURN), and in the topology, each peer and coturn in its own network namespace, where
//! the peers can reach only the server (signalling) and coturn (media), so media goes through
//! TURN by construction and a capture of the server's links sees everything it receives.
//!
//! Needs `.venv` with twilio-python and aiortc, coturn (`turnserver`), tcpdump and iproute2; runs
//! as root (captures, namespaces).

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use mediaseal_rooms::signal::{ClientMessage, ServerMessage};
use mediaseal_server::room_processes::HostConfig;
use mediaseal_test_support::capture::{self, Capture, Class};
use mediaseal_test_support::coturn::{Coturn, CoturnOptions};
use mediaseal_test_support::netns::{self, Netns};
use serde_json::Value;
use support::rooms::{Rig, join, recv, send};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

const SECRET: &str = "room-p2p-coturn-shared-secret-91f2";

/// A server with TURN at `turn` (`host:port`). Peer-to-peer rooms start no room process, so
/// the group-room host is given a worker path that is never run.
async fn rig(turn: &str) -> Rig {
    rig_with_minute(turn, Duration::from_secs(60)).await
}

/// As [`rig`], with a minute of `EmptyRoomTimeout` / `UnusedRoomTimeout` lasting `minute`
/// (the room host's knob, which peer-to-peer rooms keep time by too).
async fn rig_with_minute(turn: &str, minute: Duration) -> Rig {
    let mut host = HostConfig::new(PathBuf::from("/nonexistent/mediaseal-room-worker"));
    host.room_timeout_minute = minute;
    let turn = mediaseal_server::TurnConfig::new(
        &[format!("turn:{turn}?transport=udp")],
        Some(zeroize::Zeroizing::new(SECRET.as_bytes().to_vec())),
        None,
    )
    .unwrap();
    Rig::start_with(host, |c| c.turn = turn).await
}

/// Relay ports for this test's coturn, outside the ephemeral range so the capture filter names
/// only coturn's sockets.
fn relay_ports() -> (u16, u16) {
    let base = 20_000 + u16::try_from(std::process::id() % 500).unwrap() * 20;
    (base, base + 19)
}

fn start_coturn(dir: &Path) -> Coturn {
    Coturn::start(
        dir,
        &CoturnOptions {
            ip: "127.0.0.1",
            port: mediaseal_test_support::free_udp_port(),
            secret: SECRET,
            relay_ports: Some(relay_ports()),
            // The peers' relayed addresses are on loopback, which coturn refuses by default.
            extra: &["allow-loopback-peers"],
            prefix: &[],
        },
    )
}

/// One `p2p_peer.py`: its JSON lines, and its stdin for `close`.
struct PyPeer {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: mpsc::UnboundedReceiver<Value>,
    log: Vec<Value>,
}

impl PyPeer {
    /// Peer `index` joining `room` with `token` from `place`, expecting one other peer.
    fn spawn(place: &Place, room: &str, token: &str, index: usize) -> Self {
        let python = mediaseal_test_support::python(&["aiortc", "aiohttp"]);
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/p2p_peer.py");
        let mut command = match place.prefix.split_first() {
            Some((program, args)) => {
                let mut c = tokio::process::Command::new(program);
                c.args(args).arg(python);
                c
            }
            None => tokio::process::Command::new(python),
        };
        let mut child = command
            .arg(script)
            .args([
                "--url",
                &format!("ws://{}/v1/Rooms/{room}/Connect", place.server),
            ])
            .args(["--token", token, "--relay", "--expect", "1"])
            .args(["--index", &index.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("run p2p_peer.py");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stdout.next_line().await {
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("p2p_peer.py printed {line:?}: {e}"));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            stdin,
            lines,
            log: Vec::new(),
        }
    }

    /// The next line of type `kind` (the lines before it go to the log).
    async fn next(&mut self, kind: &str, within: Duration) -> Value {
        let end = Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.lines.recv()).await {
                Ok(Some(line)) if line["type"] == kind => return line,
                Ok(Some(line)) => self.log.push(line),
                Ok(None) => panic!("p2p_peer.py ended before {kind}: {:?}", self.log),
                Err(_) => panic!(
                    "no {kind} from p2p_peer.py within {within:?}: {:?}",
                    self.log
                ),
            }
        }
    }

    /// Whether it heard server message `message` about `peer` (waits up to 5 s for it).
    async fn heard(&mut self, message: &str, peer: &str) -> bool {
        let matches =
            |l: &Value| l["type"] == "signal" && l["message"] == message && l["peer"] == peer;
        if self.log.iter().any(matches) {
            return true;
        }
        let end = Instant::now() + Duration::from_secs(5);
        while let Ok(Some(line)) = tokio::time::timeout(
            end.saturating_duration_since(Instant::now()),
            self.lines.recv(),
        )
        .await
        {
            let hit = matches(&line);
            self.log.push(line);
            if hit {
                return true;
            }
        }
        false
    }

    async fn close(&mut self) {
        let _ = self.stdin.write_all(b"close\n").await;
        let _ = self.stdin.flush().await;
        self.next("closed", Duration::from_secs(10)).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Every 16-byte window of each canary (the plaintext tail each peer sends in every frame).
fn windows(canaries: &[Vec<u8>]) -> Vec<Vec<u8>> {
    canaries
        .iter()
        .flat_map(|c| c.windows(16).map(<[u8]>::to_vec).collect::<Vec<_>>())
        .collect()
}

/// Where a peer runs (`prefix`, e.g. `ip netns exec …`) and where it finds the server.
struct Place {
    prefix: Vec<String>,
    server: SocketAddr,
}

/// A finished call: each peer's plaintext canary (what must not appear on the network).
struct Call {
    canaries: Vec<Vec<u8>>,
}

/// Creates a peer-to-peer room, has two aiortc peers (one per place) call each other through
/// it with TURN relay candidates, and checks what the participants and REST saw.
async fn call(rig: &Rig, room_name: &str, places: [Place; 2]) -> Call {
    let sid = rig
        .create_room(&[
            ("UniqueName", room_name),
            ("Type", "peer-to-peer"),
            ("StatusCallback", "http://127.0.0.1:9/rooms"),
        ])
        .await;
    assert_eq!(
        rig.host.pid(&sid),
        None,
        "a peer-to-peer room runs no process"
    );
    let tokens = rig.tokens(room_name);
    let token = |who: &str| tokens[who].as_str().unwrap().to_owned();
    let [alice_place, bob_place] = places;

    let mut alice = PyPeer::spawn(&alice_place, room_name, &token("alice"), 1);
    let alice_joined = alice.next("joined", Duration::from_secs(20)).await;
    let alice_sid = alice_joined["sid"].as_str().unwrap().to_owned();
    // Short-lived TURN credentials named after the participant, from `joined`.
    assert!(
        alice_joined["ice_servers"][0]["username"]
            .as_str()
            .is_some_and(|u| u.ends_with(&format!(":{alice_sid}"))),
        "{alice_joined}"
    );
    let mut bob = PyPeer::spawn(&bob_place, &sid, &token("bob"), 2);
    let bob_sid = bob.next("joined", Duration::from_secs(20)).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();

    let a = alice.next("report", Duration::from_secs(60)).await;
    let b = bob.next("report", Duration::from_secs(60)).await;
    assert!(a["decoded"][&bob_sid].as_u64().unwrap() >= 50, "{a}");
    assert!(b["decoded"][&alice_sid].as_u64().unwrap() >= 50, "{b}");
    eprintln!(
        "decoded canary frames: alice from bob {}, bob from alice {}",
        a["decoded"][&bob_sid], b["decoded"][&alice_sid]
    );
    for report in [&a, &b] {
        let types = report["local_candidate_types"].as_array().unwrap();
        assert!(
            !types.is_empty() && types.iter().all(|t| t == "relay"),
            "media through TURN only: {report}"
        );
    }
    assert!(alice.heard("participant_connected", &bob_sid).await);
    assert!(alice.heard("peer_offer", &bob_sid).await);
    assert!(alice.heard("peer_candidate", &bob_sid).await);
    assert!(bob.heard("peer_answer", &alice_sid).await);
    assert!(bob.heard("peer_candidate", &alice_sid).await);

    // REST sees both connected.
    let list = format!("/v1/Rooms/{sid}/Participants");
    let rows = rig
        .list_until(&format!("{list}?Status=connected"), "participants", |r| {
            r.len() == 2
        })
        .await;
    let mut identities: Vec<&str> = rows.iter().filter_map(|r| r["identity"].as_str()).collect();
    identities.sort_unstable();
    assert_eq!(identities, ["alice", "bob"]);

    // Bob leaves and Alice hears it; then Alice leaves.
    bob.close().await;
    assert!(alice.heard("participant_disconnected", &bob_sid).await);
    alice.close().await;
    let rows = rig
        .list_until(&list, "participants", |r| {
            r.len() == 2 && r.iter().all(|p| p["status"] == "disconnected")
        })
        .await;
    assert!(
        rows.iter().all(|p| p["duration"].as_i64().is_some()),
        "{rows:?}"
    );

    // The status callback heard both come and go.
    let callbacks = rig.app.state.meta.callbacks_for(&sid).await.unwrap();
    let events: Vec<Vec<(String, String)>> = callbacks
        .iter()
        .map(|c| serde_json::from_str(&c.params).unwrap())
        .collect();
    let count = |event: &str, who: &str| {
        events
            .iter()
            .filter(|e| {
                e.contains(&("StatusCallbackEvent".to_owned(), event.to_owned()))
                    && e.contains(&("ParticipantSid".to_owned(), who.to_owned()))
            })
            .count()
    };
    for who in [&alice_sid, &bob_sid] {
        assert_eq!(count("participant-connected", who), 1, "{events:?}");
        assert_eq!(count("participant-disconnected", who), 1, "{events:?}");
    }

    let canaries: Vec<Vec<u8>> = [&a, &b]
        .iter()
        .map(|r| hex(r["canary_tail"].as_str().unwrap()))
        .collect();
    assert!(canaries.iter().all(|c| c.len() >= 100), "{canaries:?}");
    Call { canaries }
}

/// No 16-byte window of any canary anywhere in the capture file.
fn assert_no_canary(pcap: &Path, canaries: &[Vec<u8>]) {
    let raw = std::fs::read(pcap).unwrap();
    let hits = windows(canaries)
        .iter()
        .filter(|w| mediaseal_test_support::contains(&raw, w))
        .count();
    assert_eq!(hits, 0, "plaintext audio in {}", pcap.display());
}

/// The server's capture: signalling (TCP) only, not one UDP datagram.
fn assert_no_media(pcap: &Path, canaries: &[Vec<u8>]) {
    let packets = capture::ipv4_packets(pcap);
    assert!(
        !packets.is_empty(),
        "{}: saw the signalling",
        pcap.display()
    );
    let udp = packets
        .iter()
        .filter(|(protocol, _)| *protocol == 17)
        .count();
    eprintln!(
        "{}: {} IPv4 packets, {udp} UDP",
        pcap.display(),
        packets.len()
    );
    assert_eq!(udp, 0, "{}: UDP at the server", pcap.display());
    assert_no_canary(pcap, canaries);
}

/// TURN's capture: STUN and ChannelData to and from its listening port, carrying only STUN,
/// DTLS, SRTP and SRTCP; the same classes between its relay addresses; audio among them.
fn assert_turn_carries_only_encrypted_media(pcap: &Path, listener: u16, canaries: &[Vec<u8>]) {
    let mut outer: BTreeMap<Class, usize> = BTreeMap::new();
    let mut inner: BTreeMap<Class, usize> = BTreeMap::new();
    for d in capture::datagrams(pcap) {
        let on_listener = d.src_port == listener || d.dst_port == listener;
        let carried = if on_listener {
            *outer.entry(capture::classify(&d.payload)).or_default() += 1;
            capture::turn_inner(&d.payload)
        } else {
            // Between two relay addresses: the peers' packets as they are.
            Some(&d.payload[..])
        };
        if let Some(carried) = carried {
            *inner.entry(capture::classify(carried)).or_default() += 1;
        }
    }
    eprintln!(
        "{}: on TURN's port {outer:?}; carried {inner:?}",
        pcap.display()
    );
    assert!(
        outer
            .keys()
            .all(|c| matches!(c, Class::Stun | Class::ChannelData)),
        "TURN's port: {outer:?}"
    );
    assert!(
        inner
            .keys()
            .all(|c| matches!(c, Class::Stun | Class::Dtls | Class::Srtp | Class::Srtcp)),
        "inside TURN: {inner:?}"
    );
    assert!(inner.get(&Class::Dtls).is_some_and(|n| *n > 0), "{inner:?}");
    assert!(
        inner.get(&Class::Srtp).is_some_and(|n| *n >= 100),
        "the audio went through TURN: {inner:?}"
    );
    assert_no_canary(pcap, canaries);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_exchange_audio_through_coturn_with_signalling_relayed_by_mediaseal() {
    let dir = tempfile::tempdir().unwrap();
    let coturn = start_coturn(dir.path());
    let rig = rig(&format!("127.0.0.1:{}", coturn.port)).await;
    let (min, max) = relay_ports();
    let turn_capture = Capture::start(
        &[],
        "lo",
        &format!("udp and (port {} or portrange {min}-{max})", coturn.port),
        &dir.path().join("turn.pcap"),
    );
    let server_capture = Capture::start(
        &[],
        "lo",
        &format!("port {}", rig.addr.port()),
        &dir.path().join("server.pcap"),
    );
    let here = || Place {
        prefix: Vec::new(),
        server: rig.addr,
    };
    let done = call(&rig, "p2p-standup", [here(), here()]).await;
    let turn_pcap = turn_capture.stop();
    let server_pcap = server_capture.stop();
    assert_no_media(&server_pcap, &done.canaries);
    assert_turn_carries_only_encrypted_media(&turn_pcap, coturn.port, &done.canaries);
}

/// The topology: each peer, and coturn, in its own network namespace; the server in
/// the test's. A peer has two links: one to the server's namespace (signalling) and one to
/// coturn's (media). No namespace forwards, so the peers can reach each other only through
/// TURN, and the server's links carry only what the peers send it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_network_namespaces_the_server_sees_no_media_and_turn_only_encrypted_media() {
    let dir = tempfile::tempdir().unwrap();
    let pid = std::process::id();
    let net = pid % 200 + 20;
    let tag = pid % 100_000;
    let turn_ns = Netns::new(&format!("p2pt{tag}"));
    let peer_ns = [
        Netns::new(&format!("p2pa{tag}")),
        Netns::new(&format!("p2pb{tag}")),
    ];
    let turn_ip = format!("10.90.{net}.1");
    netns::sh(&format!(
        "ip -n {} addr add {turn_ip}/32 dev lo",
        turn_ns.name
    ));
    let mut server_links = Vec::new();
    for (k, ns) in peer_ns.iter().enumerate() {
        let base = 4 * k;
        let link = format!("p2s{k}{tag}");
        netns::veth(
            (None, &link, &format!("10.88.{net}.{}/30", base + 1)),
            (ns, "srv", &format!("10.88.{net}.{}/30", base + 2)),
        );
        netns::veth(
            (
                Some(&turn_ns),
                &format!("t{k}"),
                &format!("10.89.{net}.{}/30", base + 1),
            ),
            (ns, "turn", &format!("10.89.{net}.{}/30", base + 2)),
        );
        netns::sh(&format!(
            "ip -n {} route add {turn_ip}/32 via 10.89.{net}.{}",
            ns.name,
            base + 1
        ));
        server_links.push((link, format!("10.88.{net}.{}", base + 1)));
    }
    let coturn = Coturn::start(
        dir.path(),
        &CoturnOptions {
            ip: &turn_ip,
            port: 3478,
            secret: SECRET,
            relay_ports: None,
            extra: &[],
            prefix: &turn_ns.exec(),
        },
    );
    let rig = rig(&format!("{turn_ip}:3478")).await;
    // The server also listens where the peers' links end (the rig's own listener is loopback).
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let router = mediaseal_server::app(rig.app.state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let turn_capture = Capture::start(&turn_ns.exec(), "any", "udp", &dir.path().join("turn.pcap"));
    let server_captures: Vec<Capture> = server_links
        .iter()
        .map(|(link, _)| Capture::start(&[], link, "", &dir.path().join(format!("{link}.pcap"))))
        .collect();
    let place = |k: usize| Place {
        prefix: peer_ns[k].exec().iter().map(|s| (*s).to_owned()).collect(),
        server: format!("{}:{port}", server_links[k].1).parse().unwrap(),
    };
    let done = call(&rig, "p2p-netns", [place(0), place(1)]).await;
    let turn_pcap = turn_capture.stop();
    for capture in server_captures {
        assert_no_media(&capture.stop(), &done.canaries);
    }
    assert_turn_carries_only_encrypted_media(&turn_pcap, coturn.port, &done.canaries);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misaddressed_messages_kicks_limits_and_completion() {
    // Signalling only: TURN credentials are handed out, no TURN server is needed.
    let rig = rig("127.0.0.1:3478").await;
    let sid = rig
        .create_room(&[
            ("UniqueName", "p2p-small"),
            ("Type", "peer-to-peer"),
            ("MaxParticipants", "2"),
        ])
        .await;
    let other = rig
        .create_room(&[("UniqueName", "p2p-other"), ("Type", "peer-to-peer")])
        .await;
    let tokens = rig.tokens("p2p-small");
    let any = rig.tokens("p2p-other");

    let joined = |m: Option<ServerMessage>| match m {
        Some(ServerMessage::Joined {
            participant,
            participants,
            ice_servers,
            ..
        }) => {
            assert_eq!(ice_servers.len(), 1, "TURN credentials in joined");
            (participant.sid, participants)
        }
        other => panic!("expected joined, got {other:?}"),
    };
    let mut alice = rig.connect("p2p-small").await;
    send(&mut alice, &join(&tokens, "alice")).await;
    let (alice_sid, before) = joined(recv(&mut alice).await);
    assert!(before.is_empty());
    let mut bob = rig.connect(&sid).await;
    send(&mut bob, &join(&tokens, "bob")).await;
    let (bob_sid, before) = joined(recv(&mut bob).await);
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].sid, alice_sid);
    assert!(matches!(
        recv(&mut alice).await,
        Some(ServerMessage::ParticipantConnected { participant }) if participant.sid == bob_sid
    ));
    // Someone in another room.
    let mut dave = rig.connect(&other).await;
    send(&mut dave, &join(&any, "any_room")).await;
    let (dave_sid, _) = joined(recv(&mut dave).await);

    // The room is full at its MaxParticipants: 53105, and the socket closes.
    let mut carol = rig.connect(&sid).await;
    send(&mut carol, &join(&tokens, "any_room")).await;
    assert!(matches!(
        recv(&mut carol).await,
        Some(ServerMessage::Error { code: 53105, .. })
    ));
    assert_eq!(recv(&mut carol).await, None);

    // Misaddressed: another room's participant, an unknown SID, a server-addressed offer.
    for to in [
        dave_sid.clone(),
        "PA0123456789abcdef0123456789abcdef".to_owned(),
    ] {
        let offer = ClientMessage::PeerOffer {
            to: to.clone(),
            sdp: "v=0\r\n".into(),
        };
        send(&mut alice, &offer).await;
        match recv(&mut alice).await {
            Some(ServerMessage::Error { code, message }) => {
                assert_eq!(code, 53004);
                assert!(message.contains(&to), "{message}");
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }
    send(&mut alice, &ClientMessage::Offer { sdp: "v=0".into() }).await;
    assert!(matches!(
        recv(&mut alice).await,
        Some(ServerMessage::Error { code: 53004, .. })
    ));
    // A well-addressed one arrives, marked from its sender; it went to Bob only.
    let candidate = ClientMessage::PeerCandidate {
        to: bob_sid.clone(),
        candidate: "candidate:1 1 udp 2130706431 192.0.2.1 9 typ host".into(),
        sdp_mid: Some("0".into()),
    };
    send(&mut alice, &candidate).await;
    assert!(matches!(
        recv(&mut bob).await,
        Some(ServerMessage::PeerCandidate { from, .. }) if from == alice_sid
    ));

    // REST kicks Bob: his socket closes, Alice hears it, his row is disconnected.
    let r = rig
        .app
        .post_form(
            &format!("/v1/Rooms/{sid}/Participants/{bob_sid}"),
            &rig.creds,
            &[("Status", "disconnected")],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.json()["status"], "disconnected");
    assert!(matches!(
        recv(&mut bob).await,
        Some(ServerMessage::Error { .. })
    ));
    assert_eq!(recv(&mut bob).await, None);
    assert!(matches!(
        recv(&mut alice).await,
        Some(ServerMessage::ParticipantDisconnected { participant }) if participant.sid == bob_sid
    ));

    // REST completes the room: Alice is told 53118 and her socket closes; Dave's room goes on.
    rig.complete_room(&sid).await;
    assert!(matches!(
        recv(&mut alice).await,
        Some(ServerMessage::Error { code: 53118, .. })
    ));
    assert_eq!(recv(&mut alice).await, None);
    rig.list_until(
        &format!("/v1/Rooms/{sid}/Participants?Status=connected"),
        "participants",
        <[Value]>::is_empty,
    )
    .await;
    rig.list_until(
        &format!("/v1/Rooms/{other}/Participants?Status=connected"),
        "participants",
        |r| r.len() == 1,
    )
    .await;
    // A completed peer-to-peer room takes nobody.
    let mut late = rig.connect(&sid).await;
    send(&mut late, &join(&tokens, "alice")).await;
    assert!(matches!(
        recv(&mut late).await,
        Some(ServerMessage::Error { code: 53118, .. })
    ));
    send(&mut dave, &ClientMessage::Leave).await;
    assert_eq!(recv(&mut dave).await, None);
}

/// The `joined` of a signalling connection: its participant SID and the others in the room.
fn joined(message: Option<ServerMessage>) -> (String, Vec<String>) {
    match message {
        Some(ServerMessage::Joined {
            participant,
            participants,
            ..
        }) => (
            participant.sid,
            participants.into_iter().map(|p| p.sid).collect(),
        ),
        other => panic!("expected joined, got {other:?}"),
    }
}

/// `(StatusCallbackEvent, ParticipantSid)` of each callback queued for room `sid`, in order.
async fn callback_events(rig: &Rig, sid: &str) -> Vec<(String, String)> {
    let callbacks = rig.app.state.meta.callbacks_for(sid).await.unwrap();
    callbacks
        .iter()
        .map(|c| {
            let params: Vec<(String, String)> = serde_json::from_str(&c.params).unwrap();
            let get = |name: &str| {
                params
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            (get("StatusCallbackEvent"), get("ParticipantSid"))
        })
        .collect()
}

/// The `room-ended` callback's parameters of room `sid` (exactly one).
async fn room_ended_callback(rig: &Rig, sid: &str) -> Vec<(String, String)> {
    let callbacks = rig.app.state.meta.callbacks_for(sid).await.unwrap();
    let ended: Vec<Vec<(String, String)>> = callbacks
        .iter()
        .map(|c| serde_json::from_str(&c.params).unwrap())
        .filter(|p: &Vec<(String, String)>| {
            p.contains(&("StatusCallbackEvent".to_owned(), "room-ended".to_owned()))
        })
        .collect();
    assert_eq!(ended.len(), 1, "one room-ended callback: {ended:?}");
    ended.into_iter().next().unwrap()
}

/// Polls room `sid` (up to `within`) until it is no longer in progress; its resource then.
async fn ended_within(rig: &Rig, sid: &str, within: Duration) -> Value {
    let end = Instant::now() + within;
    loop {
        let r = rig.app.get(&format!("/v1/Rooms/{sid}"), &rig.creds).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let room = r.json();
        if room["status"] != "in-progress" {
            return room;
        }
        assert!(
            Instant::now() < end,
            "room {sid} still in progress after {within:?}: {room}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A room that ended itself: completed with an end time and duration, and `room-ended`
/// (`RoomStatus=completed`, a `RoomDuration`) after every other callback of the room.
async fn assert_completed_by_timeout(rig: &Rig, sid: &str, room: &Value) {
    assert_eq!(room["status"], "completed", "{room}");
    assert!(room["end_time"].is_string(), "{room}");
    assert!(room["duration"].as_i64().is_some(), "{room}");
    let params = room_ended_callback(rig, sid).await;
    assert!(
        params.contains(&("RoomStatus".to_owned(), "completed".to_owned())),
        "{params:?}"
    );
    assert!(
        params
            .iter()
            .any(|(k, v)| k == "RoomDuration" && v.parse::<u64>().is_ok()),
        "{params:?}"
    );
    let events = callback_events(rig, sid).await;
    assert_eq!(
        events.last().map(|(event, _)| event.as_str()),
        Some("room-ended"),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unused_and_emptied_rooms_end_themselves_after_their_timeouts() {
    // A minute of room timeout lasts a second here.
    let rig = rig_with_minute("127.0.0.1:3478", Duration::from_secs(1)).await;
    let tokens = rig.tokens("p2p-emptied");
    let unused_tokens = rig.tokens("p2p-unused");

    // Alice joins at once; the room's 3-"minute" unused timeout must not end it then.
    let emptied = rig
        .create_room(&[
            ("UniqueName", "p2p-emptied"),
            ("Type", "peer-to-peer"),
            ("UnusedRoomTimeout", "3"),
            ("EmptyRoomTimeout", "1"),
            ("StatusCallback", "http://127.0.0.1:9/rooms"),
        ])
        .await;
    let emptied_created = Instant::now();
    let mut alice = rig.connect(&emptied).await;
    send(&mut alice, &join(&tokens, "alice")).await;
    let (alice_sid, _) = joined(recv(&mut alice).await);

    // Nobody joins this one: it completes after its unused timeout, as by REST.
    let unused = rig
        .create_room(&[
            ("UniqueName", "p2p-unused"),
            ("Type", "peer-to-peer"),
            ("UnusedRoomTimeout", "1"),
            ("EmptyRoomTimeout", "1"),
            ("StatusCallback", "http://127.0.0.1:9/rooms"),
        ])
        .await;
    let room = ended_within(&rig, &unused, Duration::from_secs(20)).await;
    assert_completed_by_timeout(&rig, &unused, &room).await;
    assert_eq!(
        callback_events(&rig, &unused).await,
        [
            ("room-created".to_owned(), String::new()),
            ("room-ended".to_owned(), String::new())
        ]
    );
    // It takes nobody now.
    let mut late = rig.connect(&unused).await;
    send(&mut late, &join(&unused_tokens, "alice")).await;
    assert!(matches!(
        recv(&mut late).await,
        Some(ServerMessage::Error { code: 53118, .. })
    ));
    assert_eq!(recv(&mut late).await, None);

    // Past the occupied room's unused timeout: it goes on, and Alice is still connected
    // (a misaddressed message is answered on her socket).
    tokio::time::sleep_until((emptied_created + Duration::from_secs(4)).into()).await;
    let r = rig
        .app
        .get(&format!("/v1/Rooms/{emptied}"), &rig.creds)
        .await;
    assert_eq!(r.json()["status"], "in-progress", "{:?}", r.body);
    send(
        &mut alice,
        &ClientMessage::PeerOffer {
            to: "PA0123456789abcdef0123456789abcdef".to_owned(),
            sdp: "v=0\r\n".into(),
        },
    )
    .await;
    assert!(matches!(
        recv(&mut alice).await,
        Some(ServerMessage::Error { code: 53004, .. })
    ));

    // She leaves: the room, empty, completes after its empty timeout.
    send(&mut alice, &ClientMessage::Leave).await;
    assert_eq!(recv(&mut alice).await, None);
    let room = ended_within(&rig, &emptied, Duration::from_secs(20)).await;
    assert_completed_by_timeout(&rig, &emptied, &room).await;
    assert_eq!(
        callback_events(&rig, &emptied).await,
        [
            ("room-created".to_owned(), String::new()),
            ("participant-connected".to_owned(), alice_sid.clone()),
            ("participant-disconnected".to_owned(), alice_sid.clone()),
            ("room-ended".to_owned(), String::new())
        ]
    );
    let rows = rig
        .list_until(
            &format!("/v1/Rooms/{emptied}/Participants"),
            "participants",
            |r| r.len() == 1 && r[0]["status"] == "disconnected",
        )
        .await;
    assert_eq!(rows[0]["sid"], alice_sid.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_connection_with_the_same_identity_replaces_the_first() {
    let rig = rig("127.0.0.1:3478").await;
    let sid = rig
        .create_room(&[
            ("UniqueName", "p2p-twice"),
            ("Type", "peer-to-peer"),
            ("StatusCallback", "http://127.0.0.1:9/rooms"),
        ])
        .await;
    let tokens = rig.tokens("p2p-twice");
    let mut first = rig.connect(&sid).await;
    send(&mut first, &join(&tokens, "alice")).await;
    let (first_sid, _) = joined(recv(&mut first).await);
    let mut bob = rig.connect(&sid).await;
    send(&mut bob, &join(&tokens, "bob")).await;
    let (bob_sid, _) = joined(recv(&mut bob).await);
    assert!(matches!(
        recv(&mut first).await,
        Some(ServerMessage::ParticipantConnected { participant }) if participant.sid == bob_sid
    ));

    // Alice again, from a second connection: admitted, seeing only Bob.
    let mut second = rig.connect(&sid).await;
    send(&mut second, &join(&tokens, "alice")).await;
    let (second_sid, others) = joined(recv(&mut second).await);
    assert_ne!(second_sid, first_sid);
    assert_eq!(others, std::slice::from_ref(&bob_sid));
    // The first is told 53205, as a group room says it, and disconnected.
    match recv(&mut first).await {
        Some(ServerMessage::Error { code, message }) => {
            assert_eq!(code, 53205, "{message}");
            assert!(message.contains("duplicate_identity"), "{message}");
        }
        other => panic!("expected 53205, got {other:?}"),
    }
    assert_eq!(recv(&mut first).await, None);
    // Bob hears the first go, then the second come.
    assert!(matches!(
        recv(&mut bob).await,
        Some(ServerMessage::ParticipantDisconnected { participant })
            if participant.sid == first_sid && participant.identity == "alice"
    ));
    assert!(matches!(
        recv(&mut bob).await,
        Some(ServerMessage::ParticipantConnected { participant }) if participant.sid == second_sid
    ));

    // The new connection is the one Bob's messages reach; the old SID is nobody.
    send(
        &mut bob,
        &ClientMessage::PeerOffer {
            to: second_sid.clone(),
            sdp: "v=0\r\n".into(),
        },
    )
    .await;
    assert!(matches!(
        recv(&mut second).await,
        Some(ServerMessage::PeerOffer { from, .. }) if from == bob_sid
    ));
    send(
        &mut bob,
        &ClientMessage::PeerOffer {
            to: first_sid.clone(),
            sdp: "v=0\r\n".into(),
        },
    )
    .await;
    assert!(matches!(
        recv(&mut bob).await,
        Some(ServerMessage::Error { code: 53004, .. })
    ));

    // Rows: the first disconnected, the second and Bob connected; callbacks to match.
    let rows = rig
        .list_until(
            &format!("/v1/Rooms/{sid}/Participants"),
            "participants",
            |r| {
                r.len() == 3
                    && r.iter()
                        .any(|p| p["sid"] == first_sid.as_str() && p["status"] == "disconnected")
            },
        )
        .await;
    let status = |who: &str| {
        rows.iter()
            .find(|p| p["sid"] == who)
            .map(|p| p["status"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(
        status(&second_sid).as_deref(),
        Some("connected"),
        "{rows:?}"
    );
    assert_eq!(status(&bob_sid).as_deref(), Some("connected"), "{rows:?}");
    let events = callback_events(&rig, &sid).await;
    let count = |event: &str, who: &str| {
        events
            .iter()
            .filter(|(e, p)| e == event && p == who)
            .count()
    };
    assert_eq!(count("participant-connected", &first_sid), 1, "{events:?}");
    assert_eq!(
        count("participant-disconnected", &first_sid),
        1,
        "{events:?}"
    );
    assert_eq!(count("participant-connected", &second_sid), 1, "{events:?}");
    assert_eq!(
        count("participant-disconnected", &second_sid),
        0,
        "{events:?}"
    );

    // Completed: both remaining sockets end with 53118 (one may first hear the other go).
    rig.complete_room(&sid).await;
    for ws in [&mut second, &mut bob] {
        loop {
            match recv(ws).await {
                Some(ServerMessage::ParticipantDisconnected { .. }) => {}
                Some(ServerMessage::Error { code: 53118, .. }) => break,
                other => panic!("expected 53118, got {other:?}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_participants_above_ten_is_refused_when_a_p2p_room_is_created() {
    let rig = rig("127.0.0.1:3478").await;
    let create = |form: Vec<(&'static str, &'static str)>| {
        let rig = &rig;
        async move { rig.app.post_form("/v1/Rooms", &rig.creds, &form).await }
    };
    for n in ["11", "50", "1000"] {
        let r = create(vec![
            ("UniqueName", "p2p-too-big"),
            ("Type", "peer-to-peer"),
            ("MaxParticipants", n),
        ])
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{n}: {:?}", r.body);
        let e = r.json();
        assert_eq!(e["code"], 53107, "{e}");
        let message = e["message"].as_str().unwrap();
        assert!(
            message.contains("MaxParticipants") && message.contains(n),
            "{message}"
        );
    }
    for bad in ["0", "ten"] {
        let r = create(vec![("Type", "peer-to-peer"), ("MaxParticipants", bad)]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", r.body);
    }
    // A group room's range is unchanged (1 to 50; its rooms need a worker this rig lacks, so
    // only the refusal is checked here).
    let r = create(vec![("Type", "group"), ("MaxParticipants", "51")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.json()["code"], 20001, "{:?}", r.body);
    // Nothing was created.
    let r = rig
        .app
        .get("/v1/Rooms?UniqueName=p2p-too-big", &rig.creds)
        .await;
    assert_eq!(r.json()["rooms"], serde_json::json!([]), "{:?}", r.body);

    // Twilio's cap, and the default of a peer-to-peer room.
    for (form, max) in [
        (
            vec![("Type", "peer-to-peer"), ("MaxParticipants", "10")],
            10,
        ),
        (vec![("Type", "peer-to-peer")], 10),
        (vec![("Type", "peer-to-peer"), ("MaxParticipants", "3")], 3),
    ] {
        let r = create(form.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{form:?}: {:?}", r.body);
        assert_eq!(r.json()["max_participants"], max, "{form:?}");
    }
}
