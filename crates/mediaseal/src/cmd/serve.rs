//! `mediaseal serve`: the service, on the embedded store unless told otherwise.
//!
//! Settings come from, strongest first: flags, `MEDIASEAL_*` environment variables, the TOML
//! file named by `--config` (same names as the flags, with `_` for `-`), built-in defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use mediaseal_server::listener::ConnectionLimits;
use mediaseal_server::serve::{S3Credentials, ServeOptions, run_with};
use serde::Deserialize;

use crate::error::CliError;

/// Options of `mediaseal serve`. Every flag can also come from the environment variable shown,
/// or from the `--config` file.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// TOML file with any of the settings below (keys as the flag names with `_`, e.g.
    /// `orphan_age_secs = 600`); flags and environment variables override it.
    #[arg(long, value_name = "FILE", env = "MEDIASEAL_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Data directory: the embedded database, the sealed objects and the service's own keys
    /// [default: mediaseal-data].
    #[arg(long, value_name = "DIR", env = "MEDIASEAL_DATA")]
    pub(crate) data: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR", env = "MEDIASEAL_LISTEN")]
    pub(crate) listen: Option<SocketAddr>,
    /// Base URL clients use to reach this server (for absolute URLs in responses); default: the
    /// request's Host header.
    #[arg(long, value_name = "URL", env = "MEDIASEAL_PUBLIC_URL")]
    pub(crate) public_url: Option<String>,
    /// TLS certificate chain (PEM): serve HTTPS.
    #[arg(long, value_name = "PEM", env = "MEDIASEAL_TLS_CERT")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "PEM", env = "MEDIASEAL_TLS_KEY")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Metadata database: sqlite://PATH or postgres://USER:PASS@HOST:PORT/DB (default: SQLite in
    /// --data). Nodes sharing one PostgreSQL database serve the same accounts and recordings.
    #[arg(long, value_name = "URL", env = "MEDIASEAL_DATABASE")]
    pub(crate) database: Option<String>,
    /// Object store: file:///PATH or s3://BUCKET[/PREFIX]?endpoint=URL&region=NAME (default: a
    /// directory in --data). S3 credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the
    /// s3_* settings.
    #[arg(long, value_name = "URL", env = "MEDIASEAL_OBJECTS")]
    pub(crate) objects: Option<String>,
    /// S3 access key id (instead of AWS_ACCESS_KEY_ID).
    #[arg(long, value_name = "ID", env = "MEDIASEAL_S3_ACCESS_KEY_ID")]
    pub(crate) s3_access_key_id: Option<String>,
    /// File holding the S3 secret access key (instead of AWS_SECRET_ACCESS_KEY); the config file
    /// may also hold it directly as `s3_secret_access_key`.
    #[arg(long, value_name = "FILE", env = "MEDIASEAL_S3_SECRET_ACCESS_KEY_FILE")]
    pub(crate) s3_secret_access_key_file: Option<PathBuf>,
    /// The service's at-rest key (PEM, mode 0600; created if missing). Nodes sharing storage
    /// must share it. Default: DATA/at-rest-key.pem.
    #[arg(long, value_name = "PEM", env = "MEDIASEAL_AT_REST_KEY")]
    pub(crate) at_rest_key: Option<PathBuf>,
    /// Secret for signing /Media URLs (32 bytes; created if missing). Nodes sharing storage must
    /// share it. Default: DATA/url-signing.key.
    #[arg(long, value_name = "FILE", env = "MEDIASEAL_URL_SIGNING_KEY")]
    pub(crate) url_signing_key: Option<PathBuf>,
    /// First delay before retrying a failed callback, in milliseconds (doubles each try)
    /// [default: 2000].
    #[arg(long, value_name = "MS", env = "MEDIASEAL_CALLBACK_RETRY_MS")]
    pub(crate) callback_retry_ms: Option<u64>,
    /// How often to sweep unfinished uploads and orphaned objects, in seconds [default: 300].
    #[arg(long, value_name = "SECS", env = "MEDIASEAL_SWEEP_SECS")]
    pub(crate) sweep_secs: Option<u64>,
    /// Age after which an unfinished upload counts as crashed, in seconds [default: 3600].
    #[arg(long, value_name = "SECS", env = "MEDIASEAL_ORPHAN_AGE_SECS")]
    pub(crate) orphan_age_secs: Option<u64>,
    /// Largest recording or track upload accepted, in bytes; a larger one is answered 413 and
    /// nothing of it is stored [default: 2147483648 (2 GiB)].
    #[arg(long, value_name = "BYTES", env = "MEDIASEAL_MAX_UPLOAD_BYTES")]
    pub(crate) max_upload_bytes: Option<u64>,
    /// Uploads one account may have in progress on this node at once; one more is answered 429
    /// [default: 32].
    #[arg(long, value_name = "N", env = "MEDIASEAL_MAX_CONCURRENT_UPLOADS")]
    pub(crate) max_concurrent_uploads: Option<usize>,
    /// Serve Prometheus metrics on this separate address (e.g. 127.0.0.1:9090); the API
    /// listener never serves them [default: no metrics listener].
    #[arg(long, value_name = "ADDR", env = "MEDIASEAL_METRICS_LISTEN")]
    pub(crate) metrics_listen: Option<SocketAddr>,
    /// Speech recognition engine for transcripts: whisper, pocketsphinx, or an http(s):// URL of
    /// an OpenAI-compatible transcription server [default: whisper when its environment is
    /// installed, else pocketsphinx when installed, picked at the first transcript].
    #[arg(long, value_name = "ENGINE", env = "MEDIASEAL_ASR")]
    pub(crate) asr: Option<String>,
    /// Whisper recognisers kept warm on this node, each one transcription at a time; the cores
    /// are shared out between them [default: one per core, at most 4].
    #[arg(long, value_name = "N", env = "MEDIASEAL_ASR_SIDECARS", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub(crate) asr_sidecars: Option<u32>,
    /// Connections this node holds at once; more are closed on accept [default: 4096].
    #[arg(long, value_name = "N", env = "MEDIASEAL_MAX_CONNECTIONS")]
    pub(crate) max_connections: Option<usize>,
    /// Connections one client address may hold at once [default: 256].
    #[arg(long, value_name = "N", env = "MEDIASEAL_MAX_CONNECTIONS_PER_CLIENT")]
    pub(crate) max_connections_per_client: Option<usize>,
    /// Seconds a client has to send a request's headers (and to finish a TLS handshake)
    /// [default: 10].
    #[arg(long, value_name = "SECS", env = "MEDIASEAL_HEADER_TIMEOUT_SECS")]
    pub(crate) header_timeout_secs: Option<u64>,
    /// Seconds a connection may go without a byte moving before it is closed [default: 60].
    #[arg(long, value_name = "SECS", env = "MEDIASEAL_IDLE_TIMEOUT_SECS")]
    pub(crate) idle_timeout_secs: Option<u64>,
    /// Slowest acceptable request body in bytes per second, enforced after the first ten
    /// seconds; 0 disables it [default: 1024].
    #[arg(long, value_name = "BYTES", env = "MEDIASEAL_MIN_UPLOAD_RATE")]
    pub(crate) min_upload_rate: Option<u64>,
    /// Point `/Media` of customer-sealed video media at the object store's presigned URLs (S3
    /// serves the bytes and their x-amz-meta headers) rather than at this service's own signed
    /// URLs [default: true on S3, false otherwise].
    #[arg(long, value_name = "BOOL", env = "MEDIASEAL_MEDIA_FROM_STORE")]
    pub(crate) media_from_store: Option<bool>,
    /// A network webhooks may reach although it is internal (loopback, private, link-local,
    /// unique-local, …; refused by default), for on-premises receivers: a CIDR range such as
    /// 10.20.0.0/16 or one address. Repeatable; the environment variable takes a comma-separated
    /// list [default: none].
    #[arg(
        long,
        value_name = "CIDR",
        env = "MEDIASEAL_ALLOW_WEBHOOK_NETWORK",
        value_delimiter = ',',
        value_parser = mediaseal_server::serve::parse_webhook_network
    )]
    pub(crate) allow_webhook_network: Vec<mediaseal_server::serve::IpNet>,
    /// Longest one composition's ffmpeg run may take, in seconds; then it is stopped and the
    /// composition fails [default: 7200].
    #[arg(long, value_name = "SECS", env = "MEDIASEAL_COMPOSE_MAX_SECS")]
    pub(crate) compose_max_secs: Option<u64>,
    /// Most bytes of media one composition may produce; past them it is stopped and fails
    /// [default: 8589934592 (8 GiB)].
    #[arg(long, value_name = "BYTES", env = "MEDIASEAL_COMPOSE_MAX_OUTPUT_BYTES")]
    pub(crate) compose_max_output_bytes: Option<u64>,
    /// Compositions this node makes at once [default: 2].
    #[arg(long, value_name = "N", env = "MEDIASEAL_COMPOSE_WORKERS")]
    pub(crate) compose_workers: Option<usize>,
    /// Compositions one account may have running at once on all nodes; 0: no cap [default: 1].
    #[arg(long, value_name = "N", env = "MEDIASEAL_COMPOSE_MAX_PER_ACCOUNT")]
    pub(crate) compose_max_per_account: Option<u32>,
    /// Log format [default: text].
    #[arg(long, value_name = "FORMAT", env = "MEDIASEAL_LOG_FORMAT", value_parser = ["text", "json"])]
    pub(crate) log_format: Option<String>,
    /// Start the SIP edge: SIP over UDP and TCP on this address (e.g. 0.0.0.0:5060)
    /// [default: no SIP edge].
    #[arg(long, value_name = "ADDR", env = "MEDIASEAL_SIP_LISTEN")]
    pub(crate) sip_listen: Option<SocketAddr>,
    /// SIP over TLS on this address (e.g. 0.0.0.0:5061); needs --sip-tls-cert and --sip-tls-key.
    #[arg(long, value_name = "ADDR", env = "MEDIASEAL_SIP_TLS_LISTEN")]
    pub(crate) sip_tls_listen: Option<SocketAddr>,
    /// Certificate chain (PEM) of the SIP TLS listener.
    #[arg(long, value_name = "FILE", env = "MEDIASEAL_SIP_TLS_CERT")]
    pub(crate) sip_tls_cert: Option<PathBuf>,
    /// Private key (PEM) of the SIP TLS listener.
    #[arg(long, value_name = "FILE", env = "MEDIASEAL_SIP_TLS_KEY")]
    pub(crate) sip_tls_key: Option<PathBuf>,
    /// Trust anchors (PEM) for outbound SIP TLS (`<Sip>…;secure=true`) [default: system roots].
    #[arg(long, value_name = "FILE", env = "MEDIASEAL_SIP_CA")]
    pub(crate) sip_ca: Option<PathBuf>,
    /// Every SIP Domain name ends with this (as *.sip.twilio.com do), e.g. sip.example.com;
    /// required with the SIP edge, and checked by the SIP/Domains API whenever set.
    #[arg(long, value_name = "SUFFIX", env = "MEDIASEAL_SIP_DOMAIN_SUFFIX")]
    pub(crate) sip_domain_suffix: Option<String>,
    /// Digest challenges of the SIP edge's 401, in order: a comma-separated list of MD5 and
    /// SHA-256 [default: MD5, as Twilio; SHA-256,MD5 for phones that prefer SHA-256, though
    /// some (baresip 1.0) then refuse to authenticate at all].
    #[arg(long, value_name = "LIST", env = "MEDIASEAL_SIP_DIGEST", value_parser = crate::cmd::sip::parse_digest_algorithms)]
    pub(crate) sip_digest: Option<Vec<mediaseal_voice::DigestAlgorithm>>,
    /// Run the media relay threads at this SCHED_FIFO priority (1-99), as rtpengine's
    /// --scheduling=fifo --priority=N, so a busy host does not delay media; needs root,
    /// CAP_SYS_NICE or RLIMIT_RTPRIO, else the relay warns and keeps normal scheduling
    /// [default: normal scheduling].
    #[arg(long, value_name = "N", env = "MEDIASEAL_RTP_PRIORITY", value_parser = crate::cmd::sip::parse_rtp_priority)]
    pub(crate) rtp_priority: Option<mediaseal_voice::RealtimePriority>,
    /// UDP ports for call media (RTP/SRTP) [default: 20000-29999].
    #[arg(long, value_name = "LOW-HIGH", env = "MEDIASEAL_RTP_PORTS", value_parser = crate::cmd::sip::parse_rtp_ports)]
    pub(crate) rtp_ports: Option<std::ops::RangeInclusive<u16>>,
    /// The address put in SDP and bound by the media relay [default: the --sip-listen address
    /// when it is a specific one].
    #[arg(long, value_name = "IP", env = "MEDIASEAL_MEDIA_ADDRESS")]
    pub(crate) media_address: Option<std::net::IpAddr>,
    /// A STUN or TURN server handed out by `Tokens.json`, e.g.
    /// turn:turn.example.com:3478?transport=udp, turns:turn.example.com:5349?transport=tcp or
    /// stun:turn.example.com:3478. Repeatable; the environment variable takes a comma-separated
    /// list [default: none, and `Tokens.json` answers 503].
    #[arg(
        long,
        value_name = "URL",
        env = "MEDIASEAL_TURN_URL",
        value_delimiter = ','
    )]
    pub(crate) turn_url: Vec<String>,
    /// File holding the TURN server's shared secret (coturn's static-auth-secret, with
    /// use-auth-secret); required with turn: or turns: URLs.
    #[arg(long, value_name = "FILE", env = "MEDIASEAL_TURN_SECRET_FILE")]
    pub(crate) turn_secret_file: Option<PathBuf>,
    /// Longest lifetime of TURN credentials, in seconds; also their lifetime when the client
    /// gives no Ttl [default: 86400, Twilio's].
    #[arg(long, value_name = "SECS", env = "MEDIASEAL_TURN_TTL_MAX")]
    pub(crate) turn_ttl_max: Option<u64>,
    /// The room worker run for each group room in progress [default: mediaseal-room-worker
    /// next to this executable; if it is missing, rooms run without media processes].
    #[arg(long, value_name = "PATH", env = "MEDIASEAL_ROOM_WORKER")]
    pub(crate) room_worker: Option<PathBuf>,
    /// Group rooms this node runs at once; one more is refused (53103) [default: 64].
    #[arg(long, value_name = "N", env = "MEDIASEAL_MAX_ROOMS")]
    pub(crate) max_rooms: Option<usize>,
    /// UDP address each room worker binds, port 0 for any free one; participants must reach it
    /// (it is the room's ICE host candidate). Repeatable [default: 127.0.0.1:0].
    #[arg(
        long,
        value_name = "ADDR",
        env = "MEDIASEAL_ROOM_UDP",
        value_delimiter = ','
    )]
    pub(crate) room_udp: Vec<SocketAddr>,
}

/// The `--config` file: the same settings as the flags.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data: Option<PathBuf>,
    listen: Option<SocketAddr>,
    public_url: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    database: Option<String>,
    objects: Option<String>,
    s3_access_key_id: Option<String>,
    s3_secret_access_key: Option<String>,
    s3_secret_access_key_file: Option<PathBuf>,
    at_rest_key: Option<PathBuf>,
    url_signing_key: Option<PathBuf>,
    callback_retry_ms: Option<u64>,
    sweep_secs: Option<u64>,
    orphan_age_secs: Option<u64>,
    max_upload_bytes: Option<u64>,
    max_concurrent_uploads: Option<usize>,
    metrics_listen: Option<SocketAddr>,
    asr: Option<String>,
    asr_sidecars: Option<u32>,
    max_connections: Option<usize>,
    max_connections_per_client: Option<usize>,
    header_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    min_upload_rate: Option<u64>,
    media_from_store: Option<bool>,
    allow_webhook_network: Option<Vec<String>>,
    compose_max_secs: Option<u64>,
    compose_max_output_bytes: Option<u64>,
    compose_workers: Option<usize>,
    compose_max_per_account: Option<u32>,
    log_format: Option<String>,
    sip_domain_suffix: Option<String>,
    turn_url: Option<Vec<String>>,
    turn_secret_file: Option<PathBuf>,
    turn_ttl_max: Option<u64>,
    room_worker: Option<PathBuf>,
    max_rooms: Option<usize>,
    room_udp: Option<Vec<SocketAddr>>,
    // The other SIP keys are read (and type-checked) by `cmd::sip`; named here so that they
    // pass `deny_unknown_fields`.
    #[serde(rename = "sip_listen")]
    _sip_listen: Option<toml::Value>,
    #[serde(rename = "sip_tls_listen")]
    _sip_tls_listen: Option<toml::Value>,
    #[serde(rename = "sip_tls_cert")]
    _sip_tls_cert: Option<toml::Value>,
    #[serde(rename = "sip_tls_key")]
    _sip_tls_key: Option<toml::Value>,
    #[serde(rename = "sip_ca")]
    _sip_ca: Option<toml::Value>,
    #[serde(rename = "rtp_ports")]
    _rtp_ports: Option<toml::Value>,
    #[serde(rename = "sip_digest")]
    _sip_digest: Option<toml::Value>,
    #[serde(rename = "media_address")]
    _media_address: Option<toml::Value>,
    #[serde(rename = "rtp_priority")]
    _rtp_priority: Option<toml::Value>,
}

fn read_config(path: &Path) -> Result<FileConfig, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::new(format!(
            "cannot read the config file {}: {e}",
            path.display()
        ))
    })?;
    // toml's messages quote the offending line, which may hold a password: keep only the
    // description and position.
    toml::from_str(&text).map_err(|e| {
        let place = e.span().map(|s| line_of(&text, s.start)).map(|l| format!(" (line {l})")).unwrap_or_default();
        let what = without_quoted_values(e.message());
        CliError::usage(format!("config file {}{place}: {what}", path.display()))
            .with_hint("keys are the flag names of `mediaseal serve --help` with _ for -, e.g. orphan_age_secs = 600")
    })
}

/// serde quotes the rejected value (`invalid type: string "…"`), and that value may be a
/// secret; keep the shape of the message and drop what was between the quotes.
fn without_quoted_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for (i, part) in message.split('"').enumerate() {
        if i % 2 == 0 {
            out.push_str(part);
        } else {
            out.push_str("\"…\"");
        }
    }
    out
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(0, |t| t.matches('\n').count()) + 1
}

fn read_secret_file(path: &Path) -> Result<String, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::new(format!(
            "cannot read s3_secret_access_key_file {}: {e}",
            path.display()
        ))
    })?;
    Ok(text.trim().to_owned())
}

/// Flags and environment over the file over defaults.
pub(super) fn options(args: &ServeArgs) -> Result<(ServeOptions, String), CliError> {
    let file = match &args.config {
        Some(path) => read_config(path)?,
        None => FileConfig::default(),
    };
    // Before the fields below are moved out of `file`.
    let limits = connection_limits(args, &file)?;
    let compose = compose_limits(args, &file)?;
    let turn = turn_config(args, &file)?;
    let allow_webhook_networks = webhook_networks(args, &file)?;
    let rooms = room_options(args, &file);
    let log_format = args
        .log_format
        .clone()
        .or(file.log_format)
        .unwrap_or_else(|| "text".to_owned());
    if !matches!(log_format.as_str(), "text" | "json") {
        return Err(CliError::usage(format!(
            "log_format '{log_format}' is not text or json"
        )));
    }
    let tls_cert = args.tls_cert.clone().or(file.tls_cert);
    let tls_key = args.tls_key.clone().or(file.tls_key);
    if tls_cert.is_some() != tls_key.is_some() {
        return Err(CliError::usage("tls_cert and tls_key go together"));
    }
    let key_id = args.s3_access_key_id.clone().or(file.s3_access_key_id);
    let secret = match (
        &args.s3_secret_access_key_file,
        file.s3_secret_access_key,
        &file.s3_secret_access_key_file,
    ) {
        (Some(path), _, _) => Some(read_secret_file(path)?),
        (None, Some(secret), _) => Some(secret),
        (None, None, Some(path)) => Some(read_secret_file(path)?),
        (None, None, None) => None,
    };
    let s3_credentials = match (key_id, secret) {
        (Some(access_key_id), Some(secret)) => Some(S3Credentials {
            access_key_id,
            secret_access_key: zeroize::Zeroizing::new(secret),
        }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(CliError::usage(
                "s3_access_key_id is set but no S3 secret access key is",
            ));
        }
        (None, Some(_)) => {
            return Err(CliError::usage(
                "an S3 secret access key is set but s3_access_key_id is not",
            ));
        }
    };
    let opts = ServeOptions {
        data_dir: args
            .data
            .clone()
            .or(file.data)
            .unwrap_or_else(|| PathBuf::from("mediaseal-data")),
        listen: args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
        public_url: args.public_url.clone().or(file.public_url),
        tls_cert,
        tls_key,
        database: args.database.clone().or(file.database),
        objects: args.objects.clone().or(file.objects),
        at_rest_key: args.at_rest_key.clone().or(file.at_rest_key),
        url_signing_key: args.url_signing_key.clone().or(file.url_signing_key),
        callback_retry_base: Duration::from_millis(
            args.callback_retry_ms
                .or(file.callback_retry_ms)
                .unwrap_or(2000)
                .max(1),
        ),
        sweep_every: Duration::from_secs(args.sweep_secs.or(file.sweep_secs).unwrap_or(300).max(1)),
        orphan_age: Duration::from_secs(
            args.orphan_age_secs
                .or(file.orphan_age_secs)
                .unwrap_or(3600),
        ),
        s3_credentials,
        media_from_store: args.media_from_store.or(file.media_from_store),
        allow_webhook_networks,
        max_upload_bytes: args
            .max_upload_bytes
            .or(file.max_upload_bytes)
            .unwrap_or(mediaseal_server::serve::DEFAULT_MAX_UPLOAD_BYTES),
        max_concurrent_uploads: args
            .max_concurrent_uploads
            .or(file.max_concurrent_uploads)
            .unwrap_or(mediaseal_server::serve::DEFAULT_MAX_CONCURRENT_UPLOADS),
        metrics_listen: args.metrics_listen.or(file.metrics_listen),
        asr: args.asr.clone().or(file.asr),
        asr_sidecars: args.asr_sidecars.or(file.asr_sidecars),
        limits,
        compose,
        sip_domain_suffix: args.sip_domain_suffix.clone().or(file.sip_domain_suffix),
        turn,
        rooms,
    };
    if opts.asr_sidecars.is_some_and(|n| !(1..=64).contains(&n)) {
        return Err(CliError::usage(
            "asr_sidecars in the config file must be 1 to 64 (Whisper recognisers on this node)",
        ));
    }
    if opts.max_upload_bytes == 0 || opts.max_concurrent_uploads == 0 {
        return Err(CliError::usage(
            "--max-upload-bytes and --max-concurrent-uploads must be at least 1",
        ));
    }
    Ok((opts, log_format))
}

/// `--room-worker`, `--max-rooms`, `--room-udp` (flags or environment, else the file's
/// `room_worker`, `max_rooms`, `room_udp`) over the defaults.
fn room_options(
    args: &ServeArgs,
    file: &FileConfig,
) -> mediaseal_server::room_processes::RoomOptions {
    let mut rooms = mediaseal_server::room_processes::RoomOptions {
        worker: args
            .room_worker
            .clone()
            .or_else(|| file.room_worker.clone()),
        ..Default::default()
    };
    if let Some(n) = args.max_rooms.or(file.max_rooms) {
        rooms.max_rooms = n;
    }
    if !args.room_udp.is_empty() {
        rooms.udp.clone_from(&args.room_udp);
    } else if let Some(udp) = file.room_udp.as_ref().filter(|u| !u.is_empty()) {
        rooms.udp.clone_from(udp);
    }
    rooms
}

/// The webhook allow-list: the flags (or environment) if any, else the file's.
fn webhook_networks(
    args: &ServeArgs,
    file: &FileConfig,
) -> Result<Vec<mediaseal_server::serve::IpNet>, CliError> {
    if !args.allow_webhook_network.is_empty() {
        return Ok(args.allow_webhook_network.clone());
    }
    file.allow_webhook_network
        .iter()
        .flatten()
        .map(|n| {
            mediaseal_server::serve::parse_webhook_network(n)
                .map_err(|e| CliError::usage(format!("allow_webhook_network: {e}")))
        })
        .collect()
}

/// The STUN/TURN settings: URLs from the flags (or environment) if any, else the file's; the
/// secret read from its file (never given inline, so it stays out of `ps` and shell history).
fn turn_config(
    args: &ServeArgs,
    file: &FileConfig,
) -> Result<mediaseal_server::TurnConfig, CliError> {
    let urls = if args.turn_url.is_empty() {
        file.turn_url.clone().unwrap_or_default()
    } else {
        args.turn_url.clone()
    };
    let secret = match args
        .turn_secret_file
        .as_ref()
        .or(file.turn_secret_file.as_ref())
    {
        Some(path) => Some(read_turn_secret(path)?),
        None => None,
    };
    let ttl_max = args.turn_ttl_max.or(file.turn_ttl_max);
    mediaseal_server::TurnConfig::new(&urls, secret, ttl_max)
        .map_err(|e| CliError::usage(e.to_string()))
}

/// The TURN secret file's contents without the trailing newline, held in zeroized memory.
fn read_turn_secret(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>, CliError> {
    let bytes = zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| {
        CliError::new(format!(
            "cannot read turn_secret_file {}: {e}",
            path.display()
        ))
    })?);
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    Ok(zeroize::Zeroizing::new(bytes[..end].to_vec()))
}

/// The composition bounds from flags, the file and the defaults.
fn compose_limits(
    args: &ServeArgs,
    file: &FileConfig,
) -> Result<mediaseal_server::state::ComposeLimits, CliError> {
    let defaults = mediaseal_server::state::ComposeLimits::default();
    let limits = mediaseal_server::state::ComposeLimits {
        max_wall_time: args
            .compose_max_secs
            .or(file.compose_max_secs)
            .map_or(defaults.max_wall_time, Duration::from_secs),
        max_output_bytes: args
            .compose_max_output_bytes
            .or(file.compose_max_output_bytes)
            .unwrap_or(defaults.max_output_bytes),
        workers: args
            .compose_workers
            .or(file.compose_workers)
            .unwrap_or(defaults.workers),
        max_per_account: args
            .compose_max_per_account
            .or(file.compose_max_per_account)
            .unwrap_or(defaults.max_per_account),
    };
    if limits.max_wall_time.is_zero() || limits.max_output_bytes == 0 || limits.workers == 0 {
        return Err(CliError::usage(
            "--compose-max-secs, --compose-max-output-bytes and --compose-workers must be at least 1",
        ));
    }
    Ok(limits)
}

/// The listener's limits from flags, the file and the defaults.
fn connection_limits(args: &ServeArgs, file: &FileConfig) -> Result<ConnectionLimits, CliError> {
    let defaults = ConnectionLimits::default();
    let header = args
        .header_timeout_secs
        .or(file.header_timeout_secs)
        .map_or(defaults.header_read_timeout, Duration::from_secs);
    let limits = ConnectionLimits {
        max_connections: args
            .max_connections
            .or(file.max_connections)
            .unwrap_or(defaults.max_connections),
        max_connections_per_client: args
            .max_connections_per_client
            .or(file.max_connections_per_client)
            .unwrap_or(defaults.max_connections_per_client),
        header_read_timeout: header,
        tls_handshake_timeout: header,
        idle_timeout: args
            .idle_timeout_secs
            .or(file.idle_timeout_secs)
            .map_or(defaults.idle_timeout, Duration::from_secs),
        min_upload_rate: args
            .min_upload_rate
            .or(file.min_upload_rate)
            .unwrap_or(defaults.min_upload_rate),
        upload_grace: defaults.upload_grace,
    };
    if limits.max_connections == 0
        || limits.max_connections_per_client == 0
        || limits.header_read_timeout.is_zero()
        || limits.idle_timeout.is_zero()
    {
        return Err(CliError::usage(
            "--max-connections, --max-connections-per-client, --header-timeout-secs and \
             --idle-timeout-secs must be at least 1",
        ));
    }
    Ok(limits)
}

pub(crate) fn run_serve(args: &ServeArgs) -> Result<(), CliError> {
    let (opts, log_format) = options(args)?;
    let sip = crate::cmd::sip::sip_options(args)?;
    // Recording URLs and callbacks of calls name this service as customers reach it.
    let public_url = opts.public_url.clone().unwrap_or_else(|| {
        let scheme = if opts.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", opts.listen)
    });
    crate::cmd::logging::init(&log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(format!("cannot start the async runtime: {e}")))?;
    runtime
        .block_on(run_with(opts, move |state| {
            crate::cmd::sip::start_edge(state, sip, public_url)
        }))
        .map_err(|e| CliError::new(format!("the server stopped: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(args: &[&str]) -> ServeArgs {
        Cli::try_parse_from(std::iter::once("serve").chain(args.iter().copied()))
            .unwrap()
            .serve
    }

    #[test]
    fn upload_limits_are_settable_and_must_be_positive() {
        let (opts, _) = options(&parse(&[
            "--max-upload-bytes",
            "1048576",
            "--max-concurrent-uploads",
            "4",
        ]))
        .unwrap();
        assert_eq!(
            (opts.max_upload_bytes, opts.max_concurrent_uploads),
            (1_048_576, 4)
        );
        for zero in [
            ["--max-upload-bytes", "0"],
            ["--max-concurrent-uploads", "0"],
        ] {
            let err = options(&parse(&zero)).unwrap_err();
            assert!(err.message.contains("at least 1"), "{}", err.message);
        }
    }

    #[test]
    fn asr_sidecars_come_from_the_flag_or_the_file_and_are_bounded() {
        let (opts, _) = options(&parse(&[])).unwrap();
        assert_eq!(opts.asr_sidecars, None, "one per core by default");
        let (opts, _) = options(&parse(&["--asr-sidecars", "3"])).unwrap();
        assert_eq!(opts.asr_sidecars, Some(3));
        for bad in ["0", "65", "two"] {
            let parsed = Cli::try_parse_from(["serve", "--asr-sidecars", bad]);
            assert!(parsed.is_err(), "--asr-sidecars {bad} was accepted");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        std::fs::write(&path, "asr_sidecars = 2\n").unwrap();
        let (opts, _) = options(&parse(&["--config", path.to_str().unwrap()])).unwrap();
        assert_eq!(opts.asr_sidecars, Some(2));
        let (opts, _) = options(&parse(&[
            "--config",
            path.to_str().unwrap(),
            "--asr-sidecars",
            "1",
        ]))
        .unwrap();
        assert_eq!(opts.asr_sidecars, Some(1), "the flag wins over the file");
        std::fs::write(&path, "asr_sidecars = 0\n").unwrap();
        let e = options(&parse(&["--config", path.to_str().unwrap()])).unwrap_err();
        assert!(e.message.contains("asr_sidecars"), "{}", e.message);
    }

    #[test]
    fn room_worker_options_come_from_flags() {
        let (opts, _) = options(&parse(&[])).unwrap();
        assert_eq!(opts.rooms.worker, None, "next to the executable by default");
        assert_eq!(opts.rooms.max_rooms, 64);
        assert_eq!(opts.rooms.udp, [SocketAddr::from(([127, 0, 0, 1], 0))]);
        let (opts, _) = options(&parse(&[
            "--room-worker",
            "/opt/mediaseal/mediaseal-room-worker",
            "--max-rooms",
            "8",
            "--room-udp",
            "192.0.2.7:0",
            "--room-udp",
            "[2001:db8::7]:0",
        ]))
        .unwrap();
        assert_eq!(
            opts.rooms.worker.as_deref(),
            Some(Path::new("/opt/mediaseal/mediaseal-room-worker"))
        );
        assert_eq!(opts.rooms.max_rooms, 8);
        assert_eq!(opts.rooms.udp.len(), 2);
    }

    #[test]
    fn room_worker_options_come_from_the_file_under_the_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        std::fs::write(
            &path,
            "room_worker = \"/opt/w/mediaseal-room-worker\"\nmax_rooms = 3\n\
             room_udp = [\"192.0.2.9:40000\", \"[2001:db8::9]:0\"]\n",
        )
        .unwrap();
        let config = path.to_str().unwrap();
        let (opts, _) = options(&parse(&["--config", config])).unwrap();
        assert_eq!(
            opts.rooms.worker.as_deref(),
            Some(Path::new("/opt/w/mediaseal-room-worker"))
        );
        assert_eq!(opts.rooms.max_rooms, 3);
        assert_eq!(
            opts.rooms.udp,
            [
                "192.0.2.9:40000".parse::<SocketAddr>().unwrap(),
                "[2001:db8::9]:0".parse().unwrap()
            ]
        );
        let (opts, _) = options(&parse(&[
            "--config",
            config,
            "--max-rooms",
            "7",
            "--room-udp",
            "198.51.100.1:0",
        ]))
        .unwrap();
        assert_eq!(opts.rooms.max_rooms, 7, "the flag wins");
        assert_eq!(opts.rooms.udp, ["198.51.100.1:0".parse().unwrap()]);
        assert_eq!(
            opts.rooms.worker.as_deref(),
            Some(Path::new("/opt/w/mediaseal-room-worker")),
            "unset flags leave the file's value"
        );
        std::fs::write(&path, "room_udp = [\"not an address\"]\n").unwrap();
        let err = options(&parse(&["--config", config])).unwrap_err();
        assert!(err.message.contains("line 1"), "{}", err.message);
    }

    #[test]
    fn webhook_networks_come_from_flags_or_the_file() {
        let (opts, _) = options(&parse(&[])).unwrap();
        assert!(opts.allow_webhook_networks.is_empty(), "strict by default");
        let (opts, _) = options(&parse(&[
            "--allow-webhook-network",
            "127.0.0.0/8",
            "--allow-webhook-network",
            "::1",
        ]))
        .unwrap();
        let shown: Vec<String> = opts
            .allow_webhook_networks
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(shown, ["127.0.0.0/8", "::1/128"]);
        assert!(
            Cli::try_parse_from(["serve", "--allow-webhook-network", "10.0.0.0/33"]).is_err(),
            "a bad range is a usage error"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        std::fs::write(&path, "allow_webhook_network = [\"10.20.0.0/16\"]\n").unwrap();
        let (opts, _) = options(&parse(&["--config", path.to_str().unwrap()])).unwrap();
        assert_eq!(opts.allow_webhook_networks[0].to_string(), "10.20.0.0/16");
        std::fs::write(&path, "allow_webhook_network = [\"nonsense\"]\n").unwrap();
        let err = options(&parse(&["--config", path.to_str().unwrap()])).unwrap_err();
        assert!(err.message.contains("not a network"), "{}", err.message);
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mediaseal.toml");
        std::fs::write(
            &path,
            "database = \"postgres://m:pw@127.0.0.1:5432/m\"\nobjects = \"s3://bucket?endpoint=http://127.0.0.1:3900\"\n\
             orphan_age_secs = 60\nlisten = \"127.0.0.1:9000\"\ns3_access_key_id = \"GKfile\"\ns3_secret_access_key = \"filesecret\"\n",
        )
        .unwrap();
        let config = path.to_str().unwrap();
        let (opts, format) =
            options(&parse(&["--config", config, "--orphan-age-secs", "5"])).unwrap();
        assert_eq!(
            opts.database.as_deref(),
            Some("postgres://m:pw@127.0.0.1:5432/m")
        );
        assert_eq!(
            opts.objects.as_deref(),
            Some("s3://bucket?endpoint=http://127.0.0.1:3900")
        );
        assert_eq!(opts.orphan_age, Duration::from_secs(5), "the flag wins");
        assert_eq!(
            opts.listen,
            "127.0.0.1:9000".parse().unwrap(),
            "the file beats the default"
        );
        assert_eq!(opts.sweep_every, Duration::from_secs(300), "default");
        assert_eq!(opts.max_upload_bytes, 2 << 30, "default: 2 GiB");
        assert_eq!(opts.max_concurrent_uploads, 32, "default");
        assert_eq!(format, "text");
        let creds = opts.s3_credentials.unwrap();
        assert_eq!(creds.access_key_id, "GKfile");
        assert!(
            !format!("{creds:?}").contains("filesecret"),
            "Debug shows the secret"
        );
    }

    #[test]
    fn bad_config_files_name_the_setting_and_hide_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        for (text, needle) in [
            ("databse = \"postgres://m:hunter2@h/m\"\n", "databse"),
            ("orphan_age_secs = \"hunter2\"\n", "line 1"),
            ("s3_access_key_id = \"GK1\"\n", "s3_access_key_id"),
            ("log_format = \"xml\"\n", "log_format"),
        ] {
            std::fs::write(&path, text).unwrap();
            let e = options(&parse(&["--config", path.to_str().unwrap()])).unwrap_err();
            assert!(e.message.contains(needle), "{text}: {}", e.message);
            assert!(
                !e.message.contains("hunter2"),
                "{text}: leaked {}",
                e.message
            );
        }
        let e = options(&parse(&["--config", "/nonexistent/mediaseal.toml"])).unwrap_err();
        assert!(e.message.contains("/nonexistent/mediaseal.toml"));
    }
    #[test]
    fn turn_settings_come_from_flags_or_the_file_and_the_secret_from_a_file() {
        let (opts, _) = options(&parse(&[])).unwrap();
        assert!(opts.turn.urls().is_empty(), "no TURN by default");
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("turn.secret");
        std::fs::write(&secret, "hunter2\n").unwrap();
        let (opts, _) = options(&parse(&[
            "--turn-url",
            "turn:127.0.0.1:3478?transport=udp",
            "--turn-url",
            "stun:127.0.0.1:3478",
            "--turn-secret-file",
            secret.to_str().unwrap(),
            "--turn-ttl-max",
            "600",
        ]))
        .unwrap();
        let urls: Vec<&str> = opts.turn.urls().iter().map(|u| u.as_str()).collect();
        assert_eq!(
            urls,
            ["turn:127.0.0.1:3478?transport=udp", "stun:127.0.0.1:3478"]
        );
        assert_eq!(opts.turn.ttl_max(), 600);
        assert!(
            !format!("{opts:?}").contains("hunter2"),
            "Debug shows the secret"
        );

        let e = options(&parse(&["--turn-url", "turn:127.0.0.1"])).unwrap_err();
        assert!(e.message.contains("--turn-secret-file"), "{}", e.message);
        let e = options(&parse(&["--turn-url", "http://x"])).unwrap_err();
        assert!(e.message.contains("http://x"), "{}", e.message);

        let path = dir.path().join("m.toml");
        std::fs::write(
            &path,
            format!(
                "turn_url = [\"turns:t.example.com:5349?transport=tcp\"]\nturn_secret_file = {:?}\nturn_ttl_max = 86401\n",
                secret.to_str().unwrap()
            ),
        )
        .unwrap();
        let e = options(&parse(&["--config", path.to_str().unwrap()])).unwrap_err();
        assert!(e.message.contains("86401"), "{}", e.message);
    }
}
