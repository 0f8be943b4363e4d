//! Property tests: parse → serialize → parse is the identity for generated SIP messages,
//! name-addrs and SDP; the parsers never panic on arbitrary or mutated input.

use mediaseal_sip::message::{
    Contact, HeaderName, HeaderValue, Host, Method, NameAddr, Params, ParseLimits, Request,
    Response, Scheme, SipMessage, SipUri, StatusCode, StreamFramer, Uri, Via,
};
use mediaseal_sip::sdp::{
    Attribute, Bandwidth, Connection, MediaDescription, Origin, SessionDescription, Timing,
};
use proptest::prelude::*;

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9.!%*_+`'~-]{1,12}"
}

fn host() -> impl Strategy<Value = Host> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,10}(\\.[a-z]{2,5}){0,2}".prop_map(Host::Domain),
        any::<[u8; 4]>().prop_map(|o| Host::V4(o.into())),
        any::<[u16; 8]>().prop_map(|s| Host::V6(s.into())),
    ]
}

fn params() -> impl Strategy<Value = Params> {
    proptest::collection::vec((token(), proptest::option::of(token())), 0..4).prop_map(|ps| {
        let mut p = Params::new();
        for (n, v) in ps {
            p.set(&n, v.as_deref());
        }
        p
    })
}

fn sip_uri() -> impl Strategy<Value = SipUri> {
    (
        any::<bool>(),
        proptest::option::of("[a-zA-Z0-9_.!~*'()&=+$,;?/-]{1,12}"),
        host(),
        proptest::option::of(any::<u16>()),
        params(),
        proptest::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,8}", "[a-zA-Z0-9_.~-]{0,8}"), 0..3),
    )
        .prop_map(|(sips, user, host, port, params, headers)| SipUri {
            scheme: if sips { Scheme::Sips } else { Scheme::Sip },
            user,
            password: None,
            host,
            port,
            params,
            headers,
        })
}

fn name_addr() -> impl Strategy<Value = NameAddr> {
    (
        proptest::option::of("[^\\x00-\\x1f\\x7f]{0,16}"),
        sip_uri(),
        params(),
    )
        .prop_map(|(display_name, uri, params)| NameAddr {
            display_name,
            uri: Uri::Sip(uri),
            params,
        })
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::Invite),
        Just(Method::Bye),
        Just(Method::Options),
        Just(Method::Register),
        Just(Method::Info),
        token().prop_map(|t| Method::parse(&t).unwrap()),
    ]
}

fn via() -> impl Strategy<Value = Via> {
    (
        "UDP|TCP|TLS|SCTP|WS",
        host(),
        proptest::option::of(any::<u16>()),
        token(),
        params(),
    )
        .prop_map(|(transport, host, port, branch, mut params)| {
            params.set("branch", Some(&format!("z9hG4bK{branch}")));
            Via {
                transport,
                host,
                port,
                params,
            }
        })
}

/// Header values of unknown headers: anything printable (no CR/LF), trimmed.
fn free_text() -> impl Strategy<Value = String> {
    "[^\\x00-\\x1f\\x7f]{0,40}".prop_map(|s| s.trim().to_owned())
}

fn request() -> impl Strategy<Value = Request> {
    (
        method(),
        sip_uri(),
        proptest::collection::vec(via(), 1..4),
        name_addr(),
        name_addr(),
        (token(), 0u32..(1 << 31), 0u8..=255),
        proptest::option::of(name_addr()),
        proptest::collection::vec(("X-[A-Za-z0-9-]{1,10}", free_text()), 0..4),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(
            |(method, uri, vias, from, to, (call_id, seq, mf), contact, extra, body)| {
                let mut r = Request::new(method.clone(), Uri::Sip(uri));
                for v in vias {
                    r.headers.push(HeaderName::VIA, v.to_string());
                }
                r.headers.push(HeaderName::FROM, from.to_string());
                r.headers.push(HeaderName::TO, to.to_string());
                r.headers.push(HeaderName::CALL_ID, call_id);
                r.headers.push(HeaderName::CSEQ, format!("{seq} {method}"));
                r.headers.push(HeaderName::MAX_FORWARDS, mf.to_string());
                if let Some(c) = contact {
                    r.headers.push(HeaderName::CONTACT, c.to_string());
                }
                for (n, v) in extra {
                    r.headers.push(HeaderName::new(&n).unwrap(), v);
                }
                r.body = body;
                r
            },
        )
}

fn limits() -> ParseLimits {
    ParseLimits::default()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn request_round_trip(req in request()) {
        let bytes = req.to_bytes();
        let parsed = SipMessage::parse(&bytes, &limits()).map_err(|e| TestCaseError::fail(format!("{e}\n{}", String::from_utf8_lossy(&bytes))))?;
        prop_assert_eq!(&parsed, &SipMessage::Request(req));
        let mut framer = StreamFramer::new(limits());
        framer.push(&bytes);
        framer.push(&bytes);
        prop_assert_eq!(framer.next_message(), Some(Ok(Ok(parsed.clone()))));
        prop_assert_eq!(framer.next_message(), Some(Ok(Ok(parsed))));
    }

    #[test]
    fn response_round_trip(req in request(), code in 100u16..700, reason in "[^\\x00-\\x1f\\x7f]{0,20}", tag in token()) {
        let resp = Response::for_request(&req, StatusCode::new(code).unwrap())
            .with_reason(&reason)
            .with_to_tag(&tag);
        prop_assert_eq!(resp.headers.to().unwrap().tag().is_some(), true);
        let parsed = SipMessage::parse(&resp.to_bytes(), &limits()).unwrap();
        prop_assert_eq!(parsed, SipMessage::Response(resp));
    }

    #[test]
    fn name_addr_round_trip(n in name_addr()) {
        prop_assert_eq!(&NameAddr::parse(&n.to_string()).unwrap(), &n);
        prop_assert_eq!(Contact::parse_value(&n.to_string()).unwrap(), Contact::Address(n));
    }

    #[test]
    fn sdp_round_trip(sd in session()) {
        let bytes = sd.to_bytes();
        prop_assert_eq!(SessionDescription::parse(&bytes).unwrap(), sd);
    }

    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = SipMessage::parse(&bytes, &limits());
        let _ = SessionDescription::parse(&bytes);
        let mut f = StreamFramer::new(limits());
        f.push(&bytes);
        while let Some(Ok(_)) = f.next_message() {}
    }

    #[test]
    fn mutated_messages_never_panic_and_reparse(req in request(), edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = req.to_bytes();
        for (i, b) in edits {
            let at = i.index(bytes.len());
            bytes[at] = b;
        }
        if let Ok(m) = SipMessage::parse(&bytes, &limits()) {
            let again = SipMessage::parse(&m.to_bytes(), &limits()).unwrap();
            prop_assert_eq!(again, m);
        }
    }
}

fn line_text() -> impl Strategy<Value = String> {
    "[^\\x00-\\x1f\\x7f]{0,20}"
}

fn word() -> impl Strategy<Value = String> {
    "[!-~]{1,10}"
}

fn connection() -> impl Strategy<Value = Connection> {
    (word(), word(), word()).prop_map(|(net_type, addr_type, address)| Connection {
        net_type,
        addr_type,
        address,
    })
}

fn attribute() -> impl Strategy<Value = Attribute> {
    (
        "[a-zA-Z][a-zA-Z0-9-]{0,10}",
        proptest::option::of(line_text()),
    )
        .prop_map(|(name, value)| Attribute { name, value })
}

fn bandwidth() -> impl Strategy<Value = Bandwidth> {
    ("[A-Z]{2,4}", any::<u32>()).prop_map(|(bw_type, b)| Bandwidth {
        bw_type,
        bandwidth: u64::from(b),
    })
}

fn media() -> impl Strategy<Value = MediaDescription> {
    (
        "audio|video|application",
        any::<u16>(),
        proptest::option::of(1u16..4),
        "RTP/AVP|RTP/SAVP|UDP/TLS/RTP/SAVPF",
        proptest::collection::vec("[0-9]{1,3}", 0..5),
        proptest::option::of(line_text()),
        proptest::collection::vec(connection(), 0..2),
        proptest::collection::vec(bandwidth(), 0..2),
        proptest::collection::vec(attribute(), 0..6),
    )
        .prop_map(
            |(
                media,
                port,
                port_count,
                protocol,
                formats,
                information,
                connections,
                bandwidths,
                attributes,
            )| {
                MediaDescription {
                    media,
                    port,
                    port_count,
                    protocol,
                    formats,
                    information,
                    connections,
                    bandwidths,
                    key: None,
                    attributes,
                }
            },
        )
}

fn session() -> impl Strategy<Value = SessionDescription> {
    (
        (word(), "[0-9]{1,20}", "[0-9]{1,20}", word(), word(), word()),
        line_text(),
        proptest::option::of(line_text()),
        proptest::option::of(connection()),
        proptest::collection::vec(bandwidth(), 0..2),
        proptest::collection::vec(
            (
                any::<u32>(),
                any::<u32>(),
                proptest::collection::vec(line_text(), 0..2),
            ),
            0..3,
        ),
        proptest::collection::vec(attribute(), 0..4),
        proptest::collection::vec(media(), 0..4),
        proptest::collection::vec(line_text(), 0..2),
    )
        .prop_map(
            |(
                (username, session_id, session_version, net_type, addr_type, address),
                session_name,
                information,
                connection,
                bandwidths,
                timings,
                attributes,
                media,
                emails,
            )| {
                SessionDescription {
                    origin: Origin {
                        username,
                        session_id,
                        session_version,
                        net_type,
                        addr_type,
                        address,
                    },
                    session_name,
                    information,
                    uri: None,
                    emails,
                    phones: Vec::new(),
                    connection,
                    bandwidths,
                    timings: timings
                        .into_iter()
                        .map(|(s, e, repeats)| Timing {
                            start: u64::from(s),
                            stop: u64::from(e),
                            repeats,
                        })
                        .collect(),
                    time_zones: None,
                    key: None,
                    attributes,
                    media,
                }
            },
        )
}
