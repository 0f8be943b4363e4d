//! G.711 expansion for WAV files carrying μ-law or A-law (format tags 7 and 6), on the shared
//! tables of `mediaseal-media`.

use mediaseal_media::g711::Law;

/// One μ-law code to a linear 16-bit sample.
pub fn mulaw_to_linear(code: u8) -> i16 {
    Law::Mu.decode(code)
}

/// One A-law code to a linear 16-bit sample.
pub fn alaw_to_linear(code: u8) -> i16 {
    Law::A.decode(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes() {
        // Values from the G.711 tables: μ-law 0xFF/0x7F are ±0, 0x00/0x80 the extremes.
        assert_eq!(mulaw_to_linear(0xFF), 0);
        assert_eq!(mulaw_to_linear(0x7F), 0);
        assert_eq!(mulaw_to_linear(0x00), -32124);
        assert_eq!(mulaw_to_linear(0x80), 32124);
        assert_eq!(mulaw_to_linear(0xFE), 8);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
    }

    #[test]
    fn tables_are_monotonic_per_sign() {
        // μ-law codes 0x80..=0xFF run from +32124 down to 0.
        for code in 0x80u8..0xFF {
            assert!(
                mulaw_to_linear(code) > mulaw_to_linear(code + 1),
                "{code:#x}"
            );
        }
        let mut positives: Vec<i16> = (0..=255u8).map(alaw_to_linear).filter(|&v| v > 0).collect();
        positives.sort_unstable();
        positives.dedup();
        assert_eq!(positives.len(), 128);
    }
}
