//! What the call core asks of the IO shell, and what the shell reports back.
//!
//! The core never waits: looking up a domain, fetching a webhook, synthesising speech,
//! starting a recording and moving packets all happen in the shell, which reports their
//! outcome through the matching `CallCore` input method.

use core::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use mediaseal_sip::message::Transport;
use mediaseal_twiml::{Callback, HttpMethod, RecordingEvents, Repeat, Trim};
use url::Url;

use crate::recording::{Layout, TapTracks};
use crate::relay::{LegSetup, Side};

/// Identifies a call inside one core (not the `CA…` SID, which is for people and webhooks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call-{}", self.0)
    }
}

/// Identifies a webhook request of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FetchId(pub u64);

/// Identifies a recording of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordingId(pub u64);

/// Something for the shell to do.
#[derive(Debug)]
#[non_exhaustive]
pub enum Effect {
    /// Look the domain up; answer with `CallCore::domain_found`.
    LookupDomain {
        /// The call (or REGISTER) waiting for it.
        call: CallId,
        /// The domain name (the Request-URI host, lower case).
        name: String,
    },
    /// Resolve a host name of a `<Sip>` URI (A/AAAA); answer with `CallCore::resolved`.
    Resolve {
        /// The call.
        call: CallId,
        /// The host name.
        host: String,
        /// The port to pair with the address.
        port: u16,
        /// The transport (for logs).
        transport: Transport,
    },
    /// The next TLS connection to `addr` must verify the peer's certificate for
    /// `server_name` (a DNS name or an IP literal).
    TlsServerName {
        /// The address.
        addr: SocketAddr,
        /// The name to verify.
        server_name: String,
    },
    /// An HTTP request to the customer's application.
    Webhook(WebhookRequest),
    /// Media work for the relay.
    Media(MediaCommand),
    /// Start a recording (through the call recorder seam); then tap the call into it, and
    /// answer with `CallCore::recording_finished` once the recording is stored.
    StartRecording(RecordingRequest),
    /// Stop a recording: stop the tap; the recorder finishes and the shell answers with
    /// `CallCore::recording_finished`.
    StopRecording {
        /// The call.
        call: CallId,
        /// The recording.
        recording: RecordingId,
    },
    /// A call (or dialled leg) changed status, for the Calls resource.
    CallStatus(CallUpdate),
    /// Leave a running recording's audio out (`paused`) or record again: the paused time is
    /// not in the recording (Twilio's `PauseBehavior=skip`).
    PauseRecording {
        /// The call.
        call: CallId,
        /// The recording.
        recording: RecordingId,
        /// Paused, or recording again.
        paused: bool,
    },
}

/// Why a webhook is requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookKind {
    /// TwiML to run: answer with `CallCore::webhook_done`.
    Twiml,
    /// The caller is gone; the response is ignored (no answer needed). Status callbacks are
    /// not webhooks: they travel with the [`CallUpdate`] they report, into the outbox.
    Notification,
}

/// A signed request to the customer's application.
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    /// The call.
    pub call: CallId,
    /// This request.
    pub fetch: FetchId,
    /// Whose auth token signs it (`X-Twilio-Signature`).
    pub account_sid: String,
    /// The URL.
    pub url: Url,
    /// GET (parameters in the query) or POST (form body).
    pub method: HttpMethod,
    /// Parameters, in order.
    pub params: Vec<(String, String)>,
    /// What the answer is for.
    pub kind: WebhookKind,
}

/// Why a webhook failed, as the Twilio error code the fallback URL is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchFailure {
    /// 11200 (HTTP error status), 11205 (connection failed or timed out), 11750 (too large)…
    pub code: u16,
}

/// A prompt the shell turns into PCM for the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// Synthesise speech.
    Say {
        /// The text.
        text: String,
        /// `voice`, if set.
        voice: Option<String>,
        /// `language`, if set.
        language: Option<String>,
    },
    /// Fetch and decode a WAV file.
    Url(Url),
    /// Send DTMF (`w` = 0.5 s).
    Digits(String),
    /// Silence.
    Silence(Duration),
    /// The `<Record>` beep.
    Beep,
}

/// Media work, addressed by call and leg.
#[derive(Debug)]
#[non_exhaustive]
pub enum MediaCommand {
    /// Bind the leg's sockets: `port` (RTP) and `port + 1` (RTCP). On failure call
    /// `CallCore::media_failed`.
    OpenLeg {
        /// The call.
        call: CallId,
        /// The leg.
        side: Side,
        /// The even RTP port.
        port: u16,
    },
    /// Keys, codec and peer address of an open leg (carries SRTP keys: never log it).
    ConfigureLeg {
        /// The call.
        call: CallId,
        /// The leg.
        side: Side,
        /// What the SDP negotiated.
        setup: Box<LegSetup>,
    },
    /// Close one leg (the callee's, when a dial ends).
    CloseLeg {
        /// The call.
        call: CallId,
        /// The leg.
        side: Side,
    },
    /// Connect or disconnect the two legs.
    Bridge {
        /// The call.
        call: CallId,
        /// Connected.
        bridged: bool,
    },
    /// Play prompts to the caller in order; the relay reports `PlaybackDone` at the end.
    Play {
        /// The call.
        call: CallId,
        /// The prompts and how often each repeats.
        prompts: Vec<(Prompt, Repeat)>,
    },
    /// Stop the prompt (no `PlaybackDone`).
    StopPlayback {
        /// The call.
        call: CallId,
    },
    /// Report `SilenceElapsed` after this much caller silence (`None` disarms).
    ArmSilence {
        /// The call.
        call: CallId,
        /// The silence that ends a `<Record>`.
        timeout: Option<Duration>,
    },
    /// The call is over: close every socket and drop its keys.
    Close {
        /// The call.
        call: CallId,
    },
}

/// What produced a recording (the Recording resource's `source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingSource {
    /// `<Dial record=…>`.
    DialVerb,
    /// `<Record>`.
    RecordVerb,
    /// `POST …/Calls/{CA}/Recordings.json`.
    StartCallRecordingApi,
    /// `POST …/Calls.json` with `Record=true`.
    OutboundApi,
}

impl RecordingSource {
    /// Twilio's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DialVerb => "DialVerb",
            Self::RecordVerb => "RecordVerb",
            Self::StartCallRecordingApi => "StartCallRecordingAPI",
            Self::OutboundApi => "OutboundAPI",
        }
    }
}

/// A recording to start.
#[derive(Debug, Clone)]
pub struct RecordingRequest {
    /// The call.
    pub call: CallId,
    /// This recording.
    pub recording: RecordingId,
    /// The owner.
    pub account_sid: String,
    /// The call's `CA…`.
    pub call_sid: String,
    /// Mono mix or two channels.
    pub layout: Layout,
    /// Which parties.
    pub tracks: TapTracks,
    /// What started it.
    pub source: RecordingSource,
    /// `trim`.
    pub trim: Trim,
    /// `recordingStatusCallback`.
    pub status_callback: Option<Callback<RecordingEvents>>,
}

/// A finished recording, for `RecordingUrl`/`RecordingSid`/`RecordingDuration`.
pub use mediaseal_twiml::RecordingInfo;

/// A status change for the Calls resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallUpdate {
    /// `CA…`.
    pub call_sid: String,
    /// The owner.
    pub account_sid: String,
    /// For a dialled leg: the caller's `CA…`.
    pub parent_call_sid: Option<String>,
    /// `inbound` or `outbound-dial`.
    pub direction: &'static str,
    /// From.
    pub from: String,
    /// To.
    pub to: String,
    /// `ringing`, `in-progress`, `completed`, `busy`, `no-answer`, `failed`, `canceled`.
    pub status: &'static str,
    /// The SIP Call-ID of this leg.
    pub sip_call_id: String,
    /// Seconds since the answer, on `completed`.
    pub duration_secs: Option<u32>,
    /// With the final status of an inbound call whose domain has a `VoiceStatusCallbackUrl`:
    /// the callback to send. The ledger queues it durably (signed, retried) with the row.
    /// Boxed: it is rare, and [`Effect`] stays small.
    pub status_callback: Option<Box<CallStatusCallback>>,
}

/// A call status callback to the domain's `VoiceStatusCallbackUrl`, with the voice and SIP
/// parameters of the call's webhooks, `CallStatus` and `CallDuration`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallStatusCallback {
    /// The URL.
    pub url: Url,
    /// GET or POST.
    pub method: HttpMethod,
    /// Parameters, in order.
    pub params: Vec<(String, String)>,
}
