//! A registrar's location service (RFC 3261 §10.3), sans-IO: REGISTER requests bind an
//! address-of-record (`alice@acme.sip.example.com`) to contacts, each with the flow it came on
//! (transport and source address) and an expiry computed from the `now` passed in.
//!
//! Authentication and the domain's rules are the caller's business; this module only checks
//! and applies the Contact/Expires/Call-ID/CSeq rules and answers "where is alice now".
//! Bindings live in memory: a REGISTER refreshes them well within their hour, so a restarted
//! node is whole again after one refresh interval.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::message::{Contact, HeaderName, Host, NameAddr, Request, Transport, Uri};

/// How a binding was made: the connection (TCP/TLS) or the address (UDP) to reach the contact
/// through, which also gets past a NAT that rewrote the contact's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// The transport the REGISTER arrived on.
    pub transport: Transport,
    /// Where it came from.
    pub source: SocketAddr,
}

/// One contact of an address-of-record.
#[derive(Debug, Clone)]
pub struct Binding {
    /// The Contact URI (parameters kept, header parameters such as `expires` dropped).
    pub contact: Uri,
    /// The flow the REGISTER came on.
    pub flow: Flow,
    /// When the binding lapses.
    pub expires_at: Instant,
    /// The registering UA's Call-ID and CSeq, to order refreshes (§10.3 step 7).
    call_id: String,
    cseq: u32,
    /// Whose binding this is (an account SID): a lookup for another owner finds nothing.
    pub owner: String,
}

impl Binding {
    /// Whole seconds left at `now`.
    pub fn remaining(&self, now: Instant) -> u64 {
        self.expires_at.saturating_duration_since(now).as_secs()
    }
}

/// Expiry rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryRules {
    /// Shortest non-zero expiry accepted; shorter gets 423 with `Min-Expires` (§10.3 step 7).
    pub min: u32,
    /// Longest expiry granted: a longer one is shortened, and the 200 says so.
    pub max: u32,
    /// Used when the request names none (RFC 3261 suggests 3600).
    pub default: u32,
    /// Most contacts one address-of-record keeps; a new one beyond it replaces the one that
    /// lapses soonest.
    pub max_contacts: usize,
}

impl Default for ExpiryRules {
    /// Twilio's: at most an hour (also the default), at least a minute, ten contacts.
    fn default() -> Self {
        Self {
            min: 60,
            max: 3600,
            default: 3600,
            max_contacts: 10,
        }
    }
}

/// Why a REGISTER cannot be applied; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// A non-zero expiry below [`ExpiryRules::min`]: answer 423 with `Min-Expires: min`.
    #[error("the registration interval is too brief: at least {min} seconds")]
    IntervalTooBrief {
        /// The `Min-Expires` to send.
        min: u32,
    },
    /// The request cannot be a registration (answer 400 with the reason in a `Warning`).
    #[error("{0}")]
    Invalid(&'static str),
    /// The same Call-ID with a CSeq not above the binding's: an old request (answer 400).
    #[error("the REGISTER is older than the binding it would change (CSeq not above it)")]
    OutOfOrder,
}

/// The address-of-record of a REGISTER: its To URI's `user@host`, host lower-cased.
pub fn address_of_record(request: &Request) -> Option<String> {
    let to = request.headers.to().ok()?;
    let uri = to.uri.as_sip()?;
    let user = uri.user.as_deref().filter(|u| !u.is_empty())?;
    let host = match &uri.host {
        Host::Domain(d) => d.trim_end_matches('.').to_ascii_lowercase(),
        other => other.to_string(),
    };
    Some(format!("{user}@{host}"))
}

/// Bindings by address-of-record.
#[derive(Debug, Default)]
pub struct Registrar {
    rules: ExpiryRules,
    bindings: HashMap<String, Vec<Binding>>,
}

/// A contact the request asks for, before it is applied.
struct Wanted {
    contact: Uri,
    expires: u32,
}

impl Registrar {
    /// An empty registrar with these rules.
    pub fn new(rules: ExpiryRules) -> Self {
        Self {
            rules,
            bindings: HashMap::new(),
        }
    }

    /// The rules.
    pub fn rules(&self) -> ExpiryRules {
        self.rules
    }

    /// Applies a REGISTER for `aor` (already authenticated and allowed by the caller) and
    /// returns the address-of-record's bindings afterwards, for the 200's Contact list.
    /// Without Contact it only asks for that list. `Contact: *` with `Expires: 0` removes
    /// every binding; a contact with expiry 0 removes that one.
    pub fn register(
        &mut self,
        aor: &str,
        owner: &str,
        request: &Request,
        flow: Flow,
        now: Instant,
    ) -> Result<Vec<Binding>, RegisterError> {
        self.purge(aor, now);
        let contacts = request
            .headers
            .contacts()
            .map_err(|_| RegisterError::Invalid("a Contact header does not parse"))?;
        let header_expires = match request.headers.get(&HeaderName::EXPIRES) {
            None => None,
            Some(v) => Some(parse_delta(v).ok_or(RegisterError::Invalid(
                "the Expires header is not a number of seconds",
            ))?),
        };
        let call_id = request
            .headers
            .call_id()
            .map_err(|_| RegisterError::Invalid("the Call-ID is missing or malformed"))?
            .to_owned();
        let cseq = request
            .headers
            .cseq()
            .map_err(|_| RegisterError::Invalid("the CSeq is missing or malformed"))?
            .seq;
        if contacts.iter().any(|c| matches!(c, Contact::Star)) {
            // §10.3 step 6: `*` only alone and only with Expires: 0.
            if contacts.len() != 1 || header_expires != Some(0) {
                return Err(RegisterError::Invalid(
                    "Contact: * needs Expires: 0 and no other contact",
                ));
            }
            if self
                .bindings
                .get(aor)
                .into_iter()
                .flatten()
                .any(|b| b.call_id == call_id && b.cseq >= cseq)
            {
                return Err(RegisterError::OutOfOrder);
            }
            self.bindings.remove(aor);
            return Ok(Vec::new());
        }
        let mut wanted = Vec::with_capacity(contacts.len());
        for c in &contacts {
            let Some(addr) = c.address() else { continue };
            let expires = match addr.params.value("expires") {
                Some(v) => parse_delta(v).ok_or(RegisterError::Invalid(
                    "a Contact expires parameter is not a number of seconds",
                ))?,
                None => header_expires.unwrap_or(self.rules.default),
            };
            if expires != 0 && expires < self.rules.min {
                return Err(RegisterError::IntervalTooBrief {
                    min: self.rules.min,
                });
            }
            if !matches!(addr.uri, Uri::Sip(_)) {
                return Err(RegisterError::Invalid(
                    "a Contact is not a sip: or sips: URI",
                ));
            }
            wanted.push(Wanted {
                contact: addr.uri.clone(),
                expires: expires.min(self.rules.max),
            });
        }
        let mut list = self.bindings.get(aor).cloned().unwrap_or_default();
        for w in wanted {
            let key = w.contact.to_string();
            if let Some(i) = list.iter().position(|b| b.contact.to_string() == key) {
                let old = &list[i];
                if old.call_id == call_id && old.cseq >= cseq {
                    return Err(RegisterError::OutOfOrder);
                }
                if w.expires == 0 {
                    list.remove(i);
                    continue;
                }
                list[i] = binding(w, flow, now, &call_id, cseq, owner);
            } else if w.expires != 0 {
                if list.len() >= self.rules.max_contacts.max(1)
                    && let Some(soonest) = list
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, b)| b.expires_at)
                        .map(|(i, _)| i)
                {
                    list.remove(soonest);
                }
                list.push(binding(w, flow, now, &call_id, cseq, owner));
            }
        }
        if list.is_empty() {
            self.bindings.remove(aor);
        } else {
            self.bindings.insert(aor.to_owned(), list.clone());
        }
        Ok(list)
    }

    /// `owner`'s live bindings of `aor`, most recently refreshed first.
    pub fn lookup(&self, aor: &str, owner: &str, now: Instant) -> Vec<Binding> {
        let mut found: Vec<Binding> = self
            .bindings
            .get(aor)
            .into_iter()
            .flatten()
            .filter(|b| b.owner == owner && b.expires_at > now)
            .cloned()
            .collect();
        found.sort_by_key(|b| std::cmp::Reverse(b.expires_at));
        found
    }

    /// Drops every lapsed binding (call now and then: bindings also lapse on lookup).
    pub fn purge_all(&mut self, now: Instant) {
        self.bindings.retain(|_, list| {
            list.retain(|b| b.expires_at > now);
            !list.is_empty()
        });
    }

    /// Addresses-of-record with at least one binding.
    pub fn len(&self) -> usize {
        self.bindings.len()
    }

    /// No bindings at all.
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    fn purge(&mut self, aor: &str, now: Instant) {
        if let Some(list) = self.bindings.get_mut(aor) {
            list.retain(|b| b.expires_at > now);
            if list.is_empty() {
                self.bindings.remove(aor);
            }
        }
    }
}

/// The `Contact` values of a 200 to REGISTER: every binding with its remaining `expires`.
pub fn contact_values(bindings: &[Binding], now: Instant) -> Vec<String> {
    bindings
        .iter()
        .map(|b| {
            let mut na = NameAddr::new(b.contact.clone());
            na.params
                .set("expires", Some(b.remaining(now).to_string().as_str()));
            na.to_string()
        })
        .collect()
}

fn binding(w: Wanted, flow: Flow, now: Instant, call_id: &str, cseq: u32, owner: &str) -> Binding {
    Binding {
        contact: w.contact,
        flow,
        expires_at: now + Duration::from_secs(u64::from(w.expires)),
        call_id: call_id.to_owned(),
        cseq,
        owner: owner.to_owned(),
    }
}

/// A delta-seconds value; larger than `u32` is clamped (RFC 3261 §20.19: 2^32-1 at most).
fn parse_delta(v: &str) -> Option<u32> {
    let v = v.trim();
    if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        v.parse::<u64>()
            .map_or(u32::MAX, |n| u32::try_from(n).unwrap_or(u32::MAX)),
    )
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // an epoch for simulated time
mod tests {
    use super::*;
    use crate::message::{ParseLimits, SipMessage};

    fn register(contact: &str, expires: Option<&str>, call_id: &str, cseq: u32) -> Request {
        let mut text = format!(
            "REGISTER sip:acme.sip.example.test SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK{cseq}{call_id}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:alice@acme.sip.example.test>;tag=a1\r\n\
             To: <sip:alice@ACME.sip.example.test>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} REGISTER\r\n"
        );
        if !contact.is_empty() {
            text.push_str(&format!("Contact: {contact}\r\n"));
        }
        if let Some(e) = expires {
            text.push_str(&format!("Expires: {e}\r\n"));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        match SipMessage::parse(text.as_bytes(), &ParseLimits::default()).unwrap() {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => unreachable!(),
        }
    }

    fn flow() -> Flow {
        Flow {
            transport: Transport::Tcp,
            source: "192.0.2.10:40312".parse().unwrap(),
        }
    }

    const AOR: &str = "alice@acme.sip.example.test";

    #[test]
    fn binds_refreshes_caps_and_removes() {
        let t0 = Instant::now();
        let mut r = Registrar::new(ExpiryRules::default());
        let req = register("<sip:alice@192.0.2.10:5060;transport=tcp>", None, "c1", 1);
        assert_eq!(address_of_record(&req).as_deref(), Some(AOR));
        let list = r.register(AOR, "AC1", &req, flow(), t0).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].remaining(t0), 3600);
        assert_eq!(list[0].flow, flow());
        assert_eq!(
            contact_values(&list, t0),
            vec!["<sip:alice@192.0.2.10:5060;transport=tcp>;expires=3600"]
        );
        // Another owner sees nothing; the owner sees it until it lapses.
        assert!(r.lookup(AOR, "AC2", t0).is_empty());
        assert_eq!(r.lookup(AOR, "AC1", t0).len(), 1);
        assert!(
            r.lookup(AOR, "AC1", t0 + Duration::from_secs(3600))
                .is_empty()
        );

        // A longer expiry is capped, the contact parameter wins over the header.
        let req = register(
            "<sip:alice@192.0.2.10:5060;transport=tcp>;expires=86400",
            Some("120"),
            "c1",
            2,
        );
        let list = r.register(AOR, "AC1", &req, flow(), t0).unwrap();
        assert_eq!(list.len(), 1, "a refresh, not a second binding");
        assert_eq!(list[0].remaining(t0), 3600);
        // An older request of the same Call-ID changes nothing.
        let req = register(
            "<sip:alice@192.0.2.10:5060;transport=tcp>",
            Some("0"),
            "c1",
            2,
        );
        assert_eq!(
            r.register(AOR, "AC1", &req, flow(), t0).unwrap_err(),
            RegisterError::OutOfOrder
        );
        // Too brief: 423, and nothing changes.
        let req = register("<sip:alice@192.0.2.99>", Some("30"), "c2", 1);
        assert_eq!(
            r.register(AOR, "AC1", &req, flow(), t0).unwrap_err(),
            RegisterError::IntervalTooBrief { min: 60 }
        );
        assert_eq!(r.lookup(AOR, "AC1", t0).len(), 1);
        // A second phone, then a query without Contact lists both.
        let req = register("<sip:alice@192.0.2.99>", Some("600"), "c2", 1);
        assert_eq!(r.register(AOR, "AC1", &req, flow(), t0).unwrap().len(), 2);
        let req = register("", None, "c3", 1);
        assert_eq!(r.register(AOR, "AC1", &req, flow(), t0).unwrap().len(), 2);
        // Expires: 0 for one contact removes that one.
        let req = register("<sip:alice@192.0.2.99>", Some("0"), "c2", 2);
        assert_eq!(r.register(AOR, "AC1", &req, flow(), t0).unwrap().len(), 1);
        // `*` needs Expires: 0.
        let req = register("*", Some("60"), "c1", 9);
        assert!(matches!(
            r.register(AOR, "AC1", &req, flow(), t0),
            Err(RegisterError::Invalid(_))
        ));
        let req = register("*", Some("0"), "c1", 9);
        assert!(r.register(AOR, "AC1", &req, flow(), t0).unwrap().is_empty());
        assert!(r.is_empty());
        // Malformed expiries are refused.
        for bad in ["soon", "-1"] {
            let req = register("<sip:alice@192.0.2.10>", Some(bad), "c9", 1);
            assert!(
                matches!(
                    r.register(AOR, "AC1", &req, flow(), t0),
                    Err(RegisterError::Invalid(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn contacts_per_aor_are_bounded() {
        let t0 = Instant::now();
        let mut r = Registrar::new(ExpiryRules {
            max_contacts: 2,
            ..ExpiryRules::default()
        });
        for (i, e) in [(1, "100"), (2, "300"), (3, "200")] {
            let req = register(
                &format!("<sip:alice@192.0.2.{i}>"),
                Some(e),
                &format!("c{i}"),
                1,
            );
            r.register(AOR, "AC1", &req, flow(), t0).unwrap();
        }
        let left: Vec<String> = r
            .lookup(AOR, "AC1", t0)
            .iter()
            .map(|b| b.contact.to_string())
            .collect();
        assert_eq!(left, vec!["sip:alice@192.0.2.2", "sip:alice@192.0.2.3"]);
        r.purge_all(t0 + Duration::from_secs(301));
        assert!(r.is_empty());
    }
}
