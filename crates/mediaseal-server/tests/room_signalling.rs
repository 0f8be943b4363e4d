//! Issue 12, the participant signalling WebSocket `GET /v1/Rooms/{Room}/Connect` (docs/ROOMS.md
//! §3) on a real listener, with a real `mediaseal-room-worker` per group room and Access Tokens
//! minted by twilio-python (`AccessToken` + `VideoGrant`):
//!
//! - refusals: anything before `join`, bad / expired / unknown-key / other-room tokens, an
//!   unknown room, a completed room, a room without a media process — each an `error` with its
//!   Twilio code, then the socket closes; a token limited to another room learns nothing about
//!   whether the room in the path exists;
//! - two aiortc peers (loopback) join through the WebSocket, the server relays their offers to
//!   the worker and the answers back, and each decrypts the other's canary audio; the first
//!   hears `participant_connected` and `track_published` for the second; REST (and
//!   twilio-python) shows each one's track among the other's `SubscribedTracks`; then the first
//!   hears `participant_disconnected` when REST kicks the second (`Participants/{PA}`
//!   `Status=disconnected`, within 2 s, after REST listed both `connected`), and the kicked one's
//!   track leaves the first's `SubscribedTracks`; completing the room over REST closes the
//!   last socket with 53118 and its participant row.
//!
//! - with `--turn-url`/`--turn-secret-file` configured, `joined` carries the STUN and TURN
//!   servers, the TURN ones with coturn shared-secret credentials named after the participant
//!   (the join page hands them to `RTCPeerConnection`); without, none.
//!
//! Needs `.venv` with twilio-python and aiortc (interop/requirements.txt,
//! interop/rooms/requirements.txt).

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use futures::SinkExt;
use mediaseal_rooms::signal::{ClientMessage, ServerMessage};
use mediaseal_server::room_processes::HostConfig;
use serde_json::Value;
use support::TestApp;
use support::rooms::{Peer, Rig, join, recv, send};
use tokio_tungstenite::tungstenite::Message;

async fn rig() -> Rig {
    Rig::start(HostConfig::new(mediaseal_test_support::room_worker())).await
}

/// Connects to `room`, sends `first`, and returns the code of the `error` that must follow,
/// after checking that the socket then closes.
async fn refused(rig: &Rig, room: &str, first: ClientMessage) -> u32 {
    let mut ws = rig.connect(room).await;
    send(&mut ws, &first).await;
    let code = match recv(&mut ws).await {
        Some(ServerMessage::Error { code, message }) => {
            // Nothing about the room in a refusal: neither its path name nor a SID.
            assert!(!message.contains(room), "{message}");
            assert!(!message.contains("RM"), "{message}");
            code
        }
        other => panic!("expected an error for {room}, got {other:?}"),
    };
    assert_eq!(
        recv(&mut ws).await,
        None,
        "the socket closes after a refusal"
    );
    code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_carry_twilio_codes_and_close_the_socket() {
    let rig = rig().await;
    let sid = rig.create_room(&[("UniqueName", "standup")]).await;
    let tokens = rig.tokens("standup");

    // Anything before join.
    let offer = ClientMessage::Offer { sdp: "v=0".into() };
    assert_eq!(refused(&rig, "standup", offer).await, 53004);
    // Not JSON.
    let mut ws = rig.connect("standup").await;
    ws.send(Message::text("hello")).await.unwrap();
    assert!(matches!(
        recv(&mut ws).await,
        Some(ServerMessage::Error { code: 53004, .. })
    ));
    assert_eq!(recv(&mut ws).await, None);
    // Tokens.
    let garbage = ClientMessage::Join {
        token: "not.a.jwt".into(),
    };
    assert_eq!(refused(&rig, "standup", garbage).await, 20101);
    for (case, code) in [
        ("bad_signature", 20107),
        ("unknown_key", 20107),
        ("expired", 20104),
        ("other_room", 20106),
    ] {
        assert_eq!(
            refused(&rig, "standup", join(&tokens, case)).await,
            code,
            "{case}"
        );
    }
    // A token for one room cannot tell whether another exists; an any-room token is told.
    assert_eq!(
        refused(&rig, "no-such-room", join(&tokens, "other_room")).await,
        20106
    );
    assert_eq!(
        refused(&rig, "no-such-room", join(&tokens, "any_room")).await,
        53106
    );
    assert_eq!(
        refused(
            &rig,
            "RM00000000000000000000000000000000",
            join(&tokens, "any_room")
        )
        .await,
        53106
    );

    // A valid token joins, by UniqueName or SID; then join again is refused but the socket
    // stays, and an answer before any offer is refused too.
    for path in ["standup", sid.as_str()] {
        let mut ws = rig.connect(path).await;
        send(&mut ws, &join(&tokens, "alice")).await;
        match recv(&mut ws).await {
            Some(ServerMessage::Joined {
                room_sid,
                room_name,
                participant,
                participants,
                ice_servers,
            }) => {
                assert!(
                    ice_servers.is_empty(),
                    "no TURN configured: {ice_servers:?}"
                );
                assert_eq!(room_sid, sid);
                assert_eq!(room_name, "standup");
                assert!(participant.sid.starts_with("PA"), "{participant:?}");
                assert_eq!(participant.identity, "alice");
                assert!(participants.is_empty());
            }
            other => panic!("expected joined, got {other:?}"),
        }
        send(&mut ws, &join(&tokens, "alice")).await;
        assert!(matches!(
            recv(&mut ws).await,
            Some(ServerMessage::Error { code: 53004, .. })
        ));
        send(&mut ws, &ClientMessage::Answer { sdp: "v=0".into() }).await;
        assert!(matches!(
            recv(&mut ws).await,
            Some(ServerMessage::Error { code: 53004, .. })
        ));
        // An offer the worker cannot parse: its error is relayed and the join refused.
        send(
            &mut ws,
            &ClientMessage::Offer {
                sdp: "v=0\r\nnot sdp".into(),
            },
        )
        .await;
        match recv(&mut ws).await {
            Some(ServerMessage::Error { code, .. }) => assert_eq!(code, 53403),
            other => panic!("expected the worker's error, got {other:?}"),
        }
        assert_eq!(recv(&mut ws).await, None);
    }

    // A room without a media process (go; peer-to-peer rooms are relayed, room_p2p.rs) and a
    // completed room.
    rig.create_room(&[("UniqueName", "no-media"), ("Type", "go")])
        .await;
    assert_eq!(
        refused(&rig, "no-media", join(&tokens, "any_room")).await,
        53000
    );
    rig.complete_room(&sid).await;
    assert_eq!(refused(&rig, &sid, join(&tokens, "any_room")).await, 53118);
}

/// The parameters of one queued callback.
#[derive(Debug)]
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// The room's queued status callbacks.
async fn room_events(app: &TestApp, sid: &str) -> Vec<Params> {
    let callbacks = app.state.meta.callbacks_for(sid).await.unwrap();
    callbacks
        .iter()
        .map(|c| Params(serde_json::from_str(&c.params).unwrap()))
        .collect()
}

/// Audio frames `report` received from publisher `sid`.
fn audio_frames_from(report: &Value, sid: &str) -> u64 {
    report["tracks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["publisher"] == sid && t["kind"] == "audio")
        .map(|t| t["frames"].as_u64().unwrap_or(0))
        .sum()
}

fn payloads<'a>(report: &'a Value, field: &str) -> HashSet<&'a str> {
    report[field]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_aiortc_peers_join_through_the_websocket_and_hear_each_other() {
    let rig = rig().await;
    let sid = rig
        .create_room(&[
            ("UniqueName", "e2e-room"),
            ("StatusCallback", "http://127.0.0.1:9/rooms"),
        ])
        .await;
    let tokens = rig.tokens("e2e-room");

    let mut alice = Peer::join(&rig, "e2e-room", join(&tokens, "alice"), 0, false).await;
    let mut bob = Peer::join(&rig, &sid, join(&tokens, "bob"), 1, false).await;

    let end = Instant::now() + Duration::from_secs(30);
    let (a, b) = loop {
        let a = alice.report().await;
        let b = bob.report().await;
        if audio_frames_from(&a, &bob.sid) >= 50 && audio_frames_from(&b, &alice.sid) >= 50 {
            break (a, b);
        }
        assert!(
            Instant::now() < end,
            "audio did not flow both ways: alice {} {} | bob {} {}",
            a["state"],
            a["tracks"],
            b["state"],
            b["tracks"]
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // What each decrypted is the canary the other sent.
    for (name, receiver, sender) in [("alice", &a, &b), ("bob", &b, &a)] {
        let got = payloads(receiver, "received_pcmu");
        let sent = payloads(sender, "sent_pcmu");
        assert!(
            got.intersection(&sent).count() >= 20,
            "{name} did not decrypt the other's canary"
        );
    }

    // Alice heard about Bob: connected, and his track.
    let bob_sid = bob.sid.clone();
    alice
        .saw("participant_connected for bob", |m| {
            matches!(m, ServerMessage::ParticipantConnected { participant }
                if participant.sid == bob_sid && participant.identity == "bob")
        })
        .await;
    alice
        .saw("track_published by bob", |m| {
            matches!(m, ServerMessage::TrackPublished { participant_sid, track }
                if *participant_sid == bob_sid && track.sid.starts_with("MT"))
        })
        .await;

    // REST sees both participants connected (the room's recorder follows the worker's events).
    let list = format!("/v1/Rooms/{sid}/Participants");
    let rows = rig
        .list_until(
            &format!("{list}?Status=connected"),
            "participants",
            |rows| rows.len() == 2,
        )
        .await;
    let by_identity = |who: &str| {
        rows.iter()
            .find(|p| p["identity"] == who)
            .unwrap_or_else(|| panic!("no {who} in {rows:?}"))
            .clone()
    };
    assert_eq!(by_identity("alice")["sid"], alice.sid.as_str());
    assert_eq!(by_identity("bob")["sid"], bob_sid.as_str());
    assert_eq!(by_identity("bob")["room_sid"], sid.as_str());
    assert_eq!(by_identity("bob")["duration"], Value::Null);
    // And the track each publishes.
    let bob_tracks = format!("{list}/{bob_sid}/PublishedTracks");
    let tracks = rig
        .list_until(&bob_tracks, "published_tracks", |t| !t.is_empty())
        .await;
    assert_eq!(tracks.len(), 1, "{tracks:?}");
    assert_eq!(tracks[0]["kind"], "audio");
    assert_eq!(tracks[0]["participant_sid"], bob_sid.as_str());
    let track_sid = tracks[0]["sid"].as_str().unwrap().to_owned();
    assert!(track_sid.starts_with("MT"), "{track_sid}");
    let one = rig
        .app
        .get(&format!("{bob_tracks}/{track_sid}"), &rig.creds)
        .await;
    assert_eq!(one.status, StatusCode::OK, "{:?}", one.body);
    assert_eq!(one.json()["enabled"], true);
    // Each receives the other's track: Alice's subscribed tracks hold Bob's, and Bob's hold
    // Alice's (the recorder follows the worker's `track_subscribed`).
    let alice_tracks = rig
        .list_until(
            &format!("{list}/{}/PublishedTracks", alice.sid),
            "published_tracks",
            |t| !t.is_empty(),
        )
        .await;
    let alice_track = alice_tracks[0]["sid"].as_str().unwrap().to_owned();
    for (subscriber, publisher, track) in [
        (&alice.sid, &bob_sid, &track_sid),
        (&bob_sid, &alice.sid, &alice_track),
    ] {
        let url = format!("{list}/{subscriber}/SubscribedTracks");
        let got = rig
            .list_until(&url, "subscribed_tracks", |t| !t.is_empty())
            .await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0]["sid"], track.as_str());
        assert_eq!(got[0]["participant_sid"], subscriber.as_str());
        assert_eq!(got[0]["subscriber_sid"], subscriber.as_str());
        assert_eq!(got[0]["publisher_sid"], publisher.as_str());
        assert_eq!(got[0]["room_sid"], sid.as_str());
        assert_eq!(got[0]["kind"], "audio");
        assert_eq!(got[0]["enabled"], true);
        assert!(
            got[0]["url"]
                .as_str()
                .is_some_and(|u| u.ends_with(&format!("{url}/{track}"))),
            "{got:?}"
        );
        let one = rig.app.get(&format!("{url}/{track}"), &rig.creds).await;
        assert_eq!(one.status, StatusCode::OK, "{:?}", one.body);
        assert_eq!(one.json()["publisher_sid"], publisher.as_str());
    }
    // A participant does not receive its own track.
    let own = rig
        .app
        .get(
            &format!("{list}/{bob_sid}/SubscribedTracks/{track_sid}"),
            &rig.creds,
        )
        .await;
    assert_eq!(own.status, StatusCode::NOT_FOUND, "{:?}", own.body);
    // twilio-python, unchanged, reads the same.
    let seen = rig.twilio_participants(&sid).await;
    assert_eq!(
        seen["participants"].as_array().map(Vec::len),
        Some(2),
        "{seen}"
    );
    assert_eq!(seen["by_identity"]["bob"], bob_sid.as_str(), "{seen}");
    assert_eq!(seen["by_identity"]["alice"], alice.sid.as_str(), "{seen}");
    assert_eq!(
        seen["tracks"]["bob"][0]["sid"],
        track_sid.as_str(),
        "{seen}"
    );
    assert_eq!(seen["tracks"]["bob"][0]["kind"], "audio", "{seen}");
    assert_eq!(
        seen["subscribed"]["alice"][0]["sid"],
        track_sid.as_str(),
        "{seen}"
    );
    assert_eq!(
        seen["subscribed"]["alice"][0]["publisher_sid"],
        bob_sid.as_str(),
        "{seen}"
    );
    assert_eq!(
        seen["subscribed"]["bob"][0]["sid"],
        alice_track.as_str(),
        "{seen}"
    );
    assert_eq!(
        seen["subscribed"]["bob"][0]["participant_sid"],
        bob_sid.as_str(),
        "{seen}"
    );

    // REST kicks Bob: his socket closes and Alice hears it within 2 s; his row is closed.
    let kicked_at = Instant::now();
    let r = rig
        .app
        .post_form(
            &format!("{list}/{bob_sid}"),
            &rig.creds,
            &[("Status", "disconnected")],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.json()["status"], "disconnected");
    assert!(r.json()["duration"].is_i64(), "{:?}", r.body);
    bob.closed().await;
    alice
        .saw("participant_disconnected for bob", |m| {
            matches!(m, ServerMessage::ParticipantDisconnected { participant }
                if participant.sid == bob_sid)
        })
        .await;
    assert!(
        kicked_at.elapsed() < Duration::from_secs(2),
        "the kick took {:?}",
        kicked_at.elapsed()
    );
    let fetched = rig.app.get(&format!("{list}/bob"), &rig.creds).await;
    assert_eq!(fetched.json()["sid"], bob_sid.as_str());
    assert_eq!(fetched.json()["status"], "disconnected");
    assert!(fetched.json()["duration"].as_i64().unwrap() >= 0);
    assert!(fetched.json()["end_time"].is_string());
    let gone = rig
        .app
        .get(&format!("{bob_tracks}/{track_sid}"), &rig.creds)
        .await;
    assert_eq!(
        gone.status,
        StatusCode::NOT_FOUND,
        "a kicked participant publishes nothing"
    );
    // Nobody receives the track of a participant who left. (The recorder closes the row and
    // forgets the subscriptions on one event; the kick's answer may come first.)
    rig.list_until(
        &format!("{list}/{}/SubscribedTracks", alice.sid),
        "subscribed_tracks",
        <[Value]>::is_empty,
    )
    .await;
    let bobs = rig
        .app
        .get(&format!("{list}/{bob_sid}/SubscribedTracks"), &rig.creds)
        .await;
    assert_eq!(bobs.status, StatusCode::OK, "{:?}", bobs.body);
    assert_eq!(
        bobs.json()["subscribed_tracks"],
        serde_json::json!([]),
        "a kicked participant receives nothing"
    );

    // The room completes over REST: Alice is told 53118 and her socket closes.
    rig.complete_room(&sid).await;
    alice.closed().await;
    assert!(
        alice
            .log
            .iter()
            .any(|m| matches!(m, ServerMessage::Error { code: 53118, .. })),
        "{:?}",
        alice.log
    );
    assert!(rig.host.is_empty());
    // The room's end closed Alice's row too.
    rig.list_until(
        &format!("{list}?Status=connected"),
        "participants",
        <[Value]>::is_empty,
    )
    .await;
    let alice_row = rig
        .app
        .get(&format!("{list}/{}", alice.sid), &rig.creds)
        .await;
    assert_eq!(alice_row.json()["status"], "disconnected");

    // The room's status callback heard the participants and their tracks.
    let events = room_events(&rig.app, &sid).await;
    let count = |event: &str, who: &str| {
        events
            .iter()
            .filter(|e| e.get("StatusCallbackEvent") == event && e.get("ParticipantSid") == who)
            .count()
    };
    for who in [&alice.sid, &bob.sid] {
        assert_eq!(count("participant-connected", who), 1, "{events:?}");
        assert_eq!(count("track-added", who), 1, "{events:?}");
    }
    let left = events
        .iter()
        .find(|e| {
            e.get("StatusCallbackEvent") == "participant-disconnected"
                && e.get("ParticipantSid") == bob.sid
        })
        .expect("participant-disconnected for bob");
    assert_eq!(left.get("ParticipantIdentity"), "bob");
    assert!(
        left.get("ParticipantDuration").parse::<u64>().is_ok(),
        "{left:?}"
    );
    let track = events
        .iter()
        .find(|e| e.get("StatusCallbackEvent") == "track-added")
        .unwrap();
    assert_eq!(track.get("TrackKind"), "audio");
    assert!(track.get("TrackSid").starts_with("MT"), "{track:?}");
    for peer in [&mut alice, &mut bob] {
        let _ = peer.commands.send("close").await;
        let _ = tokio::time::timeout(Duration::from_secs(5), peer.child.wait()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joined_carries_turn_credentials_for_the_participant_when_turn_is_configured() {
    use base64::Engine as _;
    const SECRET: &[u8] = b"room-coturn-shared-secret";
    const STUN: &str = "stun:127.0.0.1:3478";
    const TURN: &str = "turn:127.0.0.1:3478?transport=udp";
    let turn = mediaseal_server::TurnConfig::new(
        &[STUN.to_owned(), TURN.to_owned()],
        Some(zeroize::Zeroizing::new(SECRET.to_vec())),
        None,
    )
    .unwrap();
    let rig = Rig::start_with(
        HostConfig::new(mediaseal_test_support::room_worker()),
        |c| c.turn = turn,
    )
    .await;
    rig.create_room(&[("UniqueName", "standup")]).await;
    let tokens = rig.tokens("standup");
    let mut ws = rig.connect("standup").await;
    send(&mut ws, &join(&tokens, "alice")).await;
    let (participant, ice_servers) = match recv(&mut ws).await {
        Some(ServerMessage::Joined {
            participant,
            ice_servers,
            ..
        }) => (participant, ice_servers),
        other => panic!("expected joined, got {other:?}"),
    };
    let urls: Vec<&str> = ice_servers.iter().map(|s| s.urls.as_str()).collect();
    assert_eq!(urls, [STUN, TURN]);
    assert_eq!(
        (&ice_servers[0].username, &ice_servers[0].credential),
        (&None, &None),
        "STUN needs no credentials"
    );
    let username = ice_servers[1].username.clone().expect("a TURN username");
    let (expiry, name) = username.split_once(':').expect("coturn's <expiry>:<name>");
    assert_eq!(name, participant.sid, "named after the participant");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expiry: u64 = expiry.parse().unwrap();
    assert!(
        expiry > now && expiry <= now + 4 * 3600 + 60,
        "short-lived: expires at {expiry}, now {now}"
    );
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, SECRET);
    let expected = base64::engine::general_purpose::STANDARD
        .encode(aws_lc_rs::hmac::sign(&key, username.as_bytes()));
    assert_eq!(
        ice_servers[1].credential.as_deref(),
        Some(expected.as_str())
    );
}
