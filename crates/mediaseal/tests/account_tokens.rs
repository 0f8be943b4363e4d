//! Issue 10, item 2: offline, `mediaseal account secondary-token create|delete` and
//! `mediaseal account promote-token` rotate an account's auth token in the store, as
//! `/v1/AuthTokens/Secondary` and `/v1/AuthTokens/Promote` do over HTTP; and the official Twilio
//! helper library drives those two resources against a running server.

mod common;
mod server;

use std::path::Path;

use common::*;
use mediaseal_store::model::Account;
use serde_json::Value;

fn json_of(out: &std::process::Output) -> Value {
    assert_ok(out);
    serde_json::from_slice(&out.stdout).expect("the command prints JSON")
}

/// The account as the server's store holds it.
fn stored(data: &Path, sid: &str) -> Account {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let meta = mediaseal_server::serve::open_meta(data, None)
            .await
            .unwrap();
        meta.account(sid).await.unwrap().unwrap()
    })
}

fn close(data: &Path, sid: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let meta = mediaseal_server::serve::open_meta(data, None)
            .await
            .unwrap();
        meta.update_account(sid, None, Some("closed"), 1)
            .await
            .unwrap();
    });
}

fn tokens(data: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["account"];
    all.extend_from_slice(args);
    all.extend(["--data", p(data)]);
    run(all)
}

#[test]
fn account_tokens_rotate_offline() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let made = json_of(&run(["account", "create", "--data", p(&data)]));
    let sid = made["sid"].as_str().unwrap().to_owned();
    let primary = made["auth_token"].as_str().unwrap().to_owned();

    // Nothing to delete or promote yet: one sentence, and what to do.
    for args in [
        vec!["promote-token", sid.as_str()],
        vec!["secondary-token", "delete", sid.as_str()],
    ] {
        let out = tokens(&data, &args);
        let sentence = assert_fails(&out);
        assert_eq!(out.status.code(), Some(1));
        assert!(sentence.contains("no secondary auth token"), "{sentence}");
        assert!(stderr(&out).contains("hint: run 'mediaseal account secondary-token create"));
    }

    // Created: printed in the API's shape, kept beside the primary.
    let first = json_of(&tokens(&data, &["secondary-token", "create", &sid]));
    assert_eq!(first["account_sid"], sid.as_str());
    let first_token = first["secondary_auth_token"].as_str().unwrap().to_owned();
    assert!(first["date_created"].as_str().unwrap().ends_with('Z'));
    assert!(first["date_updated"].as_str().unwrap().ends_with('Z'));
    let a = stored(&data, &sid);
    assert_eq!(a.auth_token, primary);
    assert_eq!(
        a.secondary_auth_token.map(|s| s.token).as_deref(),
        Some(first_token.as_str())
    );

    // Created again: replaced. Deleted: gone, the primary untouched.
    let second = json_of(&tokens(&data, &["secondary-token", "create", &sid]));
    let second_token = second["secondary_auth_token"].as_str().unwrap().to_owned();
    assert_ne!(first_token, second_token);
    let deleted = json_of(&tokens(&data, &["secondary-token", "delete", &sid]));
    assert_eq!(deleted["account_sid"], sid.as_str());
    assert_eq!(deleted["secondary_auth_token"], Value::Null);
    let a = stored(&data, &sid);
    assert_eq!(
        (a.auth_token.as_str(), a.secondary_auth_token),
        (primary.as_str(), None)
    );

    // Promoted: the secondary becomes the primary and the old primary is gone.
    let third = json_of(&tokens(&data, &["secondary-token", "create", &sid]));
    let third_token = third["secondary_auth_token"].as_str().unwrap().to_owned();
    let promoted = json_of(&tokens(&data, &["promote-token", &sid]));
    assert_eq!(promoted["account_sid"], sid.as_str());
    assert_eq!(promoted["auth_token"], third_token.as_str());
    assert_eq!(promoted["date_created"], third["date_created"]);
    let a = stored(&data, &sid);
    assert_eq!(a.auth_token, third_token);
    assert_eq!(a.secondary_auth_token, None);

    // Bad input: a malformed SID is a usage error (2); an unknown one says so (1).
    let out = tokens(&data, &["promote-token", "ACnope"]);
    let sentence = assert_fails(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(sentence.contains("not an account SID"), "{sentence}");
    let unknown = format!("AC{}", "0".repeat(32));
    let out = tokens(&data, &["secondary-token", "create", &unknown]);
    let sentence = assert_fails(&out);
    assert!(sentence.contains("there is no account"), "{sentence}");

    // A closed account's tokens are not rotated.
    close(&data, &sid);
    let out = tokens(&data, &["secondary-token", "create", &sid]);
    let sentence = assert_fails(&out);
    assert!(sentence.contains("closed"), "{sentence}");
    assert_eq!(stored(&data, &sid).secondary_auth_token, None);
}

#[test]
fn twilio_helper_library_rotates_the_auth_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let acct = server::create_account(&data);
    let running = server::Server::start(&data, &dir.path().join("server.log"), &[]);
    let status = std::process::Command::new(server::python())
        .arg(server::workspace_root().join("interop/twilio/token_rotation.py"))
        .args([running.url(), acct.sid.clone(), acct.token.clone()])
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the helper-library rotation failed (see its output above)"
    );
    let now = stored(&data, &acct.sid);
    assert_ne!(now.auth_token, acct.token, "the primary was not rotated");
    assert_eq!(now.secondary_auth_token, None);
}
