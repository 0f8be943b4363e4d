//! Shared state of the HTTP layer: the service layer it calls, the at-rest reader it serves
//! decrypted media with, the composer it admits compositions through, and its own settings.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mediaseal_compose::Composer;
/// Bounds on this node's compositions (wall time, output size, workers, per-account cap).
pub use mediaseal_compose::Limits as ComposeLimits;
use mediaseal_crypto::PrivateKey;
use mediaseal_intelligence::{Intelligence, Speech};
use mediaseal_readback::AtRestReader;
use mediaseal_service::clock::SystemClock;
use mediaseal_service::runner::Runner;
use mediaseal_service::{ServiceConfig, Services, SinkFactory};
use mediaseal_store::{MetadataStore, ObjectStore};

/// Settings that do not change while the service runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Base URL clients reach this service at, e.g. `https://media.example.com`; when `None`,
    /// taken from each request's `Host` header.
    pub public_url: Option<String>,
    /// The `ffmpeg` to run for MP3 transcoding and compositions, if present.
    pub ffmpeg: Option<PathBuf>,
    /// Secret for signing `/Media` URLs (32 bytes).
    pub url_signing_key: Arc<[u8; 32]>,
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
    /// The service layer's settings (callbacks, sweeping, the node's name).
    pub service: ServiceConfig,
    /// Bounds on the compositions this node makes.
    pub compose: ComposeLimits,
    /// Every SIP Domain name must end with this (`--sip-domain-suffix`, e.g.
    /// `sip.example.com`); `None`: any DNS name.
    pub sip_domain_suffix: Option<String>,
    /// STUN/TURN URLs and the coturn shared secret behind `Tokens.json` (`--turn-url`,
    /// `--turn-secret-file`); default: none, and `Tokens.json` answers 503.
    pub turn: crate::TurnConfig,
    /// The name this node's group rooms are recorded under (`rooms.node`), so that the node,
    /// started again after dying, fails the rooms it left in progress and no other node's.
    /// Must stay the same across restarts and differ between nodes sharing a database: `serve`
    /// uses `HOSTNAME/LISTEN-ADDRESS`. Default: this process's node id (fine for one process).
    pub room_node: String,
}

impl Config {
    /// Defaults, with the URL-signing secret.
    pub fn new(url_signing_key: [u8; 32]) -> Self {
        let service = ServiceConfig::default();
        Self {
            public_url: None,
            ffmpeg: find_in_path("ffmpeg"),
            url_signing_key: Arc::new(url_signing_key),
            tls: false,
            scratch_dir: std::env::temp_dir(),
            media_from_store: false,
            compose: ComposeLimits::default(),
            sip_domain_suffix: None,
            turn: crate::TurnConfig::default(),
            room_node: service.node_id.clone(),
            service,
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
    /// The service layer.
    pub services: Services,
    /// Metadata (the service layer's store).
    pub meta: Arc<dyn MetadataStore>,
    /// Sealed objects (the service layer's store).
    pub objects: Arc<dyn ObjectStore>,
    /// Opens at-rest objects: this process serves them decrypted.
    pub reader: AtRestReader,
    /// Admits and makes compositions.
    pub composer: Composer,
    /// Transcripts and the speech engine they are made with.
    pub intelligence: Intelligence,
    /// Settings.
    pub config: Arc<Config>,
    /// Seals SIP credential passwords (derived from the at-rest key); `None` only if the key
    /// could not be encoded, and then SIP credentials cannot be created.
    pub sip_passwords: Option<Arc<mediaseal_service::sip_passwords::SipPasswordKey>>,
    /// Seals API key secrets (derived from the at-rest key), kept so room Access Tokens
    /// (HS256) can be verified; `None` only if the key could not be encoded, and then API keys
    /// cannot be created.
    pub api_key_secrets: Option<Arc<mediaseal_service::sealed::SealingKey>>,
    /// The calls this node's SIP edge carries right now, installed once by the sidecar that
    /// starts the edge ([`Self::set_live_calls`]); empty without one, and then changing a
    /// live call through the API is refused.
    pub live_calls: Arc<std::sync::OnceLock<Arc<dyn mediaseal_service::calls::LiveCalls>>>,
    /// The media processes of group rooms, installed once ([`Self::set_room_processes`], by
    /// `serve` through [`crate::room_processes::install_room_host`]); without them a room is
    /// only a row.
    pub room_processes: Arc<std::sync::OnceLock<Arc<dyn crate::room_processes::RoomProcesses>>>,
    /// Where room Access Tokens find their API key secrets, installed once
    /// ([`Self::set_access_token_keys`]); without it every token is refused (20107).
    pub access_token_keys:
        Arc<std::sync::OnceLock<Arc<dyn crate::room_processes::AccessTokenKeys>>>,
    /// Live WHIP and WHEP sessions (who may `DELETE` them).
    pub(crate) whip_sessions: Arc<crate::api::video::whip::WhipSessions>,
    /// This node's peer-to-peer rooms (their signalling relays).
    pub(crate) mesh_rooms: Arc<crate::api::video::mesh::MeshRooms>,
    /// Subscribe rules set through this node, per room participant.
    pub(crate) subscribe_rules: Arc<crate::api::video::subscribe_rules::SubscribeRulesBook>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("services", &self.services)
            .field("reader", &self.reader)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Assembles the state. Starts nothing: the process starts the background jobs
    /// ([`crate::serve::start_jobs`]).
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
        let sinks = SinkFactory::new(objects.clone(), at_rest.public_key().clone());
        let services = Services::new(
            meta.clone(),
            sinks,
            Arc::new(SystemClock),
            config.service.clone(),
        );
        let sip_passwords = match mediaseal_service::sip_passwords::SipPasswordKey::derive(&at_rest)
        {
            Ok(k) => Some(Arc::new(k)),
            Err(e) => {
                tracing::error!(error = %e, "SIP credentials are unavailable");
                None
            }
        };
        let api_key_secrets = match mediaseal_service::sealed::SealingKey::derive(
            &at_rest,
            mediaseal_service::sealed::Purpose::ApiKeySecrets,
        ) {
            Ok(k) => Some(Arc::new(k)),
            Err(e) => {
                tracing::error!(error = %e, "API keys cannot be created");
                None
            }
        };
        let reader = AtRestReader::new(objects.clone(), Arc::new(at_rest));
        let composer = Composer::new(
            services.clone(),
            reader.clone(),
            config.ffmpeg.clone(),
            config.scratch_dir.clone(),
        )
        .with_limits(config.compose);
        // The best installed speech engine, picked at the first transcript (`serve --asr`
        // chooses one at start instead: [`Self::with_speech`]).
        let intelligence = Intelligence::new(services.clone(), Speech::auto());
        Self {
            services,
            meta,
            objects,
            reader,
            composer,
            intelligence,
            config: Arc::new(config),
            sip_passwords,
            api_key_secrets,
            live_calls: Arc::default(),
            whip_sessions: Arc::default(),
            mesh_rooms: Arc::default(),
            subscribe_rules: Arc::default(),
            room_processes: Arc::default(),
            access_token_keys: Arc::default(),
        }
    }

    /// Installs the SIP edge's live calls in this state and every clone of it (the HTTP
    /// server's too). A second edge is refused: `false`.
    pub fn set_live_calls(&self, calls: Arc<dyn mediaseal_service::calls::LiveCalls>) -> bool {
        self.live_calls.set(calls).is_ok()
    }

    /// The SIP edge's live calls, when one runs in this process.
    pub fn live_calls(&self) -> Option<&Arc<dyn mediaseal_service::calls::LiveCalls>> {
        self.live_calls.get()
    }

    /// Installs the room processes in this state and every clone of it. A second is refused:
    /// `false`.
    pub fn set_room_processes(
        &self,
        processes: Arc<dyn crate::room_processes::RoomProcesses>,
    ) -> bool {
        self.room_processes.set(processes).is_ok()
    }

    /// Installs the API key secrets room Access Tokens are verified with, in this state and
    /// every clone of it. A second is refused: `false`.
    pub fn set_access_token_keys(
        &self,
        keys: Arc<dyn crate::room_processes::AccessTokenKeys>,
    ) -> bool {
        self.access_token_keys.set(keys).is_ok()
    }

    /// The room processes, when installed.
    pub fn room_processes(&self) -> Option<&Arc<dyn crate::room_processes::RoomProcesses>> {
        self.room_processes.get()
    }

    /// The same state, transcribing with `speech`.
    pub fn with_speech(mut self, speech: Speech) -> Self {
        self.intelligence = Intelligence::new(self.services.clone(), speech);
        self
    }

    /// Starts the composition worker of this node in `runner`. `serve` adds the outbox and the
    /// sweepers ([`crate::serve::start_jobs`]); tests that drive [`crate::app`] start only this.
    pub fn start_composer(&self, runner: &mut Runner) {
        let composer = self.composer.clone();
        runner.spawn("compositions", move |cancel| composer.run(cancel));
    }
}
