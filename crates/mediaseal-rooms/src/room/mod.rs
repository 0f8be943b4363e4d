//! The room: a selective forwarding unit over one str0m [`Rtc`] per participant.
//!
//! Sans-IO in the str0m manner. The caller feeds [`Input`]s (a received datagram, a timeout, or a
//! [`Command`] from the control plane) to [`Room::handle_input`], then drains
//! [`Room::poll_output`] until it returns [`Output::Timeout`]: datagrams to send, [`RoomEvent`]s
//! for the control plane, and the moment to call again. Time only moves when the caller says
//! so; nothing here opens a socket or reads a clock.
//!
//! Forwarding is frame-level: a publisher's `Rtc` hands over whole frames
//! ([`str0m::media::MediaData`]), and each subscriber's `Rtc` re-packetizes and encrypts them
//! with its own SRTP keys, sequence numbers and SSRCs. The frame data is shared (`Arc`), never
//! copied per subscriber. Every mutation of an `Rtc` is followed by a full drain of that `Rtc`
//! (str0m's single-mutation rule); work that crosses participants (a frame to forward, a
//! keyframe request to route) goes through a FIFO queue so no `Rtc` is mutated while another's
//! output is half drained.
//!
//! Policies:
//! - **Subscriptions**: every participant that subscribes gets the other participants' tracks
//!   its subscribe rules include (all of them by default; [`Command::SubscribeRules`] changes
//!   that live). The room adds a `sendonly` m-line per track and sends the participant an offer
//!   ([`RoomEvent::Offer`]); one offer is outstanding at a time, and an offer from the
//!   participant wins a collision (the room is the polite side and re-offers afterwards).
//!   Participants that cannot renegotiate (WHIP, WHEP) get tracks in the `recvonly` m-lines
//!   they offered.
//! - **Keyframes**: a video subscription starts forwarding at a keyframe. Keyframe requests
//!   (a subscriber's PLI/FIR, a new subscription, a layer switch, a gap in the publisher's
//!   sequence numbers) go to the publisher at most once per
//!   [`RoomConfig::keyframe_request_interval`] per track layer; requests in between are folded
//!   into one that leaves when the interval ends, unless a keyframe arrives first.
//! - **Simulcast**: per subscriber, the preferred layer while it flows, else the flowing layer
//!   with the highest measured bitrate; switches happen on a keyframe of the new layer, with
//!   RTP time rebased so the subscriber sees one continuous stream.
//! - **Sinks**: [`FrameSink`]s (the recorder) see every frame of every published track.

mod connection;
mod forward;
mod lifecycle;
mod sink;
mod track;

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use str0m::Rtc;
use str0m::change::SdpPendingOffer;
use str0m::media::{KeyframeRequestKind, MediaData, MediaKind, MediaTime, Mid, Rid};
use str0m::net::Transmit;

pub use sink::{FrameSink, SinkFrame, SinkTrack};
use track::{PublishedTrack, TrackKey};

use crate::signal::{TrackInfo, TrackKind};
use crate::subscribe_rules::SubscribeRules;

/// How often the room runs its own timers (keyframe flushes, joins that never connect, empty
/// rooms). Bounds how late a coalesced keyframe request can leave.
const HOUSEKEEPING_EVERY: Duration = Duration::from_millis(100);
/// How often simulcast layer choices are revisited.
const LAYER_CHECK_EVERY: Duration = Duration::from_millis(500);
/// A simulcast layer without frames for this long counts as stopped.
const LAYER_INACTIVE_AFTER: Duration = Duration::from_millis(1500);
/// How often a subscription that waits for a keyframe asks again.
const KEYFRAME_RETRY: Duration = Duration::from_secs(1);
/// Track names are cut to this many bytes.
const MAX_TRACK_NAME_LEN: usize = 128;
/// The str0m instance of a departing participant gets this many polls to flush its DTLS
/// close_notify and RTCP BYE.
const CLOSE_DRAIN_POLLS: usize = 64;

/// DTLS versions the room speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DtlsChoice {
    /// DTLS 1.2 only (str0m's default, and what aiortc speaks).
    #[default]
    Dtls12,
    /// DTLS 1.3 only.
    Dtls13,
    /// Whatever the peer's ClientHello asks for (when the room is the DTLS server).
    Auto,
}

/// Room settings fixed at creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomConfig {
    /// `RM…` SID, for logs and stats.
    pub room_sid: String,
    /// Participants admitted at once (Twilio's `MaxParticipants`); more are refused with 53105.
    pub max_participants: usize,
    /// Tracks published at once in the room; more are refused with 53203.
    pub max_published_tracks: usize,
    /// Answer as an ICE-lite agent (the room has public host candidates and never checks).
    pub ice_lite: bool,
    /// DTLS versions offered.
    pub dtls: DtlsChoice,
    /// At most one keyframe request per publisher track layer in this interval.
    pub keyframe_request_interval: Duration,
    /// A participant whose ICE + DTLS is not up this long after joining is dropped.
    pub connect_timeout: Duration,
    /// A participant whose ICE connection stays lost this long is dropped.
    pub reconnect_grace: Duration,
    /// Twilio's `MaxParticipantDuration`.
    pub max_participant_duration: Option<Duration>,
    /// Twilio's `EmptyRoomTimeout`: end the room this long after the last participant left.
    pub empty_room_timeout: Option<Duration>,
    /// Twilio's `UnusedRoomTimeout`: end the room this long after creation if nobody joined.
    pub unused_room_timeout: Option<Duration>,
}

impl RoomConfig {
    /// Defaults for a group room (Twilio's where it has them).
    pub fn new(room_sid: impl Into<String>) -> Self {
        Self {
            room_sid: room_sid.into(),
            max_participants: 50,
            max_published_tracks: 128,
            ice_lite: false,
            dtls: DtlsChoice::Dtls12,
            keyframe_request_interval: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(30),
            reconnect_grace: Duration::from_secs(10),
            max_participant_duration: Some(Duration::from_secs(14_400)),
            empty_room_timeout: None,
            unused_room_timeout: None,
        }
    }
}

/// One input to the room.
#[derive(Debug)]
pub enum Input<'a> {
    /// A UDP datagram arrived on one of the room's sockets.
    Receive {
        /// When it was read.
        at: Instant,
        /// Sender.
        source: SocketAddr,
        /// The room socket it arrived on.
        destination: SocketAddr,
        /// Its bytes.
        contents: &'a [u8],
    },
    /// Time passed (the deadline of an [`Output::Timeout`], or later).
    Timeout(Instant),
    /// A request from the control plane.
    Command(Instant, Command),
}

/// A control-plane request the room acts on. Failures come back as [`RoomEvent::Error`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Admit a participant (its token already verified) with its SDP offer.
    Join {
        /// `PA…` SID.
        participant_sid: String,
        /// Identity from the token.
        identity: String,
        /// SDP offer.
        offer: String,
        /// Receive the other participants' tracks.
        subscribe: bool,
        /// Accept room offers (else only offered `recvonly` m-lines carry subscriptions).
        renegotiate: bool,
    },
    /// A participant's renegotiation offer.
    Offer {
        /// Whose.
        participant_sid: String,
        /// SDP.
        sdp: String,
    },
    /// A participant's answer to the room's offer.
    Answer {
        /// Whose.
        participant_sid: String,
        /// SDP.
        sdp: String,
    },
    /// A trickled remote candidate (`candidate:…`, with or without `a=`).
    Candidate {
        /// Whose.
        participant_sid: String,
        /// The candidate line.
        candidate: String,
    },
    /// A subscriber's simulcast preference for a track.
    SelectLayer {
        /// The subscriber.
        participant_sid: String,
        /// `MT…` SID.
        track_sid: String,
        /// Wanted rid, `None` for the default.
        layer: Option<String>,
    },
    /// The participant left.
    Leave {
        /// Who.
        participant_sid: String,
    },
    /// Remove the participant.
    Kick {
        /// Who.
        participant_sid: String,
    },
    /// Replace the participant's subscribe rules: tracks they no longer include stop being
    /// forwarded to it at once ([`RoomEvent::TrackUnsubscribed`], then a room offer stopping
    /// their m-lines), tracks they now include are subscribed as a new publisher's are.
    SubscribeRules {
        /// Whose.
        participant_sid: String,
        /// The rules, already checked.
        rules: SubscribeRules,
    },
    /// End the room.
    Complete,
}

/// What the room wants done.
#[derive(Debug)]
pub enum Output {
    /// Send this datagram from `source` (one of the room's sockets) to `destination`.
    Transmit(Transmit),
    /// Tell the control plane.
    Event(RoomEvent),
    /// Nothing more now; call [`Room::handle_input`] with [`Input::Timeout`] at this instant
    /// (or earlier with other input).
    Timeout(Instant),
}

/// Why a participant left the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisconnectReason {
    /// It said so, or closed its DTLS connection.
    Left,
    /// The control plane removed it.
    Kicked,
    /// A newer participant joined with the same identity.
    DuplicateIdentity,
    /// ICE and DTLS did not come up within [`RoomConfig::connect_timeout`].
    ConnectTimeout,
    /// Its ICE connection stayed lost beyond [`RoomConfig::reconnect_grace`].
    MediaTimeout,
    /// Its connection failed (DTLS error, fingerprint mismatch, SRTP failure).
    MediaFailed,
    /// Its answer to a room offer could not be applied.
    NegotiationFailed,
    /// It stayed longer than [`RoomConfig::max_participant_duration`].
    MaxDurationExceeded,
    /// The room ended.
    RoomEnded,
}

impl DisconnectReason {
    /// Twilio's error code for the reason, where Twilio has one.
    pub fn twilio_code(self) -> Option<u32> {
        match self {
            Self::Left | Self::Kicked | Self::MaxDurationExceeded => None,
            Self::DuplicateIdentity => Some(53205),
            Self::ConnectTimeout | Self::MediaTimeout | Self::MediaFailed => Some(53405),
            Self::NegotiationFailed => Some(53403),
            Self::RoomEnded => Some(53118),
        }
    }
}

/// Why the room ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomEndReason {
    /// [`Command::Complete`].
    Completed,
    /// Empty for [`RoomConfig::empty_room_timeout`].
    EmptyRoomTimeout,
    /// Nobody joined within [`RoomConfig::unused_room_timeout`].
    UnusedRoomTimeout,
}

/// Something the control plane needs to know or relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomEvent {
    /// The answer to a participant's offer (join or renegotiation).
    Answer {
        /// For whom.
        participant_sid: String,
        /// SDP.
        sdp: String,
    },
    /// A room offer for a participant.
    Offer {
        /// For whom.
        participant_sid: String,
        /// SDP.
        sdp: String,
    },
    /// ICE and DTLS are up.
    ParticipantConnected {
        /// Who.
        participant_sid: String,
        /// Identity.
        identity: String,
    },
    /// The participant is gone (its tracks were unpublished just before).
    ParticipantDisconnected {
        /// Who.
        participant_sid: String,
        /// Identity.
        identity: String,
        /// Why.
        reason: DisconnectReason,
    },
    /// A track was published.
    TrackPublished {
        /// Publisher.
        participant_sid: String,
        /// The track.
        track: TrackInfo,
    },
    /// A track was unpublished.
    TrackUnpublished {
        /// Publisher.
        participant_sid: String,
        /// `MT…` SID.
        track_sid: String,
    },
    /// A subscriber's m-line for a track is negotiated; media flows from its next keyframe.
    TrackSubscribed {
        /// Subscriber.
        participant_sid: String,
        /// Publisher.
        publisher_sid: String,
        /// `MT…` SID.
        track_sid: String,
    },
    /// A subscription ended.
    TrackUnsubscribed {
        /// Subscriber.
        participant_sid: String,
        /// `MT…` SID.
        track_sid: String,
    },
    /// A command failed.
    Error {
        /// The participant concerned.
        participant_sid: Option<String>,
        /// Twilio error code.
        code: u32,
        /// For people.
        message: String,
    },
    /// The room ended; every participant was disconnected first.
    RoomEnded {
        /// Why.
        reason: RoomEndReason,
    },
}

/// The room could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoomSetupError {
    /// No UDP address to offer as a candidate.
    #[error("a room needs at least one UDP address for its ICE candidates")]
    NoAddresses,
    /// An address cannot be a host candidate (unspecified or port 0).
    #[error(
        "{0} cannot be a host ICE candidate: bind the room's socket to a concrete IP and port \
         first"
    )]
    UnusableAddress(SocketAddr),
}

/// Counters and state for `stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RoomStats {
    /// `RM…` SID.
    pub room_sid: String,
    /// Whether the room has ended.
    pub ended: bool,
    /// Participants now in the room.
    pub participants: Vec<ParticipantStats>,
    /// Tracks now published.
    pub tracks: Vec<TrackStats>,
    /// Frames written to subscriber connections.
    pub forwarded_frames: u64,
    /// Bytes of those frames.
    pub forwarded_bytes: u64,
    /// Frames handed to sinks.
    pub sink_frames: u64,
    /// Datagrams that no participant accepted.
    pub datagrams_unmatched: u64,
    /// Datagrams that were neither STUN, DTLS, RTP nor RTCP.
    pub datagrams_invalid: u64,
}

/// One participant in [`RoomStats`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantStats {
    /// `PA…` SID.
    pub sid: String,
    /// Identity.
    pub identity: String,
    /// ICE + DTLS up.
    pub connected: bool,
    /// Frames received from it.
    pub frames_in: u64,
    /// `MT…` SIDs it publishes.
    pub published: Vec<String>,
    /// What it receives.
    pub subscriptions: Vec<SubscriptionStats>,
}

/// One subscription in [`ParticipantStats`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionStats {
    /// `MT…` SID.
    pub track_sid: String,
    /// `PA…` SID of the publisher.
    pub publisher_sid: String,
    /// `negotiating`, `open` or `closing`.
    pub state: String,
    /// Simulcast layer being forwarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    /// Frames written.
    pub frames_out: u64,
    /// Bytes written.
    pub bytes_out: u64,
}

/// One track in [`RoomStats`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackStats {
    /// `MT…` SID.
    pub sid: String,
    /// Publisher.
    pub participant_sid: String,
    /// Audio or video.
    pub kind: TrackKind,
    /// Name.
    pub name: String,
    /// Simulcast layers seen (rids).
    pub layers: Vec<String>,
    /// Frames received.
    pub frames_in: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Keyframe requests for this track (from subscribers and the room).
    pub keyframe_requests_in: u64,
    /// Requests sent to the publisher.
    pub keyframe_requests_sent: u64,
    /// Requests folded into another by the throttle.
    pub keyframe_requests_coalesced: u64,
}

/// Stable handle of a participant inside one room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ParticipantKey(pub(crate) u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SubState {
    /// Needs an m-line in the next room offer.
    ToOpen,
    /// In the outstanding room offer.
    Negotiating(Mid),
    /// Negotiated: frames flow.
    Open(Mid),
    /// Its track ended; the m-line must be stopped in the next room offer.
    ToStop(Mid),
    /// Being stopped in the outstanding room offer.
    NegotiatingStop(Mid),
}

/// Maps a publisher's RTP time onto the subscriber's continuous timeline: the identity until a
/// simulcast layer switch, then shifted so the new layer continues where the old one left off.
#[derive(Debug, Default)]
struct TimeMap {
    offset: i128,
    last: Option<(i128, Instant)>,
}

impl TimeMap {
    fn map(&mut self, time: MediaTime, received_at: Instant, rebase: bool) -> MediaTime {
        let numer = i128::from(time.numer());
        if rebase && let Some((last_out, last_at)) = self.last {
            let elapsed = received_at.saturating_duration_since(last_at);
            let ticks = elapsed.as_micros() as i128 * i128::from(time.denom()) / 1_000_000;
            self.offset = last_out + ticks.max(1) - numer;
        }
        let out = (numer + self.offset).max(0);
        self.last = Some((out, received_at));
        MediaTime::new(u64::try_from(out).unwrap_or(0), time.frequency())
    }
}

#[derive(Debug)]
struct Subscription {
    track: TrackKey,
    track_sid: String,
    publisher_sid: String,
    kind: MediaKind,
    state: SubState,
    /// Fills a `recvonly` m-line the participant offered (no renegotiation).
    in_offered_slot: bool,
    /// The subscribe rules dropped it while its m-line was being offered: the answer stops
    /// that m-line instead of opening it.
    dropped: bool,
    preferred_layer: Option<Rid>,
    /// The layer being forwarded; `None` before the first keyframe.
    current_layer: Option<Option<Rid>>,
    /// The layer to switch to at its next keyframe.
    target_layer: Option<Option<Rid>>,
    needs_keyframe: bool,
    keyframe_asked_at: Option<Instant>,
    time: TimeMap,
    frames_out: u64,
    bytes_out: u64,
}

impl Subscription {
    fn new(track: &PublishedTrack, state: SubState) -> Self {
        Self {
            track: track.key,
            track_sid: track.sid.clone(),
            publisher_sid: track.owner_sid.clone(),
            kind: track.kind,
            state,
            in_offered_slot: false,
            dropped: false,
            preferred_layer: None,
            current_layer: None,
            target_layer: if track.simulcast { None } else { Some(None) },
            needs_keyframe: track.kind == MediaKind::Video,
            keyframe_asked_at: None,
            time: TimeMap::default(),
            frames_out: 0,
            bytes_out: 0,
        }
    }

    /// Whether this frame goes to the subscriber, and whether it starts a new layer.
    fn admit(&mut self, rid: Option<Rid>, keyframe: bool) -> Admit {
        if self.kind != MediaKind::Video {
            return Admit::Forward { switched: false };
        }
        let on_current = self.current_layer == Some(rid);
        let on_target = self.target_layer == Some(rid);
        if on_target && (!on_current || self.needs_keyframe) {
            // Starting, restarting or switching to this layer: only at one of its keyframes.
            if !keyframe {
                return Admit::WaitForKeyframe;
            }
            let switched = self.current_layer.is_some_and(|c| c != rid);
            self.current_layer = Some(rid);
            self.needs_keyframe = false;
            self.keyframe_asked_at = None;
            return Admit::Forward { switched };
        }
        if on_current && !self.needs_keyframe {
            // The layer in use (also while a switch waits for the new layer's keyframe).
            return Admit::Forward { switched: false };
        }
        if on_current && keyframe && self.target_layer.is_none() {
            self.needs_keyframe = false;
            return Admit::Forward { switched: false };
        }
        Admit::Skip
    }

    fn state_name(&self) -> &'static str {
        match self.state {
            SubState::ToOpen | SubState::Negotiating(_) => "negotiating",
            SubState::Open(_) => "open",
            SubState::ToStop(_) | SubState::NegotiatingStop(_) => "closing",
        }
    }
}

enum Admit {
    Forward { switched: bool },
    WaitForKeyframe,
    Skip,
}

struct Participant {
    key: ParticipantKey,
    sid: String,
    identity: String,
    rtc: Rtc,
    joined_at: Instant,
    connected_at: Option<Instant>,
    ice_lost_since: Option<Instant>,
    next_timeout: Instant,
    pending_offer: Option<SdpPendingOffer>,
    needs_negotiation: bool,
    subscribe: bool,
    renegotiate: bool,
    /// Which other participants' tracks it receives (Twilio's SubscribeRules).
    rules: SubscribeRules,
    subscriptions: Vec<Subscription>,
    /// `recvonly` m-lines the participant offered that carry no subscription yet.
    free_slots: Vec<(Mid, MediaKind)>,
    removal: Option<(DisconnectReason, bool)>,
    frames_in: u64,
}

impl fmt::Debug for Participant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Participant")
            .field("sid", &self.sid)
            .field("connected", &self.connected_at.is_some())
            .field("subscriptions", &self.subscriptions.len())
            .finish_non_exhaustive()
    }
}

impl Participant {
    fn remove(&mut self, reason: DisconnectReason, graceful: bool) {
        if self.removal.is_none() {
            self.removal = Some((reason, graceful));
        }
    }

    fn is_active(&self) -> bool {
        self.removal.is_none()
    }
}

/// Work that crosses participants, queued so each `Rtc` is drained before the next is mutated.
// Frames travel by value: boxing them would cost an allocation per frame, and the queue's
// buffer is reused, so the variant size only sets its (small) capacity in bytes.
#[allow(clippy::large_enum_variant)]
enum Work {
    /// A frame from `publisher` to forward.
    Media {
        publisher: ParticipantKey,
        data: MediaData,
    },
    /// A subscriber asked for a keyframe on its m-line `mid`.
    SubscriberKeyframeRequest {
        subscriber: ParticipantKey,
        mid: Mid,
        kind: KeyframeRequestKind,
    },
    /// The room wants a keyframe on a track layer (new subscriber, layer switch).
    WantKeyframe { track: TrackKey, layer: Option<Rid> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RoomState {
    Open,
    Ended,
}

/// A video room. See the module docs.
pub struct Room {
    config: RoomConfig,
    local_addrs: Vec<SocketAddr>,
    participants: Vec<Participant>,
    tracks: Vec<PublishedTrack>,
    outputs: VecDeque<Output>,
    work: VecDeque<Work>,
    sinks: Vec<Box<dyn FrameSink + Send>>,
    /// Reused buffer for keyframe requests that come due in housekeeping.
    due_keyframes: Vec<(ParticipantKey, Mid, Option<Rid>, KeyframeRequestKind)>,
    next_key: u64,
    now: Instant,
    created_at: Instant,
    next_housekeeping: Instant,
    next_layer_check: Instant,
    empty_since: Option<Instant>,
    ever_joined: bool,
    last_matched: usize,
    state: RoomState,
    stats: RoomCounters,
}

#[derive(Debug, Default)]
struct RoomCounters {
    forwarded_frames: u64,
    forwarded_bytes: u64,
    sink_frames: u64,
    datagrams_unmatched: u64,
    datagrams_invalid: u64,
}

impl fmt::Debug for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Room")
            .field("room_sid", &self.config.room_sid)
            .field("participants", &self.participants)
            .field("tracks", &self.tracks.len())
            .field("ended", &(self.state == RoomState::Ended))
            .finish_non_exhaustive()
    }
}

fn error_event(participant_sid: Option<&str>, code: u32, message: impl Into<String>) -> Output {
    Output::Event(RoomEvent::Error {
        participant_sid: participant_sid.map(str::to_owned),
        code,
        message: message.into(),
    })
}

fn track_kind(kind: MediaKind) -> TrackKind {
    match kind {
        MediaKind::Audio => TrackKind::Audio,
        MediaKind::Video => TrackKind::Video,
    }
}

/// `MT` + 32 hex digits, like Twilio's track SIDs.
fn new_track_sid() -> String {
    let mut bytes = [0u8; 16];
    // The system RNG failing is not something a room can recover from sensibly; fall back to
    // zeros plus the key so SIDs stay unique within the room.
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    let mut sid = String::with_capacity(34);
    sid.push_str("MT");
    for b in bytes {
        sid.push_str(&format!("{b:02x}"));
    }
    sid
}

fn truncate_to(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

impl Room {
    /// A room whose media uses the UDP sockets bound at `local_addrs` (each becomes a host ICE
    /// candidate of every participant).
    pub fn new(
        config: RoomConfig,
        local_addrs: &[SocketAddr],
        now: Instant,
    ) -> Result<Self, RoomSetupError> {
        if local_addrs.is_empty() {
            return Err(RoomSetupError::NoAddresses);
        }
        if let Some(bad) = local_addrs
            .iter()
            .find(|a| a.ip().is_unspecified() || a.port() == 0)
        {
            return Err(RoomSetupError::UnusableAddress(*bad));
        }
        Ok(Self {
            config,
            local_addrs: local_addrs.to_vec(),
            participants: Vec::new(),
            tracks: Vec::new(),
            outputs: VecDeque::with_capacity(256),
            work: VecDeque::with_capacity(64),
            sinks: Vec::new(),
            due_keyframes: Vec::new(),
            next_key: 1,
            now,
            created_at: now,
            next_housekeeping: now + HOUSEKEEPING_EVERY,
            next_layer_check: now + LAYER_CHECK_EVERY,
            empty_since: None,
            ever_joined: false,
            last_matched: 0,
            state: RoomState::Open,
            stats: RoomCounters::default(),
        })
    }

    /// The settings the room was created with.
    pub fn config(&self) -> &RoomConfig {
        &self.config
    }

    /// Adds a sink that sees every frame of every published track from now on (tracks already
    /// published are announced to it first).
    pub fn add_sink(&mut self, mut sink: Box<dyn FrameSink + Send>) {
        for t in &self.tracks {
            let identity = self
                .participants
                .iter()
                .find(|p| p.key == t.owner)
                .map_or("", |p| p.identity.as_str());
            sink.track_started(SinkTrack {
                track_sid: &t.sid,
                participant_sid: &t.owner_sid,
                identity,
                kind: track_kind(t.kind),
                name: &t.name,
            });
        }
        self.sinks.push(sink);
    }

    /// Asks the publisher of video track `track_sid` for a keyframe on each of its layers
    /// (throttled like every request): a recording that starts mid-stream begins at one.
    /// Unknown and audio tracks are ignored. Drain [`Room::poll_output`] afterwards.
    pub fn request_track_keyframe(&mut self, now: Instant, track_sid: &str) {
        self.advance(now);
        if let Some(track) = self
            .tracks
            .iter()
            .find(|t| t.sid == track_sid && t.kind == MediaKind::Video)
        {
            for layer in &track.layers {
                self.work.push_back(Work::WantKeyframe {
                    track: track.key,
                    layer: layer.rid,
                });
            }
        }
        self.settle();
    }

    /// Whether the room has ended (after [`RoomEvent::RoomEnded`]).
    pub fn is_ended(&self) -> bool {
        self.state == RoomState::Ended
    }

    /// Participants in the room (connected or still connecting).
    pub fn participant_count(&self) -> usize {
        self.participants.iter().filter(|p| p.is_active()).count()
    }

    /// Feeds one input. Drain [`Room::poll_output`] afterwards.
    pub fn handle_input(&mut self, input: Input<'_>) {
        match input {
            Input::Receive {
                at,
                source,
                destination,
                contents,
            } => {
                self.advance(at);
                self.on_datagram(at, source, destination, contents);
            }
            Input::Timeout(now) => {
                self.advance(now);
                self.on_timeout();
            }
            Input::Command(now, command) => {
                self.advance(now);
                self.on_command(command);
            }
        }
        self.settle();
    }

    /// The next thing to do. After [`Output::Timeout`] nothing more comes until the next input.
    pub fn poll_output(&mut self) -> Output {
        if let Some(output) = self.outputs.pop_front() {
            return output;
        }
        if self.state == RoomState::Ended {
            return Output::Timeout(self.now + Duration::from_secs(3600));
        }
        let next = self
            .participants
            .iter()
            .map(|p| p.next_timeout)
            .fold(self.next_housekeeping, Instant::min);
        Output::Timeout(next)
    }

    /// Counters and the current participants, tracks and subscriptions.
    pub fn stats(&self) -> RoomStats {
        RoomStats {
            room_sid: self.config.room_sid.clone(),
            ended: self.state == RoomState::Ended,
            participants: self
                .participants
                .iter()
                .map(|p| ParticipantStats {
                    sid: p.sid.clone(),
                    identity: p.identity.clone(),
                    connected: p.connected_at.is_some(),
                    frames_in: p.frames_in,
                    published: self
                        .tracks
                        .iter()
                        .filter(|t| t.owner == p.key)
                        .map(|t| t.sid.clone())
                        .collect(),
                    subscriptions: p
                        .subscriptions
                        .iter()
                        .map(|s| SubscriptionStats {
                            track_sid: s.track_sid.clone(),
                            publisher_sid: s.publisher_sid.clone(),
                            state: s.state_name().to_owned(),
                            layer: s.current_layer.flatten().map(|r| r.to_string()),
                            frames_out: s.frames_out,
                            bytes_out: s.bytes_out,
                        })
                        .collect(),
                })
                .collect(),
            tracks: self
                .tracks
                .iter()
                .map(|t| TrackStats {
                    sid: t.sid.clone(),
                    participant_sid: t.owner_sid.clone(),
                    kind: track_kind(t.kind),
                    name: t.name.clone(),
                    layers: t
                        .layers
                        .iter()
                        .filter_map(|l| l.rid.map(|r| r.to_string()))
                        .collect(),
                    frames_in: t.frames_in,
                    bytes_in: t.bytes_in,
                    keyframe_requests_in: t.keyframe_requests_in,
                    keyframe_requests_sent: t.keyframe_requests_sent,
                    keyframe_requests_coalesced: t.keyframe_requests_coalesced,
                })
                .collect(),
            forwarded_frames: self.stats.forwarded_frames,
            forwarded_bytes: self.stats.forwarded_bytes,
            sink_frames: self.stats.sink_frames,
            datagrams_unmatched: self.stats.datagrams_unmatched,
            datagrams_invalid: self.stats.datagrams_invalid,
        }
    }

    fn advance(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
    }

    fn index_of(&self, key: ParticipantKey) -> Option<usize> {
        self.participants.iter().position(|p| p.key == key)
    }

    fn index_of_sid(&self, sid: &str) -> Option<usize> {
        self.participants
            .iter()
            .position(|p| p.is_active() && p.sid == sid)
    }

    fn emit(&mut self, event: RoomEvent) {
        self.outputs.push_back(Output::Event(event));
    }

    /// Runs the follow-ups every input needs: cross-participant work, departures, offers.
    fn settle(&mut self) {
        self.process_work();
        self.sweep();
        self.negotiate();
        self.process_work();
    }
}
