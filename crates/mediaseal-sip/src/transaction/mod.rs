//! The transaction layer (RFC 3261 §17, with RFC 6026's Accepted state) behind a sans-IO
//! [`Endpoint`].
//!
//! The IO shell owns sockets and a clock. Its loop:
//!
//! 1. feed what arrives: [`Endpoint::handle_datagram`] (UDP) or [`Endpoint::handle_message`]
//!    (a message framed by [`StreamFramer`](crate::message::StreamFramer) on TCP/TLS), with the
//!    transport it arrived on, the peer address and `now`;
//! 2. drain [`Endpoint::poll_output`]: [`Output::Transmit`] (send these bytes to this address
//!    on this transport; for TCP/TLS, on the connection the request came from when the address
//!    is a peer's) and [`Output::Event`] (for the transaction user: the call logic);
//! 3. sleep until [`Endpoint::poll_timeout`] or the next packet, then call
//!    [`Endpoint::handle_timeout`].
//!
//! The transaction user answers with [`Endpoint::respond`], starts requests with
//! [`Endpoint::send_request`], acknowledges 2xx with [`Endpoint::send_ack`] and cancels with
//! [`Endpoint::cancel`].
//!
//! ## State machines
//!
//! Timers (defaults T1 = 500 ms, T2 = 4 s, T4 = 5 s; "unrel." = only on UDP, reliable
//! transports use 0 for D, I, J, K and never retransmit):
//!
//! | machine | states | timers |
//! |---|---|---|
//! | client INVITE | Calling → Proceeding → Completed / Accepted → Terminated | A = T1 doubling (unrel.), B = 64·T1 (Calling only), D = 32 s (unrel.), M = 64·T1 |
//! | client non-INVITE | Trying → Proceeding → Completed → Terminated | E = T1 doubling to T2 (unrel.; T2 in Proceeding), F = 64·T1, K = T4 (unrel.) |
//! | server INVITE | Proceeding → Completed → Confirmed / Accepted → Terminated | G = T1 doubling to T2 (unrel.), H = 64·T1, I = T4 (unrel.), L = 64·T1; 2xx retransmitted T1 doubling to T2 until the ACK |
//! | server non-INVITE | Trying → Proceeding → Completed → Terminated | J = 64·T1 (unrel.) |
//!
//! Behaviour worth knowing:
//! - A new INVITE is answered `100 Trying` at once (configurable), so the peer stops
//!   retransmitting while the transaction user thinks.
//! - Retransmitted requests are absorbed and answered with the last response; retransmitted
//!   final responses to an INVITE are answered with the same ACK. Neither reaches the user.
//! - 2xx to INVITE: the server transaction (RFC 6026 Accepted) retransmits it until the ACK
//!   arrives; the ACK (a separate request, matched by Call-ID, CSeq and To tag) is delivered as
//!   [`Event::Ack`]; without one for 64·T1 the user gets [`Event::TransactionTimeout`] (send
//!   BYE, RFC 3261 §13.3.1.4). On the client side, the ACK given to [`Endpoint::send_ack`] is
//!   re-sent for each retransmitted 2xx with the same To tag.
//! - CANCEL (RFC 3261 §9.2) is answered by the endpoint: 200 and `487 Request Terminated` on
//!   the INVITE if it is still pending (then [`Event::Cancelled`]), else 200 alone, or 481 when
//!   no INVITE matches. [`Endpoint::cancel`] waits for a provisional response before sending
//!   (§9.1) and gives the INVITE 64·T1 to end after that.
//! - Incoming requests get `received`/`rport` on their top Via (RFC 3261 §18.2.1, RFC 3581)
//!   and responses go back per §18.2.2 (to the source port when `rport` was asked for).
//! - Requests are matched by the RFC 3261 branch, sent-by and method (ACK matches INVITE);
//!   requests without the magic cookie by Call-ID, CSeq, From tag and top Via (RFC 2543).
//! - Responses with more than one Via are dropped (§18.1.2); so are responses matching no
//!   client transaction, except 2xx to INVITE ([`Event::StrayResponse`]: the user must ACK
//!   and BYE a late 2xx).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::message::{
    HeaderError, HeaderName, Host, ParseError, ParseLimits, Request, Response, Scheme, SipMessage,
    SipUri, Transport, Via,
};

mod client;
mod server;

use client::ClientTxn;
pub use client::build_cancel;
use server::{ServerKey, ServerTxn};

/// Protocol timers (RFC 3261 §17.1.1.1, Table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate, 500 ms.
    pub t1: Duration,
    /// Longest retransmit interval for non-INVITE requests and INVITE responses, 4 s.
    pub t2: Duration,
    /// Longest time a message stays in the network, 5 s.
    pub t4: Duration,
    /// Timer D (wait for response retransmits after a failure response), at least 32 s.
    pub timer_d: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            timer_d: Duration::from_secs(32),
        }
    }
}

impl TimerConfig {
    fn t1x64(&self) -> Duration {
        self.t1.saturating_mul(64)
    }
}

/// Endpoint settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointConfig {
    /// Timers.
    pub timers: TimerConfig,
    /// The host put in Via sent-by (our address or name).
    pub host: Host,
    /// The port put in Via sent-by for UDP.
    pub udp_port: u16,
    /// The port put in Via sent-by for TCP.
    pub tcp_port: u16,
    /// The port put in Via sent-by for TLS.
    pub tls_port: u16,
    /// `User-Agent` added to requests and `Server` to responses, if set.
    pub user_agent: Option<String>,
    /// Parser limits for [`Endpoint::handle_datagram`].
    pub limits: ParseLimits,
    /// Answer new INVITEs with `100 Trying` immediately.
    pub auto_trying: bool,
}

impl EndpointConfig {
    /// Defaults for `host`: ports 5060/5060/5061, RFC timers, auto 100 Trying.
    pub fn new(host: Host) -> Self {
        Self {
            timers: TimerConfig::default(),
            host,
            udp_port: 5060,
            tcp_port: 5060,
            tls_port: 5061,
            user_agent: None,
            limits: ParseLimits::default(),
            auto_trying: true,
        }
    }

    /// The sent-by port for `transport`.
    pub fn port(&self, transport: Transport) -> u16 {
        match transport {
            Transport::Udp => self.udp_port,
            Transport::Tcp => self.tcp_port,
            Transport::Tls => self.tls_port,
        }
    }
}

/// Where to send a request: a transport and a socket address (DNS is the shell's job).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Target {
    /// Transport.
    pub transport: Transport,
    /// Address.
    pub addr: SocketAddr,
}

impl Target {
    /// The target named by a SIP URI with an IP-literal host: transport from `;transport=`
    /// (TLS for `sips:` or `;secure=true`), port from the URI or the transport's default.
    /// `None` when the host is a name that needs resolving.
    pub fn from_uri(uri: &SipUri) -> Option<Self> {
        let transport = if uri.scheme == Scheme::Sips || uri.secure_param() {
            Transport::Tls
        } else {
            match uri.transport_param().as_deref() {
                Some("tcp") => Transport::Tcp,
                Some("tls") => Transport::Tls,
                _ => Transport::Udp,
            }
        };
        let ip = uri.host.ip()?;
        let port = uri.port.unwrap_or(transport.default_port());
        Some(Self {
            transport,
            addr: SocketAddr::new(ip, port),
        })
    }
}

/// Identifies a client transaction (a request we sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientTransactionId(u64);

/// Identifies a server transaction (a request we received).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerTransactionId(u64);

/// Either kind of transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransactionId {
    /// A request we sent.
    Client(ClientTransactionId),
    /// A request we received.
    Server(ServerTransactionId),
}

/// Bytes to send.
#[derive(Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The transport.
    pub transport: Transport,
    /// The destination.
    pub destination: SocketAddr,
    /// The message (may contain SDES keys: never log it).
    pub bytes: Vec<u8>,
}

impl core::fmt::Debug for Transmit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Transmit")
            .field("transport", &self.transport)
            .field("destination", &self.destination)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// Something for the transaction user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A new request (not ACK, not CANCEL): answer it with [`Endpoint::respond`].
    NewRequest {
        /// Its server transaction.
        id: ServerTransactionId,
        /// The request (top Via carries `received`/`rport`).
        request: Request,
        /// The transport it arrived on.
        transport: Transport,
        /// The peer's address.
        source: SocketAddr,
    },
    /// An ACK for a 2xx (end to end, outside any transaction).
    Ack {
        /// The ACK.
        request: Request,
        /// The transport it arrived on.
        transport: Transport,
        /// The peer's address.
        source: SocketAddr,
        /// The INVITE server transaction whose 2xx it acknowledges, if still known.
        invite: Option<ServerTransactionId>,
    },
    /// A pending INVITE was cancelled; the endpoint already answered 200 to the CANCEL and
    /// 487 to the INVITE.
    Cancelled {
        /// The INVITE's transaction.
        invite: ServerTransactionId,
        /// The CANCEL.
        cancel: Request,
    },
    /// A response to one of our requests (retransmissions are absorbed).
    Response {
        /// The client transaction.
        id: ClientTransactionId,
        /// The response.
        response: Response,
    },
    /// A 2xx to an INVITE whose transaction is gone (late or forked): ACK it, then BYE if
    /// unwanted.
    StrayResponse {
        /// The response.
        response: Response,
        /// Who sent it.
        source: SocketAddr,
    },
    /// Timer B/F (no final response), H (no ACK for an error response), L without an ACK
    /// for a 2xx (send BYE), or 64·T1 after a CANCEL without a final response.
    TransactionTimeout {
        /// The transaction.
        id: TransactionId,
    },
    /// The shell reported that sending for this transaction failed.
    TransportError {
        /// The transaction.
        id: TransactionId,
    },
    /// Bytes that did not parse; a 400 (or 505/513) was sent when the request could be
    /// answered.
    Malformed {
        /// Who sent them.
        source: SocketAddr,
        /// The transport.
        transport: Transport,
        /// Why they were refused.
        error: ParseError,
    },
}

/// What the endpoint wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send bytes.
    Transmit(Transmit),
    /// Tell the transaction user.
    Event(Event),
}

/// Counters for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointStats {
    /// Requests that created a server transaction.
    pub requests_received: u64,
    /// Retransmitted requests or responses absorbed by a transaction.
    pub retransmissions_absorbed: u64,
    /// Messages we retransmitted on a timer.
    pub retransmissions_sent: u64,
    /// Messages that failed to parse.
    pub malformed: u64,
    /// Responses dropped because no transaction matched.
    pub unmatched_responses: u64,
}

/// Why [`Endpoint::send_request`] / [`Endpoint::send_ack`] refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// ACK for a 2xx goes through [`Endpoint::send_ack`]; ACK for an error response is sent
    /// by the transaction itself.
    #[error("ACK is sent with send_ack, not send_request")]
    AckNeedsSendAck,
    /// `send_ack` was given something other than an ACK.
    #[error("send_ack needs an ACK request")]
    NotAnAck,
    /// A required header is missing or malformed.
    #[error("request is missing required headers: {0}")]
    InvalidRequest(HeaderError),
    /// The top Via carries a branch without the RFC 3261 magic cookie.
    #[error("top Via branch must start with z9hG4bK (or leave Via out and the endpoint adds one)")]
    BadBranch,
    /// A transaction with this branch and method exists.
    #[error("a transaction with this branch already exists")]
    DuplicateBranch,
}

/// Why [`Endpoint::respond`] refused a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RespondError {
    /// The transaction ended (or never existed).
    #[error("no such server transaction (it may have ended)")]
    UnknownTransaction,
    /// A final response was already sent (only more 2xx may follow a 2xx to INVITE).
    #[error("the transaction already has a final response")]
    AlreadyFinal,
}

/// Why [`Endpoint::cancel`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CancelError {
    /// No such INVITE client transaction.
    #[error("no such INVITE client transaction")]
    UnknownTransaction,
    /// The INVITE already has a final response.
    #[error("the INVITE already has a final response")]
    AlreadyFinal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TxnRef {
    Client(u64),
    Server(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    A,
    B,
    D,
    E,
    F,
    K,
    M,
    /// 64·T1 after a CANCEL was sent.
    CancelGuard,
    G,
    H,
    I,
    J,
    L,
    /// 2xx retransmission in the server Accepted state.
    Retransmit2xx,
    /// A non-INVITE request the user never answered.
    Abandoned,
}

/// Active timers of one transaction.
#[derive(Debug, Default)]
struct Timers(Vec<(TimerKind, Instant)>);

/// The sans-IO SIP endpoint: every transaction, their timers, and the output queue.
#[derive(Debug)]
pub struct Endpoint {
    config: EndpointConfig,
    next_id: u64,
    clients: HashMap<u64, ClientTxn>,
    client_index: HashMap<(String, String), u64>,
    servers: HashMap<u64, ServerTxn>,
    server_index: HashMap<ServerKey, u64>,
    /// (Call-ID, CSeq number, To tag) of 2xx-answered INVITEs → server transaction.
    ack_index: HashMap<(String, u32, String), u64>,
    timers: BTreeSet<(Instant, TxnRef, TimerKind)>,
    outputs: VecDeque<Output>,
    stats: EndpointStats,
}

impl Endpoint {
    /// An endpoint with no transactions.
    pub fn new(config: EndpointConfig) -> Self {
        Self {
            config,
            next_id: 1,
            clients: HashMap::new(),
            client_index: HashMap::new(),
            servers: HashMap::new(),
            server_index: HashMap::new(),
            ack_index: HashMap::new(),
            timers: BTreeSet::new(),
            outputs: VecDeque::new(),
            stats: EndpointStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> EndpointStats {
        self.stats
    }

    /// Live transactions (client, server).
    pub fn transaction_count(&self) -> (usize, usize) {
        (self.clients.len(), self.servers.len())
    }

    /// A Via for a request we send on `transport`, with a fresh branch and `rport`.
    pub fn new_via(&self, transport: Transport) -> Via {
        let mut via = Via::new(
            transport,
            self.config.host.clone(),
            Some(self.config.port(transport)),
            &crate::ids::new_branch(),
        );
        via.params.set("rport", None);
        via
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`Self::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(at, _, _)| *at)
    }

    /// Parses a datagram and handles it. Bytes that do not parse produce
    /// [`Event::Malformed`] and, for requests that can be answered, a 400/505/513.
    pub fn handle_datagram(
        &mut self,
        bytes: &[u8],
        transport: Transport,
        source: SocketAddr,
        now: Instant,
    ) {
        if bytes.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            return; // keep-alive
        }
        match SipMessage::parse(bytes, &self.config.limits) {
            Ok(m) => self.handle_message(m, transport, source, now),
            Err(error) => self.reject_malformed(bytes, &error, transport, source, now),
        }
    }

    /// Reports bytes that failed to parse (from the stream framer) and answers them if
    /// possible.
    pub fn reject_malformed(
        &mut self,
        bytes: &[u8],
        error: &ParseError,
        transport: Transport,
        source: SocketAddr,
        _now: Instant,
    ) {
        self.stats.malformed += 1;
        let agent = self.config.host.to_string();
        if let Some(resp) =
            crate::message::parse::error_response(bytes, error, &self.config.limits, &agent)
        {
            let destination = resp
                .headers
                .top_via()
                .ok()
                .map_or(source, |via| response_destination(&via, transport, source));
            self.transmit(transport, destination, resp.to_bytes());
        }
        self.event(Event::Malformed {
            source,
            transport,
            error: error.clone(),
        });
    }

    /// Handles a parsed message that arrived on `transport` from `source`.
    pub fn handle_message(
        &mut self,
        message: SipMessage,
        transport: Transport,
        source: SocketAddr,
        now: Instant,
    ) {
        match message {
            SipMessage::Request(r) => self.on_request(r, transport, source, now),
            SipMessage::Response(r) => self.on_response(r, transport, source, now),
        }
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, txn, kind)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, txn, kind));
            match txn {
                TxnRef::Client(id) => self.client_timer(id, kind, now),
                TxnRef::Server(id) => self.server_timer(id, kind, now),
            }
        }
    }

    /// The shell could not send to `destination` on `transport` (ICMP error, connection
    /// refused or reset, TLS failure): every transaction using it ends with
    /// [`Event::TransportError`].
    pub fn transport_error(&mut self, transport: Transport, destination: SocketAddr) {
        let clients: Vec<u64> = self
            .clients
            .iter()
            .filter(|(_, t)| t.target.transport == transport && t.target.addr == destination)
            .map(|(id, _)| *id)
            .collect();
        for id in clients {
            let silent = self.clients.get(&id).is_some_and(|t| t.silent);
            self.terminate_client(id);
            if !silent {
                self.event(Event::TransportError {
                    id: TransactionId::Client(ClientTransactionId(id)),
                });
            }
        }
        let servers: Vec<u64> = self
            .servers
            .iter()
            .filter(|(_, t)| t.transport == transport && t.destination == destination)
            .map(|(id, _)| *id)
            .collect();
        for id in servers {
            self.terminate_server(id);
            self.event(Event::TransportError {
                id: TransactionId::Server(ServerTransactionId(id)),
            });
        }
    }

    fn alloc_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn transmit(&mut self, transport: Transport, destination: SocketAddr, bytes: Vec<u8>) {
        self.outputs.push_back(Output::Transmit(Transmit {
            transport,
            destination,
            bytes,
        }));
    }

    fn event(&mut self, e: Event) {
        self.outputs.push_back(Output::Event(e));
    }

    fn set_timer(&mut self, txn: TxnRef, kind: TimerKind, at: Instant) {
        let timers = match txn {
            TxnRef::Client(id) => self.clients.get_mut(&id).map(|t| &mut t.timers),
            TxnRef::Server(id) => self.servers.get_mut(&id).map(|t| &mut t.timers),
        };
        let Some(timers) = timers else { return };
        if let Some(pos) = timers.0.iter().position(|(k, _)| *k == kind) {
            let (_, old) = timers.0.remove(pos);
            self.timers.remove(&(old, txn, kind));
        }
        timers.0.push((kind, at));
        self.timers.insert((at, txn, kind));
    }

    fn cancel_timer(&mut self, txn: TxnRef, kind: TimerKind) {
        let timers = match txn {
            TxnRef::Client(id) => self.clients.get_mut(&id).map(|t| &mut t.timers),
            TxnRef::Server(id) => self.servers.get_mut(&id).map(|t| &mut t.timers),
        };
        let Some(timers) = timers else { return };
        if let Some(pos) = timers.0.iter().position(|(k, _)| *k == kind) {
            let (_, old) = timers.0.remove(pos);
            self.timers.remove(&(old, txn, kind));
        }
    }

    /// Removes a fired timer from the transaction's list (the set entry is already gone).
    fn forget_timer(&mut self, txn: TxnRef, kind: TimerKind) {
        let timers = match txn {
            TxnRef::Client(id) => self.clients.get_mut(&id).map(|t| &mut t.timers),
            TxnRef::Server(id) => self.servers.get_mut(&id).map(|t| &mut t.timers),
        };
        if let Some(timers) = timers {
            timers.0.retain(|(k, _)| *k != kind);
        }
    }

    fn clear_timers(&mut self, txn: TxnRef, timers: &Timers) {
        for (kind, at) in &timers.0 {
            self.timers.remove(&(*at, txn, *kind));
        }
    }
}

/// Where responses to a request go (RFC 3261 §18.2.2, RFC 3581 §4). The top Via already
/// carries `received` and `rport` as set on arrival.
pub(crate) fn response_destination(
    via: &Via,
    transport: Transport,
    source: SocketAddr,
) -> SocketAddr {
    if transport.is_reliable() {
        return source;
    }
    let ip = via
        .received()
        .and_then(|r| r.parse().ok())
        .or_else(|| via.host.ip())
        .unwrap_or(source.ip());
    let port = match via.rport() {
        Some(Some(p)) => p,
        Some(None) => source.port(),
        None => via.port.unwrap_or(transport.default_port()),
    };
    SocketAddr::new(ip, port)
}

/// Sets `received` and `rport` on the top Via of an incoming request.
pub(crate) fn stamp_via(request: &mut Request, source: SocketAddr) -> Option<Via> {
    let mut via = request.headers.top_via().ok()?;
    let rport_requested = via.rport().is_some();
    if via.host.ip() != Some(source.ip()) || rport_requested {
        via.params.set("received", Some(&source.ip().to_string()));
    }
    if rport_requested {
        via.params.set("rport", Some(&source.port().to_string()));
    }
    request
        .headers
        .replace_first_value(&HeaderName::VIA, via.to_string());
    Some(via)
}

#[cfg(test)]
mod tests;
