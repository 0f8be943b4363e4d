//! `mediaseal download SID`: fetch a sealed object from Twilio (or a mediaseal server) and open
//! it with the customer's private key in one step.
//!
//! - `RE…` (voice recording, `rsa-aes`): reads the recording's `encryption_details`, downloads
//!   the media and verifies the GCM tag before the output appears.
//! - `RT…` / `CJ…` (video recording / composition, `s3-cbc`): asks `/Media` for the download URL
//!   (never following the redirect with the credentials), downloads it without credentials and
//!   reads the key material from the `x-amz-meta-*` headers, as seed 001 does by hand.
//!
//! The ciphertext streams straight into the decryption; plaintext only ever goes to a temporary
//! file beside `--out`, renamed into place once complete (and, for GCM, authenticated).

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use mediaseal_crypto::{AtomicFile, Envelope, PrivateKey, Scheme};
use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};
use zeroize::Zeroizing;

use crate::error::CliError;
use crate::io_util::{Output, Progress, is_dash, load_private_key};

/// Options of `mediaseal download`.
#[derive(Debug, Args)]
pub(crate) struct DownloadArgs {
    /// What to fetch: a voice recording (RE…), a video recording (RT…) or a composition (CJ…).
    #[arg(value_name = "SID")]
    pub(crate) sid: String,
    /// API credentials: an API key and its secret (SK…:SECRET) or an account and its auth token
    /// (AC…:TOKEN). Prefer the environment variable, which other users cannot see in `ps`.
    #[arg(
        long,
        value_name = "SK…:SECRET|AC…:TOKEN",
        env = "MEDIASEAL_CREDENTIALS",
        hide_env_values = true
    )]
    pub(crate) credentials: String,
    /// Your RSA private key (PEM or DER; PKCS#8 or PKCS#1).
    #[arg(long = "private-key", value_name = "PEM")]
    pub(crate) private_key: PathBuf,
    /// Where to write the decrypted media, or - for standard output.
    #[arg(long, value_name = "FILE|-")]
    pub(crate) out: PathBuf,
    /// Talk to this server instead of Twilio (<https://api.twilio.com> for RE…,
    /// <https://video.twilio.com> for RT… and CJ…), e.g. `http://127.0.0.1:8080`.
    #[arg(long = "base-url", value_name = "URL")]
    pub(crate) base_url: Option<String>,
    /// The account that owns an RE… recording, when --credentials is an API key (SK…).
    #[arg(long = "account-sid", value_name = "AC…")]
    pub(crate) account_sid: Option<String>,
    /// Never show a progress bar.
    #[arg(long, short)]
    pub(crate) quiet: bool,
}

const API_BASE: &str = "https://api.twilio.com";
const VIDEO_BASE: &str = "https://video.twilio.com";

fn is_sid(s: &str, prefix: &str) -> bool {
    s.len() == 34 && s.starts_with(prefix) && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

struct Credentials {
    user: String,
    secret: Zeroizing<String>,
}

fn parse_credentials(text: &str) -> Result<Credentials, CliError> {
    let bad = || {
        CliError::usage(
            "--credentials must be SK…:SECRET (an API key) or AC…:TOKEN (an account and its auth token)",
        )
    };
    let (user, secret) = text.split_once(':').ok_or_else(bad)?;
    if !(is_sid(user, "SK") || is_sid(user, "AC")) || secret.is_empty() {
        return Err(bad());
    }
    Ok(Credentials {
        user: user.to_owned(),
        secret: Zeroizing::new(secret.to_owned()),
    })
}

/// What kind of object a SID names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Voice,
    VideoRecording,
    Composition,
}

impl Kind {
    fn of(sid: &str) -> Result<Self, CliError> {
        for (prefix, kind) in [
            ("RE", Self::Voice),
            ("RT", Self::VideoRecording),
            ("CJ", Self::Composition),
        ] {
            if is_sid(sid, prefix) {
                return Ok(kind);
            }
        }
        Err(CliError::usage(format!(
            "'{sid}' is not a recording or composition SID: expected RE…, RT… or CJ… followed by 32 hex digits"
        )))
    }

    fn noun(self) -> &'static str {
        match self {
            Self::Voice | Self::VideoRecording => "recording",
            Self::Composition => "composition",
        }
    }
}

pub(crate) fn run(args: &DownloadArgs) -> Result<(), CliError> {
    let kind = Kind::of(&args.sid)?;
    let creds = parse_credentials(&args.credentials)?;
    let key = load_private_key(&args.private_key)?;
    if !is_dash(&args.out) && args.out.is_dir() {
        return Err(CliError::new(format!(
            "'{}' is a directory; --out needs a file name",
            args.out.display()
        )));
    }
    // HTTPS to Twilio goes through rustls on AWS-LC, like the rest of mediaseal.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let base = args.base_url.clone().unwrap_or_else(|| {
        if kind == Kind::Voice {
            API_BASE
        } else {
            VIDEO_BASE
        }
        .to_owned()
    });
    let base = base.trim_end_matches('/').to_owned();
    if !(base.starts_with("https://") || base.starts_with("http://")) {
        return Err(CliError::usage(format!(
            "--base-url '{base}' is not an http:// or https:// URL"
        )));
    }
    let api = client(false)?;
    let (response, envelope) = match kind {
        Kind::Voice => fetch_voice(&api, &base, args, &creds)?,
        Kind::VideoRecording | Kind::Composition => fetch_video(&api, &base, args, &creds, kind)?,
    };
    write_out(args, response, envelope.as_ref(), &key)
}

fn client(follow_redirects: bool) -> Result<Client, CliError> {
    Client::builder()
        .user_agent(concat!("mediaseal/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        // In the blocking client this bounds each read, not the whole body: large media takes
        // as long as it takes, only two minutes of silence on the wire is an error.
        .timeout(Duration::from_secs(120))
        .redirect(if follow_redirects {
            reqwest::redirect::Policy::limited(5)
        } else {
            reqwest::redirect::Policy::none()
        })
        .build()
        .map_err(|e| CliError::new(format!("cannot set up HTTPS: {e}")))
}

fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| url.to_owned())
}

fn send(request: reqwest::blocking::RequestBuilder, url: &str) -> Result<Response, CliError> {
    request.send().map_err(|e| {
        let reason = e.without_url().to_string();
        CliError::new(format!("cannot reach {}: {reason}", host_of(url)))
            .with_hint("check the network, or pass --base-url to talk to another server")
    })
}

/// The `message` of a Twilio-shaped error body, if there is one.
fn api_message(response: Response) -> Option<String> {
    let body: serde_json::Value = response.json().ok()?;
    body.get("message")
        .and_then(|m| m.as_str())
        .map(str::to_owned)
}

/// Turns a failed API answer into words.
fn api_error(response: Response, kind: Kind, sid: &str) -> CliError {
    let status = response.status();
    let message = api_message(response);
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            CliError::new(format!("the credentials were refused (HTTP {})", status.as_u16()))
                .with_hint("check the SID and secret given to --credentials (an API key SK…:SECRET or AC…:AUTH_TOKEN)")
        }
        StatusCode::NOT_FOUND => {
            let what = format!("no such {} in this account: {sid}", kind.noun());
            match message.filter(|m| m.contains("has no media")) {
                Some(m) => CliError::new(m),
                None => CliError::new(what),
            }
        }
        other => CliError::new(format!(
            "the server answered HTTP {}{}",
            other.as_u16(),
            message.map(|m| format!(": {m}")).unwrap_or_default()
        )),
    }
}

fn fetch_voice(
    api: &Client,
    base: &str,
    args: &DownloadArgs,
    creds: &Credentials,
) -> Result<(Response, Option<Envelope>), CliError> {
    let account = if creds.user.starts_with("AC") {
        if let Some(given) = &args.account_sid
            && given != &creds.user
        {
            return Err(CliError::usage(format!(
                "--account-sid {given} differs from the account in --credentials ({})",
                creds.user
            )));
        }
        creds.user.clone()
    } else {
        match &args.account_sid {
            Some(a) if is_sid(a, "AC") => a.clone(),
            Some(a) => {
                return Err(CliError::usage(format!(
                    "--account-sid '{a}' is not an account SID (AC…)"
                )));
            }
            None => {
                return Err(CliError::usage(
                    "voice recordings live under an account: with an API key (SK…) in --credentials, also pass \
                     --account-sid AC…",
                ));
            }
        }
    };
    let path = format!(
        "{base}/2010-04-01/Accounts/{account}/Recordings/{}",
        args.sid
    );
    let url = format!("{path}.json");
    let response = send(
        api.get(&url)
            .basic_auth(&creds.user, Some(creds.secret.as_str())),
        &url,
    )?;
    if !response.status().is_success() {
        return Err(api_error(response, Kind::Voice, &args.sid));
    }
    let text = response
        .text()
        .map_err(|e| CliError::new(format!("cannot read the recording from {url}: {e}")))?;
    let resource: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| CliError::new(format!("the recording at {url} is not JSON: {e}")))?;
    let encrypted = resource
        .get("encryption_details")
        .is_some_and(|d| !d.is_null());
    let envelope = if encrypted {
        Some(
            mediaseal_crypto::parse_details(&text)
                .map_err(|e| CliError::details(&format!("recording {}", args.sid), &e))?,
        )
    } else {
        None
    };
    // The media may redirect to a CDN; reqwest drops the credentials when it leaves the host.
    let media = client(true)?;
    let response = send(
        media
            .get(&path)
            .basic_auth(&creds.user, Some(creds.secret.as_str())),
        &path,
    )?;
    if !response.status().is_success() {
        return Err(api_error(response, Kind::Voice, &args.sid));
    }
    Ok((response, envelope))
}

fn fetch_video(
    api: &Client,
    base: &str,
    args: &DownloadArgs,
    creds: &Credentials,
    kind: Kind,
) -> Result<(Response, Option<Envelope>), CliError> {
    let collection = if kind == Kind::Composition {
        "Compositions"
    } else {
        "Recordings"
    };
    let url = format!("{base}/v1/{collection}/{}/Media", args.sid);
    let response = send(
        api.get(&url)
            .basic_auth(&creds.user, Some(creds.secret.as_str())),
        &url,
    )?;
    let status = response.status();
    if !(status.is_redirection() || status.is_success()) {
        return Err(api_error(response, kind, &args.sid));
    }
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Option<serde_json::Value> = response.json().ok();
    let target = body
        .as_ref()
        .and_then(|b| b.get("redirect_to"))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .or(location)
        .ok_or_else(|| {
            CliError::new(format!(
                "{url} gave no download URL (no redirect_to, no Location)"
            ))
        })?;
    // The download URL is its own permission (presigned): it gets no credentials.
    let media = client(true)?;
    let response = send(media.get(&target), &target)?;
    match response.status() {
        s if s.is_success() => {}
        StatusCode::FORBIDDEN => {
            return Err(CliError::new(
                "the download URL was refused (HTTP 403); it may have expired",
            )
            .with_hint("run the command again for a fresh URL"));
        }
        StatusCode::NOT_FOUND => {
            return Err(CliError::new(format!(
                "the media of {} no longer exists",
                args.sid
            )));
        }
        other => {
            return Err(CliError::new(format!(
                "the download answered HTTP {}",
                other.as_u16()
            )));
        }
    }
    let lines: String = response
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-amz-meta-"))
        .filter_map(|(name, value)| value.to_str().ok().map(|v| format!("{name}: {v}\n")))
        .collect();
    let encrypted = response.headers().contains_key("x-amz-meta-x-amz-key")
        || response.headers().contains_key("x-amz-meta-x-amz-iv");
    let envelope = if encrypted {
        Some(
            mediaseal_crypto::parse_details(&lines)
                .map_err(|e| CliError::details(&format!("the headers of {}", args.sid), &e))?,
        )
    } else {
        None
    };
    Ok((response, envelope))
}

/// Writes the plaintext to `--out`: decrypted and verified when sealed, as downloaded otherwise.
fn write_out(
    args: &DownloadArgs,
    response: Response,
    envelope: Option<&Envelope>,
    key: &PrivateKey,
) -> Result<(), CliError> {
    let total = response.content_length();
    let progress = Progress::new(args.quiet, total, "downloading");
    let reader = progress.wrap(Box::new(response));
    let result = match envelope {
        None => copy_plain(reader, &args.out),
        Some(env) if !is_dash(&args.out) => {
            mediaseal_crypto::open_to_path(reader, &args.out, env, key)
                .map(|_| ())
                .map_err(CliError::decrypt)
        }
        Some(env) => to_stdout(reader, &args.out, env, key),
    };
    progress.finish();
    result
}

fn copy_plain(mut reader: Box<dyn Read + Send>, out: &Path) -> Result<(), CliError> {
    if is_dash(out) {
        let mut stdout = Output::create(out, true)?;
        io::copy(&mut reader, &mut stdout).map_err(|e| CliError::io("download into", out, &e))?;
        return stdout.commit(out);
    }
    let mut file =
        AtomicFile::create(out).map_err(|e| CliError::io("create a file beside", out, &e))?;
    io::copy(&mut reader, &mut file).map_err(|e| CliError::io("download into", out, &e))?;
    file.commit().map_err(|e| CliError::io("write", out, &e))
}

fn to_stdout(
    reader: Box<dyn Read + Send>,
    out: &Path,
    env: &Envelope,
    key: &PrivateKey,
) -> Result<(), CliError> {
    let stdout = Output::create(out, true)?;
    let result = if env.scheme == Scheme::GcmOaep {
        // A GCM tag comes last: keep the ciphertext (never plaintext) in an unlinked temporary
        // file so nothing is released before it is verified.
        let spooled = mediaseal_crypto::spool_ciphertext(reader)
            .map_err(|e| CliError::io("buffer", Path::new("-"), &e))?;
        mediaseal_crypto::open_seekable_to_writer(spooled, stdout, env, key)
    } else {
        mediaseal_crypto::open_seekable_to_writer(OneWay(reader), stdout, env, key)
    };
    result.map_err(CliError::decrypt)?.commit(out)
}

/// A stream where `Seek` is required but never used (CBC opens in one pass).
struct OneWay(Box<dyn Read + Send>);

impl Read for OneWay {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl io::Seek for OneWay {
    fn seek(&mut self, _: io::SeekFrom) -> io::Result<u64> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "a download cannot be rewound",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_sids() {
        assert!(parse_credentials("SK0123456789abcdef0123456789abcdef:secret").is_ok());
        assert!(parse_credentials("AC0123456789abcdef0123456789abcdef:tok:en").is_ok());
        for bad in [
            "",
            "nocolon",
            "SK123:x",
            "AC0123456789abcdef0123456789abcdef:",
            "XX0123456789abcdef0123456789abcdef:s",
        ] {
            assert!(parse_credentials(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Kind::of("RE0123456789abcdef0123456789abcdef").unwrap(),
            Kind::Voice
        );
        assert_eq!(
            Kind::of("RT0123456789abcdef0123456789abcdef").unwrap(),
            Kind::VideoRecording
        );
        assert_eq!(
            Kind::of("CJ0123456789abcdef0123456789abcdef").unwrap(),
            Kind::Composition
        );
        assert!(Kind::of("CA0123456789abcdef0123456789abcdef").is_err());
        assert!(Kind::of("RT0123").is_err());
    }
}
