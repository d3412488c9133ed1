//! Header propagation, through `flowscope::propagation` (W3C Trace Context parsing rules).

use flowscope::propagation::{
    self, CORRELATION_HEADER, TRACEPARENT_HEADER, TRACESTATE_HEADER, TraceParent,
};
use pyo3::prelude::*;

/// A parsed `traceparent`: (trace id, parent span id, flags).
type ParentTuple = (String, String, u8);

fn to_tuple(tp: TraceParent) -> ParentTuple {
    (tp.trace_id.to_string(), tp.parent_id.to_string(), tp.flags)
}

/// A valid `traceparent` is ASCII; anything else is ignored here, before the byte-indexed parser
/// could slice inside a multi-byte character.
fn parse(value: &str) -> Option<TraceParent> {
    value
        .is_ascii()
        .then(|| TraceParent::parse(value))
        .flatten()
}

/// Parses a `traceparent` value; `None` for anything W3C Trace Context says to ignore.
#[pyfunction]
fn parse_traceparent(value: &str) -> Option<ParentTuple> {
    parse(value).map(to_tuple)
}

/// Reads already looked-up header values: returns (correlation id, traceparent, tracestate),
/// each `None` when absent or invalid; `tracestate` is kept only beside a valid `traceparent`.
#[pyfunction]
#[pyo3(signature = (correlation_id=None, traceparent=None, tracestate=None))]
fn extract(
    correlation_id: Option<&str>,
    traceparent: Option<&str>,
    tracestate: Option<&str>,
) -> (Option<String>, Option<ParentTuple>, Option<String>) {
    let traceparent = traceparent.filter(|v| v.is_ascii());
    let incoming = propagation::extract(|name| match name {
        CORRELATION_HEADER => correlation_id,
        TRACEPARENT_HEADER => traceparent,
        TRACESTATE_HEADER => tracestate,
        _ => None,
    });
    (
        incoming.correlation_id,
        incoming.traceparent.map(to_tuple),
        incoming.tracestate,
    )
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(parse_traceparent, m)?)?;
    m.add_function(wrap_pyfunction!(extract, m)?)?;
    m.add("CORRELATION_HEADER", CORRELATION_HEADER)?;
    m.add("TRACEPARENT_HEADER", TRACEPARENT_HEADER)?;
    m.add("TRACESTATE_HEADER", TRACESTATE_HEADER)?;
    Ok(())
}
