//! List paging: newest first, opaque keyset tokens, and the two envelope styles.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mediaseal_store::model::Cursor;
use serde_json::{Map, Value, json};

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

/// The api/2010-04-01 envelope: one list key beside flat paging fields with relative URIs.
pub fn envelope_2010<T>(
    key: &str,
    path: &str,
    page: &Page<T>,
    req: &PageRequest,
    params: &Params,
    filters: &[&str],
    render: impl Fn(&T) -> Value,
) -> Value {
    let extra = carried(params, filters);
    let size = req.size;
    let this_token = req
        .cursor
        .as_ref()
        .map(|c| format!("&PageToken={}", encode_token(c)))
        .unwrap_or_default();
    let uri = format!(
        "{path}?PageSize={size}&Page={}{this_token}{extra}",
        req.page
    );
    let first = format!("{path}?PageSize={size}&Page=0{extra}");
    let next = page.next.as_ref().map(|c| {
        Value::String(format!(
            "{path}?PageSize={size}&Page={}&PageToken={}{extra}",
            req.page + 1,
            encode_token(c)
        ))
    });
    let start = req.page * size;
    let count = page.items.len() as i64;
    let mut obj = Map::new();
    obj.insert(
        key.to_owned(),
        Value::Array(page.items.iter().map(render).collect()),
    );
    obj.insert(
        "end".into(),
        json!(if count == 0 { start } else { start + count - 1 }),
    );
    obj.insert("first_page_uri".into(), json!(first));
    obj.insert("next_page_uri".into(), next.unwrap_or(Value::Null));
    obj.insert("page".into(), json!(req.page));
    obj.insert("page_size".into(), json!(size));
    obj.insert("previous_page_uri".into(), Value::Null);
    obj.insert("start".into(), json!(start));
    obj.insert("uri".into(), json!(uri));
    Value::Object(obj)
}

/// The v1/v2 envelope: the list under `key` and a `meta` object with absolute URLs.
#[expect(
    clippy::too_many_arguments,
    reason = "the 2010 envelope's arguments plus the base URL; a struct would only rename them"
)]
pub fn envelope_v1<T>(
    key: &str,
    base_url: &str,
    path: &str,
    page: &Page<T>,
    req: &PageRequest,
    params: &Params,
    filters: &[&str],
    render: impl Fn(&T) -> Value,
) -> Value {
    let extra = carried(params, filters);
    let size = req.size;
    let this_token = req
        .cursor
        .as_ref()
        .map(|c| format!("&PageToken={}", encode_token(c)))
        .unwrap_or_default();
    let url = format!(
        "{base_url}{path}?PageSize={size}&Page={}{this_token}{extra}",
        req.page
    );
    let first = format!("{base_url}{path}?PageSize={size}&Page=0{extra}");
    let next = page.next.as_ref().map(|c| {
        Value::String(format!(
            "{base_url}{path}?PageSize={size}&Page={}&PageToken={}{extra}",
            req.page + 1,
            encode_token(c)
        ))
    });
    let mut obj = Map::new();
    obj.insert(
        key.to_owned(),
        Value::Array(page.items.iter().map(render).collect()),
    );
    obj.insert(
        "meta".into(),
        json!({
            "page": req.page,
            "page_size": size,
            "first_page_url": first,
            "previous_page_url": null,
            "url": url,
            "next_page_url": next.unwrap_or(Value::Null),
            "key": key,
        }),
    );
    Value::Object(obj)
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
}
