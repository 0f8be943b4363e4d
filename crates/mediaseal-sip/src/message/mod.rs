//! SIP messages (RFC 3261 §7, §20, §25): requests and responses, their headers, parsing from
//! datagrams and streams, serialization, and responses built from requests.
//!
//! Parsing is two-step: the framing (start line, header lines with folding undone, body by
//! Content-Length) and then validation of the headers every transaction needs (Via, From, To,
//! Call-ID, CSeq, Max-Forwards), so that a message that parses can always be answered. Every
//! other header is kept as text and parsed on demand with [`Headers::typed`].
//!
//! ```
//! use mediaseal_sip::message::{ParseLimits, SipMessage, Response, StatusCode};
//!
//! let bytes = b"OPTIONS sip:carol@chicago.com SIP/2.0\r\n\
//!     v: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKhjhs8ass877\r\n\
//!     Max-Forwards: 70\r\nt: <sip:carol@chicago.com>\r\n\
//!     f: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
//!     i: a84b4c76e66710\r\nCSeq: 63104 OPTIONS\r\nl: 0\r\n\r\n";
//! let SipMessage::Request(req) = SipMessage::parse(bytes, &ParseLimits::default())? else {
//!     unreachable!()
//! };
//! let ok = Response::for_request(&req, StatusCode::OK).with_to_tag("314159");
//! let text = String::from_utf8(ok.to_bytes())?;
//! assert!(text.starts_with("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP pc33.atlanta.com"));
//! assert!(text.contains("To: <sip:carol@chicago.com>;tag=314159\r\n"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;
use core::str::FromStr;

mod headers;
mod params;
pub(crate) mod parse;
mod stream;
mod typed;
mod uri;

pub use headers::{Header, HeaderName, Headers};
pub use params::{Param, Params};
pub use parse::{ParseError, ParseLimits};
pub use stream::{FrameError, StreamFramer};
pub use typed::{CSeq, Contact, HeaderValue, MAGIC_COOKIE, MaxForwards, Via, Warning};
pub use uri::{Host, NameAddr, Scheme, SipUri, Uri};

pub(crate) use params::{is_token, quote, split_outside_quotes, unquote};

/// Why a header value or URI is malformed (the static text says what was expected).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub(crate) &'static str);

impl ValueError {
    /// What was wrong, for people.
    pub fn reason(&self) -> &'static str {
        self.0
    }
}

/// A header that is missing, repeated, or malformed; names the header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// A required header is absent.
    #[error("missing {0} header")]
    Missing(HeaderName),
    /// A header that may appear once appears more than once.
    #[error("{0} header appears more than once")]
    Duplicate(HeaderName),
    /// A header value does not follow its grammar.
    #[error("bad {header} header: {reason}")]
    Invalid {
        /// The header.
        header: HeaderName,
        /// What is wrong with it.
        reason: ValueError,
    },
}

impl HeaderError {
    pub(crate) fn invalid(header: &HeaderName, reason: ValueError) -> Self {
        Self::Invalid {
            header: header.clone(),
            reason,
        }
    }

    /// The header concerned.
    pub fn header(&self) -> &HeaderName {
        match self {
            Self::Missing(h) | Self::Duplicate(h) => h,
            Self::Invalid { header, .. } => header,
        }
    }
}

/// A SIP method. Comparison is case-sensitive, as RFC 3261 §7.1 requires.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Method {
    /// INVITE
    Invite,
    /// ACK
    Ack,
    /// BYE
    Bye,
    /// CANCEL
    Cancel,
    /// OPTIONS
    Options,
    /// REGISTER
    Register,
    /// INFO (RFC 6086)
    Info,
    /// UPDATE (RFC 3311)
    Update,
    /// PRACK (RFC 3262)
    Prack,
    /// SUBSCRIBE (RFC 6665)
    Subscribe,
    /// NOTIFY (RFC 6665)
    Notify,
    /// REFER (RFC 3515)
    Refer,
    /// MESSAGE (RFC 3428)
    Message,
    /// PUBLISH (RFC 3903)
    Publish,
    /// Any other token.
    Extension(String),
}

const METHODS: [(Method, &str); 14] = [
    (Method::Invite, "INVITE"),
    (Method::Ack, "ACK"),
    (Method::Bye, "BYE"),
    (Method::Cancel, "CANCEL"),
    (Method::Options, "OPTIONS"),
    (Method::Register, "REGISTER"),
    (Method::Info, "INFO"),
    (Method::Update, "UPDATE"),
    (Method::Prack, "PRACK"),
    (Method::Subscribe, "SUBSCRIBE"),
    (Method::Notify, "NOTIFY"),
    (Method::Refer, "REFER"),
    (Method::Message, "MESSAGE"),
    (Method::Publish, "PUBLISH"),
];

impl Method {
    /// Parses a method token.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        if let Some((m, _)) = METHODS.iter().find(|(_, s)| *s == text) {
            return Ok(m.clone());
        }
        if is_token(text) {
            Ok(Self::Extension(text.to_owned()))
        } else {
            Err(ValueError("method is not a token"))
        }
    }

    /// The method name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Invite => "INVITE",
            Self::Ack => "ACK",
            Self::Bye => "BYE",
            Self::Cancel => "CANCEL",
            Self::Options => "OPTIONS",
            Self::Register => "REGISTER",
            Self::Info => "INFO",
            Self::Update => "UPDATE",
            Self::Prack => "PRACK",
            Self::Subscribe => "SUBSCRIBE",
            Self::Notify => "NOTIFY",
            Self::Refer => "REFER",
            Self::Message => "MESSAGE",
            Self::Publish => "PUBLISH",
            Self::Extension(s) => s,
        }
    }
}

impl PartialEq for Method {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}
impl Eq for Method {}
impl core::hash::Hash for Method {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Method {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A transport this crate speaks. The IO shell reports which one a message arrived on; the
/// secure-media policy depends on it being [`Transport::Tls`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// UDP (unreliable: the transaction layer retransmits).
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
}

impl Transport {
    /// Whether the transport is reliable (no retransmissions, timers D/I/J/K are zero).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Self::Udp)
    }

    /// The Via transport token.
    pub fn as_via_str(self) -> &'static str {
        match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
            Self::Tls => "TLS",
        }
    }

    /// Parses a Via transport token (case-insensitive).
    pub fn from_via_str(s: &str) -> Option<Self> {
        [Self::Udp, Self::Tcp, Self::Tls]
            .into_iter()
            .find(|t| t.as_via_str().eq_ignore_ascii_case(s))
    }

    /// 5060, or 5061 for TLS.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Tls => 5061,
            _ => 5060,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_via_str())
    }
}

/// A response status code, 100..=699.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusCode(u16);

macro_rules! codes {
    ($($konst:ident = $n:literal, $reason:literal;)*) => {
        impl StatusCode {
            $(
                #[doc = concat!("`", stringify!($n), " ", $reason, "`")]
                pub const $konst: Self = Self($n);
            )*

            /// The standard reason phrase, or a generic one for the class.
            pub fn canonical_reason(self) -> &'static str {
                match self.0 {
                    $($n => $reason,)*
                    100..=199 => "Provisional",
                    200..=299 => "Success",
                    300..=399 => "Redirection",
                    400..=499 => "Client Error",
                    500..=599 => "Server Error",
                    _ => "Global Failure",
                }
            }
        }
    };
}

codes! {
    TRYING = 100, "Trying";
    RINGING = 180, "Ringing";
    CALL_IS_BEING_FORWARDED = 181, "Call Is Being Forwarded";
    QUEUED = 182, "Queued";
    SESSION_PROGRESS = 183, "Session Progress";
    OK = 200, "OK";
    ACCEPTED = 202, "Accepted";
    MOVED_TEMPORARILY = 302, "Moved Temporarily";
    BAD_REQUEST = 400, "Bad Request";
    UNAUTHORIZED = 401, "Unauthorized";
    FORBIDDEN = 403, "Forbidden";
    NOT_FOUND = 404, "Not Found";
    METHOD_NOT_ALLOWED = 405, "Method Not Allowed";
    PROXY_AUTHENTICATION_REQUIRED = 407, "Proxy Authentication Required";
    REQUEST_TIMEOUT = 408, "Request Timeout";
    GONE = 410, "Gone";
    REQUEST_ENTITY_TOO_LARGE = 413, "Request Entity Too Large";
    UNSUPPORTED_MEDIA_TYPE = 415, "Unsupported Media Type";
    UNSUPPORTED_URI_SCHEME = 416, "Unsupported URI Scheme";
    BAD_EXTENSION = 420, "Bad Extension";
    TEMPORARILY_UNAVAILABLE = 480, "Temporarily Unavailable";
    CALL_DOES_NOT_EXIST = 481, "Call/Transaction Does Not Exist";
    LOOP_DETECTED = 482, "Loop Detected";
    TOO_MANY_HOPS = 483, "Too Many Hops";
    BUSY_HERE = 486, "Busy Here";
    REQUEST_TERMINATED = 487, "Request Terminated";
    NOT_ACCEPTABLE_HERE = 488, "Not Acceptable Here";
    REQUEST_PENDING = 491, "Request Pending";
    SERVER_INTERNAL_ERROR = 500, "Server Internal Error";
    NOT_IMPLEMENTED = 501, "Not Implemented";
    SERVICE_UNAVAILABLE = 503, "Service Unavailable";
    VERSION_NOT_SUPPORTED = 505, "Version Not Supported";
    MESSAGE_TOO_LARGE = 513, "Message Too Large";
    BUSY_EVERYWHERE = 600, "Busy Everywhere";
    DECLINE = 603, "Decline";
}

impl StatusCode {
    /// A status code, if within 100..=699.
    pub fn new(code: u16) -> Option<Self> {
        (100..=699).contains(&code).then_some(Self(code))
    }

    /// The number.
    pub fn as_u16(self) -> u16 {
        self.0
    }

    /// 1xx.
    pub fn is_provisional(self) -> bool {
        self.0 < 200
    }

    /// 2xx.
    pub fn is_success(self) -> bool {
        (200..300).contains(&self.0)
    }

    /// 200..=699.
    pub fn is_final(self) -> bool {
        self.0 >= 200
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A SIP request.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The Request-URI.
    pub uri: Uri,
    /// The headers (without Content-Length, which is derived from the body).
    pub headers: Headers,
    /// The body (SDP for INVITE offers).
    pub body: Vec<u8>,
}

/// A SIP response.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: StatusCode,
    /// The reason phrase.
    pub reason: String,
    /// The headers (without Content-Length).
    pub headers: Headers,
    /// The body.
    pub body: Vec<u8>,
}

/// Bodies can hold SDES keys; `Debug` shows their size and type only.
fn debug_body(f: &mut fmt::DebugStruct<'_, '_>, headers: &Headers, body: &[u8]) {
    f.field(
        "body",
        &format_args!(
            "<{} bytes of {}>",
            body.len(),
            headers.content_type().unwrap_or("no Content-Type")
        ),
    );
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Request");
        d.field("method", &self.method)
            .field("uri", &format_args!("{}", self.uri))
            .field("headers", &self.headers);
        debug_body(&mut d, &self.headers, &self.body);
        d.finish()
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Response");
        d.field("status", &self.status)
            .field("reason", &self.reason)
            .field("headers", &self.headers);
        debug_body(&mut d, &self.headers, &self.body);
        d.finish()
    }
}

fn write_headers_and_body(out: &mut Vec<u8>, headers: &Headers, body: &[u8]) {
    for h in headers.iter() {
        out.extend_from_slice(h.name().as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, uri: Uri) -> Self {
        Self {
            method,
            uri,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// The wire form, with a Content-Length computed from the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(format!("{} {} SIP/2.0\r\n", self.method, self.uri).as_bytes());
        write_headers_and_body(&mut out, &self.headers, &self.body);
        out
    }

    /// Sets the body and its Content-Type.
    pub fn set_body(&mut self, content_type: &str, body: Vec<u8>) {
        self.headers.set(HeaderName::CONTENT_TYPE, content_type);
        self.body = body;
    }
}

impl Response {
    /// A response with the canonical reason phrase and no headers.
    pub fn new(status: StatusCode) -> Self {
        Self {
            status,
            reason: status.canonical_reason().to_owned(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// A response to `request` (RFC 3261 §8.2.6.2): copies Via (all, in order), From, To,
    /// Call-ID, CSeq and Timestamp. Add a To tag with [`Self::with_to_tag`] for anything but
    /// 100 Trying.
    pub fn for_request(request: &Request, status: StatusCode) -> Self {
        let mut r = Self::new(status);
        for name in [
            HeaderName::VIA,
            HeaderName::FROM,
            HeaderName::TO,
            HeaderName::CALL_ID,
            HeaderName::CSEQ,
        ] {
            r.headers.copy_from(&request.headers, &name);
        }
        if let Ok(ts) = HeaderName::new("Timestamp") {
            r.headers.copy_from(&request.headers, &ts);
        }
        r
    }

    /// Adds `tag` to the To header unless it already has one (a request inside a dialog).
    pub fn with_to_tag(mut self, tag: &str) -> Self {
        if let Ok(mut to) = self.headers.to()
            && to.tag().is_none()
        {
            to.set_tag(tag);
            self.headers.set(HeaderName::TO, to.to_string());
        }
        self
    }

    /// Sets the reason phrase (CR/LF are dropped).
    pub fn with_reason(mut self, reason: &str) -> Self {
        self.reason = reason
            .chars()
            .filter(|c| *c != '\r' && *c != '\n')
            .collect();
        self
    }

    /// Appends a header line.
    pub fn with_header(mut self, name: HeaderName, value: impl AsRef<str>) -> Self {
        self.headers.push(name, value);
        self
    }

    /// Sets the body and its Content-Type.
    pub fn with_body(mut self, content_type: &str, body: Vec<u8>) -> Self {
        self.headers.set(HeaderName::CONTENT_TYPE, content_type);
        self.body = body;
        self
    }

    /// The wire form, with a Content-Length computed from the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(format!("SIP/2.0 {} {}\r\n", self.status, self.reason).as_bytes());
        write_headers_and_body(&mut out, &self.headers, &self.body);
        out
    }
}

/// A request or a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipMessage {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

impl SipMessage {
    /// The headers.
    pub fn headers(&self) -> &Headers {
        match self {
            Self::Request(r) => &r.headers,
            Self::Response(r) => &r.headers,
        }
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        match self {
            Self::Request(r) => &r.body,
            Self::Response(r) => &r.body,
        }
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Self::Request(r) => r.to_bytes(),
            Self::Response(r) => r.to_bytes(),
        }
    }
}

impl From<Request> for SipMessage {
    fn from(r: Request) -> Self {
        Self::Request(r)
    }
}

impl From<Response> for SipMessage {
    fn from(r: Response) -> Self {
        Self::Response(r)
    }
}
