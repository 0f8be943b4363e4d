//! The media relay core of one call: two legs, each with its own SRTP keys.
//!
//! Sans-IO: the IO shell owns the UDP sockets (two per leg, RTP and RTCP) and a clock. It hands
//! each datagram to [`RelayCall::handle_packet`] in a buffer with room for an SRTP trailer and
//! gets back what to send, written into the same buffer. Timers (prompt playout, RTCP reports,
//! silence detection) are polled with [`RelayCall::poll_timeout`] /
//! [`RelayCall::handle_timeout`] / [`RelayCall::poll_transmit`].
//!
//! Per packet on a secure leg:
//!
//! 1. authenticate and decrypt with the leg's inbound session (forged, unencrypted and
//!    replayed packets fail here: dropped and counted, nothing else changes);
//! 2. latch the peer's address (only now: an unauthenticated packet never moves it);
//! 3. read the RTP header: audio (the leg's G.711 payload type) or telephone-event; anything
//!    else is dropped;
//! 4. DTMF detection (caller leg), the recording tap and silence detection on decoded PCM;
//! 5. if the call is bridged: rewrite SSRC, sequence number, timestamp and payload type for
//!    the other leg's stream and encrypt with the other leg's outbound session.
//!
//! Nothing is passed through: the two legs never share a key, and every forwarded packet was
//! decrypted and re-encrypted here. RTCP is terminated: incoming SRTCP is authenticated and
//! counted (32-bit tags are accepted on `_32` legs, as baresip sends them), and each leg gets
//! its own sender reports, always with 80-bit SRTCP tags.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mediaseal_srtp::negotiate::SrtpKeys;
use mediaseal_srtp::{
    InboundSession, MAX_TRAILER_LEN, OutboundSession, SessionConfig, SessionError, UnprotectError,
};
use mediaseal_twiml::Repeat;

use crate::dtmf::{DtmfDetector, DtmfGenerator, DtmfStep};
use crate::g711::Law;
use crate::recording::{FrameSink, TapFrame, TapTracks, Track};
use crate::rtp::{self, RtpHeader};

/// Samples per 20 ms packet.
const FRAME: usize = 160;
/// Packetisation interval of generated audio.
const PTIME: Duration = Duration::from_millis(20);
/// Interval between RTCP sender reports per leg.
const RTCP_INTERVAL: Duration = Duration::from_secs(5);
/// Mean absolute amplitude above which a caller frame counts as speech (about -40 dBFS).
const SPEECH_LEVEL: u32 = 300;
/// A tap frame whose RTP-derived position drifts further than this from the wall clock is
/// re-anchored (a new SSRC, a timestamp jump, or a hostile timestamp).
const MAX_TAP_DRIFT: i64 = 8000;

/// One side of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Leg A: the caller.
    Caller,
    /// Leg B: the party dialled.
    Callee,
}

impl Side {
    /// The other leg.
    pub fn other(self) -> Self {
        match self {
            Self::Caller => Self::Callee,
            Self::Callee => Self::Caller,
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Caller => 0,
            Self::Callee => 1,
        }
    }

    fn track(self) -> Track {
        match self {
            Self::Caller => Track::Caller,
            Self::Callee => Track::Callee,
        }
    }
}

/// Which socket of a leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    /// The RTP port (also RTCP with rtcp-mux).
    Rtp,
    /// The RTCP port (RTP port + 1).
    Rtcp,
}

/// What a leg carries, from the SDP offer/answer.
#[derive(Debug, Clone)]
pub struct LegSetup {
    /// SRTP keys (ours for sending, the peer's for receiving); `None` for plain RTP.
    pub srtp: Option<SrtpKeys>,
    /// Where the peer said to send RTP (used until a packet latches the real address).
    pub remote_rtp: Option<SocketAddr>,
    /// Where the peer said to send RTCP (`a=rtcp`, else RTP port + 1).
    pub remote_rtcp: Option<SocketAddr>,
    /// RTP and RTCP share the RTP port.
    pub rtcp_mux: bool,
    /// The G.711 law of the audio payload type.
    pub law: Law,
    /// The audio payload type on this leg.
    pub payload_type: u8,
    /// The telephone-event payload type on this leg, if negotiated.
    pub telephone_event: Option<u8>,
}

/// Something a [`RelayCall`] tells the call layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEvent {
    /// A DTMF key from the caller (RFC 4733, authenticated).
    Digit(char),
    /// The prompts given to [`RelayCall::play`] finished.
    PlaybackDone,
    /// The caller was silent for the time given to [`RelayCall::arm_silence`].
    SilenceElapsed,
}

/// Datagram to send, written at the start of the buffer given to the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// The leg whose sockets send it.
    pub side: Side,
    /// The socket.
    pub component: Component,
    /// The destination.
    pub destination: SocketAddr,
    /// Bytes to send from the start of the buffer.
    pub len: usize,
}

/// Why a packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The leg has no keys or codec yet.
    Unconfigured,
    /// SRTP/SRTCP authentication failed: a forgery, the wrong key, or plain RTP on a secure leg.
    AuthenticationFailed,
    /// A replayed SRTP/SRTCP packet (or one behind the replay window).
    Replayed,
    /// Not RTP/RTCP, or a malformed header.
    Malformed,
    /// Plain RTP from an address other than the one latched.
    ForeignSource,
    /// A payload type the leg did not negotiate.
    UnknownPayloadType,
    /// Nowhere to send it (not bridged, or the other leg has no address).
    NotForwarded,
    /// Re-encryption failed (buffer too small, key exhausted).
    ProtectFailed,
}

/// What happened to one received packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketOutcome {
    /// Send the re-encrypted packet.
    Forward(Transmit),
    /// Authenticated and used here (RTCP, audio while not bridged, DTMF for `<Gather>`).
    Consumed,
    /// Dropped.
    Dropped(DropReason),
}

/// Counters of one call since the last [`RelayCall::take_counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayCounters {
    /// Datagrams received.
    pub received: u64,
    /// Packets re-encrypted and forwarded to the other leg.
    pub forwarded: u64,
    /// Packets generated here (prompts, DTMF, RTCP reports).
    pub generated: u64,
    /// SRTP/SRTCP authentication failures (forged, wrong key, plain RTP on a secure leg).
    pub auth_failures: u64,
    /// Replayed or too old SRTP/SRTCP packets.
    pub replays: u64,
    /// Other drops (malformed, unconfigured, foreign source, unknown payload type).
    pub other_drops: u64,
    /// Frames handed to the recording tap.
    pub tap_frames: u64,
    /// Frames the tap's queue refused (full): dropped, audio unaffected.
    pub tap_dropped: u64,
    /// DTMF keys detected.
    pub digits: u64,
}

impl RelayCounters {
    fn count_drop(&mut self, reason: DropReason) {
        match reason {
            DropReason::AuthenticationFailed => self.auth_failures += 1,
            DropReason::Replayed => self.replays += 1,
            DropReason::NotForwarded => {}
            _ => self.other_drops += 1,
        }
    }

    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &Self) {
        self.received += other.received;
        self.forwarded += other.forwarded;
        self.generated += other.generated;
        self.auth_failures += other.auth_failures;
        self.replays += other.replays;
        self.other_drops += other.other_drops;
        self.tap_frames += other.tap_frames;
        self.tap_dropped += other.tap_dropped;
        self.digits += other.digits;
    }
}

/// A prompt for the caller, ready to play.
#[derive(Debug, Clone)]
pub enum PromptAudio {
    /// 8 kHz mono PCM (a decoded `<Play>` file, synthesised `<Say>` text, a beep).
    Pcm(Arc<[i16]>),
    /// DTMF to send as RFC 4733 events (`<Play digits>`; `w` = 0.5 s).
    Digits(String),
    /// Silence (`<Pause>` inside `<Gather>`).
    Silence(Duration),
}

/// The output stream toward one leg's peer: our SSRC and the mapping of whatever source feeds
/// it (the other leg's SSRC, or the prompt player) onto one continuous sequence/timestamp space.
#[derive(Debug, Clone)]
struct OutStream {
    ssrc: u32,
    source: Option<u64>,
    seq_delta: u16,
    ts_delta: u32,
    last_seq: u16,
    last_ts: u32,
    started: bool,
    packets: u32,
    octets: u32,
}

/// Source id of the prompt player (SSRCs are 32-bit, so this never collides).
const PLAYER_SOURCE: u64 = 1 << 40;

impl OutStream {
    fn new(ssrc: u32, seq: u16, ts: u32) -> Self {
        Self {
            ssrc,
            source: None,
            seq_delta: 0,
            ts_delta: 0,
            last_seq: seq.wrapping_sub(1),
            last_ts: ts.wrapping_sub(FRAME as u32),
            started: false,
            packets: 0,
            octets: 0,
        }
    }

    /// Maps an incoming (seq, ts) of `source`; returns (marker, seq, ts). A new source
    /// continues right after the last packet sent, with the marker set.
    fn map(&mut self, source: u64, seq: u16, ts: u32) -> (bool, u16, u32) {
        let switched = self.source != Some(source);
        if switched {
            self.source = Some(source);
            self.seq_delta = self.last_seq.wrapping_add(1).wrapping_sub(seq);
            self.ts_delta = self.last_ts.wrapping_add(FRAME as u32).wrapping_sub(ts);
        }
        let out_seq = seq.wrapping_add(self.seq_delta);
        let out_ts = ts.wrapping_add(self.ts_delta);
        if !self.started || (out_seq.wrapping_sub(self.last_seq) as i16) > 0 {
            self.last_seq = out_seq;
            self.last_ts = out_ts;
        }
        self.started = true;
        (switched, out_seq, out_ts)
    }
}

/// Where a track's frames go on the recording timeline.
#[derive(Debug, Clone, Copy, Default)]
struct TrackClock {
    /// (SSRC, RTP timestamp, position) of the anchor frame.
    anchor: Option<(u32, u32, u64)>,
}

impl TrackClock {
    fn position(&mut self, ssrc: u32, ts: u32, wall: u64) -> u64 {
        if let Some((a_ssrc, a_ts, a_pos)) = self.anchor
            && a_ssrc == ssrc
        {
            let delta = i64::from(ts.wrapping_sub(a_ts) as i32);
            let pos = a_pos as i64 + delta;
            if pos >= 0 && (pos - wall as i64).abs() <= MAX_TAP_DRIFT {
                return pos as u64;
            }
        }
        self.anchor = Some((ssrc, ts, wall));
        wall
    }
}

struct Tap {
    sink: Box<dyn FrameSink>,
    tracks: TapTracks,
    start: Instant,
    clocks: [TrackClock; 2],
}

impl core::fmt::Debug for Tap {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Tap")
            .field("tracks", &self.tracks)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Leg {
    setup: LegSetup,
    inbound: Option<InboundSession>,
    outbound: Option<OutboundSession>,
    latched_rtp: Option<SocketAddr>,
    latched_rtcp: Option<SocketAddr>,
    out: OutStream,
    dtmf: DtmfDetector,
    next_report: Instant,
}

impl Leg {
    fn rtp_destination(&self) -> Option<SocketAddr> {
        self.latched_rtp.or(self.setup.remote_rtp)
    }

    fn rtcp_destination(&self) -> Option<(Component, SocketAddr)> {
        if self.setup.rtcp_mux {
            return self.rtp_destination().map(|a| (Component::Rtp, a));
        }
        let addr = self.latched_rtcp.or(self.setup.remote_rtcp).or_else(|| {
            self.rtp_destination()
                .map(|a| SocketAddr::new(a.ip(), a.port().wrapping_add(1)))
        })?;
        Some((Component::Rtcp, addr))
    }
}

#[derive(Debug)]
enum PlayItem {
    Pcm { audio: Arc<[i16]>, repeat: Repeat },
    Digits(DtmfGenerator),
    Silence { ticks: u32 },
}

#[derive(Debug)]
struct Player {
    items: VecDeque<PlayItem>,
    /// Position in the current PCM item; completed loops of it.
    offset: usize,
    loops: u32,
    next_tick: Instant,
    seq: u16,
    ts: u32,
    digits_start: Option<u32>,
}

#[derive(Debug, Clone, Copy)]
struct Silence {
    timeout: Duration,
    last_speech: Instant,
}

/// Settings of a [`RelayCall`].
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// SRTP session settings for both legs.
    pub session: SessionConfig,
    /// Wall-clock time (since the Unix epoch) at `started`, for RTCP NTP timestamps.
    pub wallclock: Duration,
    /// The instant `wallclock` was read.
    pub started: Instant,
    /// Random values for SSRCs and initial sequence numbers (from the shell's CSPRNG).
    pub seeds: [u32; 4],
}

/// One call's media: two legs, the bridge between them, the prompt player, the DTMF detector,
/// the recording tap and silence detection.
#[derive(Debug)]
pub struct RelayCall {
    config: RelayConfig,
    legs: [Option<Leg>; 2],
    bridged: bool,
    tap: Option<Tap>,
    player: Option<Player>,
    silence: Option<Silence>,
    events: VecDeque<MediaEvent>,
    counters: RelayCounters,
    pcm: Vec<i16>,
}

impl RelayCall {
    /// A call with no legs configured yet.
    pub fn new(config: RelayConfig) -> Self {
        Self {
            config,
            legs: [None, None],
            bridged: false,
            tap: None,
            player: None,
            silence: None,
            events: VecDeque::new(),
            counters: RelayCounters::default(),
            pcm: Vec::with_capacity(FRAME * 2),
        }
    }

    /// Configures (or reconfigures) a leg. Replacing keys starts new SRTP sessions.
    pub fn set_leg(
        &mut self,
        side: Side,
        setup: LegSetup,
        now: Instant,
    ) -> Result<(), SessionError> {
        let (inbound, outbound) = match &setup.srtp {
            Some(keys) => (
                Some(InboundSession::new(&keys.inbound, &self.config.session)?),
                Some(OutboundSession::new(&keys.outbound, &self.config.session)?),
            ),
            None => (None, None),
        };
        let seeds = self.config.seeds;
        let i = side.index();
        let (ssrc, seq) = (seeds[i] | 1, (seeds[2 + i] & 0x7fff) as u16);
        let out = match self.legs[i].take() {
            Some(old) => old.out,
            None => OutStream::new(ssrc, seq, seeds[2 + i].rotate_left(16)),
        };
        self.legs[i] = Some(Leg {
            setup,
            inbound,
            outbound,
            latched_rtp: None,
            latched_rtcp: None,
            out,
            dtmf: DtmfDetector::new(),
            next_report: now + RTCP_INTERVAL,
        });
        Ok(())
    }

    /// Removes a leg (its keys are dropped and zeroized).
    pub fn remove_leg(&mut self, side: Side) {
        self.legs[side.index()] = None;
        if side == Side::Callee {
            self.bridged = false;
        }
    }

    /// Whether a leg is configured.
    pub fn has_leg(&self, side: Side) -> bool {
        self.legs[side.index()].is_some()
    }

    /// Connects (or disconnects) the two legs. Bridging stops any prompt.
    pub fn set_bridged(&mut self, bridged: bool) {
        self.bridged = bridged;
        if bridged {
            self.player = None;
        }
    }

    /// Whether the legs are connected.
    pub fn is_bridged(&self) -> bool {
        self.bridged
    }

    /// Starts handing decoded audio to `sink` (replacing any earlier tap).
    pub fn start_tap(&mut self, tracks: TapTracks, sink: Box<dyn FrameSink>, now: Instant) {
        self.tap = Some(Tap {
            sink,
            tracks,
            start: now,
            clocks: [TrackClock::default(); 2],
        });
    }

    /// Stops the tap; dropping the sink tells the consumer the recording ended.
    pub fn stop_tap(&mut self) {
        self.tap = None;
    }

    /// Whether a tap is running.
    pub fn is_tapping(&self) -> bool {
        self.tap.is_some()
    }

    /// Plays prompts to the caller, one after the other (replacing what was playing, without a
    /// [`MediaEvent::PlaybackDone`] for it), then reports [`MediaEvent::PlaybackDone`].
    pub fn play(&mut self, prompts: Vec<(PromptAudio, Repeat)>, now: Instant) {
        let items = prompts
            .into_iter()
            .map(|(p, repeat)| match p {
                PromptAudio::Pcm(audio) => PlayItem::Pcm { audio, repeat },
                PromptAudio::Digits(d) => PlayItem::Digits(DtmfGenerator::new(&d)),
                PromptAudio::Silence(d) => PlayItem::Silence {
                    ticks: u32::try_from(d.as_millis() / PTIME.as_millis()).unwrap_or(u32::MAX),
                },
            })
            .collect();
        let (seq, ts) = self.player.as_ref().map_or((0, 0), |p| (p.seq, p.ts));
        self.player = Some(Player {
            items,
            offset: 0,
            loops: 0,
            next_tick: now,
            seq,
            ts,
            digits_start: None,
        });
    }

    /// Stops the prompt without reporting [`MediaEvent::PlaybackDone`].
    pub fn stop_playback(&mut self) {
        self.player = None;
    }

    /// Whether a prompt is playing.
    pub fn is_playing(&self) -> bool {
        self.player.is_some()
    }

    /// Reports [`MediaEvent::SilenceElapsed`] once the caller has been silent for `timeout`
    /// (counting from now); `None` disarms.
    pub fn arm_silence(&mut self, timeout: Option<Duration>, now: Instant) {
        self.silence = timeout.map(|timeout| Silence {
            timeout,
            last_speech: now,
        });
    }

    /// The next event for the call layer.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// Counters since the last call, reset.
    pub fn take_counters(&mut self) -> RelayCounters {
        core::mem::take(&mut self.counters)
    }

    /// Handles a datagram that arrived on `side`'s `component` socket from `source`. The
    /// packet is `buf[..len]`; `buf` must have [`MAX_TRAILER_LEN`] spare bytes after it. A
    /// forwarded packet is written to `buf[..transmit.len]`.
    pub fn handle_packet(
        &mut self,
        side: Side,
        component: Component,
        source: SocketAddr,
        buf: &mut [u8],
        len: usize,
        now: Instant,
    ) -> PacketOutcome {
        self.counters.received += 1;
        let outcome = self.receive(side, component, source, buf, len, now);
        match outcome {
            PacketOutcome::Dropped(reason) => self.counters.count_drop(reason),
            PacketOutcome::Forward(_) => self.counters.forwarded += 1,
            PacketOutcome::Consumed => {}
        }
        outcome
    }

    fn receive(
        &mut self,
        side: Side,
        component: Component,
        source: SocketAddr,
        buf: &mut [u8],
        len: usize,
        now: Instant,
    ) -> PacketOutcome {
        let Some(packet) = buf.get_mut(..len) else {
            return PacketOutcome::Dropped(DropReason::Malformed);
        };
        let Some(leg) = self.legs[side.index()].as_mut() else {
            return PacketOutcome::Dropped(DropReason::Unconfigured);
        };
        if component == Component::Rtcp || mediaseal_srtp::is_rtcp(packet) {
            return receive_rtcp(leg, source, packet);
        }
        let plain_len = match leg.inbound.as_mut() {
            Some(inbound) => match inbound.unprotect_rtp(packet) {
                Ok(n) => n,
                Err(e) => return PacketOutcome::Dropped(unprotect_reason(&e)),
            },
            None => len,
        };
        let Some(plain) = buf.get(..plain_len) else {
            return PacketOutcome::Dropped(DropReason::Malformed);
        };
        let Ok(header) = RtpHeader::parse(plain) else {
            return PacketOutcome::Dropped(DropReason::Malformed);
        };
        // Latch only now: the packet authenticated (secure leg), or it is the first one (plain).
        if leg.inbound.is_some() {
            leg.latched_rtp = Some(source);
        } else {
            match leg.latched_rtp {
                None => leg.latched_rtp = Some(source),
                Some(l) if l != source => {
                    return PacketOutcome::Dropped(DropReason::ForeignSource);
                }
                Some(_) => {}
            }
        }
        let is_audio = header.payload_type == leg.setup.payload_type;
        let is_event = leg.setup.telephone_event == Some(header.payload_type);
        if !is_audio && !is_event {
            return PacketOutcome::Dropped(DropReason::UnknownPayloadType);
        }
        let payload = header.payload(plain);
        let law = leg.setup.law;
        if is_event {
            if side == Side::Caller
                && let Some(digit) = leg.dtmf.on_packet(header.ssrc, header.timestamp, payload)
            {
                self.counters.digits += 1;
                self.events.push_back(MediaEvent::Digit(digit));
            }
        } else {
            self.observe_audio(side, law, &header, payload, now);
        }
        if !self.bridged {
            return PacketOutcome::Consumed;
        }
        self.forward(side.other(), &header, plain_len, is_event, buf)
    }

    fn observe_audio(
        &mut self,
        side: Side,
        law: Law,
        header: &RtpHeader,
        payload: &[u8],
        now: Instant,
    ) {
        let want_tap = self.tap.as_ref().is_some_and(|t| match t.tracks {
            TapTracks::Both => true,
            TapTracks::CallerOnly => side == Side::Caller,
        });
        let want_silence = side == Side::Caller && self.silence.is_some();
        if !want_tap && !want_silence {
            return;
        }
        // A tapped frame is decoded straight into the buffer the recorder receives (one
        // allocation, no second copy); silence detection alone reuses `self.pcm`.
        let mut pcm = if want_tap {
            Vec::with_capacity(payload.len())
        } else {
            core::mem::take(&mut self.pcm)
        };
        law.decode_into(payload, &mut pcm);
        if want_silence && let Some(s) = self.silence.as_mut() {
            let level = if pcm.is_empty() {
                0
            } else {
                pcm.iter()
                    .map(|&x| u32::from(x.unsigned_abs()))
                    .sum::<u32>()
                    / pcm.len() as u32
            };
            if level >= SPEECH_LEVEL {
                s.last_speech = now;
            }
        }
        if !want_tap {
            self.pcm = pcm;
            return;
        }
        if let Some(tap) = self.tap.as_mut() {
            let wall = now.saturating_duration_since(tap.start).as_micros() as u64 * 8 / 1000;
            let position = tap.clocks[side.index()].position(header.ssrc, header.timestamp, wall);
            let frame = TapFrame {
                track: side.track(),
                position,
                samples: pcm,
            };
            match tap.sink.try_push(frame) {
                Ok(()) => self.counters.tap_frames += 1,
                Err(_) => self.counters.tap_dropped += 1,
            }
        }
    }

    fn forward(
        &mut self,
        to: Side,
        header: &RtpHeader,
        plain_len: usize,
        is_event: bool,
        buf: &mut [u8],
    ) -> PacketOutcome {
        let Some(out_leg) = self.legs[to.index()].as_mut() else {
            return PacketOutcome::Dropped(DropReason::NotForwarded);
        };
        let Some(destination) = out_leg.rtp_destination() else {
            return PacketOutcome::Dropped(DropReason::NotForwarded);
        };
        let payload_type = if is_event {
            match out_leg.setup.telephone_event {
                Some(pt) => pt,
                None => return PacketOutcome::Dropped(DropReason::UnknownPayloadType),
            }
        } else {
            out_leg.setup.payload_type
        };
        let (switched, seq, ts) =
            out_leg
                .out
                .map(u64::from(header.ssrc), header.sequence, header.timestamp);
        let Some(packet) = buf.get_mut(..plain_len) else {
            return PacketOutcome::Dropped(DropReason::Malformed);
        };
        rtp::rewrite(
            packet,
            header.marker || switched,
            payload_type,
            seq,
            ts,
            out_leg.out.ssrc,
        );
        out_leg.out.packets = out_leg.out.packets.wrapping_add(1);
        out_leg.out.octets = out_leg
            .out
            .octets
            .wrapping_add((header.payload_end - header.payload_offset) as u32);
        let len = match out_leg.outbound.as_mut() {
            Some(outbound) => match outbound.protect_rtp(buf, plain_len) {
                Ok(n) => n,
                Err(_) => return PacketOutcome::Dropped(DropReason::ProtectFailed),
            },
            None => plain_len,
        };
        PacketOutcome::Forward(Transmit {
            side: to,
            component: Component::Rtp,
            destination,
            len,
        })
    }

    /// When [`Self::handle_timeout`] / [`Self::poll_transmit`] next have work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        if let Some(p) = &self.player {
            consider(p.next_tick);
        }
        if let Some(s) = &self.silence {
            consider(s.last_speech + s.timeout);
        }
        for leg in self.legs.iter().flatten() {
            consider(leg.next_report);
        }
        next
    }

    /// Fires timers due at `now` (silence detection). Packets due are fetched with
    /// [`Self::poll_transmit`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(s) = self.silence
            && now >= s.last_speech + s.timeout
        {
            self.silence = None;
            self.events.push_back(MediaEvent::SilenceElapsed);
        }
    }

    /// The next generated packet due at `now` (a prompt frame, a DTMF event, an RTCP report),
    /// written into `buf` (at least 1500 bytes).
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if let Some(t) = self.next_prompt_packet(now, buf) {
            self.counters.generated += 1;
            return Some(t);
        }
        for side in [Side::Caller, Side::Callee] {
            if let Some(t) = self.rtcp_report(side, now, buf) {
                self.counters.generated += 1;
                return Some(t);
            }
        }
        None
    }

    fn next_prompt_packet(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        {
            let player = self.player.as_mut()?;
            if player.next_tick > now {
                return None;
            }
            // Far behind (the thread stalled): skip ahead rather than burst.
            if now.saturating_duration_since(player.next_tick) > PTIME * 5 {
                player.next_tick = now;
            }
            player.next_tick += PTIME;
            let Some(leg) = self.legs[Side::Caller.index()].as_mut() else {
                self.player = None;
                self.events.push_back(MediaEvent::PlaybackDone);
                return None;
            };
            let frame = next_player_frame(player, leg, buf);
            let tick_ts = player.ts;
            player.ts = player.ts.wrapping_add(FRAME as u32);
            match frame {
                Frame::Done => {
                    self.player = None;
                    self.events.push_back(MediaEvent::PlaybackDone);
                    None
                }
                Frame::Quiet => None,
                Frame::Packet {
                    len: plain_len,
                    marker,
                    payload_type,
                    ts_offset,
                } => {
                    let destination = leg.rtp_destination()?;
                    let ts = tick_ts.wrapping_sub(ts_offset);
                    let (switched, seq, ts) = leg.out.map(PLAYER_SOURCE, player.seq, ts);
                    rtp::rewrite(buf, marker || switched, payload_type, seq, ts, leg.out.ssrc);
                    player.seq = player.seq.wrapping_add(1);
                    leg.out.packets = leg.out.packets.wrapping_add(1);
                    leg.out.octets = leg.out.octets.wrapping_add((plain_len - 12) as u32);
                    let len = match leg.outbound.as_mut() {
                        Some(o) => o.protect_rtp(buf, plain_len).ok()?,
                        None => plain_len,
                    };
                    Some(Transmit {
                        side: Side::Caller,
                        component: Component::Rtp,
                        destination,
                        len,
                    })
                }
            }
        }
    }

    fn rtcp_report(&mut self, side: Side, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let wallclock = self.config.wallclock + now.saturating_duration_since(self.config.started);
        let leg = self.legs[side.index()].as_mut()?;
        if leg.next_report > now {
            return None;
        }
        leg.next_report = now + RTCP_INTERVAL;
        if leg.out.packets == 0 {
            return None;
        }
        let (component, destination) = leg.rtcp_destination()?;
        // RFC 3550 §6.4.1 sender report without report blocks; NTP time from the wall clock.
        let ntp_secs = wallclock.as_secs().wrapping_add(2_208_988_800) as u32;
        let ntp_frac = ((u64::from(wallclock.subsec_nanos()) << 32) / 1_000_000_000) as u32;
        let sr = buf.get_mut(..28)?;
        sr[0] = 0x80;
        sr[1] = 200;
        sr[2..4].copy_from_slice(&6u16.to_be_bytes());
        sr[4..8].copy_from_slice(&leg.out.ssrc.to_be_bytes());
        sr[8..12].copy_from_slice(&ntp_secs.to_be_bytes());
        sr[12..16].copy_from_slice(&ntp_frac.to_be_bytes());
        sr[16..20].copy_from_slice(&leg.out.last_ts.to_be_bytes());
        sr[20..24].copy_from_slice(&leg.out.packets.to_be_bytes());
        sr[24..28].copy_from_slice(&leg.out.octets.to_be_bytes());
        let len = match leg.outbound.as_mut() {
            Some(o) => o.protect_rtcp(buf, 28).ok()?,
            None => 28,
        };
        Some(Transmit {
            side,
            component,
            destination,
            len,
        })
    }
}

enum Frame {
    /// Plaintext RTP of `len` bytes is in the buffer (header fields to be rewritten). Its
    /// timestamp is the player's clock minus `ts_offset` (events keep their start's timestamp).
    Packet {
        len: usize,
        marker: bool,
        payload_type: u8,
        ts_offset: u32,
    },
    /// Nothing this tick (a pause, a gap between digits).
    Quiet,
    /// The prompts are over.
    Done,
}

fn next_player_frame(player: &mut Player, leg: &Leg, buf: &mut [u8]) -> Frame {
    if buf.len() < 12 + FRAME + MAX_TRAILER_LEN {
        return Frame::Done;
    }
    loop {
        let Some(item) = player.items.front_mut() else {
            return Frame::Done;
        };
        match item {
            PlayItem::Silence { ticks } => {
                if *ticks == 0 {
                    player.items.pop_front();
                    continue;
                }
                *ticks -= 1;
                return Frame::Quiet;
            }
            PlayItem::Digits(generator) => {
                // The generator's clock starts at the sequence's first tick.
                let base = *player.digits_start.get_or_insert(player.ts);
                match generator.next() {
                    None => {
                        player.items.pop_front();
                        player.digits_start = None;
                        continue;
                    }
                    Some(DtmfStep::Gap) => return Frame::Quiet,
                    Some(DtmfStep::Event {
                        block,
                        marker,
                        start,
                    }) => {
                        let Some(pt) = leg.setup.telephone_event else {
                            // The caller did not negotiate events: the digits are skipped.
                            continue;
                        };
                        let now_in_sequence = player.ts.wrapping_sub(base);
                        rtp::write_header(buf, false, pt, 0, 0, 0);
                        buf[12..16].copy_from_slice(&block.to_bytes());
                        return Frame::Packet {
                            len: 16,
                            marker,
                            payload_type: pt,
                            ts_offset: now_in_sequence.wrapping_sub(start),
                        };
                    }
                }
            }
            PlayItem::Pcm { audio, repeat } => {
                if player.offset >= audio.len() {
                    player.offset = 0;
                    player.loops += 1;
                    let done = match repeat {
                        Repeat::Times(n) => player.loops >= n.get(),
                        Repeat::UntilHangup => audio.is_empty(),
                    };
                    if done {
                        player.items.pop_front();
                        player.loops = 0;
                        continue;
                    }
                }
                let law = leg.setup.law;
                rtp::write_header(buf, false, leg.setup.payload_type, 0, 0, 0);
                let end = (player.offset + FRAME).min(audio.len());
                let chunk = audio.get(player.offset..end).unwrap_or_default();
                for (dst, i) in buf[12..12 + FRAME].iter_mut().zip(0..FRAME) {
                    *dst = law.encode(chunk.get(i).copied().unwrap_or(0));
                }
                player.offset = end;
                return Frame::Packet {
                    len: 12 + FRAME,
                    marker: false,
                    payload_type: leg.setup.payload_type,
                    ts_offset: 0,
                };
            }
        }
    }
}

fn receive_rtcp(leg: &mut Leg, source: SocketAddr, packet: &mut [u8]) -> PacketOutcome {
    match leg.inbound.as_mut() {
        Some(inbound) => match inbound.unprotect_rtcp(packet) {
            Ok(_) => {
                leg.latched_rtcp = Some(source);
                PacketOutcome::Consumed
            }
            Err(e) => PacketOutcome::Dropped(unprotect_reason(&e)),
        },
        None => {
            if packet.len() < 8 || packet.first().is_none_or(|b| b >> 6 != 2) {
                return PacketOutcome::Dropped(DropReason::Malformed);
            }
            leg.latched_rtcp.get_or_insert(source);
            PacketOutcome::Consumed
        }
    }
}

fn unprotect_reason(e: &UnprotectError) -> DropReason {
    match e {
        UnprotectError::Replayed | UnprotectError::TooOld => DropReason::Replayed,
        UnprotectError::Malformed(_) => DropReason::Malformed,
        _ => DropReason::AuthenticationFailed,
    }
}
