//! Access Tokens minted by twilio-python's `AccessToken` + `VideoGrant` (9.13.0): accepted when
//! they should be, refused with Twilio's code when not.
//!
//! Two sources: `testdata/rooms/access_tokens.json`, minted once by
//! `tests/interop/mint_tokens.py` at a fixed time (no Python needed), and the same script run
//! live from `$MEDIASEAL_PYTHON` or `<workspace>/.venv/bin/python` (the test fails, never skips,
//! without it).

#![allow(clippy::disallowed_methods)] // tests and benches read the clock for an epoch

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use mediaseal_rooms::token::{
    AccessTokenError, ApiKey, RoomRef, VerifyOptions, verify_access_token,
    verify_access_token_for_room,
};
use serde_json::Value;

fn workspace_root() -> PathBuf {
    mediaseal_test_support::workspace_root()
}

/// Expected outcome per case: `Ok(())` or the Twilio code.
const CASES: &[(&str, Result<(), u32>)] = &[
    ("room_by_name", Ok(())),
    ("room_by_sid", Ok(())),
    ("any_room", Ok(())),
    ("with_region", Ok(())),
    ("max_ttl", Ok(())),
    ("other_room", Err(20106)),
    ("expired", Err(20104)),
    ("ttl_over_24h", Err(20104)),
    ("not_yet_valid", Err(20105)),
    ("bad_signature", Err(20107)),
    ("unknown_key", Err(20107)),
    ("other_account", Err(20107)),
    ("alg_hs512", Err(20102)),
    ("alg_none", Err(20102)),
    ("no_identity", Err(20101)),
    ("no_video_grant", Err(20101)),
];

fn check(vectors: &Value) {
    let now = vectors["now"].as_u64().unwrap();
    let account = vectors["account_sid"].as_str().unwrap().to_owned();
    let key_sid = vectors["api_key_sid"].as_str().unwrap().to_owned();
    let secret = vectors["api_key_secret"].as_str().unwrap().to_owned();
    let lookup = move |sid: &str| {
        (sid == key_sid).then(|| ApiKey::new(account.clone(), secret.as_bytes().to_vec()))
    };
    let room = RoomRef {
        sid: vectors["room_sid"].as_str().unwrap(),
        unique_name: vectors["room_name"].as_str().unwrap(),
    };
    let tokens = vectors["tokens"].as_object().unwrap();
    assert_eq!(tokens.len(), CASES.len(), "every minted case is checked");
    for (case, expected) in CASES {
        let token = tokens[*case].as_str().unwrap();
        let got = verify_access_token_for_room(token, room, now, &lookup, VerifyOptions::default());
        match (expected, &got) {
            (Ok(()), Ok(v)) => {
                assert_eq!(v.identity, "alice", "{case}");
                assert_eq!(v.account_sid, vectors["account_sid"], "{case}");
            }
            (Err(code), Err(e)) => {
                assert_eq!(e.code(), *code, "{case}: {e}");
                // Nothing about the room in a refusal.
                let m = e.to_string();
                assert!(
                    !m.contains(room.unique_name) && !m.contains(room.sid),
                    "{case}: {m}"
                );
            }
            _ => panic!("{case}: expected {expected:?}, got {got:?}"),
        }
    }

    // A grant for the right room read at the wrong time: expiry is exact, nbf has leeway.
    let token = tokens["any_room"].as_str().unwrap();
    let exp = now + 3600;
    assert!(verify_access_token(token, exp - 1, &lookup, VerifyOptions::default()).is_ok());
    assert_eq!(
        verify_access_token(token, exp, &lookup, VerifyOptions::default()),
        Err(AccessTokenError::Expired)
    );
    let strict = VerifyOptions {
        not_before_leeway: 0,
    };
    assert_eq!(
        verify_access_token(token, now - 1, &lookup, strict),
        Err(AccessTokenError::NotYetValid)
    );
    assert!(verify_access_token(token, now - 1, &lookup, VerifyOptions::default()).is_ok());

    let region = verify_access_token(
        tokens["with_region"].as_str().unwrap(),
        now,
        &lookup,
        VerifyOptions::default(),
    )
    .unwrap();
    assert_eq!(region.region.as_deref(), Some("ie1"));
    let by_name = verify_access_token(
        tokens["room_by_name"].as_str().unwrap(),
        now,
        &lookup,
        VerifyOptions::default(),
    )
    .unwrap();
    assert_eq!(by_name.room.as_deref(), Some(room.unique_name));
    assert!(
        !format!("{by_name:?}").contains("alice"),
        "identity stays out of Debug"
    );
}

#[test]
fn stored_twilio_python_tokens() {
    let text = std::fs::read_to_string(workspace_root().join("testdata/rooms/access_tokens.json"))
        .unwrap();
    check(&serde_json::from_str(&text).unwrap());
}

#[test]
fn live_twilio_python_tokens() {
    let python = std::env::var_os("MEDIASEAL_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/python"));
    assert!(
        python.exists(),
        "needs Python with twilio 9.13.0 at {} (set MEDIASEAL_PYTHON or create .venv from \
         interop/requirements.txt)",
        python.display()
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut child = Command::new(python)
        .args(["-W", "ignore"])
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/mint_tokens.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{{\"now\": {now}}}").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    check(&serde_json::from_slice(&out.stdout).unwrap());
}
