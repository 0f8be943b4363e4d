//! Shared state of the service: stores, keys, configuration.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mediaseal_crypto::PrivateKey;
use mediaseal_store::{MetadataStore, ObjectStore};

/// Settings that do not change while the service runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Base URL clients reach this service at, e.g. `https://media.example.com`; when `None`,
    /// taken from each request's `Host` header.
    pub public_url: Option<String>,
    /// First retry delay of a failed callback; doubles each time.
    pub callback_retry_base: Duration,
    /// Longest delay between retries.
    pub callback_retry_cap: Duration,
    /// Tries before a callback is given up.
    pub callback_max_attempts: i64,
    /// How often the outbox is polled.
    pub callback_poll: Duration,
    /// Timeout of one delivery.
    pub callback_timeout: Duration,
    /// Unpublished uploads older than this are treated as crashed and swept.
    pub orphan_age: Duration,
    /// The `ffmpeg` to run for MP3 transcoding and compositions, if present.
    pub ffmpeg: Option<PathBuf>,
    /// Secret for signing `/Media` URLs (32 bytes).
    pub url_signing_key: Arc<[u8; 32]>,
    /// Name of this node, for leases.
    pub node_id: String,
    /// Whether this server speaks HTTPS (for URLs derived from `Host`).
    pub tls: bool,
    /// Where compositions make their private FIFO directories (nothing is ever written into
    /// them: FIFOs carry data through the kernel). Defaults to the system temp directory.
    pub scratch_dir: PathBuf,
    /// Hand out the object store's own presigned URLs for customer-sealed media (S3 serves the
    /// bytes, as on Twilio) instead of this service's signed URLs. Off by default: the expiry
    /// answer is then the store's (Garage says 400 where this service says 403). `serve` turns
    /// it on by default when the objects are on S3.
    pub media_from_store: bool,
}

impl Config {
    /// Defaults for a server whose data lives under `data_dir`.
    pub fn new(url_signing_key: [u8; 32]) -> Self {
        Self {
            public_url: None,
            callback_retry_base: Duration::from_secs(2),
            callback_retry_cap: Duration::from_secs(600),
            callback_max_attempts: 12,
            callback_poll: Duration::from_millis(250),
            callback_timeout: Duration::from_secs(15),
            orphan_age: Duration::from_secs(3600),
            ffmpeg: find_in_path("ffmpeg"),
            url_signing_key: Arc::new(url_signing_key),
            node_id: crate::sid::new_sid("ND"),
            tls: false,
            scratch_dir: std::env::temp_dir(),
            media_from_store: false,
        }
    }
}

/// Finds an executable on `PATH`.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Everything a handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Metadata.
    pub meta: Arc<dyn MetadataStore>,
    /// Sealed objects.
    pub objects: Arc<dyn ObjectStore>,
    /// The service's own key, for objects not sealed to a customer key.
    pub at_rest: Arc<PrivateKey>,
    /// Settings.
    pub config: Arc<Config>,
    /// Client for webhooks.
    pub http: reqwest::Client,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("meta", &self.meta.backend())
            .field("objects", &self.objects.backend())
            .field("at_rest", &self.at_rest.fingerprint())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Assembles the state.
    pub fn new(
        meta: Arc<dyn MetadataStore>,
        objects: Arc<dyn ObjectStore>,
        at_rest: PrivateKey,
        config: Config,
    ) -> Self {
        // TLS everywhere in the process (callbacks, HTTPS serving) uses AWS-LC through rustls.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        // Counters only count once a recorder is installed; do it before any request.
        crate::metrics_handle();
        let http = reqwest::Client::builder()
            .timeout(config.callback_timeout)
            .user_agent(concat!("mediaseal-callbacks/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            meta,
            objects,
            at_rest: Arc::new(at_rest),
            config: Arc::new(config),
            http,
        }
    }
}
