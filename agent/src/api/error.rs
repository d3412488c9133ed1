//! API errors: JSON `{"error": {"code", "message"}}` with the matching HTTP status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A query parameter is invalid or unknown.
    #[error("invalid query parameter `{name}`: {message}")]
    BadParam {
        /// Parameter name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A path id is malformed.
    #[error("invalid {what} `{value}`: {message}")]
    BadId {
        /// Which id.
        what: &'static str,
        /// The value.
        value: String,
        /// What is wrong.
        message: String,
    },
    /// Nothing with that id is stored.
    #[error("no {what} with id `{id}` (it may have been evicted)")]
    NotFound {
        /// Which kind of thing.
        what: &'static str,
        /// The id.
        id: String,
    },
    /// No such route.
    #[error("no route for {0}")]
    NoRoute(String),
    /// A token is required and was missing or wrong.
    #[error("a valid bearer token is required (Authorization: Bearer <token>)")]
    Unauthorized,
    /// The Host header names a host this agent does not answer to (DNS rebinding guard).
    #[error("host `{0}` is not allowed; use a loopback name or add it with --allowed-host")]
    HostNotAllowed(String),
    /// A cross-origin request from an origin that is not allowed.
    #[error("origin `{0}` is not allowed; add it with --cors-origin")]
    OriginNotAllowed(String),
    /// Too much work in flight; retry shortly.
    #[error("the agent is busy: {0}")]
    Overloaded(&'static str),
    /// An internal failure (a render task died).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// Shorthand for [`ApiError::BadParam`].
    pub fn bad_param(name: &str, message: impl Into<String>) -> Self {
        ApiError::BadParam {
            name: name.to_owned(),
            message: message.into(),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadParam { .. } => (StatusCode::BAD_REQUEST, "invalid_parameter"),
            ApiError::BadId { .. } => (StatusCode::BAD_REQUEST, "invalid_id"),
            ApiError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::NoRoute(_) => (StatusCode::NOT_FOUND, "no_route"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::HostNotAllowed(_) => (StatusCode::MISDIRECTED_REQUEST, "host_not_allowed"),
            ApiError::OriginNotAllowed(_) => (StatusCode::FORBIDDEN, "origin_not_allowed"),
            ApiError::Overloaded(_) => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let mut response = (
            status,
            Json(json!({ "error": { "code": code, "message": self.to_string() } })),
        )
            .into_response();
        if matches!(self, ApiError::Unauthorized) {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"flowscope\""),
            );
        }
        response
    }
}
