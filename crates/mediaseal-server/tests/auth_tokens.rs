//! Issue 10, item 2: auth token rotation in Twilio's shapes (`/v1/AuthTokens/Secondary`,
//! `/v1/AuthTokens/Promote`), who may rotate, webhook signing across a rotation, and signed
//! `/Media` download URLs refused once their account is suspended or closed.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use mediaseal_server::signed_url::{ServeMode, sign};
use mediaseal_store::model::Account;
use serde_json::Value;
use support::{Creds, Resp, TestApp, wav_with_marker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECONDARY: &str = "/v1/AuthTokens/Secondary";
const PROMOTE: &str = "/v1/AuthTokens/Promote";

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn fields(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn is_iso8601(v: &Value) -> bool {
    let s = v.as_str().unwrap_or("");
    s.len() == 20 && s.ends_with('Z') && s.as_bytes()[10] == b'T'
}

/// `GET` the account itself with `sid:token`; its status says whether the token authenticates.
async fn try_token(app: &TestApp, sid: &str, token: &str) -> StatusCode {
    app.get(
        &format!("/2010-04-01/Accounts/{sid}.json"),
        &Creds::Basic(sid.to_owned(), token.to_owned()),
    )
    .await
    .status
}

async fn post(app: &TestApp, path: &str, creds: &Creds) -> Resp {
    app.post_form(path, creds, &[]).await
}

#[tokio::test]
async fn secondary_token_is_created_deleted_and_promoted_in_twilio_shapes() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let primary = Creds::of(&a);

    // Nothing to delete or promote yet.
    for r in [
        app.delete(SECONDARY, &primary).await,
        post(&app, PROMOTE, &primary).await,
    ] {
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
        assert_eq!(r.json()["code"], 20404);
        assert!(r.json()["message"].as_str().unwrap().contains("secondary"));
    }

    let r = post(&app, SECONDARY, &primary).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let made = r.json();
    assert_eq!(
        keys(&made),
        fields(&[
            "account_sid",
            "date_created",
            "date_updated",
            "secondary_auth_token",
            "url"
        ])
    );
    assert_eq!(made["account_sid"], a.sid.as_str());
    assert_eq!(made["url"], "http://mediaseal.test/v1/AuthTokens/Secondary");
    assert!(is_iso8601(&made["date_created"]) && is_iso8601(&made["date_updated"]));
    let secondary = made["secondary_auth_token"].as_str().unwrap().to_owned();
    assert_ne!(secondary, a.auth_token);
    assert!(secondary.len() >= 32);

    // Both tokens authenticate while the secondary exists.
    assert_eq!(try_token(&app, &a.sid, &a.auth_token).await, StatusCode::OK);
    assert_eq!(try_token(&app, &a.sid, &secondary).await, StatusCode::OK);
    // The account resource still shows the primary.
    let shown = app
        .get(&format!("/2010-04-01/Accounts/{}.json", a.sid), &primary)
        .await
        .json();
    assert_eq!(shown["auth_token"], a.auth_token.as_str());

    // Deleted: the secondary stops working at once; deleting again is 404.
    let r = app.delete(SECONDARY, &primary).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert!(r.body.is_empty());
    assert_eq!(
        try_token(&app, &a.sid, &secondary).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(try_token(&app, &a.sid, &a.auth_token).await, StatusCode::OK);
    assert_eq!(
        app.delete(SECONDARY, &primary).await.status,
        StatusCode::NOT_FOUND
    );

    // Creating twice replaces: only the newest secondary works.
    let first = post(&app, SECONDARY, &primary).await.json()["secondary_auth_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = post(&app, SECONDARY, &primary).await.json()["secondary_auth_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(first, second);
    assert_eq!(
        try_token(&app, &a.sid, &first).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(try_token(&app, &a.sid, &second).await, StatusCode::OK);

    // Promoted (here with the secondary's own credentials): it becomes the primary, and the old
    // primary is refused from then on.
    let r = post(&app, PROMOTE, &Creds::Basic(a.sid.clone(), second.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let promoted = r.json();
    assert_eq!(
        keys(&promoted),
        fields(&[
            "account_sid",
            "auth_token",
            "date_created",
            "date_updated",
            "url"
        ])
    );
    assert_eq!(promoted["account_sid"], a.sid.as_str());
    assert_eq!(promoted["auth_token"], second.as_str());
    assert_eq!(
        promoted["url"],
        "http://mediaseal.test/v1/AuthTokens/Promote"
    );
    assert!(is_iso8601(&promoted["date_created"]) && is_iso8601(&promoted["date_updated"]));
    assert_eq!(
        try_token(&app, &a.sid, &a.auth_token).await,
        StatusCode::UNAUTHORIZED,
        "the old primary still authenticates after the promotion"
    );
    assert_eq!(try_token(&app, &a.sid, &second).await, StatusCode::OK);
    let shown = app
        .get(
            &format!("/2010-04-01/Accounts/{}.json", a.sid),
            &Creds::Basic(a.sid.clone(), second.clone()),
        )
        .await
        .json();
    assert_eq!(shown["auth_token"], second.as_str());
    // Nothing is left to promote.
    let r = post(&app, PROMOTE, &Creds::Basic(a.sid.clone(), second)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let stored = app.state.meta.account(&a.sid).await.unwrap().unwrap();
    assert_eq!(stored.secondary_auth_token, None);
}

#[tokio::test]
async fn only_the_accounts_own_auth_token_rotates_it() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let b = app.account().await;
    let child = app.subaccount(&a).await;

    // An API key of the account: 403 on every rotation route, and nothing changes.
    let r = app
        .post_form(
            &format!("/2010-04-01/Accounts/{}/Keys.json", a.sid),
            &Creds::of(&a),
            &[("FriendlyName", "k")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let key = r.json();
    let via_key = Creds::Basic(
        key["sid"].as_str().unwrap().to_owned(),
        key["secret"].as_str().unwrap().to_owned(),
    );
    let (_, a_secondary) = with_secondary(&app, &a).await;
    for r in [
        post(&app, SECONDARY, &via_key).await,
        app.delete(SECONDARY, &via_key).await,
        post(&app, PROMOTE, &via_key).await,
    ] {
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
        assert_eq!(r.json()["code"], 20403);
        assert!(!String::from_utf8_lossy(&r.body).contains(&a.auth_token));
    }
    let stored = app.state.meta.account(&a.sid).await.unwrap().unwrap();
    assert_eq!(stored.auth_token, a.auth_token);
    assert_eq!(
        stored.secondary_auth_token.map(|s| s.token),
        Some(a_secondary.clone())
    );

    // No credentials, or wrong ones: 401.
    for creds in [
        Creds::None,
        Creds::Basic(a.sid.clone(), "wrong".to_owned()),
        // The placeholder compared when an account has no secondary never authenticates.
        Creds::Basic(b.sid.clone(), "-".to_owned()),
    ] {
        assert_eq!(
            post(&app, SECONDARY, &creds).await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            post(&app, PROMOTE, &creds).await.status,
            StatusCode::UNAUTHORIZED
        );
    }

    // Another account rotates only itself: a's secondary does not open b, b's does not open a,
    // and b's promotion leaves a as it was.
    let (b_primary, b_secondary) = with_secondary(&app, &b).await;
    assert_eq!(
        try_token(&app, &a.sid, &b_secondary).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        try_token(&app, &b.sid, &a_secondary).await,
        StatusCode::UNAUTHORIZED
    );
    let r = post(&app, PROMOTE, &b_primary).await;
    assert_eq!(r.status, StatusCode::OK);
    let stored = app.state.meta.account(&a.sid).await.unwrap().unwrap();
    assert_eq!(stored.auth_token, a.auth_token);
    assert_eq!(
        stored.secondary_auth_token.map(|s| s.token),
        Some(a_secondary.clone())
    );
    assert_eq!(try_token(&app, &a.sid, &a.auth_token).await, StatusCode::OK);
    assert_eq!(try_token(&app, &a.sid, &a_secondary).await, StatusCode::OK);

    // A parent's rotation is its own, not its subaccounts'; a subaccount rotates itself.
    let kid = app.state.meta.account(&child.sid).await.unwrap().unwrap();
    assert_eq!(kid.secondary_auth_token, None);
    assert_eq!(
        try_token(&app, &child.sid, &a_secondary).await,
        StatusCode::UNAUTHORIZED
    );
    let r = post(&app, SECONDARY, &Creds::of(&child)).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["account_sid"], child.sid.as_str());

    // The routes know their methods.
    assert_eq!(
        app.get(SECONDARY, &Creds::of(&a)).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        app.delete(PROMOTE, &Creds::of(&a)).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

/// Creates a secondary token for `account`; returns its primary credentials and the secondary.
async fn with_secondary(app: &TestApp, account: &Account) -> (Creds, String) {
    let creds = Creds::of(account);
    let r = post(app, SECONDARY, &creds).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let token = r.json()["secondary_auth_token"]
        .as_str()
        .unwrap()
        .to_owned();
    (creds, token)
}

/// One delivery as a receiver saw it: the path, the form body and `X-Twilio-Signature`.
#[derive(Debug, Clone)]
struct Delivery {
    path: String,
    params: Vec<(String, String)>,
    signature: String,
}

/// A webhook receiver on loopback that records what arrives and answers 204.
async fn receiver() -> (u16, Arc<Mutex<Vec<Delivery>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let store = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let store = store.clone();
            tokio::spawn(async move {
                let mut raw = Vec::new();
                let mut buf = [0u8; 8192];
                let (head, body_start) = loop {
                    let Ok(n) = conn.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    raw.extend_from_slice(&buf[..n]);
                    if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                        break (String::from_utf8_lossy(&raw[..i]).into_owned(), i + 4);
                    }
                };
                let header = |name: &str| {
                    head.lines()
                        .find_map(|l| {
                            l.split_once(':')
                                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                                .map(|(_, v)| v.trim().to_owned())
                        })
                        .unwrap_or_default()
                };
                let len: usize = header("content-length").parse().unwrap_or(0);
                while raw.len() < body_start + len {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => raw.extend_from_slice(&buf[..n]),
                    }
                }
                let params = form_urlencoded::parse(&raw[body_start..body_start + len])
                    .into_owned()
                    .collect();
                let path = head
                    .lines()
                    .next()
                    .and_then(|l| l.split(' ').nth(1))
                    .unwrap_or("")
                    .to_owned();
                store.lock().unwrap().push(Delivery {
                    path,
                    params,
                    signature: header("x-twilio-signature"),
                });
                let _ = conn
                    .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (port, seen)
}

/// "Webhook signing keeps working across a rotation": a callback queued before a promotion is
/// delivered afterwards, signed with the primary at delivery time, so a receiver validating with
/// the account's current auth token accepts it (and the old token no longer validates it).
#[tokio::test]
async fn a_callback_queued_before_a_promotion_is_signed_with_the_new_primary() {
    let app = TestApp::with_config(|c| {
        c.service.callback_poll = Duration::from_millis(50);
        // The receiver is on loopback, which webhooks may reach only when allow-listed.
        c.service.webhook_policy =
            mediaseal_service::egress::WebhookPolicy::allowing(["127.0.0.0/8".parse().unwrap()]);
    })
    .await;
    let a = app.account().await;
    let (port, seen) = receiver().await;
    let hook = format!("http://127.0.0.1:{port}/hook?x=1");
    let q = format!(
        "?RecordingStatusCallback={}&CallSid=CA0123456789abcdef0123456789abcdef",
        form_urlencoded::byte_serialize(hook.as_bytes()).collect::<String>()
    );
    let r = app.ingest(&a, &q, wav_with_marker(1, b"rotate")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let re = r.json()["sid"].as_str().unwrap().to_owned();
    assert_eq!(app.state.meta.callbacks_for(&re).await.unwrap().len(), 1);

    // Rotate while the callback waits in the outbox (no outbox runs yet).
    let (creds, secondary) = with_secondary(&app, &a).await;
    let r = post(&app, PROMOTE, &creds).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    let mut jobs = mediaseal_service::runner::Runner::new();
    let services = app.state.services.clone();
    jobs.spawn("outbox", move |cancel| {
        mediaseal_service::outbox::run(services, cancel)
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let delivery = loop {
        if let Some(d) = seen.lock().unwrap().first().cloned() {
            break d;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the queued callback was not delivered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(delivery.path, "/hook?x=1");
    assert!(
        delivery
            .params
            .iter()
            .any(|(k, v)| k == "RecordingSid" && *v == re)
    );
    let with = |token: &str| mediaseal_server::callbacks::signature(token, &hook, &delivery.params);
    assert_eq!(
        delivery.signature,
        with(&secondary),
        "a receiver validating with the current primary refuses the callback"
    );
    assert_ne!(delivery.signature, with(&a.auth_token));
}

/// A signed `/Media` download URL works while its account is active and stops once it is
/// suspended or closed, with the same 403 as a forged URL (nothing said about the object).
#[tokio::test]
async fn a_signed_media_url_stops_working_once_its_account_is_suspended_or_closed() {
    let app = TestApp::new().await;
    let parent = app.account().await;
    let child = app.subaccount(&parent).await;
    let r = app
        .ingest(&child, "", wav_with_marker(1, b"suspend-me"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let re = r.json()["sid"].as_str().unwrap().to_owned();
    let key = app
        .state
        .meta
        .recording(&child.sid, &re, false)
        .await
        .unwrap()
        .unwrap()
        .object_key
        .unwrap();
    // The URL `/Media` hands out when the store cannot presign: the service's own signed token.
    let token = sign(
        &app.state.config.url_signing_key,
        &key,
        ServeMode::AtRest,
        "audio/x-matroska",
        u64::MAX / 2,
    );
    let url = format!("/v1/MediaDownload/{token}");
    let forged = app
        .get(&format!("/v1/MediaDownload/{token}x"), &Creds::None)
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get(&url, &Creds::None).await.status, StatusCode::OK);

    let account_uri = format!("/2010-04-01/Accounts/{}.json", child.sid);
    let set = |status: &'static str| {
        let (app, uri, creds) = (&app, &account_uri, Creds::of(&parent));
        async move {
            let r = app.post_form(uri, &creds, &[("Status", status)]).await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        }
    };
    set("suspended").await;
    let refused = app.get(&url, &Creds::None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        refused.json(),
        forged.json(),
        "the refusal differs from a forged URL's"
    );
    // Suspension is reversible, and so is the refusal.
    set("active").await;
    assert_eq!(app.get(&url, &Creds::None).await.status, StatusCode::OK);
    set("closed").await;
    let refused = app.get(&url, &Creds::None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.json(), forged.json());
}
