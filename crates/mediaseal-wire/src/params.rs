//! Form and query parameters as Twilio clients send them: form-urlencoded, repeated keys for
//! lists, booleans as `true`/`false`.

/// A parameter that is missing or does not parse. Its text is the sentence the API answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// A required parameter is absent or empty.
    #[error("Missing required parameter {name} in the post body")]
    Missing {
        /// The parameter.
        name: String,
    },
    /// A parameter has a value it cannot take.
    #[error("Invalid parameter {name}: {why}")]
    Invalid {
        /// The parameter.
        name: String,
        /// What is wrong with it.
        why: String,
    },
}

impl ParamError {
    /// `name` has a value it cannot take, because `why`.
    pub fn invalid(name: &str, why: impl core::fmt::Display) -> Self {
        Self::Invalid {
            name: name.to_owned(),
            why: why.to_string(),
        }
    }

    /// `name` is missing.
    pub fn missing(name: &str) -> Self {
        Self::Missing {
            name: name.to_owned(),
        }
    }

    /// The parameter at fault.
    pub fn name(&self) -> &str {
        match self {
            Self::Missing { name } | Self::Invalid { name, .. } => name,
        }
    }
}

/// Longest URL a parameter may hold.
pub const MAX_URL_LEN: usize = 2048;

/// `v` as an absolute http(s) URL with a host, or why not (quoting at most 100 characters of it).
fn parse_url(v: &str) -> Result<url::Url, String> {
    let shown = || quoted(v, 100);
    if v.len() > MAX_URL_LEN {
        return Err(format!("{} is longer than {MAX_URL_LEN} bytes", shown()));
    }
    // The URL standard drops tabs and newlines silently; a URL with any whitespace is a mistake.
    if v.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(format!("{} contains whitespace", shown()));
    }
    let not_absolute = || format!("{} is not an absolute http or https URL", shown());
    // The URL standard reads `http:host` and `https:///host` as `https://host/`; a Twilio
    // client means `scheme://host`, so anything else is refused before parsing.
    let lower = v.get(..8).unwrap_or(v).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &v[8..]
    } else if lower.starts_with("http://") {
        &v[7..]
    } else {
        return Err(not_absolute());
    };
    if rest.is_empty() || rest.starts_with(['/', '\\']) {
        return Err(format!("{} has no host", shown()));
    }
    let url = url::Url::parse(v).map_err(|_| not_absolute())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(not_absolute());
    }
    match url.host_str() {
        Some(h) if !h.is_empty() => Ok(url),
        _ => Err(format!("{} has no host", shown())),
    }
}

/// `'v'`, cut to `max` characters with `…`: error messages quote input, and input can be
/// megabytes.
fn quoted(v: &str, max: usize) -> String {
    match v.char_indices().nth(max) {
        None => format!("'{v}'"),
        Some((cut, _)) => format!("'{}…'", &v[..cut]),
    }
}

/// Parameters in arrival order, repeated keys kept.
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses a form body or query string.
    pub fn parse(raw: &[u8]) -> Self {
        Self(
            form_urlencoded::parse(raw)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// Parses the query string of a request.
    pub fn from_query(query: Option<&str>) -> Self {
        Self::parse(query.unwrap_or("").as_bytes())
    }

    /// Parses a form body; other content types carry no parameters.
    pub fn from_form(body: &[u8]) -> Self {
        Self::parse(body)
    }

    /// The last value of `name` (later values win, as in most form handling).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// True when `name` is present.
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    /// A required, non-empty value.
    pub fn required(&self, name: &str) -> Result<&str, ParamError> {
        match self.get(name) {
            Some(v) if !v.trim().is_empty() => Ok(v),
            _ => Err(ParamError::missing(name)),
        }
    }

    /// An optional boolean.
    pub fn boolean(&self, name: &str) -> Result<Option<bool>, ParamError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(Some(true)),
                "false" | "0" => Ok(Some(false)),
                _ => Err(ParamError::invalid(
                    name,
                    format!("'{v}' is not true or false"),
                )),
            },
        }
    }

    /// An optional integer within `range`.
    pub fn int_in(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Option<i64>, ParamError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) if range.contains(&n) => Ok(Some(n)),
                _ => Err(ParamError::invalid(
                    name,
                    format!(
                        "'{v}' is not a whole number from {} to {}",
                        range.start(),
                        range.end()
                    ),
                )),
            },
        }
    }

    /// An optional SID with `prefix`.
    pub fn sid(&self, name: &str, prefix: &str) -> Result<Option<&str>, ParamError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) if crate::sid::is_sid(v, prefix) => Ok(Some(v)),
            Some(v) => Err(ParamError::invalid(
                name,
                format!("'{v}' is not a {prefix} SID ({prefix} followed by 32 hex digits)"),
            )),
        }
    }

    /// An optional absolute http or https URL with a host, at most [`MAX_URL_LEN`] bytes. Which
    /// hosts a webhook may reach is the caller's policy; this checks the shape only.
    pub fn url(&self, name: &str) -> Result<Option<&str>, ParamError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(v) => parse_url(v)
                .map(|_| Some(v))
                .map_err(|why| ParamError::invalid(name, why)),
        }
    }

    /// As [`Self::url`], with the parsed URL, for callers that check its host.
    pub fn parsed_url(&self, name: &str) -> Result<Option<(&str, url::Url)>, ParamError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(v) => parse_url(v)
                .map(|u| Some((v, u)))
                .map_err(|why| ParamError::invalid(name, why)),
        }
    }

    /// An optional HTTP method for callbacks.
    pub fn method(&self, name: &str) -> Result<String, ParamError> {
        match self.get(name).map(str::to_ascii_uppercase) {
            None => Ok("POST".to_owned()),
            Some(m) if m == "GET" || m == "POST" => Ok(m),
            Some(m) => Err(ParamError::invalid(
                name,
                format!("'{m}' is not GET or POST"),
            )),
        }
    }

    /// An optional friendly name of at most `max` characters.
    pub fn friendly_name(&self, name: &str, max: usize) -> Result<Option<&str>, ParamError> {
        match self.get(name) {
            Some(v) if v.chars().count() > max => Err(ParamError::invalid(
                name,
                format!("longer than {max} characters"),
            )),
            other => Ok(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_and_types() {
        let p = Params::parse(
            b"E=a&E=b&Flag=true&N=5&Sid=RE0123456789abcdef0123456789abcdef&U=https%3A%2F%2Fx",
        );
        assert_eq!(p.all("E"), vec!["a", "b"]);
        assert_eq!(p.boolean("Flag").unwrap(), Some(true));
        assert_eq!(p.int_in("N", 1..=10).unwrap(), Some(5));
        assert!(p.int_in("N", 6..=10).is_err());
        assert!(p.sid("Sid", "RE").unwrap().is_some());
        assert!(p.sid("Sid", "CA").is_err());
        assert_eq!(p.url("U").unwrap(), Some("https://x"));
        assert!(p.required("Missing").is_err());
    }

    #[test]
    fn urls_are_parsed_whole() {
        let one = |v: &str| {
            let raw = format!(
                "U={}",
                form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
            );
            Params::parse(raw.as_bytes())
                .url("U")
                .map(|u| u.map(str::to_owned))
        };
        for good in [
            "https://example.com",
            "http://example.com:8080/cb?x=1",
            "https://user:pass@example.com/cb",
            "http://127.1/",
        ] {
            assert_eq!(one(good), Ok(Some(good.to_owned())), "{good}");
        }
        for bad in [
            "https://",
            "http://",
            "https:///path",
            "ftp://example.com/",
            "example.com/cb",
            "https://exa mple.com/",
            "https://example.com/\ncb",
            "https://[::1/",
            "javascript:alert(1)",
            "file:///etc/passwd",
        ] {
            assert!(one(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("https://example.com/{}", "a".repeat(5_000_000));
        let e = one(&long).unwrap_err().to_string();
        assert!(
            e.len() < 300,
            "the error echoes the input: {} bytes",
            e.len()
        );
        assert!(e.contains("longer than 2048"), "{e}");
        let e = one(&format!("ftp://{}", "b".repeat(2000)))
            .unwrap_err()
            .to_string();
        assert!(e.len() < 300 && e.contains('…'), "{e}");
    }
}
