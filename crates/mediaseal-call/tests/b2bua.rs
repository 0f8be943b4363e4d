//! The call core with simulated peers and time: what goes out for each INVITE, and that
//! nothing reaches the application before authentication and policy.

#![allow(clippy::disallowed_methods)] // tests and benches read the clock for an epoch

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mediaseal_call::b2bua::Output;
use mediaseal_call::recording::{Layout, TapTracks};
use mediaseal_call::{
    ApiRecording, CallCore, CoreConfig, Domain, DomainCredential, Effect, HangUpError, HangUpMode,
    LiveRecordingError, MediaCommand, MediaEvent, RecordingControl, RecordingSource, WebhookKind,
};
use mediaseal_sip::auth::Ha1Set;
use mediaseal_sip::message::{HeaderName, ParseLimits, Response, SipMessage, Transport};
use mediaseal_twiml::HttpMethod;

const KEY: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";

fn core(now: Instant) -> CallCore {
    let mut c = CoreConfig::new([127, 0, 0, 1].into(), 5060, 5061, "sip.example.test");
    c.rtp_ports = 40000..=40009;
    CallCore::new(c, now).unwrap()
}

fn domain(secure: bool) -> Domain {
    Domain {
        sid: "SD0001".into(),
        account_sid: "AC0001".into(),
        name: "acme.sip.example.test".into(),
        secure,
        voice_url: Some("https://app.example.test/voice".parse().unwrap()),
        voice_method: HttpMethod::Post,
        voice_fallback_url: None,
        voice_fallback_method: HttpMethod::Post,
        voice_status_callback_url: None,
        voice_status_callback_method: HttpMethod::Post,
        ip_ranges: vec!["192.0.2.0/24".parse().unwrap()],
        credentials: vec![DomainCredential {
            username: "carol".into(),
            ha1: Ha1Set::compute("carol", "acme.sip.example.test", "pw"),
        }],
        sip_registration: false,
        registration_credentials: Vec::new(),
    }
}

fn invite(transport: &str, proto: &str, crypto: &str, extra: &str) -> Vec<u8> {
    let crypto = if crypto.is_empty() {
        String::new()
    } else {
        format!("a=crypto:{crypto}\r\n")
    };
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
         m=audio 4000 {proto} 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n{crypto}"
    );
    format!(
        "INVITE sip:alice@acme.sip.example.test SIP/2.0\r\n\
         Via: SIP/2.0/{transport} 192.0.2.10:5070;branch=z9hG4bKtest{}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:bob@192.0.2.10>;tag=ft\r\nTo: <sip:alice@acme.sip.example.test>\r\n\
         Call-ID: {}\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@192.0.2.10:5070>\r\n{extra}\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len(),
        sdp.len() * 7,
        sdp.len()
    )
    .into_bytes()
}

fn feed(c: &mut CallCore, bytes: &[u8], transport: Transport, from: SocketAddr, now: Instant) {
    let msg = SipMessage::parse(bytes, &ParseLimits::default()).unwrap();
    c.handle_message(msg, transport, from, now);
}

#[derive(Default)]
struct Drained {
    responses: Vec<Response>,
    effects: Vec<Effect>,
}

fn drain(c: &mut CallCore) -> Drained {
    let mut d = Drained::default();
    while let Some(o) = c.poll_output() {
        match o {
            Output::Transmit(t) => {
                if let Ok(SipMessage::Response(r)) =
                    SipMessage::parse(&t.bytes, &ParseLimits::default())
                {
                    d.responses.push(r);
                }
            }
            Output::Effect(e) => d.effects.push(e),
        }
    }
    d
}

fn lookup_call(d: &Drained) -> mediaseal_call::CallId {
    d.effects
        .iter()
        .find_map(|e| match e {
            Effect::LookupDomain { call, name } => {
                assert_eq!(name, "acme.sip.example.test");
                Some(*call)
            }
            _ => None,
        })
        .expect("a domain lookup")
}

fn codes(d: &Drained) -> Vec<u16> {
    d.responses.iter().map(|r| r.status.as_u16()).collect()
}

fn no_webhook(d: &Drained) {
    assert!(
        !d.effects.iter().any(|e| matches!(e, Effect::Webhook(_))),
        "{:?}",
        d.effects
    );
}

#[test]
fn accepted_call_rings_fetches_then_answers_with_its_own_key() {
    let now = Instant::now();
    let mut c = core(now);
    let from: SocketAddr = "192.0.2.10:5070".parse().unwrap();
    let line = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}");
    feed(
        &mut c,
        &invite("TLS", "RTP/SAVP", &line, "X-Ref: 9\r\n"),
        Transport::Tls,
        from,
        now,
    );
    let d = drain(&mut c);
    assert_eq!(codes(&d), vec![100]);
    let call = lookup_call(&d);
    c.domain_found(call, Some(domain(true)), now);
    let d = drain(&mut c);
    assert_eq!(codes(&d), vec![180]);
    let hook = d
        .effects
        .iter()
        .find_map(|e| match e {
            Effect::Webhook(w) => Some(w.clone()),
            _ => None,
        })
        .expect("webhook");
    assert_eq!(hook.kind, WebhookKind::Twiml);
    let p = |k: &str| {
        hook.params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(p("SipDomain").as_deref(), Some("acme.sip.example.test"));
    assert_eq!(p("SipHeader_X-Ref").as_deref(), Some("9"));
    assert_eq!(p("SipSourceIp").as_deref(), Some("192.0.2.10"));
    assert!(p("SipUsername").is_none(), "admitted by IP range");
    // Media was opened with keys before anything is answered.
    assert!(
        d.effects
            .iter()
            .any(|e| matches!(e, Effect::Media(MediaCommand::ConfigureLeg { .. })))
    );
    c.webhook_done(
        call,
        hook.fetch,
        Ok(b"<Response><Play digits=\"1\"/></Response>".to_vec()),
        now,
    );
    let d = drain(&mut c);
    assert_eq!(codes(&d), vec![200]);
    let answer = String::from_utf8(d.responses[0].body.clone()).unwrap();
    assert!(answer.contains("RTP/SAVP"));
    let ours = answer
        .lines()
        .find(|l| l.starts_with("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"))
        .unwrap();
    assert!(!ours.contains(KEY), "the edge answers with its own key");
    assert!(
        d.effects
            .iter()
            .any(|e| matches!(e, Effect::Media(MediaCommand::Play { .. })))
    );
    // End of the document after the prompt: BYE.
    c.media_event(call, MediaEvent::PlaybackDone, now);
    let d = drain(&mut c);
    assert!(
        d.effects
            .iter()
            .any(|e| matches!(e, Effect::Media(MediaCommand::Close { .. })))
    );
    assert_eq!(c.stats().active_calls, 0);
}

#[test]
fn refusals_never_fetch_the_webhook() {
    let now = Instant::now();
    let line = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}");
    // (INVITE, transport, source, secure domain, status, counter label)
    type Case<'a> = (Vec<u8>, Transport, &'a str, bool, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            invite("UDP", "RTP/SAVP", &line, ""),
            Transport::Udp,
            "192.0.2.10:5070",
            true,
            403,
            "insecure_signalling",
        ),
        (
            invite("TLS", "RTP/AVP", "", ""),
            Transport::Tls,
            "192.0.2.10:5070",
            true,
            488,
            "plain_rtp_on_secure_domain",
        ),
        (
            invite("UDP", "RTP/SAVP", &line, ""),
            Transport::Udp,
            "192.0.2.10:5070",
            false,
            488,
            "srtp_on_non_secure_domain",
        ),
        (
            invite("TLS", "RTP/SAVP", &format!("{line}|2^20|1:4"), ""),
            Transport::Tls,
            "192.0.2.10:5070",
            true,
            488,
            "mki_not_supported",
        ),
        // Outside the IP range and without credentials: a challenge, not the application.
        (
            invite("UDP", "RTP/AVP", "", ""),
            Transport::Udp,
            "198.51.100.1:5070",
            false,
            401,
            "challenged",
        ),
    ];
    for (bytes, transport, from, secure, status, label) in cases {
        let mut c = core(now);
        feed(&mut c, &bytes, transport, from.parse().unwrap(), now);
        let call = lookup_call(&drain(&mut c));
        c.domain_found(call, Some(domain(secure)), now);
        let d = drain(&mut c);
        assert_eq!(codes(&d), vec![status], "{label}");
        no_webhook(&d);
        let s = c.stats();
        let counted = s.policy_rejections.get(label).or(s.refusals.get(label));
        assert_eq!(counted, Some(&1), "{label}: {s:?}");
        if status == 401 {
            assert!(
                d.responses[0]
                    .headers
                    .get(&HeaderName::WWW_AUTHENTICATE)
                    .is_some()
            );
        } else {
            assert!(
                d.responses[0].headers.get(&HeaderName::WARNING).is_some(),
                "{label}"
            );
        }
    }
    // An unknown domain and a host outside the suffix.
    let mut c = core(now);
    feed(
        &mut c,
        &invite("UDP", "RTP/AVP", "", ""),
        Transport::Udp,
        "192.0.2.10:5070".parse().unwrap(),
        now,
    );
    let call = lookup_call(&drain(&mut c));
    c.domain_found(call, None, now);
    assert_eq!(codes(&drain(&mut c)), vec![404]);
    let other = String::from_utf8(invite("UDP", "RTP/AVP", "", ""))
        .unwrap()
        .replace(
            "sip:alice@acme.sip.example.test SIP",
            "sip:alice@example.org SIP",
        )
        .replace("branch=z9hG4bKtest", "branch=z9hG4bKother");
    feed(
        &mut c,
        other.as_bytes(),
        Transport::Udp,
        "192.0.2.10:5070".parse().unwrap(),
        now,
    );
    let d = drain(&mut c);
    assert_eq!(codes(&d), vec![100, 404]);
    assert!(
        !d.effects
            .iter()
            .any(|e| matches!(e, Effect::LookupDomain { .. }))
    );
}

#[test]
fn dial_timeout_cancels_and_reports_no_answer() {
    let t0 = Instant::now();
    let mut c = core(t0);
    let from: SocketAddr = "192.0.2.10:5070".parse().unwrap();
    feed(
        &mut c,
        &invite("UDP", "RTP/AVP", "", ""),
        Transport::Udp,
        from,
        t0,
    );
    let call = lookup_call(&drain(&mut c));
    c.domain_found(call, Some(domain(false)), t0);
    let fetch = drain(&mut c)
        .effects
        .into_iter()
        .find_map(|e| match e {
            Effect::Webhook(w) => Some(w.fetch),
            _ => None,
        })
        .unwrap();
    c.webhook_done(
        call,
        fetch,
        Ok(b"<Response><Dial timeout=\"5\" action=\"/after\"><Sip>sip:jack@198.51.100.20</Sip></Dial></Response>".to_vec()),
        t0,
    );
    let mut invite_sent = None;
    while let Some(o) = c.poll_output() {
        if let Output::Transmit(t) = o
            && t.bytes.starts_with(b"INVITE ")
        {
            invite_sent = Some(t);
        }
    }
    let out = invite_sent.expect("the dial INVITE");
    assert_eq!(out.destination, "198.51.100.20:5060".parse().unwrap());
    let text = String::from_utf8(out.bytes.clone()).unwrap();
    assert!(text.contains("m=audio") && text.contains("RTP/AVP") && !text.contains("a=crypto"));
    // The callee rings…
    let msg = SipMessage::parse(&out.bytes, &ParseLimits::default()).unwrap();
    let SipMessage::Request(req) = msg else {
        panic!()
    };
    let ringing =
        Response::for_request(&req, mediaseal_sip::message::StatusCode::RINGING).with_to_tag("jt");
    c.handle_message(
        SipMessage::Response(ringing),
        Transport::Udp,
        out.destination,
        t0,
    );
    drain(&mut c);
    // …past the timeout.
    let later = t0 + Duration::from_secs(6);
    c.handle_timeout(later);
    let mut cancel = false;
    let mut action = None;
    while let Some(o) = c.poll_output() {
        match o {
            Output::Transmit(t) if t.bytes.starts_with(b"CANCEL ") => cancel = true,
            Output::Effect(Effect::Webhook(w)) => action = Some(w),
            _ => {}
        }
    }
    assert!(cancel, "the ringing callee gets a CANCEL");
    let action = action.expect("the dial action");
    assert!(action.url.as_str().ends_with("/after"));
    assert!(
        action
            .params
            .contains(&("DialCallStatus".into(), "no-answer".into()))
    );
}

/// An unsecured call from 192.0.2.10, admitted; its TwiML fetch is answered with `twiml`,
/// what that produced left in the core's output.
fn running_call(c: &mut CallCore, now: Instant, twiml: &str) -> mediaseal_call::CallId {
    let from: SocketAddr = "192.0.2.10:5070".parse().unwrap();
    feed(
        c,
        &invite("UDP", "RTP/AVP", "", ""),
        Transport::Udp,
        from,
        now,
    );
    let call = lookup_call(&drain(c));
    c.domain_found(call, Some(domain(false)), now);
    let fetch = drain(c)
        .effects
        .into_iter()
        .find_map(|e| match e {
            Effect::Webhook(w) => Some(w.fetch),
            _ => None,
        })
        .expect("the voice webhook");
    c.webhook_done(call, fetch, Ok(twiml.as_bytes().to_vec()), now);
    call
}

/// The dialled callee (198.51.100.20) answers the dial INVITE `req` with 200 and plain PCMU.
fn answer_dial(
    c: &mut CallCore,
    req: &mediaseal_sip::message::Request,
    from: SocketAddr,
    now: Instant,
) {
    let sdp = "v=0\r\no=- 2 2 IN IP4 198.51.100.20\r\ns=-\r\nc=IN IP4 198.51.100.20\r\nt=0 0\r\n\
               m=audio 6000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
    let ok = Response::for_request(req, mediaseal_sip::message::StatusCode::OK)
        .with_to_tag("jt")
        .with_header(HeaderName::CONTACT, "<sip:jack@198.51.100.20>")
        .with_body("application/sdp", sdp.as_bytes().to_vec());
    c.handle_message(SipMessage::Response(ok), Transport::Udp, from, now);
}

/// What went out after an API hang-up: SIP request methods, response codes, ledger statuses.
fn after_hang_up(c: &mut CallCore) -> (Vec<String>, Vec<u16>, Vec<&'static str>) {
    let (mut requests, mut responses, mut statuses) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(o) = c.poll_output() {
        match o {
            Output::Transmit(t) => match SipMessage::parse(&t.bytes, &ParseLimits::default()) {
                Ok(SipMessage::Request(r)) => requests.push(r.method.to_string()),
                Ok(SipMessage::Response(r)) => responses.push(r.status.as_u16()),
                Err(_) => {}
            },
            Output::Effect(Effect::CallStatus(u)) => statuses.push(u.status),
            Output::Effect(_) => {}
        }
    }
    (requests, responses, statuses)
}

#[test]
fn the_api_hangs_up_an_answered_call_with_a_bye() {
    let now = Instant::now();
    let mut c = core(now);
    let call = running_call(
        &mut c,
        now,
        "<Response><Say>hello</Say><Pause length=\"30\"/></Response>",
    );
    assert_eq!(codes(&drain(&mut c)), vec![200]);
    let sid = c.call_sid(call).unwrap().to_owned();
    // Another account's SID, an unknown SID and `canceled` leave the call alone.
    assert_eq!(
        c.hang_up("AC9999", &sid, HangUpMode::Complete, now),
        Err(HangUpError::NotLive)
    );
    assert_eq!(
        c.hang_up("AC0001", "CA0000", HangUpMode::Complete, now),
        Err(HangUpError::NotLive)
    );
    assert_eq!(
        c.hang_up("AC0001", &sid, HangUpMode::Cancel, now),
        Err(HangUpError::Answered)
    );
    assert_eq!(c.stats().active_calls, 1);
    c.hang_up("AC0001", &sid, HangUpMode::Complete, now)
        .unwrap();
    let (requests, _, statuses) = after_hang_up(&mut c);
    assert_eq!(requests, vec!["BYE"]);
    assert_eq!(statuses, vec!["completed"]);
    assert_eq!(c.stats().active_calls, 0);
    assert_eq!(
        c.hang_up("AC0001", &sid, HangUpMode::Complete, now),
        Err(HangUpError::NotLive),
        "an ended call is not live"
    );
}

#[test]
fn the_api_cancels_a_ringing_call_with_487() {
    let now = Instant::now();
    let mut c = core(now);
    let from: SocketAddr = "192.0.2.10:5070".parse().unwrap();
    feed(
        &mut c,
        &invite("UDP", "RTP/AVP", "", ""),
        Transport::Udp,
        from,
        now,
    );
    let call = lookup_call(&drain(&mut c));
    c.domain_found(call, Some(domain(false)), now);
    // Rung, the webhook still out: not answered yet.
    assert_eq!(codes(&drain(&mut c)), vec![180]);
    let sid = c.call_sid(call).unwrap().to_owned();
    // Nothing to record before the answer.
    let options = ApiRecording {
        layout: Layout::Mono,
        tracks: TapTracks::Both,
        trim: mediaseal_twiml::Trim::TrimSilence,
        status_callback: None,
    };
    assert_eq!(
        c.start_api_recording("AC0001", &sid, options, now),
        Err(LiveRecordingError::NotAnswered)
    );
    c.hang_up("AC0001", &sid, HangUpMode::Cancel, now).unwrap();
    let (requests, responses, statuses) = after_hang_up(&mut c);
    assert!(requests.is_empty(), "{requests:?}");
    assert_eq!(responses, vec![487]);
    assert_eq!(statuses, vec!["canceled"]);
    assert_eq!(c.stats().active_calls, 0);
}

#[test]
fn the_api_hangs_up_a_dialled_leg_and_the_script_goes_on() {
    let now = Instant::now();
    let mut c = core(now);
    let call = running_call(
        &mut c,
        now,
        "<Response><Dial action=\"/after\"><Sip>sip:jack@198.51.100.20</Sip></Dial></Response>",
    );
    let mut invite_sent = None;
    let mut leg_sid = None;
    while let Some(o) = c.poll_output() {
        match o {
            Output::Transmit(t) if t.bytes.starts_with(b"INVITE ") => invite_sent = Some(t),
            Output::Effect(Effect::CallStatus(u)) if u.parent_call_sid.is_some() => {
                leg_sid = Some(u.call_sid);
            }
            _ => {}
        }
    }
    let out = invite_sent.expect("the dial INVITE");
    let leg_sid = leg_sid.expect("the leg's ledger entry");
    let SipMessage::Request(req) = SipMessage::parse(&out.bytes, &ParseLimits::default()).unwrap()
    else {
        panic!()
    };
    answer_dial(&mut c, &req, out.destination, now);
    drain(&mut c);
    let parent = c.call_sid(call).unwrap().to_owned();
    assert_ne!(parent, leg_sid);
    c.hang_up("AC0001", &leg_sid, HangUpMode::Complete, now)
        .unwrap();
    let mut bye_to = None;
    let mut action = None;
    while let Some(o) = c.poll_output() {
        match o {
            Output::Transmit(t) if t.bytes.starts_with(b"BYE ") => bye_to = Some(t.destination),
            Output::Effect(Effect::Webhook(w)) => action = Some(w),
            _ => {}
        }
    }
    assert_eq!(bye_to, Some(out.destination), "the callee gets the BYE");
    let action = action.expect("the dial action");
    assert!(action.url.as_str().ends_with("/after"));
    assert!(
        action
            .params
            .contains(&("DialCallStatus".into(), "completed".into()))
    );
    assert_eq!(c.stats().active_calls, 1, "the caller's call goes on");
}

/// `<Sip statusCallback>` events travel with the dialled leg's row changes (the ledger queues
/// them in the outbox with the row: signed, retried, in order); none is sent directly.
#[test]
fn a_dialled_legs_progress_events_ride_its_row_changes() {
    let now = Instant::now();
    let mut c = core(now);
    running_call(
        &mut c,
        now,
        "<Response><Dial><Sip statusCallback=\"https://hooks.example.com/leg\" \
         statusCallbackEvent=\"initiated ringing answered completed\">sip:jack@198.51.100.20</Sip>\
         </Dial></Response>",
    );
    let mut leg_updates = Vec::new();
    let mut direct = 0;
    // What went out: the leg's row changes kept, status webhooks to the leg's URL counted,
    // the dial INVITE returned.
    fn collect(
        c: &mut CallCore,
        leg_updates: &mut Vec<mediaseal_call::CallUpdate>,
        direct: &mut usize,
    ) -> Option<mediaseal_sip::transaction::Transmit> {
        let mut invite = None;
        while let Some(o) = c.poll_output() {
            match o {
                Output::Transmit(t) if t.bytes.starts_with(b"INVITE ") => invite = Some(t),
                Output::Effect(Effect::CallStatus(u)) if u.parent_call_sid.is_some() => {
                    leg_updates.push(u);
                }
                Output::Effect(Effect::Webhook(w)) if w.url.path() == "/leg" => *direct += 1,
                _ => {}
            }
        }
        invite
    }
    let out = collect(&mut c, &mut leg_updates, &mut direct).expect("the dial INVITE");
    let SipMessage::Request(req) = SipMessage::parse(&out.bytes, &ParseLimits::default()).unwrap()
    else {
        panic!()
    };
    let ringing =
        Response::for_request(&req, mediaseal_sip::message::StatusCode::RINGING).with_to_tag("jt");
    c.handle_message(
        SipMessage::Response(ringing),
        Transport::Udp,
        out.destination,
        now,
    );
    collect(&mut c, &mut leg_updates, &mut direct);
    answer_dial(&mut c, &req, out.destination, now);
    collect(&mut c, &mut leg_updates, &mut direct);
    let leg_sid = leg_updates[0].call_sid.clone();
    let later = now + Duration::from_secs(7);
    c.hang_up("AC0001", &leg_sid, HangUpMode::Complete, later)
        .unwrap();
    collect(&mut c, &mut leg_updates, &mut direct);

    assert_eq!(direct, 0, "no status callback outside the outbox");
    let statuses: Vec<_> = leg_updates.iter().map(|u| u.status).collect();
    assert_eq!(statuses, ["queued", "ringing", "in-progress", "completed"]);
    let events: Vec<String> = leg_updates
        .iter()
        .map(|u| {
            let cb = u
                .status_callback
                .as_ref()
                .expect("each change carries its event");
            assert_eq!(cb.url.as_str(), "https://hooks.example.com/leg");
            let param = |name: &str| {
                cb.params
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            assert_eq!(param("CallSid"), leg_sid);
            assert_eq!(param("CallbackSource"), "call-progress-events");
            format!("{}#{}", param("CallStatus"), param("SequenceNumber"))
        })
        .collect();
    assert_eq!(
        events,
        ["initiated#0", "ringing#1", "in-progress#2", "completed#3"]
    );
    let last = leg_updates[3].status_callback.as_ref().unwrap();
    assert!(last.params.contains(&("CallDuration".into(), "7".into())));
    assert_eq!(leg_updates[3].duration_secs, Some(7));
}

#[test]
fn the_api_records_a_live_call_until_stopped_or_hung_up() {
    let now = Instant::now();
    let mut c = core(now);
    let options = || ApiRecording {
        layout: Layout::Dual,
        tracks: TapTracks::Both,
        trim: mediaseal_twiml::Trim::DoNotTrim,
        status_callback: None,
    };
    let call = running_call(
        &mut c,
        now,
        "<Response><Say>hello</Say><Pause length=\"30\"/></Response>",
    );
    drain(&mut c);
    let sid = c.call_sid(call).unwrap().to_owned();
    assert_eq!(
        c.start_api_recording("AC9999", &sid, options(), now),
        Err(LiveRecordingError::NotLive)
    );
    let (_, rec) = c
        .start_api_recording("AC0001", &sid, options(), now)
        .unwrap();
    let started = drain(&mut c)
        .effects
        .into_iter()
        .find_map(|e| match e {
            Effect::StartRecording(r) => Some(r),
            _ => None,
        })
        .expect("a recording start");
    assert_eq!(started.source, RecordingSource::StartCallRecordingApi);
    assert_eq!(started.source.as_str(), "StartCallRecordingAPI");
    assert_eq!(started.layout, Layout::Dual);
    assert_eq!(started.call_sid, sid);
    assert_eq!(
        c.start_api_recording("AC0001", &sid, options(), now),
        Err(LiveRecordingError::Busy),
        "one recording at a time"
    );
    c.control_api_recording("AC0001", &sid, rec, RecordingControl::Pause, now)
        .unwrap();
    assert!(drain(&mut c).effects.iter().any(|e| matches!(
        e,
        Effect::PauseRecording { recording, paused: true, .. } if *recording == rec
    )));
    c.control_api_recording("AC0001", &sid, rec, RecordingControl::Stop, now)
        .unwrap();
    assert!(drain(&mut c).effects.iter().any(|e| matches!(
        e,
        Effect::StopRecording { recording, .. } if *recording == rec
    )));
    assert_eq!(
        c.control_api_recording("AC0001", &sid, rec, RecordingControl::Resume, now),
        Err(LiveRecordingError::NotRecording),
        "stopping"
    );
    c.recording_finished(call, rec, None, now);
    drain(&mut c);

    // A second recording runs until the API hangs up: the call is released only once the
    // recording is stored.
    let (_, rec2) = c
        .start_api_recording("AC0001", &sid, options(), now)
        .unwrap();
    drain(&mut c);
    c.hang_up("AC0001", &sid, HangUpMode::Complete, now)
        .unwrap();
    let d = drain(&mut c);
    assert!(d.effects.iter().any(|e| matches!(
        e,
        Effect::StopRecording { recording, .. } if *recording == rec2
    )));
    assert!(
        !d.effects
            .iter()
            .any(|e| matches!(e, Effect::CallStatus(u) if u.status == "completed")),
        "released before the recording is stored"
    );
    c.recording_finished(call, rec2, None, now);
    let d = drain(&mut c);
    assert!(
        d.effects
            .iter()
            .any(|e| matches!(e, Effect::CallStatus(u) if u.status == "completed"))
    );
    assert_eq!(c.stats().active_calls, 0);
}

/// `<Sip username password>` over TCP: the callee's 407 is answered with one INVITE carrying
/// the credentials, though a reliable transport's client transaction ends with its final
/// response.
#[test]
fn a_dialled_leg_over_tcp_answers_a_digest_challenge() {
    use mediaseal_sip::auth::{ChallengeKind, DigestAlgorithm, DigestServer};
    let now = Instant::now();
    let mut c = core(now);
    running_call(
        &mut c,
        now,
        "<Response><Dial><Sip username=\"jack\" password=\"s3cret\">sip:jack@198.51.100.20;transport=tcp</Sip></Dial></Response>",
    );
    let invites = |c: &mut CallCore| {
        let mut sent = Vec::new();
        while let Some(o) = c.poll_output() {
            if let Output::Transmit(t) = o
                && let Ok(SipMessage::Request(r)) =
                    SipMessage::parse(&t.bytes, &ParseLimits::default())
                && r.method.to_string() == "INVITE"
            {
                sent.push((r, t.destination, t.transport));
            }
        }
        sent
    };
    let (invite, dest, transport) = invites(&mut c).pop().expect("the dial INVITE");
    assert_eq!(transport, Transport::Tcp);
    let callee = DigestServer::new(b"callee secret", now, Duration::from_secs(30));
    let challenge = callee.challenge_response(
        &invite,
        ChallengeKind::Proxy,
        "callee.example.test",
        &[DigestAlgorithm::Md5],
        dest.ip(),
        now,
        false,
        "jt",
    );
    c.handle_message(SipMessage::Response(challenge), transport, dest, now);
    let retry = invites(&mut c);
    assert_eq!(retry.len(), 1, "one INVITE with credentials");
    let (retry, retry_dest, _) = &retry[0];
    assert_eq!(*retry_dest, dest);
    let creds = DigestServer::credentials(retry, ChallengeKind::Proxy, "callee.example.test")
        .expect("Proxy-Authorization");
    let password =
        mediaseal_sip::auth::StoredCredential::Password(zeroize::Zeroizing::new("s3cret".into()));
    callee
        .verify(retry, &creds, &password, dest.ip(), now)
        .expect("the callee accepts it");
}
