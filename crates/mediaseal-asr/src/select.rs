//! Choosing an engine from the `serve --asr ENGINE` spec, or the best installed one.

use std::sync::Arc;

use crate::{
    ApiKey, HttpSetupError, OpenAiHttpConfig, OpenAiHttpEngine, PocketsphinxEngine,
    PocketsphinxMissing, SpeechEngine, StartError, WhisperConfig, WhisperEngine, WhisperEnvError,
    WhisperEnvironment,
};

/// Which engine to run, as written after `--asr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineSpec {
    /// `whisper`: faster-whisper in the pinned venv.
    Whisper,
    /// `pocketsphinx`: Debian's pocketsphinx.
    Pocketsphinx,
    /// `http://…` or `https://…`: an OpenAI-compatible transcription server.
    OpenAiHttp(String),
    /// `auto` (or no option): Whisper when its environment is installed, else pocketsphinx
    /// when installed, else an error that says how to install one.
    Auto,
}

/// The spec is not one of the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown speech recognition engine {0:?}: use whisper, pocketsphinx, auto, or an http(s):// URL of an OpenAI-compatible server"
)]
pub struct SpecError(pub String);

impl std::str::FromStr for EngineSpec {
    type Err = SpecError;

    fn from_str(spec: &str) -> Result<Self, SpecError> {
        let trimmed = spec.trim();
        let lower = trimmed.to_ascii_lowercase();
        match lower.as_str() {
            "" | "auto" => Ok(Self::Auto),
            "whisper" => Ok(Self::Whisper),
            "pocketsphinx" => Ok(Self::Pocketsphinx),
            _ if lower.starts_with("http://") || lower.starts_with("https://") => {
                Ok(Self::OpenAiHttp(trimmed.to_owned()))
            }
            _ => Err(SpecError(spec.to_owned())),
        }
    }
}

/// Why no engine could be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SelectError {
    /// `whisper` was asked for but its environment is missing.
    #[error("the whisper engine is not installed: {0}")]
    WhisperMissing(#[source] WhisperEnvError),
    /// The Whisper sidecar would not start.
    #[error("the whisper engine would not start: {0}")]
    WhisperStart(#[source] StartError),
    /// `pocketsphinx` was asked for but is not installed.
    #[error(transparent)]
    PocketsphinxMissing(PocketsphinxMissing),
    /// The server URL is unusable.
    #[error(transparent)]
    Http(HttpSetupError),
    /// Nothing is installed and nothing was asked for.
    #[error(
        "no speech recognition engine is installed. Install one of: the whisper engine (run scripts/setup-asr.sh in the mediaseal checkout; it builds .asr-venv with faster-whisper and the pinned Whisper base model), or pocketsphinx (`apt-get install pocketsphinx pocketsphinx-en-us`); or pass --asr https://… for an OpenAI-compatible transcription server. ({whisper}; {pocketsphinx})"
    )]
    NoEngine {
        /// Why Whisper was not usable.
        whisper: WhisperEnvError,
        /// Why pocketsphinx was not usable.
        pocketsphinx: PocketsphinxMissing,
    },
}

/// How the operator sized the engines (`serve --asr-sidecars`); `None` keeps the defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineSizing {
    /// Whisper sidecars: how many requests run at once (default one per core, at most 4).
    pub whisper_sidecars: Option<u32>,
}

/// Starts the engine `spec` names (the Whisper sidecar is started and its model loaded before
/// this returns). `api_key` is used only by the HTTP engine.
pub fn select_engine(
    spec: &EngineSpec,
    api_key: Option<ApiKey>,
) -> Result<Arc<dyn SpeechEngine>, SelectError> {
    select_engine_sized(spec, api_key, EngineSizing::default())
}

/// [`select_engine`], with the operator's sizing.
pub fn select_engine_sized(
    spec: &EngineSpec,
    api_key: Option<ApiKey>,
    sizing: EngineSizing,
) -> Result<Arc<dyn SpeechEngine>, SelectError> {
    match spec {
        EngineSpec::Whisper => {
            let env = WhisperEnvironment::locate().map_err(SelectError::WhisperMissing)?;
            start_whisper(&env, sizing)
        }
        EngineSpec::Pocketsphinx => {
            let engine = PocketsphinxEngine::debian().map_err(SelectError::PocketsphinxMissing)?;
            Ok(Arc::new(engine))
        }
        EngineSpec::OpenAiHttp(url) => {
            let mut config = OpenAiHttpConfig::new(url).map_err(SelectError::Http)?;
            config.api_key = api_key;
            Ok(Arc::new(OpenAiHttpEngine::new(config)))
        }
        EngineSpec::Auto => match WhisperEnvironment::locate() {
            Ok(env) => start_whisper(&env, sizing),
            Err(whisper) => match PocketsphinxEngine::debian() {
                Ok(engine) => Ok(Arc::new(engine)),
                Err(pocketsphinx) => Err(SelectError::NoEngine {
                    whisper,
                    pocketsphinx,
                }),
            },
        },
    }
}

fn start_whisper(
    env: &WhisperEnvironment,
    sizing: EngineSizing,
) -> Result<Arc<dyn SpeechEngine>, SelectError> {
    let mut config = WhisperConfig::new(env);
    if let Some(n) = sizing.whisper_sidecars {
        config = config.with_sidecars(n);
    }
    let engine = WhisperEngine::start(config).map_err(SelectError::WhisperStart)?;
    Ok(Arc::new(engine))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!("whisper".parse(), Ok(EngineSpec::Whisper));
        assert_eq!(" Pocketsphinx ".parse(), Ok(EngineSpec::Pocketsphinx));
        assert_eq!("".parse(), Ok(EngineSpec::Auto));
        assert_eq!("auto".parse(), Ok(EngineSpec::Auto));
        assert_eq!(
            "https://asr.example/v1".parse(),
            Ok(EngineSpec::OpenAiHttp("https://asr.example/v1".into()))
        );
        let error = "vosk".parse::<EngineSpec>().unwrap_err();
        assert!(
            error.to_string().contains("use whisper, pocketsphinx"),
            "{error}"
        );
    }

    #[test]
    fn no_engine_message_says_how_to_install() {
        let error = SelectError::NoEngine {
            whisper: WhisperEnvError::NotFound {
                searched: vec!["/srv".into()],
            },
            pocketsphinx: PocketsphinxMissing {
                missing: "pocketsphinx_continuous not on PATH".into(),
            },
        };
        let text = error.to_string();
        assert!(
            text.contains("scripts/setup-asr.sh") && text.contains("apt-get install pocketsphinx"),
            "{text}"
        );
    }

    #[test]
    fn cleartext_remote_is_refused_at_selection() {
        let error =
            select_engine(&EngineSpec::OpenAiHttp("http://asr.example".into()), None).unwrap_err();
        assert!(
            matches!(error, SelectError::Http(HttpSetupError::Cleartext { .. })),
            "{error}"
        );
    }
}
