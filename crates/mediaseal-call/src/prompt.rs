//! Audio for prompts: WAV decoding (`<Play>`), sample-rate conversion (the synthesiser's
//! 22.05 kHz for `<Say>`), and tones (the `<Record>` beep).
//!
//! Everything ends as 8 kHz mono 16-bit PCM, which the relay encodes with the caller's G.711
//! law, 160 samples per 20 ms packet. Prompts are short and produced once, off the packet
//! path, so clarity beats speed here: the resampler is a plain windowed-sinc interpolator.

use mediaseal_media::wav::{self, Coding};

use crate::g711::Law;

/// The relay's sample rate.
pub const SAMPLE_RATE: u32 = 8000;

/// Longest prompt accepted, in samples at 8 kHz (10 minutes), so a hostile URL cannot make the
/// edge hold gigabytes.
pub const MAX_PROMPT_SAMPLES: usize = 10 * 60 * SAMPLE_RATE as usize;

/// Why audio could not be turned into a prompt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PromptError {
    /// Not a WAV file, or its header is incomplete.
    #[error("the audio is not a WAV file (only WAV is supported for <Play>)")]
    NotWav,
    /// A WAV coding other than 8/16-bit PCM, 32-bit float, μ-law or A-law.
    #[error("unsupported WAV coding {0:?}, bits per sample {1}")]
    UnsupportedCoding(Coding, u16),
    /// Zero channels or a zero sample rate.
    #[error("the WAV header declares {channels} channels at {rate} Hz")]
    BadFormat {
        /// Channels.
        channels: u16,
        /// Sample rate.
        rate: u32,
    },
    /// Longer than [`MAX_PROMPT_SAMPLES`].
    #[error("the audio is longer than 10 minutes")]
    TooLong,
}

/// Decodes a WAV file into 8 kHz mono PCM (channels averaged, resampled).
pub fn decode_wav(bytes: &[u8]) -> Result<Vec<i16>, PromptError> {
    let head = bytes.get(..bytes.len().min(4096)).unwrap_or_default();
    let info = wav::parse_header(head).ok_or(PromptError::NotWav)?;
    if info.channels == 0 || info.sample_rate == 0 {
        return Err(PromptError::BadFormat {
            channels: info.channels,
            rate: info.sample_rate,
        });
    }
    let start = usize::try_from(info.data_offset).map_err(|_| PromptError::NotWav)?;
    let len =
        usize::try_from(info.data_len(bytes.len() as u64)).map_err(|_| PromptError::NotWav)?;
    let data = bytes.get(start..start + len).ok_or(PromptError::NotWav)?;
    let channels = usize::from(info.channels);
    let frame_samples: Vec<i32> = match (info.coding, info.bits_per_sample) {
        (Coding::Pcm, 16) => data
            .chunks_exact(2)
            .map(|c| i32::from(i16::from_le_bytes([c[0], c[1]])))
            .collect(),
        (Coding::Pcm, 8) => data.iter().map(|&b| (i32::from(b) - 128) << 8).collect(),
        (Coding::MuLaw, 8) => data.iter().map(|&b| i32::from(Law::Mu.decode(b))).collect(),
        (Coding::ALaw, 8) => data.iter().map(|&b| i32::from(Law::A.decode(b))).collect(),
        (Coding::Float, 32) => data
            .chunks_exact(4)
            .map(|c| {
                let f = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                (f.clamp(-1.0, 1.0) * 32767.0) as i32
            })
            .collect(),
        (coding, bits) => return Err(PromptError::UnsupportedCoding(coding, bits)),
    };
    let mono: Vec<i16> = frame_samples
        .chunks_exact(channels)
        .map(|f| clamp16(f.iter().sum::<i32>() / channels as i32))
        .collect();
    let out = resample(&mono, info.sample_rate, SAMPLE_RATE);
    if out.len() > MAX_PROMPT_SAMPLES {
        return Err(PromptError::TooLong);
    }
    Ok(out)
}

fn clamp16(x: i32) -> i16 {
    x.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

/// Converts mono PCM from `from` Hz to `to` Hz with a Blackman-windowed sinc low-pass at 90 %
/// of the lower Nyquist frequency (16 zero crossings each side).
pub fn resample(input: &[i16], from: u32, to: u32) -> Vec<i16> {
    if from == to || input.is_empty() || from == 0 || to == 0 {
        return input.to_vec();
    }
    const ZERO_CROSSINGS: f64 = 16.0;
    let ratio = f64::from(from) / f64::from(to);
    // Cutoff as a fraction of the input rate's Nyquist frequency.
    let cutoff = 0.9 * (f64::from(to) / f64::from(from)).min(1.0);
    let half_width = ZERO_CROSSINGS / cutoff;
    let out_len = ((input.len() as f64) / ratio).floor() as usize;
    let mut out = Vec::with_capacity(out_len);
    for n in 0..out_len {
        let x = n as f64 * ratio;
        let first = (x - half_width).ceil().max(0.0) as usize;
        let last = ((x + half_width).floor() as usize).min(input.len() - 1);
        let mut acc = 0.0;
        for (k, &s) in input.iter().enumerate().take(last + 1).skip(first) {
            let t = k as f64 - x;
            acc += f64::from(s) * cutoff * sinc(cutoff * t) * blackman(t / half_width);
        }
        out.push(clamp16(acc.round() as i32));
    }
    out
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-9 {
        1.0
    } else {
        let px = core::f64::consts::PI * x;
        px.sin() / px
    }
}

/// Blackman window over t in [-1, 1].
fn blackman(t: f64) -> f64 {
    if t.abs() > 1.0 {
        return 0.0;
    }
    let a = core::f64::consts::PI * (t + 1.0);
    0.42 - 0.5 * a.cos() + 0.08 * (2.0 * a).cos()
}

/// A sine tone at 8 kHz with 5 ms fades (for the `<Record>` beep).
pub fn tone(frequency: f64, duration_ms: u32, amplitude: i16) -> Vec<i16> {
    let n = (SAMPLE_RATE * duration_ms / 1000) as usize;
    let fade = (SAMPLE_RATE as usize / 200).max(1);
    (0..n)
        .map(|i| {
            let phase = 2.0 * core::f64::consts::PI * frequency * i as f64 / f64::from(SAMPLE_RATE);
            let env = (i.min(n - 1 - i) as f64 / fade as f64).min(1.0);
            (phase.sin() * f64::from(amplitude) * env) as i16
        })
        .collect()
}

/// Fraction of `samples`' power at `frequency` (Goertzel), in [0, 1]; 0 for silence.
pub fn tone_power_fraction(samples: &[i16], frequency: f64) -> f64 {
    let n = samples.len();
    if n == 0 {
        return 0.0;
    }
    let k = 2.0 * (2.0 * core::f64::consts::PI * frequency / f64::from(SAMPLE_RATE)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut energy = 0.0;
    for &x in samples {
        let x = f64::from(x);
        energy += x * x;
        let s0 = x + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    if energy == 0.0 {
        return 0.0;
    }
    let power = s1 * s1 + s2 * s2 - k * s1 * s2;
    (power / (energy * n as f64 / 2.0)).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, f: f64, secs: f64) -> Vec<i16> {
        let n = (f64::from(rate) * secs) as usize;
        (0..n)
            .map(|i| {
                ((2.0 * core::f64::consts::PI * f * i as f64 / f64::from(rate)).sin() * 12000.0)
                    as i16
            })
            .collect()
    }

    #[test]
    fn resampling_keeps_the_tone_and_removes_aliases() {
        let x = sine(22050, 440.0, 1.0);
        let y = resample(&x, 22050, 8000);
        assert!((y.len() as i64 - 8000).abs() <= 1, "{}", y.len());
        assert!(tone_power_fraction(&y[400..7600], 440.0) > 0.95);
        // 6 kHz is above the 4 kHz Nyquist limit: it must be filtered out, not aliased to 2 kHz.
        let x = sine(22050, 6000.0, 1.0);
        let y = resample(&x, 22050, 8000);
        let rms = (y[400..7600]
            .iter()
            .map(|&s| f64::from(s).powi(2))
            .sum::<f64>()
            / 7200.0)
            .sqrt();
        assert!(rms < 200.0, "alias rms {rms}");
    }

    #[test]
    fn decodes_wav_codings() {
        let pcm = sine(16000, 1000.0, 0.5);
        let file = wav::pcm16_file(1, 16000, &pcm);
        let y = decode_wav(&file).unwrap();
        assert_eq!(y.len(), 4000);
        assert!(tone_power_fraction(&y[200..3800], 1000.0) > 0.95);
        // μ-law at 8 kHz, stereo.
        let mut ulaw = wav::streaming_header(Coding::MuLaw, 2, 8000);
        for s in sine(8000, 440.0, 0.25) {
            let b = Law::Mu.encode(s);
            ulaw.extend_from_slice(&[b, b]);
        }
        let y = decode_wav(&ulaw).unwrap();
        assert_eq!(y.len(), 2000);
        assert!(tone_power_fraction(&y, 440.0) > 0.95);
        assert_eq!(
            decode_wav(b"not a wav file at all"),
            Err(PromptError::NotWav)
        );
    }

    #[test]
    fn tone_and_goertzel() {
        let b = tone(1000.0, 500, 8000);
        assert_eq!(b.len(), 4000);
        assert!(tone_power_fraction(&b, 1000.0) > 0.95);
        assert!(tone_power_fraction(&b, 440.0) < 0.01);
        assert_eq!(tone_power_fraction(&[0; 160], 440.0), 0.0);
    }
}
