//! G.711 μ-law and A-law (ITU-T G.711): the telephone codecs the call relay carries and the
//! speech recogniser reads from recordings.
//!
//! Decoding is a 256-entry table built at compile time; encoding is the segment search of the
//! classic reference implementation. One copy for the relay (recording tap, silence detection,
//! prompts) and the ASR audio preparation.

/// A G.711 variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// μ-law (PCMU, RTP payload type 0).
    Mu,
    /// A-law (PCMA, RTP payload type 8).
    A,
}

impl Law {
    /// Decodes one sample.
    pub fn decode(self, byte: u8) -> i16 {
        match self {
            Self::Mu => ULAW_TO_LINEAR[usize::from(byte)],
            Self::A => ALAW_TO_LINEAR[usize::from(byte)],
        }
    }

    /// Encodes one sample.
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Self::Mu => linear_to_ulaw(sample),
            Self::A => linear_to_alaw(sample),
        }
    }

    /// Decodes `bytes` into `out` (cleared first).
    pub fn decode_into(self, bytes: &[u8], out: &mut Vec<i16>) {
        out.clear();
        out.extend(bytes.iter().map(|&b| self.decode(b)));
    }

    /// The encoded value of silence.
    pub fn silence(self) -> u8 {
        self.encode(0)
    }
}

const fn ulaw_decode(byte: u8) -> i16 {
    let u = !byte;
    let mut t: i32 = (((u & 0x0f) as i32) << 3) + 0x84;
    t <<= ((u & 0x70) >> 4) as i32;
    if u & 0x80 != 0 {
        (0x84 - t) as i16
    } else {
        (t - 0x84) as i16
    }
}

const fn alaw_decode(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let mut t: i32 = ((a & 0x0f) as i32) << 4;
    let seg = ((a & 0x70) >> 4) as i32;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    if a & 0x80 != 0 { t as i16 } else { -t as i16 }
}

const fn table(alaw: bool) -> [i16; 256] {
    let mut out = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        out[i] = if alaw {
            alaw_decode(i as u8)
        } else {
            ulaw_decode(i as u8)
        };
        i += 1;
    }
    out
}

static ULAW_TO_LINEAR: [i16; 256] = table(false);
static ALAW_TO_LINEAR: [i16; 256] = table(true);

fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut pcm = i32::from(sample);
    let sign: u8 = if pcm < 0 {
        pcm = -pcm;
        0x80
    } else {
        0
    };
    pcm = pcm.min(CLIP) + BIAS;
    // The exponent is the position of the highest set bit above bit 7.
    let mut exponent: u8 = 7;
    let mut mask = 0x4000;
    while exponent > 0 && pcm & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = ((pcm >> (i32::from(exponent) + 3)) & 0x0f) as u8;
    !(sign | (exponent << 4) | mantissa)
}

fn linear_to_alaw(sample: i16) -> u8 {
    const SEGMENT_END: [i32; 8] = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];
    let mut pcm = i32::from(sample) >> 3;
    let mask: u8 = if pcm >= 0 {
        0xd5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    let Some(seg) = SEGMENT_END.iter().position(|&end| pcm <= end) else {
        return 0x7f ^ mask;
    };
    let seg_bits = (seg as u8) << 4;
    let mantissa = if seg < 2 {
        ((pcm >> 1) & 0x0f) as u8
    } else {
        ((pcm >> seg) & 0x0f) as u8
    };
    (seg_bits | mantissa) ^ mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // Silence and the extremes, from the G.711 tables.
        assert_eq!(Law::Mu.decode(0xff), 0);
        assert_eq!(Law::Mu.decode(0x7f), 0);
        assert_eq!(Law::Mu.decode(0x00), -32124);
        assert_eq!(Law::Mu.decode(0x80), 32124);
        assert_eq!(Law::A.decode(0xd5), 8);
        assert_eq!(Law::A.decode(0x55), -8);
        assert_eq!(Law::A.decode(0xaa), 32256);
        assert_eq!(Law::A.decode(0x2a), -32256);
        assert_eq!(Law::Mu.silence(), 0xff);
        assert_eq!(Law::A.silence(), 0xd5);
    }

    #[test]
    fn every_code_round_trips() {
        for law in [Law::Mu, Law::A] {
            for byte in 0..=255u8 {
                let x = law.decode(byte);
                let back = law.encode(x);
                // μ-law has two zeros (0x7f, 0xff): both decode to 0, which encodes to 0xff.
                if law == Law::Mu && x == 0 {
                    assert_eq!(back, 0xff);
                } else {
                    assert_eq!(back, byte, "{law:?} {byte:#04x} -> {x}");
                }
            }
        }
    }

    #[test]
    fn quantisation_error_is_small() {
        for law in [Law::Mu, Law::A] {
            for x in (-32000i32..32000).step_by(7) {
                let x = x as i16;
                let y = law.decode(law.encode(x));
                let err = (i32::from(x) - i32::from(y)).abs();
                // Worst case is half the largest segment's step (1024 for A-law, 1024 for μ).
                assert!(err <= 1024 + i32::from(x).abs() / 16, "{law:?} {x} -> {y}");
            }
        }
    }
}
