//! The ASR benchmark driver behind `scripts/bench-asr.sh`.
//!
//! ```text
//! asr-bench run    --manifest M --engine whisper|pocketsphinx|URL --out R.jsonl [--dump-pcm DIR]
//! asr-bench report --manifest M R.jsonl…
//! ```
//!
//! `run` transcribes every item of a test set (made by `interop/asr/make_testset.py`) through
//! mediaseal-asr: WAV parsing, channel split, resampling and the engine, one channel at a time,
//! and records per channel the hypothesis, the audio length and the CPU seconds spent by this
//! process plus the engine's processes (the warm Whisper sidecar is read from /proc, per-request
//! children from this process's reaped-children times). `--dump-pcm` also writes each prepared
//! channel as raw s16le so that `interop/asr/bench_alone.py` can run the engine alone on exactly
//! the same samples. `report` scores every results file against the manifest and prints one
//! Markdown table.
//!
//! Card numbers are scored twice: digit recall of the raw text (how much of the number the
//! recogniser got), and whether mediaseal-intelligence's PII operator, run over the channel's
//! sentences as the transcript job would, reports exactly that card (which needs every digit
//! in order and the Luhn check to pass): the second is what redaction depends on.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use mediaseal_asr::audio::prepare_wav;
use mediaseal_asr::score::{WordErrors, digit_recall, word_errors};
use mediaseal_asr::{
    AsrOptions, EngineSpec, SpeechEngine, Transcript, WhisperConfig, WhisperEngine,
    WhisperEnvironment, select_engine,
};
use mediaseal_intelligence::operators::{self, Operator};
use mediaseal_intelligence::sentences::{Sentence, Word};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Item {
    id: String,
    wav: PathBuf,
    voice: String,
    condition: String,
    channels: Vec<ChannelReference>,
}

#[derive(Deserialize)]
struct ChannelReference {
    reference: String,
    card: Option<String>,
    phone: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Outcome {
    id: String,
    channel: usize,
    engine: String,
    mode: String,
    hypothesis: String,
    audio_seconds: f64,
    cpu_seconds: f64,
    wall_seconds: f64,
    /// The words of each segment (a sentence of the transcript), as the engine split them.
    /// Absent from results of engines run alone that have no segments: the hypothesis is then
    /// one sentence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    sentences: Vec<Vec<String>>,
}

/// The words of each non-empty segment (the engine's words when it gave them).
fn sentence_words(transcript: &Transcript) -> Vec<Vec<String>> {
    transcript
        .segments
        .iter()
        .filter(|s| !s.text.trim().is_empty())
        .map(|s| {
            if s.words.is_empty() {
                s.text.split_whitespace().map(str::to_owned).collect()
            } else {
                s.words.iter().map(|w| w.text.clone()).collect()
            }
        })
        .collect()
}

/// Whether the PII operator, over the channel's sentences, reports exactly `card`.
fn pii_finds_card(outcome: &Outcome, card: &str) -> bool {
    let fallback;
    let sentences: &[Vec<String>] = if outcome.sentences.is_empty() {
        fallback = [outcome
            .hypothesis
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()];
        &fallback
    } else {
        &outcome.sentences
    };
    let channel = u32::try_from(outcome.channel + 1).unwrap_or(u32::MAX);
    let sentences: Vec<Sentence> = sentences
        .iter()
        .enumerate()
        .map(|(index, words)| Sentence {
            confidence: None,
            end_time: None,
            media_channel: channel,
            sentence_index: index as u64,
            sid: format!("GX{index}"),
            start_time: None,
            transcript: words.join(" "),
            words: words
                .iter()
                .map(|w| Word {
                    end_time: None,
                    start_time: None,
                    word: w.clone(),
                })
                .collect(),
        })
        .collect();
    let result = operators::run(&Operator::pii(), "GT0", &sentences);
    let card: String = card.chars().filter(char::is_ascii_digit).collect();
    result
        .extract_results
        .get("CREDIT_CARD")
        .is_some_and(|found| found.contains(&card))
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime (and, with `children`, cutime + cstime) of a process, in clock ticks.
fn cpu_ticks(pid: &str, children: bool) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the parenthesised command name; utime is field 14 overall.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0;
    };
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|f| f.parse().ok())
        .collect();
    match fields.as_slice() {
        [utime, stime, cutime, cstime] => {
            utime + stime + if children { cutime + cstime } else { 0 }
        }
        _ => 0,
    }
}

fn load_manifest(path: &Path) -> Vec<Item> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn run(args: &[String]) -> Result<(), String> {
    let mut manifest = None;
    let mut engine_spec = None;
    let mut out = None;
    let mut dump = None;
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let value = iter.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--manifest" => manifest = Some(PathBuf::from(value)),
            "--engine" => engine_spec = Some(value.clone()),
            "--out" => out = Some(PathBuf::from(value)),
            "--dump-pcm" => dump = Some(PathBuf::from(value)),
            other => return Err(format!("unknown option {other}")),
        }
    }
    let (Some(manifest), Some(spec), Some(out)) = (manifest, engine_spec, out) else {
        return Err("run needs --manifest, --engine and --out".into());
    };
    let items = load_manifest(&manifest);

    // Whisper is started directly so the sidecar's pid is known for CPU accounting.
    let whisper;
    let other;
    let (engine, sidecar): (&dyn SpeechEngine, Option<&WhisperEngine>) = if spec == "whisper" {
        let env = WhisperEnvironment::locate().map_err(|e| e.to_string())?;
        whisper = WhisperEngine::start(WhisperConfig::new(&env)).map_err(|e| e.to_string())?;
        (&whisper, Some(&whisper))
    } else {
        let parsed: EngineSpec = spec
            .parse()
            .map_err(|e: mediaseal_asr::SpecError| e.to_string())?;
        other = select_engine(&parsed, None).map_err(|e| e.to_string())?;
        (other.as_ref(), None)
    };
    if let Some(dir) = &dump {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let ticks = clock_ticks_per_second();
    let options = AsrOptions::default();
    let mut file = std::fs::File::create(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    // Warm-up: the first request pays one-off costs (page-in of the model) in any engine.
    let _ = engine.transcribe(&vec![0; 16_000], &options);
    for item in &items {
        let started_ticks = cpu_ticks("self", true);
        let started = Instant::now();
        let bytes = std::fs::read(&item.wav).map_err(|e| format!("{}: {e}", item.wav.display()))?;
        let prepared = prepare_wav(&bytes).map_err(|e| format!("{}: {e}", item.id))?;
        let prepare_ticks = cpu_ticks("self", true) - started_ticks;
        let prepare_wall = started.elapsed().as_secs_f64();
        let channel_count = prepared.channels.len();
        for (channel, pcm) in prepared.channels.iter().enumerate() {
            if let Some(dir) = &dump {
                let raw: Vec<u8> = pcm
                    .as_slice()
                    .iter()
                    .flat_map(|s| s.to_le_bytes())
                    .collect();
                std::fs::write(dir.join(format!("{}.ch{channel}.raw", item.id)), raw)
                    .map_err(|e| e.to_string())?;
            }
            let self_before = cpu_ticks("self", true);
            let sidecar_pid = sidecar.and_then(WhisperEngine::process_id);
            let sidecar_before = sidecar_pid
                .map(|p| cpu_ticks(&p.to_string(), false))
                .unwrap_or(0);
            let wall = Instant::now();
            let transcript = engine
                .transcribe(pcm.as_slice(), &options)
                .map_err(|e| format!("{}: {e}", item.id))?;
            let wall_seconds = wall.elapsed().as_secs_f64() + prepare_wall / channel_count as f64;
            let sidecar_after = sidecar_pid
                .map(|p| cpu_ticks(&p.to_string(), false))
                .unwrap_or(0);
            let spent = (cpu_ticks("self", true) - self_before)
                + sidecar_after.saturating_sub(sidecar_before)
                + prepare_ticks / channel_count as u64;
            let outcome = Outcome {
                id: item.id.clone(),
                channel,
                engine: engine.id().to_owned(),
                mode: "mediaseal-asr".into(),
                hypothesis: transcript.text(),
                audio_seconds: pcm.duration_secs(),
                cpu_seconds: spent as f64 / ticks,
                wall_seconds,
                sentences: sentence_words(&transcript),
            };
            writeln!(
                file,
                "{}",
                serde_json::to_string(&outcome).map_err(|e| e.to_string())?
            )
            .map_err(|e| e.to_string())?;
        }
        eprintln!("[asr-bench] {} {}: done", engine.id(), item.id);
    }
    Ok(())
}

#[derive(Default)]
struct Tally {
    errors: BTreeMap<String, WordErrors>,
    cpu: BTreeMap<String, (f64, f64)>,
    card: Vec<f64>,
    phone: Vec<f64>,
    card_exact: usize,
    card_pii: usize,
    total_cpu: f64,
    total_audio: f64,
}

fn pct(errors: Option<&WordErrors>) -> String {
    errors.map_or("–".into(), |e| format!("{:.1} %", 100.0 * e.rate()))
}

fn report(args: &[String]) -> Result<(), String> {
    let (flag, rest) = args
        .split_first()
        .ok_or("report needs --manifest M RESULTS…")?;
    let (manifest, results) = rest
        .split_first()
        .ok_or("report needs --manifest M RESULTS…")?;
    if flag != "--manifest" {
        return Err("report needs --manifest M RESULTS…".into());
    }
    let items = load_manifest(Path::new(manifest));
    let by_id: BTreeMap<&str, &Item> = items.iter().map(|i| (i.id.as_str(), i)).collect();
    let mut tallies: Vec<((String, String), Tally)> = Vec::new();
    for path in results {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let outcome: Outcome =
                serde_json::from_str(line).map_err(|e| format!("{path}: {e}"))?;
            let item = by_id
                .get(outcome.id.as_str())
                .ok_or(format!("{} not in the manifest", outcome.id))?;
            let reference = item
                .channels
                .get(outcome.channel)
                .ok_or("channel not in the manifest")?;
            let key = (outcome.engine.clone(), outcome.mode.clone());
            let index = match tallies.iter().position(|(k, _)| *k == key) {
                Some(i) => i,
                None => {
                    tallies.push((key, Tally::default()));
                    tallies.len() - 1
                }
            };
            let tally = &mut tallies[index].1;
            let condition = if item.condition == "dual" {
                format!("dual ch{}", outcome.channel)
            } else {
                item.condition.clone()
            };
            tally
                .errors
                .entry(condition.clone())
                .or_default()
                .add(word_errors(&reference.reference, &outcome.hypothesis));
            let cpu = tally.cpu.entry(item.condition.clone()).or_default();
            cpu.0 += outcome.cpu_seconds;
            cpu.1 += outcome.audio_seconds;
            tally.total_cpu += outcome.cpu_seconds;
            tally.total_audio += outcome.audio_seconds;
            if let Some(card) = &reference.card {
                let recall = digit_recall(card, &outcome.hypothesis);
                tally.card.push(recall);
                tally.card_exact += usize::from(recall >= 1.0);
                tally.card_pii += usize::from(pii_finds_card(&outcome, card));
            }
            if let Some(phone) = &reference.phone {
                tally.phone.push(digit_recall(phone, &outcome.hypothesis));
            }
        }
    }
    let voices: std::collections::BTreeSet<&str> = items
        .iter()
        .filter(|i| i.condition != "dual")
        .map(|i| i.voice.as_str())
        .collect();
    println!(
        "Test set: {} mono items ({} voices × clean/tel/noisy) and {} dual-channel calls; WER pooled over items, digits split.\n",
        items.iter().filter(|i| i.condition != "dual").count(),
        voices.len(),
        items.iter().filter(|i| i.condition == "dual").count()
    );
    println!(
        "| engine | path | WER clean | WER tel | WER noisy | WER dual agent | WER dual customer | card digits (exact) | cards found by the PII operator | phone digits | CPU-s / audio-s clean / tel / noisy / dual | overall |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for ((engine, mode), tally) in &tallies {
        let rtf = |c: &str| {
            tally
                .cpu
                .get(c)
                .map_or("–".into(), |(cpu, audio)| format!("{:.3}", cpu / audio))
        };
        let mean = |v: &[f64]| {
            if v.is_empty() {
                0.0
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            }
        };
        println!(
            "| {engine} | {mode} | {} | {} | {} | {} | {} | {:.1} % ({}/{}) | {}/{} | {:.1} % | {} / {} / {} / {} | {:.3} |",
            pct(tally.errors.get("clean")),
            pct(tally.errors.get("tel")),
            pct(tally.errors.get("noisy")),
            pct(tally.errors.get("dual ch0")),
            pct(tally.errors.get("dual ch1")),
            100.0 * mean(&tally.card),
            tally.card_exact,
            tally.card.len(),
            tally.card_pii,
            tally.card.len(),
            100.0 * mean(&tally.phone),
            rtf("clean"),
            rtf("tel"),
            rtf("noisy"),
            rtf("dual"),
            tally.total_cpu / tally.total_audio.max(1e-9),
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.split_first() {
        Some((command, rest)) if command == "run" => run(rest),
        Some((command, rest)) if command == "report" => report(rest),
        _ => Err("usage: asr-bench run --manifest M --engine E --out R [--dump-pcm DIR] | report --manifest M R…".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("asr-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
