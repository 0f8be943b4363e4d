//! Connection governance for the HTTP listener: what one client, or many, may hold.
//!
//! A request handler cannot defend against a client that never finishes its request: by the
//! time a handler runs, the headers are in. So the listener itself bounds
//!
//! - how many connections the node holds, in total and per client address ([`ConnectionGate`]);
//!   a connection over either cap is closed as soon as it is accepted;
//! - how long a client may take to send its request headers (hyper's header-read timeout);
//! - how long a connection may make no progress in either direction ([`GovernedIo`]): a stalled
//!   upload, a half-sent request or a keep-alive connection left idle is closed;
//! - how slowly a request body may arrive ([`RateGuardedBody`]): after a grace period, a body
//!   arriving slower than the minimum rate is cut off, so a trickle of one byte every few
//!   seconds cannot hold an upload slot for days;
//! - the TLS handshake (the rustls acceptor's timeout).
//!
//! At start the process raises its open-file limit ([`raise_fd_limit`]) so the caps, not the
//! descriptor table, are what a flood meets.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum_server::accept::Accept;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// The listener's limits. Every one is a `serve` option (see `docs/DEPLOYMENT.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections this node holds at once; more are closed on accept.
    pub max_connections: usize,
    /// Connections one client address holds at once.
    pub max_connections_per_client: usize,
    /// Time a client has to send a request's headers.
    pub header_read_timeout: Duration,
    /// Time a connection may go without a byte moving in either direction.
    pub idle_timeout: Duration,
    /// Time a client has to complete the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Slowest acceptable request body, in bytes per second, once `upload_grace` has passed.
    /// Zero disables the check.
    pub min_upload_rate: u64,
    /// How long a body may take before the rate is enforced (slow starts, TCP ramp-up).
    pub upload_grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_connections_per_client: 256,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            tls_handshake_timeout: Duration::from_secs(10),
            min_upload_rate: 1024,
            upload_grace: Duration::from_secs(10),
        }
    }
}

/// Counts connections, in total and per client address.
#[derive(Debug, Clone)]
pub struct ConnectionGate {
    inner: Arc<GateInner>,
}

#[derive(Debug)]
struct GateInner {
    max_total: usize,
    max_per_client: usize,
    open: Mutex<GateCounts>,
}

#[derive(Debug, Default)]
struct GateCounts {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Ticket {
    gate: Arc<GateInner>,
    client: IpAddr,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The node holds its maximum number of connections.
    NodeFull,
    /// This client address holds its maximum.
    ClientFull,
}

impl ConnectionGate {
    /// A gate admitting at most `max_total` connections, `max_per_client` from one address.
    pub fn new(max_total: usize, max_per_client: usize) -> Self {
        Self {
            inner: Arc::new(GateInner {
                max_total,
                max_per_client,
                open: Mutex::new(GateCounts::default()),
            }),
        }
    }

    /// Admits a connection from `client`, or says which cap it would exceed.
    pub fn admit(&self, client: IpAddr) -> Result<Ticket, Refused> {
        let client = canonical(client);
        let mut open = self
            .inner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if open.total >= self.inner.max_total {
            return Err(Refused::NodeFull);
        }
        let mine = open.per_client.entry(client).or_insert(0);
        if *mine >= self.inner.max_per_client {
            return Err(Refused::ClientFull);
        }
        *mine += 1;
        open.total += 1;
        Ok(Ticket {
            gate: Arc::clone(&self.inner),
            client,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.inner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

/// An IPv4 client connecting over an IPv6 socket counts as its IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut open = self
            .gate
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                open.per_client.remove(&self.client);
            }
        }
    }
}

/// A connection's byte stream that fails with `TimedOut` once no byte has moved for the idle
/// timeout while someone waits on it, and that holds the connection's [`Ticket`].
#[derive(Debug)]
pub struct GovernedIo<S> {
    inner: S,
    idle: Duration,
    /// When a byte last moved. The timer is re-armed from it only when it fires, so the hot
    /// path (every read and write of an upload) costs a clock read, not a timer-wheel update.
    last_progress: Instant,
    deadline: Pin<Box<Sleep>>,
    _ticket: Ticket,
}

impl<S> GovernedIo<S> {
    fn new(inner: S, idle: Duration, ticket: Ticket) -> Self {
        Self {
            inner,
            idle,
            last_progress: Instant::now(),
            deadline: Box::pin(tokio::time::sleep(idle)),
            _ticket: ticket,
        }
    }

    fn progressed(&mut self) {
        self.last_progress = Instant::now();
    }

    /// Called when the inner stream is not ready: an error once `idle` has passed without
    /// progress. A timer that fires early (progress since it was armed) is re-armed.
    fn check_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            match self.deadline.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) => {
                    let due = self.last_progress + self.idle;
                    if due <= Instant::now() {
                        return Poll::Ready(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "connection idle for too long",
                        ));
                    }
                    // Polling again registers the waker for the new deadline.
                    self.deadline.as_mut().reset(due);
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for GovernedIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    this.progressed();
                }
                Poll::Ready(result)
            }
            Poll::Pending => this.check_idle(cx).map(Err),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for GovernedIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, data) {
            Poll::Ready(result) => {
                if matches!(result, Ok(n) if n > 0) {
                    this.progressed();
                }
                Poll::Ready(result)
            }
            Poll::Pending => this.check_idle(cx).map(Err),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(result) => Poll::Ready(result),
            Poll::Pending => this.check_idle(cx).map(Err),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(result) => {
                if matches!(result, Ok(n) if n > 0) {
                    this.progressed();
                }
                Poll::Ready(result)
            }
            Poll::Pending => this.check_idle(cx).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Admits each accepted TCP connection through the [`ConnectionGate`] and wraps it in
/// [`GovernedIo`] before the inner acceptor (plain or TLS) sees it.
#[derive(Debug, Clone)]
pub struct GovernedAcceptor<A> {
    inner: A,
    gate: ConnectionGate,
    idle: Duration,
}

impl<A> GovernedAcceptor<A> {
    /// Wraps `inner`.
    pub fn new(inner: A, gate: ConnectionGate, idle: Duration) -> Self {
        Self { inner, gate, idle }
    }
}

type AcceptFuture<T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send>>;

impl<A, S> Accept<TcpStream, S> for GovernedAcceptor<A>
where
    A: Accept<GovernedIo<TcpStream>, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future = AcceptFuture<(A::Stream, A::Service)>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let client = match stream.peer_addr() {
            Ok(addr) => addr.ip(),
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        match self.gate.admit(client) {
            Ok(ticket) => {
                let io = GovernedIo::new(stream, self.idle, ticket);
                Box::pin(self.inner.accept(io, service))
            }
            Err(refused) => {
                metrics::counter!(
                    "mediaseal_connections_refused_total",
                    "reason" => match refused {
                        Refused::NodeFull => "node_full",
                        Refused::ClientFull => "client_full",
                    }
                )
                .increment(1);
                tracing::debug!(%client, ?refused, "connection refused at the cap");
                // Dropping the stream closes it.
                Box::pin(std::future::ready(Err(io::Error::other(
                    "connection limit reached",
                ))))
            }
        }
    }
}

/// A request body that fails once it has arrived slower than a minimum rate for longer than a
/// grace period. A body that stops entirely is ended by the connection's idle timeout instead.
#[derive(Debug)]
pub struct RateGuardedBody {
    inner: Body,
    started: Instant,
    received: u64,
    min_rate: u64,
    grace: Duration,
}

/// The error a too-slow body ends with.
#[derive(Debug, thiserror::Error)]
#[error(
    "the request body arrived slower than {min_rate} bytes per second; send it faster or from \
     a better-connected client"
)]
pub struct TooSlow {
    min_rate: u64,
}

impl RateGuardedBody {
    /// Guards `inner`.
    pub fn new(inner: Body, min_rate: u64, grace: Duration) -> Self {
        Self {
            inner,
            started: Instant::now(),
            received: 0,
            min_rate,
            grace,
        }
    }

    fn too_slow(&self) -> bool {
        if self.min_rate == 0 {
            return false;
        }
        let late = self.started.elapsed().saturating_sub(self.grace);
        let owed = u128::from(self.min_rate) * late.as_millis() / 1000;
        u128::from(self.received) < owed
    }
}

impl http_body::Body for RateGuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                this.received += data.len() as u64;
            }
            if this.too_slow() {
                metrics::counter!("mediaseal_uploads_too_slow_total").increment(1);
                return Poll::Ready(Some(Err(axum::Error::new(TooSlow {
                    min_rate: this.min_rate,
                }))));
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Raises the soft open-file limit towards `wanted` (at most the hard limit) and returns the
/// limit in force afterwards.
pub fn raise_fd_limit(wanted: u64) -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    if current >= wanted {
        return current;
    }
    let target = limit.maximum.map_or(wanted, |hard| hard.min(wanted));
    if target <= current {
        return current;
    }
    let raised = rustix::process::Rlimit {
        current: Some(target),
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => target,
        Err(_) => current,
    }
}

/// The descriptors a node with these limits needs: one per connection, one per object being
/// written or read for it, and headroom for the database pool, logs and workers.
pub fn fd_budget(limits: &ConnectionLimits) -> u64 {
    (limits.max_connections as u64).saturating_mul(2) + 1024
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn gate_caps_per_client_and_in_total() {
        let gate = ConnectionGate::new(3, 2);
        let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
        let a1 = gate.admit(a).unwrap();
        let _a2 = gate.admit(a).unwrap();
        assert_eq!(gate.admit(a).unwrap_err(), Refused::ClientFull);
        // The same client over an IPv6 socket is the same client.
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        assert_eq!(gate.admit(mapped).unwrap_err(), Refused::ClientFull);
        let _b1 = gate.admit(b).unwrap();
        assert_eq!(
            gate.admit(IpAddr::V6(Ipv6Addr::LOCALHOST)).unwrap_err(),
            Refused::NodeFull
        );
        drop(a1);
        assert_eq!(gate.open(), 2);
        let _a3 = gate.admit(a).unwrap();
    }

    #[tokio::test]
    async fn idle_stream_times_out_and_progress_keeps_it_alive() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let gate = ConnectionGate::new(1, 1);
        let ticket = gate.admit(IpAddr::V4(Ipv4Addr::LOCALHOST)).unwrap();
        let (near, mut far) = tokio::io::duplex(64);
        let idle = Duration::from_millis(300);
        let mut io = GovernedIo::new(near, idle, ticket);
        let mut byte = [0u8; 1];
        // Bytes arriving more often than the idle timeout keep the connection open.
        for _ in 0..4 {
            tokio::time::sleep(idle / 3).await;
            far.write_all(b"x").await.unwrap();
            io.read_exact(&mut byte).await.unwrap();
        }
        // Then nothing: the read fails with TimedOut (well before the outer guard).
        let err = tokio::time::timeout(Duration::from_secs(10), io.read_exact(&mut byte))
            .await
            .expect("the idle timeout fired")
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        drop(io);
        assert_eq!(gate.open(), 0, "the ticket went with the connection");
    }

    #[tokio::test]
    async fn trickling_body_is_cut_off_after_the_grace_period() {
        use http_body_util::BodyExt;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, io::Error>>(4);
        let stream = tokio_stream_from(rx);
        // 1000 bytes/s owed after 100 ms; one byte every 20 ms is 50 bytes/s.
        let body =
            RateGuardedBody::new(Body::from_stream(stream), 1000, Duration::from_millis(100));
        let feeder = tokio::spawn(async move {
            for _ in 0..500 {
                if tx.send(Ok(Bytes::from_static(b"x"))).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        let err = tokio::time::timeout(Duration::from_secs(10), body.collect())
            .await
            .expect("the body was cut off")
            .unwrap_err();
        assert!(err.to_string().contains("bytes per second"), "{err}");
        feeder.abort();
    }

    #[tokio::test]
    async fn fast_body_passes() {
        use http_body_util::BodyExt;
        let body =
            RateGuardedBody::new(Body::from(vec![7u8; 100_000]), 1000, Duration::from_secs(1));
        assert_eq!(body.collect().await.unwrap().to_bytes().len(), 100_000);
    }

    fn tokio_stream_from(
        mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, io::Error>>,
    ) -> impl futures::Stream<Item = Result<Bytes, io::Error>> {
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }

    #[test]
    fn fd_limit_never_lowers() {
        let before = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(u64::MAX);
        assert!(raise_fd_limit(16) >= before.min(16));
    }
}
