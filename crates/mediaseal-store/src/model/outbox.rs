//! The webhook outbox.

use super::spelling::spelled_enum;

spelled_enum! {
    /// Where a webhook is in its life (`callbacks.state`).
    pub enum CallbackState ("callback state") {
        /// Waiting for its next try.
        Pending = "pending",
        /// Delivered.
        Delivered = "delivered",
        /// Given up on.
        Failed = "failed",
    }
}

spelled_enum! {
    /// How a webhook is sent (`callbacks.method`, `*.status_callback_method`).
    pub enum HttpMethod ("HTTP method") {
        /// Parameters in the query string.
        Get = "GET",
        /// Parameters as a form body.
        Post = "POST",
    }
}

/// A webhook waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// Also sent as the `I-Twilio-Idempotency-Token` header.
    pub id: String,
    /// The account whose auth token signs it.
    pub account_sid: String,
    /// The resource it reports on.
    pub resource_sid: String,
    /// Where to deliver.
    pub url: String,
    /// An [`HttpMethod`] spelling: `GET` or `POST`.
    pub method: String,
    /// Form parameters as a JSON array of `[name, value]` pairs.
    pub params: String,
    /// Deliveries tried so far.
    pub attempts: i64,
    /// Earliest next try (µs).
    pub next_attempt_at: i64,
    /// A [`CallbackState`] spelling: `pending`, `delivered` or `failed`.
    pub state: String,
    /// Why the last try failed.
    pub last_error: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Delivery time.
    pub delivered_at: Option<i64>,
}
