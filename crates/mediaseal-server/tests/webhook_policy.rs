//! Callback URLs at submission (issue 10, item 5 and the "also fix"): parsed whole, internal
//! literal hosts refused with a 400 unless an operator allow-listed them, and error messages
//! that do not echo megabytes of input.

mod support;

use axum::http::StatusCode;
use mediaseal_service::egress::{WebhookPolicy, parse_network};
use support::{Creds, TestApp, wav_with_marker};

fn encoded(v: &str) -> String {
    form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

const INTERNAL: [&str; 12] = [
    "http://127.0.0.1/cb",
    "http://127.1/cb",
    "http://2130706433/cb",
    "http://0x7f000001/cb",
    "http://0.0.0.0/cb",
    "http://localhost:8080/cb",
    "http://[::1]/cb",
    "http://[::ffff:127.0.0.1]/cb",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.1.2.3/cb",
    "https://user:pw@192.168.0.10/cb",
    "http://[fd00::1]/cb",
];

#[tokio::test]
async fn internal_literal_hosts_are_refused_at_submission() {
    let app = TestApp::with_config(|c| c.service.webhook_policy = WebhookPolicy::strict()).await;
    let a = app.account().await;
    let ca = Creds::of(&a);
    for url in INTERNAL {
        let r = app
            .post_form("/v1/Rooms", &ca, &[("StatusCallback", url)])
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "room, {url}");
        let message = r.json()["message"].as_str().unwrap_or_default().to_owned();
        assert!(
            message.contains("StatusCallback") && message.contains("refused"),
            "{url}: {message}"
        );
        assert!(!message.contains("pw@"), "{message}");
        let r = app
            .post_form(
                "/v1/CompositionHooks",
                &ca,
                &[
                    ("FriendlyName", "hook"),
                    ("AudioSources", "*"),
                    ("StatusCallback", url),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "hook, {url}");
        let r = app
            .ingest(
                &a,
                &format!("?RecordingStatusCallback={}", encoded(url)),
                wav_with_marker(1, b"refused"),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "recording, {url}");
        assert!(
            r.json()["message"]
                .as_str()
                .unwrap_or_default()
                .contains("RecordingStatusCallback"),
            "{url}"
        );
    }
    // A name is checked when it is resolved, at delivery; a public literal is fine.
    for url in ["https://example.com/cb", "https://8.8.8.8/cb"] {
        let r = app
            .post_form("/v1/Rooms", &ca, &[("StatusCallback", url)])
            .await;
        assert!(r.status.is_success(), "{url}: {:?}", r.body);
    }
}

#[tokio::test]
async fn the_allow_list_admits_on_premises_receivers() {
    let app = TestApp::with_config(|c| {
        c.service.webhook_policy =
            WebhookPolicy::allowing([parse_network("10.20.0.0/16").unwrap()]);
    })
    .await;
    let a = app.account().await;
    let ca = Creds::of(&a);
    let r = app
        .post_form(
            "/v1/Rooms",
            &ca,
            &[("StatusCallback", "http://10.20.1.2:8080/cb")],
        )
        .await;
    assert!(r.status.is_success(), "{:?}", r.body);
    for url in ["http://10.21.0.1/cb", "http://127.0.0.1/cb"] {
        let r = app
            .post_form("/v1/Rooms", &ca, &[("StatusCallback", url)])
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{url}");
    }
}

#[tokio::test]
async fn callback_urls_are_parsed_whole_and_errors_are_short() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let ca = Creds::of(&a);
    let huge = format!("https://example.com/{}", "a".repeat(1 << 20));
    let no_host = format!("https:///{}", "b".repeat(1000));
    for url in [
        "https://",
        "http://",
        "https:///cb",
        "https:example.com/cb",
        "ftp://example.com/cb",
        "https://exa mple.com/",
        huge.as_str(),
        no_host.as_str(),
    ] {
        let r = app
            .post_form("/v1/Rooms", &ca, &[("StatusCallback", url)])
            .await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{}",
            &url[..url.len().min(40)]
        );
        assert!(
            r.body.len() < 1000,
            "a {}-byte error for a {}-byte URL",
            r.body.len(),
            url.len()
        );
    }
}
