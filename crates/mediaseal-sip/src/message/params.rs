//! `;name=value` parameter lists, shared by SIP URIs, name-addr headers and Via.
//!
//! Names compare case-insensitively (RFC 3261 §7.3.1, §19.1.4). Values are kept as written,
//! quotes included, so a parameter list serializes back to what was parsed.

use core::fmt;

use super::ValueError;

/// One parameter: a name and an optional value (`;lr` has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The name as written.
    pub name: String,
    /// The value as written (quotes included for quoted strings), or `None` for a flag.
    pub value: Option<String>,
}

/// An ordered parameter list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<Param>);

impl Params {
    /// An empty list.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The parameters in order.
    pub fn iter(&self) -> impl Iterator<Item = &Param> {
        self.0.iter()
    }

    /// Looks a parameter up by name (case-insensitive): `None` if absent, `Some(None)` for a
    /// flag, `Some(Some(value))` otherwise.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value.as_deref())
    }

    /// The value of a parameter, if present and not a flag.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).flatten()
    }

    /// Whether a parameter is present (with or without a value).
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets a parameter, replacing an existing one of the same name in place or appending.
    /// Characters that would break the list (`;`, `,`, whitespace, `<`, `>`, `?`) are removed
    /// from unquoted values, so a caller cannot inject parameters or headers.
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(sanitize_value);
        let name = sanitize_token(name);
        if let Some(p) = self
            .0
            .iter_mut()
            .find(|p| p.name.eq_ignore_ascii_case(&name))
        {
            p.value = value;
        } else {
            self.0.push(Param { name, value });
        }
    }

    /// Removes every parameter with this name.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|p| !p.name.eq_ignore_ascii_case(name));
    }

    /// Parses `;a=b;c` (the leading `;` is optional). Whitespace around `;` and `=` is allowed.
    pub(crate) fn parse(text: &str, what: &'static str) -> Result<Self, ValueError> {
        let text = text.trim();
        let text = text.strip_prefix(';').unwrap_or(text);
        let mut out = Vec::new();
        if text.trim().is_empty() {
            return Ok(Self(out));
        }
        for part in split_outside_quotes(text, b';') {
            let part = part.trim();
            let (name, value) = match part.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (part, None),
            };
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(ValueError(what));
            }
            if let Some(v) = value
                && (v.is_empty() || !is_param_value(v))
            {
                return Err(ValueError(what));
            }
            out.push(Param {
                name: name.to_owned(),
                value: value.map(str::to_owned),
            });
        }
        Ok(Self(out))
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.0 {
            match &p.value {
                Some(v) => write!(f, ";{}={v}", p.name)?,
                None => write!(f, ";{}", p.name)?,
            }
        }
        Ok(())
    }
}

/// A token or quoted string with no whitespace outside the quotes.
fn is_param_value(v: &str) -> bool {
    if v.starts_with('"') {
        return quoted_string_end(v) == Some(v.len());
    }
    // token / host (IPv6 references use brackets and colons).
    v.bytes()
        .all(|b| is_token_byte(b) || matches!(b, b'[' | b']' | b':' | b'/' | b'@'))
}

fn sanitize_token(s: &str) -> String {
    let t: String = s
        .chars()
        .filter(|c| c.is_ascii() && is_token_byte(*c as u8))
        .collect();
    if t.is_empty() { "x".to_owned() } else { t }
}

fn sanitize_value(s: &str) -> String {
    if s.starts_with('"') && quoted_string_end(s) == Some(s.len()) {
        return s.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    }
    s.chars()
        .filter(|c| {
            !c.is_whitespace() && !c.is_control() && !matches!(c, ';' | ',' | '<' | '>' | '?' | '"')
        })
        .collect()
}

/// RFC 3261 `token` characters.
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// Whether `s` is a non-empty token.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// If `s` starts with a quoted string, the byte index just past its closing quote.
pub(crate) fn quoted_string_end(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            b'\r' | b'\n' => return None,
            _ => i += 1,
        }
    }
    None
}

/// Splits on `sep` outside double quotes and angle brackets.
pub(crate) fn split_outside_quotes(s: &str, sep: u8) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut angle = 0usize;
    let bytes = s.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if in_quotes {
            match b {
                b'\\' => i += 1,
                b'"' => in_quotes = false,
                _ => {}
            }
        } else if b == b'"' {
            in_quotes = true;
        } else if b == b'<' {
            angle += 1;
        } else if b == b'>' {
            angle = angle.saturating_sub(1);
        } else if b == sep && angle == 0 {
            out.push(s.get(start..i).unwrap_or_default());
            start = i + 1;
        }
        i += 1;
    }
    out.push(s.get(start..).unwrap_or_default());
    out
}

/// Quotes `text` as an RFC 3261 quoted-string, escaping `"` and `\` and dropping line breaks.
pub(crate) fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            c if c.is_ascii_control() && c != '\t' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Removes the quotes and escapes of a quoted string (or returns a token unchanged).
pub(crate) fn unquote(text: &str) -> String {
    let Some(inner) = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .filter(|_| text.len() >= 2)
    else {
        return text.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut escaped = false;
    for c in inner.chars() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_get_set_display() {
        let mut p = Params::parse(";transport=TLS; lr ;X=\"a;b\"", "params").unwrap();
        assert_eq!(p.get("TRANSPORT"), Some(Some("TLS")));
        assert_eq!(p.get("lr"), Some(None));
        assert_eq!(p.value("x"), Some("\"a;b\""));
        p.set("ttl", Some("1;evil=2"));
        assert_eq!(p.to_string(), ";transport=TLS;lr;X=\"a;b\";ttl=1evil=2");
        p.remove("lr");
        assert!(!p.contains("lr"));
    }

    #[test]
    fn rejects_bad_names_and_values() {
        assert!(Params::parse(";=x", "p").is_err());
        assert!(Params::parse(";a=", "p").is_err());
        assert!(Params::parse(";a=b c", "p").is_err());
        assert!(Params::parse(";a=\"open", "p").is_err());
    }

    #[test]
    fn quoting_round_trips() {
        let q = quote("say \"hi\" \\ there");
        assert_eq!(quoted_string_end(&q), Some(q.len()));
        assert_eq!(unquote(&q), "say \"hi\" \\ there");
    }

    #[test]
    fn splits_outside_quotes_and_brackets() {
        let parts = split_outside_quotes("\"a, b\" <sip:x,y@h>, <sip:z@h>", b',');
        assert_eq!(parts, ["\"a, b\" <sip:x,y@h>", " <sip:z@h>"]);
    }
}
