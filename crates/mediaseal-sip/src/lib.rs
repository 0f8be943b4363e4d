//! Sans-IO SIP core: messages, SDP, the secure-media policy, digest authentication,
//! transactions and dialogs.
//!
//! No sockets, no TLS, no threads, no clock reads: the IO shell (another crate) owns the
//! sockets and hands this crate bytes, the transport they arrived on and the current
//! [`Instant`](std::time::Instant); it gets back bytes to send, events for the call logic, and
//! the next instant at which timers need it. The shape is str0m's run loop. Because the shell
//! says which transport a request arrived on, "did this INVITE come over TLS" is a fact the
//! secure-media policy can rely on, never a guess from the Via header.
//!
//! | module | what | RFC |
//! |---|---|---|
//! | [`message`] | requests, responses, headers (compact forms, folding, lists), URIs, name-addr, Via, CSeq, Warning; datagram parsing and stream framing with size limits; responses built from requests | 3261 §7, §18.3, §20, §25 |
//! | [`sdp`] | session descriptions; rtpmap/fmtp/ptime/direction/rtcp/rtcp-mux/crypto; G.711 + telephone-event offers and answers | 8866, 3264, 4568, 4733 |
//! | [`policy`] | the `Secure` switch of a SIP Domain (seed 004): accept with a suite and the peer's `a=crypto`, or a reject reason with status and `Warning` | 4568 |
//! | [`auth`] | digest challenges with stateless nonces, verification against a password or stored HA1, client responses | 7616, 2617, 8760 |
//! | [`transaction`] | the four transaction state machines behind one [`Endpoint`](transaction::Endpoint) | 3261 §17, 6026 |
//! | [`dialog`] | UAC/UAS INVITE dialogs, ACK for 2xx, BYE, in-dialog checks | 3261 §12–15 |
//! | [`registrar`] | REGISTER bindings: address-of-record → contacts with the flow they came on, Expires rules, ordering by Call-ID/CSeq | 3261 §10.3 |
//! | [`ids`] | tags, branches, Call-IDs | 3261 §19.3 |
//!
//! Secrets: SDES keys live in SDP bodies and `a=crypto` attributes; `Debug` of messages,
//! SDP, attributes, transmits, credentials and stored HA1 values never prints them.
//! Untrusted input never panics: every parser is fuzzed (`fuzz/fuzz_targets/sip_message.rs`,
//! `sdp.rs`) and property-tested. `docs/SIP.md` has the design, state machines and the policy
//! table with codes.
//!
//! A call between two endpoints, with the network played by the loop:
//!
//! ```
//! use std::time::Instant;
//! use mediaseal_sip::dialog::{Dialog, new_invite};
//! use mediaseal_sip::message::{HeaderName, Host, Response, StatusCode, Transport};
//! use mediaseal_sip::transaction::{Endpoint, EndpointConfig, Event, Output, Target};
//!
//! let (a_addr, b_addr) = ("127.0.0.1:5070".parse()?, "127.0.0.1:5080".parse()?);
//! let mut a = Endpoint::new(EndpointConfig { udp_port: 5070, ..EndpointConfig::new(Host::V4([127, 0, 0, 1].into())) });
//! let mut b = Endpoint::new(EndpointConfig { udp_port: 5080, ..EndpointConfig::new(Host::V4([127, 0, 0, 1].into())) });
//! let now = Instant::now();
//!
//! let invite = new_invite(
//!     "sip:bob@127.0.0.1:5080".parse()?,
//!     "<sip:alice@127.0.0.1>".parse()?,
//!     &"<sip:bob@127.0.0.1>".parse()?,
//!     &"<sip:alice@127.0.0.1:5070>".parse()?,
//!     None,
//! );
//! let call = a.send_request(invite, Target { transport: Transport::Udp, addr: b_addr }, now)?;
//!
//! let mut answered = false;
//! for _ in 0..10 {
//!     // A's datagrams reach B, B's reach A.
//!     while let Some(out) = a.poll_output() {
//!         match out {
//!             Output::Transmit(t) => b.handle_datagram(&t.bytes, Transport::Udp, a_addr, now),
//!             Output::Event(Event::Response { id, response }) if id == call && response.status.is_success() => {
//!                 let mut dialog = Dialog::new_uac(a.client_request(call).unwrap(), &response)?;
//!                 a.send_ack(call, dialog.ack(), dialog.next_hop().unwrap(), now)?;
//!                 answered = true;
//!             }
//!             Output::Event(_) => {}
//!         }
//!     }
//!     while let Some(out) = b.poll_output() {
//!         match out {
//!             Output::Transmit(t) => a.handle_datagram(&t.bytes, Transport::Udp, b_addr, now),
//!             Output::Event(Event::NewRequest { id, request, .. }) => {
//!                 let ok = Response::for_request(&request, StatusCode::OK)
//!                     .with_to_tag("bob-tag")
//!                     .with_header(HeaderName::CONTACT, "<sip:bob@127.0.0.1:5080>");
//!                 b.respond(id, ok, now)?;
//!             }
//!             Output::Event(_) => {}
//!         }
//!     }
//! }
//! assert!(answered);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod auth;
pub mod dialog;
pub mod ids;
mod md5;
pub mod message;
pub mod policy;
pub mod registrar;
pub mod sdp;
pub mod transaction;
