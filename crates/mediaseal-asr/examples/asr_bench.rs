//! The ASR benchmark driver behind `scripts/bench-asr.sh`.
//!
//! ```text
//! asr-bench run    --manifest M --engine whisper|pocketsphinx|URL --out R.jsonl [--dump-pcm DIR]
//! asr-bench report --manifest M R.jsonl…
//! ```
//!
//! `run` transcribes every item of a test set (made by `interop/asr/make_testset.py`) through
//! mediaseal-asr: WAV parsing, channel split, resampling and the engine, one recording at a
//! time through `transcribe_channels` (its channels, and pieces of long ones, side by side as
//! the transcript job runs them), and records per channel the hypothesis, the audio length and
//! that channel's share (by audio length) of the recording's wall time and of the CPU seconds
//! spent by this process plus the engine's processes (the warm Whisper sidecars are read from
//! /proc, per-request children from this process's reaped-children times). `--sidecars N` and
//! `--threads N` set the Whisper pool for A/B runs (default: the engine's own defaults). `--dump-pcm` also writes each prepared
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
    WhisperEnvironment, select_engine, transcribe_channels,
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

fn engine_ticks(pids: &[u32]) -> u64 {
    pids.iter().map(|p| cpu_ticks(&p.to_string(), false)).sum()
}

/// Throughput: `concurrency` recordings at a time, as the server's transcript jobs run. The
/// run's wall and CPU time are shared out over the channels by audio length, so the report's
/// "wall × real time" is audio per second of the whole run.
fn run_concurrently(
    engine: &dyn SpeechEngine,
    sidecar: Option<&WhisperEngine>,
    items: &[Item],
    options: &AsrOptions,
    concurrency: usize,
    ticks: f64,
) -> Result<Vec<Outcome>, String> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let sidecar_pids = sidecar.map(WhisperEngine::process_ids).unwrap_or_default();
    let self_before = cpu_ticks("self", true);
    let sidecar_before = engine_ticks(&sidecar_pids);
    let started = Instant::now();
    let results: Vec<Result<Vec<Outcome>, String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..concurrency)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let index = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let Some(item) = items.get(index) else {
                            return Ok(done);
                        };
                        let bytes =
                            std::fs::read(&item.wav).map_err(|e| format!("{}: {e}", item.id))?;
                        let prepared =
                            prepare_wav(&bytes).map_err(|e| format!("{}: {e}", item.id))?;
                        let channels: Vec<&[i16]> =
                            prepared.channels.iter().map(|pcm| pcm.as_slice()).collect();
                        let transcripts = transcribe_channels(engine, &channels, options)
                            .map_err(|e| format!("{}: {e}", item.id))?;
                        for (channel, (pcm, transcript)) in
                            prepared.channels.iter().zip(&transcripts).enumerate()
                        {
                            done.push(Outcome {
                                id: item.id.clone(),
                                channel,
                                engine: engine.id().to_owned(),
                                mode: format!("mediaseal-asr, {concurrency} at a time"),
                                hypothesis: transcript.text(),
                                audio_seconds: pcm.duration_secs(),
                                cpu_seconds: 0.0,
                                wall_seconds: 0.0,
                                sentences: sentence_words(transcript),
                            });
                        }
                        eprintln!("[asr-bench] {} {}: done", engine.id(), item.id);
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err("a worker panicked".into())))
            .collect()
    });
    let wall = started.elapsed().as_secs_f64();
    let after_pids = sidecar.map(WhisperEngine::process_ids).unwrap_or_default();
    let spent = (cpu_ticks("self", true) - self_before)
        + engine_ticks(&after_pids).saturating_sub(sidecar_before);
    let mut outcomes = Vec::new();
    for result in results {
        outcomes.extend(result?);
    }
    let total_audio: f64 = outcomes.iter().map(|o| o.audio_seconds).sum();
    for outcome in &mut outcomes {
        let share = outcome.audio_seconds / total_audio.max(1e-9);
        outcome.cpu_seconds = spent as f64 / ticks * share;
        outcome.wall_seconds = wall * share;
    }
    eprintln!(
        "[asr-bench] {concurrency} at a time: {total_audio:.0} s of channel audio in {wall:.1} s, sidecars {sidecar_pids:?} → {after_pids:?}"
    );
    Ok(outcomes)
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
    let mut sidecars = None;
    let mut threads = None;
    let mut concurrency = 1usize;
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let value = iter.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--manifest" => manifest = Some(PathBuf::from(value)),
            "--engine" => engine_spec = Some(value.clone()),
            "--out" => out = Some(PathBuf::from(value)),
            "--dump-pcm" => dump = Some(PathBuf::from(value)),
            "--sidecars" => sidecars = Some(value.parse::<u32>().map_err(|e| e.to_string())?),
            "--threads" => threads = Some(value.parse::<u32>().map_err(|e| e.to_string())?),
            "--concurrency" => concurrency = value.parse().map_err(|e| format!("{e}"))?,
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
        let mut config = WhisperConfig::new(&env);
        config.sidecars = sidecars.unwrap_or(config.sidecars);
        config.cpu_threads = threads.unwrap_or(config.cpu_threads);
        eprintln!(
            "[asr-bench] whisper: {} sidecars × {} threads",
            config.sidecars, config.cpu_threads
        );
        whisper = WhisperEngine::start(config).map_err(|e| e.to_string())?;
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
    // Warm-up: the first request pays one-off costs (page-in of the model) in any engine, and
    // as many requests at once as the engine runs start its whole pool.
    let silence = vec![vec![0i16; 16_000]; engine.parallelism().max(1)];
    let _ = transcribe_channels(engine, &silence, &options);
    if concurrency > 1 {
        for outcome in run_concurrently(engine, sidecar, &items, &options, concurrency, ticks)? {
            writeln!(
                file,
                "{}",
                serde_json::to_string(&outcome).map_err(|e| e.to_string())?
            )
            .map_err(|e| e.to_string())?;
        }
        return Ok(());
    }
    for item in &items {
        let started_ticks = cpu_ticks("self", true);
        let started = Instant::now();
        let sidecar_pids = sidecar.map(WhisperEngine::process_ids).unwrap_or_default();
        let sidecar_before = engine_ticks(&sidecar_pids);
        let bytes = std::fs::read(&item.wav).map_err(|e| format!("{}: {e}", item.id))?;
        let prepared = prepare_wav(&bytes).map_err(|e| format!("{}: {e}", item.id))?;
        if let Some(dir) = &dump {
            for (channel, pcm) in prepared.channels.iter().enumerate() {
                let raw: Vec<u8> = pcm
                    .as_slice()
                    .iter()
                    .flat_map(|s| s.to_le_bytes())
                    .collect();
                std::fs::write(dir.join(format!("{}.ch{channel}.raw", item.id)), raw)
                    .map_err(|e| e.to_string())?;
            }
        }
        let dump_ticks = cpu_ticks("self", true) - started_ticks;
        let dump_wall = started.elapsed();
        let channels: Vec<&[i16]> = prepared.channels.iter().map(|pcm| pcm.as_slice()).collect();
        let transcripts = transcribe_channels(engine, &channels, &options)
            .map_err(|e| format!("{}: {e}", item.id))?;
        // Writing the PCM dump is the benchmark's own work, not the pipeline's.
        let wall_seconds = (started.elapsed() - dump_wall).as_secs_f64();
        let after_pids = sidecar.map(WhisperEngine::process_ids).unwrap_or_default();
        if after_pids != sidecar_pids {
            return Err(format!("{}: a sidecar was restarted mid-run", item.id));
        }
        let spent = (cpu_ticks("self", true) - started_ticks - dump_ticks)
            + engine_ticks(&after_pids).saturating_sub(sidecar_before);
        let total_audio: f64 = prepared.channels.iter().map(|c| c.duration_secs()).sum();
        for (channel, (pcm, transcript)) in prepared.channels.iter().zip(&transcripts).enumerate() {
            let share = pcm.duration_secs() / total_audio.max(1e-9);
            let outcome = Outcome {
                id: item.id.clone(),
                channel,
                engine: engine.id().to_owned(),
                mode: "mediaseal-asr".into(),
                hypothesis: transcript.text(),
                audio_seconds: pcm.duration_secs(),
                cpu_seconds: spent as f64 / ticks * share,
                wall_seconds: wall_seconds * share,
                sentences: sentence_words(transcript),
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
    total_wall: f64,
    /// Per recording: the longest channel (the recording's length).
    recording_seconds: BTreeMap<String, f64>,
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
            tally.total_wall += outcome.wall_seconds;
            let length = tally
                .recording_seconds
                .entry(outcome.id.clone())
                .or_default();
            *length = length.max(outcome.audio_seconds);
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
        "| engine | path | WER clean | WER tel | WER noisy | WER dual agent | WER dual customer | card digits (exact) | cards found by the PII operator | phone digits | CPU-s / audio-s clean / tel / noisy / dual | overall | wall × real time (recordings / channel audio) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
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
            "| {engine} | {mode} | {} | {} | {} | {} | {} | {:.1} % ({}/{}) | {}/{} | {:.1} % | {} / {} / {} / {} | {:.3} | {:.2}× / {:.2}× |",
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
            tally.recording_seconds.values().sum::<f64>() / tally.total_wall.max(1e-9),
            tally.total_audio / tally.total_wall.max(1e-9),
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
