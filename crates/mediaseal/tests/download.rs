//! `mediaseal download` against a real `mediaseal serve` process: voice (RE…), video recording
//! (RT…) and composition (CJ…) objects round-trip to the original bytes (or, for compositions,
//! to media of the expected duration), errors speak to people, and composing leaves no plaintext
//! in the server's `--data` or its temporary directory. Keys come from `openssl genrsa`, as in
//! the seeds; media from ffmpeg's test sources.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::*;
use reqwest::blocking::Client;
use serde_json::Value;

/// A `mediaseal serve` child process on a free port, killed on drop.
struct Server {
    child: Child,
    base: String,
    data: PathBuf,
    tmp: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    mediaseal_test_support::free_port()
}

fn start_server(root: &Path) -> Server {
    let data = root.join("data");
    let tmp = root.join("server-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    for _ in 0..5 {
        let port = free_port();
        let child = mediaseal()
            .args(["serve", "--data"])
            .arg(&data)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("TMPDIR", &tmp)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the mediaseal binary runs");
        let mut server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            data: data.clone(),
            tmp: tmp.clone(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = server.child.try_wait() {
                break; // the port was taken in between; try another
            }
            if http()
                .get(format!("{}/healthz", server.base))
                .send()
                .is_ok_and(|r| r.status().is_success())
            {
                return server;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = server.child.kill();
    }
    panic!("mediaseal serve did not come up");
}

fn http() -> Client {
    // reqwest is built without a default TLS provider; mediaseal uses AWS-LC everywhere.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

struct Account {
    sid: String,
    token: String,
}

fn create_account(data: &Path) -> Account {
    let out = mediaseal()
        .args(["account", "create", "--data"])
        .arg(data)
        .output()
        .unwrap();
    assert!(out.status.success(), "account create: {}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    Account {
        sid: v["sid"].as_str().unwrap().to_owned(),
        token: v["auth_token"].as_str().unwrap().to_owned(),
    }
}

fn post(server: &Server, acct: &Account, path: &str, form: &[(&str, &str)]) -> Value {
    let r = http()
        .post(format!("{}{path}", server.base))
        .basic_auth(&acct.sid, Some(&acct.token))
        .form(form)
        .send()
        .unwrap();
    let status = r.status();
    let body: Value = r.json().unwrap_or(Value::Null);
    assert!(status.is_success(), "POST {path}: {status} {body}");
    body
}

fn get(server: &Server, acct: &Account, path: &str) -> Value {
    let r = http()
        .get(format!("{}{path}", server.base))
        .basic_auth(&acct.sid, Some(&acct.token))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "GET {path}: {}", r.status());
    r.json().unwrap()
}

fn upload_track(
    server: &Server,
    acct: &Account,
    room: &str,
    file: &Path,
    track: &str,
    offset: u32,
) -> String {
    let url = format!(
        "{}/v1/Rooms/{room}/Recordings?ParticipantSid=PA0123456789abcdef0123456789abcdef&TrackName={track}&Type=audio&Offset={offset}",
        server.base
    );
    let r = http()
        .post(url)
        .basic_auth(&acct.sid, Some(&acct.token))
        .body(std::fs::read(file).unwrap())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "upload {track}");
    r.json::<Value>().unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn make_track(dir: &Path, name: &str, seconds: u32, freq: u32) -> PathBuf {
    require_tool("ffmpeg", &["-version"]);
    let path = dir.join(format!("{name}.mka"));
    let out = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!(
            "sine=frequency={freq}:sample_rate=48000:duration={seconds}"
        ))
        .args(["-c:a", "libopus", "-b:a", "48k", "-metadata"])
        .arg(format!("title=MEDIASEAL-PLAINTEXT-MARKER-{name}"))
        .args(["-f", "matroska"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "ffmpeg: {}", stderr(&out));
    path
}

/// A PCM WAV of `seconds` with distinctive sample values.
fn wav(seconds: u32) -> Vec<u8> {
    let data_len = 8000 * 2 * seconds;
    let mut v = mediaseal_test_support::wav::header(8000, 1, 16, data_len);
    v.extend(data(data_len as usize, 77));
    v
}

fn decoded_seconds(path: &Path) -> f64 {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffmpeg cannot decode {}: {}",
        path.display(),
        stderr(&out)
    );
    let text = stderr(&out);
    let last = text.rsplit("time=").next().unwrap_or("");
    let hms: Vec<f64> = last
        .split_whitespace()
        .next()
        .unwrap_or("")
        .split(':')
        .filter_map(|p| p.parse().ok())
        .collect();
    assert_eq!(hms.len(), 3, "no time= in: {text}");
    hms[0] * 3600.0 + hms[1] * 60.0 + hms[2]
}

fn download(
    server: &Server,
    sid: &str,
    creds: &str,
    key: &Path,
    out: &Path,
    extra: &[&str],
) -> std::process::Output {
    mediaseal()
        .arg("download")
        .arg(sid)
        .args(["--credentials", creds, "--private-key"])
        .arg(key)
        .arg("--out")
        .arg(out)
        .args(["--base-url", &server.base])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Files under `dir` changed since `since` that contain any of `needles`.
fn leaks(dir: &Path, needles: &[Vec<u8>], since: SystemTime) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(p);
            } else if meta.is_file()
                && meta.modified().is_ok_and(|m| m >= since)
                && let Ok(bytes) = std::fs::read(&p)
                && needles
                    .iter()
                    .any(|n| bytes.windows(n.len()).any(|w| w == n.as_slice()))
            {
                hits.push(p);
            }
        }
    }
    hits
}

fn samples(data: &[u8]) -> Vec<Vec<u8>> {
    [data.len() / 4, data.len() / 2, 3 * data.len() / 4]
        .iter()
        .map(|&at| data[at..at + 48].to_vec())
        .collect()
}

#[test]
fn download_round_trips_voice_video_and_compositions() {
    require_tool("openssl", &["version"]);
    require_tool("ffmpeg", &["-version"]);
    let started = SystemTime::now();
    let root = tempfile::tempdir().unwrap();
    let work = root.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let server = start_server(root.path());
    let acct = create_account(&server.data);
    let other = create_account(&server.data);
    let creds = format!("{}:{}", acct.sid, acct.token);

    // Keys as seed 001 makes them.
    sh(
        &work,
        "openssl genrsa -out private_key.pem 2048 2>/dev/null && openssl rsa -in private_key.pem -pubout -out public_key.pem 2>/dev/null",
    );
    sh(&work, "openssl genrsa -out other_key.pem 2048 2>/dev/null");
    let private = work.join("private_key.pem");
    let pem = std::fs::read_to_string(work.join("public_key.pem")).unwrap();
    let key_sid = post(
        &server,
        &acct,
        "/v1/Credentials/PublicKeys",
        &[("PublicKey", &pem), ("FriendlyName", "k")],
    )["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let api_key = post(
        &server,
        &acct,
        &format!("/2010-04-01/Accounts/{}/Keys.json", acct.sid),
        &[("FriendlyName", "dl")],
    );
    let sk_creds = format!(
        "{}:{}",
        api_key["sid"].as_str().unwrap(),
        api_key["secret"].as_str().unwrap()
    );

    // A voice recording sealed in rsa-aes.
    post(
        &server,
        &acct,
        &format!("/2010-04-01/Accounts/{}/RecordingSettings.json", acct.sid),
        &[
            ("EncryptionEnabled", "true"),
            ("EncryptionPublicKeySid", &key_sid),
        ],
    );
    let voice = wav(3);
    let r = http()
        .post(format!(
            "{}/2010-04-01/Accounts/{}/Recordings.json?CallSid=CA0123456789abcdef0123456789abcdef",
            server.base, acct.sid
        ))
        .basic_auth(&acct.sid, Some(&acct.token))
        .header("Content-Type", "audio/x-wav")
        .body(voice.clone())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let re = r.json::<Value>().unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned();

    // Video: one encrypted track, two clear ones, a composition sealed with the key.
    let alice = make_track(&work, "alice", 4, 440);
    let bob = make_track(&work, "bob", 3, 660);
    let carol = make_track(&work, "carol", 2, 880);
    let room = post(&server, &acct, "/v1/Rooms", &[("UniqueName", "dl")])["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    post(
        &server,
        &acct,
        "/v1/RecordingSettings/Default",
        &[
            ("FriendlyName", "r"),
            ("EncryptionEnabled", "true"),
            ("EncryptionKeySid", &key_sid),
        ],
    );
    let rt_sealed = upload_track(&server, &acct, &room, &carol, "carol-mic", 0);
    post(
        &server,
        &acct,
        "/v1/RecordingSettings/Default",
        &[("FriendlyName", "r")],
    );
    let rt_clear = upload_track(&server, &acct, &room, &alice, "alice-mic", 0);
    upload_track(&server, &acct, &room, &bob, "bob-mic", 2000);
    post(
        &server,
        &acct,
        &format!("/v1/Rooms/{room}"),
        &[("Status", "completed")],
    );
    post(
        &server,
        &acct,
        "/v1/CompositionSettings/Default",
        &[
            ("FriendlyName", "c"),
            ("EncryptionEnabled", "true"),
            ("EncryptionKeySid", &key_sid),
        ],
    );
    let cj = post(
        &server,
        &acct,
        "/v1/Compositions",
        &[
            ("RoomSid", &room),
            ("AudioSources", "alice*"),
            ("AudioSources", "bob*"),
        ],
    )["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status = get(&server, &acct, &format!("/v1/Compositions/{cj}"))["status"]
            .as_str()
            .unwrap()
            .to_owned();
        if status == "completed" {
            break;
        }
        assert!(
            status != "failed" && Instant::now() < deadline,
            "composition {status}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    // RE with AC credentials, and with an API key plus --account-sid.
    let out = work.join("voice.wav");
    assert_ok(&download(&server, &re, &creds, &private, &out, &[]));
    assert!(
        std::fs::read(&out).unwrap() == voice,
        "voice recording differs"
    );
    let out2 = work.join("voice-sk.wav");
    assert_ok(&download(
        &server,
        &re,
        &sk_creds,
        &private,
        &out2,
        &["--account-sid", &acct.sid],
    ));
    assert!(std::fs::read(&out2).unwrap() == voice);
    let msg = assert_fails(&download(
        &server,
        &re,
        &sk_creds,
        &private,
        &work.join("x.wav"),
        &[],
    ));
    assert!(msg.contains("--account-sid"), "{msg}");

    // RT: the encrypted track and the clear one are the uploaded files.
    let out = work.join("carol.mka");
    assert_ok(&download(
        &server,
        &rt_sealed,
        &sk_creds,
        &private,
        &out,
        &[],
    ));
    assert!(
        std::fs::read(&out).unwrap() == std::fs::read(&carol).unwrap(),
        "encrypted track differs"
    );
    let out = work.join("alice.mka");
    assert_ok(&download(&server, &rt_clear, &creds, &private, &out, &[]));
    assert!(
        std::fs::read(&out).unwrap() == std::fs::read(&alice).unwrap(),
        "clear track differs"
    );

    // CJ: alice 0..4 s, bob 2..5 s: a 5-second composition.
    let out = work.join("composition.webm");
    assert_ok(&download(&server, &cj, &creds, &private, &out, &[]));
    let seconds = decoded_seconds(&out);
    assert!(
        (seconds - 5.0).abs() < 0.15,
        "composition plays {seconds} s, expected 5"
    );
    let composed = std::fs::read(&out).unwrap();
    // To standard output as well.
    let piped = mediaseal()
        .args(["download", &cj, "--credentials", &creds, "--private-key"])
        .arg(&private)
        .args(["--out", "-", "--base-url", &server.base])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(piped.status.success(), "{}", stderr(&piped));
    assert!(piped.stdout == composed);

    // Errors, in words, leaving no output behind.
    let target = work.join("never.bin");
    let msg = assert_fails(&download(
        &server,
        &rt_sealed,
        &creds,
        &work.join("other_key.pem"),
        &target,
        &[],
    ));
    assert!(msg.contains("does not match"), "wrong key: {msg}");
    let msg = assert_fails(&download(
        &server,
        &re,
        &creds,
        &work.join("other_key.pem"),
        &target,
        &[],
    ));
    assert!(msg.contains("does not match"), "wrong key (voice): {msg}");
    let msg = assert_fails(&download(
        &server,
        &rt_sealed,
        &format!("{}:wrong", acct.sid),
        &private,
        &target,
        &[],
    ));
    assert!(msg.contains("credentials were refused"), "{msg}");
    let other_creds = format!("{}:{}", other.sid, other.token);
    let msg = assert_fails(&download(
        &server,
        &rt_sealed,
        &other_creds,
        &private,
        &target,
        &[],
    ));
    assert!(
        msg.contains("no such recording in this account"),
        "another account's recording: {msg}"
    );
    let msg = assert_fails(&download(
        &server,
        &cj,
        &other_creds,
        &private,
        &target,
        &[],
    ));
    assert!(msg.contains("no such composition"), "{msg}");
    let msg = assert_fails(&download(
        &server,
        &re,
        &other_creds,
        &private,
        &target,
        &[],
    ));
    assert!(msg.contains("no such recording"), "{msg}");
    let msg = assert_fails(&download(
        &server,
        "CA0123456789abcdef0123456789abcdef",
        &creds,
        &private,
        &target,
        &[],
    ));
    assert!(msg.contains("RE…, RT… or CJ…"), "{msg}");
    let msg = assert_fails(&download(&server, &cj, "nonsense", &private, &target, &[]));
    assert!(msg.contains("--credentials"), "{msg}");
    let down = mediaseal()
        .args(["download", &cj, "--credentials", &creds, "--private-key"])
        .arg(&private)
        .arg("--out")
        .arg(&target)
        .args(["--base-url", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    let msg = assert_fails(&down);
    assert!(msg.contains("cannot reach 127.0.0.1"), "{msg}");
    assert!(
        !target.exists(),
        "a failed download left {}",
        target.display()
    );
    assert!(
        entries(&work)
            .iter()
            .all(|n| !n.starts_with(".never") && !n.contains(".tmp")),
        "temporary files left: {:?}",
        entries(&work)
    );

    // The server kept no plaintext: not in --data, not in its temporary directory.
    let mut needles = Vec::new();
    for f in [&alice, &bob, &carol] {
        needles.extend(samples(&std::fs::read(f).unwrap()));
        needles.push(
            format!(
                "MEDIASEAL-PLAINTEXT-MARKER-{}",
                f.file_stem().unwrap().to_str().unwrap()
            )
            .into_bytes(),
        );
    }
    needles.extend(samples(&composed));
    needles.extend(samples(&voice));
    let found = leaks(&server.data, &needles, started);
    assert!(found.is_empty(), "plaintext in --data: {found:?}");
    let found = leaks(&server.tmp, &needles, started);
    assert!(
        found.is_empty(),
        "plaintext in the server's TMPDIR: {found:?}"
    );
    assert!(
        entries(&server.tmp).is_empty(),
        "the composition left files in TMPDIR: {:?}",
        entries(&server.tmp)
    );
}
