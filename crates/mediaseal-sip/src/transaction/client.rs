//! Client transactions (RFC 3261 §17.1, RFC 6026): requests we send.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{
    CancelError, ClientTransactionId, Endpoint, Event, SendError, Target, TimerKind, Timers,
    TransactionId, TxnRef,
};
use crate::message::{HeaderName, MaxForwards, Method, Request, Response, Transport, Via};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClientState {
    /// INVITE sent, nothing back (Calling) / non-INVITE sent (Trying).
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived (non-2xx for INVITE).
    Completed,
    /// INVITE only: a 2xx arrived (RFC 6026).
    Accepted,
}

#[derive(Debug)]
pub(super) struct ClientTxn {
    pub(super) invite: bool,
    pub(super) state: ClientState,
    pub(super) request: Request,
    pub(super) bytes: Vec<u8>,
    pub(super) target: Target,
    pub(super) key: (String, String),
    pub(super) interval: Duration,
    pub(super) timers: Timers,
    /// The ACK for a non-2xx final response (re-sent on retransmissions).
    pub(super) ack: Option<Vec<u8>>,
    /// ACKs given to `send_ack`, by the To tag of the 2xx they acknowledge.
    pub(super) acks_2xx: Vec<(String, Vec<u8>)>,
    /// `cancel` was called before any provisional response.
    pub(super) cancel_pending: bool,
    /// A CANCEL was sent for this INVITE.
    pub(super) cancelled: bool,
    /// Internal transactions (our CANCELs) whose outcome the user does not see.
    pub(super) silent: bool,
}

/// The CANCEL for a pending INVITE (RFC 3261 §9.1): same Request-URI, Call-ID, From, To and
/// CSeq number, the INVITE's top Via only, and its Route headers.
pub fn build_cancel(invite: &Request) -> Request {
    let mut cancel = Request::new(Method::Cancel, invite.uri.clone());
    if let Ok(via) = invite.headers.top_via() {
        cancel.headers.push(HeaderName::VIA, via.to_string());
    }
    for name in [
        HeaderName::FROM,
        HeaderName::TO,
        HeaderName::CALL_ID,
        HeaderName::ROUTE,
    ] {
        cancel.headers.copy_from(&invite.headers, &name);
    }
    if let Ok(cseq) = invite.headers.cseq() {
        cancel
            .headers
            .push(HeaderName::CSEQ, format!("{} CANCEL", cseq.seq));
    }
    cancel.headers.push(HeaderName::MAX_FORWARDS, "70");
    cancel
}

/// The ACK for a non-2xx final response (RFC 3261 §17.1.1.3).
fn build_error_ack(invite: &Request, response: &Response) -> Request {
    let mut ack = Request::new(Method::Ack, invite.uri.clone());
    if let Ok(via) = invite.headers.top_via() {
        ack.headers.push(HeaderName::VIA, via.to_string());
    }
    ack.headers.copy_from(&invite.headers, &HeaderName::FROM);
    ack.headers.copy_from(&response.headers, &HeaderName::TO);
    ack.headers.copy_from(&invite.headers, &HeaderName::CALL_ID);
    if let Ok(cseq) = invite.headers.cseq() {
        ack.headers
            .push(HeaderName::CSEQ, format!("{} ACK", cseq.seq));
    }
    ack.headers.copy_from(&invite.headers, &HeaderName::ROUTE);
    ack.headers.push(HeaderName::MAX_FORWARDS, "70");
    ack
}

impl Endpoint {
    /// Sends `request` to `target` in a new client transaction. A Via with a fresh branch is
    /// added when the request has none (give CANCEL the INVITE's Via instead: see
    /// [`Self::cancel`]); Max-Forwards 70 and User-Agent are added when missing.
    pub fn send_request(
        &mut self,
        request: Request,
        target: Target,
        now: Instant,
    ) -> Result<ClientTransactionId, SendError> {
        if request.method == Method::Ack {
            return Err(SendError::AckNeedsSendAck);
        }
        let id = self.start_client(request, target, now, false)?;
        Ok(ClientTransactionId(id))
    }

    fn prepare(&self, request: &mut Request, transport: Transport) -> Result<Via, SendError> {
        if !request.headers.contains(&HeaderName::VIA) {
            request
                .headers
                .push_front(HeaderName::VIA, self.new_via(transport).to_string());
        }
        let via = request
            .headers
            .top_via()
            .map_err(SendError::InvalidRequest)?;
        if !via.has_rfc3261_branch() {
            return Err(SendError::BadBranch);
        }
        if request.headers.max_forwards().ok().flatten().is_none() {
            request
                .headers
                .set(HeaderName::MAX_FORWARDS, MaxForwards(70).0.to_string());
        }
        if let Some(ua) = &self.config.user_agent
            && !request.headers.contains(&HeaderName::USER_AGENT)
        {
            request.headers.push(HeaderName::USER_AGENT, ua);
        }
        Ok(via)
    }

    fn start_client(
        &mut self,
        mut request: Request,
        target: Target,
        now: Instant,
        silent: bool,
    ) -> Result<u64, SendError> {
        let via = self.prepare(&mut request, target.transport)?;
        request.headers.from().map_err(SendError::InvalidRequest)?;
        request.headers.to().map_err(SendError::InvalidRequest)?;
        request
            .headers
            .call_id()
            .map_err(SendError::InvalidRequest)?;
        request.headers.cseq().map_err(SendError::InvalidRequest)?;
        let key = (
            via.branch().unwrap_or_default().to_owned(),
            request.method.as_str().to_owned(),
        );
        if self.client_index.contains_key(&key) {
            return Err(SendError::DuplicateBranch);
        }
        let id = self.alloc_id();
        let invite = request.method == Method::Invite;
        let bytes = request.to_bytes();
        self.client_index.insert(key.clone(), id);
        self.clients.insert(
            id,
            ClientTxn {
                invite,
                state: ClientState::Calling,
                request,
                bytes: bytes.clone(),
                target,
                key,
                interval: self.config.timers.t1,
                timers: Timers::default(),
                ack: None,
                acks_2xx: Vec::new(),
                cancel_pending: false,
                cancelled: false,
                silent,
            },
        );
        self.transmit(target.transport, target.addr, bytes);
        let r = TxnRef::Client(id);
        let t = self.config.timers;
        if !target.transport.is_reliable() {
            let kind = if invite { TimerKind::A } else { TimerKind::E };
            self.set_timer(r, kind, now + t.t1);
        }
        let kind = if invite { TimerKind::B } else { TimerKind::F };
        self.set_timer(r, kind, now + t.t1x64());
        Ok(id)
    }

    /// Sends the ACK for a 2xx to INVITE `invite` (build it with
    /// [`Dialog::ack`](crate::dialog::Dialog::ack)). A Via with a fresh branch is added when
    /// missing. The endpoint re-sends it when the same 2xx is retransmitted.
    pub fn send_ack(
        &mut self,
        invite: ClientTransactionId,
        mut ack: Request,
        target: Target,
        _now: Instant,
    ) -> Result<(), SendError> {
        if ack.method != Method::Ack {
            return Err(SendError::NotAnAck);
        }
        self.prepare(&mut ack, target.transport)?;
        let bytes = ack.to_bytes();
        let tag = ack
            .headers
            .to()
            .ok()
            .and_then(|t| t.tag().map(str::to_owned))
            .unwrap_or_default();
        if let Some(txn) = self.clients.get_mut(&invite.0) {
            txn.acks_2xx.retain(|(t, _)| *t != tag);
            txn.acks_2xx.push((tag, bytes.clone()));
        }
        self.transmit(target.transport, target.addr, bytes);
        Ok(())
    }

    /// Cancels a pending INVITE (RFC 3261 §9.1). The CANCEL goes out once a provisional
    /// response has arrived; its own responses are absorbed. The INVITE should then end with
    /// a 487 ([`Event::Response`]); if no final response comes within 64·T1, the user gets
    /// [`Event::TransactionTimeout`] for the INVITE.
    pub fn cancel(&mut self, invite: ClientTransactionId, now: Instant) -> Result<(), CancelError> {
        let txn = self
            .clients
            .get_mut(&invite.0)
            .filter(|t| t.invite)
            .ok_or(CancelError::UnknownTransaction)?;
        match txn.state {
            ClientState::Calling => {
                txn.cancel_pending = true;
                Ok(())
            }
            ClientState::Proceeding => {
                self.send_cancel(invite.0, now);
                Ok(())
            }
            ClientState::Completed | ClientState::Accepted => Err(CancelError::AlreadyFinal),
        }
    }

    fn send_cancel(&mut self, invite: u64, now: Instant) {
        let Some(txn) = self.clients.get_mut(&invite) else {
            return;
        };
        if txn.cancelled {
            return;
        }
        txn.cancelled = true;
        txn.cancel_pending = false;
        let cancel = build_cancel(&txn.request);
        let target = txn.target;
        let _ = self.start_client(cancel, target, now, true);
        let at = now + self.config.timers.t1x64();
        self.set_timer(TxnRef::Client(invite), TimerKind::CancelGuard, at);
    }

    /// The request of a live client transaction (with the Via the endpoint added).
    pub fn client_request(&self, id: ClientTransactionId) -> Option<&Request> {
        self.clients.get(&id.0).map(|t| &t.request)
    }

    pub(super) fn on_response(
        &mut self,
        response: Response,
        _transport: Transport,
        source: SocketAddr,
        now: Instant,
    ) {
        let Ok(vias) = response.headers.vias() else {
            return;
        };
        let [via] = vias.as_slice() else {
            self.stats.unmatched_responses += 1;
            return;
        };
        let Ok(cseq) = response.headers.cseq() else {
            return;
        };
        let key = (
            via.branch().unwrap_or_default().to_owned(),
            cseq.method.as_str().to_owned(),
        );
        let Some(&id) = self.client_index.get(&key) else {
            if cseq.method == Method::Invite && response.status.is_success() {
                self.event(Event::StrayResponse { response, source });
            } else {
                self.stats.unmatched_responses += 1;
            }
            return;
        };
        let Some(txn) = self.clients.get_mut(&id) else {
            return;
        };
        let status = response.status;
        let r = TxnRef::Client(id);
        let silent = txn.silent;
        let pass_up = |ep: &mut Self, response: Response| {
            if !silent {
                ep.event(Event::Response {
                    id: ClientTransactionId(id),
                    response,
                });
            }
        };
        match (txn.invite, txn.state) {
            (true, ClientState::Calling | ClientState::Proceeding) => {
                if status.is_provisional() {
                    txn.state = ClientState::Proceeding;
                    let cancel_now = txn.cancel_pending;
                    self.cancel_timer(r, TimerKind::A);
                    self.cancel_timer(r, TimerKind::B);
                    pass_up(self, response);
                    if cancel_now {
                        self.send_cancel(id, now);
                    }
                } else if status.is_success() {
                    txn.state = ClientState::Accepted;
                    self.cancel_timer(r, TimerKind::A);
                    self.cancel_timer(r, TimerKind::B);
                    self.cancel_timer(r, TimerKind::CancelGuard);
                    let at = now + self.config.timers.t1x64();
                    self.set_timer(r, TimerKind::M, at);
                    pass_up(self, response);
                } else {
                    txn.state = ClientState::Completed;
                    let ack = build_error_ack(&txn.request, &response).to_bytes();
                    txn.ack = Some(ack.clone());
                    let target = txn.target;
                    self.transmit(target.transport, target.addr, ack);
                    for k in [TimerKind::A, TimerKind::B, TimerKind::CancelGuard] {
                        self.cancel_timer(r, k);
                    }
                    pass_up(self, response);
                    if target.transport.is_reliable() {
                        self.terminate_client(id);
                    } else {
                        let at = now + self.config.timers.timer_d;
                        self.set_timer(r, TimerKind::D, at);
                    }
                }
            }
            (true, ClientState::Completed) => {
                self.stats.retransmissions_absorbed += 1;
                if status.is_final()
                    && !status.is_success()
                    && let Some(ack) = txn.ack.clone()
                {
                    let target = txn.target;
                    self.transmit(target.transport, target.addr, ack);
                }
            }
            (true, ClientState::Accepted) => {
                if !status.is_success() {
                    self.stats.retransmissions_absorbed += 1;
                    return;
                }
                let tag = response
                    .headers
                    .to()
                    .ok()
                    .and_then(|t| t.tag().map(str::to_owned))
                    .unwrap_or_default();
                match txn.acks_2xx.iter().find(|(t, _)| *t == tag) {
                    Some((_, ack)) => {
                        let (ack, target) = (ack.clone(), txn.target);
                        self.stats.retransmissions_absorbed += 1;
                        self.transmit(target.transport, target.addr, ack);
                    }
                    // Not yet ACKed by the user, or another fork: let the user decide.
                    None => pass_up(self, response),
                }
            }
            (false, ClientState::Calling | ClientState::Proceeding) => {
                if status.is_provisional() {
                    txn.state = ClientState::Proceeding;
                    pass_up(self, response);
                } else {
                    txn.state = ClientState::Completed;
                    let reliable = txn.target.transport.is_reliable();
                    self.cancel_timer(r, TimerKind::E);
                    self.cancel_timer(r, TimerKind::F);
                    pass_up(self, response);
                    if reliable {
                        self.terminate_client(id);
                    } else {
                        let at = now + self.config.timers.t4;
                        self.set_timer(r, TimerKind::K, at);
                    }
                }
            }
            (false, _) => self.stats.retransmissions_absorbed += 1,
        }
    }

    pub(super) fn client_timer(&mut self, id: u64, kind: TimerKind, now: Instant) {
        let r = TxnRef::Client(id);
        self.forget_timer(r, kind);
        let t2 = self.config.timers.t2;
        let Some(txn) = self.clients.get_mut(&id) else {
            return;
        };
        match kind {
            TimerKind::A | TimerKind::E => {
                let still_trying = match kind {
                    TimerKind::A => txn.state == ClientState::Calling,
                    _ => matches!(txn.state, ClientState::Calling | ClientState::Proceeding),
                };
                if !still_trying {
                    return;
                }
                txn.interval = match (kind, txn.state) {
                    (TimerKind::A, _) => txn.interval * 2,
                    (_, ClientState::Proceeding) => t2,
                    _ => (txn.interval * 2).min(t2),
                };
                let next = now + txn.interval;
                let (bytes, target) = (txn.bytes.clone(), txn.target);
                self.stats.retransmissions_sent += 1;
                self.transmit(target.transport, target.addr, bytes);
                self.set_timer(r, kind, next);
            }
            TimerKind::B | TimerKind::F | TimerKind::CancelGuard => {
                let silent = txn.silent;
                self.terminate_client(id);
                if !silent {
                    self.event(Event::TransactionTimeout {
                        id: TransactionId::Client(ClientTransactionId(id)),
                    });
                }
            }
            TimerKind::D | TimerKind::K | TimerKind::M => self.terminate_client(id),
            _ => {}
        }
    }

    pub(super) fn terminate_client(&mut self, id: u64) {
        if let Some(txn) = self.clients.remove(&id) {
            self.client_index.remove(&txn.key);
            self.clear_timers(TxnRef::Client(id), &txn.timers);
        }
    }
}
