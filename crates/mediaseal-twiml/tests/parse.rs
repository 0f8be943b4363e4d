//! Parser behaviour: defaults, refusals and their Twilio codes, limits, XXE, lenient mode.

use std::num::NonZeroU32;

use mediaseal_twiml::*;
use proptest::prelude::*;

fn parse(s: &str) -> Result<Response, ParseError> {
    Response::parse(s.as_bytes())
}

fn code(s: &str) -> u16 {
    match parse(s) {
        Ok(doc) => panic!("{s} was accepted: {doc:?}"),
        Err(e) => {
            // Every message names a code a person can look up.
            assert!(e.to_string().contains(&e.code().to_string()), "{e}");
            e.code().0
        }
    }
}

fn one(s: &str) -> Verb {
    let mut doc = parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    assert_eq!(doc.verbs.len(), 1);
    doc.verbs.remove(0)
}

#[test]
fn defaults_match_twilio() {
    let Verb::Dial(d) = one("<Response><Dial>+14155550100</Dial></Response>") else {
        panic!()
    };
    assert_eq!(
        (
            d.timeout_secs,
            d.time_limit_secs,
            d.method,
            d.record,
            d.trim
        ),
        (
            30,
            14400,
            HttpMethod::Post,
            DialRecord::DoNotRecord,
            Trim::TrimSilence
        )
    );
    assert_eq!(
        d.recording_status_callback_event,
        RecordingEvents::default()
    );
    assert!(!d.answer_on_bridge && !d.hangup_on_star && d.ring_tone.is_none());

    let Verb::Record(r) = one("<Response><Record/></Response>") else {
        panic!()
    };
    assert_eq!(r, Record::default());
    assert_eq!(
        (
            r.timeout_secs,
            r.finish_on_key.as_str(),
            r.max_length_secs,
            r.play_beep
        ),
        (5, "1234567890*#", 3600, true)
    );

    let Verb::Gather(g) = one("<Response><Gather/></Response>") else {
        panic!()
    };
    assert_eq!(g, Gather::default());

    assert_eq!(
        one("<Response><Pause/></Response>"),
        Verb::Pause(Pause { length_secs: 1 })
    );
    let Verb::Say(s) = one("<Response><Say>  hi  </Say></Response>") else {
        panic!()
    };
    assert_eq!((s.text.as_str(), s.repeat), ("hi", Repeat::default()));
    let Verb::Redirect(r) = one("<Response><Redirect>/next</Redirect></Response>") else {
        panic!()
    };
    assert_eq!(r.method, HttpMethod::Post);
    assert_eq!(one("<Response><Hangup/></Response>"), Verb::Hangup);
}

#[test]
fn attribute_values() {
    let Verb::Dial(d) = one(
        r#"<Response><Dial record="false" method="get" hangupOnStar="TRUE" ringTone="us-old"
             recordingStatusCallbackEvent="in-progress"><Sip>sips:a@b.example</Sip></Dial></Response>"#,
    ) else {
        panic!()
    };
    assert_eq!(d.record, DialRecord::DoNotRecord);
    assert_eq!(d.method, HttpMethod::Get);
    assert!(d.hangup_on_star);
    assert_eq!(d.ring_tone.as_deref(), Some("us-old"));
    assert!(d.recording_status_callback_event.in_progress);
    assert!(!d.recording_status_callback_event.completed);
    for (value, mode) in [
        ("record-from-ringing", DialRecord::FromRinging),
        ("record-from-ringing-dual", DialRecord::FromRingingDual),
        ("true", DialRecord::FromAnswer),
    ] {
        let Verb::Dial(d) = one(&format!(
            r#"<Response><Dial record="{value}">+1415</Dial></Response>"#
        )) else {
            panic!()
        };
        assert_eq!(d.record, mode);
    }
    let Verb::Gather(g) =
        one(r#"<Response><Gather finishOnKey="" numDigits="4" timeout="0"/></Response>"#)
    else {
        panic!()
    };
    assert_eq!(g.finish_on_key, None);
    assert_eq!(g.num_digits, NonZeroU32::new(4));
    assert_eq!(g.timeout_secs, 0);
}

#[test]
fn refusals_and_their_codes() {
    let cases: &[(&str, u16)] = &[
        // XML and document shape.
        ("<Response>", 12100),
        ("not xml", 12100),
        ("<response/>", 12102),
        ("<Response version='2010-04-01'/>", 12200),
        ("<Response>hello</Response>", 12200),
        ("<Response><Sayy>x</Sayy></Response>", 12200),
        ("<Response><say>x</say></Response>", 12200),
        ("<Response><Conference>x</Conference></Response>", 12200),
        ("<Response><Connect/></Response>", 12200),
        // Dial.
        ("<Response><Dial/></Response>", 13215),
        ("<Response><Dial timeout='0'>+1415</Dial></Response>", 13212),
        (
            "<Response><Dial timeout='601'>+1415</Dial></Response>",
            13212,
        ),
        (
            "<Response><Dial timeout='-1'>+1415</Dial></Response>",
            13212,
        ),
        (
            "<Response><Dial timeout='1.5'>+1415</Dial></Response>",
            13212,
        ),
        (
            "<Response><Dial timeLimit='0'>+1415</Dial></Response>",
            13216,
        ),
        (
            "<Response><Dial method='PUT'>+1415</Dial></Response>",
            13210,
        ),
        (
            "<Response><Dial record='always'>+1415</Dial></Response>",
            13217,
        ),
        (
            "<Response><Dial hangupOnStar='yes'>+1415</Dial></Response>",
            13213,
        ),
        (
            "<Response><Dial answerOnBridge='1'>+1415</Dial></Response>",
            12200,
        ),
        ("<Response><Dial trim='yes'>+1415</Dial></Response>", 12200),
        (
            "<Response><Dial ringTone='USA'>+1415</Dial></Response>",
            12200,
        ),
        (
            "<Response><Dial recordingStatusCallbackEvent='done'>+1415</Dial></Response>",
            12200,
        ),
        (
            "<Response><Dial action='ftp://x/y'>+1415</Dial></Response>",
            11100,
        ),
        (
            "<Response><Dial action='javascript:alert(1)'>+1415</Dial></Response>",
            11100,
        ),
        ("<Response><Dial action=''>+1415</Dial></Response>", 11100),
        (
            "<Response><Dial sequential='true'>+1415</Dial></Response>",
            12200,
        ),
        ("<Response><Dial>call me</Dial></Response>", 13223),
        (
            "<Response><Dial>+1415<Number>+1416</Number></Dial></Response>",
            13215,
        ),
        (
            "<Response><Dial><Client>bob</Client></Dial></Response>",
            12200,
        ),
        ("<Response><Dial><Say>x</Say></Dial></Response>", 13215),
        (
            "<Response><Dial><Sip>sip:a@b</Sip><Number>+1</Number></Dial></Response>",
            13215,
        ),
        (
            "<Response><Dial><Number>+1</Number><Number>+2</Number><Number>+3</Number><Number>+4</Number><Number>+5</Number><Number>+6</Number><Number>+7</Number><Number>+8</Number><Number>+9</Number><Number>+10</Number><Number>+11</Number></Dial></Response>",
            13215,
        ),
        (
            "<Response><Dial callerId='+1 415'><Sip>sip:a@b</Sip></Dial></Response>",
            13247,
        ),
        (
            "<Response><Dial callerId='bob'>+1415</Dial></Response>",
            13214,
        ),
        // Sip and Number.
        ("<Response><Dial><Sip></Sip></Dial></Response>", 13243),
        (
            "<Response><Dial><Sip>sip:a@b?Foo=1</Sip></Dial></Response>",
            13252,
        ),
        (
            "<Response><Dial><Sip method='PUT'>sip:a@b</Sip></Dial></Response>",
            13241,
        ),
        (
            "<Response><Dial><Sip password=''>sip:a@b</Sip></Dial></Response>",
            13249,
        ),
        (
            "<Response><Dial><Sip machineDetection='Enable'>sip:a@b</Sip></Dial></Response>",
            12200,
        ),
        (
            "<Response><Dial><Sip statusCallbackEvent='hangup'>sip:a@b</Sip></Dial></Response>",
            12200,
        ),
        (
            "<Response><Dial><Number sendDigits='12x'>+1</Number></Dial></Response>",
            13222,
        ),
        (
            "<Response><Dial><Number method='HEAD'>+1</Number></Dial></Response>",
            13221,
        ),
        (
            "<Response><Dial><Number>+1234567890123456</Number></Dial></Response>",
            13223,
        ),
        // Record.
        ("<Response><Record timeout='x'/></Response>", 13611),
        ("<Response><Record maxLength='0'/></Response>", 13612),
        ("<Response><Record finishOnKey='a'/></Response>", 13613),
        ("<Response><Record transcribe='maybe'/></Response>", 13614),
        ("<Response><Record playBeep='no'/></Response>", 13616),
        ("<Response><Record method='DELETE'/></Response>", 13610),
        ("<Response><Record>text</Record></Response>", 12200),
        // Gather.
        ("<Response><Gather finishOnKey='##'/></Response>", 13310),
        ("<Response><Gather method='x'/></Response>", 13312),
        ("<Response><Gather timeout='601'/></Response>", 13313),
        ("<Response><Gather numDigits='0'/></Response>", 13314),
        ("<Response><Gather input='speech'/></Response>", 12200),
        ("<Response><Gather input='dtmf speech'/></Response>", 12200),
        ("<Response><Gather input='keys'/></Response>", 12200),
        ("<Response><Gather speechTimeout='auto'/></Response>", 12200),
        ("<Response><Gather><Record/></Gather></Response>", 13320),
        ("<Response><Gather>press 1</Gather></Response>", 13320),
        (
            "<Response><Gather><Say voice='robot'>x</Say></Gather></Response>",
            13321,
        ),
        (
            "<Response><Gather><Say loop='x'>x</Say></Gather></Response>",
            13322,
        ),
        // Say, Play, Pause, Redirect, Reject, Hangup.
        ("<Response><Say/></Response>", 13520),
        ("<Response><Say voice='robot'>x</Say></Response>", 13511),
        ("<Response><Say loop='1001'>x</Say></Response>", 13510),
        (
            "<Response><Say language='english please'>x</Say></Response>",
            12200,
        ),
        ("<Response><Say>a<break time='1s'/></Say></Response>", 12200),
        ("<Response><Play/></Response>", 12200),
        (
            "<Response><Play digits='12'>https://a/b.wav</Play></Response>",
            12200,
        ),
        ("<Response><Play digits='1x'/></Response>", 12200),
        (
            "<Response><Play loop='-1'>https://a/b.wav</Play></Response>",
            13410,
        ),
        (
            "<Response><Play>file:///etc/passwd</Play></Response>",
            11100,
        ),
        ("<Response><Pause length='0'/></Response>", 13910),
        ("<Response><Pause length='3601'/></Response>", 13910),
        ("<Response><Pause>1</Pause></Response>", 12200),
        ("<Response><Redirect/></Response>", 11100),
        (
            "<Response><Redirect method='PATCH'>/x</Redirect></Response>",
            13710,
        ),
        (
            "<Response><Redirect>http://exa mple.com/</Redirect></Response>",
            11100,
        ),
        ("<Response><Reject reason='no'/></Response>", 12200),
        ("<Response><Hangup now='true'/></Response>", 12200),
        ("<Response><Hangup><Say>x</Say></Hangup></Response>", 12200),
    ];
    for (doc, expected) in cases {
        assert_eq!(code(doc), *expected, "{doc}");
    }
    let long = "a".repeat(MAX_SAY_CHARS + 1);
    assert_eq!(
        code(&format!("<Response><Say>{long}</Say></Response>")),
        13520
    );
}

#[test]
fn errors_name_the_element_and_attribute() {
    let err = parse("<Response><Dial timeout='soon'>+1415</Dial></Response>").unwrap_err();
    assert_eq!(err.element(), Some("Dial"));
    assert_eq!(err.attribute(), Some("timeout"));
    assert_eq!(
        err.to_string(),
        "<Dial timeout=\"soon\">: expected an integer from 1 to 600 (Twilio error 13212)"
    );
    let err = parse("<Response><Say colour='blue'>x</Say></Response>").unwrap_err();
    assert!(matches!(
        &err,
        ParseError::UnknownAttribute { element, attribute } if element == "Say" && attribute == "colour"
    ));
    // Long values are cut; passwords are never quoted.
    let err = parse(&format!(
        "<Response><Dial timeout='{}'>+1</Dial></Response>",
        "9".repeat(500)
    ))
    .unwrap_err();
    assert!(err.to_string().len() < 200, "{err}");
    let err = parse(&format!(
        "<Response><Dial><Sip password='{}'>sip:a@b</Sip></Dial></Response>",
        "hunter2".repeat(50)
    ))
    .unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert_eq!(err.code(), TwilioCode::SIP_CREDENTIALS);
}

#[test]
fn no_external_entities() {
    // A file the document tries to pull in through an external entity.
    let secret = std::env::temp_dir().join(format!("twiml-xxe-{}.txt", std::process::id()));
    std::fs::write(&secret, "TOP-SECRET-XXE-CANARY").unwrap();
    let uri = format!("file://{}", secret.display());
    let attacks = [
        format!(
            "<?xml version=\"1.0\"?><!DOCTYPE Response [<!ENTITY xxe SYSTEM \"{uri}\">]><Response><Say>&xxe;</Say></Response>"
        ),
        format!(
            "<!DOCTYPE Response SYSTEM \"{uri}\"><Response><Say>hi</Say></Response>"
        ),
        // Parameter entities and the billion-laughs shape.
        format!(
            "<!DOCTYPE r [<!ENTITY % p SYSTEM \"{uri}\"> %p;]><Response/>"
        ),
        "<!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">]><Response><Say>&b;</Say></Response>".to_owned(),
    ];
    for doc in &attacks {
        let err = parse(doc).unwrap_err();
        assert_eq!(err, ParseError::Doctype, "{doc}");
        assert_eq!(err.code(), TwilioCode::DOCUMENT_PARSE_FAILURE);
        assert!(!format!("{err} {err:?}").contains("CANARY"));
    }
    // Without a DOCTYPE an entity reference is simply undefined.
    let err = parse("<Response><Say>&xxe;</Say></Response>").unwrap_err();
    assert!(matches!(err, ParseError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("undefined entity &xxe;"), "{err}");
    std::fs::remove_file(secret).unwrap();
}

#[test]
fn limits_are_enforced() {
    let big = format!("<Response>{}</Response>", "<Pause/>".repeat(65 * 1024 / 8));
    assert!(matches!(
        parse(&big),
        Err(ParseError::TooLarge { limit: 65536, .. })
    ));
    assert_eq!(code(&big), 11750);
    let many = format!("<Response>{}</Response>", "<Hangup/>".repeat(257));
    assert!(matches!(
        parse(&many),
        Err(ParseError::TooMany { what: "verbs", .. })
    ));
    let deep = format!(
        "<Response>{}{}</Response>",
        "<a>".repeat(10),
        "</a>".repeat(10)
    );
    assert!(matches!(
        parse(&deep),
        Err(ParseError::TooDeep { depth: 9, .. })
    ));
    let tight = ParseOptions {
        limits: Limits {
            max_verbs: 2,
            ..Limits::default()
        },
        ..ParseOptions::default()
    };
    assert!(
        Response::parse_with(
            b"<Response><Gather><Say>a</Say><Say>b</Say></Gather></Response>",
            &tight
        )
        .is_err(),
        "nested prompts count as verbs"
    );
}

#[test]
fn lenient_mode_skips_unknown_attributes_like_twilio() {
    let options = ParseOptions {
        unknown_attributes: AttributePolicy::Ignore,
        ..ParseOptions::default()
    };
    let parsed = Response::parse_with(
        br#"<Response><Dial sequential="true" timeout="9"><Sip machineDetection="Enable">sip:a@b</Sip></Dial><Say colour="blue">x</Say></Response>"#,
        &options,
    )
    .unwrap();
    assert_eq!(parsed.response.verbs.len(), 2);
    let Verb::Dial(d) = &parsed.response.verbs[0] else {
        panic!()
    };
    assert_eq!(d.timeout_secs, 9);
    let ignored: Vec<String> = parsed.ignored.iter().map(ToString::to_string).collect();
    assert_eq!(ignored.len(), 3, "{ignored:?}");
    assert!(ignored[0].contains("<Dial sequential>"));
    assert!(ignored[2].contains("`colour`"));
    // Bad values of known attributes are still refused.
    assert!(Response::parse_with(b"<Response><Pause length='x'/></Response>", &options).is_err());
}

#[test]
fn xml_details() {
    // Declaration, BOM, comments, CDATA, character references, whitespace.
    let doc = "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!-- menu -->\n<Response>\n  <Say><![CDATA[1 < 2 & 3]]> &#x263A;</Say>\n</Response>\n";
    let Verb::Say(s) = one(doc) else { panic!() };
    assert_eq!(s.text, "1 < 2 & 3 \u{263A}");
    assert_eq!(code("<Response><Say>a</Say></Response><Response/>"), 12100);
    assert_eq!(
        code("<?xml version='1.0' encoding='UTF-16'?><Response/>"),
        12100
    );
    assert_eq!(
        Response::parse(b"<Response><Say>\xc3\x28</Say></Response>")
            .unwrap_err()
            .code()
            .0,
        12100
    );
    assert!("<Response/>".parse::<Response>().unwrap().verbs.is_empty());
}

#[test]
fn serialiser_escapes_and_round_trips() {
    let doc = parse(
        "<Response><Say voice=\"alice\">Tom &amp; Jerry say &quot;hi&quot; &lt;now&gt;&#13;</Say>\
         <Dial callerId=\"+1415\" action=\"/a?x=1&amp;y=2\"><Number sendDigits=\"1#\">+1 (415) 555-0100</Number></Dial></Response>",
    )
    .unwrap();
    let xml = doc.to_xml();
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>"));
    assert!(xml.contains("Tom &amp; Jerry"));
    assert!(xml.contains("action=\"/a?x=1&amp;y=2\""));
    assert_eq!(parse(&xml).unwrap(), doc);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Arbitrary text built from TwiML fragments never panics the parser, and whatever parses
    /// survives a round trip through the serialiser.
    #[test]
    fn fragments_never_panic_and_round_trip(parts in proptest::collection::vec(prop_oneof![
        Just("<Response>"), Just("</Response>"), Just("<Dial timeout=\"5\">"), Just("</Dial>"),
        Just("<Sip>sip:a@b.example;secure=true</Sip>"), Just("<Number>+14155550100</Number>"),
        Just("<Gather numDigits=\"3\">"), Just("</Gather>"), Just("<Say>"), Just("</Say>"),
        Just("hello &amp; bye"), Just("<Play loop=\"0\">/a.wav</Play>"), Just("<Pause/>"),
        Just("<Record/>"), Just("<Redirect>/x</Redirect>"), Just("<Reject reason=\"busy\"/>"),
        Just("<Hangup/>"), Just("&#13;"), Just("<![CDATA[<x>]]>"), Just(" "), Just("+1415"),
        Just("<!-- c -->"), Just("<Say voice=\"alice\" loop=\"2\">hi</Say>"),
    ], 0..24)) {
        let doc: String = parts.concat();
        if let Ok(parsed) = parse(&doc) {
            let again = parse(&parsed.to_xml());
            prop_assert_eq!(again.as_ref(), Ok(&parsed));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Response::parse(&bytes);
    }
}

#[test]
fn recording_status_callback_event_accepts_failed() {
    // Seed 000: customers subscribe to `failed` to hear about recordings that could not be stored.
    let Verb::Record(r) = one(
        r#"<Response><Record recordingStatusCallback="https://a.example/r" recordingStatusCallbackEvent="completed failed"/></Response>"#,
    ) else {
        panic!()
    };
    let events = r.recording_status_callback_event;
    assert!(events.completed && events.failed && !events.absent && !events.in_progress);
    assert_eq!(events.to_attribute(), "completed failed");
    assert_eq!(
        code(r#"<Response><Record recordingStatusCallbackEvent="completed broken"/></Response>"#),
        12200
    );
}
