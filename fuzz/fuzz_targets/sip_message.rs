//! SIP messages: arbitrary bytes never panic the datagram parser, the stream framer, the typed
//! header accessors, digest parsing, dialogs or the transaction endpoint; whatever parses
//! serializes to bytes that parse to the same message.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use mediaseal_sip::auth::{DigestChallenge, DigestCredentials};
use mediaseal_sip::dialog::Dialog;
use mediaseal_sip::message::{
    HeaderName, Host, NameAddr, ParseLimits, Response, SipMessage, StatusCode, StreamFramer,
    Transport, Warning,
};
use mediaseal_sip::transaction::{Endpoint, EndpointConfig};

fuzz_target!(|data: &[u8]| {
    let limits = ParseLimits::default();
    if let Ok(msg) = SipMessage::parse(data, &limits) {
        let bytes = msg.to_bytes();
        let again = SipMessage::parse(&bytes, &limits).expect("serialized message parses");
        assert_eq!(again, msg, "round trip changed the message");

        let h = msg.headers();
        let _ = h.vias();
        let _ = h.contacts();
        let _ = h.typed_all::<NameAddr>(&HeaderName::ROUTE);
        let _ = h.typed_all::<Warning>(&HeaderName::WARNING);
        for name in [HeaderName::WWW_AUTHENTICATE, HeaderName::PROXY_AUTHENTICATE] {
            for v in h.get_all(&name) {
                let _ = DigestChallenge::parse(v);
            }
        }
        for name in [HeaderName::AUTHORIZATION, HeaderName::PROXY_AUTHORIZATION] {
            for v in h.get_all(&name) {
                if let Ok(c) = DigestCredentials::parse(v) {
                    let again = DigestCredentials::parse(&c.to_string()).expect("credentials re-parse");
                    assert_eq!(again, c);
                }
            }
        }
        if let SipMessage::Request(req) = &msg {
            let ok = Response::for_request(req, StatusCode::OK)
                .with_to_tag("fuzz")
                .with_header(HeaderName::CONTACT, "<sip:fuzz@127.0.0.1>");
            let parsed = SipMessage::parse(&ok.to_bytes(), &limits).expect("response to a valid request parses");
            assert_eq!(parsed, SipMessage::Response(ok.clone()));
            if let Ok(mut d) = Dialog::new_uas(req, &ok) {
                let _ = d.receive_request(req);
                let _ = d.bye().to_bytes();
            }
        }
    }

    // The same bytes on a stream, split in two.
    let mut framer = StreamFramer::new(limits);
    let cut = data.first().map_or(0, |b| usize::from(*b) % (data.len() + 1));
    framer.push(&data[..cut]);
    let _ = framer.next_message();
    framer.push(&data[cut..]);
    while let Some(Ok(_)) = framer.next_message() {}

    // And into an endpoint, with time moving on.
    let mut ep = Endpoint::new(EndpointConfig::new(Host::V4([127, 0, 0, 1].into())));
    let t0 = Instant::now();
    let from: SocketAddr = ([192, 0, 2, 1], 5060).into();
    ep.handle_datagram(data, Transport::Udp, from, t0);
    ep.handle_datagram(data, Transport::Udp, from, t0);
    while ep.poll_output().is_some() {}
    ep.handle_timeout(t0 + Duration::from_secs(64));
    while ep.poll_output().is_some() {}
});
