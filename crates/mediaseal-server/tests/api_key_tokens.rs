//! Room Access Tokens signed with API keys this service minted (docs/ROOMS.md §3, "the key
//! gap"): a key created over REST keeps its secret sealed, the store-backed
//! [`StoredApiKeys`] that `serve` installs opens it, and a token twilio-python signed with it
//! joins a group room through `GET /v1/Rooms/{Room}/Connect`. Refused with 20107: a deleted
//! key, a key of a suspended account, and a key made before secrets were kept. The secret is
//! nowhere in the database files.
//!
//! Needs `.venv` with twilio-python (interop/requirements.txt) and builds the room worker.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use axum::http::StatusCode;
use futures::{SinkExt, StreamExt};
use mediaseal_rooms::signal::{ClientMessage, ServerMessage};
use mediaseal_server::access_token_keys::{self, StoredApiKeys};
use mediaseal_server::room_processes::{AccessTokenKeys, HostConfig, install_room_host};
use mediaseal_store::model::{Account, ApiKey};
use serde_json::Value;
use support::{Creds, TestApp};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Tokens for `room_name` signed with (`key_sid`, `secret`), minted by twilio-python.
fn mint(account_sid: &str, key_sid: &str, secret: &str, room_name: &str) -> Value {
    let python = mediaseal_test_support::python(&["twilio"]);
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/mint_room_tokens.py");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let input = serde_json::to_vec(&serde_json::json!({
        "now": now,
        "account_sid": account_sid,
        "api_key_sid": key_sid,
        "api_key_secret": secret,
        "room_name": room_name,
    }))
    .unwrap();
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run mint_room_tokens.py");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "mint_room_tokens.py failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `POST …/Keys.json`: the new key's SID and secret.
async fn create_key(app: &TestApp, account: &Account) -> (String, String) {
    let r = app
        .post_form(
            &format!("/2010-04-01/Accounts/{}/Keys.json", account.sid),
            &Creds::of(account),
            &[("FriendlyName", "rooms")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let body = r.json();
    (
        body["sid"].as_str().unwrap().to_owned(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

/// Joins `room` with `token`: the participant's room SID, or the code of the refusal.
async fn join(addr: SocketAddr, room: &str, token: &Value) -> Result<String, u32> {
    let url = format!("ws://{addr}/v1/Rooms/{room}/Connect");
    let (mut ws, _): (Ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("WebSocket upgrade");
    let join = ClientMessage::Join {
        token: token.as_str().unwrap().to_owned(),
    };
    ws.send(Message::text(join.to_json())).await.unwrap();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("a server message within 15 s");
        match next {
            Some(Ok(Message::Text(text))) => {
                return match ServerMessage::from_json(text.as_bytes()).unwrap() {
                    ServerMessage::Joined { room_sid, .. } => Ok(room_sid),
                    ServerMessage::Error { code, .. } => Err(code),
                    other => panic!("expected joined or error, got {other:?}"),
                };
            }
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                panic!("the socket closed without an answer to join")
            }
            Some(Ok(_)) => {}
        }
    }
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_rest_created_keys_join_and_others_are_refused() {
    let app = TestApp::new().await;
    let _host = install_room_host(
        &app.state,
        HostConfig::new(mediaseal_test_support::room_worker()),
    )
    .expect("room host");
    assert!(access_token_keys::install(&app.state));
    assert!(
        !access_token_keys::install(&app.state),
        "the hook is installed once"
    );
    let hook = StoredApiKeys::from_state(&app.state).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = mediaseal_server::app(app.state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let account = app.account().await;
    let creds = Creds::of(&account);
    let r = app
        .post_form("/v1/Rooms", &creds, &[("UniqueName", "standup")])
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let room_sid = r.json()["sid"].as_str().unwrap().to_owned();

    // A key made over REST: hashed and sealed, never in the clear.
    let (key_sid, secret) = create_key(&app, &account).await;
    let stored = app.state.meta.api_key(&key_sid).await.unwrap().unwrap();
    let sealed = stored.secret_sealed.as_deref().expect("a sealed secret");
    assert!(!sealed.contains(&secret));
    assert_eq!(
        stored.secret_hash,
        mediaseal_server::auth::hash_secret(&secret)
    );
    let opened = hook
        .api_key(&key_sid)
        .await
        .expect("the hook finds the key");
    assert_eq!(opened.account_sid, account.sid);
    assert_eq!(opened.secret.as_slice(), secret.as_bytes());
    // The key still authenticates requests by its hash.
    let by_key = Creds::Basic(key_sid.clone(), secret.clone());
    let r = app.get("/v1/Rooms", &by_key).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // twilio-python's token for that key joins; one with another secret does not.
    let tokens = mint(&account.sid, &key_sid, &secret, "standup");
    assert_eq!(join(addr, "standup", &tokens["alice"]).await, Ok(room_sid));
    assert_eq!(
        join(addr, "standup", &tokens["bad_signature"]).await,
        Err(20107)
    );

    // A key made before secrets were kept (only its hash): refused, with a log line.
    let legacy_secret = "a-legacy-api-key-secret-0123456789";
    let legacy = ApiKey {
        sid: format!("SK{}", "1".repeat(32)),
        account_sid: account.sid.clone(),
        friendly_name: "legacy".to_owned(),
        secret_hash: mediaseal_server::auth::hash_secret(legacy_secret),
        secret_sealed: None,
        date_created: 1,
        date_updated: 1,
    };
    app.state.meta.insert_api_key(&legacy).await.unwrap();
    assert!(hook.api_key(&legacy.sid).await.is_none());
    let legacy_tokens = mint(&account.sid, &legacy.sid, legacy_secret, "standup");
    assert_eq!(
        join(addr, "standup", &legacy_tokens["alice"]).await,
        Err(20107)
    );

    // A key of an account that is then suspended: accepted before (an any-room token is told
    // the room is not in that account: 53106), refused after.
    let other = app.account().await;
    let (other_key, other_secret) = create_key(&app, &other).await;
    let other_tokens = mint(&other.sid, &other_key, &other_secret, "standup");
    assert_eq!(
        join(addr, "standup", &other_tokens["any_room"]).await,
        Err(53106)
    );
    app.state
        .meta
        .update_account(&other.sid, None, Some("suspended"), 2)
        .await
        .unwrap()
        .unwrap();
    assert!(hook.api_key(&other_key).await.is_none());
    assert_eq!(
        join(addr, "standup", &other_tokens["any_room"]).await,
        Err(20107)
    );

    // No secret in the clear in any file of the database (or anything else the node wrote).
    for path in files(app.dir.path()) {
        let bytes = std::fs::read(&path).unwrap();
        for s in [&secret, &other_secret] {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "{} holds an API key secret in the clear",
                path.display()
            );
        }
    }

    // A deleted key takes its sealed secret with it.
    let r = app
        .delete(
            &format!("/2010-04-01/Accounts/{}/Keys/{key_sid}.json", account.sid),
            &creds,
        )
        .await;
    assert!(r.status.is_success(), "{:?}", r.status);
    assert_eq!(app.state.meta.api_key(&key_sid).await.unwrap(), None);
    assert!(hook.api_key(&key_sid).await.is_none());
    assert_eq!(join(addr, "standup", &tokens["alice"]).await, Err(20107));
}
