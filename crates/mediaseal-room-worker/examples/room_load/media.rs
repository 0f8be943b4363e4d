//! What the load generator's publishers send: pre-encoded clips (`--opus FILE.ogg`,
//! `--vp8 FILE.ivf`, made by `scripts/bench-rooms.sh` with ffmpeg) replayed in a loop, or
//! without them the synthetic Opus- and VP8-shaped payloads. Either way every frame ends with
//! the measurement marker (publisher, sequence, send time), which receivers read from the end
//! of the depacketized frame. Also the publisher's answers to the SFU's feedback: a keyframe
//! request (PLI/FIR) makes the next video frame the clip's keyframe that opens the current
//! group of pictures; NACKs are answered by str0m from its resend cache, and counted here from
//! its egress statistics.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mediaseal_rooms::str0m::media::{KeyframeRequest, Mid};
use mediaseal_rooms::str0m::stats::MediaEgressStats;

use super::Res;

/// Marker byte, then publisher index (2 bytes), sequence (8), send time in ns since the epoch (8).
const MARK: u8 = b'L';
const MARKER_LEN: usize = 19;
/// Synthetic payload sizes.
const OPUS_LEN: usize = 80;
const VP8_LEN: usize = 1000;
/// Synthetic audio's first byte (the TOC byte of a 20 ms CELT frame).
const OPUS_TOC: u8 = 0xfc;
/// Synthetic video frame rate.
const SYNTHETIC_FPS: u32 = 30;
/// Largest frame a clip may hold: far above what a 640×360 clip needs, it keeps a corrupt
/// length field from allocating gigabytes.
const MAX_FRAME: usize = 4 << 20;

/// One encoded frame of a clip.
struct Frame {
    data: Vec<u8>,
    keyframe: bool,
}

/// A clip's frames, in order.
struct Clip {
    path: PathBuf,
    frames: Vec<Frame>,
}

/// The video clip and its timing (from the IVF header's time base).
struct Video {
    clip: Clip,
    /// Frame duration as a fraction of a second: `scale / rate`.
    rate: u32,
    scale: u32,
}

/// What every publisher replays.
pub(crate) struct Source {
    opus: Option<Clip>,
    video: Option<Video>,
}

/// One publisher's place in the clips and the feedback it got.
#[derive(Default)]
pub(crate) struct Replay {
    /// Next video frame of the clip.
    vpos: usize,
    /// A keyframe request arrived: the next video frame is a keyframe.
    keyframe_wanted: bool,
    /// Keyframe requests (PLI or FIR) received.
    pub(crate) plis: u64,
    /// Keyframes sent because of a request.
    pub(crate) keyframes_on_request: u64,
    /// NACKs and RTP packets str0m counted per sent media (cumulative, latest report).
    nacks: [u64; 2],
    rtp: [u64; 2],
}

impl Replay {
    pub(crate) fn on_keyframe_request(&mut self, req: &KeyframeRequest, video: Option<Mid>) {
        if Some(req.mid) == video {
            self.plis += 1;
            self.keyframe_wanted = true;
        }
    }

    /// str0m's egress statistics are cumulative per media: keep the latest.
    pub(crate) fn on_egress(
        &mut self,
        s: &MediaEgressStats,
        audio: Option<Mid>,
        video: Option<Mid>,
    ) {
        let slot = if Some(s.mid) == audio {
            0
        } else if Some(s.mid) == video {
            1
        } else {
            return;
        };
        self.nacks[slot] = self.nacks[slot].max(s.nacks);
        self.rtp[slot] = self.rtp[slot].max(s.packets);
    }

    pub(crate) fn nacks(&self) -> u64 {
        self.nacks.iter().sum()
    }

    pub(crate) fn rtp_packets(&self) -> u64 {
        self.rtp.iter().sum()
    }
}

impl Source {
    pub(crate) fn load(opus: Option<&Path>, vp8: Option<&Path>) -> Res<Self> {
        Ok(Self {
            opus: opus.map(load_ogg_opus).transpose()?,
            video: vp8.map(load_ivf_vp8).transpose()?,
        })
    }

    /// For the RESULT line: what is sent.
    pub(crate) fn describe(&self) -> String {
        format!(
            "audio_src={} video_src={} video_fps={:.2}",
            self.opus.as_ref().map_or("synthetic", |_| "opus-clip"),
            self.video.as_ref().map_or("synthetic", |_| "vp8-clip"),
            self.fps()
        )
    }

    /// Video frames per second.
    pub(crate) fn fps(&self) -> f64 {
        match &self.video {
            Some(v) => f64::from(v.rate) / f64::from(v.scale),
            None => f64::from(SYNTHETIC_FPS),
        }
    }

    /// Time between video frames.
    pub(crate) fn video_interval(&self) -> Duration {
        match &self.video {
            Some(v) => Duration::from_nanos(
                (1_000_000_000u64 * u64::from(v.scale) / u64::from(v.rate)).max(1),
            ),
            None => Duration::from_secs(1) / SYNTHETIC_FPS,
        }
    }

    /// RTP time (90 kHz) of video frame `vseq`, computed from the start so it does not drift.
    pub(crate) fn video_rtp_time(&self, vseq: u64) -> u64 {
        let (rate, scale) = match &self.video {
            Some(v) => (v.rate, v.scale),
            None => (SYNTHETIC_FPS, 1),
        };
        (u128::from(vseq) * 90_000 * u128::from(scale) / u128::from(rate)) as u64
    }

    /// Audio frame `seq`: the clip's next Opus packet (looped), or the synthetic one.
    pub(crate) fn audio(&self, index: u16, seq: u64, now: Instant, epoch: Instant) -> Vec<u8> {
        let mut p = match &self.opus {
            Some(clip) => clip.frames[(seq % clip.frames.len() as u64) as usize]
                .data
                .clone(),
            None => {
                let mut p = vec![0x5a; OPUS_LEN - MARKER_LEN];
                p[0] = OPUS_TOC;
                p
            }
        };
        push_marker(&mut p, index, seq, now, epoch);
        p
    }

    /// Video frame `vseq`: the clip's next VP8 frame (looped; the opening keyframe of the
    /// current group of pictures after a keyframe request), or the synthetic one.
    pub(crate) fn video(
        &self,
        replay: &mut Replay,
        index: u16,
        vseq: u64,
        now: Instant,
        epoch: Instant,
    ) -> Vec<u8> {
        let wanted = std::mem::take(&mut replay.keyframe_wanted);
        let mut p = match &self.video {
            Some(v) => {
                let frames = &v.clip.frames;
                let mut at = replay.vpos % frames.len();
                if wanted && !frames[at].keyframe {
                    // The clip starts with a keyframe (checked on load), so one is found.
                    at = (0..=at).rev().find(|&i| frames[i].keyframe).unwrap_or(0);
                }
                if wanted {
                    replay.keyframes_on_request += 1;
                }
                replay.vpos = (at + 1) % frames.len();
                frames[at].data.clone()
            }
            None => {
                // A keyframe a second, and on request.
                let key = wanted || vseq.is_multiple_of(u64::from(SYNTHETIC_FPS));
                if wanted {
                    replay.keyframes_on_request += 1;
                }
                let mut p = vec![0x5a; VP8_LEN - MARKER_LEN];
                p[..SYNTHETIC_VP8_HEADER.len()].copy_from_slice(&SYNTHETIC_VP8_HEADER);
                p[0] |= u8::from(!key);
                p
            }
        };
        push_marker(&mut p, index, vseq, now, epoch);
        p
    }
}

/// The first bytes of a synthetic VP8 keyframe (RFC 6386 §9.1): the frame tag (bit 0 clear on
/// keyframes, shown, a 100-byte first partition), the start code and a 640×360 picture size.
/// The recorder reads the size from the first keyframe.
const SYNTHETIC_VP8_HEADER: [u8; 10] = [0x90, 0x0c, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01];

fn push_marker(p: &mut Vec<u8>, index: u16, seq: u64, now: Instant, epoch: Instant) {
    p.push(MARK);
    p.extend_from_slice(&index.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(now.duration_since(epoch).as_nanos() as u64).to_be_bytes());
}

/// The send time (ns since the epoch) in the marker that ends a received frame.
pub(crate) fn read_marker(frame: &[u8]) -> Option<u64> {
    let at = frame.len().checked_sub(MARKER_LEN)?;
    let m = &frame[at..];
    if m[0] != MARK {
        return None;
    }
    Some(u64::from_be_bytes(m[11..19].try_into().ok()?))
}

fn read_file(path: &Path, what: &str) -> Res<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        format!(
            "read the {what} clip {}: {e} (scripts/bench-rooms.sh makes it with ffmpeg)",
            path.display()
        )
        .into()
    })
}

fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Opus packets of an Ogg Opus file (RFC 3533 pages, RFC 7845 mapping): the packets of the
/// first logical stream, without its two header packets (OpusHead, OpusTags).
fn load_ogg_opus(path: &Path) -> Res<Clip> {
    let bytes = read_file(path, "Opus")?;
    let bad = |why: String| format!("{} is not a usable Ogg Opus file: {why}", path.display());
    let mut packets: Vec<Vec<u8>> = Vec::new();
    let mut partial: Vec<u8> = Vec::new();
    let mut serial = None;
    let mut pos = 0;
    while pos < bytes.len() {
        let page = &bytes[pos..];
        if page.len() < 27 || &page[..4] != b"OggS" {
            return Err(bad(format!("no Ogg page header at byte {pos}")).into());
        }
        if page[4] != 0 {
            return Err(bad(format!("Ogg version {} at byte {pos}", page[4])).into());
        }
        let page_serial = le_u32(page, 14).ok_or_else(|| bad("truncated page".into()))?;
        let segments = usize::from(page[26]);
        let table = page
            .get(27..27 + segments)
            .ok_or_else(|| bad(format!("truncated segment table at byte {pos}")))?;
        let body_len: usize = table.iter().map(|&s| usize::from(s)).sum();
        let body_start = 27 + segments;
        let body = page
            .get(body_start..body_start + body_len)
            .ok_or_else(|| bad(format!("page at byte {pos} runs past the end of the file")))?;
        pos += body_start + body_len;
        // Other logical streams (a multiplexed file) are not ours.
        if *serial.get_or_insert(page_serial) != page_serial {
            continue;
        }
        let mut off = 0;
        for &seg in table {
            let seg = usize::from(seg);
            partial.extend_from_slice(&body[off..off + seg]);
            off += seg;
            if partial.len() > MAX_FRAME {
                return Err(bad(format!("a packet longer than {MAX_FRAME} bytes")).into());
            }
            // A lacing value under 255 ends a packet; 255 continues it (maybe on the next page).
            if seg < 255 {
                packets.push(std::mem::take(&mut partial));
            }
        }
    }
    if packets.first().is_none_or(|p| !p.starts_with(b"OpusHead")) {
        return Err(
            bad("the first packet is not OpusHead (encode with -c:a libopus)".into()).into(),
        );
    }
    if packets.get(1).is_none_or(|p| !p.starts_with(b"OpusTags")) {
        return Err(bad("the second packet is not OpusTags".into()).into());
    }
    let frames: Vec<Frame> = packets
        .into_iter()
        .skip(2)
        .filter(|p| !p.is_empty())
        .map(|data| Frame {
            data,
            keyframe: true,
        })
        .collect();
    if frames.is_empty() {
        return Err(bad("no audio packets after the headers".into()).into());
    }
    Ok(Clip {
        path: path.to_owned(),
        frames,
    })
}

/// VP8 frames of an IVF file: a 32-byte header (`DKIF`, fourcc `VP80`, time base), then frames
/// each behind a 12-byte header (length, timestamp). A keyframe has bit 0 of its first byte
/// clear (RFC 6386 §9.1).
fn load_ivf_vp8(path: &Path) -> Res<Video> {
    let bytes = read_file(path, "VP8")?;
    let bad = |why: String| format!("{} is not a usable VP8 IVF file: {why}", path.display());
    if bytes.len() < 32 || &bytes[..4] != b"DKIF" {
        return Err(bad("no DKIF header".into()).into());
    }
    if &bytes[8..12] != b"VP80" {
        return Err(bad(format!(
            "codec {:?}, not VP80 (encode with -c:v libvpx)",
            String::from_utf8_lossy(&bytes[8..12])
        ))
        .into());
    }
    let header_len = usize::from(le_u16(&bytes, 6).unwrap_or(32)).max(32);
    let rate = le_u32(&bytes, 16).unwrap_or(0);
    let scale = le_u32(&bytes, 20).unwrap_or(0);
    // Between 1 and 240 frames per second.
    if rate == 0 || scale == 0 || rate > scale.saturating_mul(240) || scale > rate {
        return Err(bad(format!(
            "time base {scale}/{rate} s per frame is out of range"
        ))
        .into());
    }
    let mut frames = Vec::new();
    let mut pos = header_len;
    while pos < bytes.len() {
        let len = le_u32(&bytes, pos)
            .ok_or_else(|| bad(format!("truncated frame header at byte {pos}")))?
            as usize;
        if len > MAX_FRAME {
            return Err(bad(format!("frame of {len} bytes at byte {pos}")).into());
        }
        let start = pos + 12;
        let data = bytes
            .get(start..start + len)
            .ok_or_else(|| bad(format!("frame at byte {pos} runs past the end of the file")))?;
        pos = start + len;
        if let Some(&tag) = data.first() {
            frames.push(Frame {
                data: data.to_vec(),
                keyframe: tag & 1 == 0,
            });
        }
    }
    if !frames.first().is_some_and(|f| f.keyframe) {
        return Err(bad("the first frame is not a keyframe".into()).into());
    }
    Ok(Video {
        clip: Clip {
            path: path.to_owned(),
            frames,
        },
        rate,
        scale,
    })
}

impl Source {
    /// One line on stderr about the clips, so a run says what it replayed.
    pub(crate) fn announce(&self) {
        if let Some(c) = &self.opus {
            eprintln!(
                "replaying {} Opus packets from {}",
                c.frames.len(),
                c.path.display()
            );
        }
        if let Some(v) = &self.video {
            let keys = v.clip.frames.iter().filter(|f| f.keyframe).count();
            eprintln!(
                "replaying {} VP8 frames ({keys} keyframes) at {:.2} fps from {}",
                v.clip.frames.len(),
                self.fps(),
                v.clip.path.display()
            );
        }
    }
}
