//! Language operators of Conversational Intelligence (issue 13, seed 002) through the HTTP
//! surface: operator types, the built-in PII operator and custom phrase-matching operators,
//! attaching them to services, and their results, each sealed as its own object, served plain
//! without a key and as signed downloads (opened by the seed's script) with one.
//!
//! A scripted engine stands in for the recogniser, so what the operators must find is known.

mod support;

use std::process::Command;

use axum::http::StatusCode;
use mediaseal_store::model::Account;
use serde_json::Value;
use support::{Creds, TestApp, test_key, wav_with_marker};

const PII: &str = "LY00000000000000000000000000000001";
const CARD: &str = "4539148803436467";
const PHRASES: &str = r#"{"configuration":{"phrases":["lost my card","refund"]}}"#;

/// What the scripted engine "hears": a card number, a phone number and a phrase.
const LINES: [(f32, &str); 3] = [
    (0.0, "hello I lost my card yesterday"),
    (2.5, "my card number is 4539 1488 0343 6467 thanks"),
    (6.5, "please call me back on 415 555 0132"),
];

/// What must never be readable at rest: the recognised text and the values found in it (the
/// phrases themselves are the customer's configuration, stored as such).
const SPOKEN: [&str; 5] = [
    CARD,
    "4539 1488",
    "4155550132",
    "415 555 0132",
    "hello I lost",
];

async fn create_phrase_operator(app: &TestApp, a: &Account) -> String {
    let r = app
        .post_form(
            "/v2/Operators/Custom",
            &Creds::of(a),
            &[
                ("FriendlyName", "Lost cards"),
                ("OperatorType", "phrase-matching"),
                ("Config", PHRASES),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    r.json()["sid"].as_str().unwrap().to_owned()
}

async fn attach(app: &TestApp, a: &Account, ga: &str, ly: &str) {
    let r = app
        .post_form(
            &format!("/v2/Services/{ga}/Operators/{ly}"),
            &Creds::of(a),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
}

/// `POST uri` with an `If-Match` header; the status and the JSON answer.
async fn post_if_match(
    app: &TestApp,
    uri: &str,
    a: &Account,
    etag: &str,
    pairs: &[(&str, &str)],
) -> (StatusCode, Value) {
    use base64::Engine as _;
    use http_body_util::BodyExt as _;
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", a.sid, a.auth_token));
    let request = axum::http::Request::builder()
        .method("POST")
        .uri(uri)
        .header("host", "mediaseal.test")
        .header("if-match", etag)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", format!("Basic {basic}"))
        .body(axum::body::Body::from(body))
        .unwrap();
    let resp = tower::ServiceExt::oneshot(app.router.clone(), request)
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// Files under the app's data directory holding any of `needles`.
fn at_rest(app: &TestApp, needles: &[&str]) -> Vec<std::path::PathBuf> {
    let needles: Vec<Vec<u8>> = needles.iter().map(|n| n.as_bytes().to_vec()).collect();
    mediaseal_test_support::scan::Scan::default().files_containing(app.dir.path(), &needles)
}

#[tokio::test]
async fn operator_types_and_custom_operators_with_validation_and_isolation() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let other = app.account().await;
    let creds = Creds::of(&a);

    // The built-in types, in Twilio's shape, with paging.
    let types = app.get("/v2/OperatorTypes", &creds).await.json();
    assert_eq!(types["meta"]["key"], "operator_types");
    let list = types["operator_types"].as_array().unwrap();
    let names: Vec<&str> = list.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["pii-extraction", "phrase-matching"]);
    assert!(
        list.iter()
            .all(|t| t["sid"].as_str().unwrap().starts_with("EY"))
    );
    assert_eq!(list[1]["configurable"], true);
    assert_eq!(list[1]["config_schema"]["required"][0], "configuration");
    let first = app.get("/v2/OperatorTypes?PageSize=1", &creds).await.json();
    assert_eq!(first["operator_types"].as_array().unwrap().len(), 1);
    let next = first["meta"]["next_page_url"].as_str().unwrap();
    let second = app
        .get(next.strip_prefix("http://mediaseal.test").unwrap(), &creds)
        .await
        .json();
    assert_eq!(second["operator_types"][0]["name"], "phrase-matching");
    assert!(second["meta"]["next_page_url"].is_null());
    let ey = list[0]["sid"].as_str().unwrap();
    let t = app.get(&format!("/v2/OperatorTypes/{ey}"), &creds).await;
    assert_eq!(t.status, StatusCode::OK);
    assert_eq!(t.json()["output_type"], "text-extraction");
    assert_eq!(
        app.get(
            "/v2/OperatorTypes/EY0123456789abcdef0123456789abcdef",
            &creds
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );

    // Bad input names what is wrong.
    let bad = |form: Vec<(&'static str, &'static str)>| {
        let app = &app;
        let creds = creds.clone();
        async move {
            let r = app.post_form("/v2/Operators/Custom", &creds, &form).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
            r.json()["message"].as_str().unwrap().to_owned()
        }
    };
    let m = bad(vec![
        ("FriendlyName", "x"),
        ("OperatorType", "phrase-matching"),
        ("Config", r#"{"configuration":{"phrase":["x"]}}"#),
    ])
    .await;
    assert!(
        m.contains("Config") && m.contains("configuration.phrase"),
        "{m}"
    );
    let m = bad(vec![
        ("FriendlyName", "x"),
        ("OperatorType", "phrase-matching"),
        ("Config", r#"{"configuration":{"phrases":["ok", 7]}}"#),
    ])
    .await;
    assert!(m.contains("configuration.phrases[1]"), "{m}");
    let m = bad(vec![
        ("FriendlyName", "x"),
        ("OperatorType", "phrase-matching"),
        ("Config", "not json"),
    ])
    .await;
    assert!(m.contains("Config is not JSON"), "{m}");
    let m = bad(vec![
        ("FriendlyName", "x"),
        ("OperatorType", "phrase-matching"),
    ])
    .await;
    assert!(m.contains("Config"), "{m}");
    let m = bad(vec![
        ("FriendlyName", "x"),
        ("OperatorType", "pii-extraction"),
        ("Config", "{}"),
    ])
    .await;
    assert!(m.contains("OperatorType") && m.contains(PII), "{m}");
    let m = bad(vec![
        ("FriendlyName", "x"),
        ("OperatorType", "sentiment"),
        ("Config", PHRASES),
    ])
    .await;
    assert!(
        m.contains("OperatorType") && m.contains("/v2/OperatorTypes"),
        "{m}"
    );

    // Create, fetch with ETag, list, update with If-Match.
    let r = app
        .post_form(
            "/v2/Operators/Custom",
            &creds,
            &[
                ("FriendlyName", "Lost cards"),
                ("OperatorType", "phrase-matching"),
                (
                    "Config",
                    r#"{"configuration":{"phrases":[" lost my card ","refund","refund"]}}"#,
                ),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.headers["etag"], "\"1\"");
    let op = r.json();
    let ly = op["sid"].as_str().unwrap().to_owned();
    assert!(ly.starts_with("LY"));
    assert_eq!(op["account_sid"], a.sid.as_str());
    assert_eq!(op["author"], a.sid.as_str());
    assert_eq!(op["operator_type"], "phrase-matching");
    assert_eq!(op["version"], 1);
    assert_eq!(
        op["config"]["configuration"]["phrases"],
        serde_json::json!(["lost my card", "refund"])
    );
    assert_eq!(
        op["url"],
        format!("http://mediaseal.test/v2/Operators/Custom/{ly}")
    );
    let fetched = app.get(&format!("/v2/Operators/Custom/{ly}"), &creds).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.headers["etag"], "\"1\"");
    let custom = app.get("/v2/Operators/Custom", &creds).await.json();
    assert_eq!(custom["meta"]["key"], "operators");
    assert_eq!(custom["operators"].as_array().unwrap().len(), 1);
    let all = app.get("/v2/Operators", &creds).await.json();
    let sids: Vec<&str> = all["operators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["sid"].as_str().unwrap())
        .collect();
    assert_eq!(sids, [PII, ly.as_str()]);
    assert_eq!(all["operators"][0]["author"], "twilio");
    assert!(all["operators"][0]["account_sid"].is_null());
    let pii = app.get(&format!("/v2/Operators/{PII}"), &creds).await;
    assert_eq!(pii.status, StatusCode::OK);
    assert_eq!(pii.json()["operator_type"], "pii-extraction");
    assert_eq!(
        app.get(&format!("/v2/Operators/{ly}"), &creds).await.json()["friendly_name"],
        "Lost cards"
    );
    let prebuilt = app.get("/v2/Operators/PreBuilt", &creds).await.json();
    assert_eq!(prebuilt["operators"][0]["sid"], PII);

    let (status, _) = post_if_match(
        &app,
        &format!("/v2/Operators/Custom/{ly}"),
        &a,
        "\"7\"",
        &[("FriendlyName", "stale")],
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    let (status, u) = post_if_match(
        &app,
        &format!("/v2/Operators/Custom/{ly}"),
        &a,
        "\"1\"",
        &[
            ("FriendlyName", "Refunds"),
            ("Config", r#"{"configuration":{"phrases":["refund"]}}"#),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{u}");
    assert_eq!(
        (u["version"].as_i64(), u["friendly_name"].as_str()),
        (Some(2), Some("Refunds"))
    );
    assert_eq!(
        u["config"]["configuration"]["phrases"],
        serde_json::json!(["refund"])
    );
    let r = app
        .post_form(
            &format!("/v2/Operators/Custom/{ly}"),
            &creds,
            &[("Config", r#"{"configuration":{"phrases":[]}}"#)],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("configuration.phrases")
    );

    // Another account sees none of it.
    let theirs = Creds::of(&other);
    for path in [
        format!("/v2/Operators/Custom/{ly}"),
        format!("/v2/Operators/{ly}"),
    ] {
        assert_eq!(
            app.get(&path, &theirs).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    assert!(
        app.get("/v2/Operators/Custom", &theirs).await.json()["operators"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        app.get("/v2/Operators", &theirs).await.json()["operators"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "only the built-in operator"
    );
    let r = app
        .post_form(
            &format!("/v2/Operators/Custom/{ly}"),
            &theirs,
            &[("FriendlyName", "mine now")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.delete(&format!("/v2/Operators/Custom/{ly}"), &theirs)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Delete.
    assert_eq!(
        app.delete(&format!("/v2/Operators/Custom/{ly}"), &creds)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&format!("/v2/Operators/Custom/{ly}"), &creds)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn operators_attach_to_services_of_the_account_only() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let other = app.account().await;
    let creds = Creds::of(&a);
    let ga = app.create_intelligence_service(&a, &[]).await;
    let ly = create_phrase_operator(&app, &a).await;
    let their_ly = create_phrase_operator(&app, &other).await;
    let their_ga = app.create_intelligence_service(&other, &[]).await;

    attach(&app, &a, &ga, PII).await;
    let r = app
        .post_form(&format!("/v2/Services/{ga}/Operators/{ly}"), &creds, &[])
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let j = r.json();
    assert_eq!(
        (j["service_sid"].as_str(), j["operator_sid"].as_str()),
        (Some(ga.as_str()), Some(ly.as_str()))
    );
    assert_eq!(
        j["url"],
        format!("http://mediaseal.test/v2/Services/{ga}/Operators/{ly}")
    );
    // Attaching twice is one attachment.
    attach(&app, &a, &ga, PII).await;
    let listed = app
        .get(&format!("/v2/Services/{ga}/Operators"), &creds)
        .await
        .json();
    assert_eq!(listed["operator_sids"], serde_json::json!([PII, ly]));
    assert_eq!(listed["service_sid"], ga.as_str());
    let service = app.get(&format!("/v2/Services/{ga}"), &creds).await.json();
    assert_eq!(
        service["read_only_attached_operator_sids"],
        serde_json::json!([PII, ly])
    );

    // Another account's operator or service is not found.
    for path in [
        format!("/v2/Services/{ga}/Operators/{their_ly}"),
        format!("/v2/Services/{their_ga}/Operators/{ly}"),
        format!("/v2/Services/{ga}/Operators/LY0123456789abcdef0123456789abcdef"),
    ] {
        let r = app.post_form(&path, &creds, &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {:?}", r.body);
    }
    let theirs = Creds::of(&other);
    assert_eq!(
        app.get(&format!("/v2/Services/{ga}/Operators"), &theirs)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&format!("/v2/Services/{ga}/Operators/{PII}"), &theirs)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Detach; a deleted operator is detached everywhere.
    assert_eq!(
        app.delete(&format!("/v2/Services/{ga}/Operators/{PII}"), &creds)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.delete(&format!("/v2/Services/{ga}/Operators/{PII}"), &creds)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&format!("/v2/Operators/Custom/{ly}"), &creds)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let service = app.get(&format!("/v2/Services/{ga}"), &creds).await.json();
    assert_eq!(
        service["read_only_attached_operator_sids"],
        serde_json::json!([])
    );
}

#[tokio::test]
async fn without_a_key_results_are_sealed_at_rest_and_served_plain() {
    let app = TestApp::with_scripted_speech(&LINES).await;
    let a = app.account().await;
    let other = app.account().await;
    let creds = Creds::of(&a);
    let ga = app.create_intelligence_service(&a, &[]).await;
    let ly = create_phrase_operator(&app, &a).await;
    attach(&app, &a, &ga, PII).await;
    attach(&app, &a, &ga, &ly).await;
    let gt = app
        .transcribe_recording(&a, &ga, wav_with_marker(2, b"operators"))
        .await
        .0;

    let r = app
        .get(&format!("/v2/Transcripts/{gt}/OperatorResults"), &creds)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let page = r.json();
    assert_eq!(page["meta"]["key"], "operator_results");
    let results = page["operator_results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{page}");
    let pii = results.iter().find(|r| r["operator_sid"] == PII).unwrap();
    assert_eq!(pii["operator_type"], "pii-extract");
    assert_eq!(pii["extract_match"], true);
    assert_eq!(
        pii["extract_results"]["CREDIT_CARD"],
        serde_json::json!([CARD])
    );
    assert_eq!(
        pii["extract_results"]["PHONE_NUMBER"],
        serde_json::json!(["4155550132"])
    );
    assert_eq!(pii["transcript_sid"], gt.as_str());
    assert_eq!(
        pii["url"],
        format!("http://mediaseal.test/v2/Transcripts/{gt}/OperatorResults/{PII}")
    );
    let card = &pii["utterance_results"][0];
    assert_eq!(card["utterance_index"], 1);
    assert_eq!(card["utterance_parts"][0]["text"], "4539 1488 0343 6467");
    assert_eq!(card["utterance_parts"][0]["start_word"], 4);
    let phrase = results
        .iter()
        .find(|r| r["operator_sid"] == ly.as_str())
        .unwrap();
    assert_eq!(phrase["operator_type"], "extract");
    assert_eq!(phrase["name"], "Lost cards");
    assert_eq!(phrase["utterance_match"], true);
    assert_eq!(
        phrase["extract_results"]["lost my card"],
        serde_json::json!(["lost my card"])
    );
    assert!(phrase["extract_results"].get("refund").is_none());

    // One result, and the redacted view.
    let one = app
        .get(
            &format!("/v2/Transcripts/{gt}/OperatorResults/{PII}"),
            &creds,
        )
        .await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.json()["extract_results"]["CREDIT_CARD"][0], CARD);
    let redacted = app
        .get(
            &format!("/v2/Transcripts/{gt}/OperatorResults/{PII}?Redacted=true"),
            &creds,
        )
        .await
        .json();
    assert_eq!(
        redacted["extract_results"]["CREDIT_CARD"][0],
        "[CREDIT_CARD]"
    );
    assert!(!redacted.to_string().contains("4539"), "{redacted}");

    // The encrypted resource is for transcripts sealed with the customer's key.
    let r = app
        .get(
            &format!("/v2/Transcripts/{gt}/OperatorResults/Encrypted"),
            &creds,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("OperatorResults")
    );

    // Another account gets 404 everywhere.
    let theirs = Creds::of(&other);
    for path in [
        format!("/v2/Transcripts/{gt}/OperatorResults"),
        format!("/v2/Transcripts/{gt}/OperatorResults/{PII}"),
        format!("/v2/Transcripts/{gt}/OperatorResults/Encrypted"),
    ] {
        assert_eq!(
            app.get(&path, &theirs).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }

    // Nothing readable at rest; each result is its own object, destroyed with the transcript.
    let hits = at_rest(&app, &SPOKEN);
    assert!(hits.is_empty(), "{hits:?}");
    let records = app.state.meta.operator_results(&a.sid, &gt).await.unwrap();
    assert_eq!(records.len(), 2);
    let keys: Vec<String> = records.iter().map(|r| r.object_key.clone()).collect();
    assert_ne!(keys[0], keys[1]);
    for k in &keys {
        assert!(app.state.objects.head(k).await.is_ok());
        assert!(records.iter().all(|r| r.log_object_key.is_none()));
    }
    assert_eq!(
        app.delete(&format!("/v2/Transcripts/{gt}"), &creds)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    for k in &keys {
        assert!(app.state.objects.head(k).await.is_err(), "{k} kept");
    }
    assert!(
        app.state
            .meta
            .operator_results(&a.sid, &gt)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Opens one download with seed 002's decryption script (interop/crypto/seed002_decrypt.py).
fn seed_decrypt(wrapped: &str, iv: &str, ciphertext: &[u8]) -> Value {
    let dir = mediaseal_test_support::scan::media_dir();
    let cipher_file = dir.path().join("result.enc");
    let key_file = dir.path().join("private_key.pem");
    let out_file = dir.path().join("result.json");
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
    let plain = std::fs::read(&out_file).unwrap();
    serde_json::from_slice(&plain).unwrap()
}

/// `GET /v2/Transcripts/{gt}/OperatorResults/Encrypted{query}`, then every location downloaded
/// without credentials (no card number in the sealed bytes) and opened by the seed's script.
async fn open_encrypted_results(app: &TestApp, creds: &Creds, gt: &str, query: &str) -> Vec<Value> {
    let r = app
        .get(
            &format!("/v2/Transcripts/{gt}/OperatorResults/Encrypted{query}"),
            creds,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let mut opened = Vec::new();
    for location in r.json()["locations"].as_array().unwrap() {
        let path = location
            .as_str()
            .unwrap()
            .strip_prefix("http://mediaseal.test")
            .unwrap()
            .to_owned();
        let d = app.get(&path, &Creds::None).await;
        assert_eq!(d.status, StatusCode::OK);
        let header = |name: &str| d.headers[name].to_str().unwrap().to_owned();
        assert!(!mediaseal_test_support::contains(&d.body, CARD.as_bytes()));
        opened.push(seed_decrypt(
            &header("x-amz-meta-x-amz-key"),
            &header("x-amz-meta-x-amz-iv"),
            &d.body,
        ));
    }
    opened
}

#[tokio::test]
async fn with_a_key_each_result_is_sealed_and_opens_with_the_seed_script() {
    let app = TestApp::with_scripted_speech(&LINES).await;
    let a = app.account().await;
    let creds = Creds::of(&a);
    let key = app.add_public_key(&a, test_key(0)).await;
    let ga = app
        .create_intelligence_service(&a, &[("EncryptionCredentialSid", &key)])
        .await;
    let ly = create_phrase_operator(&app, &a).await;
    attach(&app, &a, &ga, PII).await;
    attach(&app, &a, &ga, &ly).await;
    let gt = app
        .transcribe_recording(&a, &ga, wav_with_marker(2, b"operators"))
        .await
        .0;

    // The plain resources are refused and say where to go.
    for path in [
        format!("/v2/Transcripts/{gt}/OperatorResults"),
        format!("/v2/Transcripts/{gt}/OperatorResults/{PII}"),
    ] {
        let r = app.get(&path, &creds).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert!(
            r.json()["message"]
                .as_str()
                .unwrap()
                .contains("OperatorResults/Encrypted")
        );
    }
    let r = app
        .get(
            &format!("/v2/Transcripts/{gt}/OperatorResults/Encrypted"),
            &creds,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let enc = r.json();
    assert_eq!(enc["transcript_sid"], gt.as_str());
    assert_eq!(
        enc["url"],
        format!("http://mediaseal.test/v2/Transcripts/{gt}/OperatorResults/Encrypted")
    );
    assert_eq!(
        enc["locations"].as_array().unwrap().len(),
        2,
        "one object per result"
    );
    let opened = open_encrypted_results(&app, &creds, &gt, "").await;
    let pii = opened.iter().find(|r| r["operator_sid"] == PII).unwrap();
    assert_eq!(pii["extract_results"]["CREDIT_CARD"][0], CARD);
    assert_eq!(pii["transcript_sid"], gt.as_str());
    let phrase = opened
        .iter()
        .find(|r| r["operator_sid"] == ly.as_str())
        .unwrap();
    assert_eq!(phrase["extract_match"], true);
    let hits = at_rest(&app, &SPOKEN);
    assert!(hits.is_empty(), "{hits:?}");

    // Data logging off: no second copy. On (the operator's switch): an at-rest copy per result.
    let records = app.state.meta.operator_results(&a.sid, &gt).await.unwrap();
    assert!(records.iter().all(|r| r.log_object_key.is_none()));
    mediaseal_server::set_data_logging(app.state.meta.as_ref(), &ga, true)
        .await
        .unwrap()
        .unwrap();
    let logged = app
        .transcribe_recording(&a, &ga, wav_with_marker(2, b"operators"))
        .await
        .0;
    let records = app
        .state
        .meta
        .operator_results(&a.sid, &logged)
        .await
        .unwrap();
    assert_eq!(records.len(), 2);
    for r in &records {
        let log = r.log_object_key.as_deref().expect("a data logging copy");
        assert!(app.state.reader.unlock(&r.object_key).await.is_err());
        assert!(app.state.reader.unlock(log).await.is_ok());
    }
    let r = app
        .get(
            &format!("/v2/Transcripts/{logged}/OperatorResults/Encrypted"),
            &creds,
        )
        .await;
    assert_eq!(r.json()["locations"].as_array().unwrap().len(), 2);
    let hits = at_rest(&app, &SPOKEN);
    assert!(hits.is_empty(), "{hits:?}");
}

/// A redacting service (`AutoRedaction`) with a key: the PII result's redacted view is sealed
/// beside it as it is generated, `/OperatorResults/Encrypted` serves it by default (the seed's
/// script opens it: types, no digits) and the full one with `Redacted=false`; deleting the
/// transcript destroys both.
#[tokio::test]
async fn a_redacting_service_seals_a_redacted_view_of_encrypted_pii_results() {
    let app = TestApp::with_scripted_speech(&LINES).await;
    let a = app.account().await;
    let creds = Creds::of(&a);
    let key = app.add_public_key(&a, test_key(0)).await;
    let ga = app
        .create_intelligence_service(
            &a,
            &[("EncryptionCredentialSid", &key), ("AutoRedaction", "true")],
        )
        .await;
    let ly = create_phrase_operator(&app, &a).await;
    attach(&app, &a, &ga, PII).await;
    attach(&app, &a, &ga, &ly).await;
    let gt = app
        .transcribe_recording(&a, &ga, wav_with_marker(2, b"redacted-ops"))
        .await
        .0;

    // Default (the transcript's `redaction`): the PII result shows types only.
    let redacted = open_encrypted_results(&app, &creds, &gt, "").await;
    assert_eq!(redacted.len(), 2, "{redacted:?}");
    let pii = redacted.iter().find(|r| r["operator_sid"] == PII).unwrap();
    assert_eq!(pii["extract_results"]["CREDIT_CARD"][0], "[CREDIT_CARD]");
    let text = pii.to_string();
    assert!(!text.contains("4539"), "{text}");
    assert!(!text.contains("0132"), "{text}");
    // The phrase result has no redacted view: the same object either way.
    let phrase = redacted
        .iter()
        .find(|r| r["operator_sid"] == ly.as_str())
        .unwrap();
    assert_eq!(phrase["extract_match"], true);
    // `Redacted=false`: the full result.
    let full = open_encrypted_results(&app, &creds, &gt, "?Redacted=false").await;
    let pii = full.iter().find(|r| r["operator_sid"] == PII).unwrap();
    assert_eq!(pii["extract_results"]["CREDIT_CARD"][0], CARD);
    let hits = at_rest(&app, &SPOKEN);
    assert!(hits.is_empty(), "{hits:?}");

    // Both views belong to the result: deleting the transcript destroys them.
    let objects = app.state.services.objects();
    let records = app.state.meta.operator_results(&a.sid, &gt).await.unwrap();
    let pii_key = records
        .iter()
        .find(|r| r.operator_sid == PII)
        .unwrap()
        .object_key
        .clone();
    let view = mediaseal_intelligence::operators::redacted_key(&pii_key);
    assert!(objects.head(&view).await.is_ok());
    assert!(app.state.meta.object_in_use(&view).await.unwrap());
    let r = app.delete(&format!("/v2/Transcripts/{gt}"), &creds).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert!(objects.head(&pii_key).await.is_err());
    assert!(objects.head(&view).await.is_err());
}
