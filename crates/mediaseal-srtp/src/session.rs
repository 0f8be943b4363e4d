//! Outbound (protect) and inbound (unprotect) SRTP/SRTCP sessions.

use core::fmt;
use core::hash::{BuildHasher, Hasher};
use std::collections::HashMap;
use std::collections::hash_map::{Entry, RandomState};

use crate::cipher::Cipher;
use crate::packet::{self, MalformedPacket, be32};
use crate::replay::{Replay, ReplayWindow, estimate_index};
use crate::{MasterKey, SrtpProfile};

/// Smallest configurable replay window (libsrtp's lower bound).
pub const MIN_REPLAY_WINDOW: u32 = 64;
/// Largest configurable replay window: RFC 3711 index estimation cannot tell a packet more than
/// 2^15 behind from one 2^15 ahead, so a larger window would be meaningless.
pub const MAX_REPLAY_WINDOW: u32 = 1 << 15;
/// The largest SRTCP index; after it the key must be replaced (RFC 3711 §9.2).
const MAX_SRTCP_INDEX: u32 = 0x7fff_ffff;

/// Tunables for a session. Build from [`SessionConfig::default`] and adjust fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionConfig {
    /// SRTP replay window, in packets ([`MIN_REPLAY_WINDOW`]..=[`MAX_REPLAY_WINDOW`]). Default
    /// 1024: an SFU's NACK retransmissions of video arrive well over 128 packets late.
    pub replay_window: u32,
    /// SRTCP replay window, in packets (same range). Default 128.
    pub rtcp_replay_window: u32,
    /// Outbound only: allow protecting the same packet index twice. Off by default, because
    /// protecting two different payloads under one index reuses keystream (and, for GCM, a
    /// nonce). Only turn on for exact retransmissions of the same packet.
    pub allow_repeat_tx: bool,
    /// Most SSRCs a session tracks; packets for further SSRCs fail with `TooManyStreams`.
    /// Default 1024. Inbound streams are only created by authenticated packets.
    pub max_streams: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            replay_window: 1024,
            rtcp_replay_window: 128,
            allow_repeat_tx: false,
            max_streams: 1024,
        }
    }
}

/// A session could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// A replay window outside [`MIN_REPLAY_WINDOW`]..=[`MAX_REPLAY_WINDOW`].
    #[error("replay window {0} outside {MIN_REPLAY_WINDOW}..={MAX_REPLAY_WINDOW}")]
    InvalidReplayWindow(u32),
    /// AWS-LC refused the derived keys (does not happen with valid profiles).
    #[error("could not set up SRTP session keys")]
    Crypto,
}

/// Why a packet could not be protected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtectError {
    /// The packet is not valid RTP/RTCP.
    #[error("malformed packet: {0}")]
    Malformed(#[from] MalformedPacket),
    /// `len` exceeds the buffer, or the buffer lacks room for the trailer.
    #[error("buffer too small: need {needed} bytes, have {available}")]
    BufferTooSmall {
        /// Bytes needed (packet plus trailer).
        needed: usize,
        /// Length of the buffer given.
        available: usize,
    },
    /// This packet index was already protected (see [`SessionConfig::allow_repeat_tx`]).
    #[error("packet index already protected")]
    RepeatedIndex,
    /// The packet index is behind the replay window of packets already sent.
    #[error("packet index too far behind packets already protected")]
    TooOld,
    /// The index space of this key is used up (2^48 SRTP or 2^31 SRTCP packets); re-key.
    #[error("key exhausted: re-key the session")]
    KeyExhausted,
    /// The session already tracks [`SessionConfig::max_streams`] SSRCs.
    #[error("too many SSRCs in this session")]
    TooManyStreams,
    /// AWS-LC reported an internal failure.
    #[error("cryptographic operation failed")]
    Crypto,
}

/// Why a packet was rejected on receive. The packet must be dropped; the buffer's contents are
/// unspecified after an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnprotectError {
    /// The packet is not valid SRTP/SRTCP.
    #[error("malformed packet: {0}")]
    Malformed(#[from] MalformedPacket),
    /// The authentication tag did not verify (wrong key, wrong ROC, or tampering).
    #[error("authentication failed")]
    AuthenticationFailed,
    /// This packet index was already received.
    #[error("replayed packet")]
    Replayed,
    /// The packet index is behind the replay window.
    #[error("packet too old for the replay window")]
    TooOld,
    /// An SRTCP packet with the E flag clear: we never negotiate unencrypted SRTCP.
    #[error("unencrypted SRTCP is not allowed")]
    UnencryptedSrtcp,
    /// The packet index would pass 2^48; the key must be replaced.
    #[error("key exhausted: re-key the session")]
    KeyExhausted,
    /// The session already tracks [`SessionConfig::max_streams`] SSRCs.
    #[error("too many SSRCs in this session")]
    TooManyStreams,
}

/// HashMap hasher for SSRCs: a keyed folded multiply. SipHash would cost a noticeable share of a
/// packet's budget; a per-session random seed keeps collisions unpredictable.
#[derive(Clone)]
struct SsrcHashBuilder(u64);

impl SsrcHashBuilder {
    fn new() -> Self {
        // RandomState is seeded per process from the OS; hashing a constant extracts a seed.
        Self(RandomState::new().hash_one(0x5352_5450_u64) | 1)
    }
}

struct SsrcHasher(u64);

#[inline]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

impl Hasher for SsrcHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = fold_mul(self.0 ^ u64::from(*b), 0x9e37_79b9_7f4a_7c15);
        }
    }
    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.0 = fold_mul(self.0 ^ u64::from(n), 0x9e37_79b9_7f4a_7c15);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

impl BuildHasher for SsrcHashBuilder {
    type Hasher = SsrcHasher;
    #[inline]
    fn build_hasher(&self) -> SsrcHasher {
        SsrcHasher(self.0)
    }
}

type StreamMap<T> = HashMap<u32, T, SsrcHashBuilder>;

/// Per-SSRC states of a session. The first SSRC's state is kept inline, beside the session's
/// keys: a call leg or a single-track peer sends one SSRC, and its packets then find their state
/// with one comparison instead of a hash, a probe and a pointer hop to another allocation (in a
/// relay thread that serves hundreds of sessions, those cache misses cost more than the hash).
/// Further SSRCs go to the map.
struct Streams<T> {
    first: Option<(u32, T)>,
    rest: StreamMap<T>,
}

impl<T> Streams<T> {
    fn new() -> Self {
        Self {
            first: None,
            rest: HashMap::with_hasher(SsrcHashBuilder::new()),
        }
    }

    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    #[inline]
    fn get(&self, ssrc: u32) -> Option<&T> {
        match &self.first {
            Some((s, t)) if *s == ssrc => Some(t),
            _ => self.rest.get(&ssrc),
        }
    }

    #[inline]
    fn get_mut(&mut self, ssrc: u32) -> Option<&mut T> {
        match &mut self.first {
            Some((s, t)) if *s == ssrc => Some(t),
            _ => self.rest.get_mut(&ssrc),
        }
    }

    /// The state of `ssrc`, created with `new` if absent and fewer than `max` are tracked;
    /// `None` when the session is full.
    #[inline]
    fn get_or_insert(&mut self, ssrc: u32, max: usize, new: impl FnOnce() -> T) -> Option<&mut T> {
        let n = self.len();
        match &self.first {
            Some((s, _)) if *s == ssrc => return self.first.as_mut().map(|(_, t)| t),
            Some(_) => {}
            None if self.rest.contains_key(&ssrc) => {}
            None => {
                if n >= max {
                    return None;
                }
                return Some(&mut self.first.insert((ssrc, new())).1);
            }
        }
        match self.rest.entry(ssrc) {
            Entry::Occupied(e) => Some(e.into_mut()),
            Entry::Vacant(e) => {
                if n >= max {
                    return None;
                }
                Some(e.insert(new()))
            }
        }
    }

    /// Adds the state of an SSRC not tracked yet.
    fn insert_new(&mut self, ssrc: u32, t: T) {
        if self.first.is_none() {
            self.first = Some((ssrc, t));
        } else {
            self.rest.insert(ssrc, t);
        }
    }

    fn remove(&mut self, ssrc: u32) -> Option<T> {
        if self.first.as_ref().is_some_and(|(s, _)| *s == ssrc) {
            return self.first.take().map(|(_, t)| t);
        }
        self.rest.remove(&ssrc)
    }
}

/// The state of `ssrc`, created if new and the session has room.
#[inline]
fn tx_stream<'a>(
    streams: &'a mut Streams<TxStream>,
    config: &SessionConfig,
    ssrc: u32,
) -> Result<&'a mut TxStream, ProtectError> {
    streams
        .get_or_insert(ssrc, config.max_streams, || TxStream::new(config))
        .ok_or(ProtectError::TooManyStreams)
}

fn check_config(config: &SessionConfig) -> Result<(), SessionError> {
    for w in [config.replay_window, config.rtcp_replay_window] {
        if !(MIN_REPLAY_WINDOW..=MAX_REPLAY_WINDOW).contains(&w) {
            return Err(SessionError::InvalidReplayWindow(w));
        }
    }
    Ok(())
}

/// Per-SSRC sender state.
#[derive(Debug)]
struct TxStream {
    /// Indices already protected; `highest()` is the sender's current index.
    rtp: ReplayWindow,
    /// ROC for the first packet (from `set_roc`).
    roc_hint: u32,
    /// The next SRTCP index to use.
    rtcp_next: u32,
}

impl TxStream {
    fn new(config: &SessionConfig) -> Self {
        Self {
            rtp: ReplayWindow::new(config.replay_window),
            roc_hint: 0,
            rtcp_next: 0,
        }
    }
}

/// Per-SSRC receiver state.
#[derive(Debug)]
struct RxStream {
    rtp: ReplayWindow,
    roc_hint: u32,
    rtcp: ReplayWindow,
}

impl RxStream {
    fn new(config: &SessionConfig) -> Self {
        Self {
            rtp: ReplayWindow::new(config.replay_window),
            roc_hint: 0,
            rtcp: ReplayWindow::new(config.rtcp_replay_window),
        }
    }
}

/// Protects (encrypts and authenticates) outgoing RTP and RTCP under one master key.
///
/// Keyed once; any number of SSRCs share the key, each with its own ROC, replay record and
/// SRTCP index, looked up in O(1). Sans-IO and allocation-free per packet once an SSRC is known.
/// `Send + Sync`, but every method takes `&mut self`: give each task its own session or lock it.
pub struct OutboundSession {
    profile: SrtpProfile,
    rtp: Cipher,
    rtcp: Cipher,
    streams: Streams<TxStream>,
    config: SessionConfig,
}

impl fmt::Debug for OutboundSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundSession")
            .field("profile", &self.profile)
            .field("streams", &self.streams.len())
            .finish_non_exhaustive()
    }
}

/// Unprotects (authenticates and decrypts) incoming SRTP and SRTCP under one master key.
///
/// Accepts any SSRC ("any inbound"): per-SSRC state is created by the first packet of that SSRC
/// that authenticates. ROC and replay state advance only after authentication.
pub struct InboundSession {
    profile: SrtpProfile,
    rtp: Cipher,
    rtcp: Cipher,
    streams: Streams<RxStream>,
    config: SessionConfig,
}

impl fmt::Debug for InboundSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundSession")
            .field("profile", &self.profile)
            .field("streams", &self.streams.len())
            .finish_non_exhaustive()
    }
}

fn ciphers(key: &MasterKey) -> Result<(Cipher, Cipher), SessionError> {
    let rtp = Cipher::new(key, false).map_err(|_| SessionError::Crypto)?;
    let rtcp = Cipher::new(key, true).map_err(|_| SessionError::Crypto)?;
    Ok((rtp, rtcp))
}

fn buffer_room(buf: &[u8], len: usize, trailer: usize) -> Result<(), ProtectError> {
    let needed = len.saturating_add(trailer);
    if buf.len() < needed {
        return Err(ProtectError::BufferTooSmall {
            needed,
            available: buf.len(),
        });
    }
    Ok(())
}

impl OutboundSession {
    /// Creates a session that protects with `key` (our master key for this direction).
    pub fn new(key: &MasterKey, config: &SessionConfig) -> Result<Self, SessionError> {
        check_config(config)?;
        let (rtp, rtcp) = ciphers(key)?;
        Ok(Self::from_ciphers(key.profile(), rtp, rtcp, config))
    }

    pub(crate) fn from_ciphers(
        profile: SrtpProfile,
        rtp: Cipher,
        rtcp: Cipher,
        config: &SessionConfig,
    ) -> Self {
        Self {
            profile,
            rtp,
            rtcp,
            streams: Streams::new(),
            config: config.clone(),
        }
    }

    /// The session's profile.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// Protects the RTP packet in `buf[..len]` in place and returns the SRTP packet's length.
    ///
    /// `buf` must have at least [`SrtpProfile::rtp_trailer_len`] bytes after the packet
    /// ([`crate::MAX_TRAILER_LEN`] suffices for every profile). The header, CSRCs and header
    /// extension stay in clear and are authenticated; the payload (with any padding) is
    /// encrypted.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, ProtectError> {
        let tag_len = self.profile.rtp_tag_len();
        buffer_room(buf, len, tag_len)?;
        let (body, rest) = buf.split_at_mut(len); // len <= buf.len(), checked above
        let tag_out = rest.get_mut(..tag_len).ok_or(ProtectError::Crypto)?;
        let hdr = packet::rtp_header(body, 0)?;
        let allow_repeat = self.config.allow_repeat_tx;
        let stream = tx_stream(&mut self.streams, &self.config, hdr.ssrc)?;
        let index = estimate_index(stream.rtp.highest(), stream.roc_hint, hdr.seq)
            .ok_or(ProtectError::KeyExhausted)?;
        match stream.rtp.check(index) {
            Ok(()) => {}
            Err(Replay::Duplicate) if allow_repeat => {}
            Err(Replay::Duplicate) => return Err(ProtectError::RepeatedIndex),
            Err(Replay::TooOld) => return Err(ProtectError::TooOld),
        }
        self.rtp
            .protect_rtp(body, hdr.len, tag_out, hdr.ssrc, index)
            .map_err(|_| ProtectError::Crypto)?;
        stream.rtp.commit(index);
        Ok(len + tag_len)
    }

    /// Protects the (possibly compound) RTCP packet in `buf[..len]` in place and returns the
    /// SRTCP packet's length. Needs [`SrtpProfile::rtcp_trailer_len`] spare bytes after it.
    ///
    /// Always encrypts (E flag set) and always sends an 80-bit tag on HMAC-SHA1 profiles,
    /// including `_32` ones (RFC 3711 §5.2).
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, ProtectError> {
        let trailer = self.profile.rtcp_trailer_len();
        buffer_room(buf, len, trailer)?;
        let ssrc = packet::rtcp_ssrc(buf.get(..len).ok_or(ProtectError::Crypto)?, 0)?;
        let stream = tx_stream(&mut self.streams, &self.config, ssrc)?;
        let index = stream.rtcp_next;
        if index > MAX_SRTCP_INDEX {
            return Err(ProtectError::KeyExhausted);
        }
        let eidx = (0x8000_0000 | index).to_be_bytes();
        let pkt = buf.get_mut(..len + trailer).ok_or(ProtectError::Crypto)?;
        let (body, tail) = pkt.split_at_mut(len);
        if self.rtcp.is_gcm() {
            // RFC 7714 §9: header ‖ ciphertext ‖ tag ‖ E|index; AAD = header ‖ E|index.
            let mut aad = [0u8; 12];
            aad[..8].copy_from_slice(body.get(..8).ok_or(ProtectError::Crypto)?);
            aad[8..].copy_from_slice(&eidx);
            let enc = body.get_mut(8..).ok_or(ProtectError::Crypto)?;
            let tag = self
                .rtcp
                .gcm_seal(&aad, enc, ssrc, index)
                .map_err(|_| ProtectError::Crypto)?;
            let (tag_out, idx_out) = tail.split_at_mut(16);
            tag_out.copy_from_slice(&tag);
            idx_out.copy_from_slice(&eidx);
        } else {
            // RFC 3711 §3.4: header ‖ ciphertext ‖ E|index ‖ tag, the tag over all before it.
            self.rtcp.cm_crypt_rtcp(body, ssrc, index);
            tail.get_mut(..4)
                .ok_or(ProtectError::Crypto)?
                .copy_from_slice(&eidx);
            // One contiguous slice for the MAC (see `Cipher::protect_rtp`).
            let (authenticated, tag_out) = pkt.split_at_mut(len + 4);
            let mac = self
                .rtcp
                .cm_mac(&[authenticated])
                .ok_or(ProtectError::Crypto)?;
            let n = tag_out.len();
            tag_out.copy_from_slice(mac.get(..n).ok_or(ProtectError::Crypto)?);
        }
        stream.rtcp_next = index + 1;
        Ok(len + trailer)
    }

    /// [`Self::protect_rtp`] on a `Vec`: grows it by the trailer (allocating only if its
    /// capacity is short) and leaves it holding the SRTP packet. Unchanged on error.
    pub fn protect_rtp_vec(&mut self, pkt: &mut Vec<u8>) -> Result<(), ProtectError> {
        let len = pkt.len();
        pkt.resize(len + self.profile.rtp_trailer_len(), 0);
        let r = self.protect_rtp(pkt, len);
        pkt.truncate(*r.as_ref().unwrap_or(&len));
        r.map(|_| ())
    }

    /// [`Self::protect_rtcp`] on a `Vec`, like [`Self::protect_rtp_vec`].
    pub fn protect_rtcp_vec(&mut self, pkt: &mut Vec<u8>) -> Result<(), ProtectError> {
        let len = pkt.len();
        pkt.resize(len + self.profile.rtcp_trailer_len(), 0);
        let r = self.protect_rtcp(pkt, len);
        pkt.truncate(*r.as_ref().unwrap_or(&len));
        r.map(|_| ())
    }

    /// Sets the ROC of `ssrc` (re-key carrying the ROC over, RFC 3711 §3.3.1, or a stream
    /// taken over mid-call): the next RTP packet of `ssrc` uses this ROC, and estimation resumes
    /// from there. Forgets which indices were already sent.
    pub fn set_roc(&mut self, ssrc: u32, roc: u32) {
        let config = &self.config;
        let Some(s) = self
            .streams
            .get_or_insert(ssrc, usize::MAX, || TxStream::new(config))
        else {
            return;
        };
        s.rtp.reset();
        s.roc_hint = roc;
    }

    /// The ROC of the highest RTP index sent on `ssrc` (or the one set by [`Self::set_roc`]).
    pub fn roc(&self, ssrc: u32) -> Option<u32> {
        let s = self.streams.get(ssrc)?;
        Some(s.rtp.highest().map_or(s.roc_hint, |h| (h >> 16) as u32))
    }

    /// Sets the SRTCP index the next RTCP packet of `ssrc` will carry (default 0).
    pub fn set_rtcp_index(&mut self, ssrc: u32, next: u32) {
        let config = &self.config;
        if let Some(s) = self
            .streams
            .get_or_insert(ssrc, usize::MAX, || TxStream::new(config))
        {
            s.rtcp_next = next;
        }
    }

    /// Drops the state of `ssrc`; returns whether it existed.
    pub fn remove_stream(&mut self, ssrc: u32) -> bool {
        self.streams.remove(ssrc).is_some()
    }

    /// Number of SSRCs tracked.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }
}

impl InboundSession {
    /// Creates a session that unprotects with `key` (the peer's master key for its direction).
    pub fn new(key: &MasterKey, config: &SessionConfig) -> Result<Self, SessionError> {
        check_config(config)?;
        let (rtp, rtcp) = ciphers(key)?;
        Ok(Self::from_ciphers(key.profile(), rtp, rtcp, config))
    }

    pub(crate) fn from_ciphers(
        profile: SrtpProfile,
        rtp: Cipher,
        rtcp: Cipher,
        config: &SessionConfig,
    ) -> Self {
        Self {
            profile,
            rtp,
            rtcp,
            streams: Streams::new(),
            config: config.clone(),
        }
    }

    /// The session's profile.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// Authenticates and decrypts the SRTP packet filling `pkt`, in place. Returns the length
    /// of the RTP packet now at the front of `pkt`.
    pub fn unprotect_rtp(&mut self, pkt: &mut [u8]) -> Result<usize, UnprotectError> {
        let tag_len = self.profile.rtp_tag_len();
        let hdr = packet::rtp_header(pkt, tag_len)?;
        let out_len = pkt.len() - tag_len; // rtp_header checked pkt.len() >= 12 + tag_len
        match self.streams.get_mut(hdr.ssrc) {
            Some(stream) => {
                let index = estimate_index(stream.rtp.highest(), stream.roc_hint, hdr.seq)
                    .ok_or(UnprotectError::KeyExhausted)?;
                match stream.rtp.check(index) {
                    Ok(()) => {}
                    Err(Replay::Duplicate) => return Err(UnprotectError::Replayed),
                    Err(Replay::TooOld) => return Err(UnprotectError::TooOld),
                }
                if !self
                    .rtp
                    .unprotect_rtp(pkt, hdr.len, tag_len, hdr.ssrc, index)
                {
                    return Err(UnprotectError::AuthenticationFailed);
                }
                stream.rtp.commit(index);
            }
            None => {
                let index = u64::from(hdr.seq);
                if !self
                    .rtp
                    .unprotect_rtp(pkt, hdr.len, tag_len, hdr.ssrc, index)
                {
                    return Err(UnprotectError::AuthenticationFailed);
                }
                if self.streams.len() >= self.config.max_streams {
                    return Err(UnprotectError::TooManyStreams);
                }
                let mut s = RxStream::new(&self.config);
                s.rtp.commit(index);
                self.streams.insert_new(hdr.ssrc, s);
            }
        }
        Ok(out_len)
    }

    /// Authenticates and decrypts the SRTCP packet filling `pkt`, in place. Returns the length
    /// of the RTCP packet now at the front of `pkt`.
    ///
    /// On `_32` profiles a 4-byte tag is accepted as well as the 10-byte one RFC 3711 requires,
    /// because baresip and Asterisk send 4-byte SRTCP tags there. Packets without the E flag are
    /// rejected.
    pub fn unprotect_rtcp(&mut self, pkt: &mut [u8]) -> Result<usize, UnprotectError> {
        let short_tag_ok = self.profile.rtp_tag_len() == 4;
        let min_trailer = if short_tag_ok {
            8
        } else {
            self.profile.rtcp_trailer_len()
        };
        let ssrc = packet::rtcp_ssrc(pkt, min_trailer)?;
        let len = pkt.len();
        let gcm = self.rtcp.is_gcm();
        // Where the E|index word starts, and how long the packet is without its trailer.
        let (idx_at, body_end) = if gcm {
            (len - 4, len - 20) // rtcp_ssrc checked len >= 8 + 20
        } else {
            let full = self.profile.rtcp_tag_len();
            let verify = |tag_len: usize| {
                len >= 8 + 4 + tag_len && {
                    let (auth, tag) = pkt.split_at(len - tag_len);
                    self.rtcp.cm_verify(&[auth], tag)
                }
            };
            if verify(full) {
                (len - full - 4, len - full - 4)
            } else if short_tag_ok && verify(4) {
                (len - 8, len - 8)
            } else {
                return Err(UnprotectError::AuthenticationFailed);
            }
        };
        let eidx = be32(pkt, idx_at).ok_or(MalformedPacket::TooShort)?;
        if eidx & 0x8000_0000 == 0 {
            return Err(UnprotectError::UnencryptedSrtcp);
        }
        let index = eidx & MAX_SRTCP_INDEX;
        if let Some(s) = self.streams.get(ssrc) {
            match s.rtcp.check(u64::from(index)) {
                Ok(()) => {}
                Err(Replay::Duplicate) => return Err(UnprotectError::Replayed),
                Err(Replay::TooOld) => return Err(UnprotectError::TooOld),
            }
        }
        if gcm {
            let mut aad = [0u8; 12];
            aad[..8].copy_from_slice(pkt.get(..8).ok_or(MalformedPacket::TooShort)?);
            aad[8..].copy_from_slice(&eidx.to_be_bytes());
            let ct = pkt.get_mut(8..idx_at).ok_or(MalformedPacket::TooShort)?;
            if !self.rtcp.gcm_open(&aad, ct, ssrc, index) {
                return Err(UnprotectError::AuthenticationFailed);
            }
        } else {
            let body = pkt.get_mut(..body_end).ok_or(MalformedPacket::TooShort)?;
            self.rtcp.cm_crypt_rtcp(body, ssrc, index);
        }
        let config = &self.config;
        let stream = self
            .streams
            .get_or_insert(ssrc, config.max_streams, || RxStream::new(config))
            .ok_or(UnprotectError::TooManyStreams)?;
        stream.rtcp.commit(u64::from(index));
        Ok(body_end)
    }

    /// [`Self::unprotect_rtp`] on a `Vec`, truncating it to the RTP packet on success.
    pub fn unprotect_rtp_vec(&mut self, pkt: &mut Vec<u8>) -> Result<(), UnprotectError> {
        let n = self.unprotect_rtp(pkt)?;
        pkt.truncate(n);
        Ok(())
    }

    /// [`Self::unprotect_rtcp`] on a `Vec`, truncating it to the RTCP packet on success.
    pub fn unprotect_rtcp_vec(&mut self, pkt: &mut Vec<u8>) -> Result<(), UnprotectError> {
        let n = self.unprotect_rtcp(pkt)?;
        pkt.truncate(n);
        Ok(())
    }

    /// Sets the ROC for `ssrc` (late joiner, or a re-key that carries the ROC over): the next
    /// packet of `ssrc` is taken to have this ROC, and estimation resumes from it. Forgets the
    /// SRTP replay record of `ssrc` (the SRTCP one is kept).
    pub fn set_roc(&mut self, ssrc: u32, roc: u32) {
        let config = &self.config;
        let Some(s) = self
            .streams
            .get_or_insert(ssrc, usize::MAX, || RxStream::new(config))
        else {
            return;
        };
        s.rtp.reset();
        s.roc_hint = roc;
    }

    /// The ROC of the highest authenticated RTP index of `ssrc` (or the one set by
    /// [`Self::set_roc`] before any packet).
    pub fn roc(&self, ssrc: u32) -> Option<u32> {
        let s = self.streams.get(ssrc)?;
        Some(s.rtp.highest().map_or(s.roc_hint, |h| (h >> 16) as u32))
    }

    /// Drops the state of `ssrc`; returns whether it existed.
    pub fn remove_stream(&mut self, ssrc: u32) -> bool {
        self.streams.remove(ssrc).is_some()
    }

    /// Number of SSRCs tracked.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(profile: SrtpProfile) -> MasterKey {
        let n = profile.master_key_len() + profile.master_salt_len();
        MasterKey::from_key_salt(profile, &vec![0x42; n]).unwrap()
    }

    fn pair(profile: SrtpProfile, config: &SessionConfig) -> (OutboundSession, InboundSession) {
        let k = key(profile);
        (
            OutboundSession::new(&k, config).unwrap(),
            InboundSession::new(&k, config).unwrap(),
        )
    }

    fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[8..12].copy_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[0x55; 160]);
        p
    }

    fn rtcp(ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x80, 200, 0, 6, 0, 0, 0, 0];
        p[4..8].copy_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[0x66; 20]);
        p
    }

    #[test]
    fn roc_follows_the_wrap_on_both_sides() {
        let (mut tx, mut rx) = pair(SrtpProfile::AesCm128HmacSha1_80, &SessionConfig::default());
        for seq in (65_530..=65_535).chain(0..5) {
            let mut p = rtp(seq, 9);
            tx.protect_rtp_vec(&mut p).unwrap();
            rx.unprotect_rtp_vec(&mut p).unwrap();
        }
        assert_eq!((tx.roc(9), rx.roc(9)), (Some(1), Some(1)));
        assert_eq!(rx.roc(10), None);
    }

    #[test]
    fn late_joiner_needs_set_roc() {
        let config = SessionConfig::default();
        let (mut tx, _) = pair(SrtpProfile::AeadAes128Gcm, &config);
        tx.set_roc(9, 7);
        let mut p = rtp(100, 9);
        tx.protect_rtp_vec(&mut p).unwrap();
        assert_eq!(tx.roc(9), Some(7));
        // A receiver that assumes ROC 0 cannot authenticate it, and keeps no state.
        let (_, mut rx) = pair(SrtpProfile::AeadAes128Gcm, &config);
        let mut q = p.clone();
        assert_eq!(
            rx.unprotect_rtp(&mut q),
            Err(UnprotectError::AuthenticationFailed)
        );
        assert_eq!(rx.stream_count(), 0);
        rx.set_roc(9, 7);
        assert_eq!(rx.roc(9), Some(7));
        rx.unprotect_rtp_vec(&mut p).unwrap();
        assert_eq!(p, rtp(100, 9));
    }

    #[test]
    fn failed_authentication_does_not_advance_state() {
        let (mut tx, mut rx) = pair(SrtpProfile::AesCm128HmacSha1_32, &SessionConfig::default());
        let mut first = rtp(10, 1);
        tx.protect_rtp_vec(&mut first).unwrap();
        rx.unprotect_rtp_vec(&mut first).unwrap();
        // A forged packet far ahead (would imply ROC + 1) must not move the ROC.
        let mut forged = rtp(40_000, 1);
        forged.extend_from_slice(&[0; 4]);
        assert_eq!(
            rx.unprotect_rtp(&mut forged),
            Err(UnprotectError::AuthenticationFailed)
        );
        let mut next = rtp(11, 1);
        tx.protect_rtp_vec(&mut next).unwrap();
        rx.unprotect_rtp_vec(&mut next).unwrap();
        assert_eq!(rx.roc(1), Some(0));
    }

    #[test]
    fn sender_refuses_repeats_unless_allowed() {
        let (mut tx, _) = pair(SrtpProfile::AesCm128HmacSha1_80, &SessionConfig::default());
        let mut p = rtp(5, 1);
        tx.protect_rtp_vec(&mut p).unwrap();
        let mut p = rtp(5, 1);
        assert_eq!(tx.protect_rtp_vec(&mut p), Err(ProtectError::RepeatedIndex));
        assert_eq!(p, rtp(5, 1), "unchanged on error");
        let mut p = rtp(2000, 1);
        tx.protect_rtp_vec(&mut p).unwrap();
        let mut p = rtp(5, 1);
        assert_eq!(tx.protect_rtp_vec(&mut p), Err(ProtectError::TooOld));
        let config = SessionConfig {
            allow_repeat_tx: true,
            ..SessionConfig::default()
        };
        let (mut tx, _) = pair(SrtpProfile::AesCm128HmacSha1_80, &config);
        let mut a = rtp(5, 1);
        let mut b = rtp(5, 1);
        tx.protect_rtp_vec(&mut a).unwrap();
        tx.protect_rtp_vec(&mut b).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn buffer_and_packet_errors() {
        let (mut tx, mut rx) = pair(SrtpProfile::AesCm128HmacSha1_80, &SessionConfig::default());
        let mut buf = rtp(1, 1);
        let len = buf.len();
        assert_eq!(
            tx.protect_rtp(&mut buf, len),
            Err(ProtectError::BufferTooSmall {
                needed: len + 10,
                available: len
            })
        );
        assert_eq!(
            tx.protect_rtp(&mut buf, len + 1),
            Err(ProtectError::BufferTooSmall {
                needed: len + 11,
                available: len
            })
        );
        let mut short = vec![0x80; 11 + 20];
        assert_eq!(
            tx.protect_rtp(&mut short, 11),
            Err(ProtectError::Malformed(MalformedPacket::TooShort))
        );
        let mut v1 = vec![0x40; 40];
        assert_eq!(
            tx.protect_rtp(&mut v1, 20),
            Err(ProtectError::Malformed(MalformedPacket::BadVersion))
        );
        assert_eq!(
            rx.unprotect_rtp(&mut [0x80; 21]),
            Err(UnprotectError::Malformed(MalformedPacket::TooShort))
        );
        assert_eq!(
            rx.unprotect_rtcp(&mut [0x80; 21]),
            Err(UnprotectError::Malformed(MalformedPacket::TooShort))
        );
    }

    #[test]
    fn stream_limit_and_removal() {
        let config = SessionConfig {
            max_streams: 2,
            ..SessionConfig::default()
        };
        let (mut tx, mut rx) = pair(SrtpProfile::AesCm128HmacSha1_80, &config);
        let mut pkts = Vec::new();
        for ssrc in 1..=3 {
            let mut p = rtp(1, ssrc);
            let r = tx.protect_rtp_vec(&mut p);
            if ssrc == 3 {
                assert_eq!(r, Err(ProtectError::TooManyStreams));
            } else {
                r.unwrap();
                pkts.push(p);
            }
        }
        assert_eq!(tx.stream_count(), 2);
        assert!(tx.remove_stream(1));
        assert!(!tx.remove_stream(1));
        let mut p = rtp(1, 3);
        tx.protect_rtp_vec(&mut p).unwrap();
        pkts.push(p);
        for p in &mut pkts[..2] {
            rx.unprotect_rtp_vec(p).unwrap();
        }
        assert_eq!(
            rx.unprotect_rtp_vec(&mut pkts[2]),
            Err(UnprotectError::TooManyStreams)
        );
    }

    #[test]
    fn srtcp_index_and_e_flag() {
        for profile in SrtpProfile::ALL {
            let (mut tx, mut rx) = pair(profile, &SessionConfig::default());
            let mut p = rtcp(5);
            tx.protect_rtcp_vec(&mut p).unwrap();
            let at = if profile.is_aead() {
                p.len() - 4
            } else {
                p.len() - 14
            };
            assert_eq!(
                &p[at..at + 4],
                &[0x80, 0, 0, 0],
                "{profile}: first index 0, E set"
            );
            let mut q = rtcp(5);
            tx.protect_rtcp_vec(&mut q).unwrap();
            assert_eq!(&q[at..at + 4], &[0x80, 0, 0, 1]);
            // Clearing E is caught (before or by authentication).
            let mut cleared = p.clone();
            cleared[at] &= 0x7f;
            assert!(rx.unprotect_rtcp(&mut cleared).is_err());
            tx.set_rtcp_index(5, MAX_SRTCP_INDEX + 1);
            let mut r = rtcp(5);
            assert_eq!(tx.protect_rtcp_vec(&mut r), Err(ProtectError::KeyExhausted));
            rx.unprotect_rtcp_vec(&mut q).unwrap();
            rx.unprotect_rtcp_vec(&mut p).unwrap();
            assert_eq!(p, rtcp(5));
        }
    }

    #[test]
    fn config_is_validated() {
        let k = key(SrtpProfile::AesCm128HmacSha1_80);
        for w in [0, 63, MAX_REPLAY_WINDOW + 1] {
            let c = SessionConfig {
                replay_window: w,
                ..SessionConfig::default()
            };
            assert_eq!(
                OutboundSession::new(&k, &c).unwrap_err(),
                SessionError::InvalidReplayWindow(w)
            );
            let c = SessionConfig {
                rtcp_replay_window: w,
                ..SessionConfig::default()
            };
            assert!(InboundSession::new(&k, &c).is_err());
        }
        let c = SessionConfig {
            replay_window: MAX_REPLAY_WINDOW,
            ..SessionConfig::default()
        };
        assert!(InboundSession::new(&k, &c).is_ok());
    }

    #[test]
    fn sessions_can_move_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<OutboundSession>();
        assert_send_sync::<InboundSession>();
    }

    #[test]
    fn debug_does_not_show_keys() {
        let (tx, rx) = pair(SrtpProfile::AesCm128HmacSha1_80, &SessionConfig::default());
        let d = format!("{tx:?} {rx:?}");
        assert!(d.contains("AesCm128HmacSha1_80") && !d.contains("42, 42"));
    }
}
