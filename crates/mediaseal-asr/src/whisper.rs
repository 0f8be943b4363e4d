//! The Whisper engine: faster-whisper (CTranslate2) in the pinned venv, behind a warm sidecar.
//!
//! The sidecar is `interop/asr/whisper_sidecar.py`, compiled into this crate ([`SIDECAR_SOURCE`])
//! and run as `python -I -B -c SOURCE --model DIR …`, so the binary and the protocol can never
//! disagree and no script has to be found at run time. It is started once, loads the model, says
//! it is ready, then answers one request at a time: a length-prefixed frame of PCM on its stdin,
//! one JSON line on its stdout (the protocol is documented in the script).
//!
//! The engine keeps a small pool of such sidecars ([`WhisperConfig::sidecars`], one per core up
//! to four by default, each with its share of the cores as CTranslate2 threads). A request takes
//! an idle sidecar, the first in pool order, so a lone request always lands on the first one;
//! the others are started the first time requests overlap. One CTranslate2 thread per process
//! spends less CPU per audio second than one process with two threads (docs/ASR.md), and two
//! requests at once (the channels of a call, the pieces of a long channel, two transcripts)
//! then use both cores.
//!
//! The child runs with core dumps off, a cleared environment (`HF_HUB_OFFLINE=1`, no bytecode
//! writes), `/` as its working directory, and writes nothing to disk (checked with strace; see
//! docs/ASR.md). Its stderr is kept only until it is ready, for start-up errors; after that it is
//! drained and dropped. A request that finds the process dead, or that is not answered within
//! its timeout (the process is then killed), fails on its own; the next one starts a new process.

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::Duration;

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::process::{StderrTail, hardened_command, reap};
use crate::{AsrOptions, AsrSegment, AsrWord, SpeechEngine, TranscribeError, Transcript};

/// The sidecar program, as run by the engine.
pub const SIDECAR_SOURCE: &str = include_str!("../../../interop/asr/whisper_sidecar.py");

/// Where the venv is, when set: overrides every other place it is looked for.
pub const VENV_ENV_VAR: &str = "MEDIASEAL_ASR_VENV";

/// The venv directory name inside a checkout.
const VENV_DIR: &str = ".asr-venv";
/// Written by scripts/setup-asr.sh once everything is installed and verified.
const READY_STAMP: &str = ".mediaseal-asr-ready";
/// The model directory inside the venv, and the size of its assembled model.bin.
const MODEL_SUBDIR: &str = "models/whisper-base";
const MODEL_BYTES: u64 = 145_217_532;
/// Longest request the protocol takes: four hours at 16 kHz (as in the sidecar).
const MAX_SAMPLES: usize = 4 * 3600 * 16_000;
/// Longest reply line accepted from the sidecar.
const MAX_LINE: u64 = 256 << 20;
const PROTOCOL: u32 = 1;

/// An installed Whisper environment: the venv's interpreter and the model directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhisperEnvironment {
    /// The venv directory.
    pub venv: PathBuf,
    /// Its Python interpreter.
    pub python: PathBuf,
    /// The CTranslate2 model directory (model.bin, config.json, tokenizer.json, vocabulary.txt).
    pub model_dir: PathBuf,
}

/// Why no usable Whisper environment was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WhisperEnvError {
    /// A venv directory is there but incomplete.
    #[error(
        "the Whisper environment at {venv} is incomplete ({missing}); run scripts/setup-asr.sh from the mediaseal checkout"
    )]
    Incomplete {
        /// The venv directory.
        venv: PathBuf,
        /// What is missing or wrong.
        missing: String,
    },
    /// No venv in any of the places looked at.
    #[error(
        "no Whisper environment found (looked for {VENV_DIR} in: {}); run scripts/setup-asr.sh in the mediaseal checkout, or set {VENV_ENV_VAR}",
        .searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NotFound {
        /// The directories searched.
        searched: Vec<PathBuf>,
    },
}

impl WhisperEnvironment {
    /// The environment in `venv`, if scripts/setup-asr.sh completed there.
    pub fn at(venv: &Path) -> Result<Self, WhisperEnvError> {
        let incomplete = |missing: String| WhisperEnvError::Incomplete {
            venv: venv.to_owned(),
            missing,
        };
        if !venv.join(READY_STAMP).is_file() {
            return Err(incomplete(format!(
                "no {READY_STAMP} stamp: setup did not finish"
            )));
        }
        let python = venv.join("bin/python");
        if !python.exists() {
            return Err(incomplete("no bin/python".to_owned()));
        }
        let model_dir = venv.join(MODEL_SUBDIR);
        for file in ["config.json", "tokenizer.json", "vocabulary.txt"] {
            if !model_dir.join(file).is_file() {
                return Err(incomplete(format!("no {MODEL_SUBDIR}/{file}")));
            }
        }
        match model_dir.join("model.bin").metadata() {
            Ok(meta) if meta.len() == MODEL_BYTES => {}
            Ok(meta) => {
                return Err(incomplete(format!(
                    "model.bin has {} bytes, expected {MODEL_BYTES}",
                    meta.len()
                )));
            }
            Err(_) => return Err(incomplete(format!("no {MODEL_SUBDIR}/model.bin"))),
        }
        Ok(Self {
            venv: venv.to_owned(),
            python,
            model_dir,
        })
    }

    /// Finds the environment: `$MEDIASEAL_ASR_VENV` if set (and then only there), else
    /// `.asr-venv` in the nearest directory above the running binary, above the current
    /// directory, or in the checkout this crate was built from.
    pub fn locate() -> Result<Self, WhisperEnvError> {
        if let Some(venv) = std::env::var_os(VENV_ENV_VAR) {
            return Self::at(Path::new(&venv));
        }
        let mut searched: Vec<PathBuf> = Vec::new();
        let mut roots: Vec<PathBuf> = Vec::new();
        if let Ok(exe) = std::env::current_exe().and_then(|p| p.canonicalize()) {
            roots.extend(exe.ancestors().skip(1).map(Path::to_owned));
        }
        if let Ok(cwd) = std::env::current_dir() {
            roots.extend(cwd.ancestors().map(Path::to_owned));
        }
        roots.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
        for root in roots {
            let root = root.canonicalize().unwrap_or(root);
            if searched.contains(&root) {
                continue;
            }
            let venv = root.join(VENV_DIR);
            searched.push(root);
            if venv.is_dir()
                && let Ok(env) = Self::at(&venv)
            {
                return Ok(env);
            }
        }
        Err(WhisperEnvError::NotFound { searched })
    }
}

/// How to run the Whisper sidecar.
#[derive(Debug, Clone)]
pub struct WhisperConfig {
    /// The venv's Python interpreter.
    pub python: PathBuf,
    /// The CTranslate2 model directory.
    pub model_dir: PathBuf,
    /// Model name for the engine id (`whisper-ct2:<name>`).
    pub model_name: String,
    /// CTranslate2 compute type: `int8` (default, fastest on CPU), `int8_float32`, `float32`.
    pub compute_type: String,
    /// CPU threads for CTranslate2 in each sidecar (0 = its default).
    pub cpu_threads: u32,
    /// How many sidecars may run at once, each answering one request (at least 1).
    pub sidecars: u32,
    /// Beam size: 2 by default (docs/ASR.md, "Decoding options"). Greedy decoding (1) saved
    /// about 15 % more CPU but glued digits to letters ("453i1480…"), which hides card numbers.
    pub beam_size: u32,
    /// Working directory of the sidecar; it needs no write access there.
    pub working_dir: PathBuf,
    /// Extra environment for the sidecar (on top of the fixed offline settings).
    pub env: Vec<(OsString, OsString)>,
    /// How long the sidecar may take to load the model.
    pub start_timeout: Duration,
    /// Fixed part of a request's timeout.
    pub request_timeout: Duration,
    /// Added to the timeout per second of audio.
    pub timeout_per_audio_second: Duration,
}

impl WhisperConfig {
    /// Defaults for an installed environment.
    pub fn new(env: &WhisperEnvironment) -> Self {
        let cores = thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let sidecars = cores.clamp(1, 4);
        Self {
            python: env.python.clone(),
            model_dir: env.model_dir.clone(),
            model_name: "base".to_owned(),
            compute_type: "int8".to_owned(),
            cpu_threads: u32::try_from((cores / sidecars).max(1)).unwrap_or(1),
            sidecars: u32::try_from(sidecars).unwrap_or(1),
            beam_size: 2,
            working_dir: PathBuf::from("/"),
            env: Vec::new(),
            start_timeout: Duration::from_secs(120),
            request_timeout: Duration::from_secs(60),
            timeout_per_audio_second: Duration::from_secs(2),
        }
    }

    /// `n` sidecars (at least 1), the cores shared out between them as CTranslate2 threads.
    pub fn with_sidecars(mut self, n: u32) -> Self {
        let cores = thread::available_parallelism().map_or(2, |c| c.get());
        self.sidecars = n.max(1);
        self.cpu_threads = u32::try_from((cores / self.sidecars as usize).max(1)).unwrap_or(1);
        self
    }

    fn timeout_for(&self, samples: usize) -> Duration {
        let seconds = samples as f64 / f64::from(crate::SAMPLE_RATE);
        self.request_timeout + self.timeout_per_audio_second.mul_f64(seconds)
    }
}

/// Why the sidecar could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The interpreter could not be run.
    #[error("could not run {program}: {source}; run scripts/setup-asr.sh")]
    Spawn {
        /// The interpreter.
        program: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The sidecar ended before it was ready.
    #[error("the Whisper sidecar ended while loading the model ({status}): {stderr}")]
    Exited {
        /// How it ended.
        status: String,
        /// The end of what it wrote to stderr while loading (no audio has been sent yet).
        stderr: String,
    },
    /// The model did not load in time.
    #[error("the Whisper sidecar did not load the model within {} s", .0.as_secs())]
    TimedOut(Duration),
    /// The sidecar's first line was not the expected ready message.
    #[error("the Whisper sidecar did not say it was ready: {0}")]
    Handshake(String),
}

/// Speech recognition with Whisper through a pool of warm sidecar processes. See the module
/// docs.
#[derive(Debug)]
pub struct WhisperEngine {
    id: String,
    config: WhisperConfig,
    pool: Pool,
    /// Each slot's live sidecar pid (0 when none), readable while requests hold the slots.
    pids: Vec<AtomicU32>,
    next_request: AtomicU64,
}

/// The idle slots; a request takes one out and puts it back when it is done.
#[derive(Debug)]
struct Pool {
    idle: Mutex<Vec<Slot>>,
    returned: Condvar,
}

#[derive(Debug)]
struct Slot {
    index: usize,
    sidecar: Option<Sidecar>,
}

impl Pool {
    /// The idle slot to use: a live sidecar before a slot that would have to start one, and
    /// the lower index first. Waits while every slot is busy.
    fn take(&self) -> Slot {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let best = idle
                .iter()
                .enumerate()
                .min_by_key(|(_, slot)| (slot.sidecar.is_none(), slot.index))
                .map(|(position, _)| position);
            if let Some(position) = best {
                return idle.swap_remove(position);
            }
            idle = self.returned.wait(idle).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn put_back(&self, slot: Slot) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(slot);
        self.returned.notify_one();
    }
}

impl WhisperEngine {
    /// Starts the first sidecar and waits until its model is loaded; the rest of the pool
    /// starts when requests first overlap.
    pub fn start(config: WhisperConfig) -> Result<Self, StartError> {
        let first = Sidecar::start(&config)?;
        let size = config.sidecars.max(1) as usize;
        let pids: Vec<AtomicU32> = (0..size).map(|_| AtomicU32::new(0)).collect();
        pids[0].store(first.pid, Ordering::SeqCst);
        let mut slots = vec![Slot {
            index: 0,
            sidecar: Some(first),
        }];
        slots.extend((1..size).map(|index| Slot {
            index,
            sidecar: None,
        }));
        Ok(Self {
            id: format!("whisper-ct2:{}", config.model_name),
            pool: Pool {
                idle: Mutex::new(slots),
                returned: Condvar::new(),
            },
            pids,
            config,
            next_request: AtomicU64::new(1),
        })
    }

    /// The process id of the first sidecar (the one a request takes when the engine is idle),
    /// if it is running.
    pub fn process_id(&self) -> Option<u32> {
        Some(self.pids[0].load(Ordering::SeqCst)).filter(|&pid| pid != 0)
    }

    /// The process ids of every running sidecar.
    pub fn process_ids(&self) -> Vec<u32> {
        self.pids
            .iter()
            .map(|pid| pid.load(Ordering::SeqCst))
            .filter(|&pid| pid != 0)
            .collect()
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &WhisperConfig {
        &self.config
    }

    fn fail_and_discard(&self, slot: &mut Slot) {
        self.pids[slot.index].store(0, Ordering::SeqCst);
        if let Some(mut sidecar) = slot.sidecar.take() {
            sidecar.kill();
        }
    }

    /// One request on one slot: starts its sidecar if it has none, and discards the sidecar
    /// when the exchange leaves it dead, hung or out of step.
    fn transcribe_on(
        &self,
        slot: &mut Slot,
        frame: &[u8],
        request_id: u64,
        timeout: Duration,
    ) -> Result<Transcript, TranscribeError> {
        if slot.sidecar.is_none() {
            let sidecar = Sidecar::start(&self.config).map_err(|e| TranscribeError::Start {
                engine: self.id.clone(),
                reason: e.to_string(),
            })?;
            self.pids[slot.index].store(sidecar.pid, Ordering::SeqCst);
            slot.sidecar = Some(sidecar);
        }
        let Some(sidecar) = slot.sidecar.as_mut() else {
            return Err(TranscribeError::Start {
                engine: self.id.clone(),
                reason: "no sidecar".to_owned(),
            });
        };
        match sidecar.exchange(frame, timeout) {
            Ok(line) => match parse_reply(&line, request_id) {
                Ok(reply) => reply.map_err(|message| TranscribeError::Engine {
                    engine: self.id.clone(),
                    message,
                }),
                Err(detail) => {
                    // Out of step with the sidecar: start afresh next time.
                    self.fail_and_discard(slot);
                    Err(TranscribeError::Protocol {
                        engine: self.id.clone(),
                        detail,
                    })
                }
            },
            Err(Exchange::TimedOut) => {
                self.fail_and_discard(slot);
                Err(TranscribeError::TimedOut {
                    engine: self.id.clone(),
                    after: timeout,
                })
            }
            Err(Exchange::Died(status)) => {
                self.fail_and_discard(slot);
                Err(TranscribeError::Crashed {
                    engine: self.id.clone(),
                    status,
                })
            }
        }
    }
}

impl SpeechEngine for WhisperEngine {
    fn id(&self) -> &str {
        &self.id
    }

    fn parallelism(&self) -> usize {
        self.pids.len()
    }

    fn transcribe(&self, pcm: &[i16], options: &AsrOptions) -> Result<Transcript, TranscribeError> {
        if pcm.is_empty() {
            return Ok(Transcript::default());
        }
        if pcm.len() > MAX_SAMPLES {
            return Err(TranscribeError::InvalidAudio {
                engine: self.id.clone(),
                reason: format!(
                    "{} s is longer than the 4 h a request may hold; split it",
                    pcm.len() / 16_000
                ),
            });
        }
        let request_id = self.next_request.fetch_add(1, Ordering::SeqCst);
        let frame = encode_frame(request_id, pcm, options, self.config.beam_size);
        let timeout = self.config.timeout_for(pcm.len());
        let mut slot = self.pool.take();
        let outcome = self.transcribe_on(&mut slot, &frame, request_id, timeout);
        self.pool.put_back(slot);
        outcome
    }
}

/// `MSA1 | u32 header_len | header | u32 samples | s16le samples`, wiped on drop.
fn encode_frame(id: u64, pcm: &[i16], options: &AsrOptions, beam_size: u32) -> Zeroizing<Vec<u8>> {
    let header = serde_json::json!({
        "id": id,
        "language": options.language,
        "word_timestamps": options.word_timestamps,
        "prompt": options.prompt,
        "beam_size": beam_size,
    });
    let header = Zeroizing::new(serde_json::to_vec(&header).unwrap_or_default());
    let mut frame = Zeroizing::new(Vec::with_capacity(12 + header.len() + pcm.len() * 2));
    frame.extend_from_slice(b"MSA1");
    frame.extend_from_slice(&u32::try_from(header.len()).unwrap_or(0).to_le_bytes());
    frame.extend_from_slice(&header);
    frame.extend_from_slice(&u32::try_from(pcm.len()).unwrap_or(0).to_le_bytes());
    for sample in pcm {
        frame.extend_from_slice(&sample.to_le_bytes());
    }
    frame
}

#[derive(Deserialize)]
struct Reply {
    id: Option<u64>,
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    segments: Vec<ReplySegment>,
}

#[derive(Deserialize)]
struct ReplySegment {
    start: f32,
    end: f32,
    text: String,
    #[serde(default)]
    avg_logprob: Option<f32>,
    #[serde(default)]
    words: Vec<ReplyWord>,
}

#[derive(Deserialize)]
struct ReplyWord {
    word: String,
    start: f32,
    end: f32,
    #[serde(default)]
    probability: Option<f32>,
}

/// Trims in place, so the only copy of the text stays the one that is wiped on drop.
pub(crate) fn trim_in_place(text: &mut String) {
    let end = text.trim_end().len();
    text.truncate(end);
    let start = text.len() - text.trim_start().len();
    text.drain(..start);
}

/// Outer `Err`: the line breaks the protocol. Inner `Err`: the sidecar's own error message.
fn parse_reply(line: &[u8], expected_id: u64) -> Result<Result<Transcript, String>, String> {
    let reply: Reply =
        serde_json::from_slice(line).map_err(|e| format!("not a reply line ({e})"))?;
    if reply.id != Some(expected_id) {
        return Err(format!(
            "reply for request {:?}, expected {expected_id}",
            reply.id
        ));
    }
    if !reply.ok {
        return Ok(Err(reply
            .error
            .unwrap_or_else(|| "unspecified error".to_owned())));
    }
    let segments = reply
        .segments
        .into_iter()
        .map(|segment| {
            let mut text = segment.text;
            trim_in_place(&mut text);
            let words = segment
                .words
                .into_iter()
                .map(|word| {
                    let mut text = word.word;
                    trim_in_place(&mut text);
                    AsrWord {
                        text,
                        start: word.start,
                        end: word.end,
                        confidence: word.probability.map(unit),
                    }
                })
                .collect();
            AsrSegment {
                start: segment.start,
                end: segment.end,
                text,
                confidence: segment.avg_logprob.map(|lp| unit(lp.exp())),
                words,
            }
        })
        .collect();
    Ok(Ok(Transcript {
        language: reply.language,
        segments,
    }))
}

fn unit(value: f32) -> f32 {
    if value.is_finite() {
        value.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

enum Exchange {
    TimedOut,
    Died(String),
}

type Line = io::Result<Zeroizing<Vec<u8>>>;

#[derive(Debug)]
struct Sidecar {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Line>,
    pid: u32,
}

#[derive(Deserialize)]
struct Ready {
    ready: bool,
    protocol: u32,
}

impl Sidecar {
    fn start(config: &WhisperConfig) -> Result<Self, StartError> {
        let args: Vec<OsString> = vec![
            "-I".into(),
            "-B".into(),
            "-c".into(),
            SIDECAR_SOURCE.into(),
            "--model".into(),
            config.model_dir.clone().into_os_string(),
            "--compute-type".into(),
            config.compute_type.clone().into(),
            "--cpu-threads".into(),
            config.cpu_threads.to_string().into(),
        ];
        let mut env: Vec<(OsString, OsString)> = vec![
            ("HF_HUB_OFFLINE".into(), "1".into()),
            ("HF_HUB_DISABLE_TELEMETRY".into(), "1".into()),
            // onnxruntime (the VAD) otherwise keeps a telemetry database under
            // ~/.cache/Microsoft; the sidecar sets it too, this covers it being loaded earlier.
            ("ORT_DISABLE_TELEMETRY".into(), "1".into()),
            ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
            ("PYTHONNOUSERSITE".into(), "1".into()),
        ];
        env.extend(config.env.iter().cloned());
        let mut command = hardened_command(&config.python, &args, &env, &config.working_dir);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|source| StartError::Spawn {
            program: config.python.clone(),
            source,
        })?;
        let pid = child.id();
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            return Err(StartError::Handshake(
                "the child's pipes were not set up".to_owned(),
            ));
        };
        let stderr = StderrTail::collect(stderr);
        let lines = read_lines(stdout);
        let mut sidecar = Self {
            child,
            stdin: Some(stdin),
            lines,
            pid,
        };
        let first = sidecar.lines.recv_timeout(config.start_timeout);
        let outcome = match first {
            Ok(Ok(line)) => match serde_json::from_slice::<Ready>(&line) {
                Ok(Ready {
                    ready: true,
                    protocol: PROTOCOL,
                }) => Ok(()),
                Ok(Ready { protocol, .. }) => Err(StartError::Handshake(format!(
                    "protocol {protocol}, this build speaks {PROTOCOL}"
                ))),
                Err(e) => Err(StartError::Handshake(format!(
                    "unexpected first line ({e})"
                ))),
            },
            Ok(Err(_)) | Err(RecvTimeoutError::Disconnected) => {
                let status = reap(&mut sidecar.child, Duration::from_secs(5));
                // Give the stderr thread a moment to take in the last of the traceback.
                thread::sleep(Duration::from_millis(50));
                Err(StartError::Exited {
                    status,
                    stderr: stderr.text(),
                })
            }
            Err(RecvTimeoutError::Timeout) => Err(StartError::TimedOut(config.start_timeout)),
        };
        stderr.stop_keeping();
        match outcome {
            Ok(()) => Ok(sidecar),
            Err(e) => {
                sidecar.kill();
                Err(e)
            }
        }
    }

    fn exchange(
        &mut self,
        frame: &[u8],
        timeout: Duration,
    ) -> Result<Zeroizing<Vec<u8>>, Exchange> {
        let Self {
            child,
            stdin,
            lines,
            ..
        } = self;
        let Some(stdin) = stdin.as_mut() else {
            return Err(Exchange::Died("its input was closed".to_owned()));
        };
        thread::scope(|scope| {
            // Written on a thread so that a sidecar that stops reading cannot block us past the
            // timeout; killing it breaks the pipe and ends the write.
            let writer = scope.spawn(move || stdin.write_all(frame).and_then(|()| stdin.flush()));
            let outcome = match lines.recv_timeout(timeout) {
                Ok(Ok(line)) => Ok(line),
                Ok(Err(_)) | Err(RecvTimeoutError::Disconnected) => {
                    Err(Exchange::Died(reap(child, Duration::from_secs(2))))
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    Err(Exchange::TimedOut)
                }
            };
            let _ = writer.join();
            outcome
        })
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        // EOF on stdin asks the sidecar to exit; kill it if it does not within a moment.
        drop(self.stdin.take());
        reap(&mut self.child, Duration::from_secs(2));
    }
}

/// Reads `\n`-terminated lines on a thread; the channel closes at EOF or on an error.
fn read_lines(stdout: ChildStdout) -> Receiver<Line> {
    let (sender, receiver) = mpsc::channel();
    // If the thread cannot be spawned, the sender is dropped with the closure: the receiver
    // then reports the sidecar as gone and the caller fails cleanly.
    let _ = thread::Builder::new()
        .name("asr-whisper-stdout".into())
        .spawn(move || {
            let mut reader = BufReader::with_capacity(64 << 10, stdout);
            loop {
                let mut line = Zeroizing::new(Vec::with_capacity(64 << 10));
                match (&mut reader).take(MAX_LINE).read_until(b'\n', &mut line) {
                    Ok(0) => break,
                    Ok(_) if line.last() == Some(&b'\n') => {
                        if sender.send(Ok(line)).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {
                        let _ =
                            sender.send(Err(io::Error::other("reply line too long or cut off")));
                        break;
                    }
                    Err(e) => {
                        let _ = sender.send(Err(e));
                        break;
                    }
                }
            }
        });
    receiver
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecars_share_the_cores() {
        let env = WhisperEnvironment {
            venv: "/venv".into(),
            python: "/venv/bin/python".into(),
            model_dir: "/venv/models/whisper-base".into(),
        };
        let cores = thread::available_parallelism().map_or(2, |c| c.get()) as u32;
        let default = WhisperConfig::new(&env);
        assert_eq!(default.sidecars, cores.clamp(1, 4));
        assert_eq!(default.cpu_threads, (cores / default.sidecars).max(1));
        let one = WhisperConfig::new(&env).with_sidecars(1);
        assert_eq!((one.sidecars, one.cpu_threads), (1, cores));
        let none = WhisperConfig::new(&env).with_sidecars(0);
        assert_eq!(none.sidecars, 1, "at least one");
        let many = WhisperConfig::new(&env).with_sidecars(cores * 2);
        assert_eq!(many.cpu_threads, 1, "never zero threads");
    }

    #[test]
    fn frames_are_length_prefixed() {
        let frame = encode_frame(7, &[1, -2], &AsrOptions::default(), 5);
        assert_eq!(&frame[..4], b"MSA1");
        let header_len = u32::from_le_bytes(frame[4..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&frame[8..8 + header_len]).unwrap();
        assert_eq!(header["id"], 7);
        assert_eq!(header["language"], "en");
        let rest = &frame[8 + header_len..];
        assert_eq!(rest, &[2, 0, 0, 0, 1, 0, 0xFE, 0xFF]);
    }

    #[test]
    fn replies_are_checked() {
        let line = br#"{"id":3,"ok":true,"language":"en","duration":1.0,"segments":[{"start":0.0,"end":1.0,"text":" Hello there.","avg_logprob":-0.2,"no_speech_prob":0.01,"words":[{"word":" Hello","start":0.0,"end":0.4,"probability":0.9},{"word":" there.","start":0.4,"end":1.0,"probability":1.2}]}]}"#;
        let transcript = parse_reply(line, 3).unwrap().unwrap();
        assert_eq!(transcript.text(), "Hello there.");
        let segment = &transcript.segments[0];
        assert!((segment.confidence.unwrap() - (-0.2f32).exp()).abs() < 1e-6);
        assert_eq!(segment.words[1].text, "there.");
        assert_eq!(segment.words[1].confidence, Some(1.0));
        assert!(parse_reply(line, 4).is_err());
        assert!(parse_reply(b"garbage", 1).is_err());
        let failed = parse_reply(br#"{"id":1,"ok":false,"error":"ValueError: x"}"#, 1).unwrap();
        assert_eq!(failed.unwrap_err(), "ValueError: x");
    }

    #[test]
    fn trimming_keeps_one_copy() {
        let mut text = String::from("  padded words \n");
        trim_in_place(&mut text);
        assert_eq!(text, "padded words");
        let mut empty = String::from("   ");
        trim_in_place(&mut empty);
        assert_eq!(empty, "");
    }
}
