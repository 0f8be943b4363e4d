//! Transcripts left `queued` or `in-progress` by a job that died with its node (issue 13): what
//! the server does at start and in every sweeper pass. Rows are written as a dead node leaves
//! them (its lease lapsed); a scripted engine stands in for the recogniser.

mod support;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use mediaseal_intelligence::recovery::Recovered;
use mediaseal_store::model::intelligence::Transcript;
use mediaseal_store::model::{Account, Sealing};
use serde_json::Value;
use support::{Creds, TestApp, test_key, wav_with_marker};

async fn ingest(app: &TestApp, a: &Account, marker: &[u8]) -> String {
    let r = app.ingest(a, "", wav_with_marker(1, marker)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.json()["sid"].as_str().unwrap().to_owned()
}

/// A transcript row as a job leaves it when its node dies: `status`, owned by `owner` until
/// `lease_until`. `re` is a recording SID, or an `http://` media URL.
async fn left_behind(
    app: &TestApp,
    a: &Account,
    ga: &str,
    re: &str,
    status: &str,
    owner: &str,
    lease_until: i64,
) -> String {
    let now = app.state.services.now_us();
    let (channel, source_sid) = if re.starts_with("http") {
        (
            format!(r#"{{"media_properties":{{"media_url":"{re}"}}}}"#),
            None,
        )
    } else {
        (
            format!(r#"{{"media_properties":{{"source_sid":"{re}"}}}}"#),
            Some(re.to_owned()),
        )
    };
    let t = Transcript {
        sid: mediaseal_server::sid::new_sid("GT"),
        account_sid: a.sid.clone(),
        service_sid: ga.to_owned(),
        status: status.to_owned(),
        channel,
        source_sid,
        language_code: "en-US".to_owned(),
        customer_key: None,
        media_start_time: None,
        duration: None,
        data_logging: false,
        redaction: false,
        encryption_credential_sid: None,
        sealing: Sealing::None,
        object_key: None,
        log_object_key: None,
        redacted_object_key: None,
        media_redaction: false,
        redacted_media_key: None,
        sentence_count: 0,
        error_message: None,
        deleted: false,
        date_created: now,
        date_updated: now,
        lease_owner: Some(owner.to_owned()),
        lease_until: Some(lease_until),
    };
    app.state.meta.insert_transcript(&t).await.unwrap();
    t.sid
}

async fn fetch(app: &TestApp, a: &Account, gt: &str) -> Value {
    let r = app
        .get(&format!("/v2/Transcripts/{gt}"), &Creds::of(a))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.json()
}

async fn wait_done(app: &TestApp, a: &Account, gt: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let t = fetch(app, a, gt).await;
        if matches!(t["status"].as_str(), Some("completed" | "failed")) {
            return t;
        }
        assert!(Instant::now() < deadline, "transcript stuck: {t}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A recording sealed at rest is transcribed again; one sealed with the customer's key, whose
/// tap died with the process, fails with the reason and the webhook; another node's live job
/// is left alone until its lease lapses (or, at the start of a node alone on its SQLite
/// database, at once).
#[tokio::test]
async fn abandoned_transcripts_run_again_or_fail_and_live_ones_are_left_alone() {
    let app = TestApp::with_scripted_speech(&[(0.0, "hello again")]).await;
    let a = app.account().await;
    let r = app
        .post_form(
            "/v2/Services",
            &Creds::of(&a),
            &[
                ("UniqueName", "recovery"),
                ("WebhookUrl", "http://127.0.0.1:9/hook"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let ga = r.json()["sid"].as_str().unwrap().to_owned();
    let at_rest = ingest(&app, &a, b"at rest").await;
    let key = app.add_public_key(&a, test_key(0)).await;
    app.enable_encryption(&a, Some(&key)).await;
    let sealed = ingest(&app, &a, b"sealed").await;

    let now = app.state.services.now_us();
    let lapsed = now - 1;
    let rerun = left_behind(&app, &a, &ga, &at_rest, "in-progress", "NDdead", lapsed).await;
    let lost = left_behind(&app, &a, &ga, &sealed, "queued", "NDdead", lapsed).await;
    // A media URL is fetched again.
    let wav = wav_with_marker(1, b"from a url");
    let origin = axum::Router::new().route(
        "/call.wav",
        axum::routing::get(move || {
            let wav = wav.clone();
            async move { wav }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/call.wav", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, origin).await });
    let from_url = left_behind(&app, &a, &ga, &url, "in-progress", "NDdead", lapsed).await;
    let live_until = now + 3_600_000_000;
    let live = left_behind(&app, &a, &ga, &at_rest, "queued", "NDalive", live_until).await;

    let done = mediaseal_server::recover_transcripts(&app.state, false).await;
    assert_eq!(
        done,
        Recovered {
            rerun: 2,
            failed: 1
        }
    );
    assert_eq!(wait_done(&app, &a, &from_url).await["status"], "completed");

    let t = wait_done(&app, &a, &rerun).await;
    assert_eq!(t["status"], "completed", "{t}");
    assert!(t["error_message"].is_null(), "{t}");
    let r = app
        .get(
            &format!("/v2/Transcripts/{rerun}/Sentences"),
            &Creds::of(&a),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let sentences = r.json();
    assert_eq!(
        sentences["sentences"][0]["transcript"], "hello again",
        "{sentences}"
    );
    let callbacks = app.state.meta.callbacks_for(&rerun).await.unwrap();
    assert_eq!(callbacks.len(), 1);
    assert!(
        callbacks[0]
            .params
            .contains("voice_intelligence_transcript_available"),
        "{:?}",
        callbacks[0].params
    );

    let t = fetch(&app, &a, &lost).await;
    assert_eq!(t["status"], "failed", "{t}");
    let message = t["error_message"].as_str().unwrap();
    assert!(
        message.contains(&sealed) && message.contains("encrypted with your public key"),
        "{message}"
    );
    let callbacks = app.state.meta.callbacks_for(&lost).await.unwrap();
    assert_eq!(callbacks.len(), 1);
    assert!(
        callbacks[0]
            .params
            .contains("voice_intelligence_transcript_failed"),
        "{:?}",
        callbacks[0].params
    );

    // Another node's job holds its lease: nothing happens to it, pass after pass.
    let done = mediaseal_server::recover_transcripts(&app.state, false).await;
    assert_eq!(done, Recovered::default());
    assert_eq!(fetch(&app, &a, &live).await["status"], "queued");
    assert!(
        app.state
            .meta
            .callbacks_for(&live)
            .await
            .unwrap()
            .is_empty()
    );

    // A node that starts alone on its SQLite database knows every unfinished job died with
    // the process before it; on a shared database it waits for the lease to lapse.
    let done = mediaseal_server::recover_transcripts(&app.state, true).await;
    if app.state.meta.backend() == "sqlite" {
        assert_eq!(done.rerun, 1);
        assert_eq!(wait_done(&app, &a, &live).await["status"], "completed");
    } else {
        assert_eq!(done, Recovered::default());
        assert_eq!(fetch(&app, &a, &live).await["status"], "queued");
    }
}

/// A transcript made through the API is owned by this node's job from creation; a recovery
/// pass while it runs (or waits) leaves it alone, and it ends with no lease.
#[tokio::test]
async fn a_live_job_holds_its_lease_and_ends_without_one() {
    let app = TestApp::with_scripted_speech(&[(0.0, "hello again")]).await;
    let a = app.account().await;
    let r = app
        .post_form("/v2/Services", &Creds::of(&a), &[("UniqueName", "live")])
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let ga = r.json()["sid"].as_str().unwrap().to_owned();
    let re = ingest(&app, &a, b"live").await;
    let channel = format!(r#"{{"media_properties":{{"source_sid":"{re}"}}}}"#);
    let r = app
        .post_form(
            "/v2/Transcripts",
            &Creds::of(&a),
            &[("ServiceSid", &ga), ("Channel", &channel)],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let gt = r.json()["sid"].as_str().unwrap().to_owned();
    let row = app
        .state
        .meta
        .transcript(&a.sid, &gt)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.lease_owner.as_deref(),
        Some(app.state.services.config.node_id.as_str())
    );
    assert!(row.lease_until.unwrap() > app.state.services.now_us());
    let done = mediaseal_server::recover_transcripts(&app.state, false).await;
    assert_eq!(done, Recovered::default());
    assert_eq!(wait_done(&app, &a, &gt).await["status"], "completed");
    let row = app
        .state
        .meta
        .transcript(&a.sid, &gt)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.lease_owner, row.lease_until), (None, None));
}

/// A transcript whose job dies every time it runs is not claimed forever: after
/// `MAX_RECOVERIES` runs it fails with the reason and the webhook. Each start of a node alone on
/// its SQLite database claims every unfinished transcript, so the passes below stand for that
/// many crashed starts; the audio URL never answers, so every run is still going when the next
/// "start" claims it.
#[tokio::test]
async fn a_transcript_that_keeps_dying_fails_after_the_recovery_cap() {
    let app = TestApp::with_scripted_speech(&[(0.0, "hello again")]).await;
    if app.state.meta.backend() != "sqlite" {
        // On a shared database a claim waits for the live job's lease to lapse; the cap is the
        // same code path, exercised here on SQLite.
        return;
    }
    let a = app.account().await;
    let r = app
        .post_form(
            "/v2/Services",
            &Creds::of(&a),
            &[
                ("UniqueName", "keeps-dying"),
                ("WebhookUrl", "http://127.0.0.1:9/hook"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let ga = r.json()["sid"].as_str().unwrap().to_owned();
    // Accepts connections and never answers them.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/call.wav", silent.local_addr().unwrap());
    let _silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let now = app.state.services.now_us();
    let gt = left_behind(&app, &a, &ga, &url, "in-progress", "NDdead", now - 1).await;

    let cap = usize::try_from(mediaseal_intelligence::recovery::MAX_RECOVERIES).unwrap();
    for pass in 1..=cap {
        let done = mediaseal_server::recover_transcripts(&app.state, true).await;
        assert_eq!(done.rerun, 1, "pass {pass}");
        let status = fetch(&app, &a, &gt).await["status"].clone();
        assert!(
            status == "queued" || status == "in-progress",
            "pass {pass}: {status}"
        );
    }
    let done = mediaseal_server::recover_transcripts(&app.state, true).await;
    assert_eq!(
        done,
        Recovered {
            rerun: 0,
            failed: 1
        }
    );
    let t = fetch(&app, &a, &gt).await;
    assert_eq!(t["status"], "failed", "{t}");
    let row = app
        .state
        .meta
        .transcript(&a.sid, &gt)
        .await
        .unwrap()
        .unwrap();
    let message = row.error_message.unwrap_or_default();
    assert!(
        message.contains(&format!("stopped {} times", cap + 1)),
        "{message}"
    );
    let callbacks = app.state.meta.callbacks_for(&gt).await.unwrap();
    assert!(
        callbacks
            .iter()
            .any(|c| c.params.contains("voice_intelligence_transcript_failed")),
        "{callbacks:?}"
    );
}
