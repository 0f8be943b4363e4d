//! Issue 12, the RecordingRules resource of group rooms (`/v1/Rooms/{room}/RecordingRules`):
//!
//! - its shape (`room_sid`, `date_created`, `date_updated`, `rules`), the rules a room starts
//!   with (from `RecordParticipantsOnConnect`), Twilio's checks of malformed rules (53120), and
//!   the refusal for peer-to-peer rooms (53122), through the router;
//! - end to end with an aiortc publisher (Opus tone + VP8, through WHIP) and twilio-python: a
//!   room created without recording records nothing; "include all" starts an `RT…` per track;
//!   excluding video completes the video recording while audio goes on; including it again
//!   starts a second video recording of the same track; every recording completes with sealed
//!   content (at rest, served decrypted as Matroska ffmpeg decodes), each with its
//!   `recording-started` and `recording-completed` callbacks.
//!
//! - `RecordingRules` on room creation: checked like the resource's (53120; 53122 for
//!   peer-to-peer rooms), shown by the resource from the start, in place of the rules
//!   `RecordParticipantsOnConnect` would give;
//! - end to end, a room created with rules that exclude video, a webhook receiver behind the
//!   outbox and an aiortc publisher: only its audio is recorded; the `RT…` is listed
//!   `processing` (no media yet, not deletable) while the publisher is connected, and its
//!   `recording-started` reaches the receiver before the publisher leaves; after it leaves,
//!   the recording is `completed` and `recording-completed` follows with its duration and size.
//!
//! The end-to-end tests need `.venv` with twilio-python and aiortc, and ffprobe.

#[path = "video_shared.rs"]
mod shared;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use mediaseal_server::room_processes::HostConfig;
use serde_json::{Value, json};
use shared::support::rooms::Rig;
use shared::support::whip::Publisher;
use shared::support::{Creds, TestApp};

const INCLUDE_ALL: &str = r#"[{"type":"include","all":true}]"#;

async fn rules_of(app: &TestApp, creds: &Creds, room: &str) -> Value {
    let r = app
        .get(&format!("/v1/Rooms/{room}/RecordingRules"), creds)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.json()
}

async fn set_rules(app: &TestApp, creds: &Creds, room: &str, rules: &str) -> shared::support::Resp {
    app.post_form(
        &format!("/v1/Rooms/{room}/RecordingRules"),
        creds,
        &[("Rules", rules)],
    )
    .await
}

#[tokio::test]
async fn the_resource_has_twilios_shape_and_refuses_malformed_rules() {
    let app = TestApp::new().await;
    let account = app.account().await;
    let creds = Creds::of(&account);
    let create = |pairs: Vec<(&'static str, &'static str)>| {
        let app = &app;
        let creds = &creds;
        async move {
            let r = app.post_form("/v1/Rooms", creds, &pairs).await;
            assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
            r.json()
        }
    };
    let quiet = create(vec![("UniqueName", "rules-quiet")]).await;
    let quiet_sid = quiet["sid"].as_str().unwrap().to_owned();
    let recorded = create(vec![("RecordParticipantsOnConnect", "true")]).await;
    let recorded_sid = recorded["sid"].as_str().unwrap();

    // The rules a room starts with, dated like the room.
    let fresh = rules_of(&app, &creds, &quiet_sid).await;
    assert_eq!(fresh["room_sid"], quiet_sid.as_str());
    assert_eq!(fresh["rules"], json!([]), "{fresh}");
    assert_eq!(fresh["date_created"], quiet["date_created"]);
    assert_eq!(
        rules_of(&app, &creds, recorded_sid).await["rules"],
        json!([{"type": "include", "all": true}])
    );
    // The unique name addresses the room too.
    assert_eq!(
        rules_of(&app, &creds, "rules-quiet").await["room_sid"],
        quiet_sid.as_str()
    );

    let rules = r#"[{"type":"include","publisher":"alice","kind":"audio"},{"type":"exclude","track":"screen"}]"#;
    let r = set_rules(&app, &creds, &quiet_sid, rules).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let set = r.json();
    let mut keys: Vec<&str> = set
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["date_created", "date_updated", "room_sid", "rules"],
        "{set}"
    );
    assert_eq!(
        set["rules"],
        json!([
            {"type": "include", "publisher": "alice", "kind": "audio"},
            {"type": "exclude", "track": "screen"}
        ])
    );
    assert!(
        set["date_updated"]
            .as_str()
            .is_some_and(|d| d.ends_with('Z') && d.len() == 20),
        "{set}"
    );
    assert_eq!(rules_of(&app, &creds, &quiet_sid).await, set);

    // Malformed rules: 400 with 53120, naming the rule and the reason; nothing changes.
    for (bad, says) in [
        ("[]", "at least one rule"),
        ("not json", "not valid JSON"),
        (r#"{"type":"include","all":true}"#, "JSON array"),
        (r#"[{"all":true}]"#, "rule 1: has no 'type'"),
        (
            r#"[{"type":"include","all":true},{"type":"maybe","all":true}]"#,
            "rule 2:",
        ),
        (r#"[{"type":"include","kind":"data"}]"#, "audio or video"),
        (
            r#"[{"type":"include","all":true,"kind":"video"}]"#,
            "stand alone",
        ),
        (r#"[{"type":"include","all":"true"}]"#, "only be true"),
        (r#"[{"type":"exclude"}]"#, "needs a filter"),
        (r#"[{"type":"include","room":"x"}]"#, "'room'"),
    ] {
        let r = set_rules(&app, &creds, &quiet_sid, bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", r.body);
        let body = r.json();
        assert_eq!(body["code"], 53120, "{bad}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{bad}: {message}");
    }
    let many = format!(
        "[{}]",
        vec![r#"{"type":"include","all":true}"#; 21].join(",")
    );
    let r = set_rules(&app, &creds, &quiet_sid, &many).await;
    assert_eq!(r.json()["code"], 53120, "{:?}", r.body);
    let r = app
        .post_form(
            &format!("/v1/Rooms/{quiet_sid}/RecordingRules"),
            &creds,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("Rules parameter is missing")),
        "{:?}",
        r.body
    );
    assert_eq!(rules_of(&app, &creds, &quiet_sid).await, set);

    // Peer-to-peer rooms record nothing: 53122, for reading and for writing.
    let p2p = create(vec![("Type", "peer-to-peer")]).await;
    let p2p_sid = p2p["sid"].as_str().unwrap();
    let r = set_rules(&app, &creds, p2p_sid, INCLUDE_ALL).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.json()["code"], 53122);
    let r = app
        .get(&format!("/v1/Rooms/{p2p_sid}/RecordingRules"), &creds)
        .await;
    assert_eq!(r.json()["code"], 53122, "{:?}", r.body);

    // Another account's room is not found; a completed room keeps its rules but takes no new
    // ones.
    let other = Creds::of(&app.account().await);
    let r = app
        .get(&format!("/v1/Rooms/{quiet_sid}/RecordingRules"), &other)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = set_rules(&app, &other, &quiet_sid, INCLUDE_ALL).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = shared::complete_room(&app, &creds, &quiet_sid).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let r = set_rules(&app, &creds, &quiet_sid, INCLUDE_ALL).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert!(
        r.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("in progress")),
        "{:?}",
        r.body
    );
    assert_eq!(
        rules_of(&app, &creds, &quiet_sid).await["rules"],
        set["rules"]
    );
}

/// Sets (when `rules` is some) and reads the room's rules with twilio-python
/// (`tests/interop/recording_rules.py`).
async fn twilio_rules(rig: &Rig, room: &str, rules: Option<Value>) -> Value {
    rig.twilio_script(
        "recording_rules.py",
        json!({ "room": room, "rules": rules }),
    )
    .await
}

/// The `StatusCallbackEvent`s queued for recording `sid`.
async fn recording_events(rig: &Rig, sid: &str) -> Vec<String> {
    let callbacks = rig.app.state.meta.callbacks_for(sid).await.unwrap();
    callbacks
        .iter()
        .filter_map(|c| {
            let params: Vec<(String, String)> = serde_json::from_str(&c.params).unwrap();
            params
                .into_iter()
                .find(|(k, _)| k == "StatusCallbackEvent")
                .map(|(_, v)| v)
        })
        .collect()
}

/// The plaintext of a recording sealed at rest (served decrypted), checked as Matroska of its
/// codec; how many seconds ffmpeg decodes of it.
async fn decoded(rig: &Rig, dir: &std::path::Path, rec: &Value) -> f64 {
    let sid = rec["sid"].as_str().unwrap();
    let url = shared::media_url(&rig.app, &rig.creds, &format!("/v1/Recordings/{sid}/Media")).await;
    let got = shared::fetch(&rig.app, &url, &[]).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(&got.body[..4], &[0x1a, 0x45, 0xdf, 0xa3], "{sid}: not EBML");
    let file = dir.join(format!(
        "{sid}.{}",
        rec["container_format"].as_str().unwrap()
    ));
    std::fs::write(&file, &got.body).unwrap();
    shared::decoded_seconds(&file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_start_and_stop_track_recordings_of_a_live_room() {
    shared::require("ffprobe", &["-version"]);
    let rig = Rig::start(HostConfig::new(mediaseal_test_support::room_worker())).await;
    let name = "rules-live";
    let room = rig
        .create_room(&[
            ("UniqueName", name),
            ("StatusCallback", "http://127.0.0.1:9/rooms"),
        ])
        .await;
    let tokens = rig.tokens(name);
    let token = tokens["alice"].as_str().expect("a token for alice");
    let whip = format!("http://{}/v1/Rooms/{name}/Whip", rig.addr);
    let publisher = Publisher::start(&whip, token).await;
    assert_eq!(publisher.posted["status"], 201, "{}", publisher.posted);
    let alice = publisher.posted["location"]
        .as_str()
        .and_then(|l| l.rsplit('/').next())
        .expect("a Location")
        .to_owned();
    // The participant's row comes with its connection: poll through the first 404s.
    let deadline = Instant::now() + Duration::from_secs(20);
    let tracks = loop {
        let r = rig
            .app
            .get(
                &format!("/v1/Rooms/{room}/Participants/{alice}/PublishedTracks"),
                &rig.creds,
            )
            .await;
        let tracks = r.json()["published_tracks"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if r.status == StatusCode::OK && tracks.len() == 2 {
            break tracks;
        }
        assert!(
            Instant::now() < deadline,
            "alice never published two tracks"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let video_track = tracks
        .iter()
        .find(|t| t["kind"] == "video")
        .and_then(|t| t["sid"].as_str())
        .expect("a video track")
        .to_owned();

    // Media flows, the room records nothing: no rule includes anything.
    let before = twilio_rules(&rig, &room, None).await;
    assert_eq!(before["fetched"]["rules"], json!([]), "{before}");
    tokio::time::sleep(Duration::from_secs(1)).await;

    let all = twilio_rules(&rig, &room, Some(json!([{"type": "include", "all": true}]))).await;
    assert_eq!(all["updated"]["room_sid"], room.as_str(), "{all}");
    assert_eq!(
        all["updated"]["rules"],
        json!([{"type": "include", "all": true}])
    );
    assert_eq!(all["fetched"], all["updated"]);
    let included = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Video out: its recording completes while the room and the audio recording go on.
    let no_video = json!([{"type": "include", "all": true}, {"type": "exclude", "kind": "video"}]);
    let set = twilio_rules(&rig, &room, Some(no_video.clone())).await;
    assert_eq!(set["fetched"]["rules"], no_video, "{set}");
    let video_for = included.elapsed().as_secs_f64();
    let listed = rig
        .list_within(
            &format!("/v1/Rooms/{room}/Recordings"),
            "recordings",
            Duration::from_secs(10),
            |r| r.iter().any(|x| x["status"] == "completed"),
        )
        .await;
    let finished: Vec<&Value> = listed
        .iter()
        .filter(|x| x["status"] == "completed")
        .collect();
    assert_eq!(
        finished.len(),
        1,
        "only the video recording completed: {listed:?}"
    );
    let video = finished[0].clone();
    // The audio recording goes on, visible as it records.
    assert!(
        listed
            .iter()
            .any(|x| x["type"] == "audio" && x["status"] == "processing"),
        "{listed:?}"
    );
    assert_eq!(video["type"], "video", "{video}");
    assert_eq!(video["status"], "completed", "{video}");
    assert_eq!(video["source_sid"], video_track.as_str(), "{video}");
    assert_eq!(video["codec"], "vp8", "{video}");
    let r = rig.app.get(&format!("/v1/Rooms/{room}"), &rig.creds).await;
    assert_eq!(r.json()["status"], "in-progress");

    // Video back in: a new recording of the same track, from its next keyframe.
    tokio::time::sleep(Duration::from_secs(1)).await;
    twilio_rules(&rig, &room, Some(json!([{"type": "include", "all": true}]))).await;
    let reincluded = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    rig.complete_room(&room).await;
    let audio_for = included.elapsed().as_secs_f64();
    let video_again_for = reincluded.elapsed().as_secs_f64();
    drop(publisher);
    let recordings = rig
        .list_until(&format!("/v1/Rooms/{room}/Recordings"), "recordings", |r| {
            r.len() == 3 && r.iter().all(|x| x["status"] == "completed")
        })
        .await;
    let audio = recordings
        .iter()
        .find(|r| r["type"] == "audio")
        .unwrap_or_else(|| panic!("no audio recording in {recordings:?}"))
        .clone();
    assert_eq!(audio["codec"], "opus", "{audio}");
    let video_again = recordings
        .iter()
        .find(|r| r["type"] == "video" && r["sid"] != video["sid"])
        .unwrap_or_else(|| panic!("no second video recording in {recordings:?}"))
        .clone();
    assert_eq!(
        video_again["source_sid"],
        video_track.as_str(),
        "{video_again}"
    );

    let dir = tempfile::tempdir().unwrap();
    let video_secs = decoded(&rig, dir.path(), &video).await;
    let again_secs = decoded(&rig, dir.path(), &video_again).await;
    let audio_secs = decoded(&rig, dir.path(), &audio).await;
    eprintln!(
        "video decoded {video_secs} s (recorded for {video_for:.2} s), then {again_secs} s \
         (recorded for {video_again_for:.2} s); audio {audio_secs} s (recorded for \
         {audio_for:.2} s)"
    );
    // Each video recording covers only its own stretch of "include"; audio ran from the first
    // "include all" to the room's end, across the second or more video was out.
    for (secs, within) in [(video_secs, video_for), (again_secs, video_again_for)] {
        assert!(
            secs >= 1.0 && secs <= within + 0.5,
            "a video recording of {secs} s for {within:.2} s included"
        );
    }
    assert!(audio_secs <= audio_for + 0.5, "{audio_secs} s");
    assert!(
        audio_secs >= video_secs + again_secs + 0.5,
        "audio ({audio_secs} s) went on while video ({video_secs} s + {again_secs} s) was out"
    );
    for rec in [&video, &video_again, &audio] {
        let sid = rec["sid"].as_str().unwrap();
        let events = recording_events(&rig, sid).await;
        assert_eq!(
            events,
            ["recording-started", "recording-completed"],
            "{sid}"
        );
    }
}

#[tokio::test]
async fn rooms_can_be_created_with_recording_rules() {
    let app = TestApp::new().await;
    let account = app.account().await;
    let creds = Creds::of(&account);
    let audio_only = r#"[{"type":"include","all":true},{"type":"exclude","kind":"video"}]"#;

    // Group rooms take them; the resource shows them from the start, dated like the room, even
    // when RecordParticipantsOnConnect asked for everything.
    for extra in [None, Some(("RecordParticipantsOnConnect", "true"))] {
        let mut form = vec![("RecordingRules", audio_only)];
        form.extend(extra);
        let r = app.post_form("/v1/Rooms", &creds, &form).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let room = r.json();
        let sid = room["sid"].as_str().unwrap();
        let rules = rules_of(&app, &creds, sid).await;
        assert_eq!(
            rules["rules"],
            json!([{"type": "include", "all": true}, {"type": "exclude", "kind": "video"}]),
            "{extra:?}: {rules}"
        );
        assert_eq!(rules["date_created"], room["date_created"], "{rules}");
        assert_eq!(rules["date_updated"], room["date_created"], "{rules}");
    }

    // Malformed rules: Twilio's 53120 with the rule at fault, as for the resource; no room.
    let before = app.get("/v1/Rooms", &creds).await.json()["rooms"]
        .as_array()
        .map_or(0, Vec::len);
    for (bad, says) in [
        ("[]", "at least one rule"),
        ("not json", "not valid JSON"),
        (r#"[{"type":"include","kind":"data"}]"#, "audio or video"),
    ] {
        let r = app
            .post_form("/v1/Rooms", &creds, &[("RecordingRules", bad)])
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", r.body);
        let body = r.json();
        assert_eq!(body["code"], 53120, "{bad}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("Invalid Recording Rule(s): ") && message.contains(says),
            "{bad}: {message}"
        );
    }
    // Peer-to-peer rooms record nothing: 53122, as for the resource.
    let r = app
        .post_form(
            "/v1/Rooms",
            &creds,
            &[("Type", "peer-to-peer"), ("RecordingRules", INCLUDE_ALL)],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.json()["code"], 53122, "{:?}", r.body);
    let after = app.get("/v1/Rooms", &creds).await.json()["rooms"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(after, before, "a refused creation made a room");
}

/// One delivered webhook: its form parameters.
type Delivered = Arc<Mutex<Vec<Vec<(String, String)>>>>;

/// A webhook receiver on loopback that keeps the form of every request and answers 204.
async fn webhook_receiver() -> (String, Delivered) {
    let seen: Delivered = Arc::default();
    let keep = seen.clone();
    let router = axum::Router::new().route(
        "/rooms",
        axum::routing::post(move |body: axum::body::Bytes| {
            let keep = keep.clone();
            async move {
                let params = form_urlencoded::parse(&body).into_owned().collect();
                keep.lock().unwrap().push(params);
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/rooms", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, seen)
}

/// The value of `key` in one delivered form.
fn param<'a>(form: &'a [(String, String)], key: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Waits (up to 20 s) for the receiver to get `event` about recording `sid`.
async fn delivered(seen: &Delivered, event: &str, sid: &str) -> Vec<(String, String)> {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let hit = seen
            .lock()
            .unwrap()
            .iter()
            .find(|form| {
                param(form, "StatusCallbackEvent") == Some(event)
                    && param(form, "RecordingSid") == Some(sid)
            })
            .cloned();
        if let Some(form) = hit {
            return form;
        }
        assert!(
            Instant::now() < end,
            "{event} for {sid} never arrived; got {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_created_with_rules_records_them_visibly_from_the_start() {
    shared::require("ffprobe", &["-version"]);
    let rig = Rig::start_with(
        HostConfig::new(mediaseal_test_support::room_worker()),
        |c| c.service.callback_poll = Duration::from_millis(50),
    )
    .await;
    let (hook, seen) = webhook_receiver().await;
    let mut jobs = mediaseal_service::runner::Runner::new();
    let services = rig.app.state.services.clone();
    jobs.spawn("outbox", move |cancel| {
        mediaseal_service::outbox::run(services, cancel)
    });
    let name = "rules-at-creation";
    let room = rig
        .create_room(&[
            ("UniqueName", name),
            ("StatusCallback", &hook),
            (
                "RecordingRules",
                r#"[{"type":"include","all":true},{"type":"exclude","kind":"video"}]"#,
            ),
        ])
        .await;
    let tokens = rig.tokens(name);
    let token = tokens["alice"].as_str().expect("a token for alice");
    let whip = format!("http://{}/v1/Rooms/{name}/Whip", rig.addr);
    let publisher = Publisher::start(&whip, token).await;
    assert_eq!(publisher.posted["status"], 201, "{}", publisher.posted);
    let alice = publisher.posted["location"]
        .as_str()
        .and_then(|l| l.rsplit('/').next())
        .expect("a Location")
        .to_owned();

    // While alice publishes: her audio is being recorded, visible as `processing`.
    let live = rig
        .list_within(
            &format!("/v1/Rooms/{room}/Recordings"),
            "recordings",
            Duration::from_secs(20),
            |r| !r.is_empty(),
        )
        .await;
    assert_eq!(live.len(), 1, "only the audio track is recorded: {live:?}");
    let rec = live[0].clone();
    let rt = rec["sid"].as_str().unwrap().to_owned();
    assert_eq!(rec["status"], "processing", "{rec}");
    assert_eq!(rec["type"], "audio", "{rec}");
    assert_eq!(rec["codec"], "opus", "{rec}");
    assert_eq!(rec["size"], 0, "{rec}");
    assert_eq!(
        rec["grouping_sids"]["participant_sid"],
        alice.as_str(),
        "{rec}"
    );
    // The same through the account's list and the recording itself.
    let r = rig
        .app
        .get(&format!("/v1/Recordings/{rt}"), &rig.creds)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.json()["status"], "processing");
    let r = rig
        .app
        .get("/v1/Recordings?Status=processing", &rig.creds)
        .await;
    assert!(
        r.json()["recordings"]
            .as_array()
            .is_some_and(|l| l.iter().any(|x| x["sid"] == rt.as_str())),
        "{:?}",
        r.body
    );
    // No media yet (never part of one), and it cannot be deleted mid-recording.
    for path in [
        format!("/v1/Recordings/{rt}/Media"),
        format!("/v1/Rooms/{room}/Recordings/{rt}/Media"),
    ] {
        let r = rig.app.get(&path, &rig.creds).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {:?}", r.body);
        let message = r.json()["message"].as_str().unwrap_or_default().to_owned();
        assert!(message.contains("still being recorded"), "{message}");
    }
    let r = rig
        .app
        .delete(&format!("/v1/Recordings/{rt}"), &rig.creds)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);

    // `recording-started` reaches the room's status callback while alice is still connected.
    let started = delivered(&seen, "recording-started", &rt).await;
    assert_eq!(param(&started, "RoomSid"), Some(room.as_str()));
    assert_eq!(param(&started, "ParticipantSid"), Some(alice.as_str()));
    assert_eq!(param(&started, "Type"), Some("audio"));
    let r = rig
        .app
        .get(
            &format!("/v1/Rooms/{room}/Participants/{alice}"),
            &rig.creds,
        )
        .await;
    assert_eq!(r.json()["status"], "connected", "{:?}", r.body);
    assert_eq!(
        rig.app
            .get(&format!("/v1/Recordings/{rt}"), &rig.creds)
            .await
            .json()["status"],
        "processing"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Alice leaves (WHIP DELETE): her track ends and its recording completes.
    let left = reqwest::Client::new()
        .delete(format!("http://{}/v1/Rooms/{name}/Whip/{alice}", rig.addr))
        .bearer_auth(token)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(left.status(), StatusCode::OK);
    drop(publisher);
    let done = rig
        .list_within(
            &format!("/v1/Rooms/{room}/Recordings"),
            "recordings",
            Duration::from_secs(20),
            |r| r.iter().all(|x| x["status"] != "processing"),
        )
        .await;
    assert_eq!(done.len(), 1, "{done:?}");
    let rec = done[0].clone();
    assert_eq!(rec["sid"], rt.as_str());
    assert_eq!(rec["status"], "completed", "{rec}");
    assert!(rec["size"].as_i64().is_some_and(|n| n > 0), "{rec}");
    let completed = delivered(&seen, "recording-completed", &rt).await;
    assert_eq!(
        param(&completed, "Size"),
        Some(rec["size"].to_string().as_str())
    );
    assert!(
        param(&completed, "Duration").is_some_and(|d| d.parse::<i64>().is_ok_and(|d| d >= 1)),
        "{completed:?}"
    );
    // Each event once, started first.
    let events: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|f| param(f, "RecordingSid") == Some(rt.as_str()))
        .filter_map(|f| param(f, "StatusCallbackEvent").map(str::to_owned))
        .collect();
    assert_eq!(events, ["recording-started", "recording-completed"]);
    let dir = tempfile::tempdir().unwrap();
    let secs = decoded(&rig, dir.path(), &rec).await;
    assert!(secs >= 1.0, "the audio recording decodes to {secs} s");
    rig.complete_room(&room).await;
}
