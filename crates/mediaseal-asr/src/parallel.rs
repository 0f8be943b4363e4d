//! One recording on every recogniser the engine can run at once.
//!
//! A dual-channel call is two requests that can run side by side. A long channel is cut into
//! pieces in the longest pause near each equal-length mark, so a cut falls between sentences
//! rather than through a word or a number; each piece's times are shifted back by its offset
//! when the pieces are joined. Whisper itself reads audio in independent 30 s windows, so a cut
//! in a pause costs it no context it would otherwise have kept.

use std::thread;

use crate::{AsrOptions, SAMPLE_RATE, SpeechEngine, TranscribeError, Transcript};

/// A channel is cut only into pieces at least this long, so a channel shorter than twice this
/// is sent whole.
pub const MIN_PIECE_SECONDS: usize = 30;
/// How far from an equal-length mark a cut may move to find a pause.
const SEARCH_SECONDS: f64 = 4.0;
/// Energy is compared over 20 ms frames.
const FRAME: usize = SAMPLE_RATE as usize / 50;

/// Transcribes each channel of a recording (mono 16 kHz PCM, as [`crate::audio`] prepares
/// it), using up to [`SpeechEngine::parallelism`] requests at once. The result has one
/// transcript per channel, in order, with times from the start of the recording. If any piece
/// fails, the whole call fails with the first error in channel order.
pub fn transcribe_channels<P: AsRef<[i16]> + Sync>(
    engine: &dyn SpeechEngine,
    channels: &[P],
    options: &AsrOptions,
) -> Result<Vec<Transcript>, TranscribeError> {
    let lanes = engine.parallelism().max(1);
    let pieces = pieces_per_channel(channels, lanes);
    // (channel, first sample, end sample) of every request, in channel order.
    let mut work: Vec<(usize, usize, usize)> = Vec::new();
    for (channel, (pcm, &count)) in channels.iter().zip(&pieces).enumerate() {
        let pcm = pcm.as_ref();
        let mut start = 0;
        for cut in quiet_cuts(pcm, count) {
            work.push((channel, start, cut));
            start = cut;
        }
        work.push((channel, start, pcm.len()));
    }
    let outcomes: Vec<Result<Transcript, TranscribeError>> = if work.len() <= 1 || lanes == 1 {
        work.iter()
            .map(|&(channel, start, end)| {
                engine.transcribe(&channels[channel].as_ref()[start..end], options)
            })
            .collect()
    } else {
        thread::scope(|scope| {
            let handles: Vec<_> = work
                .iter()
                .map(|&(channel, start, end)| {
                    let pcm = &channels[channel].as_ref()[start..end];
                    scope.spawn(move || engine.transcribe(pcm, options))
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        })
    };
    let mut joined: Vec<Transcript> = (0..channels.len()).map(|_| Transcript::default()).collect();
    for (&(channel, start, _), outcome) in work.iter().zip(outcomes) {
        let mut piece = outcome?;
        let offset = start as f32 / SAMPLE_RATE as f32;
        let whole = &mut joined[channel];
        if whole.language.is_none() {
            whole.language = piece.language.take();
        }
        for segment in &mut piece.segments {
            segment.start += offset;
            segment.end += offset;
            for word in &mut segment.words {
                word.start += offset;
                word.end += offset;
            }
        }
        whole.segments.append(&mut piece.segments);
    }
    Ok(joined)
}

/// How many pieces each channel is cut into: one each, then the longest pieces are halved
/// again while there are idle lanes and a piece stays at least [`MIN_PIECE_SECONDS`] long.
fn pieces_per_channel<P: AsRef<[i16]>>(channels: &[P], lanes: usize) -> Vec<usize> {
    let mut pieces = vec![1usize; channels.len()];
    let min_piece = MIN_PIECE_SECONDS * SAMPLE_RATE as usize;
    while pieces.iter().sum::<usize>() < lanes {
        let longest = channels
            .iter()
            .zip(&pieces)
            .enumerate()
            .map(|(i, (pcm, &n))| (pcm.as_ref().len() / (n + 1), i))
            .filter(|&(piece_after, _)| piece_after >= min_piece)
            .max();
        match longest {
            Some((_, i)) => pieces[i] += 1,
            None => break,
        }
    }
    pieces
}

/// Where to cut `pcm` into `pieces` pieces: for each equal-length mark, the middle of the
/// longest pause within a few seconds of it. A pause is a run of 20 ms frames no louder than
/// four times the quietest frame there (a noise floor, or digital silence), so the cut prefers
/// the gap between two sentences to the short gaps between the digits of a number. Ascending,
/// inside `1..pcm.len()`; empty when `pieces` is 0 or 1.
pub fn quiet_cuts(pcm: &[i16], pieces: usize) -> Vec<usize> {
    let mut cuts = Vec::new();
    if pieces < 2 || pcm.len() < pieces * FRAME * 2 {
        return cuts;
    }
    let piece = pcm.len() / pieces;
    let reach = ((SEARCH_SECONDS * f64::from(SAMPLE_RATE)) as usize).min(piece / 3);
    let mut floor = 0;
    for mark in (1..pieces).map(|k| k * piece) {
        let from = mark.saturating_sub(reach).max(floor);
        let to = (mark + reach).min(pcm.len() - FRAME);
        let frames: Vec<(usize, u64)> = (from..=to.max(from))
            .step_by(FRAME)
            .filter(|&at| at + FRAME <= pcm.len())
            .map(|at| {
                let energy = pcm[at..at + FRAME]
                    .iter()
                    .map(|&s| (i64::from(s) * i64::from(s)) as u64)
                    .sum();
                (at, energy)
            })
            .collect();
        let quietest = frames.iter().map(|&(_, e)| e).min().unwrap_or(0);
        // Digital silence has a floor of 0: allow a whisper of dither above it.
        let limit = quietest.saturating_mul(4).max(16 * 16 * FRAME as u64);
        // (run length, -distance of its middle from the mark, middle)
        let mut best: Option<(usize, i64, usize)> = None;
        let mut run_start = None;
        for (i, &(_, energy)) in frames.iter().enumerate() {
            let quiet = energy <= limit;
            if quiet && run_start.is_none() {
                run_start = Some(i);
            }
            let run_ends = !quiet || i + 1 == frames.len();
            if let (true, Some(first)) = (run_ends, run_start) {
                let last = if quiet { i } else { i - 1 };
                let middle = (frames[first].0 + frames[last].0 + FRAME) / 2;
                let candidate = (last - first + 1, -(middle.abs_diff(mark) as i64), middle);
                if best.is_none_or(|b| (candidate.0, candidate.1) > (b.0, b.1)) {
                    best = Some(candidate);
                }
                run_start = None;
            }
        }
        let cut = best
            .map_or(mark, |(_, _, middle)| middle)
            .clamp(floor + 1, pcm.len() - 1);
        cuts.push(cut);
        floor = cut;
    }
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(seconds: f64) -> Vec<i16> {
        let n = (seconds * f64::from(SAMPLE_RATE)) as usize;
        (0..n)
            .map(|i| ((i as f64 * 0.07).sin() * 8000.0) as i16)
            .collect()
    }

    #[test]
    fn cuts_land_in_the_pause_nearest_the_mark() {
        // 11 s of sound, 0.5 s of silence, 11 s of sound: the one cut falls in the silence.
        let mut pcm = tone(11.0);
        let pause_start = pcm.len();
        pcm.extend(std::iter::repeat_n(0, SAMPLE_RATE as usize / 2));
        let pause_end = pcm.len();
        pcm.extend(tone(11.0));
        let cuts = quiet_cuts(&pcm, 2);
        assert_eq!(cuts.len(), 1);
        assert!((pause_start..pause_end).contains(&cuts[0]), "{cuts:?}");
    }

    #[test]
    fn a_sentence_pause_beats_a_gap_between_digits() {
        // A 100 ms gap right at the mark (between two digits), a 600 ms pause 2 s later.
        let mut pcm = tone(12.0);
        pcm.extend(std::iter::repeat_n(0, SAMPLE_RATE as usize / 10));
        pcm.extend(tone(2.0));
        let pause_start = pcm.len();
        pcm.extend(std::iter::repeat_n(0, SAMPLE_RATE as usize * 6 / 10));
        let pause_end = pcm.len();
        pcm.extend(tone(9.7));
        let cuts = quiet_cuts(&pcm, 2);
        assert!((pause_start..pause_end).contains(&cuts[0]), "{cuts:?}");
    }

    #[test]
    fn cuts_are_ordered_and_inside() {
        let pcm = vec![0i16; 45 * SAMPLE_RATE as usize];
        let cuts = quiet_cuts(&pcm, 3);
        assert_eq!(cuts.len(), 2);
        assert!(cuts[0] > 0 && cuts[0] < cuts[1] && cuts[1] < pcm.len());
        // All silence: the nearest frame to each mark wins.
        assert!(cuts[0].abs_diff(15 * SAMPLE_RATE as usize) <= FRAME);
        assert!(quiet_cuts(&pcm, 1).is_empty());
        assert!(quiet_cuts(&[1, 2, 3], 2).is_empty());
    }

    #[test]
    fn only_long_channels_are_cut() {
        let piece = MIN_PIECE_SECONDS * SAMPLE_RATE as usize;
        let short = vec![0i16; piece * 3 / 2];
        let long = vec![0i16; piece * 4];
        assert_eq!(pieces_per_channel(&[&short[..]], 2), vec![1]);
        assert_eq!(pieces_per_channel(&[&long[..]], 2), vec![2]);
        assert_eq!(pieces_per_channel(&[&long[..]], 8), vec![4]);
        assert_eq!(pieces_per_channel(&[&short[..], &long[..]], 2), vec![1, 1]);
        assert_eq!(pieces_per_channel(&[&short[..], &long[..]], 3), vec![1, 2]);
        assert_eq!(pieces_per_channel(&[&long[..]], 1), vec![1]);
    }

    /// Answers with one word per request: the number of samples it was given, at its start.
    #[derive(Debug)]
    struct Counting;

    impl SpeechEngine for Counting {
        fn id(&self) -> &str {
            "counting"
        }
        fn parallelism(&self) -> usize {
            2
        }
        fn transcribe(
            &self,
            pcm: &[i16],
            _options: &AsrOptions,
        ) -> Result<Transcript, TranscribeError> {
            if pcm.first() == Some(&-1) {
                return Err(TranscribeError::Engine {
                    engine: "counting".into(),
                    message: "refused".into(),
                });
            }
            let word = crate::AsrWord {
                text: pcm.len().to_string(),
                start: 0.5,
                end: 1.0,
                confidence: None,
            };
            Ok(Transcript {
                language: Some("en".into()),
                segments: vec![crate::AsrSegment {
                    start: 0.5,
                    end: 1.0,
                    text: word.text.clone(),
                    confidence: None,
                    words: vec![word],
                }],
            })
        }
    }

    #[test]
    fn pieces_are_joined_in_order_with_their_offsets() {
        // Two stretches of sound, each a little longer than a piece, with a second's pause.
        let side = MIN_PIECE_SECONDS as f64 + 2.0;
        let mut pcm = tone(side);
        let pause = pcm.len();
        pcm.extend(std::iter::repeat_n(0, SAMPLE_RATE as usize));
        pcm.extend(tone(side));
        let out = transcribe_channels(&Counting, &[pcm.clone()], &AsrOptions::default()).unwrap();
        assert_eq!(out.len(), 1);
        let segments = &out[0].segments;
        assert_eq!(segments.len(), 2);
        let first: usize = segments[0].text.parse().unwrap();
        let second: usize = segments[1].text.parse().unwrap();
        assert_eq!(first + second, pcm.len());
        assert!(first >= pause);
        let offset = first as f32 / SAMPLE_RATE as f32;
        assert!((segments[1].start - (0.5 + offset)).abs() < 1e-3);
        assert!((segments[1].words[0].end - (1.0 + offset)).abs() < 1e-3);
        assert_eq!(out[0].language.as_deref(), Some("en"));

        let two = transcribe_channels(
            &Counting,
            &[vec![0; 100], vec![0; 200]],
            &AsrOptions::default(),
        )
        .unwrap();
        assert_eq!(two[0].text(), "100");
        assert_eq!(two[1].text(), "200");
    }

    #[test]
    fn a_failed_piece_fails_the_recording() {
        let error = transcribe_channels(
            &Counting,
            &[vec![0; 100], vec![-1; 100]],
            &AsrOptions::default(),
        )
        .unwrap_err();
        assert!(error.to_string().contains("refused"), "{error}");
    }
}
