//! Issue 12, the room supervisor in a real `mediaseal serve`: with no `--room-worker`, the
//! `mediaseal-room-worker` next to the executable runs each group room as a hardened child
//! process whose log reaches the server's log with the room SID; `Status=completed` ends it
//! within 2 s; and when the server itself is killed, its room workers exit (their control pipe
//! closed) instead of running on as orphans; started again, the server marks the room it left
//! in progress `failed`.

mod server;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use server::{Account, Server, agent, basic, create_account};

/// Builds the worker into the target directory `mediaseal` runs from, where `serve` looks for
/// it by default.
fn build_worker() {
    mediaseal_test_support::room_worker();
    let next_to_serve = PathBuf::from(server::bin()).with_file_name("mediaseal-room-worker");
    assert!(next_to_serve.is_file(), "{}", next_to_serve.display());
}

fn post(server: &Server, account: &Account, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let mut r = agent()
        .post(&format!("{}{path}", server.url()))
        .header("Authorization", basic(account))
        .send_form(form.iter().copied())
        .unwrap();
    let body = r.body_mut().read_to_string().unwrap();
    (
        r.status().as_u16(),
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}")),
    )
}

/// PIDs of live (not zombie) `mediaseal-room-worker` children of `parent`.
fn worker_children(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or_default()
                .to_owned()
        };
        // comm is cut at 15 bytes: "mediaseal-room-".
        if field("Name:").starts_with("mediaseal-room")
            && field("PPid:") == parent.to_string()
            && !field("State:").starts_with('Z')
        {
            found.push(pid);
        }
    }
    found
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < timeout, "{what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serve_runs_each_group_room_in_its_own_worker_process() {
    build_worker();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("serve.log");
    let account = create_account(&data);
    let mut server = Server::start(&data, &log, &["--max-rooms", "4"]);
    let serve_pid = server.child.id();

    let (code, room) = post(&server, &account, "/v1/Rooms", &[("UniqueName", "standup")]);
    assert_eq!(code, 201, "{room}");
    let sid = room["sid"].as_str().unwrap().to_owned();
    let workers = worker_children(serve_pid);
    assert_eq!(workers.len(), 1, "one worker for the group room");
    let status = std::fs::read_to_string(format!("/proc/{}/status", workers[0])).unwrap();
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");

    let (code, p2p) = post(&server, &account, "/v1/Rooms", &[("Type", "peer-to-peer")]);
    assert_eq!(code, 201, "{p2p}");
    assert_eq!(
        worker_children(serve_pid).len(),
        1,
        "peer-to-peer starts nothing"
    );

    let asked = Instant::now();
    let (code, done) = post(
        &server,
        &account,
        &format!("/v1/Rooms/{sid}"),
        &[("Status", "completed")],
    );
    assert_eq!((code, done["status"].as_str()), (202, Some("completed")));
    wait_for("the worker exits", Duration::from_secs(2), || {
        worker_children(serve_pid).is_empty()
    });
    assert!(asked.elapsed() < Duration::from_secs(2));

    // The worker's own log line is in the server's log, with the room SID.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines().any(|l| l.contains("mediaseal_room_worker")
            && l.contains("room worker ready")
            && l.contains(&sid)),
        "worker log forwarded: {text}"
    );

    // A server that dies takes its rooms' processes with it.
    let (code, again) = post(&server, &account, "/v1/Rooms", &[("UniqueName", "later")]);
    assert_eq!(code, 201, "{again}");
    let orphan = worker_children(serve_pid);
    assert_eq!(orphan.len(), 1);
    let later = again["sid"].as_str().unwrap().to_owned();
    server.kill9();
    wait_for(
        "the worker exits with its server",
        Duration::from_secs(2),
        || {
            std::fs::read_to_string(format!("/proc/{}/status", orphan[0]))
                .map_or(true, |s| s.contains("State:\tZ"))
        },
    );

    // The same node started again: the room it left in progress has no process any more.
    server.restart();
    let fetch = |server: &Server| {
        let mut r = agent()
            .get(&format!("{}/v1/Rooms/{later}", server.url()))
            .header("Authorization", basic(&account))
            .call()
            .unwrap();
        serde_json::from_str::<Value>(&r.body_mut().read_to_string().unwrap()).unwrap()
    };
    let room = fetch(&server);
    assert_eq!(room["status"], "failed", "{room}");
    assert!(room["end_time"].is_string(), "{room}");
    // A second start changes nothing more.
    server.restart();
    assert_eq!(fetch(&server)["end_time"], room["end_time"]);
}
