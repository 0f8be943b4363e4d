//! Issue 12, item 2: Network Traversal Service tokens (`POST …/Tokens.json`) in Twilio's shape,
//! with coturn's shared-secret credentials; `Ttl` bounds; one account never mints for another;
//! a server without TURN says so. The coturn interop is in `crates/mediaseal/tests/turn_tokens.rs`.

mod support;

use std::collections::BTreeSet;

use axum::http::StatusCode;
use base64::Engine as _;
use mediaseal_server::TurnConfig;
use serde_json::Value;
use support::{Creds, TestApp};
use zeroize::Zeroizing;

const SECRET: &[u8] = b"coturn-shared-secret";
const TURN_UDP: &str = "turn:127.0.0.1:3478?transport=udp";
const TURN_TCP: &str = "turns:turn.example.com:5349?transport=tcp";
const STUN: &str = "stun:127.0.0.1:3478";

fn tokens(sid: &str) -> String {
    format!("/2010-04-01/Accounts/{sid}/Tokens.json")
}

async fn turn_app(ttl_max: Option<u64>) -> TestApp {
    let urls = [STUN, TURN_UDP, TURN_TCP].map(str::to_owned);
    let turn = TurnConfig::new(&urls, Some(Zeroizing::new(SECRET.to_vec())), ttl_max).unwrap();
    TestApp::with_config(|c| c.turn = turn).await
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

/// The credential computed here, apart from the server: base64(HMAC-SHA1(secret, username)).
fn expected_credential(username: &str) -> String {
    use aws_lc_rs::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, SECRET);
    base64::engine::general_purpose::STANDARD.encode(hmac::sign(&key, username.as_bytes()))
}

fn unix_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

#[tokio::test]
async fn token_has_twilios_shape_and_coturns_credentials() {
    let app = turn_app(None).await;
    let a = app.account().await;
    let before = unix_now();
    let r = app.post_form(&tokens(&a.sid), &Creds::of(&a), &[]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let t = r.json();
    assert_eq!(
        keys(&t),
        BTreeSet::from([
            "account_sid",
            "date_created",
            "date_updated",
            "ice_servers",
            "password",
            "ttl",
            "username"
        ])
    );
    assert_eq!(t["account_sid"], a.sid.as_str());
    assert_eq!(t["ttl"], "86400", "Twilio's default, as a string");
    assert!(t["date_created"].as_str().unwrap().ends_with("+0000"));
    assert_eq!(t["date_created"], t["date_updated"]);

    // username = "<expiry>:<AccountSid>", expiry = now + ttl.
    let username = t["username"].as_str().unwrap();
    let (expiry, sid) = username.split_once(':').unwrap();
    assert_eq!(sid, a.sid);
    let expiry: i64 = expiry.parse().unwrap();
    assert!(
        (before + 86_400..=unix_now() + 86_400).contains(&expiry),
        "{expiry}"
    );
    assert_eq!(t["password"], expected_credential(username).as_str());

    let servers = t["ice_servers"].as_array().unwrap();
    assert_eq!(servers.len(), 3);
    // STUN: the URL only, as Twilio sends it.
    assert_eq!(keys(&servers[0]), BTreeSet::from(["url", "urls"]));
    assert_eq!(servers[0]["urls"], STUN);
    assert_eq!(servers[0]["url"], STUN);
    for (s, url) in servers[1..].iter().zip([TURN_UDP, TURN_TCP]) {
        assert_eq!(
            keys(s),
            BTreeSet::from(["credential", "url", "urls", "username"])
        );
        assert_eq!(s["urls"], url);
        assert_eq!(s["url"], url);
        assert_eq!(s["username"], username);
        assert_eq!(s["credential"], t["password"]);
    }
}

#[tokio::test]
async fn ttl_is_bounded_and_named_when_wrong() {
    let app = turn_app(None).await;
    let a = app.account().await;
    let creds = Creds::of(&a);
    for ok in ["1", "3600", "86400"] {
        let r = app.post_form(&tokens(&a.sid), &creds, &[("Ttl", ok)]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{ok}: {:?}", r.body);
        let t = r.json();
        assert_eq!(t["ttl"], ok);
        let username = t["username"].as_str().unwrap();
        let expiry: i64 = username.split_once(':').unwrap().0.parse().unwrap();
        let ttl: i64 = ok.parse().unwrap();
        assert!((expiry - unix_now() - ttl).abs() <= 2, "{username}");
        assert_eq!(t["password"], expected_credential(username).as_str());
    }
    for bad in ["0", "-5", "86401", "1.5", "day", ""] {
        let r = app
            .post_form(&tokens(&a.sid), &creds, &[("Ttl", bad)])
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", r.body);
        let e = r.json();
        assert_eq!(e["code"], 20001);
        assert!(e["message"].as_str().unwrap().contains("Ttl"), "{e}");
    }

    // The operator's --turn-ttl-max lowers both the bound and the default.
    let app = turn_app(Some(600)).await;
    let a = app.account().await;
    let creds = Creds::of(&a);
    let r = app.post_form(&tokens(&a.sid), &creds, &[]).await;
    assert_eq!(r.json()["ttl"], "600");
    let r = app
        .post_form(&tokens(&a.sid), &creds, &[("Ttl", "601")])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["message"].as_str().unwrap().contains("1 to 600"));
}

#[tokio::test]
async fn only_the_account_or_its_parent_mints_tokens() {
    let app = turn_app(None).await;
    let a = app.account().await;
    let b = app.account().await;
    let sub = app.subaccount(&a).await;

    // Another account's tokens: 404, as if it did not exist.
    let r = app.post_form(&tokens(&b.sid), &Creds::of(&a), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    assert_eq!(r.json()["code"], 20404);
    // A subaccount cannot reach its parent either.
    let r = app.post_form(&tokens(&a.sid), &Creds::of(&sub), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // No or wrong credentials: 401.
    for creds in [Creds::None, Creds::Basic(a.sid.clone(), "wrong".to_owned())] {
        let r = app.post_form(&tokens(&a.sid), &creds, &[]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // The parent mints for its subaccount, and the username names the subaccount.
    let r = app.post_form(&tokens(&sub.sid), &Creds::of(&a), &[]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let t = r.json();
    assert_eq!(t["account_sid"], sub.sid.as_str());
    assert!(
        t["username"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{}", sub.sid))
    );

    // An API key of the account works too (Twilio's helper libraries often use one).
    let r = app
        .post_form(
            &format!("/2010-04-01/Accounts/{}/Keys.json", a.sid),
            &Creds::of(&a),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let key = r.json();
    let key_creds = Creds::Basic(
        key["sid"].as_str().unwrap().to_owned(),
        key["secret"].as_str().unwrap().to_owned(),
    );
    let r = app.post_form(&tokens(&a.sid), &key_creds, &[]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = app.post_form(&tokens(&b.sid), &key_creds, &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn without_turn_the_server_says_so_and_stun_only_needs_no_secret() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let r = app.post_form(&tokens(&a.sid), &Creds::of(&a), &[]).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.body);
    let e = r.json();
    assert_eq!(e["code"], 20503);
    assert!(e["message"].as_str().unwrap().contains("--turn-url"), "{e}");
    // Still 404 for another account: the answer says nothing about it.
    let b = app.account().await;
    let r = app.post_form(&tokens(&b.sid), &Creds::of(&a), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let turn = TurnConfig::new(&[STUN.to_owned()], None, None).unwrap();
    let app = TestApp::with_config(|c| c.turn = turn).await;
    let a = app.account().await;
    let r = app.post_form(&tokens(&a.sid), &Creds::of(&a), &[]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let t = r.json();
    assert_eq!(t["username"], Value::Null);
    assert_eq!(t["password"], Value::Null);
    assert_eq!(t["ice_servers"][0]["urls"], STUN);
    assert_eq!(t["ice_servers"].as_array().unwrap().len(), 1);
}
