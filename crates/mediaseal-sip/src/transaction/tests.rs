//! Transaction state machines driven with simulated time and no sockets.

#![allow(clippy::disallowed_methods)] // tests and benches read the clock for an epoch

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::message::{Method, ParseLimits, Response, SipMessage, StatusCode};

const PEER: &str = "192.0.2.7:5062";

fn endpoint() -> Endpoint {
    let mut cfg = EndpointConfig::new(Host::V4("192.0.2.1".parse().unwrap()));
    cfg.user_agent = Some("mediaseal-test".into());
    Endpoint::new(cfg)
}

fn peer() -> SocketAddr {
    PEER.parse().unwrap()
}

fn msg(text: &str) -> SipMessage {
    SipMessage::parse(
        text.replace('\n', "\r\n").as_bytes(),
        &ParseLimits::default(),
    )
    .unwrap()
}

fn request_text(method: &str, branch: &str, cseq: u32, to_tag: Option<&str>) -> String {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    format!(
        "{method} sip:bob@192.0.2.1 SIP/2.0
Via: SIP/2.0/UDP 192.0.2.7:5062;branch={branch};rport
From: <sip:alice@example.com>;tag=a1
To: <sip:bob@example.com>{to_tag}
Call-ID: call-xyz
CSeq: {cseq} {method}
Contact: <sip:alice@192.0.2.7:5062>
Max-Forwards: 70
Content-Length: 0

"
    )
}

/// Drains the output queue.
fn drain(ep: &mut Endpoint) -> (Vec<Transmit>, Vec<Event>) {
    let mut tx = Vec::new();
    let mut ev = Vec::new();
    while let Some(o) = ep.poll_output() {
        match o {
            Output::Transmit(t) => tx.push(t),
            Output::Event(e) => ev.push(e),
        }
    }
    (tx, ev)
}

fn parse_tx(t: &Transmit) -> SipMessage {
    SipMessage::parse(&t.bytes, &ParseLimits::default()).unwrap()
}

fn status_of(t: &Transmit) -> u16 {
    match parse_tx(t) {
        SipMessage::Response(r) => r.status.as_u16(),
        SipMessage::Request(_) => 0,
    }
}

fn method_of(t: &Transmit) -> String {
    match parse_tx(t) {
        SipMessage::Request(r) => r.method.to_string(),
        SipMessage::Response(_) => String::new(),
    }
}

/// Fires timers until `until`, returning what was transmitted with the time it fired.
fn run_until(ep: &mut Endpoint, until: Instant) -> (Vec<(Instant, Transmit)>, Vec<Event>) {
    let mut tx = Vec::new();
    let mut ev = Vec::new();
    while let Some(at) = ep.poll_timeout() {
        if at > until {
            break;
        }
        ep.handle_timeout(at);
        let (t, e) = drain(ep);
        tx.extend(t.into_iter().map(|t| (at, t)));
        ev.extend(e);
    }
    (tx, ev)
}

fn new_request_id(events: &[Event]) -> ServerTransactionId {
    events
        .iter()
        .find_map(|e| match e {
            Event::NewRequest { id, .. } => Some(*id),
            _ => None,
        })
        .expect("a NewRequest event")
}

#[test]
fn server_invite_2xx_retransmitted_until_ack() {
    let mut ep = endpoint();
    let t0 = Instant::now();
    ep.handle_message(
        msg(&request_text("INVITE", "z9hG4bKinv1", 1, None)),
        Transport::Udp,
        peer(),
        t0,
    );
    let (tx, ev) = drain(&mut ep);
    assert_eq!(tx.len(), 1);
    assert_eq!(status_of(&tx[0]), 100);
    assert_eq!(tx[0].destination, peer());
    let id = new_request_id(&ev);
    let Event::NewRequest { request, .. } = &ev[0] else {
        panic!()
    };
    let via = request.headers.top_via().unwrap();
    assert_eq!(via.rport(), Some(Some(5062)));
    assert_eq!(via.received(), Some("192.0.2.7"));

    // A retransmitted INVITE is absorbed and answered with the last provisional response.
    ep.handle_message(
        msg(&request_text("INVITE", "z9hG4bKinv1", 1, None)),
        Transport::Udp,
        peer(),
        t0,
    );
    let (tx, ev) = drain(&mut ep);
    assert_eq!((tx.len(), ev.len()), (1, 0));
    assert_eq!(status_of(&tx[0]), 100);
    assert_eq!(ep.stats().retransmissions_absorbed, 1);

    let req = ep.server_request(id).unwrap().clone();
    ep.respond(
        id,
        Response::for_request(&req, StatusCode::RINGING).with_to_tag("b1"),
        t0,
    )
    .unwrap();
    let ok = Response::for_request(&req, StatusCode::OK)
        .with_to_tag("b1")
        .with_header(HeaderName::CONTACT, "<sip:bob@192.0.2.1>");
    ep.respond(id, ok, t0).unwrap();
    let (tx, _) = drain(&mut ep);
    assert_eq!(tx.iter().map(status_of).collect::<Vec<_>>(), [180, 200]);
    let SipMessage::Response(sent_ok) = parse_tx(&tx[1]) else {
        panic!()
    };
    assert_eq!(
        sent_ok.headers.get(&HeaderName::SERVER),
        Some("mediaseal-test")
    );

    // 2xx retransmissions at T1, 2·T1 (doubling, capped at T2).
    let (tx, _) = run_until(&mut ep, t0 + Duration::from_millis(1600));
    let times: Vec<u128> = tx.iter().map(|(at, _)| (*at - t0).as_millis()).collect();
    assert_eq!(times, [500, 1500]);
    assert!(tx.iter().all(|(_, t)| status_of(t) == 200));

    // The ACK (new branch) stops them and reaches the user.
    let ack = request_text("ACK", "z9hG4bKack1", 1, Some("b1"));
    ep.handle_message(
        msg(&ack),
        Transport::Udp,
        peer(),
        t0 + Duration::from_millis(1600),
    );
    let (tx, ev) = drain(&mut ep);
    assert!(tx.is_empty());
    assert!(matches!(ev.as_slice(), [Event::Ack { invite: Some(i), .. }] if *i == id));
    let (tx, ev) = run_until(&mut ep, t0 + Duration::from_secs(60));
    assert!(tx.is_empty(), "no more 2xx after the ACK");
    assert!(ev.is_empty(), "timer L after an ACK is silent");
    assert_eq!(ep.transaction_count(), (0, 0));
}

#[test]
fn server_invite_2xx_without_ack_times_out() {
    let mut ep = endpoint();
    let t0 = Instant::now();
    ep.handle_message(
        msg(&request_text("INVITE", "z9hG4bKinv2", 1, None)),
        Transport::Tcp,
        peer(),
        t0,
    );
    let (_, ev) = drain(&mut ep);
    let id = new_request_id(&ev);
    let req = ep.server_request(id).unwrap().clone();
    ep.respond(
        id,
        Response::for_request(&req, StatusCode::OK).with_to_tag("x"),
        t0,
    )
    .unwrap();
    drain(&mut ep);
    let (tx, ev) = run_until(&mut ep, t0 + Duration::from_secs(33));
    // Retransmitted even over TCP (RFC 3261 §13.3.1.4: end to end), T1 doubling to T2.
    assert_eq!(
        tx.len(),
        10,
        "{:?}",
        tx.iter().map(|(a, _)| *a - t0).collect::<Vec<_>>()
    );
    assert_eq!(
        ev,
        [Event::TransactionTimeout {
            id: TransactionId::Server(id)
        }]
    );
}

#[test]
fn server_invite_error_response_g_h_i() {
    let mut ep = endpoint();
    let t0 = Instant::now();
    ep.handle_message(
        msg(&request_text("INVITE", "z9hG4bKinv3", 1, None)),
        Transport::Udp,
        peer(),
        t0,
    );
    let (_, ev) = drain(&mut ep);
    let id = new_request_id(&ev);
    let req = ep.server_request(id).unwrap().clone();
    ep.respond(
        id,
        Response::for_request(&req, StatusCode::BUSY_HERE).with_to_tag("x"),
        t0,
    )
    .unwrap();
    assert_eq!(
        ep.respond(id, Response::for_request(&req, StatusCode::OK), t0),
        Err(RespondError::AlreadyFinal)
    );
    drain(&mut ep);
    let (tx, _) = run_until(&mut ep, t0 + Duration::from_millis(8000));
    let times: Vec<u128> = tx.iter().map(|(at, _)| (*at - t0).as_millis()).collect();
    assert_eq!(times, [500, 1500, 3500, 7500]);
    // ACK with the INVITE's branch: absorbed, Confirmed, then timer I ends it.
    ep.handle_message(
        msg(&request_text("ACK", "z9hG4bKinv3", 1, Some("x"))),
        Transport::Udp,
        peer(),
        t0 + Duration::from_secs(8),
    );
    let (tx, ev) = drain(&mut ep);
    assert!(tx.is_empty() && ev.is_empty());
    let (tx, ev) = run_until(&mut ep, t0 + Duration::from_secs(14));
    assert!(tx.is_empty() && ev.is_empty());
    assert_eq!(ep.transaction_count(), (0, 0));

    // Without an ACK, timer H reports a timeout.
    ep.handle_message(
        msg(&request_text("INVITE", "z9hG4bKinv4", 2, None)),
        Transport::Udp,
        peer(),
        t0,
    );
    let (_, ev) = drain(&mut ep);
    let id = new_request_id(&ev);
    let req = ep.server_request(id).unwrap().clone();
    ep.respond(
        id,
        Response::for_request(&req, StatusCode::DECLINE).with_to_tag("x"),
        t0,
    )
    .unwrap();
    let (_, ev) = run_until(&mut ep, t0 + Duration::from_secs(40));
    assert_eq!(
        ev,
        [Event::TransactionTimeout {
            id: TransactionId::Server(id)
        }]
    );
}

#[test]
fn cancel_of_a_pending_invite() {
    let mut ep = endpoint();
    let t0 = Instant::now();
    ep.handle_message(
        msg(&request_text("INVITE", "z9hG4bKinv5", 7, None)),
        Transport::Udp,
        peer(),
        t0,
    );
    let (_, ev) = drain(&mut ep);
    let id = new_request_id(&ev);
    let req = ep.server_request(id).unwrap().clone();
    ep.respond(
        id,
        Response::for_request(&req, StatusCode::RINGING).with_to_tag("tt"),
        t0,
    )
    .unwrap();
    drain(&mut ep);
    ep.handle_message(
        msg(&request_text("CANCEL", "z9hG4bKinv5", 7, None)),
        Transport::Udp,
        peer(),
        t0,
    );
    let (tx, ev) = drain(&mut ep);
    let statuses: Vec<(u16, String)> = tx
        .iter()
        .map(|t| match parse_tx(t) {
            SipMessage::Response(r) => (
                r.status.as_u16(),
                format!(
                    "{} {}",
                    r.headers.cseq().unwrap().method,
                    r.headers.to().unwrap().tag().unwrap_or("")
                ),
            ),
            SipMessage::Request(_) => (0, String::new()),
        })
        .collect();
    assert_eq!(
        statuses,
        [(200, "CANCEL ".into()), (487, "INVITE tt".into())]
    );
    assert!(matches!(ev.as_slice(), [Event::Cancelled { invite, .. }] if *invite == id));
    assert_eq!(
        ep.respond(id, Response::for_request(&req, StatusCode::OK), t0),
        Err(RespondError::AlreadyFinal)
    );
    // A CANCEL for nothing gets 481.
    ep.handle_message(
        msg(&request_text("CANCEL", "z9hG4bKnothing", 1, None)),
        Transport::Udp,
        peer(),
        t0,
    );
    let (tx, ev) = drain(&mut ep);
    assert_eq!(tx.iter().map(status_of).collect::<Vec<_>>(), [481]);
    assert!(ev.is_empty());
}

fn invite_request() -> Request {
    crate::dialog::new_invite(
        "sip:bob@192.0.2.7:5062".parse().unwrap(),
        "<sip:alice@example.com>".parse().unwrap(),
        &"<sip:bob@example.com>".parse().unwrap(),
        &"<sip:alice@192.0.2.1:5060>".parse().unwrap(),
        Some("c-client".into()),
    )
}

fn target(transport: Transport) -> Target {
    Target {
        transport,
        addr: peer(),
    }
}

fn response_to(request: &Request, status: StatusCode, tag: &str) -> SipMessage {
    SipMessage::Response(
        Response::for_request(request, status)
            .with_to_tag(tag)
            .with_header(HeaderName::CONTACT, "<sip:bob@192.0.2.7:5062>"),
    )
}

#[test]
fn client_invite_timer_a_and_b() {
    let mut ep = endpoint();
    let t0 = Instant::now();
    let id = ep
        .send_request(invite_request(), target(Transport::Udp), t0)
        .unwrap();
    let (tx, _) = drain(&mut ep);
    assert_eq!(method_of(&tx[0]), "INVITE");
    let sent = ep.client_request(id).unwrap();
    assert!(sent.headers.top_via().unwrap().has_rfc3261_branch());
    assert_eq!(
        sent.headers.get(&HeaderName::USER_AGENT),
        Some("mediaseal-test")
    );
    let (tx, ev) = run_until(&mut ep, t0 + Duration::from_secs(40));
    let times: Vec<u128> = tx.iter().map(|(at, _)| (*at - t0).as_millis()).collect();
    assert_eq!(times, [500, 1500, 3500, 7500, 15500, 31500]);
    assert_eq!(
        ev,
        [Event::TransactionTimeout {
            id: TransactionId::Client(id)
        }]
    );
}

#[test]
fn client_invite_error_is_acked_and_retransmission_absorbed() {
    let mut ep = endpoint();
    let t0 = Instant::now();
    let id = ep
        .send_request(invite_request(), target(Transport::Udp), t0)
        .unwrap();
    drain(&mut ep);
    let sent = ep.client_request(id).unwrap().clone();
    ep.handle_message(
        response_to(&sent, StatusCode::RINGING, "r1"),
        Transport::Udp,
        peer(),
        t0,
    );
    let (tx, ev) = drain(&mut ep);
    assert!(tx.is_empty());
    assert!(
        matches!(&ev[..], [Event::Response { response, .. }] if response.status == StatusCode::RINGING)
    );
    let (tx, _) = run_until(&mut ep, t0 + Duration::from_secs(5));
    assert!(tx.is_empty(), "no retransmission in Proceeding");

    let busy = response_to(&sent, StatusCode::BUSY_HERE, "r1");
    ep.handle_message(
        busy.clone(),
        Transport::Udp,
        peer(),
        t0 + Duration::from_secs(5),
    );
    let (tx, ev) = drain(&mut ep);
    assert_eq!(tx.len(), 1);
    let SipMessage::Request(ack) = parse_tx(&tx[0]) else {
        panic!()
    };
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(
        ack.headers.top_via().unwrap().branch(),
        sent.headers.top_via().unwrap().branch()
    );
    assert_eq!(ack.headers.to().unwrap().tag(), Some("r1"));
    assert_eq!(ack.headers.cseq().unwrap().to_string(), "1 ACK");
    assert_eq!(ev.len(), 1);
    ep.handle_message(busy, Transport::Udp, peer(), t0 + Duration::from_secs(6));
    let (tx, ev) = drain(&mut ep);
    assert_eq!(
        (tx.len(), ev.len()),
        (1, 0),
        "same ACK again, nothing for the user"
    );
    run_until(&mut ep, t0 + Duration::from_secs(40));
    assert_eq!(ep.transaction_count(), (0, 0));
}

#[test]
fn client_invite_2xx_ack_is_resent_for_retransmitted_2xx() {
    let mut ep = endpoint();
    let t0 = Instant::now();
    let id = ep
        .send_request(invite_request(), target(Transport::Udp), t0)
        .unwrap();
    drain(&mut ep);
    let sent = ep.client_request(id).unwrap().clone();
    let ok = response_to(&sent, StatusCode::OK, "b9");
    ep.handle_message(ok.clone(), Transport::Udp, peer(), t0);
    let (_, ev) = drain(&mut ep);
    let Some(Event::Response { response, .. }) = ev.first() else {
        panic!()
    };
    let mut dialog = crate::dialog::Dialog::new_uac(&sent, response).unwrap();
    ep.send_ack(id, dialog.ack(), dialog.next_hop().unwrap(), t0)
        .unwrap();
    let (tx, _) = drain(&mut ep);
    assert_eq!(method_of(&tx[0]), "ACK");
    ep.handle_message(ok, Transport::Udp, peer(), t0 + Duration::from_millis(500));
    let (tx2, ev) = drain(&mut ep);
    assert!(ev.is_empty());
    assert_eq!(tx2.len(), 1);
    assert_eq!(tx2[0].bytes, tx[0].bytes);
    // A 2xx from another fork still reaches the user.
    ep.handle_message(
        response_to(&sent, StatusCode::OK, "fork2"),
        Transport::Udp,
        peer(),
        t0,
    );
    let (_, ev) = drain(&mut ep);
    assert_eq!(ev.len(), 1);
}

#[test]
fn client_non_invite_timer_e_caps_at_t2_and_f_times_out() {
    let mut ep = endpoint();
    let t0 = Instant::now();
    let mut options = invite_request();
    options.method = Method::Options;
    options.headers.set(HeaderName::CSEQ, "1 OPTIONS");
    let id = ep
        .send_request(options, target(Transport::Udp), t0)
        .unwrap();
    drain(&mut ep);
    let (tx, ev) = run_until(&mut ep, t0 + Duration::from_secs(40));
    let times: Vec<u128> = tx.iter().map(|(at, _)| (*at - t0).as_millis()).collect();
    assert_eq!(
        times,
        [
            500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
    assert_eq!(
        ev,
        [Event::TransactionTimeout {
            id: TransactionId::Client(id)
        }]
    );
}

#[test]
fn reliable_transport_never_retransmits_requests() {
    let mut ep = endpoint();
    let t0 = Instant::now();
    let id = ep
        .send_request(invite_request(), target(Transport::Tls), t0)
        .unwrap();
    drain(&mut ep);
    let sent = ep.client_request(id).unwrap().clone();
    assert_eq!(sent.headers.top_via().unwrap().transport, "TLS");
    assert_eq!(sent.headers.top_via().unwrap().port, Some(5061));
    let (tx, ev) = run_until(&mut ep, t0 + Duration::from_secs(40));
    assert!(tx.is_empty());
    assert_eq!(
        ev,
        [Event::TransactionTimeout {
            id: TransactionId::Client(id)
        }]
    );
}

#[test]
fn cancel_waits_for_a_provisional_response() {
    let mut ep = endpoint();
    let t0 = Instant::now();
    let id = ep
        .send_request(invite_request(), target(Transport::Udp), t0)
        .unwrap();
    drain(&mut ep);
    ep.cancel(id, t0).unwrap();
    let (tx, _) = drain(&mut ep);
    assert!(tx.is_empty(), "no CANCEL before a provisional response");
    let sent = ep.client_request(id).unwrap().clone();
    ep.handle_message(
        response_to(&sent, StatusCode::RINGING, "r"),
        Transport::Udp,
        peer(),
        t0,
    );
    let (tx, ev) = drain(&mut ep);
    assert_eq!(ev.len(), 1);
    let SipMessage::Request(cancel) = parse_tx(&tx[0]) else {
        panic!()
    };
    assert_eq!(cancel.method, Method::Cancel);
    assert_eq!(
        cancel.headers.top_via().unwrap(),
        sent.headers.top_via().unwrap()
    );
    assert_eq!(cancel.headers.cseq().unwrap().to_string(), "1 CANCEL");
    assert_eq!(cancel.headers.to().unwrap().tag(), None);
    // Its 200 is absorbed; the 487 reaches the user and is ACKed.
    let ok: SipMessage = SipMessage::Response(Response::for_request(&cancel, StatusCode::OK));
    ep.handle_message(ok, Transport::Udp, peer(), t0);
    let (_, ev) = drain(&mut ep);
    assert!(ev.is_empty());
    ep.handle_message(
        response_to(&sent, StatusCode::REQUEST_TERMINATED, "r"),
        Transport::Udp,
        peer(),
        t0,
    );
    let (tx, ev) = drain(&mut ep);
    assert_eq!(tx.iter().map(method_of).collect::<Vec<_>>(), ["ACK"]);
    assert!(
        matches!(&ev[..], [Event::Response { response, .. }] if response.status == StatusCode::REQUEST_TERMINATED)
    );
}

#[test]
fn malformed_request_gets_400_and_an_event() {
    let mut ep = endpoint();
    let t0 = Instant::now();
    let bad = request_text("INVITE", "z9hG4bKbad", 1, None)
        .replace("CSeq: 1 INVITE", "CSeq: one INVITE")
        .replace('\n', "\r\n");
    ep.handle_datagram(bad.as_bytes(), Transport::Udp, peer(), t0);
    let (tx, ev) = drain(&mut ep);
    assert_eq!(tx.len(), 1);
    // The bad CSeq is copied as received, so the peer can match the 400.
    let text = String::from_utf8(tx[0].bytes.clone()).unwrap();
    assert!(text.starts_with("SIP/2.0 400 Bad Request\r\n"), "{text}");
    assert!(text.contains("CSeq: one INVITE\r\n"));
    assert!(
        text.contains("Warning: 399 192.0.2.1 \"bad CSeq header"),
        "{text}"
    );
    assert_eq!(tx[0].destination, peer());
    assert!(matches!(&ev[..], [Event::Malformed { .. }]));
    ep.handle_datagram(b"\r\n\r\n", Transport::Udp, peer(), t0);
    ep.handle_datagram(b"garbage", Transport::Udp, peer(), t0);
    let (tx, ev) = drain(&mut ep);
    assert!(tx.is_empty());
    assert_eq!(ev.len(), 1);
    assert_eq!(ep.stats().malformed, 2);
}

#[test]
fn responses_go_to_via_without_rport() {
    let mut ep = endpoint();
    let t0 = Instant::now();
    let text = request_text("OPTIONS", "z9hG4bKo", 1, None).replace(";rport", "");
    let from: SocketAddr = "198.51.100.9:40000".parse().unwrap();
    ep.handle_message(msg(&text), Transport::Udp, from, t0);
    let (_, ev) = drain(&mut ep);
    let id = new_request_id(&ev);
    let req = ep.server_request(id).unwrap().clone();
    assert_eq!(
        req.headers.top_via().unwrap().received(),
        Some("198.51.100.9")
    );
    ep.respond(
        id,
        Response::for_request(&req, StatusCode::OK).with_to_tag("z"),
        t0,
    )
    .unwrap();
    let (tx, _) = drain(&mut ep);
    assert_eq!(tx[0].destination, "198.51.100.9:5062".parse().unwrap());
    // Timer J keeps it to absorb retransmissions, then it ends.
    ep.handle_message(msg(&text), Transport::Udp, from, t0);
    let (tx, ev) = drain(&mut ep);
    assert_eq!((tx.len(), ev.len()), (1, 0));
    run_until(&mut ep, t0 + Duration::from_secs(33));
    assert_eq!(ep.transaction_count(), (0, 0));
}

#[test]
fn transport_errors_end_transactions() {
    let mut ep = endpoint();
    let t0 = Instant::now();
    let id = ep
        .send_request(invite_request(), target(Transport::Tcp), t0)
        .unwrap();
    drain(&mut ep);
    ep.transport_error(Transport::Tcp, peer());
    let (_, ev) = drain(&mut ep);
    assert_eq!(
        ev,
        [Event::TransportError {
            id: TransactionId::Client(id)
        }]
    );
    assert_eq!(ep.poll_timeout(), None);
}

#[test]
fn send_request_validates() {
    let mut ep = endpoint();
    let t0 = Instant::now();
    let mut ack = invite_request();
    ack.method = Method::Ack;
    assert_eq!(
        ep.send_request(ack, target(Transport::Udp), t0),
        Err(SendError::AckNeedsSendAck)
    );
    let mut r = invite_request();
    r.headers
        .push_front(HeaderName::VIA, "SIP/2.0/UDP h;branch=old");
    assert_eq!(
        ep.send_request(r, target(Transport::Udp), t0),
        Err(SendError::BadBranch)
    );
    let mut r = invite_request();
    r.headers.remove(&HeaderName::CALL_ID);
    assert!(matches!(
        ep.send_request(r, target(Transport::Udp), t0),
        Err(SendError::InvalidRequest(_))
    ));
    let mut r = invite_request();
    r.headers
        .push_front(HeaderName::VIA, "SIP/2.0/UDP h;branch=z9hG4bKsame");
    ep.send_request(r.clone(), target(Transport::Udp), t0)
        .unwrap();
    assert_eq!(
        ep.send_request(r, target(Transport::Udp), t0),
        Err(SendError::DuplicateBranch)
    );
}

#[test]
fn stray_2xx_and_unmatched_responses() {
    let mut ep = endpoint();
    let t0 = Instant::now();
    let mut inv = invite_request();
    inv.headers
        .push_front(HeaderName::VIA, "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKgone");
    ep.handle_message(
        response_to(&inv, StatusCode::OK, "x"),
        Transport::Udp,
        peer(),
        t0,
    );
    ep.handle_message(
        response_to(&inv, StatusCode::BUSY_HERE, "x"),
        Transport::Udp,
        peer(),
        t0,
    );
    let (_, ev) = drain(&mut ep);
    assert!(matches!(&ev[..], [Event::StrayResponse { .. }]));
    assert_eq!(ep.stats().unmatched_responses, 1);
}

#[test]
fn target_from_uri() {
    let t = Target::from_uri(&"sip:jack@127.0.0.2;secure=true".parse().unwrap()).unwrap();
    assert_eq!(
        (t.transport, t.addr.to_string()),
        (Transport::Tls, "127.0.0.2:5061".into())
    );
    let t = Target::from_uri(&"sip:a@10.0.0.1:5070;transport=TCP".parse().unwrap()).unwrap();
    assert_eq!((t.transport, t.addr.port()), (Transport::Tcp, 5070));
    assert!(Target::from_uri(&"sip:a@example.com".parse().unwrap()).is_none());
}
