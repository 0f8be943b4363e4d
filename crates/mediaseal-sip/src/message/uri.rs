//! SIP and SIPS URIs (RFC 3261 §19.1, §25.1) and name-addr / addr-spec values (§20.10).
//!
//! The user part and URI headers are kept in their escaped form so a URI serializes back to
//! what was parsed; [`SipUri::user_unescaped`] decodes `%XX`.

use core::fmt;
use core::str::FromStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::ValueError;
use super::params::{Params, is_token_byte, quote, quoted_string_end, unquote};

/// `sip:` or `sips:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `sip:`
    Sip,
    /// `sips:` (TLS on every hop, RFC 3261 §19.1).
    Sips,
}

impl Scheme {
    /// The scheme name without the colon.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sip => "sip",
            Self::Sips => "sips",
        }
    }
}

/// A host: a domain name or an IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A domain name, as written (compare with [`Host::eq_ignore_case`]).
    Domain(String),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 address (written in brackets).
    V6(Ipv6Addr),
}

impl Host {
    /// Parses a host (`example.com`, `192.0.2.1`, `[2001:db8::1]`).
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            return inner
                .parse()
                .map(Self::V6)
                .map_err(|_| ValueError("invalid IPv6 reference"));
        }
        if !text.is_empty()
            && text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && let Ok(v4) = text.parse()
        {
            return Ok(Self::V4(v4));
        }
        let valid = !text.is_empty()
            && text.len() <= 255
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && !text.starts_with(['.', '-']);
        if valid {
            Ok(Self::Domain(text.to_owned()))
        } else {
            Err(ValueError("invalid host"))
        }
    }

    /// The IP address, if this is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Self::V4(a) => Some(IpAddr::V4(*a)),
            Self::V6(a) => Some(IpAddr::V6(*a)),
            Self::Domain(_) => None,
        }
    }

    /// Compares hosts, domain names case-insensitively (RFC 3261 §19.1.4).
    pub fn eq_ignore_case(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Domain(a), Self::Domain(b)) => a.eq_ignore_ascii_case(b),
            _ => self == other,
        }
    }
}

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(a) => Self::V4(a),
            IpAddr::V6(a) => Self::V6(a),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Domain(d) => f.write_str(d),
            Self::V4(a) => a.fmt(f),
            Self::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// A `sip:` or `sips:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// The scheme.
    pub scheme: Scheme,
    /// The user part, escaped as written (`alice`, `+15551234567`, `a%20b`).
    pub user: Option<String>,
    /// The password part (deprecated by RFC 3261 but still parsed), escaped as written.
    pub password: Option<String>,
    /// The host.
    pub host: Host,
    /// The port, if given.
    pub port: Option<u16>,
    /// URI parameters (`;transport=tls`, `;secure=true`, `;lr`).
    pub params: Params,
    /// URI headers (`?X-Header=v&Subject=hi`), names and values escaped as written.
    pub headers: Vec<(String, String)>,
}

impl SipUri {
    /// A URI with just a scheme, optional user and host.
    pub fn new(scheme: Scheme, user: Option<&str>, host: Host) -> Self {
        Self {
            scheme,
            user: user.map(escape_user),
            password: None,
            host,
            port: None,
            params: Params::new(),
            headers: Vec::new(),
        }
    }

    /// Parses a SIP or SIPS URI.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let (scheme, rest) = text
            .split_once(':')
            .ok_or(ValueError("not a SIP URI (no scheme)"))?;
        let scheme = if scheme.eq_ignore_ascii_case("sip") {
            Scheme::Sip
        } else if scheme.eq_ignore_ascii_case("sips") {
            Scheme::Sips
        } else {
            return Err(ValueError("not a sip: or sips: URI"));
        };
        if rest
            .bytes()
            .any(|b| b <= b' ' || b == 0x7f || matches!(b, b'<' | b'>' | b'"'))
        {
            return Err(ValueError(
                "URI contains whitespace or a forbidden character",
            ));
        }
        // `@` appears unescaped only after the userinfo, while `?` and `;` may appear inside
        // the user part (RFC 3261 §25.1 user-unreserved): split on the last `@` first, and
        // fall back to the `@` before the first `?` for URIs whose headers carry an `@`.
        let last_at = rest.rfind('@');
        let first = Self::parse_parts(scheme, rest, last_at);
        let before_query = rest.split('?').next().and_then(|main| main.find('@'));
        match first {
            Err(_) if before_query != last_at => Self::parse_parts(scheme, rest, before_query),
            other => other,
        }
    }

    fn parse_parts(scheme: Scheme, rest: &str, at: Option<usize>) -> Result<Self, ValueError> {
        let (userinfo, after_user) = match at {
            Some(i) => (rest.get(..i), rest.get(i + 1..).unwrap_or_default()),
            None => (None, rest),
        };
        let (hostpart, headers) = match after_user.split_once('?') {
            Some((m, h)) => (m, Some(h)),
            None => (after_user, None),
        };
        let (user, password) = match userinfo {
            Some(ui) => {
                let (u, p) = match ui.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (ui, None),
                };
                if u.is_empty() || !u.bytes().all(is_user_byte) || !valid_escapes(u) {
                    return Err(ValueError("invalid user part in URI"));
                }
                if let Some(p) = p
                    && (!p.bytes().all(is_user_byte) || !valid_escapes(p))
                {
                    return Err(ValueError("invalid password in URI"));
                }
                (Some(u.to_owned()), p.map(str::to_owned))
            }
            None => (None, None),
        };
        let (hostport, params) = match hostpart.find(';') {
            Some(i) => (
                hostpart.get(..i).unwrap_or_default(),
                hostpart.get(i..).unwrap_or_default(),
            ),
            None => (hostpart, ""),
        };
        let (host, port) = split_host_port(hostport)?;
        let params = Params::parse(params, "invalid URI parameter")?;
        let headers = match headers {
            Some(h) => parse_uri_headers(h)?,
            None => Vec::new(),
        };
        Ok(Self {
            scheme,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
    }

    /// The user part with `%XX` escapes decoded (invalid UTF-8 is replaced).
    pub fn user_unescaped(&self) -> Option<String> {
        self.user.as_deref().map(unescape)
    }

    /// The `transport` parameter, lower-cased.
    pub fn transport_param(&self) -> Option<String> {
        self.params.value("transport").map(str::to_ascii_lowercase)
    }

    /// Twilio's `;secure=true` marker on `<Sip>` URIs.
    pub fn secure_param(&self) -> bool {
        self.params
            .value("secure")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// The value of a URI header (`?X-Header=v`), unescaped, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| unescape(n).eq_ignore_ascii_case(name))
            .map(|(_, v)| unescape(v))
    }

    /// Compares two URIs the way RFC 3261 §19.1.4 does for the parts that matter to routing:
    /// scheme, user (case-sensitive, after unescaping), host (case-insensitive), port, and the
    /// `transport`, `user`, `method`, `maddr` and `ttl` parameters when either side has them.
    pub fn equivalent(&self, other: &Self) -> bool {
        if self.scheme != other.scheme
            || self.user_unescaped() != other.user_unescaped()
            || !self.host.eq_ignore_case(&other.host)
            || self.port != other.port
        {
            return false;
        }
        ["transport", "user", "method", "maddr", "ttl"]
            .iter()
            .all(|name| {
                let a = self
                    .params
                    .get(name)
                    .map(|v| v.map(str::to_ascii_lowercase));
                let b = other
                    .params
                    .get(name)
                    .map(|v| v.map(str::to_ascii_lowercase));
                a == b
            })
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme.as_str())?;
        if let Some(user) = &self.user {
            f.write_str(user)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write!(f, "{}", self.params)?;
        for (i, (n, v)) in self.headers.iter().enumerate() {
            let sep = if i == 0 { '?' } else { '&' };
            write!(f, "{sep}{n}={v}")?;
        }
        Ok(())
    }
}

impl FromStr for SipUri {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A URI in a Request-URI or a name-addr: SIP/SIPS, or any other absolute URI (`tel:`, `urn:`)
/// kept as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    /// `sip:` or `sips:`.
    Sip(SipUri),
    /// Another absolute URI, as written.
    Other(String),
}

impl Uri {
    /// Parses an absolute URI; `sip:`/`sips:` ones are parsed fully.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let scheme = text
            .split_once(':')
            .map(|(s, _)| s)
            .ok_or(ValueError("not an absolute URI (no scheme)"))?;
        if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
            return SipUri::parse(text).map(Self::Sip);
        }
        let scheme_ok = scheme
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        let rest_ok = text
            .bytes()
            .all(|b| b > b' ' && b != 0x7f && !matches!(b, b'<' | b'>' | b'"'));
        if scheme_ok && rest_ok && text.len() > scheme.len() + 1 {
            Ok(Self::Other(text.to_owned()))
        } else {
            Err(ValueError("invalid absolute URI"))
        }
    }

    /// The SIP URI, if this is one.
    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Self::Sip(u) => Some(u),
            Self::Other(_) => None,
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sip(u) => u.fmt(f),
            Self::Other(s) => f.write_str(s),
        }
    }
}

impl FromStr for Uri {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl From<SipUri> for Uri {
    fn from(u: SipUri) -> Self {
        Self::Sip(u)
    }
}

/// A name-addr or addr-spec with header parameters: the value of From, To, Contact, Route,
/// Record-Route, Refer-To… (RFC 3261 §20.10).
///
/// Always serialized as `"Display" <uri>;params`, which is valid whatever the URI contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name, unquoted.
    pub display_name: Option<String>,
    /// The URI.
    pub uri: Uri,
    /// Header parameters (`;tag=…`, `;expires=…`, `;lr` on Route is a URI parameter instead).
    pub params: Params,
}

impl NameAddr {
    /// A name-addr without display name or parameters.
    pub fn new(uri: impl Into<Uri>) -> Self {
        Self {
            display_name: None,
            uri: uri.into(),
            params: Params::new(),
        }
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        self.params.value("tag")
    }

    /// Sets the `tag` parameter.
    pub fn set_tag(&mut self, tag: &str) {
        self.params.set("tag", Some(tag));
    }

    /// The SIP URI, if the URI is one.
    pub fn sip_uri(&self) -> Option<&SipUri> {
        self.uri.as_sip()
    }

    /// Parses `"Display" <uri>;p=v`, `Display Name <uri>`, `<uri>` or `uri;p=v`.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let text = text.trim();
        let (display_name, after_display) = if text.starts_with('"') {
            let end = quoted_string_end(text).ok_or(ValueError("unterminated display name"))?;
            let name = unquote(text.get(..end).unwrap_or_default());
            let rest = text.get(end..).unwrap_or_default().trim_start();
            if !rest.starts_with('<') {
                return Err(ValueError("quoted display name must be followed by <URI>"));
            }
            (Some(name), rest)
        } else if let Some(lt) = text.find('<') {
            let name = text.get(..lt).unwrap_or_default().trim();
            let tokens_ok = name
                .split_ascii_whitespace()
                .all(|t| t.bytes().all(is_token_byte) || !t.is_ascii());
            if !tokens_ok {
                return Err(ValueError("display name must be tokens or a quoted string"));
            }
            let name = (!name.is_empty())
                .then(|| name.split_ascii_whitespace().collect::<Vec<_>>().join(" "));
            (name, text.get(lt..).unwrap_or_default())
        } else {
            (None, text)
        };

        if let Some(inner) = after_display.strip_prefix('<') {
            let gt = inner.find('>').ok_or(ValueError("missing > after URI"))?;
            let uri = Uri::parse(inner.get(..gt).unwrap_or_default().trim())?;
            let params = Params::parse(
                inner.get(gt + 1..).unwrap_or_default(),
                "invalid header parameter",
            )?;
            if !inner.get(gt + 1..).unwrap_or_default().trim().is_empty() && params.is_empty() {
                return Err(ValueError("unexpected text after >"));
            }
            return Ok(Self {
                display_name,
                uri,
                params,
            });
        }
        // addr-spec: every `;param` belongs to the header, not the URI (RFC 3261 §20.10).
        let (uri_text, params) = match text.find([';', ' ', '\t']) {
            Some(i) => (
                text.get(..i).unwrap_or_default(),
                text.get(i..).unwrap_or_default(),
            ),
            None => (text, ""),
        };
        if !params.trim().is_empty() && !params.trim_start().starts_with(';') {
            return Err(ValueError("URI without <> must not contain whitespace"));
        }
        if uri_text.contains(['?', ',']) {
            return Err(ValueError("a URI containing ? or , must be enclosed in <>"));
        }
        Ok(Self {
            display_name: None,
            uri: Uri::parse(uri_text)?,
            params: Params::parse(params, "invalid header parameter")?,
        })
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.display_name {
            write!(f, "{} ", quote(name))?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

impl FromStr for NameAddr {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn split_host_port(hostport: &str) -> Result<(Host, Option<u16>), ValueError> {
    let (host, port) = if hostport.starts_with('[') {
        let end = hostport
            .find(']')
            .ok_or(ValueError("unterminated IPv6 reference"))?;
        let host = hostport.get(..=end).unwrap_or_default();
        match hostport.get(end + 1..).unwrap_or_default() {
            "" => (host, None),
            rest => (
                host,
                Some(
                    rest.strip_prefix(':')
                        .ok_or(ValueError("invalid host:port"))?,
                ),
            ),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let port = match port {
        Some(p) => Some(parse_port(p)?),
        None => None,
    };
    Ok((Host::parse(host)?, port))
}

/// Parses a decimal port 0..=65535 (no sign, no whitespace).
pub(crate) fn parse_port(p: &str) -> Result<u16, ValueError> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValueError("port is not a number 0-65535"));
    }
    p.parse()
        .map_err(|_| ValueError("port is not a number 0-65535"))
}

pub(crate) fn parse_host_port(text: &str) -> Result<(Host, Option<u16>), ValueError> {
    split_host_port(text)
}

fn parse_uri_headers(text: &str) -> Result<Vec<(String, String)>, ValueError> {
    text.split('&')
        .map(|h| {
            let (n, v) = h
                .split_once('=')
                .ok_or(ValueError("URI header without ="))?;
            let ok = |s: &str| {
                s.bytes()
                    .all(|b| is_user_byte(b) || matches!(b, b'@' | b'[' | b']' | b':'))
                    && valid_escapes(s)
            };
            if n.is_empty() || !ok(n) || !ok(v) {
                return Err(ValueError("invalid URI header"));
            }
            Ok((n.to_owned(), v.to_owned()))
        })
        .collect()
}

/// unreserved / escaped / user-unreserved (RFC 3261 §25.1), plus `:` handled by the caller.
fn is_user_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_'
                | b'.'
                | b'!'
                | b'~'
                | b'*'
                | b'\''
                | b'('
                | b')'
                | b'%'
                | b'&'
                | b'='
                | b'+'
                | b'$'
                | b','
                | b';'
                | b'?'
                | b'/'
        )
}

fn valid_escapes(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let ok = b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let hex = |j: usize| b.get(j).and_then(|h| (*h as char).to_digit(16));
        match (c, hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn escape_user(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if is_user_byte(b) && b != b'%' && b != b';' && b != b'?' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_sip_uri() {
        let u = SipUri::parse("sips:alice:pw@Example.COM:5061;transport=tls;secure=true;lr?X-Acct=42&Subject=hi%20there").unwrap();
        assert_eq!(u.scheme, Scheme::Sips);
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.password.as_deref(), Some("pw"));
        assert_eq!(u.host, Host::Domain("Example.COM".into()));
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.transport_param().as_deref(), Some("tls"));
        assert!(u.secure_param());
        assert_eq!(u.params.get("lr"), Some(None));
        assert_eq!(u.header("x-acct").as_deref(), Some("42"));
        assert_eq!(u.header("Subject").as_deref(), Some("hi there"));
        assert_eq!(SipUri::parse(&u.to_string()).unwrap(), u);
    }

    #[test]
    fn ipv6_and_escapes() {
        let u = SipUri::parse("sip:%61lice@[2001:db8::10]:5070").unwrap();
        assert_eq!(u.host, Host::V6("2001:db8::10".parse().unwrap()));
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.user_unescaped().as_deref(), Some("alice"));
        assert!(u.equivalent(&SipUri::parse("sip:alice@[2001:DB8::10]:5070").unwrap()));
        assert!(!u.equivalent(&SipUri::parse("sip:alice@[2001:DB8::10]").unwrap()));
        let n = SipUri::new(Scheme::Sip, Some("a b@c"), Host::Domain("h".into()));
        assert_eq!(n.to_string(), "sip:a%20b%40c@h");
    }

    #[test]
    fn rejects_bad_uris() {
        for bad in [
            "sip:",
            "sip:@host",
            "sip:user@",
            "sip:user@host:99999",
            "sip:user@ho st",
            "sip:user@[::1",
            "sip:us%zzer@host",
            "http//x",
            "sip:user@host;=x",
            "sip:a@b?noequals",
        ] {
            assert!(SipUri::parse(bad).is_err(), "{bad}");
        }
        assert!(Uri::parse("tel:+15551234567").is_ok());
        assert!(Uri::parse("1tel:x").is_err());
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse("\"Bob \\\"B\\\"\" <sip:bob@biloxi.com;transport=tcp>;tag=a6c85cf")
            .unwrap();
        assert_eq!(n.display_name.as_deref(), Some("Bob \"B\""));
        assert_eq!(n.tag(), Some("a6c85cf"));
        assert_eq!(
            n.sip_uri().unwrap().transport_param().as_deref(),
            Some("tcp")
        );
        assert_eq!(NameAddr::parse(&n.to_string()).unwrap(), n);

        let n = NameAddr::parse("sip:carol@chicago.com;tag=xyz;transport=udp").unwrap();
        assert_eq!(n.tag(), Some("xyz"));
        // In addr-spec form the parameters belong to the header.
        assert!(n.sip_uri().unwrap().params.is_empty());
        assert_eq!(n.params.value("transport"), Some("udp"));

        let n = NameAddr::parse("Anonymous  Caller <sip:c8oqz84zk7z@privacy.org>").unwrap();
        assert_eq!(n.display_name.as_deref(), Some("Anonymous Caller"));
        assert!(NameAddr::parse("<sip:a@b").is_err());
        assert!(NameAddr::parse("\"x\" sip:a@b").is_err());
        assert!(NameAddr::parse("sip:a@b?x=y").is_err());
    }
}
