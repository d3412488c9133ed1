//! The context handle Python keeps in a `contextvars.ContextVar`: which trace, and which step
//! inside it, new events belong to.
//!
//! A [`PySpan`] is immutable (a nested step gets a new handle), so copying a `contextvars`
//! context to another task or thread is safe. What belongs to the whole trace (correlation id,
//! incoming `tracestate`) is shared by every handle of that trace through [`TraceShared`], so a
//! `correlate()` inside a step is seen by `inject()` anywhere in the trace.

use std::sync::{Arc, Mutex, PoisonError};

use flowscope::propagation::{self, TraceParent};
use flowscope::wire::{SpanId, TraceId};
use pyo3::prelude::*;

/// What every handle of one trace shares.
#[derive(Debug)]
pub(crate) struct TraceShared {
    /// Flow name.
    pub(crate) flow: String,
    /// The span id put in `traceparent` when no step is current (W3C needs a non-zero parent).
    pub(crate) root_span: SpanId,
    /// Current correlation id (set at start, or later by `correlate`).
    pub(crate) cid: Mutex<Option<Arc<str>>>,
    /// Incoming `tracestate`, passed on to outgoing calls.
    pub(crate) tracestate: Option<String>,
}

impl TraceShared {
    pub(crate) fn cid(&self) -> Option<Arc<str>> {
        self.cid
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_cid(&self, cid: &str) {
        *self.cid.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::from(cid));
    }
}

/// A position in a trace: the trace itself (`span_id is None`) or one of its steps.
#[pyclass(frozen, module = "flowscope._native", name = "Span")]
#[derive(Debug)]
pub struct PySpan {
    pub(crate) trace: TraceId,
    pub(crate) span: Option<SpanId>,
    pub(crate) parent: Option<SpanId>,
    pub(crate) name: Option<Arc<str>>,
    pub(crate) shared: Arc<TraceShared>,
}

impl PySpan {
    /// The span id to announce as parent on outgoing calls.
    fn outgoing_parent(&self) -> SpanId {
        self.span.unwrap_or(self.shared.root_span)
    }
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
        self.shared.cid().map(|c| c.to_string())
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
        TraceParent {
            trace_id: self.trace,
            parent_id: self.outgoing_parent(),
            flags: 1,
        }
        .to_header()
    }

    /// Propagation headers for an outgoing call: `traceparent`, then `tracestate` and
    /// `x-motia-correlation-id` when known. Names are lowercase.
    fn headers(&self) -> Vec<(&'static str, String)> {
        let cid = self.shared.cid();
        propagation::inject(
            self.trace,
            self.outgoing_parent(),
            cid.as_deref(),
            self.shared.tracestate.as_deref(),
        )
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
