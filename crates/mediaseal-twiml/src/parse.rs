//! Schema validation: the element tree from [`crate::xml`] → the typed [`Response`].
//!
//! Every attribute of every supported element is read through [`Attributes`], which remembers
//! what was consumed; whatever is left over is refused (or, with
//! [`AttributePolicy::Ignore`], recorded and skipped, as Twilio does with its 12200 warning).

use core::num::NonZeroU32;

use url::Url;

use crate::error::{ParseError, TwilioCode, quote};
use crate::model::*;
use crate::xml::{Element, read_document};
use crate::{AttributePolicy, ParseOptions, Parsed, SipUri};

/// Longest `<Say>` text (Twilio's documented limit is 4,096 characters).
pub const MAX_SAY_CHARS: usize = 4096;
/// Most `<Number>` nouns in one `<Dial>` (Twilio: "up to ten").
pub const MAX_DIAL_NUMBERS: usize = 10;
/// Largest `loop` value accepted for `<Say>` and `<Play>` (mediaseal's bound).
pub const MAX_LOOP: u32 = 1000;
/// Longest SIP caller ID (mediaseal's bound; Twilio reports 13248 past its own).
pub const MAX_SIP_CALLER_ID: usize = 64;

/// Top-level TwiML voice verbs that mediaseal knows but does not run.
const UNSUPPORTED_VERBS: &[&str] = &[
    "Connect", "Enqueue", "Leave", "Refer", "Start", "Stop", "Pay", "Prompt", "Echo", "Queue",
    "Sms", "Message",
];
/// `<Dial>` nouns that mediaseal knows but does not dial.
const UNSUPPORTED_NOUNS: &[&str] = &[
    "Client",
    "Conference",
    "Queue",
    "Sim",
    "Application",
    "WhatsApp",
];
/// SSML elements Twilio allows inside `<Say>`.
const SSML_ELEMENTS: &[&str] = &[
    "break", "emphasis", "lang", "p", "phoneme", "prosody", "s", "say-as", "sub", "w",
];
const AMD_ATTRIBUTES: &[&str] = &[
    "machineDetection",
    "amdStatusCallback",
    "amdStatusCallbackMethod",
    "machineDetectionTimeout",
    "machineDetectionSpeechThreshold",
    "machineDetectionSpeechEndThreshold",
    "machineDetectionSilenceTimeout",
];

pub(crate) fn parse_document(bytes: &[u8], options: &ParseOptions) -> Result<Parsed, ParseError> {
    let root = read_document(bytes, &options.limits)?;
    if root.name != "Response" {
        return Err(ParseError::RootNotResponse { found: root.name });
    }
    let mut cx = Context {
        options,
        ignored: Vec::new(),
        verbs: 0,
    };
    Attributes::new(&root).finish(&mut cx, &[])?;
    no_text(&root, TwilioCode::SCHEMA_VALIDATION)?;
    let mut verbs = Vec::new();
    for child in root.elements() {
        cx.count_verb()?;
        verbs.push(verb(&mut cx, child)?);
    }
    Ok(Parsed {
        response: Response { verbs },
        ignored: cx.ignored,
    })
}

struct Context<'o> {
    options: &'o ParseOptions,
    ignored: Vec<ParseError>,
    verbs: usize,
}

impl Context<'_> {
    fn count_verb(&mut self) -> Result<(), ParseError> {
        self.verbs += 1;
        if self.verbs > self.options.limits.max_verbs {
            return Err(ParseError::TooMany {
                what: "verbs",
                limit: self.options.limits.max_verbs,
            });
        }
        Ok(())
    }
}

fn verb(cx: &mut Context<'_>, e: &Element) -> Result<Verb, ParseError> {
    Ok(match e.name.as_str() {
        "Dial" => Verb::Dial(Box::new(dial(cx, e)?)),
        "Record" => Verb::Record(record(cx, e)?),
        "Play" => Verb::Play(play(cx, e)?),
        "Say" => Verb::Say(say(cx, e, false)?),
        "Gather" => Verb::Gather(gather(cx, e)?),
        "Pause" => Verb::Pause(pause(cx, e)?),
        "Redirect" => Verb::Redirect(redirect(cx, e)?),
        "Reject" => Verb::Reject(reject(cx, e)?),
        "Hangup" => {
            Attributes::new(e).finish(cx, &[])?;
            no_children(e, TwilioCode::SCHEMA_VALIDATION)?;
            Verb::Hangup
        }
        other if UNSUPPORTED_VERBS.contains(&other) => {
            return Err(ParseError::Unsupported {
                what: format!("<{other}>"),
            });
        }
        other => {
            return Err(ParseError::UnexpectedElement {
                code: TwilioCode::SCHEMA_VALIDATION,
                element: other.to_owned(),
                parent: "Response".to_owned(),
            });
        }
    })
}

/// The attributes of one element, handed out once each.
struct Attributes<'e> {
    element: &'e str,
    list: Vec<(&'e str, &'e str, bool)>,
}

impl<'e> Attributes<'e> {
    fn new(e: &'e Element) -> Self {
        Self {
            element: &e.name,
            list: e
                .attributes
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str(), false))
                .collect(),
        }
    }

    fn take(&mut self, name: &str) -> Option<&'e str> {
        let slot = self
            .list
            .iter_mut()
            .find(|(k, _, used)| *k == name && !used)?;
        slot.2 = true;
        Some(slot.1)
    }

    fn invalid(
        &self,
        code: TwilioCode,
        attribute: &str,
        value: &str,
        expected: &'static str,
    ) -> ParseError {
        ParseError::InvalidValue {
            code,
            element: self.element.to_owned(),
            attribute: attribute.to_owned(),
            value: quote(value),
            expected,
        }
    }

    fn method(&mut self, name: &str, code: TwilioCode) -> Result<HttpMethod, ParseError> {
        match self.take(name) {
            None => Ok(HttpMethod::Post),
            Some(v) if v.eq_ignore_ascii_case("POST") => Ok(HttpMethod::Post),
            Some(v) if v.eq_ignore_ascii_case("GET") => Ok(HttpMethod::Get),
            Some(v) => Err(self.invalid(code, name, v, "GET or POST")),
        }
    }

    fn boolean(&mut self, name: &str, default: bool, code: TwilioCode) -> Result<bool, ParseError> {
        match self.take(name) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(self.invalid(code, name, v, "true or false")),
        }
    }

    fn seconds(
        &mut self,
        name: &str,
        default: u32,
        range: core::ops::RangeInclusive<u32>,
        code: TwilioCode,
        expected: &'static str,
    ) -> Result<u32, ParseError> {
        let Some(v) = self.take(name) else {
            return Ok(default);
        };
        let t = v.trim();
        match t.parse::<u32>() {
            Ok(n) if range.contains(&n) && t.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
            _ => Err(self.invalid(code, name, v, expected)),
        }
    }

    fn url(&mut self, name: &str) -> Result<Option<UrlRef>, ParseError> {
        match self.take(name) {
            None => Ok(None),
            Some(v) => url_ref(v)
                .map(Some)
                .ok_or_else(|| self.invalid(TwilioCode::INVALID_URL, name, v, URL_EXPECTED)),
        }
    }

    fn recording_events(&mut self, name: &str) -> Result<RecordingEvents, ParseError> {
        let Some(v) = self.take(name) else {
            return Ok(RecordingEvents::default());
        };
        let mut events = RecordingEvents {
            in_progress: false,
            completed: false,
            absent: false,
            failed: false,
        };
        let mut any = false;
        for word in v.split([' ', ',']).filter(|w| !w.is_empty()) {
            any = true;
            match word {
                "in-progress" => events.in_progress = true,
                "completed" => events.completed = true,
                "absent" => events.absent = true,
                "failed" => events.failed = true,
                _ => {
                    return Err(self.invalid(
                        TwilioCode::SCHEMA_VALIDATION,
                        name,
                        v,
                        "space-separated in-progress, completed, absent, failed",
                    ));
                }
            }
        }
        if !any {
            return Err(self.invalid(
                TwilioCode::SCHEMA_VALIDATION,
                name,
                v,
                "space-separated in-progress, completed, absent, failed",
            ));
        }
        Ok(events)
    }

    fn progress_events(&mut self, name: &str) -> Result<CallProgressEvents, ParseError> {
        let Some(v) = self.take(name) else {
            return Ok(CallProgressEvents::default());
        };
        let mut events = CallProgressEvents {
            initiated: false,
            ringing: false,
            answered: false,
            completed: false,
        };
        let expected = "space-separated initiated, ringing, answered, completed";
        let mut any = false;
        for word in v.split([' ', ',']).filter(|w| !w.is_empty()) {
            any = true;
            match word {
                "initiated" => events.initiated = true,
                "ringing" => events.ringing = true,
                "answered" => events.answered = true,
                "completed" => events.completed = true,
                _ => return Err(self.invalid(TwilioCode::SCHEMA_VALIDATION, name, v, expected)),
            }
        }
        if !any {
            return Err(self.invalid(TwilioCode::SCHEMA_VALIDATION, name, v, expected));
        }
        Ok(events)
    }

    fn trim(&mut self) -> Result<Trim, ParseError> {
        match self.take("trim") {
            None => Ok(Trim::TrimSilence),
            Some("trim-silence") => Ok(Trim::TrimSilence),
            Some("do-not-trim") => Ok(Trim::DoNotTrim),
            Some(v) => Err(self.invalid(
                TwilioCode::SCHEMA_VALIDATION,
                "trim",
                v,
                "trim-silence or do-not-trim",
            )),
        }
    }

    fn repeat(&mut self, code: TwilioCode) -> Result<Repeat, ParseError> {
        let n = self.seconds(
            "loop",
            1,
            0..=MAX_LOOP,
            code,
            "an integer from 0 (until hangup) to 1000",
        )?;
        Ok(NonZeroU32::new(n).map_or(Repeat::UntilHangup, Repeat::Times))
    }

    /// Refuses (or records) whatever was not taken. `unsupported` lists Twilio attributes of
    /// this element that mediaseal does not implement, for a clearer message.
    fn finish(self, cx: &mut Context<'_>, unsupported: &[&str]) -> Result<(), ParseError> {
        for (name, _, used) in &self.list {
            if *used {
                continue;
            }
            let err = if unsupported.contains(name) {
                ParseError::Unsupported {
                    what: format!("<{} {}>", self.element, name),
                }
            } else {
                ParseError::UnknownAttribute {
                    element: self.element.to_owned(),
                    attribute: (*name).to_owned(),
                }
            };
            match cx.options.unknown_attributes {
                AttributePolicy::Refuse => return Err(err),
                AttributePolicy::Ignore => cx.ignored.push(err),
            }
        }
        Ok(())
    }
}

const URL_EXPECTED: &str = "an absolute http(s) URL or a URL relative to the document";

/// Accepts what Twilio calls "relative or absolute URL": it must resolve against an https base,
/// and an absolute URL must be http or https (no `file:`, `data:` or `ftp:` fetches).
pub(crate) fn url_ref(value: &str) -> Option<UrlRef> {
    let v = value.trim();
    if v.is_empty() || v.len() > 2048 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let base = Url::parse("https://document.invalid/twiml/").ok()?;
    let resolved = base.join(v).ok()?;
    if !matches!(resolved.scheme(), "http" | "https") || resolved.host_str().is_none() {
        return None;
    }
    Some(UrlRef(v.to_owned()))
}

fn no_text(e: &Element, code: TwilioCode) -> Result<(), ParseError> {
    if e.text().trim().is_empty() {
        Ok(())
    } else {
        Err(ParseError::InvalidContent {
            code,
            element: e.name.clone(),
            problem: "text is not allowed in this element",
        })
    }
}

fn no_children(e: &Element, code: TwilioCode) -> Result<(), ParseError> {
    no_text(e, code)?;
    match e.elements().next() {
        None => Ok(()),
        Some(child) => Err(ParseError::UnexpectedElement {
            code,
            element: child.name.clone(),
            parent: e.name.clone(),
        }),
    }
}

/// Text-only elements (`<Say>`, `<Play>`, `<Redirect>`, `<Number>`, `<Sip>`): their trimmed body.
fn text_only(e: &Element, code: TwilioCode) -> Result<String, ParseError> {
    if let Some(child) = e.elements().next() {
        return Err(ParseError::UnexpectedElement {
            code,
            element: child.name.clone(),
            parent: e.name.clone(),
        });
    }
    Ok(e.text().trim().to_owned())
}

fn dial(cx: &mut Context<'_>, e: &Element) -> Result<Dial, ParseError> {
    let mut a = Attributes::new(e);
    let action = a.url("action")?;
    let method = a.method("method", TwilioCode::DIAL_METHOD)?;
    let timeout_secs = a.seconds(
        "timeout",
        30,
        1..=600,
        TwilioCode::DIAL_TIMEOUT,
        "an integer from 1 to 600",
    )?;
    let time_limit_secs = a.seconds(
        "timeLimit",
        14400,
        1..=86400,
        TwilioCode::DIAL_TIME_LIMIT,
        "an integer from 1 to 86400",
    )?;
    let caller_id = a.take("callerId").map(str::to_owned);
    let record = match a.take("record") {
        None => DialRecord::DoNotRecord,
        Some(v) => match v {
            "do-not-record" | "false" => DialRecord::DoNotRecord,
            "record-from-answer" | "true" => DialRecord::FromAnswer,
            "record-from-ringing" => DialRecord::FromRinging,
            "record-from-answer-dual" => DialRecord::FromAnswerDual,
            "record-from-ringing-dual" => DialRecord::FromRingingDual,
            _ => {
                return Err(a.invalid(
                    TwilioCode::DIAL_RECORD,
                    "record",
                    v,
                    "do-not-record, record-from-answer, record-from-ringing, record-from-answer-dual, record-from-ringing-dual, true or false",
                ));
            }
        },
    };
    let trim = a.trim()?;
    let recording_status_callback = a.url("recordingStatusCallback")?;
    let recording_status_callback_method = a.method(
        "recordingStatusCallbackMethod",
        TwilioCode::SCHEMA_VALIDATION,
    )?;
    let recording_status_callback_event = a.recording_events("recordingStatusCallbackEvent")?;
    let answer_on_bridge = a.boolean("answerOnBridge", false, TwilioCode::SCHEMA_VALIDATION)?;
    let hangup_on_star = a.boolean("hangupOnStar", false, TwilioCode::DIAL_HANGUP_ON_STAR)?;
    let ring_tone = match a.take("ringTone") {
        None => None,
        Some(v) if v == "us-old" || (v.len() == 2 && v.bytes().all(|b| b.is_ascii_lowercase())) => {
            Some(v.to_owned())
        }
        Some(v) => {
            return Err(a.invalid(
                TwilioCode::SCHEMA_VALIDATION,
                "ringTone",
                v,
                "a two-letter lowercase country code (us, gb, de…) or us-old",
            ));
        }
    };
    a.finish(
        cx,
        &[
            "recordingTrack",
            "recordingConfigurationId",
            "sequential",
            "referUrl",
            "referMethod",
            "events",
            "passports",
        ],
    )?;

    let target = dial_target(cx, e)?;
    if let Some(id) = &caller_id {
        check_caller_id(id, &target)?;
    }
    Ok(Dial {
        target,
        action,
        method,
        timeout_secs,
        time_limit_secs,
        caller_id,
        record,
        trim,
        recording_status_callback,
        recording_status_callback_method,
        recording_status_callback_event,
        answer_on_bridge,
        hangup_on_star,
        ring_tone,
    })
}

fn dial_target(cx: &mut Context<'_>, e: &Element) -> Result<DialTarget, ParseError> {
    let body = e.text();
    let nouns: Vec<&Element> = e.elements().collect();
    if nouns.is_empty() {
        let number = body.trim();
        if number.is_empty() {
            return Err(ParseError::InvalidContent {
                code: TwilioCode::DIAL_NESTED_ELEMENT,
                element: "Dial".to_owned(),
                problem: "it needs a phone number in its body, a <Number> or a <Sip>",
            });
        }
        check_phone_number("Dial", number)?;
        return Ok(DialTarget::Numbers(vec![Number::new(number)]));
    }
    if !body.trim().is_empty() {
        return Err(ParseError::InvalidContent {
            code: TwilioCode::DIAL_NESTED_ELEMENT,
            element: "Dial".to_owned(),
            problem: "a number in the body cannot be mixed with nested nouns",
        });
    }
    let mut sips = Vec::new();
    let mut numbers = Vec::new();
    for noun in nouns {
        cx.count_verb()?;
        match noun.name.as_str() {
            "Sip" => sips.push(sip(cx, noun)?),
            "Number" => numbers.push(number(cx, noun)?),
            other if UNSUPPORTED_NOUNS.contains(&other) => {
                return Err(ParseError::Unsupported {
                    what: format!("<Dial><{other}>"),
                });
            }
            other => {
                return Err(ParseError::UnexpectedElement {
                    code: TwilioCode::DIAL_NESTED_ELEMENT,
                    element: other.to_owned(),
                    parent: "Dial".to_owned(),
                });
            }
        }
    }
    match (sips.len(), numbers.len()) {
        (1, 0) => Ok(DialTarget::Sip(Box::new(sips.remove(0)))),
        (0, n) if n <= MAX_DIAL_NUMBERS => Ok(DialTarget::Numbers(numbers)),
        (0, _) => Err(ParseError::InvalidContent {
            code: TwilioCode::DIAL_NESTED_ELEMENT,
            element: "Dial".to_owned(),
            problem: "at most ten <Number> nouns may ring at once",
        }),
        (s, 0) if s > 1 => Err(ParseError::InvalidContent {
            code: TwilioCode::SIP_TOO_MANY_URIS,
            element: "Dial".to_owned(),
            problem: "only one <Sip> is allowed per <Dial>",
        }),
        _ => Err(ParseError::InvalidContent {
            code: TwilioCode::DIAL_NESTED_ELEMENT,
            element: "Dial".to_owned(),
            problem: "<Sip> cannot be mixed with <Number> in one <Dial>",
        }),
    }
}

fn check_phone_number(element: &str, number: &str) -> Result<(), ParseError> {
    let digits_part = number.strip_prefix('+').unwrap_or(number);
    let mut digits = 0usize;
    let mut ok = true;
    for c in digits_part.chars() {
        match c {
            '0'..='9' => digits += 1,
            ' ' | '-' | '(' | ')' | '.' => {}
            _ => ok = false,
        }
    }
    if ok && (1..=15).contains(&digits) {
        Ok(())
    } else {
        Err(ParseError::InvalidValue {
            code: TwilioCode::PHONE_NUMBER_FORMAT,
            element: element.to_owned(),
            attribute: "#text".to_owned(),
            value: quote(number),
            expected: "an E.164 number such as +14155550100 (or (415) 555-0100)",
        })
    }
}

fn check_caller_id(id: &str, target: &DialTarget) -> Result<(), ParseError> {
    let invalid = |code, expected| ParseError::InvalidValue {
        code,
        element: "Dial".to_owned(),
        attribute: "callerId".to_owned(),
        value: quote(id),
        expected,
    };
    match target {
        DialTarget::Sip(_) => {
            if id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-_.,".contains(c))
            {
                return Err(invalid(
                    TwilioCode::SIP_CALLER_ID_CHARACTERS,
                    "letters, digits and + - _ . , without spaces",
                ));
            }
            if id.len() > MAX_SIP_CALLER_ID {
                return Err(invalid(
                    TwilioCode::SIP_CALLER_ID_LENGTH,
                    "at most 64 characters",
                ));
            }
            Ok(())
        }
        DialTarget::Numbers(_) => check_phone_number("Dial", id)
            .map_err(|_| invalid(TwilioCode::DIAL_CALLER_ID, "a phone number in E.164 format")),
    }
}

fn sip(cx: &mut Context<'_>, e: &Element) -> Result<Sip, ParseError> {
    let mut a = Attributes::new(e);
    let username = a.take("username").map(str::to_owned);
    let password = a.take("password").map(|p| SipPassword::new(p.to_owned()));
    let credentials = [
        ("username", username.as_deref()),
        ("password", password.as_ref().map(SipPassword::expose)),
    ];
    for (name, value) in credentials {
        if let Some(v) = value
            && (v.is_empty() || v.len() > 256 || v.chars().any(char::is_control))
        {
            return Err(ParseError::InvalidValue {
                code: TwilioCode::SIP_CREDENTIALS,
                element: "Sip".to_owned(),
                attribute: name.to_owned(),
                value: if name == "password" {
                    "<redacted>".to_owned()
                } else {
                    quote(v)
                },
                expected: "1 to 256 printable characters",
            });
        }
    }
    let url = a.url("url")?;
    let method = a.method("method", TwilioCode::SIP_METHOD)?;
    let status_callback_event = a.progress_events("statusCallbackEvent")?;
    let status_callback = a.url("statusCallback")?;
    let status_callback_method = a.method("statusCallbackMethod", TwilioCode::SCHEMA_VALIDATION)?;
    a.finish(cx, AMD_ATTRIBUTES)?;
    let body = text_only(e, TwilioCode::SIP_URI)?;
    let uri = SipUri::parse(&body)?;
    Ok(Sip {
        uri,
        username,
        password,
        url,
        method,
        status_callback_event,
        status_callback,
        status_callback_method,
    })
}

fn number(cx: &mut Context<'_>, e: &Element) -> Result<Number, ParseError> {
    let mut a = Attributes::new(e);
    let send_digits = match a.take("sendDigits") {
        None => None,
        Some(v) if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || "*#w".contains(c)) => {
            Some(v.to_owned())
        }
        Some(v) => {
            return Err(a.invalid(
                TwilioCode::NUMBER_SEND_DIGITS,
                "sendDigits",
                v,
                "digits, * and #, with w for a half-second wait",
            ));
        }
    };
    let url = a.url("url")?;
    let method = a.method("method", TwilioCode::NUMBER_METHOD)?;
    let status_callback_event = a.progress_events("statusCallbackEvent")?;
    let status_callback = a.url("statusCallback")?;
    let status_callback_method = a.method("statusCallbackMethod", TwilioCode::SCHEMA_VALIDATION)?;
    let mut unsupported = AMD_ATTRIBUTES.to_vec();
    unsupported.push("byoc");
    a.finish(cx, &unsupported)?;
    let body = text_only(e, TwilioCode::PHONE_NUMBER_FORMAT)?;
    check_phone_number("Number", &body)?;
    Ok(Number {
        number: body,
        send_digits,
        url,
        method,
        status_callback_event,
        status_callback,
        status_callback_method,
    })
}

fn record(cx: &mut Context<'_>, e: &Element) -> Result<Record, ParseError> {
    let mut a = Attributes::new(e);
    let action = a.url("action")?;
    let method = a.method("method", TwilioCode::RECORD_METHOD)?;
    let timeout_secs = a.seconds(
        "timeout",
        5,
        0..=3600,
        TwilioCode::RECORD_TIMEOUT,
        "an integer from 0 (never on silence) to 3600",
    )?;
    let finish_on_key = match a.take("finishOnKey") {
        None => "1234567890*#".to_owned(),
        Some(v) if v.chars().all(is_dtmf_key) => v.to_owned(),
        Some(v) => {
            return Err(a.invalid(
                TwilioCode::RECORD_FINISH_ON_KEY,
                "finishOnKey",
                v,
                "any of 0-9, * and #",
            ));
        }
    };
    let max_length_secs = a.seconds(
        "maxLength",
        3600,
        1..=86400,
        TwilioCode::RECORD_MAX_LENGTH,
        "an integer from 1 to 86400",
    )?;
    let play_beep = a.boolean("playBeep", true, TwilioCode::RECORD_PLAY_BEEP)?;
    let trim = a.trim()?;
    let recording_status_callback = a.url("recordingStatusCallback")?;
    let recording_status_callback_method = a.method(
        "recordingStatusCallbackMethod",
        TwilioCode::SCHEMA_VALIDATION,
    )?;
    let recording_status_callback_event = a.recording_events("recordingStatusCallbackEvent")?;
    let transcribe = a.boolean("transcribe", false, TwilioCode::RECORD_TRANSCRIBE)?;
    let transcribe_callback = a.url("transcribeCallback")?;
    a.finish(cx, &["recordingConfigurationId"])?;
    no_children(e, TwilioCode::SCHEMA_VALIDATION)?;
    Ok(Record {
        action,
        method,
        timeout_secs,
        finish_on_key,
        max_length_secs,
        play_beep,
        trim,
        recording_status_callback,
        recording_status_callback_method,
        recording_status_callback_event,
        transcribe,
        transcribe_callback,
    })
}

fn is_dtmf_key(c: char) -> bool {
    c.is_ascii_digit() || c == '*' || c == '#'
}

fn play(cx: &mut Context<'_>, e: &Element) -> Result<Play, ParseError> {
    let mut a = Attributes::new(e);
    let repeat = a.repeat(TwilioCode::PLAY_LOOP)?;
    let digits = match a.take("digits") {
        None => None,
        Some(v) if !v.is_empty() && v.chars().all(|c| is_dtmf_key(c) || c == 'w') => {
            Some(v.to_owned())
        }
        Some(v) => {
            return Err(a.invalid(
                TwilioCode::SCHEMA_VALIDATION,
                "digits",
                v,
                "digits, * and #, with w for a half-second wait",
            ));
        }
    };
    a.finish(cx, &[])?;
    let body = text_only(e, TwilioCode::SCHEMA_VALIDATION)?;
    let source = match (body.is_empty(), digits) {
        (false, None) => {
            PlaySource::Url(url_ref(&body).ok_or_else(|| ParseError::InvalidValue {
                code: TwilioCode::INVALID_URL,
                element: "Play".to_owned(),
                attribute: "#text".to_owned(),
                value: quote(&body),
                expected: URL_EXPECTED,
            })?)
        }
        (true, Some(d)) => PlaySource::Digits(d),
        (true, None) => {
            return Err(ParseError::InvalidContent {
                code: TwilioCode::SCHEMA_VALIDATION,
                element: "Play".to_owned(),
                problem: "it needs an audio URL in its body or a digits attribute",
            });
        }
        (false, Some(_)) => {
            return Err(ParseError::InvalidContent {
                code: TwilioCode::SCHEMA_VALIDATION,
                element: "Play".to_owned(),
                problem: "it takes an audio URL or digits, not both",
            });
        }
    };
    Ok(Play { source, repeat })
}

fn say(cx: &mut Context<'_>, e: &Element, in_gather: bool) -> Result<Say, ParseError> {
    let mut a = Attributes::new(e);
    let (voice_code, loop_code) = if in_gather {
        (TwilioCode::GATHER_SAY_VOICE, TwilioCode::GATHER_SAY_LOOP)
    } else {
        (TwilioCode::SAY_VOICE, TwilioCode::SAY_LOOP)
    };
    let voice = match a.take("voice") {
        None => None,
        Some(v) if valid_voice(v) => Some(v.to_owned()),
        Some(v) => {
            return Err(a.invalid(
                voice_code,
                "voice",
                v,
                "man, woman, alice, Polly.<Name> or Google.<name>",
            ));
        }
    };
    let language = match a.take("language") {
        None => None,
        Some(v) if valid_language(v) => Some(v.to_owned()),
        Some(v) => {
            return Err(a.invalid(
                TwilioCode::SCHEMA_VALIDATION,
                "language",
                v,
                "a language tag such as en-US",
            ));
        }
    };
    let repeat = a.repeat(loop_code)?;
    a.finish(cx, &[])?;
    if let Some(child) = e.elements().next() {
        return Err(if SSML_ELEMENTS.contains(&child.name.as_str()) {
            ParseError::Unsupported {
                what: format!("SSML <{}> inside <Say>", child.name),
            }
        } else {
            ParseError::UnexpectedElement {
                code: TwilioCode::SCHEMA_VALIDATION,
                element: child.name.clone(),
                parent: "Say".to_owned(),
            }
        });
    }
    let text = e.text().trim().to_owned();
    if text.is_empty() || text.chars().count() > MAX_SAY_CHARS {
        return Err(ParseError::InvalidContent {
            code: TwilioCode::SAY_TEXT,
            element: "Say".to_owned(),
            problem: "it needs between 1 and 4096 characters of text",
        });
    }
    Ok(Say {
        text,
        voice,
        language,
        repeat,
    })
}

fn valid_voice(v: &str) -> bool {
    if matches!(v, "man" | "woman" | "alice") {
        return true;
    }
    let name = v
        .strip_prefix("Polly.")
        .or_else(|| v.strip_prefix("Google."));
    name.is_some_and(|n| {
        !n.is_empty()
            && n.len() <= 64
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

fn valid_language(v: &str) -> bool {
    let mut parts = v.split('-');
    let primary = parts.next().unwrap_or_default();
    (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn pause(cx: &mut Context<'_>, e: &Element) -> Result<Pause, ParseError> {
    let mut a = Attributes::new(e);
    let length_secs = a.seconds(
        "length",
        1,
        1..=3600,
        TwilioCode::PAUSE_LENGTH,
        "an integer from 1 to 3600",
    )?;
    a.finish(cx, &[])?;
    no_children(e, TwilioCode::SCHEMA_VALIDATION)?;
    Ok(Pause { length_secs })
}

fn gather(cx: &mut Context<'_>, e: &Element) -> Result<Gather, ParseError> {
    let mut a = Attributes::new(e);
    let input = match a.take("input") {
        None | Some("dtmf") => GatherInput::Dtmf,
        Some(v) => {
            let words: Vec<&str> = v.split(' ').filter(|w| !w.is_empty()).collect();
            if !words.is_empty() && words.iter().all(|w| matches!(*w, "dtmf" | "speech")) {
                return Err(ParseError::Unsupported {
                    what: format!("<Gather input=\"{}\"> (only dtmf is implemented)", quote(v)),
                });
            }
            return Err(a.invalid(TwilioCode::SCHEMA_VALIDATION, "input", v, "dtmf"));
        }
    };
    let action = a.url("action")?;
    let method = a.method("method", TwilioCode::GATHER_METHOD)?;
    let timeout_secs = a.seconds(
        "timeout",
        5,
        0..=600,
        TwilioCode::GATHER_TIMEOUT,
        "an integer from 0 to 600",
    )?;
    let finish_on_key = match a.take("finishOnKey") {
        None => Some('#'),
        Some("") => None,
        Some(v) => {
            let mut chars = v.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if is_dtmf_key(c) => Some(c),
                _ => {
                    return Err(a.invalid(
                        TwilioCode::GATHER_FINISH_ON_KEY,
                        "finishOnKey",
                        v,
                        "one of 0-9, * or #, or empty",
                    ));
                }
            }
        }
    };
    let num_digits = match a.take("numDigits") {
        None => None,
        Some(v) => match v.trim().parse::<u32>().ok().and_then(NonZeroU32::new) {
            Some(n) => Some(n),
            None => {
                return Err(a.invalid(
                    TwilioCode::GATHER_NUM_DIGITS,
                    "numDigits",
                    v,
                    "a positive integer",
                ));
            }
        },
    };
    let action_on_empty_result =
        a.boolean("actionOnEmptyResult", false, TwilioCode::SCHEMA_VALIDATION)?;
    a.finish(
        cx,
        &[
            "speechTimeout",
            "maxSpeechTime",
            "profanityFilter",
            "partialResultCallback",
            "partialResultCallbackMethod",
            "language",
            "hints",
            "bargeIn",
            "debug",
            "speechModel",
            "enhanced",
        ],
    )?;
    no_text(e, TwilioCode::GATHER_NESTED_VERB)?;
    let mut prompts = Vec::new();
    for child in e.elements() {
        cx.count_verb()?;
        prompts.push(match child.name.as_str() {
            "Say" => Prompt::Say(say(cx, child, true)?),
            "Play" => Prompt::Play(play(cx, child)?),
            "Pause" => Prompt::Pause(pause(cx, child)?),
            other => {
                return Err(ParseError::UnexpectedElement {
                    code: TwilioCode::GATHER_NESTED_VERB,
                    element: other.to_owned(),
                    parent: "Gather".to_owned(),
                });
            }
        });
    }
    Ok(Gather {
        input,
        action,
        method,
        timeout_secs,
        finish_on_key,
        num_digits,
        action_on_empty_result,
        prompts,
    })
}

fn redirect(cx: &mut Context<'_>, e: &Element) -> Result<Redirect, ParseError> {
    let mut a = Attributes::new(e);
    let method = a.method("method", TwilioCode::REDIRECT_METHOD)?;
    a.finish(cx, &[])?;
    let body = text_only(e, TwilioCode::SCHEMA_VALIDATION)?;
    if body.is_empty() {
        return Err(ParseError::InvalidContent {
            code: TwilioCode::INVALID_URL,
            element: "Redirect".to_owned(),
            problem: "it needs the URL to continue with in its body",
        });
    }
    let url = url_ref(&body).ok_or_else(|| ParseError::InvalidValue {
        code: TwilioCode::INVALID_URL,
        element: "Redirect".to_owned(),
        attribute: "#text".to_owned(),
        value: quote(&body),
        expected: URL_EXPECTED,
    })?;
    Ok(Redirect { url, method })
}

fn reject(cx: &mut Context<'_>, e: &Element) -> Result<Reject, ParseError> {
    let mut a = Attributes::new(e);
    let reason = match a.take("reason") {
        None | Some("rejected") => RejectReason::Rejected,
        Some("busy") => RejectReason::Busy,
        Some(v) => {
            return Err(a.invalid(
                TwilioCode::SCHEMA_VALIDATION,
                "reason",
                v,
                "rejected or busy",
            ));
        }
    };
    a.finish(cx, &[])?;
    no_children(e, TwilioCode::SCHEMA_VALIDATION)?;
    Ok(Reject { reason })
}
