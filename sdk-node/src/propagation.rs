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
    /// The caller's W3C flags.
    pub flags: Option<u32>,
    /// The valid `traceparent`, normalised.
    pub traceparent: Option<String>,
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
        flags: parent.map(|p| u32::from(p.flags)),
        traceparent: parent.map(|p| p.to_header()),
        tracestate: incoming.tracestate,
    }
}

/// The headers (lowercase names) for an outgoing call whose parent-id is `span` (a client call's
/// span, a step, or the segment's root span), with the trace's W3C `flags` and validated
/// `tracestate`. Empty for an invalid trace or span id.
#[napi]
pub fn inject(
    trace: Latin1String,
    span: Option<Latin1String>,
    flags: u32,
    correlation_id: Option<String>,
    tracestate: Option<String>,
) -> HashMap<String, String> {
    let (Some(trace), Some(span)) = (trace_id(&trace), span_id(span.as_ref())) else {
        return HashMap::new();
    };
    propagation::inject_with_flags(
        trace,
        span,
        (flags & 0x03) as u8,
        correlation_id.as_deref(),
        tracestate.as_deref(),
    )
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}
