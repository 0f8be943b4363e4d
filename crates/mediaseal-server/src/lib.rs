//! The mediaseal service.
//!
//! It takes recordings in through Twilio-shaped REST endpoints, seals every byte with the
//! customer's RSA public key (or, where the customer has not asked for that, the service's own
//! at-rest key) before it reaches storage, and hands objects back through the same shapes the
//! Twilio helper libraries already speak.
//!
//! [`app`] builds the router over an [`AppState`]; it has no sockets and starts nothing, so tests
//! drive it with `tower::ServiceExt::oneshot`. Handlers parse a request, call the service layer
//! (`mediaseal-service`, `mediaseal-compose`) and render the answer. [`serve::run`] is the
//! process around it: configuration, storage, TLS, and the background jobs.

#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod access_token_keys;
mod api;
pub mod auth;
pub mod error;
pub mod listener;
pub mod media;
pub mod paging;
pub mod params;
pub mod room_processes;
pub mod serve;
pub mod signed_url;
pub mod state;

pub use mediaseal_service::{clock, sid};

/// Webhook signing, as the service layer's outbox does it.
pub mod callbacks {
    pub use mediaseal_service::outbox::signature;
}

use std::sync::OnceLock;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower_http::trace::TraceLayer;

pub use api::accounts::create_account;
pub use api::auth_tokens::{
    RotateTokenError, RotatedToken, create_secondary_auth_token, delete_secondary_auth_token,
    promote_secondary_auth_token,
};
pub use api::intelligence::{AutoTranscribeTap, recover_transcripts, set_data_logging};
pub use api::tokens::{IceUrl, TWILIO_MAX_TTL, TurnConfig, TurnConfigError};
pub use state::{AppState, Config};

use crate::api::{accounts, auth_tokens, notifications, public_keys, recordings};
use crate::error::ApiError;

/// The whole HTTP surface over `state`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
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
            get(recordings::list_for_call).post(api::calls::start_recording),
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
            "/v1/AuthTokens/Secondary",
            post(auth_tokens::create_secondary).delete(auth_tokens::delete_secondary),
        )
        .route("/v1/AuthTokens/Promote", post(auth_tokens::promote))
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
        .merge(api::video::routes())
        .merge(api::sip::routes())
        .merge(api::tokens::routes())
        .merge(api::calls::routes())
        .merge(api::intelligence::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// The span of one request: method and path only. The query is left out because callback
/// URLs with credentials in them, and signed-URL signatures, travel there; so is the token of
/// a signed download path, which is a bearer capability.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let path = request.uri().path();
    let path = match path.strip_prefix(SIGNED_DOWNLOAD_PREFIX) {
        Some(_) => "/v1/MediaDownload/…",
        None => path,
    };
    tracing::debug_span!("request", method = %request.method(), path = %path)
}

/// Signed downloads carry their permission in the path.
const SIGNED_DOWNLOAD_PREFIX: &str = "/v1/MediaDownload/";

/// `/metrics` alone, for its own listener (`serve --metrics-listen`): the API listener does
/// not serve it, since what it counts is nobody's business but the operator's.
pub fn metrics_app() -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .fallback(|| async { StatusCode::NOT_FOUND })
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
