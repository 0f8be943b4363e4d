//! G.711 μ-law and A-law expansion to 16-bit linear PCM (ITU-T G.711), as two 256-entry
//! tables built at compile time.

const fn mulaw_expand(code: u8) -> i16 {
    let u = !code;
    let exponent = (u >> 4) & 0x07;
    let mantissa = (u & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn alaw_expand(code: u8) -> i16 {
    let a = code ^ 0x55;
    let exponent = (a >> 4) & 0x07;
    let mantissa = (a & 0x0F) as i32;
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    // In A-law the sign bit set means positive.
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const fn table(mulaw: bool) -> [i16; 256] {
    let mut out = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        out[i] = if mulaw {
            mulaw_expand(i as u8)
        } else {
            alaw_expand(i as u8)
        };
        i += 1;
    }
    out
}

static MULAW: [i16; 256] = table(true);
static ALAW: [i16; 256] = table(false);

/// Expands one G.711 μ-law code to linear 16-bit PCM.
pub fn mulaw_to_linear(code: u8) -> i16 {
    MULAW[usize::from(code)]
}

/// Expands one G.711 A-law code to linear 16-bit PCM.
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW[usize::from(code)]
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
