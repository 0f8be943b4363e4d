//! Sentences: the recogniser's segments of every channel, merged by time, in the shape of
//! Twilio's `Sentence` resource. This is the plaintext of the sealed sentences object, so the
//! types redact their text in `Debug` and wipe it on drop.

use std::fmt;

use mediaseal_asr::Transcript as AsrTranscript;
use mediaseal_service::sid::new_sid;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// One word of a sentence (fields in alphabetical order, as clients see them).
#[derive(Clone, PartialEq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct Word {
    /// Seconds from the start of the audio, as a string.
    pub end_time: Option<String>,
    /// Seconds from the start of the audio, as a string.
    pub start_time: Option<String>,
    /// The word.
    pub word: String,
}

/// One sentence (fields in alphabetical order, as clients see them).
#[derive(Clone, PartialEq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct Sentence {
    /// The engine's confidence in 0..=1, as a string.
    pub confidence: Option<String>,
    /// Seconds from the start of the audio, as a string.
    pub end_time: Option<String>,
    /// The audio channel, 1-based.
    pub media_channel: u32,
    /// Position in the transcript, from 0, in time order over all channels.
    pub sentence_index: u64,
    /// `GX…`.
    pub sid: String,
    /// Seconds from the start of the audio, as a string.
    pub start_time: Option<String>,
    /// The text.
    pub transcript: String,
    /// The words, in order.
    pub words: Vec<Word>,
}

impl fmt::Debug for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Word(<{} bytes>)", self.word.len())
    }
}

impl fmt::Debug for Sentence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sentence")
            .field("sid", &self.sid)
            .field("media_channel", &self.media_channel)
            .field("sentence_index", &self.sentence_index)
            .field(
                "transcript",
                &format_args!("<{} bytes>", self.transcript.len()),
            )
            .field("words", &self.words.len())
            .finish()
    }
}

fn seconds(t: f32) -> String {
    format!("{t:.3}")
}

/// Merges the transcripts of each channel (`(channel, transcript)`, channel 1-based) into
/// sentences ordered by start time (then channel), numbered from 0. Empty segments are dropped.
pub fn merge(channels: &[(u32, AsrTranscript)]) -> Vec<Sentence> {
    let mut all: Vec<(f32, u32, usize, usize)> = Vec::new();
    for (ci, (channel, transcript)) in channels.iter().enumerate() {
        for (si, segment) in transcript.segments.iter().enumerate() {
            if !segment.text.trim().is_empty() {
                all.push((segment.start, *channel, ci, si));
            }
        }
    }
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.into_iter()
        .enumerate()
        .filter_map(|(index, (_, channel, ci, si))| {
            let segment = channels.get(ci)?.1.segments.get(si)?;
            Some(Sentence {
                confidence: segment.confidence.map(|c| format!("{c:.4}")),
                end_time: Some(seconds(segment.end)),
                media_channel: channel,
                sentence_index: index as u64,
                sid: new_sid("GX"),
                start_time: Some(seconds(segment.start)),
                transcript: segment.text.trim().to_owned(),
                words: segment
                    .words
                    .iter()
                    .map(|w| Word {
                        end_time: Some(seconds(w.end)),
                        start_time: Some(seconds(w.start)),
                        word: w.text.clone(),
                    })
                    .collect(),
            })
        })
        .collect()
}

/// The sealed object's opening bytes: `{"sentences":[`. Sentences follow, comma separated,
/// then [`DOC_TAIL`]; so the object is written (and sealed) one sentence at a time.
pub const DOC_HEAD: &[u8] = b"{\"sentences\":[";
/// The sealed object's closing bytes.
pub const DOC_TAIL: &[u8] = b"]}";

/// The JSON of one sentence, in a buffer wiped on drop.
pub fn sentence_json(sentence: &Sentence) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(256 + sentence.transcript.len() * 4));
    // Writing a struct of strings and numbers into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, sentence);
    out
}

/// The sealed sentences document: `{"sentences": […]}`.
#[derive(Debug, Default, Deserialize)]
pub struct SentencesDoc {
    /// The sentences, in order.
    pub sentences: Vec<Sentence>,
}

/// The opened sentences object is not a sentences document (damaged or from a newer version).
#[derive(Debug, thiserror::Error)]
#[error("the stored sentences could not be read: {0}")]
pub struct DocError(String);

impl SentencesDoc {
    /// Parses an opened sentences object.
    pub fn parse(plain: &[u8]) -> Result<Self, DocError> {
        // The error's text has a position, never the input.
        serde_json::from_slice(plain)
            .map_err(|e| DocError(format!("{} at line {}", e.classify_name(), e.line())))
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected data",
            serde_json::error::Category::Eof => "unexpected end",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mediaseal_asr::{AsrSegment, AsrWord};

    fn seg(start: f32, text: &str) -> AsrSegment {
        AsrSegment {
            start,
            end: start + 1.0,
            text: text.to_owned(),
            confidence: Some(0.5),
            words: vec![AsrWord {
                text: text.to_owned(),
                start,
                end: start + 1.0,
                confidence: None,
            }],
        }
    }

    #[test]
    fn channels_merge_by_time_and_the_document_round_trips() {
        let left = AsrTranscript {
            language: None,
            segments: vec![seg(0.0, "hello"), seg(4.0, "bye"), seg(5.0, "  ")],
        };
        let right = AsrTranscript {
            language: None,
            segments: vec![seg(2.0, "hi there")],
        };
        let sentences = merge(&[(1, left), (2, right)]);
        let order: Vec<(u64, u32, &str)> = sentences
            .iter()
            .map(|s| (s.sentence_index, s.media_channel, s.transcript.as_str()))
            .collect();
        assert_eq!(order, [(0, 1, "hello"), (1, 2, "hi there"), (2, 1, "bye")]);
        assert!(sentences.iter().all(|s| s.sid.starts_with("GX")));
        assert_eq!(sentences[1].start_time.as_deref(), Some("2.000"));

        let mut doc = DOC_HEAD.to_vec();
        for (i, s) in sentences.iter().enumerate() {
            if i > 0 {
                doc.push(b',');
            }
            doc.extend_from_slice(&sentence_json(s));
        }
        doc.extend_from_slice(DOC_TAIL);
        let parsed = SentencesDoc::parse(&doc).unwrap();
        assert_eq!(parsed.sentences, sentences);
        let shown = format!("{:?}", parsed.sentences);
        assert!(!shown.contains("hello"), "{shown}");
        let e = SentencesDoc::parse(b"{\"sentences\":[{\"secret words").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
    }
}
