//! `MediaRedaction` (issue 13, seed 002): a copy of the transcript's audio with the PII
//! silenced, sealed like the transcript and served by `GET /v2/Transcripts/{GT}/Media`. A
//! scripted engine places the spoken card and phone numbers at known times in a recording of
//! pseudo-random noise, so the redacted copy can be checked sample by sample.

mod support;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use mediaseal_intelligence::Speech;
use mediaseal_intelligence::asr::audio::parse_wav;
use mediaseal_store::model::Account;
use support::{Creds, ScriptedSpeech, TestApp, test_key, wav_with_marker};

/// In the source audio every 4,000 bytes: found on disk only if plaintext audio rested there.
const MARKER: &[u8] = b"media-redaction-marker";

/// What the scripted engine "hears", each word 0.2 s after the one before, 0.15 s long.
const LINES: [(f32, &str); 3] = [
    (0.0, "hello I lost my card yesterday"),
    (2.5, "my card number is 4539 1488 0343 6467 thanks"),
    (6.5, "please call me back on 415 555 0132"),
];

/// Where the PII is, seconds: the words' times, padded by `media::PAD`.
const CARD_SPAN: (f64, f64) = (3.3 - 0.25, 4.05 + 0.25);
const PHONE_SPAN: (f64, f64) = (7.5 - 0.25, 8.05 + 0.25);

/// `GET /v2/Transcripts/{gt}/Media{query}` → the download's path on this server.
async fn media_path(app: &TestApp, a: &Account, gt: &str, query: &str) -> String {
    let r = app
        .get(&format!("/v2/Transcripts/{gt}/Media{query}"), &Creds::of(a))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let m = r.json();
    assert_eq!(m["sid"], gt);
    assert_eq!(m["account_sid"], a.sid.as_str());
    assert_eq!(
        m["url"],
        format!("http://mediaseal.test/v2/Transcripts/{gt}/Media")
    );
    m["media_url"]
        .as_str()
        .unwrap()
        .strip_prefix("http://mediaseal.test")
        .unwrap()
        .to_owned()
}

/// The 16-bit mono samples of `wav` from `from` to `to` seconds.
fn samples(wav: &[u8], from: f64, to: f64) -> Vec<i16> {
    let (format, data) = parse_wav(wav).unwrap();
    let rate = f64::from(format.sample_rate);
    let (a, b) = ((from * rate) as usize * 2, (to * rate) as usize * 2);
    data[a..b.min(data.len())]
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect()
}

fn rms(samples: &[i16]) -> f64 {
    let sum: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
    (sum / samples.len().max(1) as f64).sqrt()
}

/// The redacted copy: the PII spans are silent, everything else is the source's, unchanged.
fn assert_redacted(source: &[u8], redacted: &[u8]) {
    assert_eq!(redacted.len(), source.len());
    assert_eq!(redacted[..44], source[..44], "same header and format");
    for (a, b) in [CARD_SPAN, PHONE_SPAN] {
        // Within the span (a sample's rounding in from each edge).
        let inside = samples(redacted, a + 0.001, b - 0.001);
        assert!(!inside.is_empty());
        assert_eq!(rms(&inside), 0.0, "PII span {a}..{b} is silent");
        assert!(rms(&samples(source, a, b)) > 1000.0, "the source is not");
    }
    for (a, b) in [
        (0.0, CARD_SPAN.0 - 0.001),
        (CARD_SPAN.1 + 0.001, PHONE_SPAN.0 - 0.001),
        (PHONE_SPAN.1 + 0.001, 10.0),
    ] {
        assert!(
            samples(redacted, a, b) == samples(source, a, b),
            "audio {a}..{b} is unchanged"
        );
    }
}

/// Files under the app's data directory holding the source audio's marker.
fn plaintext_at_rest(app: &TestApp) -> Vec<std::path::PathBuf> {
    mediaseal_test_support::scan::Scan::default()
        .files_containing(app.dir.path(), &[MARKER.to_vec()])
}

#[tokio::test]
async fn without_a_key_the_redacted_media_is_sealed_at_rest_and_served_as_wav() {
    let app = TestApp::with_scripted_speech(&LINES).await;
    let a = app.account().await;
    let ga = app
        .create_intelligence_service(&a, &[("AutoRedaction", "true"), ("MediaRedaction", "true")])
        .await;
    let source = wav_with_marker(10, MARKER);
    let (gt, re) = app.transcribe_recording(&a, &ga, source.clone()).await;

    // Redacted by default, since the transcript redacts.
    let path = media_path(&app, &a, &gt, "").await;
    assert!(path.starts_with("/v1/MediaDownload/"), "{path}");
    let d = app.get(&path, &Creds::None).await;
    assert_eq!(d.status, StatusCode::OK);
    assert_eq!(d.headers["content-type"], "audio/x-wav");
    assert_redacted(&source, &d.body);
    assert_eq!(media_path(&app, &a, &gt, "?Redacted=true").await, path);

    // Redacted=false: the recording it was made of.
    let original = media_path(&app, &a, &gt, "?Redacted=false").await;
    let d = app.get(&original, &Creds::None).await;
    assert_eq!(d.status, StatusCode::OK);
    assert_eq!(d.body.as_ref(), source.as_slice());

    // Sealed at rest: no plaintext audio in the data directory.
    let row = app
        .state
        .meta
        .transcript(&a.sid, &gt)
        .await
        .unwrap()
        .unwrap();
    let key = row.redacted_media_key.clone().expect("redacted media");
    assert_eq!(key, format!("{}/{gt}-media-redacted", a.sid));
    assert!(app.state.reader.unlock(&key).await.is_ok());
    let hits = plaintext_at_rest(&app);
    assert!(hits.is_empty(), "{hits:?}");

    // Another account sees nothing.
    let b = app.account().await;
    let r = app
        .get(&format!("/v2/Transcripts/{gt}/Media"), &Creds::of(&b))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Deleting the transcript destroys the copy, and its URL stops working; the recording stays.
    let r = app
        .delete(&format!("/v2/Transcripts/{gt}"), &Creds::of(&a))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(app.state.objects.head(&key).await.is_err());
    assert_eq!(
        app.get(&path, &Creds::None).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(
        app.state
            .meta
            .recording(&a.sid, &re, false)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn without_media_redaction_there_is_only_the_recording() {
    let app = TestApp::with_scripted_speech(&LINES).await;
    let a = app.account().await;
    let ga = app
        .create_intelligence_service(&a, &[("AutoRedaction", "true")])
        .await;
    let source = wav_with_marker(10, MARKER);
    let (gt, _) = app.transcribe_recording(&a, &ga, source.clone()).await;
    let r = app
        .get(&format!("/v2/Transcripts/{gt}/Media"), &Creds::of(&a))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    let message = r.json()["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("MediaRedaction") && message.contains("Redacted=false"),
        "{message}"
    );
    let path = media_path(&app, &a, &gt, "?Redacted=false").await;
    assert_eq!(
        app.get(&path, &Creds::None).await.body.as_ref(),
        source.as_slice()
    );
    let row = app
        .state
        .meta
        .transcript(&a.sid, &gt)
        .await
        .unwrap()
        .unwrap();
    assert!(row.redacted_media_key.is_none());
}

/// The seed's own decryption of a sealed download; the plaintext goes to a test directory.
fn seed_decrypt(wrapped: &str, iv: &str, ciphertext: &[u8]) -> Vec<u8> {
    let dir = mediaseal_test_support::scan::media_dir();
    let cipher_file = dir.path().join("media.enc");
    let key_file = dir.path().join("private_key.pem");
    let out_file = dir.path().join("media.wav");
    std::fs::write(&cipher_file, ciphertext).unwrap();
    std::fs::write(&key_file, test_key(0).to_pkcs8_pem().unwrap().as_bytes()).unwrap();
    let script = mediaseal_test_support::workspace_root().join("interop/crypto/seed002_decrypt.py");
    let out = Command::new(mediaseal_test_support::python(&["cryptography"]))
        .arg(script)
        .args([wrapped, iv])
        .args([&cipher_file, &key_file, &out_file])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(&out_file).unwrap()
}

#[tokio::test]
async fn with_a_key_the_redacted_media_is_sealed_for_the_customer() {
    let app = TestApp::with_scripted_speech(&LINES).await;
    let a = app.account().await;
    let key = app.add_public_key(&a, test_key(0)).await;
    let ga = app
        .create_intelligence_service(
            &a,
            &[
                ("EncryptionCredentialSid", &key),
                ("AutoRedaction", "true"),
                ("MediaRedaction", "true"),
            ],
        )
        .await;
    let source = wav_with_marker(10, MARKER);
    let (gt, _) = app.transcribe_recording(&a, &ga, source.clone()).await;
    let row = app
        .state
        .meta
        .transcript(&a.sid, &gt)
        .await
        .unwrap()
        .unwrap();
    let object = row.redacted_media_key.clone().expect("redacted media");
    // The server cannot open it.
    assert!(app.state.reader.unlock(&object).await.is_err());

    let path = media_path(&app, &a, &gt, "").await;
    let d = app.get(&path, &Creds::None).await;
    assert_eq!(d.status, StatusCode::OK);
    assert!(!mediaseal_test_support::contains(&d.body, MARKER));
    let header = |name: &str| d.headers[name].to_str().unwrap().to_owned();
    let plain = seed_decrypt(
        &header("x-amz-meta-x-amz-key"),
        &header("x-amz-meta-x-amz-iv"),
        &d.body,
    );
    assert_redacted(&source, &plain);
    let hits = plaintext_at_rest(&app);
    assert!(hits.is_empty(), "{hits:?}");

    let r = app
        .delete(&format!("/v2/Transcripts/{gt}"), &Creds::of(&a))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(app.state.objects.head(&object).await.is_err());
}

/// Serves `wav` at `/call.wav` on loopback (allowed by the tests' webhook policy), and 404
/// elsewhere; returns the base URL.
async fn origin(wav: Vec<u8>) -> String {
    let app = axum::Router::new().route(
        "/call.wav",
        axum::routing::get(move || {
            let wav = wav.clone();
            async move { wav }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

async fn wait_done(app: &TestApp, a: &Account, gt: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let t = app
            .get(&format!("/v2/Transcripts/{gt}"), &Creds::of(a))
            .await
            .json();
        if matches!(t["status"].as_str(), Some("completed" | "failed")) {
            return t;
        }
        assert!(Instant::now() < deadline, "transcript stuck: {t}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn create_from_url(app: &TestApp, a: &Account, ga: &str, url: &str) -> (StatusCode, String) {
    let channel = format!(r#"{{"media_properties":{{"media_url":"{url}"}}}}"#);
    let r = app
        .post_form(
            "/v2/Transcripts",
            &Creds::of(a),
            &[("ServiceSid", ga), ("Channel", &channel)],
        )
        .await;
    let body = r.json();
    let out = if r.status == StatusCode::CREATED {
        body["sid"].as_str().unwrap().to_owned()
    } else {
        body["message"].as_str().unwrap_or_default().to_owned()
    };
    (r.status, out)
}

/// `media_properties.media_url`: the WAV is fetched into memory, transcribed and redacted like
/// a recording; a URL that fails fails the transcript with the reason.
#[tokio::test]
async fn a_media_url_is_fetched_into_memory_and_transcribed() {
    let app = TestApp::with_scripted_speech(&LINES).await;
    let a = app.account().await;
    let ga = app
        .create_intelligence_service(
            &a,
            &[
                ("AutoRedaction", "true"),
                ("MediaRedaction", "true"),
                ("WebhookUrl", "http://127.0.0.1:9/hook"),
            ],
        )
        .await;
    let source = wav_with_marker(10, MARKER);
    let base = origin(source.clone()).await;
    let url = format!("{base}/call.wav");
    let (status, gt) = create_from_url(&app, &a, &ga, &url).await;
    assert_eq!(status, StatusCode::CREATED, "{gt}");
    let t = wait_done(&app, &a, &gt).await;
    assert_eq!(t["status"], "completed", "{t}");
    assert_eq!(t["channel"]["media_properties"]["media_url"], url.as_str());
    assert_eq!(t["duration"], 10);
    let r = app
        .get(&format!("/v2/Transcripts/{gt}/Sentences"), &Creds::of(&a))
        .await;
    assert_eq!(r.json()["sentences"].as_array().unwrap().len(), 3);
    let path = media_path(&app, &a, &gt, "").await;
    assert_redacted(&source, &app.get(&path, &Creds::None).await.body);
    // The original is the customer's own URL.
    let r = app
        .get(
            &format!("/v2/Transcripts/{gt}/Media?Redacted=false"),
            &Creds::of(&a),
        )
        .await;
    assert_eq!(r.json()["media_url"], url.as_str());
    let hits = plaintext_at_rest(&app);
    assert!(hits.is_empty(), "{hits:?}");

    // A URL that answers 404: failed, with the reason and the webhook.
    let (status, gt) = create_from_url(&app, &a, &ga, &format!("{base}/missing.wav")).await;
    assert_eq!(status, StatusCode::CREATED, "{gt}");
    let t = wait_done(&app, &a, &gt).await;
    assert_eq!(t["status"], "failed", "{t}");
    assert!(
        t["error_message"]
            .as_str()
            .unwrap()
            .contains("the media URL answered HTTP 404"),
        "{t}"
    );
    let callbacks = app.state.meta.callbacks_for(&gt).await.unwrap();
    assert!(
        callbacks[0]
            .params
            .contains("voice_intelligence_transcript_failed")
    );
}

/// Without an allow-list, a media URL on a private address is refused when asked for.
#[tokio::test]
async fn a_media_url_on_a_private_address_is_refused() {
    let mut app = TestApp::with_config(|c| {
        c.service.webhook_policy = mediaseal_service::egress::WebhookPolicy::strict();
    })
    .await;
    app.state = app
        .state
        .clone()
        .with_speech(Speech::given(Arc::new(ScriptedSpeech::new(&LINES))));
    app.router = mediaseal_server::app(app.state.clone());
    let a = app.account().await;
    let ga = app.create_intelligence_service(&a, &[]).await;
    for url in [
        "http://127.0.0.1:9/call.wav",
        "http://10.1.2.3/call.wav",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost/call.wav",
    ] {
        let (status, message) = create_from_url(&app, &a, &ga, url).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {message}");
        assert!(message.contains("media_url cannot be fetched"), "{message}");
    }
    let (status, message) = create_from_url(&app, &a, &ga, "ftp://example.com/a.wav").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("http:// or https://"), "{message}");
    let list = app.get("/v2/Transcripts", &Creds::of(&a)).await.json();
    assert!(list["transcripts"].as_array().unwrap().is_empty(), "{list}");
}
