//! A Matroska writer for live tracks: one WebRTC track in, one `.mka`/`.mkv` byte stream out,
//! written front to back for a sink that cannot seek (the sealing sink).
//!
//! The stream is: the EBML head, a segment of unknown size, the segment info (1 ms ticks, no
//! `Duration`: a live writer cannot know it, and the ledger measures the length from the blocks
//! with [`crate::matroska::BlockClock`]), the one-track `Tracks`, then clusters of known size.
//! A cluster is held in memory until the next one starts (at a video keyframe, after 5 s or
//! 1 MiB), so its size can be written in front of it. The last frame is held back until the
//! next one arrives, so that [`LiveMatroska::finish`] can close the file with a block that states
//! its own duration. No cues, no seek head: players read the clusters in order.

use zeroize::{Zeroize, Zeroizing};

/// A track's codec, with what its header needs that the frames do not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackCodec {
    /// Opus (`A_OPUS`), always decoded at 48 kHz.
    Opus {
        /// 1 or 2 (channel mapping family 0).
        channels: u8,
        /// The sample rate of the publisher's input, informational (the `OpusHead` field).
        sample_rate: u32,
    },
    /// G.711 μ-law, 8 kHz mono (`A_MS/ACM`, as ffmpeg writes `pcm_mulaw`).
    Pcmu,
    /// VP8 (`V_VP8`); the picture size comes from the first keyframe.
    Vp8,
    /// H.264 (`V_MPEG4/ISO/AVC`) from Annex-B access units; the `avcC` and the picture size
    /// come from the first SPS and PPS.
    H264,
}

impl TrackCodec {
    fn is_video(self) -> bool {
        matches!(self, Self::Vp8 | Self::H264)
    }
}

/// Why a frame could not be recorded. The writer stays usable: the frame was not written, and
/// the next one may be pushed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MuxError {
    /// A frame with no bytes.
    #[error("the frame is empty; a recording holds no empty frames, skip it")]
    EmptyFrame,
    /// A frame over [`MAX_FRAME_BYTES`].
    #[error(
        "the frame is {len} bytes, more than the {max} a recorded frame may be; it was dropped"
    )]
    FrameTooLarge {
        /// The frame's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A timestamp earlier than the previous frame's by more than a reordering explains.
    #[error(
        "the frame's timestamp ({pts_ms} ms) is more than {tolerance_ms} ms before the previous \
         frame's ({last_pts_ms} ms); a recording's timeline only moves forward, so the frame was \
         dropped (start a new recording for a new timeline)"
    )]
    TimestampBackwards {
        /// The frame's timestamp.
        pts_ms: u64,
        /// The previous frame's timestamp.
        last_pts_ms: u64,
        /// How far back a frame may be and still be written (at the previous timestamp).
        tolerance_ms: u64,
    },
    /// Opus with a channel count mapping family 0 cannot carry.
    #[error(
        "an Opus track with {channels} channels cannot be recorded: only 1 or 2 channels \
         (mapping family 0) are supported"
    )]
    UnsupportedChannels {
        /// The channel count the track was created with.
        channels: u8,
    },
    /// A VP8 keyframe whose header does not parse.
    #[error("the VP8 keyframe is malformed: {0}")]
    Vp8Keyframe(&'static str),
    /// An access unit that is not Annex-B H.264.
    #[error("the H.264 access unit is malformed: {0}")]
    H264(&'static str),
    /// The first H.264 keyframe, with no SPS and PPS in it or before it.
    #[error(
        "the first H.264 keyframe came without an SPS and a PPS (in it or in an earlier frame); \
         the recording's header needs them, so ask the publisher for a keyframe that carries them"
    )]
    MissingParameterSets,
}

/// The largest frame written, 8 MiB (a 4K keyframe is well under it).
pub const MAX_FRAME_BYTES: usize = 8 << 20;
/// How far a frame's timestamp may fall behind the previous one's and still be written (at the
/// previous timestamp): packets a jitter buffer let slip, not a new timeline.
pub const REORDER_TOLERANCE_MS: u64 = 200;
/// A cluster ends after this many ms (far inside the ±32 s a block's relative time can reach).
const CLUSTER_MS: u64 = 5_000;
/// A cluster ends before it would pass this many bytes.
const CLUSTER_BYTES: usize = 1 << 20;
/// A block without a stated duration lasts as long as the step before it, up to a second (as
/// the block clock assumes).
const MAX_STEP_MS: u64 = 1_000;

const EBML: u32 = 0x1A45_DFA3;
const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_A966;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const CLUSTER: u32 = 0x1F43_B675;
const CLUSTER_TIMESTAMP: u32 = 0xE7;
const SIMPLE_BLOCK: u32 = 0xA3;
const BLOCK_GROUP: u32 = 0xA0;
const BLOCK: u32 = 0xA1;
const BLOCK_DURATION: u32 = 0x9B;
const REFERENCE_BLOCK: u32 = 0xFB;
/// The one track's number, as a one-byte vint in block headers.
const TRACK_NUMBER_VINT: u8 = 0x81;
/// Opus decoders need 80 ms of preroll after a seek (what ffmpeg writes).
const OPUS_SEEK_PREROLL_NS: u64 = 80_000_000;

/// A frame accepted but not yet placed in a cluster.
struct Held {
    ts: u64,
    keyframe: bool,
    data: Zeroizing<Vec<u8>>,
}

/// Writes one live track as Matroska; see the [module docs](self).
///
/// Feed it whole frames with [`push`](Self::push) and send on what it appends to `out`; call
/// [`finish`](Self::finish) when the track ends. Timestamps in the file start at 0 at the first
/// frame written ([`first_pts_ms`](Self::first_pts_ms) says where that was on the caller's
/// clock). Frames are plaintext media: every buffer of the writer's that held one is wiped
/// when released.
pub struct LiveMatroska {
    codec: TrackCodec,
    header_written: bool,
    /// H.264 parameter sets seen before the header was written.
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
    /// The caller's timestamp of the first frame written.
    first_pts: Option<u64>,
    /// Timestamps (from the first frame) of the latest frame and the one before it.
    last_ts: u64,
    prev_ts: Option<u64>,
    /// The latest frame's own duration, when its payload says (audio).
    last_len_ms: Option<u64>,
    held: Option<Held>,
    /// The open cluster's body and its timestamp.
    cluster: Zeroizing<Vec<u8>>,
    cluster_ts: Option<u64>,
    written: u64,
    skipped: u64,
}

impl core::fmt::Debug for LiveMatroska {
    // Frame bytes stay out of logs.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LiveMatroska")
            .field("codec", &self.codec)
            .field("header_written", &self.header_written)
            .field("frames_written", &self.written)
            .field("frames_skipped", &self.skipped)
            .field("duration_ms", &self.duration_ms())
            .finish_non_exhaustive()
    }
}

impl LiveMatroska {
    /// A writer for one track; nothing is written before its first frame.
    pub fn new(codec: TrackCodec) -> Self {
        Self {
            codec,
            header_written: false,
            sps: None,
            pps: None,
            first_pts: None,
            last_ts: 0,
            prev_ts: None,
            last_len_ms: None,
            held: None,
            cluster: Zeroizing::new(Vec::new()),
            cluster_ts: None,
            written: 0,
            skipped: 0,
        }
    }

    /// Appends one whole frame (an Opus or PCMU packet's payload, a VP8 frame, an H.264 access
    /// unit in Annex-B) at `pts_ms`, ms since the track started, non-decreasing (a frame up to
    /// [`REORDER_TOLERANCE_MS`] late is written at the previous frame's time). Bytes ready to go
    /// out are appended to `out`. The header goes out with the first frame written; a video
    /// track starts at a keyframe (its header needs the picture size), so video frames before
    /// the first keyframe are skipped and counted. `keyframe` is ignored for audio.
    ///
    /// On error nothing was written for this frame and the writer can take the next one.
    pub fn push(
        &mut self,
        pts_ms: u64,
        keyframe: bool,
        frame: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), MuxError> {
        if frame.is_empty() {
            return Err(MuxError::EmptyFrame);
        }
        if frame.len() > MAX_FRAME_BYTES {
            return Err(MuxError::FrameTooLarge {
                len: frame.len(),
                max: MAX_FRAME_BYTES,
            });
        }
        let video = self.codec.is_video();
        if !self.header_written && video && !keyframe {
            if self.codec == TrackCodec::H264 {
                // A skipped frame may still carry the parameter sets the first keyframe needs.
                if let Ok(nals) = annexb_nals(frame) {
                    self.remember_parameter_sets(&nals);
                }
            }
            self.skipped += 1;
            return Ok(());
        }
        let ts = match self.first_pts {
            None => 0,
            Some(first) => {
                let last_pts = first.saturating_add(self.last_ts);
                if pts_ms < last_pts {
                    if last_pts - pts_ms > REORDER_TOLERANCE_MS {
                        return Err(MuxError::TimestampBackwards {
                            pts_ms,
                            last_pts_ms: last_pts,
                            tolerance_ms: REORDER_TOLERANCE_MS,
                        });
                    }
                    self.last_ts
                } else {
                    pts_ms - first
                }
            }
        };
        let mut data = Zeroizing::new(Vec::new());
        let mut header = None;
        match self.codec {
            TrackCodec::H264 => {
                let nals = annexb_nals(frame)?;
                if !self.header_written {
                    self.remember_parameter_sets(&nals);
                    header = Some(self.header()?);
                }
                data.reserve(frame.len() + 4 * nals.len());
                for nal in nals {
                    let len = u32::try_from(nal.len()).map_err(|_| MuxError::FrameTooLarge {
                        len: frame.len(),
                        max: MAX_FRAME_BYTES,
                    })?;
                    data.extend_from_slice(&len.to_be_bytes());
                    data.extend_from_slice(nal);
                }
            }
            _ => {
                if !self.header_written {
                    header = Some(self.header_for(frame)?);
                }
                data.extend_from_slice(frame);
            }
        }
        if let Some(header) = header {
            out.extend_from_slice(&header);
            self.header_written = true;
            self.first_pts = Some(pts_ms);
            self.sps = None;
            self.pps = None;
        }
        if let Some(held) = self.held.take() {
            self.place_simple(&held, out);
        }
        if self.written > 0 {
            self.prev_ts = Some(self.last_ts);
        }
        self.last_ts = ts;
        self.last_len_ms = match self.codec {
            TrackCodec::Opus { .. } => Some(opus_packet_ms(frame)),
            TrackCodec::Pcmu => Some(frame.len() as u64 / 8),
            _ => None,
        };
        self.held = Some(Held {
            ts,
            keyframe: keyframe || !video,
            data,
        });
        self.written += 1;
        Ok(())
    }

    /// Writes out the last frame (in a block that states its duration) and the last cluster.
    /// Appends nothing if no frame was ever written: the caller then stores nothing.
    pub fn finish(mut self, out: &mut Vec<u8>) {
        if let Some(held) = self.held.take() {
            let duration = self.last_frame_ms();
            let relative = self.open_cluster_for(held.ts, held.keyframe, held.data.len(), out);
            let mut block = Zeroizing::new(Vec::with_capacity(held.data.len() + 4));
            block.push(TRACK_NUMBER_VINT);
            block.extend_from_slice(&relative.to_be_bytes());
            block.push(0);
            block.extend_from_slice(&held.data);
            // The block's header, and room for a duration and a reference.
            let mut group = Zeroizing::new(Vec::with_capacity(block.len() + 32));
            put_element(&mut group, BLOCK, &block);
            if duration > 0 {
                put_uint(&mut group, BLOCK_DURATION, duration);
            }
            if !held.keyframe {
                // A block in a group is a keyframe unless it names the one it refers to.
                let back = self.prev_ts.map_or(0, |p| held.ts.saturating_sub(p));
                let back = i64::try_from(back).unwrap_or(i64::MAX);
                put_sint(&mut group, REFERENCE_BLOCK, -back);
            }
            self.append_to_cluster(BLOCK_GROUP, &group);
        }
        self.close_cluster(out);
    }

    /// How long the written frames last, in ms: from the first frame to the end of the last
    /// (an audio frame's length from its payload; a video frame lasts as long as the step
    /// before it, at most a second). 0 before the first frame.
    pub fn duration_ms(&self) -> u64 {
        if self.written == 0 {
            return 0;
        }
        self.last_ts.saturating_add(self.last_frame_ms())
    }

    /// Frames written (or held for the next cluster), not counting skipped ones.
    pub fn frames_written(&self) -> u64 {
        self.written
    }

    /// Video frames dropped because no keyframe had come yet.
    pub fn frames_skipped(&self) -> u64 {
        self.skipped
    }

    /// The caller's timestamp of the first frame written, which is 0 in the file.
    pub fn first_pts_ms(&self) -> Option<u64> {
        self.first_pts
    }

    /// The EBML `DocType`: always `matroska` (WebM has no PCMU or H.264).
    pub fn doc_type(&self) -> &'static str {
        "matroska"
    }

    /// The file extension: `mka` for audio, `mkv` for video.
    pub fn extension(&self) -> &'static str {
        if self.codec.is_video() { "mkv" } else { "mka" }
    }

    fn last_frame_ms(&self) -> u64 {
        self.last_len_ms.unwrap_or_else(|| {
            self.prev_ts
                .map_or(0, |p| self.last_ts.saturating_sub(p).min(MAX_STEP_MS))
        })
    }

    fn remember_parameter_sets(&mut self, nals: &[&[u8]]) {
        for nal in nals {
            match nal.first().map(|h| h & 0x1F) {
                Some(7) => self.sps = Some(nal.to_vec()),
                Some(8) => self.pps = Some(nal.to_vec()),
                _ => {}
            }
        }
    }

    /// The header of an H.264 track, from the parameter sets remembered.
    fn header(&self) -> Result<Vec<u8>, MuxError> {
        let (Some(sps), Some(pps)) = (&self.sps, &self.pps) else {
            return Err(MuxError::MissingParameterSets);
        };
        let info = parse_sps(sps)?;
        let avcc = avcc(sps, pps, &info)?;
        Ok(file_header(
            "V_MPEG4/ISO/AVC",
            &avcc,
            TrackKind::Video {
                width: info.width,
                height: info.height,
            },
        ))
    }

    /// The header of any other track, given its first frame.
    fn header_for(&self, first: &[u8]) -> Result<Vec<u8>, MuxError> {
        Ok(match self.codec {
            TrackCodec::Opus {
                channels,
                sample_rate,
            } => {
                if !(1..=2).contains(&channels) {
                    return Err(MuxError::UnsupportedChannels { channels });
                }
                // RFC 7845 §5.1. Pre-skip 0: the blocks hold the publisher's packets as sent,
                // and the file lasts exactly as long as they do.
                let mut head = b"OpusHead".to_vec();
                head.extend_from_slice(&[1, channels, 0, 0]);
                head.extend_from_slice(&sample_rate.to_le_bytes());
                head.extend_from_slice(&[0, 0, 0]);
                file_header(
                    "A_OPUS",
                    &head,
                    TrackKind::Audio {
                        rate: 48_000.0,
                        channels,
                        bits: None,
                        seek_preroll_ns: Some(OPUS_SEEK_PREROLL_NS),
                    },
                )
            }
            TrackCodec::Pcmu => {
                // WAVEFORMATEX: WAVE_FORMAT_MULAW, mono, 8000 Hz, 8000 B/s, align 1, 8 bits.
                let mut wfx = Vec::with_capacity(18);
                wfx.extend_from_slice(&7u16.to_le_bytes());
                wfx.extend_from_slice(&1u16.to_le_bytes());
                wfx.extend_from_slice(&8000u32.to_le_bytes());
                wfx.extend_from_slice(&8000u32.to_le_bytes());
                wfx.extend_from_slice(&1u16.to_le_bytes());
                wfx.extend_from_slice(&8u16.to_le_bytes());
                wfx.extend_from_slice(&0u16.to_le_bytes());
                file_header(
                    "A_MS/ACM",
                    &wfx,
                    TrackKind::Audio {
                        rate: 8_000.0,
                        channels: 1,
                        bits: Some(8),
                        seek_preroll_ns: None,
                    },
                )
            }
            TrackCodec::Vp8 => {
                let (width, height) = vp8_keyframe_size(first)?;
                file_header(
                    "V_VP8",
                    &[],
                    TrackKind::Video {
                        width: u32::from(width),
                        height: u32::from(height),
                    },
                )
            }
            TrackCodec::H264 => self.header()?,
        })
    }

    /// Puts a held frame in a cluster as a `SimpleBlock`.
    fn place_simple(&mut self, held: &Held, out: &mut Vec<u8>) {
        let relative = self.open_cluster_for(held.ts, held.keyframe, held.data.len(), out);
        let mut block = Zeroizing::new(Vec::with_capacity(held.data.len() + 4));
        block.push(TRACK_NUMBER_VINT);
        block.extend_from_slice(&relative.to_be_bytes());
        block.push(if held.keyframe { 0x80 } else { 0 });
        block.extend_from_slice(&held.data);
        self.append_to_cluster(SIMPLE_BLOCK, &block);
    }

    /// Appends an element to the open cluster. Growing the buffer moves it; the old one is
    /// wiped as it is dropped, so no copy of a frame is left behind in freed memory.
    fn append_to_cluster(&mut self, id: u32, body: &[u8]) {
        let needed = body.len() + 12;
        if self.cluster.capacity() - self.cluster.len() < needed {
            let capacity = (self.cluster.len() + needed).max(2 * self.cluster.capacity());
            let mut grown = Zeroizing::new(Vec::with_capacity(capacity));
            grown.extend_from_slice(&self.cluster);
            self.cluster = grown;
        }
        put_element(&mut self.cluster, id, body);
    }

    /// Ends the open cluster if a block at `ts` must start a new one, opens one if none is
    /// open, and returns the block's time relative to the cluster.
    fn open_cluster_for(&mut self, ts: u64, keyframe: bool, len: usize, out: &mut Vec<u8>) -> i16 {
        if let Some(start) = self.cluster_ts {
            let full = ts.saturating_sub(start) >= CLUSTER_MS
                || self.cluster.len().saturating_add(len) > CLUSTER_BYTES;
            if full || (keyframe && self.codec.is_video()) {
                self.close_cluster(out);
            }
        }
        let start = *self.cluster_ts.get_or_insert_with(|| {
            put_uint(&mut self.cluster, CLUSTER_TIMESTAMP, ts);
            ts
        });
        // Below CLUSTER_MS by construction, so inside i16.
        i16::try_from(ts.saturating_sub(start)).unwrap_or(i16::MAX)
    }

    fn close_cluster(&mut self, out: &mut Vec<u8>) {
        if self.cluster_ts.take().is_some() {
            put_element(out, CLUSTER, &self.cluster);
        }
        self.cluster.zeroize();
    }
}

/// What the track entry says about the media.
#[derive(Clone, Copy)]
enum TrackKind {
    Audio {
        rate: f64,
        channels: u8,
        bits: Option<u64>,
        seek_preroll_ns: Option<u64>,
    },
    Video {
        width: u32,
        height: u32,
    },
}

/// The EBML head, the start of the segment (unknown size), the info and the one-track list.
fn file_header(codec_id: &str, codec_private: &[u8], kind: TrackKind) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut ebml = Vec::new();
    put_uint(&mut ebml, 0x4286, 1); // EBMLVersion
    put_uint(&mut ebml, 0x42F7, 1); // EBMLReadVersion
    put_uint(&mut ebml, 0x42F2, 4); // EBMLMaxIDLength
    put_uint(&mut ebml, 0x42F3, 8); // EBMLMaxSizeLength
    put_element(&mut ebml, 0x4282, b"matroska"); // DocType
    put_uint(&mut ebml, 0x4287, 4); // DocTypeVersion
    put_uint(&mut ebml, 0x4285, 2); // DocTypeReadVersion
    put_element(&mut out, EBML, &ebml);

    put_id(&mut out, SEGMENT);
    // The 8-byte "unknown" size: the segment's end is not known while it is written.
    out.extend_from_slice(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);

    let mut info = Vec::new();
    put_uint(&mut info, 0x2A_D7B1, 1_000_000); // TimestampScale: 1 ms
    put_element(&mut info, 0x4D80, b"mediaseal"); // MuxingApp
    put_element(&mut info, 0x5741, b"mediaseal"); // WritingApp
    put_element(&mut out, INFO, &info);

    let mut entry = Vec::new();
    put_uint(&mut entry, 0xD7, 1); // TrackNumber
    put_uint(&mut entry, 0x73C5, 1); // TrackUID
    put_uint(&mut entry, 0x9C, 0); // FlagLacing: one frame per block
    put_element(&mut entry, 0x22_B59C, b"und"); // Language
    put_element(&mut entry, 0x86, codec_id.as_bytes()); // CodecID
    if !codec_private.is_empty() {
        put_element(&mut entry, 0x63A2, codec_private); // CodecPrivate
    }
    match kind {
        TrackKind::Audio {
            rate,
            channels,
            bits,
            seek_preroll_ns,
        } => {
            put_uint(&mut entry, 0x83, 2); // TrackType: audio
            if let Some(ns) = seek_preroll_ns {
                put_uint(&mut entry, 0x56BB, ns); // SeekPreRoll
            }
            let mut audio = Vec::new();
            put_element(&mut audio, 0xB5, &rate.to_be_bytes()); // SamplingFrequency
            put_uint(&mut audio, 0x9F, u64::from(channels)); // Channels
            if let Some(bits) = bits {
                put_uint(&mut audio, 0x6264, bits); // BitDepth
            }
            put_element(&mut entry, 0xE1, &audio);
        }
        TrackKind::Video { width, height } => {
            put_uint(&mut entry, 0x83, 1); // TrackType: video
            let mut video = Vec::new();
            put_uint(&mut video, 0xB0, u64::from(width)); // PixelWidth
            put_uint(&mut video, 0xBA, u64::from(height)); // PixelHeight
            put_element(&mut entry, 0xE0, &video);
        }
    }
    let mut tracks = Vec::new();
    put_element(&mut tracks, TRACK_ENTRY, &entry);
    put_element(&mut out, TRACKS, &tracks);
    out
}

/// An element ID: its bytes carry their own length marker.
fn put_id(out: &mut Vec<u8>, id: u32) {
    let bytes = id.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(3);
    out.extend_from_slice(&bytes[skip..]);
}

/// A size as the shortest vint; a value of all ones would read as "unknown", so it takes one
/// more byte.
fn put_size(out: &mut Vec<u8>, size: u64) {
    let len = (1..=8u32)
        .find(|n| size < (1u64 << (7 * n)) - 1)
        .unwrap_or(8);
    let marked = size | (1u64 << (7 * len));
    out.extend_from_slice(&marked.to_be_bytes()[(8 - len as usize)..]);
}

fn put_element(out: &mut Vec<u8>, id: u32, body: &[u8]) {
    put_id(out, id);
    put_size(out, body.len() as u64);
    out.extend_from_slice(body);
}

fn put_uint(out: &mut Vec<u8>, id: u32, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
    put_element(out, id, &bytes[skip..]);
}

fn put_sint(out: &mut Vec<u8>, id: u32, v: i64) {
    let bytes = v.to_be_bytes();
    let len = (1..=8usize)
        .find(|n| {
            let bits = 8 * *n as u32;
            bits == 64 || (v >= -(1i64 << (bits - 1)) && v < (1i64 << (bits - 1)))
        })
        .unwrap_or(8);
    put_element(out, id, &bytes[(8 - len)..]);
}

/// The picture size in a VP8 keyframe's header (RFC 6386 §9.1).
fn vp8_keyframe_size(frame: &[u8]) -> Result<(u16, u16), MuxError> {
    let &[tag, _, _, s0, s1, s2, w0, w1, h0, h1, ..] = frame else {
        return Err(MuxError::Vp8Keyframe(
            "it is shorter than the 10-byte keyframe header",
        ));
    };
    if tag & 1 != 0 {
        return Err(MuxError::Vp8Keyframe(
            "its frame tag marks an interframe, not a keyframe",
        ));
    }
    if [s0, s1, s2] != [0x9D, 0x01, 0x2A] {
        return Err(MuxError::Vp8Keyframe("the start code 9d 01 2a is missing"));
    }
    // The top two bits of each are the upscaling mode, not part of the size.
    let width = u16::from_le_bytes([w0, w1]) & 0x3FFF;
    let height = u16::from_le_bytes([h0, h1]) & 0x3FFF;
    if width == 0 || height == 0 {
        return Err(MuxError::Vp8Keyframe("its width or height is 0"));
    }
    Ok((width, height))
}

/// How long an Opus packet lasts, in whole ms, from its TOC byte (RFC 6716 §3.1); 20 ms when
/// it does not say.
fn opus_packet_ms(packet: &[u8]) -> u64 {
    let Some(&toc) = packet.first() else {
        return 20;
    };
    let config = toc >> 3;
    // Frame length in tenths of a ms.
    let frame = match config {
        0..=11 => [100, 200, 400, 600][usize::from(config % 4)],
        12..=15 => [100, 200][usize::from(config % 2)],
        _ => [25, 50, 100, 200][usize::from(config % 4)],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => match packet.get(1) {
            Some(count) if count & 0x3F > 0 => u64::from(count & 0x3F),
            _ => return 20,
        },
    };
    // A packet holds at most 120 ms.
    (frames * frame / 10).min(120)
}

/// The NAL units of an Annex-B access unit, without their start codes.
fn annexb_nals(au: &[u8]) -> Result<Vec<&[u8]>, MuxError> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= au.len() {
        if au[i] == 0 && au[i + 1] == 0 && au[i + 2] == 1 {
            starts.push(i);
            i += 3;
        } else {
            i += 1;
        }
    }
    let Some(&first) = starts.first() else {
        return Err(MuxError::H264("it has no Annex-B start code (00 00 01)"));
    };
    if au[..first].iter().any(|b| *b != 0) {
        return Err(MuxError::H264(
            "it does not begin with an Annex-B start code (00 00 01)",
        ));
    }
    let mut nals = Vec::with_capacity(starts.len());
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(au.len());
        let mut nal = &au[start + 3..end];
        // Zeros before the next start code are its leading byte or trailing padding.
        while let [rest @ .., 0] = nal {
            nal = rest;
        }
        let Some(&header) = nal.first() else {
            continue;
        };
        if header & 0x80 != 0 || header & 0x1F == 0 {
            return Err(MuxError::H264(
                "a NAL unit header has the forbidden bit set or type 0",
            ));
        }
        nals.push(nal);
    }
    if nals.is_empty() {
        return Err(MuxError::H264("it holds no NAL unit"));
    }
    Ok(nals)
}

/// What the track header needs from an SPS.
#[derive(Debug)]
struct SpsInfo {
    width: u32,
    height: u32,
    /// For high profiles, the `avcC` extension: chroma format and bit depths.
    high: Option<(u8, u8, u8)>,
}

const SPS_ERROR: MuxError = MuxError::H264("its SPS does not parse");

/// An exp-Golomb reader over an RBSP (the NAL payload without emulation prevention bytes).
struct Bits {
    rbsp: Vec<u8>,
    pos: usize,
}

impl Bits {
    fn new(nal_payload: &[u8]) -> Self {
        let mut rbsp = Vec::with_capacity(nal_payload.len());
        let mut zeros = 0;
        for &b in nal_payload {
            if zeros >= 2 && b == 3 {
                zeros = 0;
                continue;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            rbsp.push(b);
        }
        Self { rbsp, pos: 0 }
    }

    fn bit(&mut self) -> Result<u32, MuxError> {
        let byte = self.rbsp.get(self.pos / 8).ok_or(SPS_ERROR)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(u32::from(bit))
    }

    fn bits(&mut self, n: u32) -> Result<u32, MuxError> {
        let mut v = 0;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Ok(v)
    }

    fn ue(&mut self) -> Result<u32, MuxError> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return Err(SPS_ERROR);
            }
        }
        let v = (1u64 << zeros) - 1 + u64::from(self.bits(zeros)?);
        u32::try_from(v).map_err(|_| SPS_ERROR)
    }

    fn se(&mut self) -> Result<i64, MuxError> {
        let k = i64::from(self.ue()?);
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

/// The picture size (after cropping) and chroma format of an SPS (H.264 §7.3.2.1.1).
fn parse_sps(sps: &[u8]) -> Result<SpsInfo, MuxError> {
    let mut r = Bits::new(sps.get(1..).ok_or(SPS_ERROR)?);
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level
    r.ue()?; // seq_parameter_set_id
    let (mut chroma_format, mut separate_planes, mut high) = (1, false, None);
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format = r.ue()?;
        if chroma_format > 3 {
            return Err(SPS_ERROR);
        }
        if chroma_format == 3 {
            separate_planes = r.bit()? == 1;
        }
        let luma = r.ue()?;
        let chroma = r.ue()?;
        if luma > 6 || chroma > 6 {
            return Err(SPS_ERROR);
        }
        high = Some((chroma_format as u8, luma as u8, chroma as u8));
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? == 1 {
            let lists = if chroma_format == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i64, 8i64);
                    for _ in 0..size {
                        if next != 0 {
                            next = (last + r.se()? + 256).rem_euclid(256);
                        }
                        if next != 0 {
                            last = next;
                        }
                    }
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.bit()?;
            r.se()?;
            r.se()?;
            let cycle = r.ue()?;
            if cycle > 255 {
                return Err(SPS_ERROR);
            }
            for _ in 0..cycle {
                r.se()?;
            }
        }
        2 => {}
        _ => return Err(SPS_ERROR),
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = u64::from(r.ue()?) + 1;
    let height_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = u64::from(r.bit()?);
    if frame_mbs_only == 0 {
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag
    let mut crop = [0u64; 4];
    if r.bit()? == 1 {
        for c in &mut crop {
            *c = u64::from(r.ue()?);
        }
    }
    // Crop units (Table 6-1): chroma samples for 4:2:0 and 4:2:2, luma for 4:4:4 and mono.
    let (sub_w, sub_h) = match (chroma_format, separate_planes) {
        (1, _) => (2, 2),
        (2, _) => (2, 1),
        _ => (1, 1),
    };
    let (unit_x, unit_y) = (sub_w, sub_h * (2 - frame_mbs_only));
    let width = (width_mbs * 16)
        .checked_sub(unit_x * (crop[0] + crop[1]))
        .ok_or(SPS_ERROR)?;
    let height = ((2 - frame_mbs_only) * height_units * 16)
        .checked_sub(unit_y * (crop[2] + crop[3]))
        .ok_or(SPS_ERROR)?;
    let width = u32::try_from(width).map_err(|_| SPS_ERROR)?;
    let height = u32::try_from(height).map_err(|_| SPS_ERROR)?;
    if width == 0 || height == 0 {
        return Err(SPS_ERROR);
    }
    Ok(SpsInfo {
        width,
        height,
        high,
    })
}

/// The `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §5.2.4.1) for one SPS and one PPS,
/// with 4-byte NAL lengths.
fn avcc(sps: &[u8], pps: &[u8], info: &SpsInfo) -> Result<Vec<u8>, MuxError> {
    let (Ok(sps_len), Ok(pps_len)) = (u16::try_from(sps.len()), u16::try_from(pps.len())) else {
        return Err(MuxError::H264("its SPS or PPS is longer than 65535 bytes"));
    };
    let [_, profile, compatibility, level, ..] = *sps else {
        return Err(SPS_ERROR);
    };
    let mut out = vec![1, profile, compatibility, level, 0xFF, 0xE1];
    out.extend_from_slice(&sps_len.to_be_bytes());
    out.extend_from_slice(sps);
    out.push(1);
    out.extend_from_slice(&pps_len.to_be_bytes());
    out.extend_from_slice(pps);
    if let Some((chroma, luma, chroma_depth)) = info.high {
        out.extend_from_slice(&[0xFC | chroma, 0xF8 | luma, 0xF8 | chroma_depth, 0]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matroska::{BlockClock, sniff};

    /// A VP8 keyframe header for 320x240 followed by some bytes.
    fn vp8_key() -> Vec<u8> {
        let mut f = vec![0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A];
        f.extend_from_slice(&320u16.to_le_bytes());
        f.extend_from_slice(&240u16.to_le_bytes());
        f.extend_from_slice(&[0xAB; 20]);
        f
    }

    fn measure(bytes: &[u8]) -> Option<u64> {
        let mut clock = BlockClock::new();
        for part in bytes.chunks(5) {
            clock.feed(part);
        }
        clock.duration_ms()
    }

    #[test]
    fn sizes_are_shortest_and_never_unknown() {
        let enc = |v| {
            let mut o = Vec::new();
            put_size(&mut o, v);
            o
        };
        assert_eq!(enc(0), [0x80]);
        assert_eq!(enc(126), [0xFE]);
        assert_eq!(enc(127), [0x40, 0x7F]);
        assert_eq!(enc(300), [0x41, 0x2C]);
        let sint = |v| {
            let mut o = Vec::new();
            put_sint(&mut o, 0xFB, v);
            o
        };
        assert_eq!(sint(-40), [0xFB, 0x81, 0xD8]);
        assert_eq!(sint(-200), [0xFB, 0x82, 0xFF, 0x38]);
    }

    #[test]
    fn video_waits_for_a_keyframe() {
        let mut mkv = LiveMatroska::new(TrackCodec::Vp8);
        let mut out = Vec::new();
        mkv.push(0, false, &[0x31, 0, 0, 1, 2], &mut out).unwrap();
        mkv.push(33, false, &[0x31, 0, 0, 1, 2], &mut out).unwrap();
        assert!(out.is_empty());
        assert_eq!((mkv.frames_written(), mkv.frames_skipped()), (0, 2));
        mkv.push(66, true, &vp8_key(), &mut out).unwrap();
        mkv.push(99, false, &[0x31, 0, 0, 1, 2], &mut out).unwrap();
        assert_eq!(mkv.first_pts_ms(), Some(66));
        assert_eq!(mkv.extension(), "mkv");
        assert_eq!(mkv.duration_ms(), 66);
        assert_eq!(sniff(&out).unwrap().doc_type, "matroska");
        assert_eq!(sniff(&out).unwrap().duration_ms, None);
        mkv.finish(&mut out);
        assert_eq!(measure(&out), Some(66));
        // The last block is an interframe in a group: it refers to the block 33 ms before it.
        assert!(out.windows(3).any(|w| w == [0xFB, 0x81, 0xDF]));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x = 0x2545_f491u32;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        let sps = [0, 0, 0, 1, 0x67, 0x42, 0xC0, 0x0D, 0xD9, 0x01, 0x41, 0xFE];
        for round in 0..3000 {
            let len = 1 + next() as usize % 40;
            let mut frame: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if round % 2 == 0 {
                // Start codes and SPS prefixes make the H.264 paths reach the SPS parser.
                frame.splice(0..0, sps[..next() as usize % sps.len()].iter().copied());
            }
            for codec in [TrackCodec::H264, TrackCodec::Vp8] {
                let mut out = Vec::new();
                let mut mkv = LiveMatroska::new(codec);
                let _ = mkv.push(0, true, &frame, &mut out);
                let _ = mkv.push(20, next() % 2 == 0, &frame, &mut out);
                mkv.finish(&mut out);
            }
            let _ = parse_sps(&frame);
        }
    }

    #[test]
    fn nothing_is_written_without_frames() {
        let mut out = Vec::new();
        LiveMatroska::new(TrackCodec::Pcmu).finish(&mut out);
        assert!(out.is_empty());
        let mut mkv = LiveMatroska::new(TrackCodec::H264);
        mkv.push(0, false, &[0, 0, 1, 0x41, 1], &mut out).unwrap();
        mkv.finish(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_truncated_or_false_vp8_keyframe_is_an_error() {
        let mut out = Vec::new();
        let key = vp8_key();
        let mut mkv = LiveMatroska::new(TrackCodec::Vp8);
        for cut in 0..10 {
            assert!(matches!(
                mkv.push(0, true, &key[..cut], &mut out),
                Err(MuxError::Vp8Keyframe(_) | MuxError::EmptyFrame)
            ));
        }
        let mut inter = key.clone();
        inter[0] |= 1;
        assert!(mkv.push(0, true, &inter, &mut out).is_err());
        let mut no_code = key.clone();
        no_code[4] = 0;
        assert!(mkv.push(0, true, &no_code, &mut out).is_err());
        assert!(out.is_empty());
        assert_eq!(mkv.frames_written(), 0);
        // The writer is still usable.
        mkv.push(0, true, &key, &mut out).unwrap();
        assert_eq!(mkv.frames_written(), 1);
    }

    #[test]
    fn timestamps_only_go_forward() {
        let mut out = Vec::new();
        let mut mka = LiveMatroska::new(TrackCodec::Pcmu);
        mka.push(1000, false, &[0xFF; 160], &mut out).unwrap();
        mka.push(1020, false, &[0xFF; 160], &mut out).unwrap();
        // A little late: written at the previous time.
        mka.push(1010, false, &[0xFF; 160], &mut out).unwrap();
        assert_eq!(mka.duration_ms(), 40);
        let err = mka.push(500, false, &[0xFF; 160], &mut out).unwrap_err();
        assert_eq!(
            err,
            MuxError::TimestampBackwards {
                pts_ms: 500,
                last_pts_ms: 1020,
                tolerance_ms: REORDER_TOLERANCE_MS
            }
        );
        assert_eq!(mka.frames_written(), 3);
        assert_eq!(
            mka.push(1040, false, &[], &mut out),
            Err(MuxError::EmptyFrame)
        );
        let big = vec![0; MAX_FRAME_BYTES + 1];
        assert!(matches!(
            mka.push(1040, false, &big, &mut out),
            Err(MuxError::FrameTooLarge { .. })
        ));
        mka.finish(&mut out);
        assert_eq!(measure(&out), Some(40));
    }

    fn clusters(bytes: &[u8]) -> usize {
        bytes
            .windows(4)
            .filter(|w| *w == [0x1F, 0x43, 0xB6, 0x75])
            .count()
    }

    #[test]
    fn clusters_end_at_five_seconds_a_mebibyte_and_a_gap() {
        let mut out = Vec::new();
        let mut mka = LiveMatroska::new(TrackCodec::Pcmu);
        // 12 s of 20 ms packets: clusters at 0, 5 and 10 s.
        for n in 0..600 {
            mka.push(n * 20, false, &[0x7F; 160], &mut out).unwrap();
        }
        // 40 s of silence, beyond a block's ±32 s reach from its cluster.
        mka.push(52_000, false, &[0x7F; 160], &mut out).unwrap();
        // The 0 and 5 s clusters are out; the 10 s one and the held frame wait.
        assert_eq!(clusters(&out), 2);
        mka.push(52_020, false, &[0x7F; 160], &mut out).unwrap();
        assert_eq!(mka.duration_ms(), 52_040);
        mka.finish(&mut out);
        assert_eq!(clusters(&out), 4);
        assert_eq!(measure(&out), Some(52_040));

        let mut out = Vec::new();
        let mut mkv = LiveMatroska::new(TrackCodec::Vp8);
        let mut big = vec![0x31; 400_000];
        mkv.push(0, true, &vp8_key(), &mut out).unwrap();
        for n in 1..=5 {
            big[1] = n as u8;
            mkv.push(n * 40, false, &big, &mut out).unwrap();
        }
        mkv.finish(&mut out);
        // 1 + 2 x 400 kB, then 2 x 400 kB, then the last: three clusters under 1 MiB.
        assert_eq!(clusters(&out), 3);
        assert_eq!(measure(&out), Some(240));
    }

    #[test]
    fn opus_channels_and_packet_lengths() {
        let mut out = Vec::new();
        let mut bad = LiveMatroska::new(TrackCodec::Opus {
            channels: 6,
            sample_rate: 48_000,
        });
        assert_eq!(
            bad.push(0, true, &[0xFC, 1], &mut out),
            Err(MuxError::UnsupportedChannels { channels: 6 })
        );
        assert!(out.is_empty());
        // CELT 20 ms, one frame; SILK 60 ms; two CELT 10 ms frames; code 3 with 3 x 20 ms.
        assert_eq!(opus_packet_ms(&[0xF8]), 20);
        assert_eq!(opus_packet_ms(&[0x18]), 60);
        assert_eq!(opus_packet_ms(&[0xF1]), 20);
        assert_eq!(opus_packet_ms(&[0xFB, 0x03]), 60);
        assert_eq!(opus_packet_ms(&[0xFB]), 20);
    }

    #[test]
    fn garbage_h264_is_an_error() {
        let mut out = Vec::new();
        let mut mkv = LiveMatroska::new(TrackCodec::H264);
        for au in [
            &b"hello world"[..],
            &[1, 0, 0, 1, 0x65, 1],
            &[0, 0, 1, 0xE5, 1],
            &[0, 0, 0, 1, 0, 0, 0, 1],
        ] {
            assert!(
                matches!(mkv.push(0, true, au, &mut out), Err(MuxError::H264(_))),
                "{au:?}"
            );
        }
        // An IDR slice with no parameter sets anywhere.
        assert_eq!(
            mkv.push(0, true, &[0, 0, 0, 1, 0x65, 0x88, 0x84], &mut out),
            Err(MuxError::MissingParameterSets)
        );
        // An SPS that ends after its profile.
        let bad_sps = [
            0, 0, 0, 1, 0x67, 0x42, 0, 0, 1, 0x68, 0xCE, 0, 0, 1, 0x65, 1,
        ];
        assert!(matches!(
            mkv.push(0, true, &bad_sps, &mut out),
            Err(MuxError::H264(_))
        ));
        assert!(out.is_empty());
        for cut in 0..bad_sps.len() {
            let _ = parse_sps(&bad_sps[4..cut.max(4)]);
        }
    }

    #[test]
    fn parses_a_cropped_sps() {
        // x264, baseline, 318x238: 20x15 macroblocks cropped by 1 chroma sample right/bottom.
        let sps = [
            0x67, 0x42, 0xC0, 0x0D, 0xD9, 0x01, 0x41, 0xFE, 0xAB, 0x01, 0x10, 0x00, 0x00, 0x03,
            0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xF1, 0x42, 0xA4, 0x80,
        ];
        let info = parse_sps(&sps).unwrap();
        assert_eq!((info.width, info.height), (318, 238));
    }
}
