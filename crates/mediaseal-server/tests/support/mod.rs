//! Test harness shared by the server's integration tests.
//!
//! The backend comes from the environment, so one suite runs against every storage combination:
//! - `MEDIASEAL_TEST_DATABASE`: a `postgres://…` (or `sqlite://…`) URL; default a fresh SQLite file;
//! - `MEDIASEAL_TEST_OBJECTS`: an object store URL (`s3://…`, `file://…`); default a fresh directory.
//!
//! Every test makes its own accounts, so tests never see each other's data even on a shared
//! database.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses a different part of the harness"
)]

pub mod rooms;
pub mod whip;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine as _;
use http_body_util::BodyExt;
use mediaseal_crypto::PrivateKey;
use mediaseal_server::{AppState, Config};
use mediaseal_service::egress::{WebhookPolicy, parse_network};
use mediaseal_store::model::Account;
use serde_json::Value;
use tower::ServiceExt;

/// A test private key, generated once per test binary (RSA key generation is slow).
pub fn test_key(n: usize) -> &'static PrivateKey {
    static KEYS: OnceLock<Vec<PrivateKey>> = OnceLock::new();
    &KEYS.get_or_init(|| {
        (0..3)
            .map(|_| PrivateKey::generate(2048).unwrap())
            .collect()
    })[n]
}

/// A service under test, with its storage.
pub struct TestApp {
    pub state: AppState,
    pub router: Router,
    pub dir: tempfile::TempDir,
    /// This app's own scratch directory (composition FIFOs), apart from other tests' apps.
    pub scratch: tempfile::TempDir,
    /// The app's background jobs (its composition worker); stopped when the app is dropped.
    pub jobs: mediaseal_service::runner::Runner,
}

/// Credentials for a request.
#[derive(Clone, Debug)]
pub enum Creds {
    None,
    Basic(String, String),
}

impl Creds {
    pub fn of(a: &Account) -> Self {
        Self::Basic(a.sid.clone(), a.auth_token.clone())
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_config(|_| {}).await
    }

    pub async fn with_config(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let meta = match std::env::var("MEDIASEAL_TEST_DATABASE") {
            Ok(url) if !url.is_empty() => {
                mediaseal_server::serve::open_meta(dir.path(), Some(&url))
                    .await
                    .unwrap()
            }
            _ => mediaseal_server::serve::open_meta(dir.path(), None)
                .await
                .unwrap(),
        };
        let objects = match std::env::var("MEDIASEAL_TEST_OBJECTS") {
            Ok(url) if !url.is_empty() => mediaseal_server::serve::open_object_url(&url)
                .await
                .unwrap(),
            _ => mediaseal_server::serve::open_objects(dir.path(), None)
                .await
                .unwrap(),
        };
        let scratch = tempfile::tempdir().unwrap();
        let mut config = Config::new([7u8; 32]);
        config.public_url = Some("http://mediaseal.test".to_owned());
        config.scratch_dir = scratch.path().to_path_buf();
        // The tests' webhook receivers listen on loopback, which production refuses by default.
        config.service.webhook_policy = WebhookPolicy::allowing(
            ["127.0.0.0/8", "::1/128"].map(|n| parse_network(n).expect("network")),
        );
        adjust(&mut config);
        let at_rest =
            PrivateKey::from_bytes(test_key(2).to_pkcs8_pem().unwrap().as_bytes()).unwrap();
        let state = AppState::new(meta, objects, at_rest, config);
        let router = mediaseal_server::app(state.clone());
        let mut jobs = mediaseal_service::runner::Runner::new();
        state.start_composer(&mut jobs);
        Self {
            state,
            router,
            dir,
            scratch,
            jobs,
        }
    }

    pub async fn account(&self) -> Account {
        mediaseal_server::create_account(self.state.meta.as_ref(), Some("test"), None)
            .await
            .unwrap()
    }

    pub async fn subaccount(&self, parent: &Account) -> Account {
        mediaseal_server::create_account(self.state.meta.as_ref(), Some("sub"), Some(&parent.sid))
            .await
            .unwrap()
    }

    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        creds: &Creds,
        body: Body,
        content_type: Option<&str>,
    ) -> Resp {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, "mediaseal.test");
        if let Creds::Basic(u, p) = creds {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            req = req.header(header::AUTHORIZATION, format!("Basic {token}"));
        }
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let response = self
            .router
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str, creds: &Creds) -> Resp {
        self.call(Method::GET, uri, creds, Body::empty(), None)
            .await
    }

    pub async fn delete(&self, uri: &str, creds: &Creds) -> Resp {
        self.call(Method::DELETE, uri, creds, Body::empty(), None)
            .await
    }

    pub async fn post_form(&self, uri: &str, creds: &Creds, pairs: &[(&str, &str)]) -> Resp {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.call(
            Method::POST,
            uri,
            creds,
            Body::from(body),
            Some("application/x-www-form-urlencoded"),
        )
        .await
    }

    pub async fn post_bytes(
        &self,
        uri: &str,
        creds: &Creds,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Resp {
        self.call(
            Method::POST,
            uri,
            creds,
            Body::from(bytes),
            Some(content_type),
        )
        .await
    }

    /// Adds a public key to `account` and returns its SID.
    pub async fn add_public_key(&self, account: &Account, key: &PrivateKey) -> String {
        let pem = key.public_key().to_pem();
        let r = self
            .post_form(
                "/v1/Credentials/PublicKeys",
                &Creds::of(account),
                &[("PublicKey", &pem), ("FriendlyName", "k")],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.json()["sid"].as_str().unwrap().to_owned()
    }

    /// Turns voice recording encryption on for `account` with key `sid`.
    pub async fn enable_encryption(&self, account: &Account, key_sid: Option<&str>) {
        let mut form = vec![("EncryptionEnabled", "true")];
        if let Some(k) = key_sid {
            form.push(("EncryptionPublicKeySid", k));
        }
        let uri = format!(
            "/2010-04-01/Accounts/{}/RecordingSettings.json",
            account.sid
        );
        let r = self.post_form(&uri, &Creds::of(account), &form).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }

    /// Ingests `bytes` as a recording of `account`; returns the response.
    pub async fn ingest(&self, account: &Account, query: &str, bytes: Vec<u8>) -> Resp {
        let uri = format!(
            "/2010-04-01/Accounts/{}/Recordings.json{}",
            account.sid, query
        );
        self.post_bytes(&uri, &Creds::of(account), bytes, "audio/x-wav")
            .await
    }

    pub fn shared(&self) -> Arc<dyn mediaseal_store::MetadataStore> {
        self.state.meta.clone()
    }
}

/// Deterministic test audio: a PCM WAV of `seconds` at 8 kHz with a recognisable marker inside.
pub fn wav_with_marker(seconds: u32, marker: &[u8]) -> Vec<u8> {
    mediaseal_test_support::wav::with_marker(seconds, marker)
}

/// A speech engine that "hears" fixed lines, whatever the audio: each `(start, text)` becomes a
/// two-second segment whose words start 0.2 s apart and last 0.15 s, so what the operators and
/// the redaction must find, and where, is known in advance.
#[derive(Debug)]
pub struct ScriptedSpeech {
    lines: Vec<(f32, String)>,
}

impl ScriptedSpeech {
    pub fn new(lines: &[(f32, &str)]) -> Self {
        Self {
            lines: lines.iter().map(|(t, s)| (*t, (*s).to_owned())).collect(),
        }
    }
}

impl mediaseal_intelligence::asr::SpeechEngine for ScriptedSpeech {
    fn id(&self) -> &str {
        "scripted"
    }

    fn transcribe(
        &self,
        _pcm: &[i16],
        _options: &mediaseal_intelligence::asr::AsrOptions,
    ) -> Result<mediaseal_intelligence::asr::Transcript, mediaseal_intelligence::asr::TranscribeError>
    {
        use mediaseal_intelligence::asr::{AsrSegment, AsrWord};
        let segments = self
            .lines
            .iter()
            .map(|(start, text)| AsrSegment {
                start: *start,
                end: start + 2.0,
                text: text.clone(),
                confidence: Some(0.9),
                words: text
                    .split_whitespace()
                    .enumerate()
                    .map(|(i, w)| AsrWord {
                        text: w.to_owned(),
                        start: start + 0.2 * i as f32,
                        end: start + 0.2 * i as f32 + 0.15,
                        confidence: None,
                    })
                    .collect(),
            })
            .collect();
        Ok(mediaseal_intelligence::asr::Transcript {
            language: Some("en".to_owned()),
            segments,
        })
    }
}

impl TestApp {
    /// A service under test whose speech engine is [`ScriptedSpeech`] over `lines`.
    pub async fn with_scripted_speech(lines: &[(f32, &str)]) -> Self {
        let mut app = Self::new().await;
        app.state = app
            .state
            .clone()
            .with_speech(mediaseal_intelligence::Speech::given(Arc::new(
                ScriptedSpeech::new(lines),
            )));
        app.router = mediaseal_server::app(app.state.clone());
        app
    }

    /// A new Conversational Intelligence service of `a` (a unique name plus `extra`); its SID.
    pub async fn create_intelligence_service(&self, a: &Account, extra: &[(&str, &str)]) -> String {
        let name = format!("svc-{}", &mediaseal_server::sid::new_sid("XX")[2..12]);
        let mut form = vec![("UniqueName", name.as_str())];
        form.extend_from_slice(extra);
        let r = self.post_form("/v2/Services", &Creds::of(a), &form).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.json()["sid"].as_str().unwrap().to_owned()
    }

    /// A completed transcript of `audio` (a new recording of `a`) under service `ga`: (GT, RE).
    pub async fn transcribe_recording(
        &self,
        a: &Account,
        ga: &str,
        audio: Vec<u8>,
    ) -> (String, String) {
        let r = self.ingest(a, "", audio).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let re = r.json()["sid"].as_str().unwrap().to_owned();
        let channel = format!(r#"{{"media_properties":{{"source_sid":"{re}"}}}}"#);
        let r = self
            .post_form(
                "/v2/Transcripts",
                &Creds::of(a),
                &[("ServiceSid", ga), ("Channel", &channel)],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let gt = r.json()["sid"].as_str().unwrap().to_owned();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let t = self
                .get(&format!("/v2/Transcripts/{gt}"), &Creds::of(a))
                .await
                .json();
            match t["status"].as_str() {
                Some("completed") => return (gt, re),
                Some("queued" | "in-progress") => {}
                other => panic!("transcript ended {other:?}: {t}"),
            }
            assert!(Instant::now() < deadline, "transcript stuck");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
