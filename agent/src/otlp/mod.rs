//! OTLP ingest: apps already on OpenTelemetry send spans to `POST /v1/traces` on the HTTP port
//! (protobuf or JSON, optionally gzip) or to the gRPC receiver (`--otlp-grpc-listen`). Spans are
//! [mapped](mapping) into flowscope events and applied by the same builder as the socket's, so
//! they get the timeline, groups and live view; when an exporter is configured each request is
//! also forwarded upstream as received ([`crate::export::forward`]), never re-derived.

mod grpc;
mod http;
pub mod mapping;
mod redact;

use std::io::Read;
use std::net::SocketAddr;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;

pub use grpc::serve as serve_grpc;
pub use http::receive as receive_http;

use crate::AgentState;

/// OTLP receiver settings.
#[derive(Debug, Clone)]
pub struct OtlpIngestConfig {
    /// gRPC receiver address; `None` = off.
    pub grpc_listen: Option<SocketAddr>,
    /// Whether a gRPC bind failure stops the agent (an explicit address) or is only reported
    /// (the default address, which a collector may already hold).
    pub grpc_required: bool,
    /// Largest request accepted, compressed and decompressed, bytes.
    pub max_request_bytes: usize,
    /// gRPC connections open at once.
    pub grpc_max_connections: usize,
}

impl Default for OtlpIngestConfig {
    fn default() -> Self {
        Self {
            grpc_listen: None,
            grpc_required: false,
            max_request_bytes: 16 * 1024 * 1024,
            grpc_max_connections: 256,
        }
    }
}

/// Body encodings of OTLP/HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json` (OTLP/JSON: hex ids, lowerCamelCase fields).
    Json,
}

impl Format {
    /// The format a `Content-Type` names.
    pub fn of(content_type: Option<&str>) -> Result<Self, OtlpError> {
        let media = content_type
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "application/x-protobuf" | "application/protobuf" => Ok(Self::Protobuf),
            "application/json" => Ok(Self::Json),
            _ => Err(OtlpError::ContentType(
                content_type.unwrap_or("(none)").to_owned(),
            )),
        }
    }

    /// The response `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }
}

/// Why a request was refused whole.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    /// Not protobuf or JSON.
    #[error("unsupported content type {0:?}: send application/x-protobuf or application/json")]
    ContentType(String),
    /// Not gzip or identity.
    #[error("unsupported content encoding {0:?}: send gzip or no encoding")]
    Encoding(String),
    /// Past `--otlp-max-request-bytes`.
    #[error("request exceeds {0} bytes (--otlp-max-request-bytes)")]
    TooLarge(usize),
    /// A body that does not gunzip.
    #[error("invalid gzip body: {0}")]
    Gzip(std::io::Error),
    /// A body that is not an ExportTraceServiceRequest.
    #[error("invalid protobuf ExportTraceServiceRequest: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// A body that is not OTLP/JSON.
    #[error("invalid OTLP/JSON ExportTraceServiceRequest: {0}")]
    Json(#[from] serde_json::Error),
    /// The token is missing or wrong.
    #[error("missing or wrong bearer token")]
    Unauthorized,
}

/// Decodes a request body (`encoding` is its `Content-Encoding`), never inflating past `limit`.
pub fn decode(
    format: Format,
    encoding: Option<&str>,
    body: &[u8],
    limit: usize,
) -> Result<ExportTraceServiceRequest, OtlpError> {
    if body.len() > limit {
        return Err(OtlpError::TooLarge(limit));
    }
    let inflated;
    let body = match encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
        None | Some("" | "identity") => body,
        Some("gzip" | "x-gzip") => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body)
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(OtlpError::Gzip)?;
            if out.len() > limit {
                return Err(OtlpError::TooLarge(limit));
            }
            inflated = out;
            &inflated
        }
        Some(other) => return Err(OtlpError::Encoding(other.to_owned())),
    };
    Ok(match format {
        Format::Protobuf => ExportTraceServiceRequest::decode(body)?,
        Format::Json => serde_json::from_slice(body)?,
    })
}

/// What became of one accepted request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Spans accepted.
    pub accepted: u64,
    /// Spans refused (invalid ids).
    pub rejected: u64,
    /// Why, when some were.
    pub message: Option<String>,
}

impl Outcome {
    /// The OTLP response: `partial_success` set only when something was refused.
    pub fn response(&self) -> ExportTraceServiceResponse {
        ExportTraceServiceResponse {
            partial_success: (self.rejected > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: i64::try_from(self.rejected).unwrap_or(i64::MAX),
                error_message: self.message.clone().unwrap_or_default(),
            }),
        }
    }
}

/// Maps and applies `request` to the store, then forwards it as received (redacted by the same
/// rules) when an exporter is configured.
pub fn ingest(state: &AgentState, mut request: ExportTraceServiceRequest) -> Outcome {
    let mapped = mapping::map_request(&request);
    let metrics = &state.metrics.otlp;
    metrics.spans_accepted.inc_by(mapped.accepted);
    metrics.spans_rejected.inc_by(mapped.rejected);
    let redact = state
        .config
        .redact
        .is_active()
        .then_some(&state.config.redact);
    let mut batches = mapped.batches;
    let forwarder = state.forwarder.get().filter(|_| mapped.accepted > 0);
    if let Some(rules) = redact {
        for (_, events) in &mut batches {
            events.iter_mut().for_each(|event| rules.apply(event));
        }
        if forwarder.is_some() {
            // As received, less what `--redact` hides: the rules cover what leaves, not only
            // what is kept.
            redact::redact_request(rules, &mut request);
        }
    }
    // Stamped, journaled, applied and offered for forwarding under one hold, so receive times
    // follow apply order (see `crate::receive`).
    let mut stamp = state
        .receive_order
        .blocking_lock(state.persist.get().is_some());
    let now = stamp.receive_time();
    for (origin, events) in batches {
        if let Some(persist) = state.persist.get() {
            persist.record_events(&origin, &events, now);
        }
        state.store.write().apply_batch(&origin, events, now);
    }
    if let Some(forwarder) = forwarder {
        forwarder.offer(request, mapped.accepted, now);
    }
    drop(stamp);
    Outcome {
        accepted: mapped.accepted,
        rejected: mapped.rejected,
        message: mapped
            .first_error
            .map(|why| format!("{} span(s) refused; first: {why}", mapped.rejected)),
    }
}

/// A `google.rpc.Status`, the body of OTLP/HTTP error responses.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct RpcStatus {
    /// gRPC code (3 = INVALID_ARGUMENT, 16 = UNAUTHENTICATED, …).
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// What was wrong.
    #[prost(string, tag = "2")]
    pub message: String,
}

impl RpcStatus {
    /// The body in `format`.
    pub fn encode_as(&self, format: Format) -> Vec<u8> {
        match format {
            Format::Protobuf => self.encode_to_vec(),
            Format::Json => serde_json::to_vec(self).unwrap_or_default(),
        }
    }
}
