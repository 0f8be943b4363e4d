//! The REST surface, in the shapes of Twilio's API so the official helper libraries work
//! unchanged against it.

pub(crate) mod accounts;
pub(crate) mod auth_tokens;
pub(crate) mod calls;
pub(crate) mod intelligence;
pub(crate) mod notifications;
pub(crate) mod public_keys;
pub(crate) mod recordings;
pub(crate) mod sip;
pub(crate) mod tokens;
pub(crate) mod video;

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use crate::auth::{Principal, authenticate};
use crate::error::ApiError;
use crate::params::Params;
use crate::state::AppState;

/// An authenticated request: who is calling, where from, and the query string.
#[derive(Debug, Clone)]
pub(crate) struct Authed {
    pub(crate) principal: Principal,
    /// Base URL of this service as the client sees it, without a trailing slash.
    pub(crate) base_url: String,
    /// The path requested.
    pub(crate) path: String,
    /// Query parameters.
    pub(crate) query: Params,
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = authenticate(state, &parts.headers).await?;
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.clone(), |o| o.0.clone());
        Ok(Self {
            principal,
            base_url: base_url(state, &parts.headers),
            path: uri.path().to_owned(),
            query: Params::from_query(uri.query()),
        })
    }
}

/// The body length the client announced (`Content-Length`), if it did and it is a number.
pub(crate) fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The service's base URL: the configured public URL, else the request's `Host`.
pub(crate) fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.config.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or(if state.config.tls { "https" } else { "http" });
    format!("{scheme}://{host}")
}

/// Splits `RE….json` into the SID and extension; the SID must have `prefix`, else 404.
pub(crate) fn split_sid<'a>(
    file: &'a str,
    prefix: &str,
    path: &str,
) -> Result<(&'a str, &'a str), ApiError> {
    let (sid, ext) = match file.find('.') {
        Some(dot) => (&file[..dot], &file[dot + 1..]),
        None => (file, ""),
    };
    if crate::sid::is_sid(sid, prefix) {
        Ok((sid, ext))
    } else {
        Err(ApiError::not_found(path))
    }
}

/// Requires the `.json` extension of api/2010-04-01 resource URIs.
pub(crate) fn json_sid<'a>(file: &'a str, prefix: &str, path: &str) -> Result<&'a str, ApiError> {
    match split_sid(file, prefix, path)? {
        (sid, "json") => Ok(sid),
        _ => Err(ApiError::not_found(path)),
    }
}
