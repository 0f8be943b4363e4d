//! The call state machine of the back-to-back user agent, sans-IO.
//!
//! [`CallCore`] owns the SIP transaction [`Endpoint`], the digest server, the RTP port pool and
//! every call. The shell feeds it what arrives (SIP bytes with the transport they came on,
//! domain lookups, webhook bodies, media events, finished recordings) and the current
//! [`Instant`]; it drains [`Output`]s: bytes to send and [`Effect`]s to carry out.
//!
//! An inbound call:
//!
//! ```text
//! INVITE ─► Request-URI host ends with the domain suffix? (404) ─► LookupDomain ─► unknown (404)
//!   ─► Secure domain over UDP/TCP (403 + Warning) ─► caller address in an IP ACL, or digest
//!      against the mapped credentials (401 challenge / 403) ─► SDP policy (488 + Warning)
//!   ─► 180 Ringing ─► webhook (VoiceUrl, then VoiceFallbackUrl) ─► TwiML interpreter:
//!      Answer → 200 + SDP answer · Say/Play → prompts · Gather → DTMF from the relay
//!      Dial → outbound INVITE (TLS 5061 + one _80 line for ;secure=true) → answer → bridge
//!      Record → tap · Pause → timer · Reject → 486/603 · Hangup → BYE
//! ```
//!
//! Nothing past authentication happens for a caller who is not allowed: no webhook, no media.
//!
//! A call the API places ([`CallCore::originate`]) starts at our INVITE instead (built as for
//! `<Dial><Sip>`); its answer is ACKed, keys the leg and starts the script on it, and from then
//! on it is driven by the same code as an inbound call whose "caller" is that leg.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use mediaseal_sip::auth::{
    ChallengeKind, DigestAlgorithm, DigestServer, StoredCredential, VerifyError, authorize,
};
use mediaseal_sip::dialog::{Dialog, new_invite};
use mediaseal_sip::ids;
use mediaseal_sip::message::{
    HeaderName, Host, Method, NameAddr, Request, Response, Scheme, SipMessage, SipUri, StatusCode,
    Transport, Uri, Warning,
};
use mediaseal_sip::policy::{RejectReason, evaluate_offer};
use mediaseal_sip::registrar::{
    Binding, ExpiryRules, Flow, RegisterError, Registrar, address_of_record, contact_values,
};
use mediaseal_sip::sdp::{AudioCodec, AudioConfig, SessionDescription, audio_answer, audio_offer};
use mediaseal_sip::transaction::{
    ClientTransactionId, Endpoint, EndpointConfig, Event as SipEvent, Output as SipOutput,
    ServerTransactionId, Target, TimerConfig, TransactionId, Transmit,
};
use mediaseal_srtp::SrtpProfile;
use mediaseal_srtp::negotiate::Offer;
use mediaseal_twiml::{
    AttributePolicy, CallProgressEvents, Callback, Command, DialCallStatus, DialCommand, DialLeg,
    DialOutcome, DialRecord, DialRecording, Event as TwimlEvent, FetchPurpose, FetchRequest,
    FetchTarget, HangupReason, Interpreter, InterpreterConfig, ParseOptions, PromptCommand,
    RecordCommand, RecordingInfo, RecordingOutcome, RejectStatus, Repeat, Response as Twiml,
    TwilioCode,
};

use crate::domain::{Domain, DomainCredential};
use crate::effect::{
    CallId, CallStatusCallback, CallUpdate, Effect, FetchFailure, FetchId, MediaCommand, Prompt,
    RecordingId, RecordingRequest, RecordingSource, WebhookKind, WebhookRequest,
};
use crate::fork::{Answered, BranchId, Ended, Fork, TRANSPORT_FAILED};
use crate::g711::Law;
use crate::recording::{Layout, TapTracks};
use crate::relay::{LegSetup, MediaEvent, Side};

/// Twilio's API version, sent as `ApiVersion`.
pub const API_VERSION: &str = "2010-04-01";

/// How the core is set up.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Our SIP address (Via sent-by, Contact).
    pub sip_address: IpAddr,
    /// UDP/TCP listening port (Contact for requests that came over them).
    pub sip_port: u16,
    /// TLS listening port.
    pub tls_port: u16,
    /// Every domain name ends with this (`sip.example.com`): other Request-URI hosts get 404
    /// without a lookup.
    pub domain_suffix: String,
    /// The address put in SDP.
    pub media_address: IpAddr,
    /// RTP ports to use (even port for RTP, the next odd one for RTCP).
    pub rtp_ports: RangeInclusive<u16>,
    /// The warn-agent of `Warning` headers and the `User-Agent`/`Server` value.
    pub agent: String,
    /// SIP codes of `<Reject>`.
    pub reject_status: RejectStatus,
    /// SIP timers.
    pub timers: TimerConfig,
    /// Digest nonce lifetime.
    pub nonce_lifetime: Duration,
    /// Most simultaneous calls; more get 503.
    pub max_calls: usize,
    /// The digest challenges of a 401, in order (`serve --sip-digest`). Default MD5 only, as
    /// Twilio: phones answer the first challenge they support, and some (baresip 1.0) give up
    /// on a challenge set with any algorithm they do not know.
    pub digest_algorithms: Vec<DigestAlgorithm>,
}

impl CoreConfig {
    /// Defaults around the addresses and ports given.
    pub fn new(sip_address: IpAddr, sip_port: u16, tls_port: u16, domain_suffix: &str) -> Self {
        Self {
            sip_address,
            sip_port,
            tls_port,
            domain_suffix: domain_suffix.trim_start_matches('.').to_ascii_lowercase(),
            media_address: sip_address,
            rtp_ports: 20000..=29999,
            agent: "mediaseal".to_owned(),
            reject_status: RejectStatus::default(),
            timers: TimerConfig::default(),
            nonce_lifetime: DigestServer::DEFAULT_LIFETIME,
            max_calls: 10_000,
            digest_algorithms: vec![DigestAlgorithm::Md5],
        }
    }
}

/// Counters for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoreStats {
    /// Calls in progress (past the domain lookup).
    pub active_calls: usize,
    /// Calls accepted by authentication and policy.
    pub calls_accepted: u64,
    /// Secure-media policy rejections by [`RejectReason::label`].
    pub policy_rejections: BTreeMap<&'static str, u64>,
    /// INVITEs refused before the policy: `unknown_domain`, `challenged`, `bad_credentials`,
    /// `not_allowed`, `overloaded`.
    pub refusals: BTreeMap<&'static str, u64>,
    /// Webhook requests made.
    pub webhooks: u64,
}

/// What the core wants done.
#[derive(Debug)]
pub enum Output {
    /// Send SIP bytes.
    Transmit(Transmit),
    /// Carry out an effect.
    Effect(Effect),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum TimerKind {
    Pause,
    Gather,
    DialRing,
    DialLimit,
    RecordMax,
    /// An API-placed call was not answered in its `Timeout`.
    OriginateRing,
    /// An API-placed call reached its `TimeLimit`.
    OriginateLimit,
}

const TIMER_KINDS: usize = 7;

impl TimerKind {
    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientPurpose {
    DialInvite,
    /// The INVITE of a call the API placed.
    Originate,
    Bye,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the domain lookup.
    Lookup,
    /// Authenticated and accepted; not answered.
    Ringing,
    /// 200 sent.
    Answered,
    /// A final response or BYE was sent; cleaning up.
    Over,
}

#[derive(Debug, Clone)]
struct CallerMedia {
    port: u16,
    answer: Vec<u8>,
    law: Law,
    codec: AudioCodec,
}

#[derive(Debug)]
struct GatherState {
    digits: String,
    finish_on_key: Option<char>,
    num_digits: Option<u32>,
    timeout: Duration,
    prompting: bool,
}

#[derive(Debug)]
struct RecordState {
    recording: RecordingId,
    finish_on_key: String,
    digits: Option<String>,
    stopping: bool,
}

#[derive(Debug)]
enum Activity {
    Idle,
    Playback,
    Pause,
    Gather(GatherState),
    Dial,
    Record(RecordState),
    /// A call the API placed with `SendDigits`: the digits go to the answering party before
    /// its script starts.
    SendDigits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DialState {
    Resolving,
    Calling,
    Ringing,
    Answered,
}

#[derive(Debug)]
struct Dialled {
    sid: String,
    sip_call_id: String,
    txn: Option<ClientTransactionId>,
    invite: Request,
    target: Option<Target>,
    port: u16,
    offer: Option<Offer>,
    dialog: Option<Dialog>,
    state: DialState,
    answered_at: Option<Instant>,
    final_code: Option<u16>,
    credentials: Option<(String, String)>,
    auth_attempted: bool,
    recording: Option<DialRecording>,
    time_limit: Duration,
    hangup_on_star: bool,
    answer_on_bridge: bool,
    status_callback: Option<Callback<CallProgressEvents>>,
    /// `SequenceNumber` of the next `<Sip statusCallback>` event.
    sequence: u32,
    from: String,
    to: String,
    /// A dial to an address registered from several devices: one branch per binding, all
    /// ringing at once. Until one answers, `txn`, `target`, `invite` and `offer` above are
    /// unset or the first branch's; the winner's are moved there when it answers.
    forks: Option<Forking>,
}

/// One INVITE of a forked dial, over one binding's flow.
#[derive(Debug)]
struct Branch {
    txn: Option<ClientTransactionId>,
    invite: Request,
    target: Target,
    /// This branch's own SDES key: a device that does not answer never learns the key of the
    /// one that does.
    offer: Option<Offer>,
}

#[derive(Debug)]
struct Forking {
    fork: Fork,
    branches: Vec<Branch>,
}

impl Forking {
    fn branch_of(&self, txn: ClientTransactionId) -> Option<BranchId> {
        self.branches
            .iter()
            .position(|b| b.txn == Some(txn))
            .map(BranchId)
    }

    fn txns(&self, ids: &[BranchId]) -> Vec<ClientTransactionId> {
        ids.iter()
            .filter_map(|i| self.branches.get(i.0).and_then(|b| b.txn))
            .collect()
    }
}

#[derive(Debug)]
struct ActiveRecording {
    id: RecordingId,
    for_dial: bool,
    stopping: bool,
    /// Started through the API (`POST …/Calls/{CA}/Recordings.json`): it runs until the API
    /// stops it, the call ends, or a `<Record>` or recording `<Dial>` takes the tap.
    api: bool,
}

/// The UAC side of a call the API placed (`POST …/Calls.json`): the party the script runs on
/// is the one we call, so its INVITE is ours and its answer starts the script.
#[derive(Debug)]
struct OutboundApi {
    txn: Option<ClientTransactionId>,
    offer: Option<Offer>,
    status_callback: Option<Callback<CallProgressEvents>>,
    ringing: bool,
    final_code: Option<u16>,
    /// `Record=true`: recorded from the answer.
    recording: Option<ApiRecording>,
    /// `SendDigits`, sent once answered.
    send_digits: Option<String>,
    /// Answers the callee's first 401/407.
    sip_auth: Option<(String, mediaseal_twiml::SipPassword)>,
    /// The INVITE went again with credentials: a second challenge ends the call.
    auth_attempted: bool,
    /// `SequenceNumber` of the next `StatusCallback`.
    sequence: u32,
    /// `TimeLimit`, counted from the answer.
    time_limit: Duration,
}

#[derive(Debug)]
struct Call {
    id: CallId,
    sid: String,
    invite: Request,
    /// The caller's INVITE transaction; `None` for a call the API placed (we sent the INVITE).
    invite_txn: Option<ServerTransactionId>,
    /// For a call the API placed: the state of our INVITE.
    outbound: Option<OutboundApi>,
    transport: Transport,
    source: SocketAddr,
    sip_call_id: String,
    local_tag: String,
    phase: Phase,
    domain: Option<Domain>,
    username: Option<String>,
    media: Option<CallerMedia>,
    dialog: Option<Dialog>,
    interp: Option<Interpreter>,
    rang: bool,
    caller_gone: bool,
    answered_at: Option<Instant>,
    pending_fetch: Option<FetchId>,
    next_serial: u64,
    activity: Activity,
    dial: Option<Dialled>,
    /// A dial that ended while its recording is still being stored.
    dial_outcome: Option<DialOutcome>,
    recording: Option<ActiveRecording>,
    deadlines: [Option<Instant>; TIMER_KINDS],
    from: String,
    to: String,
    final_status: &'static str,
    /// When the call ended for its parties (their BYE, or ours): the duration ends here even
    /// when the call is released later, once its recording is stored.
    hung_up_at: Option<Instant>,
}

impl Call {
    fn serial(&mut self) -> u64 {
        self.next_serial += 1;
        self.next_serial
    }

    /// `inbound`, or `outbound-api` for a call the API placed.
    fn direction(&self) -> &'static str {
        if self.outbound.is_some() {
            "outbound-api"
        } else {
            "inbound"
        }
    }

    fn caller_target(&self) -> Target {
        Target {
            transport: self.transport,
            addr: self.source,
        }
    }
}

/// Even ports of the configured range, handed out in rotation so a port just released is not
/// reused while its socket may still be closing.
#[derive(Debug)]
struct Ports {
    free: VecDeque<u16>,
}

impl Ports {
    fn new(range: &RangeInclusive<u16>) -> Self {
        let start = range.start().saturating_add(range.start() & 1);
        let free = (start..*range.end())
            .step_by(2)
            .filter(|p| p.checked_add(1).is_some_and(|q| q <= *range.end()))
            .collect();
        Self { free }
    }

    fn take(&mut self) -> Option<u16> {
        self.free.pop_front()
    }

    fn give(&mut self, port: u16) {
        self.free.push_back(port);
    }
}

/// The B2BUA: every call, its SIP transactions, timers and webhooks.
#[derive(Debug)]
pub struct CallCore {
    config: CoreConfig,
    endpoint: Endpoint,
    digest: DigestServer,
    ports: Ports,
    calls: HashMap<CallId, Call>,
    next_id: u64,
    by_sip_call_id: HashMap<String, (CallId, Side)>,
    by_client_txn: HashMap<ClientTransactionId, (CallId, ClientPurpose)>,
    by_server_txn: HashMap<ServerTransactionId, CallId>,
    timers: BTreeSet<(Instant, CallId, TimerKind)>,
    out: VecDeque<Output>,
    stats: CoreStats,
    /// REGISTER bindings of domains with `SipRegistration`, in this node's memory.
    registrar: Registrar,
    /// REGISTERs waiting for their domain lookup, under ids shared with calls.
    pending_registers: HashMap<CallId, PendingRegister>,
    /// Where each dial INVITE went (its flow), until its final response: a 2xx that arrives
    /// after the dial moved on is ACKed and BYEd over that flow, not at its Contact URI,
    /// which a registered phone behind a NAT or on a TCP connection does not listen on.
    dial_targets: HashMap<ClientTransactionId, Target>,
}

/// A REGISTER whose domain is being looked up.
#[derive(Debug)]
struct PendingRegister {
    txn: ServerTransactionId,
    request: Request,
    transport: Transport,
    source: SocketAddr,
    aor: String,
}

/// What a digest check of a request found.
enum DigestOutcome {
    /// The credentials of this username verified.
    Verified(String),
    /// None given, or a stale/foreign nonce: challenge (again).
    Challenge { stale: bool },
    /// Wrong username or response, or a malformed Authorization: 403.
    Refused,
}

/// A call the API places (`POST …/Calls.json`): [`CallCore::originate`] calls `to` and, once
/// it answers, runs `script` on that leg as on an inbound call.
#[derive(Debug, Clone)]
pub struct Originate {
    /// The owner (`AC…`).
    pub account_sid: String,
    /// Whom to call: `sip:…` (`;secure=true` → TLS to 5061, verified, one `_80` crypto line,
    /// as `<Dial><Sip>`).
    pub to: mediaseal_twiml::SipUri,
    /// The caller ID (`From`): a SIP URI's user part or the value itself is the From user.
    pub from: String,
    /// `CallerId`: the identity the callee sees instead of `from` (the INVITE's From), as
    /// [`caller_id_uri`] reads it; `from` stays the call's `From` in the Calls row.
    pub caller_id: Option<String>,
    /// `Url`+`Method` to fetch once answered, or the inline `Twiml`.
    pub script: mediaseal_twiml::Script,
    /// `FallbackUrl`+`FallbackMethod`, fetched when the first document fails.
    pub fallback: Option<FetchTarget>,
    /// `StatusCallback` with the `StatusCallbackEvent`s asked for.
    pub status_callback: Option<Callback<CallProgressEvents>>,
    /// How long it may ring (`Timeout`) before it ends `no-answer`.
    pub timeout: Duration,
    /// How long it may last once answered (`TimeLimit`) before it is hung up `completed`.
    pub time_limit: Duration,
    /// `Record=true` with its `Recording*` options: recorded from the answer (source
    /// `OutboundAPI`) until the call ends, like an API recording.
    pub recording: Option<ApiRecording>,
    /// `SendDigits`: RFC 4733 events sent to the answering party before its script starts
    /// (`w` waits half a second). Skipped when it did not negotiate telephone-event.
    pub send_digits: Option<String>,
    /// `SipAuthUsername` + `SipAuthPassword`: the INVITE is sent again once with digest
    /// credentials when the callee answers 401/407, as for `<Dial><Sip username password>`.
    pub sip_auth: Option<(String, mediaseal_twiml::SipPassword)>,
}

/// New TwiML for a live call (`POST …/Calls/{CA}.json` with `Url` or `Twiml`): what the call
/// does now stops and this runs instead.
#[derive(Debug, Clone)]
pub struct Redirect {
    /// `Url`+`Method`, or the inline `Twiml`.
    pub script: mediaseal_twiml::Script,
    /// `FallbackUrl`+`FallbackMethod`, fetched when `Url` fails.
    pub fallback: Option<FetchTarget>,
}

/// Why [`CallCore::redirect`] did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    /// No call of that account with that SID is in progress here.
    #[error("the call is not in progress on this SIP edge")]
    NotLive,
    /// The SID is the dialled leg of a `<Dial>`, which runs no script of its own here.
    #[error(
        "the call is the dialed leg of a <Dial> and runs no TwiML of its own; redirect its parent call"
    )]
    DialledLeg,
}

/// [`CallCore::originate`] could not place the call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginateError {
    /// Every RTP port is in use, or the core carries its most calls.
    #[error("the SIP edge is at capacity (no free RTP port or too many calls); try again later")]
    Overloaded,
    /// The `To` URI cannot be turned into a SIP request (a host we cannot address).
    #[error("'{0}' cannot be called: it is not a SIP URI with a host")]
    BadUri(String),
    /// `CallerId` is neither a number or client name nor a SIP address (`name@host`).
    #[error(
        "'{0}' is not a caller ID: give a number (+15551230000), a name (alice) or a SIP address (sip:alice@example.com)"
    )]
    BadCallerId(String),
    /// No randomness for the SRTP key.
    #[error("no SRTP key could be generated")]
    Random,
}

/// How [`CallCore::hang_up`] ends a call: Twilio's `Status=completed` or `Status=canceled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangUpMode {
    /// End the call whatever its state (`completed`).
    Complete,
    /// End it only if it has not been answered (`canceled`).
    Cancel,
}

/// Why [`CallCore::hang_up`] did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HangUpError {
    /// No call of that account with that SID is in progress here.
    #[error("the call is not in progress on this SIP edge")]
    NotLive,
    /// `canceled` asked of a call that has been answered (use `completed`).
    #[error("the call has been answered; only Status=completed ends it")]
    Answered,
}

/// How the API records a live call (`POST …/Calls/{CA}/Recordings.json`).
#[derive(Debug, Clone)]
pub struct ApiRecording {
    /// `RecordingChannels`: `mono` mixes both parties, `dual` puts each in its channel.
    pub layout: Layout,
    /// `RecordingTrack`: both parties, or only what the caller sends (`inbound`).
    pub tracks: TapTracks,
    /// `Trim`.
    pub trim: mediaseal_twiml::Trim,
    /// `RecordingStatusCallback`, its method and events.
    pub status_callback: Option<Callback<mediaseal_twiml::RecordingEvents>>,
}

/// What the API does to a recording it started: Twilio's recording `Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingControl {
    /// `paused`: leave the audio out until resumed (Twilio's `PauseBehavior=skip`).
    Pause,
    /// `in-progress`: record again.
    Resume,
    /// `stopped`: end and store the recording.
    Stop,
}

/// Why an API recording request did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LiveRecordingError {
    /// No call of that account with that SID is in progress here.
    #[error("the call is not in progress on this SIP edge")]
    NotLive,
    /// The call has not been answered: there is no audio to record yet.
    #[error("the call has not been answered yet")]
    NotAnswered,
    /// Something already records this call (a `<Record>`, a recording `<Dial>`, or an API
    /// recording): the call has one recording tap.
    #[error("the call is already being recorded")]
    Busy,
    /// The recording is not an API recording running on that call (stopped, finished, or
    /// another call's).
    #[error("the recording is not in progress on this call")]
    NotRecording,
}

/// Why the core could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// The system random generator failed.
    #[error("could not seed the digest nonce secret from the system random generator")]
    Random,
    /// The RTP port range holds no even/odd pair.
    #[error("the RTP port range {0:?} holds no even RTP port with its RTCP port")]
    NoPorts(RangeInclusive<u16>),
}

fn host_of(ip: IpAddr) -> Host {
    match ip {
        IpAddr::V4(a) => Host::V4(a),
        IpAddr::V6(a) => Host::V6(a),
    }
}

/// The From URI a callee sees for a `CallerId`: a SIP address (`sip:alice@example.com` or
/// `alice@example.com`, user, host and port kept, parameters dropped) as given, or a number
/// or name (`+15551230000`, `alice`) as the user at `ours`. `None` for anything else.
pub fn caller_id_uri(value: &str, ours: Host) -> Option<SipUri> {
    let value = value.trim();
    let rest = match value.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("sip:") => &value[4..],
        _ => value,
    };
    if rest.contains('@') {
        let Ok(Uri::Sip(u)) = Uri::parse(&format!("sip:{rest}")) else {
            return None;
        };
        let user = u.user.filter(|u| !u.is_empty())?;
        // No parameters or headers: the callee gets an address, not instructions.
        return Some(SipUri {
            user: Some(user),
            password: None,
            params: Default::default(),
            headers: Vec::new(),
            ..u
        });
    }
    let ok = !rest.is_empty()
        && rest.len() <= 64
        && rest.len() == value.len()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-_.!~*'()".contains(c));
    ok.then(|| SipUri::new(Scheme::Sip, Some(rest), ours))
}

fn new_sid() -> String {
    let mut bytes = [0u8; 16];
    // A failed RNG leaves zeros; the SID is an identifier, not a secret.
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    let mut s = String::with_capacity(34);
    s.push_str("CA");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// `sip:user@host` of a URI, without port, parameters or headers (Twilio's `From`/`To`).
fn plain_uri(uri: &Uri) -> String {
    match uri.as_sip() {
        Some(u) => {
            let scheme = u.scheme.as_str();
            match &u.user {
                Some(user) => format!("{scheme}:{user}@{}", u.host),
                None => format!("{scheme}:{}", u.host),
            }
        }
        None => uri.to_string(),
    }
}

impl CallCore {
    /// A core with no calls.
    pub fn new(config: CoreConfig, now: Instant) -> Result<Self, CoreError> {
        let mut ep = EndpointConfig::new(host_of(config.sip_address));
        ep.udp_port = config.sip_port;
        ep.tcp_port = config.sip_port;
        ep.tls_port = config.tls_port;
        ep.timers = config.timers;
        ep.user_agent = Some(config.agent.clone());
        let digest = DigestServer::with_random_secret(now, config.nonce_lifetime)
            .map_err(|_| CoreError::Random)?;
        let ports = Ports::new(&config.rtp_ports);
        if ports.free.is_empty() {
            return Err(CoreError::NoPorts(config.rtp_ports));
        }
        Ok(Self {
            endpoint: Endpoint::new(ep),
            digest,
            ports,
            calls: HashMap::new(),
            next_id: 0,
            by_sip_call_id: HashMap::new(),
            by_client_txn: HashMap::new(),
            by_server_txn: HashMap::new(),
            timers: BTreeSet::new(),
            out: VecDeque::new(),
            stats: CoreStats::default(),
            registrar: Registrar::new(ExpiryRules::default()),
            pending_registers: HashMap::new(),
            dial_targets: HashMap::new(),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> CoreStats {
        let mut s = self.stats.clone();
        s.active_calls = self
            .calls
            .values()
            .filter(|c| c.phase != Phase::Lookup)
            .count();
        s
    }

    /// The SIP endpoint's counters.
    pub fn endpoint_stats(&self) -> mediaseal_sip::transaction::EndpointStats {
        self.endpoint.stats()
    }

    /// The `CA…` SID of a call.
    pub fn call_sid(&self, call: CallId) -> Option<&str> {
        self.calls.get(&call).map(|c| c.sid.as_str())
    }

    /// The next output.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`Self::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let ours = self.timers.iter().next().map(|(t, _, _)| *t);
        match (ours, self.endpoint.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A UDP datagram.
    pub fn handle_datagram(&mut self, bytes: &[u8], source: SocketAddr, now: Instant) {
        self.endpoint
            .handle_datagram(bytes, Transport::Udp, source, now);
        self.pump(now);
    }

    /// A message framed from a TCP or TLS stream.
    pub fn handle_message(
        &mut self,
        message: SipMessage,
        transport: Transport,
        source: SocketAddr,
        now: Instant,
    ) {
        self.endpoint
            .handle_message(message, transport, source, now);
        self.pump(now);
    }

    /// Sending to `destination` failed (connection refused, TLS verification failed…).
    pub fn transport_error(&mut self, transport: Transport, destination: SocketAddr, now: Instant) {
        self.endpoint.transport_error(transport, destination);
        self.pump(now);
    }

    /// Fires due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.endpoint.handle_timeout(now);
        self.pump(now);
        while let Some(&(at, id, kind)) = self.timers.iter().next() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, id, kind));
            self.with_call(id, now, |core, call, now| {
                if call.deadlines[kind.index()] == Some(at) {
                    call.deadlines[kind.index()] = None;
                    core.on_timer(call, kind, now);
                }
            });
        }
    }

    // ----------------------------------------------------------------------------------------
    // Inputs from the shell.

    /// The answer to [`Effect::LookupDomain`]: the domain, or `None` when no domain has that
    /// name (or the lookup failed).
    pub fn domain_found(&mut self, call: CallId, domain: Option<Domain>, now: Instant) {
        if let Some(register) = self.pending_registers.remove(&call) {
            self.register(register, domain, now);
            self.pump(now);
            return;
        }
        self.with_call(call, now, |core, call, now| {
            if call.phase != Phase::Lookup {
                return;
            }
            if call.caller_gone {
                call.phase = Phase::Over;
                return;
            }
            match domain {
                Some(d) => core.admit(call, d, now),
                None => {
                    core.refuse(call, "unknown_domain", StatusCode::NOT_FOUND, None, now);
                }
            }
        });
    }

    /// The answer to [`Effect::Resolve`].
    pub fn resolved(&mut self, call: CallId, addr: Option<SocketAddr>, now: Instant) {
        self.with_call(call, now, |core, call, now| {
            let originating = call.outbound.as_ref().is_some_and(|o| o.txn.is_none())
                && call.phase == Phase::Ringing;
            if originating {
                match addr {
                    Some(addr) => {
                        call.source = addr;
                        core.send_originate(call, now);
                    }
                    None => core.originate_failed(call, "failed", now),
                }
                return;
            }
            let resolving = call
                .dial
                .as_ref()
                .is_some_and(|d| d.state == DialState::Resolving);
            if !resolving {
                return;
            }
            match addr {
                Some(addr) => core.send_dial_invite(call, addr, now),
                None => core.end_dial(call, DialCallStatus::Failed, now),
            }
        });
    }

    /// The answer to a [`WebhookKind::Twiml`] webhook: the body, or why it failed.
    pub fn webhook_done(
        &mut self,
        call: CallId,
        fetch: FetchId,
        result: Result<Vec<u8>, FetchFailure>,
        now: Instant,
    ) {
        self.with_call(call, now, |core, call, now| {
            if call.pending_fetch != Some(fetch) {
                return;
            }
            call.pending_fetch = None;
            let event = match result {
                Ok(body) => {
                    let options = ParseOptions {
                        unknown_attributes: AttributePolicy::Ignore,
                        ..ParseOptions::default()
                    };
                    match Twiml::parse_with(&body, &options) {
                        Ok(parsed) => TwimlEvent::TwimlFetched(parsed.response),
                        Err(e) => TwimlEvent::FetchFailed { code: e.code() },
                    }
                }
                Err(f) => TwimlEvent::FetchFailed {
                    code: TwilioCode(f.code),
                },
            };
            core.feed(call, event, now);
        });
    }

    /// Something the relay saw or finished.
    pub fn media_event(&mut self, call: CallId, event: MediaEvent, now: Instant) {
        self.with_call(call, now, |core, call, now| match event {
            MediaEvent::Digit(d) => core.on_digit(call, d, now),
            MediaEvent::PlaybackDone => core.on_playback_done(call, now),
            MediaEvent::SilenceElapsed => {
                if matches!(call.activity, Activity::Record(_)) {
                    core.stop_record_verb(call);
                }
            }
        });
    }

    /// The shell could not open a leg's sockets.
    pub fn media_failed(&mut self, call: CallId, side: Side, now: Instant) {
        self.with_call(call, now, |core, call, now| match side {
            Side::Caller => {
                if call.phase == Phase::Answered {
                    core.caller_gone(call, now);
                } else if call.phase == Phase::Ringing {
                    core.final_response(call, StatusCode::SERVER_INTERNAL_ERROR, None, now);
                    call.final_status = "failed";
                    if let Some(i) = call.interp.as_mut() {
                        let _ = i.handle(TwimlEvent::CallerHungUp);
                    }
                }
            }
            Side::Callee => {
                if call.dial.is_some() {
                    core.hang_up_dial(call, DialCallStatus::Failed, now);
                }
            }
        });
    }

    /// A recording started with [`Effect::StartRecording`] ended: stored (`Some`), or empty
    /// or failed (`None`).
    pub fn recording_finished(
        &mut self,
        call: CallId,
        recording: RecordingId,
        info: Option<RecordingInfo>,
        now: Instant,
    ) {
        self.with_call(call, now, |core, call, now| {
            let ours = call.recording.as_ref().is_some_and(|r| r.id == recording);
            if !ours {
                return;
            }
            let Some(active) = call.recording.take() else {
                return;
            };
            if active.for_dial {
                if let Some(mut outcome) = call.dial_outcome.take() {
                    outcome.recording = info;
                    core.feed(call, TwimlEvent::DialEnded(outcome), now);
                }
                // Otherwise the dial is still bridged and the recording failed early: the call
                // goes on unrecorded.
            } else if let Activity::Record(state) = &mut call.activity {
                let digits = state.digits.take();
                call.activity = Activity::Idle;
                if call.deadlines[TimerKind::RecordMax.index()].is_some() {
                    call.deadlines[TimerKind::RecordMax.index()] = None;
                }
                if !active.stopping {
                    // Failed at start (seed 000 refusal): stop the verb's media too.
                    core.effect(Effect::Media(MediaCommand::ArmSilence {
                        call: call.id,
                        timeout: None,
                    }));
                }
                core.feed(
                    call,
                    TwimlEvent::RecordingFinished(RecordingOutcome {
                        recording: info,
                        digits,
                    }),
                    now,
                );
            }
        });
    }

    /// The API asks to end the live call `call_sid` of `account_sid` (`POST …/Calls/{CA}.json`
    /// with `Status=completed` or `canceled`). An answered call gets a BYE (its dialled leg,
    /// if any, too) and ends `completed`; a ringing one is refused with 487 and ends
    /// `canceled`. A dialled leg's SID hangs up that leg only, and the caller's script goes on
    /// with the dial's `action`, as when the callee hangs up. `canceled` leaves an answered
    /// call alone, as Twilio does.
    pub fn hang_up(
        &mut self,
        account_sid: &str,
        call_sid: &str,
        mode: HangUpMode,
        now: Instant,
    ) -> Result<(), HangUpError> {
        // Only calls the account owns and the script still runs count as live.
        let found = self.calls.values().find_map(|c| {
            let owned = c
                .domain
                .as_ref()
                .is_some_and(|d| d.account_sid == account_sid);
            if !owned || c.interp.is_none() || c.caller_gone || c.phase == Phase::Over {
                return None;
            }
            if c.sid == call_sid {
                Some((c.id, false))
            } else if c.dial.as_ref().is_some_and(|d| d.sid == call_sid) {
                Some((c.id, true))
            } else {
                None
            }
        });
        let Some((id, dialled_leg)) = found else {
            return Err(HangUpError::NotLive);
        };
        let mut result = Ok(());
        self.with_call(id, now, |core, call, now| {
            if dialled_leg {
                let answered = call
                    .dial
                    .as_ref()
                    .is_some_and(|d| d.state == DialState::Answered);
                match (mode, answered) {
                    (HangUpMode::Cancel, true) => result = Err(HangUpError::Answered),
                    (_, true) => core.hang_up_dial(call, DialCallStatus::Completed, now),
                    (_, false) => core.hang_up_dial(call, DialCallStatus::Canceled, now),
                }
                return;
            }
            match (call.phase, mode) {
                (Phase::Answered, HangUpMode::Cancel) => result = Err(HangUpError::Answered),
                (Phase::Answered, HangUpMode::Complete) => {
                    // The BYE goes before the dialog is marked over; the script then winds
                    // down as if the caller had hung up (the dialled leg gets its BYE).
                    core.bye_caller(call, now);
                    core.caller_gone(call, now);
                }
                (Phase::Ringing, _) => {
                    call.final_status = "canceled";
                    core.final_response(call, StatusCode::REQUEST_TERMINATED, None, now);
                    core.caller_gone(call, now);
                }
                (Phase::Lookup | Phase::Over, _) => result = Err(HangUpError::NotLive),
            }
        });
        result
    }

    /// The API starts recording the answered call `call_sid` of `account_sid`
    /// (`POST …/Calls/{CA}/Recordings.json`, source `StartCallRecordingAPI`): the same
    /// [`Effect::StartRecording`] as `record-from-answer`, answered with
    /// [`Self::recording_finished`] once stored. One recording at a time per call: the tap is
    /// the call's. Returns the recording's id in this core.
    pub fn start_api_recording(
        &mut self,
        account_sid: &str,
        call_sid: &str,
        options: ApiRecording,
        now: Instant,
    ) -> Result<(CallId, RecordingId), LiveRecordingError> {
        let id = self.live_call(account_sid, call_sid)?;
        let mut result = Err(LiveRecordingError::NotLive);
        self.with_call(id, now, |core, call, _now| {
            if call.phase != Phase::Answered {
                result = Err(LiveRecordingError::NotAnswered);
                return;
            }
            if call.recording.is_some() {
                result = Err(LiveRecordingError::Busy);
                return;
            }
            let recording =
                core.start_api_tap(call, options, RecordingSource::StartCallRecordingApi);
            result = Ok((call.id, recording));
        });
        result
    }

    /// Records `call` as the API asked (the start-recording API, or `Record=true` from the
    /// answer): it runs until the API stops it, the call ends, or a `<Record>` or recording
    /// `<Dial>` takes the tap.
    fn start_api_tap(
        &mut self,
        call: &mut Call,
        options: ApiRecording,
        source: RecordingSource,
    ) -> RecordingId {
        let recording = RecordingId(call.serial());
        call.recording = Some(ActiveRecording {
            id: recording,
            for_dial: false,
            stopping: false,
            api: true,
        });
        self.start_recording(
            call,
            recording,
            options.layout,
            options.tracks,
            source,
            options.trim,
            options.status_callback,
        );
        recording
    }

    /// The API replaces the script of the live call `call_sid` of `account_sid`
    /// (`POST …/Calls/{CA}.json` with `Url` or `Twiml`), as Twilio does: what the call is
    /// doing stops (a prompt, a pause, a `<Gather>`, a `<Record>`, whose recording is
    /// stored; a pending fetch is forgotten), a `<Dial>`led leg is hung up without its
    /// `action` being requested, and the new TwiML runs on the call. A ringing inbound call
    /// keeps ringing until the new TwiML answers it; a call the API placed that has not
    /// answered runs it on the answer. An API recording goes on.
    pub fn redirect(
        &mut self,
        account_sid: &str,
        call_sid: &str,
        redirect: Redirect,
        now: Instant,
    ) -> Result<(), RedirectError> {
        let found = self.calls.values().find_map(|c| {
            let owned = c
                .domain
                .as_ref()
                .is_some_and(|d| d.account_sid == account_sid);
            // A script that has ended (the call winding down) is not given a new one.
            let running = c.interp.as_ref().is_some_and(|i| !i.is_finished());
            if !owned || !running || c.caller_gone || c.phase == Phase::Over {
                return None;
            }
            if c.sid == call_sid {
                Some(Ok(c.id))
            } else if c.dial.as_ref().is_some_and(|d| d.sid == call_sid) {
                Some(Err(RedirectError::DialledLeg))
            } else {
                None
            }
        });
        let id = found.unwrap_or(Err(RedirectError::NotLive))?;
        let mut result = Ok(());
        self.with_call(id, now, |core, call, now| {
            if matches!(call.phase, Phase::Lookup | Phase::Over) {
                result = Err(RedirectError::NotLive);
                return;
            }
            core.abandon_script(call, now);
            let ringing_inbound = call.phase == Phase::Ringing && call.outbound.is_none();
            let mut icfg = InterpreterConfig::outbound(redirect.script);
            if ringing_inbound {
                icfg.direction = mediaseal_twiml::CallDirection::Inbound;
            }
            icfg.reject_status = core.config.reject_status;
            icfg.fallback = redirect.fallback;
            let mut interp = Interpreter::new(icfg);
            if call.phase == Phase::Answered {
                let _ = interp.handle(TwimlEvent::Answered);
            }
            call.interp = Some(interp);
            core.drive(call, now);
        });
        result
    }

    /// Stops what the call's script is doing and drops the script, so nothing it started
    /// reports to the one that replaces it ([`Self::redirect`]).
    fn abandon_script(&mut self, call: &mut Call, now: Instant) {
        call.interp = None;
        call.pending_fetch = None;
        for kind in [TimerKind::Pause, TimerKind::Gather, TimerKind::RecordMax] {
            self.clear_timer(call, kind);
        }
        match core::mem::replace(&mut call.activity, Activity::Idle) {
            Activity::Playback | Activity::Gather(_) | Activity::SendDigits => {
                self.effect(Effect::Media(MediaCommand::StopPlayback { call: call.id }));
            }
            Activity::Record(state) => {
                // The recording is stored and reported as usual; its action is not requested.
                self.effect(Effect::Media(MediaCommand::StopPlayback { call: call.id }));
                self.effect(Effect::Media(MediaCommand::ArmSilence {
                    call: call.id,
                    timeout: None,
                }));
                self.stop_recording(call, state.recording);
            }
            Activity::Dial => {
                let answered = call
                    .dial
                    .as_ref()
                    .is_some_and(|d| d.state == DialState::Answered);
                let status = if answered {
                    DialCallStatus::Completed
                } else {
                    DialCallStatus::Canceled
                };
                // With no script, the outcome goes nowhere; a dial recording still being
                // stored reports to nobody either.
                self.hang_up_dial(call, status, now);
                call.dial_outcome = None;
            }
            Activity::Pause | Activity::Idle => {}
        }
    }

    /// The API pauses, resumes or stops an API recording of a live call
    /// (`POST …/Calls/{CA}/Recordings/{RE}.json`). Pausing asks the shell to leave the audio
    /// out ([`Effect::PauseRecording`]); stopping stores the recording.
    pub fn control_api_recording(
        &mut self,
        account_sid: &str,
        call_sid: &str,
        recording: RecordingId,
        control: RecordingControl,
        now: Instant,
    ) -> Result<(), LiveRecordingError> {
        let id = self.live_call(account_sid, call_sid)?;
        let mut result = Ok(());
        self.with_call(id, now, |core, call, _now| {
            let running = call
                .recording
                .as_ref()
                .is_some_and(|r| r.api && r.id == recording && !r.stopping);
            if !running {
                result = Err(LiveRecordingError::NotRecording);
                return;
            }
            match control {
                RecordingControl::Pause | RecordingControl::Resume => {
                    core.effect(Effect::PauseRecording {
                        call: call.id,
                        recording,
                        paused: control == RecordingControl::Pause,
                    });
                }
                RecordingControl::Stop => core.stop_recording(call, recording),
            }
        });
        result
    }

    /// The API places a call ([`Originate`]): an INVITE to `to` (over TLS with an SRTP offer
    /// of exactly one `AES_CM_128_HMAC_SHA1_80` line for `;secure=true`, as `<Dial><Sip>`),
    /// the Calls row `queued` at once, then `ringing`, `in-progress` on the answer (ACK, then
    /// the script: `Url` fetched with `Direction=outbound-api`, or the inline `Twiml`) and a
    /// final status (`completed`, `busy`, `no-answer`, `failed`, `canceled`). Returns the
    /// call and its `CA…` SID.
    pub fn originate(
        &mut self,
        request: Originate,
        now: Instant,
    ) -> Result<(CallId, String), OriginateError> {
        if self.calls.len() >= self.config.max_calls {
            return Err(OriginateError::Overloaded);
        }
        let secure = request.to.requires_tls() && request.to.secure;
        let bad_uri = || OriginateError::BadUri(request.to.as_str().to_owned());
        let Ok(Uri::Sip(mut request_uri)) = Uri::parse(request.to.as_str()) else {
            return Err(bad_uri());
        };
        let caller_id_from = request
            .caller_id
            .as_deref()
            .map(|id| {
                caller_id_uri(id, host_of(self.config.sip_address))
                    .ok_or_else(|| OriginateError::BadCallerId(id.to_owned()))
            })
            .transpose()?;
        let offer = if secure {
            Some(
                Offer::new(&[SrtpProfile::AesCm128HmacSha1_80])
                    .map_err(|_| OriginateError::Random)?,
            )
        } else {
            None
        };
        let port = self.ports.take().ok_or(OriginateError::Overloaded)?;
        let cfg = AudioConfig::new(self.config.media_address, port);
        let sdp = audio_offer(&cfg, offer.as_ref().map_or(&[], |o| o.attributes()));
        let transport = if secure || request_uri.scheme == Scheme::Sips {
            Transport::Tls
        } else {
            match request_uri.transport_param().as_deref() {
                Some("tcp") => Transport::Tcp,
                Some("tls") => Transport::Tls,
                _ => Transport::Udp,
            }
        };
        // `;secure=true` is ours to interpret: the callee sees a plain sip: URI.
        request_uri.params.remove("secure");
        let host = request_uri.host.clone();
        let target_port = request_uri.port.unwrap_or(transport.default_port());
        // `From` may be a SIP URI or a bare caller ID (`+15551230000`, `alice`).
        let from_user = match Uri::parse(&request.from) {
            Ok(Uri::Sip(u)) => u.user,
            _ => None,
        }
        .or_else(|| {
            let v = request.from.trim();
            let ok = !v.is_empty()
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-_.!~*'()&=$,;?/".contains(c));
            ok.then(|| v.to_owned())
        })
        .unwrap_or_else(|| "anonymous".to_owned());
        let from_uri = caller_id_from.unwrap_or_else(|| {
            SipUri::new(
                Scheme::Sip,
                Some(&from_user),
                host_of(self.config.sip_address),
            )
        });
        let to_uri = SipUri {
            params: Default::default(),
            headers: Vec::new(),
            password: None,
            ..request_uri.clone()
        };
        let mut invite = new_invite(
            Uri::Sip(request_uri),
            NameAddr::new(from_uri),
            &NameAddr::new(to_uri),
            &self.contact(transport),
            None,
        );
        invite.set_body("application/sdp", sdp.to_bytes());
        let sip_call_id = invite.headers.call_id().unwrap_or_default().to_owned();
        let local_tag = invite
            .headers
            .from()
            .ok()
            .and_then(|f| f.tag().map(str::to_owned))
            .unwrap_or_default();
        let addr = host.ip().map(|ip| SocketAddr::new(ip, target_port));
        let Some(addr) = addr.or_else(|| {
            // A name: resolved by the shell (`Effect::Resolve`); the source is set then.
            matches!(host, Host::Domain(_)).then_some(SocketAddr::new(self.config.sip_address, 0))
        }) else {
            self.ports.give(port);
            return Err(bad_uri());
        };
        let mut icfg = InterpreterConfig::outbound(request.script);
        icfg.reject_status = self.config.reject_status;
        icfg.fallback = request.fallback.clone();
        // The account's calls are looked up by their domain; an API call has a domain of its
        // own that carries the owner, the fallback and the `completed` callback.
        let completed_cb = request
            .status_callback
            .as_ref()
            .filter(|cb| cb.events.completed);
        let domain = Domain {
            sid: String::new(),
            account_sid: request.account_sid.clone(),
            name: String::new(),
            secure,
            voice_url: None,
            voice_method: mediaseal_twiml::HttpMethod::Post,
            voice_fallback_url: request.fallback.as_ref().map(|f| f.url.clone()),
            voice_fallback_method: request
                .fallback
                .as_ref()
                .map_or(mediaseal_twiml::HttpMethod::Post, |f| f.method),
            voice_status_callback_url: completed_cb.map(|cb| cb.target.url.clone()),
            voice_status_callback_method: completed_cb
                .map_or(mediaseal_twiml::HttpMethod::Post, |cb| cb.target.method),
            ip_ranges: Vec::new(),
            credentials: Vec::new(),
            sip_registration: false,
            registration_credentials: Vec::new(),
        };
        self.next_id += 1;
        let id = CallId(self.next_id);
        let sid = new_sid();
        let mut call = Call {
            id,
            sid: sid.clone(),
            invite,
            invite_txn: None,
            outbound: Some(OutboundApi {
                txn: None,
                offer,
                status_callback: request.status_callback,
                ringing: false,
                final_code: None,
                recording: request.recording,
                send_digits: request.send_digits.filter(|d| !d.is_empty()),
                sip_auth: request.sip_auth,
                auth_attempted: false,
                sequence: 0,
                time_limit: request.time_limit,
            }),
            transport,
            source: addr,
            sip_call_id: sip_call_id.clone(),
            local_tag,
            phase: Phase::Ringing,
            domain: Some(domain),
            username: None,
            // The codec is the one the callee answers with; set then.
            media: Some(CallerMedia {
                port,
                answer: Vec::new(),
                law: Law::Mu,
                codec: AudioCodec::Pcmu,
            }),
            dialog: None,
            interp: Some(Interpreter::new(icfg)),
            rang: true,
            caller_gone: false,
            answered_at: None,
            pending_fetch: None,
            next_serial: 0,
            activity: Activity::Idle,
            dial: None,
            dial_outcome: None,
            recording: None,
            deadlines: [None; TIMER_KINDS],
            // The row says what the API was asked: `From` and `To` as given.
            from: request.from.clone(),
            to: request.to.without_headers().to_owned(),
            final_status: "failed",
            hung_up_at: None,
        };
        self.by_sip_call_id.insert(sip_call_id, (id, Side::Caller));
        self.effect(Effect::Media(MediaCommand::OpenLeg {
            call: id,
            side: Side::Caller,
            port,
        }));
        // `initiated` travels with the `queued` row: both say the call is being placed.
        let initiated = self.progress_callback(&mut call, "initiated");
        self.ledger_with(&call, "queued", initiated);
        self.set_timer(&mut call, TimerKind::OriginateRing, now + request.timeout);
        self.calls.insert(id, call);
        self.with_call(id, now, |core, call, now| {
            if host.ip().is_some() {
                core.send_originate(call, now);
            } else if let Host::Domain(name) = host {
                core.effect(Effect::Resolve {
                    call: call.id,
                    host: name,
                    port: target_port,
                    transport,
                });
            }
        });
        Ok((id, sid))
    }

    /// Sends the INVITE of a call the API placed to `call.source`.
    fn send_originate(&mut self, call: &mut Call, now: Instant) {
        let target = call.caller_target();
        if target.transport == Transport::Tls {
            let server_name = call
                .invite
                .uri
                .as_sip()
                .map(|u| match &u.host {
                    Host::Domain(n) => n.clone(),
                    other => other
                        .ip()
                        .map_or_else(|| other.to_string(), |ip| ip.to_string()),
                })
                .unwrap_or_default();
            self.effect(Effect::TlsServerName {
                addr: target.addr,
                server_name,
            });
        }
        match self.endpoint.send_request(call.invite.clone(), target, now) {
            Ok(txn) => {
                if let Some(o) = call.outbound.as_mut() {
                    o.txn = Some(txn);
                }
                self.by_client_txn
                    .insert(txn, (call.id, ClientPurpose::Originate));
            }
            Err(_) => self.originate_failed(call, "failed", now),
        }
    }

    /// `StatusCallback` for an event of a call the API placed, when it was asked for. It travels
    /// with the status change it reports, so the ledger queues it in the outbox with the row:
    /// signed, retried, and delivered in order. `completed` is built in [`Self::release`].
    fn progress_callback(
        &mut self,
        call: &mut Call,
        event: &'static str,
    ) -> Option<Box<CallStatusCallback>> {
        let cb = call.outbound.as_ref()?.status_callback.as_ref()?;
        let wanted = match event {
            "initiated" => cb.events.initiated,
            "ringing" => cb.events.ringing,
            _ => cb.events.answered,
        };
        if !wanted {
            return None;
        }
        let target = cb.target.clone();
        let mut params = self.base_params(call);
        if let Some(p) = params.iter_mut().find(|(k, _)| k == "CallStatus") {
            p.1 = match event {
                "answered" => "in-progress",
                other => other,
            }
            .to_owned();
        }
        params.push((
            "CallbackSource".to_owned(),
            "call-progress-events".to_owned(),
        ));
        let o = call.outbound.as_mut()?;
        params.push(("SequenceNumber".to_owned(), o.sequence.to_string()));
        o.sequence += 1;
        Some(Box::new(CallStatusCallback {
            url: target.url,
            method: target.method,
            params,
        }))
    }

    /// A 401/407 to the INVITE of a call the API placed, with `SipAuth*` given and not yet
    /// tried: the INVITE goes again with digest credentials (a new transaction, CSeq + 1).
    /// `false` when the response is not such a challenge or cannot be answered.
    fn reoriginate_with_credentials(
        &mut self,
        call: &mut Call,
        response: &Response,
        now: Instant,
    ) -> bool {
        let challenged = matches!(
            response.status,
            StatusCode::UNAUTHORIZED | StatusCode::PROXY_AUTHENTICATION_REQUIRED
        );
        let target = call.caller_target();
        let Some(o) = call.outbound.as_mut() else {
            return false;
        };
        let Some((user, pass)) = o
            .sip_auth
            .as_ref()
            .filter(|_| challenged && !o.auth_attempted)
        else {
            return false;
        };
        // The INVITE as we sent it, kept on the call: over TCP and TLS the endpoint forgets a
        // client transaction as soon as its final response arrives.
        let mut retry = call.invite.clone();
        if authorize(&mut retry, response, user, pass.expose()).is_err() {
            return false;
        }
        o.auth_attempted = true;
        o.final_code = None;
        match self.endpoint.send_request(retry.clone(), target, now) {
            Ok(t) => {
                o.txn = Some(t);
                call.invite = retry;
                self.by_client_txn
                    .insert(t, (call.id, ClientPurpose::Originate));
                true
            }
            Err(_) => false,
        }
    }

    /// A call the API placed ended before an answer with `status`.
    fn originate_failed(&mut self, call: &mut Call, status: &'static str, now: Instant) {
        call.final_status = status;
        self.clear_timer(call, TimerKind::OriginateRing);
        call.phase = Phase::Over;
        self.caller_gone(call, now);
    }

    /// A response to the INVITE of a call the API placed.
    fn on_originate_response(
        &mut self,
        call: &mut Call,
        txn: ClientTransactionId,
        response: &Response,
        now: Instant,
    ) {
        if call.phase != Phase::Ringing {
            return;
        }
        let code = response.status.as_u16();
        if response.status.is_provisional() {
            let first = call
                .outbound
                .as_mut()
                .is_some_and(|o| code > 100 && !std::mem::replace(&mut o.ringing, true));
            if first {
                let ringing = self.progress_callback(call, "ringing");
                self.ledger_with(call, "ringing", ringing);
            }
            return;
        }
        if let Some(o) = call.outbound.as_mut() {
            o.final_code = Some(code);
        }
        if self.reoriginate_with_credentials(call, response, now) {
            return;
        }
        if !response.status.is_success() {
            let status = match code {
                486 | 600 => "busy",
                408 | 480 => "no-answer",
                487 => "canceled",
                _ => "failed",
            };
            // A CANCEL we sent (API hang-up, timeout) already chose the status.
            let status = if call.final_status == "failed" {
                status
            } else {
                call.final_status
            };
            self.originate_failed(call, status, now);
            return;
        }
        let Some(sent) = self.endpoint.client_request(txn).cloned() else {
            return;
        };
        let target = call.caller_target();
        let Ok(mut dialog) = Dialog::new_uac(&sent, response) else {
            self.originate_failed(call, "failed", now);
            return;
        };
        let _ = self.endpoint.send_ack(txn, dialog.ack(), target, now);
        let offer = call.outbound.as_ref().and_then(|o| o.offer.as_ref());
        let answered = answer_setup(&response.body, offer);
        call.dialog = Some(dialog);
        let Some((setup, codec)) = answered else {
            // The answer does not fit the offer (no SRTP for ;secure=true, unknown codec):
            // end the dialog we just confirmed.
            self.bye_caller(call, now);
            self.originate_failed(call, "failed", now);
            return;
        };
        if let Some(m) = call.media.as_mut() {
            m.law = setup.law;
            m.codec = codec;
        }
        self.clear_timer(call, TimerKind::OriginateRing);
        if let Some(limit) = call.outbound.as_ref().map(|o| o.time_limit) {
            self.set_timer(call, TimerKind::OriginateLimit, now + limit);
        }
        self.effect(Effect::Media(MediaCommand::ConfigureLeg {
            call: call.id,
            side: Side::Caller,
            setup: Box::new(setup),
        }));
        call.phase = Phase::Answered;
        call.answered_at = Some(now);
        self.stats.calls_accepted += 1;
        let answered = self.progress_callback(call, "answered");
        self.ledger_with(call, "in-progress", answered);
        let (recording, digits) = call
            .outbound
            .as_mut()
            .map(|o| (o.recording.take(), o.send_digits.take()))
            .unwrap_or_default();
        if let Some(options) = recording {
            // `Record=true`: from the answer, through the same tap as the start-recording API.
            self.start_api_tap(call, options, RecordingSource::OutboundApi);
        }
        match digits {
            Some(digits) => {
                // The script starts once the digits are out (`on_playback_done`).
                call.activity = Activity::SendDigits;
                self.effect(Effect::Media(MediaCommand::Play {
                    call: call.id,
                    prompts: vec![(Prompt::Digits(digits), Repeat::default())],
                }));
            }
            None => self.feed(call, TwimlEvent::Answered, now),
        }
    }

    /// The call `call_sid` of `account_sid` whose script still runs.
    fn live_call(&self, account_sid: &str, call_sid: &str) -> Result<CallId, LiveRecordingError> {
        self.calls
            .values()
            .find(|c| {
                c.sid == call_sid
                    && c.domain
                        .as_ref()
                        .is_some_and(|d| d.account_sid == account_sid)
                    && c.interp.is_some()
                    && !c.caller_gone
                    && c.phase != Phase::Over
            })
            .map(|c| c.id)
            .ok_or(LiveRecordingError::NotLive)
    }

    // ----------------------------------------------------------------------------------------
    // Plumbing.

    fn effect(&mut self, effect: Effect) {
        self.out.push_back(Output::Effect(effect));
    }

    /// Runs `f` with the call taken out of the map (so `f` may use `self` freely), puts it
    /// back unless it ended, and moves SIP output along.
    fn with_call(
        &mut self,
        id: CallId,
        now: Instant,
        f: impl FnOnce(&mut Self, &mut Call, Instant),
    ) {
        let Some(mut call) = self.calls.remove(&id) else {
            return;
        };
        f(self, &mut call, now);
        self.maybe_finish(&mut call, now);
        if call.phase == Phase::Over {
            self.forget(&call);
        } else {
            self.calls.insert(id, call);
        }
        self.pump(now);
    }

    fn pump(&mut self, now: Instant) {
        while let Some(o) = self.endpoint.poll_output() {
            match o {
                SipOutput::Transmit(t) => self.out.push_back(Output::Transmit(t)),
                SipOutput::Event(e) => self.on_sip_event(e, now),
            }
        }
    }

    fn set_timer(&mut self, call: &mut Call, kind: TimerKind, at: Instant) {
        self.clear_timer(call, kind);
        call.deadlines[kind.index()] = Some(at);
        self.timers.insert((at, call.id, kind));
    }

    fn clear_timer(&mut self, call: &mut Call, kind: TimerKind) {
        if let Some(at) = call.deadlines[kind.index()].take() {
            self.timers.remove(&(at, call.id, kind));
        }
    }

    fn forget(&mut self, call: &Call) {
        for (k, at) in call.deadlines.iter().enumerate() {
            if let Some(at) = at {
                self.timers
                    .retain(|(t, id, kind)| !(t == at && *id == call.id && kind.index() == k));
            }
        }
        self.by_sip_call_id.retain(|_, (id, _)| *id != call.id);
        self.by_server_txn.retain(|_, id| *id != call.id);
        // Client transactions stay mapped until their final response; `on_response` ignores
        // unknown calls except to ACK and BYE a late 2xx.
    }

    fn contact(&self, transport: Transport) -> NameAddr {
        let port = match transport {
            Transport::Tls => self.config.tls_port,
            _ => self.config.sip_port,
        };
        let mut uri = SipUri::new(
            Scheme::Sip,
            Some("mediaseal"),
            host_of(self.config.sip_address),
        );
        uri.port = Some(port);
        if transport != Transport::Udp {
            uri.params.set(
                "transport",
                Some(transport.as_via_str().to_ascii_lowercase().as_str()),
            );
        }
        NameAddr::new(uri)
    }

    // ----------------------------------------------------------------------------------------
    // SIP events.

    fn on_sip_event(&mut self, event: SipEvent, now: Instant) {
        match event {
            SipEvent::NewRequest {
                id,
                request,
                transport,
                source,
            } => self.on_request(id, request, transport, source, now),
            SipEvent::Ack { request, .. } => {
                if let Ok(cid) = request.headers.call_id()
                    && let Some(&(id, Side::Caller)) = self.by_sip_call_id.get(cid)
                    && let Some(call) = self.calls.get_mut(&id)
                    && let Some(d) = call.dialog.as_mut()
                {
                    d.confirm();
                }
            }
            SipEvent::Cancelled { invite, .. } => {
                if let Some(&id) = self.by_server_txn.get(&invite) {
                    self.with_call(id, now, |core, call, now| {
                        call.final_status = "canceled";
                        if call.phase == Phase::Lookup {
                            call.caller_gone = true;
                        } else {
                            call.phase = Phase::Ringing;
                            core.caller_gone(call, now);
                        }
                    });
                }
            }
            SipEvent::Response { id, response } => self.on_response(id, &response, now),
            SipEvent::StrayResponse { .. } | SipEvent::Malformed { .. } => {}
            SipEvent::TransactionTimeout { id } | SipEvent::TransportError { id } => {
                self.on_transaction_failure(id, now)
            }
            _ => {}
        }
    }

    fn respond(&mut self, txn: ServerTransactionId, response: Response, now: Instant) {
        // The transaction may be gone (a CANCEL raced us); nothing else to do then.
        let _ = self.endpoint.respond(txn, response, now);
    }

    fn on_request(
        &mut self,
        txn: ServerTransactionId,
        request: Request,
        transport: Transport,
        source: SocketAddr,
        now: Instant,
    ) {
        let to_tag = request
            .headers
            .to()
            .ok()
            .and_then(|t| t.tag().map(str::to_owned));
        let call_id = request.headers.call_id().unwrap_or_default().to_owned();
        let known = self.by_sip_call_id.get(&call_id).copied();
        match (&request.method, to_tag, known) {
            (Method::Invite, None, _) => self.new_call(txn, request, transport, source, now),
            (Method::Register, _, _) => self.new_register(txn, request, transport, source, now),
            (Method::Bye, Some(_), Some((id, side)))
                if side == Side::Caller || self.is_dialled_leg(id, &request) =>
            {
                let ok = Response::for_request(&request, StatusCode::OK);
                self.respond(txn, ok, now);
                self.with_call(id, now, |core, call, now| match side {
                    Side::Caller => core.caller_gone(call, now),
                    Side::Callee => core.dial_ended_by_callee(call, now),
                });
            }
            (Method::Invite, Some(_), Some(_)) => {
                // Re-INVITEs (hold, refresh, re-keying) are refused; RFC 3261 §14.2 leaves the
                // session as it was.
                let r = Response::for_request(&request, StatusCode::NOT_ACCEPTABLE_HERE)
                    .with_header(
                        HeaderName::WARNING,
                        Warning::new(399, &self.config.agent, "re-INVITE is not supported")
                            .to_string(),
                    );
                self.respond(txn, r, now);
            }
            (Method::Info | Method::Update, Some(_), Some(_)) => {
                let status = if request.method == Method::Info {
                    StatusCode::OK
                } else {
                    StatusCode::NOT_IMPLEMENTED
                };
                self.respond(txn, Response::for_request(&request, status), now);
            }
            (Method::Options, _, _) => {
                let r = Response::for_request(&request, StatusCode::OK).with_header(
                    HeaderName::ALLOW,
                    "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REGISTER",
                );
                self.respond(txn, r, now);
            }
            (Method::Bye, Some(_), Some(_)) | (_, Some(_), None) => {
                let r = Response::for_request(&request, StatusCode::CALL_DOES_NOT_EXIST);
                self.respond(txn, r, now);
            }
            _ => {
                let r = Response::for_request(&request, StatusCode::METHOD_NOT_ALLOWED)
                    .with_header(
                        HeaderName::ALLOW,
                        "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REGISTER",
                    );
                self.respond(txn, r, now);
            }
        }
    }

    /// `request` is in the dialog of the call's dialled leg: with a fork, every branch shares
    /// the Call-ID, and only the one that answered is the call (a branch whose late 2xx we
    /// ACK and BYE gets 481 for its own BYE).
    fn is_dialled_leg(&self, id: CallId, request: &Request) -> bool {
        self.calls
            .get(&id)
            .and_then(|c| c.dial.as_ref())
            .and_then(|d| d.dialog.as_ref())
            .is_some_and(|dialog| dialog.matches_request(request))
    }

    /// `name` (lower case) is one of ours: a label of its own before the domain suffix.
    fn is_domain_name(&self, name: &str) -> bool {
        let suffix = &self.config.domain_suffix;
        name.len() > suffix.len() + 1
            && name.ends_with(suffix.as_str())
            && name.as_bytes().get(name.len() - suffix.len() - 1) == Some(&b'.')
    }

    /// A REGISTER: its Request-URI names one of our domains and its To an address of that
    /// domain (else 404/403 at once); the domain is looked up, then [`Self::register`].
    fn new_register(
        &mut self,
        txn: ServerTransactionId,
        request: Request,
        transport: Transport,
        source: SocketAddr,
        now: Instant,
    ) {
        let domain = request.uri.as_sip().and_then(|u| match &u.host {
            Host::Domain(d) => Some(d.trim_end_matches('.').to_ascii_lowercase()),
            _ => None,
        });
        let Some(name) = domain.filter(|d| self.is_domain_name(d)) else {
            self.register_refusal(
                txn,
                &request,
                "register_unknown_domain",
                StatusCode::NOT_FOUND,
                "no SIP domain of that name",
                now,
            );
            return;
        };
        let aor = address_of_record(&request);
        let Some(aor) = aor.filter(|a| a.rsplit_once('@').is_some_and(|(_, h)| h == name)) else {
            self.register_refusal(
                txn,
                &request,
                "register_foreign_aor",
                StatusCode::FORBIDDEN,
                "the To address must be user@ the domain registered to",
                now,
            );
            return;
        };
        self.next_id += 1;
        let id = CallId(self.next_id);
        self.pending_registers.insert(
            id,
            PendingRegister {
                txn,
                request,
                transport,
                source,
                aor,
            },
        );
        self.effect(Effect::LookupDomain { call: id, name });
    }

    /// A final answer to a REGISTER other than 200 or a challenge, counted under `label`.
    fn register_refusal(
        &mut self,
        txn: ServerTransactionId,
        request: &Request,
        label: &'static str,
        status: StatusCode,
        warning: &str,
        now: Instant,
    ) {
        *self.stats.refusals.entry(label).or_default() += 1;
        let r = Response::for_request(request, status)
            .with_to_tag(&ids::new_tag())
            .with_header(
                HeaderName::WARNING,
                Warning::new(399, &self.config.agent, warning).to_string(),
            );
        self.respond(txn, r, now);
    }

    /// A REGISTER whose domain was looked up: `SipRegistration` on (403), TLS for a `Secure`
    /// domain (403 + Warning, as an INVITE), digest against the credential lists mapped to
    /// `Auth/Registrations` (401 challenge, 403), the authenticated user is the To user (403),
    /// then the binding rules (423, 400) and 200 with every current contact.
    fn register(&mut self, p: PendingRegister, domain: Option<Domain>, now: Instant) {
        let PendingRegister {
            txn,
            request,
            transport,
            source,
            aor,
        } = p;
        let Some(domain) = domain else {
            self.register_refusal(
                txn,
                &request,
                "register_unknown_domain",
                StatusCode::NOT_FOUND,
                "no SIP domain of that name",
                now,
            );
            return;
        };
        if !domain.sip_registration {
            self.register_refusal(
                txn,
                &request,
                "register_disabled",
                StatusCode::FORBIDDEN,
                "SIP registration is not enabled for this domain",
                now,
            );
            return;
        }
        if domain.secure && transport != Transport::Tls {
            let reason = RejectReason::InsecureSignalling { transport };
            *self
                .stats
                .policy_rejections
                .entry(reason.label())
                .or_default() += 1;
            let r = Response::for_request(&request, reason.status())
                .with_to_tag(&ids::new_tag())
                .with_header(
                    HeaderName::WARNING,
                    reason.warning(&self.config.agent).to_string(),
                );
            self.respond(txn, r, now);
            return;
        }
        if domain.registration_credentials.is_empty() {
            self.register_refusal(
                txn,
                &request,
                "register_not_allowed",
                StatusCode::FORBIDDEN,
                "no credential list is mapped to this domain's Auth/Registrations",
                now,
            );
            return;
        }
        let realm = domain.name.as_str();
        let username = match self.check_digest(
            &request,
            realm,
            &domain.registration_credentials,
            source,
            now,
        ) {
            DigestOutcome::Verified(u) => u,
            DigestOutcome::Challenge { stale } => {
                *self
                    .stats
                    .refusals
                    .entry("register_challenged")
                    .or_default() += 1;
                let r = self.digest.challenge_response(
                    &request,
                    ChallengeKind::Www,
                    realm,
                    &self.config.digest_algorithms,
                    source.ip(),
                    now,
                    stale,
                    &ids::new_tag(),
                );
                self.respond(txn, r, now);
                return;
            }
            DigestOutcome::Refused => {
                self.register_refusal(
                    txn,
                    &request,
                    "register_bad_credentials",
                    StatusCode::FORBIDDEN,
                    "bad credentials",
                    now,
                );
                return;
            }
        };
        // A credential registers its own address only: alice cannot take bob's calls.
        if aor.rsplit_once('@').map(|(u, _)| u) != Some(username.as_str()) {
            self.register_refusal(
                txn,
                &request,
                "register_foreign_aor",
                StatusCode::FORBIDDEN,
                "the To user must be the authenticated username",
                now,
            );
            return;
        }
        let flow = Flow { transport, source };
        match self
            .registrar
            .register(&aor, &domain.account_sid, &request, flow, now)
        {
            Ok(bindings) => {
                let mut r =
                    Response::for_request(&request, StatusCode::OK).with_to_tag(&ids::new_tag());
                for c in contact_values(&bindings, now) {
                    r = r.with_header(HeaderName::CONTACT, c);
                }
                self.respond(txn, r, now);
            }
            Err(RegisterError::IntervalTooBrief { min }) => {
                *self.stats.refusals.entry("register_too_brief").or_default() += 1;
                let status = StatusCode::new(423).unwrap_or(StatusCode::BAD_REQUEST);
                let r = Response::for_request(&request, status)
                    .with_to_tag(&ids::new_tag())
                    .with_header(HeaderName::MIN_EXPIRES, min.to_string());
                self.respond(txn, r, now);
            }
            Err(e) => {
                let why = e.to_string();
                self.register_refusal(
                    txn,
                    &request,
                    "register_invalid",
                    StatusCode::BAD_REQUEST,
                    &why,
                    now,
                );
            }
        }
        self.registrar.purge_all(now);
    }

    fn new_call(
        &mut self,
        txn: ServerTransactionId,
        invite: Request,
        transport: Transport,
        source: SocketAddr,
        now: Instant,
    ) {
        let local_tag = ids::new_tag();
        let domain_name = invite
            .uri
            .as_sip()
            .and_then(|u| match &u.host {
                Host::Domain(d) => Some(d.to_ascii_lowercase()),
                _ => None,
            })
            .filter(|d| self.is_domain_name(d));
        let Some(name) = domain_name else {
            *self.stats.refusals.entry("unknown_domain").or_default() += 1;
            let r = Response::for_request(&invite, StatusCode::NOT_FOUND).with_to_tag(&local_tag);
            self.respond(txn, r, now);
            return;
        };
        if self.calls.len() >= self.config.max_calls {
            *self.stats.refusals.entry("overloaded").or_default() += 1;
            let r = Response::for_request(&invite, StatusCode::SERVICE_UNAVAILABLE)
                .with_to_tag(&local_tag);
            self.respond(txn, r, now);
            return;
        }
        self.next_id += 1;
        let id = CallId(self.next_id);
        let sip_call_id = invite.headers.call_id().unwrap_or_default().to_owned();
        let from = invite
            .headers
            .from()
            .map(|f| plain_uri(&f.uri))
            .unwrap_or_default();
        let to = plain_uri(&invite.uri);
        let call = Call {
            id,
            sid: new_sid(),
            invite,
            invite_txn: Some(txn),
            outbound: None,
            transport,
            source,
            sip_call_id: sip_call_id.clone(),
            local_tag,
            phase: Phase::Lookup,
            domain: None,
            username: None,
            media: None,
            dialog: None,
            interp: None,
            rang: false,
            caller_gone: false,
            answered_at: None,
            pending_fetch: None,
            next_serial: 0,
            activity: Activity::Idle,
            dial: None,
            dial_outcome: None,
            recording: None,
            deadlines: [None; TIMER_KINDS],
            from,
            to,
            final_status: "completed",
            hung_up_at: None,
        };
        self.by_server_txn.insert(txn, id);
        self.by_sip_call_id.insert(sip_call_id, (id, Side::Caller));
        self.calls.insert(id, call);
        self.effect(Effect::LookupDomain { call: id, name });
    }

    /// A final refusal before the call was accepted.
    fn refuse(
        &mut self,
        call: &mut Call,
        label: &'static str,
        status: StatusCode,
        warning: Option<Warning>,
        now: Instant,
    ) {
        *self.stats.refusals.entry(label).or_default() += 1;
        call.final_status = "failed";
        self.final_response(call, status, warning, now);
    }

    fn final_response(
        &mut self,
        call: &mut Call,
        status: StatusCode,
        warning: Option<Warning>,
        now: Instant,
    ) {
        let Some(txn) = call.invite_txn else {
            // A call we placed and that has not been answered: CANCEL our INVITE instead.
            if let Some(t) = call.outbound.as_ref().and_then(|o| o.txn) {
                let _ = self.endpoint.cancel(t, now);
            }
            call.phase = Phase::Over;
            return;
        };
        let mut r = Response::for_request(&call.invite, status).with_to_tag(&call.local_tag);
        if let Some(w) = warning {
            r = r.with_header(HeaderName::WARNING, w.to_string());
        }
        self.respond(txn, r, now);
        call.phase = Phase::Over;
    }

    // ----------------------------------------------------------------------------------------
    // Admission: transport, authentication, policy.

    fn admit(&mut self, call: &mut Call, domain: Domain, now: Instant) {
        // A secure domain refuses non-TLS signalling before anything else, so it never
        // challenges for credentials or reveals its media policy in the clear.
        if domain.secure && call.transport != Transport::Tls {
            let reason = RejectReason::InsecureSignalling {
                transport: call.transport,
            };
            self.policy_reject(call, &reason, now);
            return;
        }
        match self.authenticate(call, &domain, now) {
            Ok(username) => call.username = username,
            Err(()) => return,
        }
        let offer = if call.invite.body.is_empty() {
            None
        } else {
            match SessionDescription::parse(&call.invite.body) {
                Ok(sd) => Some(sd),
                Err(e) => {
                    let w = Warning::new(399, &self.config.agent, &format!("malformed SDP: {e}"));
                    self.refuse(call, "malformed_sdp", StatusCode::BAD_REQUEST, Some(w), now);
                    return;
                }
            }
        };
        let accepted = match evaluate_offer(domain.secure, call.transport, offer.as_ref()) {
            Ok(a) => a,
            Err(reason) => {
                self.policy_reject(call, &reason, now);
                return;
            }
        };
        let Some(offer) = offer else { return };
        let answer_crypto = match accepted.srtp.as_ref().map(|c| c.answer()).transpose() {
            Ok(a) => a,
            Err(e) => {
                let w = Warning::new(399, &self.config.agent, &e.to_string());
                let status =
                    StatusCode::new(e.sip_status()).unwrap_or(StatusCode::NOT_ACCEPTABLE_HERE);
                self.refuse(call, "srtp_negotiation", status, Some(w), now);
                return;
            }
        };
        let Some(port) = self.ports.take() else {
            self.refuse(
                call,
                "overloaded",
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                now,
            );
            return;
        };
        let cfg = AudioConfig::new(self.config.media_address, port);
        let answer = match audio_answer(
            &offer,
            accepted.media_index,
            &cfg,
            answer_crypto.as_ref().map(|a| &a.attribute),
        ) {
            Ok(a) => a,
            Err(e) => {
                self.ports.give(port);
                let w = Warning::new(e.warn_code(), &self.config.agent, &e.to_string());
                self.refuse(
                    call,
                    "no_common_codec",
                    StatusCode::NOT_ACCEPTABLE_HERE,
                    Some(w),
                    now,
                );
                return;
            }
        };
        let Some(voice_url) = domain.voice_url.clone() else {
            self.ports.give(port);
            let w = Warning::new(399, &self.config.agent, "the SIP domain has no VoiceUrl");
            self.refuse(
                call,
                "no_voice_url",
                StatusCode::SERVER_INTERNAL_ERROR,
                Some(w),
                now,
            );
            return;
        };
        let law = match answer.codec {
            AudioCodec::Pcmu => Law::Mu,
            AudioCodec::Pcma => Law::A,
        };
        let media_section = offer.media.get(answer.media_index);
        let remote_rtcp = media_section.and_then(|m| m.rtcp()).and_then(|(port, ip)| {
            let ip = ip.or_else(|| answer.remote_rtp.map(|a| a.ip()))?;
            Some(SocketAddr::new(ip, port))
        });
        let setup = LegSetup {
            srtp: answer_crypto.map(|a| a.keys),
            remote_rtp: answer.remote_rtp,
            remote_rtcp,
            rtcp_mux: answer.rtcp_mux,
            law,
            payload_type: answer.payload_type,
            telephone_event: answer.telephone_event,
        };
        call.media = Some(CallerMedia {
            port,
            answer: answer.sdp.to_bytes(),
            law,
            codec: answer.codec,
        });
        self.effect(Effect::Media(MediaCommand::OpenLeg {
            call: call.id,
            side: Side::Caller,
            port,
        }));
        self.effect(Effect::Media(MediaCommand::ConfigureLeg {
            call: call.id,
            side: Side::Caller,
            setup: Box::new(setup),
        }));
        let mut icfg = InterpreterConfig::inbound(voice_url, domain.voice_method);
        icfg.reject_status = self.config.reject_status;
        icfg.fallback = domain.voice_fallback_url.clone().map(|url| FetchTarget {
            url,
            method: domain.voice_fallback_method,
        });
        call.domain = Some(domain);
        call.phase = Phase::Ringing;
        self.stats.calls_accepted += 1;
        self.ledger(call, "ringing");
        call.interp = Some(Interpreter::new(icfg));
        self.drive(call, now);
    }

    fn policy_reject(&mut self, call: &mut Call, reason: &RejectReason, now: Instant) {
        *self
            .stats
            .policy_rejections
            .entry(reason.label())
            .or_default() += 1;
        call.final_status = "failed";
        let w = reason.warning(&self.config.agent);
        self.final_response(call, reason.status(), Some(w), now);
    }

    /// `Ok(username)` (None for an IP ACL match); `Err` when a response was sent.
    fn authenticate(
        &mut self,
        call: &mut Call,
        domain: &Domain,
        now: Instant,
    ) -> Result<Option<String>, ()> {
        let ip = call.source.ip();
        if domain.ip_ranges.iter().any(|r| r.contains(ip)) {
            return Ok(None);
        }
        if domain.credentials.is_empty() {
            let w = Warning::new(
                399,
                &self.config.agent,
                "caller not allowed for this domain",
            );
            self.refuse(call, "not_allowed", StatusCode::FORBIDDEN, Some(w), now);
            return Err(());
        }
        let realm = domain.name.as_str();
        match self.check_digest(&call.invite, realm, &domain.credentials, call.source, now) {
            DigestOutcome::Verified(username) => Ok(Some(username)),
            DigestOutcome::Challenge { stale } => {
                self.challenge(call, realm, stale, now);
                Err(())
            }
            DigestOutcome::Refused => {
                self.refuse(call, "bad_credentials", StatusCode::FORBIDDEN, None, now);
                Err(())
            }
        }
    }

    /// Digest authentication of `request` (an INVITE or a REGISTER) from `source` against
    /// `credentials` of `realm`.
    fn check_digest(
        &mut self,
        request: &Request,
        realm: &str,
        credentials: &[DomainCredential],
        source: SocketAddr,
        now: Instant,
    ) -> DigestOutcome {
        let creds = match DigestServer::credentials(request, ChallengeKind::Www, realm) {
            Ok(c) => c,
            Err(VerifyError::NoCredentials) => return DigestOutcome::Challenge { stale: false },
            Err(_) => return DigestOutcome::Refused,
        };
        let Some(stored) = credentials.iter().find(|c| c.username == creds.username) else {
            return DigestOutcome::Refused;
        };
        let stored = StoredCredential::Ha1(stored.ha1.clone());
        match self
            .digest
            .verify(request, &creds, &stored, source.ip(), now)
        {
            Ok(()) => DigestOutcome::Verified(creds.username),
            Err(VerifyError::Stale | VerifyError::InvalidNonce) => {
                DigestOutcome::Challenge { stale: true }
            }
            Err(_) => DigestOutcome::Refused,
        }
    }

    fn challenge(&mut self, call: &mut Call, realm: &str, stale: bool, now: Instant) {
        *self.stats.refusals.entry("challenged").or_default() += 1;
        let r = self.digest.challenge_response(
            &call.invite,
            ChallengeKind::Www,
            realm,
            &self.config.digest_algorithms,
            call.source.ip(),
            now,
            stale,
            &call.local_tag,
        );
        if let Some(txn) = call.invite_txn {
            self.respond(txn, r, now);
        }
        call.final_status = "failed";
        call.phase = Phase::Over;
    }

    // ----------------------------------------------------------------------------------------
    // Running the script.

    fn feed(&mut self, call: &mut Call, event: TwimlEvent, now: Instant) {
        if let Some(i) = call.interp.as_mut() {
            // An event the script no longer expects (a late PlaybackDone) changes nothing.
            let _ = i.handle(event);
        }
        self.drive(call, now);
    }

    fn drive(&mut self, call: &mut Call, now: Instant) {
        while let Some(command) = call.interp.as_mut().and_then(Interpreter::poll_command) {
            self.execute(call, command, now);
        }
    }

    fn execute(&mut self, call: &mut Call, command: Command, now: Instant) {
        if call.phase == Phase::Over {
            return;
        }
        match command {
            Command::Ring if !call.rang && call.phase == Phase::Ringing => {
                call.rang = true;
                let Some(txn) = call.invite_txn else { return };
                let r = Response::for_request(&call.invite, StatusCode::RINGING)
                    .with_to_tag(&call.local_tag)
                    .with_header(
                        HeaderName::CONTACT,
                        self.contact(call.transport).to_string(),
                    );
                self.respond(txn, r, now);
            }
            Command::Ring => {}
            Command::Answer => self.answer_caller(call, now),
            Command::Fetch(request) => self.webhook(call, request),
            Command::Say {
                text,
                voice,
                language,
                repeat,
            } => self.play(
                call,
                vec![(
                    Prompt::Say {
                        text,
                        voice,
                        language,
                    },
                    repeat,
                )],
            ),
            Command::Play { url, repeat } => self.play(call, vec![(Prompt::Url(url), repeat)]),
            Command::SendDigits { digits } => {
                self.play(call, vec![(Prompt::Digits(digits), Repeat::default())]);
            }
            Command::Pause { duration } => {
                call.activity = Activity::Pause;
                self.set_timer(call, TimerKind::Pause, now + duration);
            }
            Command::CollectDigits(c) => {
                let prompts: Vec<(Prompt, Repeat)> = c
                    .prompts
                    .into_iter()
                    .map(|p| match p {
                        PromptCommand::Say {
                            text,
                            voice,
                            language,
                            repeat,
                        } => (
                            Prompt::Say {
                                text,
                                voice,
                                language,
                            },
                            repeat,
                        ),
                        PromptCommand::Play { url, repeat } => (Prompt::Url(url), repeat),
                        PromptCommand::SendDigits { digits } => {
                            (Prompt::Digits(digits), Repeat::default())
                        }
                        PromptCommand::Pause { duration } => {
                            (Prompt::Silence(duration), Repeat::default())
                        }
                    })
                    .collect();
                let prompting = !prompts.is_empty();
                call.activity = Activity::Gather(GatherState {
                    digits: String::new(),
                    finish_on_key: c.finish_on_key,
                    num_digits: c.num_digits.map(|n| n.get()),
                    timeout: c.timeout,
                    prompting,
                });
                if prompting {
                    self.effect(Effect::Media(MediaCommand::Play {
                        call: call.id,
                        prompts,
                    }));
                } else {
                    self.set_timer(call, TimerKind::Gather, now + c.timeout);
                }
            }
            Command::Dial(dial) => self.start_dial(call, dial, now),
            Command::Record(record) => self.start_record_verb(call, record, now),
            Command::Reject { status } => {
                call.final_status = if status == 486 { "busy" } else { "failed" };
                let status = StatusCode::new(status).unwrap_or(StatusCode::DECLINE);
                if call.phase == Phase::Ringing {
                    self.final_response(call, status, None, now);
                }
            }
            Command::Hangup { reason } => match reason {
                HangupReason::Completed => {}
                HangupReason::ApplicationError(_) | HangupReason::FetchLimit => {
                    if call.phase == Phase::Ringing {
                        call.final_status = "failed";
                        let w = Warning::new(
                            399,
                            &self.config.agent,
                            "the application's TwiML could not be fetched or run",
                        );
                        self.final_response(call, StatusCode::SERVER_INTERNAL_ERROR, Some(w), now);
                    }
                }
            },
            _ => {}
        }
    }

    fn play(&mut self, call: &mut Call, prompts: Vec<(Prompt, Repeat)>) {
        call.activity = Activity::Playback;
        self.effect(Effect::Media(MediaCommand::Play {
            call: call.id,
            prompts,
        }));
    }

    fn answer_caller(&mut self, call: &mut Call, now: Instant) {
        if call.phase != Phase::Ringing {
            return;
        }
        let (Some(media), Some(txn)) = (call.media.as_ref(), call.invite_txn) else {
            return;
        };
        let ok = Response::for_request(&call.invite, StatusCode::OK)
            .with_to_tag(&call.local_tag)
            .with_header(
                HeaderName::CONTACT,
                self.contact(call.transport).to_string(),
            )
            .with_body("application/sdp", media.answer.clone());
        call.dialog = Dialog::new_uas(&call.invite, &ok).ok();
        self.respond(txn, ok, now);
        call.phase = Phase::Answered;
        call.answered_at = Some(now);
        self.ledger(call, "in-progress");
    }

    fn base_params(&self, call: &Call) -> Vec<(String, String)> {
        let status = if call.caller_gone {
            "completed"
        } else if call.phase == Phase::Answered {
            "in-progress"
        } else {
            "ringing"
        };
        let (domain_name, domain_sid, account) = call
            .domain
            .as_ref()
            .map(|d| (d.name.clone(), d.sid.clone(), d.account_sid.clone()))
            .unwrap_or_default();
        let mut p = vec![
            ("AccountSid".to_owned(), account),
            ("ApiVersion".to_owned(), API_VERSION.to_owned()),
            ("CallSid".to_owned(), call.sid.clone()),
            ("CallStatus".to_owned(), status.to_owned()),
            ("Called".to_owned(), call.to.clone()),
            ("Caller".to_owned(), call.from.clone()),
            ("Direction".to_owned(), call.direction().to_owned()),
            ("From".to_owned(), call.from.clone()),
            ("To".to_owned(), call.to.clone()),
        ];
        if call.outbound.is_some() {
            p.push(("SipCallId".to_owned(), call.sip_call_id.clone()));
            return p;
        }
        p.extend([
            ("SipDomain".to_owned(), domain_name),
            ("SipDomainSid".to_owned(), domain_sid),
            ("SipCallId".to_owned(), call.sip_call_id.clone()),
            ("SipSourceIp".to_owned(), call.source.ip().to_string()),
        ]);
        if let Some(u) = &call.username {
            p.push(("SipUsername".to_owned(), u.clone()));
        }
        for (name, value) in call.invite.headers.x_headers() {
            p.push((format!("SipHeader_{name}"), value.to_owned()));
        }
        p
    }

    fn webhook(&mut self, call: &mut Call, request: FetchRequest) {
        let mut params = self.base_params(call);
        params.extend(request.params);
        let kind = match request.purpose {
            FetchPurpose::Notification => WebhookKind::Notification,
            _ => WebhookKind::Twiml,
        };
        let fetch = FetchId(call.serial());
        self.stats.webhooks += 1;
        let account_sid = call
            .domain
            .as_ref()
            .map(|d| d.account_sid.clone())
            .unwrap_or_default();
        self.effect(Effect::Webhook(WebhookRequest {
            call: call.id,
            fetch,
            account_sid,
            url: request.url,
            method: request.method,
            params,
            kind,
        }));
        if kind == WebhookKind::Notification {
            // Its answer is not run: the script ends here.
            if let Some(i) = call.interp.as_mut() {
                let _ = i.handle(TwimlEvent::TwimlFetched(Twiml::default()));
            }
        } else {
            call.pending_fetch = Some(fetch);
        }
    }

    fn ledger(&mut self, call: &Call, status: &'static str) {
        self.ledger_with(call, status, None);
    }

    /// The ledger's row for `status`, with the `StatusCallback` that reports it.
    fn ledger_with(
        &mut self,
        call: &Call,
        status: &'static str,
        status_callback: Option<Box<CallStatusCallback>>,
    ) {
        let Some(d) = call.domain.as_ref() else {
            return;
        };
        self.effect(Effect::CallStatus(CallUpdate {
            call_sid: call.sid.clone(),
            account_sid: d.account_sid.clone(),
            parent_call_sid: None,
            direction: call.direction(),
            from: call.from.clone(),
            to: call.to.clone(),
            status,
            sip_call_id: call.sip_call_id.clone(),
            duration_secs: None,
            status_callback,
        }));
    }

    // ----------------------------------------------------------------------------------------
    // Media events and timers.

    fn on_playback_done(&mut self, call: &mut Call, now: Instant) {
        match &mut call.activity {
            Activity::Playback => {
                call.activity = Activity::Idle;
                self.feed(call, TwimlEvent::PlaybackDone, now);
            }
            Activity::Gather(g) if g.prompting => {
                g.prompting = false;
                let timeout = g.timeout;
                self.set_timer(call, TimerKind::Gather, now + timeout);
            }
            Activity::SendDigits => {
                call.activity = Activity::Idle;
                self.feed(call, TwimlEvent::Answered, now);
            }
            _ => {}
        }
    }

    fn on_digit(&mut self, call: &mut Call, digit: char, now: Instant) {
        match &mut call.activity {
            Activity::Gather(g) => {
                if g.prompting {
                    g.prompting = false;
                    self.effect(Effect::Media(MediaCommand::StopPlayback { call: call.id }));
                }
                let done = if g.finish_on_key == Some(digit) {
                    Some((core::mem::take(&mut g.digits), Some(digit)))
                } else {
                    g.digits.push(digit);
                    let full = g
                        .num_digits
                        .is_some_and(|n| g.digits.chars().count() >= n as usize);
                    full.then(|| (core::mem::take(&mut g.digits), None))
                };
                match done {
                    Some((digits, finished_on_key)) => {
                        self.clear_timer(call, TimerKind::Gather);
                        call.activity = Activity::Idle;
                        self.feed(
                            call,
                            TwimlEvent::DigitsCollected {
                                digits,
                                finished_on_key,
                            },
                            now,
                        );
                    }
                    None => {
                        let timeout = g.timeout;
                        self.set_timer(call, TimerKind::Gather, now + timeout);
                    }
                }
            }
            Activity::Record(r) if !r.stopping && r.finish_on_key.contains(digit) => {
                r.digits = Some(digit.to_string());
                self.stop_record_verb(call);
            }
            Activity::Dial => {
                let star = digit == '*'
                    && call
                        .dial
                        .as_ref()
                        .is_some_and(|d| d.hangup_on_star && d.state == DialState::Answered);
                if star {
                    self.hang_up_dial(call, DialCallStatus::Completed, now);
                }
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, call: &mut Call, kind: TimerKind, now: Instant) {
        match kind {
            TimerKind::Pause => {
                if matches!(call.activity, Activity::Pause) {
                    call.activity = Activity::Idle;
                    self.feed(call, TwimlEvent::PauseElapsed, now);
                }
            }
            TimerKind::Gather => {
                if let Activity::Gather(g) = &mut call.activity {
                    let digits = core::mem::take(&mut g.digits);
                    call.activity = Activity::Idle;
                    let event = if digits.is_empty() {
                        TwimlEvent::GatherTimeout
                    } else {
                        TwimlEvent::DigitsCollected {
                            digits,
                            finished_on_key: None,
                        }
                    };
                    self.feed(call, event, now);
                }
            }
            TimerKind::DialRing => {
                let ringing = call
                    .dial
                    .as_ref()
                    .is_some_and(|d| d.state != DialState::Answered);
                if ringing {
                    if let Some(f) = call.dial.as_mut().and_then(|d| d.forks.as_mut()) {
                        // Every branch still ringing gets its CANCEL.
                        let pending = f.fork.handle_timeout(now);
                        for t in f.txns(&pending) {
                            let _ = self.endpoint.cancel(t, now);
                        }
                    }
                    self.hang_up_dial(call, DialCallStatus::NoAnswer, now);
                }
            }
            TimerKind::DialLimit => {
                if call.dial.is_some() {
                    self.hang_up_dial(call, DialCallStatus::Completed, now);
                }
            }
            TimerKind::RecordMax => {
                if matches!(call.activity, Activity::Record(_)) {
                    self.stop_record_verb(call);
                }
            }
            TimerKind::OriginateLimit => {
                if call.outbound.is_some() && call.phase == Phase::Answered && !call.caller_gone {
                    // As `Status=completed`: our BYE, then the script winds down as if the
                    // callee had hung up (a dialled leg gets its BYE too).
                    self.bye_caller(call, now);
                    self.caller_gone(call, now);
                }
            }
            TimerKind::OriginateRing => {
                if call.outbound.is_some() && call.phase == Phase::Ringing {
                    call.final_status = "no-answer";
                    self.final_response(call, StatusCode::REQUEST_TERMINATED, None, now);
                    self.caller_gone(call, now);
                }
            }
        }
    }

    // ----------------------------------------------------------------------------------------
    // <Record>.

    fn start_record_verb(&mut self, call: &mut Call, record: RecordCommand, now: Instant) {
        let id = RecordingId(call.serial());
        call.activity = Activity::Record(RecordState {
            recording: id,
            finish_on_key: record.finish_on_key.clone(),
            digits: None,
            stopping: false,
        });
        self.end_api_recording(call);
        call.recording = Some(ActiveRecording {
            id,
            for_dial: false,
            stopping: false,
            api: false,
        });
        if record.play_beep {
            self.effect(Effect::Media(MediaCommand::Play {
                call: call.id,
                prompts: vec![(Prompt::Beep, Repeat::default())],
            }));
        }
        self.effect(Effect::Media(MediaCommand::ArmSilence {
            call: call.id,
            timeout: record.silence_timeout,
        }));
        self.start_recording(
            call,
            id,
            Layout::Mono,
            TapTracks::CallerOnly,
            RecordingSource::RecordVerb,
            record.trim,
            record.status_callback,
        );
        self.set_timer(call, TimerKind::RecordMax, now + record.max_length);
    }

    #[allow(clippy::too_many_arguments)]
    fn start_recording(
        &mut self,
        call: &Call,
        id: RecordingId,
        layout: Layout,
        tracks: TapTracks,
        source: RecordingSource,
        trim: mediaseal_twiml::Trim,
        status_callback: Option<Callback<mediaseal_twiml::RecordingEvents>>,
    ) {
        let account_sid = call
            .domain
            .as_ref()
            .map(|d| d.account_sid.clone())
            .unwrap_or_default();
        self.effect(Effect::StartRecording(RecordingRequest {
            call: call.id,
            recording: id,
            account_sid,
            call_sid: call.sid.clone(),
            layout,
            tracks,
            source,
            trim,
            status_callback,
        }));
    }

    fn stop_record_verb(&mut self, call: &mut Call) {
        let Activity::Record(state) = &mut call.activity else {
            return;
        };
        if state.stopping {
            return;
        }
        state.stopping = true;
        let id = state.recording;
        self.clear_timer(call, TimerKind::RecordMax);
        self.effect(Effect::Media(MediaCommand::ArmSilence {
            call: call.id,
            timeout: None,
        }));
        self.stop_recording(call, id);
    }

    fn stop_recording(&mut self, call: &mut Call, id: RecordingId) {
        if let Some(r) = call.recording.as_mut()
            && r.id == id
            && !r.stopping
        {
            r.stopping = true;
            self.effect(Effect::StopRecording {
                call: call.id,
                recording: id,
            });
        }
    }

    /// Stops the call's API recording, if one runs; it is stored and reported as usual.
    fn end_api_recording(&mut self, call: &mut Call) {
        if let Some(r) = call.recording.as_ref()
            && r.api
        {
            let id = r.id;
            self.stop_recording(call, id);
        }
    }

    // ----------------------------------------------------------------------------------------
    // <Dial><Sip>.

    fn start_dial(&mut self, call: &mut Call, dial: DialCommand, now: Instant) {
        call.activity = Activity::Dial;
        let Some(DialLeg::Sip {
            uri,
            username,
            password,
            status_callback,
            ..
        }) = dial
            .legs
            .into_iter()
            .find(|l| matches!(l, DialLeg::Sip { .. }))
        else {
            // Phone numbers need a PSTN gateway, which mediaseal does not have.
            self.deliver_dial_outcome(call, DialCallStatus::Failed, None, None, None, now);
            return;
        };
        let secure = uri.requires_tls() && uri.secure;
        let (Ok(Uri::Sip(mut request_uri)), Some(media)) =
            (Uri::parse(uri.as_str()), call.media.clone())
        else {
            self.deliver_dial_outcome(call, DialCallStatus::Failed, None, None, None, now);
            return;
        };
        // An address of one of our domains reaches the phones registered there, each over the
        // flow it registered on (its TCP/TLS connection, or its UDP source); several are rung
        // at once (a fork, as Twilio does). Nobody registered, or a `;secure=true` dial to
        // phones registered without TLS only: failed at once (Twilio's 404 case), no INVITE.
        // A `;secure=true` dial never reaches a binding made without TLS.
        let own_domain = match &request_uri.host {
            Host::Domain(name) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                self.is_domain_name(&name).then_some(name)
            }
            _ => None,
        };
        let mut dialled_aor = None;
        let mut more_bindings: Vec<Binding> = Vec::new();
        let registered = match own_domain {
            Some(name) => {
                let owner = call
                    .domain
                    .as_ref()
                    .map(|d| d.account_sid.clone())
                    .unwrap_or_default();
                let mut usable: Vec<Binding> = request_uri
                    .user
                    .as_deref()
                    .map(|u| {
                        let aor = format!("{u}@{name}");
                        self.registrar.lookup(&aor, &owner, now)
                    })
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|b| {
                        matches!(b.contact, Uri::Sip(_))
                            && (!secure || b.flow.transport == Transport::Tls)
                    })
                    .collect();
                let first = (!usable.is_empty()).then(|| usable.remove(0));
                let Some(binding) = first else {
                    *self
                        .stats
                        .refusals
                        .entry("dial_not_registered")
                        .or_default() += 1;
                    self.deliver_dial_outcome(call, DialCallStatus::Failed, None, None, None, now);
                    return;
                };
                if let Uri::Sip(contact) = &binding.contact {
                    dialled_aor = Some(std::mem::replace(&mut request_uri, contact.clone()));
                }
                // The most recently refreshed binding first, then the others.
                more_bindings = usable;
                Some(binding)
            }
            None => None,
        };
        let Some(port) = self.ports.take() else {
            self.deliver_dial_outcome(call, DialCallStatus::Failed, None, None, None, now);
            return;
        };
        let offer = if secure {
            match Offer::new(&[SrtpProfile::AesCm128HmacSha1_80]) {
                Ok(o) => Some(o),
                Err(_) => {
                    self.ports.give(port);
                    self.deliver_dial_outcome(call, DialCallStatus::Failed, None, None, None, now);
                    return;
                }
            }
        } else {
            None
        };
        let mut cfg = AudioConfig::new(self.config.media_address, port);
        // The callee gets the caller's codec only, so the relay never transcodes.
        cfg.codecs = vec![media.codec];
        let sdp = audio_offer(&cfg, offer.as_ref().map_or(&[], |o| o.attributes()));
        let transport = if let Some(b) = &registered {
            b.flow.transport
        } else if secure || request_uri.scheme == Scheme::Sips {
            Transport::Tls
        } else {
            match request_uri.transport_param().as_deref() {
                Some("tcp") => Transport::Tcp,
                Some("tls") => Transport::Tls,
                _ => Transport::Udp,
            }
        };
        // `;secure=true` is ours to interpret: the callee sees a plain sip: URI.
        request_uri.params.remove("secure");
        let host = request_uri.host.clone();
        let target_port = request_uri.port.unwrap_or(transport.default_port());
        let caller_user = call
            .invite
            .headers
            .from()
            .ok()
            .and_then(|f| f.sip_uri().and_then(|u| u.user.clone()))
            .unwrap_or_else(|| "anonymous".to_owned());
        let from_user = dial.caller_id.clone().unwrap_or(caller_user);
        let from_uri = SipUri::new(
            Scheme::Sip,
            Some(&from_user),
            host_of(self.config.sip_address),
        );
        // The callee (and the leg's row) sees the address dialled, not the contact.
        let to_uri = SipUri {
            params: Default::default(),
            headers: Vec::new(),
            password: None,
            ..dialled_aor.unwrap_or_else(|| request_uri.clone())
        };
        let mut invite = new_invite(
            Uri::Sip(request_uri),
            NameAddr::new(from_uri.clone()),
            &NameAddr::new(to_uri.clone()),
            &self.contact(transport),
            None,
        );
        invite.set_body("application/sdp", sdp.to_bytes());
        let sip_call_id = invite.headers.call_id().unwrap_or_default().to_owned();
        let sid = new_sid();
        self.by_sip_call_id
            .insert(sip_call_id.clone(), (call.id, Side::Callee));
        self.effect(Effect::Media(MediaCommand::OpenLeg {
            call: call.id,
            side: Side::Callee,
            port,
        }));
        let credentials = match (username, password) {
            (Some(u), Some(p)) => Some((u, p.expose().to_owned())),
            _ => None,
        };
        call.dial = Some(Dialled {
            sid,
            sip_call_id,
            txn: None,
            invite,
            target: None,
            port,
            offer,
            dialog: None,
            state: DialState::Resolving,
            answered_at: None,
            final_code: None,
            credentials,
            auth_attempted: false,
            recording: dial.recording,
            time_limit: dial.time_limit,
            hangup_on_star: dial.hangup_on_star,
            answer_on_bridge: dial.answer_on_bridge,
            status_callback,
            sequence: 0,
            from: plain_uri(&Uri::Sip(from_uri)),
            to: plain_uri(&Uri::Sip(to_uri)),
            forks: None,
        });
        self.set_timer(call, TimerKind::DialRing, now + dial.timeout);
        if let Some(b) = registered {
            if more_bindings.is_empty() {
                self.send_dial_invite(call, b.flow.source, now);
            } else {
                more_bindings.insert(0, b);
                self.send_forked_invites(call, &more_bindings, now + dial.timeout, now);
            }
            return;
        }
        match host.ip() {
            Some(ip) => self.send_dial_invite(call, SocketAddr::new(ip, target_port), now),
            None => {
                let Host::Domain(name) = host else { return };
                self.effect(Effect::Resolve {
                    call: call.id,
                    host: name,
                    port: target_port,
                    transport,
                });
            }
        }
    }

    fn send_dial_invite(&mut self, call: &mut Call, addr: SocketAddr, now: Instant) {
        let Some(d) = call.dial.as_mut() else { return };
        let transport = d
            .invite
            .headers
            .get(&HeaderName::CONTACT)
            .map_or(Transport::Udp, |c| {
                if c.contains("transport=tls") {
                    Transport::Tls
                } else if c.contains("transport=tcp") {
                    Transport::Tcp
                } else {
                    Transport::Udp
                }
            });
        let target = Target { transport, addr };
        if transport == Transport::Tls {
            let server_name = d
                .invite
                .uri
                .as_sip()
                .map(|u| match &u.host {
                    Host::Domain(n) => n.clone(),
                    other => other
                        .ip()
                        .map_or_else(|| other.to_string(), |ip| ip.to_string()),
                })
                .unwrap_or_default();
            self.out
                .push_back(Output::Effect(Effect::TlsServerName { addr, server_name }));
        }
        d.target = Some(target);
        d.state = DialState::Calling;
        match self.endpoint.send_request(d.invite.clone(), target, now) {
            Ok(txn) => {
                d.txn = Some(txn);
                self.by_client_txn
                    .insert(txn, (call.id, ClientPurpose::DialInvite));
                self.dial_targets.insert(txn, target);
                // The leg's row starts `queued`, so `ringing` (a 180) and `in-progress` each
                // move it on and the ledger queues the event that travels with each.
                self.leg_event(call, "queued", "initiated", None);
            }
            Err(_) => self.end_dial(call, DialCallStatus::Failed, now),
        }
    }

    /// Rings every binding at once: one INVITE per binding over its own flow, each with its own
    /// SDES key when the dial is secure (the relay leg is keyed from the winner's answer only).
    fn send_forked_invites(
        &mut self,
        call: &mut Call,
        bindings: &[Binding],
        deadline: Instant,
        now: Instant,
    ) {
        let Some(codec) = call.media.as_ref().map(|m| m.codec) else {
            return;
        };
        let Some(d) = call.dial.as_mut() else { return };
        let secure = d.offer.is_some();
        let mut branches = Vec::with_capacity(bindings.len());
        for b in bindings {
            let Uri::Sip(mut uri) = b.contact.clone() else {
                continue;
            };
            uri.params.remove("secure");
            let mut invite = d.invite.clone();
            invite.uri = Uri::Sip(uri);
            invite.headers.set(
                HeaderName::CONTACT,
                self.contact(b.flow.transport).to_string(),
            );
            let offer = if secure {
                let Ok(offer) = Offer::new(&[SrtpProfile::AesCm128HmacSha1_80]) else {
                    continue;
                };
                let mut cfg = AudioConfig::new(self.config.media_address, d.port);
                cfg.codecs = vec![codec];
                invite.set_body(
                    "application/sdp",
                    audio_offer(&cfg, offer.attributes()).to_bytes(),
                );
                Some(offer)
            } else {
                None
            };
            branches.push(Branch {
                txn: None,
                invite,
                target: Target {
                    transport: b.flow.transport,
                    addr: b.flow.source,
                },
                offer,
            });
        }
        if branches.is_empty() {
            self.end_dial(call, DialCallStatus::Failed, now);
            return;
        }
        d.state = DialState::Calling;
        d.offer = None;
        let mut failed = Vec::new();
        for (i, branch) in branches.iter_mut().enumerate() {
            match self
                .endpoint
                .send_request(branch.invite.clone(), branch.target, now)
            {
                Ok(txn) => {
                    branch.txn = Some(txn);
                    self.by_client_txn
                        .insert(txn, (call.id, ClientPurpose::DialInvite));
                    self.dial_targets.insert(txn, branch.target);
                }
                Err(_) => failed.push(BranchId(i)),
            }
        }
        let fork = Fork::new(branches.len(), deadline);
        d.forks = Some(Forking { fork, branches });
        self.leg_event(call, "queued", "initiated", None);
        for id in failed {
            self.on_branch_failed(call, id, TRANSPORT_FAILED, now);
        }
    }

    /// A branch of a fork failed: the dial ends once every branch has (or at a 6xx).
    fn on_branch_failed(&mut self, call: &mut Call, branch: BranchId, code: u16, now: Instant) {
        let Some(f) = call.dial.as_mut().and_then(|d| d.forks.as_mut()) else {
            return;
        };
        let Some(Ended { best, cancel }) = f.fork.on_failure(branch, code) else {
            return;
        };
        for t in f.txns(&cancel) {
            let _ = self.endpoint.cancel(t, now);
        }
        if let Some(d) = call.dial.as_mut() {
            d.final_code = Some(best);
        }
        self.end_dial(call, dial_status(best), now);
    }

    /// A response on a branch of a fork.
    fn on_fork_response(
        &mut self,
        call: &mut Call,
        branch: BranchId,
        txn: ClientTransactionId,
        response: &Response,
        now: Instant,
    ) {
        let code = response.status.as_u16();
        let Some(d) = call.dial.as_mut() else { return };
        let Some(f) = d.forks.as_mut() else { return };
        if response.status.is_provisional() {
            if f.fork.on_provisional(branch, code) && d.state == DialState::Calling {
                d.state = DialState::Ringing;
                self.leg_event(call, "ringing", "ringing", None);
            }
            return;
        }
        if !response.status.is_success() {
            self.dial_targets.remove(&txn);
            self.on_branch_failed(call, branch, code, now);
            return;
        }
        match f.fork.on_success(branch) {
            Answered::AckAndBye => self.ack_and_bye_stray(txn, response, now),
            Answered::Won { cancel } => {
                for t in f.txns(&cancel) {
                    let _ = self.endpoint.cancel(t, now);
                }
                let Some(won) = f.branches.get_mut(branch.0) else {
                    return;
                };
                // The winner becomes the dial's one leg: its dialog, flow and key.
                d.txn = Some(txn);
                d.target = Some(won.target);
                d.invite = won.invite.clone();
                d.offer = won.offer.take();
                d.final_code = Some(code);
                self.on_dial_answered(call, txn, response, now);
            }
        }
    }

    fn leg_update(&self, call: &Call, status: &'static str) -> CallUpdate {
        let d = call.dial.as_ref();
        CallUpdate {
            call_sid: d.map(|d| d.sid.clone()).unwrap_or_default(),
            account_sid: call
                .domain
                .as_ref()
                .map(|d| d.account_sid.clone())
                .unwrap_or_default(),
            parent_call_sid: Some(call.sid.clone()),
            direction: "outbound-dial",
            from: d.map(|d| d.from.clone()).unwrap_or_default(),
            to: d.map(|d| d.to.clone()).unwrap_or_default(),
            status,
            sip_call_id: d.map(|d| d.sip_call_id.clone()).unwrap_or_default(),
            duration_secs: None,
            status_callback: None,
        }
    }

    /// The dialled leg's row moves to `status`, carrying its `<Sip statusCallback>` for
    /// `event` when that event was asked for: the ledger queues it in the outbox with the row
    /// (signed, retried, in order), as it does a placed call's progress events.
    fn leg_event(
        &mut self,
        call: &mut Call,
        status: &'static str,
        event: &'static str,
        duration_secs: Option<u32>,
    ) {
        let mut update = self.leg_update(call, status);
        update.duration_secs = duration_secs;
        update.status_callback = Self::leg_progress(call, status, event, duration_secs);
        self.effect(Effect::CallStatus(update));
    }

    /// `<Sip statusCallback>` for `event` of the dialled leg, whose status is `status`.
    fn leg_progress(
        call: &mut Call,
        status: &'static str,
        event: &'static str,
        duration_secs: Option<u32>,
    ) -> Option<Box<CallStatusCallback>> {
        let account_sid = call
            .domain
            .as_ref()
            .map(|d| d.account_sid.clone())
            .unwrap_or_default();
        let parent = call.sid.clone();
        let d = call.dial.as_mut()?;
        let cb = d.status_callback.as_ref()?;
        let wanted = match event {
            "initiated" => cb.events.initiated,
            "ringing" => cb.events.ringing,
            "answered" => cb.events.answered,
            _ => cb.events.completed,
        };
        if !wanted {
            return None;
        }
        let call_status = match event {
            "initiated" => "initiated",
            _ => status,
        };
        let mut params = vec![
            ("AccountSid".to_owned(), account_sid),
            ("ApiVersion".to_owned(), API_VERSION.to_owned()),
            ("CallSid".to_owned(), d.sid.clone()),
            ("ParentCallSid".to_owned(), parent),
            ("CallStatus".to_owned(), call_status.to_owned()),
            ("Direction".to_owned(), "outbound-dial".to_owned()),
            ("From".to_owned(), d.from.clone()),
            ("To".to_owned(), d.to.clone()),
            ("SipCallId".to_owned(), d.sip_call_id.clone()),
        ];
        if let Some(secs) = duration_secs {
            params.push(("CallDuration".to_owned(), secs.to_string()));
        }
        params.push((
            "CallbackSource".to_owned(),
            "call-progress-events".to_owned(),
        ));
        params.push(("SequenceNumber".to_owned(), d.sequence.to_string()));
        d.sequence += 1;
        Some(Box::new(CallStatusCallback {
            url: cb.target.url.clone(),
            method: cb.target.method,
            params,
        }))
    }

    fn on_response(&mut self, txn: ClientTransactionId, response: &Response, now: Instant) {
        self.route_response(txn, response, now);
        if response.status.is_final() {
            // Nothing reaches this transaction any more (it left `by_client_txn`).
            self.dial_targets.remove(&txn);
        }
    }

    fn route_response(&mut self, txn: ClientTransactionId, response: &Response, now: Instant) {
        let Some(&(id, purpose)) = self.by_client_txn.get(&txn) else {
            return;
        };
        if response.status.is_final() {
            self.by_client_txn.remove(&txn);
        }
        if purpose == ClientPurpose::Bye {
            return;
        }
        if purpose == ClientPurpose::Originate {
            let current = self
                .calls
                .get(&id)
                .and_then(|c| c.outbound.as_ref())
                .is_some_and(|o| o.txn == Some(txn));
            if current {
                self.with_call(id, now, |core, call, now| {
                    core.on_originate_response(call, txn, response, now);
                });
            } else if response.status.is_success() {
                self.ack_and_bye_stray(txn, response, now);
            }
            return;
        }
        let dial = self.calls.get(&id).and_then(|c| c.dial.as_ref());
        let branch = dial
            .and_then(|d| d.forks.as_ref())
            .and_then(|f| f.branch_of(txn));
        if let Some(branch) = branch {
            self.with_call(id, now, |core, call, now| {
                core.on_fork_response(call, branch, txn, response, now);
            });
            return;
        }
        let current = dial.is_some_and(|d| d.txn == Some(txn));
        if !current {
            // A dial we gave up on (timeout, caller gone): a late 2xx is acknowledged and ended.
            if response.status.is_success() {
                self.ack_and_bye_stray(txn, response, now);
            }
            return;
        }
        self.with_call(id, now, |core, call, now| {
            core.on_dial_response(call, txn, response, now);
        });
    }

    fn ack_and_bye_stray(&mut self, txn: ClientTransactionId, response: &Response, now: Instant) {
        let Some(invite) = self.endpoint.client_request(txn).cloned() else {
            return;
        };
        let Ok(mut dialog) = Dialog::new_uac(&invite, response) else {
            return;
        };
        let Some(target) = self
            .dial_targets
            .remove(&txn)
            .or_else(|| self.target_of(&invite))
        else {
            return;
        };
        let _ = self.endpoint.send_ack(txn, dialog.ack(), target, now);
        if let Ok(bye) = self.endpoint.send_request(dialog.bye(), target, now) {
            self.by_client_txn
                .insert(bye, (CallId(0), ClientPurpose::Bye));
        }
    }

    fn target_of(&self, invite: &Request) -> Option<Target> {
        // The INVITE went where its Via transport and the dial's target say; for a stray we
        // only know the URI.
        invite.uri.as_sip().and_then(Target::from_uri)
    }

    fn on_dial_response(
        &mut self,
        call: &mut Call,
        txn: ClientTransactionId,
        response: &Response,
        now: Instant,
    ) {
        let Some(d) = call.dial.as_mut() else { return };
        let code = response.status.as_u16();
        if response.status.is_provisional() {
            if code > 100 && d.state == DialState::Calling {
                d.state = DialState::Ringing;
                self.leg_event(call, "ringing", "ringing", None);
            }
            return;
        }
        d.final_code = Some(code);
        if response.status.is_success() {
            self.on_dial_answered(call, txn, response, now);
            return;
        }
        let challenged = matches!(
            response.status,
            StatusCode::UNAUTHORIZED | StatusCode::PROXY_AUTHENTICATION_REQUIRED
        );
        if challenged
            && !d.auth_attempted
            && let (Some((user, pass)), Some(target)) = (d.credentials.clone(), d.target)
        {
            // The INVITE as sent, kept on the leg: over TCP and TLS the endpoint forgets the
            // transaction as soon as its final response arrives.
            let mut retry = d.invite.clone();
            if authorize(&mut retry, response, &user, &pass).is_ok() {
                d.auth_attempted = true;
                d.invite = retry.clone();
                if let Ok(t) = self.endpoint.send_request(retry, target, now) {
                    d.txn = Some(t);
                    self.by_client_txn
                        .insert(t, (call.id, ClientPurpose::DialInvite));
                    return;
                }
            }
        }
        self.dial_targets.remove(&txn);
        self.end_dial(call, dial_status(code), now);
    }

    fn on_dial_answered(
        &mut self,
        call: &mut Call,
        txn: ClientTransactionId,
        response: &Response,
        now: Instant,
    ) {
        let Some(d) = call.dial.as_mut() else { return };
        let (Some(sent), Some(target)) = (self.endpoint.client_request(txn).cloned(), d.target)
        else {
            return;
        };
        let Ok(mut dialog) = Dialog::new_uac(&sent, response) else {
            self.end_dial(call, DialCallStatus::Failed, now);
            return;
        };
        let _ = self.endpoint.send_ack(txn, dialog.ack(), target, now);
        let setup = callee_setup(&response.body, d.offer.as_ref(), call.media.as_ref());
        d.dialog = Some(dialog);
        let Some(setup) = setup else {
            // The answer does not fit the offer (no SRTP for ;secure=true, unknown codec):
            // the dialog exists, so it ends with a BYE, and the dial fails.
            d.state = DialState::Answered;
            self.hang_up_dial(call, DialCallStatus::Failed, now);
            return;
        };
        d.state = DialState::Answered;
        d.answered_at = Some(now);
        let time_limit = d.time_limit;
        let answer_on_bridge = d.answer_on_bridge;
        let recording = d.recording.clone();
        self.clear_timer(call, TimerKind::DialRing);
        self.set_timer(call, TimerKind::DialLimit, now + time_limit);
        self.effect(Effect::Media(MediaCommand::ConfigureLeg {
            call: call.id,
            side: Side::Callee,
            setup: Box::new(setup),
        }));
        if answer_on_bridge && call.phase == Phase::Ringing {
            self.answer_caller(call, now);
            if let Some(i) = call.interp.as_mut() {
                let _ = i.handle(TwimlEvent::Answered);
            }
        }
        self.effect(Effect::Media(MediaCommand::Bridge {
            call: call.id,
            bridged: true,
        }));
        self.leg_event(call, "in-progress", "answered", None);
        if let Some(rec) = recording {
            let layout = match rec.mode {
                DialRecord::FromAnswerDual | DialRecord::FromRingingDual => Layout::Dual,
                _ => Layout::Mono,
            };
            let id = RecordingId(call.serial());
            self.end_api_recording(call);
            call.recording = Some(ActiveRecording {
                id,
                for_dial: true,
                stopping: false,
                api: false,
            });
            self.start_recording(
                call,
                id,
                layout,
                TapTracks::Both,
                RecordingSource::DialVerb,
                rec.trim,
                rec.status_callback,
            );
        }
    }

    /// We end the dial: CANCEL if ringing, BYE if answered.
    fn hang_up_dial(&mut self, call: &mut Call, status: DialCallStatus, now: Instant) {
        let Some(d) = call.dial.as_mut() else { return };
        match d.state {
            DialState::Answered => {
                if let (Some(dialog), Some(target)) = (d.dialog.as_mut(), d.target) {
                    let bye = dialog.bye();
                    if let Ok(t) = self.endpoint.send_request(bye, target, now) {
                        self.by_client_txn.insert(t, (call.id, ClientPurpose::Bye));
                    }
                }
            }
            DialState::Calling | DialState::Ringing => {
                if let Some(f) = d.forks.as_mut() {
                    let pending = f.fork.abandon();
                    for t in f.txns(&pending) {
                        let _ = self.endpoint.cancel(t, now);
                    }
                } else if let Some(t) = d.txn {
                    let _ = self.endpoint.cancel(t, now);
                }
            }
            DialState::Resolving => {}
        }
        self.end_dial(call, status, now);
    }

    fn dial_ended_by_callee(&mut self, call: &mut Call, now: Instant) {
        if call
            .dial
            .as_ref()
            .is_some_and(|d| d.state == DialState::Answered)
        {
            self.end_dial(call, DialCallStatus::Completed, now);
        }
    }

    /// The dialled leg is over: release its media, then report the outcome (after its
    /// recording is stored, if it had one).
    fn end_dial(&mut self, call: &mut Call, status: DialCallStatus, now: Instant) {
        let Some(d) = call.dial.take() else { return };
        self.clear_timer(call, TimerKind::DialRing);
        self.clear_timer(call, TimerKind::DialLimit);
        self.by_sip_call_id.remove(&d.sip_call_id);
        self.effect(Effect::Media(MediaCommand::Bridge {
            call: call.id,
            bridged: false,
        }));
        self.effect(Effect::Media(MediaCommand::CloseLeg {
            call: call.id,
            side: Side::Callee,
        }));
        self.ports.give(d.port);
        let duration = d.answered_at.map(|at| {
            u32::try_from(now.saturating_duration_since(at).as_secs()).unwrap_or(u32::MAX)
        });
        let status = if status == DialCallStatus::Completed && d.answered_at.is_none() {
            DialCallStatus::Failed
        } else {
            status
        };
        let ledger_status = match status {
            DialCallStatus::Completed | DialCallStatus::Answered => "completed",
            DialCallStatus::Busy => "busy",
            DialCallStatus::NoAnswer => "no-answer",
            DialCallStatus::Failed => "failed",
            DialCallStatus::Canceled => "canceled",
        };
        let sid = d.sid.clone();
        let sip_call_id = d.sip_call_id.clone();
        let code = d.final_code;
        call.dial = Some(d);
        self.leg_event(call, ledger_status, "completed", duration);
        call.dial = None;
        let outcome = DialOutcome {
            status,
            call_sid: Some(sid),
            duration_secs: duration,
            sip_call_id: Some(sip_call_id),
            sip_response_code: code,
            recording: None,
        };
        self.deliver_outcome(call, outcome, now);
    }

    /// A dial that never produced a leg (a phone number, a bad URI, no free port).
    fn deliver_dial_outcome(
        &mut self,
        call: &mut Call,
        status: DialCallStatus,
        sid: Option<String>,
        sip_call_id: Option<String>,
        code: Option<u16>,
        now: Instant,
    ) {
        let outcome = DialOutcome {
            status,
            call_sid: sid,
            duration_secs: None,
            sip_call_id,
            sip_response_code: code,
            recording: None,
        };
        self.deliver_outcome(call, outcome, now);
    }

    fn deliver_outcome(&mut self, call: &mut Call, outcome: DialOutcome, now: Instant) {
        let dial_recording = call.recording.as_ref().filter(|r| r.for_dial).map(|r| r.id);
        if let Some(id) = dial_recording {
            // Report once the recording is stored (its SID and URL go to the action).
            call.dial_outcome = Some(outcome);
            self.stop_recording(call, id);
        } else {
            call.activity = Activity::Idle;
            self.feed(call, TwimlEvent::DialEnded(outcome), now);
        }
    }

    // ----------------------------------------------------------------------------------------
    // Endings.

    fn on_transaction_failure(&mut self, id: TransactionId, now: Instant) {
        match id {
            TransactionId::Server(txn) => {
                // No ACK for our 200: the caller is unreachable.
                if let Some(&call) = self.by_server_txn.get(&txn) {
                    self.with_call(call, now, |core, call, now| {
                        if call.phase == Phase::Answered {
                            core.caller_gone(call, now);
                            core.bye_caller(call, now);
                        }
                    });
                }
            }
            TransactionId::Client(txn) => {
                self.dial_targets.remove(&txn);
                let Some((call, purpose)) = self.by_client_txn.remove(&txn) else {
                    return;
                };
                if purpose == ClientPurpose::Originate {
                    // Timed out, or the connection (TLS verification) failed.
                    self.with_call(call, now, |core, call, now| {
                        let ours = call.outbound.as_ref().is_some_and(|o| o.txn == Some(txn));
                        if ours && call.phase == Phase::Ringing {
                            let status = if call.final_status == "failed" {
                                "failed"
                            } else {
                                call.final_status
                            };
                            core.originate_failed(call, status, now);
                        }
                    });
                    return;
                }
                if purpose != ClientPurpose::DialInvite {
                    return;
                }
                self.with_call(call, now, |core, call, now| {
                    let branch = call
                        .dial
                        .as_ref()
                        .and_then(|d| d.forks.as_ref())
                        .and_then(|f| f.branch_of(txn));
                    if let Some(branch) = branch {
                        // A phone's flow died or it never answered: that branch failed.
                        let answered = call
                            .dial
                            .as_ref()
                            .is_some_and(|d| d.state == DialState::Answered);
                        if !answered {
                            core.on_branch_failed(call, branch, TRANSPORT_FAILED, now);
                            return;
                        }
                    }
                    if call.dial.as_ref().is_some_and(|d| d.txn == Some(txn)) {
                        core.end_dial(call, DialCallStatus::Failed, now);
                    }
                });
            }
        }
    }

    /// The caller hung up (BYE, CANCEL, or unreachable).
    fn caller_gone(&mut self, call: &mut Call, now: Instant) {
        if call.caller_gone {
            return;
        }
        call.caller_gone = true;
        call.hung_up_at.get_or_insert(now);
        if let Some(d) = call.dialog.as_mut() {
            d.terminate();
        }
        if call.dial.is_some() {
            let status = if call
                .dial
                .as_ref()
                .is_some_and(|d| d.state == DialState::Answered)
            {
                DialCallStatus::Completed
            } else {
                DialCallStatus::Canceled
            };
            if let Some(i) = call.interp.as_mut() {
                let _ = i.handle(TwimlEvent::CallerHungUp);
            }
            self.hang_up_dial(call, status, now);
        } else if matches!(call.activity, Activity::Record(_)) {
            if let Some(i) = call.interp.as_mut() {
                let _ = i.handle(TwimlEvent::CallerHungUp);
            }
            self.stop_record_verb(call);
        } else {
            if let Some(i) = call.interp.as_mut() {
                let _ = i.handle(TwimlEvent::CallerHungUp);
            }
            call.activity = Activity::Idle;
        }
        for kind in [TimerKind::Pause, TimerKind::Gather] {
            self.clear_timer(call, kind);
        }
        self.drive(call, now);
    }

    fn bye_caller(&mut self, call: &mut Call, now: Instant) {
        let target = call.caller_target();
        if let Some(dialog) = call.dialog.as_mut()
            && dialog.state() != mediaseal_sip::dialog::DialogState::Terminated
        {
            let bye = dialog.bye();
            if let Ok(t) = self.endpoint.send_request(bye, target, now) {
                self.by_client_txn.insert(t, (call.id, ClientPurpose::Bye));
            }
        }
    }

    /// Ends the call once the script is over and nothing is pending.
    fn maybe_finish(&mut self, call: &mut Call, now: Instant) {
        if call.phase == Phase::Lookup {
            return;
        }
        let script_over = call.interp.as_ref().is_none_or(Interpreter::is_finished);
        if script_over || call.caller_gone || call.phase == Phase::Over {
            // An API recording ends with the call (and is stored before the call is released).
            self.end_api_recording(call);
        }
        let busy = call.dial.is_some() || call.recording.is_some() || call.dial_outcome.is_some();
        if call.phase == Phase::Answered
            && script_over
            && !call.caller_gone
            && call.dial.is_none()
            && call.dial_outcome.is_none()
            && call.recording.is_some()
        {
            // Only the recording is left to seal and store: the party is hung up on now, not
            // once the store answers; the call is released when the recording is finished.
            self.bye_caller(call, now);
            call.hung_up_at.get_or_insert(now);
        }
        if call.phase != Phase::Over && (busy || !script_over) {
            return;
        }
        if busy && call.phase == Phase::Over && call.interp.is_some() {
            // Rejected or failed before answering while something was pending: wind it down.
            if call.dial.is_some() {
                self.hang_up_dial(call, DialCallStatus::Canceled, now);
            }
            if let Some(r) = call.recording.as_ref() {
                let id = r.id;
                self.stop_recording(call, id);
            }
        }
        match call.phase {
            Phase::Answered => {
                if !call.caller_gone {
                    self.bye_caller(call, now);
                }
            }
            Phase::Ringing => {
                // The script ended without answering (it cannot normally: the interpreter
                // answers before hanging up); refuse rather than leave the caller ringing.
                if !call.caller_gone {
                    self.final_response(call, StatusCode::SERVER_INTERNAL_ERROR, None, now);
                }
            }
            Phase::Lookup | Phase::Over => {}
        }
        self.release(call, now);
    }

    fn release(&mut self, call: &mut Call, now: Instant) {
        let was_accepted = call.interp.is_some();
        if let Some(m) = call.media.take() {
            self.ports.give(m.port);
        }
        if was_accepted {
            self.effect(Effect::Media(MediaCommand::Close { call: call.id }));
            let ended = call.hung_up_at.unwrap_or(now);
            let duration = call.answered_at.map(|at| {
                u32::try_from(ended.saturating_duration_since(at).as_secs()).unwrap_or(u32::MAX)
            });
            let status = if call.answered_at.is_some() {
                "completed"
            } else {
                call.final_status
            };
            if let Some(d) = call.domain.as_ref() {
                // The domain's status callback travels with the final status, so the ledger
                // queues it in the same transaction as the Calls row (durable and retried).
                let status_callback = d.voice_status_callback_url.clone().map(|url| {
                    let mut params = self.base_params(call);
                    if let Some(p) = params.iter_mut().find(|(k, _)| k == "CallStatus") {
                        p.1 = status.to_owned();
                    }
                    if let Some(dur) = duration {
                        params.push(("CallDuration".to_owned(), dur.to_string()));
                    }
                    // A call the API placed: the last of its numbered progress events.
                    if let Some(o) = call.outbound.as_ref() {
                        params.push((
                            "CallbackSource".to_owned(),
                            "call-progress-events".to_owned(),
                        ));
                        params.push(("SequenceNumber".to_owned(), o.sequence.to_string()));
                    }
                    Box::new(CallStatusCallback {
                        url,
                        method: d.voice_status_callback_method,
                        params,
                    })
                });
                self.effect(Effect::CallStatus(CallUpdate {
                    call_sid: call.sid.clone(),
                    account_sid: d.account_sid.clone(),
                    parent_call_sid: None,
                    direction: call.direction(),
                    from: call.from.clone(),
                    to: call.to.clone(),
                    status,
                    sip_call_id: call.sip_call_id.clone(),
                    duration_secs: duration,
                    status_callback,
                }));
            }
        }
        call.interp = None;
        call.phase = Phase::Over;
    }
}

/// The `DialCallStatus` of a dial that ended with this final response.
fn dial_status(code: u16) -> DialCallStatus {
    match code {
        486 | 600 => DialCallStatus::Busy,
        408 | 480 => DialCallStatus::NoAnswer,
        487 => DialCallStatus::Canceled,
        _ => DialCallStatus::Failed,
    }
}

/// The setup of the leg a call the API placed from the callee's SDP answer, checked against
/// our offer (as [`callee_setup`], but the codec is whichever G.711 law the callee chose).
fn answer_setup(body: &[u8], offer: Option<&Offer>) -> Option<(LegSetup, AudioCodec)> {
    let sd = SessionDescription::parse(body).ok()?;
    let index = sd.active_audio().next()?;
    let media = sd.media.get(index)?;
    let codec = media.formats.iter().find_map(|f| {
        let pt = f.parse::<u8>().ok()?;
        let map = media.rtpmap(pt)?;
        [AudioCodec::Pcmu, AudioCodec::Pcma]
            .into_iter()
            .find(|c| map.encoding.eq_ignore_ascii_case(c.encoding()) && map.clock_rate == 8000)
    })?;
    let law = match codec {
        AudioCodec::Pcmu => Law::Mu,
        AudioCodec::Pcma => Law::A,
    };
    let caller = CallerMedia {
        port: 0,
        answer: Vec::new(),
        law,
        codec,
    };
    Some((callee_setup(body, offer, Some(&caller))?, codec))
}

/// The callee leg's setup from its SDP answer, checked against our offer: `None` when the
/// answer does not fit (no SRTP where we required it, a key that fails the policy, another
/// codec, no address).
fn callee_setup(
    body: &[u8],
    offer: Option<&Offer>,
    caller: Option<&CallerMedia>,
) -> Option<LegSetup> {
    let caller = caller?;
    let sd = SessionDescription::parse(body).ok()?;
    let index = sd.active_audio().next()?;
    let media = sd.media.get(index)?;
    let srtp = match offer {
        Some(offer) => {
            if !media.is_savp() {
                return None;
            }
            let line = media.crypto().into_iter().find_map(Result::ok)?;
            Some(offer.accept(&line).ok()?)
        }
        None => {
            if !media.is_avp() || media.attribute("crypto").is_some() {
                return None;
            }
            None
        }
    };
    let mut payload_type = None;
    let mut telephone_event = None;
    for f in &media.formats {
        let Ok(pt) = f.parse::<u8>() else { continue };
        let Some(map) = media.rtpmap(pt) else {
            continue;
        };
        if map.encoding.eq_ignore_ascii_case(caller.codec.encoding()) && map.clock_rate == 8000 {
            payload_type.get_or_insert(pt);
        } else if map.encoding.eq_ignore_ascii_case("telephone-event") {
            telephone_event.get_or_insert(pt);
        }
    }
    let remote_rtp = sd.rtp_destination(index)?;
    let remote_rtcp = media
        .rtcp()
        .map(|(port, ip)| SocketAddr::new(ip.unwrap_or(remote_rtp.ip()), port));
    Some(LegSetup {
        srtp,
        remote_rtp: Some(remote_rtp),
        remote_rtcp,
        rtcp_mux: media.rtcp_mux(),
        law: caller.law,
        payload_type: payload_type?,
        telephone_event,
    })
}
