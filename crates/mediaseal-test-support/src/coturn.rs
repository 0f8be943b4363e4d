//! A real coturn `turnserver` for the TURN tests, with the shared-secret scheme
//! (`use-auth-secret`) mediaseal's TURN credentials are minted for.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `turnserver`; stopped (by its own PID) when dropped.
#[derive(Debug)]
pub struct Coturn {
    child: Child,
    /// Its UDP listening port.
    pub port: u16,
    /// Its log file.
    pub log: PathBuf,
}

/// How to run it.
#[derive(Debug, Clone)]
pub struct CoturnOptions<'a> {
    /// Listening and relay address.
    pub ip: &'a str,
    /// Listening port (UDP).
    pub port: u16,
    /// The `static-auth-secret`.
    pub secret: &'a str,
    /// Relay ports (`min-port`, `max-port`), so captures can name them.
    pub relay_ports: Option<(u16, u16)>,
    /// Extra configuration lines (e.g. `allow-loopback-peers`).
    pub extra: &'a [&'a str],
    /// Runs it under this prefix (e.g. `["ip", "netns", "exec", "ns"]`), or as it is.
    pub prefix: &'a [&'a str],
}

impl Coturn {
    /// Starts coturn from a config file written in `dir`, so the secret is not on its command
    /// line, and waits until it serves. Fails the test if it is missing or does not start.
    #[track_caller]
    pub fn start(dir: &Path, options: &CoturnOptions<'_>) -> Self {
        let turnserver = crate::require_tool("turnserver", &["--version"]);
        let log = dir.join("turnserver.log");
        let conf = dir.join("turnserver.conf");
        let mut text = format!(
            "listening-ip={ip}\nrelay-ip={ip}\nlistening-port={port}\nuse-auth-secret\n\
             static-auth-secret={secret}\nrealm=mediaseal.test\nfingerprint\nno-tls\nno-dtls\n\
             no-cli\nuserdb={db}\npidfile={pid}\nlog-file={log}\nsimple-log\nno-stdout-log\n",
            ip = options.ip,
            port = options.port,
            secret = options.secret,
            db = dir.join("turndb").display(),
            pid = dir.join("turnserver.pid").display(),
            log = log.display(),
        );
        if let Some((min, max)) = options.relay_ports {
            text.push_str(&format!("min-port={min}\nmax-port={max}\n"));
        }
        for line in options.extra {
            text.push_str(line);
            text.push('\n');
        }
        std::fs::write(&conf, text).expect("write turnserver.conf");
        let mut command = match options.prefix.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&turnserver);
                c
            }
            None => Command::new(&turnserver),
        };
        let child = command
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", turnserver.display()));
        let mut coturn = Self {
            child,
            port: options.port,
            log,
        };
        coturn.wait_ready();
        coturn
    }

    /// What it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("turnserver exited with {status}:\n{}", self.log_text());
            }
            if self.log_text().contains("Total General servers") {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("turnserver did not start:\n{}", self.log_text());
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        // Our own child, by PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
