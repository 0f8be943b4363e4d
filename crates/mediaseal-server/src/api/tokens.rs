//! Network Traversal Service tokens (api/2010-04-01 `Tokens`): short-lived STUN/TURN credentials
//! in Twilio's shape, so `client.tokens.create()` works unchanged.
//!
//! The credentials follow coturn's TURN REST API scheme (`use-auth-secret`): the username is
//! `<expiry unix time>:<AccountSid>` and the credential is base64(HMAC-SHA1(secret, username)).
//! coturn recomputes it with the same shared secret, so nothing is stored here and a credential
//! stops working at its expiry without anyone revoking it.
//!
//! A server with no `--turn-url` answers 503 (code 20503) rather than an empty `ice_servers`: a
//! Twilio client never sees an empty list, and an empty one would fail later and obscurely, in
//! ICE. A STUN-only server answers the STUN URLs, with `username` and `password` null when no
//! secret is set (STUN needs none).

use std::sync::Arc;

use aws_lc_rs::hmac;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use serde::Serialize;
use zeroize::Zeroizing;

use super::Authed;
use crate::auth::accessible_account;
use crate::clock::rfc2822;
use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::state::AppState;

/// Twilio's default and longest credential lifetime, in seconds (24 hours).
pub const TWILIO_MAX_TTL: u32 = 86_400;

/// The routes of this resource.
pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new().route("/2010-04-01/Accounts/{account}/Tokens.json", post(create))
}

/// The shared secret coturn's `static-auth-secret` holds. Zeroized when dropped; never shown.
pub(crate) struct TurnSecret(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for TurnSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TurnSecret(…)")
    }
}

/// One STUN or TURN URL handed to clients (RFC 7064 / RFC 7065).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceUrl {
    text: String,
    /// `turn:` or `turns:`: clients authenticate with the minted credentials.
    relay: bool,
}

impl IceUrl {
    /// The URL as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Why the TURN settings were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TurnConfigError {
    /// A URL is not `stun:`, `stuns:`, `turn:` or `turns:` followed by a host.
    #[error(
        "TURN URL '{url}' is not valid: {why}; write e.g. turn:turn.example.com:3478?transport=udp, \
         turns:turn.example.com:5349?transport=tcp or stun:turn.example.com:3478"
    )]
    BadUrl {
        /// The URL as given (URLs carry no secrets).
        url: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A `turn:`/`turns:` URL without a shared secret to sign credentials with.
    #[error("TURN URL '{url}' needs the shared secret: give --turn-secret-file")]
    TurnWithoutSecret {
        /// The URL.
        url: String,
    },
    /// A secret but no URL to use it with.
    #[error("a TURN secret is set but no --turn-url is: give the TURN server's URLs")]
    SecretWithoutUrls,
    /// The secret is empty.
    #[error("the TURN secret is empty: put coturn's static-auth-secret in the secret file")]
    EmptySecret,
    /// `--turn-ttl-max` out of Twilio's bounds.
    #[error("--turn-ttl-max {given} is not from 1 to {TWILIO_MAX_TTL} seconds")]
    TtlMax {
        /// The value given.
        given: u64,
    },
}

/// Where clients find STUN and TURN, and what the TURN credentials are signed with.
#[derive(Debug, Clone)]
pub struct TurnConfig {
    urls: Vec<IceUrl>,
    secret: Option<Arc<TurnSecret>>,
    ttl_max: u32,
}

impl Default for TurnConfig {
    /// No STUN or TURN: `Tokens.json` answers 503.
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            secret: None,
            ttl_max: TWILIO_MAX_TTL,
        }
    }
}

impl TurnConfig {
    /// Checks and assembles the settings: every URL well formed, a secret whenever a TURN URL is
    /// given (and only with URLs), `ttl_max` from 1 to 86400 (`None`: 86400).
    pub fn new(
        urls: &[String],
        secret: Option<Zeroizing<Vec<u8>>>,
        ttl_max: Option<u64>,
    ) -> Result<Self, TurnConfigError> {
        let urls = urls
            .iter()
            .map(|u| parse_ice_url(u))
            .collect::<Result<Vec<_>, _>>()?;
        let ttl_max = match ttl_max {
            None => TWILIO_MAX_TTL,
            Some(given) => u32::try_from(given)
                .ok()
                .filter(|t| (1..=TWILIO_MAX_TTL).contains(t))
                .ok_or(TurnConfigError::TtlMax { given })?,
        };
        let secret = match secret {
            Some(s) if s.is_empty() => return Err(TurnConfigError::EmptySecret),
            Some(_) if urls.is_empty() => return Err(TurnConfigError::SecretWithoutUrls),
            Some(s) => Some(Arc::new(TurnSecret(s))),
            None => {
                if let Some(u) = urls.iter().find(|u| u.relay) {
                    return Err(TurnConfigError::TurnWithoutSecret {
                        url: u.text.clone(),
                    });
                }
                None
            }
        };
        Ok(Self {
            urls,
            secret,
            ttl_max,
        })
    }

    /// The URLs handed out, in the order given.
    pub fn urls(&self) -> &[IceUrl] {
        &self.urls
    }

    /// The longest lifetime a client may ask for, and the lifetime when it asks for none.
    pub fn ttl_max(&self) -> u32 {
        self.ttl_max
    }

    /// The servers as a room participant's peer connection takes them: TURN URLs carry a
    /// credential for `name` (coturn's `<expiry>:<name>`) valid `ttl` seconds from `now_secs`
    /// (at most [`Self::ttl_max`]); STUN URLs carry none. Empty when no URL is configured.
    pub(crate) fn ice_servers_for(
        &self,
        name: &str,
        now_secs: i64,
        ttl: u32,
    ) -> Vec<mediaseal_rooms::signal::IceServer> {
        let expires = now_secs + i64::from(ttl.min(self.ttl_max));
        let credentials = self.secret.as_deref().map(|secret| {
            let username = format!("{expires}:{name}");
            let password = credential(secret, &username);
            (username, password)
        });
        self.urls
            .iter()
            .map(|u| {
                let creds = credentials.as_ref().filter(|_| u.relay);
                mediaseal_rooms::signal::IceServer {
                    urls: u.text.clone(),
                    username: creds.map(|(n, _)| n.clone()),
                    credential: creds.map(|(_, p)| p.clone()),
                }
            })
            .collect()
    }
}

/// Checks one URL's shape: scheme, a host, an optional port, and only `transport=udp|tcp`.
fn parse_ice_url(url: &str) -> Result<IceUrl, TurnConfigError> {
    let bad = |why| TurnConfigError::BadUrl {
        url: url.to_owned(),
        why,
    };
    let (scheme, rest) = url.split_once(':').ok_or_else(|| bad("it has no scheme"))?;
    let relay = match scheme {
        "turn" | "turns" => true,
        "stun" | "stuns" => false,
        _ => return Err(bad("the scheme is not stun, stuns, turn or turns")),
    };
    let (hostport, query) = match rest.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (rest, None),
    };
    if hostport.is_empty() || hostport.starts_with('/') {
        return Err(bad("it has no host (no // after the scheme)"));
    }
    if !hostport
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
    {
        return Err(bad(
            "the host or port has characters a host name cannot have",
        ));
    }
    match query {
        None => {}
        Some("transport=udp" | "transport=tcp") if relay => {}
        Some(_) if relay => {
            return Err(bad(
                "the only query allowed is transport=udp or transport=tcp",
            ));
        }
        Some(_) => return Err(bad("a STUN URL takes no query")),
    }
    Ok(IceUrl {
        text: url.to_owned(),
        relay,
    })
}

/// The coturn REST API credential for `username`: base64(HMAC-SHA1(secret, username)).
fn credential(secret: &TurnSecret, username: &str) -> String {
    // SHA-1 because coturn's REST API scheme is defined with it; HMAC-SHA1 is still a sound MAC.
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &secret.0);
    let tag = hmac::sign(&key, username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// A token as the API shows it (fields in alphabetical order).
#[derive(Debug, Serialize)]
pub(crate) struct TokenResource {
    account_sid: String,
    date_created: String,
    date_updated: String,
    ice_servers: Vec<IceServer>,
    password: Option<String>,
    /// A string, as Twilio sends it.
    ttl: String,
    username: Option<String>,
}

/// One entry of `ice_servers`: STUN entries carry no credentials (Twilio leaves the keys out).
#[derive(Debug, Serialize)]
struct IceServer {
    #[serde(skip_serializing_if = "Option::is_none")]
    credential: Option<String>,
    /// The legacy single-URL key, kept because older WebRTC clients read it.
    url: String,
    urls: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
}

pub(crate) async fn create(
    State(st): State<AppState>,
    auth: Authed,
    Path(account_sid): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let account = accessible_account(&st, &auth.principal, &account_sid, &auth.path).await?;
    let turn = &st.config.turn;
    if turn.urls.is_empty() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            20503,
            "This server hands out no STUN or TURN servers: its operator has to start \
             `mediaseal serve` with --turn-url (and --turn-secret-file for TURN)",
        ));
    }
    let form = Params::from_form(&body);
    let ttl = form
        .int_in("Ttl", 1..=i64::from(turn.ttl_max))?
        .unwrap_or(i64::from(turn.ttl_max));
    let now_us = st.services.now_us();
    let expires = now_us.div_euclid(1_000_000) + ttl;
    let credentials = turn.secret.as_deref().map(|secret| {
        let username = format!("{expires}:{}", account.sid);
        let password = credential(secret, &username);
        (username, password)
    });
    let ice_servers = turn
        .urls
        .iter()
        .map(|u| {
            let creds = credentials.as_ref().filter(|_| u.relay);
            IceServer {
                credential: creds.map(|(_, p)| p.clone()),
                url: u.text.clone(),
                urls: u.text.clone(),
                username: creds.map(|(n, _)| n.clone()),
            }
        })
        .collect();
    tracing::info!(account = %account.sid, ttl, "network traversal token issued");
    let (username, password) = credentials.unzip();
    let date = rfc2822(now_us);
    Ok((
        StatusCode::CREATED,
        Json(TokenResource {
            account_sid: account.sid,
            date_created: date.clone(),
            date_updated: date,
            ice_servers,
            password,
            ttl: ttl.to_string(),
            username,
        }),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn secret() -> Option<Zeroizing<Vec<u8>>> {
        Some(Zeroizing::new(b"s3cret".to_vec()))
    }

    #[test]
    fn urls_are_checked() {
        for good in [
            "turn:127.0.0.1:3478?transport=udp",
            "turns:turn.example.com:5349?transport=tcp",
            "turn:[::1]:3478",
            "stun:stun.example.com",
        ] {
            assert!(
                TurnConfig::new(&urls(&[good]), secret(), None).is_ok(),
                "{good}"
            );
        }
        for bad in [
            "http://x",
            "turn:",
            "turn://host",
            "turn:host?transport=sctp",
            "stun:host?transport=udp",
            "turn:ho st",
            "nonsense",
        ] {
            let e = TurnConfig::new(&urls(&[bad]), secret(), None).unwrap_err();
            assert!(matches!(e, TurnConfigError::BadUrl { .. }), "{bad}: {e}");
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn secret_and_urls_go_together_and_ttl_max_is_bounded() {
        let turn = urls(&["turn:h:3478"]);
        assert_eq!(
            TurnConfig::new(&turn, None, None).unwrap_err(),
            TurnConfigError::TurnWithoutSecret {
                url: "turn:h:3478".to_owned()
            }
        );
        assert!(TurnConfig::new(&urls(&["stun:h"]), None, None).is_ok());
        assert_eq!(
            TurnConfig::new(&[], secret(), None).unwrap_err(),
            TurnConfigError::SecretWithoutUrls
        );
        assert_eq!(
            TurnConfig::new(&turn, Some(Zeroizing::new(Vec::new())), None).unwrap_err(),
            TurnConfigError::EmptySecret
        );
        for given in [0, 86_401, u64::MAX] {
            assert_eq!(
                TurnConfig::new(&turn, secret(), Some(given)).unwrap_err(),
                TurnConfigError::TtlMax { given }
            );
        }
        assert_eq!(
            TurnConfig::new(&turn, secret(), Some(60))
                .unwrap()
                .ttl_max(),
            60
        );
    }

    #[test]
    fn the_secret_never_shows() {
        let c = TurnConfig::new(&urls(&["turn:h"]), secret(), None).unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn credential_matches_coturn_scheme() {
        // Computed with Python: base64(hmac.new(b"s3cret", b"1700000000:AC…", sha1).digest()).
        let s = TurnSecret(Zeroizing::new(b"s3cret".to_vec()));
        assert_eq!(
            credential(&s, "1700000000:ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            "8qmDcAP2xApAGuWP+7I9ilTbVwU="
        );
    }
}
