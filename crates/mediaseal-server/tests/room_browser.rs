//! Issue 12, the join page (`GET /rooms/join`, docs/ROOMS.md "The join page") in a real
//! browser: headless Chromium (Debian's `chromium`, fake camera and microphone) opens the page
//! served by mediaseal, which joins a group room through the signalling WebSocket, and the test
//! reads the page's `window.mediasealState` over the DevTools Protocol.
//!
//! - DTLS 1.2 room (`mediaseal-room-worker --dtls 1.2`): Chromium and an aiortc peer; Chromium
//!   decodes the peer's audio and VP8 video, the peer decodes Chromium's, and `getStats()`
//!   reports DTLS 1.2 (`tlsVersion` FEFD) with its cipher suites;
//! - DTLS 1.3 room (`--dtls 1.3`; aiortc speaks only 1.2): two Chromium tabs decode each other,
//!   at `tlsVersion` FEFC;
//! - a tampered `a=fingerprint` (the test rewrites the room's answer inside the browser, before
//!   the page's script runs, with `Page.addScriptToEvaluateOnNewDocument`): the connection fails
//!   and nothing is decoded, by either side.
//!
//! - with TURN configured, the page hands the STUN/TURN servers of `joined` to its
//!   `RTCPeerConnection` (read back with `getConfiguration()`).
//!
//! Needs `chromium` (scripts/apt-packages.txt) and `.venv` with twilio-python and aiortc.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use futures::{SinkExt, StreamExt};
use mediaseal_server::room_processes::HostConfig;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use support::Creds;
use support::rooms::{Peer, Rig, Ws};
use tokio_tungstenite::tungstenite::Message;

/// One browser at a time: Chromium encoding and decoding video is most of a core.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long media may take to flow on a busy 2-core machine.
const MEDIA_DEADLINE: Duration = Duration::from_secs(90);
/// Decoded frames (video, or aiortc's 20 ms audio frames) that show media keeps flowing.
const ENOUGH_FRAMES: u64 = 10;
/// Audio samples Chromium decoded from received packets: 0.2 s at 48 kHz.
const ENOUGH_SAMPLES: u64 = 9_600;

/// A room server whose workers run `--dtls <version>`.
async fn rig(dtls: &str) -> Rig {
    let mut config = HostConfig::new(mediaseal_test_support::room_worker());
    config.worker_args = vec!["--dtls".to_owned(), dtls.to_owned()];
    Rig::start(config).await
}

// ---- the DevTools Protocol, over one WebSocket in flat session mode -------------------------

#[derive(Serialize)]
struct Command<'a> {
    id: u64,
    method: &'a str,
    params: Value,
    #[serde(rename = "sessionId", skip_serializing_if = "Option::is_none")]
    session_id: Option<&'a str>,
}

/// A reply or an event (events have no `id` and are ignored).
#[derive(Deserialize)]
struct Reply {
    id: Option<u64>,
    #[serde(default)]
    result: Value,
    error: Option<ReplyError>,
}

#[derive(Debug, Deserialize)]
struct ReplyError {
    message: String,
}

/// A headless Chromium with its own profile, driven over the DevTools Protocol.
struct Browser {
    child: tokio::process::Child,
    profile: tempfile::TempDir,
    cdp: Ws,
    next_id: u64,
}

impl Browser {
    async fn launch() -> Self {
        let chromium = mediaseal_test_support::require_tool("chromium", &["--version"]);
        let profile = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(profile.path().join("chromium.log")).unwrap();
        let child = tokio::process::Command::new(chromium)
            .arg("--headless=new")
            // Root in a container: Chromium's sandbox needs user namespaces it does not get.
            .arg("--no-sandbox")
            .arg("--disable-gpu")
            .arg("--no-first-run")
            .arg("--no-default-browser-check")
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("--remote-debugging-port=0")
            .arg("--use-fake-ui-for-media-stream")
            .arg("--use-fake-device-for-media-stream=fps=15")
            .arg("--autoplay-policy=no-user-gesture-required")
            // The room listens on loopback: let WebRTC use it, with real addresses.
            .arg("--allow-loopback-in-peer-connection")
            .arg("--disable-features=WebRtcHideLocalIpsWithMdns")
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start chromium");
        // Chromium writes its DevTools port and browser path there once it listens.
        let active = profile.path().join("DevToolsActivePort");
        let end = Instant::now() + Duration::from_secs(30);
        let endpoint = loop {
            if let Ok(text) = std::fs::read_to_string(&active) {
                let mut lines = text.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                    break format!("ws://127.0.0.1:{port}{path}");
                }
            }
            assert!(
                Instant::now() < end,
                "Chromium did not open its DevTools port within 30 s: {}",
                chromium_log(profile.path())
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let (cdp, _) = tokio_tungstenite::connect_async(endpoint)
            .await
            .expect("connect to Chromium's DevTools WebSocket");
        Self {
            child,
            profile,
            cdp,
            next_id: 0,
        }
    }

    /// Calls `method`; its result. Fails the test on a protocol error.
    async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let command = Command {
            id,
            method,
            params,
            session_id: session,
        };
        self.cdp
            .send(Message::text(serde_json::to_string(&command).unwrap()))
            .await
            .expect("send to Chromium");
        loop {
            let next = tokio::time::timeout(Duration::from_secs(30), self.cdp.next())
                .await
                .unwrap_or_else(|_| panic!("Chromium did not answer {method} within 30 s"));
            let text = match next {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(_)) => continue,
                other => panic!(
                    "Chromium's DevTools connection ended during {method} ({other:?}): {}",
                    chromium_log(self.profile.path())
                ),
            };
            let reply: Reply = serde_json::from_str(&text).expect("a DevTools message");
            if reply.id != Some(id) {
                continue;
            }
            if let Some(error) = reply.error {
                panic!("{method} failed: {}", error.message);
            }
            return reply.result;
        }
    }

    /// A new tab that runs `before_page` (if any) before any page script, then opens `url`.
    async fn open(&mut self, url: &str, before_page: Option<&str>) -> Tab {
        let created = self
            .call(
                None,
                "Target.createTarget",
                serde_json::json!({ "url": "about:blank" }),
            )
            .await;
        let target = created["targetId"].as_str().expect("targetId").to_owned();
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                serde_json::json!({ "targetId": target, "flatten": true }),
            )
            .await;
        let session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_owned();
        self.call(Some(&session), "Page.enable", serde_json::json!({}))
            .await;
        if let Some(source) = before_page {
            self.call(
                Some(&session),
                "Page.addScriptToEvaluateOnNewDocument",
                serde_json::json!({ "source": source }),
            )
            .await;
        }
        self.call(
            Some(&session),
            "Page.navigate",
            serde_json::json!({ "url": url }),
        )
        .await;
        Tab { session }
    }

    /// The value of `expression` (JSON-serializable) in `tab`.
    async fn eval(&mut self, tab: &Tab, expression: &str) -> Value {
        let out = self
            .call(
                Some(&tab.session),
                "Runtime.evaluate",
                serde_json::json!({ "expression": expression, "returnByValue": true }),
            )
            .await;
        assert!(
            out.get("exceptionDetails").is_none(),
            "{expression} threw: {}",
            out["exceptionDetails"]
        );
        out["result"]["value"].clone()
    }

    /// The page's `window.mediasealState` (`None` before its script ran).
    async fn state(&mut self, tab: &Tab) -> Option<PageState> {
        let json = self
            .eval(tab, "JSON.stringify(window.mediasealState ?? null)")
            .await;
        let json = json.as_str().unwrap_or("null");
        serde_json::from_str(json).unwrap_or_else(|e| panic!("mediasealState {json}: {e}"))
    }

    async fn close(mut self) {
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            self.call(None, "Browser.close", serde_json::json!({})),
        )
        .await;
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// The tail of Chromium's log, for failure messages.
fn chromium_log(profile: &std::path::Path) -> String {
    let log = std::fs::read_to_string(profile.join("chromium.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

struct Tab {
    session: String,
}

// ---- what the page reports (join.js `window.mediasealState`) --------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageState {
    phase: String,
    #[serde(default)]
    ice_servers: Vec<String>,
    participant_sid: Option<String>,
    connection_state: String,
    transport: Option<Transport>,
    remote: Vec<Inbound>,
    local: Vec<Outbound>,
    errors: Vec<PageError>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Transport {
    dtls_state: Option<String>,
    tls_version: Option<String>,
    dtls_cipher: Option<String>,
    srtp_cipher: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Inbound {
    kind: String,
    participant_sid: Option<String>,
    packets_received: u64,
    frames_decoded: u64,
    total_samples_received: u64,
    concealed_samples: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Outbound {
    kind: String,
    packets_sent: u64,
}

#[derive(Debug, Deserialize)]
struct PageError {
    code: u32,
    message: String,
}

impl PageState {
    /// Video frames decoded from `publisher`.
    fn video_frames_from(&self, publisher: &str) -> u64 {
        self.remote
            .iter()
            .filter(|r| r.kind == "video" && r.participant_sid.as_deref() == Some(publisher))
            .map(|r| r.frames_decoded)
            .sum()
    }

    /// Audio samples decoded from `publisher`'s packets (not concealment).
    fn audio_samples_from(&self, publisher: &str) -> u64 {
        self.remote
            .iter()
            .filter(|r| {
                r.kind == "audio"
                    && r.participant_sid.as_deref() == Some(publisher)
                    && r.packets_received > 0
            })
            .map(|r| r.total_samples_received.saturating_sub(r.concealed_samples))
            .sum()
    }

    fn decoded_anything(&self) -> bool {
        self.remote
            .iter()
            .any(|r| r.frames_decoded > 0 || r.packets_received > 0)
    }

    fn sent(&self, kind: &str) -> u64 {
        self.local
            .iter()
            .filter(|o| o.kind == kind)
            .map(|o| o.packets_sent)
            .sum()
    }
}

/// Frames an aiortc peer's report decoded from `publisher`'s `kind` tracks.
fn peer_frames_from(report: &Value, publisher: &str, kind: &str) -> u64 {
    report["tracks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["publisher"] == publisher && t["kind"] == kind)
        .map(|t| t["frames"].as_u64().unwrap_or(0))
        .sum()
}

/// The join page's URL for `room` with `token` in the fragment (never sent to the server).
fn page_url(rig: &Rig, room: &str, token: &str) -> String {
    format!("http://{}/rooms/join#room={room}&token={token}", rig.addr)
}

fn token<'a>(tokens: &'a Value, who: &str) -> &'a str {
    tokens[who].as_str().expect("a minted token")
}

/// Polls the tab until it has joined (it knows its participant SID); fails on a page error.
async fn joined(browser: &mut Browser, tab: &Tab) -> String {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(state) = browser.state(tab).await {
            assert!(state.errors.is_empty(), "the page failed: {state:?}");
            if let Some(sid) = state.participant_sid {
                return sid;
            }
        }
        assert!(Instant::now() < end, "the page did not join within 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_join_page_is_served_with_a_strict_policy() {
    let app = support::TestApp::new().await;
    let page = app.get("/rooms/join", &Creds::None).await;
    assert_eq!(page.status, StatusCode::OK);
    let header = |name: &str| {
        page.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(header("content-type").starts_with("text/html"));
    let csp = header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(header("referrer-policy"), "no-referrer");
    assert_eq!(header("cache-control"), "no-store");
    let script = app.get("/rooms/join.js", &Creds::None).await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(
        String::from_utf8_lossy(&script.body).contains("/v1/Rooms/"),
        "the script opens the signalling WebSocket"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_and_aiortc_decode_each_other_at_dtls_1_2() {
    let _one = ONE_BROWSER.lock().await;
    let rig = rig("1.2").await;
    rig.create_room(&[("UniqueName", "browser-12")]).await;
    let tokens = rig.tokens("browser-12");
    let mut browser = Browser::launch().await;
    let tab = browser
        .open(&page_url(&rig, "browser-12", token(&tokens, "alice")), None)
        .await;
    let alice = joined(&mut browser, &tab).await;
    // The token left the address bar (and the history) once read.
    let href = browser.eval(&tab, "location.href").await;
    assert!(
        !href.as_str().unwrap_or_default().contains("token"),
        "{href}"
    );
    let mut bob = Peer::join(
        &rig,
        "browser-12",
        support::rooms::join(&tokens, "bob"),
        1,
        true,
    )
    .await;

    let end = Instant::now() + MEDIA_DEADLINE;
    let state = loop {
        let state = browser.state(&tab).await.expect("the page's state");
        let report = bob.report().await;
        let chromium_decoded = state.video_frames_from(&bob.sid) >= ENOUGH_FRAMES
            && state.audio_samples_from(&bob.sid) >= ENOUGH_SAMPLES;
        let aiortc_decoded = peer_frames_from(&report, &alice, "audio") >= ENOUGH_FRAMES
            && peer_frames_from(&report, &alice, "video") >= ENOUGH_FRAMES;
        if chromium_decoded && aiortc_decoded {
            break state;
        }
        assert!(
            state.errors.is_empty() && Instant::now() < end,
            "media did not flow both ways: Chromium {state:?} | aiortc {} {}",
            report["state"],
            report["tracks"]
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!("DTLS 1.2 room, Chromium: {state:?}");
    assert_eq!(state.phase, "connected");
    assert_eq!(state.connection_state, "connected");
    assert!(
        state.sent("audio") > 0 && state.sent("video") > 0,
        "{state:?}"
    );
    let transport = state.transport.expect("a DTLS transport in getStats()");
    assert_eq!(transport.dtls_state.as_deref(), Some("connected"));
    // DTLS 1.2 on the wire is version 0xFEFD.
    assert_eq!(
        transport.tls_version.as_deref(),
        Some("FEFD"),
        "{transport:?}"
    );
    assert!(
        transport
            .dtls_cipher
            .is_some_and(|c| c.starts_with("TLS_ECDHE_"))
    );
    assert!(transport.srtp_cipher.is_some_and(|c| !c.is_empty()));

    let _ = bob.commands.send("close").await;
    let _ = tokio::time::timeout(Duration::from_secs(5), bob.child.wait()).await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_chromium_tabs_decode_each_other_at_dtls_1_3() {
    let _one = ONE_BROWSER.lock().await;
    let rig = rig("1.3").await;
    rig.create_room(&[("UniqueName", "browser-13")]).await;
    let tokens = rig.tokens("browser-13");
    let mut browser = Browser::launch().await;
    let first = browser
        .open(&page_url(&rig, "browser-13", token(&tokens, "alice")), None)
        .await;
    let alice = joined(&mut browser, &first).await;
    // The query works too (and the token is dropped from the address bar the same way).
    let url = format!(
        "http://{}/rooms/join?room=browser-13&token={}",
        rig.addr,
        token(&tokens, "bob")
    );
    let second = browser.open(&url, None).await;
    let bob = joined(&mut browser, &second).await;

    let end = Instant::now() + MEDIA_DEADLINE;
    let (a, b) = loop {
        let a = browser.state(&first).await.expect("alice's state");
        let b = browser.state(&second).await.expect("bob's state");
        if a.video_frames_from(&bob) >= ENOUGH_FRAMES
            && a.audio_samples_from(&bob) >= ENOUGH_SAMPLES
            && b.video_frames_from(&alice) >= ENOUGH_FRAMES
            && b.audio_samples_from(&alice) >= ENOUGH_SAMPLES
        {
            break (a, b);
        }
        assert!(
            a.errors.is_empty() && b.errors.is_empty() && Instant::now() < end,
            "the tabs did not decode each other: alice {a:?} | bob {b:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    for state in [a, b] {
        eprintln!("DTLS 1.3 room, Chromium tab: {state:?}");
        let transport = state.transport.expect("a DTLS transport in getStats()");
        assert_eq!(transport.dtls_state.as_deref(), Some("connected"));
        // DTLS 1.3 on the wire is version 0xFEFC; its suites are TLS 1.3's.
        assert_eq!(
            transport.tls_version.as_deref(),
            Some("FEFC"),
            "{transport:?}"
        );
        assert!(
            transport
                .dtls_cipher
                .as_deref()
                .is_some_and(|c| c.starts_with("TLS_AES_") || c.starts_with("TLS_CHACHA20_")),
            "{transport:?}"
        );
        assert!(transport.srtp_cipher.is_some_and(|c| !c.is_empty()));
    }
    browser.close().await;
}

/// Rewrites the first byte of every `a=fingerprint` the page is given, before the page's own
/// script runs; counts the rewrites in `window.tamperedDescriptions`.
const TAMPER_FINGERPRINT: &str = r"
(() => {
  const original = RTCPeerConnection.prototype.setRemoteDescription;
  window.tamperedDescriptions = 0;
  RTCPeerConnection.prototype.setRemoteDescription = function (description, ...rest) {
    if (description && typeof description.sdp === 'string') {
      const sdp = description.sdp.replace(
        /^(a=fingerprint:\S+ )([0-9A-Fa-f]{2})/gm,
        (_, head, byte) => head + (byte.toUpperCase() === '00' ? '01' : '00'));
      if (sdp !== description.sdp) window.tamperedDescriptions += 1;
      description = { type: description.type, sdp };
    }
    return original.call(this, description, ...rest);
  };
})();
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_fingerprint_fails_the_connection() {
    let _one = ONE_BROWSER.lock().await;
    let rig = rig("1.2").await;
    rig.create_room(&[("UniqueName", "browser-tamper")]).await;
    let tokens = rig.tokens("browser-tamper");
    // Someone to decode: an aiortc peer publishing audio and video.
    let mut bob = Peer::join(
        &rig,
        "browser-tamper",
        support::rooms::join(&tokens, "bob"),
        1,
        true,
    )
    .await;
    let mut browser = Browser::launch().await;
    let tab = browser
        .open(
            &page_url(&rig, "browser-tamper", token(&tokens, "alice")),
            Some(TAMPER_FINGERPRINT),
        )
        .await;
    let alice = {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(sid) = browser.state(&tab).await.and_then(|s| s.participant_sid) {
                break sid;
            }
            assert!(Instant::now() < end, "the page did not join within 30 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };

    let end = Instant::now() + MEDIA_DEADLINE;
    let state = loop {
        let state = browser.state(&tab).await.expect("the page's state");
        // The page sees its connection fail, or the room ends it first (53405 media_failed)
        // and the page closes it.
        if state.connection_state == "failed" || state.phase == "failed" {
            break state;
        }
        assert!(
            Instant::now() < end,
            "the connection did not fail: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!("tampered fingerprint, Chromium: {state:?}");
    let tampered = browser.eval(&tab, "window.tamperedDescriptions").await;
    assert!(
        tampered.as_u64().unwrap_or(0) >= 1,
        "the fingerprint was never rewritten: {tampered}"
    );
    assert_eq!(state.phase, "failed");
    // DTLS is what failed: Chromium's own verdict on the transport or the connection.
    let dtls_state = state
        .transport
        .as_ref()
        .and_then(|t| t.dtls_state.as_deref());
    assert!(
        state.connection_state == "failed" || dtls_state == Some("failed"),
        "{state:?}"
    );
    assert_ne!(dtls_state, Some("connected"), "{state:?}");
    // And the page said so: its own ICE/DTLS error or the room's 53405 (media failed), and
    // nothing else (no token or signalling trouble).
    assert!(!state.errors.is_empty(), "{state:?}");
    for e in &state.errors {
        assert!(
            (e.code == 0 && e.message.contains("DTLS")) || e.code == 53405,
            "{state:?}"
        );
    }
    assert!(!state.decoded_anything(), "{state:?}");
    // Nor did anything of Chromium's reach the other participant.
    let report = bob.report().await;
    assert_eq!(peer_frames_from(&report, &alice, "audio"), 0, "{report}");
    assert_eq!(peer_frames_from(&report, &alice, "video"), 0, "{report}");

    let _ = bob.commands.send("close").await;
    let _ = tokio::time::timeout(Duration::from_secs(5), bob.child.wait()).await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_gives_its_peer_connection_the_turn_servers_of_joined() {
    const STUN: &str = "stun:127.0.0.1:3478";
    const TURN: &str = "turn:127.0.0.1:3478?transport=udp";
    let _one = ONE_BROWSER.lock().await;
    let turn = mediaseal_server::TurnConfig::new(
        &[STUN.to_owned(), TURN.to_owned()],
        Some(zeroize::Zeroizing::new(b"browser-turn-secret".to_vec())),
        None,
    )
    .unwrap();
    let rig = Rig::start_with(
        HostConfig::new(mediaseal_test_support::room_worker()),
        |c| c.turn = turn,
    )
    .await;
    rig.create_room(&[("UniqueName", "browser-turn")]).await;
    let tokens = rig.tokens("browser-turn");
    let mut browser = Browser::launch().await;
    let tab = browser
        .open(
            &page_url(&rig, "browser-turn", token(&tokens, "alice")),
            None,
        )
        .await;
    joined(&mut browser, &tab).await;
    let end = Instant::now() + Duration::from_secs(30);
    let state = loop {
        let state = browser.state(&tab).await.expect("the page's state");
        // Chromium refuses a TURN server without credentials when the connection is made.
        assert!(state.errors.is_empty(), "the page failed: {state:?}");
        if !state.ice_servers.is_empty() {
            break state;
        }
        assert!(
            Instant::now() < end,
            "no peer connection within 30 s: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(state.ice_servers, [STUN, TURN]);
    browser.close().await;
}

/// What `interop/whip-web/publish.js` keeps in `window.whipPublish`.
#[derive(Debug, Deserialize)]
struct WhipPublish {
    phase: String,
    resource: Option<String>,
    error: Option<String>,
    connection: Option<String>,
}

/// A packaged WHIP client, Eyevinn's `@eyevinn/whip-web-client` 1.1.7 from npm (bundled by
/// scripts/setup.sh into `interop/whip-web/dist/whip-publish.js`), publishes Chromium's fake
/// camera and microphone through WHIP; an aiortc viewer decodes both through WHEP; the client's
/// `destroy()` DELETEs its resource and the publisher's row closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packaged_whip_client_publishes_from_chromium_and_aiortc_watches() {
    let bundle =
        mediaseal_test_support::workspace_root().join("interop/whip-web/dist/whip-publish.js");
    let bundle = std::fs::read_to_string(&bundle).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run scripts/setup.sh (it installs and bundles the npm WHIP client)",
            bundle.display()
        )
    });
    let _one = ONE_BROWSER.lock().await;
    let rig = rig("1.2").await;
    let sid = rig.create_room(&[("UniqueName", "whip-browser")]).await;
    let tokens = rig.tokens("whip-browser");
    let mut browser = Browser::launch().await;
    // A page of the server's own origin, so the client's fetches to the WHIP endpoint are
    // same-origin; the join page without a token only shows its form.
    let tab = browser
        .open(&format!("http://{}/rooms/join", rig.addr), None)
        .await;
    let end = Instant::now() + Duration::from_secs(30);
    while browser.eval(&tab, "document.readyState").await != "complete" {
        assert!(Instant::now() < end, "the page did not load within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.eval(&tab, &bundle).await;
    let endpoint = format!("http://{}/v1/Rooms/whip-browser/Whip", rig.addr);
    let start = format!(
        "void whipPublishStart({}, {})",
        serde_json::to_string(&endpoint).unwrap(),
        serde_json::to_string(token(&tokens, "alice")).unwrap()
    );
    browser.eval(&tab, &start).await;

    let read = async |browser: &mut Browser| -> WhipPublish {
        let json = browser
            .eval(&tab, "JSON.stringify(window.whipPublish)")
            .await;
        serde_json::from_str(json.as_str().unwrap_or("null")).expect("window.whipPublish")
    };
    let end = Instant::now() + MEDIA_DEADLINE;
    let published = loop {
        let state = read(&mut browser).await;
        if state.phase == "published" && state.connection.as_deref() == Some("connected") {
            break state;
        }
        assert!(
            state.phase != "failed" && Instant::now() < end,
            "the WHIP client did not connect: {state:?} {}",
            chromium_log(browser.profile.path())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The client resolved the relative `Location` against the endpoint: the resource sits under
    // the room's SID.
    let resource = published.resource.clone().unwrap_or_default();
    let prefix = format!("http://{}/v1/Rooms/{sid}/Whip/", rig.addr);
    let alice = resource
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("resource {resource} is not under {prefix}"))
        .to_owned();
    assert!(alice.starts_with("PA"), "{resource}");

    // REST: alice is connected with an audio and a video track.
    let participants = format!("/v1/Rooms/{sid}/Participants");
    let published_tracks = format!("{participants}/{alice}/PublishedTracks");
    let tracks = rig
        .list_within(
            &published_tracks,
            "published_tracks",
            Duration::from_secs(20),
            |t| t.len() == 2,
        )
        .await;
    let mut kinds: Vec<&str> = tracks.iter().filter_map(|t| t["kind"].as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["audio", "video"], "{tracks:?}");

    // Bob watches through WHEP and decodes Chromium's Opus and VP8.
    let whep = format!("http://{}/v1/Rooms/{sid}/Whep", rig.addr);
    let report = support::whip::whep_watch(&whep, token(&tokens, "bob")).await;
    assert_eq!(report["status"], 201, "{report}");
    assert_eq!(report["answer_codecs"]["audio"], "opus", "{report}");
    assert_eq!(report["answer_codecs"]["video"], "VP8", "{report}");
    assert!(report["audio_frames"].as_u64().unwrap() >= 50, "{report}");
    assert!(report["video_frames"].as_u64().unwrap() >= 20, "{report}");

    // The client's destroy() DELETEs the resource: alice's row closes, her tracks go.
    let stopped = browser.eval(&tab, "void whipPublishStop()").await;
    assert!(stopped.is_null(), "{stopped}");
    let rows = rig
        .list_within(
            &format!("{participants}?Identity=alice"),
            "participants",
            Duration::from_secs(10),
            |rows| rows.first().is_some_and(|p| p["status"] == "disconnected"),
        )
        .await;
    assert_eq!(rows[0]["sid"], alice.as_str());
    let r = rig.app.get(&published_tracks, &rig.creds).await;
    assert_eq!(
        r.json()["published_tracks"],
        serde_json::json!([]),
        "{:?}",
        r.body
    );
    assert_eq!(read(&mut browser).await.error, None);
    browser.close().await;
    rig.complete_room(&sid).await;
}
