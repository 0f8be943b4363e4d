//! The SIP URI in a `<Sip>` body: `sip:`/`sips:`, user, host, port, `;transport=`,
//! `;secure=true`, `;region=` and `?X-Header=value` headers, as Twilio accepts them.
//!
//! This is not a general RFC 3261 URI parser: it accepts what `<Dial><Sip>` can usefully
//! carry and refuses the rest with Twilio's codes (13243 invalid URI, 13252 header name,
//! 13253 headers too long).

use core::fmt;

use crate::error::{ParseError, TwilioCode, quote};

/// Longest URI without its headers (Twilio: "less than 255 characters").
pub const MAX_SIP_URI_LEN: usize = 254;
/// Longest header section after `?` (Twilio: "less than 1024 characters").
pub const MAX_SIP_HEADERS_LEN: usize = 1023;

/// `sip:` or `sips:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SipScheme {
    /// `sip:`.
    Sip,
    /// `sips:` (TLS on every hop).
    Sips,
}

/// The `;transport=` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SipTransport {
    /// `udp`.
    Udp,
    /// `tcp`.
    Tcp,
    /// `tls`.
    Tls,
}

impl SipTransport {
    /// The lowercase parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
        }
    }
}

/// A parsed `<Sip>` URI. [`SipUri::as_str`] gives it back exactly as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    raw: String,
    /// `sip` or `sips`.
    pub scheme: SipScheme,
    /// The user part, still percent-encoded as written (`jack`, `+14155550100`).
    pub user: Option<String>,
    /// The host: a name, an IPv4 address, or an IPv6 reference in brackets.
    pub host: String,
    /// An explicit port.
    pub port: Option<u16>,
    /// `;transport=`.
    pub transport: Option<SipTransport>,
    /// `;secure=true`: TLS to port 5061 and an SRTP offer with exactly one
    /// `AES_CM_128_HMAC_SHA1_80` crypto line (seed 004).
    pub secure: bool,
    /// `;region=`.
    pub region: Option<String>,
    /// Other URI parameters, in order, as written.
    pub other_params: Vec<(String, Option<String>)>,
    /// `?Name=value` headers, names as written and values percent-decoded.
    pub headers: Vec<(String, String)>,
}

impl SipUri {
    /// The URI exactly as written in the document.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether this dial must run over TLS: `sips:`, `;secure=true` or `;transport=tls`.
    pub fn requires_tls(&self) -> bool {
        self.scheme == SipScheme::Sips || self.secure || self.transport == Some(SipTransport::Tls)
    }

    /// The port to connect to: the explicit one, else 5061 when TLS is required, else 5060.
    pub fn effective_port(&self) -> u16 {
        match self.port {
            Some(p) => p,
            None if self.requires_tls() => 5061,
            None => 5060,
        }
    }

    /// The URI without its `?headers` part: what goes in the Request-URI.
    pub fn without_headers(&self) -> &str {
        self.raw
            .split_once('?')
            .map_or(&self.raw[..], |(uri, _)| uri)
    }

    /// Parses a `<Sip>` body (surrounding whitespace already trimmed).
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let invalid = |expected: &'static str| ParseError::InvalidValue {
            code: TwilioCode::SIP_URI,
            element: "Sip".to_owned(),
            attribute: "#text".to_owned(),
            value: quote(input),
            expected,
        };
        let (main, header_part) = match input.split_once('?') {
            Some((m, h)) => (m, Some(h)),
            None => (input, None),
        };
        if main.len() > MAX_SIP_URI_LEN {
            return Err(invalid("a SIP URI shorter than 255 characters"));
        }
        if input
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"'))
        {
            return Err(invalid(
                "a SIP URI without spaces, quotes or angle brackets",
            ));
        }
        let (scheme, rest) = if let Some(r) = strip_prefix_ignore_case(main, "sips:") {
            (SipScheme::Sips, r)
        } else if let Some(r) = strip_prefix_ignore_case(main, "sip:") {
            (SipScheme::Sip, r)
        } else {
            return Err(invalid("a URI starting with sip: or sips:"));
        };

        let (user, host_and_params) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        if let Some(u) = user {
            if u.is_empty() {
                return Err(invalid("a non-empty user before '@'"));
            }
            if u.contains(':') {
                return Err(invalid(
                    "no password in the URI (use the username and password attributes)",
                ));
            }
            if !u.chars().all(is_user_char) {
                return Err(invalid(
                    "a user part of letters, digits and -_.!~*'()&=+$,;?/%",
                ));
            }
        }

        let mut pieces = host_and_params.split(';');
        let host_port = pieces.next().unwrap_or_default();
        let (host, port) = split_host_port(host_port).ok_or_else(|| {
            invalid("a host name, IPv4 address or [IPv6] reference, with an optional port")
        })?;

        let mut transport = None;
        let mut secure = false;
        let mut region = None;
        let mut other_params = Vec::new();
        for param in pieces {
            let (name, value) = match param.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (param, None),
            };
            if name.is_empty() || !name.chars().all(is_token_char) {
                return Err(invalid("URI parameters of the form ;name or ;name=value"));
            }
            if let Some(v) = value
                && (v.is_empty() || !v.chars().all(|c| is_token_char(c) || c == ':' || c == '%'))
            {
                return Err(invalid("URI parameters of the form ;name or ;name=value"));
            }
            match (name.to_ascii_lowercase().as_str(), value) {
                ("transport", Some(v)) => {
                    transport = Some(match v.to_ascii_lowercase().as_str() {
                        "udp" => SipTransport::Udp,
                        "tcp" => SipTransport::Tcp,
                        "tls" => SipTransport::Tls,
                        _ => return Err(invalid(";transport=udp, tcp or tls")),
                    });
                }
                ("secure", Some(v)) => {
                    secure = match v.to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(invalid(";secure=true or ;secure=false")),
                    };
                }
                ("region", Some(v)) => region = Some(v.to_owned()),
                ("transport" | "secure" | "region", None) => {
                    return Err(invalid(";transport, ;secure and ;region need a value"));
                }
                _ => other_params.push((name.to_owned(), value.map(str::to_owned))),
            }
        }
        if secure && matches!(transport, Some(SipTransport::Udp | SipTransport::Tcp)) {
            return Err(invalid(
                ";secure=true with TLS: it cannot be combined with ;transport=udp or tcp",
            ));
        }

        let mut headers = Vec::new();
        if let Some(h) = header_part {
            if h.len() > MAX_SIP_HEADERS_LEN {
                return Err(ParseError::InvalidValue {
                    code: TwilioCode::SIP_HEADER_TOO_LONG,
                    element: "Sip".to_owned(),
                    attribute: "#text".to_owned(),
                    value: quote(input),
                    expected: "SIP URI headers shorter than 1024 characters",
                });
            }
            for pair in h.split('&') {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                let allowed_name = name.len() > 2
                    && (name.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("x-"))
                        || name.eq_ignore_ascii_case("User-to-User"))
                    && name.chars().all(is_token_char);
                if !allowed_name {
                    return Err(ParseError::InvalidValue {
                        code: TwilioCode::SIP_HEADER_NAME,
                        element: "Sip".to_owned(),
                        attribute: "#text".to_owned(),
                        value: quote(input),
                        expected: "headers named X-… or User-to-User",
                    });
                }
                let value = percent_decode(value)
                    .ok_or_else(|| invalid("header values with valid %-escapes of UTF-8"))?;
                headers.push((name.to_owned(), value));
            }
        }

        Ok(Self {
            raw: input.to_owned(),
            scheme,
            user: user.map(str::to_owned),
            host: host.to_owned(),
            port,
            transport,
            secure,
            region,
            other_params,
            headers,
        })
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// RFC 3261 `token` characters (parameter and header names).
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

/// RFC 3261 user characters: unreserved, escaped and user-unreserved.
fn is_user_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'()%&=+$,;?/".contains(c)
}

fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &s[..end + 2];
        let addr = &rest[..end];
        addr.parse::<core::net::Ipv6Addr>().ok()?;
        match &rest[end + 1..] {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if !host.starts_with('[') {
        let labels_ok = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !labels_ok {
            return None;
        }
    }
    let port = match port {
        None => None,
        Some(p) => {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            match p.parse::<u16>() {
                Ok(0) | Err(_) => return None,
                Ok(n) => Some(n),
            }
        }
    };
    Some((host, port))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_uri_from_seed_004() {
        let uri = SipUri::parse("sip:jack@example.com;secure=true").unwrap();
        assert_eq!(uri.scheme, SipScheme::Sip);
        assert_eq!(uri.user.as_deref(), Some("jack"));
        assert_eq!(uri.host, "example.com");
        assert!(uri.secure);
        assert!(uri.requires_tls());
        assert_eq!(uri.effective_port(), 5061);
        assert_eq!(uri.as_str(), "sip:jack@example.com;secure=true");
    }

    #[test]
    fn parameters_headers_and_ports() {
        let uri = SipUri::parse(
            "sip:+14155550100@[2001:db8::1]:5080;transport=TCP;region=ie1;user=phone?X-Acct=12%2034&X-Pin=1",
        )
        .unwrap();
        assert_eq!(uri.host, "[2001:db8::1]");
        assert_eq!(uri.port, Some(5080));
        assert_eq!(uri.transport, Some(SipTransport::Tcp));
        assert_eq!(uri.region.as_deref(), Some("ie1"));
        assert_eq!(
            uri.other_params,
            vec![("user".to_owned(), Some("phone".to_owned()))]
        );
        assert_eq!(
            uri.headers,
            vec![
                ("X-Acct".to_owned(), "12 34".to_owned()),
                ("X-Pin".to_owned(), "1".to_owned())
            ]
        );
        assert_eq!(uri.effective_port(), 5080);
        assert_eq!(
            uri.without_headers(),
            "sip:+14155550100@[2001:db8::1]:5080;transport=TCP;region=ie1;user=phone"
        );
        assert_eq!(
            SipUri::parse("sip:10.0.0.1").unwrap().effective_port(),
            5060
        );
        assert_eq!(SipUri::parse("sips:a@b").unwrap().effective_port(), 5061);
    }

    #[test]
    fn refusals_carry_twilio_codes() {
        let cases: &[(&str, u16)] = &[
            ("jack@example.com", 13243),
            ("tel:+14155550100", 13243),
            ("sip:", 13243),
            ("sip:@example.com", 13243),
            ("sip:jack:pw@example.com", 13243),
            ("sip:jack@exa mple.com", 13243),
            ("sip:jack@-bad-.com", 13243),
            ("sip:jack@example.com:99999", 13243),
            ("sip:jack@[not-v6]", 13243),
            ("sip:jack@example.com;transport=sctp", 13243),
            ("sip:jack@example.com;secure=yes", 13243),
            ("sip:jack@example.com;secure=true;transport=udp", 13243),
            ("sip:jack@example.com?Subject=hi", 13252),
            ("sip:jack@example.com?X-A=%zz", 13243),
            // Found by the fuzzer: a multi-byte character where "X-" was expected.
            ("sip:jack@example.com?X\u{451}ccount=1", 13252),
        ];
        for (uri, code) in cases {
            let err = SipUri::parse(uri).unwrap_err();
            assert_eq!(err.code().0, *code, "{uri}: {err}");
        }
        let long_user = "a".repeat(260);
        assert_eq!(
            SipUri::parse(&format!("sip:{long_user}@example.com"))
                .unwrap_err()
                .code()
                .0,
            13243
        );
        let long_header = "v".repeat(1030);
        assert_eq!(
            SipUri::parse(&format!("sip:a@example.com?X-Long={long_header}"))
                .unwrap_err()
                .code()
                .0,
            13253
        );
    }
}
