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
        "<Response><Dial action=\"https://app.example.test/after\">\
         <Sip>sip:{user}@{DOMAIN}</Sip></Dial></Response>"
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
