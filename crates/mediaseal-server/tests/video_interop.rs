//! Video v1 against independent, real tools over a real socket: the Twilio Python helper library
//! drives settings, rooms, recordings, compositions and hooks (`interop/video/twilio_video.py`);
//! then seed 001's exact `wget -S` + `base64 -d` + `openssl rsautl` + `openssl enc -d
//! -aes-256-cbc` steps open a downloaded recording and a downloaded composition.

#[path = "video_shared.rs"]
mod shared;

use std::path::PathBuf;
use std::process::Command;
use std::time::SystemTime;

use serde_json::{Value, json};
use shared::support::{TestApp, test_key};
use shared::*;

fn workspace() -> PathBuf {
    mediaseal_test_support::workspace_root()
}

/// The test venv's Python, with twilio-python; fails (never skips) when missing.
fn python() -> PathBuf {
    mediaseal_test_support::python(&["twilio", "requests"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twilio_python_drives_video_and_the_seed_001_recipe_opens_the_downloads() {
    for (tool, probe) in [
        ("wget", &["--version"][..]),
        ("openssl", &["version"]),
        ("hexdump", &["--version"]),
        ("base64", &["--version"]),
    ] {
        require(tool, probe);
    }
    let python = python();
    let started = SystemTime::now();
    // URLs from the request's Host, so paging and /Media point at the real socket.
    let app = TestApp::with_config(|c| c.public_url = None).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, app.router.clone()).into_future());

    let work = media_dir();
    let dir = work.path();
    let account = app.account().await;
    std::fs::write(
        dir.join("private_key.pem"),
        test_key(0).to_pkcs8_pem().unwrap().as_bytes(),
    )
    .unwrap();
    std::fs::write(
        dir.join("public_key.pem"),
        test_key(0).public_key().to_pem(),
    )
    .unwrap();
    let alice = make_track(dir, "alice", false, 5, 440);
    let bob = make_track(dir, "bob", false, 7, 660);
    let carol = make_track(dir, "carol", false, 3, 880);
    let config = json!({
        "base_url": base,
        "account_sid": account.sid,
        "auth_token": account.auth_token,
        "public_key_pem": dir.join("public_key.pem"),
        "tracks": {"alice": alice, "bob": bob, "carol": carol},
        // alice 1.0..6.0 s, bob 2.0..9.0 s; trimmed to start at 1.0 s: 8 s.
        "composition_seconds": 8,
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let script = workspace().join("interop/video/twilio_video.py");
    let cfg = dir.join("config.json");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python).arg(script).arg(cfg).output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "twilio-python scenario failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();

    // The encrypted recording, opened by the seed's own commands, is the uploaded file.
    let url = report["encrypted_recording_media_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let d = dir.to_path_buf();
    let plain = tokio::task::spawn_blocking(move || seed_001_recipe(&d, &url))
        .await
        .unwrap();
    assert!(
        plain == std::fs::read(&carol).unwrap(),
        "the recipe did not recover the uploaded recording"
    );

    // The composition was sealed with the composition key (settings were on): the same recipe
    // opens it, and it plays for the expected 8 seconds.
    let url = report["composition_media_url"].as_str().unwrap().to_owned();
    let d = dir.to_path_buf();
    let composed = tokio::task::spawn_blocking(move || seed_001_recipe(&d, &url))
        .await
        .unwrap();
    let out = dir.join("composition.webm");
    std::fs::write(&out, &composed).unwrap();
    let seconds = probe_seconds(&out);
    assert!(
        (seconds - 8.0).abs() < 0.15,
        "ffprobe says {seconds} s, expected 8"
    );
    let seconds = decoded_seconds(&out);
    assert!(
        (seconds - 8.0).abs() < 0.15,
        "decoding gives {seconds} s, expected 8"
    );

    // Nothing readable of the tracks or the composition on the server's disk.
    let mut needles = Vec::new();
    for f in [&alice, &bob, &carol] {
        needles.extend(shared::needles(&std::fs::read(f).unwrap()));
    }
    needles.extend(shared::needles(&composed));
    let leaks = files_containing(app.dir.path(), &needles, started, &[]);
    assert!(
        leaks.is_empty(),
        "plaintext in the data directory: {leaks:?}"
    );
}
