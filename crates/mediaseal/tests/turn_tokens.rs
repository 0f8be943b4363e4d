//! Issue 12, item 2: TURN credentials from a real `mediaseal serve` (`Tokens.json`) are accepted
//! by a real coturn (`use-auth-secret`), which allocates a relay for them with its own client
//! `turnutils_uclient`; a tampered credential, a forged longer lifetime and an expired credential
//! are refused. The official twilio-python `client.tokens.create()` works unchanged, and what it
//! gets works at coturn too. coturn is required: these tests fail, never skip, without it.

mod server;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use mediaseal_test_support::coturn::{Coturn as TurnServer, CoturnOptions};
use serde_json::Value;
use server::{Account, Server, agent, basic};

/// The shared secret written to both coturn's config file and `--turn-secret-file`.
const SECRET: &str = "mediaseal-test-turn-secret-4d1c";

/// A coturn `turnserver` on loopback that relays to loopback peers (`turnutils_uclient`'s), and
/// coturn's own client.
struct Coturn {
    server: TurnServer,
    uclient: PathBuf,
}

impl Coturn {
    fn start(dir: &Path) -> Self {
        let turnserver = mediaseal_test_support::require_tool("turnserver", &["--version"]);
        // Ships in the same Debian package; run with no arguments it prints usage and exits 255.
        let uclient = turnserver.with_file_name("turnutils_uclient");
        assert!(
            uclient.is_file(),
            "turnutils_uclient is missing next to {}; {}",
            turnserver.display(),
            mediaseal_test_support::SETUP_HINT
        );
        let server = TurnServer::start(
            dir,
            &CoturnOptions {
                ip: "127.0.0.1",
                port: mediaseal_test_support::free_udp_port(),
                secret: SECRET,
                relay_ports: None,
                // turnutils_uclient's peers are on loopback, which coturn refuses by default.
                extra: &["allow-loopback-peers"],
                prefix: &[],
            },
        );
        Self { server, uclient }
    }

    fn port(&self) -> u16 {
        self.server.port
    }

    fn log_text(&self) -> String {
        self.server.log_text()
    }

    /// Runs `turnutils_uclient` against this server: one client allocating a UDP relay and
    /// sending through it to a second relayed client (`-y`). True when it exits 0.
    fn allocates(&self, username: &str, credential: &str) -> (bool, String) {
        let out = Command::new(&self.uclient)
            .args([
                "-p",
                &self.port().to_string(),
                "-u",
                username,
                "-w",
                credential,
            ])
            .args(["-y", "-c", "-n", "2", "-m", "1", "127.0.0.1"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

/// A coturn and a `mediaseal serve` pointed at it, and an account on the server.
struct Fixture {
    coturn: Coturn,
    server: Server,
    account: Account,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let coturn = Coturn::start(dir.path());
        let secret_file = dir.path().join("turn.secret");
        std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
        let data = dir.path().join("data");
        let account = server::create_account(&data);
        let turn_url = format!("turn:127.0.0.1:{}?transport=udp", coturn.port());
        let stun_url = format!("stun:127.0.0.1:{}", coturn.port());
        let server = Server::start(
            &data,
            &dir.path().join("server.log"),
            &[
                "--turn-url",
                &stun_url,
                "--turn-url",
                &turn_url,
                "--turn-secret-file",
                secret_file.to_str().unwrap(),
            ],
        );
        Self {
            coturn,
            server,
            account,
            _dir: dir,
        }
    }

    /// `POST Tokens.json` with `form`; the status and the JSON answer.
    fn token(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Tokens.json",
            self.server.url(),
            self.account.sid
        );
        let mut r = agent()
            .post(&url)
            .header("Authorization", basic(&self.account))
            .send_form(form.iter().copied())
            .unwrap();
        let body = r.body_mut().read_to_string().unwrap();
        (
            r.status().as_u16(),
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}")),
        )
    }

    fn assert_allocates(&self, username: &str, credential: &str, what: &str) {
        let (ok, out) = self.coturn.allocates(username, credential);
        assert!(
            ok,
            "coturn refused {what}:\n{out}\n--- turnserver log:\n{}",
            self.coturn.log_text()
        );
    }

    fn assert_refused(&self, username: &str, credential: &str, what: &str) {
        let (ok, out) = self.coturn.allocates(username, credential);
        assert!(!ok, "coturn accepted {what}:\n{out}");
        assert!(
            out.contains("Cannot complete Allocation"),
            "{what} failed for another reason than authentication:\n{out}"
        );
    }
}

/// The TURN server entry's username and credential, which must equal the top-level pair.
fn turn_credentials(token: &Value) -> (String, String) {
    let turn = token["ice_servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["urls"].as_str().unwrap().starts_with("turn:"))
        .unwrap_or_else(|| panic!("no turn: server in {token}"));
    assert_eq!(turn["username"], token["username"]);
    assert_eq!(turn["credential"], token["password"]);
    (
        turn["username"].as_str().unwrap().to_owned(),
        turn["credential"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn coturn_accepts_minted_credentials_and_refuses_tampered_and_expired_ones() {
    let f = Fixture::start();

    let (status, token) = f.token(&[("Ttl", "600")]);
    assert_eq!(status, 201, "{token}");
    let (username, credential) = turn_credentials(&token);
    f.assert_allocates(&username, &credential, "a fresh credential");

    // One changed character of the credential.
    let mut tampered = credential.clone().into_bytes();
    tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    f.assert_refused(&username, &tampered, "a tampered credential");

    // The same credential with a later expiry in the username: the lifetime cannot be stretched.
    let (expiry, sid) = username.split_once(':').unwrap();
    let stretched = format!("{}:{sid}", expiry.parse::<u64>().unwrap() + 86_400);
    f.assert_refused(&stretched, &credential, "a username with a forged expiry");

    // A one-second credential, used after it expired.
    let (status, short) = f.token(&[("Ttl", "1")]);
    assert_eq!(status, 201, "{short}");
    let (username, credential) = turn_credentials(&short);
    let expiry: u64 = username.split_once(':').unwrap().0.parse().unwrap();
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        <= expiry
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    f.assert_refused(&username, &credential, "an expired credential");

    // The secret never reaches the server's log.
    let mut log = String::new();
    std::fs::File::open(&f.server.log)
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(
        !log.contains(SECRET),
        "the TURN secret is in the server log"
    );
}

#[test]
fn twilio_python_tokens_create_works_unchanged_and_coturn_accepts_it() {
    let f = Fixture::start();
    let out = Command::new(server::python())
        .arg(server::workspace_root().join("interop/twilio/nts_tokens.py"))
        .args([
            f.server.url(),
            f.account.sid.clone(),
            f.account.token.clone(),
        ])
        .arg("3600")
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "twilio-python's tokens.create() failed (see its output above)"
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(token["ttl"], "3600");
    let (username, credential) = turn_credentials(&token);
    f.assert_allocates(&username, &credential, "twilio-python's credential");
}
