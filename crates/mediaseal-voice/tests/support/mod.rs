//! Shared pieces of the SIP edge's real-peer tests: test certificates, the edge with
//! in-memory seams, a tiny HTTP application serving TwiML and recording every webhook, the
//! Python peers (`interop/voice/*.py`), baresip driven over ctrl_tcp, SIPp, and a Goertzel
//! tone check. Every child process is killed by PID when its guard drops; a missing tool fails
//! the test (nothing is skipped).

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::IntoResponse;
use mediaseal_call::{Domain, DomainCredential, IpRange};
use mediaseal_crypto::PrivateKey;
use mediaseal_service::clock::SystemClock;
use mediaseal_service::sid::{hex, new_sid};
use mediaseal_service::{ServiceConfig, Services, SinkFactory};
use mediaseal_sip::auth::Ha1Set;
use mediaseal_store::model::{
    Account, PublicKeyRecord, Recording, RecordingFilter, RecordingSettings,
};
use mediaseal_store::{FsObjectStore, MetadataStore, ObjectStore, SqlStore};
use mediaseal_twiml::HttpMethod;
use mediaseal_voice::{
    CallRecorder, HttpWebhooks, MemoryDirectory, MemoryLedger, MemoryRecorder, MemoryTokens,
    SealedCallRecorder, Seams, VoiceConfig, VoiceEdge, VoiceEdgeHandle,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

pub const SUFFIX: &str = "sip.mediaseal.test";
pub const ACCOUNT: &str = "AC00000000000000000000000000000001";
pub const AUTH_TOKEN: &str = "12345678901234567890123456789012";

/// Tests in one binary run one at a time: they share loopback ports and two CPU cores.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: OnceLock<tokio::sync::Mutex<()>> = OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::Mutex::new(()))
        .lock()
        .await
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

// ------------------------------------------------------------------------------------------
// Certificates.

/// A test CA, a leaf for every loopback address the tests use (and the domain wildcard),
/// and an unrelated CA with its own leaf (an "untrusted" peer).
pub struct Certs {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// cert + key in one file (baresip's `sip_certificate`).
    pub bundle: PathBuf,
    pub untrusted_cert: PathBuf,
    pub untrusted_key: PathBuf,
}

fn leaf_params() -> rcgen::CertificateParams {
    let mut p = rcgen::CertificateParams::new(vec!["localhost".to_owned(), format!("*.{SUFFIX}")])
        .expect("params");
    for ip in ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        p.subject_alt_names
            .push(rcgen::SanType::IpAddress(ip.parse().expect("ip")));
    }
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "mediaseal test peer");
    p
}

pub fn certs() -> Certs {
    let dir = tempfile::tempdir().expect("tempdir");
    let make = |name: &str| {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("ca");
        let leaf_key = rcgen::KeyPair::generate().expect("key");
        let leaf = leaf_params().signed_by(&leaf_key, &ca).expect("leaf");
        (ca.pem(), leaf.pem(), leaf_key.serialize_pem())
    };
    let (ca, cert, key) = make("mediaseal test CA");
    let (_, bad_cert, bad_key) = make("someone else's CA");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p
    };
    Certs {
        ca: write("ca.pem", &ca),
        cert: write("cert.pem", &cert),
        key: write("key.pem", &key),
        bundle: write("bundle.pem", &format!("{cert}{key}")),
        untrusted_cert: write("untrusted.pem", &bad_cert),
        untrusted_key: write("untrusted-key.pem", &bad_key),
        dir,
    }
}

// ------------------------------------------------------------------------------------------
// The customer's application.

#[derive(Debug, Clone)]
pub struct Hook {
    pub method: String,
    pub url: String,
    pub path: String,
    pub params: Vec<(String, String)>,
    pub signature: Option<String>,
}

impl Hook {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
pub struct AppState {
    pub twiml: Mutex<HashMap<String, String>>,
    pub files: Mutex<HashMap<String, Vec<u8>>>,
    pub hooks: Mutex<Vec<Hook>>,
    pub base: Mutex<String>,
}

pub struct App {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    State(state): State<Arc<AppState>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let base = state.base.lock().expect("lock").clone();
    let path = uri.path().to_owned();
    let mut params: Vec<(String, String)> = url::form_urlencoded::parse(body.as_ref())
        .into_owned()
        .collect();
    if method == Method::GET {
        params = url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    }
    if let Some(file) = state.files.lock().expect("lock").get(&path).cloned() {
        return (StatusCode::OK, file).into_response();
    }
    state.hooks.lock().expect("lock").push(Hook {
        method: method.to_string(),
        url: format!("{base}{uri}"),
        path: path.clone(),
        params,
        signature: headers
            .get("x-twilio-signature")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    });
    match state.twiml.lock().expect("lock").get(&path).cloned() {
        Some(t) => (StatusCode::OK, [("content-type", "text/xml")], t).into_response(),
        None => (
            StatusCode::OK,
            [("content-type", "text/xml")],
            "<Response/>".to_owned(),
        )
            .into_response(),
    }
}

impl App {
    pub async fn start() -> Self {
        let state = Arc::new(AppState::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind app");
        let addr = listener.local_addr().expect("addr");
        *state.base.lock().expect("lock") = format!("http://{addr}");
        let router = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { addr, state, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set(&self, path: &str, twiml: &str) {
        self.state
            .twiml
            .lock()
            .expect("lock")
            .insert(path.to_owned(), twiml.to_owned());
    }

    /// Serves `bytes` at `path` (audio for `<Play>`).
    pub fn file(&self, path: &str, bytes: Vec<u8>) {
        self.state
            .files
            .lock()
            .expect("lock")
            .insert(path.to_owned(), bytes);
    }

    pub fn hooks(&self) -> Vec<Hook> {
        self.state.hooks.lock().expect("lock").clone()
    }

    pub fn hooks_to(&self, path: &str) -> Vec<Hook> {
        self.hooks()
            .into_iter()
            .filter(|h| h.path == path)
            .collect()
    }

    pub async fn wait_hook(&self, path: &str, timeout: Duration) -> Option<Hook> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Some(h) = self.hooks_to(path).into_iter().next() {
                return Some(h);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

// ------------------------------------------------------------------------------------------
// The edge.

pub struct Edge {
    pub handle: VoiceEdgeHandle,
    pub directory: MemoryDirectory,
    pub recorder: MemoryRecorder,
    pub ledger: MemoryLedger,
}

pub struct EdgeOptions<'a> {
    pub certs: &'a Certs,
    pub rtp_ports: (u16, u16),
    pub recorder: MemoryRecorder,
    /// Records through this instead of `recorder` (the sealed recorder of a real service).
    pub call_recorder: Option<Arc<dyn CallRecorder>>,
    pub recorder_queue: usize,
    pub trust_ca: bool,
}

impl<'a> EdgeOptions<'a> {
    pub fn new(certs: &'a Certs, rtp_low: u16) -> Self {
        Self {
            certs,
            rtp_ports: (rtp_low, rtp_low + 199),
            recorder: MemoryRecorder::new(),
            call_recorder: None,
            recorder_queue: 500,
            trust_ca: true,
        }
    }
}

pub async fn start_edge(opts: EdgeOptions<'_>) -> Edge {
    let mut config = VoiceConfig::new(SUFFIX, "127.0.0.1".parse().expect("ip"));
    config.sip_listen = Some("127.0.0.1:0".parse().expect("addr"));
    config.sip_tls_listen = Some("127.0.0.1:0".parse().expect("addr"));
    config.sip_tls_cert = Some(opts.certs.cert.clone());
    config.sip_tls_key = Some(opts.certs.key.clone());
    config.sip_ca = Some(if opts.trust_ca {
        opts.certs.ca.clone()
    } else {
        opts.certs.untrusted_cert.clone()
    });
    config.rtp_ports = opts.rtp_ports.0..=opts.rtp_ports.1;
    config.recorder_queue = opts.recorder_queue;
    config.webhook_timeout = Duration::from_secs(5);
    let directory = MemoryDirectory::new();
    let tokens = MemoryTokens::new();
    tokens.insert(ACCOUNT, AUTH_TOKEN);
    let client = mediaseal_voice::webhook::http_client(Duration::from_secs(5)).expect("client");
    let ledger = MemoryLedger::new();
    let seams = Seams {
        directory: Arc::new(directory.clone()),
        webhooks: Arc::new(HttpWebhooks::new(client, Arc::new(tokens))),
        recorder: opts
            .call_recorder
            .clone()
            .unwrap_or_else(|| Arc::new(opts.recorder.clone())),
        ledger: Arc::new(ledger.clone()),
    };
    let handle = VoiceEdge::start(config, seams).await.expect("edge starts");
    Edge {
        handle,
        directory,
        recorder: opts.recorder,
        ledger,
    }
}

impl Edge {
    pub fn tls_port(&self) -> u16 {
        self.handle.tls_addr().expect("tls").port()
    }

    pub fn sip_port(&self) -> u16 {
        self.handle.sip_addr().expect("sip").port()
    }

    /// Adds `<name>.sip.mediaseal.test` whose VoiceUrl is `app/<path>`.
    pub fn domain(&self, name: &str, secure: bool, voice_url: &str) -> Domain {
        let d = Domain {
            sid: format!("SD{:0>32}", name.len()),
            account_sid: ACCOUNT.to_owned(),
            name: format!("{name}.{SUFFIX}"),
            secure,
            voice_url: Some(voice_url.parse().expect("url")),
            voice_method: HttpMethod::Post,
            voice_fallback_url: None,
            voice_fallback_method: HttpMethod::Post,
            voice_status_callback_url: None,
            voice_status_callback_method: HttpMethod::Post,
            ip_ranges: vec!["127.0.0.0/8".parse::<IpRange>().expect("range")],
            credentials: Vec::new(),
            sip_registration: false,
            registration_credentials: Vec::new(),
        };
        self.directory.insert(d.clone());
        d
    }

    /// A domain that only admits `user`/`password` (no IP range).
    pub fn domain_with_credentials(&self, name: &str, voice_url: &str, user: &str, password: &str) {
        let mut d = self.domain(name, false, voice_url);
        d.ip_ranges.clear();
        d.credentials = vec![DomainCredential {
            username: user.to_owned(),
            ha1: Ha1Set::compute(user, &d.name, password),
        }];
        self.directory.insert(d);
    }

    pub async fn wait_metric(
        &self,
        what: &str,
        pred: impl Fn(&mediaseal_voice::MetricsSnapshot) -> bool,
    ) {
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            let m = self.handle.metrics();
            if pred(&m) {
                return;
            }
            assert!(Instant::now() < end, "timed out waiting for {what}: {m:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

// ------------------------------------------------------------------------------------------
// Processes.

pub fn python() -> PathBuf {
    mediaseal_test_support::python(&["pylibsrtp"])
}

pub fn tool(name: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is required for this test and was not found on PATH (apt-get install {name})");
}

/// Runs `interop/voice/uac.py` with `args` and returns its JSON.
pub async fn uac(args: &[String]) -> serde_json::Value {
    let script = repo_root().join("interop/voice/uac.py");
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new(python())
            .arg(script)
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("uac.py finished in time")
    .expect("uac.py runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("uac.py output is not JSON ({e}): {stdout}\n{stderr}"))
}

/// Arguments for a TLS call to `ruri` through the edge.
pub fn uac_tls(edge: &Edge, certs: &Certs, ruri: &str) -> Vec<String> {
    vec![
        "--transport".into(),
        "tls".into(),
        "--port".into(),
        edge.tls_port().to_string(),
        "--ruri".into(),
        ruri.into(),
        "--ca".into(),
        certs.ca.display().to_string(),
    ]
}

pub fn ruri(domain: &str) -> String {
    format!("sip:alice@{domain}.{SUFFIX}")
}

/// A running `interop/voice/tls_uas.py`.
pub struct TlsUas {
    child: Child,
}

impl TlsUas {
    pub async fn start(host: &str, cert: &Path, key: &Path, extra: &[&str]) -> Self {
        let script = repo_root().join("interop/voice/tls_uas.py");
        let mut child = Command::new(python())
            .arg(script)
            .args(["--host", host, "--cert"])
            .arg(cert)
            .arg("--key")
            .arg(key)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("tls_uas.py starts");
        // Wait for READY so the edge never dials before the socket listens.
        let stdout = child.stdout.as_mut().expect("stdout");
        let mut first = [0u8; 6];
        tokio::time::timeout(Duration::from_secs(10), stdout.read_exact(&mut first))
            .await
            .expect("tls_uas.py ready in time")
            .expect("tls_uas.py READY");
        assert_eq!(&first, b"READY\n");
        Self { child }
    }

    pub async fn result(mut self) -> serde_json::Value {
        let mut out = String::new();
        let stdout = self.child.stdout.as_mut().expect("stdout");
        tokio::time::timeout(Duration::from_secs(30), stdout.read_to_string(&mut out))
            .await
            .expect("tls_uas.py finished in time")
            .expect("read");
        let line = out.lines().last().unwrap_or_default().to_owned();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("tls_uas.py output ({e}): {out}"))
    }
}

/// A baresip process with its own config directory, driven over ctrl_tcp.
pub struct Baresip {
    child: Child,
    pub dir: PathBuf,
    ctrl: SocketAddr,
    pub log: PathBuf,
}

impl Drop for Baresip {
    fn drop(&mut self) {
        // Reap it before the next test starts a phone on the same fixed ports: a killed process
        // holds its sockets until it has exited.
        let _ = self.child.start_kill();
        let end = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

pub struct BaresipOptions<'a> {
    pub name: &'a str,
    /// sip_listen (TLS is on the port + 1).
    pub listen: SocketAddr,
    pub ctrl: SocketAddr,
    pub tone: u32,
    pub rtp_ports: (u16, u16),
    /// The account line's AOR and parameters.
    pub account: String,
}

impl Baresip {
    pub async fn start(root: &Path, certs: &Certs, o: BaresipOptions<'_>) -> Self {
        let baresip = tool("baresip");
        let dir = root.join(o.name);
        std::fs::create_dir_all(dir.join("snd")).expect("mkdir");
        let ip = o.listen.ip();
        let config = format!(
            "poll_method\t\tepoll\n\
             sip_listen\t\t{listen}\n\
             sip_certificate\t\t{bundle}\n\
             sip_cafile\t\t{ca}\n\
             sip_trans_def\t\ttls\n\
             net_interface\t\t{ip}\n\
             audio_player\t\taufile,{play}\n\
             audio_source\t\tausine,{tone}\n\
             audio_alert\t\taufile,/dev/null\n\
             rtp_ports\t\t{lo}-{hi}\n\
             module_path\t\t/usr/lib/baresip/modules\n\
             module\t\t\tg711.so\n\
             module\t\t\tausine.so\n\
             module\t\t\taufile.so\n\
             module\t\t\tsrtp.so\n\
             module\t\t\tsndfile.so\n\
             snd_path\t\t{snd}\n\
             module_app\t\taccount.so\n\
             module_app\t\tmenu.so\n\
             module_app\t\tctrl_tcp.so\n\
             ctrl_tcp_listen\t\t{ctrl}\n\
             ausrc_srate\t\t48000\n\
             auplay_srate\t\t48000\n\
             ausrc_channels\t\t2\n\
             auplay_channels\t\t2\n\
             audio_txmode\t\tpoll\n",
            listen = o.listen,
            bundle = certs.bundle.display(),
            ca = certs.ca.display(),
            play = dir.join("play.wav").display(),
            tone = o.tone,
            lo = o.rtp_ports.0,
            hi = o.rtp_ports.1,
            snd = dir.join("snd").display(),
            ctrl = o.ctrl,
        );
        std::fs::write(dir.join("config"), config).expect("config");
        std::fs::write(dir.join("accounts"), format!("{}\n", o.account)).expect("accounts");
        std::fs::write(dir.join("contacts"), "").expect("contacts");
        let log = dir.join("baresip.log");
        let log_file = std::fs::File::create(&log).expect("log");
        let child = Command::new(baresip)
            .arg("-f")
            .arg(&dir)
            .arg("-s")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone"))
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .expect("baresip starts");
        let mut b = Self {
            child,
            dir,
            ctrl: o.ctrl,
            log,
        };
        // Wait until ctrl_tcp accepts connections.
        let end = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(b.ctrl).await.is_err() {
            if let Ok(Some(status)) = b.child.try_wait() {
                panic!(
                    "baresip {} exited ({status}) before its ctrl_tcp opened: {}",
                    o.name,
                    b.log_text()
                );
            }
            assert!(
                Instant::now() < end,
                "baresip {} did not open its ctrl_tcp on {} in 20 s: {}",
                o.name,
                b.ctrl,
                b.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        b
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Connects to ctrl_tcp.
    pub async fn control(&self) -> Control {
        let s = tokio::net::TcpStream::connect(self.ctrl)
            .await
            .expect("ctrl_tcp");
        Control {
            stream: BufReader::new(s),
            events: Vec::new(),
        }
    }

    /// The decoded audio baresip dumped (`*-dec.wav`), newest first.
    pub fn decoded_wavs(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.dir.join("snd"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        v.retain(|p| p.to_string_lossy().ends_with("-dec.wav"));
        v.sort();
        v.reverse();
        v
    }

    /// `a=crypto` values in SIP messages baresip received (from its `-s` trace), in order.
    pub fn traced_crypto_lines(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter_map(|l| l.trim().strip_prefix("a=crypto:").map(str::to_owned))
            .collect()
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

/// A ctrl_tcp connection (netstring JSON).
pub struct Control {
    stream: BufReader<tokio::net::TcpStream>,
    pub events: Vec<serde_json::Value>,
}

impl Control {
    pub async fn command(&mut self, command: &str, params: &str) {
        let body =
            serde_json::json!({"command": command, "params": params, "token": command}).to_string();
        let msg = format!("{}:{},", body.len(), body);
        self.stream
            .get_mut()
            .write_all(msg.as_bytes())
            .await
            .expect("ctrl write");
    }

    async fn next(&mut self) -> Option<serde_json::Value> {
        let mut len = Vec::new();
        self.stream.read_until(b':', &mut len).await.ok()?;
        len.pop();
        let n: usize = std::str::from_utf8(&len).ok()?.trim().parse().ok()?;
        let mut body = vec![0u8; n + 1];
        self.stream.read_exact(&mut body).await.ok()?;
        body.pop();
        serde_json::from_slice(&body).ok()
    }

    /// Waits for an event of `kind` (`CALL_ESTABLISHED`, `CALL_CLOSED`…).
    pub async fn wait_event(&mut self, kind: &str, timeout: Duration) -> Option<serde_json::Value> {
        let end = tokio::time::Instant::now() + timeout;
        loop {
            let ev = tokio::time::timeout_at(end, self.next()).await.ok()??;
            self.events.push(ev.clone());
            if ev.get("type").and_then(|t| t.as_str()) == Some(kind) {
                return Some(ev);
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Audio checks.

/// 16-bit PCM samples of channel `channel` of a WAV file, and its sample rate.
pub fn read_wav(path: &Path, channel: usize) -> (Vec<i16>, u32, u16) {
    let bytes = std::fs::read(path).expect("read wav");
    wav_samples(&bytes, channel)
}

pub fn wav_samples(bytes: &[u8], channel: usize) -> (Vec<i16>, u32, u16) {
    let info = mediaseal_media::wav::parse_header(bytes).expect("wav header");
    assert_eq!(info.bits_per_sample, 16, "16-bit PCM expected");
    let start = info.data_offset as usize;
    let len = info.data_len(bytes.len() as u64) as usize;
    let data = &bytes[start..start + len];
    let ch = usize::from(info.channels);
    let samples: Vec<i16> = data
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .skip(channel)
        .step_by(ch)
        .collect();
    (samples, info.sample_rate, info.channels)
}

fn goertzel_fraction(x: &[i16], rate: u32, f: f64) -> f64 {
    let k = 2.0 * (2.0 * std::f64::consts::PI * f / f64::from(rate)).cos();
    let (mut s1, mut s2, mut energy) = (0.0f64, 0.0f64, 0.0f64);
    for &v in x {
        let v = f64::from(v);
        energy += v * v;
        let s0 = v + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    if energy == 0.0 {
        return 0.0;
    }
    (s1 * s1 + s2 * s2 - k * s1 * s2) / (energy * x.len() as f64 / 2.0)
}

/// Per half-second window (after skipping `skip_s`), the fraction of power at `f`: (min, mean,
/// windows).
pub fn tone_windows(
    samples: &[i16],
    rate: u32,
    f: f64,
    skip_s: f64,
    end_trim_s: f64,
) -> (f64, f64, usize) {
    let win = (rate / 2) as usize;
    let skip = (skip_s * f64::from(rate)) as usize;
    let trim = (end_trim_s * f64::from(rate)) as usize;
    let end = samples.len().saturating_sub(trim);
    let mut fractions = Vec::new();
    let mut off = skip;
    while off + win <= end {
        fractions.push(goertzel_fraction(&samples[off..off + win], rate, f));
        off += win;
    }
    if fractions.is_empty() {
        return (0.0, 0.0, 0);
    }
    let min = fractions.iter().copied().fold(f64::INFINITY, f64::min);
    let mean = fractions.iter().sum::<f64>() / fractions.len() as f64;
    (min, mean, fractions.len())
}

/// Runs SIPp with a scenario file and returns whether it exited 0, plus its stderr.
pub async fn sipp(
    scenario: &Path,
    transport: &str,
    target: SocketAddr,
    service: &str,
) -> (bool, String) {
    let sipp = tool("sipp");
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new(sipp)
            .arg("-sf")
            .arg(scenario)
            .args([
                "-t",
                transport,
                "-i",
                "127.0.0.1",
                "-p",
                "0",
                "-m",
                "1",
                "-s",
                service,
            ])
            .args(["-nostdin", "-timeout", "10s", "-timeout_error"])
            .arg(target.to_string())
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("sipp finished in time")
    .expect("sipp runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

// ------------------------------------------------------------------------------------------
// A real service layer for the sealed call recorder.

pub const BASE_URL: &str = "https://mediaseal.test";

/// A service layer over the embedded store in a fresh data directory; the account seals voice
/// recordings with `customer`'s public key (`key_sid`).
pub struct SealedService {
    pub data: tempfile::TempDir,
    pub meta: Arc<dyn MetadataStore>,
    pub services: Services,
    pub at_rest: PrivateKey,
    pub customer: PrivateKey,
    pub key_sid: String,
}

pub async fn sealed_service() -> SealedService {
    let data = tempfile::tempdir().expect("data dir");
    let meta: Arc<dyn MetadataStore> = Arc::new(
        SqlStore::open_sqlite(&data.path().join("mediaseal.db"))
            .await
            .expect("sqlite"),
    );
    let objects: Arc<dyn ObjectStore> =
        Arc::new(FsObjectStore::new(data.path().join("objects")).expect("object dir"));
    let at_rest = PrivateKey::generate(2048).expect("at-rest key");
    // The service layer's webhook client is rustls on AWS-LC, as the edge's is.
    mediaseal_voice::tls::install_default_provider();
    let services = Services::new(
        meta.clone(),
        SinkFactory::new(objects, at_rest.public_key().clone()),
        Arc::new(SystemClock),
        ServiceConfig::default(),
    );
    let now = services.now_us();
    meta.insert_account(&Account {
        sid: ACCOUNT.to_owned(),
        parent_sid: None,
        friendly_name: "sealed calls".to_owned(),
        status: "active".to_owned(),
        auth_token: AUTH_TOKEN.to_owned(),
        secondary_auth_token: None,
        date_created: now,
        date_updated: now,
    })
    .await
    .expect("account");
    let customer = PrivateKey::generate(2048).expect("customer key");
    let key_sid = new_sid("CR");
    meta.insert_public_key(&PublicKeyRecord {
        sid: key_sid.clone(),
        account_sid: ACCOUNT.to_owned(),
        friendly_name: "customer".to_owned(),
        spki_der_hex: hex(customer.public_key().spki_der()),
        fingerprint: customer.fingerprint().to_hex(),
        date_created: now,
        date_updated: now,
    })
    .await
    .expect("public key");
    meta.put_recording_settings(&RecordingSettings {
        account_sid: ACCOUNT.to_owned(),
        encryption_enabled: true,
        encryption_public_key_sid: Some(key_sid.clone()),
        date_created: now,
        date_updated: now,
    })
    .await
    .expect("recording settings");
    SealedService {
        data,
        meta,
        services,
        at_rest,
        customer,
        key_sid,
    }
}

impl SealedService {
    pub async fn edge(&self, certs: &Certs, rtp_low: u16) -> Edge {
        let mut opts = EdgeOptions::new(certs, rtp_low);
        opts.call_recorder = Some(Arc::new(SealedCallRecorder::new(
            self.services.clone(),
            BASE_URL,
        )));
        start_edge(opts).await
    }

    pub async fn recordings(&self) -> Vec<Recording> {
        self.meta
            .list_recordings(ACCOUNT, &RecordingFilter::default(), None, 50)
            .await
            .expect("list recordings")
    }

    pub fn object(&self, key: &str) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.services
            .objects()
            .open_blocking(key)
            .expect("object")
            .read_to_end(&mut bytes)
            .expect("read object");
        bytes
    }
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}
