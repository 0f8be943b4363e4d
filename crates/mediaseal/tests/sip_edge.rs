//! End to end through the real `mediaseal serve` process with `--sip-listen`: SIP Domains,
//! credential lists, IP access control lists and their `Auth/Calls` mappings are made over
//! REST, and a real SIP caller (`interop/voice/uac.py`, over UDP on loopback) calls the
//! domain. The edge admits only mapped callers (digest against the mapped credential list, or
//! an address in a mapped IP ACL), answers unknown domains with 404, fetches the domain's
//! `VoiceUrl` (signed with the account's auth token) only for admitted calls, and runs the
//! TwiML it gets back (`<Say>` heard as media through the relay on `--rtp-ports`, then
//! `<Hangup/>`, a BYE). The call then shows in the Calls resource, completed with a duration,
//! and the domain's `VoiceStatusCallbackUrl` gets a signed `completed` callback through the
//! outbox. Changes over REST take effect on the next call. `POST Calls.json` places a secure
//! call to a TLS callee (`interop/voice/tls_uas.py`), over REST and through twilio-python
//! (`interop/twilio/outbound_calls.py`).

mod server;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use server::*;

const SUFFIX: &str = "sip.e2e.test";

/// One request the TwiML receiver got.
#[derive(Debug, Clone)]
struct Hook {
    path: String,
    headers: HashMap<String, String>,
    params: Vec<(String, String)>,
}

impl Hook {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A tiny HTTP server answering every POST with the TwiML set for its path.
struct TwimlApp {
    port: u16,
    hooks: Arc<Mutex<Vec<Hook>>>,
    twiml: Arc<Mutex<HashMap<String, String>>>,
}

impl TwimlApp {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hooks = Arc::new(Mutex::new(Vec::new()));
        let twiml: Arc<Mutex<HashMap<String, String>>> = Arc::new(Mutex::new(HashMap::new()));
        let (h, t) = (hooks.clone(), twiml.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                let mut headers = HashMap::new();
                loop {
                    let mut l = String::new();
                    if reader.read_line(&mut l).is_err() || l.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = l.split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                    }
                }
                let len: usize = headers
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                let params = form_urlencoded(&body);
                let reply = t
                    .lock()
                    .unwrap()
                    .get(&path)
                    .cloned()
                    .unwrap_or_else(|| "<Response><Hangup/></Response>".to_owned());
                h.lock().unwrap().push(Hook {
                    path,
                    headers,
                    params,
                });
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                );
            }
        });
        Self { port, hooks, twiml }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn set(&self, path: &str, twiml: &str) {
        self.twiml
            .lock()
            .unwrap()
            .insert(path.to_owned(), twiml.to_owned());
    }

    fn hooks(&self) -> Vec<Hook> {
        self.hooks.lock().unwrap().clone()
    }
}

fn form_urlencoded(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// POSTs a form as the account; returns (status, JSON).
fn post(srv: &Server, a: &Account, path: &str, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut r = agent()
        .post(&format!("{}{path}", srv.url()))
        .header("Authorization", &basic(a))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(body.as_bytes())
        .unwrap();
    let status = r.status().as_u16();
    let mut text = String::new();
    r.body_mut().as_reader().read_to_string(&mut text).unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// GETs a resource as the account; returns (status, JSON).
fn get(srv: &Server, a: &Account, path: &str) -> (u16, serde_json::Value) {
    let mut r = agent()
        .get(&format!("{}{path}", srv.url()))
        .header("Authorization", &basic(a))
        .call()
        .unwrap();
    let status = r.status().as_u16();
    let mut text = String::new();
    r.body_mut().as_reader().read_to_string(&mut text).unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

fn delete(srv: &Server, a: &Account, path: &str) -> u16 {
    agent()
        .delete(&format!("{}{path}", srv.url()))
        .header("Authorization", &basic(a))
        .call()
        .unwrap()
        .status()
        .as_u16()
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Runs `interop/voice/uac.py` over UDP to the edge and returns its JSON.
fn uac(sip_port: u16, ruri: &str, extra: &[&str]) -> serde_json::Value {
    let script = workspace_root().join("interop/voice/uac.py");
    let out = Command::new(mediaseal_test_support::python(&["pylibsrtp"]))
        .arg(script)
        .args([
            "--transport",
            "udp",
            "--port",
            &sip_port.to_string(),
            "--ruri",
            ruri,
            "--proto",
            "RTP/AVP",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "uac.py output is not JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn log_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn serve_starts_the_sip_edge_and_admits_only_mapped_callers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("serve.log");
    let a = create_account(&data);
    let sip_port = free_port();
    let srv = Server::start(
        &data,
        &log,
        &[
            "--sip-listen",
            &format!("127.0.0.1:{sip_port}"),
            "--sip-domain-suffix",
            SUFFIX,
            "--rtp-ports",
            "34000-34099",
        ],
    );
    wait_until("the SIP edge to start", Duration::from_secs(10), || {
        log_text(&log).contains("SIP edge started")
    });
    let app = TwimlApp::start();
    app.set(
        "/voice",
        "<Response><Say>Hello from mediaseal.</Say><Hangup/></Response>",
    );
    let b = format!("/2010-04-01/Accounts/{}/SIP", a.sid);

    // REST: a domain (outside the suffix refused), a credential list with carol, mapped; an
    // IP ACL that does not hold loopback, mapped too.
    let (status, _) = post(
        &srv,
        &a,
        &format!("{b}/Domains.json"),
        &[("DomainName", "x.example.org")],
    );
    assert_eq!(status, 400, "a name outside --sip-domain-suffix");
    let name = format!("acme.{SUFFIX}");
    let voice = app.url("/voice");
    // Call status callbacks go to a receiver of their own, so the TwiML hooks stay countable.
    let status_app = TwimlApp::start();
    let status_url = status_app.url("/status");
    let (status, d) = post(
        &srv,
        &a,
        &format!("{b}/Domains.json"),
        &[
            ("DomainName", &name),
            ("VoiceUrl", &voice),
            ("VoiceStatusCallbackUrl", &status_url),
        ],
    );
    assert_eq!(status, 201, "{d}");
    let sd = d["sid"].as_str().unwrap().to_owned();
    let (status, l) = post(
        &srv,
        &a,
        &format!("{b}/CredentialLists.json"),
        &[("FriendlyName", "staff")],
    );
    assert_eq!(status, 201, "{l}");
    let cl = l["sid"].as_str().unwrap().to_owned();
    let password = "Carol-Passw0rd-1";
    let (status, c) = post(
        &srv,
        &a,
        &format!("{b}/CredentialLists/{cl}/Credentials.json"),
        &[("Username", "carol"), ("Password", password)],
    );
    assert_eq!(status, 201, "{c}");
    let (status, m) = post(
        &srv,
        &a,
        &format!("{b}/Domains/{sd}/Auth/Calls/CredentialListMappings.json"),
        &[("CredentialListSid", &cl)],
    );
    assert_eq!(status, 201, "{m}");
    let (status, acl) = post(
        &srv,
        &a,
        &format!("{b}/IpAccessControlLists.json"),
        &[("FriendlyName", "far")],
    );
    assert_eq!(status, 201);
    let al = acl["sid"].as_str().unwrap().to_owned();
    let (status, _) = post(
        &srv,
        &a,
        &format!("{b}/IpAccessControlLists/{al}/IpAddresses.json"),
        &[
            ("FriendlyName", "doc"),
            ("IpAddress", "192.0.2.0"),
            ("CidrPrefixLength", "24"),
        ],
    );
    assert_eq!(status, 201);
    let (status, _) = post(
        &srv,
        &a,
        &format!("{b}/Domains/{sd}/Auth/Calls/IpAccessControlListMappings.json"),
        &[("IpAccessControlListSid", &al)],
    );
    assert_eq!(status, 201);

    let ruri = format!("sip:alice@{name}");
    // No credentials: challenged. Wrong password, unknown user: refused. Unknown domain: 404.
    let r = uac(sip_port, &ruri, &[]);
    assert_eq!(r["final"], 401, "{r}");
    let r = uac(
        sip_port,
        &ruri,
        &["--user", "carol", "--password", "Wrong-Passw0rd-1"],
    );
    assert_eq!(
        r["responses"].as_array().unwrap().last(),
        Some(&serde_json::json!(403)),
        "{r}"
    );
    let r = uac(
        sip_port,
        &ruri,
        &["--user", "mallory", "--password", password],
    );
    assert_eq!(r["final"], 403, "{r}");
    let r = uac(sip_port, &format!("sip:alice@nobody.{SUFFIX}"), &[]);
    assert_eq!(r["final"], 404, "{r}");
    assert!(
        app.hooks().is_empty(),
        "refused calls never reach the webhook"
    );

    // The right password: answered per the TwiML, <Say> heard through the relay, then BYE.
    let r = uac(
        sip_port,
        &ruri,
        &[
            "--user",
            "carol",
            "--password",
            password,
            "--media-seconds",
            "4",
            "--wait-bye",
            "10",
        ],
    );
    assert_eq!(r["final"], 200, "{r}");
    assert!(r["got_bye"].as_bool().unwrap(), "<Hangup/> sends BYE: {r}");
    assert!(
        r["rx_packets"].as_u64().unwrap() > 20,
        "<Say> audio arrives: {r}"
    );
    let hooks = app.hooks();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    let h = &hooks[0];
    assert_eq!(h.path, "/voice");
    assert_eq!(h.param("SipDomain"), Some(name.as_str()));
    assert_eq!(h.param("SipDomainSid"), Some(sd.as_str()));
    assert_eq!(h.param("SipUsername"), Some("carol"));
    assert_eq!(h.param("AccountSid"), Some(a.sid.as_str()));
    let expected = mediaseal_server::callbacks::signature(&a.token, &voice, &h.params);
    assert_eq!(
        h.headers.get("x-twilio-signature"),
        Some(&expected),
        "signed with the account's auth token"
    );

    // The call is in the Calls resource, completed with a duration, and the domain's
    // VoiceStatusCallbackUrl got its signed `completed` callback through the outbox.
    let call_sid = h.param("CallSid").unwrap().to_owned();
    let call_uri = format!("/2010-04-01/Accounts/{}/Calls/{call_sid}.json", a.sid);
    let mut call = serde_json::Value::Null;
    wait_until(
        "the call to be completed in Calls",
        Duration::from_secs(10),
        || {
            call = get(&srv, &a, &call_uri).1;
            call["status"] == "completed"
        },
    );
    assert_eq!(call["sid"], call_sid.as_str());
    assert_eq!(call["account_sid"], a.sid.as_str());
    assert_eq!(call["direction"], "inbound");
    let duration: u64 = call["duration"].as_str().unwrap().parse().unwrap();
    assert!(duration <= 15, "{call}");
    assert!(
        call["start_time"].is_string() && call["end_time"].is_string(),
        "{call}"
    );
    let (status, list) = get(
        &srv,
        &a,
        &format!("/2010-04-01/Accounts/{}/Calls.json?Status=completed", a.sid),
    );
    assert_eq!(status, 200, "{list}");
    assert!(
        list["calls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["sid"] == call_sid.as_str()),
        "{list}"
    );
    wait_until("the call status callback", Duration::from_secs(20), || {
        !status_app.hooks().is_empty()
    });
    let cb = status_app.hooks()[0].clone();
    assert_eq!(cb.path, "/status");
    assert_eq!(cb.param("CallSid"), Some(call_sid.as_str()));
    assert_eq!(cb.param("AccountSid"), Some(a.sid.as_str()));
    assert_eq!(cb.param("CallStatus"), Some("completed"));
    assert_eq!(cb.param("Direction"), Some("inbound"));
    assert_eq!(cb.param("ApiVersion"), Some("2010-04-01"));
    assert_eq!(
        cb.param("CallDuration"),
        Some(duration.to_string().as_str())
    );
    assert_eq!(cb.param("SipDomainSid"), Some(sd.as_str()));
    assert!(cb.param("Timestamp").is_some() && cb.param("From").is_some());
    let expected = mediaseal_server::callbacks::signature(&a.token, &status_url, &cb.params);
    assert_eq!(
        cb.headers.get("x-twilio-signature"),
        Some(&expected),
        "the status callback is signed with the account's auth token"
    );
    assert!(cb.headers.contains_key("i-twilio-idempotency-token"));

    // REST changes apply to the next call: unmapped, carol is refused; with loopback in the
    // mapped ACL, a caller needs no credentials.
    let status = delete(
        &srv,
        &a,
        &format!("{b}/Domains/{sd}/Auth/Calls/CredentialListMappings/{cl}.json"),
    );
    assert_eq!(status, 204);
    let r = uac(
        sip_port,
        &ruri,
        &["--user", "carol", "--password", password],
    );
    assert_eq!(r["final"], 403, "{r}");
    let (status, _) = post(
        &srv,
        &a,
        &format!("{b}/IpAccessControlLists/{al}/IpAddresses.json"),
        &[
            ("FriendlyName", "loopback"),
            ("IpAddress", "127.0.0.0"),
            ("CidrPrefixLength", "8"),
        ],
    );
    assert_eq!(status, 201);
    app.set("/voice", "<Response><Hangup/></Response>");
    let r = uac(sip_port, &ruri, &["--wait-bye", "5"]);
    assert_eq!(r["final"], 200, "{r}");
    assert_eq!(app.hooks().len(), 2);
    assert_eq!(app.hooks()[1].param("SipUsername"), None);

    // A secure domain refuses plain SIP over UDP before any webhook.
    let (status, _) = post(
        &srv,
        &a,
        &format!("{b}/Domains/{sd}.json"),
        &[("Secure", "true")],
    );
    assert_eq!(status, 200);
    let r = uac(sip_port, &ruri, &[]);
    let code = r["final"].as_u64().unwrap();
    assert!((400..700).contains(&code), "{r}");
    assert!(r["warning"].is_string(), "a Warning says why: {r}");
    assert_eq!(app.hooks().len(), 2);

    // Nothing secret in the log.
    let text = log_text(&log);
    assert!(!text.contains(password), "the password is in the log");
    assert!(!text.contains(&a.token), "the auth token is in the log");
}

/// baresip's ctrl_tcp: netstring JSON commands and events.
struct Control {
    stream: BufReader<std::net::TcpStream>,
    events: Vec<serde_json::Value>,
}

impl Control {
    /// Connects to the ctrl_tcp of the baresip `child` at `addr`; `Err` says why it never
    /// opened (the process exited, or it did not listen within 20 s).
    fn connect(addr: &str, child: &mut std::process::Child) -> Result<Self, String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(s) = std::net::TcpStream::connect(addr) {
                s.set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                return Ok(Self {
                    stream: BufReader::new(s),
                    events: Vec::new(),
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "baresip exited ({status}) before its ctrl_tcp opened"
                ));
            }
            if std::time::Instant::now() >= deadline {
                return Err(format!("baresip's ctrl_tcp did not open on {addr} in 20 s"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn command(&mut self, command: &str, params: &str) {
        let body =
            serde_json::json!({"command": command, "params": params, "token": command}).to_string();
        write!(self.stream.get_mut(), "{}:{body},", body.len()).unwrap();
    }

    fn next(&mut self) -> Option<serde_json::Value> {
        let mut len = Vec::new();
        self.stream.read_until(b':', &mut len).ok()?;
        len.pop();
        let n: usize = std::str::from_utf8(&len).ok()?.trim().parse().ok()?;
        let mut body = vec![0u8; n + 1];
        self.stream.read_exact(&mut body).ok()?;
        body.pop();
        serde_json::from_slice(&body).ok()
    }

    /// Waits for an event of `kind`; `None` on timeout.
    fn wait_event(&mut self, kind: &str, timeout: Duration) -> Option<serde_json::Value> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Some(ev) = self.next() {
                self.events.push(ev.clone());
                if ev.get("type").and_then(|t| t.as_str()) == Some(kind) {
                    return Some(ev);
                }
            }
        }
        None
    }
}

/// RMS of the 16-bit PCM in a WAV file (all channels).
fn wav_rms(path: &Path) -> f64 {
    let bytes = std::fs::read(path).unwrap();
    let Some(pos) = bytes.windows(4).position(|w| w == b"data") else {
        return 0.0;
    };
    let pcm = &bytes[pos + 8..];
    let samples: Vec<f64> = pcm
        .chunks_exact(2)
        .map(|c| f64::from(i16::from_le_bytes([c[0], c[1]])))
        .collect();
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|s| s * s).sum::<f64>() / samples.len() as f64).sqrt()
}

/// Answers the domain's voice webhook with a `<Dial>` to `sip:alice@{name}` whose `action`
/// hangs up, and starts a caller (RTP ports `rtp_ports`) that calls the domain.
fn call_alice_through_twiml(
    app: &TwimlApp,
    dir: &Path,
    name: &str,
    sip_port: u16,
    rtp_ports: &str,
) -> Phone {
    app.set(
        "/voice",
        &format!(
            "<Response><Dial action=\"{}\"><Sip>sip:alice@{name}</Sip></Dial></Response>",
            app.url("/after")
        ),
    );
    app.set("/after", "<Response><Hangup/></Response>");
    let caller_dir = dir.join("caller");
    std::fs::create_dir_all(&caller_dir).unwrap();
    let mut caller = Phone::start(&caller_dir, name, sip_port, rtp_ports);
    caller
        .control
        .command("dial", &format!("sip:reception@{name}"));
    caller
}

/// `mediaseal serve` with the SIP edge on loopback (RTP on `rtp_ports`), a TwiML app, and a
/// domain `phones.…` made over REST that admits 127.0.0.1 through an IP access control list
/// made and mapped over REST.
struct PhoneSetup {
    srv: Server,
    a: Account,
    app: TwimlApp,
    sip_port: u16,
    name: String,
    sd: String,
}

/// How the phone of [`phone_setup`] is admitted.
#[derive(Clone, Copy)]
enum Admission {
    /// An IP access control list with 127.0.0.1.
    Address,
    /// Digest, against a credential list with `dave` / [`PHONE_PASSWORD`].
    Digest,
}

/// The password of the phone's credential (`Admission::Digest`).
const PHONE_PASSWORD: &str = "Dave-Passw0rd-7";

fn phone_setup(dir: &Path, rtp_ports: &str) -> PhoneSetup {
    phone_setup_admitted_by(dir, rtp_ports, Admission::Address)
}

fn phone_setup_admitted_by(dir: &Path, rtp_ports: &str, admission: Admission) -> PhoneSetup {
    let data = dir.join("data");
    let log = dir.join("serve.log");
    let a = create_account(&data);
    let sip_port = free_port();
    let srv = Server::start(
        &data,
        &log,
        &[
            "--sip-listen",
            &format!("127.0.0.1:{sip_port}"),
            "--sip-domain-suffix",
            SUFFIX,
            "--rtp-ports",
            rtp_ports,
            "--media-address",
            "127.0.0.1",
        ],
    );
    wait_until("the SIP edge to start", Duration::from_secs(10), || {
        log_text(&log).contains("SIP edge started")
    });
    let app = TwimlApp::start();
    let b = format!("/2010-04-01/Accounts/{}/SIP", a.sid);
    let name = format!("phones.{SUFFIX}");
    let (status, d) = post(
        &srv,
        &a,
        &format!("{b}/Domains.json"),
        &[("DomainName", &name), ("VoiceUrl", &app.url("/voice"))],
    );
    assert_eq!(status, 201, "{d}");
    let sd = d["sid"].as_str().unwrap().to_owned();
    // A list with one entry admitting the phone, mapped to the domain.
    let (list, entries, entry, mapping, key): (_, _, &[(&str, &str)], _, _) = match admission {
        Admission::Address => (
            "IpAccessControlLists",
            "IpAddresses",
            &[("FriendlyName", "phone"), ("IpAddress", "127.0.0.1")],
            "IpAccessControlListMappings",
            "IpAccessControlListSid",
        ),
        Admission::Digest => (
            "CredentialLists",
            "Credentials",
            &[("Username", "dave"), ("Password", PHONE_PASSWORD)],
            "CredentialListMappings",
            "CredentialListSid",
        ),
    };
    let (status, l) = post(
        &srv,
        &a,
        &format!("{b}/{list}.json"),
        &[("FriendlyName", "phones")],
    );
    assert_eq!(status, 201, "{l}");
    let list_sid = l["sid"].as_str().unwrap().to_owned();
    let (status, e) = post(
        &srv,
        &a,
        &format!("{b}/{list}/{list_sid}/{entries}.json"),
        entry,
    );
    assert_eq!(status, 201, "{e}");
    let (status, m) = post(
        &srv,
        &a,
        &format!("{b}/Domains/{sd}/Auth/Calls/{mapping}.json"),
        &[(key, &list_sid)],
    );
    assert_eq!(status, 201, "{m}");
    PhoneSetup {
        srv,
        a,
        app,
        sip_port,
        name,
        sd,
    }
}

/// A baresip phone (plain RTP over UDP, a 440 Hz tone as its microphone, what it decodes
/// written under `dir/snd`) driven over its ctrl_tcp.
struct Phone {
    child: std::process::Child,
    control: Control,
    dir: std::path::PathBuf,
}

impl Phone {
    fn start(dir: &Path, name: &str, sip_port: u16, rtp_ports: &str) -> Self {
        Self::start_with_password(dir, name, sip_port, rtp_ports, None)
    }

    /// A phone that answers digest challenges with `password` (user `dave`), if given.
    fn start_with_password(
        dir: &Path,
        name: &str,
        sip_port: u16,
        rtp_ports: &str,
        password: Option<&str>,
    ) -> Self {
        let account = format!(
            "<sip:dave@{name}>;regint=0;{auth}\
             outbound=\"sip:127.0.0.1:{sip_port};transport=udp\";audio_codecs=PCMU/8000/1\n",
            auth = password
                .map(|p| format!("auth_pass={p};"))
                .unwrap_or_default(),
        );
        Self::start_with_account(dir, rtp_ports, &account)
    }

    /// A phone with this `accounts` line, its files under `dir/baresip`.
    fn start_with_account(dir: &Path, rtp_ports: &str, account: &str) -> Self {
        let baresip = ["/usr/bin/baresip", "/usr/local/bin/baresip"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("baresip is required for this test (apt-get install baresip-core)");
        let phone = dir.join("baresip");
        std::fs::create_dir_all(phone.join("snd")).unwrap();
        let ctrl = format!("127.0.0.1:{}", free_port());
        // baresip also listens for SIP over TLS on the port after its SIP port.
        let phone_sip = free_ports(2);
        std::fs::write(
            phone.join("config"),
            format!(
                "poll_method\t\tepoll\n\
                 sip_listen\t\t127.0.0.1:{phone_sip}\n\
                 sip_trans_def\t\tudp\n\
                 net_interface\t\t127.0.0.1\n\
                 audio_player\t\taufile,{play}\n\
                 audio_source\t\tausine,440\n\
                 audio_alert\t\taufile,/dev/null\n\
                 rtp_ports\t\t{rtp_ports}\n\
                 module_path\t\t/usr/lib/baresip/modules\n\
                 module\t\t\tg711.so\n\
                 module\t\t\tausine.so\n\
                 module\t\t\taufile.so\n\
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
                play = phone.join("play.wav").display(),
                snd = phone.join("snd").display(),
            ),
        )
        .unwrap();
        std::fs::write(phone.join("accounts"), account).unwrap();
        std::fs::write(phone.join("contacts"), "").unwrap();
        let log_file = std::fs::File::create(phone.join("baresip.log")).unwrap();
        let mut child = Command::new(baresip)
            .arg("-f")
            .arg(&phone)
            .arg("-s")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap();
        match Control::connect(&ctrl, &mut child) {
            Ok(control) => Self {
                child,
                control,
                dir: phone,
            },
            Err(why) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{why}\nbaresip: {}", log_text(&phone.join("baresip.log")));
            }
        }
    }

    /// Calls `alice@{name}` and waits for the answer.
    fn dial_answered(&mut self, name: &str) {
        self.control.command("dial", &format!("sip:alice@{name}"));
        let established = self
            .control
            .wait_event("CALL_ESTABLISHED", Duration::from_secs(15));
        assert!(
            established.is_some(),
            "the call was not answered; events {:?}\nbaresip: {}",
            self.control.events,
            self.log()
        );
    }

    fn log(&self) -> String {
        log_text(&self.dir.join("baresip.log"))
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A real phone: baresip (plain RTP over UDP, admitted by an IP access control list made and
/// mapped over REST) calls a domain made over REST through `mediaseal serve`; the TwiML's
/// `<Say>` is heard by the phone and `<Hangup/>` ends the call.
#[test]
fn baresip_calls_a_domain_made_over_rest_and_is_answered_per_the_twiml() {
    let dir = tempfile::tempdir().unwrap();
    let PhoneSetup {
        srv: _srv,
        app,
        sip_port,
        name,
        sd,
        ..
    } = phone_setup(dir.path(), "34200-34299");
    app.set(
        "/voice",
        "<Response><Say>This call is answered by mediaseal.</Say><Hangup/></Response>",
    );
    let mut phone = Phone::start(dir.path(), &name, sip_port, "34400-34449");
    phone.control.command("dial", &format!("sip:alice@{name}"));
    let established = phone
        .control
        .wait_event("CALL_ESTABLISHED", Duration::from_secs(15));
    let closed = phone
        .control
        .wait_event("CALL_CLOSED", Duration::from_secs(30));
    phone.stop();
    let phone_text = phone.log();
    assert!(
        established.is_some(),
        "the call was not answered; events {:?}\nbaresip: {phone_text}",
        phone.control.events
    );
    assert!(
        closed.is_some(),
        "<Hangup/> did not end the call; events {:?}\nbaresip: {phone_text}",
        phone.control.events
    );
    let hooks = app.hooks();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(hooks[0].param("SipUsername"), None, "admitted by address");
    assert_eq!(hooks[0].param("SipDomainSid"), Some(sd.as_str()));
    // What the phone decoded: the synthesised speech, not silence.
    let decoded: Vec<_> = std::fs::read_dir(phone.dir.join("snd"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .collect();
    assert_eq!(decoded.len(), 1, "{decoded:?}\nbaresip: {phone_text}");
    let rms = wav_rms(&decoded[0]);
    assert!(rms > 200.0, "the phone heard silence (RMS {rms})");
}

/// baresip (Debian's 1.0, plain UDP) admitted by digest against a credential list made and
/// mapped over REST: it answers the edge's first challenge (MD5, then SHA-256 offered) and its
/// call runs the TwiML, whose webhook names the authenticated user.
#[test]
fn baresip_answers_the_edges_digest_challenge() {
    let dir = tempfile::tempdir().unwrap();
    let PhoneSetup {
        srv: _srv,
        app,
        sip_port,
        name,
        sd,
        ..
    } = phone_setup_admitted_by(dir.path(), "35100-35199", Admission::Digest);
    app.set(
        "/voice",
        "<Response><Say>Authenticated.</Say><Hangup/></Response>",
    );
    let mut phone = Phone::start_with_password(
        dir.path(),
        &name,
        sip_port,
        "35200-35249",
        Some(PHONE_PASSWORD),
    );
    phone.dial_answered(&name);
    let closed = phone
        .control
        .wait_event("CALL_CLOSED", Duration::from_secs(30));
    phone.stop();
    assert!(
        closed.is_some(),
        "<Hangup/> did not end the call; events {:?}\nbaresip: {}",
        phone.control.events,
        phone.log()
    );
    let hooks = app.hooks();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(
        hooks[0].param("SipUsername"),
        Some("dave"),
        "admitted by digest"
    );
    assert_eq!(hooks[0].param("SipDomainSid"), Some(sd.as_str()));
}

/// The password of alice's registration credential.
const ALICE_PASSWORD: &str = "Alice-Passw0rd-9";

/// Over REST: `SipRegistration=true` on the domain `sd`, and a credential list with alice
/// (`ALICE_PASSWORD`) mapped to its `Auth/Registrations`.
fn enable_registration(srv: &Server, a: &Account, sd: &str) {
    let b = format!("/2010-04-01/Accounts/{}/SIP", a.sid);
    let (status, d) = post(
        srv,
        a,
        &format!("{b}/Domains/{sd}.json"),
        &[("SipRegistration", "true")],
    );
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["sip_registration"], true);
    let (status, l) = post(
        srv,
        a,
        &format!("{b}/CredentialLists.json"),
        &[("FriendlyName", "registered phones")],
    );
    assert_eq!(status, 201, "{l}");
    let cl = l["sid"].as_str().unwrap().to_owned();
    let (status, c) = post(
        srv,
        a,
        &format!("{b}/CredentialLists/{cl}/Credentials.json"),
        &[("Username", "alice"), ("Password", ALICE_PASSWORD)],
    );
    assert_eq!(status, 201, "{c}");
    let (status, m) = post(
        srv,
        a,
        &format!("{b}/Domains/{sd}/Auth/Registrations/CredentialListMappings.json"),
        &[("CredentialListSid", &cl)],
    );
    assert_eq!(status, 201, "{m}");
}

/// alice's baresip account line: registers every 600 s through the edge on `transport`,
/// answers calls by itself.
fn alice_account(name: &str, sip_port: u16, password: &str, transport: &str) -> String {
    format!(
        "<sip:alice@{name}>;auth_pass={password};regint=600;answermode=auto;\
         outbound=\"sip:127.0.0.1:{sip_port};transport={transport}\";audio_codecs=PCMU/8000/1\n"
    )
}

/// alice registers over TCP; the TwiML dial reaches her over that same connection (the edge
/// cannot open one to her: the source port of her connection listens for nothing).
#[test]
fn a_phone_registered_over_tcp_is_called_over_its_connection() {
    let dir = tempfile::tempdir().unwrap();
    let PhoneSetup {
        srv,
        a,
        app,
        sip_port,
        name,
        sd,
    } = phone_setup(dir.path(), "37100-37199");
    enable_registration(&srv, &a, &sd);
    let alice_dir = dir.path().join("alice");
    std::fs::create_dir_all(&alice_dir).unwrap();
    let mut alice = Phone::start_with_account(
        &alice_dir,
        "37200-37249",
        &alice_account(&name, sip_port, ALICE_PASSWORD, "tcp"),
    );
    wait_until(
        "alice to register over TCP",
        Duration::from_secs(15),
        || alice.log().contains("SIP/2.0 200 OK"),
    );
    assert!(alice.log().contains("REGISTER sip:"), "{}", alice.log());
    let mut caller = call_alice_through_twiml(&app, dir.path(), &name, sip_port, "37300-37349");
    let answered = alice
        .control
        .wait_event("CALL_ESTABLISHED", Duration::from_secs(20));
    assert!(
        answered.is_some(),
        "alice (TCP) did not get the call; events {:?}\nbaresip: {}",
        alice.control.events,
        alice.log()
    );
    // baresip's SIP trace heads each message with "TCP from -> to" or "UDP from -> to".
    let log = alice.log();
    let invite = log
        .find("INVITE sip:alice")
        .expect("alice's trace shows the INVITE");
    let via = log[..invite].lines().rev().find(|l| l.contains(" -> "));
    assert!(
        via.is_some_and(|l| l.starts_with("TCP ")),
        "the INVITE did not come over TCP ({via:?}): {log}"
    );
    alice.control.command("hangup", "");
    let closed = caller
        .control
        .wait_event("CALL_CLOSED", Duration::from_secs(30));
    caller.stop();
    alice.stop();
    assert!(closed.is_some(), "the caller's call did not end");
    let hooks = app.hooks();
    let after: Vec<_> = hooks.iter().filter(|h| h.path == "/after").collect();
    assert_eq!(after.len(), 1, "{hooks:?}");
    assert_eq!(after[0].param("DialCallStatus"), Some("completed"));
}

/// SIP registration end to end: a domain made over REST gets `SipRegistration=true` and a
/// credential list mapped to `Auth/Registrations`; a baresip with a wrong password is refused,
/// alice's baresip registers with her digest credentials, and a call whose TwiML dials
/// `sip:alice@domain` rings her registered phone, which answers; a dial to `bob`, who never
/// registered, fails at once.
#[test]
fn baresip_registers_to_a_domain_and_receives_a_call_dialled_by_twiml() {
    let dir = tempfile::tempdir().unwrap();
    let PhoneSetup {
        srv,
        a,
        app,
        sip_port,
        name,
        sd,
    } = phone_setup(dir.path(), "36600-36699");
    enable_registration(&srv, &a, &sd);
    let account = |password: &str| alice_account(&name, sip_port, password, "udp");

    // A wrong password: the registrar refuses it.
    let wrong_dir = dir.path().join("wrong");
    std::fs::create_dir_all(&wrong_dir).unwrap();
    let mut wrong =
        Phone::start_with_account(&wrong_dir, "36950-36999", &account("Not-Her-Passw0rd-1"));
    // baresip registers as it starts, before its ctrl_tcp has a client: its log tells.
    wait_until(
        "the wrong password to be refused",
        Duration::from_secs(15),
        || wrong.log().contains("403 Forbidden"),
    );
    wrong.stop();
    assert!(!wrong.log().contains("SIP/2.0 200 OK"), "{}", wrong.log());

    let alice_dir = dir.path().join("alice");
    std::fs::create_dir_all(&alice_dir).unwrap();
    let mut alice = Phone::start_with_account(&alice_dir, "36800-36849", &account(ALICE_PASSWORD));
    wait_until("alice to register", Duration::from_secs(15), || {
        alice.log().contains("SIP/2.0 200 OK")
    });

    let mut caller = call_alice_through_twiml(&app, dir.path(), &name, sip_port, "36900-36949");
    let rang = alice
        .control
        .wait_event("CALL_ESTABLISHED", Duration::from_secs(20));
    assert!(
        rang.is_some(),
        "alice's registered phone did not get the call; events {:?}\nbaresip: {}\nserve: {}",
        alice.control.events,
        alice.log(),
        log_text(&dir.path().join("serve.log"))
    );
    alice.control.command("hangup", "");
    let closed = caller
        .control
        .wait_event("CALL_CLOSED", Duration::from_secs(30));
    assert!(
        closed.is_some(),
        "the caller's call did not end; events {:?}\nbaresip: {}",
        caller.control.events,
        caller.log()
    );
    let hooks = app.hooks();
    let after: Vec<_> = hooks.iter().filter(|h| h.path == "/after").collect();
    assert_eq!(after.len(), 1, "{hooks:?}");
    assert_eq!(after[0].param("DialCallStatus"), Some("completed"));

    // bob has no registration: the same kind of dial fails at once, without ringing anyone.
    alice.stop();
    app.set(
        "/voice",
        &format!(
            "<Response><Dial action=\"{}\"><Sip>sip:bob@{name}</Sip></Dial></Response>",
            app.url("/after")
        ),
    );
    caller
        .control
        .command("dial", &format!("sip:reception@{name}"));
    let closed = caller
        .control
        .wait_event("CALL_CLOSED", Duration::from_secs(30));
    caller.stop();
    assert!(
        closed.is_some(),
        "the second call did not end; events {:?}",
        caller.control.events
    );
    let hooks = app.hooks();
    let after: Vec<_> = hooks.iter().filter(|h| h.path == "/after").collect();
    assert_eq!(after.len(), 2, "{hooks:?}");
    assert_eq!(after[1].param("DialCallStatus"), Some("failed"));
}

/// alice registers two phones (the same address of record, two contacts, one over UDP and one
/// over TCP); a TwiML dial to `sip:alice@domain` rings both at once, each over its own flow.
/// The one set to answer by itself takes the call, the other gets a CANCEL while it rings,
/// and the call completes through the answering phone.
#[test]
fn a_dial_to_alice_rings_both_her_phones_and_the_first_to_answer_takes_it() {
    let dir = tempfile::tempdir().unwrap();
    let PhoneSetup {
        srv,
        a,
        app,
        sip_port,
        name,
        sd,
    } = phone_setup(dir.path(), "37500-37599");
    enable_registration(&srv, &a, &sd);
    // The desk phone rings until someone picks it up (baresip's `answermode=manual`); the
    // mobile answers by itself (`answermode=auto`).
    let desk_dir = dir.path().join("desk");
    std::fs::create_dir_all(&desk_dir).unwrap();
    let mut desk = Phone::start_with_account(
        &desk_dir,
        "37600-37649",
        &alice_account(&name, sip_port, ALICE_PASSWORD, "udp")
            .replace("answermode=auto", "answermode=manual"),
    );
    let mobile_dir = dir.path().join("mobile");
    std::fs::create_dir_all(&mobile_dir).unwrap();
    let mut mobile = Phone::start_with_account(
        &mobile_dir,
        "37650-37699",
        &alice_account(&name, sip_port, ALICE_PASSWORD, "tcp"),
    );
    for (phone, which) in [(&desk, "the desk phone"), (&mobile, "the mobile")] {
        wait_until(
            &format!("{which} to register"),
            Duration::from_secs(15),
            || phone.log().contains("SIP/2.0 200 OK"),
        );
    }
    let mut caller = call_alice_through_twiml(&app, dir.path(), &name, sip_port, "37700-37749");

    let rang = desk
        .control
        .wait_event("CALL_INCOMING", Duration::from_secs(20));
    assert!(
        rang.is_some(),
        "the desk phone did not ring; events {:?}\nbaresip: {}\nserve: {}",
        desk.control.events,
        desk.log(),
        log_text(&dir.path().join("serve.log"))
    );
    let answered = mobile
        .control
        .wait_event("CALL_ESTABLISHED", Duration::from_secs(20));
    assert!(
        answered.is_some(),
        "the mobile did not get the call; events {:?}\nbaresip: {}",
        mobile.control.events,
        mobile.log()
    );
    // The desk phone's INVITE is cancelled: its call ends without being answered.
    let cancelled = desk
        .control
        .wait_event("CALL_CLOSED", Duration::from_secs(20));
    assert!(
        cancelled.is_some(),
        "the desk phone kept ringing; events {:?}\nbaresip: {}",
        desk.control.events,
        desk.log()
    );
    let desk_log = desk.log();
    // Its INVITE went to its contact (`sip:alice-…@`), and so does the CANCEL, answered 487.
    assert!(
        desk_log.contains("CANCEL sip:alice") && desk_log.contains("SIP/2.0 487 "),
        "the desk phone got no CANCEL: {desk_log}"
    );
    assert!(
        !desk
            .control
            .events
            .iter()
            .any(|e| e["type"] == "CALL_ESTABLISHED"),
        "the desk phone was connected: {:?}",
        desk.control.events
    );
    // Each INVITE came over its phone's own flow (baresip heads each traced message with
    // "TCP from -> to" or "UDP from -> to").
    for (log, transport) in [(desk_log, "UDP "), (mobile.log(), "TCP ")] {
        let invite = log
            .find("INVITE sip:alice")
            .expect("the INVITE in the trace");
        let via = log[..invite].lines().rev().find(|l| l.contains(" -> "));
        assert!(
            via.is_some_and(|l| l.starts_with(transport)),
            "the INVITE did not come over {transport}({via:?}): {log}"
        );
    }

    // The call goes on through the mobile until it hangs up.
    mobile.control.command("hangup", "");
    let closed = caller
        .control
        .wait_event("CALL_CLOSED", Duration::from_secs(30));
    caller.stop();
    desk.stop();
    mobile.stop();
    assert!(
        closed.is_some(),
        "the caller's call did not end; events {:?}\nbaresip: {}",
        caller.control.events,
        caller.log()
    );
    let hooks = app.hooks();
    let after: Vec<_> = hooks.iter().filter(|h| h.path == "/after").collect();
    assert_eq!(after.len(), 1, "{hooks:?}");
    assert_eq!(after[0].param("DialCallStatus"), Some("completed"));
}

/// RFC 5626 §3.5.1 keep-alives on a SIP TCP connection: a double CRLF ("ping") gets one CRLF
/// ("pong") back, and the connection still carries SIP: a REGISTER sent on it next is
/// answered (the registrar's challenge), with nothing in between.
#[test]
fn a_crlf_ping_on_a_sip_tcp_connection_gets_a_pong() {
    let dir = tempfile::tempdir().unwrap();
    let PhoneSetup {
        srv,
        a,
        sip_port,
        name,
        sd,
        ..
    } = phone_setup(dir.path(), "37800-37899");
    enable_registration(&srv, &a, &sd);
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", sip_port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let local = conn.local_addr().unwrap();
    conn.write_all(b"\r\n\r\n").unwrap();
    let mut pong = [0u8; 2];
    conn.read_exact(&mut pong).expect("a pong to the ping");
    assert_eq!(&pong, b"\r\n");
    let register = format!(
        "REGISTER sip:{name} SIP/2.0\r\n\
         Via: SIP/2.0/TCP {local};branch=z9hG4bKping1\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@{name}>;tag=p1\r\n\
         To: <sip:alice@{name}>\r\n\
         Call-ID: keepalive-1\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <sip:alice@{local};transport=tcp>\r\n\
         Expires: 600\r\n\
         Content-Length: 0\r\n\r\n"
    );
    conn.write_all(register.as_bytes()).unwrap();
    let mut reader = BufReader::new(conn);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(
        status.starts_with("SIP/2.0 401 "),
        "the REGISTER after the ping was not answered in line: {status:?}"
    );
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: digest"),
        "{head}"
    );
    assert!(head.contains("Call-ID: keepalive-1"), "{head}");
}

/// GETs bytes as the account; returns (status, body).
fn get_bytes(srv: &Server, a: &Account, path: &str) -> (u16, Vec<u8>) {
    let mut r = agent()
        .get(&format!("{}{path}", srv.url()))
        .header("Authorization", &basic(a))
        .call()
        .unwrap();
    let status = r.status().as_u16();
    let mut body = Vec::new();
    r.body_mut().as_reader().read_to_end(&mut body).unwrap();
    (status, body)
}

/// The REST API controls a live call: baresip calls a domain whose TwiML would keep it for a
/// minute; `POST …/Calls/{CA}/Recordings.json` starts a recording (sealed as the audio
/// arrives, like record-from-answer), which is paused, resumed and stopped over REST; then
/// `POST …/Calls/{CA}.json` with `Status=completed` sends the phone a BYE. The Calls row goes
/// completed through the edge's ledger, the recording is stored with source
/// `StartCallRecordingAPI`, a duration without the paused time, the phone's tone in its audio
/// and its status callback sent; afterwards the call is not in progress (21220).
#[test]
fn rest_records_and_hangs_up_a_live_call() {
    let dir = tempfile::tempdir().unwrap();
    let PhoneSetup {
        srv,
        a,
        app,
        sip_port,
        name,
        ..
    } = phone_setup(dir.path(), "34500-34599");
    app.set(
        "/voice",
        "<Response><Say>Hold on.</Say><Pause length=\"60\"/></Response>",
    );
    let mut phone = Phone::start(dir.path(), &name, sip_port, "34600-34649");
    phone.dial_answered(&name);
    let hooks = app.hooks();
    let call_sid = hooks[0].param("CallSid").unwrap().to_owned();
    let call_uri = format!("/2010-04-01/Accounts/{}/Calls/{call_sid}.json", a.sid);
    wait_until(
        "the call to be in progress",
        Duration::from_secs(10),
        || get(&srv, &a, &call_uri).1["status"] == "in-progress",
    );
    // `canceled` leaves an answered call alone.
    let (status, call) = post(&srv, &a, &call_uri, &[("Status", "canceled")]);
    assert_eq!(status, 200, "{call}");
    assert_eq!(call["status"], "in-progress");

    // Record: 2 s, pause 2 s (skipped), 2 s more, stop.
    let recordings = format!(
        "/2010-04-01/Accounts/{}/Calls/{call_sid}/Recordings.json",
        a.sid
    );
    let (status, rec) = post(
        &srv,
        &a,
        &recordings,
        &[
            ("RecordingChannels", "dual"),
            ("RecordingStatusCallback", &app.url("/recorded")),
            ("RecordingStatusCallbackEvent", "completed"),
        ],
    );
    assert_eq!(status, 201, "{rec}");
    assert_eq!(rec["source"], "StartCallRecordingAPI");
    assert_eq!(rec["status"], "in-progress");
    assert_eq!(rec["call_sid"], call_sid.as_str());
    let re = rec["sid"].as_str().unwrap().to_owned();
    let (status, e) = post(&srv, &a, &recordings, &[]);
    assert_eq!(status, 400, "a second recording at once: {e}");
    let rec_uri = format!(
        "/2010-04-01/Accounts/{}/Calls/{call_sid}/Recordings/{re}.json",
        a.sid
    );
    std::thread::sleep(Duration::from_secs(2));
    let (status, r) = post(&srv, &a, &rec_uri, &[("Status", "paused")]);
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["status"], "paused");
    std::thread::sleep(Duration::from_secs(2));
    let (status, r) = post(&srv, &a, &rec_uri, &[("Status", "in-progress")]);
    assert_eq!(status, 200, "{r}");
    std::thread::sleep(Duration::from_secs(2));
    let (status, r) = post(&srv, &a, &rec_uri, &[("Status", "stopped")]);
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["status"], "stopped");
    let fetch = format!("/2010-04-01/Accounts/{}/Recordings/{re}.json", a.sid);
    let mut stored = serde_json::Value::Null;
    wait_until(
        "the recording to be stored",
        Duration::from_secs(10),
        || {
            stored = get(&srv, &a, &fetch).1;
            stored["status"] == "completed"
        },
    );
    assert_eq!(stored["source"], "StartCallRecordingAPI", "{stored}");
    assert_eq!(stored["call_sid"], call_sid.as_str());
    assert_eq!(stored["channels"], 2);
    let duration: u64 = stored["duration"].as_str().unwrap().parse().unwrap();
    assert!(
        (3..=5).contains(&duration),
        "about 4 s recorded, the paused 2 s skipped: {stored}"
    );
    // Served decrypted (sealed at rest): a two-channel WAV holding the phone's tone.
    let (status, wav) = get_bytes(
        &srv,
        &a,
        &format!("/2010-04-01/Accounts/{}/Recordings/{re}.wav", a.sid),
    );
    assert_eq!(status, 200);
    assert!(wav.starts_with(b"RIFF") && &wav[8..12] == b"WAVE");
    assert_eq!(u16::from_le_bytes([wav[22], wav[23]]), 2, "two channels");
    let wav_path = dir.path().join("recording.wav");
    std::fs::write(&wav_path, &wav).unwrap();
    let rms = wav_rms(&wav_path);
    assert!(rms > 100.0, "the recording is silent (RMS {rms})");
    wait_until(
        "the recording status callback",
        Duration::from_secs(15),
        || app.hooks().iter().any(|h| h.path == "/recorded"),
    );
    let cb = app
        .hooks()
        .into_iter()
        .find(|h| h.path == "/recorded")
        .unwrap();
    assert_eq!(cb.param("RecordingSid"), Some(re.as_str()));
    assert_eq!(cb.param("RecordingStatus"), Some("completed"));

    let asked = std::time::Instant::now();
    let (status, call) = post(&srv, &a, &call_uri, &[("Status", "completed")]);
    assert_eq!(status, 200, "{call}");
    assert_eq!(call["sid"], call_sid.as_str());
    assert_eq!(call["status"], "completed", "{call}");
    assert!(call["end_time"].is_string(), "{call}");
    let closed = phone
        .control
        .wait_event("CALL_CLOSED", Duration::from_secs(10));
    assert!(
        closed.is_some(),
        "the phone got no BYE; events {:?}\nbaresip: {}",
        phone.control.events,
        phone.log()
    );
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "the hang-up took {:?}",
        asked.elapsed()
    );
    let duration: u64 = call["duration"].as_str().unwrap().parse().unwrap();
    assert!((5..40).contains(&duration), "{call}");

    // Over: Twilio's 21220 from then on, for the call and its recordings.
    let (status, e) = post(&srv, &a, &call_uri, &[("Status", "completed")]);
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["code"], 21220);
    let (status, e) = post(&srv, &a, &recordings, &[]);
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["code"], 21220);
}

/// The Twilio helper library drives the SIP resources unchanged
/// (`interop/twilio/sip_resources.py`).
#[test]
fn twilio_helper_library_manages_sip_resources() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let a = create_account(&data);
    let srv = Server::start(
        &data,
        &dir.path().join("serve.log"),
        &["--sip-domain-suffix", SUFFIX],
    );
    let status = Command::new(python())
        .arg(workspace_root().join("interop/twilio/sip_resources.py"))
        .args([
            srv.url(),
            a.sid.clone(),
            a.token,
            format!("helper.{SUFFIX}"),
        ])
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the helper-library run failed (see its output above)"
    );
}

/// A CA and a leaf for `ips` signed by it, as PEM files in `dir`: (ca, cert, key).
fn tls_certs(
    dir: &Path,
    ips: &[&str],
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "mediaseal e2e CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let mut leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    for ip in ips {
        leaf.subject_alt_names
            .push(rcgen::SanType::IpAddress(ip.parse().unwrap()));
    }
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &ca).unwrap();
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    (
        write("ca.pem", ca.pem()),
        write("cert.pem", cert.pem()),
        write("key.pem", key.serialize_pem()),
    )
}

/// `POST Calls.json` with `To=sip:…;secure=true`: the real `serve` calls a TLS callee
/// (`interop/voice/tls_uas.py`, which records the offer) on 5061 with its certificate
/// verified against `--sip-ca` and exactly one `AES_CM_128_HMAC_SHA1_80` line, fetches `Url`
/// once answered (signed, `Direction=outbound-api`), plays its `<Say>` as SRTP the callee
/// decrypts, hangs up on `<Hangup/>`; the call ends `completed` in Calls and the requested
/// status callbacks arrive signed.
#[test]
fn rest_places_a_secure_call_to_a_tls_callee_and_runs_its_twiml() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("serve.log");
    let a = create_account(&data);
    // 127.0.0.6 is this test's own: the callee listens on its 5061.
    let callee_ip = "127.0.0.6";
    let (ca, cert, key) = tls_certs(dir.path(), &["127.0.0.1", callee_ip]);
    let (sip_port, tls_port) = (free_port(), free_port());
    let srv = Server::start(
        &data,
        &log,
        &[
            "--sip-listen",
            &format!("127.0.0.1:{sip_port}"),
            "--sip-tls-listen",
            &format!("127.0.0.1:{tls_port}"),
            "--sip-tls-cert",
            cert.to_str().unwrap(),
            "--sip-tls-key",
            key.to_str().unwrap(),
            "--sip-ca",
            ca.to_str().unwrap(),
            "--sip-domain-suffix",
            SUFFIX,
            "--rtp-ports",
            "34600-34699",
        ],
    );
    wait_until("the SIP edge to start", Duration::from_secs(10), || {
        log_text(&log).contains("SIP edge started")
    });
    let app = TwimlApp::start();
    app.set(
        "/outbound",
        "<Response><Say>Hello from mediaseal, this call was placed over the API.</Say><Hangup/></Response>",
    );
    let status_app = TwimlApp::start();
    let status_url = status_app.url("/status");
    let voice = app.url("/outbound");

    let mut callee = Command::new(mediaseal_test_support::python(&["pylibsrtp"]))
        .arg(workspace_root().join("interop/voice/tls_uas.py"))
        .args(["--host", callee_ip, "--hold", "5", "--timeout", "30"])
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut callee_out = BufReader::new(callee.stdout.take().unwrap());
    let mut ready = String::new();
    callee_out.read_line(&mut ready).unwrap();
    assert_eq!(ready.trim(), "READY", "tls_uas.py did not start");

    let calls = format!("/2010-04-01/Accounts/{}/Calls.json", a.sid);
    // A phone number is refused: this server calls SIP endpoints only.
    let (status, err) = post(
        &srv,
        &a,
        &calls,
        &[
            ("To", "+15550002222"),
            ("From", "+15550001111"),
            ("Url", &voice),
        ],
    );
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["code"], 21211, "{err}");
    let to = format!("sip:jack@{callee_ip};secure=true");
    let (status, created) = post(
        &srv,
        &a,
        &calls,
        &[
            ("To", &to),
            ("From", "+15550001111"),
            ("Url", &voice),
            ("StatusCallback", &status_url),
            (
                "StatusCallbackEvent",
                "initiated ringing answered completed",
            ),
        ],
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["direction"], "outbound-api");
    assert_eq!(created["to"], to.as_str());
    let call_sid = created["sid"].as_str().unwrap().to_owned();

    let mut line = String::new();
    callee_out.read_line(&mut line).unwrap();
    let _ = callee.wait();
    let got: serde_json::Value = serde_json::from_str(line.trim())
        .unwrap_or_else(|e| panic!("tls_uas.py output ({e}): {line}\nserve: {}", log_text(&log)));
    assert_eq!(got["handshake_failed"], false, "{got}");
    assert_eq!(got["invite"], true, "no INVITE over TLS on 5061: {got}");
    assert!(
        got["via"].as_str().unwrap().starts_with("SIP/2.0/TLS "),
        "{got}"
    );
    assert_eq!(got["request_uri"], format!("sip:jack@{callee_ip}").as_str());
    assert_eq!(got["offer_proto"], "RTP/SAVP", "{got}");
    let offered = got["offer_crypto"].as_array().unwrap();
    assert_eq!(offered.len(), 1, "exactly one crypto line: {got}");
    let line80 = offered[0].as_str().unwrap();
    assert!(
        line80.contains(" AES_CM_128_HMAC_SHA1_80 inline:") && !line80.contains('|'),
        "{got}"
    );
    // The <Say> reached the callee as SRTP it authenticated with the offered key.
    assert!(got["rx_packets"].as_u64().unwrap() > 25, "{got}");
    assert_eq!(got["rx_auth_fail"], 0, "{got}");
    assert_eq!(got["got_bye"], true, "<Hangup/> sends a BYE: {got}");

    let hooks = app.hooks();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    let h = &hooks[0];
    assert_eq!(h.param("CallSid"), Some(call_sid.as_str()));
    assert_eq!(h.param("Direction"), Some("outbound-api"));
    assert_eq!(h.param("CallStatus"), Some("in-progress"));
    assert_eq!(h.param("To"), Some(to.as_str()));
    assert_eq!(h.param("From"), Some("+15550001111"));
    let expected = mediaseal_server::callbacks::signature(&a.token, &voice, &h.params);
    assert_eq!(h.headers.get("x-twilio-signature"), Some(&expected));

    let call_uri = format!("/2010-04-01/Accounts/{}/Calls/{call_sid}.json", a.sid);
    let mut call = serde_json::Value::Null;
    wait_until("the call to be completed", Duration::from_secs(10), || {
        call = get(&srv, &a, &call_uri).1;
        call["status"] == "completed"
    });
    assert_eq!(call["direction"], "outbound-api", "{call}");
    assert!(call["start_time"].is_string(), "{call}");

    wait_until("the completed callback", Duration::from_secs(20), || {
        status_app
            .hooks()
            .iter()
            .any(|h| h.param("CallStatus") == Some("completed"))
    });
    let events: Vec<String> = status_app
        .hooks()
        .iter()
        .map(|h| h.param("CallStatus").unwrap_or_default().to_owned())
        .collect();
    // Every event goes through the durable outbox, one call's in the order they happened.
    assert_eq!(
        events,
        vec!["initiated", "ringing", "in-progress", "completed"],
        "{:?}",
        status_app.hooks()
    );
    let sequence: Vec<String> = status_app
        .hooks()
        .iter()
        .map(|h| h.param("SequenceNumber").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(sequence, vec!["0", "1", "2", "3"]);
    for h in status_app.hooks() {
        assert_eq!(h.param("CallSid"), Some(call_sid.as_str()));
        assert_eq!(h.param("Direction"), Some("outbound-api"));
        let expected = mediaseal_server::callbacks::signature(&a.token, &status_url, &h.params);
        assert_eq!(
            h.headers.get("x-twilio-signature"),
            Some(&expected),
            "{:?} is signed",
            h.param("CallStatus")
        );
    }
}

/// twilio-python places a secure call unchanged (`client.calls.create(to=…, from_=…,
/// twiml=…, record=True)`), then fetches and lists it and finds its dual-channel recording among
/// the call's and the account's (`interop/twilio/outbound_calls.py`); the TLS callee on
/// 127.0.0.7:5061 answers it.
#[test]
fn twilio_helper_library_places_a_call() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("serve.log");
    let a = create_account(&data);
    let callee_ip = "127.0.0.7";
    let (ca, cert, key) = tls_certs(dir.path(), &[callee_ip]);
    let srv = Server::start(
        &data,
        &log,
        &[
            "--sip-listen",
            &format!("127.0.0.1:{}", free_port()),
            "--sip-ca",
            ca.to_str().unwrap(),
            "--sip-domain-suffix",
            SUFFIX,
            "--rtp-ports",
            "34700-34799",
        ],
    );
    wait_until("the SIP edge to start", Duration::from_secs(10), || {
        log_text(&log).contains("SIP edge started")
    });
    let mut callee = Command::new(mediaseal_test_support::python(&["pylibsrtp"]))
        .arg(workspace_root().join("interop/voice/tls_uas.py"))
        .args(["--host", callee_ip, "--hold", "3", "--timeout", "30"])
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut callee_out = BufReader::new(callee.stdout.take().unwrap());
    let mut ready = String::new();
    callee_out.read_line(&mut ready).unwrap();
    assert_eq!(ready.trim(), "READY", "tls_uas.py did not start");
    let status = Command::new(python())
        .arg(workspace_root().join("interop/twilio/outbound_calls.py"))
        .args([
            srv.url(),
            a.sid.clone(),
            a.token,
            format!("sip:jack@{callee_ip};secure=true"),
        ])
        .status()
        .unwrap();
    let mut line = String::new();
    callee_out.read_line(&mut line).unwrap();
    let _ = callee.wait();
    assert!(
        status.success(),
        "the helper-library run failed (see its output above); callee: {line}\nserve: {}",
        log_text(&log)
    );
    let got: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(got["invite"], true, "{got}");
    assert_eq!(got["offer_crypto"].as_array().unwrap().len(), 1, "{got}");
}

/// `AutoTranscribe` follows call recordings like uploaded ones: with voice recording encryption
/// on (the customer's key, which the server cannot open) and a service that transcribes every
/// new recording, a recording of a live call is transcribed from its plaintext tap while it is
/// sealed — the transcript completes — and the same recording asked for later is refused.
#[test]
fn a_customer_key_call_recording_is_auto_transcribed_from_its_tap() {
    let dir = tempfile::tempdir().unwrap();
    let PhoneSetup {
        srv,
        a,
        app,
        sip_port,
        name,
        ..
    } = phone_setup(dir.path(), "34700-34799");
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let made = Command::new("sh")
        .arg("-c")
        .arg(
            "openssl genrsa -out private_key.pem 2048 2>/dev/null && \
             openssl rsa -in private_key.pem -pubout -out public_key.pem 2>/dev/null",
        )
        .current_dir(&keys)
        .status()
        .unwrap();
    assert!(made.success());
    let pem = std::fs::read_to_string(keys.join("public_key.pem")).unwrap();
    let (status, key) = post(
        &srv,
        &a,
        "/v1/Credentials/PublicKeys",
        &[("PublicKey", &pem), ("FriendlyName", "customer")],
    );
    assert_eq!(status, 201, "{key}");
    let (status, settings) = post(
        &srv,
        &a,
        &format!("/2010-04-01/Accounts/{}/RecordingSettings.json", a.sid),
        &[
            ("EncryptionEnabled", "true"),
            ("EncryptionPublicKeySid", key["sid"].as_str().unwrap()),
        ],
    );
    assert_eq!(status, 200, "{settings}");
    let (status, service) = post(
        &srv,
        &a,
        "/v2/Services",
        &[("UniqueName", "calls"), ("AutoTranscribe", "true")],
    );
    assert_eq!(status, 201, "{service}");
    let ga = service["sid"].as_str().unwrap().to_owned();

    app.set(
        "/voice",
        "<Response><Say>Thank you for calling.</Say><Pause length=\"60\"/></Response>",
    );
    let mut phone = Phone::start(dir.path(), &name, sip_port, "34800-34849");
    phone.dial_answered(&name);
    let call_sid = app.hooks()[0].param("CallSid").unwrap().to_owned();
    let recordings = format!(
        "/2010-04-01/Accounts/{}/Calls/{call_sid}/Recordings.json",
        a.sid
    );
    let (status, rec) = post(&srv, &a, &recordings, &[]);
    assert_eq!(status, 201, "{rec}");
    let re = rec["sid"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_secs(3));
    let rec_uri = format!(
        "/2010-04-01/Accounts/{}/Calls/{call_sid}/Recordings/{re}.json",
        a.sid
    );
    let (status, r) = post(&srv, &a, &rec_uri, &[("Status", "stopped")]);
    assert_eq!(status, 200, "{r}");
    let fetch = format!("/2010-04-01/Accounts/{}/Recordings/{re}.json", a.sid);
    let mut stored = serde_json::Value::Null;
    wait_until(
        "the recording to be stored",
        Duration::from_secs(10),
        || {
            stored = get(&srv, &a, &fetch).1;
            stored["status"] == "completed"
        },
    );
    assert_eq!(stored["encryption_details"]["type"], "rsa-aes", "{stored}");

    // The transcript was made from the tap: the server could not have read the recording.
    let list = format!("/v2/Transcripts?SourceSid={re}");
    let mut transcript = serde_json::Value::Null;
    wait_until(
        "the auto-transcript to finish",
        Duration::from_secs(120),
        || {
            let (_, page) = get(&srv, &a, &list);
            transcript = page["transcripts"][0].clone();
            matches!(transcript["status"].as_str(), Some("completed" | "failed"))
        },
    );
    assert_eq!(transcript["status"], "completed", "{transcript}");
    assert_eq!(transcript["service_sid"], ga.as_str());

    // Asked for afterwards, the sealed recording cannot be transcribed.
    let channel = format!(r#"{{"media_properties":{{"source_sid":"{re}"}}}}"#);
    let (status, e) = post(
        &srv,
        &a,
        "/v2/Transcripts",
        &[("ServiceSid", &ga), ("Channel", &channel)],
    );
    assert_eq!(status, 422, "{e}");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("public key")),
        "{e}"
    );
    let (status, _) = post(
        &srv,
        &a,
        &format!("/2010-04-01/Accounts/{}/Calls/{call_sid}.json", a.sid),
        &[("Status", "completed")],
    );
    assert_eq!(status, 200);
}
