//! A real `mediaseal serve` verifies room Access Tokens signed with the API keys it minted
//! (docs/ROOMS.md §3, "the key gap"): twilio-python creates a key over REST, signs a token with
//! it, and joins a group room through `/v1/Rooms/{RM}/Connect` (`joined`); once the key is
//! deleted the token is refused with 20107 (interop/twilio/room_token_join.py). The key's
//! secret is in none of the server's files.
//!
//! Needs `.venv` with twilio-python and aiohttp (interop/requirements.txt), and builds the room
//! worker next to `mediaseal`.

mod server;

use std::path::PathBuf;
use std::process::Command;

use server::{Server, create_account, files_containing};

/// Builds the worker into the target directory `mediaseal` runs from, where `serve` looks for
/// it by default.
fn build_worker() {
    mediaseal_test_support::room_worker();
    let next_to_serve = PathBuf::from(server::bin()).with_file_name("mediaseal-room-worker");
    assert!(next_to_serve.is_file(), "{}", next_to_serve.display());
}

#[test]
fn serve_accepts_tokens_signed_with_keys_it_minted() {
    build_worker();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("serve.log");
    let account = create_account(&data);
    let running = Server::start(&data, &log, &["--max-rooms", "2"]);
    let out = Command::new(server::python())
        .arg(server::workspace_root().join("interop/twilio/room_token_join.py"))
        .args([running.url(), account.sid, account.token])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "room_token_join.py failed:\n{stdout}\n{}\nserver log: {}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let last = stdout.lines().last().unwrap_or_default();
    let key: serde_json::Value = serde_json::from_str(last).unwrap();
    let secret = key["key_secret"].as_str().unwrap();
    assert!(!secret.is_empty());
    drop(running);
    assert_eq!(
        files_containing(dir.path(), secret.as_bytes()),
        Vec::<PathBuf>::new(),
        "the API key secret is in the clear on disk"
    );
}
