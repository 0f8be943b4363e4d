//! Server transactions (RFC 3261 §17.2, RFC 6026): requests we receive.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{
    Endpoint, Event, RespondError, ServerTransactionId, TimerKind, Timers, TransactionId, TxnRef,
    response_destination, stamp_via,
};
use crate::message::{HeaderName, Method, Request, Response, StatusCode, Transport, Via};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ServerState {
    /// Non-INVITE, nothing sent yet.
    Trying,
    /// A provisional response was sent (INVITE starts here).
    Proceeding,
    /// A final response (non-2xx for INVITE) was sent.
    Completed,
    /// INVITE only: the ACK for the error response arrived.
    Confirmed,
    /// INVITE only: a 2xx was sent (RFC 6026).
    Accepted,
}

/// How requests are matched to a server transaction (RFC 3261 §17.2.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum ServerKey {
    Rfc3261 {
        branch: String,
        sent_by: String,
        method: String,
    },
    /// RFC 2543 peers (no magic cookie): Call-ID, CSeq number, From tag, top Via.
    Legacy {
        call_id: String,
        cseq: u32,
        from_tag: String,
        via: String,
        method: String,
    },
}

impl ServerKey {
    /// The key for `request`, with ACK mapped to INVITE so it finds the INVITE transaction.
    /// `method` overrides the method (CANCEL looks for its INVITE).
    pub(super) fn of(request: &Request, via: &Via, method: Option<&Method>) -> Option<Self> {
        let method = method.unwrap_or(&request.method);
        let method = if *method == Method::Ack {
            "INVITE".to_owned()
        } else {
            method.as_str().to_owned()
        };
        if via.has_rfc3261_branch() {
            return Some(Self::Rfc3261 {
                branch: via.branch()?.to_owned(),
                sent_by: via.sent_by(),
                method,
            });
        }
        let mut via = via.clone();
        via.params.remove("received");
        via.params.remove("rport");
        Some(Self::Legacy {
            call_id: request.headers.call_id().ok()?.to_owned(),
            cseq: request.headers.cseq().ok()?.seq,
            from_tag: request
                .headers
                .from()
                .ok()?
                .tag()
                .unwrap_or_default()
                .to_owned(),
            via: via.to_string().to_ascii_lowercase(),
            method,
        })
    }
}

#[derive(Debug)]
pub(super) struct ServerTxn {
    pub(super) invite: bool,
    pub(super) state: ServerState,
    pub(super) request: Request,
    pub(super) key: ServerKey,
    pub(super) transport: Transport,
    pub(super) destination: SocketAddr,
    pub(super) last_response: Option<(StatusCode, Vec<u8>)>,
    pub(super) interval: Duration,
    pub(super) timers: Timers,
    pub(super) acked: bool,
    pub(super) ack_key: Option<(String, u32, String)>,
}

impl Endpoint {
    pub(super) fn on_request(
        &mut self,
        mut request: Request,
        transport: Transport,
        source: SocketAddr,
        now: Instant,
    ) {
        let Some(via) = stamp_via(&mut request, source) else {
            return;
        };
        let via = request.headers.top_via().unwrap_or(via);
        let destination = response_destination(&via, transport, source);
        let Some(key) = ServerKey::of(&request, &via, None) else {
            return;
        };
        if let Some(&id) = self.server_index.get(&key) {
            self.server_retransmission(id, request, transport, source, now);
            return;
        }
        match request.method {
            Method::Ack => self.on_stray_ack(request, transport, source),
            Method::Cancel => self.on_cancel(request, &via, key, transport, destination, now),
            _ => {
                let id = self.create_server(request.clone(), key, transport, destination, now);
                self.stats.requests_received += 1;
                self.event(Event::NewRequest {
                    id: ServerTransactionId(id),
                    request,
                    transport,
                    source,
                });
            }
        }
    }

    fn create_server(
        &mut self,
        request: Request,
        key: ServerKey,
        transport: Transport,
        destination: SocketAddr,
        now: Instant,
    ) -> u64 {
        let id = self.alloc_id();
        let invite = request.method == Method::Invite;
        self.server_index.insert(key.clone(), id);
        self.servers.insert(
            id,
            ServerTxn {
                invite,
                state: if invite {
                    ServerState::Proceeding
                } else {
                    ServerState::Trying
                },
                request,
                key,
                transport,
                destination,
                last_response: None,
                interval: self.config.timers.t1,
                timers: Timers::default(),
                acked: false,
                ack_key: None,
            },
        );
        if invite {
            if self.config.auto_trying {
                let trying = self
                    .servers
                    .get(&id)
                    .map(|t| Response::for_request(&t.request, StatusCode::TRYING));
                if let Some(trying) = trying {
                    let _ = self.respond(ServerTransactionId(id), trying, now);
                }
            }
        } else {
            // RFC 4320: a non-INVITE the user never answers would otherwise live forever.
            let at = now + self.config.timers.t1x64();
            self.set_timer(TxnRef::Server(id), TimerKind::Abandoned, at);
        }
        id
    }

    fn server_retransmission(
        &mut self,
        id: u64,
        request: Request,
        transport: Transport,
        source: SocketAddr,
        now: Instant,
    ) {
        let Some(txn) = self.servers.get_mut(&id) else {
            return;
        };
        let is_ack = request.method == Method::Ack;
        match (txn.invite, txn.state, is_ack) {
            // ACK for our error response.
            (true, ServerState::Completed, true) => {
                txn.state = ServerState::Confirmed;
                let reliable = txn.transport.is_reliable();
                self.cancel_timer(TxnRef::Server(id), TimerKind::G);
                self.cancel_timer(TxnRef::Server(id), TimerKind::H);
                if reliable {
                    self.terminate_server(id);
                } else {
                    let at = now + self.config.timers.t4;
                    self.set_timer(TxnRef::Server(id), TimerKind::I, at);
                }
            }
            // RFC 2543 peers reuse the INVITE branch for the 2xx ACK.
            (true, ServerState::Accepted, true) => {
                self.ack_received(id);
                self.event(Event::Ack {
                    request,
                    transport,
                    source,
                    invite: Some(ServerTransactionId(id)),
                });
            }
            (_, _, true) => self.stats.retransmissions_absorbed += 1,
            (_, ServerState::Proceeding | ServerState::Completed, false) => {
                self.stats.retransmissions_absorbed += 1;
                if let Some((_, bytes)) = txn.last_response.clone() {
                    let (t, d) = (txn.transport, txn.destination);
                    self.transmit(t, d, bytes);
                }
            }
            _ => self.stats.retransmissions_absorbed += 1,
        }
    }

    fn on_stray_ack(&mut self, request: Request, transport: Transport, source: SocketAddr) {
        let key = match (
            request.headers.call_id(),
            request.headers.cseq(),
            request.headers.to(),
        ) {
            (Ok(c), Ok(s), Ok(t)) => {
                Some((c.to_owned(), s.seq, t.tag().unwrap_or_default().to_owned()))
            }
            _ => None,
        };
        let invite = key.and_then(|k| self.ack_index.get(&k).copied());
        if let Some(id) = invite {
            self.ack_received(id);
        }
        self.event(Event::Ack {
            request,
            transport,
            source,
            invite: invite.map(ServerTransactionId),
        });
    }

    fn ack_received(&mut self, id: u64) {
        if let Some(t) = self.servers.get_mut(&id) {
            if !t.acked {
                t.acked = true;
            } else {
                self.stats.retransmissions_absorbed += 1;
            }
        }
        self.cancel_timer(TxnRef::Server(id), TimerKind::Retransmit2xx);
    }

    fn on_cancel(
        &mut self,
        cancel: Request,
        via: &Via,
        key: ServerKey,
        transport: Transport,
        destination: SocketAddr,
        now: Instant,
    ) {
        let invite = ServerKey::of(&cancel, via, Some(&Method::Invite))
            .and_then(|k| self.server_index.get(&k).copied());
        let id = self.create_server(cancel.clone(), key, transport, destination, now);
        self.stats.requests_received += 1;
        let Some(invite) = invite else {
            let r = Response::for_request(&cancel, StatusCode::CALL_DOES_NOT_EXIST)
                .with_to_tag(&crate::ids::new_tag());
            let _ = self.respond(ServerTransactionId(id), r, now);
            return;
        };
        let ok = Response::for_request(&cancel, StatusCode::OK);
        let _ = self.respond(ServerTransactionId(id), ok, now);
        let pending = self
            .servers
            .get(&invite)
            .is_some_and(|t| t.state == ServerState::Proceeding);
        if pending {
            // The 487 carries the To tag of our provisional responses, if we sent any.
            let terminated = self.servers.get(&invite).map(|t| {
                let tag = t
                    .last_response
                    .as_ref()
                    .and_then(|(_, b)| to_tag_of(b))
                    .unwrap_or_else(crate::ids::new_tag);
                Response::for_request(&t.request, StatusCode::REQUEST_TERMINATED).with_to_tag(&tag)
            });
            if let Some(r) = terminated {
                let _ = self.respond(ServerTransactionId(invite), r, now);
            }
            self.event(Event::Cancelled {
                invite: ServerTransactionId(invite),
                cancel,
            });
        }
    }

    /// Sends `response` in server transaction `id`.
    pub fn respond(
        &mut self,
        id: ServerTransactionId,
        mut response: Response,
        now: Instant,
    ) -> Result<(), RespondError> {
        let ServerTransactionId(id) = id;
        if let Some(ua) = &self.config.user_agent
            && !response.headers.contains(&HeaderName::SERVER)
        {
            response.headers.push(HeaderName::SERVER, ua);
        }
        let t1 = self.config.timers.t1;
        let t1x64 = self.config.timers.t1x64();
        let status = response.status;
        let bytes = response.to_bytes();
        let ack_key = || {
            (
                response.headers.call_id().unwrap_or_default().to_owned(),
                response.headers.cseq().map(|c| c.seq).unwrap_or_default(),
                response
                    .headers
                    .to()
                    .ok()
                    .and_then(|t| t.tag().map(str::to_owned))
                    .unwrap_or_default(),
            )
        };
        let txn = self
            .servers
            .get_mut(&id)
            .ok_or(RespondError::UnknownTransaction)?;
        let (transport, destination) = (txn.transport, txn.destination);
        let after = match (txn.invite, txn.state) {
            (true, ServerState::Proceeding) if status.is_success() => {
                let key = ack_key();
                txn.state = ServerState::Accepted;
                txn.interval = t1;
                txn.ack_key = Some(key.clone());
                After::InviteAccepted(key)
            }
            (true, ServerState::Proceeding) if status.is_final() => {
                txn.state = ServerState::Completed;
                txn.interval = t1;
                After::InviteCompleted
            }
            (true, ServerState::Proceeding) => After::Nothing,
            // The user may send the 2xx again (or a 2xx with another body).
            (true, ServerState::Accepted) if status.is_success() => After::Nothing,
            (false, ServerState::Trying | ServerState::Proceeding) if status.is_final() => {
                txn.state = ServerState::Completed;
                After::NonInviteCompleted
            }
            (false, ServerState::Trying | ServerState::Proceeding) => {
                txn.state = ServerState::Proceeding;
                After::Nothing
            }
            _ => return Err(RespondError::AlreadyFinal),
        };
        txn.last_response = Some((status, bytes.clone()));
        self.transmit(transport, destination, bytes);
        let r = TxnRef::Server(id);
        match after {
            After::Nothing => {}
            After::InviteAccepted(key) => {
                self.ack_index.insert(key, id);
                self.set_timer(r, TimerKind::Retransmit2xx, now + t1);
                self.set_timer(r, TimerKind::L, now + t1x64);
            }
            After::InviteCompleted => {
                if !transport.is_reliable() {
                    self.set_timer(r, TimerKind::G, now + t1);
                }
                self.set_timer(r, TimerKind::H, now + t1x64);
            }
            After::NonInviteCompleted => {
                self.cancel_timer(r, TimerKind::Abandoned);
                if transport.is_reliable() {
                    self.terminate_server(id);
                } else {
                    self.set_timer(r, TimerKind::J, now + t1x64);
                }
            }
        }
        Ok(())
    }

    /// The request of a live server transaction.
    pub fn server_request(&self, id: ServerTransactionId) -> Option<&Request> {
        self.servers.get(&id.0).map(|t| &t.request)
    }

    pub(super) fn server_timer(&mut self, id: u64, kind: TimerKind, now: Instant) {
        let r = TxnRef::Server(id);
        self.forget_timer(r, kind);
        let t2 = self.config.timers.t2;
        let Some(txn) = self.servers.get_mut(&id) else {
            return;
        };
        match kind {
            TimerKind::G | TimerKind::Retransmit2xx => {
                let resend = match kind {
                    TimerKind::G => txn.state == ServerState::Completed,
                    _ => txn.state == ServerState::Accepted && !txn.acked,
                };
                if !resend {
                    return;
                }
                let Some((_, bytes)) = txn.last_response.clone() else {
                    return;
                };
                txn.interval = (txn.interval * 2).min(t2);
                let next = now + txn.interval;
                let (t, d) = (txn.transport, txn.destination);
                self.stats.retransmissions_sent += 1;
                self.transmit(t, d, bytes);
                self.set_timer(r, kind, next);
            }
            TimerKind::H => {
                self.terminate_server(id);
                self.event(Event::TransactionTimeout {
                    id: TransactionId::Server(ServerTransactionId(id)),
                });
            }
            TimerKind::L => {
                let acked = txn.acked;
                self.terminate_server(id);
                if !acked {
                    self.event(Event::TransactionTimeout {
                        id: TransactionId::Server(ServerTransactionId(id)),
                    });
                }
            }
            TimerKind::I | TimerKind::J | TimerKind::Abandoned => self.terminate_server(id),
            _ => {}
        }
    }

    pub(super) fn terminate_server(&mut self, id: u64) {
        if let Some(txn) = self.servers.remove(&id) {
            self.server_index.remove(&txn.key);
            if let Some(k) = &txn.ack_key {
                self.ack_index.remove(k);
            }
            self.clear_timers(TxnRef::Server(id), &txn.timers);
        }
    }
}

/// What [`Endpoint::respond`] does after sending.
enum After {
    Nothing,
    InviteAccepted((String, u32, String)),
    InviteCompleted,
    NonInviteCompleted,
}

/// The To tag of a serialized response we sent.
fn to_tag_of(bytes: &[u8]) -> Option<String> {
    match crate::message::SipMessage::parse(bytes, &crate::message::ParseLimits::default()).ok()? {
        crate::message::SipMessage::Response(r) => r.headers.to().ok()?.tag().map(str::to_owned),
        crate::message::SipMessage::Request(_) => None,
    }
}
