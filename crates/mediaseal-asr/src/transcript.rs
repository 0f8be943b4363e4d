//! What a transcription asks for and what it returns.
//!
//! Transcript text is customer data: these types print only lengths and times in `Debug`, and
//! overwrite their text when dropped, so a stray `{:?}` or a freed buffer does not leak it.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// Options for one transcription.
#[derive(Clone, PartialEq, Eq)]
pub struct AsrOptions {
    /// Spoken language as an ISO 639-1 code (`"en"`); `None` lets the engine detect it.
    pub language: Option<String>,
    /// Ask for per-word times (and confidences where the engine has them).
    pub word_timestamps: bool,
    /// Vocabulary hint passed to engines that take one (Whisper's initial prompt).
    pub prompt: Option<String>,
}

impl Default for AsrOptions {
    fn default() -> Self {
        Self {
            language: Some("en".to_owned()),
            word_timestamps: true,
            prompt: None,
        }
    }
}

impl fmt::Debug for AsrOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsrOptions")
            .field("language", &self.language)
            .field("word_timestamps", &self.word_timestamps)
            .field("prompt", &self.prompt.as_ref().map(|p| Redacted(p.len())))
            .finish()
    }
}

/// One recognised word.
#[derive(Clone, PartialEq, Zeroize, ZeroizeOnDrop)]
pub struct AsrWord {
    /// The word as the engine wrote it (Whisper keeps leading spaces and punctuation; they are
    /// trimmed here).
    pub text: String,
    /// Start, seconds from the start of the audio.
    pub start: f32,
    /// End, seconds from the start of the audio.
    pub end: f32,
    /// Engine confidence in 0..=1, when the engine has one.
    pub confidence: Option<f32>,
}

/// A stretch of speech: a sentence or an utterance, as the engine segments it.
#[derive(Clone, PartialEq, Zeroize, ZeroizeOnDrop)]
pub struct AsrSegment {
    /// Start, seconds from the start of the audio.
    pub start: f32,
    /// End, seconds from the start of the audio.
    pub end: f32,
    /// The segment's text, trimmed.
    pub text: String,
    /// Engine confidence in 0..=1: `exp(avg_logprob)` for Whisper, the mean word posterior for
    /// pocketsphinx, absent when the engine reports none.
    pub confidence: Option<f32>,
    /// The words, in order; empty when word timestamps were not asked for or not available.
    pub words: Vec<AsrWord>,
}

/// The result of transcribing one channel.
#[derive(Clone, Default, PartialEq, Zeroize, ZeroizeOnDrop)]
pub struct Transcript {
    /// The language the engine used or detected, when it says.
    pub language: Option<String>,
    /// Segments in time order.
    pub segments: Vec<AsrSegment>,
}

impl Transcript {
    /// All segment texts joined by single spaces.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            if segment.text.is_empty() {
                continue;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&segment.text);
        }
        out
    }

    /// Number of words over all segments.
    pub fn word_count(&self) -> usize {
        self.segments.iter().map(|s| s.words.len()).sum()
    }
}

/// Prints as `<N bytes>`: the length of a text, never the text.
struct Redacted(usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0)
    }
}

impl fmt::Debug for AsrWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsrWord")
            .field("text", &Redacted(self.text.len()))
            .field("start", &self.start)
            .field("end", &self.end)
            .field("confidence", &self.confidence)
            .finish()
    }
}

impl fmt::Debug for AsrSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsrSegment")
            .field("start", &self.start)
            .field("end", &self.end)
            .field("text", &Redacted(self.text.len()))
            .field("confidence", &self.confidence)
            .field("words", &self.words)
            .finish()
    }
}

impl fmt::Debug for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transcript")
            .field("language", &self.language)
            .field("segments", &self.segments)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_text() {
        let transcript = Transcript {
            language: Some("en".into()),
            segments: vec![AsrSegment {
                start: 0.0,
                end: 1.0,
                text: "my card is 4111".into(),
                confidence: Some(0.9),
                words: vec![AsrWord {
                    text: "4111".into(),
                    start: 0.5,
                    end: 1.0,
                    confidence: None,
                }],
            }],
        };
        let shown = format!(
            "{transcript:?} {:?}",
            AsrOptions {
                prompt: Some("Acme".into()),
                ..Default::default()
            }
        );
        assert!(
            !shown.contains("4111") && !shown.contains("card") && !shown.contains("Acme"),
            "{shown}"
        );
        assert!(
            shown.contains("<15 bytes>") && shown.contains("<4 bytes>"),
            "{shown}"
        );
        assert_eq!(transcript.text(), "my card is 4111");
        assert_eq!(transcript.word_count(), 1);
    }
}
