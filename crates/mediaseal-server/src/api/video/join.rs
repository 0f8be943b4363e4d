//! The room join page, `GET /rooms/join` and its script `GET /rooms/join.js` (docs/ROOMS.md,
//! "The join page"): what a participant opens first. It joins a group room through the
//! signalling WebSocket ([`super::connect`]) with the browser's camera and microphone, taking
//! the room and the Access Token from the URL fragment (`#room=…&token=…`, which never reaches
//! a server), the query, or a form.
//!
//! Both files are compiled in and served as they are, unauthenticated: the token is the
//! participant's credential and is checked by the WebSocket, not here. The responses carry a
//! strict Content-Security-Policy (only this origin's script, no inline code, no other
//! origins), no referrer (a token in the query must not leak to anything the page links to),
//! and no caching of the page itself.

use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("join.html");
const SCRIPT: &str = include_str!("join.js");

/// Script from this origin only; the WebSocket to this origin only (CSP 3 `'self'` covers
/// `ws:`/`wss:` to the same host); camera and local streams in `<video>`; nothing else.
const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
    media-src 'self' mediastream: blob:; img-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// The headers both responses carry.
fn locked_down(content_type: &'static str, body: &'static str) -> Response {
    let headers: [(HeaderName, HeaderValue); 7] = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static("camera=(self), microphone=(self), display-capture=()"),
        ),
    ];
    (headers, body).into_response()
}

/// `GET /rooms/join`.
pub(crate) async fn page() -> Response {
    locked_down("text/html; charset=utf-8", PAGE)
}

/// `GET /rooms/join.js`.
pub(crate) async fn script() -> Response {
    locked_down("text/javascript; charset=utf-8", SCRIPT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_script() {
        // The CSP forbids inline code: the page must not carry any.
        assert!(PAGE.contains(r#"<script src="/rooms/join.js" defer></script>"#));
        assert_eq!(PAGE.matches("<script").count(), 1);
        assert!(!PAGE.contains(" on"), "no inline event handlers");
        assert!(!PAGE.contains("style="), "no inline styles");
        assert!(!SCRIPT.contains("innerHTML"), "text only, never markup");
    }
}
