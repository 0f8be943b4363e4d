//! Calls the API places (`POST …/Calls.json`) through the call core, sans-IO: the INVITE that
//! goes out, the answer that starts the script on that leg, and the final status of a call
//! that is busy, unanswered or answered without the media it was offered.

#![allow(clippy::disallowed_methods)] // tests read the clock for an epoch

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mediaseal_call::b2bua::Output;
use mediaseal_call::{CallCore, CoreConfig, Effect, MediaCommand, MediaEvent, Originate, Side};
use mediaseal_sip::message::{ParseLimits, Request, Response, SipMessage, StatusCode, Transport};
use mediaseal_twiml::{CallProgressEvents, Callback, FetchTarget, HttpMethod, Script, SipUri};

const KEY: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";

fn core(now: Instant) -> CallCore {
    let mut c = CoreConfig::new([127, 0, 0, 1].into(), 5060, 5061, "sip.example.test");
    c.rtp_ports = 40000..=40009;
    CallCore::new(c, now).unwrap()
}

fn request(to: &str, script: Script) -> Originate {
    Originate {
        account_sid: "AC0001".into(),
        to: SipUri::parse(to).unwrap(),
        from: "+15550001111".into(),
        caller_id: None,
        script,
        fallback: None,
        status_callback: Some(Callback {
            target: FetchTarget {
                url: "https://app.example.test/status".parse().unwrap(),
                method: HttpMethod::Post,
            },
            events: CallProgressEvents {
                initiated: true,
                ringing: true,
                answered: true,
                completed: true,
            },
        }),
        timeout: Duration::from_secs(30),
        time_limit: Duration::from_secs(14_400),
        recording: None,
        send_digits: None,
        sip_auth: None,
    }
}

/// What came out: SIP requests sent (with their destination and transport), effects.
#[derive(Default)]
struct Out {
    requests: Vec<(Request, SocketAddr, Transport)>,
    effects: Vec<Effect>,
}

impl Out {
    fn statuses(&self) -> Vec<&'static str> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::CallStatus(u) => Some(u.status),
                _ => None,
            })
            .collect()
    }

    fn methods(&self) -> Vec<String> {
        self.requests
            .iter()
            .map(|(r, _, _)| r.method.to_string())
            .collect()
    }

    /// The `CallStatus` of each `StatusCallback`, all of which travel with a status change
    /// (the ledger queues them in the durable outbox); none is a best-effort webhook.
    fn callbacks(&self) -> Vec<String> {
        assert!(
            !self.effects.iter().any(|e| matches!(
                e,
                Effect::Webhook(w) if w.kind != mediaseal_call::WebhookKind::Twiml
                    && w.params.iter().any(|(k, _)| k == "CallbackSource")
            )),
            "a status callback was sent outside the outbox"
        );
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::CallStatus(u) => u.status_callback.as_ref().and_then(|cb| {
                    let param = |name: &str| {
                        cb.params
                            .iter()
                            .find(|(k, _)| k == name)
                            .map(|(_, v)| v.clone())
                    };
                    Some(format!(
                        "{}#{}",
                        param("CallStatus")?,
                        param("SequenceNumber")?
                    ))
                }),
                _ => None,
            })
            .collect()
    }
}

fn drain(c: &mut CallCore) -> Out {
    let mut out = Out::default();
    while let Some(o) = c.poll_output() {
        match o {
            Output::Transmit(t) => {
                if let Ok(SipMessage::Request(r)) =
                    SipMessage::parse(&t.bytes, &ParseLimits::default())
                {
                    out.requests.push((r, t.destination, t.transport));
                }
            }
            Output::Effect(e) => out.effects.push(e),
        }
    }
    out
}

fn answer_sdp(proto: &str, crypto: &str) -> Vec<u8> {
    let crypto = if crypto.is_empty() {
        String::new()
    } else {
        format!("a=crypto:{crypto}\r\n")
    };
    format!(
        "v=0\r\no=- 2 2 IN IP4 198.51.100.20\r\ns=-\r\nc=IN IP4 198.51.100.20\r\nt=0 0\r\n\
         m=audio 4100 {proto} 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n{crypto}"
    )
    .into_bytes()
}

fn respond(
    c: &mut CallCore,
    invite: &Request,
    status: StatusCode,
    body: Option<Vec<u8>>,
    from: SocketAddr,
    transport: Transport,
    now: Instant,
) {
    let mut r = Response::for_request(invite, status).with_to_tag("callee");
    if let Some(b) = body {
        r = r
            .with_header(
                mediaseal_sip::message::HeaderName::CONTACT,
                "<sip:jack@198.51.100.20:5061;transport=tls>",
            )
            .with_body("application/sdp", b);
    }
    c.handle_message(SipMessage::Response(r), transport, from, now);
}

#[test]
fn a_secure_api_call_invites_over_tls_with_one_80_line_then_runs_its_url_on_answer() {
    let t0 = Instant::now();
    let mut c = core(t0);
    let url: url::Url = "https://app.example.test/outbound".parse().unwrap();
    let (call, sid) = c
        .originate(
            request(
                "sip:jack@198.51.100.20;secure=true",
                Script::Fetch(FetchTarget {
                    url: url.clone(),
                    method: HttpMethod::Post,
                }),
            ),
            t0,
        )
        .unwrap();
    assert!(sid.starts_with("CA") && sid.len() == 34);
    let out = drain(&mut c);
    assert_eq!(out.statuses(), vec!["queued"]);
    assert!(out.effects.iter().any(
        |e| matches!(e, Effect::TlsServerName { server_name, .. } if server_name == "198.51.100.20")
    ));
    assert!(out.effects.iter().any(|e| matches!(
        e,
        Effect::Media(MediaCommand::OpenLeg {
            side: Side::Caller,
            ..
        })
    )));
    assert_eq!(out.callbacks(), vec!["initiated#0"]);
    let (invite, dest, transport) = out.requests.into_iter().next().expect("the INVITE");
    assert_eq!(invite.method.to_string(), "INVITE");
    assert_eq!(transport, Transport::Tls);
    assert_eq!(dest, "198.51.100.20:5061".parse().unwrap());
    let sdp = String::from_utf8(invite.body.clone()).unwrap();
    assert!(sdp.contains("RTP/SAVP"), "{sdp}");
    let crypto: Vec<&str> = sdp.lines().filter(|l| l.starts_with("a=crypto:")).collect();
    assert_eq!(crypto.len(), 1, "{sdp}");
    assert!(crypto[0].contains(" AES_CM_128_HMAC_SHA1_80 inline:"));
    assert!(
        !crypto[0].contains('|'),
        "no MKI or lifetime: {}",
        crypto[0]
    );
    assert!(!invite.uri.to_string().contains("secure"));
    // Nothing is fetched before the answer.
    assert!(
        !drain(&mut c)
            .effects
            .iter()
            .any(|e| matches!(e, Effect::Webhook(_)))
    );

    respond(
        &mut c,
        &invite,
        StatusCode::RINGING,
        None,
        dest,
        transport,
        t0,
    );
    let out = drain(&mut c);
    assert_eq!(out.statuses(), vec!["ringing"]);
    assert_eq!(out.callbacks(), vec!["ringing#1"]);

    let body = answer_sdp(
        "RTP/SAVP",
        &format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}"),
    );
    respond(
        &mut c,
        &invite,
        StatusCode::OK,
        Some(body),
        dest,
        transport,
        t0,
    );
    let out = drain(&mut c);
    assert_eq!(out.methods(), vec!["ACK"]);
    assert_eq!(out.statuses(), vec!["in-progress"]);
    assert_eq!(out.callbacks(), vec!["in-progress#2"]);
    let configured = out.effects.iter().find_map(|e| match e {
        Effect::Media(MediaCommand::ConfigureLeg {
            side: Side::Caller,
            setup,
            ..
        }) => Some(setup),
        _ => None,
    });
    let setup = configured.expect("the leg is configured from the answer");
    assert!(setup.srtp.is_some());
    assert_eq!(setup.payload_type, 8, "the callee's codec (PCMA) is kept");
    let fetch = out
        .effects
        .iter()
        .find_map(|e| match e {
            Effect::Webhook(w) if w.kind == mediaseal_call::WebhookKind::Twiml => Some(w.clone()),
            _ => None,
        })
        .expect("the Url is fetched once answered");
    assert_eq!(fetch.url, url);
    assert_eq!(fetch.account_sid, "AC0001");
    for p in [
        ("Direction", "outbound-api"),
        ("CallStatus", "in-progress"),
        ("CallSid", sid.as_str()),
        ("From", "+15550001111"),
        ("To", "sip:jack@198.51.100.20;secure=true"),
    ] {
        assert!(
            fetch.params.contains(&(p.0.to_owned(), p.1.to_owned())),
            "{p:?} in {:?}",
            fetch.params
        );
    }
    assert!(!fetch.params.iter().any(|(k, _)| k == "SipDomain"));

    // The script runs on that leg: <Say> plays, then the call ends with a BYE.
    c.webhook_done(
        call,
        fetch.fetch,
        Ok(b"<Response><Say>Hello</Say><Hangup/></Response>".to_vec()),
        t0,
    );
    let out = drain(&mut c);
    assert!(
        out.effects
            .iter()
            .any(|e| matches!(e, Effect::Media(MediaCommand::Play { .. })))
    );
    c.media_event(call, MediaEvent::PlaybackDone, t0 + Duration::from_secs(3));
    let out = drain(&mut c);
    assert_eq!(out.methods(), vec!["BYE"]);
    let done = out
        .effects
        .iter()
        .find_map(|e| match e {
            Effect::CallStatus(u) => Some(u.clone()),
            _ => None,
        })
        .expect("the final status");
    assert_eq!(done.status, "completed");
    assert_eq!(done.direction, "outbound-api");
    assert_eq!(done.duration_secs, Some(3));
    let cb = done
        .status_callback
        .expect("the completed callback travels with the row");
    assert_eq!(cb.url.as_str(), "https://app.example.test/status");
    assert!(
        cb.params
            .contains(&("Direction".into(), "outbound-api".into()))
    );
    assert_eq!(
        out.callbacks(),
        vec!["completed#3"],
        "the last of the sequence"
    );
}

#[test]
fn inline_twiml_runs_without_a_fetch() {
    let t0 = Instant::now();
    let mut c = core(t0);
    let doc = mediaseal_twiml::Response::parse(b"<Response><Hangup/></Response>").unwrap();
    c.originate(request("sip:jack@198.51.100.20", Script::Inline(doc)), t0)
        .unwrap();
    let out = drain(&mut c);
    let (invite, dest, transport) = out.requests.into_iter().next().unwrap();
    assert_eq!(transport, Transport::Udp);
    assert_eq!(dest, "198.51.100.20:5060".parse().unwrap());
    assert!(!String::from_utf8_lossy(&invite.body).contains("a=crypto"));
    respond(
        &mut c,
        &invite,
        StatusCode::OK,
        Some(answer_sdp("RTP/AVP", "")),
        dest,
        transport,
        t0,
    );
    let out = drain(&mut c);
    assert_eq!(out.methods(), vec!["ACK", "BYE"]);
    assert!(
        !out.effects.iter().any(
            |e| matches!(e, Effect::Webhook(w) if w.kind == mediaseal_call::WebhookKind::Twiml)
        )
    );
    assert_eq!(out.statuses(), vec!["in-progress", "completed"]);
}

fn final_status_after(status: StatusCode) -> (Vec<&'static str>, bool) {
    let t0 = Instant::now();
    let mut c = core(t0);
    c.originate(
        request(
            "sip:jack@198.51.100.20",
            Script::Fetch(FetchTarget {
                url: "https://app.example.test/outbound".parse().unwrap(),
                method: HttpMethod::Post,
            }),
        ),
        t0,
    )
    .unwrap();
    let (invite, dest, transport) = drain(&mut c).requests.into_iter().next().unwrap();
    respond(&mut c, &invite, status, None, dest, transport, t0);
    let out = drain(&mut c);
    let fetched = out
        .effects
        .iter()
        .any(|e| matches!(e, Effect::Webhook(w) if w.kind == mediaseal_call::WebhookKind::Twiml));
    (out.statuses(), fetched)
}

#[test]
fn busy_declined_and_unavailable_callees_end_the_call_without_a_fetch() {
    assert_eq!(
        final_status_after(StatusCode::BUSY_HERE),
        (vec!["busy"], false)
    );
    assert_eq!(
        final_status_after(StatusCode::TEMPORARILY_UNAVAILABLE),
        (vec!["no-answer"], false)
    );
    assert_eq!(
        final_status_after(StatusCode::DECLINE),
        (vec!["failed"], false)
    );
}

#[test]
fn an_unanswered_call_is_cancelled_at_its_timeout() {
    let t0 = Instant::now();
    let mut c = core(t0);
    let mut req = request(
        "sip:jack@198.51.100.20",
        Script::Fetch(FetchTarget {
            url: "https://app.example.test/outbound".parse().unwrap(),
            method: HttpMethod::Post,
        }),
    );
    req.timeout = Duration::from_secs(5);
    c.originate(req, t0).unwrap();
    let (invite, dest, transport) = drain(&mut c).requests.into_iter().next().unwrap();
    respond(
        &mut c,
        &invite,
        StatusCode::RINGING,
        None,
        dest,
        transport,
        t0,
    );
    drain(&mut c);
    c.handle_timeout(t0 + Duration::from_secs(6));
    let out = drain(&mut c);
    assert!(
        out.methods().contains(&"CANCEL".to_owned()),
        "{:?}",
        out.methods()
    );
    assert_eq!(out.statuses(), vec!["no-answer"]);
    assert_eq!(c.stats().active_calls, 0);
}

#[test]
fn a_secure_call_answered_with_plain_rtp_is_hung_up_failed() {
    let t0 = Instant::now();
    let mut c = core(t0);
    c.originate(
        request(
            "sip:jack@198.51.100.20;secure=true",
            Script::Fetch(FetchTarget {
                url: "https://app.example.test/outbound".parse().unwrap(),
                method: HttpMethod::Post,
            }),
        ),
        t0,
    )
    .unwrap();
    let (invite, dest, transport) = drain(&mut c).requests.into_iter().next().unwrap();
    respond(
        &mut c,
        &invite,
        StatusCode::OK,
        Some(answer_sdp("RTP/AVP", "")),
        dest,
        transport,
        t0,
    );
    let out = drain(&mut c);
    assert_eq!(out.methods(), vec!["ACK", "BYE"]);
    assert_eq!(out.statuses(), vec!["failed"]);
    assert!(
        !out.effects.iter().any(
            |e| matches!(e, Effect::Webhook(w) if w.kind == mediaseal_call::WebhookKind::Twiml)
        )
    );
}

#[test]
fn the_api_cancels_a_ringing_api_call() {
    let t0 = Instant::now();
    let mut c = core(t0);
    let (_, sid) = c
        .originate(
            request(
                "sip:jack@198.51.100.20",
                Script::Fetch(FetchTarget {
                    url: "https://app.example.test/outbound".parse().unwrap(),
                    method: HttpMethod::Post,
                }),
            ),
            t0,
        )
        .unwrap();
    let (invite, dest, transport) = drain(&mut c).requests.into_iter().next().unwrap();
    respond(
        &mut c,
        &invite,
        StatusCode::RINGING,
        None,
        dest,
        transport,
        t0,
    );
    drain(&mut c);
    assert_eq!(
        c.hang_up("AC0002", &sid, mediaseal_call::HangUpMode::Complete, t0),
        Err(mediaseal_call::HangUpError::NotLive),
        "another account's call is not found"
    );
    c.hang_up("AC0001", &sid, mediaseal_call::HangUpMode::Cancel, t0)
        .unwrap();
    let out = drain(&mut c);
    assert_eq!(out.methods(), vec!["CANCEL"]);
    assert_eq!(out.statuses(), vec!["canceled"]);
}

fn inline(doc: &str) -> Script {
    Script::Inline(mediaseal_twiml::Response::parse(doc.as_bytes()).unwrap())
}

fn plays(out: &Out) -> Vec<mediaseal_call::Prompt> {
    out.effects
        .iter()
        .filter_map(|e| match e {
            Effect::Media(MediaCommand::Play { prompts, .. }) => Some(prompts.clone()),
            _ => None,
        })
        .flatten()
        .map(|(p, _)| p)
        .collect()
}

/// An answered plain call placed with `req`; the INVITE's destination.
fn answered(
    c: &mut CallCore,
    req: Originate,
    t0: Instant,
) -> (mediaseal_call::CallId, String, Out) {
    let (call, sid) = c.originate(req, t0).unwrap();
    let (invite, dest, transport) = drain(c).requests.into_iter().next().unwrap();
    respond(
        c,
        &invite,
        StatusCode::OK,
        Some(answer_sdp("RTP/AVP", "")),
        dest,
        transport,
        t0,
    );
    (call, sid, drain(c))
}

#[test]
fn record_and_send_digits_start_at_the_answer_and_a_redirect_replaces_the_script() {
    use mediaseal_call::recording::{Layout, TapTracks};
    use mediaseal_call::{ApiRecording, Prompt, RecordingSource};

    let t0 = Instant::now();
    let mut c = core(t0);
    let mut req = request(
        "sip:jack@198.51.100.20",
        inline("<Response><Say>Hello</Say><Pause length=\"60\"/></Response>"),
    );
    req.recording = Some(ApiRecording {
        layout: Layout::Dual,
        tracks: TapTracks::Both,
        trim: mediaseal_twiml::Trim::DoNotTrim,
        status_callback: None,
    });
    req.send_digits = Some("1w2#".into());
    let (call, sid, out) = answered(&mut c, req, t0);
    let started = out
        .effects
        .iter()
        .find_map(|e| match e {
            Effect::StartRecording(r) => Some(r.clone()),
            _ => None,
        })
        .expect("Record=true records from the answer");
    assert_eq!(started.source, RecordingSource::OutboundApi);
    assert_eq!(started.source.as_str(), "OutboundAPI");
    assert_eq!(started.layout, Layout::Dual);
    assert_eq!(started.call_sid, sid);
    // The digits go first; the script waits for them.
    assert_eq!(plays(&out), vec![Prompt::Digits("1w2#".into())]);
    c.media_event(call, MediaEvent::PlaybackDone, t0);
    let out = drain(&mut c);
    assert!(
        matches!(plays(&out).as_slice(), [Prompt::Say { text, .. }] if text == "Hello"),
        "{:?}",
        plays(&out)
    );

    // Redirected mid-<Say>: the prompt stops and the new TwiML runs: its <Hangup/> ends the
    // call, which (as for any ending) first stores the recording, then sends the BYE.
    assert_eq!(
        c.redirect(
            "AC0002",
            &sid,
            mediaseal_call::Redirect {
                script: inline("<Response><Hangup/></Response>"),
                fallback: None,
            },
            t0
        ),
        Err(mediaseal_call::RedirectError::NotLive),
        "another account's call is not found"
    );
    c.redirect(
        "AC0001",
        &sid,
        mediaseal_call::Redirect {
            script: inline("<Response><Hangup/></Response>"),
            fallback: None,
        },
        t0 + Duration::from_secs(2),
    )
    .unwrap();
    let out = drain(&mut c);
    assert!(
        out.effects
            .iter()
            .any(|e| matches!(e, Effect::Media(MediaCommand::StopPlayback { .. })))
    );
    assert!(out.effects.iter().any(
        |e| matches!(e, Effect::StopRecording { recording, .. } if *recording == started.recording)
    ));
    // The callee is hung up on now; the call is released once the recording is stored.
    assert_eq!(out.methods(), vec!["BYE"]);
    assert!(out.statuses().is_empty(), "{:?}", out.statuses());
    c.recording_finished(call, started.recording, None, t0 + Duration::from_secs(9));
    let out = drain(&mut c);
    assert!(out.methods().is_empty(), "{:?}", out.methods());
    assert_eq!(out.statuses(), vec!["completed"]);
    let completed = out
        .effects
        .iter()
        .find_map(|e| match e {
            Effect::CallStatus(u) if u.status == "completed" => Some(u.duration_secs),
            _ => None,
        })
        .flatten();
    assert_eq!(
        completed,
        Some(2),
        "the call ended at the hang-up, not at the store"
    );
    assert_eq!(c.stats().active_calls, 0);
}

#[test]
fn a_redirect_during_a_dial_hangs_up_the_dialled_leg_and_skips_its_action() {
    let t0 = Instant::now();
    let mut c = core(t0);
    let (call, sid, out) = answered(
        &mut c,
        request(
            "sip:jack@198.51.100.20",
            inline(
                "<Response><Dial action=\"https://app.example.test/after\">\
                 <Sip>sip:bob@198.51.100.30</Sip></Dial></Response>",
            ),
        ),
        t0,
    );
    let (dial_invite, dial_dest, dial_transport) = out
        .requests
        .into_iter()
        .find(|(r, _, _)| r.method.to_string() == "INVITE")
        .expect("the dial's INVITE");
    assert_eq!(dial_dest, "198.51.100.30:5060".parse().unwrap());
    respond(
        &mut c,
        &dial_invite,
        StatusCode::OK,
        Some(answer_sdp("RTP/AVP", "")),
        dial_dest,
        dial_transport,
        t0,
    );
    let out = drain(&mut c);
    let leg_sid = out
        .effects
        .iter()
        .find_map(|e| match e {
            Effect::CallStatus(u) if u.parent_call_sid.as_deref() == Some(sid.as_str()) => {
                Some(u.call_sid.clone())
            }
            _ => None,
        })
        .expect("the dialled leg's row");
    let next: url::Url = "https://app.example.test/next".parse().unwrap();
    let to_next = || mediaseal_call::Redirect {
        script: Script::Fetch(FetchTarget {
            url: next.clone(),
            method: HttpMethod::Post,
        }),
        fallback: None,
    };
    assert_eq!(
        c.redirect("AC0001", &leg_sid, to_next(), t0),
        Err(mediaseal_call::RedirectError::DialledLeg)
    );
    c.redirect("AC0001", &sid, to_next(), t0).unwrap();
    let out = drain(&mut c);
    let byes: Vec<SocketAddr> = out
        .requests
        .iter()
        .filter(|(r, _, _)| r.method.to_string() == "BYE")
        .map(|(_, d, _)| *d)
        .collect();
    assert_eq!(byes, vec![dial_dest], "only the dialled leg is hung up");
    let fetches: Vec<(url::Url, mediaseal_call::FetchId)> = out
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Webhook(w) => Some((w.url.clone(), w.fetch)),
            _ => None,
        })
        .collect();
    assert_eq!(fetches.len(), 1, "{fetches:?}");
    assert_eq!(fetches[0].0, next, "the new Url, not the dial's action");
    c.webhook_done(
        call,
        fetches[0].1,
        Ok(b"<Response><Hangup/></Response>".to_vec()),
        t0,
    );
    let out = drain(&mut c);
    let byes: Vec<SocketAddr> = out
        .requests
        .iter()
        .filter(|(r, _, _)| r.method.to_string() == "BYE")
        .map(|(_, d, _)| *d)
        .collect();
    assert_eq!(byes, vec!["198.51.100.20:5060".parse().unwrap()]);
    assert_eq!(out.statuses(), vec!["completed"]);
}

#[test]
fn sip_auth_answers_the_callees_digest_challenge_once() {
    use mediaseal_sip::auth::{ChallengeKind, DigestAlgorithm, DigestServer, StoredCredential};
    let t0 = Instant::now();
    let callee = DigestServer::new(b"callee secret", t0, Duration::from_secs(30));
    let realm = "callee.example.test";
    let script = || {
        Script::Fetch(FetchTarget {
            url: "https://app.example.test/outbound".parse().unwrap(),
            method: HttpMethod::Post,
        })
    };
    let challenge = |invite: &Request, kind: ChallengeKind, dest: SocketAddr| {
        callee.challenge_response(
            invite,
            kind,
            realm,
            &[DigestAlgorithm::Md5],
            dest.ip(),
            t0,
            false,
            "callee",
        )
    };

    // With credentials: the 407 is answered with one INVITE carrying them, which the callee's
    // verifier accepts, and the call goes on to its answer.
    let mut c = core(t0);
    let mut req = request("sip:jack@198.51.100.20", script());
    req.sip_auth = Some((
        "jack".into(),
        mediaseal_twiml::SipPassword::new("s3cret".into()),
    ));
    c.originate(req, t0).unwrap();
    let (invite, dest, transport) = drain(&mut c).requests.into_iter().next().unwrap();
    assert!(
        invite
            .headers
            .get(&mediaseal_sip::message::HeaderName::PROXY_AUTHORIZATION)
            .is_none()
    );
    let r = challenge(&invite, ChallengeKind::Proxy, dest);
    c.handle_message(SipMessage::Response(r), transport, dest, t0);
    let out = drain(&mut c);
    assert_eq!(out.methods(), vec!["ACK", "INVITE"]);
    assert!(out.statuses().is_empty(), "{:?}", out.statuses());
    let (retry, retry_dest, _) = out.requests.into_iter().nth(1).unwrap();
    assert_eq!(retry_dest, dest);
    assert_eq!(
        retry.headers.cseq().unwrap().seq,
        invite.headers.cseq().unwrap().seq + 1
    );
    let creds = DigestServer::credentials(&retry, ChallengeKind::Proxy, realm).expect("creds");
    assert_eq!(creds.username, "jack");
    let password = StoredCredential::Password(zeroize::Zeroizing::new("s3cret".into()));
    callee
        .verify(&retry, &creds, &password, dest.ip(), t0)
        .expect("the callee accepts the digest");
    let wrong = StoredCredential::Password(zeroize::Zeroizing::new("other".into()));
    assert!(
        callee
            .verify(&retry, &creds, &wrong, dest.ip(), t0)
            .is_err()
    );
    respond(
        &mut c,
        &retry,
        StatusCode::OK,
        Some(answer_sdp("RTP/AVP", "")),
        dest,
        transport,
        t0,
    );
    assert_eq!(drain(&mut c).statuses(), vec!["in-progress"]);

    // A second challenge (wrong password) ends the call `failed`, without a third INVITE.
    let mut c = core(t0);
    let mut req = request("sip:jack@198.51.100.20", script());
    req.sip_auth = Some((
        "jack".into(),
        mediaseal_twiml::SipPassword::new("wrong".into()),
    ));
    c.originate(req, t0).unwrap();
    let (invite, dest, transport) = drain(&mut c).requests.into_iter().next().unwrap();
    let r = challenge(&invite, ChallengeKind::Www, dest);
    c.handle_message(SipMessage::Response(r), transport, dest, t0);
    let (retry, _, _) = drain(&mut c).requests.into_iter().nth(1).unwrap();
    assert!(
        retry
            .headers
            .get(&mediaseal_sip::message::HeaderName::AUTHORIZATION)
            .is_some()
    );
    let r = challenge(&retry, ChallengeKind::Www, dest);
    c.handle_message(SipMessage::Response(r), transport, dest, t0);
    let out = drain(&mut c);
    assert_eq!(out.methods(), vec!["ACK"]);
    assert_eq!(out.statuses(), vec!["failed"]);

    // Without credentials a challenge ends the call at once.
    let mut c = core(t0);
    c.originate(request("sip:jack@198.51.100.20", script()), t0)
        .unwrap();
    let (invite, dest, transport) = drain(&mut c).requests.into_iter().next().unwrap();
    let r = challenge(&invite, ChallengeKind::Www, dest);
    c.handle_message(SipMessage::Response(r), transport, dest, t0);
    let out = drain(&mut c);
    assert_eq!(out.methods(), vec!["ACK"]);
    assert_eq!(out.statuses(), vec!["failed"]);
}

#[test]
fn an_answered_api_call_is_hung_up_at_its_time_limit() {
    let t0 = Instant::now();
    let mut c = core(t0);
    let mut req = request(
        "sip:jack@198.51.100.20",
        inline("<Response><Pause length=\"60\"/></Response>"),
    );
    req.time_limit = Duration::from_secs(10);
    let (_call, _sid, out) = answered(&mut c, req, t0);
    assert_eq!(out.statuses(), vec!["in-progress"]);
    // Still within its limit: nothing happens.
    c.handle_timeout(t0 + Duration::from_secs(9));
    let out = drain(&mut c);
    assert!(
        !out.methods().contains(&"BYE".to_owned()),
        "{:?}",
        out.methods()
    );
    assert!(out.statuses().is_empty(), "{:?}", out.statuses());
    // Past it: our BYE, and the call ends `completed` long before its 60 s pause would.
    c.handle_timeout(t0 + Duration::from_secs(11));
    let out = drain(&mut c);
    let (bye, dest, transport) = out
        .requests
        .iter()
        .find(|(r, _, _)| r.method.as_str() == "BYE")
        .cloned()
        .unwrap_or_else(|| panic!("no BYE at the time limit: {:?}", out.methods()));
    let mut statuses = out.statuses();
    let ok = Response::for_request(&bye, StatusCode::OK);
    c.handle_message(
        SipMessage::Response(ok),
        transport,
        dest,
        t0 + Duration::from_secs(11),
    );
    statuses.extend(drain(&mut c).statuses());
    assert_eq!(statuses, vec!["completed"], "{statuses:?}");
    assert_eq!(c.stats().active_calls, 0);
}

#[test]
fn caller_id_is_the_from_the_callee_sees_and_the_row_keeps_from() {
    let t0 = Instant::now();
    let doc = || mediaseal_twiml::Response::parse(b"<Response><Hangup/></Response>").unwrap();
    for (caller_id, from) in [
        ("+15550003333", "sip:+15550003333@127.0.0.1"),
        ("alice", "sip:alice@127.0.0.1"),
        ("sip:alice@example.com", "sip:alice@example.com"),
        ("bob@example.org:5070", "sip:bob@example.org:5070"),
    ] {
        let mut c = core(t0);
        let mut req = request("sip:jack@198.51.100.20", Script::Inline(doc()));
        req.caller_id = Some(caller_id.into());
        c.originate(req, t0).unwrap();
        let out = drain(&mut c);
        // The bytes on the wire, parsed as the callee parses them.
        let (invite, _, _) = out.requests.into_iter().next().expect("the INVITE");
        let seen = invite.headers.from().unwrap();
        assert_eq!(seen.uri.to_string(), from, "{caller_id}");
        assert!(seen.tag().is_some(), "{caller_id}: the From keeps its tag");
        let rows: Vec<_> = out
            .effects
            .iter()
            .filter_map(|e| match e {
                Effect::CallStatus(u) => Some(u.from.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(rows, vec!["+15550001111"], "{caller_id}");
    }
    // Without CallerId, From's user is what the callee sees.
    let mut c = core(t0);
    c.originate(request("sip:jack@198.51.100.20", Script::Inline(doc())), t0)
        .unwrap();
    let (invite, _, _) = drain(&mut c).requests.into_iter().next().unwrap();
    assert_eq!(
        invite.headers.from().unwrap().uri.to_string(),
        "sip:+15550001111@127.0.0.1"
    );

    // A malformed one places nothing and holds no port: the pool of five still serves five.
    let mut c = core(t0);
    for bad in ["al ice", "sip:@example.com", "a<b>@c", ""] {
        let mut req = request("sip:jack@198.51.100.20", Script::Inline(doc()));
        req.caller_id = Some(bad.into());
        let err = c.originate(req, t0).unwrap_err();
        assert!(
            matches!(err, mediaseal_call::OriginateError::BadCallerId(ref v) if v == bad),
            "{bad}: {err}"
        );
        assert!(err.to_string().contains("sip:alice@example.com"), "{err}");
    }
    assert!(drain(&mut c).requests.is_empty());
    for _ in 0..5 {
        c.originate(request("sip:jack@198.51.100.20", Script::Inline(doc())), t0)
            .unwrap();
    }
}
