//! Deterministic PCM WAV files for tests.

/// The 44-byte header of a canonical PCM WAV file holding `data_len` bytes of samples.
pub fn header(sample_rate: u32, channels: u16, bits: u16, data_len: u32) -> Vec<u8> {
    let block_align = channels * bits / 8;
    let mut v = Vec::with_capacity(44);
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data_len).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&sample_rate.to_le_bytes());
    v.extend_from_slice(&(sample_rate * u32::from(block_align)).to_le_bytes());
    v.extend_from_slice(&block_align.to_le_bytes());
    v.extend_from_slice(&bits.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data_len.to_le_bytes());
    v
}

/// A mono 16-bit WAV of `seconds` at 8 kHz whose samples are pseudo-random bytes, with `marker`
/// written every 4,000 bytes so a scan can find any plaintext copy of it.
pub fn with_marker(seconds: u32, marker: &[u8]) -> Vec<u8> {
    let data_len = 8000 * 2 * seconds;
    let total = 44 + data_len as usize;
    let mut v = header(8000, 1, 16, data_len);
    v.reserve(data_len as usize);
    let mut i = 0u32;
    while v.len() < total {
        if i.is_multiple_of(4000) && !marker.is_empty() && v.len() + marker.len() <= total {
            v.extend_from_slice(marker);
        } else {
            v.push((i.wrapping_mul(2_654_435_761) >> 24) as u8);
        }
        i += 1;
    }
    v
}

/// A mono 16-bit WAV of `seconds` at `sample_rate` holding a sine tone of `hz`.
pub fn tone(seconds: f64, sample_rate: u32, hz: f64) -> Vec<u8> {
    let samples = (seconds * f64::from(sample_rate)).round() as u32;
    let mut v = header(sample_rate, 1, 16, samples * 2);
    for n in 0..samples {
        let t = f64::from(n) / f64::from(sample_rate);
        let s = (t * hz * std::f64::consts::TAU).sin() * 12_000.0;
        v.extend_from_slice(&(s as i16).to_le_bytes());
    }
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_and_markers() {
        let wav = super::with_marker(2, b"MARK");
        assert_eq!(wav.len(), 44 + 32_000);
        assert!(crate::contains(&wav, b"MARK"));
        assert_eq!(super::tone(1.0, 16_000, 440.0).len(), 44 + 32_000);
    }
}
