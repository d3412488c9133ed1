//! `flowscope._native.Client`: one `flowscope::Client` (queue + writer thread) and one method
//! per event kind. Each method builds the wire event from a [`PySpan`] handle and queues it; none
//! blocks (except `flush`, which releases the GIL while it waits).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use flowscope::wire::{
    Artifact, Checkpoint, Correlate, CorrelationMethod, Custom, EndStatus, EntryType, ErrorInfo,
    Event, Llm, Log, LogLevel, Op, OpAction, OpKind, Retry, StepEnd, TraceId, Transition,
};
use flowscope::{Client, Config, TraceOptions, now_nanos};
use pyo3::prelude::*;
use pyo3::types::{PyAny, PyDict};

use crate::context::PySpan;
use crate::convert;
use crate::error::{PyErrExt, invalid};

/// A client: a bounded queue drained by a background writer to the agent socket.
#[pyclass(frozen, module = "flowscope._native", name = "Client")]
pub struct PyClient {
    inner: Client,
}

// Names are the wire names of the core's enums (`parse`); the binding only turns a miss into a
// ValueError.
fn entry_type(s: &str) -> PyResult<EntryType> {
    EntryType::parse(s).ok_or_else(|| invalid("entry type", s, "api, cron, event"))
}

fn parse_method(s: &str) -> PyResult<CorrelationMethod> {
    CorrelationMethod::parse(s).ok_or_else(|| {
        invalid(
            "correlation method",
            s,
            "manual, header, event, state, temporal",
        )
    })
}

fn op_kind(s: &str) -> PyResult<OpKind> {
    OpKind::parse(s).ok_or_else(|| invalid("operation kind", s, "state, emit, stream"))
}

/// Unknown actions are kept as `other`, as the protocol says.
fn op_action(s: &str) -> OpAction {
    OpAction::parse(s)
}

/// Python's logging names are accepted too; the rule is the SDK core's ([`LogLevel::parse`]).
fn log_level(s: &str) -> PyResult<LogLevel> {
    Ok(LogLevel::parse(s))
}

/// The status and error of a `step_end` / `trace_end`.
fn ending(
    failed: bool,
    message: Option<String>,
    error_type: Option<String>,
    code: Option<String>,
    stack: Option<String>,
) -> (EndStatus, Option<ErrorInfo>) {
    if !failed {
        return (EndStatus::Completed, None);
    }
    let error = ErrorInfo::from_parts(
        message.as_deref(),
        error_type.as_deref(),
        code.as_deref(),
        stack.as_deref(),
    );
    (EndStatus::Failed, Some(error))
}

#[pymethods]
impl PyClient {
    /// Starts a client. `service=""` falls back to `OTEL_SERVICE_NAME`; `socket=None` to
    /// `FLOWSCOPE_SOCKET` and the default path; `disabled=None` to `FLOWSCOPE_DISABLED`.
    #[new]
    #[pyo3(signature = (service="", socket=None, disabled=None, queue_capacity=None, redact=None, hide_llm_content=false, queue_bytes=None, overflow=None))]
    #[allow(clippy::too_many_arguments)] // Python keyword arguments, all optional
    fn new(
        service: &str,
        socket: Option<PathBuf>,
        disabled: Option<bool>,
        queue_capacity: Option<usize>,
        redact: Option<Vec<String>>,
        hide_llm_content: bool,
        queue_bytes: Option<usize>,
        overflow: Option<&str>,
    ) -> PyResult<Self> {
        let mut config = Config::from_env(service);
        let rules =
            flowscope::redact::RedactConfig::parse(&redact.unwrap_or_default(), hide_llm_content)
                .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
        config = config.redact(rules);
        if let Some(path) = socket {
            config = config.socket(path);
        }
        if let Some(disabled) = disabled {
            config = config.disabled(disabled);
        }
        if let Some(capacity) = queue_capacity {
            config = config.queue_capacity(capacity);
        }
        if let Some(bytes) = queue_bytes {
            config = config.queue_bytes(bytes);
        }
        if let Some(text) = overflow {
            let parsed = flowscope::Overflow::parse(text).ok_or_else(|| {
                pyo3::exceptions::PyValueError::new_err(format!(
                    "overflow must be \"drop\", \"block\" or \"block:<ms>\", not {text:?}"
                ))
            })?;
            config = config.overflow(parsed);
        }
        config.sdk = format!("python/{}", env!("CARGO_PKG_VERSION"));
        Ok(Self {
            inner: Client::new(config),
        })
    }

    /// Service name sent to the agent.
    #[getter]
    fn service(&self) -> &str {
        &self.inner.config().service
    }

    /// Agent socket path.
    #[getter]
    fn socket(&self) -> String {
        self.inner
            .config()
            .socket_path
            .to_string_lossy()
            .into_owned()
    }

    /// Whether every call is a no-op.
    #[getter]
    fn disabled(&self) -> bool {
        self.inner.is_disabled()
    }

    /// Waits up to `timeout` seconds until everything queued so far is written (or dropped).
    fn flush(&self, py: Python<'_>, timeout: f64) -> bool {
        let timeout = Duration::try_from_secs_f64(timeout.max(0.0)).unwrap_or(Duration::MAX);
        let client = self.inner.clone();
        py.detach(move || client.flush(timeout))
    }

    /// Counters: enqueued, sent, dropped, reconnects, queued, connected, and last_error (why
    /// the writer refuses or fails to connect, or None).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stats();
        let d = PyDict::new(py);
        d.set_item("last_error", self.inner.last_error())?;
        d.set_item("enqueued", s.enqueued)?;
        d.set_item("sent", s.sent)?;
        d.set_item("dropped", s.dropped)?;
        d.set_item("reconnects", s.reconnects)?;
        d.set_item("queued", s.queued)?;
        d.set_item("queued_bytes", s.queued_bytes)?;
        d.set_item("connected", s.connected)?;
        Ok(d)
    }

    /// Never lets this client's queue and writer be torn down. Used in a forked child on the
    /// client inherited from the parent: its writer thread does not exist there and its locks may
    /// be held, so dropping it could hang; it is abandoned instead, and a new client started.
    fn leak(&self) {
        std::mem::forget(self.inner.clone());
    }

    /// Sends `trace_start` and returns the trace's handle. A valid `traceparent` (with its
    /// `tracestate`) is continued: same trace id, the caller's span as parent, flags kept. The
    /// rules live in the core (`Client::begin_trace`).
    #[pyo3(signature = (
        flow, entry="api", step=None, correlation_id=None, correlation_method="manual",
        parent_trace=None, attributes=None, trace_id=None, traceparent=None, tracestate=None
    ))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments
    fn trace_start(
        &self,
        flow: String,
        entry: &str,
        step: Option<String>,
        correlation_id: Option<String>,
        correlation_method: &str,
        parent_trace: Option<&str>,
        attributes: Option<&Bound<'_, PyDict>>,
        trace_id: Option<&str>,
        traceparent: Option<&str>,
        tracestate: Option<&str>,
    ) -> PyResult<PySpan> {
        let options = TraceOptions {
            flow,
            entry: entry_type(entry)?,
            step,
            correlation_id,
            correlation_method: parse_method(correlation_method)?,
            parent_trace: parent_trace.map(TraceId::from_hex).transpose().py_err()?,
            attributes: attributes.map(convert::attributes),
            trace_id: trace_id.map(TraceId::from_hex).transpose().py_err()?,
            incoming: traceparent.map(|tp| {
                let tp = tp.is_ascii().then_some(tp);
                flowscope::propagation::extract(|name| match name {
                    flowscope::propagation::TRACEPARENT_HEADER => tp,
                    flowscope::propagation::TRACESTATE_HEADER => tracestate,
                    _ => None,
                })
            }),
            t: 0,
        };
        let shared = self.inner.begin_trace(options);
        Ok(PySpan {
            trace: shared.trace_id,
            span: None,
            parent: None,
            name: None,
            shared,
        })
    }

    /// Sends `trace_end` for the trace (segment) of `span`.
    #[pyo3(signature = (span, failed=false, message=None, error_type=None, code=None, stack=None))]
    fn trace_end(
        &self,
        span: &PySpan,
        failed: bool,
        message: Option<String>,
        error_type: Option<String>,
        code: Option<String>,
        stack: Option<String>,
    ) {
        let (_, error) = ending(failed, message, error_type, code, stack);
        self.inner.end_trace(&span.shared, error, 0);
    }

    /// Sends `step_start` under `parent` (the trace or a step) and returns the step's handle.
    fn step_start(&self, parent: &PySpan, name: &str) -> PySpan {
        // A name the program repeats is the core's kept copy: no allocation per step.
        let name = flowscope::name_of(name);
        let span = self
            .inner
            .begin_step(&parent.shared, parent.span, name.clone(), 0);
        PySpan {
            trace: parent.trace,
            span: Some(span),
            parent: parent.span,
            name: Some(name),
            shared: Arc::clone(&parent.shared),
        }
    }

    /// Starts the CLIENT span of one outgoing HTTP call made from `parent`; the returned
    /// handle's `headers()` carry this span as the parent-id.
    fn client_call_start(&self, parent: &PySpan, method: &str, url: &str) -> PySpan {
        let span = self
            .inner
            .begin_client_call(&parent.shared, parent.span, method, url);
        PySpan {
            trace: parent.trace,
            span: Some(span),
            parent: parent.span,
            name: Some(method.to_ascii_uppercase().into()),
            shared: Arc::clone(&parent.shared),
        }
    }

    /// Ends a client call: `status` is the response status (5xx fails it); `message` etc.
    /// describe a call that got no response.
    #[pyo3(signature = (span, status=None, message=None, error_type=None))]
    fn client_call_end(
        &self,
        span: &PySpan,
        status: Option<u16>,
        message: Option<String>,
        error_type: Option<String>,
    ) {
        let Some(id) = span.span else { return };
        let error =
            message.map(|m| ErrorInfo::from_parts(Some(&m), error_type.as_deref(), None, None));
        self.inner.end_client_call(&span.shared, id, status, error);
    }

    /// Sends `step_end` for the step `span` (ignored for a trace handle).
    #[pyo3(signature = (span, failed=false, message=None, error_type=None, code=None, stack=None))]
    fn step_end(
        &self,
        span: &PySpan,
        failed: bool,
        message: Option<String>,
        error_type: Option<String>,
        code: Option<String>,
        stack: Option<String>,
    ) {
        let Some(id) = span.span else { return };
        let (status, error) = ending(failed, message, error_type, code, stack);
        self.inner.emit(Event::StepEnd(StepEnd {
            t: now_nanos(),
            trace: span.trace,
            span: id,
            status,
            error: error.map(Box::new),
            name: span.name.clone(),
            attrs: None,
        }));
    }

    /// Sends an `op` that ended now after `dur` ns. `subject` is the state key, emit topic or
    /// stream name; `detail` the emit target step or the stream item id.
    #[pyo3(signature = (span, kind, action, subject=None, detail=None, dur=0, error=None, error_type=None))]
    #[allow(clippy::too_many_arguments)] // one flat call per event is the cheap path
    fn op(
        &self,
        span: &PySpan,
        kind: &str,
        action: &str,
        subject: Option<&str>,
        detail: Option<&str>,
        dur: u64,
        error: Option<String>,
        error_type: Option<String>,
    ) -> PyResult<()> {
        // The error text is the core's rule (`Type: message`), as in every SDK.
        let error = error.map(|message| {
            ErrorInfo::from_parts(Some(&message), error_type.as_deref(), None, None).op_text()
        });
        let op = Op::new(
            op_kind(kind)?,
            op_action(action),
            subject.map(flowscope::name_of),
            detail.map(flowscope::name_of),
        );
        self.inner
            .emit(Event::Op(op.ended_now(span.trace, span.span, dur, error)));
        Ok(())
    }

    /// Sends a `log` line.
    #[pyo3(signature = (span, level, msg, fields=None))]
    fn log(
        &self,
        span: &PySpan,
        level: &str,
        msg: String,
        fields: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let level = log_level(level)?;
        self.inner.emit(Event::Log(Log {
            t: now_nanos(),
            trace: span.trace,
            span: span.span,
            level,
            msg,
            fields: fields.filter(|f| !f.is_empty()).map(convert::attributes),
        }));
        Ok(())
    }

    /// Sends an `llm` call that ended now after `dur` ns.
    #[pyo3(signature = (
        span, model, provider=None, prompt=None, response=None, input_tokens=None,
        output_tokens=None, cost=None, dur=0
    ))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments
    fn llm(
        &self,
        span: &PySpan,
        model: String,
        provider: Option<String>,
        prompt: Option<String>,
        response: Option<String>,
        input_tokens: Option<u64>,
        output_tokens: Option<u64>,
        cost: Option<f64>,
        dur: u64,
    ) {
        self.inner.emit(Event::Llm(Box::new(Llm {
            t: now_nanos().saturating_sub(dur),
            trace: span.trace,
            span: span.span,
            model,
            provider,
            prompt,
            response,
            input_tokens,
            output_tokens,
            cost,
            dur,
        })));
    }

    /// Sends an `artifact`.
    #[pyo3(signature = (span, name, url=None, preview=None, mime=None, size=None))]
    fn artifact(
        &self,
        span: &PySpan,
        name: String,
        url: Option<String>,
        preview: Option<String>,
        mime: Option<String>,
        size: Option<u64>,
    ) {
        self.inner.emit(Event::Artifact(Box::new(Artifact {
            t: now_nanos(),
            trace: span.trace,
            span: span.span,
            name,
            url,
            preview,
            mime,
            size,
        })));
    }

    /// Sends a `retry`.
    #[pyo3(signature = (span, attempt, reason=None, backoff_ms=None))]
    fn retry(&self, span: &PySpan, attempt: u32, reason: Option<String>, backoff_ms: Option<u64>) {
        self.inner.emit(Event::Retry(Retry {
            t: now_nanos(),
            trace: span.trace,
            span: span.span,
            attempt,
            reason,
            backoff_ms,
        }));
    }

    /// Sends a `checkpoint`.
    fn checkpoint(&self, span: &PySpan, id: String) {
        self.inner.emit(Event::Checkpoint(Checkpoint {
            t: now_nanos(),
            trace: span.trace,
            span: span.span,
            id,
        }));
    }

    /// Sends a `transition`.
    #[pyo3(signature = (span, from_state, to_state, action=None))]
    fn transition(
        &self,
        span: &PySpan,
        from_state: String,
        to_state: String,
        action: Option<String>,
    ) {
        self.inner.emit(Event::Transition(Transition {
            t: now_nanos(),
            trace: span.trace,
            span: span.span,
            from: from_state,
            to: to_state,
            action,
        }));
    }

    /// Joins the trace of `span` to the group `cid` and remembers it for outgoing calls.
    #[pyo3(signature = (span, cid, method="manual", name=None))]
    fn correlate(
        &self,
        span: &PySpan,
        cid: String,
        method: &str,
        name: Option<String>,
    ) -> PyResult<()> {
        let method = parse_method(method)?;
        if cid.is_empty() {
            return Ok(());
        }
        span.shared.set_correlation_id(&cid);
        self.inner.emit(Event::Correlate(Correlate {
            t: now_nanos(),
            trace: span.trace,
            cid,
            method,
            name,
        }));
        Ok(())
    }

    /// Sends a `custom` event; `payload` is converted to JSON.
    #[pyo3(signature = (span, name, payload=None))]
    fn custom(&self, span: &PySpan, name: String, payload: Option<&Bound<'_, PyAny>>) {
        self.inner.emit(Event::Custom(Custom {
            t: now_nanos(),
            trace: span.trace,
            span: span.span,
            name,
            payload: payload.map(|p| convert::value(p, 0)),
        }));
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}
