//! TwiML: arbitrary bytes never panic the parser; whatever parses serialises to TwiML that
//! parses to the same document; and the interpreter runs the document against events chosen by
//! the input's last bytes without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediaseal_twiml::{
    DialCallStatus, DialOutcome, Event, HttpMethod, Interpreter, InterpreterConfig, RecordingInfo,
    RecordingOutcome, Response, TwilioCode,
};

fuzz_target!(|data: &[u8]| {
    let Ok(document) = Response::parse(data) else {
        return;
    };
    let xml = document.to_xml();
    let again = Response::parse(xml.as_bytes()).expect("serialised TwiML parses");
    assert_eq!(again, document, "round trip changed the document:\n{xml}");

    let url = "https://app.example.com/ivr/voice"
        .parse()
        .expect("static URL");
    let mut call = Interpreter::new(InterpreterConfig::inbound(url, HttpMethod::Post));
    let mut next_document = Some(document);
    for &b in data.iter().rev().take(64) {
        while call.poll_command().is_some() {}
        if call.is_finished() {
            break;
        }
        let event = match b % 11 {
            0 => match next_document.take() {
                Some(d) => Event::TwimlFetched(d),
                None => Event::TwimlFetched(again.clone()),
            },
            1 => Event::FetchFailed {
                code: TwilioCode(11200),
            },
            2 => Event::PlaybackDone,
            3 => Event::PauseElapsed,
            4 => Event::GatherTimeout,
            5 => Event::DigitsCollected {
                digits: "12".into(),
                finished_on_key: Some('#'),
            },
            6 => Event::DialEnded(DialOutcome {
                status: DialCallStatus::Completed,
                call_sid: Some("CA1".into()),
                duration_secs: Some(3),
                sip_call_id: None,
                sip_response_code: Some(200),
                recording: None,
            }),
            7 => Event::RecordingFinished(RecordingOutcome {
                recording: (b & 0x80 != 0).then(|| RecordingInfo {
                    sid: "RE1".into(),
                    url: "https://api.example.com/RE1".into(),
                    duration_secs: 2,
                }),
                digits: None,
            }),
            8 => Event::Answered,
            9 if b & 0x40 != 0 => Event::CallerHungUp,
            _ => match next_document.take() {
                Some(d) => Event::TwimlFetched(d),
                None => Event::PlaybackDone,
            },
        };
        let _ = call.handle(event);
    }
});
