//! Sans-IO TwiML: the parser and the call-script interpreter.
//!
//! mediaseal answers SIP calls the way Twilio does: it fetches the domain's `VoiceUrl` and runs
//! the TwiML that comes back. This crate is the part of that which needs no network: it turns
//! bytes into a typed [`Response`] (refusing what Twilio would refuse, with Twilio's error
//! codes) and runs a [`Response`] as a state machine ([`Interpreter`]) that takes call events
//! in and gives call-layer commands out. No sockets, no clocks, no threads, no async.
//!
//! # Supported TwiML
//!
//! Verbs: `<Dial>` (with `<Sip>`, `<Number>` or a plain-text number), `<Record>`, `<Play>`,
//! `<Say>`, `<Gather input="dtmf">` (with nested `<Say>`, `<Play>`, `<Pause>`), `<Pause>`,
//! `<Redirect>`, `<Reject>` and `<Hangup>`, with every attribute of Twilio's reference tables
//! and its defaults. `docs/TWIML.md` in the repository lists them with the codes of each
//! refusal.
//!
//! Refused, with a [`ParseError`] whose [`ParseError::code`] is Twilio's:
//! - malformed XML, non-UTF-8 input, a `<!DOCTYPE>` or an undefined entity: **12100**;
//! - a root other than `<Response>`: **12102**; a body over 64 kB: **11750**;
//! - unknown elements or attributes, misplaced elements, and valid TwiML mediaseal does not run
//!   (`<Conference>`, `<Gather input="speech">`, SSML in `<Say>`…): **12200**;
//! - bad attribute values: the attribute's own code (13212 `<Dial timeout>`, 13243 SIP URI,
//!   13313 `<Gather timeout>`, 13910 `<Pause length>`…), or 12200 where Twilio has none.
//!
//! Twilio itself treats unknown attributes as a warning and carries on; [`ParseOptions`] with
//! [`AttributePolicy::Ignore`] does the same and lists what it skipped in [`Parsed::ignored`].
//!
//! # Why quick-xml
//!
//! The XML reader is [`quick-xml`](https://docs.rs/quick-xml): actively maintained (several
//! releases a year; 0.42 here), widely depended on (calamine and many serde-XML users), a pull
//! parser that borrows from the input instead of building a DOM, with no dependencies beyond
//! `memchr`. It never processes DTDs, which is the security point: there is no entity
//! declaration code path to switch off, so external entities (XXE) and entity-expansion bombs
//! cannot happen. This crate additionally refuses any `<!DOCTYPE>` and expands only the five
//! predefined entities and character references. `roxmltree`, the alternative, expands entities
//! declared in an internal DTD and always builds the whole tree.
//!
//! # Example
//!
//! ```
//! use mediaseal_twiml::{
//!     Command, Event, HttpMethod, Interpreter, InterpreterConfig, Response, Verb,
//! };
//!
//! let doc = Response::parse(br#"<?xml version="1.0" encoding="UTF-8"?>
//! <Response><Dial><Sip>sip:jack@example.com;secure=true</Sip></Dial></Response>"#)?;
//! let Verb::Dial(dial) = &doc.verbs[0] else { unreachable!() };
//! assert_eq!(dial.timeout_secs, 30);
//!
//! let url = "https://app.example.com/voice".parse()?;
//! let mut call = Interpreter::new(InterpreterConfig::inbound(url, HttpMethod::Post));
//! assert_eq!(call.poll_command(), Some(Command::Ring));
//! assert!(matches!(call.poll_command(), Some(Command::Fetch(_))));
//! call.handle(Event::TwimlFetched(doc))?;
//! assert_eq!(call.poll_command(), Some(Command::Answer));
//! let Some(Command::Dial(dial)) = call.poll_command() else { panic!() };
//! assert_eq!(dial.legs.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

mod error;
mod interp;
mod model;
mod parse;
mod sip_uri;
mod write;
mod xml;

pub use error::{MAX_QUOTED_VALUE, ParseError, TwilioCode};
pub use interp::{
    CallDirection, Callback, CollectDigits, Command, DEFAULT_MAX_FETCHES, DialCallStatus,
    DialCommand, DialLeg, DialOutcome, DialRecording, Event, FetchPurpose, FetchRequest,
    FetchTarget, HangupReason, Interpreter, InterpreterConfig, PromptCommand, RecordCommand,
    RecordingInfo, RecordingOutcome, RejectStatus, Script, UnexpectedEvent,
};
pub use model::{
    CallProgressEvents, Dial, DialRecord, DialTarget, Gather, GatherInput, HttpMethod, Number,
    Pause, Play, PlaySource, Prompt, Record, RecordingEvents, Redirect, Reject, RejectReason,
    Repeat, Response, Say, Sip, SipPassword, Trim, UrlRef, Verb,
};
pub use parse::{MAX_DIAL_NUMBERS, MAX_LOOP, MAX_SAY_CHARS, MAX_SIP_CALLER_ID};
pub use sip_uri::{MAX_SIP_HEADERS_LEN, MAX_SIP_URI_LEN, SipScheme, SipTransport, SipUri};

/// Bounds on what one document may cost to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest document in bytes (65536: Twilio's 64 kB, error 11750).
    pub max_document_bytes: usize,
    /// Deepest element nesting, the root counting as 1 (8; valid TwiML needs 3).
    pub max_depth: usize,
    /// Most elements in the document (1024).
    pub max_elements: usize,
    /// Most verbs and nouns, nested ones included (256).
    pub max_verbs: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_document_bytes: 64 * 1024,
            max_depth: 8,
            max_elements: 1024,
            max_verbs: 256,
        }
    }
}

/// What to do with attributes that are unknown, or known to Twilio but not implemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttributePolicy {
    /// Refuse the document (12200). The default: a script that asks for something mediaseal
    /// will not do should fail loudly.
    #[default]
    Refuse,
    /// Skip the attribute and record it in [`Parsed::ignored`], as Twilio's 12200 warning does.
    Ignore,
}

/// How to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParseOptions {
    /// Size and shape bounds.
    pub limits: Limits,
    /// Unknown attributes.
    pub unknown_attributes: AttributePolicy,
}

/// A parsed document and what was skipped to get it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The document.
    pub response: Response,
    /// Attributes skipped under [`AttributePolicy::Ignore`] (always empty under `Refuse`).
    pub ignored: Vec<ParseError>,
}

impl Response {
    /// Parses a TwiML voice document with the default [`ParseOptions`].
    pub fn parse(document: &[u8]) -> Result<Self, ParseError> {
        Self::parse_with(document, &ParseOptions::default()).map(|p| p.response)
    }

    /// Parses a TwiML voice document.
    pub fn parse_with(document: &[u8], options: &ParseOptions) -> Result<Parsed, ParseError> {
        parse::parse_document(document, options)
    }
}

impl core::str::FromStr for Response {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s.as_bytes())
    }
}
