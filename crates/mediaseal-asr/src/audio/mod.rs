//! Audio preparation, in memory: a WAV recording → one 16 kHz mono s16 buffer per channel.
//!
//! A dual-channel call (agent on one side, customer on the other) is transcribed channel by
//! channel, so nothing here mixes channels down. Supported codings: linear PCM 8/16/24/32-bit,
//! IEEE float 32-bit, G.711 μ-law and A-law; any channel count up to 8; any rate from 4 kHz to
//! 192 kHz, resampled with a windowed-sinc filter ([`Resampler`]).
//!
//! Self-contained (no other module of this crate is used) so it can move to `mediaseal-media`
//! once that crate owns WAV parsing. Buffers holding decoded audio are wiped when dropped.

mod g711;
mod resample;
mod wav;

pub use g711::{alaw_to_linear, mulaw_to_linear};
pub use resample::Resampler;
pub use wav::{SampleCoding, WavFormat, parse_wav, pcm16_mono_wav};

use std::fmt;

use zeroize::Zeroizing;

/// The rate prepared audio comes out at.
pub const TARGET_RATE: u32 = 16_000;

/// Mono signed 16-bit samples at [`TARGET_RATE`]; wiped on drop, never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MonoPcm(Zeroizing<Vec<i16>>);

impl MonoPcm {
    /// Wraps samples that already are 16 kHz mono.
    pub fn from_samples(samples: Vec<i16>) -> Self {
        Self(Zeroizing::new(samples))
    }

    /// The samples.
    pub fn as_slice(&self) -> &[i16] {
        &self.0
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Duration in seconds.
    pub fn duration_secs(&self) -> f64 {
        self.0.len() as f64 / f64::from(TARGET_RATE)
    }
}

impl fmt::Debug for MonoPcm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MonoPcm({} samples)", self.0.len())
    }
}

/// A recording split into channels, each at 16 kHz mono.
#[derive(Debug, Clone)]
pub struct PreparedAudio {
    /// What the input was.
    pub source: WavFormat,
    /// One buffer per input channel, in channel order (0 = left).
    pub channels: Vec<MonoPcm>,
}

impl PreparedAudio {
    /// Duration in seconds (of the longest channel; they are equal for WAV input).
    pub fn duration_secs(&self) -> f64 {
        self.channels
            .iter()
            .map(MonoPcm::duration_secs)
            .fold(0.0, f64::max)
    }
}

/// Why a recording could not be prepared for transcription.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    /// Not a RIFF/WAVE file.
    #[error("the audio is not a WAV file (no RIFF/WAVE header)")]
    NotWav,
    /// A required chunk is missing or cut short.
    #[error("the WAV file is damaged: {0}")]
    Malformed(&'static str),
    /// The coding is one this module does not decode.
    #[error(
        "the WAV coding is not supported ({0}); convert to 16-bit PCM, μ-law or A-law (e.g. `ffmpeg -i IN -c:a pcm_s16le OUT.wav`)"
    )]
    UnsupportedCoding(String),
    /// Channel count outside 1..=8.
    #[error("the WAV file has {0} channels; 1 to 8 are supported")]
    Channels(u16),
    /// Sample rate outside 4 kHz..=192 kHz.
    #[error("the WAV sample rate {0} Hz is not supported (4000 to 192000 Hz)")]
    SampleRate(u32),
}

/// Decodes a WAV file held in memory into one 16 kHz mono buffer per channel.
///
/// A `data` chunk whose size field is a streaming placeholder (`0xFFFFFFFF`, or larger than the
/// file) runs to the end of the input; a trailing partial frame is ignored.
pub fn prepare_wav(bytes: &[u8]) -> Result<PreparedAudio, AudioError> {
    let (format, data) = parse_wav(bytes)?;
    let channels = deinterleave(&format, data);
    let resampler = Resampler::new(format.sample_rate, TARGET_RATE);
    let channels = channels
        .into_iter()
        .map(|samples| MonoPcm(Zeroizing::new(resampler.process(&samples))))
        .collect();
    Ok(PreparedAudio {
        source: format,
        channels,
    })
}

/// Prepares interleaved signed 16-bit PCM (a recording tap, say) the same way as
/// [`prepare_wav`].
pub fn prepare_pcm16(
    interleaved: &[i16],
    channels: u16,
    sample_rate: u32,
) -> Result<PreparedAudio, AudioError> {
    check_shape(channels, sample_rate)?;
    let format = WavFormat {
        coding: SampleCoding::Pcm16,
        channels,
        sample_rate,
    };
    let count = usize::from(channels);
    let resampler = Resampler::new(sample_rate, TARGET_RATE);
    let channels = (0..count)
        .map(|c| {
            let mono: Zeroizing<Vec<i16>> =
                Zeroizing::new(interleaved.iter().skip(c).step_by(count).copied().collect());
            MonoPcm(Zeroizing::new(resampler.process(&mono)))
        })
        .collect();
    Ok(PreparedAudio {
        source: format,
        channels,
    })
}

pub(crate) fn check_shape(channels: u16, sample_rate: u32) -> Result<(), AudioError> {
    if !(1..=8).contains(&channels) {
        return Err(AudioError::Channels(channels));
    }
    if !(4_000..=192_000).contains(&sample_rate) {
        return Err(AudioError::SampleRate(sample_rate));
    }
    Ok(())
}

/// Splits interleaved frames into per-channel i16 at the source rate.
fn deinterleave(format: &WavFormat, data: &[u8]) -> Vec<Zeroizing<Vec<i16>>> {
    let count = usize::from(format.channels);
    let width = format.coding.bytes_per_sample();
    let frame = width * count;
    let frames = data.len() / frame;
    let mut channels: Vec<Zeroizing<Vec<i16>>> = (0..count)
        .map(|_| Zeroizing::new(Vec::with_capacity(frames)))
        .collect();
    for frame_bytes in data.chunks_exact(frame) {
        for (channel, sample) in channels.iter_mut().zip(frame_bytes.chunks_exact(width)) {
            channel.push(format.coding.decode(sample));
        }
    }
    channels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stereo_mulaw_8k_splits_and_resamples() {
        // 0.5 s of 8 kHz μ-law: left silent (0xFF), right full-scale negative (0x00).
        let mut data = Vec::new();
        for _ in 0..4000 {
            data.extend_from_slice(&[0xFF, 0x00]);
        }
        let wav = wav::tests::wav_bytes(7, 2, 8000, 8, &data);
        let prepared = prepare_wav(&wav).unwrap();
        assert_eq!(
            prepared.source,
            WavFormat {
                coding: SampleCoding::MuLaw,
                channels: 2,
                sample_rate: 8000
            }
        );
        assert_eq!(prepared.channels.len(), 2);
        assert_eq!(prepared.channels[0].len(), 8000);
        assert!(prepared.channels[0].as_slice().iter().all(|&s| s == 0));
        // A constant passes the filter unchanged away from the edges.
        let right = prepared.channels[1].as_slice();
        assert!(
            right[100..7900]
                .iter()
                .all(|&s| (i32::from(s) + 32124).abs() <= 2),
            "{:?}",
            &right[100..110]
        );
        assert!((prepared.duration_secs() - 0.5).abs() < 1e-9);
    }

    #[test]
    fn interleaved_pcm_is_split_per_channel() {
        let interleaved: Vec<i16> = (0..3200)
            .map(|i| if i % 2 == 0 { 1000 } else { -1000 })
            .collect();
        let prepared = prepare_pcm16(&interleaved, 2, 16_000).unwrap();
        assert_eq!(prepared.channels[0].as_slice(), vec![1000; 1600].as_slice());
        assert_eq!(
            prepared.channels[1].as_slice(),
            vec![-1000; 1600].as_slice()
        );
        assert_eq!(
            prepare_pcm16(&interleaved, 0, 16_000).unwrap_err(),
            AudioError::Channels(0)
        );
        assert_eq!(
            prepare_pcm16(&interleaved, 1, 1_000).unwrap_err(),
            AudioError::SampleRate(1000)
        );
    }

    #[test]
    fn g711_decoding_matches_ffmpeg() {
        // WAVs written by sox (with `fact` chunks and an 18-byte fmt), decoded by ffmpeg to s16le.
        let cases: [(&[u8], &[u8], SampleCoding, u16); 2] = [
            (
                include_bytes!("../../testdata/sox_mulaw_stereo_8k.wav"),
                include_bytes!("../../testdata/sox_mulaw_stereo_8k.ffmpeg.s16le"),
                SampleCoding::MuLaw,
                2,
            ),
            (
                include_bytes!("../../testdata/alaw_mono_8k.wav"),
                include_bytes!("../../testdata/alaw_mono_8k.ffmpeg.s16le"),
                SampleCoding::ALaw,
                1,
            ),
        ];
        for (wav, reference, coding, channels) in cases {
            let (format, data) = parse_wav(wav).unwrap();
            assert_eq!(
                format,
                WavFormat {
                    coding,
                    channels,
                    sample_rate: 8000
                }
            );
            let ours: Vec<i16> = data.iter().map(|&b| coding.decode(&[b])).collect();
            let theirs: Vec<i16> = reference
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
            assert_eq!(ours, theirs);
            // And the channels are split in interleaving order.
            let split = deinterleave(&format, data);
            assert_eq!(split.len(), usize::from(channels));
            assert_eq!(split[0].first(), theirs.first());
            assert_eq!(split[usize::from(channels) - 1].last(), theirs.last());
        }
    }

    #[test]
    fn damaged_recordings_never_panic() {
        // Every byte of a real (sox-written) WAV header replaced by a few values, and every
        // truncation: parsing either fails cleanly or yields one buffer per declared channel.
        let original: &[u8] = include_bytes!("../../testdata/sox_mulaw_stereo_8k.wav");
        for at in 0..64 {
            for value in [0x00, 0x01, 0x07, 0x10, 0x7F, 0x80, 0xFE, 0xFF] {
                let mut damaged = original.to_vec();
                damaged[at] = value;
                if let Ok(prepared) = prepare_wav(&damaged) {
                    assert_eq!(
                        prepared.channels.len(),
                        usize::from(prepared.source.channels)
                    );
                }
            }
        }
        for len in 0..original.len() {
            let _ = prepare_wav(&original[..len]);
        }
    }

    #[test]
    fn debug_hides_samples() {
        let pcm = MonoPcm::from_samples(vec![12345; 3]);
        assert_eq!(format!("{pcm:?}"), "MonoPcm(3 samples)");
    }
}
