//! `mediaseal serve`: the service, on the embedded store unless told otherwise.
//!
//! Settings come from, strongest first: flags, `MEDIASEAL_*` environment variables, the TOML
//! file named by `--config` (same names as the flags, with `_` for `-`), built-in defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use mediaseal_server::serve::{S3Credentials, ServeOptions, run};
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
    /// Point `/Media` of customer-sealed video media at the object store's presigned URLs (S3
    /// serves the bytes and their x-amz-meta headers) rather than at this service's own signed
    /// URLs [default: true on S3, false otherwise].
    #[arg(long, value_name = "BOOL", env = "MEDIASEAL_MEDIA_FROM_STORE")]
    pub(crate) media_from_store: Option<bool>,
    /// Log format [default: text].
    #[arg(long, value_name = "FORMAT", env = "MEDIASEAL_LOG_FORMAT", value_parser = ["text", "json"])]
    pub(crate) log_format: Option<String>,
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
    media_from_store: Option<bool>,
    log_format: Option<String>,
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
fn options(args: &ServeArgs) -> Result<(ServeOptions, String), CliError> {
    let file = match &args.config {
        Some(path) => read_config(path)?,
        None => FileConfig::default(),
    };
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
        max_upload_bytes: args
            .max_upload_bytes
            .or(file.max_upload_bytes)
            .unwrap_or(mediaseal_server::serve::DEFAULT_MAX_UPLOAD_BYTES),
        max_concurrent_uploads: args
            .max_concurrent_uploads
            .or(file.max_concurrent_uploads)
            .unwrap_or(mediaseal_server::serve::DEFAULT_MAX_CONCURRENT_UPLOADS),
    };
    if opts.max_upload_bytes == 0 || opts.max_concurrent_uploads == 0 {
        return Err(CliError::usage(
            "--max-upload-bytes and --max-concurrent-uploads must be at least 1",
        ));
    }
    Ok((opts, log_format))
}

pub(crate) fn run_serve(args: &ServeArgs) -> Result<(), CliError> {
    let (opts, log_format) = options(args)?;
    crate::cmd::logging::init(&log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(format!("cannot start the async runtime: {e}")))?;
    runtime
        .block_on(run(opts))
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
}
