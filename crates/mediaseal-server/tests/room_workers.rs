//! Issue 12, the room supervisor: a group room created through REST owns a hardened
//! `mediaseal-room-worker` process; `Status=completed` ends it within 2 s; `kill -9` of the
//! worker makes that room `failed` (with its `room-ended` callback) while another room's worker
//! runs on; peer-to-peer rooms start nothing; the per-node cap refuses with 53103. A room's
//! `UnusedRoomTimeout` reaches its worker, which ends the room itself: the room completes as by
//! REST. Rooms a dead predecessor of this node left in progress become `failed` at start.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use mediaseal_server::room_processes::{
    HostConfig, RoomHost, fail_abandoned_rooms, install_room_host,
};
use support::{Creds, TestApp};

async fn app_with_rooms(max_rooms: usize) -> (TestApp, RoomHost) {
    let app = TestApp::new().await;
    let mut config = HostConfig::new(mediaseal_test_support::room_worker());
    config.max_rooms = max_rooms;
    let host = install_room_host(&app.state, config).expect("first room host");
    (app, host)
}

/// `/proc/PID/status` of a live (not zombie) process.
fn live_status(pid: u32) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let state = status.lines().find(|l| l.starts_with("State:"))?;
    (!state.contains('Z') && !state.contains('X')).then_some(status)
}

async fn create_room(app: &TestApp, creds: &Creds, form: &[(&str, &str)]) -> String {
    let r = app.post_form("/v1/Rooms", creds, form).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.json()["sid"].as_str().unwrap().to_owned()
}

async fn room_status(app: &TestApp, creds: &Creds, sid: &str) -> String {
    let r = app.get(&format!("/v1/Rooms/{sid}"), creds).await;
    assert_eq!(r.status, StatusCode::OK);
    r.json()["status"].as_str().unwrap().to_owned()
}

/// (StatusCallbackEvent, RoomStatus) of the room's queued callbacks.
async fn room_events(app: &TestApp, sid: &str) -> Vec<(String, String)> {
    let callbacks = app.state.meta.callbacks_for(sid).await.unwrap();
    callbacks
        .iter()
        .map(|c| {
            let params: Vec<(String, String)> = serde_json::from_str(&c.params).unwrap();
            let get = |k: &str| {
                params
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            (get("StatusCallbackEvent"), get("RoomStatus"))
        })
        .collect()
}

fn kill_9(pid: u32) {
    let killed = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
}

#[tokio::test]
async fn a_rest_group_room_owns_a_hardened_worker_until_it_completes() {
    let (app, host) = app_with_rooms(4).await;
    let a = app.account().await;
    let ca = Creds::of(&a);
    let sid = create_room(
        &app,
        &ca,
        &[
            ("UniqueName", "standup"),
            ("StatusCallback", "http://127.0.0.1:9/rooms"),
        ],
    )
    .await;

    let pid = host.pid(&sid).expect("the room has a worker");
    let status = live_status(pid).expect("the worker runs");
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    assert!(
        status.contains(&format!("PPid:\t{}", std::process::id())),
        "a child of the server: {status}"
    );
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline);
    assert!(
        cmdline.contains("mediaseal-room-worker") && cmdline.contains(&sid),
        "{cmdline}"
    );

    // A second room with the same name in progress is refused before any process starts.
    let r = app
        .post_form("/v1/Rooms", &ca, &[("UniqueName", "standup")])
        .await;
    assert_eq!(r.json()["code"], 53113);
    assert_eq!(host.len(), 1);

    let asked = Instant::now();
    let r = app
        .post_form(&format!("/v1/Rooms/{sid}"), &ca, &[("Status", "completed")])
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.json()["status"], "completed");
    while live_status(pid).is_some() {
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "worker {pid} still runs 2 s after Status=completed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(host.pid(&sid), None);
    // The worker's exit report must not turn the completed room into a failed one.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(room_status(&app, &ca, &sid).await, "completed");
    assert_eq!(
        room_events(&app, &sid).await,
        [
            ("room-created".to_owned(), "in-progress".to_owned()),
            ("room-ended".to_owned(), "completed".to_owned())
        ]
    );
}

#[tokio::test]
async fn a_killed_worker_fails_its_room_and_no_other() {
    let (app, host) = app_with_rooms(4).await;
    let a = app.account().await;
    let ca = Creds::of(&a);
    let callback = [("StatusCallback", "http://127.0.0.1:9/rooms")];
    let room_a = create_room(&app, &ca, &callback).await;
    let room_b = create_room(&app, &ca, &[("Type", "group-small")]).await;
    let (pid_a, pid_b) = (host.pid(&room_a).unwrap(), host.pid(&room_b).unwrap());
    assert_ne!(pid_a, pid_b, "one process per room");

    kill_9(pid_a);
    let killed = Instant::now();
    while room_status(&app, &ca, &room_a).await != "failed" {
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "room A is not failed 5 s after its worker was killed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = app.get(&format!("/v1/Rooms/{room_a}"), &ca).await.json();
    assert!(
        r["end_time"].is_string() && r["duration"].is_number(),
        "{r}"
    );
    assert_eq!(
        room_events(&app, &room_a).await,
        [
            ("room-created".to_owned(), "in-progress".to_owned()),
            ("room-ended".to_owned(), "failed".to_owned())
        ]
    );
    let listed = app.get("/v1/Rooms?Status=failed", &ca).await.json();
    assert_eq!(listed["rooms"][0]["sid"], room_a.as_str());

    // Room B and its process are untouched.
    assert_eq!(room_status(&app, &ca, &room_b).await, "in-progress");
    assert_eq!(host.pid(&room_b), Some(pid_b));
    assert!(live_status(pid_b).is_some());

    // Completing a failed room changes nothing.
    let r = app
        .post_form(
            &format!("/v1/Rooms/{room_a}"),
            &ca,
            &[("Status", "completed")],
        )
        .await;
    assert_eq!(r.json()["status"], "failed");

    let r = app
        .post_form(
            &format!("/v1/Rooms/{room_b}"),
            &ca,
            &[("Status", "completed")],
        )
        .await;
    assert_eq!(r.json()["status"], "completed");
    assert!(host.is_empty());
}

#[tokio::test]
async fn peer_to_peer_rooms_start_nothing_and_the_node_cap_is_53103() {
    let (app, host) = app_with_rooms(1).await;
    let a = app.account().await;
    let ca = Creds::of(&a);
    let p2p = create_room(&app, &ca, &[("Type", "peer-to-peer")]).await;
    let go = create_room(&app, &ca, &[("Type", "go")]).await;
    assert_eq!((host.pid(&p2p), host.pid(&go)), (None, None));
    assert!(host.is_empty());

    let group = create_room(&app, &ca, &[("UniqueName", "one")]).await;
    assert!(host.pid(&group).is_some());
    let r = app
        .post_form("/v1/Rooms", &ca, &[("UniqueName", "two")])
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.body);
    let v = r.json();
    assert_eq!(v["code"], 53103);
    assert!(
        v["message"].as_str().unwrap().contains("--max-rooms"),
        "{v}"
    );
    let listed = app.get("/v1/Rooms?UniqueName=two", &ca).await.json();
    assert_eq!(listed["rooms"].as_array().unwrap().len(), 0, "no row");

    // Completing a peer-to-peer room needs no process.
    let r = app
        .post_form(&format!("/v1/Rooms/{p2p}"), &ca, &[("Status", "completed")])
        .await;
    assert_eq!(r.json()["status"], "completed");
    let r = app
        .post_form(
            &format!("/v1/Rooms/{group}"),
            &ca,
            &[("Status", "completed")],
        )
        .await;
    assert_eq!(r.json()["status"], "completed");
    create_room(&app, &ca, &[("UniqueName", "two")]).await;
    assert_eq!(host.len(), 1, "the slot came back");
}

#[tokio::test]
async fn room_timeouts_are_twilios_and_an_unused_room_completes_itself() {
    let app = TestApp::new().await;
    let mut config = HostConfig::new(mediaseal_test_support::room_worker());
    // A minute of room timeout lasts a second here (never settable over REST).
    config.room_timeout_minute = Duration::from_secs(1);
    let host = install_room_host(&app.state, config).expect("first room host");
    let a = app.account().await;
    let ca = Creds::of(&a);

    for bad in ["0", "61", "1.5", "soon"] {
        for param in ["EmptyRoomTimeout", "UnusedRoomTimeout"] {
            let r = app.post_form("/v1/Rooms", &ca, &[(param, bad)]).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{param}={bad}");
            assert!(
                r.json()["message"].as_str().unwrap().contains(param),
                "{:?}",
                r.body
            );
        }
    }
    assert!(host.is_empty(), "a refused room starts nothing");

    // Twilio's default, 5 minutes each: this room outlives the test.
    let r = app
        .post_form("/v1/Rooms", &ca, &[("UniqueName", "default")])
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let default = r.json();
    assert_eq!(
        (
            &default["empty_room_timeout"],
            &default["unused_room_timeout"]
        ),
        (&serde_json::json!(5), &serde_json::json!(5))
    );
    let default_sid = default["sid"].as_str().unwrap().to_owned();

    let r = app
        .post_form(
            "/v1/Rooms",
            &ca,
            &[
                ("UniqueName", "nobody-comes"),
                ("EmptyRoomTimeout", "2"),
                ("UnusedRoomTimeout", "1"),
                ("StatusCallback", "http://127.0.0.1:9/rooms"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let room = r.json();
    assert_eq!(
        (&room["empty_room_timeout"], &room["unused_room_timeout"]),
        (&serde_json::json!(2), &serde_json::json!(1))
    );
    let sid = room["sid"].as_str().unwrap().to_owned();
    let pid = host.pid(&sid).expect("the room has a worker");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let after = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    assert_eq!(
        after("--unused-room-timeout").as_deref(),
        Some("1"),
        "{args:?}"
    );
    assert_eq!(
        after("--empty-room-timeout").as_deref(),
        Some("2"),
        "{args:?}"
    );

    // Nobody joins: the worker ends the room and exits; the room completes as by REST.
    let created = Instant::now();
    while room_status(&app, &ca, &sid).await == "in-progress" {
        assert!(
            created.elapsed() < Duration::from_secs(20),
            "the room is still in progress 20 s after a 1 s unused-room timeout"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(room_status(&app, &ca, &sid).await, "completed");
    let r = app.get(&format!("/v1/Rooms/{sid}"), &ca).await;
    assert!(r.json()["end_time"].is_string(), "{:?}", r.body);
    assert!(live_status(pid).is_none(), "worker {pid} is gone");
    assert_eq!(host.pid(&sid), None);
    let r = app.get(&format!("/v1/Rooms/{sid}/Participants"), &ca).await;
    assert_eq!(r.json()["participants"], serde_json::json!([]));
    assert_eq!(
        room_events(&app, &sid).await,
        [
            ("room-created".to_owned(), "in-progress".to_owned()),
            ("room-ended".to_owned(), "completed".to_owned())
        ]
    );
    assert_eq!(room_status(&app, &ca, &default_sid).await, "in-progress");
    assert!(host.pid(&default_sid).is_some());
}

#[tokio::test]
async fn rooms_this_node_left_in_progress_fail_at_its_start_and_only_those() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let ca = Creds::of(&a);
    let node = app.state.config.room_node.clone();
    let row = |name: &str, node: Option<String>| mediaseal_store::video::Room {
        sid: format!("RM{}", "a".repeat(32)),
        account_sid: a.sid.clone(),
        unique_name: name.to_owned(),
        room_type: "group".to_owned(),
        status: "in-progress".to_owned(),
        status_callback: Some("http://127.0.0.1:9/rooms".to_owned()),
        status_callback_method: "POST".to_owned(),
        max_participants: 50,
        record_participants_on_connect: false,
        audio_only: false,
        media_region: None,
        date_created: 1,
        date_updated: 1,
        end_time: None,
        empty_room_timeout: 5,
        unused_room_timeout: 5,
        node,
    };
    // As a previous process of this node and another node running now left them.
    let mine = row("mine", Some(node.clone()));
    let mut theirs = row("theirs", Some(format!("{node}-elsewhere")));
    theirs.sid = format!("RM{}", "b".repeat(32));
    let mut rowless = row("p2p", None);
    rowless.sid = format!("RM{}", "c".repeat(32));
    rowless.room_type = "peer-to-peer".to_owned();
    for r in [&mine, &theirs, &rowless] {
        app.state.meta.insert_room(r, &[]).await.unwrap();
    }
    // Participants the dead process's recorder had marked connected, in this node's room and
    // in the other node's.
    for (room, pa) in [(&mine, 'a'), (&theirs, 'b')] {
        let participant = mediaseal_store::model::participants::Participant {
            sid: format!("PA{}", pa.to_string().repeat(32)),
            account_sid: a.sid.clone(),
            room_sid: room.sid.clone(),
            identity: "alice".to_owned(),
            status: "connected".to_owned(),
            start_time: 2,
            end_time: None,
            duration: None,
            date_created: 2,
            date_updated: 2,
        };
        app.state
            .meta
            .insert_participant(&participant)
            .await
            .unwrap();
    }
    let participant_status = |room: &str| {
        let path = format!("/v1/Rooms/{room}/Participants");
        let app = &app;
        let ca = &ca;
        async move {
            let r = app.get(&path, ca).await;
            r.json()["participants"][0]["status"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };

    assert_eq!(fail_abandoned_rooms(&app.state).await.unwrap(), 1);
    let r = app.get(&format!("/v1/Rooms/{}", mine.sid), &ca).await;
    assert_eq!(r.json()["status"], "failed");
    assert!(r.json()["end_time"].is_string(), "{:?}", r.body);
    assert_eq!(
        room_events(&app, &mine.sid).await,
        [("room-ended".to_owned(), "failed".to_owned())]
    );
    assert_eq!(room_status(&app, &ca, &theirs.sid).await, "in-progress");
    assert_eq!(room_status(&app, &ca, &rowless.sid).await, "in-progress");
    assert!(room_events(&app, &theirs.sid).await.is_empty());
    assert_eq!(participant_status(&mine.sid).await, "disconnected");
    assert_eq!(participant_status(&theirs.sid).await, "connected");

    // Again (a second start): nothing more happens.
    assert_eq!(fail_abandoned_rooms(&app.state).await.unwrap(), 0);
    assert_eq!(room_events(&app, &mine.sid).await.len(), 1);
}
