//! `mediaseal serve`: the service, on the embedded store unless told otherwise.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use mediaseal_server::serve::{ServeOptions, run};

use crate::error::CliError;

/// Options of `mediaseal serve`. Every flag can also come from the environment variable shown.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Data directory: the embedded database, the sealed objects and the service's own keys.
    #[arg(long, value_name = "DIR", env = "MEDIASEAL_DATA", default_value = "mediaseal-data")]
    pub(crate) data: PathBuf,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", env = "MEDIASEAL_LISTEN", default_value = "127.0.0.1:8080")]
    pub(crate) listen: SocketAddr,
    /// Base URL clients use to reach this server (for absolute URLs in responses); default: the
    /// request's Host header.
    #[arg(long, value_name = "URL", env = "MEDIASEAL_PUBLIC_URL")]
    pub(crate) public_url: Option<String>,
    /// TLS certificate chain (PEM): serve HTTPS.
    #[arg(long, value_name = "PEM", env = "MEDIASEAL_TLS_CERT", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "PEM", env = "MEDIASEAL_TLS_KEY", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Metadata database: sqlite://PATH or postgres://USER:PASS@HOST/DB (default: SQLite in --data).
    #[arg(long, value_name = "URL", env = "MEDIASEAL_DATABASE")]
    pub(crate) database: Option<String>,
    /// Object store: file:///PATH or s3://BUCKET?endpoint=… (default: a directory in --data).
    #[arg(long, value_name = "URL", env = "MEDIASEAL_OBJECTS")]
    pub(crate) objects: Option<String>,
    /// The service's at-rest key (PEM, mode 0600; created if missing). Nodes sharing storage
    /// must share it. Default: DATA/at-rest-key.pem.
    #[arg(long, value_name = "PEM", env = "MEDIASEAL_AT_REST_KEY")]
    pub(crate) at_rest_key: Option<PathBuf>,
    /// Secret for signing /Media URLs (32 bytes; created if missing). Default: DATA/url-signing.key.
    #[arg(long, value_name = "FILE", env = "MEDIASEAL_URL_SIGNING_KEY")]
    pub(crate) url_signing_key: Option<PathBuf>,
    /// First delay before retrying a failed callback, in milliseconds (doubles each try).
    #[arg(long, value_name = "MS", env = "MEDIASEAL_CALLBACK_RETRY_MS", default_value_t = 2000)]
    pub(crate) callback_retry_ms: u64,
    /// How often to sweep unfinished uploads and orphaned objects, in seconds.
    #[arg(long, value_name = "SECS", env = "MEDIASEAL_SWEEP_SECS", default_value_t = 300)]
    pub(crate) sweep_secs: u64,
    /// Age after which an unfinished upload counts as crashed, in seconds.
    #[arg(long, value_name = "SECS", env = "MEDIASEAL_ORPHAN_AGE_SECS", default_value_t = 3600)]
    pub(crate) orphan_age_secs: u64,
    /// Log format.
    #[arg(long, value_name = "FORMAT", env = "MEDIASEAL_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub(crate) log_format: String,
}

pub(crate) fn run_serve(args: &ServeArgs) -> Result<(), CliError> {
    crate::cmd::logging::init(&args.log_format);
    let opts = ServeOptions {
        data_dir: args.data.clone(),
        listen: args.listen,
        public_url: args.public_url.clone(),
        tls_cert: args.tls_cert.clone(),
        tls_key: args.tls_key.clone(),
        database: args.database.clone(),
        objects: args.objects.clone(),
        at_rest_key: args.at_rest_key.clone(),
        url_signing_key: args.url_signing_key.clone(),
        callback_retry_base: Duration::from_millis(args.callback_retry_ms.max(1)),
        sweep_every: Duration::from_secs(args.sweep_secs.max(1)),
        orphan_age: Duration::from_secs(args.orphan_age_secs),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(run(opts)).map_err(|e| CliError::new(format!("the server stopped: {e}")))
}
