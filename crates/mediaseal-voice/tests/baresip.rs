//! Two real SIP phones through the edge: baresip "bob" (TLS, `mediaenc=srtp-mand`, a 440 Hz
//! tone) calls a secure domain through the edge (the `outbound=` proxy trick puts the domain
//! name in the Request-URI without DNS); the TwiML dials baresip "jack" with `;secure=true` on
//! 127.0.0.2:5061 (a 1000 Hz tone). Each phone's decoded audio must hold the other's tone in
//! every half-second window, the two legs' `inline:` keys must differ, and with
//! `record-from-answer-dual` the recording must carry caller and callee in separate channels.

mod support;

use std::time::Duration;

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
    assert_eq!(m.srtp_auth_failures, 0, "{m:#?}");
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
