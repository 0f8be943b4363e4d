//! Call recording, off the packet path: the frames the relay's tap hands out, and the mixer
//! that turns them into a streaming WAV file.
//!
//! The relay decodes each authenticated audio packet of a recorded call to 16-bit PCM and
//! offers it, with its position on the recording's timeline, to a bounded queue. If the queue
//! is full the frame is dropped and counted: a slow recorder never delays audio. The consumer
//! feeds frames to a [`Mixer`], which places them by position (so jitter, reordering and the
//! two directions arriving independently do not matter), fills gaps with silence, and writes
//! WAV bytes once a frame is older than the mixing latency. The bytes go to the sealing sink as
//! they are produced, so a recording is never whole in plaintext anywhere.
//!
//! Layouts: [`Layout::Mono`] mixes both parties (`record-from-answer`, `<Record>` of the
//! caller); [`Layout::Dual`] puts the caller in channel 1 and the callee in channel 2
//! (`record-from-answer-dual`), as Twilio does.

use std::collections::VecDeque;

use mediaseal_media::wav::{self, Coding};

use crate::prompt::SAMPLE_RATE;

/// Whose audio a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Track {
    /// The party that called the domain (leg A).
    Caller,
    /// The party the call dialled (leg B).
    Callee,
}

impl Track {
    fn index(self) -> usize {
        match self {
            Self::Caller => 0,
            Self::Callee => 1,
        }
    }
}

/// 20 ms of decoded audio from one party, placed on the recording's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapFrame {
    /// Whose audio.
    pub track: Track,
    /// Position of the first sample, in samples (8 kHz) since the recording started.
    pub position: u64,
    /// The samples.
    pub samples: Vec<i16>,
}

/// Where the relay puts tap frames. Implementations must never block: return the frame back
/// when the queue is full and the relay counts it as dropped.
pub trait FrameSink: Send {
    /// Offers a frame; `Err(frame)` means "full, dropped".
    fn try_push(&mut self, frame: TapFrame) -> Result<(), TapFrame>;
}

/// Which parties the tap takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TapTracks {
    /// Only the caller (`<Record>`, or a call not bridged yet).
    CallerOnly,
    /// Both parties of a bridged call.
    Both,
}

/// Channel layout of a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One channel: every track mixed.
    Mono,
    /// Two channels: caller, then callee.
    Dual,
}

impl Layout {
    /// Number of channels.
    pub fn channels(self) -> u16 {
        match self {
            Self::Mono => 1,
            Self::Dual => 2,
        }
    }
}

/// Places frames on a timeline and writes 16-bit PCM WAV (streaming header) in order.
#[derive(Debug)]
pub struct Mixer {
    layout: Layout,
    latency: u64,
    max_lookahead: u64,
    /// Samples before this position are written.
    flushed: u64,
    /// Per track, samples from `flushed` on (0 = silence or not yet arrived).
    tracks: [VecDeque<i16>; 2],
    /// End of the furthest frame seen.
    end: u64,
    header_written: bool,
    late_samples: u64,
}

impl Mixer {
    /// A mixer that writes a frame once it is `latency_ms` behind the newest audio. Frames more
    /// than 10 s ahead of what is written push the written position forward (silence).
    pub fn new(layout: Layout, latency_ms: u32) -> Self {
        Self {
            layout,
            latency: u64::from(SAMPLE_RATE / 1000 * latency_ms),
            max_lookahead: u64::from(SAMPLE_RATE) * 10,
            flushed: 0,
            tracks: [VecDeque::new(), VecDeque::new()],
            end: 0,
            header_written: false,
            late_samples: 0,
        }
    }

    /// Adds a frame and appends whatever became final to `out`.
    pub fn push(&mut self, frame: &TapFrame, out: &mut Vec<u8>) {
        self.header(out);
        let len = frame.samples.len() as u64;
        let frame_end = frame.position.saturating_add(len);
        if frame_end > self.flushed.saturating_add(self.max_lookahead) {
            let to = frame_end - self.max_lookahead;
            self.flush_to(to, out);
        }
        let skip = self.flushed.saturating_sub(frame.position);
        self.late_samples += skip.min(len);
        let track = &mut self.tracks[frame.track.index()];
        for (i, &s) in frame.samples.iter().enumerate().skip(skip as usize) {
            let at = (frame.position + i as u64 - self.flushed) as usize;
            if track.len() <= at {
                track.resize(at + 1, 0);
            }
            if let Some(slot) = track.get_mut(at) {
                *slot = s;
            }
        }
        self.end = self.end.max(frame_end);
        let ready = self.end.saturating_sub(self.latency);
        self.flush_to(ready, out);
    }

    /// Writes everything up to the newest frame (call when the recording stops).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.header(out);
        self.flush_to(self.end, out);
    }

    /// Samples written so far, per channel.
    pub fn written_samples(&self) -> u64 {
        self.flushed
    }

    /// Duration written so far, in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        self.flushed * 1000 / u64::from(SAMPLE_RATE)
    }

    /// Samples that arrived after their position was already written (dropped).
    pub fn late_samples(&self) -> u64 {
        self.late_samples
    }

    fn header(&mut self, out: &mut Vec<u8>) {
        if !self.header_written {
            out.extend_from_slice(&wav::streaming_header(
                Coding::Pcm,
                self.layout.channels(),
                SAMPLE_RATE,
            ));
            self.header_written = true;
        }
    }

    fn flush_to(&mut self, to: u64, out: &mut Vec<u8>) {
        if to <= self.flushed {
            return;
        }
        let n = (to - self.flushed) as usize;
        out.reserve(n * 2 * usize::from(self.layout.channels()));
        let [a, b] = &mut self.tracks;
        for _ in 0..n {
            let x = a.pop_front().unwrap_or(0);
            let y = b.pop_front().unwrap_or(0);
            match self.layout {
                Layout::Mono => {
                    let mixed = (i32::from(x) + i32::from(y))
                        .clamp(i32::from(i16::MIN), i32::from(i16::MAX))
                        as i16;
                    out.extend_from_slice(&mixed.to_le_bytes());
                }
                Layout::Dual => {
                    out.extend_from_slice(&x.to_le_bytes());
                    out.extend_from_slice(&y.to_le_bytes());
                }
            }
        }
        self.flushed = to;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(track: Track, position: u64, value: i16) -> TapFrame {
        TapFrame {
            track,
            position,
            samples: vec![value; 160],
        }
    }

    fn samples(bytes: &[u8]) -> Vec<i16> {
        bytes
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect()
    }

    #[test]
    fn dual_places_tracks_in_their_channels_despite_jitter() {
        let mut m = Mixer::new(Layout::Dual, 100);
        let mut out = Vec::new();
        // Callee frames arrive late and out of order relative to the caller's.
        for i in 0..10u64 {
            m.push(&frame(Track::Caller, i * 160, 100), &mut out);
        }
        for i in (0..10u64).rev() {
            m.push(&frame(Track::Callee, i * 160, -200), &mut out);
        }
        m.finish(&mut out);
        assert_eq!(m.written_samples(), 1600);
        let pcm = samples(&out[44..]);
        assert_eq!(pcm.len(), 3200);
        // The first 800 samples were written before the callee's frames arrived (latency 800):
        // channel 2 is silent there; the rest carries both.
        assert!(pcm.chunks_exact(2).all(|f| f[0] == 100));
        assert!(pcm.chunks_exact(2).skip(800).all(|f| f[1] == -200));
        assert_eq!(m.late_samples(), 800);
        assert_eq!(&out[..4], b"RIFF");
        let info = wav::parse_header(&out).unwrap();
        assert_eq!((info.channels, info.sample_rate), (2, 8000));
    }

    #[test]
    fn mono_mixes_and_fills_gaps_with_silence() {
        let mut m = Mixer::new(Layout::Mono, 0);
        let mut out = Vec::new();
        m.push(&frame(Track::Caller, 0, 30000), &mut out);
        m.push(&frame(Track::Callee, 0, 30000), &mut out);
        m.push(&frame(Track::Caller, 480, 5), &mut out); // 160..480 lost
        m.finish(&mut out);
        let pcm = samples(&out[44..]);
        assert_eq!(pcm.len(), 640);
        // The caller's first frame was written before the callee's arrived (zero latency).
        assert_eq!(pcm[0], 30000);
        assert!(pcm[160..480].iter().all(|&s| s == 0));
        assert!(pcm[480..].iter().all(|&s| s == 5));
        assert_eq!(m.duration_ms(), 80);
    }

    #[test]
    fn saturates_the_mix() {
        let mut m = Mixer::new(Layout::Mono, 1000);
        let mut out = Vec::new();
        m.push(&frame(Track::Caller, 0, 30000), &mut out);
        m.push(&frame(Track::Callee, 0, 30000), &mut out);
        m.finish(&mut out);
        assert!(samples(&out[44..]).iter().all(|&s| s == i16::MAX));
    }

    #[test]
    fn far_future_frames_do_not_grow_memory_unbounded() {
        let mut m = Mixer::new(Layout::Mono, 100);
        let mut out = Vec::new();
        m.push(&frame(Track::Caller, 0, 1), &mut out);
        m.push(&frame(Track::Caller, 8000 * 60, 1), &mut out);
        assert!(m.tracks[0].len() <= 8000 * 10 + 160);
        m.finish(&mut out);
        assert_eq!(m.written_samples(), 8000 * 60 + 160);
    }
}
