//! `<Say>` through Debian's `espeak-ng`: text in on stdin, a WAV out on stdout (22.05 kHz,
//! 16-bit), resampled here to the relay's 8 kHz PCM (the relay encodes it with the caller's
//! G.711 law). No shell is involved and the text never touches the command line.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use mediaseal_call::prompt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// Why speech could not be synthesised.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpeechError {
    /// The synthesiser could not be started (not installed?).
    #[error("cannot run {path}: {reason} (install the espeak-ng package)")]
    Spawn {
        /// The program.
        path: String,
        /// Why.
        reason: String,
    },
    /// It ran too long.
    #[error("espeak-ng did not finish within {0:?}")]
    Timeout(Duration),
    /// It failed or produced no audio.
    #[error("espeak-ng failed: {0}")]
    Failed(String),
}

/// The `espeak-ng` synthesiser.
#[derive(Debug, Clone)]
pub struct Espeak {
    program: PathBuf,
    timeout: Duration,
}

impl Espeak {
    /// Runs `program` (normally `espeak-ng`), giving up after `timeout`.
    pub fn new(program: PathBuf, timeout: Duration) -> Self {
        Self { program, timeout }
    }

    /// 8 kHz mono PCM speaking `text`. `voice` is TwiML's (`man`, `woman`, `alice`,
    /// `Polly.*`…: mapped to an espeak-ng variant) and `language` a tag like `en-US`.
    pub async fn synthesize(
        &self,
        text: &str,
        voice: Option<&str>,
        language: Option<&str>,
    ) -> Result<Vec<i16>, SpeechError> {
        let lang = language
            .map(|l| l.to_ascii_lowercase())
            .filter(|l| {
                !l.is_empty()
                    && l.len() <= 16
                    && l.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
            })
            .unwrap_or_else(|| "en-us".to_owned());
        let variant = match voice.map(str::to_ascii_lowercase).as_deref() {
            Some("man") => "+m3",
            Some(_) => "+f3",
            None => "+f3",
        };
        let mut child = Command::new(&self.program)
            .arg("--stdout")
            .arg("-v")
            .arg(format!("{lang}{variant}"))
            .arg("-s")
            .arg("160")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| SpeechError::Spawn {
                path: self.program.display().to_string(),
                reason: e.to_string(),
            })?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| SpeechError::Failed("no stdin".to_owned()))?;
        let mut stdout = child
            .stdout
            .take()
            .ok_or_else(|| SpeechError::Failed("no stdout".to_owned()))?;
        let text = text.to_owned();
        let run = async move {
            let writer = async move {
                let r = stdin.write_all(text.as_bytes()).await;
                drop(stdin);
                r
            };
            let mut wav = Vec::new();
            let (w, r) = tokio::join!(writer, stdout.read_to_end(&mut wav));
            w.map_err(|e| SpeechError::Failed(e.to_string()))?;
            r.map_err(|e| SpeechError::Failed(e.to_string()))?;
            let status = child
                .wait()
                .await
                .map_err(|e| SpeechError::Failed(e.to_string()))?;
            if !status.success() {
                return Err(SpeechError::Failed(format!("exit status {status}")));
            }
            Ok(wav)
        };
        let wav = tokio::time::timeout(self.timeout, run)
            .await
            .map_err(|_| SpeechError::Timeout(self.timeout))??;
        prompt::decode_wav(&wav).map_err(|e| SpeechError::Failed(e.to_string()))
    }
}
