//! The supervisor with the real `mediaseal-room-worker`: start, `ready`, completion within the
//! grace period, a crash reported as a failed room without touching another room, the
//! per-node cap, and a worker that cannot be run.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use mediaseal_room_host::{ExitOutcome, HostConfig, RoomExit, RoomHost, RoomSpec, StartError};
use mediaseal_rooms::control::Request;
use tokio::sync::mpsc::UnboundedReceiver;

fn spec(n: u32) -> RoomSpec {
    RoomSpec {
        room_sid: format!("RM{n:032x}"),
        account_sid: format!("AC{n:032x}"),
        max_participants: 10,
        empty_room_timeout: None,
        unused_room_timeout: None,
    }
}

fn alive(pid: u32) -> bool {
    // A zombie still has a /proc entry: only a running or sleeping process counts.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.contains(") Z ") && !s.contains(") X "))
}

async fn next_exit(exits: &mut UnboundedReceiver<RoomExit>) -> RoomExit {
    tokio::time::timeout(Duration::from_secs(5), exits.recv())
        .await
        .expect("an exit report within 5 s")
        .expect("the host is alive")
}

#[tokio::test]
async fn a_room_owns_a_hardened_worker_until_it_completes() {
    let (host, mut exits) = RoomHost::new(HostConfig::new(mediaseal_test_support::room_worker()));
    let info = host.start(spec(1)).await.expect("worker starts");
    assert!(
        info.hardening.no_new_privs && info.hardening.not_dumpable,
        "{info:?}"
    );
    assert_eq!(host.pid(&spec(1).room_sid), Some(info.pid));
    assert!(alive(info.pid));
    let status = std::fs::read_to_string(format!("/proc/{}/status", info.pid)).unwrap();
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    // The server's environment (credentials) does not reach the worker.
    let environ = std::fs::read(format!("/proc/{}/environ", info.pid)).unwrap_or_default();
    assert!(
        !environ.windows(4).any(|w| w == b"PATH"),
        "environment was cleared"
    );

    assert!(host.send(&spec(1).room_sid, Request::Stats).await);
    assert!(
        !host.send(&spec(9).room_sid, Request::Stats).await,
        "no such room"
    );
    assert!(
        matches!(
            host.start(spec(1)).await,
            Err(StartError::AlreadyRunning(_))
        ),
        "one worker per room"
    );

    let started = std::time::Instant::now();
    assert!(host.complete(&spec(1).room_sid).await);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(!alive(info.pid), "the process is gone");
    assert_eq!(host.pid(&spec(1).room_sid), None);
    let exit = next_exit(&mut exits).await;
    assert_eq!(exit.room_sid, spec(1).room_sid);
    assert_eq!(exit.account_sid, spec(1).account_sid);
    assert_eq!(exit.outcome, ExitOutcome::Completed);
    assert!(
        !host.complete(&spec(1).room_sid).await,
        "nothing left to end"
    );
    assert!(host.is_empty());
}

#[tokio::test]
async fn a_killed_worker_fails_its_room_only() {
    let (host, mut exits) = RoomHost::new(HostConfig::new(mediaseal_test_support::room_worker()));
    let a = host.start(spec(2)).await.unwrap();
    let b = host.start(spec(3)).await.unwrap();
    assert_ne!(a.pid, b.pid, "one process per room");

    let killed = Command::new("kill")
        .args(["-9", &a.pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let exit = next_exit(&mut exits).await;
    assert_eq!(exit.room_sid, spec(2).room_sid);
    assert_eq!(
        exit.outcome,
        ExitOutcome::Failed("killed by signal 9".into())
    );
    assert_eq!(host.pid(&spec(2).room_sid), None);

    assert!(alive(b.pid), "the other room's worker runs on");
    assert_eq!(host.pid(&spec(3).room_sid), Some(b.pid));
    assert!(host.complete(&spec(3).room_sid).await);
    assert_eq!(next_exit(&mut exits).await.outcome, ExitOutcome::Completed);
}

#[tokio::test]
async fn a_room_nobody_joins_ends_itself_after_its_unused_room_timeout() {
    let mut config = HostConfig::new(mediaseal_test_support::room_worker());
    // A minute of room timeout lasts a second here.
    config.room_timeout_minute = Duration::from_secs(1);
    let (host, mut exits) = RoomHost::new(config);
    let timed = RoomSpec {
        unused_room_timeout: Some(1),
        empty_room_timeout: Some(1),
        ..spec(4)
    };
    let worker = host.start(timed).await.unwrap();
    // Without timeouts a room stays however long nobody comes.
    let lasting = host.start(spec(5)).await.unwrap();
    let exit = next_exit(&mut exits).await;
    assert_eq!(exit.room_sid, spec(4).room_sid);
    assert_eq!(
        exit.outcome,
        ExitOutcome::Ended(mediaseal_rooms::room::RoomEndReason::UnusedRoomTimeout)
    );
    assert!(!alive(worker.pid), "the worker exited");
    assert!(alive(lasting.pid));
    assert!(host.complete(&spec(5).room_sid).await);
}

#[tokio::test]
async fn the_node_cap_refuses_one_room_too_many() {
    let mut config = HostConfig::new(mediaseal_test_support::room_worker());
    config.max_rooms = 1;
    let (host, _exits) = RoomHost::new(config);
    host.start(spec(4)).await.unwrap();
    let refused = host.start(spec(5)).await.unwrap_err();
    assert!(matches!(refused, StartError::Full(1)), "{refused}");
    assert!(refused.to_string().contains("--max-rooms"));
    assert!(host.complete(&spec(4).room_sid).await);
    host.start(spec(5)).await.expect("room for one again");
    assert!(host.complete(&spec(5).room_sid).await);
}

#[tokio::test]
async fn bad_sids_and_missing_or_broken_workers_are_clear_errors() {
    let (host, _exits) = RoomHost::new(HostConfig::new(PathBuf::from("/nonexistent/worker")));
    let e = host.start(spec(6)).await.unwrap_err();
    assert!(matches!(e, StartError::Spawn { .. }), "{e}");
    assert!(e.to_string().contains("/nonexistent/worker"), "{e}");
    assert!(host.is_empty(), "the slot is given back");

    let mut bad = spec(6);
    bad.room_sid = "--udp".into();
    assert!(matches!(host.start(bad).await, Err(StartError::BadSid(_))));

    // A worker that cannot bind its address exits before `ready`.
    let mut config = HostConfig::new(mediaseal_test_support::room_worker());
    config.udp = vec!["192.0.2.1:9".parse().unwrap()];
    let (host, _exits) = RoomHost::new(config);
    let e = host.start(spec(7)).await.unwrap_err();
    assert!(matches!(e, StartError::NotReady { .. }), "{e}");
    assert!(host.is_empty());
}

/// A stand-in worker that says `ready` and then ignores its control pipe: `complete` must
/// still end it, by a kill once the grace period is over.
#[tokio::test]
async fn a_worker_that_ignores_complete_is_killed_after_the_grace_period() {
    let dir = std::env::temp_dir().join(format!("room-host-hung-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("hung-worker");
    std::fs::write(
        &script,
        r#"#!/usr/bin/python3
import json, os, struct, sys, time
sid = sys.argv[sys.argv.index("--room-sid") + 1]
ready = json.dumps({"type": "ready", "room_sid": sid, "pid": os.getpid(), "udp": [],
    "hardening": {"not_dumpable": False, "core_limit_zero": False, "memory_locked": False,
    "no_new_privs": False}}).encode()
sys.stdout.buffer.write(struct.pack(">I", len(ready)) + ready)
sys.stdout.flush()
print("x" * 10000, file=sys.stderr, flush=True)
time.sleep(3600)
"#,
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut config = HostConfig::new(script);
    config.complete_grace = Duration::from_millis(300);
    let (host, mut exits) = RoomHost::new(config);
    let info = host.start(spec(8)).await.expect("the stand-in says ready");
    assert!(alive(info.pid));
    let asked = std::time::Instant::now();
    assert!(host.complete(&spec(8).room_sid).await);
    let took = asked.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert!(!alive(info.pid));
    assert_eq!(next_exit(&mut exits).await.outcome, ExitOutcome::Completed);
    let _ = std::fs::remove_dir_all(&dir);
}
