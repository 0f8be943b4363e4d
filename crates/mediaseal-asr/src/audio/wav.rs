//! RIFF/WAVE parsing for transcription (the `fmt ` and `data` chunks), and the one WAV this
//! crate writes: 16-bit mono 16 kHz, for the HTTP engine's upload.

use super::{AudioError, check_shape, g711};

/// How the samples in a WAV `data` chunk are coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SampleCoding {
    /// Unsigned 8-bit linear PCM.
    Pcm8,
    /// Signed 16-bit little-endian linear PCM.
    Pcm16,
    /// Signed 24-bit little-endian linear PCM.
    Pcm24,
    /// Signed 32-bit little-endian linear PCM.
    Pcm32,
    /// 32-bit little-endian IEEE float in -1..=1.
    Float32,
    /// G.711 μ-law, 8 bits.
    MuLaw,
    /// G.711 A-law, 8 bits.
    ALaw,
}

impl SampleCoding {
    pub(crate) fn bytes_per_sample(self) -> usize {
        match self {
            Self::Pcm8 | Self::MuLaw | Self::ALaw => 1,
            Self::Pcm16 => 2,
            Self::Pcm24 => 3,
            Self::Pcm32 | Self::Float32 => 4,
        }
    }

    /// Decodes one sample; `bytes` has exactly [`Self::bytes_per_sample`] bytes.
    pub(crate) fn decode(self, bytes: &[u8]) -> i16 {
        let byte = |i: usize| bytes.get(i).copied().unwrap_or(0);
        match self {
            Self::Pcm8 => (i16::from(byte(0)) - 128) << 8,
            Self::Pcm16 => i16::from_le_bytes([byte(0), byte(1)]),
            // The top 16 bits of a wider sample; truncation rather than dither is fine for speech.
            Self::Pcm24 => i16::from_le_bytes([byte(1), byte(2)]),
            Self::Pcm32 => i16::from_le_bytes([byte(2), byte(3)]),
            Self::Float32 => {
                let value = f32::from_le_bytes([byte(0), byte(1), byte(2), byte(3)]);
                if value.is_finite() {
                    (value.clamp(-1.0, 1.0) * 32767.0).round() as i16
                } else {
                    0
                }
            }
            Self::MuLaw => g711::mulaw_to_linear(byte(0)),
            Self::ALaw => g711::alaw_to_linear(byte(0)),
        }
    }
}

/// What a WAV file's `fmt ` chunk says, as far as transcription cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavFormat {
    /// Sample coding.
    pub coding: SampleCoding,
    /// Interleaved channels.
    pub channels: u16,
    /// Samples per second per channel.
    pub sample_rate: u32,
}

const TAG_PCM: u16 = 1;
const TAG_FLOAT: u16 = 3;
const TAG_ALAW: u16 = 6;
const TAG_MULAW: u16 = 7;
const TAG_EXTENSIBLE: u16 = 0xFFFE;

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// Finds the format and the sample bytes of a WAV file held in memory.
///
/// Chunks other than `fmt ` and `data` are skipped. A `data` size larger than what follows (a
/// streaming placeholder such as `0xFFFFFFFF`, or espeak-ng's `0x7FFFF000`) means "to the end".
pub fn parse_wav(bytes: &[u8]) -> Result<(WavFormat, &[u8]), AudioError> {
    if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WAVE") {
        return Err(AudioError::NotWav);
    }
    let mut format = None;
    let mut at = 12usize;
    loop {
        let (Some(id), Some(size)) = (bytes.get(at..at + 4), u32_at(bytes, at + 4)) else {
            return Err(AudioError::Malformed(if format.is_some() {
                "no data chunk"
            } else {
                "no fmt chunk"
            }));
        };
        let body_start = at + 8;
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if id == b"data" {
            let format = format.ok_or(AudioError::Malformed("data chunk before the fmt chunk"))?;
            let end = body_start.saturating_add(size).min(bytes.len());
            let data = bytes
                .get(body_start..end)
                .ok_or(AudioError::Malformed("data chunk cut short"))?;
            return Ok((format, data));
        }
        let body = bytes
            .get(body_start..body_start.saturating_add(size))
            .ok_or(AudioError::Malformed(
                "a chunk runs past the end of the file",
            ))?;
        if id == b"fmt " {
            format = Some(parse_fmt(body)?);
        }
        // Chunks are padded to an even length.
        at = body_start.saturating_add(size).saturating_add(size & 1);
    }
}

fn parse_fmt(body: &[u8]) -> Result<WavFormat, AudioError> {
    let short = AudioError::Malformed("fmt chunk too short");
    let mut tag = u16_at(body, 0).ok_or(short.clone())?;
    let channels = u16_at(body, 2).ok_or(short.clone())?;
    let sample_rate = u32_at(body, 4).ok_or(short.clone())?;
    let bits = u16_at(body, 14).ok_or(short)?;
    if tag == TAG_EXTENSIBLE {
        // cbSize, valid bits, channel mask, then the sub-format GUID whose first two bytes are
        // the real format tag.
        tag = u16_at(body, 24).ok_or(AudioError::Malformed(
            "WAVE_FORMAT_EXTENSIBLE without a sub-format",
        ))?;
    }
    let coding = match (tag, bits) {
        (TAG_PCM, 8) => SampleCoding::Pcm8,
        (TAG_PCM, 16) => SampleCoding::Pcm16,
        (TAG_PCM, 24) => SampleCoding::Pcm24,
        (TAG_PCM, 32) => SampleCoding::Pcm32,
        (TAG_FLOAT, 32) => SampleCoding::Float32,
        (TAG_MULAW, 8) => SampleCoding::MuLaw,
        (TAG_ALAW, 8) => SampleCoding::ALaw,
        (tag, bits) => {
            return Err(AudioError::UnsupportedCoding(format!(
                "format tag {tag}, {bits} bits"
            )));
        }
    };
    check_shape(channels, sample_rate)?;
    Ok(WavFormat {
        coding,
        channels,
        sample_rate,
    })
}

/// A 16-bit PCM mono WAV file at `sample_rate` holding `samples`.
pub fn pcm16_mono_wav(samples: &[i16], sample_rate: u32) -> Vec<u8> {
    let data_len = u32::try_from(samples.len() * 2).unwrap_or(u32::MAX - 36) & !1;
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&TAG_PCM.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&sample_rate.to_le_bytes());
    out.extend_from_slice(&(sample_rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for sample in samples.iter().take(data_len as usize / 2) {
        out.extend_from_slice(&sample.to_le_bytes());
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn wav_bytes(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
        let block = channels * bits / 8;
        let mut out = Vec::new();
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + 12 + data.len() as u32).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&channels.to_le_bytes());
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
        out.extend_from_slice(&block.to_le_bytes());
        out.extend_from_slice(&bits.to_le_bytes());
        // An odd-sized unknown chunk, to exercise padding.
        out.extend_from_slice(b"LIST");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(b"abc\0");
        out.extend_from_slice(b"data");
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn round_trip_of_the_writer() {
        let samples = [0i16, 1, -1, i16::MAX, i16::MIN];
        let wav = pcm16_mono_wav(&samples, 16_000);
        assert_eq!(wav.len(), 44 + 10);
        let (format, data) = parse_wav(&wav).unwrap();
        assert_eq!(
            format,
            WavFormat {
                coding: SampleCoding::Pcm16,
                channels: 1,
                sample_rate: 16_000
            }
        );
        let decoded: Vec<i16> = data
            .chunks_exact(2)
            .map(|b| SampleCoding::Pcm16.decode(b))
            .collect();
        assert_eq!(decoded, samples);
    }

    #[test]
    fn streaming_placeholder_size_runs_to_the_end() {
        let mut wav = wav_bytes(TAG_PCM, 1, 8000, 16, &[1, 0, 2, 0, 3]);
        let data_size_at = wav.len() - 5 - 4;
        wav[data_size_at..data_size_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let (_, data) = parse_wav(&wav).unwrap();
        assert_eq!(data, &[1, 0, 2, 0, 3]);
    }

    #[test]
    fn codings_decode() {
        assert_eq!(SampleCoding::Pcm8.decode(&[0x80]), 0);
        assert_eq!(SampleCoding::Pcm8.decode(&[0xFF]), 127 << 8);
        assert_eq!(SampleCoding::Pcm24.decode(&[0x12, 0x34, 0x56]), 0x5634);
        assert_eq!(SampleCoding::Pcm32.decode(&[0, 0, 0x00, 0x80]), i16::MIN);
        assert_eq!(SampleCoding::Float32.decode(&0.5f32.to_le_bytes()), 16384);
        assert_eq!(SampleCoding::Float32.decode(&f32::NAN.to_le_bytes()), 0);
        assert_eq!(
            SampleCoding::Float32.decode(&(-4.0f32).to_le_bytes()),
            -32767
        );
    }

    #[test]
    fn extensible_resolves_its_sub_format() {
        let mut fmt = Vec::new();
        fmt.extend_from_slice(&TAG_EXTENSIBLE.to_le_bytes());
        fmt.extend_from_slice(&2u16.to_le_bytes());
        fmt.extend_from_slice(&48_000u32.to_le_bytes());
        fmt.extend_from_slice(&(48_000u32 * 6).to_le_bytes());
        fmt.extend_from_slice(&6u16.to_le_bytes());
        fmt.extend_from_slice(&24u16.to_le_bytes());
        fmt.extend_from_slice(&22u16.to_le_bytes());
        fmt.extend_from_slice(&24u16.to_le_bytes());
        fmt.extend_from_slice(&3u32.to_le_bytes());
        fmt.extend_from_slice(&TAG_PCM.to_le_bytes());
        fmt.extend_from_slice(&[0; 14]);
        assert_eq!(
            parse_fmt(&fmt).unwrap(),
            WavFormat {
                coding: SampleCoding::Pcm24,
                channels: 2,
                sample_rate: 48_000
            }
        );
    }

    #[test]
    fn bad_input_is_refused_without_panicking() {
        assert_eq!(parse_wav(b"").unwrap_err(), AudioError::NotWav);
        assert_eq!(
            parse_wav(b"RIFF\0\0\0\0WAVE").unwrap_err(),
            AudioError::Malformed("no fmt chunk")
        );
        let adpcm = wav_bytes(2, 1, 8000, 4, &[0; 4]);
        assert!(matches!(
            parse_wav(&adpcm).unwrap_err(),
            AudioError::UnsupportedCoding(_)
        ));
        let many = wav_bytes(TAG_PCM, 9, 8000, 16, &[0; 18]);
        assert_eq!(parse_wav(&many).unwrap_err(), AudioError::Channels(9));
        let mut cut = wav_bytes(TAG_PCM, 1, 8000, 16, &[]);
        cut.truncate(30);
        assert!(matches!(
            parse_wav(&cut).unwrap_err(),
            AudioError::Malformed(_)
        ));
        for len in 0..60 {
            let wav = wav_bytes(TAG_MULAW, 2, 8000, 8, &[0x55; 8]);
            let _ = parse_wav(&wav[..len.min(wav.len())]);
        }
    }
}
