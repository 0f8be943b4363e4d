//! The pocketsphinx engine: Debian's `pocketsphinx_continuous` (0.8+5prealpha) with raw PCM on
//! stdin.
//!
//! Runs `pocketsphinx_continuous -infile /dev/stdin -time yes -logfn /dev/null -hmm … -lm …
//! -dict …` once per request (the model loads in well under a second), writes the samples to
//! its stdin and parses `word start end posterior` lines from its stdout. Raw PCM, not WAV: the
//! tool would decode a WAV header arriving through `/dev/stdin` as samples. It writes nothing
//! but `/dev/null` (its log). Far less accurate than Whisper on telephone audio (see
//! docs/ASR.md): the always-installable fallback.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::process::{describe_status, find_program, hardened_command};
use crate::{AsrOptions, AsrSegment, AsrWord, SpeechEngine, TranscribeError, Transcript};

/// Debian's binary name.
const PROGRAM: &str = "pocketsphinx_continuous";
/// Debian's `pocketsphinx-en-us` model directory.
const DEBIAN_MODEL_DIR: &str = "/usr/share/pocketsphinx/model/en-us";

/// Where pocketsphinx and its US English model are.
#[derive(Debug, Clone)]
pub struct PocketsphinxConfig {
    /// The `pocketsphinx_continuous` binary.
    pub program: PathBuf,
    /// Acoustic model directory (`-hmm`).
    pub acoustic_model: PathBuf,
    /// Language model (`-lm`).
    pub language_model: PathBuf,
    /// Pronunciation dictionary (`-dict`).
    pub dictionary: PathBuf,
    /// Fixed part of a request's timeout.
    pub request_timeout: Duration,
    /// Added to the timeout per second of audio.
    pub timeout_per_audio_second: Duration,
}

/// Why pocketsphinx cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "pocketsphinx is not installed ({missing}); install it with `apt-get install pocketsphinx pocketsphinx-en-us`"
)]
pub struct PocketsphinxMissing {
    /// What was not found.
    pub missing: String,
}

impl PocketsphinxConfig {
    /// Debian's layout: the binary on `PATH`, the model from `pocketsphinx-en-us`.
    pub fn debian() -> Result<Self, PocketsphinxMissing> {
        let program = find_program(PROGRAM).ok_or_else(|| PocketsphinxMissing {
            missing: format!("{PROGRAM} not on PATH"),
        })?;
        let model = PathBuf::from(DEBIAN_MODEL_DIR);
        let config = Self {
            program,
            acoustic_model: model.join("en-us"),
            language_model: model.join("en-us.lm.bin"),
            dictionary: model.join("cmudict-en-us.dict"),
            request_timeout: Duration::from_secs(30),
            timeout_per_audio_second: Duration::from_secs(3),
        };
        for path in [
            &config.acoustic_model,
            &config.language_model,
            &config.dictionary,
        ] {
            if !path.exists() {
                return Err(PocketsphinxMissing {
                    missing: format!("{} not found", path.display()),
                });
            }
        }
        Ok(config)
    }
}

/// Speech recognition with CMU pocketsphinx. See the module docs.
#[derive(Debug, Clone)]
pub struct PocketsphinxEngine {
    config: PocketsphinxConfig,
}

impl PocketsphinxEngine {
    /// An engine with this configuration (nothing is started until a request).
    pub fn new(config: PocketsphinxConfig) -> Self {
        Self { config }
    }

    /// The engine with Debian's binary and model.
    pub fn debian() -> Result<Self, PocketsphinxMissing> {
        PocketsphinxConfig::debian().map(Self::new)
    }

    fn fail(&self, make: impl FnOnce(String) -> TranscribeError) -> TranscribeError {
        make(self.id().to_owned())
    }
}

const ENGINE_ID: &str = "pocketsphinx:en-us";

impl SpeechEngine for PocketsphinxEngine {
    fn id(&self) -> &str {
        ENGINE_ID
    }

    /// Every request is its own process: one per core.
    fn parallelism(&self) -> usize {
        thread::available_parallelism().map_or(1, |n| n.get())
    }

    fn transcribe(&self, pcm: &[i16], options: &AsrOptions) -> Result<Transcript, TranscribeError> {
        if let Some(language) = options
            .language
            .as_deref()
            .filter(|l| !l.eq_ignore_ascii_case("en"))
        {
            return Err(self.fail(|engine| TranscribeError::Unsupported {
                engine,
                what: format!(
                    "only US English is installed, not {language:?}; use the whisper engine"
                ),
            }));
        }
        if pcm.is_empty() {
            return Ok(Transcript::default());
        }
        let config = &self.config;
        let args: Vec<OsString> = [
            "-infile",
            "/dev/stdin",
            "-time",
            "yes",
            "-logfn",
            "/dev/null",
        ]
        .iter()
        .map(OsString::from)
        .chain([
            "-hmm".into(),
            config.acoustic_model.clone().into(),
            "-lm".into(),
            config.language_model.clone().into(),
            "-dict".into(),
            config.dictionary.clone().into(),
        ])
        .collect();
        let mut child = hardened_command(&config.program, &args, &[], std::path::Path::new("/"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                self.fail(|engine| TranscribeError::Start {
                    engine,
                    reason: format!("could not run {}: {e}", config.program.display()),
                })
            })?;
        let (Some(mut stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(self.fail(|engine| TranscribeError::Start {
                engine,
                reason: "pipes not set up".to_owned(),
            }));
        };
        let mut raw = Zeroizing::new(Vec::with_capacity(pcm.len() * 2));
        for sample in pcm {
            raw.extend_from_slice(&sample.to_le_bytes());
        }
        let seconds = pcm.len() as f64 / f64::from(crate::SAMPLE_RATE);
        let timeout = config.request_timeout + config.timeout_per_audio_second.mul_f64(seconds);

        let (sender, receiver) = mpsc::channel();
        let (output, timed_out) = thread::scope(|scope| {
            let raw = &raw;
            scope.spawn(move || {
                let _ = stdin.write_all(raw);
                // Dropping stdin ends the input, so pocketsphinx finishes its last utterance.
            });
            scope.spawn(move || {
                let mut output = Zeroizing::new(Vec::new());
                let result = stdout.read_to_end(&mut output).map(|_| output);
                let _ = sender.send(result);
            });
            match receiver.recv_timeout(timeout) {
                Ok(result) => (Some(result), false),
                Err(_) => {
                    // Killing it closes both pipes, which ends both threads.
                    let _ = child.kill();
                    (None, true)
                }
            }
        });
        let status = child.wait();
        if timed_out {
            return Err(self.fail(|engine| TranscribeError::TimedOut {
                engine,
                after: timeout,
            }));
        }
        let status = status.map_err(|e| {
            self.fail(|engine| TranscribeError::Crashed {
                engine,
                status: format!("could not be waited for: {e}"),
            })
        })?;
        if !status.success() {
            return Err(self.fail(|engine| TranscribeError::Crashed {
                engine,
                status: describe_status(status),
            }));
        }
        let output = match output {
            Some(Ok(output)) => output,
            Some(Err(e)) => {
                return Err(self.fail(|engine| TranscribeError::Protocol {
                    engine,
                    detail: format!("reading its output: {e}"),
                }));
            }
            None => {
                return Err(self.fail(|engine| TranscribeError::Protocol {
                    engine,
                    detail: "no output".to_owned(),
                }));
            }
        };
        let text = std::str::from_utf8(&output).map_err(|_| {
            self.fail(|engine| TranscribeError::Protocol {
                engine,
                detail: "output is not UTF-8".to_owned(),
            })
        })?;
        Ok(parse_pocketsphinx_output(text, options.word_timestamps))
    }
}

/// Parses `pocketsphinx_continuous -time yes` output: per utterance a hypothesis line, then
/// `word start end posterior` lines from `<s>` to `</s>`. Fillers (`<sil>`, `[NOISE]`, `++…++`)
/// are dropped, alternate pronunciations (`word(2)`) are folded into their word. Segment text is
/// rebuilt from the words; confidence is the mean word posterior.
pub fn parse_pocketsphinx_output(output: &str, word_timestamps: bool) -> Transcript {
    let mut segments = Vec::new();
    let mut current: Option<AsrSegment> = None;
    for line in output.lines() {
        let Some((word, start, end, posterior)) = word_line(line) else {
            continue;
        };
        match word {
            "<s>" => {
                if let Some(segment) = current.take() {
                    push_segment(&mut segments, segment);
                }
                current = Some(AsrSegment {
                    start,
                    end,
                    text: String::new(),
                    confidence: None,
                    words: Vec::new(),
                });
            }
            "</s>" => {
                if let Some(mut segment) = current.take() {
                    segment.end = end;
                    push_segment(&mut segments, segment);
                }
            }
            _ if is_filler(word) => {}
            _ => {
                let segment = current.get_or_insert_with(|| AsrSegment {
                    start,
                    end,
                    text: String::new(),
                    confidence: None,
                    words: Vec::new(),
                });
                let text = word.split_once('(').map_or(word, |(base, _)| base);
                segment.words.push(AsrWord {
                    text: text.to_owned(),
                    start,
                    end,
                    confidence: Some(posterior.clamp(0.0, 1.0)),
                });
                segment.end = end;
            }
        }
    }
    if let Some(segment) = current.take() {
        push_segment(&mut segments, segment);
    }
    if !word_timestamps {
        for segment in &mut segments {
            segment.words.clear();
        }
    }
    Transcript {
        language: Some("en".to_owned()),
        segments,
    }
}

fn push_segment(segments: &mut Vec<AsrSegment>, mut segment: AsrSegment) {
    if segment.words.is_empty() {
        return;
    }
    let mut text = String::new();
    for word in &segment.words {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&word.text);
    }
    segment.text = text;
    segment.start = segment.words.first().map_or(segment.start, |w| w.start);
    let sum: f32 = segment.words.iter().filter_map(|w| w.confidence).sum();
    segment.confidence = Some(sum / segment.words.len() as f32);
    segments.push(segment);
}

fn is_filler(word: &str) -> bool {
    word.starts_with('<') || word.starts_with('[') || word.starts_with("++")
}

/// `word 1.230 1.450 0.998` → its parts; anything else (a hypothesis line) → `None`.
fn word_line(line: &str) -> Option<(&str, f32, f32, f32)> {
    let mut parts = line.split_whitespace();
    let (word, start, end, posterior) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let number = |s: &str| -> Option<f32> {
        let plain = s.contains('.') && s.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        plain.then(|| s.parse().ok()).flatten()
    };
    Some((word, number(start)?, number(end)?, number(posterior)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../testdata/pocketsphinx_time_yes.txt");

    #[test]
    fn utterances_become_segments() {
        let transcript = parse_pocketsphinx_output(SAMPLE, true);
        assert_eq!(transcript.segments.len(), 2);
        let first = &transcript.segments[0];
        assert_eq!(first.text, "unique you forgot");
        assert_eq!((first.start, first.end), (0.08, 5.48));
        assert_eq!(first.words[2].text, "forgot");
        let second = &transcript.segments[1];
        assert_eq!(second.text, "you can");
        assert_eq!(second.confidence, Some(0.5));
        assert_eq!(transcript.text(), "unique you forgot you can");
        assert!(
            parse_pocketsphinx_output(SAMPLE, false)
                .segments
                .iter()
                .all(|s| s.words.is_empty())
        );
    }

    #[test]
    fn odd_lines_are_ignored() {
        let transcript = parse_pocketsphinx_output(
            "word 1 2 3\nfour words in line\nhello inf nan 0.5\n\n<s>\n",
            true,
        );
        assert!(transcript.segments.is_empty());
        let transcript = parse_pocketsphinx_output("hello 0.100 0.200 0.900\n", true);
        assert_eq!(transcript.text(), "hello");
    }
}
