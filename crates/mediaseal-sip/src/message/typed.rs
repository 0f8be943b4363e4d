//! Typed header values: Via, CSeq, Contact, Max-Forwards, Warning, and name-addr headers.

use core::fmt;

use super::params::{Params, is_token, quote, quoted_string_end, unquote};
use super::uri::{Host, NameAddr, parse_host_port};
use super::{Method, Transport, ValueError};

/// A header value that can be parsed from and written to text.
pub trait HeaderValue: Sized {
    /// Parses one value (for list headers, one comma-separated element).
    fn parse_value(text: &str) -> Result<Self, ValueError>;
}

impl HeaderValue for NameAddr {
    fn parse_value(text: &str) -> Result<Self, ValueError> {
        Self::parse(text)
    }
}

impl HeaderValue for String {
    fn parse_value(text: &str) -> Result<Self, ValueError> {
        Ok(text.to_owned())
    }
}

/// The RFC 3261 branch prefix that marks a globally unique branch (§8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// A Via value (RFC 3261 §20.42): `SIP/2.0/UDP host:port;branch=…;received=…;rport=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// The transport token, upper-cased (`UDP`, `TCP`, `TLS`, `SCTP`, `WS`, …).
    pub transport: String,
    /// The sent-by host.
    pub host: Host,
    /// The sent-by port.
    pub port: Option<u16>,
    /// Parameters (`branch`, `received`, `rport`, `maddr`, `ttl`, …).
    pub params: Params,
}

impl Via {
    /// A Via for `transport` and sent-by, with a branch.
    pub fn new(transport: Transport, host: Host, port: Option<u16>, branch: &str) -> Self {
        let mut params = Params::new();
        params.set("branch", Some(branch));
        Self {
            transport: transport.as_via_str().to_owned(),
            host,
            port,
            params,
        }
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.value("branch")
    }

    /// Whether the branch starts with the RFC 3261 magic cookie.
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch().is_some_and(|b| b.starts_with(MAGIC_COOKIE))
    }

    /// The `received` parameter.
    pub fn received(&self) -> Option<&str> {
        self.params.value("received")
    }

    /// The `rport` parameter (RFC 3581): `None` if absent, `Some(None)` when requested but not
    /// yet filled in, `Some(Some(port))` once filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|p| p.parse().ok()))
    }

    /// The transport, if it is one this crate speaks.
    pub fn transport(&self) -> Option<Transport> {
        Transport::from_via_str(&self.transport)
    }

    /// `host[:port]`, lower-cased: the sent-by used in transaction matching.
    pub fn sent_by(&self) -> String {
        let host = self.host.to_string().to_ascii_lowercase();
        match self.port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        }
    }
}

impl HeaderValue for Via {
    fn parse_value(text: &str) -> Result<Self, ValueError> {
        let text = text.trim();
        // sent-protocol allows LWS around the slashes: "SIP / 2.0 / UDP".
        let mut rest = text;
        let mut parts = Vec::with_capacity(3);
        for i in 0..3 {
            let r = rest.trim_start();
            let end = if i < 2 {
                r.find('/')
                    .ok_or(ValueError("expected SIP/2.0/<transport>"))?
            } else {
                r.find(|c: char| c.is_whitespace())
                    .ok_or(ValueError("expected sent-by after the transport"))?
            };
            parts.push(r.get(..end).unwrap_or_default().trim());
            rest = r.get(end..).unwrap_or_default();
            if i < 2 {
                rest = rest.get(1..).unwrap_or_default();
            }
        }
        let [name, version, transport] = parts.as_slice() else {
            return Err(ValueError("expected SIP/2.0/<transport>"));
        };
        if !name.eq_ignore_ascii_case("SIP") || *version != "2.0" {
            return Err(ValueError("sent-protocol must be SIP/2.0"));
        }
        if !is_token(transport) {
            return Err(ValueError("invalid transport"));
        }
        let rest = rest.trim_start();
        let (sent_by, params) = match rest.find(';') {
            Some(i) => (
                rest.get(..i).unwrap_or_default(),
                rest.get(i..).unwrap_or_default(),
            ),
            None => (rest, ""),
        };
        // "host : port" with LWS around the colon is legal.
        let sent_by: String = sent_by.split_whitespace().collect();
        let (host, port) = parse_host_port(&sent_by)?;
        let params = Params::parse(params, "invalid Via parameter")?;
        Ok(Self {
            transport: transport.to_ascii_uppercase(),
            host,
            port,
            params,
        })
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

/// A CSeq value (RFC 3261 §20.16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// The sequence number (less than 2^31).
    pub seq: u32,
    /// The method.
    pub method: Method,
}

impl HeaderValue for CSeq {
    fn parse_value(text: &str) -> Result<Self, ValueError> {
        let mut it = text.split_whitespace();
        let (Some(n), Some(m), None) = (it.next(), it.next(), it.next()) else {
            return Err(ValueError("expected <number> <method>"));
        };
        if n.len() > 10 || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValueError("sequence number is not a number below 2^31"));
        }
        let seq: u32 = n
            .parse()
            .ok()
            .filter(|s| *s < 1 << 31)
            .ok_or(ValueError("sequence number is not a number below 2^31"))?;
        let method = Method::parse(m).map_err(|_| ValueError("invalid method"))?;
        Ok(Self { seq, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// Max-Forwards (RFC 3261 §20.22), 0..=255.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxForwards(pub u8);

impl HeaderValue for MaxForwards {
    fn parse_value(text: &str) -> Result<Self, ValueError> {
        let t = text.trim();
        // Leading zeros are legal (RFC 4475 §3.1.1.1 sends 0068).
        if t.is_empty() || t.len() > 10 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValueError("not a number 0-255"));
        }
        t.parse::<u32>()
            .ok()
            .and_then(|n| u8::try_from(n).ok())
            .map(Self)
            .ok_or(ValueError("not a number 0-255"))
    }
}

/// A Contact value: `*` (only in REGISTER) or an address with parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact {
    /// `Contact: *`
    Star,
    /// An address.
    Address(NameAddr),
}

impl Contact {
    /// The address, unless this is `*`.
    pub fn address(&self) -> Option<&NameAddr> {
        match self {
            Self::Star => None,
            Self::Address(a) => Some(a),
        }
    }
}

impl HeaderValue for Contact {
    fn parse_value(text: &str) -> Result<Self, ValueError> {
        if text.trim() == "*" {
            Ok(Self::Star)
        } else {
            NameAddr::parse(text).map(Self::Address)
        }
    }
}

impl fmt::Display for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Star => f.write_str("*"),
            Self::Address(a) => a.fmt(f),
        }
    }
}

/// A Warning value (RFC 3261 §20.43): `399 host "text"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The three-digit warn-code (300–399).
    pub code: u16,
    /// The warn-agent: host\[:port\] or a pseudonym token.
    pub agent: String,
    /// The warn-text, unquoted.
    pub text: String,
}

impl Warning {
    /// A warning; characters not allowed in a warn-agent are dropped.
    pub fn new(code: u16, agent: &str, text: &str) -> Self {
        let agent: String = agent
            .chars()
            .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != ',')
            .collect();
        Self {
            code,
            agent: if agent.is_empty() {
                "-".to_owned()
            } else {
                agent
            },
            text: text.to_owned(),
        }
    }
}

impl HeaderValue for Warning {
    fn parse_value(text: &str) -> Result<Self, ValueError> {
        let text = text.trim();
        let (code, rest) = text
            .split_once(' ')
            .ok_or(ValueError("expected <code> <agent> \"<text>\""))?;
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValueError("warn-code must be three digits"));
        }
        let (agent, quoted) = rest
            .trim_start()
            .split_once(' ')
            .ok_or(ValueError("expected <code> <agent> \"<text>\""))?;
        let quoted = quoted.trim();
        if quoted_string_end(quoted) != Some(quoted.len()) {
            return Err(ValueError("warn-text must be a quoted string"));
        }
        Ok(Self {
            code: code.parse().map_err(|_| ValueError("bad warn-code"))?,
            agent: agent.to_owned(),
            text: unquote(quoted),
        })
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03} {} {}", self.code, self.agent, quote(&self.text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_lws_rport_and_received() {
        let v = Via::parse_value(
            "SIP / 2.0 / udp  192.0.2.1 : 5060 ;branch=z9hG4bK776;rport;received=198.51.100.7",
        )
        .unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.transport(), Some(Transport::Udp));
        assert_eq!(v.port, Some(5060));
        assert_eq!(v.branch(), Some("z9hG4bK776"));
        assert!(v.has_rfc3261_branch());
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.received(), Some("198.51.100.7"));
        assert_eq!(v.sent_by(), "192.0.2.1:5060");
        let again = Via::parse_value(&v.to_string()).unwrap();
        assert_eq!(again, v);
        let v = Via::parse_value("SIP/2.0/TLS [2001:db8::9];branch=z9hG4bKx;rport=5071").unwrap();
        assert_eq!(v.rport(), Some(Some(5071)));
        assert!(Via::parse_value("SIP/3.0/UDP a").is_err());
        assert!(Via::parse_value("SIP/2.0/UDP").is_err());
        assert!(Via::parse_value("SIP/2.0/UDP host:port").is_err());
    }

    #[test]
    fn cseq_bounds() {
        let c = CSeq::parse_value("4711  INVITE").unwrap();
        assert_eq!((c.seq, c.method.clone()), (4711, Method::Invite));
        assert_eq!(c.to_string(), "4711 INVITE");
        assert!(CSeq::parse_value("2147483648 INVITE").is_err());
        assert!(CSeq::parse_value("-1 INVITE").is_err());
        assert!(CSeq::parse_value("1").is_err());
        assert!(CSeq::parse_value("1 INVITE extra").is_err());
    }

    #[test]
    fn warning_round_trip() {
        let w = Warning::new(302, "sip.example.com", "Incompatible transport \"RTP/AVP\"");
        let s = w.to_string();
        assert_eq!(
            s,
            "302 sip.example.com \"Incompatible transport \\\"RTP/AVP\\\"\""
        );
        assert_eq!(Warning::parse_value(&s).unwrap(), w);
        assert!(Warning::parse_value("1 a \"b\"").is_err());
        assert!(Warning::parse_value("399 a b").is_err());
    }

    #[test]
    fn contact_star_and_max_forwards() {
        assert_eq!(Contact::parse_value(" * ").unwrap(), Contact::Star);
        assert!(
            Contact::parse_value("<sip:a@b>;expires=60")
                .unwrap()
                .address()
                .is_some()
        );
        assert_eq!(MaxForwards::parse_value("70").unwrap(), MaxForwards(70));
        assert!(MaxForwards::parse_value("256").is_err());
        assert!(MaxForwards::parse_value("-1").is_err());
    }
}
