//! `POST /v1/traces`: OTLP/HTTP with the spec's responses — 200 with the request's encoding
//! (`partial_success` when spans were refused), 400 for a body that does not decode, 413 past the
//! size limit, 415 for an unknown content type or encoding; errors carry a `google.rpc.Status`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prost::Message as _;

use super::{Format, OtlpError, RpcStatus};
use crate::AgentState;

/// gRPC status code for INVALID_ARGUMENT.
const INVALID_ARGUMENT: i32 = 3;

fn reply(status: StatusCode, format: Format, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    response
}

fn refuse(state: &AgentState, format: Format, error: &OtlpError) -> Response {
    state.metrics.otlp.requests_refused.inc();
    let status = match error {
        OtlpError::ContentType(_) | OtlpError::Encoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        OtlpError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        OtlpError::Unauthorized => StatusCode::UNAUTHORIZED,
        OtlpError::Gzip(_) | OtlpError::Protobuf(_) | OtlpError::Json(_) => StatusCode::BAD_REQUEST,
    };
    let body = RpcStatus {
        code: INVALID_ARGUMENT,
        message: error.to_string(),
    };
    reply(status, format, body.encode_as(format))
}

/// The handler.
pub async fn receive(State(state): State<Arc<AgentState>>, request: Request) -> Response {
    let headers = request.headers();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let format = match Format::of(content_type) {
        Ok(format) => format,
        Err(error) => return refuse(&state, Format::Json, &error),
    };
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let limit = state.config.otlp.max_request_bytes;
    let body = match axum::body::to_bytes(Body::new(request.into_body()), limit).await {
        Ok(body) => body,
        Err(_) => return refuse(&state, format, &OtlpError::TooLarge(limit)),
    };
    let decoded = {
        let state = Arc::clone(&state);
        // Decoding and mapping a large body is CPU work: off the async workers.
        tokio::task::spawn_blocking(move || {
            super::decode(format, encoding.as_deref(), &body, limit)
                .map(|request| super::ingest(&state, request))
        })
        .await
    };
    let outcome = match decoded {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(error)) => return refuse(&state, format, &error),
        Err(_) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "OTLP ingest failed").into_response();
        }
    };
    let body = match format {
        Format::Protobuf => outcome.response().encode_to_vec(),
        // OTLP/JSON leaves unset fields out: `{}` when everything was accepted.
        Format::Json => match outcome.rejected {
            0 => b"{}".to_vec(),
            rejected => serde_json::to_vec(&serde_json::json!({
                "partialSuccess": {
                    "rejectedSpans": rejected,
                    "errorMessage": outcome.message.unwrap_or_default(),
                }
            }))
            .unwrap_or_default(),
        },
    };
    reply(StatusCode::OK, format, body)
}
