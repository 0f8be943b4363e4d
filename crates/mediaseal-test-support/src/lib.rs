//! Test helpers shared by every crate's tests (never a dependency of shipped code).
//!
//! - [`workspace_root`], [`python`], [`require_tool`], [`free_port`]: finding the real peers the
//!   interop tests drive. A missing peer fails the test with a hint; nothing here skips.
//! - [`room_worker`]: the `mediaseal-room-worker` binary the room tests spawn.
//! - [`wav`]: deterministic PCM WAV files, with markers a plaintext scan can look for.
//! - [`scan`]: the plaintext scanner that checks nothing readable reached the disk.
//! - [`capture`]: tcpdump captures, their UDP datagrams, RFC 7983 classes through TURN framing.
//! - [`coturn`]: a real coturn TURN server with the shared-secret scheme.
//! - [`netns`]: network namespaces and veth pairs (root only).

#![deny(missing_docs)]

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;

pub mod capture;
pub mod coturn;
pub mod netns;
pub mod scan;
pub mod wav;

/// What to run when a peer the tests need is missing.
pub const SETUP_HINT: &str = "run scripts/setup.sh (the README's test command does) to install it";

/// The root of the cargo workspace (the directory holding `Cargo.lock`).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file() && dir.join("crates").is_dir())
        .expect("the test-support crate sits inside the workspace")
        .to_path_buf()
}

/// The test venv's Python (`$MEDIASEAL_PYTHON`, else `<workspace>/.venv/bin/python`), checked to
/// import every module in `modules`. Fails the calling test, with a hint, when it cannot.
#[track_caller]
pub fn python(modules: &[&str]) -> PathBuf {
    let path = std::env::var_os("MEDIASEAL_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/python"));
    let probe = if modules.is_empty() {
        "pass".to_owned()
    } else {
        format!("import {}", modules.join(", "))
    };
    let out = Command::new(&path).args(["-c", &probe]).output();
    match out {
        Ok(out) if out.status.success() => path,
        Ok(out) => panic!(
            "Python at {} cannot `{probe}`: {}; {SETUP_HINT} (or set MEDIASEAL_PYTHON)",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!(
            "no Python at {} ({e}); {SETUP_HINT} (or set MEDIASEAL_PYTHON)",
            path.display()
        ),
    }
}

/// The path of a command-line tool on `PATH`, after checking that `tool probe…` runs. Fails the
/// calling test when the tool is missing or broken.
#[track_caller]
pub fn require_tool(tool: &str, probe: &[&str]) -> PathBuf {
    let found = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file());
    let Some(path) = found else {
        panic!("`{tool}` is not installed or not on PATH; {SETUP_HINT}");
    };
    let ok = Command::new(&path)
        .args(probe)
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "`{tool} {}` does not run; {SETUP_HINT}",
        probe.join(" ")
    );
    path
}

/// Where [`free_ports`] looks: below Linux's default ephemeral range (32768–60999), so an
/// outgoing connection or an unbound socket elsewhere on the machine is never given one of these
/// ports between the check and the peer's bind. The voice tests' fixed ports (14444–15061,
/// 21000–21149, RTP from 30000) lie outside it.
const HANDED_OUT: std::ops::Range<u16> = 22000..30000;

/// Ports are handed out in blocks this wide, one block per call: peers that bind the ports after
/// the one they are given (SIPp's RTCP and video ports, baresip's TLS port) stay in their block.
const BLOCK: u16 = 16;

/// `width` (at most 16) consecutive ports on 127.0.0.1, each free over both TCP and UDP a
/// moment ago; returns the first. Every call takes the next 16-port block of 22000–29999, below
/// the kernel's ephemeral range, each test process from its own starting block. So two tests (or
/// a test and a peer a previous one left behind) are not handed the same or neighbouring ports.
/// Peers that bind more than the port they are given want `width` > 1: baresip listens for TLS
/// on its SIP port + 1, and SIPp's media port is followed by three more.
pub fn free_ports(width: u16) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT_BLOCK: AtomicU32 = AtomicU32::new(u32::MAX);
    let width = width.max(1);
    assert!(
        width <= BLOCK,
        "{width} ports at once is more than a block ({BLOCK})"
    );
    let blocks = u32::from((HANDED_OUT.end - HANDED_OUT.start) / BLOCK);
    // Seeded once per process from its id, spread over the range.
    let _ = NEXT_BLOCK.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % blocks,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..blocks {
        let block = NEXT_BLOCK.fetch_add(1, Ordering::Relaxed) % blocks;
        let first = HANDED_OUT.start + u16::try_from(block).expect("a block index") * BLOCK;
        let all_free = (first..first + width).all(|port| {
            TcpListener::bind(("127.0.0.1", port)).is_ok()
                && UdpSocket::bind(("127.0.0.1", port)).is_ok()
        });
        if all_free {
            return first;
        }
    }
    panic!("no {width} free ports on 127.0.0.1 in {HANDED_OUT:?}")
}

/// A port on 127.0.0.1 that was free over TCP and UDP a moment ago (see [`free_ports`]).
pub fn free_port() -> u16 {
    free_ports(1)
}

/// A UDP port on 127.0.0.1 that was free a moment ago (see [`free_ports`]).
pub fn free_udp_port() -> u16 {
    free_ports(1)
}

/// Whether `needle` occurs anywhere in `haystack` (an empty needle never does).
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The `mediaseal-room-worker` binary for tests that run rooms: `$MEDIASEAL_TEST_ROOM_WORKER` when
/// set (the README's test command points it at the binary its workspace build made, so nothing
/// is rebuilt with another feature set), else built once per test binary with
/// `cargo build -p mediaseal-room-worker` into the calling test's target directory.
pub fn room_worker() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("MEDIASEAL_TEST_ROOM_WORKER") {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "MEDIASEAL_TEST_ROOM_WORKER={} is not a file",
                path.display()
            );
            return path;
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "-p",
                "mediaseal-room-worker",
                "--bin",
                "mediaseal-room-worker",
            ])
            .current_dir(workspace_root())
            .status()
            .expect("run cargo build");
        assert!(
            status.success(),
            "cargo build -p mediaseal-room-worker failed"
        );
        // target/<profile>/deps/<test> → target/<profile>/mediaseal-room-worker
        let exe = std::env::current_exe().expect("test executable path");
        let bin = exe
            .parent()
            .and_then(Path::parent)
            .expect("target directory")
            .join("mediaseal-room-worker");
        assert!(bin.is_file(), "{} was not built", bin.display());
        bin
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_workspace_and_subslices() {
        assert!(workspace_root().join("Cargo.toml").is_file());
        assert!(contains(b"abcdef", b"cde"));
        assert!(!contains(b"abcdef", b"ced"));
        assert!(!contains(b"abc", b""));
        assert_ne!(free_port(), 0);
    }

    #[test]
    fn handed_out_ports_are_distinct_free_and_outside_the_ephemeral_range() {
        let ports: Vec<u16> = (0..50).map(|_| free_ports(2)).collect();
        for &p in &ports {
            assert!(HANDED_OUT.contains(&p) && HANDED_OUT.contains(&(p + BLOCK - 1)));
            TcpListener::bind(("127.0.0.1", p + 1)).expect("the second port is free too");
        }
        // No two are neighbours: each owns a block.
        for (i, &a) in ports.iter().enumerate() {
            for &b in &ports[i + 1..] {
                assert!(a.abs_diff(b) >= BLOCK, "{a} and {b} share a block");
            }
        }
        // A port someone holds is skipped.
        let held = TcpListener::bind(("127.0.0.1", free_port())).unwrap();
        let held_port = held.local_addr().unwrap().port();
        assert!((0..200).all(|_| free_port() != held_port));
    }
}
