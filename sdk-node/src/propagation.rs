//! `extract` / `inject` over [`flowscope::propagation`]: W3C Trace Context parsing rules and the
//! `X-Motia-Correlation-Id` header. JavaScript only looks the header values up.

use std::collections::HashMap;

use flowscope::propagation::{self, CORRELATION_HEADER, TRACEPARENT_HEADER, TRACESTATE_HEADER};
use napi_derive::napi;

use crate::context::{span_id, trace_id};
use napi::bindgen_prelude::Latin1String;

/// What an incoming request carried, after validation (invalid values are absent).
#[napi(object)]
pub struct Extracted {
    /// `X-Motia-Correlation-Id`, trimmed.
    pub correlation_id: Option<String>,
    /// The caller's trace id, from a valid `traceparent`.
    pub trace_id: Option<String>,
    /// The caller's span id, from a valid `traceparent`.
    pub parent_span_id: Option<String>,
    /// Whether the caller sampled the trace (flag bit 0).
    pub sampled: Option<bool>,
    /// `tracestate`, kept only alongside a valid `traceparent`.
    pub tracestate: Option<String>,
}

/// Validates the three header values (as found, any case of header name).
#[napi]
pub fn extract(
    correlation_id: Option<String>,
    traceparent: Option<String>,
    tracestate: Option<String>,
) -> Extracted {
    let incoming = propagation::extract(|name| match name {
        CORRELATION_HEADER => correlation_id.as_deref(),
        TRACEPARENT_HEADER => traceparent.as_deref(),
        TRACESTATE_HEADER => tracestate.as_deref(),
        _ => None,
    });
    let parent = incoming.traceparent;
    Extracted {
        correlation_id: incoming.correlation_id,
        trace_id: parent.map(|p| p.trace_id.to_string()),
        parent_span_id: parent.map(|p| p.parent_id.to_string()),
        sampled: parent.map(|p| p.sampled()),
        tracestate: incoming.tracestate,
    }
}

/// The headers (lowercase names) for an outgoing call made from `trace`/`span`; a trace-level
/// context without a step gets a fresh span id. Empty for an invalid trace id.
#[napi]
pub fn inject(
    trace: Latin1String,
    span: Option<Latin1String>,
    correlation_id: Option<String>,
    tracestate: Option<String>,
) -> HashMap<String, String> {
    let Some(trace) = trace_id(&trace) else {
        return HashMap::new();
    };
    let span = span_id(span.as_ref()).unwrap_or_else(flowscope::new_span_id);
    propagation::inject(
        trace,
        span,
        correlation_id.as_deref(),
        tracestate.as_deref(),
    )
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}
