//! `MediaRedaction`: a copy of a transcript's audio with the PII silenced.
//!
//! The spans come from the sentences' word times: each entity [`pii::find_in_sentences`]
//! reports covers its words (a number running on into the channel's next sentence covers its
//! words in both), widened by [`PAD`] on both sides because recognisers place word boundaries
//! loosely. A sentence with PII but without word times loses its whole time span. The copy is the source
//! WAV itself, byte for byte, with the samples of every channel in each span set to the coding's
//! silence (a dual-channel call's other side can carry an echo of the speaker): the header,
//! format and length stay the source's, and audio outside the spans is unchanged. Pure
//! functions over buffers: the job seals the copy through the sink as it holds it in memory.

use mediaseal_asr::audio::{SampleCoding, parse_wav};

use crate::pii;
use crate::sentences::Sentence;

/// How far beyond a PII word's recognised times the silence reaches, seconds.
pub const PAD: f64 = 0.25;

/// Why the audio could not be redacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedactError {
    /// Not a WAV this crate reads.
    #[error("the audio is not a WAV file that can be redacted: {0}")]
    NotWav(String),
    /// A sample coding without a silence value here.
    #[error("the audio's sample coding ({0:?}) cannot be redacted")]
    Coding(SampleCoding),
}

fn secs(t: Option<&str>) -> Option<f64> {
    t?.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// The time spans (seconds, start ≤ end, sorted, merged) holding PII in `sentences`.
pub fn pii_spans(sentences: &[Sentence]) -> Vec<(f64, f64)> {
    let mut spans = Vec::new();
    // A sentence without words is looked at in its text.
    let words: Vec<(u32, Vec<&str>)> = sentences
        .iter()
        .map(|s| {
            let words = if s.words.is_empty() {
                s.transcript.split_whitespace().collect()
            } else {
                s.words.iter().map(|w| w.word.as_str()).collect()
            };
            (s.media_channel, words)
        })
        .collect();
    for (s, found) in sentences.iter().zip(pii::find_in_sentences(&words)) {
        if s.words.is_empty() {
            if !found.is_empty() {
                spans.extend(sentence_span(s));
            }
            continue;
        }
        for f in &found {
            let start = secs(s.words[f.first].start_time.as_deref());
            let end = secs(s.words[f.last].end_time.as_deref());
            match (start, end) {
                (Some(a), Some(b)) => spans.push((a.min(b) - PAD, a.max(b) + PAD)),
                // Times missing on the words: the sentence's own span, or nothing safer.
                _ => spans.extend(sentence_span(s)),
            }
        }
    }
    for span in &mut spans {
        span.0 = span.0.max(0.0);
    }
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(spans.len());
    for (a, b) in spans {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
}

fn sentence_span(s: &Sentence) -> Option<(f64, f64)> {
    let (a, b) = (secs(s.start_time.as_deref())?, secs(s.end_time.as_deref())?);
    Some((a.min(b) - PAD, a.max(b) + PAD))
}

/// The byte that is silence in `coding`, for 8-bit codings, or `0` for the linear and float
/// ones (all of whose bytes are zero at silence).
fn silence_byte(coding: SampleCoding) -> Result<u8, RedactError> {
    Ok(match coding {
        SampleCoding::Pcm8 => 0x80,
        SampleCoding::MuLaw => 0xFF,
        SampleCoding::ALaw => 0xD5,
        SampleCoding::Pcm16 | SampleCoding::Pcm24 | SampleCoding::Pcm32 | SampleCoding::Float32 => {
            0
        }
        other => return Err(RedactError::Coding(other)),
    })
}

/// Silences `spans` (seconds) on every channel of the WAV file `wav`, in place. Returns the
/// number of frames silenced.
pub fn silence(wav: &mut [u8], spans: &[(f64, f64)]) -> Result<u64, RedactError> {
    let (format, data) = parse_wav(wav).map_err(|e| RedactError::NotWav(e.to_string()))?;
    let fill = silence_byte(format.coding)?;
    // Where the samples are in `wav`: `data` is a slice of it.
    let data_start = data.as_ptr() as usize - wav.as_ptr() as usize;
    let data_len = data.len();
    let bytes_per_sample = match format.coding {
        SampleCoding::Pcm8 | SampleCoding::MuLaw | SampleCoding::ALaw => 1,
        SampleCoding::Pcm16 => 2,
        SampleCoding::Pcm24 => 3,
        _ => 4,
    };
    let frame = bytes_per_sample * usize::from(format.channels);
    let frames = data_len / frame.max(1);
    let rate = f64::from(format.sample_rate);
    let mut silenced = 0u64;
    for &(a, b) in spans {
        // Rounded outwards, so a span's edges are silenced too.
        let first = ((a.max(0.0) * rate).floor() as usize).min(frames);
        let end = ((b.max(0.0) * rate).ceil() as usize).min(frames);
        if end <= first {
            continue;
        }
        wav[data_start + first * frame..data_start + end * frame].fill(fill);
        silenced += (end - first) as u64;
    }
    Ok(silenced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sentences::Word;

    fn sentence(words: &[(&str, f32)]) -> Sentence {
        Sentence {
            confidence: None,
            end_time: words.last().map(|w| format!("{:.3}", w.1 + 0.2)),
            media_channel: 1,
            sentence_index: 0,
            sid: "GX0".to_owned(),
            start_time: words.first().map(|w| format!("{:.3}", w.1)),
            transcript: words.iter().map(|w| w.0).collect::<Vec<_>>().join(" "),
            words: words
                .iter()
                .map(|(w, t)| Word {
                    end_time: Some(format!("{:.3}", t + 0.2)),
                    start_time: Some(format!("{t:.3}")),
                    word: (*w).to_owned(),
                })
                .collect(),
        }
    }

    #[test]
    fn spans_cover_the_pii_words_padded() {
        let s = sentence(&[
            ("call", 1.0),
            ("415", 2.0),
            ("555", 2.5),
            ("0132", 3.0),
            ("thanks", 5.0),
        ]);
        let spans = pii_spans(&[s]);
        assert_eq!(spans.len(), 1);
        assert!((spans[0].0 - (2.0 - PAD)).abs() < 1e-6, "{spans:?}");
        assert!((spans[0].1 - (3.2 + PAD)).abs() < 1e-6, "{spans:?}");
        assert!(pii_spans(&[sentence(&[("hello", 0.0), ("there", 0.5)])]).is_empty());
        // Without word times, the sentence goes.
        let mut s = sentence(&[("card", 4.0), ("4539148803436467", 4.5)]);
        s.words.clear();
        let spans = pii_spans(&[s]);
        assert_eq!(spans.len(), 1);
        assert!((spans[0].0 - (4.0 - PAD)).abs() < 1e-6, "{spans:?}");
    }

    fn wav(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
        let block = channels * bits / 8;
        let mut out = Vec::new();
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&channels.to_le_bytes());
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
        out.extend_from_slice(&block.to_le_bytes());
        out.extend_from_slice(&bits.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn silence_keeps_the_format_and_everything_outside_the_spans() {
        // 16-bit stereo at 8 kHz: 2 s of a constant signal.
        let data: Vec<u8> = (0..16_000).flat_map(|_| [0x10, 0x20, 0x30, 0x40]).collect();
        let source = wav(1, 2, 8000, 16, &data);
        let mut copy = source.clone();
        let n = silence(&mut copy, &[(0.5, 1.0)]).unwrap();
        assert_eq!(n, 4000);
        assert_eq!(copy.len(), source.len());
        assert_eq!(copy[..44], source[..44]);
        let frame = |b: &[u8], i: usize| b[44 + i * 4..44 + i * 4 + 4].to_vec();
        assert_eq!(frame(&copy, 3999), frame(&source, 3999));
        assert_eq!(frame(&copy, 4000), [0, 0, 0, 0]);
        assert_eq!(frame(&copy, 7999), [0, 0, 0, 0]);
        assert_eq!(frame(&copy, 8000), frame(&source, 8000));
        // Spans past the end stop at it.
        assert_eq!(silence(&mut copy, &[(1.5, 9.0)]).unwrap(), 4000);

        // μ-law silence is 0xFF.
        let mut mulaw = wav(7, 1, 8000, 8, &[0x12; 8000]);
        assert_eq!(silence(&mut mulaw, &[(0.0, 0.5)]).unwrap(), 4000);
        assert!(mulaw[44..44 + 4000].iter().all(|&b| b == 0xFF));
        assert!(mulaw[44 + 4000..].iter().all(|&b| b == 0x12));

        assert!(matches!(
            silence(&mut b"not a wav".to_vec(), &[]),
            Err(RedactError::NotWav(_))
        ));
    }
}
