//! Issue 10, item 6: one tenant must not block everyone's compositions. Track lengths are
//! measured from the media (a claimed `Duration` is ignored, a timeline longer than a room can
//! last is refused), every composition is bounded in wall time and output size, and the queue
//! serves accounts fairly on more than one worker. Through the router, with the real ffmpeg.

#[path = "video_shared.rs"]
mod shared;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::Value;
use shared::support::{Creds, TestApp};
use shared::*;

/// Uploads `file` as track `name` with the query's extra parameters (a `Duration` claim, an
/// `Offset`).
async fn upload_with(
    app: &TestApp,
    creds: &Creds,
    room: &str,
    file: &std::path::Path,
    name: &str,
    extra: &str,
) -> Value {
    let video = file.extension().is_some_and(|e| e == "mkv");
    let uri = format!(
        "/v1/Rooms/{room}/Recordings?ParticipantSid=PA{:032x}&TrackName={name}&Type={}{extra}",
        name.len() as u128 * 7919,
        if video { "video" } else { "audio" }
    );
    let r = app
        .post_bytes(
            &uri,
            creds,
            std::fs::read(file).unwrap(),
            if video {
                "video/x-matroska"
            } else {
                "audio/x-matroska"
            },
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.json()
}

async fn compose(app: &TestApp, creds: &Creds, room: &str, form: &[(&str, &str)]) -> String {
    let mut pairs = vec![("RoomSid", room)];
    pairs.extend_from_slice(form);
    let r = app.post_form("/v1/Compositions", creds, &pairs).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.json()["sid"].as_str().unwrap().to_owned()
}

/// The failure reason the worker recorded (the resource, like Twilio's, has no field for it).
async fn failure(app: &TestApp, account: &str, sid: &str) -> String {
    let c = app
        .state
        .meta
        .composition(account, sid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.status, "failed", "{c:?}");
    assert_eq!(
        c.object_key, None,
        "nothing is stored for a failed composition"
    );
    c.error_message.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_week_over_two_seconds_of_media_composes_two_seconds() {
    let app = TestApp::new().await;
    let media = media_dir();
    let a = app.account().await;
    let ca = Creds::of(&a);
    let room = create_room(&app, &ca, "week").await;
    let cam = make_track(media.path(), "cam", true, 2, 0);
    let mic = make_track(media.path(), "mic", false, 2, 440);
    let week = "&Duration=604800";
    let t = upload_with(&app, &ca, &room, &cam, "alice-cam", week).await;
    assert_eq!(
        t["duration"], 2,
        "measured from the media, not claimed: {t}"
    );
    let t = upload_with(&app, &ca, &room, &mic, "alice-mic", week).await;
    assert_eq!(t["duration"], 2, "{t}");
    // A track placed a week after the others (an Offset no room can have).
    let late = upload_with(
        &app,
        &ca,
        &room,
        &mic,
        "late-mic",
        "&Offset=604800000&Duration=2",
    )
    .await;
    assert_eq!(late["offset"], 604_800_000, "{late}");
    complete_room(&app, &ca, &room).await;

    let r = app
        .post_form(
            "/v1/Compositions",
            &ca,
            &[("RoomSid", &room), ("AudioSources", "*")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let message = r.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("Offset"), "{message}");

    let started = Instant::now();
    let cj = compose(
        &app,
        &ca,
        &room,
        &[
            ("AudioSources", "alice-*"),
            ("VideoLayout", r#"{"grid":{"video_sources":["*"]}}"#),
        ],
    )
    .await;
    let done = wait_composition(&app, &ca, &cj).await;
    assert_eq!(done["status"], "completed", "{done}");
    // Opus's codec delay makes the audio 2.02 s, which the resource rounds up.
    let seconds = done["duration"].as_u64().unwrap();
    assert!((2..=3).contains(&seconds), "{done}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    let url = media_url(&app, &ca, &format!("/v1/Compositions/{cj}/Media")).await;
    let got = fetch(&app, &url, &[]).await;
    assert_eq!(got.status, StatusCode::OK);
    let out = media.path().join("week.webm");
    std::fs::write(&out, &got.body).unwrap();
    let decoded = decoded_seconds(&out);
    assert!(
        (decoded - 2.0).abs() < 0.3,
        "decoded {decoded} s, expected 2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_composition_past_the_wall_time_limit_is_stopped_and_failed() {
    let app = TestApp::with_config(|c| c.compose.max_wall_time = Duration::from_secs(1)).await;
    let media = media_dir();
    let a = app.account().await;
    let ca = Creds::of(&a);
    let room = create_room(&app, &ca, "long").await;
    let cam = make_track(media.path(), "cam", true, 90, 0);
    upload_with(&app, &ca, &room, &cam, "cam", "").await;
    complete_room(&app, &ca, &room).await;
    let started = Instant::now();
    let cj = compose(
        &app,
        &ca,
        &room,
        &[
            ("VideoLayout", r#"{"grid":{"video_sources":["*"]}}"#),
            ("Resolution", "1280x720"),
        ],
    )
    .await;
    let done = wait_composition(&app, &ca, &cj).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the limit did not stop it: {:?}",
        started.elapsed()
    );
    let why = failure(&app, &a.sid, &cj).await;
    assert!(
        why.contains("longer than this server allows (1 s)"),
        "{why}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_composition_past_the_output_limit_is_stopped_and_failed() {
    let app = TestApp::with_config(|c| c.compose.max_output_bytes = 4096).await;
    let media = media_dir();
    let a = app.account().await;
    let ca = Creds::of(&a);
    let room = create_room(&app, &ca, "big").await;
    let mic = make_track(media.path(), "mic", false, 5, 440);
    upload_with(&app, &ca, &room, &mic, "mic", "").await;
    complete_room(&app, &ca, &room).await;
    let cj = compose(&app, &ca, &room, &[("AudioSources", "*")]).await;
    let done = wait_composition(&app, &ca, &cj).await;
    assert_eq!(done["status"], "failed", "{done}");
    let why = failure(&app, &a.sid, &cj).await;
    assert!(why.contains("limit of 4096 bytes"), "{why}");
}

/// Another account's composition is not held up by a long one: it starts on the second worker
/// at once (and, with one worker, goes before the long account's backlog).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_accounts_composition_is_not_held_up_by_a_long_one() {
    let app = TestApp::new().await;
    let media = media_dir();
    let (a, b) = (app.account().await, app.account().await);
    let (ca, cb) = (Creds::of(&a), Creds::of(&b));
    let long = make_track(media.path(), "long", true, 120, 0);
    let short = make_track(media.path(), "short", false, 2, 660);
    let room_a = create_room(&app, &ca, "a").await;
    upload_with(&app, &ca, &room_a, &long, "cam", "").await;
    complete_room(&app, &ca, &room_a).await;
    let room_b = create_room(&app, &cb, "b").await;
    upload_with(&app, &cb, &room_b, &short, "mic", "").await;
    complete_room(&app, &cb, &room_b).await;

    let layout = [
        ("VideoLayout", r#"{"grid":{"video_sources":["*"]}}"#),
        ("Resolution", "1280x720"),
    ];
    let a_started = Instant::now();
    let a1 = compose(&app, &ca, &room_a, &layout).await;
    let a2 = compose(&app, &ca, &room_a, &layout).await;
    // B asks once A's first is under way.
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.get(&format!("/v1/Compositions/{a1}"), &ca).await.json()["status"] != "processing" {
        assert!(Instant::now() < deadline, "A's composition never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let b_asked = Instant::now();
    let b1 = compose(&app, &cb, &room_b, &[("AudioSources", "*")]).await;
    let done = wait_composition(&app, &cb, &b1).await;
    let b_latency = b_asked.elapsed();
    assert_eq!(done["status"], "completed", "{done}");
    let a_now = app.get(&format!("/v1/Compositions/{a1}"), &ca).await.json();
    assert_eq!(
        a_now["status"], "processing",
        "B's composition finished while A's long one still ran"
    );
    let a2_now = app.get(&format!("/v1/Compositions/{a2}"), &ca).await.json();
    assert_eq!(
        a2_now["status"], "enqueued",
        "A's second waits for A's first (one running per account)"
    );
    eprintln!(
        "B's composition took {:.2} s from request to completed while A's ran ({:.2} s in)",
        b_latency.as_secs_f64(),
        a_started.elapsed().as_secs_f64()
    );
    // A's are deleted rather than waited for.
    for cj in [&a1, &a2] {
        let r = app.delete(&format!("/v1/Compositions/{cj}"), &ca).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    }
}
