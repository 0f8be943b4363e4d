//! The SIP edge beside `mediaseal serve`'s HTTP server: the `--sip-*`, `--rtp-ports` and
//! `--media-address` settings, and the edge started on the server's state with the
//! store-backed seams (domains, tokens), the sealing call recorder and signed HTTP webhooks.
//! The server crate knows nothing of SIP; this is where the two meet.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mediaseal_server::AppState;
use mediaseal_server::serve::{ServeError, Sidecar};
use mediaseal_voice::{
    DigestAlgorithm, HttpWebhooks, RealtimePriority, SealedCallRecorder, Seams, StoreDirectory,
    StoreLedger, StoreTokens, VoiceConfig, VoiceEdge,
};
use serde::Deserialize;

use super::call_transcripts::TranscribingRecorder;
use super::serve::ServeArgs;
use crate::error::CliError;

/// The SIP settings, once flags, environment and the config file are merged.
#[derive(Debug, Clone)]
pub(crate) struct SipOptions {
    pub(crate) listen: Option<SocketAddr>,
    pub(crate) tls_listen: Option<SocketAddr>,
    pub(crate) tls_cert: Option<PathBuf>,
    pub(crate) tls_key: Option<PathBuf>,
    pub(crate) ca: Option<PathBuf>,
    pub(crate) domain_suffix: Option<String>,
    pub(crate) rtp_ports: RangeInclusive<u16>,
    pub(crate) media_address: Option<IpAddr>,
    pub(crate) digest: Vec<DigestAlgorithm>,
    pub(crate) rtp_priority: Option<RealtimePriority>,
}

impl SipOptions {
    /// Whether the edge is to be started at all.
    pub(crate) fn enabled(&self) -> bool {
        self.listen.is_some() || self.tls_listen.is_some()
    }
}

/// `LOW-HIGH`, both ports, LOW ≤ HIGH, an even number of ports or more than one.
/// `--rtp-priority`: a `SCHED_FIFO` priority, 1–99.
pub(crate) fn parse_rtp_priority(s: &str) -> Result<RealtimePriority, String> {
    s.trim()
        .parse::<u8>()
        .ok()
        .and_then(RealtimePriority::new)
        .ok_or_else(|| {
            format!("'{s}' is not a real-time priority: give 1-99 (rtpengine's default is 10)")
        })
}

pub(crate) fn parse_rtp_ports(s: &str) -> Result<RangeInclusive<u16>, String> {
    let bad = || format!("'{s}' is not a port range LOW-HIGH such as 20000-29999");
    let (low, high) = s.split_once('-').ok_or_else(bad)?;
    let low: u16 = low.trim().parse().map_err(|_| bad())?;
    let high: u16 = high.trim().parse().map_err(|_| bad())?;
    if low == 0 || high <= low {
        return Err(format!(
            "{s}: the range needs LOW ≥ 1 and HIGH > LOW (each call takes an even port and the next)"
        ));
    }
    Ok(low..=high)
}

/// `MD5`, `SHA-256` or both, comma-separated, in the order the challenges are to be offered.
pub(crate) fn parse_digest_algorithms(s: &str) -> Result<Vec<DigestAlgorithm>, String> {
    let mut out = Vec::new();
    for name in s.split(',').map(str::trim) {
        let algorithm = match name.to_ascii_uppercase().as_str() {
            "MD5" => DigestAlgorithm::Md5,
            "SHA-256" | "SHA256" => DigestAlgorithm::Sha256,
            _ => {
                return Err(format!(
                    "'{name}' is not a digest algorithm mediaseal offers; use MD5, SHA-256 or \
                     both (e.g. SHA-256,MD5)"
                ));
            }
        };
        if out.contains(&algorithm) {
            return Err(format!("'{s}' names {name} twice"));
        }
        out.push(algorithm);
    }
    Ok(out)
}

/// The SIP keys of the `--config` file (the rest of the file is read by `serve`; unknown keys
/// are its business).
#[derive(Default, Deserialize)]
struct FileSip {
    sip_listen: Option<SocketAddr>,
    sip_tls_listen: Option<SocketAddr>,
    sip_tls_cert: Option<PathBuf>,
    sip_tls_key: Option<PathBuf>,
    sip_ca: Option<PathBuf>,
    sip_domain_suffix: Option<String>,
    rtp_ports: Option<String>,
    media_address: Option<IpAddr>,
    sip_digest: Option<String>,
    rtp_priority: Option<u8>,
}

fn read_file(path: &Path) -> Result<FileSip, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::new(format!(
            "cannot read the config file {}: {e}",
            path.display()
        ))
    })?;
    // `serve` has already reported any error in the file with its position; only the SIP
    // keys' own types matter here.
    toml::from_str(&text).map_err(|e| {
        CliError::usage(format!(
            "config file {}: a SIP setting has the wrong type ({})",
            path.display(),
            e.message().split('"').next().unwrap_or("")
        ))
    })
}

/// Flags and environment over the file.
pub(crate) fn sip_options(args: &ServeArgs) -> Result<SipOptions, CliError> {
    let file = match &args.config {
        Some(path) => read_file(path)?,
        None => FileSip::default(),
    };
    let rtp_ports = match (&args.rtp_ports, &file.rtp_ports) {
        (Some(r), _) => r.clone(),
        (None, Some(s)) => {
            parse_rtp_ports(s).map_err(|e| CliError::usage(format!("rtp_ports: {e}")))?
        }
        (None, None) => 20000..=29999,
    };
    let digest = match (&args.sip_digest, &file.sip_digest) {
        (Some(d), _) => d.clone(),
        (None, Some(s)) => {
            parse_digest_algorithms(s).map_err(|e| CliError::usage(format!("sip_digest: {e}")))?
        }
        (None, None) => vec![DigestAlgorithm::Md5],
    };
    let rtp_priority = match (args.rtp_priority, file.rtp_priority) {
        (Some(p), _) => Some(p),
        (None, Some(p)) => Some(
            parse_rtp_priority(&p.to_string())
                .map_err(|e| CliError::usage(format!("rtp_priority: {e}")))?,
        ),
        (None, None) => None,
    };
    let o = SipOptions {
        listen: args.sip_listen.or(file.sip_listen),
        tls_listen: args.sip_tls_listen.or(file.sip_tls_listen),
        tls_cert: args.sip_tls_cert.clone().or(file.sip_tls_cert),
        tls_key: args.sip_tls_key.clone().or(file.sip_tls_key),
        ca: args.sip_ca.clone().or(file.sip_ca),
        domain_suffix: args.sip_domain_suffix.clone().or(file.sip_domain_suffix),
        rtp_ports,
        media_address: args.media_address.or(file.media_address),
        digest,
        rtp_priority,
    };
    if o.tls_listen.is_some() && (o.tls_cert.is_none() || o.tls_key.is_none()) {
        return Err(CliError::usage(
            "--sip-tls-listen needs --sip-tls-cert and --sip-tls-key",
        ));
    }
    if o.enabled() && o.domain_suffix.as_deref().is_none_or(str::is_empty) {
        return Err(CliError::usage(
            "the SIP edge needs --sip-domain-suffix (e.g. sip.example.com): every SIP Domain name ends with it",
        ));
    }
    if o.enabled() && media_address(&o).is_none() {
        return Err(CliError::usage(
            "--sip-listen on an unspecified address (0.0.0.0, ::) needs --media-address: the \
             address callers send media to",
        ));
    }
    Ok(o)
}

/// `--media-address`, else the address SIP listens on when that is a specific one.
fn media_address(o: &SipOptions) -> Option<IpAddr> {
    o.media_address.or_else(|| {
        [o.listen, o.tls_listen]
            .into_iter()
            .flatten()
            .map(|a| a.ip())
            .find(|ip| !ip.is_unspecified())
    })
}

/// Starts the SIP edge on `state` when `sip` asks for it; returns what stops it.
pub(crate) async fn start_edge(
    state: AppState,
    sip: SipOptions,
    public_url: String,
) -> Result<Option<Sidecar>, ServeError> {
    if !sip.enabled() {
        return Ok(None);
    }
    let (Some(suffix), Some(media)) = (sip.domain_suffix.clone(), media_address(&sip)) else {
        return Err(ServeError::Config(
            "the SIP edge needs --sip-domain-suffix and a media address".to_owned(),
        ));
    };
    let passwords = state.sip_passwords.clone().ok_or_else(|| {
        ServeError::Config(
            "the SIP password key could not be derived from the at-rest key; see the log"
                .to_owned(),
        )
    })?;
    let mut config = VoiceConfig::new(&suffix, media);
    config.sip_listen = sip.listen;
    config.sip_tls_listen = sip.tls_listen;
    config.sip_tls_cert = sip.tls_cert;
    config.sip_tls_key = sip.tls_key;
    config.sip_ca = sip.ca;
    config.rtp_ports = sip.rtp_ports;
    config.digest_algorithms = sip.digest;
    config.relay_priority = sip.rtp_priority;
    let tokens = Arc::new(StoreTokens::new(state.meta.clone()));
    // Webhooks and `<Play>` downloads go only where recording callbacks may go
    // (`--allow-webhook-network`): names through the guarded resolver, IP literals (TwiML
    // `action`, `<Redirect>`, `<Play>` URLs) checked before each request.
    let policy = state.services.config.webhook_policy.clone();
    config.webhook_policy = Some(policy.clone());
    let http = mediaseal_voice::webhook::http_client_guarded(config.webhook_timeout, Some(&policy))
        .map_err(|e| ServeError::Config(format!("the SIP edge could not start: {e}")))?;
    let seams = Seams {
        directory: Arc::new(StoreDirectory::new(state.meta.clone(), passwords)),
        webhooks: Arc::new(HttpWebhooks::new(http, tokens).with_policy(policy)),
        // AutoTranscribe follows every call recording, from its plaintext tap.
        recorder: Arc::new(TranscribingRecorder::new(
            Arc::new(SealedCallRecorder::new(state.services.clone(), &public_url)),
            state.clone(),
        )),
        ledger: Arc::new(StoreLedger::new(state.services.clone())),
    };
    let handle = VoiceEdge::start(config, seams)
        .await
        .map_err(|e| ServeError::Config(format!("the SIP edge could not start: {e}")))?;
    // The REST API ends live calls through the edge (`POST …/Calls/{CA}.json`).
    state.set_live_calls(Arc::new(handle.live_calls()));
    tracing::info!(
        sip = ?handle.sip_addr(),
        tls = ?handle.tls_addr(),
        suffix = %suffix,
        media = %media,
        "SIP edge started"
    );
    Ok(Some(Box::pin(async move {
        tracing::info!("stopping the SIP edge");
        handle.shutdown().await;
    })))
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
    fn rtp_priority_is_a_fifo_priority_from_the_flag_or_the_file() {
        assert_eq!(sip_options(&parse(&[])).unwrap().rtp_priority, None);
        let o = sip_options(&parse(&["--rtp-priority", "10"])).unwrap();
        assert_eq!(o.rtp_priority.map(RealtimePriority::get), Some(10));
        for bad in ["0", "100", "-1", "high"] {
            let e = parse_rtp_priority(bad).unwrap_err();
            assert!(e.contains("1-99"), "{bad}: {e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        std::fs::write(&path, "rtp_priority = 20\n").unwrap();
        let o = sip_options(&parse(&["--config", path.to_str().unwrap()])).unwrap();
        assert_eq!(o.rtp_priority.map(RealtimePriority::get), Some(20));
        std::fs::write(&path, "rtp_priority = 0\n").unwrap();
        let e = sip_options(&parse(&["--config", path.to_str().unwrap()])).unwrap_err();
        assert!(e.message.contains("rtp_priority"), "{}", e.message);
    }

    #[test]
    fn sip_settings_come_from_flags_or_the_file() {
        let o = sip_options(&parse(&[])).unwrap();
        assert!(!o.enabled(), "no SIP edge by default");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        std::fs::write(
            &path,
            "sip_listen = \"0.0.0.0:5060\"\nsip_domain_suffix = \"sip.example.com\"\n\
             rtp_ports = \"30000-30999\"\nmedia_address = \"203.0.113.10\"\n",
        )
        .unwrap();
        let config = path.to_str().unwrap();
        // The serve options accept the file's SIP keys, and take the suffix for the API.
        let (opts, _) = super::super::serve::options(&parse(&["--config", config])).unwrap();
        assert_eq!(opts.sip_domain_suffix.as_deref(), Some("sip.example.com"));
        let o = sip_options(&parse(&["--config", config, "--rtp-ports", "40000-40099"])).unwrap();
        assert_eq!(o.listen, Some("0.0.0.0:5060".parse().unwrap()));
        assert_eq!(o.rtp_ports, 40000..=40099, "the flag wins");
        assert_eq!(media_address(&o), Some("203.0.113.10".parse().unwrap()));
        // The edge needs a suffix, and a media address when listening on 0.0.0.0.
        let e = sip_options(&parse(&["--sip-listen", "127.0.0.1:5060"])).unwrap_err();
        assert!(e.message.contains("--sip-domain-suffix"), "{}", e.message);
        let e = sip_options(&parse(&[
            "--sip-listen",
            "0.0.0.0:5060",
            "--sip-domain-suffix",
            "sip.example.com",
        ]))
        .unwrap_err();
        assert!(e.message.contains("--media-address"), "{}", e.message);
        let o = sip_options(&parse(&[
            "--sip-listen",
            "127.0.0.1:5060",
            "--sip-domain-suffix",
            "sip.example.com",
        ]))
        .unwrap();
        assert_eq!(media_address(&o), Some("127.0.0.1".parse().unwrap()));
        let e = sip_options(&parse(&["--sip-tls-listen", "127.0.0.1:5061"])).unwrap_err();
        assert!(e.message.contains("--sip-tls-cert"), "{}", e.message);
    }

    #[test]
    fn rtp_port_ranges() {
        assert_eq!(parse_rtp_ports("20000-20099").unwrap(), 20000..=20099);
        for bad in ["", "20000", "2-1", "0-10", "a-b", "10-10", "1-70000"] {
            assert!(parse_rtp_ports(bad).is_err(), "{bad}");
        }
    }
}
