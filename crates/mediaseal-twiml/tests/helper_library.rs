//! Documents written by Twilio's helper library (twilio-python 9.13.0, see
//! `generate_twiml.py`) parse into the structure they describe; the ones Twilio refuses are
//! refused with the code in their file name; and everything accepted survives a round trip
//! through [`Response::to_xml`].

use std::num::NonZeroU32;
use std::path::PathBuf;

use mediaseal_twiml::*;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/twiml")
}

fn load(name: &str) -> Response {
    let bytes = std::fs::read(dir().join(name)).expect("read testdata");
    Response::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn only_verb(doc: &Response) -> &Verb {
    assert_eq!(doc.verbs.len(), 1, "{doc:?}");
    &doc.verbs[0]
}

#[test]
fn every_file_is_covered_and_refusals_carry_their_code() {
    let mut accepted = 0;
    let mut refused = 0;
    for entry in std::fs::read_dir(dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("xml") {
            continue;
        }
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let bytes = std::fs::read(&path).unwrap();
        match name.strip_prefix("refused_") {
            Some(rest) => {
                let code: u16 = rest[..5].parse().unwrap();
                let err = Response::parse(&bytes).expect_err(&name);
                assert_eq!(err.code(), TwilioCode(code), "{name}: {err}");
                refused += 1;
            }
            None => {
                let doc = Response::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
                let again = Response::parse(doc.to_xml().as_bytes())
                    .unwrap_or_else(|e| panic!("{name} round trip: {e}\n{}", doc.to_xml()));
                assert_eq!(doc, again, "{name} round trip");
                accepted += 1;
            }
        }
    }
    assert_eq!((accepted, refused), (11, 8));
}

#[test]
fn seed_004_secure_dial() {
    let doc = load("seed004_secure_dial.xml");
    let Verb::Dial(dial) = only_verb(&doc) else {
        panic!("{doc:?}")
    };
    assert_eq!(dial.timeout_secs, 30);
    assert_eq!(dial.time_limit_secs, 14400);
    assert_eq!(dial.method, HttpMethod::Post);
    assert_eq!(dial.record, DialRecord::DoNotRecord);
    assert!(dial.action.is_none() && dial.caller_id.is_none());
    let DialTarget::Sip(sip) = &dial.target else {
        panic!("{dial:?}")
    };
    assert_eq!(sip.uri.as_str(), "sip:jack@example.com;secure=true");
    assert!(sip.uri.secure);
    assert_eq!(sip.uri.effective_port(), 5061);
    assert_eq!(sip.uri.host, "example.com");
    assert!(sip.username.is_none() && sip.password.is_none());
}

#[test]
fn dial_sip_with_every_attribute() {
    let doc = load("dial_sip_all_attributes.xml");
    assert_eq!(doc.verbs.len(), 2);
    let Verb::Dial(dial) = &doc.verbs[0] else {
        panic!()
    };
    assert_eq!(dial.action.as_ref().unwrap().as_str(), "/dial-done");
    assert_eq!(dial.method, HttpMethod::Get);
    assert_eq!(dial.timeout_secs, 20);
    assert_eq!(dial.time_limit_secs, 600);
    assert_eq!(dial.caller_id.as_deref(), Some("+14155550100"));
    assert_eq!(dial.record, DialRecord::FromAnswerDual);
    assert_eq!(dial.trim, Trim::DoNotTrim);
    assert_eq!(
        dial.recording_status_callback.as_ref().unwrap().as_str(),
        "https://hooks.example.com/recording"
    );
    assert_eq!(dial.recording_status_callback_method, HttpMethod::Get);
    assert_eq!(
        dial.recording_status_callback_event,
        RecordingEvents {
            in_progress: true,
            completed: true,
            absent: true,
            failed: false
        }
    );
    assert!(dial.answer_on_bridge && dial.hangup_on_star);
    assert_eq!(dial.ring_tone.as_deref(), Some("uk"));

    let DialTarget::Sip(sip) = &dial.target else {
        panic!()
    };
    assert_eq!(sip.username.as_deref(), Some("mediaseal"));
    assert_eq!(sip.password.as_ref().unwrap().expose(), "s3cret-Pa55");
    assert!(!format!("{sip:?}").contains("s3cret"), "password in Debug");
    assert_eq!(
        sip.url.as_ref().unwrap().as_str(),
        "https://app.example.com/whisper"
    );
    assert_eq!(sip.method, HttpMethod::Get);
    assert_eq!(
        sip.status_callback_event,
        CallProgressEvents {
            initiated: true,
            ringing: true,
            answered: true,
            completed: true
        }
    );
    assert_eq!(sip.status_callback_method, HttpMethod::Get);
    assert_eq!(sip.uri.transport, Some(SipTransport::Tls));
    assert_eq!(sip.uri.port, Some(5071));
    assert_eq!(
        sip.uri.headers,
        vec![
            ("X-Account".to_owned(), "12345".to_owned()),
            ("X-Reason".to_owned(), "pin reset".to_owned())
        ]
    );
    assert!(matches!(&doc.verbs[1], Verb::Say(s) if s.text == "The other party hung up. Goodbye."));
}

#[test]
fn dial_numbers_and_plain_text() {
    let doc = load("dial_numbers.xml");
    let [Verb::Dial(plain), Verb::Dial(nouns)] = &doc.verbs[..] else {
        panic!("{doc:?}")
    };
    assert_eq!(
        plain.target,
        DialTarget::Numbers(vec![Number::new("415-123-4567")])
    );
    assert_eq!(nouns.record, DialRecord::FromAnswer, "record=\"true\"");
    let DialTarget::Numbers(numbers) = &nouns.target else {
        panic!()
    };
    assert_eq!(numbers.len(), 2);
    assert_eq!(numbers[0].number, "+14155550100");
    assert_eq!(numbers[0].send_digits.as_deref(), Some("wwww1928#"));
    assert_eq!(numbers[1].url.as_ref().unwrap().as_str(), "/screen");
    assert_eq!(numbers[1].method, HttpMethod::Get);
    assert_eq!(
        numbers[1].status_callback_event,
        CallProgressEvents {
            initiated: false,
            ringing: false,
            answered: true,
            completed: true
        }
    );
}

#[test]
fn gather_with_prompts() {
    let doc = load("gather_pin.xml");
    let [Verb::Gather(g), Verb::Say(_), Verb::Redirect(r)] = &doc.verbs[..] else {
        panic!("{doc:?}")
    };
    assert_eq!(g.input, GatherInput::Dtmf);
    assert_eq!(g.action.as_ref().unwrap().as_str(), "/pin");
    assert_eq!(g.timeout_secs, 10);
    assert_eq!(g.finish_on_key, Some('#'));
    assert_eq!(g.num_digits, NonZeroU32::new(6));
    assert!(g.action_on_empty_result);
    let [Prompt::Say(say), Prompt::Play(play), Prompt::Pause(pause)] = &g.prompts[..] else {
        panic!("{g:?}")
    };
    assert_eq!(say.voice.as_deref(), Some("alice"));
    assert_eq!(say.language.as_deref(), Some("en-GB"));
    let PlaySource::Url(beep) = &play.source else {
        panic!("{play:?}")
    };
    assert_eq!(beep.as_str(), "https://media.example.com/beep.wav");
    assert_eq!(pause.length_secs, 2);
    assert_eq!(r.url.as_str(), "/menu");
    assert_eq!(r.method, HttpMethod::Get);

    let doc = load("gather_defaults.xml");
    let Verb::Gather(g) = only_verb(&doc) else {
        panic!()
    };
    assert_eq!(
        (
            g.timeout_secs,
            g.finish_on_key,
            g.num_digits,
            g.action_on_empty_result
        ),
        (5, Some('#'), None, false)
    );
    assert!(g.action.is_none());
}

#[test]
fn record_voicemail() {
    let doc = load("record_voicemail.xml");
    let [Verb::Say(say), Verb::Record(rec), Verb::Hangup] = &doc.verbs[..] else {
        panic!("{doc:?}")
    };
    assert_eq!(say.voice.as_deref(), Some("Polly.Joanna"));
    assert_eq!(rec.timeout_secs, 3);
    assert_eq!(rec.finish_on_key, "*");
    assert_eq!(rec.max_length_secs, 120);
    assert!(!rec.play_beep && !rec.transcribe);
    assert_eq!(rec.trim, Trim::TrimSilence);
    assert_eq!(
        rec.recording_status_callback.as_ref().unwrap().as_str(),
        "/recording-status"
    );
    assert_eq!(
        rec.recording_status_callback_event,
        RecordingEvents {
            in_progress: false,
            completed: true,
            absent: true,
            failed: false
        }
    );
}

#[test]
fn play_say_pause() {
    let doc = load("play_say_pause.xml");
    let [
        Verb::Play(hold),
        Verb::Play(digits),
        Verb::Say(say),
        Verb::Pause(pause),
    ] = &doc.verbs[..]
    else {
        panic!("{doc:?}")
    };
    assert_eq!(hold.repeat, Repeat::UntilHangup);
    assert_eq!(digits.source, PlaySource::Digits("ww1234#".to_owned()));
    assert_eq!(say.text, "Hello & welcome <to> \"mediaseal\"");
    assert_eq!(say.repeat, Repeat::Times(NonZeroU32::new(2).unwrap()));
    assert_eq!(say.voice.as_deref(), Some("Google.en-US-Standard-C"));
    assert_eq!(pause.length_secs, 3);
}

#[test]
fn reject_redirect_empty() {
    assert_eq!(
        only_verb(&load("reject_busy.xml")),
        &Verb::Reject(Reject {
            reason: RejectReason::Busy
        })
    );
    assert_eq!(
        only_verb(&load("reject_default.xml")),
        &Verb::Reject(Reject {
            reason: RejectReason::Rejected
        })
    );
    let doc = load("redirect_get.xml");
    let Verb::Redirect(r) = only_verb(&doc) else {
        panic!()
    };
    let base: url::Url = "https://app.example.com/ivr/start".parse().unwrap();
    assert_eq!(
        r.url.resolve(Some(&base)).unwrap().as_str(),
        "https://app.example.com/next?step=2"
    );
    assert!(load("empty.xml").verbs.is_empty());
}
