//! Calls the API places and redirects, through the edge's live-call seam (what
//! `POST …/Calls.json` and `POST …/Calls/{CA}.json` call), with a real TLS callee
//! (`interop/voice/tls_uas.py` on 127.0.0.4:5061, SRTP): `Record=true` records the call from
//! the answer, sealed with the customer's key, with the callee's tone in it; `SendDigits`
//! reaches the callee as RFC 4733 events inside SRTP; and a redirect replaces the TwiML of a
//! live call. A hang-up during a recording is answered (or sent) before the recording is
//! stored.

mod support;

use std::sync::Arc;
use std::time::Duration;

use mediaseal_call::RecordingSource;
use mediaseal_service::calls::{
    CallRedirect, LiveCallError, LiveCalls, LiveRecordingOptions, OutboundCall,
};
use mediaseal_store::model::Sealing;
use mediaseal_voice::{
    CallRecorder, MemoryRecorder, RecorderError, RecordingInfo, RecordingRequest, RecordingSink,
};
use support::*;

const CALLEE: &str = "127.0.0.4";

fn outbound(twiml: &str) -> OutboundCall {
    OutboundCall {
        to: format!("sip:jack@{CALLEE};secure=true"),
        from: "+15550001111".into(),
        caller_id: None,
        url: None,
        method: "POST".into(),
        twiml: Some(twiml.into()),
        fallback_url: None,
        fallback_method: "POST".into(),
        status_callback: None,
        status_callback_method: "POST".into(),
        status_callback_events: Vec::new(),
        timeout_secs: 30,
        time_limit_secs: 14_400,
        record: None,
        send_digits: None,
        sip_auth: None,
    }
}

/// Waits until the ledger has `status` for `sid`.
async fn wait_status(edge: &Edge, sid: &str, status: &str) {
    let end = std::time::Instant::now() + Duration::from_secs(15);
    while !edge
        .ledger
        .updates()
        .iter()
        .any(|u| u.call_sid == sid && u.status == status)
    {
        assert!(
            std::time::Instant::now() < end,
            "call {sid} never reached {status}: {:?}",
            edge.ledger.updates()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_true_records_the_callee_from_the_answer_and_send_digits_reach_it() {
    let _serial = serial().await;
    let certs = certs();
    // The account seals voice recordings with the customer's key (seed 000's rsa-aes).
    let svc = sealed_service().await;
    let edge = svc.edge(&certs, 33000).await;
    let uas = TlsUas::start(
        CALLEE,
        &certs.cert,
        &certs.key,
        &["--hold", "6", "--tone", "700"],
    )
    .await;
    let mut call = outbound("<Response><Pause length=\"3\"/><Hangup/></Response>");
    call.record = Some(LiveRecordingOptions {
        dual: true,
        inbound_only: false,
        trim_silence: false,
        status_callback: None,
        status_callback_method: "POST".into(),
        status_callback_events: Vec::new(),
    });
    call.send_digits = Some("1w2#".into());
    let live = edge.handle.live_calls();
    let sid = live.originate(ACCOUNT, &call).await.expect("placed");
    let callee = uas.result().await;
    assert_eq!(callee["invite"], true, "{callee}");
    assert_eq!(callee["rx_auth_fail"], 0, "{callee}");
    assert_eq!(
        callee["rx_digits"], "12#",
        "SendDigits as RFC 4733 events: {callee}"
    );
    assert_eq!(callee["got_bye"], true, "<Hangup/> ends the call: {callee}");
    wait_status(&edge, &sid, "completed").await;

    let end = std::time::Instant::now() + Duration::from_secs(10);
    let rec = loop {
        let stored = svc.recordings().await;
        if let Some(r) = stored.into_iter().find(|r| r.status == "completed") {
            break r;
        }
        assert!(std::time::Instant::now() < end, "no recording was stored");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(rec.call_sid.as_deref(), Some(sid.as_str()));
    assert_eq!(rec.source, RecordingSource::OutboundApi.as_str());
    assert_eq!(rec.source, "OutboundAPI");
    assert_eq!(rec.channels, 2, "RecordingChannels=dual");
    assert_eq!(rec.sealing, Sealing::Customer);
    // The customer's private key opens it, in memory (the seed-000 recipe).
    let details = rec.encryption_details.clone().expect("encryption_details");
    let envelope = mediaseal_crypto::parse_details(&details).expect("details parse");
    let sealed = svc.object(&rec.object_key.clone().expect("object key"));
    let wav = mediaseal_crypto::open_seekable_to_writer(
        std::io::Cursor::new(&sealed),
        Vec::new(),
        &envelope,
        &svc.customer,
    )
    .expect("the customer's key opens the recording");
    let (samples, rate, channels) = wav_samples(&wav, 0);
    assert_eq!((rate, channels), (8000, 2));
    // From the answer to the hang-up: the digits (about a second) and the 3 s pause; the
    // duration is the audio's.
    let secs = samples.len() as f64 / 8000.0;
    let duration = rec.duration.expect("duration") as f64;
    assert!((3.0..8.0).contains(&secs), "{secs:.2} s recorded");
    assert!(
        (duration - secs).abs() <= 0.5,
        "duration {duration} s, audio {secs:.2} s"
    );
    // The answering party is the call's own leg: its tone is in the first channel throughout.
    let (min, mean, windows) = tone_windows(&samples, rate, 700.0, 0.5, 0.5);
    assert!(windows >= 4, "{windows} windows");
    assert!(
        min > 0.5 && mean > 0.7,
        "700 Hz min {min:.2} mean {mean:.2}"
    );
    edge.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_replaces_the_twiml_of_a_live_call() {
    let _serial = serial().await;
    let certs = certs();
    let edge = start_edge(EdgeOptions::new(&certs, 33200)).await;
    let live = edge.handle.live_calls();
    let redirect = CallRedirect {
        url: None,
        method: "POST".into(),
        twiml: Some("<Response><Say>Goodbye.</Say><Hangup/></Response>".into()),
        fallback_url: None,
        fallback_method: "POST".into(),
    };
    let unknown = "CA00000000000000000000000000000009";
    assert_eq!(
        live.redirect(ACCOUNT, unknown, &redirect).await,
        Err(LiveCallError::NotLive {
            call_sid: unknown.into()
        })
    );
    let uas = TlsUas::start(CALLEE, &certs.cert, &certs.key, &["--hold", "8"]).await;
    // Without the redirect the call would sit in its pause for a minute, silent.
    let sid = live
        .originate(
            ACCOUNT,
            &outbound("<Response><Pause length=\"60\"/></Response>"),
        )
        .await
        .expect("placed");
    wait_status(&edge, &sid, "in-progress").await;
    let bad = CallRedirect {
        twiml: Some("<Response><Nope/></Response>".into()),
        ..redirect.clone()
    };
    assert!(
        matches!(
            live.redirect(ACCOUNT, &sid, &bad).await,
            Err(LiveCallError::Invalid { ref param, .. }) if param == "Twiml"
        ),
        "TwiML that does not parse is refused and the call goes on"
    );
    live.redirect(ACCOUNT, &sid, &redirect)
        .await
        .expect("redirected");
    let callee = uas.result().await;
    // The new TwiML ran: its <Say> reached the callee and its <Hangup/> sent the BYE.
    assert!(callee["rx_packets"].as_u64().expect("n") > 25, "{callee}");
    assert_eq!(callee["rx_auth_fail"], 0, "{callee}");
    assert_eq!(callee["got_bye"], true, "{callee}");
    wait_status(&edge, &sid, "completed").await;
    assert_eq!(
        live.redirect(ACCOUNT, &sid, &redirect).await,
        Err(LiveCallError::NotLive {
            call_sid: sid.clone()
        }),
        "an ended call is not redirected"
    );
    edge.handle.shutdown().await;
}

/// A [`MemoryRecorder`] whose recordings are not finished (sealed and published) until the test
/// opens the gate: whatever the callee sees before that did not wait for the store.
#[derive(Clone)]
struct GatedRecorder {
    inner: MemoryRecorder,
    gate: Arc<tokio::sync::Semaphore>,
}

struct GatedSink {
    inner: Box<dyn RecordingSink>,
    gate: Arc<tokio::sync::Semaphore>,
}

#[async_trait::async_trait]
impl CallRecorder for GatedRecorder {
    async fn start(
        &self,
        request: &RecordingRequest,
    ) -> Result<Option<Box<dyn RecordingSink>>, RecorderError> {
        let sink = self.inner.start(request).await?;
        Ok(sink.map(|inner| {
            Box::new(GatedSink {
                inner,
                gate: self.gate.clone(),
            }) as Box<dyn RecordingSink>
        }))
    }
}

#[async_trait::async_trait]
impl RecordingSink for GatedSink {
    async fn write(&mut self, wav: &[u8]) -> Result<(), RecorderError> {
        self.inner.write(wav).await
    }

    async fn finish(
        self: Box<Self>,
        duration: Duration,
    ) -> Result<Option<RecordingInfo>, RecorderError> {
        // One permit per recording: taken for good.
        if let Ok(permit) = self.gate.acquire().await {
            permit.forget();
        }
        self.inner.finish(duration).await
    }

    async fn abort(self: Box<Self>) {
        self.inner.abort().await;
    }
}

fn recorded() -> LiveRecordingOptions {
    LiveRecordingOptions {
        dual: false,
        inbound_only: false,
        trim_silence: false,
        status_callback: None,
        status_callback_method: "POST".into(),
        status_callback_events: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hang_up_during_a_recording_does_not_wait_for_the_store() {
    let _serial = serial().await;
    let certs = certs();
    let recorder = GatedRecorder {
        inner: MemoryRecorder::new(),
        gate: Arc::new(tokio::sync::Semaphore::new(0)),
    };
    let mut opts = EdgeOptions::new(&certs, 33400);
    opts.call_recorder = Some(Arc::new(recorder.clone()));
    let edge = start_edge(opts).await;
    let live = edge.handle.live_calls();
    let finished = || {
        recorder
            .inner
            .recordings()
            .iter()
            .filter(|r| r.finished)
            .count()
    };

    // The script hangs up: the callee gets our BYE while the recording is still held open
    // (before the fix the BYE waited for the store, and the callee hung up itself).
    let uas = TlsUas::start(CALLEE, &certs.cert, &certs.key, &["--hold", "8"]).await;
    let mut call = outbound("<Response><Pause length=\"1\"/><Hangup/></Response>");
    call.record = Some(recorded());
    let sid = live.originate(ACCOUNT, &call).await.expect("placed");
    let callee = uas.result().await;
    assert_eq!(
        callee["got_bye"], true,
        "our BYE, not the callee's: {callee}"
    );
    assert_eq!(
        finished(),
        0,
        "the recording is still waiting for the store"
    );
    recorder.gate.add_permits(1);
    wait_status(&edge, &sid, "completed").await;
    assert_eq!(finished(), 1, "released once the recording is stored");

    // The callee hangs up: its BYE is answered at once while the recording is held open.
    let uas = TlsUas::start(CALLEE, &certs.cert, &certs.key, &["--hold", "2"]).await;
    let mut call = outbound("<Response><Pause length=\"60\"/></Response>");
    call.record = Some(recorded());
    let sid = live.originate(ACCOUNT, &call).await.expect("placed");
    let callee = uas.result().await;
    assert_eq!(callee["got_bye"], false, "{callee}");
    assert_eq!(callee["bye_response"], 200, "{callee}");
    assert_eq!(finished(), 1, "the second recording is still waiting");
    recorder.gate.add_permits(1);
    wait_status(&edge, &sid, "completed").await;
    assert_eq!(finished(), 2);
    edge.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_auth_answers_a_callee_that_challenges() {
    use mediaseal_service::calls::SipAuth;
    let _serial = serial().await;
    let certs = certs();
    let edge = start_edge(EdgeOptions::new(&certs, 33600)).await;
    let live = edge.handle.live_calls();
    let hang_up = "<Response><Pause length=\"1\"/><Hangup/></Response>";

    // The right credentials: the callee's 401 is answered and the call runs.
    let uas = TlsUas::start(
        CALLEE,
        &certs.cert,
        &certs.key,
        &["--hold", "4", "--digest", "jack:s3cret"],
    )
    .await;
    let mut call = outbound(hang_up);
    call.sip_auth = Some(SipAuth {
        username: "jack".into(),
        password: "s3cret".into(),
    });
    let sid = live.originate(ACCOUNT, &call).await.expect("placed");
    let callee = uas.result().await;
    assert_eq!(callee["auth"], "ok", "{callee} {:?}", edge.ledger.updates());
    assert_eq!(callee["got_bye"], true, "the call ran its TwiML: {callee}");
    wait_status(&edge, &sid, "completed").await;

    // A wrong password: the callee refuses the second INVITE and the call ends failed.
    let uas = TlsUas::start(
        CALLEE,
        &certs.cert,
        &certs.key,
        &["--digest", "jack:s3cret"],
    )
    .await;
    call.sip_auth = Some(SipAuth {
        username: "jack".into(),
        password: "wrong".into(),
    });
    let sid = live.originate(ACCOUNT, &call).await.expect("placed");
    let callee = uas.result().await;
    assert_eq!(callee["auth"], "failed", "{callee}");
    wait_status(&edge, &sid, "failed").await;
    edge.handle.shutdown().await;
}
