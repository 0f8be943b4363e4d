//! Speech recognition engines behind one interface: Whisper (out of process), pocketsphinx,
//! OpenAI-compatible HTTP.
//!
//! Every engine takes mono signed 16-bit PCM at 16 kHz **in memory** and returns
//! [`Transcript`] segments with words, times and confidences. Nothing here writes audio or text
//! to disk or to a log: engines run as child processes fed through pipes (or as a remote
//! service reached over HTTP), transcripts redact their text in `Debug` and wipe it on drop.
//!
//! * [`WhisperEngine`]: faster-whisper in the pinned venv that `scripts/setup-asr.sh` builds,
//!   driven through a warm sidecar process (`interop/asr/whisper_sidecar.py`, embedded here).
//! * [`PocketsphinxEngine`]: Debian's `pocketsphinx_continuous` with raw PCM on stdin.
//! * [`OpenAiHttpEngine`]: `POST {url}/v1/audio/transcriptions`, as whisper.cpp's server,
//!   speaches or LocalAI answer it.
//!
//! [`select_engine`] turns the `serve --asr ENGINE` spec into a running engine, and picks the
//! best installed one when no spec is given. [`audio`] turns a WAV recording into per-channel
//! 16 kHz mono PCM, so a dual-channel call is transcribed channel by channel.
//!
//! # Blocking by design
//! [`SpeechEngine::transcribe`] is synchronous. Recognition is seconds of CPU work in another
//! process; the caller on tokio runs it with `spawn_blocking`, which is exactly the thread an
//! engine needs to wait on pipes and enforce timeouts, and keeps this crate free of a runtime
//! (the benchmark and the tests call it directly). Engines are `Send + Sync`: share one behind
//! an `Arc`. The Whisper engine keeps a pool of warm processes, one request each; pocketsphinx
//! runs a process per request; [`transcribe_channels`] spreads a recording's channels, and the
//! pieces of a long channel cut at its quietest moments, over what the engine can run at once.

#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod audio;
mod openai;
mod parallel;
mod pocketsphinx;
mod process;
pub mod score;
mod select;
mod transcript;
mod whisper;

pub use openai::{
    ApiKey, HttpSetupError, OpenAiHttpConfig, OpenAiHttpEngine, ResponseError, parse_verbose_json,
};
pub use parallel::{MIN_PIECE_SECONDS, quiet_cuts, transcribe_channels};
pub use pocketsphinx::{
    PocketsphinxConfig, PocketsphinxEngine, PocketsphinxMissing, parse_pocketsphinx_output,
};
pub use select::{
    EngineSizing, EngineSpec, SelectError, SpecError, select_engine, select_engine_sized,
};
pub use transcript::{AsrOptions, AsrSegment, AsrWord, Transcript};
pub use whisper::{
    SIDECAR_SOURCE, StartError, VENV_ENV_VAR, WhisperConfig, WhisperEngine, WhisperEnvError,
    WhisperEnvironment,
};

use std::time::Duration;

/// The sample rate every engine takes: 16 kHz.
pub const SAMPLE_RATE: u32 = 16_000;

/// A speech recogniser: mono s16 PCM at [`SAMPLE_RATE`] in, segments with words out.
///
/// Implementations must not write the audio or the text anywhere (disk, logs, temp files), and
/// must fail one request, never the process, when their engine misbehaves.
pub trait SpeechEngine: Send + Sync + std::fmt::Debug {
    /// A stable name for logs and metrics, e.g. `whisper-ct2:base`, `pocketsphinx:en-us`,
    /// `openai-http:https://host/v1/audio/transcriptions`. Never contains a secret.
    fn id(&self) -> &str;

    /// Transcribes one channel. `pcm` is mono signed 16-bit at 16 kHz. Blocks until the engine
    /// answers or its timeout passes; call it from a blocking thread.
    fn transcribe(&self, pcm: &[i16], options: &AsrOptions) -> Result<Transcript, TranscribeError>;

    /// How many requests the engine works on at once without one waiting for another (its
    /// process pool, for instance). [`transcribe_channels`] splits a recording into at most
    /// this many requests. The default, 1, sends each channel whole, one after the other.
    fn parallelism(&self) -> usize {
        1
    }
}

/// Why one transcription failed. The engine stays usable: a crashed or hung engine process is
/// replaced on the next request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TranscribeError {
    /// The request asked for something this engine cannot do.
    #[error("{engine}: {what}")]
    Unsupported {
        /// Engine id.
        engine: String,
        /// What is not supported, and what to do instead.
        what: String,
    },
    /// The audio cannot be sent to this engine (too long for the protocol, for instance).
    #[error("{engine}: the audio cannot be transcribed: {reason}")]
    InvalidAudio {
        /// Engine id.
        engine: String,
        /// Why.
        reason: String,
    },
    /// The engine process could not be started.
    #[error("{engine}: could not start the engine: {reason}")]
    Start {
        /// Engine id.
        engine: String,
        /// Why, with what to do about it.
        reason: String,
    },
    /// The engine process died while working on this request.
    #[error(
        "{engine}: the engine process died during the request ({status}); this transcription failed and the next one starts a new process"
    )]
    Crashed {
        /// Engine id.
        engine: String,
        /// How it ended (exit status or signal).
        status: String,
    },
    /// The engine did not answer in time and was killed.
    #[error(
        "{engine}: no answer within {} s, so the engine process was killed; the next transcription starts a new one",
        after.as_secs()
    )]
    TimedOut {
        /// Engine id.
        engine: String,
        /// The timeout that passed.
        after: Duration,
    },
    /// The engine answered something that does not follow its protocol.
    #[error("{engine}: the engine's answer could not be understood: {detail}")]
    Protocol {
        /// Engine id.
        engine: String,
        /// What was wrong with it (never the transcript text).
        detail: String,
    },
    /// The engine ran but reported that it could not transcribe this audio.
    #[error("{engine}: the engine reported an error: {message}")]
    Engine {
        /// Engine id.
        engine: String,
        /// The engine's message.
        message: String,
    },
    /// The remote engine could not be reached or the exchange broke off.
    #[error("{engine}: the request to the transcription server failed: {reason}")]
    Http {
        /// Engine id.
        engine: String,
        /// Why.
        reason: String,
    },
    /// The remote engine answered with an error status.
    #[error("{engine}: the transcription server answered HTTP {status}: {detail}")]
    HttpStatus {
        /// Engine id.
        engine: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the server's error body.
        detail: String,
    },
}
