//! INVITE dialogs (RFC 3261 §12–§15): the state both user agents keep between the INVITE and
//! the BYE, and the in-dialog requests built from it (ACK for 2xx, BYE, re-INVITE…).
//!
//! | | UAS (we answered) | UAC (we called) |
//! |---|---|---|
//! | created by | our 1xx (with To tag) or 2xx: [`Dialog::new_uas`] | their 1xx (with To tag) or 2xx: [`Dialog::new_uac`] |
//! | local / remote tag | our To tag / their From tag | our From tag / their To tag |
//! | route set | the INVITE's Record-Route, in order | the response's Record-Route, reversed |
//! | remote target | the INVITE's Contact | the response's Contact |
//! | CSeq | remote = the INVITE's; ours starts at 1 | ours = the INVITE's; remote unset |
//!
//! States: Early (1xx) → Confirmed (2xx; for a UAC, [`Dialog::update`] recomputes the route set
//! and target from the 2xx) → Terminated (BYE sent or received, or a final error response).
//! Requests follow §12.2.1.1: with an empty route set or a loose-routing first hop (`;lr`) the
//! Request-URI is the remote target and Route is the route set; with a strict router the
//! Request-URI is the first route and the remote target goes last in Route.
//!
//! CANCEL is not a dialog request: the endpoint builds it from the INVITE
//! ([`build_cancel`](crate::transaction::build_cancel), [`Endpoint::cancel`](crate::transaction::Endpoint::cancel)).

use crate::message::{
    Contact, HeaderError, HeaderName, Method, NameAddr, Request, Response, Scheme, StatusCode, Uri,
};
use crate::transaction::Target;

/// Call-ID and the two tags.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
}

/// Dialog state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a provisional response.
    Early,
    /// Created or confirmed by a 2xx.
    Confirmed,
    /// Ended by BYE or an error response.
    Terminated,
}

/// Which side of the INVITE we were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We sent the INVITE.
    Uac,
    /// We received it.
    Uas,
}

/// Why a dialog could not be created or a message does not fit it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialogError {
    /// A header is missing or malformed.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The From or To header has no tag.
    #[error("{0} header has no tag")]
    MissingTag(&'static str),
    /// No Contact where one is required.
    #[error("{0} has no usable Contact")]
    MissingContact(&'static str),
    /// The response cannot create a dialog (100, or not 1xx/2xx).
    #[error("a {0} response does not create a dialog")]
    NotDialogCreating(StatusCode),
    /// Call-ID or tags do not match this dialog.
    #[error("the message does not belong to this dialog")]
    Mismatch,
    /// The request's CSeq is below the last one seen (answer 500, RFC 3261 §12.2.2).
    #[error("CSeq {cseq} is lower than the last remote CSeq {last}")]
    OutOfOrder {
        /// The request's CSeq.
        cseq: u32,
        /// The last remote CSeq.
        last: u32,
    },
}

/// An INVITE dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    id: DialogId,
    role: Role,
    state: DialogState,
    local_uri: NameAddr,
    remote_uri: NameAddr,
    local_seq: u32,
    remote_seq: Option<u32>,
    invite_seq: u32,
    remote_target: Uri,
    route_set: Vec<NameAddr>,
    local_contact: NameAddr,
    secure: bool,
}

fn first_contact(headers: &crate::message::Headers) -> Result<Option<NameAddr>, HeaderError> {
    Ok(headers.contacts()?.into_iter().find_map(|c| match c {
        Contact::Address(a) => Some(a),
        Contact::Star => None,
    }))
}

impl Dialog {
    /// The dialog we (UAS) create by sending `response` (101–299, with a To tag and Contact)
    /// to `invite`.
    pub fn new_uas(invite: &Request, response: &Response) -> Result<Self, DialogError> {
        let status = response.status;
        if status.as_u16() <= 100 || status.as_u16() >= 300 {
            return Err(DialogError::NotDialogCreating(status));
        }
        let remote = invite.headers.from()?;
        let local = response.headers.to()?;
        let remote_tag = remote
            .tag()
            .ok_or(DialogError::MissingTag("From"))?
            .to_owned();
        let local_tag = local.tag().ok_or(DialogError::MissingTag("To"))?.to_owned();
        let remote_target = first_contact(&invite.headers)?
            .ok_or(DialogError::MissingContact("the INVITE"))?
            .uri;
        let local_contact =
            first_contact(&response.headers)?.ok_or(DialogError::MissingContact("our response"))?;
        let cseq = invite.headers.cseq()?.seq;
        Ok(Self {
            id: DialogId {
                call_id: invite.headers.call_id()?.to_owned(),
                local_tag,
                remote_tag,
            },
            role: Role::Uas,
            state: if status.is_success() {
                DialogState::Confirmed
            } else {
                DialogState::Early
            },
            local_uri: local,
            remote_uri: remote,
            local_seq: 0,
            remote_seq: Some(cseq),
            invite_seq: cseq,
            remote_target,
            route_set: invite.headers.typed_all(&HeaderName::RECORD_ROUTE)?,
            local_contact,
            secure: is_sips(&invite.uri),
        })
    }

    /// The dialog we (UAC) have after `response` (101–299 with a To tag) to our `invite` (as
    /// sent, from [`Endpoint::client_request`](crate::transaction::Endpoint::client_request)).
    pub fn new_uac(invite: &Request, response: &Response) -> Result<Self, DialogError> {
        let status = response.status;
        if status.as_u16() <= 100 || status.as_u16() >= 300 {
            return Err(DialogError::NotDialogCreating(status));
        }
        let local = invite.headers.from()?;
        let remote = response.headers.to()?;
        let local_tag = local
            .tag()
            .ok_or(DialogError::MissingTag("From"))?
            .to_owned();
        let remote_tag = remote
            .tag()
            .ok_or(DialogError::MissingTag("To"))?
            .to_owned();
        let remote_target = match first_contact(&response.headers)? {
            Some(c) => c.uri,
            None if status.is_success() => return Err(DialogError::MissingContact("the 2xx")),
            None => invite.uri.clone(),
        };
        let local_contact =
            first_contact(&invite.headers)?.ok_or(DialogError::MissingContact("our INVITE"))?;
        let mut route_set: Vec<NameAddr> = response.headers.typed_all(&HeaderName::RECORD_ROUTE)?;
        route_set.reverse();
        let cseq = invite.headers.cseq()?.seq;
        Ok(Self {
            id: DialogId {
                call_id: invite.headers.call_id()?.to_owned(),
                local_tag,
                remote_tag,
            },
            role: Role::Uac,
            state: if status.is_success() {
                DialogState::Confirmed
            } else {
                DialogState::Early
            },
            local_uri: local,
            remote_uri: remote,
            local_seq: cseq,
            remote_seq: None,
            invite_seq: cseq,
            remote_target,
            route_set,
            local_contact,
            secure: is_sips(&invite.uri),
        })
    }

    /// Applies a later response in this dialog (UAC): a 2xx confirms an early dialog and
    /// recomputes route set and target (§13.2.2.4); an error response to the INVITE ends an
    /// early dialog; a 2xx to a re-INVITE refreshes the target.
    pub fn update(&mut self, response: &Response) -> Result<(), DialogError> {
        if !self.matches_response(response) {
            return Err(DialogError::Mismatch);
        }
        let is_invite = response.headers.cseq()?.method == Method::Invite;
        if response.status.is_success() && is_invite {
            if let Some(c) = first_contact(&response.headers)? {
                self.remote_target = c.uri;
            }
            if self.state == DialogState::Early && self.role == Role::Uac {
                let mut rs: Vec<NameAddr> =
                    response.headers.typed_all(&HeaderName::RECORD_ROUTE)?;
                rs.reverse();
                self.route_set = rs;
            }
            if self.state == DialogState::Early {
                self.state = DialogState::Confirmed;
            }
        } else if response.status.is_final()
            && !response.status.is_success()
            && is_invite
            && self.state == DialogState::Early
        {
            self.state = DialogState::Terminated;
        }
        Ok(())
    }

    /// Marks an early UAS dialog confirmed (we sent a 2xx).
    pub fn confirm(&mut self) {
        if self.state == DialogState::Early {
            self.state = DialogState::Confirmed;
        }
    }

    /// Marks the dialog ended (after sending a BYE, or an error response to an early
    /// dialog's INVITE).
    pub fn terminate(&mut self) {
        self.state = DialogState::Terminated;
    }

    /// Call-ID and tags.
    pub fn id(&self) -> &DialogId {
        &self.id
    }

    /// UAC or UAS.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The state.
    pub fn state(&self) -> DialogState {
        self.state
    }

    /// Where in-dialog requests are addressed.
    pub fn remote_target(&self) -> &Uri {
        &self.remote_target
    }

    /// The route set, first hop first.
    pub fn route_set(&self) -> &[NameAddr] {
        &self.route_set
    }

    /// Our CSeq counter.
    pub fn local_seq(&self) -> u32 {
        self.local_seq
    }

    /// The peer's last CSeq.
    pub fn remote_seq(&self) -> Option<u32> {
        self.remote_seq
    }

    /// Whether the dialog was set up with a `sips:` Request-URI.
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Whether `request` belongs to this dialog (Call-ID, To tag = ours, From tag = theirs).
    pub fn matches_request(&self, request: &Request) -> bool {
        let h = &request.headers;
        h.call_id().is_ok_and(|c| c == self.id.call_id)
            && h.to()
                .ok()
                .and_then(|t| t.tag().map(str::to_owned))
                .as_deref()
                == Some(self.id.local_tag.as_str())
            && h.from()
                .ok()
                .and_then(|f| f.tag().map(str::to_owned))
                .as_deref()
                == Some(self.id.remote_tag.as_str())
    }

    /// Whether `response` belongs to this dialog (Call-ID, From tag = ours, To tag = theirs).
    pub fn matches_response(&self, response: &Response) -> bool {
        let h = &response.headers;
        h.call_id().is_ok_and(|c| c == self.id.call_id)
            && h.from()
                .ok()
                .and_then(|t| t.tag().map(str::to_owned))
                .as_deref()
                == Some(self.id.local_tag.as_str())
            && h.to()
                .ok()
                .and_then(|f| f.tag().map(str::to_owned))
                .as_deref()
                == Some(self.id.remote_tag.as_str())
    }

    /// Processes an in-dialog request from the peer (§12.2.2): checks it belongs here and its
    /// CSeq is not lower than the last, refreshes the remote target on INVITE/UPDATE, and ends
    /// the dialog on BYE. ACK and CANCEL carry the INVITE's CSeq and are not counted.
    pub fn receive_request(&mut self, request: &Request) -> Result<(), DialogError> {
        if !self.matches_request(request) {
            return Err(DialogError::Mismatch);
        }
        let cseq = request.headers.cseq()?.seq;
        if !matches!(request.method, Method::Ack | Method::Cancel) {
            if let Some(last) = self.remote_seq
                && cseq < last
            {
                return Err(DialogError::OutOfOrder { cseq, last });
            }
            self.remote_seq = Some(cseq);
        }
        match request.method {
            Method::Invite | Method::Update => {
                if let Some(c) = first_contact(&request.headers)? {
                    self.remote_target = c.uri;
                }
                if request.method == Method::Invite {
                    self.invite_seq = cseq;
                }
            }
            Method::Bye => self.state = DialogState::Terminated,
            _ => {}
        }
        Ok(())
    }

    /// A new in-dialog request (§12.2.1.1): CSeq incremented (ACK reuses the INVITE's),
    /// Request-URI and Route from the route set and remote target, From/To with tags,
    /// Call-ID, Max-Forwards, and Contact for INVITE and UPDATE. No Via: the endpoint adds it.
    pub fn request(&mut self, method: &Method) -> Request {
        let seq = if *method == Method::Ack {
            self.invite_seq
        } else {
            self.local_seq = self.local_seq.wrapping_add(1) & 0x7fff_ffff;
            if *method == Method::Invite {
                self.invite_seq = self.local_seq;
            }
            self.local_seq
        };
        let (uri, routes) = self.request_uri_and_routes();
        let mut r = Request::new(method.clone(), uri);
        for route in routes {
            r.headers.push(HeaderName::ROUTE, route.to_string());
        }
        r.headers.push(HeaderName::FROM, self.local_uri.to_string());
        r.headers.push(HeaderName::TO, self.remote_uri.to_string());
        r.headers.push(HeaderName::CALL_ID, &self.id.call_id);
        r.headers.push(HeaderName::CSEQ, format!("{seq} {method}"));
        r.headers.push(HeaderName::MAX_FORWARDS, "70");
        if matches!(method, Method::Invite | Method::Update) {
            r.headers
                .push(HeaderName::CONTACT, self.local_contact.to_string());
        }
        r
    }

    /// The ACK for a 2xx to the INVITE (end to end, CSeq of the INVITE). Give it to
    /// [`Endpoint::send_ack`](crate::transaction::Endpoint::send_ack).
    pub fn ack(&mut self) -> Request {
        self.request(&Method::Ack)
    }

    /// A BYE; the dialog is marked terminated.
    pub fn bye(&mut self) -> Request {
        self.state = DialogState::Terminated;
        self.request(&Method::Bye)
    }

    /// Where in-dialog requests go: the first route, else the remote target, when it is an
    /// IP literal (else the shell resolves [`Self::next_hop_uri`]).
    pub fn next_hop(&self) -> Option<Target> {
        self.next_hop_uri().as_sip().and_then(Target::from_uri)
    }

    /// The URI of the next hop.
    pub fn next_hop_uri(&self) -> &Uri {
        self.route_set
            .first()
            .map_or(&self.remote_target, |r| &r.uri)
    }

    fn request_uri_and_routes(&self) -> (Uri, Vec<NameAddr>) {
        let Some(first) = self.route_set.first() else {
            return (self.remote_target.clone(), Vec::new());
        };
        let loose = first.sip_uri().is_some_and(|u| u.params.contains("lr"));
        if loose {
            return (self.remote_target.clone(), self.route_set.clone());
        }
        // Strict router (RFC 2543): it becomes the Request-URI; the target goes last.
        let mut routes: Vec<NameAddr> = self.route_set.iter().skip(1).cloned().collect();
        routes.push(NameAddr::new(self.remote_target.clone()));
        (first.uri.clone(), routes)
    }
}

fn is_sips(uri: &Uri) -> bool {
    uri.as_sip().is_some_and(|u| u.scheme == Scheme::Sips)
}

/// The first INVITE of a call we place: From with a fresh tag, To, a fresh Call-ID (unless
/// given), CSeq 1, Contact and Max-Forwards. Add the SDP with [`Request::set_body`].
///
/// Headers in the URI (`sip:jack@example.com?X-Account=42`, as `<Sip>` nouns carry them) are
/// taken out of the Request-URI (RFC 3261 §19.1.5) and, for `X-` names only, added to the
/// request; others (Route, From, Call-ID…) are never honoured from a URI.
pub fn new_invite(
    mut request_uri: Uri,
    from: NameAddr,
    to: &NameAddr,
    contact: &NameAddr,
    call_id: Option<String>,
) -> Request {
    let mut from = from;
    if from.tag().is_none() {
        from.set_tag(&crate::ids::new_tag());
    }
    let uri_headers = match &mut request_uri {
        Uri::Sip(u) => std::mem::take(&mut u.headers),
        Uri::Other(_) => Vec::new(),
    };
    let mut r = Request::new(Method::Invite, request_uri.clone());
    r.headers.push(HeaderName::FROM, from.to_string());
    r.headers.push(HeaderName::TO, to.to_string());
    r.headers.push(
        HeaderName::CALL_ID,
        call_id.unwrap_or_else(|| crate::ids::new_call_id(None)),
    );
    r.headers.push(HeaderName::CSEQ, "1 INVITE");
    r.headers.push(HeaderName::CONTACT, contact.to_string());
    r.headers.push(HeaderName::MAX_FORWARDS, "70");
    if let Uri::Sip(u) = &request_uri {
        let with_headers = crate::message::SipUri {
            headers: uri_headers,
            ..u.clone()
        };
        for (name, _) in &with_headers.headers {
            let Some(value) = with_headers.header(name) else {
                continue;
            };
            let Ok(name) = HeaderName::new(name) else {
                continue;
            };
            if name
                .as_str()
                .get(..2)
                .is_some_and(|p| p.eq_ignore_ascii_case("x-"))
            {
                r.headers.push(name, value);
            }
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{ParseLimits, SipMessage};

    fn req(text: &str) -> Request {
        match SipMessage::parse(
            text.replace('\n', "\r\n").as_bytes(),
            &ParseLimits::default(),
        )
        .unwrap()
        {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => unreachable!(),
        }
    }

    const INVITE: &str = "INVITE sip:bob@192.0.2.4 SIP/2.0
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKnashds8
Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>
From: Alice <sip:alice@example.com>;tag=alice1
To: Bob <sip:bob@example.com>
Call-ID: call-1
CSeq: 314 INVITE
Contact: <sip:alice@192.0.2.1:5060>
Content-Length: 0

";

    #[test]
    fn uas_dialog_from_200_and_bye() {
        let invite = req(INVITE);
        let ok = Response::for_request(&invite, StatusCode::OK)
            .with_to_tag("bob1")
            .with_header(HeaderName::CONTACT, "<sip:bob@192.0.2.4:5070>");
        let mut d = Dialog::new_uas(&invite, &ok).unwrap();
        assert_eq!(d.state(), DialogState::Confirmed);
        assert_eq!(d.id().local_tag, "bob1");
        assert_eq!(d.id().remote_tag, "alice1");
        assert_eq!(d.remote_seq(), Some(314));
        assert_eq!(d.route_set().len(), 2);
        assert_eq!(d.next_hop_uri().to_string(), "sip:p2.example.com;lr");

        let bye = d.bye();
        assert_eq!(bye.method, Method::Bye);
        assert_eq!(bye.uri.to_string(), "sip:alice@192.0.2.1:5060");
        assert_eq!(
            bye.headers.values(&HeaderName::ROUTE),
            ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
        );
        assert_eq!(bye.headers.cseq().unwrap().seq, 1);
        assert_eq!(bye.headers.from().unwrap().tag(), Some("bob1"));
        assert_eq!(bye.headers.to().unwrap().tag(), Some("alice1"));
        assert_eq!(d.state(), DialogState::Terminated);
    }

    #[test]
    fn uas_receives_in_dialog_requests() {
        let invite = req(INVITE);
        let ringing = Response::for_request(&invite, StatusCode::RINGING)
            .with_to_tag("bob1")
            .with_header(HeaderName::CONTACT, "<sip:bob@192.0.2.4>");
        let mut d = Dialog::new_uas(&invite, &ringing).unwrap();
        assert_eq!(d.state(), DialogState::Early);
        d.confirm();
        let bye = req(&INVITE
            .replace("INVITE sip", "BYE sip")
            .replace(
                "To: Bob <sip:bob@example.com>",
                "To: Bob <sip:bob@example.com>;tag=bob1",
            )
            .replace("314 INVITE", "315 BYE"));
        d.receive_request(&bye).unwrap();
        assert_eq!(d.state(), DialogState::Terminated);
        let old = req(&INVITE
            .replace("INVITE sip", "INFO sip")
            .replace(
                "To: Bob <sip:bob@example.com>",
                "To: Bob <sip:bob@example.com>;tag=bob1",
            )
            .replace("314 INVITE", "10 INFO"));
        assert_eq!(
            d.receive_request(&old),
            Err(DialogError::OutOfOrder {
                cseq: 10,
                last: 315
            })
        );
        let stranger = req(&INVITE.replace("314 INVITE", "316 INVITE"));
        assert_eq!(d.receive_request(&stranger), Err(DialogError::Mismatch));
        assert!(
            Dialog::new_uas(&invite, &Response::for_request(&invite, StatusCode::TRYING)).is_err()
        );
    }

    #[test]
    fn uac_dialog_reverses_routes_and_builds_ack() {
        let invite = new_invite(
            Uri::parse("sip:bob@192.0.2.4").unwrap(),
            NameAddr::parse("<sip:alice@example.com>").unwrap(),
            &NameAddr::parse("<sip:bob@example.com>").unwrap(),
            &NameAddr::parse("<sip:alice@192.0.2.1:5062>").unwrap(),
            Some("c-2".into()),
        );
        let mut ok = Response::new(StatusCode::OK);
        for n in [
            HeaderName::FROM,
            HeaderName::TO,
            HeaderName::CALL_ID,
            HeaderName::CSEQ,
        ] {
            ok.headers.copy_from(&invite.headers, &n);
        }
        ok = ok
            .with_to_tag("b2")
            .with_header(
                HeaderName::CONTACT,
                "<sip:bob@192.0.2.4:5070;transport=tcp>",
            )
            .with_header(
                HeaderName::RECORD_ROUTE,
                "<sip:p1.example.com;lr>, <sip:p2.example.com;lr>",
            );
        let mut d = Dialog::new_uac(&invite, &ok).unwrap();
        assert_eq!(d.route_set()[0].to_string(), "<sip:p2.example.com;lr>");
        let ack = d.ack();
        assert_eq!(ack.headers.cseq().unwrap().to_string(), "1 ACK");
        assert_eq!(ack.uri.to_string(), "sip:bob@192.0.2.4:5070;transport=tcp");
        let bye = d.bye();
        assert_eq!(bye.headers.cseq().unwrap().to_string(), "2 BYE");
        assert!(d.matches_response(&ok));
    }

    #[test]
    fn uri_headers_become_x_headers_only() {
        let invite = new_invite(
            Uri::parse(
                "sip:jack@192.0.2.9;secure=true?X-Account=4%202&Call-ID=evil&Route=%3Csip:x%3E",
            )
            .unwrap(),
            NameAddr::parse("<sip:a@example.com>").unwrap(),
            &NameAddr::parse("<sip:jack@example.com>").unwrap(),
            &NameAddr::parse("<sip:a@192.0.2.1>").unwrap(),
            Some("cid".into()),
        );
        assert_eq!(invite.uri.to_string(), "sip:jack@192.0.2.9;secure=true");
        assert_eq!(
            invite.headers.x_headers().collect::<Vec<_>>(),
            [("X-Account", "4 2")]
        );
        assert_eq!(invite.headers.call_id().unwrap(), "cid");
        assert!(!invite.headers.contains(&HeaderName::ROUTE));
    }

    #[test]
    fn strict_router_becomes_the_request_uri() {
        let invite = req(&INVITE.replace(
            "Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>",
            "Record-Route: <sip:strict.example.com>",
        ));
        let ok = Response::for_request(&invite, StatusCode::OK)
            .with_to_tag("t")
            .with_header(HeaderName::CONTACT, "<sip:bob@192.0.2.4>");
        let mut d = Dialog::new_uas(&invite, &ok).unwrap();
        let bye = d.bye();
        assert_eq!(bye.uri.to_string(), "sip:strict.example.com");
        assert_eq!(
            bye.headers.values(&HeaderName::ROUTE),
            ["<sip:alice@192.0.2.1:5060>"]
        );
        assert!(d.next_hop().is_none(), "a host name needs DNS");
    }

    #[test]
    fn uac_early_dialog_is_confirmed_by_2xx() {
        let invite = new_invite(
            Uri::parse("sip:bob@192.0.2.4").unwrap(),
            NameAddr::parse("<sip:alice@example.com>").unwrap(),
            &NameAddr::parse("<sip:bob@example.com>").unwrap(),
            &NameAddr::parse("<sip:alice@192.0.2.1>").unwrap(),
            None,
        );
        let mut ringing = Response::new(StatusCode::RINGING);
        for n in [
            HeaderName::FROM,
            HeaderName::TO,
            HeaderName::CALL_ID,
            HeaderName::CSEQ,
        ] {
            ringing.headers.copy_from(&invite.headers, &n);
        }
        let ringing = ringing.with_to_tag("x");
        let mut d = Dialog::new_uac(&invite, &ringing).unwrap();
        assert_eq!(d.state(), DialogState::Early);
        assert_eq!(d.remote_target(), &invite.uri);
        let ok = ringing.with_header(HeaderName::CONTACT, "<sip:bob@192.0.2.9>");
        let mut ok = ok;
        ok.status = StatusCode::OK;
        d.update(&ok).unwrap();
        assert_eq!(d.state(), DialogState::Confirmed);
        assert_eq!(d.remote_target().to_string(), "sip:bob@192.0.2.9");
        assert_eq!(d.next_hop().unwrap().addr.to_string(), "192.0.2.9:5060");
    }
}
