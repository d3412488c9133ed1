//! The context handle Python keeps in a `contextvars.ContextVar`: which trace, and which step
//! inside it, new events belong to.
//!
//! A [`PySpan`] is immutable (a nested step gets a new handle), so copying a `contextvars`
//! context to another task or thread is safe. What belongs to the whole trace segment (root
//! span, W3C flags, `tracestate`, correlation id) is the core's [`TraceContext`], shared by every
//! handle of that trace, so a `correlate()` inside a step is seen by `inject()` anywhere in it.

use std::sync::Arc;

use flowscope::TraceContext;
use flowscope::wire::{SpanId, TraceId};
use pyo3::prelude::*;

/// A position in a trace: the trace itself (`span_id is None`) or one of its steps.
#[pyclass(frozen, module = "flowscope._native", name = "Span")]
#[derive(Debug)]
pub struct PySpan {
    pub(crate) trace: TraceId,
    pub(crate) span: Option<SpanId>,
    pub(crate) parent: Option<SpanId>,
    pub(crate) name: Option<flowscope::wire::Name>,
    pub(crate) shared: Arc<TraceContext>,
}

#[pymethods]
impl PySpan {
    /// Trace id, 32 hex digits.
    #[getter]
    fn trace_id(&self) -> String {
        self.trace.to_string()
    }

    /// Step span id (16 hex digits), `None` for the trace itself.
    #[getter]
    fn span_id(&self) -> Option<String> {
        self.span.map(|s| s.to_string())
    }

    /// Enclosing step's span id, if nested.
    #[getter]
    fn parent_span_id(&self) -> Option<String> {
        self.parent.map(|s| s.to_string())
    }

    /// Step name, `None` for the trace itself.
    #[getter]
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Flow name of the trace.
    #[getter]
    fn flow(&self) -> &str {
        &self.shared.flow
    }

    /// Current correlation id of the trace.
    #[getter]
    fn correlation_id(&self) -> Option<String> {
        self.shared.correlation_id().map(|c| c.to_string())
    }

    /// `tracestate` received with the request that started the trace.
    #[getter]
    fn tracestate(&self) -> Option<&str> {
        self.shared.tracestate.as_deref()
    }

    /// Whether this handle is the trace itself rather than a step.
    #[getter]
    fn is_trace(&self) -> bool {
        self.span.is_none()
    }

    /// The `traceparent` value for an outgoing call made from here.
    #[getter]
    fn traceparent(&self) -> String {
        self.shared.traceparent(self.span)
    }

    /// W3C trace flags propagated (bit 0 sampled, bit 1 random).
    #[getter]
    fn trace_flags(&self) -> u8 {
        self.shared.flags
    }

    /// Propagation headers for an outgoing call: `traceparent`, then `tracestate` and
    /// `x-motia-correlation-id` when known. Names are lowercase.
    fn headers(&self) -> Vec<(&'static str, String)> {
        self.shared.headers(self.span)
    }

    fn __repr__(&self) -> String {
        match (self.span, &self.name) {
            (Some(span), Some(name)) => {
                format!("<Span trace={} span={span} step={name:?}>", self.trace)
            }
            _ => format!("<Span trace={} flow={:?}>", self.trace, self.shared.flow),
        }
    }
}
