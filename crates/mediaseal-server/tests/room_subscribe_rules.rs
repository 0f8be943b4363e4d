//! Issue 12, the SubscribeRules resource of group-room participants
//! (`/v1/Rooms/{room}/Participants/{participant}/SubscribeRules`):
//!
//! - through the router, on participant rows written to the store: the default rule and
//!   Twilio's shape, Twilio's checks of malformed rules (53215), unknown participants and
//!   other accounts (20404), peer-to-peer rooms (53122), a disconnected participant (53204), a
//!   room whose process is not on this node (53000);
//! - end to end with two aiortc peers joined through the signalling WebSocket (alice publishes
//!   PCMU audio and VP8 video, bob publishes audio and receives) and twilio-python: excluding
//!   alice's video stops the video packets reaching bob while his audio goes on, and his
//!   SubscribedTracks show only the audio; including everything again brings the video back.
//!
//! The end-to-end test needs `.venv` with twilio-python and aiortc, and the room worker
//! (`MEDIASEAL_TEST_ROOM_WORKER`).

mod support;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use mediaseal_server::room_processes::HostConfig;
use mediaseal_store::model::participants::Participant;
use serde_json::{Value, json};
use support::rooms::{Peer, Rig, join};
use support::{Creds, Resp, TestApp};

const INCLUDE_ALL: &str = r#"[{"type":"include","all":true}]"#;

fn pa(n: u8) -> String {
    format!("PA{n:032x}")
}

fn row(account: &str, room: &str, sid: &str, identity: &str, status: &str) -> Participant {
    let at = 1_780_272_000_000_000;
    Participant {
        sid: sid.to_owned(),
        account_sid: account.to_owned(),
        room_sid: room.to_owned(),
        identity: identity.to_owned(),
        status: status.to_owned(),
        start_time: at,
        end_time: None,
        duration: None,
        date_created: at,
        date_updated: at,
    }
}

fn uri(room: &str, participant: &str) -> String {
    format!("/v1/Rooms/{room}/Participants/{participant}/SubscribeRules")
}

async fn set_rules(app: &TestApp, creds: &Creds, room: &str, who: &str, rules: &str) -> Resp {
    app.post_form(&uri(room, who), creds, &[("Rules", rules)])
        .await
}

fn assert_error(r: &Resp, status: StatusCode, code: u32, says: &str) {
    assert_eq!(r.status, status, "{:?}", r.body);
    let body = r.json();
    assert_eq!(body["code"], code, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{message}");
}

#[tokio::test]
async fn the_resource_has_twilios_shape_and_refuses_what_twilio_refuses() {
    let app = TestApp::new().await;
    let account = app.account().await;
    let creds = Creds::of(&account);
    let r = app
        .post_form("/v1/Rooms", &creds, &[("UniqueName", "sr-shape")])
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let room = r.json()["sid"].as_str().unwrap().to_owned();
    let (alice, bob) = (pa(1), pa(2));
    for p in [
        row(&account.sid, &room, &alice, "alice", "connected"),
        row(&account.sid, &room, &bob, "bob", "disconnected"),
    ] {
        app.state.meta.insert_participant(&p).await.unwrap();
    }

    // The default rule, by SID and by identity, with Twilio's fields and null dates.
    let r = app.get(&uri(&room, &alice), &creds).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let fetched = r.json();
    assert_eq!(
        fetched,
        json!({
            "date_created": null,
            "date_updated": null,
            "participant_sid": alice,
            "room_sid": room,
            "rules": [{"type": "include", "all": true}],
        })
    );
    let by_identity = app.get(&uri("sr-shape", "alice"), &creds).await;
    assert_eq!(by_identity.json(), fetched);

    // Malformed rules: 400 with 53215, naming the rule and the reason.
    for (bad, says) in [
        ("[]", "at least one rule"),
        ("not json", "not valid JSON"),
        (r#"[{"type":"include","all":false}]"#, "only be true"),
        (
            r#"[{"type":"include","all":true},{"type":"exclude","kind":"wideo"}]"#,
            "rule 2: 'kind' must be audio, video or data",
        ),
        (
            r#"[{"type":"include","kind":"audio","kind":"data"}]"#,
            "appears more than once",
        ),
        (
            r#"[{"type":"include","all":true,"kind":"data"}]"#,
            "stand alone",
        ),
        (r#"[{"publisher":"alice"}]"#, "has no 'type'"),
    ] {
        let r = set_rules(&app, &creds, &room, &alice, bad).await;
        assert_error(&r, StatusCode::BAD_REQUEST, 53215, says);
    }
    let many = format!(
        "[{}]",
        vec![r#"{"type":"exclude","all":true}"#; 21].join(",")
    );
    let r = set_rules(&app, &creds, &room, &alice, &many).await;
    assert_error(&r, StatusCode::BAD_REQUEST, 53215, "at most 20");
    let r = app.post_form(&uri(&room, &alice), &creds, &[]).await;
    assert_error(
        &r,
        StatusCode::BAD_REQUEST,
        53215,
        "Rules parameter is missing",
    );

    // Unknown participants, and another account's room, are not found.
    for who in [pa(9), "nobody".to_owned()] {
        let r = app.get(&uri(&room, &who), &creds).await;
        assert_error(&r, StatusCode::NOT_FOUND, 20404, "not found");
        let r = set_rules(&app, &creds, &room, &who, INCLUDE_ALL).await;
        assert_error(&r, StatusCode::NOT_FOUND, 20404, "not found");
    }
    let other = Creds::of(&app.account().await);
    let r = app.get(&uri(&room, &alice), &other).await;
    assert_error(&r, StatusCode::NOT_FOUND, 20404, "not found");
    let r = set_rules(&app, &other, &room, &alice, INCLUDE_ALL).await;
    assert_error(&r, StatusCode::NOT_FOUND, 20404, "not found");

    // A disconnected participant takes no rules; a connected one needs its room's process,
    // which this server (rows only) does not run.
    let r = set_rules(&app, &creds, &room, &bob, INCLUDE_ALL).await;
    assert_error(&r, StatusCode::BAD_REQUEST, 53204, "disconnected");
    let r = set_rules(&app, &creds, &room, &alice, INCLUDE_ALL).await;
    assert_error(
        &r,
        StatusCode::SERVICE_UNAVAILABLE,
        53000,
        "not running on this node",
    );
    let r = app.get(&uri(&room, &alice), &creds).await;
    assert_eq!(r.json(), fetched, "a refused update changes nothing");

    // Peer-to-peer rooms: media never passes through mediaseal.
    let r = app
        .post_form("/v1/Rooms", &creds, &[("Type", "peer-to-peer")])
        .await;
    let p2p = r.json()["sid"].as_str().unwrap().to_owned();
    let carol = pa(3);
    app.state
        .meta
        .insert_participant(&row(&account.sid, &p2p, &carol, "carol", "connected"))
        .await
        .unwrap();
    let r = app.get(&uri(&p2p, &carol), &creds).await;
    assert_error(
        &r,
        StatusCode::BAD_REQUEST,
        53122,
        "only available in group rooms",
    );
    let r = set_rules(&app, &creds, &p2p, &carol, INCLUDE_ALL).await;
    assert_error(
        &r,
        StatusCode::BAD_REQUEST,
        53122,
        "only available in group rooms",
    );
}

/// Sets (when `rules` is some) and reads `participant`'s rules with twilio-python
/// (`tests/interop/subscribe_rules.py`).
async fn twilio_rules(rig: &Rig, room: &str, participant: &str, rules: Option<Value>) -> Value {
    rig.twilio_script(
        "subscribe_rules.py",
        json!({ "room": room, "participant": participant, "rules": rules }),
    )
    .await
}

/// RTP packets bob decrypted so far, per kind.
fn packets(report: &Value, kind: &str) -> u64 {
    report["received_rtp"][kind].as_u64().unwrap_or(0)
}

/// Frames decoded from `publisher`'s tracks of `kind`, over every m-line they came on.
fn frames_from(report: &Value, publisher: &str, kind: &str) -> u64 {
    report["tracks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["publisher"] == publisher && t["kind"] == kind)
        .filter_map(|t| t["frames"].as_u64())
        .sum()
}

/// Polls bob's reports (up to 30 s) until `done` holds.
async fn report_until(peer: &mut Peer, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let report = peer.report().await;
        if done(&report) {
            return report;
        }
        assert!(
            Instant::now() < end,
            "{what}: {} {}",
            report["received_rtp"],
            report["tracks"]
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn kinds(rows: &[Value]) -> Vec<String> {
    let mut kinds: Vec<String> = rows
        .iter()
        .filter_map(|t| t["kind"].as_str().map(str::to_owned))
        .collect();
    kinds.sort_unstable();
    kinds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_change_what_a_subscriber_receives_live() {
    let rig = Rig::start(HostConfig::new(mediaseal_test_support::room_worker())).await;
    let name = "subscribe-rules-live";
    let room = rig.create_room(&[("UniqueName", name)]).await;
    let tokens = rig.tokens(name);
    let alice = Peer::join(&rig, name, join(&tokens, "alice"), 0, true).await;
    let mut bob = Peer::join(&rig, name, join(&tokens, "bob"), 1, false).await;
    let alice_sid = alice.sid.clone();

    // By default bob receives alice's audio and video.
    report_until(&mut bob, "bob never decoded alice's audio and video", |r| {
        frames_from(r, &alice_sid, "audio") >= 25 && frames_from(r, &alice_sid, "video") >= 10
    })
    .await;
    let subscribed = format!("/v1/Rooms/{room}/Participants/{}/SubscribedTracks", bob.sid);
    let rows = rig
        .list_until(&subscribed, "subscribed_tracks", |rows| rows.len() == 2)
        .await;
    assert_eq!(kinds(&rows), ["audio", "video"]);
    let fresh = twilio_rules(&rig, &room, &bob.sid, None).await;
    assert_eq!(
        fresh["fetched"]["rules"],
        json!([{"type": "include", "all": true}]),
        "{fresh}"
    );

    // Alice's video out (by her identity), the rest in.
    let no_video = json!([
        {"type": "include", "all": true},
        {"type": "exclude", "publisher": "alice", "kind": "video"}
    ]);
    let set = twilio_rules(&rig, &room, "bob", Some(no_video.clone())).await;
    assert_eq!(set["updated"]["rules"], no_video, "{set}");
    assert_eq!(set["updated"]["participant_sid"], bob.sid.as_str(), "{set}");
    assert_eq!(set["updated"]["room_sid"], room.as_str(), "{set}");
    assert!(set["updated"]["date_created"].is_string(), "{set}");
    assert_eq!(set["fetched"], set["updated"]);
    let rows = rig
        .list_until(&subscribed, "subscribed_tracks", |rows| rows.len() == 1)
        .await;
    assert_eq!(kinds(&rows), ["audio"], "{rows:?}");
    assert_eq!(rows[0]["publisher_sid"], alice_sid.as_str());
    // The room renegotiated: its offer stopped the video m-line.
    bob.saw("a room offer", |m| {
        matches!(m, mediaseal_rooms::signal::ServerMessage::Offer { .. })
    })
    .await;
    // No video packet reaches bob any more; audio keeps coming.
    let before = bob.report().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = bob.report().await;
    assert_eq!(
        packets(&after, "video"),
        packets(&before, "video"),
        "video kept coming after it was excluded: {} then {}",
        before["received_rtp"],
        after["received_rtp"]
    );
    assert!(
        packets(&after, "audio") >= packets(&before, "audio") + 25,
        "audio stopped too: {} then {}",
        before["received_rtp"],
        after["received_rtp"]
    );

    // Everything in again: the video comes back on a new m-line.
    let set = twilio_rules(
        &rig,
        &room,
        &bob.sid,
        Some(json!([{"type": "include", "all": true}])),
    )
    .await;
    assert_eq!(
        set["fetched"]["rules"],
        json!([{"type": "include", "all": true}])
    );
    assert_ne!(
        set["fetched"]["date_updated"], set["fetched"]["date_created"],
        "{set}"
    );
    let rows = rig
        .list_until(&subscribed, "subscribed_tracks", |rows| rows.len() == 2)
        .await;
    assert_eq!(kinds(&rows), ["audio", "video"]);
    let video_before = packets(&after, "video");
    let frames_before = frames_from(&after, &alice_sid, "video");
    report_until(&mut bob, "alice's video never came back", |r| {
        packets(r, "video") >= video_before + 30
            && frames_from(r, &alice_sid, "video") >= frames_before + 10
    })
    .await;
    rig.complete_room(&room).await;
    drop(alice);
}
