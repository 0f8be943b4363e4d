//! Header names (case-insensitive, compact forms expanded) and the ordered header list.

use core::fmt;
use std::borrow::Cow;

use super::params::{is_token, split_outside_quotes};
use super::typed::{CSeq, Contact, HeaderValue, MaxForwards, Via};
use super::uri::NameAddr;
use super::{HeaderError, ValueError};

/// A header name. Known names (and compact forms such as `v`, `i`, `m`) are stored in their
/// canonical spelling; comparison is case-insensitive.
#[derive(Clone)]
pub struct HeaderName(Cow<'static, str>);

/// `(canonical name, compact form, comma-separated list header)`.
const KNOWN: &[(&str, Option<char>, bool)] = &[
    ("Accept", None, true),
    ("Accept-Contact", Some('a'), true),
    ("Accept-Encoding", None, true),
    ("Accept-Language", None, true),
    ("Alert-Info", None, true),
    ("Allow", None, true),
    ("Allow-Events", Some('u'), true),
    ("Authentication-Info", None, false),
    ("Authorization", None, false),
    ("Call-ID", Some('i'), false),
    ("Call-Info", None, true),
    ("Contact", Some('m'), true),
    ("Content-Disposition", None, false),
    ("Content-Encoding", Some('e'), true),
    ("Content-Language", None, true),
    ("Content-Length", Some('l'), false),
    ("Content-Type", Some('c'), false),
    ("CSeq", None, false),
    ("Date", None, false),
    ("Error-Info", None, true),
    ("Event", Some('o'), false),
    ("Expires", None, false),
    ("From", Some('f'), false),
    ("Identity", Some('y'), false),
    ("Identity-Info", Some('n'), false),
    ("In-Reply-To", None, true),
    ("Max-Forwards", None, false),
    ("MIME-Version", None, false),
    ("Min-Expires", None, false),
    ("Organization", None, false),
    ("Path", None, true),
    ("Priority", None, false),
    ("Proxy-Authenticate", None, false),
    ("Proxy-Authorization", None, false),
    ("Proxy-Require", None, true),
    ("RAck", None, false),
    ("Reason", None, true),
    ("Record-Route", None, true),
    ("Refer-To", Some('r'), false),
    ("Referred-By", Some('b'), false),
    ("Reject-Contact", Some('j'), true),
    ("Reply-To", None, false),
    ("Request-Disposition", Some('d'), true),
    ("Require", None, true),
    ("Retry-After", None, false),
    ("Route", None, true),
    ("RSeq", None, false),
    ("Server", None, false),
    ("Service-Route", None, true),
    ("Session-Expires", Some('x'), false),
    ("Subject", Some('s'), false),
    ("Supported", Some('k'), true),
    ("Timestamp", None, false),
    ("To", Some('t'), false),
    ("Unsupported", None, true),
    ("User-Agent", None, false),
    ("Via", Some('v'), true),
    ("Warning", None, true),
    ("WWW-Authenticate", None, false),
];

macro_rules! names {
    ($($konst:ident = $s:literal;)*) => {
        impl HeaderName {
            $(
                #[doc = concat!("`", $s, "`")]
                pub const $konst: Self = Self(Cow::Borrowed($s));
            )*
        }
    };
}

names! {
    ALLOW = "Allow";
    AUTHORIZATION = "Authorization";
    CALL_ID = "Call-ID";
    CONTACT = "Contact";
    CONTENT_LENGTH = "Content-Length";
    CONTENT_TYPE = "Content-Type";
    CSEQ = "CSeq";
    EXPIRES = "Expires";
    FROM = "From";
    MAX_FORWARDS = "Max-Forwards";
    MIN_EXPIRES = "Min-Expires";
    PROXY_AUTHENTICATE = "Proxy-Authenticate";
    PROXY_AUTHORIZATION = "Proxy-Authorization";
    REASON = "Reason";
    RECORD_ROUTE = "Record-Route";
    REQUIRE = "Require";
    ROUTE = "Route";
    SERVER = "Server";
    SUPPORTED = "Supported";
    TO = "To";
    UNSUPPORTED = "Unsupported";
    USER_AGENT = "User-Agent";
    VIA = "Via";
    WARNING = "Warning";
    WWW_AUTHENTICATE = "WWW-Authenticate";
}

impl HeaderName {
    /// Parses a header name: a token, or a one-letter compact form (RFC 3261 §7.3.3).
    pub fn new(name: &str) -> Result<Self, ValueError> {
        if !is_token(name) {
            return Err(ValueError("header name is not a token"));
        }
        let mut chars = name.chars();
        if let (Some(c), None) = (chars.next(), chars.next()) {
            let c = c.to_ascii_lowercase();
            if let Some((full, _, _)) = KNOWN.iter().find(|(_, compact, _)| *compact == Some(c)) {
                return Ok(Self(Cow::Borrowed(full)));
            }
        }
        Ok(
            match KNOWN.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(name)) {
                Some((full, _, _)) => Self(Cow::Borrowed(full)),
                None => Self(Cow::Owned(name.to_owned())),
            },
        )
    }

    /// The name (canonical spelling for known headers).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The compact form, if the header has one.
    pub fn compact_form(&self) -> Option<char> {
        KNOWN
            .iter()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(&self.0))
            .and_then(|(_, c, _)| *c)
    }

    /// Whether the header's grammar is a comma-separated list, so that `Via: a, b` is two
    /// values. Unknown headers (including `X-`) are treated as single values.
    pub fn is_list(&self) -> bool {
        KNOWN
            .iter()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(&self.0))
            .is_some_and(|(_, _, list)| *list)
    }

    /// Headers whose values are credentials and must not be logged.
    pub(crate) fn is_sensitive(&self) -> bool {
        *self == Self::AUTHORIZATION || *self == Self::PROXY_AUTHORIZATION
    }
}

impl PartialEq for HeaderName {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}
impl Eq for HeaderName {}

impl core::hash::Hash for HeaderName {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        for b in self.0.bytes() {
            state.write_u8(b.to_ascii_lowercase());
        }
    }
}

impl fmt::Debug for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One header line: a name and its (unfolded, trimmed) value.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    name: HeaderName,
    value: String,
}

impl Header {
    /// The name.
    pub fn name(&self) -> &HeaderName {
        &self.name
    }
    /// The value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.is_sensitive() {
            write!(f, "{}: <redacted>", self.name)
        } else {
            write!(f, "{}: {}", self.name, self.value)
        }
    }
}

/// The headers of a message, in order. `Content-Length` is not stored: it is derived from the
/// body when the message is serialized.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<Header>,
}

/// Line breaks in a value would let a caller inject headers; they become spaces.
fn clean_value(value: &str) -> String {
    let mut v: String = value
        .chars()
        .map(|c| {
            if c == '\r' || c == '\n' || c == '\0' {
                ' '
            } else {
                c
            }
        })
        .collect();
    let trimmed = v.trim();
    if trimmed.len() != v.len() {
        v = trimmed.to_owned();
    }
    v
}

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of header lines.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no header lines.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// All header lines in order.
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.entries.iter()
    }

    /// The first line's value for `name`.
    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.entries
            .iter()
            .find(|h| h.name == *name)
            .map(|h| h.value.as_str())
    }

    /// Every line's value for `name`, unsplit.
    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |h| h.name == *name)
            .map(|h| h.value.as_str())
    }

    /// Every value for `name`: lines in order, and for list headers each line split on commas
    /// outside quotes and angle brackets.
    pub fn values<'a>(&'a self, name: &'a HeaderName) -> Vec<&'a str> {
        let list = name.is_list();
        let mut out = Vec::new();
        for v in self.get_all(name) {
            if list {
                out.extend(
                    split_outside_quotes(v, b',')
                        .into_iter()
                        .map(str::trim)
                        .filter(|s| !s.is_empty()),
                );
            } else {
                out.push(v);
            }
        }
        out
    }

    /// Whether any line has this name.
    pub fn contains(&self, name: &HeaderName) -> bool {
        self.entries.iter().any(|h| h.name == *name)
    }

    /// Appends a line. CR/LF in the value are replaced by spaces.
    pub fn push(&mut self, name: HeaderName, value: impl AsRef<str>) {
        self.entries.push(Header {
            name,
            value: clean_value(value.as_ref()),
        });
    }

    /// Inserts a line before all others with the same name (or at the end when there are none
    /// and `name` is not Via; Via goes first).
    pub fn push_front(&mut self, name: HeaderName, value: impl AsRef<str>) {
        let pos = self.entries.iter().position(|h| h.name == name).unwrap_or(
            if name == HeaderName::VIA {
                0
            } else {
                self.entries.len()
            },
        );
        self.entries.insert(
            pos,
            Header {
                name,
                value: clean_value(value.as_ref()),
            },
        );
    }

    /// Replaces every line named `name` by one line with `value`, at the first one's place.
    pub fn set(&mut self, name: HeaderName, value: impl AsRef<str>) {
        let value = clean_value(value.as_ref());
        match self.entries.iter().position(|h| h.name == name) {
            Some(pos) => {
                if let Some(h) = self.entries.get_mut(pos) {
                    h.value = value;
                }
                let mut i = 0;
                self.entries.retain(|h| {
                    let keep = i <= pos || h.name != name;
                    i += 1;
                    keep
                });
            }
            None => self.entries.push(Header { name, value }),
        }
    }

    /// Removes every line named `name`.
    pub fn remove(&mut self, name: &HeaderName) {
        self.entries.retain(|h| h.name != *name);
    }

    /// Replaces the first value of a list header (e.g. the top Via) and keeps the rest.
    pub fn replace_first_value(&mut self, name: &HeaderName, value: impl AsRef<str>) {
        let value = clean_value(value.as_ref());
        let Some(h) = self.entries.iter_mut().find(|h| h.name == *name) else {
            self.entries.push(Header {
                name: name.clone(),
                value,
            });
            return;
        };
        let rest: Vec<String> = split_outside_quotes(&h.value, b',')
            .into_iter()
            .skip(1)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        h.value = if rest.is_empty() {
            value
        } else {
            format!("{value}, {}", rest.join(", "))
        };
    }

    /// Removes the first value of a list header (dropping the line if it was the only value).
    pub fn remove_first_value(&mut self, name: &HeaderName) {
        let Some(pos) = self.entries.iter().position(|h| h.name == *name) else {
            return;
        };
        let Some(h) = self.entries.get_mut(pos) else {
            return;
        };
        let rest: Vec<String> = split_outside_quotes(&h.value, b',')
            .into_iter()
            .skip(1)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        if rest.is_empty() {
            self.entries.remove(pos);
        } else {
            h.value = rest.join(", ");
        }
    }

    /// Copies every line named `name` from `other`, appending them in order.
    pub fn copy_from(&mut self, other: &Self, name: &HeaderName) {
        for h in other.entries.iter().filter(|h| h.name == *name) {
            self.entries.push(h.clone());
        }
    }

    /// Parses the first value of `name` as `T`.
    pub fn typed<T: HeaderValue>(&self, name: &HeaderName) -> Result<Option<T>, HeaderError> {
        self.values(name)
            .first()
            .map(|v| T::parse_value(v).map_err(|reason| HeaderError::invalid(name, reason)))
            .transpose()
    }

    /// Parses every value of `name` as `T`.
    pub fn typed_all<T: HeaderValue>(&self, name: &HeaderName) -> Result<Vec<T>, HeaderError> {
        self.values(name)
            .into_iter()
            .map(|v| T::parse_value(v).map_err(|reason| HeaderError::invalid(name, reason)))
            .collect()
    }

    /// Parses the single value of a required single-valued header.
    pub fn required<T: HeaderValue>(&self, name: &HeaderName) -> Result<T, HeaderError> {
        let mut lines = self.get_all(name);
        let first = lines
            .next()
            .ok_or_else(|| HeaderError::Missing(name.clone()))?;
        if lines.next().is_some() {
            return Err(HeaderError::Duplicate(name.clone()));
        }
        T::parse_value(first).map_err(|reason| HeaderError::invalid(name, reason))
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Result<&str, HeaderError> {
        let mut lines = self.get_all(&HeaderName::CALL_ID);
        let id = lines
            .next()
            .ok_or(HeaderError::Missing(HeaderName::CALL_ID))?;
        if lines.next().is_some() {
            return Err(HeaderError::Duplicate(HeaderName::CALL_ID));
        }
        if id.is_empty() || id.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(HeaderError::invalid(
                &HeaderName::CALL_ID,
                ValueError("Call-ID must be one word without whitespace"),
            ));
        }
        Ok(id)
    }

    /// The CSeq.
    pub fn cseq(&self) -> Result<CSeq, HeaderError> {
        self.required(&HeaderName::CSEQ)
    }

    /// The From header.
    pub fn from(&self) -> Result<NameAddr, HeaderError> {
        self.required(&HeaderName::FROM)
    }

    /// The To header.
    pub fn to(&self) -> Result<NameAddr, HeaderError> {
        self.required(&HeaderName::TO)
    }

    /// The topmost Via.
    pub fn top_via(&self) -> Result<Via, HeaderError> {
        self.typed(&HeaderName::VIA)?
            .ok_or(HeaderError::Missing(HeaderName::VIA))
    }

    /// Every Via, topmost first.
    pub fn vias(&self) -> Result<Vec<Via>, HeaderError> {
        self.typed_all(&HeaderName::VIA)
    }

    /// Every Contact value.
    pub fn contacts(&self) -> Result<Vec<Contact>, HeaderError> {
        self.typed_all(&HeaderName::CONTACT)
    }

    /// Max-Forwards, if present.
    pub fn max_forwards(&self) -> Result<Option<MaxForwards>, HeaderError> {
        match self.get_all(&HeaderName::MAX_FORWARDS).count() {
            0 => Ok(None),
            1 => self.required(&HeaderName::MAX_FORWARDS).map(Some),
            _ => Err(HeaderError::Duplicate(HeaderName::MAX_FORWARDS)),
        }
    }

    /// Custom `X-` headers in order, as `(name, value)` (Twilio passes them to the webhook as
    /// `SipHeader_X-…`).
    pub fn x_headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .filter(|h| {
                h.name
                    .as_str()
                    .get(..2)
                    .is_some_and(|p| p.eq_ignore_ascii_case("x-"))
            })
            .map(|h| (h.name.as_str(), h.value.as_str()))
    }

    /// The Content-Type (media type and parameters as written), if present.
    pub fn content_type(&self) -> Option<&str> {
        self.get(&HeaderName::CONTENT_TYPE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive_and_compact_forms_expand() {
        assert_eq!(HeaderName::new("v").unwrap().as_str(), "Via");
        assert_eq!(HeaderName::new("I").unwrap().as_str(), "Call-ID");
        assert_eq!(HeaderName::new("call-id").unwrap(), HeaderName::CALL_ID);
        assert_eq!(HeaderName::new("cseq").unwrap().as_str(), "CSeq");
        assert_eq!(
            HeaderName::new("X-Acme-Thing").unwrap().as_str(),
            "X-Acme-Thing"
        );
        assert_eq!(
            HeaderName::new("x-acme-thing").unwrap(),
            HeaderName::new("X-ACME-THING").unwrap()
        );
        assert_eq!(HeaderName::CONTACT.compact_form(), Some('m'));
        assert!(HeaderName::new("Bad Name").is_err());
        assert!(HeaderName::new("").is_err());
    }

    #[test]
    fn list_values_split_across_lines() {
        let mut h = Headers::new();
        h.push(
            HeaderName::VIA,
            "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2",
        );
        h.push(HeaderName::VIA, "SIP/2.0/TCP c;branch=z9hG4bK3");
        h.push(HeaderName::new("X-List").unwrap(), "a, b");
        assert_eq!(h.x_headers().collect::<Vec<_>>(), [("X-List", "a, b")]);
        assert_eq!(h.values(&HeaderName::VIA).len(), 3);
        assert_eq!(h.values(&HeaderName::new("x-list").unwrap()), ["a, b"]);
        h.replace_first_value(&HeaderName::VIA, "SIP/2.0/UDP z;branch=z9hG4bK0");
        assert_eq!(
            h.get(&HeaderName::VIA),
            Some("SIP/2.0/UDP z;branch=z9hG4bK0, SIP/2.0/UDP b;branch=z9hG4bK2")
        );
        h.remove_first_value(&HeaderName::VIA);
        h.remove_first_value(&HeaderName::VIA);
        assert_eq!(
            h.values(&HeaderName::VIA),
            ["SIP/2.0/TCP c;branch=z9hG4bK3"]
        );
    }

    #[test]
    fn injection_is_neutralized_and_set_replaces() {
        let mut h = Headers::new();
        h.push(HeaderName::new("X-A").unwrap(), "v\r\nVia: evil");
        assert_eq!(
            h.get(&HeaderName::new("X-A").unwrap()),
            Some("v  Via: evil")
        );
        h.push(HeaderName::TO, "<sip:a@b>");
        h.push(HeaderName::TO, "<sip:c@d>");
        h.set(HeaderName::TO, "<sip:e@f>");
        assert_eq!(
            h.get_all(&HeaderName::TO).collect::<Vec<_>>(),
            ["<sip:e@f>"]
        );
        let mut auth = Headers::new();
        auth.push(HeaderName::AUTHORIZATION, "Digest response=\"secret\"");
        assert!(!format!("{auth:?}").contains("secret"));
    }
}
