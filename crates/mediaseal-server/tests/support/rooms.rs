//! The room rig shared by the room tests (room_signalling.rs, room_browser.rs): a server on a
//! real port with a `mediaseal-room-worker` per group room, the one API key its Access Tokens
//! are signed with (minted by twilio-python), the signalling WebSocket, and aiortc peers
//! (`mediaseal-room-worker/tests/interop/peer.py`) joined through it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::http::StatusCode;
use futures::{SinkExt, StreamExt};
use mediaseal_rooms::signal::{ClientMessage, ServerMessage};
use mediaseal_rooms::token::ApiKey;
use mediaseal_server::room_processes::{AccessTokenKeys, HostConfig, RoomHost, install_room_host};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{Creds, TestApp};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub const KEY_SID: &str = "SK7777777777777777777777777777777a";
pub const KEY_SECRET: &str = "room-signalling-test-api-key-secret";

/// The one API key the tests sign with.
struct TestKeys {
    account_sid: String,
}

#[async_trait]
impl AccessTokenKeys for TestKeys {
    async fn api_key(&self, api_key_sid: &str) -> Option<ApiKey> {
        (api_key_sid == KEY_SID).then(|| ApiKey::new(self.account_sid.clone(), KEY_SECRET))
    }
}

/// A server on a real port with room workers and the test key; its account's credentials.
pub struct Rig {
    pub app: TestApp,
    pub host: RoomHost,
    pub addr: SocketAddr,
    pub creds: Creds,
    pub account_sid: String,
}

impl Rig {
    /// Starts the server with room workers run as `config` says (its worker arguments choose
    /// e.g. the DTLS version).
    pub async fn start(config: HostConfig) -> Self {
        Self::start_with(config, |_| {}).await
    }

    /// As [`Self::start`], with the server's configuration adjusted first (e.g. its TURN
    /// servers).
    pub async fn start_with(
        config: HostConfig,
        adjust: impl FnOnce(&mut mediaseal_server::Config),
    ) -> Self {
        let app = TestApp::with_config(adjust).await;
        let host = install_room_host(&app.state, config).expect("room host");
        let account = app.account().await;
        assert!(app.state.set_access_token_keys(Arc::new(TestKeys {
            account_sid: account.sid.clone(),
        })));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = mediaseal_server::app(app.state.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            creds: Creds::of(&account),
            account_sid: account.sid,
            app,
            host,
            addr,
        }
    }

    pub async fn create_room(&self, form: &[(&str, &str)]) -> String {
        let r = self.app.post_form("/v1/Rooms", &self.creds, form).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.json()["sid"].as_str().unwrap().to_owned()
    }

    /// Polls a list resource (up to 5 s) until `done` holds for its items under `key`.
    pub async fn list_until(
        &self,
        uri: &str,
        key: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        self.list_within(uri, key, Duration::from_secs(5), done)
            .await
    }

    /// Polls a list resource (up to `within`) until `done` holds for its items under `key`.
    pub async fn list_within(
        &self,
        uri: &str,
        key: &str,
        within: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let end = Instant::now() + within;
        loop {
            let r = self.app.get(uri, &self.creds).await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            let rows = r.json()[key].as_array().cloned().unwrap_or_default();
            if done(&rows) {
                return rows;
            }
            assert!(Instant::now() < end, "{uri}: {rows:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The room's connected participants and their tracks as twilio-python reads them
    /// (`tests/interop/room_participants.py`).
    pub async fn twilio_participants(&self, room: &str) -> Value {
        self.twilio_script("room_participants.py", serde_json::json!({ "room": room }))
            .await
    }

    /// Runs `tests/interop/{script}` with twilio-python against this rig: `input`, plus the
    /// rig's `base_url`, `account_sid` and `auth_token`, as JSON on its stdin; its JSON answer
    /// from its stdout.
    pub async fn twilio_script(&self, script: &str, mut input: Value) -> Value {
        let Creds::Basic(account_sid, auth_token) = &self.creds else {
            panic!("the rig's account has credentials")
        };
        input["base_url"] = Value::from(format!("http://{}", self.addr));
        input["account_sid"] = Value::from(account_sid.as_str());
        input["auth_token"] = Value::from(auth_token.as_str());
        let python = mediaseal_test_support::python(&["twilio"]);
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/interop")
            .join(script);
        let mut child = tokio::process::Command::new(python)
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("run {script}: {e}"));
        let bytes = serde_json::to_vec(&input).unwrap();
        child.stdin.take().unwrap().write_all(&bytes).await.unwrap();
        let out = child.wait_with_output().await.unwrap();
        assert!(
            out.status.success(),
            "{script} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub async fn complete_room(&self, sid: &str) {
        let r = self
            .app
            .post_form(
                &format!("/v1/Rooms/{sid}"),
                &self.creds,
                &[("Status", "completed")],
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    }

    /// Tokens for `room_name`, minted by twilio-python.
    pub fn tokens(&self, room_name: &str) -> Value {
        let python = mediaseal_test_support::python(&["twilio"]);
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/mint_room_tokens.py");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let input = serde_json::to_vec(&serde_json::json!({
            "now": now,
            "account_sid": self.account_sid,
            "api_key_sid": KEY_SID,
            "api_key_secret": KEY_SECRET,
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

    pub async fn connect(&self, room: &str) -> Ws {
        let url = format!("ws://{}/v1/Rooms/{room}/Connect", self.addr);
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("WebSocket upgrade");
        ws
    }
}

pub async fn send(ws: &mut Ws, message: &ClientMessage) {
    ws.send(Message::text(message.to_json())).await.unwrap();
}

/// The next server message; `None` once the socket closed. Fails after 15 s of silence.
pub async fn recv(ws: &mut Ws) -> Option<ServerMessage> {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("a server message within 15 s");
        match next {
            Some(Ok(Message::Text(text))) => {
                return Some(ServerMessage::from_json(text.as_bytes()).unwrap());
            }
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// The `join` message with token `case` of [`Rig::tokens`].
pub fn join(tokens: &Value, case: &str) -> ClientMessage {
    ClientMessage::Join {
        token: tokens[case].as_str().unwrap().to_owned(),
    }
}

/// What a peer's bridge saw.
#[derive(Debug)]
pub enum Seen {
    Server(ServerMessage),
    Report(Value),
    SocketClosed,
}

/// An aiortc peer (peer.py, JSON lines on stdin/stdout) joined to a room through the
/// WebSocket: a task relays its SDP to the socket and the server's back.
pub struct Peer {
    pub sid: String,
    pub commands: mpsc::Sender<&'static str>,
    pub seen: mpsc::UnboundedReceiver<Seen>,
    pub log: Vec<ServerMessage>,
    pub child: tokio::process::Child,
}

impl Peer {
    /// Joins `room` with `token` as peer `index`, publishing PCMU canary audio and, with
    /// `video`, a VP8 test pattern.
    pub async fn join(
        rig: &Rig,
        room: &str,
        token: ClientMessage,
        index: usize,
        video: bool,
    ) -> Self {
        let mut ws = rig.connect(room).await;
        send(&mut ws, &token).await;
        let sid = match recv(&mut ws).await {
            Some(ServerMessage::Joined { participant, .. }) => participant.sid,
            other => panic!("expected joined, got {other:?}"),
        };
        let python = mediaseal_test_support::python(&["aiortc"]);
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../mediaseal-room-worker/tests/interop/peer.py");
        let mut child = tokio::process::Command::new(python)
            .arg(script)
            .args(["--index", &index.to_string()])
            .args(if video { &[][..] } else { &["--no-video"][..] })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn peer.py");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (commands, commands_rx) = mpsc::channel(4);
        let (seen_tx, seen) = mpsc::unbounded_channel();
        tokio::spawn(bridge(ws, stdin, stdout, commands_rx, seen_tx));
        Self {
            sid,
            commands,
            seen,
            log: Vec::new(),
            child,
        }
    }

    /// The peer's report (what it received, keys, payloads).
    pub async fn report(&mut self) -> Value {
        self.commands.send("report").await.unwrap();
        loop {
            match tokio::time::timeout(Duration::from_secs(10), self.seen.recv())
                .await
                .expect("a report within 10 s")
            {
                Some(Seen::Report(report)) => return report,
                Some(Seen::Server(message)) => self.log.push(message),
                Some(Seen::SocketClosed) => {}
                None => panic!("the peer's bridge ended"),
            }
        }
    }

    /// Waits until a server message matching `wanted` arrived (or already did).
    pub async fn saw(&mut self, what: &str, wanted: impl Fn(&ServerMessage) -> bool) {
        if self.log.iter().any(&wanted) {
            return;
        }
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.seen.recv()).await {
                Ok(Some(Seen::Server(message))) => {
                    let hit = wanted(&message);
                    self.log.push(message);
                    if hit {
                        return;
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => panic!("never saw {what}; saw {:?}", self.log),
            }
        }
    }

    /// Waits for the server to close the socket.
    pub async fn closed(&mut self) {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.seen.recv()).await {
                Ok(Some(Seen::SocketClosed)) => return,
                Ok(Some(Seen::Server(message))) => self.log.push(message),
                Ok(Some(Seen::Report(_))) => {}
                Ok(None) | Err(_) => panic!("the socket did not close; saw {:?}", self.log),
            }
        }
    }
}

async fn bridge(
    mut ws: Ws,
    mut stdin: tokio::process::ChildStdin,
    stdout: tokio::process::ChildStdout,
    mut commands: mpsc::Receiver<&'static str>,
    seen: mpsc::UnboundedSender<Seen>,
) {
    let mut lines = BufReader::new(stdout).lines();
    let mut socket_open = true;
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Ok(Some(line)) = line else { return };
                let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
                let sdp = v["sdp"].as_str().unwrap_or_default().to_owned();
                match v["type"].as_str() {
                    Some("offer") if socket_open => {
                        send(&mut ws, &ClientMessage::Offer { sdp }).await;
                    }
                    Some("answer") if socket_open => {
                        send(&mut ws, &ClientMessage::Answer { sdp }).await;
                    }
                    Some("report") => {
                        let _ = seen.send(Seen::Report(v));
                    }
                    _ => {}
                }
            }
            message = ws.next(), if socket_open => {
                let message = match message {
                    Some(Ok(Message::Text(text))) => {
                        ServerMessage::from_json(text.as_bytes()).unwrap()
                    }
                    Some(Ok(Message::Close(_)) | Err(_)) | None => {
                        socket_open = false;
                        let _ = seen.send(Seen::SocketClosed);
                        continue;
                    }
                    Some(Ok(_)) => continue,
                };
                let line = match &message {
                    ServerMessage::Answer { sdp } => {
                        Some(serde_json::json!({"type": "answer", "sdp": sdp}))
                    }
                    ServerMessage::Offer { sdp } => {
                        Some(serde_json::json!({"type": "offer", "sdp": sdp}))
                    }
                    _ => None,
                };
                if let Some(line) = line {
                    let _ = stdin.write_all(format!("{line}\n").as_bytes()).await;
                }
                let _ = seen.send(Seen::Server(message));
            }
            command = commands.recv() => {
                let Some(command) = command else { return };
                if command == "leave" {
                    if socket_open {
                        send(&mut ws, &ClientMessage::Leave).await;
                    }
                    continue;
                }
                let line = serde_json::json!({ "type": command });
                let _ = stdin.write_all(format!("{line}\n").as_bytes()).await;
            }
        }
    }
}
