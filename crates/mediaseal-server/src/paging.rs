//! List paging: newest first, opaque keyset tokens, and the two envelope styles.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mediaseal_store::model::Cursor;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::error::ApiError;
use crate::params::Params;

/// What a list request asked for.
#[derive(Debug, Clone)]
pub struct PageRequest {
    /// Items per page.
    pub size: i64,
    /// Page number, as the client counts.
    pub page: i64,
    /// Where the page starts, if not the first.
    pub cursor: Option<Cursor>,
}

impl PageRequest {
    /// Reads `PageSize` (1..=`max`, default 50), `Page` and `PageToken`.
    pub fn from_params(params: &Params, max: i64) -> Result<Self, ApiError> {
        let size = params.int_in("PageSize", 1..=max)?.unwrap_or(50.min(max));
        let page = params.int_in("Page", 0..=i64::from(i32::MAX))?.unwrap_or(0);
        let cursor = match params.get("PageToken") {
            None | Some("") => None,
            Some(token) => Some(decode_token(token).ok_or_else(|| {
                ApiError::bad_param("PageToken", "not a token this server issued")
            })?),
        };
        Ok(Self { size, page, cursor })
    }

    /// Rows to ask the store for: one more than a page, to learn whether a next page exists.
    pub fn fetch_limit(&self) -> i64 {
        self.size + 1
    }
}

fn encode_token(cursor: &Cursor) -> String {
    format!(
        "PT{}",
        URL_SAFE_NO_PAD.encode(format!("{}:{}", cursor.date_created, cursor.sid))
    )
}

fn decode_token(token: &str) -> Option<Cursor> {
    let raw = URL_SAFE_NO_PAD.decode(token.strip_prefix("PT")?).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (date, sid) = text.split_once(':')?;
    if sid.len() != 34 || !sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    Some(Cursor {
        date_created: date.parse().ok()?,
        sid: sid.to_owned(),
    })
}

/// A page of results: the items shown and, when more exist, the cursor after them.
#[derive(Debug)]
pub struct Page<T> {
    /// Items on this page.
    pub items: Vec<T>,
    /// Cursor for the next page.
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// Cuts `rows` (fetched with [`PageRequest::fetch_limit`]) into a page.
    pub fn cut(mut rows: Vec<T>, req: &PageRequest, cursor_of: impl Fn(&T) -> Cursor) -> Self {
        let more = rows.len() as i64 > req.size;
        rows.truncate(req.size as usize);
        let next = if more {
            rows.last().map(&cursor_of)
        } else {
            None
        };
        Self { items: rows, next }
    }
}

/// Query string of the other parameters a list was filtered by, to carry into page links.
fn carried(params: &Params, keep: &[&str]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for k in keep {
        for v in params.all(k) {
            ser.append_pair(k, v);
        }
    }
    let s = ser.finish();
    if s.is_empty() { s } else { format!("&{s}") }
}

/// Writes the `"name" => value` entries (given in alphabetical order) into `$map`, with `$items`
/// under `$key` (never one of the names) in its alphabetical place among them: the order clients
/// have always seen the envelope keys in.
macro_rules! entries_around_list {
    ($map:ident, $key:expr, $items:expr; $($name:literal => $value:expr),+ $(,)?) => {{
        let key: &str = $key;
        let mut list = Some($items);
        $(
            if key < $name
                && let Some(items) = list.take()
            {
                $map.serialize_entry(key, items)?;
            }
            $map.serialize_entry($name, $value)?;
        )+
        if let Some(items) = list {
            $map.serialize_entry(key, items)?;
        }
    }};
}

/// An api/2010-04-01 list: one list key (`recordings`, `accounts`, …) beside flat paging fields
/// with relative URIs.
///
/// It serializes as one JSON object whose keys are in alphabetical order, list key included.
#[derive(Debug)]
pub struct Envelope2010<T> {
    /// The key the list is under.
    pub key: &'static str,
    /// The rendered items.
    pub items: Vec<T>,
    /// Index of the last item shown (of the first, when none are).
    pub end: i64,
    /// This list's first page.
    pub first_page_uri: String,
    /// The next page, when more exist.
    pub next_page_uri: Option<String>,
    /// Page number.
    pub page: i64,
    /// Items per page.
    pub page_size: i64,
    /// Always null: paging runs forwards only.
    pub previous_page_uri: Option<String>,
    /// Index of the first item shown.
    pub start: i64,
    /// This page.
    pub uri: String,
}

impl<T: Serialize> Serialize for Envelope2010<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(9))?;
        entries_around_list!(map, self.key, &self.items;
            "end" => &self.end,
            "first_page_uri" => &self.first_page_uri,
            "next_page_uri" => &self.next_page_uri,
            "page" => &self.page,
            "page_size" => &self.page_size,
            "previous_page_uri" => &self.previous_page_uri,
            "start" => &self.start,
            "uri" => &self.uri,
        );
        map.end()
    }
}

/// A v1/v2 list: the list under `key` beside a `meta` object with absolute URLs.
///
/// It serializes as one JSON object whose two keys are in alphabetical order.
#[derive(Debug)]
pub struct EnvelopeV1<T> {
    /// The rendered items (under `meta.key`).
    pub items: Vec<T>,
    /// Where the list is and how to go on.
    pub meta: PageMeta,
}

/// The `meta` object of a v1/v2 list, fields in alphabetical order.
#[derive(Debug, Serialize)]
pub struct PageMeta {
    /// This list's first page.
    pub first_page_url: String,
    /// The key the list is under.
    pub key: &'static str,
    /// The next page, when more exist.
    pub next_page_url: Option<String>,
    /// Page number.
    pub page: i64,
    /// Items per page.
    pub page_size: i64,
    /// Always null: paging runs forwards only.
    pub previous_page_url: Option<String>,
    /// This page.
    pub url: String,
}

impl<T: Serialize> Serialize for EnvelopeV1<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        entries_around_list!(map, self.meta.key, &self.items; "meta" => &self.meta);
        map.end()
    }
}

/// The api/2010-04-01 envelope of `page`, each item rendered by `render`.
pub fn envelope_2010<T, R>(
    key: &'static str,
    path: &str,
    page: &Page<T>,
    req: &PageRequest,
    params: &Params,
    filters: &[&str],
    render: impl Fn(&T) -> R,
) -> Envelope2010<R> {
    let extra = carried(params, filters);
    let size = req.size;
    let this_token = req
        .cursor
        .as_ref()
        .map(|c| format!("&PageToken={}", encode_token(c)))
        .unwrap_or_default();
    let start = req.page * size;
    let count = page.items.len() as i64;
    Envelope2010 {
        key,
        items: page.items.iter().map(render).collect(),
        end: if count == 0 { start } else { start + count - 1 },
        first_page_uri: format!("{path}?PageSize={size}&Page=0{extra}"),
        next_page_uri: page.next.as_ref().map(|c| {
            format!(
                "{path}?PageSize={size}&Page={}&PageToken={}{extra}",
                req.page + 1,
                encode_token(c)
            )
        }),
        page: req.page,
        page_size: size,
        previous_page_uri: None,
        start,
        uri: format!(
            "{path}?PageSize={size}&Page={}{this_token}{extra}",
            req.page
        ),
    }
}

/// The v1/v2 envelope of `page`, each item rendered by `render`.
#[expect(
    clippy::too_many_arguments,
    reason = "the 2010 envelope's arguments plus the base URL; a struct would only rename them"
)]
pub fn envelope_v1<T, R>(
    key: &'static str,
    base_url: &str,
    path: &str,
    page: &Page<T>,
    req: &PageRequest,
    params: &Params,
    filters: &[&str],
    render: impl Fn(&T) -> R,
) -> EnvelopeV1<R> {
    let extra = carried(params, filters);
    let size = req.size;
    let this_token = req
        .cursor
        .as_ref()
        .map(|c| format!("&PageToken={}", encode_token(c)))
        .unwrap_or_default();
    EnvelopeV1 {
        items: page.items.iter().map(render).collect(),
        meta: PageMeta {
            first_page_url: format!("{base_url}{path}?PageSize={size}&Page=0{extra}"),
            key,
            next_page_url: page.next.as_ref().map(|c| {
                format!(
                    "{base_url}{path}?PageSize={size}&Page={}&PageToken={}{extra}",
                    req.page + 1,
                    encode_token(c)
                )
            }),
            page: req.page,
            page_size: size,
            previous_page_url: None,
            url: format!(
                "{base_url}{path}?PageSize={size}&Page={}{this_token}{extra}",
                req.page
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let c = Cursor {
            date_created: 123,
            sid: "RE0123456789abcdef0123456789abcdef".into(),
        };
        assert_eq!(decode_token(&encode_token(&c)), Some(c));
        assert!(decode_token("PTzzz").is_none());
        assert!(decode_token("nope").is_none());
    }

    /// The list key sits among the paging fields in alphabetical order, as when the envelopes
    /// were built as `serde_json` maps: clients have always seen them that way.
    #[test]
    fn envelope_keys_are_in_alphabetical_order() {
        let req = PageRequest {
            size: 2,
            page: 0,
            cursor: None,
        };
        let page = Page::cut(vec![1_i64], &req, |_| unreachable!());
        let params = Params::from_query(None);

        let e = envelope_2010("recordings", "/p.json", &page, &req, &params, &[], |i| *i);
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"end":0,"first_page_uri":"/p.json?PageSize=2&Page=0","next_page_uri":null,"page":0,"page_size":2,"previous_page_uri":null,"recordings":[1],"start":0,"uri":"/p.json?PageSize=2&Page=0"}"#
        );
        let e = envelope_2010("accounts", "/p.json", &page, &req, &params, &[], |i| *i);
        assert!(
            serde_json::to_string(&e)
                .unwrap()
                .starts_with(r#"{"accounts":[1],"end":0,"#)
        );

        let meta = r#"{"first_page_url":"http://h/v1/X?PageSize=2&Page=0","key":"KEY","next_page_url":null,"page":0,"page_size":2,"previous_page_url":null,"url":"http://h/v1/X?PageSize=2&Page=0"}"#;
        let v1 = |key| {
            let e = envelope_v1(key, "http://h", "/v1/X", &page, &req, &params, &[], |i| *i);
            serde_json::to_string(&e).unwrap()
        };
        assert_eq!(
            v1("compositions"),
            format!(
                r#"{{"compositions":[1],"meta":{}}}"#,
                meta.replace("KEY", "compositions")
            )
        );
        assert_eq!(
            v1("rooms"),
            format!(r#"{{"meta":{},"rooms":[1]}}"#, meta.replace("KEY", "rooms"))
        );
    }
}
