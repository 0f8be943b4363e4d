//! The IO shell of mediaseal's SIP edge.
//!
//! [`VoiceEdge::start`] binds the SIP transports (UDP and TCP on `sip_listen`, TLS on
//! `sip_tls_listen`), starts the relay threads and runs the sans-IO call core
//! ([`mediaseal_call::CallCore`]) in one tokio task. Everything outside the edge comes in
//! through the [`Seams`]: SIP Domains, webhooks, the call recorder and the call ledger, so
//! the REST resources and the sealing recorder can plug in without this crate knowing the
//! store.
//!
//! | part | where | how |
//! |---|---|---|
//! | SIP over UDP, TCP, TLS | the `edge` tasks | tokio sockets; TLS by rustls on aws-lc-rs ([`tls`]) |
//! | transactions, dialogs, calls | one task | [`mediaseal_call::CallCore`], timers from `poll_timeout` |
//! | webhooks | tasks | [`HttpWebhooks`]: reqwest, form-encoded, `X-Twilio-Signature` |
//! | `<Say>` | tasks | [`speech::Espeak`]: `espeak-ng` over pipes, resampled to 8 kHz |
//! | media relay | OS threads | `mio` epoll per thread, sockets owned by the thread, [`mediaseal_call::RelayCall`] per call |
//! | recording | tasks | bounded queue from the relay, [`mediaseal_call::recording::Mixer`], the [`CallRecorder`] sink ([`SealedCallRecorder`]: sealed through the service layer) |
//!
//! `docs/VOICE.md` in the repository has the call flow, threading, counters and seams.

#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod batch;
mod edge;
mod live;
pub mod metrics;
mod recorder;
mod relay;
mod sealed;
pub mod seams;
pub mod speech;
pub mod stored;
pub mod tls;
pub mod webhook;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mediaseal_call::{CallCore, CoreConfig, CoreError};
use mediaseal_twiml::RejectStatus;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::{TlsAcceptor, TlsConnector};

pub use live::EdgeLiveCalls;
pub use mediaseal_sip::auth::DigestAlgorithm;
pub use metrics::{MetricsSnapshot, VoiceMetrics};
pub use relay::{MediaRelay, RealtimePriority};
pub use sealed::SealedCallRecorder;
pub use seams::{
    AuthTokens, CallLedger, CallRecorder, DirectoryError, DomainDirectory, MemoryDirectory,
    MemoryLedger, MemoryRecorder, MemoryTokens, RecorderError, RecordingSink, StoredRecording,
    Webhooks,
};
pub use stored::{LoggingLedger, StoreDirectory, StoreLedger, StoreTokens};
pub use webhook::HttpWebhooks;
/// The types the [`CallRecorder`] seam speaks, for implementations outside this crate.
pub use {mediaseal_call::RecordingRequest, mediaseal_twiml::RecordingInfo};

use crate::edge::{Edge, EdgeEvent};
use crate::relay::RelayPool;
use crate::speech::Espeak;

/// How the edge is set up (the `mediaseal serve --sip-*` flags).
#[derive(Debug, Clone)]
pub struct VoiceConfig {
    /// UDP and TCP listening address (`--sip-listen`); port 0 picks one.
    pub sip_listen: Option<SocketAddr>,
    /// TLS listening address (`--sip-tls-listen`).
    pub sip_tls_listen: Option<SocketAddr>,
    /// Certificate chain, PEM (`--sip-tls-cert`).
    pub sip_tls_cert: Option<PathBuf>,
    /// Private key, PEM (`--sip-tls-key`).
    pub sip_tls_key: Option<PathBuf>,
    /// Trust anchors for outbound TLS, PEM (`--sip-ca`); system roots when absent.
    pub sip_ca: Option<PathBuf>,
    /// Every domain name ends with this (`--sip-domain-suffix`).
    pub domain_suffix: String,
    /// RTP ports (`--rtp-ports LOW-HIGH`).
    pub rtp_ports: RangeInclusive<u16>,
    /// The address put in SDP and bound by the relay (`--media-address`).
    pub media_address: IpAddr,
    /// The address put in Via and Contact (default: `media_address`).
    pub sip_address: Option<IpAddr>,
    /// Relay threads (default 2).
    pub relay_threads: usize,
    /// `SCHED_FIFO` priority of the relay threads (`--rtp-priority`); `None`: normal scheduling.
    pub relay_priority: Option<RealtimePriority>,
    /// Tap frames queued per recording before frames are dropped (default 500: 5 s of a
    /// two-party call).
    pub recorder_queue: usize,
    /// Webhook and `<Play>` download timeout (default 15 s, Twilio's).
    pub webhook_timeout: Duration,
    /// The speech synthesiser (default `espeak-ng`).
    pub espeak: PathBuf,
    /// `Server`/`User-Agent` and the warn-agent of `Warning` headers.
    pub agent: String,
    /// SIP codes for `<Reject>`.
    pub reject_status: RejectStatus,
    /// The digest challenges of a 401, in order (`--sip-digest`; default MD5 only).
    pub digest_algorithms: Vec<DigestAlgorithm>,
    /// Where webhooks and `<Play>` downloads may go (`--allow-webhook-network`); `None` leaves
    /// destinations unchecked (tests with loopback receivers only).
    pub webhook_policy: Option<mediaseal_service::egress::WebhookPolicy>,
}

impl VoiceConfig {
    /// Defaults: no listeners, ports 20000–29999, two relay threads.
    pub fn new(domain_suffix: &str, media_address: IpAddr) -> Self {
        Self {
            sip_listen: None,
            sip_tls_listen: None,
            sip_tls_cert: None,
            sip_tls_key: None,
            sip_ca: None,
            domain_suffix: domain_suffix.to_owned(),
            rtp_ports: 20000..=29999,
            media_address,
            sip_address: None,
            relay_threads: 2,
            relay_priority: None,
            recorder_queue: 500,
            webhook_timeout: Duration::from_secs(15),
            espeak: PathBuf::from("espeak-ng"),
            agent: "mediaseal".to_owned(),
            reject_status: RejectStatus::default(),
            digest_algorithms: vec![DigestAlgorithm::Md5],
            webhook_policy: None,
        }
    }
}

/// What the edge needs from the rest of mediaseal.
#[derive(Clone)]
pub struct Seams {
    /// SIP Domains.
    pub directory: Arc<dyn DomainDirectory>,
    /// Webhook sender (normally [`HttpWebhooks`]).
    pub webhooks: Arc<dyn Webhooks>,
    /// Call recordings.
    pub recorder: Arc<dyn CallRecorder>,
    /// Call status changes.
    pub ledger: Arc<dyn CallLedger>,
}

impl std::fmt::Debug for Seams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seams").finish_non_exhaustive()
    }
}

/// Why the edge could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Neither `sip_listen` nor `sip_tls_listen` is set.
    #[error("no SIP listener configured: give --sip-listen and/or --sip-tls-listen")]
    NoListener,
    /// TLS listening without a certificate and key.
    #[error("--sip-tls-listen needs --sip-tls-cert and --sip-tls-key")]
    TlsFilesMissing,
    /// A socket could not be bound.
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// UDP, TCP or TLS.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// TLS files or roots.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The HTTP client.
    #[error(transparent)]
    Http(#[from] webhook::ClientError),
    /// The call core.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The relay threads.
    #[error("cannot start the media relay threads: {0}")]
    Relay(std::io::Error),
}

/// The SIP edge (see the crate docs).
#[derive(Debug)]
pub struct VoiceEdge;

/// A running edge: its addresses, counters, and shutdown.
#[derive(Debug)]
pub struct VoiceEdgeHandle {
    metrics: Arc<VoiceMetrics>,
    sip_addr: Option<SocketAddr>,
    tls_addr: Option<SocketAddr>,
    events: mpsc::UnboundedSender<EdgeEvent>,
    main: Option<JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
}

async fn bind_udp_tcp(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), StartError> {
    // UDP and TCP share the port number; with port 0, retry until both are free.
    for _ in 0..20 {
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|source| StartError::Bind {
                addr,
                what: "UDP",
                source,
            })?;
        let local = udp.local_addr().map_err(|source| StartError::Bind {
            addr,
            what: "UDP",
            source,
        })?;
        match TcpListener::bind(local).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(source) if addr.port() != 0 => {
                return Err(StartError::Bind {
                    addr,
                    what: "TCP",
                    source,
                });
            }
            Err(_) => continue,
        }
    }
    Err(StartError::Bind {
        addr,
        what: "TCP",
        source: std::io::Error::new(std::io::ErrorKind::AddrInUse, "no common UDP/TCP port"),
    })
}

impl VoiceEdge {
    /// Binds the listeners, starts the relay threads and the signalling task.
    pub async fn start(config: VoiceConfig, seams: Seams) -> Result<VoiceEdgeHandle, StartError> {
        if config.sip_listen.is_none() && config.sip_tls_listen.is_none() {
            return Err(StartError::NoListener);
        }
        tls::install_default_provider();
        let mut tasks = Vec::new();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (notices_tx, notices_rx) = mpsc::unbounded_channel();
        let (finished_tx, finished_rx) = mpsc::unbounded_channel();

        let mut udp = None;
        let mut sip_addr = None;
        if let Some(addr) = config.sip_listen {
            let (u, t) = bind_udp_tcp(addr).await?;
            sip_addr = u.local_addr().ok();
            let u = Arc::new(u);
            tasks.push(tokio::spawn(edge::udp_reader(u.clone(), events_tx.clone())));
            tasks.push(tokio::spawn(edge::tcp_acceptor(t, events_tx.clone())));
            udp = Some(u);
        }
        let mut tls_addr = None;
        if let Some(addr) = config.sip_tls_listen {
            let (Some(cert), Some(key)) = (&config.sip_tls_cert, &config.sip_tls_key) else {
                return Err(StartError::TlsFilesMissing);
            };
            let server = tls::server_config(cert, key)?;
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind {
                    addr,
                    what: "TLS",
                    source,
                })?;
            tls_addr = listener.local_addr().ok();
            tasks.push(tokio::spawn(edge::tls_acceptor(
                listener,
                TlsAcceptor::from(server),
                events_tx.clone(),
            )));
        }
        let connector = match tls::client_config(config.sip_ca.as_deref()) {
            Ok(c) => Some(TlsConnector::from(c)),
            Err(e) if config.sip_ca.is_some() => return Err(e.into()),
            Err(e) => {
                tracing::warn!(error = %e, "outbound SIP TLS disabled");
                None
            }
        };
        let sip_address = config.sip_address.unwrap_or(config.media_address);
        let mut core_config = CoreConfig::new(
            sip_address,
            sip_addr.map_or(5060, |a| a.port()),
            tls_addr.map_or(5061, |a| a.port()),
            &config.domain_suffix,
        );
        core_config.media_address = config.media_address;
        core_config.rtp_ports = config.rtp_ports.clone();
        core_config.agent = config.agent.clone();
        core_config.reject_status = config.reject_status;
        core_config.digest_algorithms = config.digest_algorithms.clone();
        let core = CallCore::new(core_config, Instant::now())?;
        let metrics = Arc::new(VoiceMetrics::default());
        let relay = RelayPool::start(
            config.relay_threads,
            config.media_address,
            &metrics,
            &notices_tx,
            config.relay_priority,
        )
        .map_err(StartError::Relay)?;
        let http = webhook::AudioClient::new(
            webhook::http_client_guarded(config.webhook_timeout, config.webhook_policy.as_ref())?,
            config.webhook_policy.clone(),
        );
        let (ledger_tx, ledger_rx) = mpsc::unbounded_channel();
        tokio::spawn(edge::ledger_writer(seams.ledger.clone(), ledger_rx));
        let edge = Edge {
            core,
            udp,
            conns: HashMap::new(),
            tls_names: HashMap::new(),
            connector,
            events: events_tx.clone(),
            finished: finished_tx,
            seams,
            ledger_updates: ledger_tx,
            relay,
            metrics: metrics.clone(),
            http,
            speech: Espeak::new(config.espeak.clone(), Duration::from_secs(20)),
            recorder_queue: config.recorder_queue,
            play_generation: HashMap::new(),
            recordings: HashMap::new(),
            live: live::LiveState::default(),
        };
        let main = tokio::spawn(edge.run(events_rx, notices_rx, finished_rx));
        let publisher = metrics.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                publisher.publish();
            }
        }));
        tracing::info!(sip = ?sip_addr, tls = ?tls_addr, "SIP edge listening");
        Ok(VoiceEdgeHandle {
            metrics,
            sip_addr,
            tls_addr,
            events: events_tx,
            main: Some(main),
            tasks,
        })
    }
}

impl VoiceEdgeHandle {
    /// The UDP/TCP address.
    pub fn sip_addr(&self) -> Option<SocketAddr> {
        self.sip_addr
    }

    /// The TLS address.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// The live-call seam of this edge, for the REST API (`POST …/Calls/{CA}.json`).
    pub fn live_calls(&self) -> EdgeLiveCalls {
        EdgeLiveCalls {
            events: self.events.clone(),
        }
    }

    /// The counters now.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }

    /// Stops listening, ends the signalling task and the relay threads.
    pub async fn shutdown(mut self) {
        self.stop();
        if let Some(main) = self.main.take() {
            let _ = main.await;
        }
    }

    fn stop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        let _ = self.events.send(EdgeEvent::Shutdown);
    }
}

impl Drop for VoiceEdgeHandle {
    fn drop(&mut self) {
        self.stop();
    }
}
