//! RIFF/WAVE: reading the header of an uploaded recording, and writing the header of one that
//! is being recorded.
//!
//! A recording streams through the sealing sink, so a writer cannot seek back to patch the
//! lengths once the call ends. [`streaming_header`] therefore writes the RIFF and `data` sizes
//! as `0xFFFF_FFFF` ("until the end of the file"), which ffmpeg, sox and every decoder the
//! seeds name read correctly, and [`WavInfo::duration_ms`] trusts the bytes that actually
//! arrived over a size field that can be a placeholder.

/// How the samples are coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// Linear PCM (format tag 1).
    Pcm,
    /// G.711 A-law (format tag 6).
    ALaw,
    /// G.711 μ-law (format tag 7).
    MuLaw,
    /// IEEE float (format tag 3).
    Float,
    /// Anything else, with its format tag (`WAVE_FORMAT_EXTENSIBLE` is resolved to its
    /// sub-format first).
    Other(u16),
}

impl Coding {
    fn from_tag(tag: u16) -> Self {
        match tag {
            1 => Self::Pcm,
            3 => Self::Float,
            6 => Self::ALaw,
            7 => Self::MuLaw,
            other => Self::Other(other),
        }
    }

    fn tag(self) -> u16 {
        match self {
            Self::Pcm => 1,
            Self::Float => 3,
            Self::ALaw => 6,
            Self::MuLaw => 7,
            Self::Other(tag) => tag,
        }
    }
}

/// What a WAV header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavInfo {
    /// Sample coding.
    pub coding: Coding,
    /// Interleaved channels.
    pub channels: u16,
    /// Samples per second per channel.
    pub sample_rate: u32,
    /// Bytes per second, as the header states it.
    pub byte_rate: u32,
    /// Bits per sample.
    pub bits_per_sample: u16,
    /// Offset of the first sample byte.
    pub data_offset: u64,
    /// Length of the `data` chunk as the header states it (`0xFFFF_FFFF` or 0 when streamed).
    pub declared_data_len: u32,
}

impl WavInfo {
    /// The length of the sample data of a file of `total_len` bytes: the declared length,
    /// capped by what actually arrived (streamed files carry a placeholder).
    pub fn data_len(&self, total_len: u64) -> u64 {
        let arrived = total_len.saturating_sub(self.data_offset);
        match self.declared_data_len {
            0 | u32::MAX => arrived,
            declared => u64::from(declared).min(arrived),
        }
    }

    /// Duration in milliseconds of a file of `total_len` bytes, if the byte rate is known.
    pub fn duration_ms(&self, total_len: u64) -> Option<u64> {
        let rate = u64::from(self.byte_rate);
        if rate == 0 {
            return None;
        }
        Some(self.data_len(total_len).saturating_mul(1000) / rate)
    }
}

fn le_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// Reads the header at the start of `head` (the first bytes of a file). `None` when `head` is
/// not a WAV file, or its `fmt ` and `data` chunks do not both start within `head`.
pub fn parse_header(head: &[u8]) -> Option<WavInfo> {
    if head.get(0..4)? != b"RIFF" || head.get(8..12)? != b"WAVE" {
        return None;
    }
    let mut pos = 12usize;
    let mut format: Option<(Coding, u16, u32, u32, u16)> = None;
    while pos.checked_add(8)? <= head.len() {
        let id = head.get(pos..pos + 4)?;
        let size = le_u32(head, pos + 4)?;
        let body = pos + 8;
        if id == b"fmt " {
            let mut tag = le_u16(head, body)?;
            if tag == 0xFFFE {
                // WAVE_FORMAT_EXTENSIBLE: the real tag is the first two bytes of the sub-format GUID.
                tag = le_u16(head, body + 24)?;
            }
            format = Some((
                Coding::from_tag(tag),
                le_u16(head, body + 2)?,
                le_u32(head, body + 4)?,
                le_u32(head, body + 8)?,
                le_u16(head, body + 14)?,
            ));
        } else if id == b"data" {
            let (coding, channels, sample_rate, byte_rate, bits_per_sample) = format?;
            return Some(WavInfo {
                coding,
                channels,
                sample_rate,
                byte_rate,
                bits_per_sample,
                data_offset: body as u64,
                declared_data_len: size,
            });
        }
        // Chunks are padded to an even length.
        let padded = usize::try_from(size).ok()?.checked_add(size as usize & 1)?;
        pos = body.checked_add(padded)?;
    }
    None
}

/// Duration in whole seconds of a WAV file of `total_len` bytes whose first bytes are `head`.
pub fn duration_secs(head: &[u8], total_len: u64) -> Option<u64> {
    let info = parse_header(head)?;
    info.duration_ms(total_len).map(|ms| ms / 1000)
}

/// The 44-byte (PCM) or 46-byte (G.711) header of a WAV file whose length is not known yet: the
/// RIFF and `data` sizes are `0xFFFF_FFFF`. G.711 files carry the `cbSize` field their format
/// requires.
pub fn streaming_header(coding: Coding, channels: u16, sample_rate: u32) -> Vec<u8> {
    let bits: u16 = match coding {
        Coding::ALaw | Coding::MuLaw => 8,
        Coding::Float => 32,
        Coding::Pcm | Coding::Other(_) => 16,
    };
    let block_align = channels.saturating_mul(bits / 8);
    let byte_rate = sample_rate.saturating_mul(u32::from(block_align));
    let extended = matches!(coding, Coding::ALaw | Coding::MuLaw);
    let fmt_len: u32 = if extended { 18 } else { 16 };
    let mut h = Vec::with_capacity(46);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&u32::MAX.to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&fmt_len.to_le_bytes());
    h.extend_from_slice(&coding.tag().to_le_bytes());
    h.extend_from_slice(&channels.to_le_bytes());
    h.extend_from_slice(&sample_rate.to_le_bytes());
    h.extend_from_slice(&byte_rate.to_le_bytes());
    h.extend_from_slice(&block_align.to_le_bytes());
    h.extend_from_slice(&bits.to_le_bytes());
    if extended {
        h.extend_from_slice(&0u16.to_le_bytes());
    }
    h.extend_from_slice(b"data");
    h.extend_from_slice(&u32::MAX.to_le_bytes());
    h
}

/// A complete 16-bit PCM WAV file of `samples` (interleaved when `channels` > 1).
pub fn pcm16_file(channels: u16, sample_rate: u32, samples: &[i16]) -> Vec<u8> {
    let data_len = u32::try_from(samples.len() * 2).unwrap_or(u32::MAX);
    let mut v = streaming_header(Coding::Pcm, channels, sample_rate);
    v[4..8].copy_from_slice(&data_len.saturating_add(36).to_le_bytes());
    v[40..44].copy_from_slice(&data_len.to_le_bytes());
    v.reserve(samples.len() * 2);
    for s in samples {
        v.extend_from_slice(&s.to_le_bytes());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcm_file_round_trips_and_has_a_duration() {
        let samples = vec![0i16; 8000 * 3];
        let file = pcm16_file(1, 8000, &samples);
        let info = parse_header(&file[..100]).unwrap();
        assert_eq!(info.coding, Coding::Pcm);
        assert_eq!(
            (info.channels, info.sample_rate, info.byte_rate),
            (1, 8000, 16000)
        );
        assert_eq!(info.data_offset, 44);
        assert_eq!(duration_secs(&file[..100], file.len() as u64), Some(3));
        assert_eq!(info.duration_ms(file.len() as u64), Some(3000));
    }

    #[test]
    fn streamed_headers_trust_what_arrived() {
        let mut file = streaming_header(Coding::MuLaw, 2, 8000);
        assert_eq!(file.len(), 46);
        file.resize(46 + 16_000 * 5 / 2, 0xff);
        let info = parse_header(&file).unwrap();
        assert_eq!(info.coding, Coding::MuLaw);
        assert_eq!(info.channels, 2);
        assert_eq!(info.declared_data_len, u32::MAX);
        assert_eq!(info.duration_ms(file.len() as u64), Some(2500));
    }

    #[test]
    fn not_wav_or_cut_short() {
        assert_eq!(parse_header(b"not a wav"), None);
        assert_eq!(duration_secs(b"RIFF\0\0\0\0WAVE", 12), None);
        let file = pcm16_file(1, 8000, &[0; 800]);
        assert_eq!(parse_header(&file[..20]), None);
        // A chunk size that would overflow the position.
        let mut evil = file.clone();
        evil[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse_header(&evil), None);
        // A zero byte rate has no duration.
        let mut silent = file;
        silent[28..32].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(parse_header(&silent).unwrap().duration_ms(1000), None);
    }

    #[test]
    fn any_prefix_of_any_bytes_is_safe() {
        let file = pcm16_file(2, 48_000, &[7; 64]);
        for end in 0..file.len() {
            let _ = parse_header(&file[..end]);
        }
        let mut x = 0x1234_5678u32;
        for _ in 0..2000 {
            let mut bytes = file.clone();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let at = x as usize % bytes.len();
                bytes[at] = (x >> 8) as u8;
            }
            let _ = parse_header(&bytes).map(|i| i.duration_ms(u64::MAX));
        }
    }
}
