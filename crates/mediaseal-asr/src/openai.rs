//! The remote engine: any server answering the OpenAI-compatible
//! `POST /v1/audio/transcriptions` (whisper.cpp's `whisper-server --inference-path
//! /v1/audio/transcriptions`, speaches/faster-whisper-server, LocalAI, OpenAI itself).
//!
//! Each request uploads one channel as an in-memory 16 kHz mono WAV in a `multipart/form-data`
//! body with `response_format=verbose_json` and `timestamp_granularities[]=word` (and
//! `segment`), plus a bearer key when one is configured. Word lists are accepted at the top
//! level (OpenAI) or per segment (some servers); confidences are taken when present.
//!
//! Audio leaves the machine here, so the operator decides whom to trust: plain `http://` is
//! refused for anything but a loopback address unless explicitly allowed. Redirects are not
//! followed (they would resend the audio elsewhere).

use std::fmt;
use std::io::{Cursor, Read};
use std::net::IpAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use url::Url;
use zeroize::Zeroizing;

use crate::audio::pcm16_mono_wav;
use crate::whisper::trim_in_place;
use crate::{
    AsrOptions, AsrSegment, AsrWord, SAMPLE_RATE, SpeechEngine, TranscribeError, Transcript,
};

/// The path the convention puts the endpoint at.
const ENDPOINT_PATH: &str = "/v1/audio/transcriptions";
/// Largest response body read.
const MAX_RESPONSE: u64 = 64 << 20;

/// A bearer key for the transcription server; wiped on drop, never printed.
#[derive(Clone)]
pub struct ApiKey(Zeroizing<String>);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: String) -> Self {
        Self(Zeroizing::new(key))
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// How to reach the transcription server.
#[derive(Debug, Clone)]
pub struct OpenAiHttpConfig {
    /// The full endpoint URL (`…/v1/audio/transcriptions`).
    pub endpoint: Url,
    /// Bearer key, if the server wants one.
    pub api_key: Option<ApiKey>,
    /// The `model` form field (`whisper-1` for OpenAI; local servers mostly ignore it).
    pub model: String,
    /// Timeout for one request, upload to last byte of the answer.
    pub timeout: Duration,
}

/// Why the HTTP engine could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpSetupError {
    /// Not a URL.
    #[error("{url:?} is not a URL: {reason}")]
    BadUrl {
        /// What was given.
        url: String,
        /// The parser's complaint.
        reason: String,
    },
    /// Not http or https.
    #[error("the transcription server URL must start with http:// or https://, not {0}://")]
    Scheme(String),
    /// Credentials inside the URL would end up in logs.
    #[error(
        "put no user name or password in the transcription server URL; configure a bearer key instead"
    )]
    CredentialsInUrl,
    /// Cleartext HTTP to a non-loopback host.
    #[error(
        "refusing to send audio in cleartext to {host}: use https://, or a server on a loopback address (127.0.0.1, [::1], localhost)"
    )]
    Cleartext {
        /// The host.
        host: String,
    },
}

impl OpenAiHttpConfig {
    /// A configuration for the server at `url`: a base URL (the endpoint path is appended) or
    /// the full endpoint URL.
    pub fn new(url: &str) -> Result<Self, HttpSetupError> {
        let mut endpoint = Url::parse(url).map_err(|e| HttpSetupError::BadUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        match endpoint.scheme() {
            "http" | "https" => {}
            other => return Err(HttpSetupError::Scheme(other.to_owned())),
        }
        if !endpoint.username().is_empty() || endpoint.password().is_some() {
            return Err(HttpSetupError::CredentialsInUrl);
        }
        let host = endpoint.host_str().unwrap_or_default().to_owned();
        if endpoint.scheme() == "http" && !is_loopback(&host) {
            return Err(HttpSetupError::Cleartext { host });
        }
        if !endpoint.path().ends_with(ENDPOINT_PATH) {
            let path = format!("{}{ENDPOINT_PATH}", endpoint.path().trim_end_matches('/'));
            endpoint.set_path(&path);
        }
        Ok(Self {
            endpoint,
            api_key: None,
            model: "whisper-1".to_owned(),
            timeout: Duration::from_secs(600),
        })
    }

    /// With a bearer key.
    pub fn with_api_key(mut self, key: ApiKey) -> Self {
        self.api_key = Some(key);
        self
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// Speech recognition by an OpenAI-compatible server. See the module docs.
#[derive(Debug)]
pub struct OpenAiHttpEngine {
    id: String,
    config: OpenAiHttpConfig,
    /// Built on first use, on the caller's blocking thread: a blocking client must not be
    /// created inside an async context.
    client: OnceLock<Result<reqwest::blocking::Client, String>>,
}

impl OpenAiHttpEngine {
    /// An engine for this server; nothing is contacted until a request.
    pub fn new(config: OpenAiHttpConfig) -> Self {
        let mut shown = config.endpoint.clone();
        shown.set_query(None);
        Self {
            id: format!("openai-http:{shown}"),
            config,
            client: OnceLock::new(),
        }
    }

    fn client(&self) -> Result<&reqwest::blocking::Client, TranscribeError> {
        let built = self.client.get_or_init(|| {
            // The workspace builds rustls without a default provider; AWS-LC is the one it uses.
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            reqwest::blocking::Client::builder()
                .timeout(self.config.timeout)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| e.to_string())
        });
        built.as_ref().map_err(|reason| TranscribeError::Start {
            engine: self.id.clone(),
            reason: reason.clone(),
        })
    }

    fn http_error(&self, error: &reqwest::Error) -> TranscribeError {
        if error.is_timeout() {
            return TranscribeError::TimedOut {
                engine: self.id.clone(),
                after: self.config.timeout,
            };
        }
        // Without the URL: it may carry a query the operator considers private.
        TranscribeError::Http {
            engine: self.id.clone(),
            reason: describe_without_url(error),
        }
    }
}

/// The error and its causes, with the endpoint URL left out.
fn describe_without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "<endpoint>");
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl SpeechEngine for OpenAiHttpEngine {
    fn id(&self) -> &str {
        &self.id
    }

    fn transcribe(&self, pcm: &[i16], options: &AsrOptions) -> Result<Transcript, TranscribeError> {
        if pcm.is_empty() {
            return Ok(Transcript::default());
        }
        let client = self.client()?;
        let wav = Zeroizing::new(pcm16_mono_wav(pcm, SAMPLE_RATE));
        let (content_type, body) = multipart_body(&wav, &self.config.model, options);
        drop(wav);
        let length = body.len() as u64;
        let mut request = client
            .post(self.config.endpoint.clone())
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .header(reqwest::header::ACCEPT, "application/json")
            .body(reqwest::blocking::Body::sized(Cursor::new(body), length));
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key.0.as_str());
        }
        let response = request.send().map_err(|e| self.http_error(&e))?;
        let status = response.status();
        let mut answer = Zeroizing::new(Vec::new());
        response
            .take(MAX_RESPONSE)
            .read_to_end(&mut answer)
            .map_err(|e| TranscribeError::Http {
                engine: self.id.clone(),
                reason: format!("reading the answer: {e}"),
            })?;
        if !status.is_success() {
            let detail: String = String::from_utf8_lossy(&answer).chars().take(300).collect();
            return Err(TranscribeError::HttpStatus {
                engine: self.id.clone(),
                status: status.as_u16(),
                detail,
            });
        }
        let mut transcript =
            parse_verbose_json(&answer).map_err(|e| TranscribeError::Protocol {
                engine: self.id.clone(),
                detail: e.to_string(),
            })?;
        if !options.word_timestamps {
            for segment in &mut transcript.segments {
                segment.words.clear();
            }
        }
        Ok(transcript)
    }
}

/// A boundary that does not occur in `payload`.
fn boundary_for(payload: &[u8]) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let boundary = format!("mediaseal-asr-{nanos:08x}{count:016x}");
        if !payload
            .windows(boundary.len())
            .any(|w| w == boundary.as_bytes())
        {
            return boundary;
        }
    }
}

/// The `multipart/form-data` body and its content type; the body is wiped on drop.
fn multipart_body(wav: &[u8], model: &str, options: &AsrOptions) -> (String, Zeroizing<Vec<u8>>) {
    let boundary = boundary_for(wav);
    let mut fields: Vec<(&str, &str)> = vec![("model", model), ("response_format", "verbose_json")];
    if options.word_timestamps {
        fields.push(("timestamp_granularities[]", "word"));
    }
    fields.push(("timestamp_granularities[]", "segment"));
    if let Some(language) = &options.language {
        fields.push(("language", language));
    }
    if let Some(prompt) = &options.prompt {
        fields.push(("prompt", prompt));
    }
    let mut body = Zeroizing::new(Vec::with_capacity(wav.len() + 1024));
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"audio.wav\"\r\nContent-Type: audio/wav\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(wav);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Why a server's answer could not be read as a transcription.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// Not JSON of the `verbose_json` shape.
    #[error("the answer is not a verbose_json transcription ({0})")]
    Shape(String),
}

#[derive(Deserialize)]
struct Verbose {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    duration: Option<f32>,
    #[serde(default)]
    segments: Option<Vec<VerboseSegment>>,
    #[serde(default)]
    words: Option<Vec<VerboseWord>>,
}

#[derive(Deserialize)]
struct VerboseSegment {
    start: f32,
    end: f32,
    #[serde(default)]
    text: String,
    #[serde(default)]
    avg_logprob: Option<f32>,
    #[serde(default)]
    words: Option<Vec<VerboseWord>>,
}

#[derive(Deserialize)]
struct VerboseWord {
    word: String,
    start: f32,
    end: f32,
    #[serde(default)]
    probability: Option<f32>,
    #[serde(default)]
    confidence: Option<f32>,
}

impl VerboseWord {
    fn into_word(self) -> AsrWord {
        let mut text = self.word;
        trim_in_place(&mut text);
        let confidence = self
            .probability
            .or(self.confidence)
            .filter(|c| c.is_finite())
            .map(|c| c.clamp(0.0, 1.0));
        AsrWord {
            text,
            start: self.start,
            end: self.end,
            confidence,
        }
    }
}

/// Reads a `verbose_json` transcription: segments with or without their own `words`, and/or a
/// top-level `words` list (assigned to the segment each word starts in).
pub fn parse_verbose_json(body: &[u8]) -> Result<Transcript, ResponseError> {
    let verbose: Verbose =
        serde_json::from_slice(body).map_err(|e| ResponseError::Shape(e.to_string()))?;
    let mut top_words: Vec<AsrWord> = verbose
        .words
        .unwrap_or_default()
        .into_iter()
        .map(VerboseWord::into_word)
        .collect();
    let mut segments: Vec<AsrSegment> = verbose
        .segments
        .unwrap_or_default()
        .into_iter()
        .map(|segment| {
            let mut text = segment.text;
            trim_in_place(&mut text);
            let confidence = segment
                .avg_logprob
                .map(f32::exp)
                .filter(|c| c.is_finite())
                .map(|c| c.clamp(0.0, 1.0));
            let words = segment
                .words
                .unwrap_or_default()
                .into_iter()
                .map(VerboseWord::into_word)
                .collect();
            AsrSegment {
                start: segment.start,
                end: segment.end,
                text,
                confidence,
                words,
            }
        })
        .collect();
    if segments.is_empty() {
        let mut text = verbose.text.unwrap_or_default();
        trim_in_place(&mut text);
        if text.is_empty() && top_words.is_empty() {
            return Ok(Transcript {
                language: verbose.language,
                segments,
            });
        }
        let start = top_words.first().map_or(0.0, |w| w.start);
        let end = top_words
            .last()
            .map(|w| w.end)
            .or(verbose.duration)
            .unwrap_or(start);
        segments.push(AsrSegment {
            start,
            end,
            text,
            confidence: None,
            words: std::mem::take(&mut top_words),
        });
    } else if segments.iter().all(|s| s.words.is_empty()) {
        for word in top_words.drain(..) {
            let index = segments
                .iter()
                .rposition(|s| s.start <= word.start)
                .unwrap_or(0);
            if let Some(segment) = segments.get_mut(index) {
                segment.words.push(word);
            }
        }
    }
    Ok(Transcript {
        language: verbose.language,
        segments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_refusals() {
        let config = OpenAiHttpConfig::new("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            config.endpoint.as_str(),
            "http://127.0.0.1:8080/v1/audio/transcriptions"
        );
        let config = OpenAiHttpConfig::new("https://asr.example/base/").unwrap();
        assert_eq!(
            config.endpoint.as_str(),
            "https://asr.example/base/v1/audio/transcriptions"
        );
        let config = OpenAiHttpConfig::new("http://[::1]:9/v1/audio/transcriptions").unwrap();
        assert_eq!(
            config.endpoint.as_str(),
            "http://[::1]:9/v1/audio/transcriptions"
        );
        assert!(OpenAiHttpConfig::new("http://localhost:1").is_ok());
        assert_eq!(
            OpenAiHttpConfig::new("http://asr.example").unwrap_err(),
            HttpSetupError::Cleartext {
                host: "asr.example".into()
            }
        );
        assert_eq!(
            OpenAiHttpConfig::new("https://u:p@asr.example").unwrap_err(),
            HttpSetupError::CredentialsInUrl
        );
        assert_eq!(
            OpenAiHttpConfig::new("ftp://x").unwrap_err(),
            HttpSetupError::Scheme("ftp".into())
        );
        assert!(matches!(
            OpenAiHttpConfig::new("not a url").unwrap_err(),
            HttpSetupError::BadUrl { .. }
        ));
        let key = format!(
            "{:?}",
            OpenAiHttpConfig::new("http://[::1]:1")
                .unwrap()
                .with_api_key(ApiKey::new("sk-secret".into()))
        );
        assert!(!key.contains("sk-secret"), "{key}");
    }

    #[test]
    fn multipart_carries_the_fields() {
        let (content_type, body) = multipart_body(b"RIFFdata", "whisper-1", &AsrOptions::default());
        let boundary = content_type
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with(&format!("--{boundary}\r\n")));
        assert!(text.ends_with(&format!("\r\n--{boundary}--\r\n")));
        for needle in [
            "name=\"response_format\"\r\n\r\nverbose_json\r\n",
            "name=\"timestamp_granularities[]\"\r\n\r\nword\r\n",
            "name=\"language\"\r\n\r\nen\r\n",
            "filename=\"audio.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFFdata\r\n",
        ] {
            assert!(text.contains(needle), "{needle}");
        }
        assert_ne!(boundary_for(b""), boundary_for(b""));
    }

    #[test]
    fn words_at_the_top_level_are_assigned_to_segments() {
        let body = include_bytes!("../testdata/verbose_json_top_level_words.json");
        let transcript = parse_verbose_json(body).unwrap();
        assert_eq!(transcript.segments.len(), 2);
        assert_eq!(transcript.segments[0].words.len(), 2);
        assert_eq!(transcript.segments[1].words[0].text, "Bye");
        assert_eq!(transcript.segments[1].words[0].confidence, None);
        assert_eq!(transcript.language.as_deref(), Some("english"));
    }

    #[test]
    fn words_per_segment_and_words_only() {
        let body: &[u8] = include_bytes!("../testdata/verbose_json_segment_words.json");
        let transcript = parse_verbose_json(body).unwrap();
        assert_eq!(transcript.segments[0].words[1].text, "b");
        assert_eq!(transcript.segments[0].words[1].confidence, Some(0.7));
        let body = br#"{"text":" four one","words":[{"word":"four","start":0.2,"end":0.5},{"word":"one","start":0.6,"end":0.9}]}"#;
        let transcript = parse_verbose_json(body).unwrap();
        assert_eq!(transcript.segments.len(), 1);
        assert_eq!(
            (transcript.segments[0].start, transcript.segments[0].end),
            (0.2, 0.9)
        );
        assert_eq!(transcript.text(), "four one");
        assert!(
            parse_verbose_json(br#"{"text":""}"#)
                .unwrap()
                .segments
                .is_empty()
        );
        assert!(parse_verbose_json(b"Internal error").is_err());
        assert!(parse_verbose_json(br#"{"segments":[{"start":"x"}]}"#).is_err());
    }
}
