//! The speech engine transcripts are made with: one given at start (`serve --asr ENGINE`), or
//! the best installed one picked at the first transcript.

use std::sync::Arc;

use mediaseal_asr::{EngineSizing, EngineSpec, SpeechEngine, select_engine_sized};
use tokio::sync::OnceCell;

/// Where the engine comes from.
#[derive(Debug)]
enum Source {
    /// Already running.
    Given(Arc<dyn SpeechEngine>),
    /// Picked by [`select_engine_sized`] with [`EngineSpec::Auto`] at first use.
    Auto(EngineSizing),
    /// None can be had; transcripts fail with this reason.
    Unavailable(String),
}

/// The speech engine of this node, shared by every transcript.
#[derive(Debug)]
pub struct Speech {
    source: Source,
    picked: OnceCell<Result<Arc<dyn SpeechEngine>, String>>,
}

impl Speech {
    /// An engine already started.
    pub fn given(engine: Arc<dyn SpeechEngine>) -> Self {
        Self {
            source: Source::Given(engine),
            picked: OnceCell::new(),
        }
    }

    /// The best installed engine, picked (and started) when the first transcript needs it.
    pub fn auto() -> Self {
        Self::auto_sized(EngineSizing::default())
    }

    /// [`Speech::auto`], started with the operator's sizing (`serve --asr-sidecars`).
    pub fn auto_sized(sizing: EngineSizing) -> Self {
        Self {
            source: Source::Auto(sizing),
            picked: OnceCell::new(),
        }
    }

    /// No engine: every transcript fails with `reason` (which should say how to get one).
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self {
            source: Source::Unavailable(reason.into()),
            picked: OnceCell::new(),
        }
    }

    /// The engine, or why there is none. An automatic pick happens once per process: the
    /// answer (engine or error) is kept, so installing an engine later needs a restart.
    pub async fn engine(&self) -> Result<Arc<dyn SpeechEngine>, String> {
        match &self.source {
            Source::Given(engine) => Ok(engine.clone()),
            Source::Unavailable(reason) => Err(reason.clone()),
            Source::Auto(sizing) => self
                .picked
                .get_or_init(|| async {
                    // Starting Whisper loads a model: seconds of blocking work.
                    let sizing = *sizing;
                    let picked = tokio::task::spawn_blocking(move || {
                        select_engine_sized(&EngineSpec::Auto, None, sizing)
                            .map_err(|e| e.to_string())
                    })
                    .await
                    .unwrap_or_else(|e| Err(format!("the engine could not be started: {e}")));
                    match &picked {
                        Ok(engine) => tracing::info!(engine = engine.id(), "speech engine picked"),
                        Err(e) => {
                            tracing::warn!(error = %e, "no speech engine: transcripts will fail")
                        }
                    }
                    picked
                })
                .await
                .clone(),
        }
    }
}
