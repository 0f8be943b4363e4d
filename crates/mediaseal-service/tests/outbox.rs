//! The outbox against real sockets: the address policy at connect time, and one account's hung
//! receivers not delaying another account's callbacks (issue 10, items 5 and 7).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mediaseal_crypto::PrivateKey;
use mediaseal_service::clock::SystemClock;
use mediaseal_service::egress::{IpNet, WebhookPolicy, parse_network};
use mediaseal_service::outbox::{new_callback, run};
use mediaseal_service::sid::new_sid;
use mediaseal_service::{ServiceConfig, Services, SinkFactory};
use mediaseal_store::model::{Account, Callback};
use mediaseal_store::{FsObjectStore, MetadataStore, ObjectStore, SqlStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

struct World {
    _data: tempfile::TempDir,
    meta: Arc<dyn MetadataStore>,
    services: Services,
}

async fn world(adjust: impl FnOnce(&mut ServiceConfig)) -> World {
    let data = tempfile::tempdir().unwrap();
    let meta: Arc<dyn MetadataStore> = Arc::new(
        SqlStore::open_sqlite(&data.path().join("mediaseal.db"))
            .await
            .unwrap(),
    );
    let objects: Arc<dyn ObjectStore> =
        Arc::new(FsObjectStore::new(data.path().join("objects")).unwrap());
    let key = PrivateKey::generate(2048).unwrap();
    let _ = rustls_default_provider();
    let mut config = ServiceConfig {
        callback_poll: Duration::from_millis(50),
        ..ServiceConfig::default()
    };
    adjust(&mut config);
    let services = Services::new(
        meta.clone(),
        SinkFactory::new(objects, key.public_key().clone()),
        Arc::new(SystemClock),
        config,
    );
    World {
        _data: data,
        meta,
        services,
    }
}

/// reqwest is built without a default crypto provider; the server installs AWS-LC the same way.
fn rustls_default_provider() -> bool {
    rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .is_ok()
}

async fn account(w: &World) -> String {
    let sid = new_sid("AC");
    let now = w.services.now_us();
    w.meta
        .insert_account(&Account {
            sid: sid.clone(),
            parent_sid: None,
            friendly_name: "outbox test".to_owned(),
            status: "active".to_owned(),
            auth_token: "0123456789abcdef0123456789abcdef".to_owned(),
            secondary_auth_token: None,
            date_created: now,
            date_updated: now,
        })
        .await
        .unwrap();
    sid
}

fn callback(w: &World, account: &str, url: &str) -> Callback {
    new_callback(
        &w.services,
        account,
        &new_sid("RE"),
        url,
        "POST",
        &[("Status".to_owned(), "completed".to_owned())],
    )
}

type Requests = Arc<Mutex<Vec<(Instant, String)>>>;

/// An HTTP receiver answering `status` to everything; records each request's arrival and head.
async fn receiver(status: u16) -> (SocketAddr, tokio::sync::mpsc::UnboundedSender<()>, Requests) {
    let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let seen = arrivals.clone();
    let (stop, mut stopped) = tokio::sync::mpsc::unbounded_channel::<()>();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = tokio::select! {
                _ = stopped.recv() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(_) => return,
                },
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                if let Some(head) = read_request(&mut stream).await {
                    seen.lock().unwrap().push((Instant::now(), head));
                    let answer = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                }
            });
        }
    });
    (addr, stop, arrivals)
}

/// Reads one request's head and body; the head, or `None` if the connection ends first.
async fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return Some(String::from_utf8_lossy(&buf[..end]).into_owned());
            }
        }
    }
}

/// A listener that accepts connections and never answers; counts them.
async fn black_hole() -> (SocketAddr, Arc<Mutex<Vec<TcpStream>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            keep.lock().unwrap().push(stream);
        }
    });
    (addr, held)
}

fn loopback() -> Vec<IpNet> {
    vec![
        parse_network("127.0.0.0/8").unwrap(),
        parse_network("::1/128").unwrap(),
    ]
}

async fn wait_for<T>(what: &str, limit: Duration, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn state_of(w: &World, cb: &Callback) -> Callback {
    w.meta
        .callbacks_for(&cb.resource_sid)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.id == cb.id)
        .unwrap()
}

/// The machine's own host name, when it resolves only to addresses the default policy refuses
/// (on Linux it maps to 127.0.0.1, 127.0.1.1 or a private container address).
async fn a_name_for_an_internal_address() -> Option<(String, Vec<IpAddr>)> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim().to_owned();
    let addrs: Vec<IpAddr> = tokio::net::lookup_host((name.as_str(), 0))
        .await
        .ok()?
        .map(|a| a.ip())
        .collect();
    let strict = WebhookPolicy::strict();
    (!addrs.is_empty() && addrs.iter().all(|a| strict.check(*a).is_err())).then_some((name, addrs))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_resolving_to_an_internal_address_is_refused_at_connect_time() {
    let Some((name, addrs)) = a_name_for_an_internal_address().await else {
        eprintln!("skipped: this machine's host name does not resolve to an internal address");
        return;
    };
    let (addr, stop, arrivals) = receiver(200).await;
    let url = format!("http://{name}:{}/cb", addr.port());

    // Strict: the name passes submission (it is not a literal), and the resolver refuses it.
    let w = world(|c| c.callback_retry_base = Duration::from_secs(600)).await;
    let ac = account(&w).await;
    let cb = callback(&w, &ac, &url);
    w.meta
        .enqueue_callbacks(std::slice::from_ref(&cb))
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let outbox = tokio::spawn(run(w.services.clone(), cancel.clone()));
    let failed = wait_for("the refused attempt", Duration::from_secs(20), async || {
        let c = state_of(&w, &cb).await;
        (c.attempts > 0).then_some(c)
    })
    .await;
    let error = failed.last_error.unwrap_or_default();
    assert!(
        error.contains("resolves only to refused addresses") && error.contains(&name),
        "{error}"
    );
    assert!(
        arrivals.lock().unwrap().is_empty(),
        "the receiver was reached"
    );
    cancel.cancel();
    outbox.await.unwrap();

    // Allow-listed: the same URL is delivered, so the refusal above was the policy's.
    let allowed: Vec<IpNet> = addrs.iter().map(|a| IpNet::from(*a)).collect();
    let w = world(|c| c.webhook_policy = WebhookPolicy::allowing(allowed)).await;
    let ac = account(&w).await;
    let cb = callback(&w, &ac, &url);
    w.meta
        .enqueue_callbacks(std::slice::from_ref(&cb))
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let outbox = tokio::spawn(run(w.services.clone(), cancel.clone()));
    wait_for(
        "the allowed delivery",
        Duration::from_secs(20),
        async || (state_of(&w, &cb).await.state == "delivered").then_some(()),
    )
    .await;
    assert_eq!(arrivals.lock().unwrap().len(), 1);
    cancel.cancel();
    outbox.await.unwrap();
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn literal_internal_hosts_are_refused_before_sending() {
    let (addr, stop, arrivals) = receiver(200).await;
    let w = world(|c| c.callback_retry_base = Duration::from_secs(600)).await;
    let ac = account(&w).await;
    let port = addr.port();
    let urls = [
        format!("http://127.0.0.1:{port}/cb"),
        format!("http://127.1:{port}/cb"),
        format!("http://2130706433:{port}/cb"),
        format!("http://0x7f000001:{port}/cb"),
        format!("http://localhost:{port}/cb"),
        format!("http://[::ffff:127.0.0.1]:{port}/cb"),
        format!("http://user:secret@127.0.0.1:{port}/cb"),
    ];
    let cbs: Vec<Callback> = urls.iter().map(|u| callback(&w, &ac, u)).collect();
    w.meta.enqueue_callbacks(&cbs).await.unwrap();
    let cancel = CancellationToken::new();
    let outbox = tokio::spawn(run(w.services.clone(), cancel.clone()));
    for cb in &cbs {
        let failed = wait_for("the refused attempt", Duration::from_secs(20), async || {
            let c = state_of(&w, cb).await;
            (c.attempts > 0).then_some(c)
        })
        .await;
        let error = failed.last_error.unwrap_or_default();
        eprintln!("recorded: {error}");
        assert!(error.starts_with("refused: "), "{}: {error}", cb.url);
        assert!(!error.contains("secret"), "{error}");
    }
    assert!(
        arrivals.lock().unwrap().is_empty(),
        "the receiver was reached"
    );
    cancel.cancel();
    outbox.await.unwrap();
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_receivers_of_one_account_do_not_delay_another() {
    let (hole, held) = black_hole().await;
    let (addr, stop, arrivals) = receiver(200).await;
    let w = world(|c| {
        c.webhook_policy = WebhookPolicy::allowing(loopback());
        c.callback_timeout = Duration::from_secs(30);
        // The production poll interval, so the measured delays are what a deployment sees.
        c.callback_poll = ServiceConfig::default().callback_poll;
    })
    .await;
    let slow = account(&w).await;
    let other = account(&w).await;
    let hung: Vec<Callback> = (0..100)
        .map(|i| callback(&w, &slow, &format!("http://{hole}/hang/{i}")))
        .collect();
    w.meta.enqueue_callbacks(&hung).await.unwrap();
    // Due after every hung one: the old outbox took them first, 32 at a time.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let cb = callback(&w, &other, &format!("http://127.0.0.1:{}/cb", addr.port()));
    w.meta
        .enqueue_callbacks(std::slice::from_ref(&cb))
        .await
        .unwrap();

    let started = Instant::now();
    let cancel = CancellationToken::new();
    let outbox = tokio::spawn(run(w.services.clone(), cancel.clone()));
    wait_for(
        "the other account's callback",
        Duration::from_secs(25),
        async || arrivals.lock().unwrap().first().map(|(t, _)| *t),
    )
    .await;
    let delay = started.elapsed();
    eprintln!(
        "another account's callback arrived {delay:?} after the outbox started, with 100 deliveries of one account hanging"
    );
    // Generous: a hung delivery times out after 30 s, and the old outbox waited for that.
    assert!(delay < Duration::from_secs(10), "took {delay:?}");
    // The hung account holds at most its per-account share of the node.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let connected = held.lock().unwrap().len();
    assert!(
        (1..=8).contains(&connected),
        "{connected} hung deliveries in flight for one account"
    );
    // A callback made while the hung ones are in flight goes out at the next poll.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let later = callback(
        &w,
        &other,
        &format!("http://127.0.0.1:{}/later", addr.port()),
    );
    let enqueued = Instant::now();
    w.meta
        .enqueue_callbacks(std::slice::from_ref(&later))
        .await
        .unwrap();
    let arrived = wait_for(
        "the other account's second callback",
        Duration::from_secs(25),
        async || arrivals.lock().unwrap().get(1).map(|(t, _)| *t),
    )
    .await;
    let delay = arrived.duration_since(enqueued);
    eprintln!(
        "a callback of another account made while 100 deliveries hang arrived {delay:?} after it was queued"
    );
    assert!(delay < Duration::from_secs(10), "took {delay:?}");
    // Not a graceful stop: the hung deliveries would hold it for its grace period.
    outbox.abort();
    drop(cancel);
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_a_callback_url_become_basic_auth_and_are_never_recorded() {
    let (addr, stop, seen) = receiver(500).await;
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let w = world(|c| {
        c.webhook_policy = WebhookPolicy::allowing(loopback());
        c.callback_retry_base = Duration::from_secs(600);
    })
    .await;
    let ac = account(&w).await;
    let answered = callback(
        &w,
        &ac,
        &format!("http://alice:s3cret-pw@127.0.0.1:{}/cb", addr.port()),
    );
    let refused = callback(
        &w,
        &ac,
        &format!("http://alice:s3cret-pw@127.0.0.1:{closed_port}/cb"),
    );
    w.meta
        .enqueue_callbacks(&[answered.clone(), refused.clone()])
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let outbox = tokio::spawn(run(w.services.clone(), cancel.clone()));
    for cb in [&answered, &refused] {
        let failed = wait_for("the failed attempt", Duration::from_secs(20), async || {
            let c = state_of(&w, cb).await;
            (c.attempts > 0).then_some(c)
        })
        .await;
        let error = failed.last_error.unwrap_or_default();
        eprintln!("recorded: {error}");
        assert!(!error.is_empty());
        assert!(
            !error.contains("s3cret") && !error.contains("alice"),
            "the recorded error shows the credentials: {error}"
        );
    }
    let heads = seen.lock().unwrap().clone();
    assert_eq!(heads.len(), 1);
    // base64("alice:s3cret-pw"): Twilio's behaviour, credentials in the URL are Basic auth.
    assert!(
        heads[0]
            .1
            .contains("authorization: Basic YWxpY2U6czNjcmV0LXB3"),
        "{}",
        heads[0].1
    );
    cancel.cancel();
    outbox.await.unwrap();
    let _ = stop.send(());
}

/// A receiver that answers 503 to its first request and 204 after; records each request's body
/// in arrival order.
async fn refuses_once() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    tokio::spawn(async move {
        let mut first = true;
        while let Ok((mut stream, _)) = listener.accept().await {
            // One request at a time, so the arrival order is the order they were answered in.
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let Ok(n) = stream.read(&mut chunk).await else {
                    break None;
                };
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + length {
                    break Some(String::from_utf8_lossy(&buf[end + 4..]).into_owned());
                }
            };
            let Some(body) = body else { continue };
            let status = if std::mem::replace(&mut first, false) {
                "503 Service Unavailable"
            } else {
                "204 No Content"
            };
            seen.lock().unwrap().push(format!("{status}: {body}"));
            let answer =
                format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    (addr, bodies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calls_progress_callbacks_arrive_in_order_after_a_refused_attempt() {
    use mediaseal_service::calls::CallStatusCallback;
    use mediaseal_store::model::{CallChange, CallDirection, CallStatus};

    let (addr, seen) = refuses_once().await;
    let w = world(|c| {
        c.webhook_policy = WebhookPolicy::allowing(loopback());
        c.callback_retry_base = Duration::from_millis(300);
    })
    .await;
    let ac = account(&w).await;
    let ca = new_sid("CA");
    // As the SIP edge's ledger reports a call the API placed: each progress event travels
    // with the status change it reports, in the same transaction.
    for (status, event, sequence) in [
        (CallStatus::Queued, "initiated", "0"),
        (CallStatus::Ringing, "ringing", "1"),
        (CallStatus::InProgress, "in-progress", "2"),
    ] {
        let change = CallChange {
            sid: ca.clone(),
            account_sid: ac.clone(),
            parent_call_sid: None,
            direction: CallDirection::OutboundApi,
            from: "+15550001111".to_owned(),
            to: "sip:jack@example.com".to_owned(),
            status,
            duration_secs: None,
            sip_call_id: None,
            at: w.services.now_us(),
        };
        let callback = CallStatusCallback {
            url: format!("http://127.0.0.1:{}/status", addr.port()),
            method: "POST".to_owned(),
            params: vec![
                ("CallSid".to_owned(), ca.clone()),
                ("CallStatus".to_owned(), event.to_owned()),
                ("SequenceNumber".to_owned(), sequence.to_owned()),
            ],
        };
        w.services
            .record_call_change(&change, Some(&callback))
            .await
            .unwrap()
            .expect("the change moved the call forward");
    }
    let queued = w.meta.callbacks_for(&ca).await.unwrap();
    assert_eq!(queued.len(), 3, "{queued:#?}");
    let cancel = CancellationToken::new();
    let outbox = tokio::spawn(run(w.services.clone(), cancel.clone()));
    let got = wait_for("three deliveries", Duration::from_secs(20), async || {
        let got = seen.lock().unwrap().clone();
        (got.iter().filter(|b| b.starts_with("204")).count() >= 3).then_some(got)
    })
    .await;
    cancel.cancel();
    outbox.await.unwrap();
    let order: Vec<(&str, &str)> = got
        .iter()
        .map(|b| {
            let (status, body) = b.split_once(": ").unwrap();
            let event = body
                .split('&')
                .find_map(|kv| kv.strip_prefix("CallStatus="))
                .unwrap_or("?");
            (status, event)
        })
        .collect();
    assert_eq!(
        order,
        vec![
            ("503 Service Unavailable", "initiated"),
            ("204 No Content", "initiated"),
            ("204 No Content", "ringing"),
            ("204 No Content", "in-progress"),
        ],
        "{got:#?}"
    );
    let body = &got[1];
    assert!(
        body.contains("SequenceNumber=0") && !body.contains("SequenceNumber=0&SequenceNumber"),
        "the edge's sequence number is kept: {body}"
    );
}
