//! The seams between the SIP edge and the rest of mediaseal, as traits, with in-memory
//! implementations for tests and single-node demos.
//!
//! | seam | what | the store/service implementation will |
//! |---|---|---|
//! | [`DomainDirectory`] | a SIP Domain by name, with its IP ranges and credential HA1 sets | read `SIP/Domains`, the mapped IP ACLs and credential lists |
//! | [`AuthTokens`] | an account's auth token (signs webhooks) | read the account |
//! | [`Webhooks`] | one signed request to the customer's application | [`crate::HttpWebhooks`] already does it over HTTP |
//! | [`CallRecorder`] / [`RecordingSink`] | a recording of a call: WAV bytes in as they come, a Recording out | [`crate::SealedCallRecorder`] does it: `Services::start_voice_recording` → `VoiceRecorder::write`/`finish` (seed 000 rules, sealing) |
//! | [`CallLedger`] | call status changes | upsert the Calls resource, send call status callbacks |

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use mediaseal_call::{CallUpdate, Domain, FetchFailure, RecordingRequest, WebhookRequest};
use mediaseal_twiml::RecordingInfo;
use zeroize::Zeroizing;

/// A directory lookup failed (the store is down); the call gets 404 like an unknown domain,
/// and the failure is logged.
#[derive(Debug, Clone, thiserror::Error)]
#[error("domain lookup failed: {0}")]
pub struct DirectoryError(pub String);

/// SIP Domains by name.
#[async_trait]
pub trait DomainDirectory: Send + Sync {
    /// The domain whose `DomainName` is `name` (lower case), with its authentication mappings.
    async fn domain_by_name(&self, name: &str) -> Result<Option<Domain>, DirectoryError>;
}

/// Accounts' auth tokens, for `X-Twilio-Signature`.
#[async_trait]
pub trait AuthTokens: Send + Sync {
    /// The auth token of `account_sid`, if the account exists.
    async fn auth_token(&self, account_sid: &str) -> Option<Zeroizing<String>>;
}

/// Requests to the customer's application.
#[async_trait]
pub trait Webhooks: Send + Sync {
    /// Sends one request and returns the body of a 2xx response.
    async fn send(&self, request: &WebhookRequest) -> Result<Vec<u8>, FetchFailure>;
}

/// A recording could not be started, written or finished.
#[derive(Debug, Clone, thiserror::Error)]
#[error("call recording failed: {0}")]
pub struct RecorderError(pub String);

/// Starts recordings of calls.
#[async_trait]
pub trait CallRecorder: Send + Sync {
    /// Starts a recording. `Ok(None)` means the recording was refused under the account's
    /// settings (seed 000: encryption on and no usable key; the refusal is already published):
    /// the call goes on unrecorded and no audio may be kept.
    async fn start(
        &self,
        request: &RecordingRequest,
    ) -> Result<Option<Box<dyn RecordingSink>>, RecorderError>;
}

/// One recording being written. WAV bytes arrive in order, header first, as the call goes.
#[async_trait]
pub trait RecordingSink: Send {
    /// Seals and stores the next bytes.
    async fn write(&mut self, wav: &[u8]) -> Result<(), RecorderError>;

    /// The audio ended after `duration`: publish the recording. `None` when it was empty
    /// (Twilio's `absent`).
    async fn finish(
        self: Box<Self>,
        duration: Duration,
    ) -> Result<Option<RecordingInfo>, RecorderError>;

    /// Writing failed part-way: keep nothing.
    async fn abort(self: Box<Self>);

    /// The recording's row as it will be published, when the sink has one (the
    /// start-recording API answers with it).
    fn recording(&self) -> Option<mediaseal_store::model::Recording> {
        None
    }
}

/// Call status changes.
#[async_trait]
pub trait CallLedger: Send + Sync {
    /// A call or dialled leg changed status.
    async fn call_updated(&self, update: CallUpdate);
}

/// Domains held in memory.
#[derive(Debug, Default, Clone)]
pub struct MemoryDirectory {
    domains: Arc<Mutex<HashMap<String, Domain>>>,
}

impl MemoryDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a domain.
    pub fn insert(&self, domain: Domain) {
        if let Ok(mut d) = self.domains.lock() {
            d.insert(domain.name.to_ascii_lowercase(), domain);
        }
    }
}

#[async_trait]
impl DomainDirectory for MemoryDirectory {
    async fn domain_by_name(&self, name: &str) -> Result<Option<Domain>, DirectoryError> {
        let d = self
            .domains
            .lock()
            .map_err(|_| DirectoryError("directory lock poisoned".to_owned()))?;
        Ok(d.get(&name.to_ascii_lowercase()).cloned())
    }
}

/// Auth tokens held in memory.
#[derive(Default, Clone)]
pub struct MemoryTokens {
    tokens: Arc<Mutex<HashMap<String, Zeroizing<String>>>>,
}

impl std::fmt::Debug for MemoryTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTokens").finish_non_exhaustive()
    }
}

impl MemoryTokens {
    /// No accounts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets an account's token.
    pub fn insert(&self, account_sid: &str, token: &str) {
        if let Ok(mut t) = self.tokens.lock() {
            t.insert(account_sid.to_owned(), Zeroizing::new(token.to_owned()));
        }
    }
}

#[async_trait]
impl AuthTokens for MemoryTokens {
    async fn auth_token(&self, account_sid: &str) -> Option<Zeroizing<String>> {
        self.tokens.lock().ok()?.get(account_sid).cloned()
    }
}

/// A recording kept in memory by [`MemoryRecorder`] (tests only: it is plaintext).
#[derive(Debug, Clone)]
pub struct StoredRecording {
    /// The request that started it.
    pub request: RecordingRequest,
    /// The WAV bytes.
    pub wav: Vec<u8>,
    /// The duration the producer reported.
    pub duration: Duration,
    /// Whether it finished (rather than was aborted or is still being written).
    pub finished: bool,
    /// Number of `write` calls.
    pub writes: usize,
}

/// Recordings in memory, optionally slowed down to exercise the relay's drop-and-count path.
#[derive(Debug, Default, Clone)]
pub struct MemoryRecorder {
    recordings: Arc<Mutex<Vec<StoredRecording>>>,
    write_delay: Option<Duration>,
}

impl MemoryRecorder {
    /// A recorder that keeps everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// A recorder whose every write takes `delay` (a slow object store).
    pub fn slow(delay: Duration) -> Self {
        Self {
            write_delay: Some(delay),
            ..Self::default()
        }
    }

    /// Every recording so far.
    pub fn recordings(&self) -> Vec<StoredRecording> {
        self.recordings
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }
}

struct MemorySink {
    recordings: Arc<Mutex<Vec<StoredRecording>>>,
    index: usize,
    delay: Option<Duration>,
}

#[async_trait]
impl CallRecorder for MemoryRecorder {
    async fn start(
        &self,
        request: &RecordingRequest,
    ) -> Result<Option<Box<dyn RecordingSink>>, RecorderError> {
        let mut r = self
            .recordings
            .lock()
            .map_err(|_| RecorderError("lock poisoned".to_owned()))?;
        r.push(StoredRecording {
            request: request.clone(),
            wav: Vec::new(),
            duration: Duration::ZERO,
            finished: false,
            writes: 0,
        });
        Ok(Some(Box::new(MemorySink {
            recordings: self.recordings.clone(),
            index: r.len() - 1,
            delay: self.write_delay,
        })))
    }
}

#[async_trait]
impl RecordingSink for MemorySink {
    async fn write(&mut self, wav: &[u8]) -> Result<(), RecorderError> {
        if let Some(d) = self.delay {
            tokio::time::sleep(d).await;
        }
        let mut r = self
            .recordings
            .lock()
            .map_err(|_| RecorderError("lock poisoned".to_owned()))?;
        if let Some(rec) = r.get_mut(self.index) {
            rec.wav.extend_from_slice(wav);
            rec.writes += 1;
        }
        Ok(())
    }

    async fn finish(
        self: Box<Self>,
        duration: Duration,
    ) -> Result<Option<RecordingInfo>, RecorderError> {
        let mut r = self
            .recordings
            .lock()
            .map_err(|_| RecorderError("lock poisoned".to_owned()))?;
        let Some(rec) = r.get_mut(self.index) else {
            return Ok(None);
        };
        rec.finished = true;
        rec.duration = duration;
        if duration.is_zero() {
            return Ok(None);
        }
        let sid = format!("RE{:032x}", self.index + 1);
        Ok(Some(RecordingInfo {
            url: format!(
                "/2010-04-01/Accounts/{}/Recordings/{sid}",
                rec.request.account_sid
            ),
            sid,
            duration_secs: u32::try_from(duration.as_secs()).unwrap_or(u32::MAX),
        }))
    }

    async fn abort(self: Box<Self>) {
        if let Ok(mut r) = self.recordings.lock()
            && let Some(rec) = r.get_mut(self.index)
        {
            rec.wav.clear();
        }
    }
}

/// Call updates kept in memory.
#[derive(Debug, Default, Clone)]
pub struct MemoryLedger {
    updates: Arc<Mutex<Vec<CallUpdate>>>,
}

impl MemoryLedger {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every update so far, in order.
    pub fn updates(&self) -> Vec<CallUpdate> {
        self.updates.lock().map(|u| u.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl CallLedger for MemoryLedger {
    async fn call_updated(&self, update: CallUpdate) {
        if let Ok(mut u) = self.updates.lock() {
            u.push(update);
        }
    }
}
