//! Calls that run TwiML to the end, with real peers: the `;secure=true` outbound leg checked
//! by a TLS server written for the test (`interop/voice/tls_uas.py`), a callee with an
//! untrusted certificate, `<Gather>` fed by RFC 4733 events inside SRTP from a pylibsrtp
//! caller, `<Record>`, and forgeries injected into the relay's media port while baresip
//! listens on the other leg.

mod support;

use std::time::Duration;

use support::*;

fn caller_80(edge: &Edge, certs: &Certs, domain: &str) -> Vec<String> {
    let mut a = uac_tls(edge, certs, &ruri(domain));
    a.extend([
        "--crypto".into(),
        "1 AES_CM_128_HMAC_SHA1_80 inline:KEY".into(),
    ]);
    a
}

fn key_of(line: &str) -> &str {
    line.split("inline:")
        .nth(1)
        .and_then(|k| k.split(['|', ' ']).next())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_dial_uses_tls_5061_one_80_line_and_its_own_keys() {
    let _serial = serial().await;
    let certs = certs();
    let app = App::start().await;
    app.set(
        "/voice",
        "<Response><Dial action=\"/dialed\"><Sip>sip:jack@127.0.0.3;secure=true?X-Ticket=7</Sip></Dial></Response>",
    );
    app.set("/dialed", "<Response><Hangup/></Response>");
    let edge = start_edge(EdgeOptions::new(&certs, 31000)).await;
    edge.domain("secure", true, &app.url("/voice"));
    let uas = TlsUas::start("127.0.0.3", &certs.cert, &certs.key, &["--hold", "3"]).await;
    let mut args = caller_80(&edge, &certs, "secure");
    args.extend([
        "--media-seconds".into(),
        "3".into(),
        "--wait-bye".into(),
        "10".into(),
    ]);
    let caller = uac(&args).await;
    let callee = uas.result().await;
    assert_eq!(caller["final"], 200, "{caller}");
    assert!(callee["invite"].as_bool().expect("bool"), "{callee}");
    // TLS to port 5061 (the server only listens there), the URI without ;secure.
    assert!(
        callee["via"]
            .as_str()
            .expect("via")
            .starts_with("SIP/2.0/TLS"),
        "{callee}"
    );
    assert_eq!(callee["request_uri"], "sip:jack@127.0.0.3");
    // Exactly one crypto line: _80, one key, no lifetime, no MKI, no session parameters.
    assert_eq!(callee["offer_proto"], "RTP/SAVP");
    let offer = callee["offer_crypto"].as_array().expect("lines");
    assert_eq!(offer.len(), 1, "{callee}");
    let line = offer[0].as_str().expect("line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields.len(), 3, "{line}");
    assert_eq!(fields[1], "AES_CM_128_HMAC_SHA1_80");
    assert!(!fields[2].contains('|'), "no lifetime or MKI: {line}");
    // Four different keys: each leg has its own in each direction.
    let keys = [
        key_of(caller["offer_crypto"][0].as_str().expect("k")),
        key_of(caller["answer_crypto"][0].as_str().expect("k")),
        key_of(line),
        key_of(callee["answer_crypto"].as_str().expect("k")),
    ];
    for i in 0..4 {
        assert_eq!(keys[i].len(), 40, "{keys:?}");
        for j in i + 1..4 {
            assert_ne!(keys[i], keys[j], "legs must not share keys");
        }
    }
    // The caller's SRTP reached the callee re-encrypted with the callee leg's key.
    assert!(callee["rx_packets"].as_u64().expect("n") > 50, "{callee}");
    assert_eq!(callee["rx_auth_fail"], 0);
    // …and the callee's came back under the caller leg's key.
    assert!(caller["rx_packets"].as_u64().expect("n") > 50, "{caller}");
    assert_eq!(caller["rx_auth_fail"], 0);
    let dialed = app
        .wait_hook("/dialed", Duration::from_secs(5))
        .await
        .expect("action");
    assert_eq!(
        dialed.param("DialCallStatus"),
        Some("completed"),
        "{dialed:?}"
    );
    assert_eq!(dialed.param("DialSipResponseCode"), Some("200"));
    assert!(
        dialed
            .param("DialCallSid")
            .is_some_and(|s| s.starts_with("CA"))
    );
    assert!(dialed.param("DialSipCallId").is_some_and(|s| !s.is_empty()));
    assert!(dialed.param("DialCallDuration").is_some());
    assert!(caller["got_bye"].as_bool().expect("bool"), "{caller}");
    let ledger = edge.ledger.updates();
    assert!(
        ledger
            .iter()
            .any(|u| u.direction == "outbound-dial" && u.status == "completed")
    );
    edge.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callee_certificate_from_an_untrusted_ca_fails_the_dial() {
    let _serial = serial().await;
    let certs = certs();
    let app = App::start().await;
    app.set(
        "/voice",
        "<Response><Dial action=\"/dialed\" timeout=\"10\"><Sip>sip:jack@127.0.0.4;secure=true</Sip></Dial></Response>",
    );
    app.set("/dialed", "<Response><Hangup/></Response>");
    let edge = start_edge(EdgeOptions::new(&certs, 31200)).await;
    edge.domain("secure", true, &app.url("/voice"));
    let uas = TlsUas::start(
        "127.0.0.4",
        &certs.untrusted_cert,
        &certs.untrusted_key,
        &["--timeout", "8"],
    )
    .await;
    let mut args = caller_80(&edge, &certs, "secure");
    args.extend(["--wait-bye".into(), "10".into()]);
    let caller = uac(&args).await;
    assert_eq!(caller["final"], 200, "{caller}");
    let dialed = app
        .wait_hook("/dialed", Duration::from_secs(5))
        .await
        .expect("action");
    assert_eq!(dialed.param("DialCallStatus"), Some("failed"), "{dialed:?}");
    assert!(caller["got_bye"].as_bool().expect("bool"));
    let callee = uas.result().await;
    assert!(
        callee["handshake_failed"].as_bool().expect("bool"),
        "{callee}"
    );
    assert!(
        !callee["invite"].as_bool().expect("bool"),
        "no INVITE over an unverified connection"
    );
    edge.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gather_collects_rfc4733_digits_sent_inside_srtp() {
    let _serial = serial().await;
    let certs = certs();
    let app = App::start().await;
    app.set(
        "/voice",
        "<Response><Gather input=\"dtmf\" numDigits=\"4\" timeout=\"5\" action=\"/pin\">\
         <Say>Please enter your PIN.</Say></Gather><Say>We did not get it.</Say></Response>",
    );
    app.set("/pin", "<Response><Play digits=\"9\"/><Hangup/></Response>");
    let edge = start_edge(EdgeOptions::new(&certs, 31400)).await;
    edge.domain("secure", true, &app.url("/voice"));
    let mut args = caller_80(&edge, &certs, "secure");
    args.extend([
        "--media-seconds".into(),
        "4".into(),
        "--dtmf".into(),
        "1234".into(),
        "--dtmf-at".into(),
        "1.0".into(),
        "--wait-bye".into(),
        "10".into(),
    ]);
    let caller = uac(&args).await;
    assert_eq!(caller["final"], 200, "{caller}");
    let pin = app
        .wait_hook("/pin", Duration::from_secs(5))
        .await
        .expect("gather action");
    assert_eq!(pin.param("Digits"), Some("1234"), "{pin:?}");
    assert!(caller["got_bye"].as_bool().expect("bool"), "{caller}");
    let m = edge.handle.metrics();
    assert_eq!(m.digits, 4, "{m:#?}");
    assert_eq!(m.srtp_auth_failures, 0);
    edge.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn play_then_record_the_caller_and_report_the_recording() {
    let _serial = serial().await;
    let certs = certs();
    let app = App::start().await;
    // A 16 kHz WAV for <Play>: the edge downloads, resamples and plays it.
    let tone = (0..16000)
        .map(|i| ((i as f64 * 2.0 * std::f64::consts::PI * 600.0 / 16000.0).sin() * 12000.0) as i16)
        .collect::<Vec<_>>();
    app.file(
        "/prompt.wav",
        mediaseal_media::wav::pcm16_file(1, 16000, &tone),
    );
    app.set(
        "/voice",
        "<Response><Play>/prompt.wav</Play>\
         <Record maxLength=\"2\" playBeep=\"true\" action=\"/recorded\"/></Response>",
    );
    app.set("/recorded", "<Response><Hangup/></Response>");
    let edge = start_edge(EdgeOptions::new(&certs, 31600)).await;
    edge.domain("secure", true, &app.url("/voice"));
    let mut args = caller_80(&edge, &certs, "secure");
    args.extend([
        "--media-seconds".into(),
        "3".into(),
        "--tone".into(),
        "440".into(),
        "--wait-bye".into(),
        "5".into(),
    ]);
    let caller = uac(&args).await;
    assert_eq!(caller["final"], 200, "{caller}");
    let done = app
        .wait_hook("/recorded", Duration::from_secs(5))
        .await
        .expect("action");
    assert!(
        done.param("RecordingUrl")
            .is_some_and(|u| u.contains("/Recordings/RE")),
        "{done:?}"
    );
    assert!(
        done.param("RecordingSid")
            .is_some_and(|s| s.starts_with("RE"))
    );
    let recs = edge.recorder.recordings();
    assert_eq!(recs.len(), 1);
    let rec = &recs[0];
    assert!(rec.finished);
    assert_eq!(rec.request.source.as_str(), "RecordVerb");
    let (pcm, rate, channels) = wav_samples(&rec.wav, 0);
    assert_eq!((rate, channels), (8000, 1));
    let secs = pcm.len() as f64 / 8000.0;
    assert!(
        (1.5..=2.6).contains(&secs),
        "maxLength=2 s recorded {secs} s"
    );
    let (min, _, n) = tone_windows(&pcm, 8000, 440.0, 0.25, 0.25);
    assert!(
        n >= 2 && min > 0.8,
        "the caller's 440 Hz is in the recording ({min}, {n} windows)"
    );
    edge.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgeries_injected_into_the_media_port_are_dropped_and_never_heard() {
    let _serial = serial().await;
    let certs = certs();
    let app = App::start().await;
    app.set(
        "/voice",
        "<Response><Dial><Sip>sip:jack@127.0.0.2;secure=true</Sip></Dial></Response>",
    );
    let edge = start_edge(EdgeOptions::new(&certs, 31800)).await;
    edge.domain("secure", true, &app.url("/voice"));
    let root = certs.dir.path().join("bs");
    let jack = Baresip::start(
        &root,
        &certs,
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
    let heard = certs.dir.path().join("caller-heard.wav");
    let mut args = caller_80(&edge, &certs, "secure");
    args.extend([
        "--media-seconds".into(),
        "5".into(),
        "--tone".into(),
        "440".into(),
        "--forge".into(),
        "--record-out".into(),
        heard.display().to_string(),
    ]);
    let caller = uac(&args).await;
    assert_eq!(caller["final"], 200, "{caller}\n{}", jack.log_text());
    let forged = &caller["forged"];
    let wrong = forged["wrong_key"].as_u64().expect("n");
    let replayed = forged["replayed"].as_u64().expect("n");
    let plain = forged["plain"].as_u64().expect("n");
    assert!(wrong >= 10 && replayed >= 10 && plain >= 10, "{forged}");
    edge.wait_metric("forgeries counted", |m| {
        m.srtp_auth_failures >= wrong + plain && m.srtp_replays >= replayed
    })
    .await;
    // The caller hung up; the edge's BYE makes jack close its dump files.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let wav = jack
        .decoded_wavs()
        .into_iter()
        .next()
        .expect("jack dumped its audio");
    let (pcm, rate, _) = read_wav(&wav, 0);
    let (min440, _, n) = tone_windows(&pcm, rate, 440.0, 1.0, 0.5);
    let (_, mean1500, _) = tone_windows(&pcm, rate, 1500.0, 1.0, 0.5);
    let max1500 = max_fraction(&pcm, rate, 1500.0);
    assert!(n >= 4, "{n} windows");
    assert!(min440 >= 0.9, "the caller's tone in every window: {min440}");
    assert!(
        max1500 < 0.05,
        "forged 1500 Hz must never be heard: max {max1500}, mean {mean1500}"
    );
    // The callee's tone came back to the caller.
    let (back, rate, _) = read_wav(&heard, 0);
    let (min1000, _, n) = tone_windows(&back, rate, 1000.0, 1.5, 0.5);
    assert!(
        n >= 3 && min1000 >= 0.9,
        "callee tone at the caller: {min1000} over {n}"
    );
    edge.handle.shutdown().await;
}

fn max_fraction(pcm: &[i16], rate: u32, f: f64) -> f64 {
    let win = (rate / 2) as usize;
    pcm.chunks(win)
        .filter(|c| c.len() == win)
        .map(|c| tone_windows(c, rate, f, 0.0, 0.0).0)
        .fold(0.0, f64::max)
}
