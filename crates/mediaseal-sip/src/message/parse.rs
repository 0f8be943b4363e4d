//! The message parser: framing, start line, header lines, body, then validation of the headers
//! every transaction needs.

use super::headers::{HeaderName, Headers};
use super::{
    HeaderError, Method, Request, Response, SipMessage, StatusCode, Uri, ValueError, Warning,
};

/// Size limits applied while parsing. The defaults suit SIP over UDP and TCP/TLS alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// The largest message (start line + headers + body), in bytes. Default 64 KiB.
    pub max_message_size: usize,
    /// The most header lines (after unfolding). Default 128.
    pub max_headers: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            max_message_size: 64 * 1024,
            max_headers: 128,
        }
    }
}

/// Why bytes are not a SIP message we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Nothing but whitespace.
    #[error("empty message")]
    Empty,
    /// Larger than [`ParseLimits::max_message_size`].
    #[error("message larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// More header lines than [`ParseLimits::max_headers`].
    #[error("more than {limit} header lines")]
    TooManyHeaders {
        /// The limit.
        limit: usize,
    },
    /// No empty line ends the headers.
    #[error("the header section does not end with an empty line")]
    Incomplete,
    /// The start line or headers are not UTF-8.
    #[error("the start line or headers are not valid UTF-8")]
    NotUtf8,
    /// The first line is neither `METHOD URI SIP/2.0` nor `SIP/2.0 CODE REASON`.
    #[error("malformed start line: expected `METHOD URI SIP/2.0` or `SIP/2.0 CODE REASON`")]
    BadStartLine,
    /// A SIP version other than 2.0.
    #[error("unsupported SIP version {0:?}")]
    UnsupportedVersion(String),
    /// The Request-URI does not parse.
    #[error("bad Request-URI: {0}")]
    BadRequestUri(ValueError),
    /// The status code is not three digits in 100..=699.
    #[error("status code must be three digits 100-699")]
    BadStatusCode,
    /// A header line has no colon, an invalid name, control characters, or is a continuation
    /// with nothing to continue.
    #[error("malformed header line {line}")]
    BadHeaderLine {
        /// 1-based line number within the message.
        line: usize,
    },
    /// A required header is missing or malformed.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// Content-Length is not a non-negative decimal number, or two differ.
    #[error("bad Content-Length header: not a non-negative number")]
    BadContentLength,
    /// Content-Length claims more bytes than the datagram holds.
    #[error("Content-Length {declared} exceeds the {available} body bytes received")]
    ContentLengthTooLarge {
        /// What the header says.
        declared: usize,
        /// What arrived.
        available: usize,
    },
    /// The CSeq method differs from the request method.
    #[error("CSeq method {cseq} does not match request method {request}")]
    CSeqMethodMismatch {
        /// The method in CSeq.
        cseq: String,
        /// The method in the request line.
        request: String,
    },
}

impl ParseError {
    /// A stable short name for the error (test vectors and metrics use it).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::TooLarge { .. } => "too-large",
            Self::TooManyHeaders { .. } => "too-many-headers",
            Self::Incomplete => "incomplete",
            Self::NotUtf8 => "not-utf8",
            Self::BadStartLine => "bad-start-line",
            Self::UnsupportedVersion(_) => "unsupported-version",
            Self::BadRequestUri(_) => "bad-request-uri",
            Self::BadStatusCode => "bad-status-code",
            Self::BadHeaderLine { .. } => "bad-header-line",
            Self::Header(HeaderError::Missing(_)) => "missing-header",
            Self::Header(HeaderError::Duplicate(_)) => "duplicate-header",
            Self::Header(_) => "bad-header",
            Self::BadContentLength => "bad-content-length",
            Self::ContentLengthTooLarge { .. } => "content-length-too-large",
            Self::CSeqMethodMismatch { .. } => "cseq-method-mismatch",
        }
    }

    /// The status a server should answer a request with when it fails this way.
    pub fn response_status(&self) -> StatusCode {
        match self {
            Self::UnsupportedVersion(_) => StatusCode::VERSION_NOT_SUPPORTED,
            Self::TooLarge { .. } => StatusCode::MESSAGE_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// The framed head of a message: start line and header lines (unfolded), plus where the body
/// starts.
pub(crate) struct Head {
    pub(crate) start: String,
    pub(crate) headers: Headers,
    pub(crate) content_length: Option<usize>,
    /// Offset of the body in the input (after leading CRLFs were skipped).
    pub(crate) body_offset: usize,
}

/// Number of leading CR/LF bytes (keep-alives, RFC 3261 §7.5 / RFC 5626 §3.5.1).
pub(crate) fn leading_crlf(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count()
}

/// Finds the end of the header section: returns (end of the last header line, body offset).
/// Accepts CRLF and bare LF line ends.
pub(crate) fn find_head_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut line_start = 0;
    while let Some(nl) = bytes
        .get(line_start..)
        .and_then(|rest| rest.iter().position(|b| *b == b'\n'))
        .map(|i| line_start + i)
    {
        let line = bytes.get(line_start..nl).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() && line_start > 0 {
            return Some((line_start, nl + 1));
        }
        line_start = nl + 1;
    }
    None
}

/// Splits and unfolds the head. `bytes` must start at the start line.
pub(crate) fn parse_head(bytes: &[u8], limits: &ParseLimits) -> Result<Head, ParseError> {
    let (head_end, body_offset) = find_head_end(bytes).ok_or(ParseError::Incomplete)?;
    let head = std::str::from_utf8(bytes.get(..head_end).unwrap_or_default())
        .map_err(|_| ParseError::NotUtf8)?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start = lines.next().ok_or(ParseError::BadStartLine)?.to_owned();
    if start.bytes().any(|b| b < b' ' || b == 0x7f) {
        return Err(ParseError::BadStartLine);
    }
    let mut raw: Vec<(HeaderName, String)> = Vec::new();
    let mut content_length: Option<usize> = None;
    for (i, line) in lines.enumerate() {
        let line_no = i + 2;
        if line.is_empty() {
            continue;
        }
        if line.bytes().any(|b| (b < b' ' && b != b'\t') || b == 0x7f) {
            return Err(ParseError::BadHeaderLine { line: line_no });
        }
        if line.starts_with([' ', '\t']) {
            // Folding (RFC 3261 §7.3.1): a continuation line joins the previous value.
            let (_, value) = raw
                .last_mut()
                .ok_or(ParseError::BadHeaderLine { line: line_no })?;
            let cont = line.trim();
            if !cont.is_empty() {
                if !value.is_empty() {
                    value.push(' ');
                }
                value.push_str(cont);
            }
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or(ParseError::BadHeaderLine { line: line_no })?;
        let name = name.trim_end_matches([' ', '\t']);
        let name =
            HeaderName::new(name).map_err(|_| ParseError::BadHeaderLine { line: line_no })?;
        raw.push((name, value.trim().to_owned()));
        if raw.len() > limits.max_headers {
            return Err(ParseError::TooManyHeaders {
                limit: limits.max_headers,
            });
        }
    }
    let mut headers = Headers::new();
    for (name, value) in raw {
        if name == HeaderName::CONTENT_LENGTH {
            let n = parse_content_length(&value)?;
            if content_length.is_some_and(|prev| prev != n) {
                return Err(ParseError::Header(HeaderError::Duplicate(
                    HeaderName::CONTENT_LENGTH,
                )));
            }
            content_length = Some(n);
        } else {
            headers.push(name, value);
        }
    }
    Ok(Head {
        start,
        headers,
        content_length,
        body_offset,
    })
}

fn parse_content_length(v: &str) -> Result<usize, ParseError> {
    let v = v.trim();
    if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::BadContentLength);
    }
    v.parse().map_err(|_| ParseError::BadContentLength)
}

fn parse_version(v: &str) -> Result<(), ParseError> {
    if v.eq_ignore_ascii_case("SIP/2.0") {
        return Ok(());
    }
    let looks_like_version = v.len() > 4
        && v.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
        && v.bytes().skip(4).all(|b| b.is_ascii_digit() || b == b'.');
    if looks_like_version {
        Err(ParseError::UnsupportedVersion(v.to_owned()))
    } else {
        Err(ParseError::BadStartLine)
    }
}

enum StartLine {
    Request(Method, Uri),
    Response(StatusCode, String),
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    if line.len() >= 4
        && line
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
    {
        let (version, rest) = line.split_once(' ').ok_or(ParseError::BadStartLine)?;
        parse_version(version)?;
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::BadStatusCode);
        }
        let code = code
            .parse()
            .ok()
            .and_then(StatusCode::new)
            .ok_or(ParseError::BadStatusCode)?;
        return Ok(StartLine::Response(code, reason.to_owned()));
    }
    let mut parts = line.splitn(3, ' ');
    let (Some(method), Some(uri), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::BadStartLine);
    };
    let method = Method::parse(method).map_err(|_| ParseError::BadStartLine)?;
    if uri.is_empty() || version.contains(' ') {
        return Err(ParseError::BadStartLine);
    }
    parse_version(version)?;
    let uri = Uri::parse(uri).map_err(ParseError::BadRequestUri)?;
    Ok(StartLine::Request(method, uri))
}

/// Checks the headers every transaction and dialog relies on.
fn validate(headers: &Headers, method: Option<&Method>) -> Result<(), ParseError> {
    let vias = headers.vias()?;
    if vias.is_empty() {
        return Err(HeaderError::Missing(HeaderName::VIA).into());
    }
    headers.from()?;
    headers.to()?;
    headers.call_id()?;
    let cseq = headers.cseq()?;
    if let Some(m) = method {
        if cseq.method != *m {
            return Err(ParseError::CSeqMethodMismatch {
                cseq: cseq.method.to_string(),
                request: m.to_string(),
            });
        }
        headers.max_forwards()?;
    }
    headers.contacts()?;
    headers.typed_all::<super::NameAddr>(&HeaderName::RECORD_ROUTE)?;
    headers.typed_all::<super::NameAddr>(&HeaderName::ROUTE)?;
    Ok(())
}

fn build(head: Head, body: Vec<u8>) -> Result<SipMessage, ParseError> {
    match parse_start_line(&head.start)? {
        StartLine::Request(method, uri) => {
            validate(&head.headers, Some(&method))?;
            Ok(SipMessage::Request(Request {
                method,
                uri,
                headers: head.headers,
                body,
            }))
        }
        StartLine::Response(status, reason) => {
            validate(&head.headers, None)?;
            Ok(SipMessage::Response(Response {
                status,
                reason,
                headers: head.headers,
                body,
            }))
        }
    }
}

impl SipMessage {
    /// Parses a message received as one datagram (UDP). The body is what follows the headers,
    /// cut to Content-Length when present (RFC 3261 §18.3).
    pub fn parse(bytes: &[u8], limits: &ParseLimits) -> Result<Self, ParseError> {
        if bytes.len() > limits.max_message_size {
            return Err(ParseError::TooLarge {
                limit: limits.max_message_size,
            });
        }
        let skip = leading_crlf(bytes);
        let bytes = bytes.get(skip..).unwrap_or_default();
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ParseError::Empty);
        }
        let head = parse_head(bytes, limits)?;
        let rest = bytes.get(head.body_offset..).unwrap_or_default();
        let body = match head.content_length {
            Some(n) if n > rest.len() => {
                return Err(ParseError::ContentLengthTooLarge {
                    declared: n,
                    available: rest.len(),
                });
            }
            Some(n) => rest.get(..n).unwrap_or_default(),
            None => rest,
        };
        build(head, body.to_vec())
    }

    /// Builds a message from a framed head and body (the stream framer's second step).
    pub(crate) fn from_head(head: Head, body: Vec<u8>) -> Result<Self, ParseError> {
        build(head, body)
    }
}

/// For a request that failed validation: a response (400, 505 or 513) built from whatever
/// Via/From/To/Call-ID/CSeq lines it has, with a `Warning: 399` saying what was wrong, when
/// the top Via at least parses. ACKs get no response.
pub(crate) fn error_response(
    bytes: &[u8],
    error: &ParseError,
    limits: &ParseLimits,
    agent: &str,
) -> Option<Response> {
    let bytes = bytes.get(leading_crlf(bytes)..)?;
    let head = parse_head(bytes, limits).ok()?;
    let method = head.start.split(' ').next()?;
    if method == "ACK" || head.start.starts_with("SIP/") {
        return None;
    }
    head.headers.top_via().ok()?;
    let status = error.response_status();
    let mut resp = Response::new(status);
    for name in [
        HeaderName::VIA,
        HeaderName::FROM,
        HeaderName::TO,
        HeaderName::CALL_ID,
        HeaderName::CSEQ,
    ] {
        resp.headers.copy_from(&head.headers, &name);
    }
    resp.headers.push(
        HeaderName::WARNING,
        Warning::new(399, agent, &error.to_string()).to_string(),
    );
    Some(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:bob@biloxi.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.com>\r\n\
From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.com>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

    fn parse(s: &str) -> Result<SipMessage, ParseError> {
        SipMessage::parse(s.as_bytes(), &ParseLimits::default())
    }

    #[test]
    fn parses_the_rfc3261_invite() {
        let SipMessage::Request(r) = parse(INVITE).unwrap() else {
            panic!("not a request")
        };
        assert_eq!(r.method, Method::Invite);
        assert_eq!(r.body, b"v=0\n");
        assert_eq!(
            r.headers.call_id().unwrap(),
            "a84b4c76e66710@pc33.atlanta.com"
        );
        assert_eq!(r.headers.cseq().unwrap().seq, 314159);
        assert_eq!(r.headers.from().unwrap().tag(), Some("1928301774"));
        assert!(!r.headers.contains(&HeaderName::CONTENT_LENGTH));
        let again = SipMessage::parse(&r.to_bytes(), &ParseLimits::default()).unwrap();
        assert_eq!(again, SipMessage::Request(r));
    }

    #[test]
    fn datagram_body_is_cut_to_content_length() {
        let m = parse(&format!("{INVITE}trailing junk")).unwrap();
        assert_eq!(m.body(), b"v=0\n");
        let e = parse(&INVITE.replace("Content-Length: 4", "Content-Length: 40")).unwrap_err();
        assert_eq!(
            e,
            ParseError::ContentLengthTooLarge {
                declared: 40,
                available: 4
            }
        );
    }

    #[test]
    fn errors_name_the_header() {
        let e = parse(&INVITE.replace("CSeq: 314159 INVITE", "CSeq: x INVITE")).unwrap_err();
        assert_eq!(e.kind(), "bad-header");
        assert!(e.to_string().contains("CSeq"), "{e}");
        let e =
            parse(&INVITE.replace("Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n", "")).unwrap_err();
        assert_eq!(e.to_string(), "missing Call-ID header");
        let e = parse(&INVITE.replace("CSeq: 314159 INVITE", "CSeq: 314159 ACK")).unwrap_err();
        assert_eq!(e.kind(), "cseq-method-mismatch");
        let e = parse(&INVITE.replace("SIP/2.0\r\nVia", "SIP/7.0\r\nVia")).unwrap_err();
        assert_eq!(e, ParseError::UnsupportedVersion("SIP/7.0".into()));
        assert_eq!(e.response_status(), StatusCode::VERSION_NOT_SUPPORTED);
    }

    #[test]
    fn limits_are_enforced() {
        let limits = ParseLimits {
            max_message_size: 100,
            max_headers: 128,
        };
        assert_eq!(
            SipMessage::parse(INVITE.as_bytes(), &limits).unwrap_err(),
            ParseError::TooLarge { limit: 100 }
        );
        let limits = ParseLimits {
            max_message_size: 65536,
            max_headers: 5,
        };
        assert_eq!(
            SipMessage::parse(INVITE.as_bytes(), &limits).unwrap_err(),
            ParseError::TooManyHeaders { limit: 5 }
        );
    }

    #[test]
    fn error_response_copies_what_it_can() {
        let bad = INVITE.replace("CSeq: 314159 INVITE", "CSeq: 314159 ACK");
        let e = parse(&bad).unwrap_err();
        let r =
            error_response(bad.as_bytes(), &e, &ParseLimits::default(), "edge.example").unwrap();
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            r.headers.call_id().unwrap(),
            "a84b4c76e66710@pc33.atlanta.com"
        );
        let w: Warning = r.headers.typed(&HeaderName::WARNING).unwrap().unwrap();
        assert_eq!(w.code, 399);
        assert!(w.text.contains("CSeq method ACK"), "{}", w.text);
    }
}
