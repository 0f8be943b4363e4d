//! The typed TwiML document: one struct per verb and noun, every attribute resolved to its
//! Twilio default when absent.
//!
//! Times are whole seconds, as TwiML writes them. URLs stay as written ([`UrlRef`]) because
//! relative ones resolve against the URL the document was fetched from, which only the
//! interpreter knows.

use core::fmt;
use core::num::NonZeroU32;

use url::Url;
use zeroize::Zeroizing;

use crate::SipUri;

/// A `<Response>`: the verbs of one TwiML document, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    /// The verbs, executed top to bottom.
    pub verbs: Vec<Verb>,
}

/// One TwiML verb.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verb {
    /// `<Dial>`: connect the caller to another party.
    Dial(Box<Dial>),
    /// `<Record>`: record the caller.
    Record(Record),
    /// `<Play>`: play audio from a URL, or send DTMF digits.
    Play(Play),
    /// `<Say>`: speak text.
    Say(Say),
    /// `<Gather>`: collect DTMF digits, optionally while prompting.
    Gather(Gather),
    /// `<Pause>`: wait.
    Pause(Pause),
    /// `<Redirect>`: continue with the TwiML at another URL.
    Redirect(Redirect),
    /// `<Reject>`: refuse the call without answering it.
    Reject(Reject),
    /// `<Hangup>`: end the call.
    Hangup,
}

impl Verb {
    /// The element name, as written in TwiML.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Dial(_) => "Dial",
            Self::Record(_) => "Record",
            Self::Play(_) => "Play",
            Self::Say(_) => "Say",
            Self::Gather(_) => "Gather",
            Self::Pause(_) => "Pause",
            Self::Redirect(_) => "Redirect",
            Self::Reject(_) => "Reject",
            Self::Hangup => "Hangup",
        }
    }
}

/// `GET` or `POST`, for action and callback URLs. TwiML's default is `POST`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HttpMethod {
    /// `GET`: parameters go in the query string.
    Get,
    /// `POST`: parameters go in a form body.
    #[default]
    Post,
}

impl HttpMethod {
    /// `"GET"` or `"POST"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

impl fmt::Display for HttpMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A URL as written in the document: absolute `http(s)` or relative to the document's URL.
///
/// The parser has checked that it resolves against an `https` base and that an absolute one is
/// `http` or `https`; [`UrlRef::resolve`] does the real resolution.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UrlRef(pub(crate) String);

impl UrlRef {
    /// The URL as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Resolves against the URL of the document it came from. `None` as the base (inline TwiML)
    /// accepts absolute URLs only.
    pub fn resolve(&self, base: Option<&Url>) -> Result<Url, url::ParseError> {
        match base {
            Some(base) => base.join(&self.0),
            None => Url::parse(&self.0),
        }
    }
}

impl fmt::Display for UrlRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How many times `<Say>` or `<Play>` repeats. `loop="0"` means until the call ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Repeat {
    /// This many times (TwiML's default is once).
    Times(NonZeroU32),
    /// Until the call ends (`loop="0"`).
    UntilHangup,
}

impl Default for Repeat {
    fn default() -> Self {
        Self::Times(NonZeroU32::MIN)
    }
}

impl Repeat {
    /// The TwiML `loop` value (0 for [`Repeat::UntilHangup`]).
    pub fn as_loop_attribute(self) -> u32 {
        match self {
            Self::Times(n) => n.get(),
            Self::UntilHangup => 0,
        }
    }
}

/// Whether leading and trailing silence is trimmed from a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Trim {
    /// `trim-silence` (the default).
    #[default]
    TrimSilence,
    /// `do-not-trim`.
    DoNotTrim,
}

impl Trim {
    /// The TwiML value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TrimSilence => "trim-silence",
            Self::DoNotTrim => "do-not-trim",
        }
    }
}

/// Which recording status events are sent to `recordingStatusCallback`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordingEvents {
    /// `in-progress`: the recording started.
    pub in_progress: bool,
    /// `completed`: the recording is available (the default set).
    pub completed: bool,
    /// `absent`: the recording was empty or silent.
    pub absent: bool,
    /// `failed`: the recording could not be stored (seed 000: an intermittent failure, or
    /// encryption on and no usable key, error 16104).
    pub failed: bool,
}

impl Default for RecordingEvents {
    fn default() -> Self {
        Self {
            in_progress: false,
            completed: true,
            absent: false,
            failed: false,
        }
    }
}

impl RecordingEvents {
    /// The space-separated TwiML value.
    pub fn to_attribute(self) -> String {
        let mut names = Vec::new();
        if self.in_progress {
            names.push("in-progress");
        }
        if self.completed {
            names.push("completed");
        }
        if self.absent {
            names.push("absent");
        }
        if self.failed {
            names.push("failed");
        }
        names.join(" ")
    }
}

/// Which call-progress events of a dialled leg are sent to its `statusCallback`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallProgressEvents {
    /// `initiated`.
    pub initiated: bool,
    /// `ringing`.
    pub ringing: bool,
    /// `answered`.
    pub answered: bool,
    /// `completed` (the default set).
    pub completed: bool,
}

impl Default for CallProgressEvents {
    fn default() -> Self {
        Self {
            initiated: false,
            ringing: false,
            answered: false,
            completed: true,
        }
    }
}

impl CallProgressEvents {
    /// The space-separated TwiML value.
    pub fn to_attribute(self) -> String {
        let mut names = Vec::new();
        for (on, name) in [
            (self.initiated, "initiated"),
            (self.ringing, "ringing"),
            (self.answered, "answered"),
            (self.completed, "completed"),
        ] {
            if on {
                names.push(name);
            }
        }
        names.join(" ")
    }
}

/// `<Dial record>`: whether and how the bridged call is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DialRecord {
    /// `do-not-record` (or `false`; the default).
    #[default]
    DoNotRecord,
    /// `record-from-answer` (or `true`): both parties mixed, from the answer.
    FromAnswer,
    /// `record-from-ringing`: mixed, from when the far end starts ringing.
    FromRinging,
    /// `record-from-answer-dual`: caller and callee in two channels, from the answer.
    FromAnswerDual,
    /// `record-from-ringing-dual`: two channels, from ringing.
    FromRingingDual,
}

impl DialRecord {
    /// The TwiML value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DoNotRecord => "do-not-record",
            Self::FromAnswer => "record-from-answer",
            Self::FromRinging => "record-from-ringing",
            Self::FromAnswerDual => "record-from-answer-dual",
            Self::FromRingingDual => "record-from-ringing-dual",
        }
    }
}

/// `<Dial>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dial {
    /// Who to call.
    pub target: DialTarget,
    /// `action`: requested when the dialled call ends; without it the next verb runs.
    pub action: Option<UrlRef>,
    /// `method` for `action` (POST).
    pub method: HttpMethod,
    /// `timeout`: seconds to let the far end ring (30; 1–600).
    pub timeout_secs: u32,
    /// `timeLimit`: longest bridged call in seconds (14400; 1–86400).
    pub time_limit_secs: u32,
    /// `callerId`: the caller ID shown to the far end (default: the caller's).
    pub caller_id: Option<String>,
    /// `record` (do-not-record).
    pub record: DialRecord,
    /// `trim` (trim-silence).
    pub trim: Trim,
    /// `recordingStatusCallback`.
    pub recording_status_callback: Option<UrlRef>,
    /// `recordingStatusCallbackMethod` (POST).
    pub recording_status_callback_method: HttpMethod,
    /// `recordingStatusCallbackEvent` (completed).
    pub recording_status_callback_event: RecordingEvents,
    /// `answerOnBridge`: keep the caller ringing until the far end answers (false).
    pub answer_on_bridge: bool,
    /// `hangupOnStar`: the caller pressing `*` ends the dialled leg (false).
    pub hangup_on_star: bool,
    /// `ringTone`: the country whose ringback the caller hears (a two-letter code or `us-old`).
    pub ring_tone: Option<String>,
}

/// What `<Dial>` calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialTarget {
    /// One `<Sip>` noun.
    Sip(Box<Sip>),
    /// One to ten `<Number>` nouns (a plain-text body is one number with default attributes);
    /// they ring at once and the first to answer wins.
    Numbers(Vec<Number>),
}

/// A `<Sip>` password: zeroized on drop, never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SipPassword(Zeroizing<String>);

impl SipPassword {
    /// Wraps a password.
    pub fn new(password: String) -> Self {
        Self(Zeroizing::new(password))
    }

    /// The password, for the digest computation toward the far end.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SipPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SipPassword(<redacted>)")
    }
}

/// `<Sip>`: dial a SIP URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sip {
    /// The URI in the element body.
    pub uri: SipUri,
    /// `username` for digest authentication toward the far end.
    pub username: Option<String>,
    /// `password` for digest authentication toward the far end.
    pub password: Option<SipPassword>,
    /// `url`: TwiML run on the called party when it answers, before bridging.
    pub url: Option<UrlRef>,
    /// `method` for `url` (POST).
    pub method: HttpMethod,
    /// `statusCallbackEvent` (completed).
    pub status_callback_event: CallProgressEvents,
    /// `statusCallback`.
    pub status_callback: Option<UrlRef>,
    /// `statusCallbackMethod` (POST).
    pub status_callback_method: HttpMethod,
}

/// `<Number>`: dial a phone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number {
    /// The number as written (E.164 preferred; `(415) 555-1212` style is accepted).
    pub number: String,
    /// `sendDigits`: DTMF to send once answered (`w` waits half a second).
    pub send_digits: Option<String>,
    /// `url`: TwiML run on the called party when it answers.
    pub url: Option<UrlRef>,
    /// `method` for `url` (POST).
    pub method: HttpMethod,
    /// `statusCallbackEvent` (completed).
    pub status_callback_event: CallProgressEvents,
    /// `statusCallback`.
    pub status_callback: Option<UrlRef>,
    /// `statusCallbackMethod` (POST).
    pub status_callback_method: HttpMethod,
}

impl Number {
    /// A number with every attribute at its default.
    pub fn new(number: impl Into<String>) -> Self {
        Self {
            number: number.into(),
            send_digits: None,
            url: None,
            method: HttpMethod::Post,
            status_callback_event: CallProgressEvents::default(),
            status_callback: None,
            status_callback_method: HttpMethod::Post,
        }
    }
}

/// `<Record>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `action` (default: the current document's URL).
    pub action: Option<UrlRef>,
    /// `method` for `action` (POST).
    pub method: HttpMethod,
    /// `timeout`: seconds of silence that end the recording (5; 0 never ends on silence).
    pub timeout_secs: u32,
    /// `finishOnKey`: keys that end the recording (`1234567890*#`; empty: none).
    pub finish_on_key: String,
    /// `maxLength`: longest recording in seconds (3600; 2–86400).
    pub max_length_secs: u32,
    /// `playBeep` (true).
    pub play_beep: bool,
    /// `trim` (trim-silence).
    pub trim: Trim,
    /// `recordingStatusCallback`.
    pub recording_status_callback: Option<UrlRef>,
    /// `recordingStatusCallbackMethod` (POST).
    pub recording_status_callback_method: HttpMethod,
    /// `recordingStatusCallbackEvent` (completed).
    pub recording_status_callback_event: RecordingEvents,
    /// `transcribe` (false).
    pub transcribe: bool,
    /// `transcribeCallback`.
    pub transcribe_callback: Option<UrlRef>,
}

impl Default for Record {
    fn default() -> Self {
        Self {
            action: None,
            method: HttpMethod::Post,
            timeout_secs: 5,
            finish_on_key: "1234567890*#".to_owned(),
            max_length_secs: 3600,
            play_beep: true,
            trim: Trim::TrimSilence,
            recording_status_callback: None,
            recording_status_callback_method: HttpMethod::Post,
            recording_status_callback_event: RecordingEvents::default(),
            transcribe: false,
            transcribe_callback: None,
        }
    }
}

/// `<Play>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Play {
    /// What to play.
    pub source: PlaySource,
    /// `loop` (1).
    pub repeat: Repeat,
}

/// The body or `digits` of a `<Play>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaySource {
    /// The element body: an audio URL.
    Url(UrlRef),
    /// `digits`: DTMF to send (`0-9 * #`, `w` waits half a second).
    Digits(String),
}

/// `<Say>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Say {
    /// The text to speak.
    pub text: String,
    /// `voice` (`man`, `woman`, `alice`, `Polly.*`, `Google.*`; default: the synthesiser's).
    pub voice: Option<String>,
    /// `language` (a BCP 47 tag such as `en-US`; default: the voice's).
    pub language: Option<String>,
    /// `loop` (1).
    pub repeat: Repeat,
}

/// `<Pause>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    /// `length` in seconds (1; 1–3600).
    pub length_secs: u32,
}

impl Default for Pause {
    fn default() -> Self {
        Self { length_secs: 1 }
    }
}

/// What `<Gather>` listens for. Only DTMF is implemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum GatherInput {
    /// `dtmf` (the default).
    #[default]
    Dtmf,
}

/// `<Gather>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gather {
    /// `input` (dtmf).
    pub input: GatherInput,
    /// `action` (default: the current document's URL).
    pub action: Option<UrlRef>,
    /// `method` for `action` (POST).
    pub method: HttpMethod,
    /// `timeout`: seconds to wait for the first or next digit once prompts are done (5).
    pub timeout_secs: u32,
    /// `finishOnKey`: the key that ends input and is not part of `Digits` (`#`; empty: none).
    pub finish_on_key: Option<char>,
    /// `numDigits`: stop after this many digits (default: unlimited).
    pub num_digits: Option<NonZeroU32>,
    /// `actionOnEmptyResult`: request `action` even without input (false).
    pub action_on_empty_result: bool,
    /// Nested `<Say>`, `<Play>` and `<Pause>`, played while listening.
    pub prompts: Vec<Prompt>,
}

impl Default for Gather {
    fn default() -> Self {
        Self {
            input: GatherInput::Dtmf,
            action: None,
            method: HttpMethod::Post,
            timeout_secs: 5,
            finish_on_key: Some('#'),
            num_digits: None,
            action_on_empty_result: false,
            prompts: Vec::new(),
        }
    }
}

/// A verb nested in `<Gather>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// `<Say>`.
    Say(Say),
    /// `<Play>`.
    Play(Play),
    /// `<Pause>`.
    Pause(Pause),
}

/// `<Redirect>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The URL in the body.
    pub url: UrlRef,
    /// `method` (POST).
    pub method: HttpMethod,
}

/// `<Reject reason>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RejectReason {
    /// `rejected` (the default).
    #[default]
    Rejected,
    /// `busy`.
    Busy,
}

impl RejectReason {
    /// The TwiML value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rejected => "rejected",
            Self::Busy => "busy",
        }
    }
}

/// `<Reject>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reject {
    /// `reason` (rejected).
    pub reason: RejectReason,
}
