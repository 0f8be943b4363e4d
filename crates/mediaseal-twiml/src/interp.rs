//! The call-script interpreter: a sans-IO state machine that runs one call's TwiML.
//!
//! The call layer feeds [`Event`]s in through [`Interpreter::handle`] and drains [`Command`]s
//! with [`Interpreter::poll_command`]. The interpreter never waits, reads a clock or touches a
//! socket: timers (Pause, Gather and Dial timeouts) and HTTP fetches belong to the call layer,
//! which reports their outcome as events.

use core::num::NonZeroU32;
use std::collections::VecDeque;
use std::time::Duration;

use url::Url;

use crate::SipUri;
use crate::error::TwilioCode;
use crate::model::*;

/// Which side started the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallDirection {
    /// A call that arrived (SIP INVITE to a domain): it rings until the script answers it.
    Inbound,
    /// A call placed through the Calls API: the script starts when the far end answers
    /// ([`Event::Answered`]).
    OutboundApi,
}

/// A URL and the method to request it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchTarget {
    /// The absolute URL.
    pub url: Url,
    /// GET or POST.
    pub method: HttpMethod,
}

/// Where the first document comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script {
    /// Fetch it (the domain's `VoiceUrl`, or the call's `Url`).
    Fetch(FetchTarget),
    /// Run this document (the Calls API `Twiml` parameter). Relative URLs in it cannot be
    /// resolved, so verbs that need them end the call with error 11100.
    Inline(Response),
}

/// SIP status codes for `<Reject>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RejectStatus {
    /// For `reason="rejected"`: 603 Decline by default (Twilio's current page says 404; older
    /// ones say 603, the usual SIP meaning of a deliberate refusal).
    pub rejected: u16,
    /// For `reason="busy"`: 486 Busy Here.
    pub busy: u16,
}

impl Default for RejectStatus {
    fn default() -> Self {
        Self {
            rejected: 603,
            busy: 486,
        }
    }
}

/// How one call's interpreter is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpreterConfig {
    /// Inbound or API-placed.
    pub direction: CallDirection,
    /// The first document.
    pub script: Script,
    /// Requested when the first fetch fails (`VoiceFallbackUrl`), with `ErrorCode` and
    /// `ErrorUrl`.
    pub fallback: Option<FetchTarget>,
    /// SIP codes for `<Reject>`.
    pub reject_status: RejectStatus,
    /// Most documents fetched in one call, the first and the fallback included.
    pub max_fetches: u32,
}

/// The default bound on documents per call.
pub const DEFAULT_MAX_FETCHES: u32 = 100;

impl InterpreterConfig {
    /// An inbound call whose first document is fetched from `url`.
    pub fn inbound(url: Url, method: HttpMethod) -> Self {
        Self {
            direction: CallDirection::Inbound,
            script: Script::Fetch(FetchTarget { url, method }),
            fallback: None,
            reject_status: RejectStatus::default(),
            max_fetches: DEFAULT_MAX_FETCHES,
        }
    }

    /// A call placed through the API, run once the far end answers.
    pub fn outbound(script: Script) -> Self {
        Self {
            direction: CallDirection::OutboundApi,
            script,
            fallback: None,
            reject_status: RejectStatus::default(),
            max_fetches: DEFAULT_MAX_FETCHES,
        }
    }
}

/// Why a fetch is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchPurpose {
    /// The TwiML it returns runs next: report it with [`Event::TwimlFetched`] or
    /// [`Event::FetchFailed`].
    Script,
    /// The fallback URL after the first fetch failed; otherwise as [`FetchPurpose::Script`].
    Fallback,
    /// The caller is gone: the request reports what happened and its response is not run.
    /// Report completion as for a script fetch (the document is discarded).
    Notification,
}

/// A webhook request. The call layer adds Twilio's standard call parameters (`CallSid`,
/// `AccountSid`, `From`, `To`, `CallStatus`, `Direction`, the `Sip*` ones…) and signs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// The absolute URL.
    pub url: Url,
    /// GET (parameters in the query) or POST (form body).
    pub method: HttpMethod,
    /// Verb-specific parameters, in order (`Digits`, `DialCallStatus`…).
    pub params: Vec<(String, String)>,
    /// What the response is for.
    pub purpose: FetchPurpose,
}

/// A status callback: URL, method, and the events it wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback<E> {
    /// Where to send it.
    pub target: FetchTarget,
    /// Which events.
    pub events: E,
}

/// One prompt played while a `<Gather>` listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptCommand {
    /// Speak text.
    Say {
        /// The text.
        text: String,
        /// `voice`, if set.
        voice: Option<String>,
        /// `language`, if set.
        language: Option<String>,
        /// How often.
        repeat: Repeat,
    },
    /// Play audio.
    Play {
        /// The resolved audio URL.
        url: Url,
        /// How often.
        repeat: Repeat,
    },
    /// Send DTMF (`w` = half a second's wait).
    SendDigits {
        /// The digits.
        digits: String,
    },
    /// Stay silent.
    Pause {
        /// How long.
        duration: Duration,
    },
}

/// A recording of a `<Dial>`ed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialRecording {
    /// When it starts and how many channels (never [`DialRecord::DoNotRecord`]).
    pub mode: DialRecord,
    /// Trim silence.
    pub trim: Trim,
    /// `recordingStatusCallback`.
    pub status_callback: Option<Callback<RecordingEvents>>,
}

/// One leg to ring for a `<Dial>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialLeg {
    /// A SIP URI (`;secure=true` means TLS to 5061 and exactly one `_80` crypto line).
    Sip {
        /// The URI.
        uri: SipUri,
        /// Digest username toward the far end.
        username: Option<String>,
        /// Digest password toward the far end.
        password: Option<SipPassword>,
        /// TwiML to run on the callee once it answers, before bridging.
        whisper: Option<FetchTarget>,
        /// Call-progress callback for this leg.
        status_callback: Option<Callback<CallProgressEvents>>,
    },
    /// A phone number.
    Number {
        /// As written.
        number: String,
        /// DTMF to send once answered.
        send_digits: Option<String>,
        /// TwiML to run on the callee once it answers, before bridging.
        whisper: Option<FetchTarget>,
        /// Call-progress callback for this leg.
        status_callback: Option<Callback<CallProgressEvents>>,
    },
}

/// What the call layer does for a `<Dial>`. It reports the end with [`Event::DialEnded`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialCommand {
    /// The legs to ring at once (one for `<Sip>`); the first to answer is bridged.
    pub legs: Vec<DialLeg>,
    /// How long to ring before giving up (`no-answer`).
    pub timeout: Duration,
    /// Longest bridged call.
    pub time_limit: Duration,
    /// Caller ID toward the callee (default: the caller's).
    pub caller_id: Option<String>,
    /// Record the bridged call. Dial recordings start at the callee's answer or ringing,
    /// which only the call layer sees, so they travel with the dial rather than as a separate
    /// start-recording command.
    pub recording: Option<DialRecording>,
    /// Leave the caller ringing until the callee answers; the call layer answers the caller
    /// on bridging and reports [`Event::Answered`].
    pub answer_on_bridge: bool,
    /// `*` from the caller ends the dialled leg.
    pub hangup_on_star: bool,
    /// Ringback country code.
    pub ring_tone: Option<String>,
}

/// What the call layer does for a `<Record>`. It reports the end with
/// [`Event::RecordingFinished`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordCommand {
    /// Longest recording.
    pub max_length: Duration,
    /// Silence that ends it (`None`: silence never ends it).
    pub silence_timeout: Option<Duration>,
    /// Keys that end it.
    pub finish_on_key: String,
    /// Beep before recording.
    pub play_beep: bool,
    /// Trim silence.
    pub trim: Trim,
    /// `recordingStatusCallback`.
    pub status_callback: Option<Callback<RecordingEvents>>,
    /// `transcribe`.
    pub transcribe: bool,
    /// `transcribeCallback`.
    pub transcribe_callback: Option<Url>,
}

/// What the call layer does for a `<Gather>`: play the prompts in order while collecting DTMF
/// (the first digit stops the prompts), then wait `timeout` for the first or next digit.
/// It reports [`Event::DigitsCollected`] or [`Event::GatherTimeout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectDigits {
    /// Played while listening.
    pub prompts: Vec<PromptCommand>,
    /// Wait after the prompts, and between digits.
    pub timeout: Duration,
    /// The key that ends input (not part of the digits).
    pub finish_on_key: Option<char>,
    /// Stop after this many digits.
    pub num_digits: Option<NonZeroU32>,
}

/// Why the interpreter hangs up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangupReason {
    /// `<Hangup>` or the end of the document. Always preceded by [`Command::Answer`] (now or
    /// earlier): SIP 200, then BYE.
    Completed,
    /// A document could not be fetched, parsed or run (the code says why: 11200, 12100,
    /// 11100…). If the call was never answered the call layer ends it with a final error
    /// response (500) instead of a BYE.
    ApplicationError(TwilioCode),
    /// [`InterpreterConfig::max_fetches`] was reached (a `<Redirect>` loop). Handled like
    /// [`HangupReason::ApplicationError`].
    FetchLimit,
}

/// An instruction for the call layer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Send 180 Ringing.
    Ring,
    /// Answer (SIP 200 OK). No event is expected back.
    Answer,
    /// Request a URL; report the outcome with [`Event::TwimlFetched`] or
    /// [`Event::FetchFailed`].
    Fetch(FetchRequest),
    /// Speak; report [`Event::PlaybackDone`].
    Say {
        /// The text.
        text: String,
        /// `voice`, if set.
        voice: Option<String>,
        /// `language`, if set.
        language: Option<String>,
        /// How often.
        repeat: Repeat,
    },
    /// Play audio; report [`Event::PlaybackDone`].
    Play {
        /// The resolved audio URL.
        url: Url,
        /// How often.
        repeat: Repeat,
    },
    /// Send DTMF to the caller's far end; report [`Event::PlaybackDone`].
    SendDigits {
        /// The digits (`w` = half a second's wait).
        digits: String,
    },
    /// Wait; report [`Event::PauseElapsed`].
    Pause {
        /// How long.
        duration: Duration,
    },
    /// Prompt and collect DTMF.
    CollectDigits(CollectDigits),
    /// Dial.
    Dial(DialCommand),
    /// Record the caller.
    Record(RecordCommand),
    /// Refuse the unanswered call with this final SIP status. The script is over.
    Reject {
        /// 603, 486, or as configured.
        status: u16,
    },
    /// End the call. The script is over.
    Hangup {
        /// Why.
        reason: HangupReason,
    },
}

/// `DialCallStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialCallStatus {
    /// The callee answered and the call ended normally.
    Completed,
    /// The callee answered (Twilio uses this for some bridged flows).
    Answered,
    /// Busy (SIP 486/600).
    Busy,
    /// No answer within `timeout`.
    NoAnswer,
    /// The dial failed (bad destination, TLS or SRTP failure, 4xx/5xx).
    Failed,
    /// The caller hung up or the dial was cancelled before an answer.
    Canceled,
}

impl DialCallStatus {
    /// The parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Answered => "answered",
            Self::Busy => "busy",
            Self::NoAnswer => "no-answer",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }
}

/// A finished recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingInfo {
    /// `RecordingSid` (`RE…`).
    pub sid: String,
    /// `RecordingUrl`.
    pub url: String,
    /// `RecordingDuration` in seconds.
    pub duration_secs: u32,
}

/// How a `<Dial>` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialOutcome {
    /// `DialCallStatus`.
    pub status: DialCallStatus,
    /// `DialCallSid` of the dialled leg.
    pub call_sid: Option<String>,
    /// `DialCallDuration` in seconds (answered calls).
    pub duration_secs: Option<u32>,
    /// `DialSipCallId`: the Call-ID of the dialled SIP leg.
    pub sip_call_id: Option<String>,
    /// `DialSipResponseCode`: the final response to the dialled INVITE.
    pub sip_response_code: Option<u16>,
    /// The recording, when `record` was set and audio was recorded.
    pub recording: Option<RecordingInfo>,
}

/// How a `<Record>` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingOutcome {
    /// The recording, or `None` for an empty one (its action is skipped).
    pub recording: Option<RecordingInfo>,
    /// The key that ended it, if one did.
    pub digits: Option<String>,
}

/// Something that happened on the call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The call was answered by the far end (an API-placed call), or bridged on answer
    /// (`answerOnBridge`).
    Answered,
    /// `<Gather>` input ended with digits (or just the finish key: empty digits).
    DigitsCollected {
        /// The digits, without the finish key.
        digits: String,
        /// The finish key, if input ended with it.
        finished_on_key: Option<char>,
    },
    /// `<Gather>` timed out without digits.
    GatherTimeout,
    /// The `<Dial>` ended.
    DialEnded(DialOutcome),
    /// The `<Record>` ended.
    RecordingFinished(RecordingOutcome),
    /// A `Say`, `Play` or `SendDigits` finished.
    PlaybackDone,
    /// A `Pause` elapsed.
    PauseElapsed,
    /// The requested document arrived and parsed.
    TwimlFetched(Response),
    /// The request failed, or its body was not valid TwiML (11200, 12100, 12200…).
    FetchFailed {
        /// Why, as a Twilio code.
        code: TwilioCode,
    },
    /// The caller hung up.
    CallerHungUp,
}

impl Event {
    fn name(&self) -> &'static str {
        match self {
            Self::Answered => "Answered",
            Self::DigitsCollected { .. } => "DigitsCollected",
            Self::GatherTimeout => "GatherTimeout",
            Self::DialEnded(_) => "DialEnded",
            Self::RecordingFinished(_) => "RecordingFinished",
            Self::PlaybackDone => "PlaybackDone",
            Self::PauseElapsed => "PauseElapsed",
            Self::TwimlFetched(_) => "TwimlFetched",
            Self::FetchFailed { .. } => "FetchFailed",
            Self::CallerHungUp => "CallerHungUp",
        }
    }
}

/// An event arrived that the current state does not expect; it was ignored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {event} is not expected while the interpreter is {state}; ignored")]
pub struct UnexpectedEvent {
    /// The event.
    pub event: &'static str,
    /// What the interpreter was waiting for.
    pub state: &'static str,
}

#[derive(Debug, Clone)]
enum Waiting {
    /// An API-placed call not answered yet.
    Answer(Script),
    Fetch(FetchPurpose),
    Playback,
    Pause,
    Gather {
        action: FetchTarget,
        action_on_empty_result: bool,
    },
    Dial {
        action: Option<FetchTarget>,
    },
    Record {
        action: FetchTarget,
    },
    /// Running verbs; never observed from outside `run`.
    Running,
    Finished,
}

impl Waiting {
    fn name(&self) -> &'static str {
        match self {
            Self::Answer(_) => "waiting for the call to be answered",
            Self::Fetch(_) => "waiting for a document",
            Self::Playback => "playing",
            Self::Pause => "pausing",
            Self::Gather { .. } => "gathering digits",
            Self::Dial { .. } => "dialling",
            Self::Record { .. } => "recording",
            Self::Running => "running",
            Self::Finished => "finished",
        }
    }
}

/// One call's TwiML interpreter.
///
/// The call layer feeds [`Event`]s in through [`Interpreter::handle`] and drains
/// [`Command`]s with [`Interpreter::poll_command`]; timers and HTTP belong to the call layer.
///
/// Twilio's rules it follows:
/// - `<Say>`, `<Play>`, `<Record>`, `<Gather>`, `<Dial>` (unless `answerOnBridge`) and
///   `<Hangup>` answer the call first (SIP 200) if it is not answered yet; `<Pause>` and
///   `<Redirect>` keep it ringing (180).
/// - `<Reject>` refuses an unanswered call (603 for `rejected`, 486 for `busy`, configurable);
///   once answered it hangs up instead.
/// - Action URLs get Twilio's parameters (`Digits`, `DialCallStatus`, `RecordingUrl`…) and the
///   TwiML they return replaces the current document. Without `action`, `<Dial>` continues with
///   the next verb; `<Gather>` and `<Record>` default to the current document's URL.
/// - A `<Gather>` without input falls through to the next verb (or requests `action` when
///   `actionOnEmptyResult` is set); an empty `<Record>` skips its action.
/// - If the caller hangs up during `<Dial>` or `<Record>`, the action URL is still requested
///   (as a [`FetchPurpose::Notification`]) but what it returns is not run.
/// - The end of the document hangs up (answering first, as `<Hangup>` does). Only the first
///   document fetch falls back to the configured fallback URL (Twilio's `VoiceFallbackUrl`).
/// - At most [`InterpreterConfig::max_fetches`] documents are fetched per call, so a
///   `<Redirect>` loop ends instead of running forever.
#[derive(Debug)]
pub struct Interpreter {
    reject_status: RejectStatus,
    max_fetches: u32,
    fallback: Option<FetchTarget>,
    commands: VecDeque<Command>,
    waiting: Waiting,
    answered: bool,
    caller_gone: bool,
    fetches: u32,
    first_document_pending: bool,
    pending_url: Option<Url>,
    document_url: Option<Url>,
    verbs: VecDeque<Verb>,
}

impl Interpreter {
    /// Starts a call's script: an inbound call rings and fetches its first document (or runs
    /// an inline one); an API-placed call waits for [`Event::Answered`].
    pub fn new(config: InterpreterConfig) -> Self {
        let mut this = Self {
            reject_status: config.reject_status,
            max_fetches: config.max_fetches,
            fallback: config.fallback,
            commands: VecDeque::new(),
            waiting: Waiting::Running,
            answered: false,
            caller_gone: false,
            fetches: 0,
            first_document_pending: false,
            pending_url: None,
            document_url: None,
            verbs: VecDeque::new(),
        };
        match config.direction {
            CallDirection::Inbound => {
                this.commands.push_back(Command::Ring);
                this.begin(config.script);
            }
            CallDirection::OutboundApi => this.waiting = Waiting::Answer(config.script),
        }
        this
    }

    /// The next command for the call layer, in order.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// Whether the script is over (hung up, rejected, or the caller left).
    pub fn is_finished(&self) -> bool {
        matches!(self.waiting, Waiting::Finished)
    }

    /// Whether the call has been answered.
    pub fn is_answered(&self) -> bool {
        self.answered
    }

    /// The URL of the document being run (relative URLs resolve against it).
    pub fn document_url(&self) -> Option<&Url> {
        self.document_url.as_ref()
    }

    /// Feeds one event in. Commands it causes are queued for [`Interpreter::poll_command`].
    pub fn handle(&mut self, event: Event) -> Result<(), UnexpectedEvent> {
        let unexpected = |state: &Waiting, event: &Event| UnexpectedEvent {
            event: event.name(),
            state: state.name(),
        };
        let waiting = core::mem::replace(&mut self.waiting, Waiting::Running);
        match (waiting, event) {
            (Waiting::Finished, event) => {
                self.waiting = Waiting::Finished;
                return Err(unexpected(&Waiting::Finished, &event));
            }
            (Waiting::Answer(script), Event::Answered) => {
                self.answered = true;
                self.begin(script);
            }
            (Waiting::Dial { action }, Event::Answered) if !self.answered => {
                self.answered = true;
                self.waiting = Waiting::Dial { action };
            }
            (waiting @ (Waiting::Dial { .. } | Waiting::Record { .. }), Event::CallerHungUp) => {
                // The outcome still arrives, and the action URL still hears about it.
                self.caller_gone = true;
                self.waiting = waiting;
            }
            (_, Event::CallerHungUp) => {
                self.caller_gone = true;
                self.waiting = Waiting::Finished;
            }
            (Waiting::Fetch(purpose), Event::TwimlFetched(document)) => {
                let url = self.pending_url.take();
                if purpose == FetchPurpose::Notification {
                    self.waiting = Waiting::Finished;
                } else {
                    self.first_document_pending = false;
                    self.document_url = url;
                    self.verbs = document.verbs.into();
                    self.run();
                }
            }
            (Waiting::Fetch(purpose), Event::FetchFailed { code }) => {
                let failed_url = self.pending_url.take();
                match (purpose, self.fallback.take()) {
                    (FetchPurpose::Notification, _) => self.waiting = Waiting::Finished,
                    (FetchPurpose::Script, Some(fallback)) if self.first_document_pending => {
                        let params = vec![
                            ("ErrorCode".to_owned(), code.to_string()),
                            (
                                "ErrorUrl".to_owned(),
                                failed_url.map(String::from).unwrap_or_default(),
                            ),
                        ];
                        self.fetch(fallback, params, FetchPurpose::Fallback);
                    }
                    _ => self.fail(HangupReason::ApplicationError(code)),
                }
            }
            (Waiting::Playback, Event::PlaybackDone) | (Waiting::Pause, Event::PauseElapsed) => {
                self.run();
            }
            (
                Waiting::Gather {
                    action,
                    action_on_empty_result,
                },
                event @ (Event::DigitsCollected { .. } | Event::GatherTimeout),
            ) => {
                let (digits, finished_on_key) = match event {
                    Event::DigitsCollected {
                        digits,
                        finished_on_key,
                    } => (digits, finished_on_key),
                    _ => (String::new(), None),
                };
                if digits.is_empty() && !action_on_empty_result {
                    self.run();
                } else {
                    let mut params = vec![("Digits".to_owned(), digits)];
                    if let Some(key) = finished_on_key {
                        params.push(("FinishedOnKey".to_owned(), key.to_string()));
                    }
                    self.fetch(action, params, FetchPurpose::Script);
                }
            }
            (Waiting::Dial { action }, Event::DialEnded(outcome)) => match action {
                Some(action) => {
                    let params = dial_params(&outcome);
                    let purpose = self.action_purpose();
                    self.fetch(action, params, purpose);
                }
                None if self.caller_gone => self.waiting = Waiting::Finished,
                None => self.run(),
            },
            (Waiting::Record { action }, Event::RecordingFinished(outcome)) => {
                match outcome.recording {
                    None if self.caller_gone => self.waiting = Waiting::Finished,
                    None => self.run(),
                    Some(recording) => {
                        let digits = if self.caller_gone {
                            Some("hangup".to_owned())
                        } else {
                            outcome.digits
                        };
                        let mut params = recording_params(&recording);
                        if let Some(d) = digits {
                            params.push(("Digits".to_owned(), d));
                        }
                        let purpose = self.action_purpose();
                        self.fetch(action, params, purpose);
                    }
                }
            }
            (waiting, event) => {
                let err = unexpected(&waiting, &event);
                self.waiting = waiting;
                return Err(err);
            }
        }
        Ok(())
    }

    fn action_purpose(&self) -> FetchPurpose {
        if self.caller_gone {
            FetchPurpose::Notification
        } else {
            FetchPurpose::Script
        }
    }

    fn begin(&mut self, script: Script) {
        match script {
            Script::Fetch(target) => {
                self.first_document_pending = true;
                self.fetch(target, Vec::new(), FetchPurpose::Script);
            }
            Script::Inline(document) => {
                self.document_url = None;
                self.verbs = document.verbs.into();
                self.run();
            }
        }
    }

    fn fetch(&mut self, target: FetchTarget, params: Vec<(String, String)>, purpose: FetchPurpose) {
        if purpose != FetchPurpose::Notification {
            if self.fetches >= self.max_fetches {
                self.fail(HangupReason::FetchLimit);
                return;
            }
            self.fetches += 1;
        }
        self.pending_url = Some(target.url.clone());
        self.commands.push_back(Command::Fetch(FetchRequest {
            url: target.url,
            method: target.method,
            params,
            purpose,
        }));
        self.waiting = Waiting::Fetch(purpose);
    }

    fn fail(&mut self, reason: HangupReason) {
        self.commands.push_back(Command::Hangup { reason });
        self.waiting = Waiting::Finished;
    }

    fn answer(&mut self) {
        if !self.answered {
            self.answered = true;
            self.commands.push_back(Command::Answer);
        }
    }

    fn hang_up(&mut self) {
        self.answer();
        self.commands.push_back(Command::Hangup {
            reason: HangupReason::Completed,
        });
        self.waiting = Waiting::Finished;
    }

    fn resolve(&self, url: &UrlRef) -> Result<Url, HangupReason> {
        url.resolve(self.document_url.as_ref())
            .map_err(|_| HangupReason::ApplicationError(TwilioCode::INVALID_URL))
    }

    fn target(&self, url: &UrlRef, method: HttpMethod) -> Result<FetchTarget, HangupReason> {
        Ok(FetchTarget {
            url: self.resolve(url)?,
            method,
        })
    }

    /// `action`, or the current document's URL (Gather and Record).
    fn action_or_document(
        &self,
        action: Option<&UrlRef>,
        method: HttpMethod,
    ) -> Result<FetchTarget, HangupReason> {
        match action {
            Some(url) => self.target(url, method),
            None => match &self.document_url {
                Some(url) => Ok(FetchTarget {
                    url: url.clone(),
                    method,
                }),
                None => Err(HangupReason::ApplicationError(TwilioCode::INVALID_URL)),
            },
        }
    }

    fn callback<E>(
        &self,
        url: Option<&UrlRef>,
        method: HttpMethod,
        events: E,
    ) -> Result<Option<Callback<E>>, HangupReason> {
        url.map(|u| {
            Ok(Callback {
                target: self.target(u, method)?,
                events,
            })
        })
        .transpose()
    }

    /// Runs verbs until one has to wait for the call layer, or the script ends.
    fn run(&mut self) {
        self.waiting = Waiting::Running;
        while matches!(self.waiting, Waiting::Running) {
            let Some(verb) = self.verbs.pop_front() else {
                self.hang_up();
                return;
            };
            if let Err(reason) = self.execute(verb) {
                self.fail(reason);
            }
        }
    }

    fn execute(&mut self, verb: Verb) -> Result<(), HangupReason> {
        match verb {
            Verb::Say(say) => {
                self.answer();
                self.commands.push_back(Command::Say {
                    text: say.text,
                    voice: say.voice,
                    language: say.language,
                    repeat: say.repeat,
                });
                self.waiting = Waiting::Playback;
            }
            Verb::Play(play) => {
                let command = match play.source {
                    PlaySource::Url(url) => Command::Play {
                        url: self.resolve(&url)?,
                        repeat: play.repeat,
                    },
                    PlaySource::Digits(digits) => Command::SendDigits { digits },
                };
                self.answer();
                self.commands.push_back(command);
                self.waiting = Waiting::Playback;
            }
            Verb::Pause(pause) => {
                self.commands.push_back(Command::Pause {
                    duration: secs(pause.length_secs),
                });
                self.waiting = Waiting::Pause;
            }
            Verb::Gather(gather) => {
                let action = self.action_or_document(gather.action.as_ref(), gather.method)?;
                let mut prompts = Vec::with_capacity(gather.prompts.len());
                for prompt in gather.prompts {
                    prompts.push(match prompt {
                        Prompt::Say(s) => PromptCommand::Say {
                            text: s.text,
                            voice: s.voice,
                            language: s.language,
                            repeat: s.repeat,
                        },
                        Prompt::Play(Play {
                            source: PlaySource::Url(url),
                            repeat,
                        }) => PromptCommand::Play {
                            url: self.resolve(&url)?,
                            repeat,
                        },
                        Prompt::Play(Play {
                            source: PlaySource::Digits(digits),
                            ..
                        }) => PromptCommand::SendDigits { digits },
                        Prompt::Pause(p) => PromptCommand::Pause {
                            duration: secs(p.length_secs),
                        },
                    });
                }
                self.answer();
                self.commands
                    .push_back(Command::CollectDigits(CollectDigits {
                        prompts,
                        timeout: secs(gather.timeout_secs),
                        finish_on_key: gather.finish_on_key,
                        num_digits: gather.num_digits,
                    }));
                self.waiting = Waiting::Gather {
                    action,
                    action_on_empty_result: gather.action_on_empty_result,
                };
            }
            Verb::Dial(dial) => {
                let action = dial
                    .action
                    .as_ref()
                    .map(|u| self.target(u, dial.method))
                    .transpose()?;
                let legs = match dial.target {
                    DialTarget::Sip(sip) => vec![DialLeg::Sip {
                        whisper: sip
                            .url
                            .as_ref()
                            .map(|u| self.target(u, sip.method))
                            .transpose()?,
                        status_callback: self.callback(
                            sip.status_callback.as_ref(),
                            sip.status_callback_method,
                            sip.status_callback_event,
                        )?,
                        uri: sip.uri,
                        username: sip.username,
                        password: sip.password,
                    }],
                    DialTarget::Numbers(numbers) => {
                        let mut legs = Vec::with_capacity(numbers.len());
                        for n in numbers {
                            legs.push(DialLeg::Number {
                                whisper: n
                                    .url
                                    .as_ref()
                                    .map(|u| self.target(u, n.method))
                                    .transpose()?,
                                status_callback: self.callback(
                                    n.status_callback.as_ref(),
                                    n.status_callback_method,
                                    n.status_callback_event,
                                )?,
                                number: n.number,
                                send_digits: n.send_digits,
                            });
                        }
                        legs
                    }
                };
                let recording = match dial.record {
                    DialRecord::DoNotRecord => None,
                    mode => Some(DialRecording {
                        mode,
                        trim: dial.trim,
                        status_callback: self.callback(
                            dial.recording_status_callback.as_ref(),
                            dial.recording_status_callback_method,
                            dial.recording_status_callback_event,
                        )?,
                    }),
                };
                if !dial.answer_on_bridge {
                    self.answer();
                }
                self.commands.push_back(Command::Dial(DialCommand {
                    legs,
                    timeout: secs(dial.timeout_secs),
                    time_limit: secs(dial.time_limit_secs),
                    caller_id: dial.caller_id,
                    recording,
                    answer_on_bridge: dial.answer_on_bridge,
                    hangup_on_star: dial.hangup_on_star,
                    ring_tone: dial.ring_tone,
                }));
                self.waiting = Waiting::Dial { action };
            }
            Verb::Record(record) => {
                let action = self.action_or_document(record.action.as_ref(), record.method)?;
                let status_callback = self.callback(
                    record.recording_status_callback.as_ref(),
                    record.recording_status_callback_method,
                    record.recording_status_callback_event,
                )?;
                let transcribe_callback = record
                    .transcribe_callback
                    .as_ref()
                    .map(|u| self.resolve(u))
                    .transpose()?;
                self.answer();
                self.commands.push_back(Command::Record(RecordCommand {
                    max_length: secs(record.max_length_secs),
                    silence_timeout: (record.timeout_secs > 0).then(|| secs(record.timeout_secs)),
                    finish_on_key: record.finish_on_key,
                    play_beep: record.play_beep,
                    trim: record.trim,
                    status_callback,
                    transcribe: record.transcribe,
                    transcribe_callback,
                }));
                self.waiting = Waiting::Record { action };
            }
            Verb::Redirect(redirect) => {
                let target = self.target(&redirect.url, redirect.method)?;
                self.fetch(target, Vec::new(), FetchPurpose::Script);
            }
            Verb::Reject(reject) => {
                if self.answered {
                    self.hang_up();
                } else {
                    let status = match reject.reason {
                        RejectReason::Rejected => self.reject_status.rejected,
                        RejectReason::Busy => self.reject_status.busy,
                    };
                    self.commands.push_back(Command::Reject { status });
                    self.waiting = Waiting::Finished;
                }
            }
            Verb::Hangup => self.hang_up(),
        }
        Ok(())
    }
}

fn secs(n: u32) -> Duration {
    Duration::from_secs(u64::from(n))
}

fn dial_params(outcome: &DialOutcome) -> Vec<(String, String)> {
    let mut params = vec![(
        "DialCallStatus".to_owned(),
        outcome.status.as_str().to_owned(),
    )];
    if let Some(sid) = &outcome.call_sid {
        params.push(("DialCallSid".to_owned(), sid.clone()));
    }
    if let Some(d) = outcome.duration_secs {
        params.push(("DialCallDuration".to_owned(), d.to_string()));
    }
    if let Some(id) = &outcome.sip_call_id {
        params.push(("DialSipCallId".to_owned(), id.clone()));
    }
    if let Some(code) = outcome.sip_response_code {
        params.push(("DialSipResponseCode".to_owned(), code.to_string()));
    }
    if let Some(r) = &outcome.recording {
        params.extend(recording_params(r));
    }
    params
}

fn recording_params(r: &RecordingInfo) -> Vec<(String, String)> {
    vec![
        ("RecordingUrl".to_owned(), r.url.clone()),
        ("RecordingDuration".to_owned(), r.duration_secs.to_string()),
        ("RecordingSid".to_owned(), r.sid.clone()),
    ]
}
