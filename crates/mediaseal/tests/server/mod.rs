//! Running real `mediaseal serve` processes for tests: start, wait for health, kill -9, restart.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses a different part of the harness"
)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_mediaseal")
}

pub fn workspace_root() -> PathBuf {
    mediaseal_test_support::workspace_root()
}

/// The Python with the independent implementations installed, or a clear failure.
pub fn python() -> PathBuf {
    mediaseal_test_support::python(&[])
}

pub fn free_port() -> u16 {
    mediaseal_test_support::free_port()
}

/// `width` consecutive free ports; returns the first.
#[allow(dead_code)]
pub fn free_ports(width: u16) -> u16 {
    mediaseal_test_support::free_ports(width)
}

pub struct Account {
    pub sid: String,
    pub token: String,
}

pub fn create_account(data: &Path) -> Account {
    let out = Command::new(bin())
        .args(["account", "create", "--data"])
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "account create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    Account {
        sid: v["sid"].as_str().unwrap().to_owned(),
        token: v["auth_token"].as_str().unwrap().to_owned(),
    }
}

/// A running server process; killed when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub data: PathBuf,
    pub log: PathBuf,
    pub extra: Vec<String>,
}

impl Server {
    pub fn start(data: &Path, log: &Path, extra: &[&str]) -> Self {
        Self::start_on(
            free_port(),
            data,
            log,
            extra.iter().map(|s| (*s).to_owned()).collect(),
        )
    }

    pub fn start_on(port: u16, data: &Path, log: &Path, extra: Vec<String>) -> Self {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(bin())
            .args(["serve", "--data"])
            .arg(data)
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--log-format",
                "json",
                // The tests' webhook receivers are on loopback, which is refused by default.
                "--allow-webhook-network",
                "127.0.0.0/8",
            ])
            .args(&extra)
            .env("MEDIASEAL_LOG", "debug,sqlx=warn,hyper=info,h2=info")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let server = Self {
            child,
            port,
            data: data.to_path_buf(),
            log: log.to_path_buf(),
            extra,
        };
        server.wait_healthy();
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(mut r) = ureq::get(&format!("{}/healthz", self.url())).call() {
                let mut s = String::new();
                let _ = r.body_mut().as_reader().read_to_string(&mut s);
                if s.starts_with("ok") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "server on port {} did not become healthy; log at {}",
            self.port,
            self.log.display()
        );
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn restart(&mut self) {
        self.kill9();
        let again = Self::start_on(self.port, &self.data, &self.log, self.extra.clone());
        *self = again;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn basic(a: &Account) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", a.sid, a.token))
    )
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// Every file under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p)
                && bytes.windows(needle.len()).any(|w| w == needle)
            {
                hits.push(p);
            }
        }
    }
    hits
}

pub fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}
