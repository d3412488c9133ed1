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
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        (
            status,
            Json(json!({ "error": { "code": code, "message": self.to_string() } })),
        )
            .into_response()
    }
}
