//! The data-file vectors in `testdata/sip/` (see its README): SIP messages valid and invalid,
//! the secure-media policy table, and digest responses.

use std::path::PathBuf;

use mediaseal_sip::auth::{DigestAlgorithm, DigestChallenge, respond};
use mediaseal_sip::message::{
    HeaderName, Method, NameAddr, ParseLimits, SipMessage, StreamFramer, Transport, Warning,
};
use mediaseal_sip::policy::evaluate_offer;
use mediaseal_sip::sdp::{AudioConfig, SessionDescription, audio_answer};

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/sip")
}

/// Rows of a TSV file, comments and blank lines skipped.
fn rows(name: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(testdata().join(name)).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

/// LF → CRLF (unless `.raw.sip`), then `{{len}}` → body length.
fn load_message(rel: &str) -> Vec<u8> {
    let raw = std::fs::read(testdata().join("messages").join(rel)).unwrap();
    let mut bytes = Vec::with_capacity(raw.len() + 64);
    if rel.ends_with(".raw.sip") {
        bytes = raw;
    } else {
        let mut prev = 0u8;
        for b in raw {
            if b == b'\n' && prev != b'\r' {
                bytes.push(b'\r');
            }
            bytes.push(b);
            prev = b;
        }
    }
    let marker = b"{{len}}";
    if let Some(pos) = bytes.windows(marker.len()).position(|w| w == marker) {
        let body_start = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| p + 4)
            .unwrap();
        // The marker is in the head, so the body length does not depend on its width.
        let body_len = bytes.len() - body_start;
        bytes.splice(pos..pos + marker.len(), body_len.to_string().into_bytes());
    }
    bytes
}

#[test]
fn message_vectors() {
    let limits = ParseLimits::default();
    let mut checked = 0;
    for row in rows("messages/expect.tsv") {
        let (file, expect) = (&row[0], &row[1]);
        let bytes = load_message(file);
        let result = SipMessage::parse(&bytes, &limits);
        match (expect.as_str(), result) {
            ("ok", Ok(msg)) => {
                let again = SipMessage::parse(&msg.to_bytes(), &limits)
                    .unwrap_or_else(|e| panic!("{file}: serialized form does not parse: {e}"));
                assert_eq!(again, msg, "{file}: parse → serialize → parse changed it");
                // The stream framer agrees with the datagram parser (when Content-Length is set).
                let mut framer = StreamFramer::new(limits);
                framer.push(&msg.to_bytes());
                assert_eq!(framer.next_message(), Some(Ok(Ok(msg))), "{file}: framer");
            }
            ("ok", Err(e)) => panic!("{file}: expected to parse, got {e}"),
            (kind, Ok(_)) => panic!("{file}: expected {kind}, but it parsed"),
            (kind, Err(e)) => {
                assert_eq!(e.kind(), kind, "{file}: {e}");
                if let Some(text) = row.get(2) {
                    assert!(
                        e.to_string().contains(text.as_str()),
                        "{file}: {e:?} lacks {text:?}"
                    );
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} vectors");
}

fn parse_file(rel: &str) -> SipMessage {
    SipMessage::parse(&load_message(rel), &ParseLimits::default()).unwrap()
}

#[test]
fn valid_vectors_have_the_expected_content() {
    let SipMessage::Request(r) = parse_file("valid/wsinv.sip") else {
        panic!()
    };
    assert_eq!(r.headers.max_forwards().unwrap().unwrap().0, 68);
    assert_eq!(r.headers.cseq().unwrap().seq, 9);
    let vias = r.headers.vias().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(
        (vias[1].transport.as_str(), vias[1].branch()),
        ("TCP", Some("z9hG4bK9ikj8"))
    );
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    assert_eq!(r.headers.to().unwrap().tag(), Some("1918181833n"));
    assert_eq!(
        r.headers.from().unwrap().display_name.as_deref(),
        Some("J Rosenberg \\\"")
    );
    let contact = r.headers.contacts().unwrap().remove(0);
    assert_eq!(contact.address().unwrap().params.value("q"), Some("0.33"));
    assert_eq!(
        r.headers.get(&HeaderName::new("newfangledheader").unwrap()),
        Some("newfangled value continued newfangled value")
    );
    assert!(SessionDescription::parse(&r.body).is_ok());

    let SipMessage::Request(r) = parse_file("valid/intmeth.sip") else {
        panic!()
    };
    assert_eq!(
        r.method.as_str(),
        "!interesting-Method0123456789_*+`.%indeed'~"
    );
    assert!(matches!(r.method, Method::Extension(_)));
    assert_eq!(r.headers.max_forwards().unwrap().unwrap().0, 255);
    let uri = r.uri.as_sip().unwrap();
    assert_eq!(uri.host.to_string(), "example.com");
    assert_eq!(
        uri.password.as_deref(),
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );

    let SipMessage::Request(r) = parse_file("valid/esc01.sip") else {
        panic!()
    };
    assert_eq!(
        r.uri.as_sip().unwrap().user_unescaped().as_deref(),
        Some("sips:user@example.com")
    );
    assert_eq!(
        r.headers
            .from()
            .unwrap()
            .sip_uri()
            .unwrap()
            .user_unescaped()
            .as_deref(),
        Some("I have spaces")
    );

    let SipMessage::Request(r) = parse_file("valid/semiuri.sip") else {
        panic!()
    };
    let uri = r.uri.as_sip().unwrap();
    assert_eq!(
        (uri.user.as_deref(), uri.host.to_string()),
        (Some("user;par=u%40example.net"), "example.com".into())
    );
    assert_eq!(
        r.headers.values(&HeaderName::new("Accept").unwrap()).len(),
        6
    );

    let SipMessage::Request(r) = parse_file("valid/dblreq.sip") else {
        panic!()
    };
    assert_eq!(r.method, Method::Register);
    assert!(r.body.is_empty());

    let SipMessage::Response(r) = parse_file("valid/unreason.sip") else {
        panic!()
    };
    assert_eq!(r.reason, "= 2**3 * 5**2 но сто девяносто девять - простое");
    let SipMessage::Response(r) = parse_file("valid/noreason.sip") else {
        panic!()
    };
    assert_eq!((r.status.as_u16(), r.reason.as_str()), (100, ""));

    let SipMessage::Request(r) = parse_file("valid/ipv6.sip") else {
        panic!()
    };
    assert_eq!(r.uri.as_sip().unwrap().port, Some(5070));
    assert_eq!(
        r.headers.top_via().unwrap().received(),
        Some("[2001:db8::9:255]")
    );

    let SipMessage::Request(r) = parse_file("valid/twilio-secure.sip") else {
        panic!()
    };
    let uri = r.uri.as_sip().unwrap();
    assert_eq!(uri.transport_param().as_deref(), Some("tls"));
    assert_eq!(uri.user.as_deref(), Some("+15551234567"));
    let contact = r.headers.contacts().unwrap().remove(0);
    assert!(
        contact
            .address()
            .unwrap()
            .params
            .value("+sip.instance")
            .unwrap()
            .contains("urn:uuid")
    );
    assert_eq!(
        r.headers
            .get(&HeaderName::new("x-customer-account").unwrap()),
        Some("42")
    );
    let rr: Vec<NameAddr> = r.headers.typed_all(&HeaderName::RECORD_ROUTE).unwrap();
    assert!(rr[0].sip_uri().unwrap().params.contains("lr"));
    let sdp = SessionDescription::parse(&r.body).unwrap();
    assert_eq!(sdp.media[0].crypto().len(), 2);
    let accepted = evaluate_offer(true, Transport::Tls, Some(&sdp)).unwrap();
    assert_eq!(accepted.srtp.unwrap().offered.tag, 1);

    let SipMessage::Response(r) = parse_file("valid/response-401.sip") else {
        panic!()
    };
    let challenges: Vec<DigestChallenge> = r
        .headers
        .get_all(&HeaderName::WWW_AUTHENTICATE)
        .map(|v| DigestChallenge::parse(v).unwrap())
        .collect();
    assert_eq!(challenges[0].algorithm, DigestAlgorithm::Sha256);
    assert_eq!(challenges[1].algorithm, DigestAlgorithm::Md5);

    let SipMessage::Request(r) = parse_file("valid/cseq-max.sip") else {
        panic!()
    };
    assert_eq!(r.headers.cseq().unwrap().seq, 2_147_483_647);
    let warnings: Vec<Warning> = r.headers.typed_all(&HeaderName::WARNING).unwrap();
    assert_eq!(warnings.len(), 2);
    assert_eq!(warnings[1].code, 302);

    let SipMessage::Request(r) = parse_file("valid/register-star.sip") else {
        panic!()
    };
    assert_eq!(
        r.headers.contacts().unwrap(),
        [mediaseal_sip::message::Contact::Star]
    );
}

#[test]
fn policy_table() {
    let mut checked = 0;
    for row in rows("policy.tsv") {
        let (file, secure, transport, expected) = (&row[0], &row[1], &row[2], &row[3]);
        let sdp =
            SessionDescription::parse(&std::fs::read(testdata().join("sdp").join(file)).unwrap())
                .unwrap_or_else(|e| panic!("{file}: {e}"));
        let secure = secure == "true";
        let transport = match transport.as_str() {
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            _ => Transport::Tls,
        };
        let got = match evaluate_offer(secure, transport, Some(&sdp)) {
            Ok(a) => {
                let (suite, tag) = match &a.srtp {
                    Some(c) => (c.profile.to_string(), c.offered.tag.to_string()),
                    None => ("-".to_owned(), "-".to_owned()),
                };
                // An accepted offer can always be answered when it has a common codec.
                let cfg = AudioConfig::new("192.0.2.1".parse().unwrap(), 30000);
                let crypto = a.srtp.as_ref().map(|c| c.answer().unwrap().attribute);
                if let Ok(ans) = audio_answer(&sdp, a.media_index, &cfg, crypto.as_ref()) {
                    assert_eq!(ans.sdp.media.len(), sdp.media.len(), "{file}");
                    assert_eq!(
                        ans.sdp.media[a.media_index].protocol,
                        sdp.media[a.media_index].protocol
                    );
                    if let Some(c) = &crypto {
                        assert_eq!(
                            ans.sdp.media[a.media_index].crypto()[0]
                                .as_ref()
                                .unwrap()
                                .tag,
                            c.tag
                        );
                    }
                }
                format!("accept:{}:{suite}:{tag}", a.media_index)
            }
            Err(r) => {
                assert!(!r.to_string().is_empty());
                format!("reject:{}:{}:{}", r.label(), r.status(), r.warn_code())
            }
        };
        assert_eq!(&got, expected, "{file} secure={secure} {transport:?}");
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} rows");
}

#[test]
fn digest_vectors() {
    let mut checked = 0;
    for row in rows("digest.tsv") {
        let [
            alg,
            user,
            realm,
            pw,
            method,
            uri,
            nonce,
            nc,
            cnonce,
            qop,
            want,
        ] = row.as_slice()
        else {
            panic!("bad row {row:?}")
        };
        let challenge = DigestChallenge {
            realm: realm.clone(),
            nonce: nonce.clone(),
            opaque: None,
            algorithm: DigestAlgorithm::parse(alg).unwrap(),
            qop: if qop == "-" {
                vec![]
            } else {
                vec![qop.clone()]
            },
            stale: false,
        };
        let nc = if nc == "-" {
            1
        } else {
            u32::from_str_radix(nc, 16).unwrap()
        };
        let cnonce = (cnonce != "-").then_some(cnonce.as_str());
        let method = Method::parse(method).unwrap();
        let creds = respond(&challenge, user, pw, &method, uri, nc, cnonce).unwrap();
        assert_eq!(&creds.response, want, "{alg} {user}@{realm}");
        checked += 1;
    }
    assert_eq!(checked, 7);
}
