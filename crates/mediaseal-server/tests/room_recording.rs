//! Issue 12 §6, live track recordings: a group room created with
//! `RecordParticipantsOnConnect=true` records every published track inside its own process
//! (`mediaseal-room-worker`), as Matroska sealed as the frames arrive; the server only stores
//! ciphertext. An aiortc publisher (Opus tone + VP8, through WHIP) is recorded:
//!
//! - with video recording encryption on: one `RT…` per track, `s3-cbc` with the customer's key;
//!   the sealed bytes show no Matroska structure, seed 001's `wget -S` + `openssl` recipe opens
//!   each, and ffprobe/ffmpeg read the codec and decode a length within 0.5 s of the recording's
//!   own and of the time the publisher was in the room;
//!   encrypted recordings cannot be composed (seed 001);
//! - with encryption off: sealed at rest, `/Media` serves the decrypted Matroska, and the room
//!   composes;
//! - either way the room process writes nothing to storage (`/proc/PID/io`) while recording.
//!
//! Needs `.venv` with twilio-python and aiortc, ffmpeg, wget and openssl.

#[path = "video_shared.rs"]
mod shared;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use mediaseal_server::room_processes::HostConfig;
use serde_json::Value;
use shared::support::rooms::Rig;
use shared::support::test_key;
use shared::support::whip::Publisher;

/// What ffprobe says of a track file: its codec name.
fn probe_codec(path: &Path) -> String {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("run ffprobe");
    assert!(out.status.success(), "ffprobe {}", path.display());
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Publishes through WHIP into `room` (by UniqueName) for about `seconds` after the media
/// started flowing, then completes the room. Returns the recordings and how long the
/// publisher's tracks were in the room (from their publication to the room's end).
async fn record_a_publisher(rig: &Rig, name: &str, seconds: u64) -> (String, Vec<Value>, f64) {
    let room = rig
        .create_room(&[
            ("UniqueName", name),
            ("RecordParticipantsOnConnect", "true"),
        ])
        .await;
    let tokens = rig.tokens(name);
    let token = tokens["alice"]
        .as_str()
        .expect("a token for alice")
        .to_owned();
    let whip = format!("http://{}/v1/Rooms/{name}/Whip", rig.addr);
    let publisher = Publisher::start(&whip, &token).await;
    assert_eq!(publisher.posted["status"], 201, "{}", publisher.posted);
    let alice = publisher.posted["location"]
        .as_str()
        .and_then(|l| l.rsplit('/').next())
        .expect("a Location")
        .to_owned();
    // Both tracks published: from here on their frames are recorded.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = rig
            .app
            .get(
                &format!("/v1/Rooms/{room}/Participants/{alice}/PublishedTracks"),
                &rig.creds,
            )
            .await;
        if r.status == StatusCode::OK
            && r.json()["published_tracks"]
                .as_array()
                .is_some_and(|t| t.len() == 2)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "alice never published two tracks"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let published = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    // Recording, and still nothing written to storage by the room process: the recording
    // leaves it as ciphertext on its control pipe.
    let pid = rig.host.pid(&room).expect("the room's process runs");
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    assert!(
        io.lines().any(|l| l == "write_bytes: 0"),
        "the room process wrote to storage while recording:\n{io}"
    );
    rig.complete_room(&room).await;
    let in_room = published.elapsed().as_secs_f64();
    drop(publisher);
    let recordings = rig
        .list_until(&format!("/v1/Rooms/{room}/Recordings"), "recordings", |r| {
            r.len() == 2 && r.iter().all(|x| x["status"] == "completed")
        })
        .await;
    (room, recordings, in_room)
}

/// The recording of `kind` among `recordings`, checked against the track it came from.
fn track<'a>(recordings: &'a [Value], kind: &str, room: &str) -> &'a Value {
    let rec = recordings
        .iter()
        .find(|r| r["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} recording in {recordings:?}"));
    let (codec, container) = if kind == "audio" {
        ("opus", "mka")
    } else {
        ("vp8", "mkv")
    };
    assert_eq!(rec["codec"], codec, "{rec}");
    assert_eq!(rec["container_format"], container, "{rec}");
    assert_eq!(rec["grouping_sids"]["room_sid"], room, "{rec}");
    assert!(
        rec["source_sid"]
            .as_str()
            .is_some_and(|s| s.starts_with("MT")),
        "{rec}"
    );
    assert!(rec["size"].as_i64().is_some_and(|s| s > 1000), "{rec}");
    rec
}

/// Writes a track's plaintext to `dir` and checks it as a customer would: ffprobe names the
/// recording's codec, and ffmpeg decodes within 0.5 s of the time the track was in the room
/// (from its publication, polled so up to ~0.1 s late, to the room's end; the recording starts
/// at its first frame). Returns the decoded length.
fn check_track_file(dir: &Path, kind: &str, rec: &Value, media: &[u8], in_room: f64) -> f64 {
    assert_eq!(&media[..4], &[0x1a, 0x45, 0xdf, 0xa3], "{kind}: not EBML");
    let file = dir.join(format!(
        "{kind}.{}",
        rec["container_format"].as_str().unwrap()
    ));
    std::fs::write(&file, media).unwrap();
    let codec = probe_codec(&file);
    assert_eq!(codec, rec["codec"].as_str().unwrap(), "{kind}");
    let decoded = shared::decoded_seconds(&file);
    eprintln!("{kind}: {codec}, decoded {decoded} s, in the room {in_room:.2} s");
    assert!(
        decoded <= in_room + 0.5 && decoded >= in_room - 0.5,
        "{kind}: decoded {decoded} s of a track {in_room:.2} s in the room"
    );
    decoded
}

/// `POST /v1/Compositions` of the room's audio.
async fn compose(rig: &Rig, room: &str) -> shared::support::Resp {
    rig.app
        .post_form(
            "/v1/Compositions",
            &rig.creds,
            &[("RoomSid", room), ("AudioSources", "*")],
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_room_seals_each_track_in_its_process_for_the_customer_key() {
    for (tool, probe) in [
        ("openssl", &["version"][..]),
        ("wget", &["--version"][..]),
        ("ffprobe", &["-version"][..]),
    ] {
        shared::require(tool, probe);
    }
    let rig = Rig::start(HostConfig::new(mediaseal_test_support::room_worker())).await;
    let pem = test_key(0).public_key().to_pem();
    let r = rig
        .app
        .post_form(
            "/v1/Credentials/PublicKeys",
            &rig.creds,
            &[("PublicKey", pem.as_str()), ("FriendlyName", "recordings")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let key_sid = r.json()["sid"].as_str().unwrap().to_owned();
    shared::set_settings(&rig.app, &rig.creds, "RecordingSettings", Some(&key_sid)).await;

    let (room, recordings, in_room) = record_a_publisher(&rig, "recorded-sealed", 4).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("private_key.pem"),
        test_key(0).to_pkcs8_pem().unwrap().as_bytes(),
    )
    .unwrap();
    for kind in ["audio", "video"] {
        let rec = track(&recordings, kind, &room);
        let sid = rec["sid"].as_str().unwrap();
        // The stored bytes carry no Matroska structure: the EBML magic, the doc type and the
        // codec ids exist only inside the room process.
        let url =
            shared::media_url(&rig.app, &rig.creds, &format!("/v1/Recordings/{sid}/Media")).await;
        let sealed = shared::fetch(&rig.app, &url, &[]).await;
        assert_eq!(sealed.status, StatusCode::OK);
        assert_eq!(
            sealed.headers["x-amz-meta-mediaseal-public-key-sid"],
            key_sid.as_str()
        );
        for needle in [
            &[0x1a, 0x45, 0xdf, 0xa3][..],
            b"matroska",
            b"OpusHead",
            b"A_OPUS",
            b"V_VP8",
        ] {
            assert!(
                !sealed.body.windows(needle.len()).any(|w| w == needle),
                "{kind}: the sealed bytes contain {needle:?}"
            );
        }
        // Seed 001's recipe, with wget on this server's own address.
        let wget_url = if shared::is_store_url(&url) {
            url.clone()
        } else {
            format!("http://{}{}", rig.addr, shared::local_path(&url))
        };
        let d = dir.path().to_owned();
        let plain = tokio::task::spawn_blocking(move || shared::seed_001_recipe(&d, &wget_url))
            .await
            .unwrap();
        let decoded = check_track_file(dir.path(), kind, rec, &plain, in_room);
        let stated = rec["duration"].as_f64().unwrap();
        assert!(
            (decoded - stated).abs() <= 0.5 + 0.5,
            "{kind}: decoded {decoded} s, the recording says {stated} s (whole seconds)"
        );
    }
    // Seed 001: recordings encrypted with the customer's key cannot be composed.
    let r = compose(&rig, &room).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let message = r.json()["message"].as_str().unwrap_or_default().to_owned();
    for rec in &recordings {
        if rec["type"] == "audio" {
            assert!(message.contains(rec["sid"].as_str().unwrap()), "{message}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_room_without_encryption_is_sealed_at_rest_and_served_decrypted() {
    shared::require("ffprobe", &["-version"]);
    let rig = Rig::start(HostConfig::new(mediaseal_test_support::room_worker())).await;
    let (room, recordings, in_room) = record_a_publisher(&rig, "recorded-clear", 3).await;
    let dir = tempfile::tempdir().unwrap();
    for kind in ["audio", "video"] {
        let rec = track(&recordings, kind, &room);
        let sid = rec["sid"].as_str().unwrap();
        let url =
            shared::media_url(&rig.app, &rig.creds, &format!("/v1/Recordings/{sid}/Media")).await;
        let got = shared::fetch(&rig.app, &url, &[]).await;
        assert_eq!(got.status, StatusCode::OK);
        assert_eq!(
            i64::try_from(got.body.len()).unwrap(),
            rec["size"].as_i64().unwrap()
        );
        check_track_file(dir.path(), kind, rec, &got.body, in_room);
    }
    // Recordings sealed at rest compose like uploaded ones.
    let r = compose(&rig, &room).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let cj = r.json()["sid"].as_str().unwrap().to_owned();
    let done = shared::wait_composition(&rig.app, &rig.creds, &cj).await;
    assert_eq!(done["status"], "completed", "{done}");
    let url = shared::media_url(
        &rig.app,
        &rig.creds,
        &format!("/v1/Compositions/{cj}/Media"),
    )
    .await;
    let got = shared::fetch(&rig.app, &url, &[]).await;
    assert_eq!(got.status, StatusCode::OK);
    let file = dir.path().join("composed.webm");
    std::fs::write(&file, &got.body).unwrap();
    let composed = shared::decoded_seconds(&file);
    assert!(
        (composed - in_room).abs() <= 0.5,
        "the composition decodes {composed} s of a track {in_room:.2} s in the room"
    );
}
