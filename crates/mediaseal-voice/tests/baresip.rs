//! Two real SIP phones through the edge: baresip "bob" (TLS, `mediaenc=srtp-mand`, a 440 Hz
//! tone) calls a secure domain through the edge (the `outbound=` proxy trick puts the domain
//! name in the Request-URI without DNS); the TwiML dials baresip "jack" with `;secure=true` on
//! 127.0.0.2:5061 (a 1000 Hz tone). Each phone's decoded audio must hold the other's tone in
//! every half-second window, the two legs' `inline:` keys must differ, and with
//! `record-from-answer-dual` the recording must carry caller and callee in separate channels.
//!
//! The sealed tests record the same call through [`SealedCallRecorder`] into a real service
//! layer (SQLite and a directory object store in a temporary data directory) whose account seals
//! with a customer RSA key: the stored object must be ciphertext, and the customer's private key
//! must open it into the two tones; with the key deleted, the call goes on unrecorded and seed
//! 000's failed recording (16104) is published.

mod support;

use std::time::Duration;

use mediaseal_store::model::Sealing;
use support::*;

struct Phones {
    bob: Baresip,
    jack: Baresip,
}

async fn phones(certs: &Certs, edge: &Edge) -> Phones {
    let root = certs.dir.path().join("bs");
    let jack = Baresip::start(
        &root,
        certs,
        BaresipOptions {
            name: "jack",
            listen: "127.0.0.2:5060".parse().expect("addr"),
            ctrl: "127.0.0.2:14445".parse().expect("addr"),
            tone: 1000,
            rtp_ports: (21100, 21149),
            account: "<sip:jack@127.0.0.2;transport=tls>;regint=0;mediaenc=srtp-mand;answermode=auto;audio_codecs=PCMU/8000/1".into(),
        },
    )
    .await;
    let bob = Baresip::start(
        &root,
        certs,
        BaresipOptions {
            name: "bob",
            listen: "127.0.0.1:15060".parse().expect("addr"),
            ctrl: "127.0.0.1:14444".parse().expect("addr"),
            tone: 440,
            rtp_ports: (21000, 21049),
            account: format!(
                "<sip:bob@127.0.0.1:15060;transport=tls>;regint=0;mediaenc=srtp-mand;\
                 outbound=\"sip:127.0.0.1:{};transport=tls\";audio_codecs=PCMU/8000/1",
                edge.tls_port()
            ),
        },
    )
    .await;
    Phones { bob, jack }
}

/// Bob calls the secure domain, talks for `talk`, hangs up.
async fn call(p: &Phones, talk: Duration) {
    let mut ctl = p.bob.control().await;
    ctl.command("dial", &format!("sip:alice@secure.{SUFFIX}"))
        .await;
    let est = ctl
        .wait_event("CALL_ESTABLISHED", Duration::from_secs(10))
        .await;
    assert!(
        est.is_some(),
        "bob's call was not established: {:?}\n--- bob ---\n{}\n--- jack ---\n{}",
        ctl.events,
        tail(&p.bob.log_text()),
        tail(&p.jack.log_text())
    );
    tokio::time::sleep(talk).await;
    ctl.command("hangup", "").await;
    let closed = ctl.wait_event("CALL_CLOSED", Duration::from_secs(5)).await;
    assert!(
        closed.is_some(),
        "bob's call did not close: {:?}",
        ctl.events
    );
    // Let jack receive the edge's BYE and close its dump files.
    tokio::time::sleep(Duration::from_millis(800)).await;
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

fn assert_hears(phone: &Baresip, tone: f64, other: f64) {
    let wav = phone
        .decoded_wavs()
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no decoded dump in {}", phone.dir.display()));
    let (pcm, rate, _) = read_wav(&wav, 0);
    let secs = pcm.len() as f64 / f64::from(rate);
    // The first half second is call setup; the last is the hang-up.
    let (min, mean, n) = tone_windows(&pcm, rate, tone, 0.5, 0.5);
    let (_, leak, _) = tone_windows(&pcm, rate, other, 0.5, 0.5);
    assert!(n >= 8, "{} holds {secs:.1} s ({n} windows)", wav.display());
    assert!(
        min >= 0.9,
        "{}: {tone} Hz in every half second: min {min:.3}, mean {mean:.3}",
        wav.display()
    );
    assert!(
        leak < 0.05,
        "{}: its own {other} Hz must not come back ({leak:.3})",
        wav.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_phones_hear_each_other_through_the_rekeying_relay() {
    let _serial = serial().await;
    let certs = certs();
    let app = App::start().await;
    app.set(
        "/voice",
        "<Response><Dial><Sip>sip:jack@127.0.0.2;secure=true</Sip></Dial></Response>",
    );
    let edge = start_edge(EdgeOptions::new(&certs, 32000)).await;
    edge.domain("secure", true, &app.url("/voice"));
    let p = phones(&certs, &edge).await;
    call(&p, Duration::from_secs(6)).await;
    assert_hears(&p.bob, 1000.0, 440.0);
    assert_hears(&p.jack, 440.0, 1000.0);
    // Bob received the edge's answer; jack received the edge's offer: different keys.
    let bob_got = p.bob.traced_crypto_lines();
    let jack_got = p.jack.traced_crypto_lines();
    let key = |l: &String| {
        l.split("inline:")
            .nth(1)
            .map(|k| k[..40.min(k.len())].to_owned())
    };
    let bob_keys: Vec<String> = bob_got.iter().filter_map(key).collect();
    let jack_keys: Vec<String> = jack_got.iter().filter_map(key).collect();
    assert!(
        !bob_keys.is_empty() && !jack_keys.is_empty(),
        "traces: {bob_got:?} {jack_got:?}"
    );
    for k in &bob_keys {
        assert!(!jack_keys.contains(k), "the two legs share an inline: key");
    }
    let m = edge.handle.metrics();
    // baresip's SRTP filter passes RTCP through unprotected while its crypto is not running:
    // an APP "PING" as the stream starts (too short for SRTCP: a malformed drop) and, when the
    // machine is busy, the RTCP BYE it sends after its SRTP has stopped (an authentication
    // failure). The relay drops both, as it must. A wrong key would fail hundreds of packets,
    // and the tones above would be missing.
    assert!(m.srtp_auth_failures <= 2, "{m:#?}");
    assert!(m.relay_forwarded > 500, "{m:#?}");
    edge.wait_metric("the call ended", |m| m.active_calls == 0)
        .await;
    edge.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_from_answer_dual_puts_caller_and_callee_in_separate_channels() {
    let _serial = serial().await;
    let certs = certs();
    let app = App::start().await;
    app.set(
        "/voice",
        "<Response><Dial record=\"record-from-answer-dual\" action=\"/dialed\">\
         <Sip>sip:jack@127.0.0.2;secure=true</Sip></Dial></Response>",
    );
    app.set("/dialed", "<Response><Hangup/></Response>");
    let edge = start_edge(EdgeOptions::new(&certs, 32200)).await;
    edge.domain("secure", true, &app.url("/voice"));
    let p = phones(&certs, &edge).await;
    let started = std::time::Instant::now();
    call(&p, Duration::from_secs(6)).await;
    let talked = started.elapsed().as_secs_f64();
    let dialed = app
        .wait_hook("/dialed", Duration::from_secs(5))
        .await
        .expect("action");
    assert_eq!(dialed.param("DialCallStatus"), Some("completed"));
    assert!(
        dialed
            .param("RecordingSid")
            .is_some_and(|s| s.starts_with("RE")),
        "{dialed:?}"
    );
    let recs = edge.recorder.recordings();
    assert_eq!(recs.len(), 1);
    let rec = &recs[0];
    assert!(rec.finished);
    assert_eq!(rec.request.source.as_str(), "DialVerb");
    let (caller, rate, channels) = wav_samples(&rec.wav, 0);
    let (callee, _, _) = wav_samples(&rec.wav, 1);
    assert_eq!((rate, channels), (8000, 2));
    let secs = caller.len() as f64 / 8000.0;
    // Recorded from the answer to the hang-up: about the time bob talked.
    assert!(
        secs > 5.5 && secs <= talked + 0.5,
        "recording {secs:.2} s, call {talked:.2} s"
    );
    assert!((rec.duration.as_secs_f64() - secs).abs() < 0.5);
    let (c440, _, n) = tone_windows(&caller, 8000, 440.0, 0.5, 0.5);
    let (c1000, _, _) = tone_windows(&caller, 8000, 1000.0, 0.5, 0.5);
    let (e1000, _, _) = tone_windows(&callee, 8000, 1000.0, 0.5, 0.5);
    let (e440, _, _) = tone_windows(&callee, 8000, 440.0, 0.5, 0.5);
    assert!(n >= 8);
    assert!(
        c440 >= 0.9 && c1000 < 0.05,
        "channel 1 is the caller: {c440:.3} / {c1000:.3}"
    );
    assert!(
        e1000 >= 0.9 && e440 < 0.05,
        "channel 2 is the callee: {e1000:.3} / {e440:.3}"
    );
    let m = edge.handle.metrics();
    assert_eq!(m.recorder_frames_dropped, 0, "{m:#?}");
    edge.handle.shutdown().await;
}

// ------------------------------------------------------------------------------------------
// Recorded through the service layer, sealed with the customer's key.

/// The start of the mixer's streaming WAV header: the first bytes of any plaintext recording.
const WAV_STREAMING_MAGIC: &[u8] = b"RIFF\xff\xff\xff\xffWAVEfmt ";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dual_channel_call_recording_is_sealed_with_the_customer_key() {
    let _serial = serial().await;
    let certs = certs();
    let svc = sealed_service().await;
    let app = App::start().await;
    app.set(
        "/voice",
        "<Response><Dial record=\"record-from-answer-dual\" action=\"/dialed\" \
         recordingStatusCallback=\"/recording-status\" recordingStatusCallbackEvent=\"completed absent\">\
         <Sip>sip:jack@127.0.0.2;secure=true</Sip></Dial></Response>",
    );
    app.set("/dialed", "<Response><Hangup/></Response>");
    let edge = svc.edge(&certs, 32400).await;
    edge.domain("secure", true, &app.url("/voice"));
    let p = phones(&certs, &edge).await;
    let started = std::time::Instant::now();
    // While the call is being recorded, no file in the data directory may hold a WAV header.
    let data_dir = svc.data.path().to_path_buf();
    let ((), mid_call_hits) = tokio::join!(call(&p, Duration::from_secs(6)), async {
        tokio::time::sleep(Duration::from_secs(4)).await;
        mediaseal_test_support::scan::Scan::default()
            .files_containing(&data_dir, &[WAV_STREAMING_MAGIC.to_vec()])
    });
    let talked = started.elapsed().as_secs_f64();
    assert!(
        mid_call_hits.is_empty(),
        "plaintext WAV in the data directory during the call: {mid_call_hits:?}"
    );
    let dialed = app
        .wait_hook("/dialed", Duration::from_secs(5))
        .await
        .expect("action");
    assert_eq!(dialed.param("DialCallStatus"), Some("completed"));

    // The row: completed, sealed with the customer's key, rsa-aes details.
    let recs = svc.recordings().await;
    assert_eq!(recs.len(), 1, "{recs:#?}");
    let rec = &recs[0];
    assert_eq!(dialed.param("RecordingSid"), Some(rec.sid.as_str()));
    assert_eq!(
        dialed.param("RecordingUrl"),
        Some(
            format!(
                "{BASE_URL}/2010-04-01/Accounts/{ACCOUNT}/Recordings/{}",
                rec.sid
            )
            .as_str()
        )
    );
    assert_eq!(rec.status, "completed", "{rec:#?}");
    assert_eq!(rec.error_code, None);
    assert_eq!(rec.source, "DialVerb");
    assert_eq!(rec.channels, 2);
    assert_eq!(rec.track.as_deref(), Some("both"));
    assert_eq!(rec.content_type, "audio/x-wav");
    assert_eq!(rec.call_sid.as_deref(), dialed.param("CallSid"));
    assert_eq!(rec.sealing, Sealing::Customer);
    let details_json = rec.encryption_details.clone().expect("encryption_details");
    let details: serde_json::Value = serde_json::from_str(&details_json).expect("details JSON");
    assert_eq!(details["type"], "rsa-aes", "{details}");
    assert_eq!(details["public_key_sid"], svc.key_sid.as_str(), "{details}");
    assert!(details["encrypted_cek"].is_string() && details["iv"].is_string());

    // The completed callback was queued with the row, carrying the details.
    let callbacks = svc.meta.callbacks_for(&rec.sid).await.expect("callbacks");
    assert_eq!(callbacks.len(), 1, "{callbacks:#?}");
    assert_eq!(callbacks[0].url, app.url("/recording-status"));
    let params: Vec<(String, String)> =
        serde_json::from_str(&callbacks[0].params).expect("callback params");
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(param("RecordingStatus"), Some("completed"));
    assert_eq!(param("RecordingSource"), Some("DialVerb"));
    assert_eq!(param("RecordingChannels"), Some("2"));
    assert_eq!(param("EncryptionDetails"), Some(details_json.as_str()));

    // The object is ciphertext: the header is not in it, and the service's own at-rest key
    // cannot open it.
    let object_key = rec.object_key.clone().expect("object key");
    let sealed = svc.object(&object_key);
    assert_eq!(sealed.len() as i64, rec.sealed_size);
    assert!(!mediaseal_test_support::contains(
        &sealed,
        WAV_STREAMING_MAGIC
    ));
    let envelope = mediaseal_crypto::parse_details(&details_json).expect("details parse");
    assert!(
        mediaseal_crypto::open_seekable_to_writer(
            std::io::Cursor::new(&sealed),
            Vec::new(),
            &envelope,
            &svc.at_rest,
        )
        .is_err(),
        "the service's key must not open a customer-sealed recording"
    );

    // The customer's private key opens it, in memory, as the seed-000 recipe does.
    let wav = mediaseal_crypto::open_seekable_to_writer(
        std::io::Cursor::new(&sealed),
        Vec::new(),
        &envelope,
        &svc.customer,
    )
    .expect("the customer's key opens the recording");
    assert_eq!(wav.len() as i64, rec.plain_size);
    assert!(
        wav.starts_with(WAV_STREAMING_MAGIC),
        "a streamed WAV header"
    );
    let (caller, rate, channels) = wav_samples(&wav, 0);
    let (callee, _, _) = wav_samples(&wav, 1);
    assert_eq!((rate, channels), (8000, 2));
    let secs = caller.len() as f64 / 8000.0;
    assert!(
        secs > 5.5 && secs <= talked + 0.5,
        "recording {secs:.2} s, call {talked:.2} s"
    );
    let duration = rec.duration.expect("duration") as f64;
    assert!(
        (duration - secs).abs() <= 0.5,
        "duration {duration} s, audio {secs:.2} s"
    );
    assert_eq!(
        dialed.param("RecordingDuration"),
        Some(rec.duration.expect("duration").to_string().as_str())
    );
    let (c440, _, n) = tone_windows(&caller, 8000, 440.0, 0.5, 0.5);
    let (c1000, _, _) = tone_windows(&caller, 8000, 1000.0, 0.5, 0.5);
    let (e1000, _, _) = tone_windows(&callee, 8000, 1000.0, 0.5, 0.5);
    let (e440, _, _) = tone_windows(&callee, 8000, 440.0, 0.5, 0.5);
    assert!(n >= 8);
    assert!(
        c440 >= 0.9 && c1000 < 0.05,
        "channel 1 is the caller: {c440:.3} / {c1000:.3}"
    );
    assert!(
        e1000 >= 0.9 && e440 < 0.05,
        "channel 2 is the callee: {e1000:.3} / {e440:.3}"
    );

    // No file under the data directory holds the tones' PCM (nor the header).
    let data_offset = mediaseal_media::wav::parse_header(&wav)
        .expect("header")
        .data_offset as usize;
    let audio = &wav[data_offset..];
    let mut needles = vec![WAV_STREAMING_MAGIC.to_vec()];
    for fraction in [0.25, 0.5, 0.75] {
        let at = ((audio.len() as f64 * fraction) as usize) & !3;
        let window = &audio[at..at + 64];
        assert!(
            window.iter().any(|&b| b != 0),
            "a window of tone, not silence"
        );
        needles.push(window.to_vec());
    }
    let hits =
        mediaseal_test_support::scan::Scan::default().files_containing(svc.data.path(), &needles);
    assert!(hits.is_empty(), "plaintext audio at rest: {hits:?}");
    assert!(
        !files_under(&svc.data.path().join("objects")).is_empty(),
        "the sealed object is in the data directory"
    );
    let m = edge.handle.metrics();
    assert_eq!(m.recorder_frames_dropped, 0, "{m:#?}");
    edge.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_customer_key_leaves_the_call_unrecorded_and_publishes_16104() {
    let _serial = serial().await;
    let certs = certs();
    let svc = sealed_service().await;
    // Encryption stays on, and the account has no key left: no fallback, seed 000's failure.
    assert!(
        svc.meta
            .delete_public_key(&svc.key_sid)
            .await
            .expect("delete key")
    );
    let app = App::start().await;
    app.set(
        "/voice",
        "<Response><Dial record=\"record-from-answer-dual\" action=\"/dialed\">\
         <Sip>sip:jack@127.0.0.2;secure=true</Sip></Dial></Response>",
    );
    app.set("/dialed", "<Response><Hangup/></Response>");
    let edge = svc.edge(&certs, 32600).await;
    edge.domain("secure", true, &app.url("/voice"));
    let p = phones(&certs, &edge).await;
    call(&p, Duration::from_secs(6)).await;
    let dialed = app
        .wait_hook("/dialed", Duration::from_secs(5))
        .await
        .expect("action");
    // The call went on: bridged, and bob heard jack the whole time.
    assert_eq!(dialed.param("DialCallStatus"), Some("completed"));
    assert_eq!(dialed.param("RecordingSid"), None, "{dialed:?}");
    assert_hears(&p.bob, 1000.0, 440.0);

    let recs = svc.recordings().await;
    assert_eq!(recs.len(), 1, "{recs:#?}");
    let rec = &recs[0];
    assert_eq!(rec.status, "failed", "{rec:#?}");
    assert_eq!(rec.error_code, Some(16104));
    assert_eq!(rec.encryption_details, None);
    assert_eq!(rec.object_key, None);
    assert_eq!(rec.sealing, Sealing::None);
    assert_eq!(rec.source, "DialVerb");
    assert_eq!(rec.call_sid.as_deref(), dialed.param("CallSid"));
    let notes = svc
        .meta
        .list_notifications(ACCOUNT, None, 50)
        .await
        .expect("notifications");
    assert!(
        notes
            .iter()
            .any(|n| n.error_code == 16104 && n.resource_sid.as_deref() == Some(rec.sid.as_str())),
        "{notes:#?}"
    );
    // Nothing of the call was stored.
    let stored = files_under(&svc.data.path().join("objects"));
    assert!(stored.is_empty(), "objects written: {stored:?}");
    edge.handle.shutdown().await;
}
