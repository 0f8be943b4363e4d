//! The Whisper engine for real: the pinned venv's faster-whisper behind the warm sidecar, on
//! speech synthesised at test time. Skips without the environment, fails without it under
//! `MEDIASEAL_REQUIRE_ASR=1`.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use mediaseal_asr::audio::{SampleCoding, prepare_wav};
use mediaseal_asr::score::{digit_recall, recall};
use mediaseal_asr::{
    AsrOptions, EngineSpec, MIN_PIECE_SECONDS, SpeechEngine, TranscribeError, Transcript,
    WhisperConfig, WhisperEngine, select_engine, transcribe_channels,
};

fn check_shape(transcript: &Transcript, duration: f64) {
    assert!(!transcript.segments.is_empty());
    let mut last_start = 0.0f32;
    for segment in &transcript.segments {
        assert!(
            segment.start <= segment.end && f64::from(segment.end) <= duration + 1.0,
            "{segment:?}"
        );
        assert!(
            segment.confidence.is_some_and(|c| (0.0..=1.0).contains(&c)),
            "{segment:?}"
        );
        assert!(!segment.words.is_empty(), "word timestamps were asked for");
        for word in &segment.words {
            assert!(
                word.start >= last_start - 0.05 && word.start <= word.end,
                "{word:?}"
            );
            assert!(
                word.confidence.is_some_and(|c| (0.0..=1.0).contains(&c)),
                "{word:?}"
            );
            last_start = word.start;
        }
    }
}

#[test]
fn whisper_recognises_a_synthesised_service_call() {
    let Some(engine) = shared_whisper() else {
        return;
    };
    assert_eq!(engine.id(), "whisper-ct2:base");
    let mut voices = vec![("espeak-ng en-us", espeak(CUSTOMER, "en-us"))];
    if let Some(wav) = flite(CUSTOMER, "slt") {
        voices.push(("flite slt", wav));
    }
    for (voice, wav) in voices {
        let pcm = mono_16k(&wav);
        let started = Instant::now();
        let transcript = engine
            .transcribe(pcm.as_slice(), &AsrOptions::default())
            .unwrap();
        let text = transcript.text();
        let (words, card, phone) = (
            recall(CUSTOMER_KEY_WORDS, &text),
            digit_recall(CARD, &text),
            digit_recall(PHONE, &text),
        );
        eprintln!(
            "{voice}: {:.1} s audio in {:.1} s; key words {words:.2}, card digits {card:.2}, phone digits {phone:.2}",
            pcm.duration_secs(),
            started.elapsed().as_secs_f64()
        );
        assert!(
            words >= 0.7,
            "{voice}: key-word recall {words:.2} in {text:?}"
        );
        assert!(
            card >= 0.75,
            "{voice}: card-digit recall {card:.2} in {text:?}"
        );
        assert!(
            phone >= 0.75,
            "{voice}: phone-digit recall {phone:.2} in {text:?}"
        );
        check_shape(&transcript, pcm.duration_secs());
        assert_eq!(transcript.language.as_deref(), Some("en"));
    }
}

#[test]
fn dual_channel_mulaw_call_is_transcribed_per_channel() {
    let Some(engine) = shared_whisper() else {
        return;
    };
    let agent = telephone_pcm8k(&espeak(AGENT, "en-us"));
    let customer = telephone_pcm8k(&customer_voice(CUSTOMER));
    let call = stereo_call(&agent, &customer);
    let prepared = prepare_wav(&call).unwrap();
    assert_eq!(prepared.source.coding, SampleCoding::MuLaw);
    assert_eq!(
        (prepared.source.channels, prepared.source.sample_rate),
        (2, 8000)
    );
    assert_eq!(prepared.channels.len(), 2);

    let channels: Vec<&[i16]> = prepared.channels.iter().map(|c| c.as_slice()).collect();
    let both = transcribe_channels(&*engine, &channels, &AsrOptions::default()).unwrap();
    let [left, right] = &both[..] else {
        panic!("{} transcripts for two channels", both.len());
    };
    let (left_text, right_text) = (left.text(), right.text());
    let agent_words = recall(AGENT_KEY_WORDS, &left_text);
    let customer_words = recall(CUSTOMER_KEY_WORDS, &right_text);
    let card = digit_recall(CARD, &right_text);
    eprintln!(
        "telephone stereo: agent words {agent_words:.2}, customer words {customer_words:.2}, card {card:.2}"
    );
    assert!(agent_words >= 0.7, "agent channel {left_text:?}");
    assert!(customer_words >= 0.7, "customer channel {right_text:?}");
    assert!(card >= 0.75, "customer channel {right_text:?}");
    // Channels stay apart: the card number is only on the customer's side.
    assert!(
        digit_recall(CARD, &left_text) < 0.3,
        "agent channel holds the card: {left_text:?}"
    );
    // The customer speaks after the agent, and times are relative to the call's start.
    let customer_start = right.segments.first().map(|s| s.start).unwrap_or_default();
    let expected = agent.len() as f32 / 8000.0;
    assert!(
        customer_start >= expected - 1.0,
        "customer starts at {customer_start}, agent ends at {expected}"
    );
}

#[test]
fn options_are_honoured() {
    let Some(engine) = shared_whisper() else {
        return;
    };
    let pcm = mono_16k(&espeak("Good morning, this is a short test.", "en-us"));
    let plain = AsrOptions {
        word_timestamps: false,
        ..AsrOptions::default()
    };
    let transcript = engine.transcribe(pcm.as_slice(), &plain).unwrap();
    assert!(
        recall("good morning short test", &transcript.text()) >= 0.75,
        "{:?}",
        transcript.text()
    );
    assert_eq!(transcript.word_count(), 0);
    assert!(
        engine
            .transcribe(&[], &AsrOptions::default())
            .unwrap()
            .segments
            .is_empty()
    );
    // One second of silence: no crash, at most a hallucinated word or two.
    let silence = engine
        .transcribe(&vec![0; 16_000], &AsrOptions::default())
        .unwrap();
    assert!(silence.word_count() <= 3);
}

#[test]
fn concurrent_requests_share_one_engine() {
    let Some(engine) = shared_whisper() else {
        return;
    };
    let pcm = Arc::new(mono_16k(&espeak(
        "Please hold the line while I check your account.",
        "en-us",
    )));
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let (engine, pcm) = (Arc::clone(&engine), Arc::clone(&pcm));
            thread::spawn(move || {
                engine
                    .transcribe(pcm.as_slice(), &AsrOptions::default())
                    .map(|t| t.text())
            })
        })
        .collect();
    for handle in handles {
        let text = handle.join().unwrap().unwrap();
        assert!(
            recall("hold the line check your account", &text) >= 0.8,
            "{text:?}"
        );
    }
}

/// A long channel is cut at pauses and its pieces run on two sidecars at once; the joined
/// transcript reads like the whole, with times that run on across the cut.
#[test]
fn a_long_channel_is_split_over_two_sidecars_and_joined() {
    let Some(env) = whisper_environment() else {
        return;
    };
    let mut config = WhisperConfig::new(&env);
    config.sidecars = 2;
    config.cpu_threads = 1;
    let engine = WhisperEngine::start(config).unwrap();
    assert_eq!(engine.parallelism(), 2);
    assert_eq!(
        engine.process_ids().len(),
        1,
        "the second sidecar starts on demand"
    );
    // Long enough for two pieces of the minimum length.
    let mut repeats = 2;
    let pcm = loop {
        let pcm = mono_16k(&customer_voice(&vec![CUSTOMER; repeats].join(" ")));
        if pcm.duration_secs() >= 2.0 * MIN_PIECE_SECONDS as f64 + 1.0 || repeats > 8 {
            break pcm;
        }
        repeats += 1;
    };
    let duration = pcm.duration_secs();
    assert!(duration >= 2.0 * MIN_PIECE_SECONDS as f64, "{duration} s");
    let out = transcribe_channels(&engine, &[pcm.as_slice()], &AsrOptions::default()).unwrap();
    assert_eq!(engine.process_ids().len(), 2, "both sidecars worked");
    let transcript = &out[0];
    check_shape(transcript, duration);
    let text = transcript.text();
    assert!(recall(CUSTOMER_KEY_WORDS, &text) >= 0.7, "{text:?}");
    let last = transcript.segments.last().unwrap();
    assert!(
        f64::from(last.end) > duration / 2.0,
        "the second piece's times were shifted: ends at {} of {duration} s",
        last.end
    );
}

fn kill(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn sidecar_killed_mid_request_fails_that_request_and_the_next_one_respawns() {
    let Some(env) = whisper_environment() else {
        return;
    };
    let engine = Arc::new(WhisperEngine::start(WhisperConfig::new(&env)).unwrap());
    let first_pid = engine.process_id().unwrap();
    let long = mono_16k(&espeak(&[CUSTOMER; 3].join(" "), "en-us"));
    let worker = {
        let engine = Arc::clone(&engine);
        thread::spawn(move || engine.transcribe(long.as_slice(), &AsrOptions::default()))
    };
    // Let the request reach the sidecar and start decoding, then kill it.
    thread::sleep(Duration::from_millis(1500));
    kill("-KILL", first_pid);
    let error = worker.join().unwrap().unwrap_err();
    match &error {
        TranscribeError::Crashed { status, .. } => assert!(status.contains("signal 9"), "{error}"),
        other => panic!("expected Crashed, got {other}"),
    }
    assert!(
        error.to_string().contains("next one starts a new process"),
        "{error}"
    );
    assert_eq!(engine.process_id(), None);

    let short = mono_16k(&espeak("The line is back.", "en-us"));
    let transcript = engine
        .transcribe(short.as_slice(), &AsrOptions::default())
        .unwrap();
    assert!(
        recall("line back", &transcript.text()) >= 0.5,
        "{:?}",
        transcript.text()
    );
    let second_pid = engine.process_id().unwrap();
    assert_ne!(first_pid, second_pid);
}

#[test]
fn hung_sidecar_is_killed_after_its_timeout() {
    let Some(env) = whisper_environment() else {
        return;
    };
    let mut config = WhisperConfig::new(&env);
    // Long enough for the respawned sidecar to answer on a busy two-core machine.
    config.request_timeout = Duration::from_secs(15);
    config.timeout_per_audio_second = Duration::ZERO;
    let engine = WhisperEngine::start(config).unwrap();
    let pid = engine.process_id().unwrap();
    // A stopped process is the most faithful hang: alive, holding its pipes, answering nothing.
    kill("-STOP", pid);
    let pcm = mono_16k(&espeak("Is anybody there?", "en-us"));
    let started = Instant::now();
    let error = engine
        .transcribe(pcm.as_slice(), &AsrOptions::default())
        .unwrap_err();
    assert!(matches!(error, TranscribeError::TimedOut { .. }), "{error}");
    assert!(started.elapsed() < Duration::from_secs(25));
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the hung sidecar was not reaped"
    );
    let transcript = engine
        .transcribe(pcm.as_slice(), &AsrOptions::default())
        .unwrap();
    assert!(
        recall("anybody there", &transcript.text()) >= 0.5,
        "{:?}",
        transcript.text()
    );
}

/// Regular files the process holds open for writing, from /proc/<pid>/fd and fdinfo.
fn files_open_for_writing(pid: u32) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy().into_owned();
        if !target.starts_with('/') || target.starts_with("/dev/") {
            continue; // pipes, sockets, anon inodes, /dev/null
        }
        let info = std::fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            entry.file_name().to_string_lossy()
        ))
        .unwrap_or_default();
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
            .unwrap_or(0);
        if flags & 0o3 != 0 {
            found.push(target);
        }
    }
    found
}

#[test]
fn sidecar_writes_nothing_to_disk_and_runs_without_core_dumps() {
    let Some(env) = whisper_environment() else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let (cwd, home, tmp) = (
        scratch.path().join("cwd"),
        scratch.path().join("home"),
        scratch.path().join("tmp"),
    );
    for dir in [&cwd, &home, &tmp] {
        std::fs::create_dir(dir).unwrap();
    }
    let read_only = |dir: &Path, mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    read_only(&cwd, 0o555);
    let mut config = WhisperConfig::new(&env);
    config.working_dir = cwd.clone();
    config.env = vec![
        ("HOME".into(), home.clone().into()),
        ("TMPDIR".into(), tmp.clone().into()),
    ];
    let engine = WhisperEngine::start(config).unwrap();
    let pid = engine.process_id().unwrap();

    let pcm = mono_16k(&customer_voice(CUSTOMER));
    let transcript = engine
        .transcribe(pcm.as_slice(), &AsrOptions::default())
        .unwrap();
    assert!(digit_recall(CARD, &transcript.text()) >= 0.75);

    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert_eq!(core.split_whitespace().nth(4), Some("0"), "{core}");
    assert_eq!(core.split_whitespace().nth(5), Some("0"), "{core}");
    assert_eq!(std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap(), cwd);
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(environ.split(|&b| b == 0).any(|v| v == b"HF_HUB_OFFLINE=1"));
    assert_eq!(files_open_for_writing(pid), Vec::<String>::new());

    drop(engine);
    read_only(&cwd, 0o755);
    for dir in [&cwd, &home, &tmp] {
        let left: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "the sidecar wrote {left:?}");
    }
}

#[test]
fn auto_selection_prefers_whisper_when_installed() {
    if whisper_environment().is_none() {
        return;
    }
    let engine = select_engine(&EngineSpec::Auto, None).unwrap();
    assert_eq!(engine.id(), "whisper-ct2:base");
    let engine = select_engine(&"whisper".parse().unwrap(), None).unwrap();
    let pcm = mono_16k(&espeak("Selected by name.", "en-us"));
    let transcript = engine
        .transcribe(pcm.as_slice(), &AsrOptions::default())
        .unwrap();
    assert!(
        recall("selected name", &transcript.text()) >= 0.5,
        "{:?}",
        transcript.text()
    );
}
