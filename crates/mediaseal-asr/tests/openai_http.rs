//! The OpenAI-compatible engine against a small HTTP server written here that implements
//! `POST /v1/audio/transcriptions` by running the real Whisper engine on the uploaded WAV: the
//! client's WAV, multipart body, bearer key and response parsing are tested end to end with real
//! recognition, not canned text.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use common::*;
use mediaseal_asr::audio::prepare_wav;
use mediaseal_asr::score::{digit_recall, recall};
use mediaseal_asr::{
    ApiKey, AsrOptions, EngineSpec, OpenAiHttpConfig, OpenAiHttpEngine, SpeechEngine,
    TranscribeError, WhisperEngine, select_engine,
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum WordsAt {
    /// As OpenAI answers: `words` beside `segments`, without confidences.
    TopLevel,
    /// As some local servers answer: `words` inside each segment, with probabilities.
    PerSegment,
}

/// What the server saw of the last request.
#[derive(Default, Clone)]
struct Seen {
    fields: HashMap<String, Vec<String>>,
    file_name: String,
    file_type: String,
    content_length: Option<usize>,
}

struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
}

fn start_server(
    engine: Option<Arc<WhisperEngine>>,
    mode: WordsAt,
    key: Option<&'static str>,
) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let shared = Arc::clone(&seen);
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (engine, seen) = (engine.clone(), Arc::clone(&shared));
            thread::spawn(move || handle(stream, engine.as_deref(), mode, key, &seen));
        }
    });
    Server { addr, seen }
}

fn respond(mut stream: TcpStream, status: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Reads one request: its request line, lower-cased headers and `Content-Length` body.
fn read_request(stream: &TcpStream) -> (String, HashMap<String, String>, Vec<u8>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let length = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (request_line, headers, body)
}

fn handle(
    stream: TcpStream,
    engine: Option<&WhisperEngine>,
    mode: WordsAt,
    key: Option<&str>,
    seen: &Mutex<Seen>,
) {
    let (request_line, headers, body) = read_request(&stream);
    if !request_line.starts_with("POST /v1/audio/transcriptions ") {
        return respond(
            stream,
            "404 Not Found",
            r#"{"error":{"message":"no such route"}}"#,
        );
    }
    let content_length: Option<usize> = headers.get("content-length").and_then(|v| v.parse().ok());
    if let Some(key) = key
        && headers.get("authorization").map(String::as_str) != Some(&format!("Bearer {key}"))
    {
        return respond(
            stream,
            "401 Unauthorized",
            r#"{"error":{"message":"Incorrect API key provided"}}"#,
        );
    }
    let boundary = headers
        .get("content-type")
        .and_then(|v| v.strip_prefix("multipart/form-data; boundary="))
        .expect("multipart content type")
        .to_owned();
    let mut record = Seen {
        content_length,
        ..Seen::default()
    };
    let mut file = Vec::new();
    let delimiter = format!("--{boundary}");
    for part in split(&body, delimiter.as_bytes()).into_iter().skip(1) {
        if part.starts_with(b"--") {
            break;
        }
        let part = part.strip_prefix(b"\r\n").unwrap();
        let part = part.strip_suffix(b"\r\n").unwrap();
        let head_end = find(part, b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&part[..head_end]).into_owned();
        let content = &part[head_end + 4..];
        let name = between(&head, "name=\"", "\"").unwrap();
        if name == "file" {
            record.file_name = between(&head, "filename=\"", "\"").unwrap();
            record.file_type = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Type: "))
                .unwrap_or("")
                .to_owned();
            file = content.to_vec();
        } else {
            record
                .fields
                .entry(name)
                .or_default()
                .push(String::from_utf8_lossy(content).into_owned());
        }
    }
    *seen.lock().unwrap() = record.clone();
    let Some(engine) = engine else {
        return respond(
            stream,
            "500 Internal Server Error",
            r#"{"error":{"message":"no engine"}}"#,
        );
    };
    let prepared = prepare_wav(&file).unwrap();
    assert_eq!(
        (prepared.source.sample_rate, prepared.channels.len()),
        (16_000, 1)
    );
    let language = record
        .fields
        .get("language")
        .and_then(|v| v.first())
        .cloned();
    let options = AsrOptions {
        language,
        ..AsrOptions::default()
    };
    let transcript = engine
        .transcribe(prepared.channels[0].as_slice(), &options)
        .unwrap();
    let word_json = |w: &mediaseal_asr::AsrWord, with_probability: bool| {
        let mut value = serde_json::json!({"word": w.text, "start": w.start, "end": w.end});
        if with_probability {
            value["probability"] = serde_json::json!(w.confidence);
        }
        value
    };
    let segments: Vec<serde_json::Value> = transcript
        .segments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut value = serde_json::json!({
                "id": i, "seek": 0, "start": s.start, "end": s.end, "text": format!(" {}", s.text), "tokens": [],
                "temperature": 0.0, "avg_logprob": s.confidence.map(f32::ln), "compression_ratio": 1.0,
                "no_speech_prob": 0.0,
            });
            if mode == WordsAt::PerSegment {
                value["words"] = s.words.iter().map(|w| word_json(w, true)).collect();
            }
            value
        })
        .collect();
    let mut answer = serde_json::json!({
        "task": "transcribe", "language": "english", "duration": prepared.duration_secs(),
        "text": transcript.text(), "segments": segments,
    });
    if mode == WordsAt::TopLevel {
        answer["words"] = transcript
            .segments
            .iter()
            .flat_map(|s| s.words.iter())
            .map(|w| word_json(w, false))
            .collect();
    }
    respond(stream, "200 OK", &answer.to_string());
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn split<'a>(mut data: &'a [u8], delimiter: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    while let Some(at) = find(data, delimiter) {
        parts.push(&data[..at]);
        data = &data[at + delimiter.len()..];
    }
    parts.push(data);
    parts
}

fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(text[from..to].to_owned())
}

fn engine_for(server: &Server, key: Option<&str>) -> OpenAiHttpEngine {
    let mut config = OpenAiHttpConfig::new(&format!("http://{}", server.addr)).unwrap();
    config.api_key = key.map(|k| ApiKey::new(k.to_owned()));
    OpenAiHttpEngine::new(config)
}

/// As the server will use it: built and dropped on the async side, transcribing on a blocking
/// thread.
#[tokio::test]
async fn openai_engine_round_trip_with_words_at_the_top_level() {
    let Some(whisper) = shared_whisper() else {
        return;
    };
    let server = start_server(Some(whisper), WordsAt::TopLevel, Some("test-key"));
    let engine = Arc::new(engine_for(&server, Some("test-key")));
    assert_eq!(
        engine.id(),
        format!("openai-http:http://{}/v1/audio/transcriptions", server.addr)
    );
    let pcm = mono_16k(&espeak(CUSTOMER, "en-us"));
    let transcript = {
        let engine = Arc::clone(&engine);
        tokio::task::spawn_blocking(move || {
            engine.transcribe(pcm.as_slice(), &AsrOptions::default())
        })
        .await
        .unwrap()
        .unwrap()
    };
    drop(engine);
    let text = transcript.text();
    assert!(recall(CUSTOMER_KEY_WORDS, &text) >= 0.7, "{text:?}");
    assert!(
        digit_recall(CARD, &text) >= 0.75 && digit_recall(PHONE, &text) >= 0.75,
        "{text:?}"
    );
    assert!(transcript.word_count() >= 20);
    // Words were assigned to the segment they start in; OpenAI words carry no confidence.
    for segment in &transcript.segments {
        assert!(segment.confidence.is_some());
        for word in &segment.words {
            assert!(
                word.start >= segment.start - 0.01 && word.confidence.is_none(),
                "{word:?} in {segment:?}"
            );
        }
    }
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.fields["response_format"], ["verbose_json"]);
    assert_eq!(
        seen.fields["timestamp_granularities[]"],
        ["word", "segment"]
    );
    assert_eq!(seen.fields["language"], ["en"]);
    assert_eq!(
        (seen.file_name.as_str(), seen.file_type.as_str()),
        ("audio.wav", "audio/wav")
    );
    assert!(
        seen.content_length.is_some(),
        "the upload is sized, not chunked"
    );
}

#[test]
fn openai_engine_reads_words_per_segment_with_probabilities() {
    let Some(whisper) = shared_whisper() else {
        return;
    };
    let server = start_server(Some(whisper), WordsAt::PerSegment, None);
    let spec: EngineSpec = format!("http://{}/", server.addr).parse().unwrap();
    let engine = select_engine(&spec, None).unwrap();
    let pcm = mono_16k(&customer_voice(CUSTOMER));
    let transcript = engine
        .transcribe(pcm.as_slice(), &AsrOptions::default())
        .unwrap();
    let text = transcript.text();
    assert!(digit_recall(PHONE, &text) >= 0.75, "{text:?}");
    assert!(
        transcript
            .segments
            .iter()
            .flat_map(|s| &s.words)
            .all(|w| w.confidence.is_some())
    );
    let plain = engine
        .transcribe(
            pcm.as_slice(),
            &AsrOptions {
                word_timestamps: false,
                ..AsrOptions::default()
            },
        )
        .unwrap();
    assert_eq!(plain.word_count(), 0);
    assert_eq!(
        server.seen.lock().unwrap().fields["timestamp_granularities[]"],
        ["segment"]
    );
}

#[test]
fn wrong_key_is_an_http_status_error() {
    let server = start_server(None, WordsAt::TopLevel, Some("right-key"));
    let engine = engine_for(&server, Some("wrong-key"));
    let error = engine
        .transcribe(&[0; 1600], &AsrOptions::default())
        .unwrap_err();
    match &error {
        TranscribeError::HttpStatus {
            status: 401,
            detail,
            ..
        } => assert!(detail.contains("Incorrect API key")),
        other => panic!("expected 401, got {other}"),
    }
    assert!(!error.to_string().contains("wrong-key"), "{error}");
}

#[test]
fn unreachable_or_hanging_up_servers_fail_the_request() {
    // Nothing listening.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let engine = OpenAiHttpEngine::new(OpenAiHttpConfig::new(&format!("http://{addr}")).unwrap());
    let error = engine
        .transcribe(&[0; 1600], &AsrOptions::default())
        .unwrap_err();
    assert!(matches!(error, TranscribeError::Http { .. }), "{error}");

    // A server that reads the request and hangs up without answering.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf);
        }
    });
    let engine = OpenAiHttpEngine::new(OpenAiHttpConfig::new(&format!("http://{addr}")).unwrap());
    let error = engine
        .transcribe(&[0; 1600], &AsrOptions::default())
        .unwrap_err();
    assert!(matches!(error, TranscribeError::Http { .. }), "{error}");

    // A server answering something that is not a transcription.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = read_request(&stream);
            respond(stream, "200 OK", "<html>hello</html>");
        }
    });
    let engine = OpenAiHttpEngine::new(OpenAiHttpConfig::new(&format!("http://{addr}")).unwrap());
    let error = engine
        .transcribe(&[0; 1600], &AsrOptions::default())
        .unwrap_err();
    assert!(matches!(error, TranscribeError::Protocol { .. }), "{error}");
}
