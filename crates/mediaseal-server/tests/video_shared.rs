//! Helpers for the video tests: real media made by ffmpeg, uploads, polling, and scanning disks
//! for plaintext. Included with `#[path]` by `video_api.rs` and `video_interop.rs`; Cargo also
//! builds it as a test target of its own, which has no tests.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses a different part"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine as _;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

#[path = "support/mod.rs"]
#[allow(
    missing_debug_implementations,
    reason = "the shared harness, reached through this module"
)]
pub(crate) mod support;

use support::{Creds, Resp, TestApp};

pub const SETUP_HINT: &str =
    "run scripts/setup.sh (or scripts/test.sh, which runs it) to install the test tools";

/// Fails (never skips) when a tool the test drives is missing.
#[track_caller]
pub fn require(tool: &str, probe: &[&str]) {
    let ok = Command::new(tool)
        .args(probe)
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "'{tool}' is not installed or does not run; {SETUP_HINT}"
    );
}

#[track_caller]
fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}; {SETUP_HINT}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Text unique to a track's plaintext (a Matroska title tag), to look for on disk later.
pub fn marker(name: &str) -> String {
    format!("MEDIASEAL-PLAINTEXT-MARKER-{name}")
}

/// A real track recording made with ffmpeg's test sources: Opus audio in Matroska (`.mka`) or
/// VP8 video in Matroska (`.mkv`), `seconds` long.
pub fn make_track(dir: &Path, name: &str, video: bool, seconds: u32, freq: u32) -> PathBuf {
    require("ffmpeg", &["-version"]);
    let path = dir.join(format!("{name}.{}", if video { "mkv" } else { "mka" }));
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostdin",
        "-y",
        "-f",
        "lavfi",
    ]);
    if video {
        cmd.args([
            "-i",
            &format!("testsrc=size=320x240:rate=15:duration={seconds}"),
        ]);
        cmd.args([
            "-c:v",
            "libvpx",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-b:v",
            "200k",
        ]);
    } else {
        cmd.args([
            "-i",
            &format!("sine=frequency={freq}:sample_rate=48000:duration={seconds}"),
        ]);
        cmd.args(["-c:a", "libopus", "-b:a", "48k"]);
    }
    cmd.args([
        "-metadata",
        &format!("title={}", marker(name)),
        "-f",
        "matroska",
    ])
    .arg(&path);
    run(&mut cmd);
    path
}

/// The duration ffprobe reads from a media file's container, in seconds.
pub fn probe_seconds(path: &Path) -> f64 {
    require("ffprobe", &["-version"]);
    let out = run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path));
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    text.parse()
        .unwrap_or_else(|_| panic!("ffprobe gave no duration for {}: '{text}'", path.display()))
}

/// The duration found by decoding every packet (independent of what the header claims).
pub fn decoded_seconds(path: &Path) -> f64 {
    let out = run(Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-i"])
        .arg(path)
        .args(["-f", "null", "-"]));
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    let last = text.rsplit("time=").next().unwrap_or("");
    let hms: Vec<f64> = last
        .split_whitespace()
        .next()
        .unwrap_or("")
        .split(':')
        .filter_map(|p| p.parse().ok())
        .collect();
    assert_eq!(hms.len(), 3, "no time= in ffmpeg output: {text}");
    hms[0] * 3600.0 + hms[1] * 60.0 + hms[2]
}

pub async fn create_room(app: &TestApp, creds: &Creds, name: &str) -> String {
    let r = app
        .post_form("/v1/Rooms", creds, &[("UniqueName", name)])
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.json()["sid"].as_str().unwrap().to_owned()
}

pub async fn complete_room(app: &TestApp, creds: &Creds, room: &str) -> Resp {
    app.post_form(
        &format!("/v1/Rooms/{room}"),
        creds,
        &[("Status", "completed")],
    )
    .await
}

/// Uploads a track recording through the ingest door.
pub async fn upload(
    app: &TestApp,
    creds: &Creds,
    room: &str,
    file: &Path,
    track: &str,
    offset_ms: u64,
) -> Resp {
    let video = file.extension().is_some_and(|e| e == "mkv");
    let uri = format!(
        "/v1/Rooms/{room}/Recordings?ParticipantSid=PA{:032x}&TrackName={track}&Type={}&Offset={offset_ms}",
        track.len() as u128 * 7919,
        if video { "video" } else { "audio" }
    );
    let bytes = std::fs::read(file).unwrap();
    app.post_bytes(
        &uri,
        creds,
        bytes,
        if video {
            "video/x-matroska"
        } else {
            "audio/x-matroska"
        },
    )
    .await
}

pub async fn set_settings(app: &TestApp, creds: &Creds, which: &str, key: Option<&str>) {
    let mut form = vec![("FriendlyName", "settings")];
    match key {
        Some(k) => form.extend([("EncryptionEnabled", "true"), ("EncryptionKeySid", k)]),
        None => form.push(("EncryptionEnabled", "false")),
    }
    let r = app
        .post_form(&format!("/v1/{which}/Default"), creds, &form)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

/// Polls a composition until it leaves the queue (or a minute and a half passes).
pub async fn wait_composition(app: &TestApp, creds: &Creds, sid: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let r = app.get(&format!("/v1/Compositions/{sid}"), creds).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let v = r.json();
        let status = v["status"].as_str().unwrap().to_owned();
        if status == "completed" || status == "failed" || Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A raw request with extra headers, through the router.
pub async fn raw(
    app: &TestApp,
    method: Method,
    uri: &str,
    creds: &Creds,
    headers: &[(&str, &str)],
) -> Resp {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "mediaseal.test");
    if let Creds::Basic(u, p) = creds {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        req = req.header(header::AUTHORIZATION, format!("Basic {token}"));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = app
        .router
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Resp {
        status,
        headers,
        body,
    }
}

/// Follows `/Media`: checks the 302 shape and returns the signed URL's path on this server.
pub async fn media_url(app: &TestApp, creds: &Creds, path: &str) -> String {
    let r = app.get(path, creds).await;
    assert_eq!(r.status, StatusCode::FOUND, "{path}: {:?}", r.body);
    let url = r.json()["redirect_to"].as_str().unwrap().to_owned();
    assert_eq!(
        r.headers.get(header::LOCATION).unwrap().to_str().unwrap(),
        url
    );
    url
}

/// GETs a `/Media` URL without credentials, as a customer's `wget` would: through the router
/// when it is this service's own signed URL, over HTTP when the object store presigned it
/// (customer-sealed media on S3 is handed out straight from the bucket, as Twilio does).
pub async fn fetch(app: &TestApp, url: &str, headers: &[(&str, &str)]) -> Resp {
    if url.starts_with("http://mediaseal.test/") {
        return raw(app, Method::GET, local_path(url), &Creds::None, headers).await;
    }
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = reqwest::Client::new();
    let mut req = client.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = StatusCode::from_u16(r.status().as_u16()).unwrap();
    let mut out = axum::http::HeaderMap::new();
    for (k, v) in r.headers() {
        out.append(
            header::HeaderName::from_bytes(k.as_str().as_bytes()).unwrap(),
            header::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
        );
    }
    let body = r.bytes().await.unwrap();
    Resp {
        status,
        headers: out,
        body,
    }
}

/// Whether `url` was presigned by the object store rather than by this service.
pub fn is_store_url(url: &str) -> bool {
    !url.starts_with("http://mediaseal.test/")
}

pub fn local_path(url: &str) -> &str {
    url.strip_prefix("http://mediaseal.test")
        .unwrap_or_else(|| panic!("not a URL of the test server: {url}"))
}

/// Three 48-byte windows from the middle of `data`: if any reaches a disk, plaintext leaked.
pub fn needles(data: &[u8]) -> Vec<Vec<u8>> {
    assert!(data.len() > 4096, "too little data to take samples from");
    [data.len() / 4, data.len() / 2, 3 * data.len() / 4]
        .iter()
        .map(|&at| data[at..at + 48].to_vec())
        .collect()
}

/// Name prefix of the directories tests keep their own plaintext inputs in; the scans skip
/// them, since tests running side by side make identical media from the same ffmpeg sources.
pub const TEST_MEDIA_PREFIX: &str = mediaseal_test_support::scan::TEST_MEDIA_PREFIX;

/// A fresh directory for a test's plaintext inputs and decrypted outputs.
pub fn media_dir() -> tempfile::TempDir {
    mediaseal_test_support::scan::media_dir()
}

/// Files under `dir` (skipping `skip` and every test's media directory) modified after `since`
/// that contain any needle.
pub fn files_containing(
    dir: &Path,
    needles: &[Vec<u8>],
    since: SystemTime,
    skip: &[&Path],
) -> Vec<PathBuf> {
    mediaseal_test_support::scan::files_containing(dir, needles, since, skip)
}

/// Runs a bash script in `dir`; fails the test on a non-zero exit.
#[track_caller]
pub fn sh(dir: &Path, script: &str) -> std::process::Output {
    let out = Command::new("bash")
        .arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shell step failed:\n{script}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Seed 001, section 5, step by step: download with `wget -S`, take the two headers from its
/// output, unwrap the key with `openssl rsautl`, decrypt with `openssl enc -d -aes-256-cbc`.
/// (GNU `base64 -d` stands in for macOS's `-D`.) Returns the decrypted bytes.
pub fn seed_001_recipe(dir: &Path, url: &str) -> Vec<u8> {
    for f in [
        "encrypted-filename",
        "decrypted-filename",
        "key.bin.enc",
        "key.bin",
        "iv.bin",
        "headers.txt",
    ] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    sh(
        dir,
        &format!("wget -S '{url}' -O encrypted-filename 2> headers.txt"),
    );
    let headers = std::fs::read_to_string(dir.join("headers.txt")).unwrap();
    let value = |name: &str| -> String {
        headers
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix(':'))
                    .map(|v| v.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("wget -S showed no {name} header:\n{headers}"))
    };
    let (key, iv) = (value("x-amz-meta-x-amz-key"), value("x-amz-meta-x-amz-iv"));
    assert_eq!(value("x-amz-meta-x-amz-matdesc"), "{}");
    let script = format!(
        "base64 -d <<< '{key}' >> key.bin.enc\n\
         openssl rsautl -decrypt -inkey private_key.pem -in key.bin.enc -out key.bin 2>/dev/null\n\
         base64 -d <<< '{iv}' >> iv.bin\n\
         openssl enc -d -aes-256-cbc -in encrypted-filename -out decrypted-filename -K $(hexdump -v -e '/1 \"%02X\"' < key.bin) -iv $(hexdump -v -e '/1 \"%02X\"' < iv.bin)\n"
    );
    sh(dir, &script);
    let plain = std::fs::read(dir.join("decrypted-filename")).unwrap();
    assert_eq!(
        value("x-amz-meta-x-amz-unencrypted-content-length"),
        plain.len().to_string()
    );
    plain
}
