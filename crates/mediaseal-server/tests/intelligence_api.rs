//! Conversational Intelligence v2 (issue 13, seed 002) through the HTTP surface: services,
//! transcripts of recordings made by a real speech engine (Debian's pocketsphinx on speech
//! synthesised by flite at test time), sentences sealed at rest or with the customer's key, and
//! the encrypted download opened by the seed's own recipe.
//!
//! The tests that need speech skip when pocketsphinx or flite is missing, and fail then under
//! `MEDIASEAL_REQUIRE_ASR=1`.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use mediaseal_intelligence::Speech;
use mediaseal_intelligence::asr::PocketsphinxEngine;
use mediaseal_store::model::Account;
use serde_json::Value;
use support::{Creds, TestApp, test_key, wav_with_marker};

/// The customer's line; pocketsphinx gets most of its words on flite's voice.
const SPEECH: &str = "Hello, I would like to report a lost card. My card number is \
    4 5 3 9, 1 4 8 8. You can call me back tomorrow morning.";

fn asr_required() -> bool {
    std::env::var("MEDIASEAL_REQUIRE_ASR").is_ok_and(|v| v == "1")
}

/// A caller reading out a whole card number (pocketsphinx hears every digit of flite's voice).
const CARD_CALL: &str =
    "My card number is 4 5 3 9, 1 4 8 8, 0 3 4 3, 6 4 6 7. Please call me back.";
/// The number, as the PII operator reports it.
const CARD_NUMBER: &str = "4539148803436467";

/// The agent's line of the two-channel call.
const AGENT: &str = "Thank you for calling customer service. How can I help you today?";

/// Spoken audio as a WAV, in memory: flite writes it to a pipe.
fn speech_wav() -> Option<Vec<u8>> {
    spoken(SPEECH, "slt")
}

/// `text` spoken by flite's `voice`, as a WAV.
fn spoken(text: &str, voice: &str) -> Option<Vec<u8>> {
    let child = Command::new("flite")
        .args(["-voice", voice, "-t", text, "-o", "/dev/stdout"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    match child.and_then(|c| c.wait_with_output()) {
        Ok(out) if out.status.success() && out.stdout.len() > 1000 => Some(out.stdout),
        other => {
            assert!(
                !asr_required(),
                "MEDIASEAL_REQUIRE_ASR=1 but flite failed: {other:?}"
            );
            eprintln!("skipping: flite is not installed (apt-get install flite)");
            None
        }
    }
}

/// An app transcribing with pocketsphinx, and spoken audio; `None` (skip) when either is
/// missing.
async fn speaking_app() -> Option<(TestApp, Vec<u8>)> {
    let engine = match PocketsphinxEngine::debian() {
        Ok(e) => e,
        Err(e) => {
            assert!(!asr_required(), "MEDIASEAL_REQUIRE_ASR=1 but {e}");
            eprintln!("skipping: {e}");
            return None;
        }
    };
    let wav = speech_wav()?;
    let mut app = TestApp::new().await;
    app.state = app
        .state
        .clone()
        .with_speech(Speech::given(Arc::new(engine)));
    app.router = mediaseal_server::app(app.state.clone());
    Some((app, wav))
}

async fn create_service(app: &TestApp, a: &Account, extra: &[(&str, &str)]) -> Value {
    let name = format!("svc-{}", &mediaseal_server::sid::new_sid("XX")[2..12]);
    let mut form = vec![("UniqueName", name.as_str())];
    form.extend_from_slice(extra);
    let r = app.post_form("/v2/Services", &Creds::of(a), &form).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.json()
}

fn channel(re: &str) -> String {
    format!(
        r#"{{"media_properties":{{"source_sid":"{re}"}},"participants":[{{"channel_participant":1,"role":"Customer"}}]}}"#
    )
}

async fn ingest_at_rest(app: &TestApp, a: &Account, wav: Vec<u8>) -> String {
    let r = app.ingest(a, "", wav).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let rec = r.json();
    assert!(rec["encryption_details"].is_null(), "{rec}");
    rec["sid"].as_str().unwrap().to_owned()
}

async fn create_transcript(app: &TestApp, a: &Account, ga: &str, re: &str) -> Value {
    let ch = channel(re);
    let r = app
        .post_form(
            "/v2/Transcripts",
            &Creds::of(a),
            &[
                ("ServiceSid", ga),
                ("Channel", &ch),
                ("CustomerKey", "case-42"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.json()
}

/// Polls the transcript until it leaves `queued`/`in-progress`.
async fn wait_done(app: &TestApp, a: &Account, gt: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let t = app
            .get(&format!("/v2/Transcripts/{gt}"), &Creds::of(a))
            .await
            .json();
        let status = t["status"].as_str().unwrap_or_default().to_owned();
        if status != "queued" && status != "in-progress" {
            return t;
        }
        assert!(Instant::now() < deadline, "transcript stuck in {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn texts(sentences: &[Value]) -> Vec<String> {
    sentences
        .iter()
        .map(|s| s["transcript"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Every sentence text and every pair of consecutive recognised words (single words such as
/// "call" occur in the schema itself): what must never be at rest.
fn needles(texts: &[String]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = texts.iter().map(|t| t.as_bytes().to_vec()).collect();
    for t in texts {
        let words: Vec<&str> = t.split_whitespace().collect();
        for pair in words.windows(2) {
            out.push(pair.join(" ").into_bytes());
        }
    }
    out.retain(|n| n.len() >= 6);
    out
}

fn assert_nothing_at_rest(app: &TestApp, texts: &[String]) {
    let needles = needles(texts);
    assert!(!needles.is_empty(), "nothing to look for");
    for needle in needles {
        let hits = mediaseal_test_support::scan::Scan::default()
            .files_containing(app.dir.path(), std::slice::from_ref(&needle));
        assert!(
            hits.is_empty(),
            "transcript text {:?} at rest in {hits:?}",
            String::from_utf8_lossy(&needle)
        );
    }
}

#[tokio::test]
async fn services_crud_validation_and_isolation() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let other = app.account().await;
    let key = app.add_public_key(&a, test_key(0)).await;
    let foreign_key = app.add_public_key(&other, test_key(1)).await;

    let r = app
        .post_form(
            "/v2/Services",
            &Creds::of(&a),
            &[
                ("UniqueName", "calls"),
                ("FriendlyName", "Support calls"),
                ("LanguageCode", "en-GB"),
                ("AutoRedaction", "true"),
                ("WebhookUrl", "http://127.0.0.1:9/hook"),
                ("EncryptionCredentialSid", &key),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.headers["etag"], "\"1\"");
    let s = r.json();
    let ga = s["sid"].as_str().unwrap().to_owned();
    assert!(ga.starts_with("GA") && ga.len() == 34);
    assert_eq!(s["unique_name"], "calls");
    assert_eq!(s["language_code"], "en-GB");
    assert_eq!(s["auto_redaction"], true);
    assert_eq!(s["auto_transcribe"], false);
    assert_eq!(s["data_logging"], false);
    assert_eq!(s["webhook_http_method"], "POST");
    assert_eq!(s["encryption_credential_sid"], key.as_str());
    assert_eq!(s["version"], 1);
    assert_eq!(s["url"], format!("http://mediaseal.test/v2/Services/{ga}"));

    // Validation, each naming its parameter.
    for (form, status, want) in [
        (vec![("FriendlyName", "x")], 400, "UniqueName"),
        (vec![("UniqueName", "calls")], 409, "already exists"),
        (
            vec![("UniqueName", "u2"), ("DataLogging", "true")],
            400,
            "operator",
        ),
        (
            vec![("UniqueName", "u3"), ("LanguageCode", "english!")],
            400,
            "LanguageCode",
        ),
        (
            vec![("UniqueName", "u4"), ("EncryptionCredentialSid", "nope")],
            400,
            "not a public key SID",
        ),
        (
            vec![
                ("UniqueName", "u5"),
                (
                    "EncryptionCredentialSid",
                    "CR0123456789abcdef0123456789abcdef",
                ),
            ],
            400,
            "does not exist",
        ),
        (
            vec![
                ("UniqueName", "u6"),
                ("EncryptionCredentialSid", foreign_key.as_str()),
            ],
            400,
            "does not exist",
        ),
        (
            vec![("UniqueName", "u8"), ("MediaRedaction", "true")],
            400,
            "AutoRedaction",
        ),
        (
            vec![("UniqueName", "u7"), ("WebhookHttpMethod", "PUT")],
            400,
            "WebhookHttpMethod",
        ),
    ] {
        let r = app.post_form("/v2/Services", &Creds::of(&a), &form).await;
        assert_eq!(r.status.as_u16(), status, "{form:?}: {:?}", r.body);
        let message = r.json()["message"].as_str().unwrap().to_owned();
        assert!(message.contains(want), "{form:?}: {message}");
    }
    // DataLogging=false is simply what it already is.
    let s2 = create_service(&app, &a, &[("DataLogging", "false")]).await;
    assert_eq!(s2["data_logging"], false);

    // Fetch, list with paging.
    let r = app.get(&format!("/v2/Services/{ga}"), &Creds::of(&a)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["friendly_name"], "Support calls");
    let page = app
        .get("/v2/Services?PageSize=1", &Creds::of(&a))
        .await
        .json();
    assert_eq!(page["services"].as_array().unwrap().len(), 1);
    assert_eq!(page["meta"]["key"], "services");
    let next = page["meta"]["next_page_url"].as_str().unwrap();
    let next = next.strip_prefix("http://mediaseal.test").unwrap();
    let page2 = app.get(next, &Creds::of(&a)).await.json();
    assert_eq!(page2["services"].as_array().unwrap().len(), 1);
    assert_ne!(page2["services"][0]["sid"], page["services"][0]["sid"]);

    // Update: If-Match must be current; clearing the key and the webhook.
    let uri = format!("/v2/Services/{ga}");
    let r = app
        .call(
            axum::http::Method::POST,
            &uri,
            &Creds::of(&a),
            axum::body::Body::from("FriendlyName=renamed"),
            Some("application/x-www-form-urlencoded"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.json()["version"], 2);
    let stale = axum::http::Request::builder()
        .method("POST")
        .uri(&uri)
        .header("host", "mediaseal.test")
        .header("if-match", "\"1\"")
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            format!(
                "Basic {}",
                base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    format!("{}:{}", a.sid, a.auth_token)
                )
            ),
        )
        .body(axum::body::Body::from("FriendlyName=lost"))
        .unwrap();
    let resp = tower::ServiceExt::oneshot(app.router.clone(), stale)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PRECONDITION_FAILED);
    let r = app
        .post_form(
            &uri,
            &Creds::of(&a),
            &[
                ("EncryptionCredentialSid", ""),
                ("WebhookUrl", ""),
                ("AutoTranscribe", "true"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let s = r.json();
    assert!(
        s["encryption_credential_sid"].is_null() && s["webhook_url"].is_null(),
        "{s}"
    );
    assert!(s["webhook_http_method"].is_null());
    assert_eq!(s["friendly_name"], "renamed");
    assert_eq!(s["auto_transcribe"], true);
    assert_eq!(r.headers["etag"], "\"3\"");
    let r = app
        .post_form(
            &uri,
            &Creds::of(&a),
            &[("UniqueName", s2["unique_name"].as_str().unwrap())],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    for form in [
        vec![("DataLogging", "true")],
        vec![("LanguageCode", "de-DE")],
        vec![("AutoRedaction", "false"), ("MediaRedaction", "true")],
    ] {
        let r = app.post_form(&uri, &Creds::of(&a), &form).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{form:?}");
    }
    let r = app
        .post_form(
            &uri,
            &Creds::of(&a),
            &[("LanguageCode", "en-GB"), ("MediaRedaction", "true")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.json()["media_redaction"], true);

    // Another account sees nothing of it.
    assert_eq!(
        app.get(&uri, &Creds::of(&other)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post_form(&uri, &Creds::of(&other), &[("FriendlyName", "x")])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&uri, &Creds::of(&other)).await.status,
        StatusCode::NOT_FOUND
    );
    let theirs = app.get("/v2/Services", &Creds::of(&other)).await.json();
    assert!(theirs["services"].as_array().unwrap().is_empty());
    assert_eq!(
        app.get(&uri, &Creds::None).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Delete.
    assert_eq!(
        app.delete(&uri, &Creds::of(&a)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&uri, &Creds::of(&a)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&uri, &Creds::of(&a)).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn transcript_requests_are_validated_and_scoped() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let other = app.account().await;
    let ga = create_service(&app, &a, &[]).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let their_ga = create_service(&app, &other, &[]).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let re = ingest_at_rest(&app, &a, wav_with_marker(1, b"x")).await;
    let their_re = ingest_at_rest(&app, &other, wav_with_marker(1, b"y")).await;
    let ch = channel(&re);
    for (form, want) in [
        (vec![("Channel", ch.as_str())], "ServiceSid"),
        (
            vec![("ServiceSid", their_ga.as_str()), ("Channel", &ch)],
            "does not exist",
        ),
        (vec![("ServiceSid", ga.as_str())], "Channel"),
        (
            vec![("ServiceSid", ga.as_str()), ("Channel", "{nope")],
            "Channel",
        ),
        (
            vec![
                ("ServiceSid", ga.as_str()),
                (
                    "Channel",
                    r#"{"media_properties":{"media_url":"ftp://x/y.wav"}}"#,
                ),
            ],
            "http:// or https://",
        ),
        (
            vec![
                ("ServiceSid", ga.as_str()),
                ("Channel", &channel(&their_re)),
            ],
            "does not exist",
        ),
        (
            vec![
                ("ServiceSid", ga.as_str()),
                ("Channel", &ch),
                ("CustomerKey", &"k".repeat(65)),
            ],
            "CustomerKey",
        ),
    ] {
        let r = app
            .post_form("/v2/Transcripts", &Creds::of(&a), &form)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{form:?}: {:?}", r.body);
        let message = r.json()["message"].as_str().unwrap().to_owned();
        assert!(message.contains(want), "{form:?}: {message}");
    }
    assert_eq!(
        app.get(
            "/v2/Transcripts/GT0123456789abcdef0123456789abcdef",
            &Creds::of(&a)
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/v2/Transcripts?Status=bogus", &Creds::of(&a))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn a_customer_sealed_recording_is_refused() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let key = app.add_public_key(&a, test_key(0)).await;
    app.enable_encryption(&a, Some(&key)).await;
    let r = app.ingest(&a, "", wav_with_marker(1, b"sealed")).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let re = r.json()["sid"].as_str().unwrap().to_owned();
    let ga = create_service(&app, &a, &[]).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post_form(
            "/v2/Transcripts",
            &Creds::of(&a),
            &[("ServiceSid", &ga), ("Channel", &channel(&re))],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    let message = r.json()["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains(&re) && message.contains("encrypted with your public key"),
        "{message}"
    );
    let list = app.get("/v2/Transcripts", &Creds::of(&a)).await.json();
    assert!(list["transcripts"].as_array().unwrap().is_empty(), "{list}");
}

/// Without an engine the transcript fails, says why, and the webhook says so too.
#[tokio::test]
async fn without_an_engine_the_transcript_fails_with_the_reason() {
    let mut app = TestApp::new().await;
    app.state = app.state.clone().with_speech(Speech::unavailable(
        "install pocketsphinx (apt-get install pocketsphinx)",
    ));
    app.router = mediaseal_server::app(app.state.clone());
    let a = app.account().await;
    let ga = create_service(&app, &a, &[("WebhookUrl", "http://127.0.0.1:9/hook")]).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let re = ingest_at_rest(&app, &a, wav_with_marker(1, b"x")).await;
    let t = create_transcript(&app, &a, &ga, &re).await;
    assert_eq!(t["status"], "queued");
    let gt = t["sid"].as_str().unwrap().to_owned();
    let t = wait_done(&app, &a, &gt).await;
    assert_eq!(t["status"], "failed", "{t}");
    assert!(
        t["error_message"]
            .as_str()
            .unwrap()
            .contains("apt-get install pocketsphinx"),
        "{t}"
    );
    let callbacks = app.state.meta.callbacks_for(&gt).await.unwrap();
    assert_eq!(callbacks.len(), 1);
    assert!(
        callbacks[0]
            .params
            .contains("voice_intelligence_transcript_failed"),
        "{:?}",
        callbacks[0].params
    );
    let r = app
        .get(&format!("/v2/Transcripts/{gt}/Sentences"), &Creds::of(&a))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json()["sentences"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn transcript_of_an_at_rest_recording_has_sentences_at_rest() {
    let Some((app, wav)) = speaking_app().await else {
        return;
    };
    let a = app.account().await;
    let other = app.account().await;
    let ga = create_service(&app, &a, &[("WebhookUrl", "http://127.0.0.1:9/hook")]).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let re = ingest_at_rest(&app, &a, wav).await;
    let t = create_transcript(&app, &a, &ga, &re).await;
    let gt = t["sid"].as_str().unwrap().to_owned();
    assert!(gt.starts_with("GT"));
    assert_eq!(t["service_sid"], ga.as_str());
    assert_eq!(t["channel"]["media_properties"]["source_sid"], re.as_str());
    assert_eq!(t["customer_key"], "case-42");
    assert_eq!(
        t["links"]["sentences"],
        format!("http://mediaseal.test/v2/Transcripts/{gt}/Sentences")
    );

    let t = wait_done(&app, &a, &gt).await;
    assert_eq!(t["status"], "completed", "{t}");
    assert!(t["encryption_credential_sid"].is_null());
    assert!(t["duration"].as_i64().unwrap() >= 3, "{t}");

    let uri = format!("/v2/Transcripts/{gt}/Sentences?WordTimestamps=true");
    let r = app.get(&uri, &Creds::of(&a)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let page = r.json();
    let sentences = page["sentences"].as_array().unwrap().clone();
    assert!(!sentences.is_empty(), "{page}");
    let all = texts(&sentences).join(" ").to_lowercase();
    assert!(all.contains("card"), "recognised: {all:?}");
    for (i, s) in sentences.iter().enumerate() {
        assert_eq!(s["sentence_index"], i as u64);
        assert_eq!(s["media_channel"], 1);
        assert!(s["sid"].as_str().unwrap().starts_with("GX"));
        assert!(s["start_time"].as_str().unwrap().parse::<f64>().is_ok());
        assert!(!s["words"].as_array().unwrap().is_empty(), "{s}");
    }
    // Words only when asked for; paging in sentence order.
    let plain = app
        .get(&format!("/v2/Transcripts/{gt}/Sentences"), &Creds::of(&a))
        .await
        .json();
    assert!(plain["sentences"][0]["words"].is_null());
    if sentences.len() > 1 {
        let first = app
            .get(
                &format!("/v2/Transcripts/{gt}/Sentences?PageSize=1"),
                &Creds::of(&a),
            )
            .await
            .json();
        assert_eq!(first["sentences"].as_array().unwrap().len(), 1);
        let next = first["meta"]["next_page_url"].as_str().unwrap();
        let second = app
            .get(
                next.strip_prefix("http://mediaseal.test").unwrap(),
                &Creds::of(&a),
            )
            .await
            .json();
        assert_eq!(second["sentences"][0]["sentence_index"], 1);
    }
    // Not encrypted: no encrypted download.
    let r = app
        .get(
            &format!("/v2/Transcripts/{gt}/Sentences/Encrypted"),
            &Creds::of(&a),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Another account sees nothing.
    for path in [
        format!("/v2/Transcripts/{gt}"),
        format!("/v2/Transcripts/{gt}/Sentences"),
    ] {
        assert_eq!(
            app.get(&path, &Creds::of(&other)).await.status,
            StatusCode::NOT_FOUND
        );
    }
    let list = app
        .get(
            &format!("/v2/Transcripts?ServiceSid={ga}&Status=completed"),
            &Creds::of(&a),
        )
        .await
        .json();
    assert_eq!(list["transcripts"][0]["sid"], gt.as_str());
    assert!(
        app.get("/v2/Transcripts", &Creds::of(&other)).await.json()["transcripts"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // The webhook is queued, about this transcript.
    let callbacks = app.state.meta.callbacks_for(&gt).await.unwrap();
    assert_eq!(callbacks.len(), 1);
    assert_eq!(callbacks[0].url, "http://127.0.0.1:9/hook");
    assert!(
        callbacks[0]
            .params
            .contains("voice_intelligence_transcript_available")
    );
    assert!(callbacks[0].params.contains(&gt));

    // No transcript text anywhere in the data directory (database and objects).
    assert_nothing_at_rest(&app, &texts(&sentences));

    // Delete destroys the sealed sentences.
    let key = format!("{}/{gt}", a.sid);
    assert!(app.state.objects.head(&key).await.is_ok());
    assert_eq!(
        app.delete(&format!("/v2/Transcripts/{gt}"), &Creds::of(&other))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&format!("/v2/Transcripts/{gt}"), &Creds::of(&a))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert!(app.state.objects.head(&key).await.is_err());
    assert_eq!(
        app.get(&format!("/v2/Transcripts/{gt}"), &Creds::of(&a))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

/// The seed's decryption script, reading its inputs from argv and printing the plaintext.
const SEED_DECRYPT: &str = r#"
import base64, sys
from pathlib import Path
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.backends import default_backend
encrypted_key = base64.b64decode(sys.argv[1])
iv = base64.b64decode(sys.argv[2])
cipher_plus_tag = Path(sys.argv[3]).read_bytes()
rsa_private_key = serialization.load_pem_private_key(Path(sys.argv[4]).read_text().encode('utf-8'), password=None, backend=default_backend())
raw_aes_key = rsa_private_key.decrypt(encrypted_key, padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
ciphertext = cipher_plus_tag[:-16]
tag = cipher_plus_tag[-16:]
decryptor = Cipher(algorithms.AES(raw_aes_key), modes.GCM(iv, tag), backend=default_backend()).decryptor()
sys.stdout.buffer.write(decryptor.update(ciphertext) + decryptor.finalize())
"#;

/// Opens a download of the encrypted sentences with the seed's script and the test key 0.
fn seed_decrypt(wrapped: &str, iv: &str, ciphertext: &[u8]) -> Value {
    let dir = mediaseal_test_support::scan::media_dir();
    let cipher_file = dir.path().join("sentences.enc");
    let key_file = dir.path().join("private_key.pem");
    std::fs::write(&cipher_file, ciphertext).unwrap();
    std::fs::write(&key_file, test_key(0).to_pkcs8_pem().unwrap().as_bytes()).unwrap();
    let python = mediaseal_test_support::python(&["cryptography"]);
    let mut child = Command::new(python)
        .args(["-", wrapped, iv])
        .arg(&cipher_file)
        .arg(&key_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(SEED_DECRYPT.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The encrypted sentences of `gt`, downloaded and opened by the seed's script.
async fn encrypted_sentences(app: &TestApp, a: &Account, gt: &str) -> (Value, Vec<u8>) {
    let r = app
        .get(
            &format!("/v2/Transcripts/{gt}/Sentences/Encrypted"),
            &Creds::of(a),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let location = r.json()["location"].as_str().unwrap().to_owned();
    let d = app
        .get(
            location.strip_prefix("http://mediaseal.test").unwrap(),
            &Creds::None,
        )
        .await;
    assert_eq!(d.status, StatusCode::OK);
    let header = |name: &str| d.headers[name].to_str().unwrap().to_owned();
    let doc = seed_decrypt(
        &header("x-amz-meta-x-amz-key"),
        &header("x-amz-meta-x-amz-iv"),
        &d.body,
    );
    (doc, d.body.to_vec())
}

#[tokio::test]
async fn encrypted_sentences_download_opens_with_the_seed_recipe() {
    let Some((app, wav)) = speaking_app().await else {
        return;
    };
    let a = app.account().await;
    let key = app.add_public_key(&a, test_key(0)).await;
    let ga = create_service(&app, &a, &[("EncryptionCredentialSid", &key)]).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let re = ingest_at_rest(&app, &a, wav).await;
    let gt = create_transcript(&app, &a, &ga, &re).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = wait_done(&app, &a, &gt).await;
    assert_eq!(t["status"], "completed", "{t}");
    assert_eq!(t["encryption_credential_sid"], key.as_str());

    // The plain resource is refused; the encrypted one says where to download.
    let r = app
        .get(&format!("/v2/Transcripts/{gt}/Sentences"), &Creds::of(&a))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("Sentences/Encrypted")
    );
    let r = app
        .get(
            &format!("/v2/Transcripts/{gt}/Sentences/Encrypted"),
            &Creds::of(&a),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let enc = r.json();
    assert_eq!(enc["transcript_sid"], gt.as_str());
    assert_eq!(
        enc["url"],
        format!("http://mediaseal.test/v2/Transcripts/{gt}/Sentences/Encrypted")
    );
    let location = enc["location"].as_str().unwrap();
    let path = location.strip_prefix("http://mediaseal.test").unwrap();
    // The download needs no credentials: the signed URL is the permission.
    let d = app.get(path, &Creds::None).await;
    assert_eq!(d.status, StatusCode::OK, "{:?}", d.body);
    let header = |name: &str| d.headers[name].to_str().unwrap().to_owned();
    let (wrapped, iv) = (
        header("x-amz-meta-x-amz-key"),
        header("x-amz-meta-x-amz-iv"),
    );
    let ciphertext = d.body.to_vec();

    let doc = seed_decrypt(&wrapped, &iv, &ciphertext);
    let sentences = doc["sentences"].as_array().unwrap();
    assert!(!sentences.is_empty(), "{doc}");
    let all = texts(sentences).join(" ").to_lowercase();
    assert!(all.contains("card"), "recognised: {all:?}");
    assert!(sentences[0]["sid"].as_str().unwrap().starts_with("GX"));
    assert_eq!(sentences[0]["media_channel"], 1);

    // The stored bytes are the ciphertext: nothing readable at rest.
    assert_nothing_at_rest(&app, &texts(sentences));
    assert!(!mediaseal_test_support::contains(&ciphertext, b"sentences"));
}

/// An engine process that dies in the middle of a request (killed while reading the audio):
/// the transcript fails with the reason, the webhook says so, and the server carries on.
#[tokio::test]
async fn an_engine_killed_mid_request_fails_only_that_transcript() {
    use std::os::unix::fs::PermissionsExt;
    let fixtures = tempfile::tempdir().unwrap();
    let program = fixtures.path().join("dying-recogniser");
    std::fs::write(
        &program,
        "#!/bin/sh\nhead -c 16000 >/dev/null\nkill -KILL $$\n",
    )
    .unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let engine = PocketsphinxEngine::new(mediaseal_intelligence::asr::PocketsphinxConfig {
        program,
        acoustic_model: "/nonexistent/hmm".into(),
        language_model: "/nonexistent/lm".into(),
        dictionary: "/nonexistent/dict".into(),
        request_timeout: Duration::from_secs(30),
        timeout_per_audio_second: Duration::from_secs(1),
    });
    let mut app = TestApp::new().await;
    app.state = app
        .state
        .clone()
        .with_speech(Speech::given(Arc::new(engine)));
    app.router = mediaseal_server::app(app.state.clone());
    let a = app.account().await;
    let ga = create_service(&app, &a, &[("WebhookUrl", "http://127.0.0.1:9/hook")]).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let re = ingest_at_rest(&app, &a, wav_with_marker(3, b"x")).await;
    let gt = create_transcript(&app, &a, &ga, &re).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = wait_done(&app, &a, &gt).await;
    assert_eq!(t["status"], "failed", "{t}");
    let why = t["error_message"].as_str().unwrap();
    assert!(why.contains("died during the request"), "{why}");
    let callbacks = app.state.meta.callbacks_for(&gt).await.unwrap();
    assert_eq!(callbacks.len(), 1);
    assert!(
        callbacks[0]
            .params
            .contains("voice_intelligence_transcript_failed")
    );
    assert!(
        app.state
            .objects
            .head(&format!("{}/{gt}", a.sid))
            .await
            .is_err()
    );
    // The server is fine: it answers, and takes the next transcript.
    assert_eq!(
        app.get("/healthz", &Creds::None).await.status,
        StatusCode::OK
    );
    let next = create_transcript(&app, &a, &ga, &re).await;
    assert_eq!(next["status"], "queued");
    assert_eq!(
        wait_done(&app, &a, next["sid"].as_str().unwrap()).await["status"],
        "failed"
    );
}

/// A two-channel call: the agent on the left, then the customer on the right. Each channel is
/// recognised on its own and the sentences merged by time, tagged with their channel.
#[tokio::test]
async fn a_two_channel_call_is_transcribed_per_channel_and_merged_by_time() {
    let Some((app, customer)) = speaking_app().await else {
        return;
    };
    let agent = spoken(AGENT, "slt").expect("flite ran a moment ago");
    let (left_format, left) = mediaseal_intelligence::asr::audio::parse_wav(&agent).unwrap();
    let (right_format, right) = mediaseal_intelligence::asr::audio::parse_wav(&customer).unwrap();
    assert_eq!(left_format, right_format);
    let rate = left_format.sample_rate;
    // Left: the agent, then silence; right: silence, then the customer.
    let gap = vec![0u8; rate as usize]; // half a second of 16-bit silence
    let left: Vec<u8> = [left, &gap, &vec![0u8; right.len()]].concat();
    let right: Vec<u8> = [&vec![0u8; left.len() - right.len()][..], right].concat();
    let mut data = Vec::with_capacity(left.len() * 2);
    for (l, r) in left.chunks_exact(2).zip(right.chunks_exact(2)) {
        data.extend_from_slice(l);
        data.extend_from_slice(r);
    }
    let mut wav = mediaseal_test_support::wav::header(rate, 2, 16, data.len() as u32);
    wav.extend_from_slice(&data);

    let a = app.account().await;
    let ga = create_service(&app, &a, &[]).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let re = ingest_at_rest(&app, &a, wav).await;
    let ch = format!(
        r#"{{"media_properties":{{"source_sid":"{re}"}},"participants":[{{"channel_participant":1,"role":"Agent"}},{{"channel_participant":2,"role":"Customer"}}]}}"#
    );
    let r = app
        .post_form(
            "/v2/Transcripts",
            &Creds::of(&a),
            &[("ServiceSid", &ga), ("Channel", &ch)],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let t = r.json();
    assert_eq!(t["channel"]["participants"][1]["role"], "Customer");
    let gt = t["sid"].as_str().unwrap().to_owned();
    assert_eq!(wait_done(&app, &a, &gt).await["status"], "completed");
    let page = app
        .get(&format!("/v2/Transcripts/{gt}/Sentences"), &Creds::of(&a))
        .await
        .json();
    let sentences = page["sentences"].as_array().unwrap();
    let on = |channel: u64| -> String {
        sentences
            .iter()
            .filter(|s| s["media_channel"] == channel)
            .map(|s| s["transcript"].as_str().unwrap().to_lowercase())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (agent_text, customer_text) = (on(1), on(2));
    assert!(
        !agent_text.is_empty() && !customer_text.is_empty(),
        "{page}"
    );
    assert!(
        customer_text.contains("card"),
        "customer: {customer_text:?}"
    );
    // Merged by time: start times never go backwards, and the agent speaks first.
    let starts: Vec<f64> = sentences
        .iter()
        .map(|s| s["start_time"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(starts.windows(2).all(|w| w[0] <= w[1]), "{starts:?}");
    assert_eq!(sentences[0]["media_channel"], 1);
    assert_eq!(sentences.last().unwrap()["media_channel"], 2);
    let all: Vec<String> = texts(sentences);
    assert_nothing_at_rest(&app, &all);
}

/// `AutoTranscribe`: every new recording of the account gets a transcript under each service
/// that asks for it: read back when sealed at rest, heard from the ingest tap when sealed with
/// the customer's key.
#[tokio::test]
async fn auto_transcribe_reads_at_rest_recordings_and_taps_customer_sealed_ones() {
    let Some((app, wav)) = speaking_app().await else {
        return;
    };
    let a = app.account().await;
    let auto = create_service(&app, &a, &[("AutoTranscribe", "true")]).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    create_service(&app, &a, &[]).await;
    let re = ingest_at_rest(&app, &a, wav.clone()).await;
    let list = app
        .get(&format!("/v2/Transcripts?SourceSid={re}"), &Creds::of(&a))
        .await
        .json();
    let transcripts = list["transcripts"].as_array().unwrap();
    assert_eq!(transcripts.len(), 1, "{list}");
    assert_eq!(transcripts[0]["service_sid"], auto.as_str());
    let gt = transcripts[0]["sid"].as_str().unwrap().to_owned();
    assert_eq!(wait_done(&app, &a, &gt).await["status"], "completed");
    let page = app
        .get(&format!("/v2/Transcripts/{gt}/Sentences"), &Creds::of(&a))
        .await
        .json();
    assert!(!page["sentences"].as_array().unwrap().is_empty(), "{page}");

    // A recording sealed with the customer's key: transcribed from the tap while it was being
    // sealed (the server cannot open it afterwards), sentences sealed with the service's key.
    let b = app.account().await;
    let key = app.add_public_key(&b, test_key(0)).await;
    app.enable_encryption(&b, Some(&key)).await;
    let ga = create_service(
        &app,
        &b,
        &[
            ("AutoTranscribe", "true"),
            ("EncryptionCredentialSid", &key),
        ],
    )
    .await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app.ingest(&b, "", wav).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let rec = r.json();
    assert!(!rec["encryption_details"].is_null());
    let sealed_re = rec["sid"].as_str().unwrap().to_owned();
    let list = app.get("/v2/Transcripts", &Creds::of(&b)).await.json();
    let transcripts = list["transcripts"].as_array().unwrap();
    assert_eq!(transcripts.len(), 1, "{list}");
    assert_eq!(
        transcripts[0]["channel"]["media_properties"]["source_sid"],
        sealed_re.as_str()
    );
    let gt = transcripts[0]["sid"].as_str().unwrap().to_owned();
    assert_eq!(wait_done(&app, &b, &gt).await["status"], "completed");
    let (doc, ciphertext) = encrypted_sentences(&app, &b, &gt).await;
    let heard = texts(doc["sentences"].as_array().unwrap());
    assert!(heard.join(" ").to_lowercase().contains("card"), "{heard:?}");
    assert!(!mediaseal_test_support::contains(&ciphertext, b"sentences"));
    // Asked for later, the same recording is refused: only the tap could hear it.
    let r = app
        .post_form(
            "/v2/Transcripts",
            &Creds::of(&b),
            &[("ServiceSid", &ga), ("Channel", &channel(&sealed_re))],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_nothing_at_rest(&app, &heard);
}

/// twilio-python, unchanged, over a real socket (`interop/intelligence/twilio_intelligence.py`):
/// services, transcripts with and without the customer's key, the encrypted sentences opened by
/// seed 002's own decryption steps, plain sentences with words.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twilio_python_drives_intelligence_and_opens_the_encrypted_sentences() {
    if speaking_app().await.is_none() {
        return;
    }
    // A whole card number, for the PII operator attached to both services.
    let Some(wav) = spoken(CARD_CALL, "slt") else {
        return;
    };
    let python = mediaseal_test_support::python(&["twilio", "requests", "cryptography"]);
    let engine = PocketsphinxEngine::debian().expect("checked by speaking_app");
    // URLs from the request's Host, so the library's paging and `location` reach the socket.
    let mut app = TestApp::with_config(|c| c.public_url = None).await;
    app.state = app
        .state
        .clone()
        .with_speech(Speech::given(Arc::new(engine)));
    app.router = mediaseal_server::app(app.state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, app.router.clone()).into_future());

    let a = app.account().await;
    let work = mediaseal_test_support::scan::media_dir();
    let dir = work.path();
    std::fs::write(
        dir.join("private_key.pem"),
        test_key(0).to_pkcs8_pem().unwrap().as_bytes(),
    )
    .unwrap();
    std::fs::write(
        dir.join("public_key.pem"),
        test_key(0).public_key().to_pem(),
    )
    .unwrap();
    std::fs::write(dir.join("call.wav"), &wav).unwrap();
    let config = serde_json::to_string(&serde_json::Map::from_iter(
        [
            ("base_url", base.clone()),
            ("account_sid", a.sid.clone()),
            ("auth_token", a.auth_token.clone()),
            (
                "public_key_pem",
                dir.join("public_key.pem").display().to_string(),
            ),
            (
                "private_key_pem",
                dir.join("private_key.pem").display().to_string(),
            ),
            ("recording_wav", dir.join("call.wav").display().to_string()),
        ]
        .map(|(k, v)| (k.to_owned(), Value::from(v))),
    ))
    .unwrap();
    std::fs::write(dir.join("config.json"), config).unwrap();
    let script = mediaseal_test_support::workspace_root()
        .join("interop/intelligence/twilio_intelligence.py");
    let cfg = dir.join("config.json");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python).arg(script).arg(cfg).output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "twilio-python scenario failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["encrypted_text", "plain_text"] {
        let text = report[key].as_str().unwrap().to_lowercase();
        assert!(text.contains("card"), "{key}: {text:?}");
    }
    // The PII operator found the card number: in the result sealed with the customer's key
    // (opened by the seed's script) and in the plain one.
    for key in ["encrypted_cards", "plain_cards"] {
        assert_eq!(report[key], serde_json::json!([CARD_NUMBER]), "{report}");
    }
    let encrypted = report["encrypted_text"].as_str().unwrap().to_owned();
    assert_nothing_at_rest(&app, &[encrypted, CARD_NUMBER.to_owned()]);
}

/// Data logging: switched on by the operator only (never through the API); with it, a transcript
/// sealed with the customer's key keeps a second copy sealed at rest, which the service can
/// open; without it, no second copy. Deleting the transcript destroys both.
#[tokio::test]
async fn data_logging_keeps_an_at_rest_copy_only_when_the_operator_switched_it_on() {
    let Some((app, wav)) = speaking_app().await else {
        return;
    };
    let a = app.account().await;
    let key = app.add_public_key(&a, test_key(0)).await;
    let ga = create_service(&app, &a, &[("EncryptionCredentialSid", &key)]).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let re = ingest_at_rest(&app, &a, wav).await;

    // Off (the default): one object, the customer's.
    let off = create_transcript(&app, &a, &ga, &re).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = wait_done(&app, &a, &off).await;
    assert_eq!(
        (t["status"].as_str(), t["data_logging"].as_bool()),
        (Some("completed"), Some(false))
    );
    let off_key = format!("{}/{off}", a.sid);
    assert!(app.state.objects.head(&off_key).await.is_ok());
    assert!(
        app.state
            .objects
            .head(&format!("{off_key}-log"))
            .await
            .is_err()
    );

    // The operator switches it on; the API shows it and cannot switch it on itself.
    let s = mediaseal_server::set_data_logging(app.state.meta.as_ref(), &ga, true)
        .await
        .unwrap()
        .unwrap();
    assert!(s.data_logging);
    let fetched = app
        .get(&format!("/v2/Services/{ga}"), &Creds::of(&a))
        .await
        .json();
    assert_eq!(fetched["data_logging"], true);
    let on = create_transcript(&app, &a, &ga, &re).await;
    assert_eq!(on["data_logging"], true);
    let on = on["sid"].as_str().unwrap().to_owned();
    assert_eq!(wait_done(&app, &a, &on).await["status"], "completed");
    let on_key = format!("{}/{on}", a.sid);
    let log_key = format!("{on_key}-log");
    // The customer's copy is ciphertext the service cannot open; the log copy opens at rest.
    assert!(app.state.reader.unlock(&on_key).await.is_err());
    let reader = app.state.reader.clone();
    let k = log_key.clone();
    let plain = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut reader.open_blocking(&k).unwrap(), &mut out).unwrap();
        out
    })
    .await
    .unwrap();
    let doc: Value = serde_json::from_slice(&plain).unwrap();
    let logged = texts(doc["sentences"].as_array().unwrap());
    assert!(
        logged.join(" ").to_lowercase().contains("card"),
        "{logged:?}"
    );
    assert_nothing_at_rest(&app, &logged);

    // The customer switches it off through the API; then no second copy again.
    let r = app
        .post_form(
            &format!("/v2/Services/{ga}"),
            &Creds::of(&a),
            &[("DataLogging", "false")],
        )
        .await;
    assert_eq!(r.json()["data_logging"], false);
    let later = create_transcript(&app, &a, &ga, &re).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(wait_done(&app, &a, &later).await["status"], "completed");
    assert!(
        app.state
            .objects
            .head(&format!("{}/{later}-log", a.sid))
            .await
            .is_err()
    );

    // Delete destroys both copies.
    assert_eq!(
        app.delete(&format!("/v2/Transcripts/{on}"), &Creds::of(&a))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert!(app.state.objects.head(&on_key).await.is_err());
    assert!(app.state.objects.head(&log_key).await.is_err());
}

/// `AutoRedaction`: the sentences are served redacted by default (PII replaced by its type),
/// the full ones with `Redacted=false`; both are sealed objects of their own.
#[tokio::test]
async fn auto_redaction_serves_sentences_without_the_numbers() {
    let Some((app, _)) = speaking_app().await else {
        return;
    };
    let wav = spoken(
        "My card number is 4 5 3 9, 1 4 8 8, 0 3 4 3, 6 4 6 7. My account number is 7 7 3 1 9 2 8 4.",
        "slt",
    )
    .expect("flite ran a moment ago");
    let a = app.account().await;
    let ga = create_service(&app, &a, &[("AutoRedaction", "true")]).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let re = ingest_at_rest(&app, &a, wav).await;
    let t = create_transcript(&app, &a, &ga, &re).await;
    assert_eq!(t["redaction"], true);
    let gt = t["sid"].as_str().unwrap().to_owned();
    assert_eq!(wait_done(&app, &a, &gt).await["status"], "completed");

    let get = |query: &'static str| {
        let uri = format!("/v2/Transcripts/{gt}/Sentences?WordTimestamps=true{query}");
        let app = &app;
        let a = &a;
        async move { app.get(&uri, &Creds::of(a)).await.json() }
    };
    let full = texts(
        get("&Redacted=false").await["sentences"]
            .as_array()
            .unwrap(),
    );
    let redacted_page = get("").await;
    let redacted = texts(redacted_page["sentences"].as_array().unwrap());
    let spoken_numbers = |texts: &[String]| {
        texts
            .iter()
            .map(|t| {
                let words: Vec<&str> = t.split_whitespace().collect();
                mediaseal_intelligence::pii::find(&words).len()
            })
            .sum::<usize>()
    };
    assert!(
        spoken_numbers(&full) > 0,
        "no number recognised in {full:?}"
    );
    assert_eq!(spoken_numbers(&redacted), 0, "{redacted:?}");
    let joined = redacted.join(" ");
    assert!(
        ["[CREDIT_CARD]", "[PHONE_NUMBER]", "[NUMBER]"]
            .iter()
            .any(|label| joined.contains(label)),
        "{joined:?}"
    );
    let words = redacted_page["sentences"][0]["words"].as_array().unwrap();
    assert!(words.iter().all(|w| {
        let word = w["word"].as_str().unwrap();
        mediaseal_intelligence::pii::find(&[word]).is_empty()
    }));
    assert_eq!(
        texts(get("&Redacted=true").await["sentences"].as_array().unwrap()),
        redacted
    );
    let key = format!("{}/{gt}", a.sid);
    assert!(
        app.state
            .objects
            .head(&format!("{key}-redacted"))
            .await
            .is_ok()
    );
    assert_nothing_at_rest(&app, &full);
    assert_eq!(
        app.delete(&format!("/v2/Transcripts/{gt}"), &Creds::of(&a))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert!(
        app.state
            .objects
            .head(&format!("{key}-redacted"))
            .await
            .is_err()
    );
}
