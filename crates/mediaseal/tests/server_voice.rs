//! The server as a real process: the official Twilio helper library against it, signed callbacks
//! surviving a kill -9 mid-retry, no plaintext anywhere under `--data` (also after a kill -9
//! mid-upload), and HTTPS.

mod server;

use std::io::Write;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use server::{
    Server, agent, basic, create_account, files_containing, free_port, python, wait_until,
    workspace_root,
};

struct Receiver(Child);

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_receiver(port: u16, token: &str, log: &std::path::Path, fail_first: u32) -> Receiver {
    let script = workspace_root().join("interop/twilio/callback_receiver.py");
    let child = Command::new(python())
        .arg(script)
        .args([
            port.to_string(),
            token.to_owned(),
            log.display().to_string(),
            fail_first.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    wait_until("callback receiver", Duration::from_secs(20), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    Receiver(child)
}

fn deliveries(log: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn twilio_helper_library_drives_the_voice_api() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let acct = create_account(&data);
    let server = Server::start(&data, &dir.path().join("server.log"), &[]);
    let status = Command::new(python())
        .arg(workspace_root().join("interop/twilio/voice_suite.py"))
        .args([
            server.url(),
            acct.sid.clone(),
            acct.token,
            dir.path().display().to_string(),
            server::bin().to_owned(),
        ])
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the helper-library suite failed (see its output above)"
    );
}

#[test]
fn callbacks_are_signed_retried_and_survive_a_kill_mid_retry() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let acct = create_account(&data);
    let cb_port = free_port();
    let cb_log = dir.path().join("callbacks.jsonl");
    // The receiver refuses the first two deliveries, so the server has to retry.
    let _receiver = start_receiver(cb_port, &acct.token, &cb_log, 2);
    let mut server = Server::start(
        &data,
        &dir.path().join("server.log"),
        &["--callback-retry-ms", "1500"],
    );

    let url = format!(
        "{}/2010-04-01/Accounts/{}/Recordings.json?CallSid=CA0123456789abcdef0123456789abcdef&RecordingStatusCallback=http%3A%2F%2F127.0.0.1%3A{cb_port}%2Fhook%3Fx%3D1&RecordingStatusCallbackEvent=completed",
        server.url(),
        acct.sid
    );
    let mut r = agent()
        .post(&url)
        .header("Authorization", basic(&acct))
        .send(&b"RIFF-callback-audio"[..])
        .unwrap();
    assert_eq!(r.status(), 201);
    let rec: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let re = rec["sid"].as_str().unwrap().to_owned();

    // First attempt refused; kill the server before the retry, then start it again.
    wait_until(
        "the first refused delivery",
        Duration::from_secs(30),
        || !deliveries(&cb_log).is_empty(),
    );
    server.kill9();
    server.restart();
    wait_until(
        "a delivery accepted after the restart",
        Duration::from_secs(60),
        || deliveries(&cb_log).iter().any(|d| d["answered"] == 204),
    );
    let all = deliveries(&cb_log);
    assert!(
        all.len() >= 3,
        "expected two refusals then a success: {all:?}"
    );
    for d in &all {
        assert_eq!(
            d["signature_valid"], true,
            "RequestValidator rejected a delivery: {d}"
        );
        assert_eq!(d["params"]["RecordingSid"], re.as_str());
        assert_eq!(d["params"]["RecordingStatus"], "completed");
        assert!(d["path"].as_str().unwrap().starts_with("/hook?x=1"));
    }
    let tokens: std::collections::HashSet<_> = all
        .iter()
        .map(|d| d["idempotency_token"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        tokens.len(),
        1,
        "retries of one callback share one idempotency token"
    );
    // Delivered means done: no further deliveries after the success.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        deliveries(&cb_log)
            .iter()
            .filter(|d| d["answered"] == 204)
            .count(),
        1
    );
}

fn ingest(server: &Server, acct: &server::Account, body: &[u8]) -> serde_json::Value {
    let url = format!(
        "{}/2010-04-01/Accounts/{}/Recordings.json",
        server.url(),
        acct.sid
    );
    let mut r = agent()
        .post(&url)
        .header("Authorization", basic(acct))
        .send(body)
        .unwrap();
    assert_eq!(r.status(), 201);
    serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
}

#[test]
fn no_plaintext_under_data_or_in_logs_even_after_kill_mid_upload() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("server.log");
    let acct = create_account(&data);
    let mut server = Server::start(&data, &log, &[]);
    let marker = b"RECOGNISABLE-PLAINTEXT-7f3a9c";
    let mut audio = b"RIFF".to_vec();
    for _ in 0..20_000 {
        audio.extend_from_slice(marker);
    }

    // At-rest sealing.
    let plain = ingest(&server, &acct, &audio);
    assert_eq!(plain["encryption_details"], serde_json::Value::Null);
    // Customer-key sealing.
    let key_dir = dir.path().join("keys");
    let st = Command::new(server::bin())
        .args(["keygen", "--out"])
        .arg(&key_dir)
        .output()
        .unwrap();
    assert!(st.status.success());
    let pem = std::fs::read_to_string(key_dir.join("public_key.pem")).unwrap();
    let body = form_pair("PublicKey", &pem);
    let mut r = agent()
        .post(&format!("{}/v1/Credentials/PublicKeys", server.url()))
        .header("Authorization", basic(&acct))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(body.as_bytes())
        .unwrap();
    assert_eq!(r.status(), 201);
    let key: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let settings = format!(
        "EncryptionEnabled=true&EncryptionPublicKeySid={}",
        key["sid"].as_str().unwrap()
    );
    let r = agent()
        .post(&format!(
            "{}/2010-04-01/Accounts/{}/RecordingSettings.json",
            server.url(),
            acct.sid
        ))
        .header("Authorization", basic(&acct))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(settings.as_bytes())
        .unwrap();
    assert_eq!(r.status(), 200);
    let sealed = ingest(&server, &acct, &audio);
    assert_eq!(sealed["encryption_details"]["type"], "rsa-aes");

    // The plaintext is served back (at-rest) but appears nowhere on disk or in the log.
    let mut r = agent()
        .get(&format!(
            "{}/2010-04-01/Accounts/{}/Recordings/{}.wav",
            server.url(),
            acct.sid,
            plain["sid"].as_str().unwrap()
        ))
        .header("Authorization", basic(&acct))
        .call()
        .unwrap();
    assert_eq!(r.body_mut().read_to_vec().unwrap(), audio);
    let hits = files_containing(&data, marker);
    assert!(hits.is_empty(), "plaintext found on disk: {hits:?}");

    // Now a slow upload, killed halfway with SIGKILL.
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let head = format!(
        "POST /2010-04-01/Accounts/{}/Recordings.json HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Type: audio/x-wav\r\nContent-Length: {}\r\n\r\n",
        acct.sid,
        basic(&acct),
        audio.len() * 4
    );
    stream.write_all(head.as_bytes()).unwrap();
    for _ in 0..2 {
        stream.write_all(&audio).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    server.kill9();
    drop(stream);
    let hits = files_containing(&data, marker);
    assert!(
        hits.is_empty(),
        "plaintext on disk after kill -9 mid-upload: {hits:?}"
    );
    let log_text = std::fs::read(&log).unwrap();
    assert!(
        !log_text.windows(marker.len()).any(|w| w == marker),
        "plaintext in the server log"
    );
    // Nor the auth token, or any key material.
    let log_str = String::from_utf8_lossy(&log_text);
    assert!(
        !log_str.contains(&acct.token),
        "auth token in the server log"
    );
    assert!(
        !log_str.contains("PRIVATE KEY"),
        "key material in the server log"
    );
    assert!(
        !log_str.contains(
            sealed["encryption_details"]["encrypted_cek"]
                .as_str()
                .unwrap()
        ),
        "wrapped CEK in the log"
    );

    // After a restart the interrupted upload is not a recording.
    server.restart();
    let mut r = agent()
        .get(&format!(
            "{}/2010-04-01/Accounts/{}/Recordings.json",
            server.url(),
            acct.sid
        ))
        .header("Authorization", basic(&acct))
        .call()
        .unwrap();
    let list: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(
        list["recordings"].as_array().unwrap().len(),
        2,
        "the killed upload must not be visible"
    );
}

#[test]
fn serves_https_when_given_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .args([
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is needed; run scripts/setup.sh");
    assert!(ok.status.success());
    let acct = create_account(&data);
    let port = free_port();
    let log = dir.path().join("server.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(server::bin())
        .args(["serve", "--data"])
        .arg(&data)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .stderr(log_file)
        .spawn()
        .unwrap();
    let url = format!(
        "https://127.0.0.1:{port}/2010-04-01/Accounts/{}/Recordings.json",
        acct.sid
    );
    let mut out = None;
    for _ in 0..100 {
        let o = Command::new("curl")
            .args(["-s", "--cacert"])
            .arg(&cert)
            .args(["-u", &format!("{}:{}", acct.sid, acct.token), &url])
            .output()
            .expect("curl is needed; run scripts/setup.sh");
        if o.status.success() && !o.stdout.is_empty() {
            out = Some(o);
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
    let out = out.expect("no HTTPS answer");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["recordings"].is_array(), "{v}");
    assert!(v["uri"].as_str().is_some());
}

fn form_pair(name: &str, value: &str) -> String {
    let mut out = format!("{name}=");
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Every directory under `root` (and `root`) with its mode, every file with its mode.
fn modes_under(root: &std::path::Path) -> Vec<(std::path::PathBuf, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = vec![(
        root.to_path_buf(),
        std::fs::metadata(root).unwrap().permissions().mode() & 0o7777,
    )];
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let md = e.metadata().unwrap();
            if md.is_dir() {
                stack.push(e.path());
            }
            out.push((e.path(), md.permissions().mode() & 0o7777));
        }
    }
    out
}

fn assert_owner_only(data: &std::path::Path) {
    let modes = modes_under(data);
    for (path, mode) in &modes {
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(
            *mode & !want,
            0,
            "{} has mode {mode:04o}, wanted at most {want:04o}",
            path.display()
        );
    }
    for name in ["mediaseal.db", "mediaseal.db-wal", "mediaseal.db-shm"] {
        assert!(
            modes.iter().any(|(p, _)| p.ends_with(name)),
            "{name} missing under {}",
            data.display()
        );
    }
    assert!(
        modes
            .iter()
            .any(|(p, _)| p.parent().and_then(|d| d.parent()) == Some(&*data.join("objects"))),
        "no object file under {}",
        data.display()
    );
}

#[test]
fn data_directory_is_owner_only_older_deployments_are_tightened_and_crash_leftovers_swept() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    // A data directory below a parent that is not ours to change (as /var/lib would be).
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("server.log");
    let acct = create_account(&data);
    let mut server = Server::start(&data, &log, &[]);
    ingest(&server, &acct, b"RIFF-not-really-audio");
    // From the first start: 0700 directories, 0600 files (database, WAL, objects, keys).
    assert_owner_only(&data);
    server.kill9();
    assert_eq!(
        std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777,
        0o755,
        "the parent of the data directory is left alone"
    );

    // A deployment from before the rule: world-readable everything.
    for (path, _) in modes_under(&data) {
        let mode = if path.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    // And a temporary object file from a writer the kill cut off, last touched two hours ago.
    let crashed = data.join("objects/.partial/AC0_RE0.00000000000000001");
    std::fs::write(&crashed, b"cut off").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&crashed)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(7200))
        .unwrap();
    std::fs::write(&log, b"").unwrap();
    server.restart();
    assert!(
        !crashed.exists(),
        "the crash's temporary file is swept at start"
    );
    ingest(&server, &acct, b"RIFF-second");
    assert_owner_only(&data);
    // Each tightening was logged with the path and its old mode.
    let log_text = std::fs::read_to_string(&log).unwrap();
    for needle in [
        data.display().to_string(),
        data.join("mediaseal.db").display().to_string(),
        data.join("objects").display().to_string(),
    ] {
        assert!(
            log_text.lines().any(|l| l.contains("tightened permissions")
                && l.contains(&format!("\"{needle}\""))
                && l.contains("0755") | l.contains("0644")),
            "no tightening logged for {needle}:\n{log_text}"
        );
    }
}
