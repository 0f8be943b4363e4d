//! REGISTER at the call core, sans-IO: a domain with `SipRegistration` challenges, verifies
//! the registration credentials, binds alice's contact to the flow she came on, and a
//! `<Dial><Sip>sip:alice@domain</Sip>` reaches that contact over that flow; the refusals say
//! why (404, 403 with a Warning, 401, 423).

#![allow(clippy::disallowed_methods)] // tests read the clock for an epoch

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mediaseal_call::b2bua::Output;
use mediaseal_call::{CallCore, CallId, CoreConfig, Domain, DomainCredential, Effect};
use mediaseal_sip::auth::{Ha1Set, authorize};
use mediaseal_sip::message::{
    HeaderName, ParseLimits, Request, Response, SipMessage, StatusCode, Transport,
};
use mediaseal_twiml::HttpMethod;

const DOMAIN: &str = "acme.sip.example.test";

fn core(now: Instant) -> CallCore {
    let mut c = CoreConfig::new([127, 0, 0, 1].into(), 5060, 5061, "sip.example.test");
    c.rtp_ports = 40000..=40009;
    CallCore::new(c, now).unwrap()
}

fn domain(registration: bool, secure: bool) -> Domain {
    let cred = |u: &str, p: &str| DomainCredential {
        username: u.into(),
        ha1: Ha1Set::compute(u, DOMAIN, p),
    };
    Domain {
        sid: "SD0001".into(),
        account_sid: "AC0001".into(),
        name: DOMAIN.into(),
        secure,
        voice_url: Some("https://app.example.test/voice".parse().unwrap()),
        voice_method: HttpMethod::Post,
        voice_fallback_url: None,
        voice_fallback_method: HttpMethod::Post,
        voice_status_callback_url: None,
        voice_status_callback_method: HttpMethod::Post,
        // Callers from the test network need no credentials; registering always does.
        ip_ranges: vec!["192.0.2.0/24".parse().unwrap()],
        // Calls credentials do not let anyone register.
        credentials: vec![cred("carol", "carol-pw")],
        sip_registration: registration,
        registration_credentials: vec![cred("alice", "alice-pw"), cred("bob", "bob-pw")],
    }
}

/// A REGISTER for `user` from alice's phone (TCP, 192.0.2.10:40312), each a new transaction.
fn register(user: &str, expires: &str, cseq: u32, extra: &str) -> Request {
    static BRANCH: AtomicU32 = AtomicU32::new(0);
    let branch = BRANCH.fetch_add(1, Ordering::Relaxed);
    let text = format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\n\
         Via: SIP/2.0/TCP 192.0.2.10:40312;branch=z9hG4bKreg{branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@{DOMAIN}>;tag=rf{cseq}\r\n\
         To: <sip:{user}@{DOMAIN}>\r\n\
         Call-ID: reg-{user}\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: <sip:{user}@192.0.2.10:5070;transport=tcp>\r\n\
         Expires: {expires}\r\n{extra}\
         Content-Length: 0\r\n\r\n"
    );
    match SipMessage::parse(text.as_bytes(), &ParseLimits::default()).unwrap() {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => unreachable!(),
    }
}

const PHONE: &str = "192.0.2.10:40312";

struct Out {
    responses: Vec<Response>,
    requests: Vec<(Request, SocketAddr, Transport)>,
    effects: Vec<Effect>,
}

fn drain(c: &mut CallCore) -> Out {
    let mut out = Out {
        responses: Vec::new(),
        requests: Vec::new(),
        effects: Vec::new(),
    };
    while let Some(o) = c.poll_output() {
        match o {
            Output::Transmit(t) => match SipMessage::parse(&t.bytes, &ParseLimits::default()) {
                Ok(SipMessage::Response(r)) => out.responses.push(r),
                Ok(SipMessage::Request(r)) => out.requests.push((r, t.destination, t.transport)),
                Err(_) => {}
            },
            Output::Effect(e) => out.effects.push(e),
        }
    }
    out
}

fn lookup(out: &Out) -> Option<CallId> {
    out.effects.iter().find_map(|e| match e {
        Effect::LookupDomain { call, name } => {
            assert_eq!(name, DOMAIN);
            Some(*call)
        }
        _ => None,
    })
}

/// Sends `req` over TCP from the phone, answers the lookup with `domain`, and returns the one
/// response.
fn send(c: &mut CallCore, req: &Request, domain: Option<Domain>, now: Instant) -> Response {
    c.handle_message(
        SipMessage::Request(req.clone()),
        Transport::Tcp,
        PHONE.parse().unwrap(),
        now,
    );
    let out = drain(c);
    if let Some(id) = lookup(&out) {
        c.domain_found(id, domain, now);
        let mut out = drain(c);
        assert_eq!(out.responses.len(), 1, "one final response");
        return out.responses.remove(0);
    }
    assert_eq!(out.responses.len(), 1, "an answer without a lookup");
    out.responses.into_iter().next().unwrap()
}

fn warning(r: &Response) -> String {
    r.headers
        .get(&HeaderName::WARNING)
        .unwrap_or_default()
        .to_owned()
}

/// alice registers with her password: a 401, then 200 with her contact.
fn registered(c: &mut CallCore, now: Instant) {
    let first = register("alice", "600", 1, "");
    let challenge = send(c, &first, Some(domain(true, false)), now);
    assert_eq!(challenge.status, StatusCode::UNAUTHORIZED);
    let mut signed = register("alice", "600", 2, "");
    authorize(&mut signed, &challenge, "alice", "alice-pw").unwrap();
    let auth = signed
        .headers
        .get(&HeaderName::AUTHORIZATION)
        .unwrap()
        .to_owned();
    let retry = register("alice", "600", 2, &format!("Authorization: {auth}\r\n"));
    let ok = send(c, &retry, Some(domain(true, false)), now);
    assert_eq!(ok.status, StatusCode::OK, "{}", warning(&ok));
    assert_eq!(
        ok.headers.values(&HeaderName::CONTACT),
        vec!["<sip:alice@192.0.2.10:5070;transport=tcp>;expires=600"]
    );
}

#[test]
fn a_registered_phone_is_reached_over_its_flow_by_dial_sip() {
    let now = Instant::now();
    let mut c = core(now);
    registered(&mut c, now);

    // A call to the domain dials alice.
    let out = call_dialling(&mut c, "call-1", "alice", now);
    let (req, dest, transport) = out
        .requests
        .iter()
        .find(|(r, _, _)| r.method.to_string() == "INVITE")
        .expect("the dial INVITE");
    // To her contact, over the connection she registered on; the To is the address dialled.
    assert_eq!(*dest, PHONE.parse().unwrap());
    assert_eq!(*transport, Transport::Tcp);
    assert_eq!(
        req.uri.to_string(),
        "sip:alice@192.0.2.10:5070;transport=tcp"
    );
    assert_eq!(
        req.headers.to().unwrap().uri.to_string(),
        format!("sip:alice@{DOMAIN}")
    );
}

/// A call from bob's phone to the domain whose TwiML dials `sip:{user}@DOMAIN`; what the core
/// does next.
fn call_dialling(c: &mut CallCore, call_id: &str, user: &str, now: Instant) -> Out {
    call_dialling_uri(c, call_id, &format!("sip:{user}@{DOMAIN}"), now)
}

/// As [`call_dialling`], the TwiML dialling `uri` (with a 20 s timeout).
fn call_dialling_uri(c: &mut CallCore, call_id: &str, uri: &str, now: Instant) -> Out {
    let invite = format!(
        "INVITE sip:reception@{DOMAIN} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.20:5070;branch=z9hG4bK{call_id}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:bob@192.0.2.20>;tag=ft\r\nTo: <sip:reception@{DOMAIN}>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@192.0.2.20:5070>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{}",
        SDP.len(),
        SDP
    );
    c.handle_message(
        SipMessage::parse(invite.as_bytes(), &ParseLimits::default()).unwrap(),
        Transport::Udp,
        "192.0.2.20:5070".parse().unwrap(),
        now,
    );
    let id = lookup(&drain(c)).unwrap();
    c.domain_found(id, Some(domain(true, false)), now);
    let fetch = drain(c)
        .effects
        .into_iter()
        .find_map(|e| match e {
            Effect::Webhook(w) => Some(w.fetch),
            _ => None,
        })
        .unwrap();
    let twiml = format!(
        "<Response><Dial action=\"https://app.example.test/after\" timeout=\"20\">\
         <Sip>{uri}</Sip></Dial></Response>"
    );
    c.webhook_done(id, fetch, Ok(twiml.into_bytes()), now);
    drain(c)
}

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\n\
                   m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

#[test]
fn dialling_someone_not_registered_fails_without_an_invite() {
    let now = Instant::now();
    let mut c = core(now);
    registered(&mut c, now);
    // bob has registration credentials but never registered.
    let out = call_dialling(&mut c, "call-2", "bob", now);
    assert!(
        !out.requests
            .iter()
            .any(|(r, _, _)| r.method.to_string() == "INVITE"),
        "no INVITE for an address nobody registered"
    );
    let action = out
        .effects
        .iter()
        .find_map(|e| match e {
            Effect::Webhook(w) if w.url.path() == "/after" => Some(w.params.clone()),
            _ => None,
        })
        .expect("the Dial action");
    assert!(action.contains(&("DialCallStatus".into(), "failed".into())));
    let stats = c.stats();
    assert_eq!(stats.refusals.get("dial_not_registered"), Some(&1));
}

#[test]
fn refusals_say_why() {
    let now = Instant::now();
    let mut c = core(now);
    // Not one of our domains: 404 without a lookup.
    let mut other = register("alice", "600", 1, "");
    other.uri = "sip:example.org".parse().unwrap();
    let r = send(&mut c, &other, None, now);
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // No such domain.
    let r = send(&mut c, &register("alice", "600", 1, ""), None, now);
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(warning(&r).contains("no SIP domain"), "{}", warning(&r));
    // SipRegistration off.
    let r = send(
        &mut c,
        &register("alice", "600", 1, ""),
        Some(domain(false, false)),
        now,
    );
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(warning(&r).contains("not enabled"), "{}", warning(&r));
    // A Secure domain over TCP: refused as an INVITE would be, before any challenge.
    let r = send(
        &mut c,
        &register("alice", "600", 1, ""),
        Some(domain(true, true)),
        now,
    );
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(warning(&r).starts_with("399 "), "{}", warning(&r));
    assert!(r.headers.get(&HeaderName::WWW_AUTHENTICATE).is_none());

    // Challenged, then: a wrong password, a calls-only credential, alice's credentials for
    // bob's address, and too brief an interval.
    let challenge = send(
        &mut c,
        &register("alice", "600", 1, ""),
        Some(domain(true, false)),
        now,
    );
    assert_eq!(challenge.status, StatusCode::UNAUTHORIZED);
    for (to_user, user, password, status, why) in [
        ("alice", "alice", "wrong", 403, "bad credentials"),
        ("carol", "carol", "carol-pw", 403, "bad credentials"),
        ("bob", "alice", "alice-pw", 403, "authenticated username"),
    ] {
        let mut signed = register(to_user, "600", 2, "");
        authorize(&mut signed, &challenge, user, password).unwrap();
        let auth = signed.headers.get(&HeaderName::AUTHORIZATION).unwrap();
        let retry = register(to_user, "600", 2, &format!("Authorization: {auth}\r\n"));
        let r = send(&mut c, &retry, Some(domain(true, false)), now);
        assert_eq!(r.status.as_u16(), status, "{to_user}/{user}");
        assert!(
            warning(&r).contains(why),
            "{to_user}/{user}: {}",
            warning(&r)
        );
    }
    let mut signed = register("alice", "30", 3, "");
    authorize(&mut signed, &challenge, "alice", "alice-pw").unwrap();
    let auth = signed.headers.get(&HeaderName::AUTHORIZATION).unwrap();
    let retry = register("alice", "30", 3, &format!("Authorization: {auth}\r\n"));
    let r = send(&mut c, &retry, Some(domain(true, false)), now);
    assert_eq!(r.status.as_u16(), 423);
    assert_eq!(r.headers.get(&HeaderName::MIN_EXPIRES), Some("60"));
}

#[test]
fn expires_zero_unregisters() {
    let now = Instant::now();
    let mut c = core(now);
    registered(&mut c, now);
    let challenge = send(
        &mut c,
        &register("alice", "0", 3, ""),
        Some(domain(true, false)),
        now,
    );
    let mut signed = register("alice", "0", 4, "");
    authorize(&mut signed, &challenge, "alice", "alice-pw").unwrap();
    let auth = signed.headers.get(&HeaderName::AUTHORIZATION).unwrap();
    let retry = register("alice", "0", 4, &format!("Authorization: {auth}\r\n"));
    let later = now + Duration::from_secs(5);
    let r = send(&mut c, &retry, Some(domain(true, false)), later);
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers.get(&HeaderName::CONTACT).is_none(),
        "no contact left"
    );
}

// ---------------------------------------------------------------------------------------------
// Forking: alice registered from several devices; a dial rings them all at once.

/// One of alice's devices: its contact, and the flow it registered on.
struct Device {
    contact: String,
    transport: Transport,
    source: SocketAddr,
}

/// alice's device `n` (192.0.2.`n`), registered over `transport`.
fn device(n: u8, transport: Transport) -> Device {
    let t = match transport {
        Transport::Tcp => "tcp",
        Transport::Tls => "tls",
        _ => "udp",
    };
    Device {
        contact: format!("<sip:alice@192.0.2.{n}:5070;transport={t}>"),
        transport,
        source: SocketAddr::new([192, 0, 2, n].into(), 40_000 + u16::from(n)),
    }
}

fn register_request(dev: &Device, cseq: u32, extra: &str) -> Request {
    static BRANCH: AtomicU32 = AtomicU32::new(0);
    let branch = BRANCH.fetch_add(1, Ordering::Relaxed);
    let via = match dev.transport {
        Transport::Tcp => "TCP",
        Transport::Tls => "TLS",
        _ => "UDP",
    };
    let text = format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\n\
         Via: SIP/2.0/{via} {};branch=z9hG4bKdev{branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@{DOMAIN}>;tag=d{cseq}\r\n\
         To: <sip:alice@{DOMAIN}>\r\n\
         Call-ID: reg-{}\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: {}\r\n\
         Expires: 600\r\n{extra}\
         Content-Length: 0\r\n\r\n",
        dev.source, dev.source, dev.contact
    );
    match SipMessage::parse(text.as_bytes(), &ParseLimits::default()).unwrap() {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => unreachable!(),
    }
}

/// `dev` registers as alice (challenge, then her credentials) from its own flow.
fn register_device(c: &mut CallCore, dev: &Device, now: Instant) {
    let mut exchange = |req: &Request| {
        c.handle_message(
            SipMessage::Request(req.clone()),
            dev.transport,
            dev.source,
            now,
        );
        let id = lookup(&drain(c)).unwrap();
        c.domain_found(id, Some(domain(true, false)), now);
        drain(c).responses.remove(0)
    };
    let challenge = exchange(&register_request(dev, 1, ""));
    assert_eq!(challenge.status, StatusCode::UNAUTHORIZED);
    let mut signed = register_request(dev, 2, "");
    authorize(&mut signed, &challenge, "alice", "alice-pw").unwrap();
    let auth = signed
        .headers
        .get(&HeaderName::AUTHORIZATION)
        .unwrap()
        .to_owned();
    let ok = exchange(&register_request(
        dev,
        2,
        &format!("Authorization: {auth}\r\n"),
    ));
    assert_eq!(ok.status, StatusCode::OK, "{}", warning(&ok));
}

fn requests_of<'a>(out: &'a Out, method: &str) -> Vec<&'a (Request, SocketAddr, Transport)> {
    out.requests
        .iter()
        .filter(|(r, _, _)| r.method.to_string() == method)
        .collect()
}

/// `dev` answers the dial INVITE `invite` with `status` (a 2xx with a plain PCMU answer).
fn reply(c: &mut CallCore, dev: &Device, invite: &Request, status: u16, now: Instant) {
    let mut r = Response::for_request(invite, StatusCode::new(status).unwrap())
        .with_to_tag(&format!("tag-{}", dev.source.port()));
    if (200..300).contains(&status) {
        let sdp = "v=0\r\no=- 2 2 IN IP4 192.0.2.99\r\ns=-\r\nc=IN IP4 192.0.2.99\r\nt=0 0\r\n\
                   m=audio 6000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
                   a=rtpmap:101 telephone-event/8000\r\n";
        r = r
            .with_header(HeaderName::CONTACT, dev.contact.as_str())
            .with_body("application/sdp", sdp.as_bytes().to_vec());
    }
    c.handle_message(SipMessage::Response(r), dev.transport, dev.source, now);
}

/// The `<Dial>` action's parameters, if it was requested.
fn dial_action(out: &Out) -> Option<Vec<(String, String)>> {
    out.effects.iter().find_map(|e| match e {
        Effect::Webhook(w) if w.url.path() == "/after" => Some(w.params.clone()),
        _ => None,
    })
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Two devices and the dial's INVITE to each, in the order of the devices.
fn forked(c: &mut CallCore, devices: &[&Device], now: Instant) -> (Vec<Request>, Out) {
    for d in devices {
        register_device(c, d, now);
    }
    let out = call_dialling(c, "fork-1", "alice", now);
    let invites = requests_of(&out, "INVITE");
    assert_eq!(invites.len(), devices.len(), "one INVITE per binding");
    let mut ordered = Vec::new();
    for d in devices {
        let (req, _, transport) = invites
            .iter()
            .find(|(_, dest, _)| *dest == d.source)
            .unwrap_or_else(|| panic!("no INVITE over {}'s flow", d.source));
        assert_eq!(*transport, d.transport, "over the flow it registered on");
        ordered.push(req.clone());
    }
    (ordered, out)
}

#[test]
fn a_dial_forks_to_every_device_and_the_first_answer_wins() {
    let now = Instant::now();
    let mut c = core(now);
    let (desk, mobile) = (device(11, Transport::Tcp), device(12, Transport::Udp));
    let (invites, _) = forked(&mut c, &[&desk, &mobile], now);
    // One call: the same Call-ID and From tag, each to its own contact.
    let call_id = |r: &Request| r.headers.call_id().unwrap().to_owned();
    assert_eq!(call_id(&invites[0]), call_id(&invites[1]));
    assert_eq!(
        invites[0].uri.to_string(),
        "sip:alice@192.0.2.11:5070;transport=tcp"
    );
    assert_eq!(
        invites[1].uri.to_string(),
        "sip:alice@192.0.2.12:5070;transport=udp"
    );
    for inv in &invites {
        assert_eq!(
            inv.headers.to().unwrap().uri.to_string(),
            format!("sip:alice@{DOMAIN}")
        );
    }

    // Both ring: the leg's row says `ringing` once.
    reply(&mut c, &desk, &invites[0], 180, now);
    reply(&mut c, &mobile, &invites[1], 180, now);
    let out = drain(&mut c);
    let ringing = out
        .effects
        .iter()
        .filter(|e| matches!(e, Effect::CallStatus(u) if u.status == "ringing"))
        .count();
    assert_eq!(ringing, 1, "ringing reported once");

    // The mobile answers: ACKed over its flow, the desk phone gets CANCEL over its own, and
    // the relay leg is keyed once, from the mobile's answer.
    reply(&mut c, &mobile, &invites[1], 200, now);
    let out = drain(&mut c);
    let acks = requests_of(&out, "ACK");
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].1, mobile.source);
    let cancels = requests_of(&out, "CANCEL");
    assert_eq!(cancels.len(), 1, "the other branch is cancelled");
    assert_eq!(cancels[0].1, desk.source);
    assert_eq!(cancels[0].2, Transport::Tcp);
    let configured = out
        .effects
        .iter()
        .filter(|e| {
            matches!(
                e,
                Effect::Media(mediaseal_call::MediaCommand::ConfigureLeg { .. })
            )
        })
        .count();
    assert_eq!(configured, 1);
    assert!(
        out.effects
            .iter()
            .any(|e| matches!(e, Effect::CallStatus(u) if u.status == "in-progress"))
    );

    // The desk phone's 487 changes nothing; its BYE (it is not the call) is refused with 481
    // and the call stays up.
    reply(&mut c, &desk, &invites[0], 487, now);
    let out = drain(&mut c);
    assert!(dial_action(&out).is_none(), "the dial goes on");
    assert!(requests_of(&out, "BYE").is_empty());

    // A BYE in the dial's dialog from `dev` (its tag as the remote tag).
    let our_from = invites[1]
        .headers
        .get(&HeaderName::FROM)
        .unwrap()
        .to_owned();
    let bye_from = |dev: &Device| {
        format!(
            "BYE sip:bob@127.0.0.1:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP {};branch=z9hG4bKbye{}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:alice@{DOMAIN}>;tag=tag-{}\r\n\
             To: {our_from}\r\nCall-ID: {}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
            dev.source,
            dev.source.port(),
            dev.source.port(),
            call_id(&invites[1]),
        )
    };
    // The desk phone is not the call: 481, and the call stays up.
    c.handle_message(
        SipMessage::parse(bye_from(&desk).as_bytes(), &ParseLimits::default()).unwrap(),
        desk.transport,
        desk.source,
        now,
    );
    let out = drain(&mut c);
    assert_eq!(
        out.responses
            .iter()
            .map(|r| r.status.as_u16())
            .collect::<Vec<_>>(),
        vec![481]
    );
    assert!(
        dial_action(&out).is_none(),
        "the desk phone's BYE ends nothing"
    );
    // The mobile hangs up: the dial completes.
    let bye = bye_from(&mobile);
    c.handle_message(
        SipMessage::parse(bye.as_bytes(), &ParseLimits::default()).unwrap(),
        mobile.transport,
        mobile.source,
        now + Duration::from_secs(3),
    );
    let out = drain(&mut c);
    assert_eq!(
        out.responses
            .iter()
            .map(|r| r.status.as_u16())
            .collect::<Vec<_>>(),
        vec![200]
    );
    let action = dial_action(&out).expect("the Dial action");
    assert_eq!(param(&action, "DialCallStatus"), Some("completed"));
    assert_eq!(
        param(&action, "DialSipCallId"),
        Some(call_id(&invites[1]).as_str())
    );
}

#[test]
fn a_late_second_answer_is_acked_and_ended() {
    let now = Instant::now();
    let mut c = core(now);
    let (desk, mobile) = (device(11, Transport::Tcp), device(12, Transport::Udp));
    let (invites, _) = forked(&mut c, &[&desk, &mobile], now);
    reply(&mut c, &desk, &invites[0], 200, now);
    let out = drain(&mut c);
    assert_eq!(requests_of(&out, "ACK")[0].1, desk.source);
    // The mobile sent nothing yet: its CANCEL waits for a provisional (RFC 3261 §9.1).
    // It answers 200 anyway (crossing the CANCEL): ACK and BYE over its own flow.
    reply(&mut c, &mobile, &invites[1], 200, now);
    let out = drain(&mut c);
    let acks = requests_of(&out, "ACK");
    let byes = requests_of(&out, "BYE");
    assert_eq!(acks.len(), 1, "{:?}", out.requests);
    assert_eq!(byes.len(), 1, "{:?}", out.requests);
    for (_, dest, transport) in acks.into_iter().chain(byes) {
        assert_eq!((*dest, *transport), (mobile.source, mobile.transport));
    }
    // The desk phone's call is untouched: no BYE to it, no configure from the mobile.
    assert!(!out.effects.iter().any(|e| matches!(
        e,
        Effect::Media(mediaseal_call::MediaCommand::ConfigureLeg { .. })
    )));
    assert!(dial_action(&out).is_none());
}

#[test]
fn when_every_device_fails_the_best_response_decides() {
    let now = Instant::now();
    let mut c = core(now);
    let (desk, mobile) = (device(11, Transport::Tcp), device(12, Transport::Udp));
    let (invites, _) = forked(&mut c, &[&desk, &mobile], now);
    reply(&mut c, &desk, &invites[0], 480, now);
    let out = drain(&mut c);
    assert!(dial_action(&out).is_none(), "the mobile still rings");
    reply(&mut c, &mobile, &invites[1], 486, now);
    let action = dial_action(&drain(&mut c)).expect("the Dial action");
    assert_eq!(param(&action, "DialCallStatus"), Some("busy"));
    assert_eq!(param(&action, "DialSipResponseCode"), Some("486"));
}

#[test]
fn the_dial_timeout_cancels_every_branch() {
    let now = Instant::now();
    let mut c = core(now);
    let (desk, mobile, tablet) = (
        device(11, Transport::Tcp),
        device(12, Transport::Udp),
        device(13, Transport::Tcp),
    );
    let (invites, _) = forked(&mut c, &[&desk, &mobile, &tablet], now);
    for (d, inv) in [
        (&desk, &invites[0]),
        (&mobile, &invites[1]),
        (&tablet, &invites[2]),
    ] {
        reply(&mut c, d, inv, 180, now);
    }
    drain(&mut c);
    let later = now + Duration::from_secs(21);
    c.handle_timeout(later);
    let out = drain(&mut c);
    let mut cancelled: Vec<SocketAddr> = requests_of(&out, "CANCEL").iter().map(|r| r.1).collect();
    cancelled.sort();
    assert_eq!(cancelled, vec![desk.source, mobile.source, tablet.source]);
    let action = dial_action(&out).expect("the Dial action");
    assert_eq!(param(&action, "DialCallStatus"), Some("no-answer"));
    // A 2xx that crossed the CANCEL is ACKed and BYEd, never bridged.
    reply(&mut c, &tablet, &invites[2], 200, later);
    let out = drain(&mut c);
    assert_eq!(requests_of(&out, "ACK").len(), 1);
    assert_eq!(requests_of(&out, "BYE").len(), 1);
}

#[test]
fn a_secure_dial_forks_to_tls_bindings_only_each_with_its_own_key() {
    let now = Instant::now();
    let mut c = core(now);
    let (desk, plain, mobile) = (
        device(11, Transport::Tls),
        device(12, Transport::Tcp),
        device(13, Transport::Tls),
    );
    for d in [&desk, &plain, &mobile] {
        register_device(&mut c, d, now);
    }
    let out = call_dialling_uri(
        &mut c,
        "fork-secure",
        &format!("sip:alice@{DOMAIN};secure=true"),
        now,
    );
    let invites = requests_of(&out, "INVITE");
    let mut dests: Vec<SocketAddr> = invites.iter().map(|r| r.1).collect();
    dests.sort();
    assert_eq!(
        dests,
        vec![desk.source, mobile.source],
        "never the TCP binding"
    );
    let keys: Vec<String> = invites
        .iter()
        .map(|(r, _, t)| {
            assert_eq!(*t, Transport::Tls);
            let body = String::from_utf8(r.body.clone()).unwrap();
            assert!(body.contains("RTP/SAVP"), "{body}");
            let lines: Vec<&str> = body
                .lines()
                .filter(|l| l.starts_with("a=crypto:"))
                .collect();
            assert_eq!(lines.len(), 1, "exactly one crypto line: {body}");
            assert!(lines[0].contains("AES_CM_128_HMAC_SHA1_80 inline:"));
            lines[0].to_owned()
        })
        .collect();
    assert_ne!(keys[0], keys[1], "each branch gets its own key");
}
