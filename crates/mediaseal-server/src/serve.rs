//! The server process: storage from configuration, the service's own keys, TLS, background
//! workers, graceful shutdown.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mediaseal_crypto::PrivateKey;
use mediaseal_store::{
    FsObjectStore, MetadataStore, ObjectStore, S3Config, S3ObjectStore, SqlStore, StoreError,
};

pub use mediaseal_service::egress::{IpNet, parse_network as parse_webhook_network};
use mediaseal_service::runner::Runner;
pub use mediaseal_service::{DEFAULT_MAX_CONCURRENT_UPLOADS, DEFAULT_MAX_UPLOAD_BYTES};

use crate::listener::{ConnectionGate, ConnectionLimits, GovernedAcceptor, RateGuardedBody};
use crate::state::{AppState, Config};

/// Where things live and how to listen.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Data directory of the embedded store and of the service's keys.
    pub data_dir: PathBuf,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Public base URL, if not derived from `Host`.
    pub public_url: Option<String>,
    /// TLS certificate chain (PEM), to serve HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// `sqlite://…` or `postgres://…`; default: SQLite under `data_dir`.
    pub database: Option<String>,
    /// Object store URL; default: a directory under `data_dir`.
    pub objects: Option<String>,
    /// The at-rest key file; default `data_dir/at-rest-key.pem`. Nodes sharing storage must
    /// share it.
    pub at_rest_key: Option<PathBuf>,
    /// The URL-signing secret file; default `data_dir/url-signing.key`. Shared like the key.
    pub url_signing_key: Option<PathBuf>,
    /// First callback retry delay.
    pub callback_retry_base: Duration,
    /// How often the sweeper runs.
    pub sweep_every: Duration,
    /// Age after which an unfinished upload or unreferenced object is swept.
    pub orphan_age: Duration,
    /// S3 credentials; when absent, `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
    pub s3_credentials: Option<S3Credentials>,
    /// Redirect `/Media` of customer-sealed media to the object store's presigned URLs;
    /// `None`: yes when the objects are on S3, which can presign.
    pub media_from_store: Option<bool>,
    /// Largest upload accepted by the producer doors, in bytes.
    pub max_upload_bytes: u64,
    /// Uploads one account may have in progress on this node at once.
    pub max_concurrent_uploads: usize,
    /// Networks webhooks may reach although the default policy refuses them (loopback, private,
    /// link-local, …): on-premises receivers.
    pub allow_webhook_networks: Vec<IpNet>,
    /// Separate address for `/metrics`; the API listener never serves them.
    pub metrics_listen: Option<SocketAddr>,
    /// `--asr`: the speech engine for transcripts (`whisper`, `pocketsphinx`, `auto`, or an
    /// `http(s)://` URL). `None` or `auto`: the best installed one, picked at the first
    /// transcript. A named engine is started here, and a missing one stops `serve`.
    pub asr: Option<String>,
    /// `--asr-sidecars`: Whisper sidecars, that is transcriptions running at once on this node
    /// (`None`: one per core, at most 4).
    pub asr_sidecars: Option<u32>,
    /// What the listener lets one client, and all of them, hold.
    pub limits: ConnectionLimits,
    /// Bounds on this node's compositions.
    pub compose: crate::state::ComposeLimits,
    /// Every SIP Domain name must end with this (`--sip-domain-suffix`); `None`: any DNS name.
    pub sip_domain_suffix: Option<String>,
    /// STUN/TURN URLs and secret for `Tokens.json` (`--turn-url`, `--turn-secret-file`).
    pub turn: crate::TurnConfig,
    /// The media processes of group rooms (`--room-worker`, `--max-rooms`, `--room-udp`).
    pub rooms: crate::room_processes::RoomOptions,
}

/// An S3 access key. `Debug` never shows the secret.
#[derive(Clone)]
pub struct S3Credentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// What can stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Storage could not be opened.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// A key or data file could not be read or created.
    #[error("{path}: {reason}")]
    File {
        /// Which file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Listening or serving failed.
    #[error("cannot serve on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// The configuration is inconsistent.
    #[error("{0}")]
    Config(String),
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> ServeError {
    ServeError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Writes `bytes` to a new file with mode 0600, failing if it exists (another node or process
/// may be creating it; then it is read instead).
fn create_secret_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Loads the at-rest key, creating it (mode 0600) on first start.
pub fn load_or_create_at_rest_key(path: &Path) -> Result<PrivateKey, ServeError> {
    if !path.exists() {
        let key = PrivateKey::generate(3072).map_err(|e| file_error(path, e))?;
        let pem = key.to_pkcs8_pem().map_err(|e| file_error(path, e))?;
        match create_secret_file(path, pem.as_bytes()) {
            Ok(()) => {
                tracing::info!(path = %path.display(), fingerprint = %key.fingerprint(), "created the at-rest key");
                return Ok(key);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(file_error(path, e)),
        }
    }
    let bytes = zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| file_error(path, e))?);
    PrivateKey::from_bytes(&bytes).map_err(|e| file_error(path, e))
}

/// Loads the 32-byte URL-signing secret, creating it on first start.
pub fn load_or_create_signing_key(path: &Path) -> Result<[u8; 32], ServeError> {
    if !path.exists() {
        let mut key = [0u8; 32];
        aws_lc_rs::rand::fill(&mut key).map_err(|_| file_error(path, "no randomness"))?;
        match create_secret_file(path, &key) {
            Ok(()) => return Ok(key),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(file_error(path, e)),
        }
    }
    let bytes = std::fs::read(path).map_err(|e| file_error(path, e))?;
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| file_error(path, "expected exactly 32 bytes"))
}

/// Opens the metadata store named by `database`, or SQLite under `data_dir`.
pub async fn open_meta(
    data_dir: &Path,
    database: Option<&str>,
) -> Result<Arc<dyn MetadataStore>, ServeError> {
    let store = match database {
        Some(url) => SqlStore::connect(url).await?,
        None => {
            mediaseal_store::perms::secure_dir(data_dir).map_err(|e| file_error(data_dir, e))?;
            SqlStore::open_sqlite(&data_dir.join("mediaseal.db")).await?
        }
    };
    Ok(Arc::new(store))
}

/// Opens the object store named by `objects`, or a directory under `data_dir`.
pub async fn open_objects(
    data_dir: &Path,
    objects: Option<&str>,
) -> Result<Arc<dyn ObjectStore>, ServeError> {
    Ok(open_objects_with(data_dir, objects, None).await?.0)
}

/// Opens an object store from a URL: `file:///path` or `s3://BUCKET[/PREFIX]?endpoint=…`, with
/// S3 credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
pub async fn open_object_url(url: &str) -> Result<Arc<dyn ObjectStore>, ServeError> {
    Ok(open_url(url, None).await?.0)
}

/// The object store, and the same store as S3 when it is one (for its upload sweeper).
async fn open_objects_with(
    data_dir: &Path,
    objects: Option<&str>,
    credentials: Option<&S3Credentials>,
) -> Result<(Arc<dyn ObjectStore>, Option<S3ObjectStore>), ServeError> {
    match objects {
        None => Ok((
            Arc::new(FsObjectStore::new(data_dir.join("objects"))?),
            None,
        )),
        Some(url) => open_url(url, credentials).await,
    }
}

async fn open_url(
    url: &str,
    credentials: Option<&S3Credentials>,
) -> Result<(Arc<dyn ObjectStore>, Option<S3ObjectStore>), ServeError> {
    if let Some(path) = url.strip_prefix("file://") {
        return Ok((Arc::new(FsObjectStore::new(path)?), None));
    }
    if url.starts_with("s3://") {
        let mut config = S3Config::from_url(url)?;
        if let Some(c) = credentials {
            config.access_key_id = Some(c.access_key_id.clone());
            config.secret_access_key = Some(c.secret_access_key.to_string());
        }
        let store = S3ObjectStore::connect(config.with_env_credentials()).await?;
        return Ok((Arc::new(store.clone()), Some(store)));
    }
    Err(ServeError::Config(format!(
        "unsupported object store URL '{}': use file:///PATH or s3://BUCKET?endpoint=URL",
        mediaseal_store::redact_url(url)
    )))
}

/// Builds the state from options, ready for [`crate::app`].
pub async fn build_state(opts: &ServeOptions) -> Result<AppState, ServeError> {
    Ok(build_state_with(opts).await?.0)
}

async fn build_state_with(
    opts: &ServeOptions,
) -> Result<(AppState, Option<S3ObjectStore>), ServeError> {
    // Owner-only from the first start (the database holds every auth token); an older,
    // world-readable deployment is tightened here with a warning.
    mediaseal_store::perms::secure_dir(&opts.data_dir)
        .map_err(|e| file_error(&opts.data_dir, e))?;
    let meta = open_meta(&opts.data_dir, opts.database.as_deref()).await?;
    let (objects, s3) = open_objects_with(
        &opts.data_dir,
        opts.objects.as_deref(),
        opts.s3_credentials.as_ref(),
    )
    .await?;
    // The secret files under the data directory are 0600 (created so; an older deployment's
    // tightened with a warning). Files given by path are the operator's (they may be on a
    // read-only mount) and are left as they are.
    let default_key = opts.data_dir.join("at-rest-key.pem");
    let default_signing = opts.data_dir.join("url-signing.key");
    for path in [&default_key, &default_signing] {
        mediaseal_store::perms::secure_existing_file(path).map_err(|e| file_error(path, e))?;
    }
    let key_path = opts.at_rest_key.clone().unwrap_or(default_key);
    let at_rest = load_or_create_at_rest_key(&key_path)?;
    let sign_path = opts.url_signing_key.clone().unwrap_or(default_signing);
    let signing = load_or_create_signing_key(&sign_path)?;
    let mut config = Config::new(signing);
    config.public_url = opts.public_url.clone();
    config.tls = opts.tls_cert.is_some();
    config.service.callback_retry_base = opts.callback_retry_base;
    config.service.orphan_age = opts.orphan_age;
    config.service.max_upload_bytes = opts.max_upload_bytes;
    config.service.max_concurrent_uploads = opts.max_concurrent_uploads;
    config.service.webhook_policy =
        mediaseal_service::egress::WebhookPolicy::allowing(opts.allow_webhook_networks.clone());
    config.media_from_store = opts.media_from_store.unwrap_or(s3.is_some());
    config.compose = opts.compose;
    config.sip_domain_suffix = opts.sip_domain_suffix.clone();
    config.turn = opts.turn.clone();
    config.room_node = room_node_name(opts.listen);
    let speech = speech_engine(opts.asr.as_deref(), opts.asr_sidecars).await?;
    Ok((
        AppState::new(meta, objects, at_rest, config).with_speech(speech),
        s3,
    ))
}

/// This node's name in `rooms.node`: the host name and the listen address, which stay the
/// same when the node restarts and differ between nodes (two processes cannot listen on one
/// address of one host).
fn room_node_name(listen: SocketAddr) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}/{listen}")
}

/// The speech engine `--asr` names, started; without one (or `auto`), the best installed one
/// at the first transcript.
async fn speech_engine(
    spec: Option<&str>,
    sidecars: Option<u32>,
) -> Result<mediaseal_intelligence::Speech, ServeError> {
    use mediaseal_intelligence::Speech;
    use mediaseal_intelligence::asr::{EngineSizing, EngineSpec, SpecError, select_engine_sized};
    let sizing = EngineSizing {
        whisper_sidecars: sidecars,
    };
    let spec: EngineSpec = match spec {
        None => return Ok(Speech::auto_sized(sizing)),
        Some(s) => s
            .parse()
            .map_err(|e: SpecError| ServeError::Config(format!("--asr: {e}")))?,
    };
    if spec == EngineSpec::Auto {
        return Ok(Speech::auto_sized(sizing));
    }
    // Starting Whisper loads its model: blocking work.
    let engine = tokio::task::spawn_blocking(move || select_engine_sized(&spec, None, sizing))
        .await
        .map_err(|e| ServeError::Config(format!("--asr: the engine could not be started: {e}")))?
        .map_err(|e| ServeError::Config(format!("--asr: {e}")))?;
    tracing::info!(
        engine = engine.id(),
        at_once = engine.parallelism(),
        "speech engine started"
    );
    Ok(Speech::given(engine))
}

/// Starts this node's background jobs in `runner`: the composition worker, the outbox, the
/// sweepers (every `sweep_every`), and, on S3, the sweep of multipart uploads a crashed node left
/// open.
pub fn start_jobs(
    runner: &mut Runner,
    state: &AppState,
    s3: Option<S3ObjectStore>,
    sweep_every: Duration,
) {
    state.start_composer(runner);
    let services = state.services.clone();
    runner.spawn("outbox", move |cancel| {
        mediaseal_service::outbox::run(services, cancel)
    });
    let swept = state.clone();
    runner.every("sweeper", sweep_every, move || {
        let state = swept.clone();
        async move {
            mediaseal_service::sweep::sweep_once(&state.services).await;
            mediaseal_service::sweep::sweep_track_reservations(&state.services).await;
            crate::recover_transcripts(&state, false).await;
        }
    });
    if let Some(store) = s3 {
        // Any node may do it: an upload older than `orphan_age` belongs to no live request (a
        // request that slow would have its reservation swept anyway).
        let orphan_age = state.services.config.orphan_age;
        runner.every("s3-uploads", sweep_every, move || {
            let store = store.clone();
            async move {
                match store.abort_stale_uploads(orphan_age).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(uploads = n, "aborted multipart uploads left by a crash")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "sweeper: listing multipart uploads failed")
                    }
                }
            }
        });
    }
}

/// What stops something started beside the HTTP server (see [`run_with`]).
pub type Sidecar = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs the server until SIGINT or SIGTERM.
pub async fn run(opts: ServeOptions) -> Result<(), ServeError> {
    run_with(opts, |_| async { Ok(None) }).await
}

/// As [`run`], with `sidecar` started on the built state before the HTTP side (the CLI starts
/// the SIP edge so, keeping this crate free of it); what it returns is awaited once the HTTP
/// server has stopped.
pub async fn run_with<F, Fut>(opts: ServeOptions, sidecar: F) -> Result<(), ServeError>
where
    F: FnOnce(AppState) -> Fut,
    Fut: Future<Output = Result<Option<Sidecar>, ServeError>>,
{
    let (state, s3) = build_state_with(&opts).await?;
    // Room Access Tokens are verified with the secrets of the API keys this service minted.
    if !crate::access_token_keys::install(&state) {
        tracing::warn!("room Access Tokens will all be refused: API key secrets cannot be opened");
    }
    // Temporary object files a crash left behind go before the first request (the sweeper job
    // repeats this every `sweep_every`).
    mediaseal_service::sweep::sweep_partial_objects(&state.services).await;
    // Transcripts whose job died with the previous process run again (or fail) now.
    crate::recover_transcripts(&state, true).await;
    // Rooms whose processes died with this node's previous process, before it runs new ones.
    match crate::room_processes::fail_abandoned_rooms(&state).await {
        Ok(0) => {}
        Ok(n) => {
            tracing::warn!(rooms = n, node = %state.config.room_node, "rooms left in progress by this node's previous process are now failed");
        }
        Err(e) => {
            tracing::error!(error = ?e, "rooms left in progress by this node's previous process could not be failed");
        }
    }
    if let Some(config) =
        crate::room_processes::host_config(&opts.rooms).map_err(ServeError::Config)?
    {
        tracing::info!(worker = %config.worker.display(), max_rooms = config.max_rooms, "group rooms run in room worker processes");
        crate::room_processes::install_room_host(&state, config);
    }
    let stop_sidecar = sidecar(state.clone()).await?;
    let limits = &opts.limits;
    let wanted_fds = crate::listener::fd_budget(limits);
    let fds = crate::listener::raise_fd_limit(wanted_fds);
    if fds < wanted_fds {
        tracing::warn!(
            limit = fds,
            wanted = wanted_fds,
            "the open-file limit is below what --max-connections needs: raise it (LimitNOFILE=, \
             ulimit -n) or lower --max-connections"
        );
    }
    let mut runner = Runner::new();
    start_jobs(&mut runner, &state, s3, opts.sweep_every);
    let router = guard_bodies(crate::app(state.clone()), limits);
    let handle = axum_server::Handle::new();
    let metrics_server = axum_server::Handle::new();
    let (shutdown, metrics_shutdown) = (handle.clone(), metrics_server.clone());
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        metrics_shutdown.shutdown();
        shutdown.graceful_shutdown(Some(Duration::from_secs(10)));
    });
    if let Some(addr) = opts.metrics_listen {
        serve_metrics(addr, metrics_server);
    }
    let addr = opts.listen;
    tracing::info!(
        %addr,
        tls = opts.tls_cert.is_some(),
        metadata = state.meta.backend(),
        objects = state.objects.backend(),
        node = %state.services.config.node_id,
        max_connections = limits.max_connections,
        max_connections_per_client = limits.max_connections_per_client,
        "mediaseal listening"
    );
    let gate = ConnectionGate::new(limits.max_connections, limits.max_connections_per_client);
    let governed = GovernedAcceptor::new(
        axum_server::accept::DefaultAcceptor::new(),
        gate,
        limits.idle_timeout,
    );
    let service = router.into_make_service();
    let served = match (&opts.tls_cert, &opts.tls_key) {
        (Some(cert), Some(key)) => {
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(|e| file_error(cert, e))?;
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(tls)
                .handshake_timeout(limits.tls_handshake_timeout)
                .acceptor(governed);
            let mut server = axum_server::bind(addr).acceptor(acceptor).handle(handle);
            apply_http_limits(server.http_builder(), limits);
            server.serve(service).await
        }
        (None, None) => {
            let mut server = axum_server::bind(addr).acceptor(governed).handle(handle);
            apply_http_limits(server.http_builder(), limits);
            server.serve(service).await
        }
        _ => {
            return Err(ServeError::Config(
                "--tls-cert and --tls-key go together".to_owned(),
            ));
        }
    }
    .map_err(|e| ServeError::Listen {
        addr,
        reason: e.to_string(),
    });
    if let Some(stop) = stop_sidecar {
        stop.await;
    }
    runner.shutdown(Duration::from_secs(10)).await;
    served
}

/// Every request body of `router` must keep up the minimum upload rate.
pub fn guard_bodies(router: axum::Router, limits: &ConnectionLimits) -> axum::Router {
    let (rate, grace) = (limits.min_upload_rate, limits.upload_grace);
    if rate == 0 {
        return router;
    }
    router.layer(tower::util::MapRequestLayer::new(
        move |request: axum::extract::Request| {
            request.map(|body| axum::body::Body::new(RateGuardedBody::new(body, rate, grace)))
        },
    ))
}

fn apply_http_limits(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    limits: &ConnectionLimits,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .max_concurrent_streams(64);
}

/// Serves `/metrics` alone on `addr` until `handle` shuts it down.
fn serve_metrics(addr: SocketAddr, handle: axum_server::Handle<SocketAddr>) {
    let app = crate::metrics_app();
    tracing::info!(%addr, "metrics listening");
    tokio::spawn(async move {
        if let Err(e) = axum_server::bind(addr)
            .handle(handle)
            .serve(app.into_make_service())
            .await
        {
            tracing::error!(%addr, error = %e, "the metrics listener stopped");
        }
    });
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            let _ = ctrl_c.await;
            return;
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
}
