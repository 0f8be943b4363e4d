//! Errors in Twilio's legacy shape: `{code, message, more_info, status}`.
//!
//! Internal failures are logged with their cause and answered with a generic 500; nothing
//! internal (paths, SQL, key material) reaches the client. The body never carries both `type`
//! and `title`, which would make twilio-python treat it as RFC 9457.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Longest message an error answer carries. Messages quote the rejected input so the caller
/// sees what was wrong; a megabyte of it helps nobody and costs the server to send.
pub const MAX_MESSAGE_CHARS: usize = 600;

/// `message`, with its middle elided when it is longer than [`MAX_MESSAGE_CHARS`]: the start
/// says what was wrong and the end says what to do, so both are kept.
fn bounded(message: String) -> String {
    let count = message.chars().count();
    if count <= MAX_MESSAGE_CHARS {
        return message;
    }
    let head: String = message.chars().take(MAX_MESSAGE_CHARS / 2).collect();
    let tail: String = message
        .chars()
        .skip(count - MAX_MESSAGE_CHARS / 3)
        .collect();
    format!(
        "{head}… ({} characters left out) …{tail}",
        count - head.chars().count() - tail.chars().count()
    )
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Twilio error code.
    pub code: u32,
    /// What went wrong, for the user.
    pub message: String,
}

impl ApiError {
    /// A custom error.
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: bounded(message.into()),
        }
    }

    /// 401 with 20003.
    pub fn unauthenticated() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, 20003, "Authenticate")
    }

    /// 404 with 20404 for `path`.
    pub fn not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            20404,
            format!("The requested resource {path} was not found"),
        )
    }

    /// 400 with 20001 naming a parameter.
    pub fn bad_param(name: &str, why: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            20001,
            format!("Invalid parameter {name}: {why}"),
        )
    }

    /// 400 with 20001 for a missing required parameter.
    pub fn missing_param(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            20001,
            format!("Missing required parameter {name} in the post body"),
        )
    }

    /// 405 with 20004.
    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, 20004, "Method not allowed")
    }

    /// 403 with 20403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, 20403, message)
    }

    /// 500 with 20500; the cause is logged here, never sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            20500,
            "An internal server error occurred; the request was not completed",
        )
    }
}

impl From<mediaseal_wire::ParamError> for ApiError {
    fn from(e: mediaseal_wire::ParamError) -> Self {
        match e {
            mediaseal_wire::ParamError::Missing { name } => Self::missing_param(&name),
            mediaseal_wire::ParamError::Invalid { name, why } => Self::bad_param(&name, why),
        }
    }
}

impl From<mediaseal_service::limits::UploadRefused> for ApiError {
    fn from(e: mediaseal_service::limits::UploadRefused) -> Self {
        use mediaseal_service::limits::UploadRefused;
        match e {
            UploadRefused::TooLarge { .. } => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, 20413, e.to_string())
            }
            UploadRefused::TooManyConcurrent { .. } => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, 20429, e.to_string())
            }
        }
    }
}

impl From<mediaseal_store::StoreError> for ApiError {
    fn from(e: mediaseal_store::StoreError) -> Self {
        Self::internal(e)
    }
}

/// The body of an error answer. Fields are in alphabetical order, the order clients have always
/// seen them in.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// Twilio error code.
    pub code: u32,
    /// What went wrong, for the user.
    pub message: String,
    /// Twilio's page for the code.
    pub more_info: String,
    /// HTTP status, again.
    pub status: u16,
}

impl ErrorBody {
    /// The body of `error`.
    pub fn from_error(error: &ApiError) -> Self {
        Self {
            code: error.code,
            message: error.message.clone(),
            more_info: format!("https://www.twilio.com/docs/errors/{}", error.code),
            status: error.status.as_u16(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody::from_error(&self);
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"mediaseal\""),
            );
        }
        response
    }
}

/// Handler result.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_rejected_input_is_not_echoed_in_full() {
        let huge = "x".repeat(3 << 20);
        let e = ApiError::bad_param("Status", format!("'{huge}' is not active; use active"));
        assert!(
            e.message.chars().count() < MAX_MESSAGE_CHARS + 64,
            "{}",
            e.message.len()
        );
        assert!(e.message.starts_with("Invalid parameter Status: 'xxx"));
        assert!(e.message.ends_with("is not active; use active"));
        let short = ApiError::bad_param("Status", "'nope' is not active");
        assert_eq!(
            short.message,
            "Invalid parameter Status: 'nope' is not active"
        );
    }
}
