//! Issue 12, the room supervisor: a group room created through REST owns a hardened
//! `mediaseal-room-worker` process; `Status=completed` ends it within 2 s; `kill -9` of the
//! worker makes that room `failed` (with its `room-ended` callback) while another room's worker
//! runs on; peer-to-peer rooms start nothing; the per-node cap refuses with 53103.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use mediaseal_server::room_processes::{HostConfig, RoomHost, install_room_host};
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
