//! The mediaseal service.
//!
//! It takes recordings in through Twilio-shaped REST endpoints, seals every byte with the
//! customer's RSA public key (or, where the customer has not asked for that, the service's own
//! at-rest key) before it reaches storage, and hands objects back through the same shapes the
//! Twilio helper libraries already speak.
//!
//! [`app`] builds the router over an [`AppState`]; it has no sockets, so tests drive it with
//! `tower::ServiceExt::oneshot`. [`serve::run`] is the process around it: configuration,
//! storage, TLS, background workers.

#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

mod api;
pub mod auth;
pub mod callbacks;
pub mod clock;
pub mod compose;
pub mod error;
pub mod ingest;
pub mod media;
pub mod paging;
pub mod params;
pub mod serve;
pub mod sid;
pub mod signed_url;
pub mod state;
pub mod sweeper;

use std::sync::OnceLock;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower_http::trace::TraceLayer;

pub use api::accounts::create_account;
pub use state::{AppState, Config};

use crate::api::{accounts, notifications, public_keys, recordings};
use crate::error::ApiError;

/// The whole HTTP surface over `state`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route(
            "/2010-04-01/Accounts.json",
            get(accounts::list_accounts).post(accounts::create_subaccount),
        )
        .route(
            "/2010-04-01/Accounts/{file}",
            get(accounts::fetch_account).post(accounts::update_account),
        )
        .route(
            "/2010-04-01/Accounts/{account}/Keys.json",
            get(accounts::list_keys).post(accounts::create_key),
        )
        .route(
            "/2010-04-01/Accounts/{account}/Keys/{file}",
            get(accounts::fetch_key)
                .post(accounts::update_key)
                .delete(accounts::delete_key),
        )
        .route(
            "/2010-04-01/Accounts/{account}/RecordingSettings.json",
            get(recordings::get_settings).post(recordings::post_settings),
        )
        .route(
            "/2010-04-01/Accounts/{account}/Recordings.json",
            get(recordings::list).post(recordings::ingest),
        )
        .route(
            "/2010-04-01/Accounts/{account}/Recordings/{file}",
            get(recordings::instance).delete(recordings::instance),
        )
        .route(
            "/2010-04-01/Accounts/{account}/Calls/{call}/Recordings.json",
            get(recordings::list_for_call),
        )
        .route(
            "/2010-04-01/Accounts/{account}/Notifications.json",
            get(notifications::list),
        )
        .route(
            "/2010-04-01/Accounts/{account}/Notifications/{file}",
            get(notifications::fetch),
        )
        .route(
            "/v1/Credentials/PublicKeys",
            get(public_keys::list).post(public_keys::create),
        )
        .route(
            "/v1/Credentials/PublicKeys/{sid}",
            get(public_keys::fetch)
                .post(public_keys::update)
                .delete(public_keys::delete),
        )
        .merge(api::video::routes(&state))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn healthz(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    // Healthy means the metadata store answers.
    match state
        .meta
        .account("AC00000000000000000000000000000000")
        .await
    {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "metadata store unavailable\n",
            )
                .into_response()
        }
    }
}

/// The process-wide Prometheus recorder.
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (tests build many apps); ours then simply
        // renders nothing, which is still a valid exposition.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

async fn metrics_text() -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        metrics_handle().render(),
    )
        .into_response()
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(uri.path())
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

/// Entry points for the `fuzz/` crate: every parser of untrusted request input, driven without a
/// running server. Each checks the invariants its callers rely on and panics when one breaks.
#[doc(hidden)]
pub mod fuzzing {
    use axum::http::{HeaderMap, HeaderValue, header};

    /// Form/query parameters and the typed reads the handlers make of them.
    pub fn params(data: &[u8]) {
        let p = crate::params::Params::parse(data);
        let _ = p.boolean("EncryptionEnabled");
        if let Ok(Some(n)) = p.int_in("Ttl", 1..=604_800) {
            assert!((1..=604_800).contains(&n));
        }
        if let Ok(Some(sid)) = p.sid("RoomSid", "RM") {
            assert!(crate::sid::is_sid(sid, "RM"));
        }
        let _ = p.url("StatusCallback");
        let _ = p.method("StatusCallbackMethod");
        let _ = p.friendly_name("FriendlyName", 64);
    }

    /// A `Range` header against an object of a length taken from the input.
    pub fn range(data: &[u8]) {
        let Some((&n, value)) = data.split_first() else {
            return;
        };
        let len = u64::from(n) * 37;
        let Ok(value) = HeaderValue::from_bytes(value) else {
            return;
        };
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, value);
        if let Ok(Some(r)) = crate::media::parse_range(&headers, len) {
            assert!(r.start <= r.end && r.end < len, "{r:?} outside 0..{len}");
        }
    }

    /// `Resolution` and `VideoLayout` of a composition request.
    pub fn composition_spec(data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        if let Ok((w, h)) = crate::compose::parse_resolution(&text) {
            assert!((16..=1280).contains(&w) && (16..=1280).contains(&h));
        }
        if let Ok(layout) = serde_json::from_slice::<serde_json::Value>(data)
            && let Ok(regions) = crate::compose::parse_layout(&layout, (640, 480))
        {
            for r in regions {
                assert!(r.x + r.width <= 640 && r.y + r.height <= 480, "{}", r.name);
            }
        }
    }

    /// The head of an uploaded track (Matroska/WebM sniffing).
    pub fn matroska(data: &[u8]) {
        let _ = crate::compose::sniff_matroska(data);
    }

    /// A `/v1/MediaDownload/{token}`: nothing but a token this secret signed is accepted.
    pub fn media_token(data: &[u8]) {
        let token = String::from_utf8_lossy(data);
        assert!(crate::signed_url::verify(&[0x5a; 32], &token, 0).is_err());
    }
}
