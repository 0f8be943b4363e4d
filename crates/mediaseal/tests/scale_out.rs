//! Scale-out, for real: `mediaseal serve` processes sharing one PostgreSQL and one S3 store
//! (Garage), started by `scripts/services.sh`.
//!
//! - Two nodes, one killed with SIGKILL during ingests and callback deliveries: every
//!   acknowledged recording exists once and decrypts, none is duplicated, every callback reaches
//!   the receiver once per outbox id, the dead node's unfinished uploads never become
//!   recordings and leave nothing behind once swept; no secret and no plaintext in logs, in
//!   PostgreSQL's or in Garage's files.
//! - A three-node Garage cluster (replication factor 3) with one node killed keeps serving
//!   mediaseal's reads and writes.
//!
//! Without the services these tests print a notice and pass, unless `MEDIASEAL_REQUIRE_SERVICES`
//! is set (as `scripts/test.sh` does), which turns the notice into a failure.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use mediaseal_store::{ObjectStore, S3Config, S3ObjectStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// ---- services ----------------------------------------------------------------------------------

/// What `scripts/services.sh start` exported.
#[derive(Debug, Clone)]
struct Services {
    database: String,
    db_password: String,
    pg_bin: PathBuf,
    pg_port: String,
    objects: String,
    garage_bin: PathBuf,
    garage_data: PathBuf,
    aws_secret: String,
}

fn services(test: &str) -> Option<Services> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let found = (|| {
        Some(Services {
            database: var("MEDIASEAL_SCALE_DATABASE")?,
            db_password: var("MEDIASEAL_SCALE_DB_PASSWORD")?,
            pg_bin: var("MEDIASEAL_SCALE_PG_BIN")?.into(),
            pg_port: var("MEDIASEAL_SCALE_PG_PORT")?,
            objects: var("MEDIASEAL_SCALE_OBJECTS")?,
            garage_bin: var("MEDIASEAL_SCALE_GARAGE_BIN")?.into(),
            garage_data: var("MEDIASEAL_SCALE_GARAGE_DATA")?.into(),
            aws_secret: var("AWS_SECRET_ACCESS_KEY")?,
        })
    })();
    if found.is_none() {
        assert!(
            std::env::var_os("MEDIASEAL_REQUIRE_SERVICES").is_none(),
            "{test}: MEDIASEAL_REQUIRE_SERVICES is set but the services' environment is missing \
             (scripts/services.sh start DIR, then source DIR/env)"
        );
        eprintln!(
            "NOTICE: {test} skipped: no PostgreSQL + Garage (run scripts/services.sh start DIR; source DIR/env)"
        );
    }
    found
}

fn unique(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{tag}{:x}{:x}", nanos, std::process::id())
}

impl Services {
    /// A database of its own for one test, so one test's sweeper never sees another's uploads.
    fn fresh_database(&self, name: &str) -> String {
        let out = Command::new(self.pg_bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.pg_port,
                "-U",
                "mediaseal",
                "-d",
                "mediaseal",
                "-v",
                "ON_ERROR_STOP=1",
            ])
            .args(["-c", &format!("CREATE DATABASE {name}")])
            .env("PGPASSWORD", &self.db_password)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "CREATE DATABASE: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (base, _) = self.database.rsplit_once('/').unwrap();
        format!("{base}/{name}")
    }

    /// One value from a query on database `db`.
    fn query(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.pg_bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.pg_port,
                "-U",
                "mediaseal",
                "-d",
                db,
                "-tA",
                "-c",
                sql,
            ])
            .env("PGPASSWORD", &self.db_password)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// The shared bucket under a prefix of this test's own.
    fn objects_under(&self, prefix: &str, extra: &str) -> String {
        let (base, query) = self.objects.split_once('?').unwrap();
        format!("{base}/{prefix}?{query}{extra}")
    }
}

// ---- nodes -------------------------------------------------------------------------------------

fn free_port() -> u16 {
    mediaseal_test_support::free_port()
}

/// A `mediaseal serve` process, killed on drop.
struct Node {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Node {
    fn start(name: &str, dir: &Path, database: &str, objects: &str, extra: &[&str]) -> Self {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let data = dir.join(name);
        std::fs::create_dir_all(&data).unwrap();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_mediaseal"))
            .arg("serve")
            .args([
                "--listen",
                &addr.to_string(),
                "--data",
                data.to_str().unwrap(),
            ])
            .args(["--database", database, "--objects", objects])
            // The callback receiver is on loopback, which is refused by default.
            .args(["--allow-webhook-network", "127.0.0.0/8"])
            .args([
                "--at-rest-key",
                dir.join("at-rest-key.pem").to_str().unwrap(),
            ])
            .args([
                "--url-signing-key",
                dir.join("url-signing.key").to_str().unwrap(),
            ])
            .args(extra)
            // Verbose, so the secret and plaintext checks below look at as much as possible.
            .env(
                "MEDIASEAL_LOG",
                "debug,hyper=info,hyper_util=info,h2=info,rustls=info",
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut node = Self { child, addr, log };
        node.wait_healthy();
        node
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "node exited with {status}: {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if std::net::TcpStream::connect(self.addr).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "node did not listen: {}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// SIGKILL: no shutdown code runs.
    fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- HTTP on loopback, by hand (the CLI crate has no HTTP client) -----------------------------

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

fn basic(sid: &str, token: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{sid}:{token}").into_bytes();
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

/// One request; the body is sent in `pieces` with `pause` between them (a slow client).
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: &str,
    body: &[u8],
    pieces: usize,
    pause: Duration,
) -> std::io::Result<Reply> {
    let mut conn = TcpStream::connect(addr).await?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nContent-Type: audio/x-wav\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    let piece = body.len().div_ceil(pieces.max(1)).max(1);
    for (i, chunk) in body.chunks(piece).enumerate() {
        if i > 0 {
            tokio::time::sleep(pause).await;
        }
        conn.write_all(chunk).await?;
    }
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP response"))?;
    let headers = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = headers
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status"))?;
    let mut body = raw[split + 4..].to_vec();
    if headers
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Ok(Reply {
        status,
        headers,
        body,
    })
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            std::str::from_utf8(&raw[..eol])
                .unwrap()
                .split(';')
                .next()
                .unwrap(),
            16,
        )
        .unwrap();
        if size == 0 {
            break;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[eol + 2 + size + 2..];
    }
    out
}

async fn get(addr: SocketAddr, path: &str, auth: &str) -> Reply {
    request(addr, "GET", path, auth, b"", 1, Duration::ZERO)
        .await
        .unwrap()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn form_pairs(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

// ---- callback receiver -------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Delivery {
    token: String,
    signature: String,
    params: Vec<(String, String)>,
}

impl Delivery {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP server that records every callback and answers 200 after `delay`, so deliveries are
/// in flight when a node dies.
async fn callback_receiver(delay: Duration) -> (String, Arc<Mutex<Vec<Delivery>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/status", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let store = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let store = store.clone();
            tokio::spawn(async move {
                let mut raw = Vec::new();
                let mut buf = [0u8; 8192];
                let (head, body_start) = loop {
                    let Ok(n) = conn.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    raw.extend_from_slice(&buf[..n]);
                    if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                        break (String::from_utf8_lossy(&raw[..p]).into_owned(), p + 4);
                    }
                };
                let header = |name: &str| {
                    head.lines()
                        .find_map(|l| {
                            l.split_once(':')
                                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                                .map(|(_, v)| v.trim().to_owned())
                        })
                        .unwrap_or_default()
                };
                let len: usize = header("content-length").parse().unwrap_or(0);
                while raw.len() < body_start + len {
                    let Ok(n) = conn.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    raw.extend_from_slice(&buf[..n]);
                }
                let body = String::from_utf8_lossy(&raw[body_start..body_start + len]).into_owned();
                tokio::time::sleep(delay).await;
                // Recorded only when the 200 goes out: that is a delivery.
                if conn
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await
                    .is_ok()
                {
                    store.lock().unwrap().push(Delivery {
                        token: header("i-twilio-idempotency-token"),
                        signature: header("x-twilio-signature"),
                        params: form_pairs(&body),
                    });
                }
            });
        }
    });
    (url, seen)
}

// ---- test data ---------------------------------------------------------------------------------

const MARKER: &[u8] = b"PLAINTEXT-MARKER-7f3a9c";

/// A WAV-shaped recording of `len` bytes that is unique per `seed` and carries the marker every
/// 4 KiB, for the plaintext-leak greps.
fn recording(len: usize, seed: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(b"RIFF\0\0\0\0WAVE");
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while v.len() < len {
        if v.len() % 4096 == 0 {
            v.extend_from_slice(MARKER);
        } else {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.push(x as u8);
        }
    }
    v.truncate(len);
    v
}

fn call_sid(n: u64) -> String {
    format!("CA{n:032x}")
}

/// Whether `needle` occurs in any file under `dir`.
fn tree_contains(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file()
                && let Ok(bytes) = std::fs::read(&p)
                && bytes.windows(needle.len()).any(|w| w == needle)
            {
                hits.push(p);
            }
        }
    }
    hits
}

async fn poll_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match check().await {
            Ok(()) => return,
            Err(e) if Instant::now() >= deadline => panic!("{what} within {limit:?}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

// ---- two nodes, one killed ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_one_killed_mid_ingest_and_callbacks_lose_and_duplicate_nothing() {
    let Some(svc) = services("two_nodes_one_killed") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let database = svc.fresh_database(&unique("scale_kill_"));
    let prefix = unique("kill");
    // 5 MiB parts, so the killed node's 12 MiB uploads die as open multipart uploads.
    let objects = svc.objects_under(&prefix, "&part_size_mib=5");
    let sweep = [
        "--sweep-secs",
        "1",
        "--orphan-age-secs",
        "4",
        "--callback-retry-ms",
        "200",
    ];
    let mut victim = Node::start("a", dir.path(), &database, &objects, &sweep);
    let survivor = Node::start("b", dir.path(), &database, &objects, &sweep);

    let meta = mediaseal_server::serve::open_meta(dir.path(), Some(&database))
        .await
        .unwrap();
    let account = mediaseal_server::create_account(meta.as_ref(), Some("scale"), None)
        .await
        .unwrap();
    let auth = basic(&account.sid, &account.auth_token);
    let (callback_url, deliveries) = callback_receiver(Duration::from_millis(1500)).await;
    let ingest_path = |n: u64| {
        format!(
            "/2010-04-01/Accounts/{}/Recordings.json?CallSid={}&RecordingStatusCallback={}",
            account.sid,
            call_sid(n),
            callback_url.replace(':', "%3A").replace('/', "%2F")
        )
    };

    // Slow 12 MiB uploads to the victim: still streaming when it dies.
    let mut slow = Vec::new();
    for n in 1000..1003u64 {
        let (addr, path, auth) = (victim.addr, ingest_path(n), auth.clone());
        slow.push(tokio::spawn(async move {
            let body = recording(12 << 20, n);
            request(
                addr,
                "POST",
                &path,
                &auth,
                &body,
                120,
                Duration::from_millis(60),
            )
            .await
        }));
    }
    // Fast 1 MiB uploads, alternating between the nodes, four at a time, before and after the kill.
    let sent: Arc<Mutex<BTreeMap<u64, Vec<u8>>>> = Arc::default();
    let acked: Arc<Mutex<BTreeMap<u64, String>>> = Arc::default();
    let nodes = [victim.addr, survivor.addr];
    let mut fast = Vec::new();
    for worker in 0..4u64 {
        let (sent, acked, auth) = (sent.clone(), acked.clone(), auth.clone());
        let paths: Vec<(u64, String)> = (0..15)
            .map(|i| worker * 100 + i)
            .map(|n| (n, ingest_path(n)))
            .collect();
        fast.push(tokio::spawn(async move {
            for (i, (n, path)) in paths.into_iter().enumerate() {
                let body = recording(1 << 20, n);
                sent.lock().unwrap().insert(n, body.clone());
                let addr = nodes[(i + worker as usize) % 2];
                if let Ok(r) = request(
                    addr,
                    "POST",
                    &path,
                    &auth,
                    &body,
                    4,
                    Duration::from_millis(20),
                )
                .await
                    && r.status == 201
                {
                    acked
                        .lock()
                        .unwrap()
                        .insert(n, r.json()["sid"].as_str().unwrap().to_owned());
                }
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        }));
    }

    // Kill once ingests have been acknowledged, callbacks are being delivered, and the slow
    // uploads have parts in the store.
    let store =
        S3ObjectStore::connect(S3Config::from_url(&objects).unwrap().with_env_credentials())
            .await
            .unwrap();
    // The victim's node id, from its start-up line, to see which callbacks it holds.
    let victim_id = {
        let log = std::fs::read_to_string(&victim.log).unwrap();
        let at = log.find("node=").expect("no node id in the log") + 5;
        log[at..]
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect::<String>()
    };
    let db_name = database.rsplit('/').next().unwrap().to_owned();
    let leased_by_victim = format!(
        "SELECT count(*) FROM callbacks WHERE state = 'pending' AND lease_owner = '{victim_id}'"
    );
    poll_until(
        "acknowledged ingests, open multipart uploads, callbacks held by the victim",
        Duration::from_secs(60),
        || {
            let n = acked.lock().unwrap().len();
            let store = store.clone();
            let leased: usize = svc.query(&db_name, &leased_by_victim).parse().unwrap();
            async move {
                let open = store.open_uploads().await.map_err(|e| e.to_string())?.len();
                if n >= 8 && open >= 1 && leased >= 1 {
                    Ok(())
                } else {
                    Err(format!("{n} acknowledged, {open} uploads open, {leased} callbacks leased by the victim"))
                }
            }
        },
    )
    .await;
    victim.kill9();
    let killed_at = Instant::now();
    let leased_at_kill: usize = svc.query(&db_name, &leased_by_victim).parse().unwrap();

    // What the dead node left: unpublished reservations and open multipart uploads.
    let reserved_after_kill = meta.stale_reservations(i64::MAX, 1000).await.unwrap().len();
    let uploads_after_kill = store.open_uploads().await.unwrap().len();

    for t in fast {
        t.await.unwrap();
    }
    for t in slow {
        let r = t.await.unwrap();
        assert!(
            r.map(|r| r.status != 201).unwrap_or(true),
            "a slow upload to the killed node was acknowledged"
        );
    }
    let acked = acked.lock().unwrap().clone();
    let sent = sent.lock().unwrap().clone();
    assert!(
        acked.len() >= 20,
        "too few acknowledged ingests to mean anything: {}",
        acked.len()
    );
    assert!(
        reserved_after_kill >= 1,
        "the kill left no unfinished upload to sweep"
    );
    assert!(
        uploads_after_kill >= 1,
        "the kill left no open multipart upload to sweep"
    );

    // The survivor sweeps what the dead node left, and takes over its leased callbacks when the
    // lease (60 s) runs out.
    let list_path = format!(
        "/2010-04-01/Accounts/{}/Recordings.json?PageSize=1000",
        account.sid
    );
    let survivor_addr = survivor.addr;
    let listed = || async {
        let r = get(survivor_addr, &list_path, &auth).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()["recordings"].as_array().unwrap().clone()
    };
    poll_until("the dead node's uploads swept", Duration::from_secs(60), || async {
        let reserved = meta.stale_reservations(i64::MAX, 1000).await.map_err(|e| e.to_string())?.len();
        let uploads = store.open_uploads().await.map_err(|e| e.to_string())?.len();
        // Uploads the dead node never finished become failed recordings (seed 000's
        // intermittent failure) without an object; every completed one keeps its object.
        let visible: BTreeSet<String> = listed()
            .await
            .iter()
            .filter(|r| r["status"] == "completed")
            .map(|r| format!("{}/{}", account.sid, r["sid"].as_str().unwrap()))
            .collect();
        let stored: BTreeSet<String> = store.list("").await.map_err(|e| e.to_string())?.into_iter().map(|(k, _)| k).collect();
        if reserved == 0 && uploads == 0 && stored == visible {
            Ok(())
        } else {
            Err(format!("{reserved} reservations, {uploads} uploads, objects {stored:?} vs recordings {visible:?}"))
        }
    })
    .await;
    let (recordings, cut_off): (Vec<serde_json::Value>, Vec<serde_json::Value>) = listed()
        .await
        .into_iter()
        .partition(|r| r["status"] == "completed");
    assert!(
        !cut_off.is_empty(),
        "the kill left no upload to report failed"
    );
    let acked_calls: BTreeSet<String> = acked.keys().map(|n| call_sid(*n)).collect();
    for r in &cut_off {
        assert_eq!(r["status"], "failed", "{r}");
        assert_eq!(r["error_code"], 16104, "{r}");
        let call = r["call_sid"].as_str().unwrap();
        assert!(
            !acked_calls.contains(call),
            "an upload that was acknowledged is reported failed: {call}"
        );
    }
    // The subscription is to `completed` (the default): failed ones call nobody back.
    let expected_callbacks = recordings.len();
    // Settled: the receiver has every callback and the outbox calls them all delivered; the
    // victim's leased ones come back after their 60 s lease.
    let undelivered = "SELECT count(*) FROM callbacks WHERE state <> 'delivered'";
    poll_until("every callback delivered", Duration::from_secs(150), || {
        let tokens = deliveries.lock().unwrap().iter().map(|d| d.token.clone()).collect::<BTreeSet<String>>().len();
        let pending = svc.query(&db_name, undelivered);
        async move {
            if tokens >= expected_callbacks && pending == "0" {
                Ok(())
            } else {
                Err(format!("{tokens} of {expected_callbacks} callbacks received, {pending} not marked delivered"))
            }
        }
    })
    .await;
    eprintln!(
        "callbacks settled {:?} after the kill; the victim held {leased_at_kill} of them",
        killed_at.elapsed()
    );
    assert!(leased_at_kill >= 1, "the kill interrupted no callback");

    // Recordings: each call at most once; every acknowledged one present, with its bytes.
    let mut by_call: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &recordings {
        assert_eq!(r["status"], "completed", "{r}");
        by_call
            .entry(r["call_sid"].as_str().unwrap().to_owned())
            .or_default()
            .push(r["sid"].as_str().unwrap().to_owned());
    }
    for (call, sids) in &by_call {
        assert_eq!(sids.len(), 1, "call {call} stored twice: {sids:?}");
    }
    for (n, sid) in &acked {
        assert_eq!(
            by_call.get(&call_sid(*n)),
            Some(&vec![sid.clone()]),
            "acknowledged recording {sid} missing"
        );
        let wav = get(
            survivor.addr,
            &format!("/2010-04-01/Accounts/{}/Recordings/{sid}.wav", account.sid),
            &auth,
        )
        .await;
        assert_eq!(wav.status, 200, "{sid}: {}", wav.headers);
        assert!(
            wav.body == sent[n],
            "{sid}: decrypted bytes differ from the upload"
        );
    }
    for call in by_call.keys() {
        let n = u64::from_str_radix(&call[2..], 16).unwrap();
        assert!(
            n < 1000,
            "a slow upload to the killed node became a recording: {call}"
        );
    }

    // Callbacks: one outbox id per recording, each delivered, signed, and redelivered at most
    // once (the node died between the receiver's 200 and the outbox update).
    let deliveries = deliveries.lock().unwrap().clone();
    let mut per_token: HashMap<String, Vec<&Delivery>> = HashMap::new();
    for d in &deliveries {
        per_token.entry(d.token.clone()).or_default().push(d);
        assert_eq!(
            d.signature,
            mediaseal_server::callbacks::signature(&account.auth_token, &callback_url, &d.params),
            "bad signature on {}",
            d.token
        );
    }
    let mut tokens_per_recording: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (token, ds) in &per_token {
        assert!(
            ds.len() <= 2,
            "callback {token} delivered {} times",
            ds.len()
        );
        let sid = ds[0].param("RecordingSid").unwrap().to_owned();
        assert!(
            ds.iter().all(|d| d.params == ds[0].params),
            "redelivery of {token} differs"
        );
        tokens_per_recording
            .entry(sid)
            .or_default()
            .insert(token.clone());
    }
    for r in &recordings {
        let sid = r["sid"].as_str().unwrap();
        assert_eq!(
            tokens_per_recording.get(sid).map(BTreeSet::len),
            Some(1),
            "callbacks of {sid}"
        );
    }
    assert_eq!(
        tokens_per_recording.len(),
        recordings.len(),
        "callbacks for recordings that do not exist"
    );
    let redelivered = per_token.values().filter(|d| d.len() > 1).count();
    eprintln!(
        "{} acknowledged, {} stored, {} callbacks ({} redelivered after the kill), {} reservations and {} uploads swept",
        acked.len(),
        recordings.len(),
        per_token.len(),
        redelivered,
        reserved_after_kill,
        uploads_after_kill
    );

    // Secrets and plaintext: not in any node's log, not in PostgreSQL's or Garage's files.
    drop(survivor);
    for log in [&victim.log, &dir.path().join("b.log")] {
        let text = std::fs::read(log).unwrap();
        for (what, needle) in [
            ("database password", svc.db_password.as_bytes()),
            ("S3 secret", svc.aws_secret.as_bytes()),
            ("plaintext", MARKER),
        ] {
            assert!(
                !text.windows(needle.len()).any(|w| w == needle),
                "{what} in {}",
                log.display()
            );
        }
        assert!(
            text.windows(11).any(|w| w == b"mediaseal l"),
            "{} holds no server log at all",
            log.display()
        );
    }
    let garage_hits = tree_contains(&svc.garage_data, MARKER);
    assert!(
        garage_hits.is_empty(),
        "plaintext in Garage's data: {garage_hits:?}"
    );
    let pg_data = PathBuf::from(std::env::var("MEDIASEAL_SCALE_SERVICES").unwrap()).join("pg/data");
    assert!(
        pg_data.is_dir(),
        "{} is not PostgreSQL's data directory",
        pg_data.display()
    );
    let pg_hits = tree_contains(&pg_data, MARKER);
    assert!(
        pg_hits.is_empty(),
        "plaintext in PostgreSQL's files: {pg_hits:?}"
    );
}

// ---- a three-node Garage cluster, one node down ------------------------------------------------

/// Garage processes, killed on drop.
struct GarageCluster {
    nodes: Vec<Child>,
    configs: Vec<PathBuf>,
    s3_ports: Vec<u16>,
    bin: PathBuf,
}

impl Drop for GarageCluster {
    fn drop(&mut self) {
        for c in &mut self.nodes {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl GarageCluster {
    fn cli(&self, node: usize, args: &[&str]) -> String {
        let out = Command::new(&self.bin)
            .arg("-c")
            .arg(&self.configs[node])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "garage {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn start(bin: &Path, dir: &Path, n: usize, key_id: &str, secret: &str) -> Self {
        let rpc_secret: String = (0..32)
            .map(|i| format!("{:02x}", (i * 37 + 11) as u8))
            .collect();
        let mut cluster = Self {
            nodes: Vec::new(),
            configs: Vec::new(),
            s3_ports: Vec::new(),
            bin: bin.to_path_buf(),
        };
        let mut rpc_ports = Vec::new();
        for i in 0..n {
            let (s3, rpc) = (free_port(), free_port());
            let d = dir.join(format!("garage{i}"));
            std::fs::create_dir_all(&d).unwrap();
            let config = d.join("garage.toml");
            std::fs::write(
                &config,
                format!(
                    "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"sqlite\"\n\
                     replication_factor = 3\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\nrpc_public_addr = \"127.0.0.1:{rpc}\"\n\
                     rpc_secret = \"{rpc_secret}\"\n[s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3}\"\n\
                     root_domain = \".s3.garage.localhost\"\n",
                    d = d.display()
                ),
            )
            .unwrap();
            let child = Command::new(bin)
                .arg("-c")
                .arg(&config)
                .arg("server")
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(d.join("server.log")).unwrap())
                .spawn()
                .unwrap();
            cluster.nodes.push(child);
            cluster.configs.push(config);
            cluster.s3_ports.push(s3);
            rpc_ports.push(rpc);
        }
        let ids: Vec<String> = (0..n)
            .map(|i| {
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    let out = Command::new(bin)
                        .arg("-c")
                        .arg(&cluster.configs[i])
                        .args(["node", "id", "-q"])
                        .output()
                        .unwrap();
                    if out.status.success() {
                        break String::from_utf8(out.stdout).unwrap().trim().to_owned();
                    }
                    assert!(Instant::now() < deadline, "garage node {i} did not start");
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
            .collect();
        for id in &ids[1..] {
            cluster.cli(0, &["node", "connect", id]);
        }
        for (i, id) in ids.iter().enumerate() {
            let short = id.split('@').next().unwrap();
            cluster.cli(
                0,
                &[
                    "layout",
                    "assign",
                    "-z",
                    &format!("dc{i}"),
                    "-c",
                    "1G",
                    short,
                ],
            );
        }
        cluster.cli(0, &["layout", "apply", "--version", "1"]);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = Command::new(bin)
                .arg("-c")
                .arg(&cluster.configs[0])
                .args(["bucket", "create", "media"])
                .output()
                .unwrap();
            if out.status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "bucket: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        cluster.cli(
            0,
            &["key", "import", "--yes", "-n", "media", key_id, secret],
        );
        cluster.cli(
            0,
            &[
                "bucket", "allow", "--read", "--write", "--owner", "media", "--key", "media",
            ],
        );
        cluster
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_node_garage_with_one_node_down_keeps_serving_reads_and_writes() {
    let Some(svc) = services("three_node_garage") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The cluster's own key; the node gets it through its config file, not the environment.
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let key_id = format!("GK{:024x}", nanos & ((1 << 96) - 1));
    let secret = format!(
        "{:032x}{:032x}",
        nanos.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        nanos.rotate_left(64) ^ 0x5bd1_e995
    );
    let cluster = GarageCluster::start(&svc.garage_bin, dir.path(), 3, &key_id, &secret);
    let database = svc.fresh_database(&unique("scale_garage3_"));
    let objects = format!(
        "s3://media?endpoint=http://127.0.0.1:{}&region=garage",
        cluster.s3_ports[0]
    );
    let config = dir.path().join("mediaseal.toml");
    std::fs::write(
        &config,
        format!("database = \"{database}\"\nobjects = \"{objects}\"\ns3_access_key_id = \"{key_id}\"\ns3_secret_access_key = \"{secret}\"\n"),
    )
    .unwrap();
    let mut cluster = cluster;
    let node = {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = dir.path().join("node.log");
        let child = Command::new(env!("CARGO_BIN_EXE_mediaseal"))
            .args([
                "serve",
                "--config",
                config.to_str().unwrap(),
                "--listen",
                &addr.to_string(),
            ])
            .args(["--data", dir.path().join("data").to_str().unwrap()])
            // The shared services' credentials must not be what makes this work.
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut n = Node { child, addr, log };
        n.wait_healthy();
        n
    };
    let meta = mediaseal_server::serve::open_meta(dir.path(), Some(&database))
        .await
        .unwrap();
    let account = mediaseal_server::create_account(meta.as_ref(), Some("garage3"), None)
        .await
        .unwrap();
    let auth = basic(&account.sid, &account.auth_token);
    let ingest = |n: u64| {
        let (addr, auth, sid) = (node.addr, auth.clone(), account.sid.clone());
        async move {
            let body = recording((1 << 20) + n as usize * 977, n);
            let r = request(
                addr,
                "POST",
                &format!("/2010-04-01/Accounts/{sid}/Recordings.json"),
                &auth,
                &body,
                1,
                Duration::ZERO,
            )
            .await
            .unwrap();
            assert_eq!(
                r.status,
                201,
                "ingest {n}: {}",
                String::from_utf8_lossy(&r.body)
            );
            (r.json()["sid"].as_str().unwrap().to_owned(), body)
        }
    };
    let mut stored = Vec::new();
    for n in 0..4 {
        stored.push(ingest(n).await);
    }
    // One replica down: every block still has two, a write and read quorum.
    cluster.nodes[2].kill().unwrap();
    cluster.nodes[2].wait().unwrap();
    for n in 4..8 {
        stored.push(ingest(n).await);
    }
    for (sid, body) in &stored {
        let r = get(
            node.addr,
            &format!("/2010-04-01/Accounts/{}/Recordings/{sid}.wav", account.sid),
            &auth,
        )
        .await;
        assert_eq!(r.status, 200, "{sid}: {}", r.headers);
        assert!(&r.body == body, "{sid}: bytes differ");
    }
    let (gone, _) = &stored[0];
    let r = request(
        node.addr,
        "DELETE",
        &format!(
            "/2010-04-01/Accounts/{}/Recordings/{gone}.json",
            account.sid
        ),
        &auth,
        b"",
        1,
        Duration::ZERO,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 204);
    let store = {
        let mut c = S3Config::from_url(&objects).unwrap();
        c.access_key_id = Some(key_id.clone());
        c.secret_access_key = Some(secret.clone());
        S3ObjectStore::connect(c).await.unwrap()
    };
    let keys: BTreeSet<String> = store
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys.len(), 7, "{keys:?}");
    assert!(
        !keys.contains(&format!("{}/{gone}", account.sid)),
        "deleted recording's object still stored"
    );
    let log = std::fs::read(&node.log).unwrap();
    assert!(
        !log.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "S3 secret in the log"
    );
}
