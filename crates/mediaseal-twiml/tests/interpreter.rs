//! Interpreter scenarios: a sequence of call events in, the exact commands out.

use std::time::Duration;

use mediaseal_twiml::*;
use url::Url;

const VOICE_URL: &str = "https://app.example.com/ivr/voice";

fn url(s: &str) -> Url {
    s.parse().unwrap()
}

fn doc(s: &str) -> Response {
    Response::parse(s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn drain(call: &mut Interpreter) -> Vec<Command> {
    std::iter::from_fn(|| call.poll_command()).collect()
}

fn fetch(u: &str, method: HttpMethod, params: &[(&str, &str)], purpose: FetchPurpose) -> Command {
    Command::Fetch(FetchRequest {
        url: url(u),
        method,
        params: params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        purpose,
    })
}

fn script_fetch(u: &str) -> Command {
    fetch(u, HttpMethod::Post, &[], FetchPurpose::Script)
}

fn hangup() -> Command {
    Command::Hangup {
        reason: HangupReason::Completed,
    }
}

fn say(text: &str) -> Command {
    Command::Say {
        text: text.to_owned(),
        voice: None,
        language: None,
        repeat: Repeat::default(),
    }
}

/// An inbound call that has rung and fetched `VoiceUrl`, now given `twiml`.
fn inbound(twiml: &str) -> (Interpreter, Vec<Command>) {
    let mut call = Interpreter::new(InterpreterConfig::inbound(url(VOICE_URL), HttpMethod::Post));
    assert_eq!(drain(&mut call), [Command::Ring, script_fetch(VOICE_URL)]);
    call.handle(Event::TwimlFetched(doc(twiml))).unwrap();
    let commands = drain(&mut call);
    (call, commands)
}

#[test]
fn seed_004_secure_dial_then_hang_up() {
    let (mut call, commands) = inbound(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial><Sip>sip:jack@example.com;secure=true</Sip></Dial></Response>"#,
    );
    let [Command::Answer, Command::Dial(dial)] = &commands[..] else {
        panic!("{commands:?}")
    };
    assert_eq!(dial.timeout, Duration::from_secs(30));
    assert_eq!(dial.time_limit, Duration::from_secs(14400));
    assert!(dial.recording.is_none() && !dial.answer_on_bridge);
    let [DialLeg::Sip { uri, .. }] = &dial.legs[..] else {
        panic!("{dial:?}")
    };
    assert!(uri.secure && uri.requires_tls());
    assert_eq!(uri.effective_port(), 5061);

    // No action: the next verb runs, and there is none, so the call hangs up (no second 200).
    call.handle(Event::DialEnded(DialOutcome {
        status: DialCallStatus::Completed,
        call_sid: Some("CA1".into()),
        duration_secs: Some(12),
        sip_call_id: None,
        sip_response_code: Some(200),
        recording: None,
    }))
    .unwrap();
    assert_eq!(drain(&mut call), [hangup()]);
    assert!(call.is_finished());
}

#[test]
fn dial_action_gets_dial_parameters_and_recording_settings() {
    let (mut call, commands) = inbound(
        r#"<Response><Dial action="dial-done" method="GET" timeout="15" timeLimit="60" callerId="mediaseal"
             record="record-from-answer-dual" recordingStatusCallback="/rec" recordingStatusCallbackEvent="in-progress completed">
             <Sip username="u" password="p" url="/whisper" statusCallback="https://cb.example.com/leg" statusCallbackEvent="answered">sip:jack@127.0.0.2;secure=true</Sip>
           </Dial><Say>not reached</Say></Response>"#,
    );
    let [Command::Answer, Command::Dial(dial)] = &commands[..] else {
        panic!("{commands:?}")
    };
    assert_eq!(dial.timeout, Duration::from_secs(15));
    assert_eq!(dial.time_limit, Duration::from_secs(60));
    assert_eq!(dial.caller_id.as_deref(), Some("mediaseal"));
    let recording = dial.recording.as_ref().unwrap();
    assert_eq!(recording.mode, DialRecord::FromAnswerDual);
    let callback = recording.status_callback.as_ref().unwrap();
    assert_eq!(callback.target.url, url("https://app.example.com/rec"));
    assert!(callback.events.in_progress && callback.events.completed);
    let [
        DialLeg::Sip {
            username,
            password,
            whisper,
            status_callback,
            ..
        },
    ] = &dial.legs[..]
    else {
        panic!()
    };
    assert_eq!(username.as_deref(), Some("u"));
    assert_eq!(password.as_ref().unwrap().expose(), "p");
    assert!(!format!("{dial:?}").contains("\"p\""));
    assert_eq!(
        whisper.as_ref().unwrap().url,
        url("https://app.example.com/whisper")
    );
    let leg_cb = status_callback.as_ref().unwrap();
    assert!(leg_cb.events.answered && !leg_cb.events.completed);

    call.handle(Event::DialEnded(DialOutcome {
        status: DialCallStatus::Busy,
        call_sid: Some("CAdial".into()),
        duration_secs: None,
        sip_call_id: Some("abc@127.0.0.2".into()),
        sip_response_code: Some(486),
        recording: None,
    }))
    .unwrap();
    assert_eq!(
        drain(&mut call),
        [fetch(
            "https://app.example.com/ivr/dial-done",
            HttpMethod::Get,
            &[
                ("DialCallStatus", "busy"),
                ("DialCallSid", "CAdial"),
                ("DialSipCallId", "abc@127.0.0.2"),
                ("DialSipResponseCode", "486"),
            ],
            FetchPurpose::Script
        )]
    );
    // The action's document replaces the old one.
    call.handle(Event::TwimlFetched(doc(
        "<Response><Say>busy</Say></Response>",
    )))
    .unwrap();
    assert_eq!(drain(&mut call), [say("busy")]);
    call.handle(Event::PlaybackDone).unwrap();
    assert_eq!(drain(&mut call), [hangup()]);
}

#[test]
fn dial_recording_reaches_the_action() {
    let (mut call, _) =
        inbound(r#"<Response><Dial action="/after" record="true">+14155550100</Dial></Response>"#);
    call.handle(Event::DialEnded(DialOutcome {
        status: DialCallStatus::Completed,
        call_sid: None,
        duration_secs: Some(42),
        sip_call_id: None,
        sip_response_code: None,
        recording: Some(RecordingInfo {
            sid: "RE1".into(),
            url: "https://api.example.com/RE1".into(),
            duration_secs: 41,
        }),
    }))
    .unwrap();
    let [Command::Fetch(f)] = &drain(&mut call)[..] else {
        panic!()
    };
    let names: Vec<&str> = f.params.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "DialCallStatus",
            "DialCallDuration",
            "RecordingUrl",
            "RecordingDuration",
            "RecordingSid"
        ]
    );
}

#[test]
fn answer_on_bridge_keeps_the_caller_ringing() {
    let (mut call, commands) = inbound(
        r#"<Response><Dial answerOnBridge="true"><Sip>sip:jack@example.com</Sip></Dial><Say>bye</Say></Response>"#,
    );
    assert!(matches!(&commands[..], [Command::Dial(d)] if d.answer_on_bridge));
    assert!(!call.is_answered());
    call.handle(Event::Answered).unwrap();
    assert!(call.is_answered());
    call.handle(Event::DialEnded(DialOutcome {
        status: DialCallStatus::Completed,
        call_sid: None,
        duration_secs: Some(3),
        sip_call_id: None,
        sip_response_code: None,
        recording: None,
    }))
    .unwrap();
    // Already answered on the bridge: no second Answer.
    assert_eq!(drain(&mut call), [say("bye")]);

    // Unanswered dial: the next verb answers.
    let (mut call, _) = inbound(
        r#"<Response><Dial answerOnBridge="true" timeout="5">+14155550100</Dial><Say>nobody</Say></Response>"#,
    );
    call.handle(Event::DialEnded(DialOutcome {
        status: DialCallStatus::NoAnswer,
        call_sid: None,
        duration_secs: None,
        sip_call_id: None,
        sip_response_code: Some(487),
        recording: None,
    }))
    .unwrap();
    assert_eq!(drain(&mut call), [Command::Answer, say("nobody")]);
}

#[test]
fn gather_pin_posts_digits_to_the_action() {
    let (mut call, commands) = inbound(
        r#"<Response><Gather action="/pin" numDigits="4" timeout="7"><Say voice="alice">Enter your PIN</Say><Play>prompts/beep.wav</Play><Pause length="2"/><Play digits="1"/></Gather><Say>unreached</Say></Response>"#,
    );
    let [Command::Answer, Command::CollectDigits(collect)] = &commands[..] else {
        panic!("{commands:?}")
    };
    assert_eq!(collect.timeout, Duration::from_secs(7));
    assert_eq!(collect.finish_on_key, Some('#'));
    assert_eq!(collect.num_digits.map(|n| n.get()), Some(4));
    assert_eq!(
        collect.prompts,
        [
            PromptCommand::Say {
                text: "Enter your PIN".into(),
                voice: Some("alice".into()),
                language: None,
                repeat: Repeat::default()
            },
            PromptCommand::Play {
                url: url("https://app.example.com/ivr/prompts/beep.wav"),
                repeat: Repeat::default()
            },
            PromptCommand::Pause {
                duration: Duration::from_secs(2)
            },
            PromptCommand::SendDigits { digits: "1".into() },
        ]
    );
    // Prompts belong to CollectDigits: a stray PlaybackDone is refused.
    assert!(call.handle(Event::PlaybackDone).is_err());
    call.handle(Event::DigitsCollected {
        digits: "1234".into(),
        finished_on_key: None,
    })
    .unwrap();
    assert_eq!(
        drain(&mut call),
        [fetch(
            "https://app.example.com/pin",
            HttpMethod::Post,
            &[("Digits", "1234")],
            FetchPurpose::Script
        )]
    );
}

#[test]
fn gather_without_input_falls_through_or_posts_empty() {
    let (mut call, _) = inbound(r#"<Response><Gather action="/g"/><Say>no input</Say></Response>"#);
    call.handle(Event::GatherTimeout).unwrap();
    assert_eq!(drain(&mut call), [say("no input")]);

    // Only the finish key: empty digits, the same as no input.
    let (mut call, _) = inbound(r#"<Response><Gather/></Response>"#);
    call.handle(Event::DigitsCollected {
        digits: String::new(),
        finished_on_key: Some('#'),
    })
    .unwrap();
    assert_eq!(drain(&mut call), [hangup()]);

    let (mut call, _) =
        inbound(r#"<Response><Gather actionOnEmptyResult="true" method="GET"/></Response>"#);
    call.handle(Event::GatherTimeout).unwrap();
    // No action: the current document's URL.
    assert_eq!(
        drain(&mut call),
        [fetch(
            VOICE_URL,
            HttpMethod::Get,
            &[("Digits", "")],
            FetchPurpose::Script
        )]
    );

    let (mut call, _) = inbound(r#"<Response><Gather finishOnKey="*"/></Response>"#);
    call.handle(Event::DigitsCollected {
        digits: "42".into(),
        finished_on_key: Some('*'),
    })
    .unwrap();
    assert_eq!(
        drain(&mut call),
        [fetch(
            VOICE_URL,
            HttpMethod::Post,
            &[("Digits", "42"), ("FinishedOnKey", "*")],
            FetchPurpose::Script
        )]
    );
}

#[test]
fn redirect_and_pause_keep_ringing_and_reject_refuses() {
    let (mut call, commands) = inbound(
        r#"<Response><Pause length="2"/><Redirect method="GET">/ivr/next</Redirect></Response>"#,
    );
    assert_eq!(
        commands,
        [Command::Pause {
            duration: Duration::from_secs(2)
        }]
    );
    call.handle(Event::PauseElapsed).unwrap();
    assert_eq!(
        drain(&mut call),
        [fetch(
            "https://app.example.com/ivr/next",
            HttpMethod::Get,
            &[],
            FetchPurpose::Script
        )]
    );
    call.handle(Event::TwimlFetched(doc(
        r#"<Response><Reject reason="busy"/></Response>"#,
    )))
    .unwrap();
    assert_eq!(drain(&mut call), [Command::Reject { status: 486 }]);
    assert!(call.is_finished() && !call.is_answered());
    assert_eq!(
        call.document_url(),
        Some(&url("https://app.example.com/ivr/next"))
    );

    let (call, commands) = inbound("<Response><Reject/></Response>");
    assert_eq!(commands, [Command::Reject { status: 603 }]);
    assert!(call.is_finished());

    // Twilio's current page says 404 for reason="rejected": configurable.
    let mut config = InterpreterConfig::inbound(url(VOICE_URL), HttpMethod::Post);
    config.reject_status.rejected = 404;
    let mut call = Interpreter::new(config);
    drain(&mut call);
    call.handle(Event::TwimlFetched(doc("<Response><Reject/></Response>")))
        .unwrap();
    assert_eq!(drain(&mut call), [Command::Reject { status: 404 }]);
}

#[test]
fn reject_after_answer_hangs_up_and_hangup_answers_first() {
    let (mut call, commands) = inbound("<Response><Say>hi</Say><Reject/></Response>");
    assert_eq!(commands, [Command::Answer, say("hi")]);
    call.handle(Event::PlaybackDone).unwrap();
    assert_eq!(drain(&mut call), [hangup()]);

    let (_, commands) = inbound("<Response><Hangup/><Say>unreached</Say></Response>");
    assert_eq!(commands, [Command::Answer, hangup()]);

    let (_, commands) = inbound("<Response/>");
    assert_eq!(commands, [Command::Answer, hangup()]);
}

#[test]
fn record_skips_action_when_empty_and_posts_recording_otherwise() {
    let twiml = r#"<Response><Record maxLength="30" timeout="0" playBeep="false" recordingStatusCallback="/rs"/><Say>nothing recorded</Say></Response>"#;
    let (mut call, commands) = inbound(twiml);
    let [Command::Answer, Command::Record(rec)] = &commands[..] else {
        panic!("{commands:?}")
    };
    assert_eq!(rec.max_length, Duration::from_secs(30));
    assert_eq!(rec.silence_timeout, None);
    assert!(!rec.play_beep);
    assert_eq!(
        rec.status_callback.as_ref().unwrap().target.url,
        url("https://app.example.com/rs")
    );
    call.handle(Event::RecordingFinished(RecordingOutcome {
        recording: None,
        digits: None,
    }))
    .unwrap();
    assert_eq!(drain(&mut call), [say("nothing recorded")]);

    let (mut call, _) = inbound(twiml);
    call.handle(Event::RecordingFinished(RecordingOutcome {
        recording: Some(RecordingInfo {
            sid: "RE9".into(),
            url: "https://api.example.com/RE9".into(),
            duration_secs: 7,
        }),
        digits: Some("#".into()),
    }))
    .unwrap();
    assert_eq!(
        drain(&mut call),
        [fetch(
            VOICE_URL,
            HttpMethod::Post,
            &[
                ("RecordingUrl", "https://api.example.com/RE9"),
                ("RecordingDuration", "7"),
                ("RecordingSid", "RE9"),
                ("Digits", "#"),
            ],
            FetchPurpose::Script
        )]
    );
}

#[test]
fn caller_hanging_up_during_record_still_notifies_the_action() {
    let (mut call, _) = inbound(r#"<Response><Record action="/vm"/></Response>"#);
    call.handle(Event::CallerHungUp).unwrap();
    assert!(drain(&mut call).is_empty() && !call.is_finished());
    call.handle(Event::RecordingFinished(RecordingOutcome {
        recording: Some(RecordingInfo {
            sid: "RE2".into(),
            url: "https://api.example.com/RE2".into(),
            duration_secs: 4,
        }),
        digits: None,
    }))
    .unwrap();
    assert_eq!(
        drain(&mut call),
        [fetch(
            "https://app.example.com/vm",
            HttpMethod::Post,
            &[
                ("RecordingUrl", "https://api.example.com/RE2"),
                ("RecordingDuration", "4"),
                ("RecordingSid", "RE2"),
                ("Digits", "hangup"),
            ],
            FetchPurpose::Notification
        )]
    );
    // What the action returns is not run.
    call.handle(Event::TwimlFetched(doc(
        "<Response><Say>x</Say></Response>",
    )))
    .unwrap();
    assert!(drain(&mut call).is_empty());
    assert!(call.is_finished());
}

#[test]
fn caller_hanging_up_during_dial_without_action_ends_quietly() {
    let (mut call, _) = inbound("<Response><Dial>+14155550100</Dial><Say>x</Say></Response>");
    call.handle(Event::CallerHungUp).unwrap();
    call.handle(Event::DialEnded(DialOutcome {
        status: DialCallStatus::Canceled,
        call_sid: None,
        duration_secs: None,
        sip_call_id: None,
        sip_response_code: Some(487),
        recording: None,
    }))
    .unwrap();
    assert!(drain(&mut call).is_empty());
    assert!(call.is_finished());
}

#[test]
fn caller_hanging_up_elsewhere_ends_the_script() {
    let (mut call, _) = inbound("<Response><Say>a</Say><Say>b</Say></Response>");
    call.handle(Event::CallerHungUp).unwrap();
    assert!(call.is_finished());
    assert!(drain(&mut call).is_empty());
    let err = call.handle(Event::PlaybackDone).unwrap_err();
    assert_eq!(err.event, "PlaybackDone");
}

#[test]
fn redirect_loops_stop_at_the_fetch_limit() {
    let mut config = InterpreterConfig::inbound(url(VOICE_URL), HttpMethod::Post);
    config.max_fetches = 5;
    let mut call = Interpreter::new(config);
    let mut fetches = drain(&mut call).len() - 1;
    for _ in 0..10 {
        if call.is_finished() {
            break;
        }
        call.handle(Event::TwimlFetched(doc(
            "<Response><Redirect>voice</Redirect></Response>",
        )))
        .unwrap();
        for command in drain(&mut call) {
            match command {
                Command::Fetch(f) => {
                    assert_eq!(f.url, url(VOICE_URL));
                    fetches += 1;
                }
                Command::Hangup { reason } => assert_eq!(reason, HangupReason::FetchLimit),
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(fetches, 5);
    assert!(call.is_finished());
}

#[test]
fn first_fetch_falls_back_once() {
    let mut config = InterpreterConfig::inbound(url(VOICE_URL), HttpMethod::Post);
    config.fallback = Some(FetchTarget {
        url: url("https://backup.example.com/voice"),
        method: HttpMethod::Get,
    });
    let mut call = Interpreter::new(config.clone());
    drain(&mut call);
    call.handle(Event::FetchFailed {
        code: TwilioCode(11200),
    })
    .unwrap();
    assert_eq!(
        drain(&mut call),
        [fetch(
            "https://backup.example.com/voice",
            HttpMethod::Get,
            &[("ErrorCode", "11200"), ("ErrorUrl", VOICE_URL)],
            FetchPurpose::Fallback
        )]
    );
    call.handle(Event::FetchFailed {
        code: TwilioCode(12100),
    })
    .unwrap();
    assert_eq!(
        drain(&mut call),
        [Command::Hangup {
            reason: HangupReason::ApplicationError(TwilioCode(12100))
        }]
    );
    assert!(!call.is_answered());

    // A failing action URL does not fall back.
    let mut call = Interpreter::new(config);
    drain(&mut call);
    call.handle(Event::TwimlFetched(doc(
        "<Response><Redirect>/x</Redirect></Response>",
    )))
    .unwrap();
    drain(&mut call);
    call.handle(Event::FetchFailed {
        code: TwilioCode(11200),
    })
    .unwrap();
    assert_eq!(
        drain(&mut call),
        [Command::Hangup {
            reason: HangupReason::ApplicationError(TwilioCode(11200))
        }]
    );
}

#[test]
fn outbound_api_call_starts_on_answer() {
    let mut call = Interpreter::new(InterpreterConfig::outbound(Script::Fetch(FetchTarget {
        url: url(VOICE_URL),
        method: HttpMethod::Get,
    })));
    assert!(drain(&mut call).is_empty());
    assert!(call.handle(Event::PlaybackDone).is_err());
    call.handle(Event::Answered).unwrap();
    assert_eq!(
        drain(&mut call),
        [fetch(VOICE_URL, HttpMethod::Get, &[], FetchPurpose::Script)]
    );
    call.handle(Event::TwimlFetched(doc(
        "<Response><Play>hold.wav</Play></Response>",
    )))
    .unwrap();
    // Already answered by the far end: no Answer command.
    assert_eq!(
        drain(&mut call),
        [Command::Play {
            url: url("https://app.example.com/ivr/hold.wav"),
            repeat: Repeat::default()
        }]
    );
}

#[test]
fn inline_twiml_cannot_resolve_relative_urls() {
    let mut call = Interpreter::new(InterpreterConfig::outbound(Script::Inline(doc(
        "<Response><Say>hi</Say><Play>relative.wav</Play></Response>",
    ))));
    call.handle(Event::Answered).unwrap();
    assert_eq!(drain(&mut call), [say("hi")]);
    call.handle(Event::PlaybackDone).unwrap();
    assert_eq!(
        drain(&mut call),
        [Command::Hangup {
            reason: HangupReason::ApplicationError(TwilioCode::INVALID_URL)
        }]
    );
}

#[test]
fn unexpected_events_change_nothing() {
    let mut call = Interpreter::new(InterpreterConfig::inbound(url(VOICE_URL), HttpMethod::Post));
    drain(&mut call);
    for event in [
        Event::PlaybackDone,
        Event::PauseElapsed,
        Event::GatherTimeout,
        Event::Answered,
        Event::RecordingFinished(RecordingOutcome {
            recording: None,
            digits: None,
        }),
    ] {
        let err = call.handle(event).unwrap_err();
        assert_eq!(err.state, "waiting for a document");
        assert!(drain(&mut call).is_empty());
    }
    // Still waiting for the document.
    call.handle(Event::TwimlFetched(doc("<Response><Hangup/></Response>")))
        .unwrap();
    assert_eq!(drain(&mut call), [Command::Answer, hangup()]);
}
