//! The worker as a process, without peers: hardening as seen from `/proc`, the `mlockall`
//! fallback when `RLIMIT_MEMLOCK` forbids locking, the control protocol (stats, errors,
//! completion), and exit when the control pipe closes.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use mediaseal_rooms::control::{Request, WorkerEvent};
use mediaseal_rooms::room::RoomEndReason;
use support::{Server, collect, proc_status_kb, proc_write_bytes, spawn_worker, worker_bin};

const ROOM: &str = "RM00000000000000000000000000000a01";

fn wait_event(server: &mut Server, what: impl Fn(&WorkerEvent) -> bool) -> WorkerEvent {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some((_, e)) = server.events.iter().find(|(_, e)| what(e)) {
            return e.clone();
        }
        assert!(
            Instant::now() < end,
            "event not seen; got {:?}",
            server.events
        );
        server.pump_for(Duration::from_millis(50));
    }
}

#[test]
fn hardened_worker_answers_the_control_protocol_and_ends_with_the_room() {
    let mut server = Server::new();
    let (worker, stderr) = spawn_worker(&[], "a", ROOM, "127.0.0.1:0", &[], &server.tx);
    let logs = collect(stderr);
    let pid = worker.pid;

    // Root runs the tests, so every measure takes effect.
    let h = &worker.hardening;
    assert!(
        h.not_dumpable && h.core_limit_zero && h.memory_locked && h.no_new_privs,
        "{h:?}"
    );
    assert!(
        proc_status_kb(pid, "VmLck") > 0,
        "mlockall locked the pages"
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    let words: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(
        &words[4..6],
        &["0", "0"],
        "RLIMIT_CORE soft and hard are 0: {core}"
    );
    assert_eq!(worker.udp.len(), 1);
    assert_ne!(worker.udp[0].port(), 0);
    server.workers.insert("a".into(), worker);

    // A bad offer is refused with Twilio's code; the room stays up.
    server.workers.get_mut("a").unwrap().send(&Request::Join {
        participant_sid: "PA00000000000000000000000000000001".into(),
        identity: "alice".into(),
        sdp: "v=0\r\nnot an offer".into(),
        subscribe: true,
        renegotiate: true,
    });
    let e = wait_event(&mut server, |e| matches!(e, WorkerEvent::Error { .. }));
    assert!(matches!(e, WorkerEvent::Error { code: 53403, .. }), "{e:?}");

    let WorkerEvent::Stats { room, process } = server.worker_stats("a") else {
        unreachable!()
    };
    assert_eq!(room.room_sid, ROOM);
    assert!(room.participants.is_empty());
    assert_eq!(process.pid, pid);
    assert!(process.hardening.memory_locked);

    assert_eq!(proc_write_bytes(pid), 0, "nothing written to storage");

    server
        .workers
        .get_mut("a")
        .unwrap()
        .send(&Request::Complete);
    let e = wait_event(&mut server, |e| matches!(e, WorkerEvent::RoomEnded { .. }));
    assert_eq!(
        e,
        WorkerEvent::RoomEnded {
            reason: RoomEndReason::Completed
        }
    );
    let status = server
        .workers
        .get_mut("a")
        .unwrap()
        .wait(Duration::from_secs(5));
    assert!(status.success(), "{status:?}");
    let logs = logs.join().unwrap();
    assert!(logs.contains("room worker ready"), "{logs}");
}

#[test]
fn closing_the_control_pipe_ends_the_worker() {
    let server = Server::new();
    let (mut worker, stderr) = spawn_worker(&[], "b", ROOM, "127.0.0.1:0", &[], &server.tx);
    let logs = collect(stderr);
    worker.close_control();
    let status = worker.wait(Duration::from_secs(5));
    assert!(status.success(), "{status:?}");
    assert!(logs.join().unwrap().contains("control pipe closed"));
}

#[test]
fn garbage_on_the_control_pipe_is_a_protocol_error() {
    let server = Server::new();
    let (mut worker, stderr) = spawn_worker(&[], "c", ROOM, "127.0.0.1:0", &[], &server.tx);
    let logs = collect(stderr);
    use std::io::Write;
    let stdin = worker.stdin.as_mut().unwrap();
    stdin.write_all(&u32::MAX.to_be_bytes()).unwrap();
    stdin.flush().unwrap();
    let status = worker.wait(Duration::from_secs(5));
    assert_eq!(status.code(), Some(2));
    assert!(logs.join().unwrap().contains("exceeds"), "the log says why");
}

/// As an unprivileged user with a 64 KiB RLIMIT_MEMLOCK, `mlockall` fails: the worker says so
/// in `ready` and its log, and runs on (or refuses, with `--require-mlock`).
#[test]
fn memlock_limit_falls_back_with_a_warning() {
    let prefix = [
        "prlimit",
        "--memlock=65536:65536",
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
    ];
    let mut server = Server::new();
    let (worker, stderr) = spawn_worker(&prefix, "d", ROOM, "127.0.0.1:0", &[], &server.tx);
    let logs = collect(stderr);
    let h = worker.hardening.clone();
    assert!(!h.memory_locked, "{h:?}");
    let reason = h.memory_lock_error.clone().unwrap();
    assert!(reason.contains("RLIMIT_MEMLOCK is 65536 bytes"), "{reason}");
    assert!(h.not_dumpable && h.core_limit_zero && h.no_new_privs);
    assert_eq!(proc_status_kb(worker.pid, "VmLck"), 0);
    server.workers.insert("d".into(), worker);
    let WorkerEvent::Stats { process, .. } = server.worker_stats("d") else {
        unreachable!()
    };
    assert_eq!(
        process.hardening.memory_lock_error.as_deref(),
        Some(reason.as_str())
    );
    let mut worker = server.workers.remove("d").unwrap();
    worker.close_control();
    assert!(worker.wait(Duration::from_secs(5)).success());
    let logs = logs.join().unwrap();
    assert!(logs.contains("mlockall") && logs.contains("WARN"), "{logs}");

    let out = Command::new("prlimit")
        .args([
            "--memlock=65536:65536",
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
        ])
        .args(["--clear-groups", "--"])
        .arg(worker_bin())
        .args([
            "--room-sid",
            ROOM,
            "--udp",
            "127.0.0.1:0",
            "--require-mlock",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--require-mlock"));
}
