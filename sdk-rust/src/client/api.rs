//! The instrumentation API: traces, steps, timed operations and the events inside steps.
//!
//! Every builder captures the current [`SpanContext`] when created; without one (no trace on
//! this thread) it is inert and costs almost nothing.

use std::time::{Duration, SystemTime};

use super::context::{self, SpanContext};
use super::{Client, TraceOptions, global};
use crate::wire::{
    Artifact, Attributes, Checkpoint, Correlate, CorrelationMethod, Custom, EndStatus, EntryType,
    ErrorInfo, Event, Llm, Log, LogLevel, Name, Op, OpAction, OpKind, Retry, SpanId, StepEnd,
    StepStart, TraceId, Transition, UnixNanos,
};
use crate::{new_span_id, new_trace_id, now_nanos, system_time_nanos};

/// `t`, or now as a stamp (see `clock`) when it is 0: only for events queued on a client.
#[inline]
fn or_now(t: UnixNanos) -> UnixNanos {
    if t == 0 { crate::clock::stamp() } else { t }
}

/// Emits an event built from the current context, if there is one.
#[inline]
fn emit_here(make: impl FnOnce(TraceId, Option<SpanId>) -> Event) {
    context::with_current(|ctx| {
        if let Some(ctx) = ctx {
            ctx.client().emit(make(ctx.trace_id(), ctx.span_id()));
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Traces

impl Client {
    /// Starts describing a run of `flow`.
    pub fn trace(&self, flow: impl Into<String>) -> TraceBuilder {
        TraceBuilder::new(Some(self.clone()), flow.into())
    }
}

/// Starts a trace on the global client (inert when [`init`](super::init) was not called).
pub fn trace(flow: impl Into<String>) -> TraceBuilder {
    TraceBuilder::new(global(), flow.into())
}

/// Options for a new trace; [`start`](Self::start) sends `trace_start`.
#[must_use = "call .start() to begin the trace"]
#[derive(Debug)]
pub struct TraceBuilder {
    client: Option<Client>,
    options: TraceOptions,
}

impl TraceBuilder {
    pub(crate) fn new(client: Option<Client>, flow: String) -> Self {
        Self {
            client,
            options: TraceOptions {
                flow,
                ..TraceOptions::default()
            },
        }
    }
    /// What triggered the run, without naming its first step.
    pub fn entry_type(mut self, entry: EntryType) -> Self {
        self.options.entry = entry;
        self
    }
    /// What triggered the run and its first step.
    pub fn entry(mut self, entry: EntryType, step: impl Into<String>) -> Self {
        self.options.entry = entry;
        self.options.step = Some(step.into());
        self
    }
    /// Joins the trace group `id`.
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.options.correlation_id = Some(id.into());
        self.options.correlation_method = CorrelationMethod::Manual;
        self
    }
    /// The trace whose emit started this one.
    pub fn parent_trace(mut self, id: TraceId) -> Self {
        self.options.parent_trace = Some(id);
        self
    }
    /// Uses a given trace id (a deterministic mapping of a framework's run id).
    pub fn trace_id(mut self, id: TraceId) -> Self {
        self.options.trace_id = Some(id);
        self
    }
    /// Continues what an incoming request carried: a valid `traceparent` makes this trace a
    /// segment of the caller's (same trace id, the caller's span as parent, flags kept), its
    /// `tracestate` is passed on, and `X-Motia-Correlation-Id` joins that group (method
    /// `header`) unless a correlation id was set.
    pub fn incoming(mut self, incoming: crate::propagation::Incoming) -> Self {
        if self.options.correlation_id.is_none()
            && let Some(cid) = &incoming.correlation_id
        {
            self.options.correlation_id = Some(cid.clone());
            self.options.correlation_method = CorrelationMethod::Header;
        }
        self.options.incoming = Some(incoming);
        self
    }
    /// Adds an attribute.
    pub fn attribute(
        mut self,
        key: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.options
            .attributes
            .get_or_insert_with(Attributes::new)
            .insert(key.into(), value.into());
        self
    }
    /// Sets the start time (default: now).
    pub fn start_time(mut self, at: SystemTime) -> Self {
        self.options.t = system_time_nanos(at);
        self
    }
    /// Sends `trace_start` and makes the trace current on this thread.
    pub fn start(self) -> TraceGuard {
        let Some(client) = self.client else {
            return TraceGuard {
                ctx: None,
                trace_id: self.options.trace_id.unwrap_or_else(new_trace_id),
                done: true,
            };
        };
        let trace = client.begin_trace(self.options);
        let trace_id = trace.trace_id;
        let ctx = SpanContext {
            client,
            trace_id,
            span_id: None,
            trace,
        };
        context::push_ref(&ctx);
        TraceGuard {
            ctx: Some(ctx),
            trace_id,
            done: false,
        }
    }
}

/// A running trace. Dropping it ends the trace (`completed`, or `failed` while panicking).
#[must_use = "the trace ends when this guard drops"]
#[derive(Debug)]
pub struct TraceGuard {
    ctx: Option<SpanContext>,
    trace_id: TraceId,
    done: bool,
}

impl TraceGuard {
    /// The trace id.
    pub fn id(&self) -> TraceId {
        self.trace_id
    }
    /// The context to attach on another thread or task.
    pub fn context(&self) -> Option<SpanContext> {
        self.ctx.clone()
    }
    /// Starts a step directly under this trace.
    pub fn step(&self, name: impl Into<Name>) -> StepBuilder {
        StepBuilder::new(self.ctx.clone(), name.into())
    }
    /// Joins the trace group `id` (manual correlation).
    pub fn correlate(&self, id: impl Into<String>) {
        if let Some(ctx) = &self.ctx {
            let id = id.into();
            ctx.trace.set_correlation_id(&id);
            ctx.client
                .emit(correlate_event(ctx.trace_id, id, CorrelationMethod::Manual));
        }
    }
    /// Ends the trace as completed.
    pub fn end(mut self) {
        self.finish(EndStatus::Completed, None, 0);
    }
    /// Ends the trace as completed at a given time.
    pub fn end_at(mut self, at: SystemTime) {
        self.finish(EndStatus::Completed, None, system_time_nanos(at));
    }
    /// Ends the trace as failed.
    pub fn fail(mut self, error: ErrorInfo) {
        self.finish(EndStatus::Failed, Some(error), 0);
    }

    fn finish(&mut self, status: EndStatus, error: Option<ErrorInfo>, t: UnixNanos) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        if let Some(ctx) = &self.ctx {
            let error = match status {
                EndStatus::Failed => Some(error.unwrap_or_else(|| ErrorInfo::new("failed"))),
                EndStatus::Completed => None,
            };
            ctx.client.end_trace(&ctx.trace, error, t);
            context::pop(self.trace_id, None);
        }
    }
}

impl Drop for TraceGuard {
    fn drop(&mut self) {
        // Tested first, so the usual end passes no error value to read back.
        if std::thread::panicking() {
            self.finish(EndStatus::Failed, Some(panic_error()), 0);
        } else {
            self.finish(EndStatus::Completed, None, 0);
        }
    }
}

/// What a guard dropped while its thread panics ends with.
#[cold]
fn panic_error() -> ErrorInfo {
    ErrorInfo {
        error_type: Some("panic".into()),
        ..ErrorInfo::new("panicked")
    }
}

fn correlate_event(trace: TraceId, cid: String, method: CorrelationMethod) -> Event {
    Event::Correlate(Correlate {
        t: now_nanos(),
        trace,
        cid,
        method,
        name: None,
    })
}

/// Joins the current trace to the group `id` (manual correlation).
pub fn correlate(id: impl Into<String>) {
    correlate_with(id, CorrelationMethod::Manual);
}

/// Joins the current trace to the group `id`, recording how the link was found.
pub fn correlate_with(id: impl Into<String>, method: CorrelationMethod) {
    let cid = id.into();
    context::with_current(|ctx| {
        if let Some(ctx) = ctx {
            ctx.trace().set_correlation_id(&cid);
            ctx.client()
                .emit(correlate_event(ctx.trace_id(), cid, method));
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Steps

/// Starts a step under the current trace/step of this thread.
pub fn step(name: impl Into<Name>) -> StepBuilder {
    StepBuilder::new(SpanContext::current(), name.into())
}

/// Options for a new step; [`start`](Self::start) sends `step_start`.
#[must_use = "call .start() to begin the step"]
#[derive(Debug)]
pub struct StepBuilder {
    parent: Option<SpanContext>,
    name: Name,
    t: UnixNanos,
    span: Option<SpanId>,
}

impl StepBuilder {
    pub(crate) fn new(parent: Option<SpanContext>, name: Name) -> Self {
        Self {
            parent,
            name,
            t: 0,
            span: None,
        }
    }
    /// Sets the start time (default: now).
    pub fn start_time(mut self, at: SystemTime) -> Self {
        self.t = system_time_nanos(at);
        self
    }
    /// Uses a given span id.
    pub fn span_id(mut self, id: SpanId) -> Self {
        self.span = Some(id);
        self
    }
    /// Sends `step_start` and makes the step current on this thread.
    pub fn start(self) -> StepGuard {
        let span = self.span.unwrap_or_else(new_span_id);
        let Some(parent) = self.parent else {
            return StepGuard {
                ctx: None,
                name: self.name,
                done: true,
            };
        };
        parent.client.emit(Event::StepStart(StepStart {
            t: or_now(self.t),
            trace: parent.trace_id,
            span,
            parent: Some(parent.trace.outgoing_parent(parent.span_id)),
            name: self.name.clone(),
            ..StepStart::default()
        }));
        let ctx = SpanContext {
            client: parent.client,
            trace_id: parent.trace_id,
            span_id: Some(span),
            trace: parent.trace,
        };
        context::push_ref(&ctx);
        StepGuard {
            ctx: Some(ctx),
            name: self.name,
            done: false,
        }
    }
}

/// A running step. Dropping it ends the step (`completed`, or `failed` while panicking).
#[must_use = "the step ends when this guard drops"]
#[derive(Debug)]
pub struct StepGuard {
    ctx: Option<SpanContext>,
    name: Name,
    done: bool,
}

impl StepGuard {
    /// The step's span id (`None` when inert).
    pub fn span_id(&self) -> Option<SpanId> {
        self.ctx.as_ref().and_then(|c| c.span_id)
    }
    /// The context to attach on another thread or task.
    pub fn context(&self) -> Option<SpanContext> {
        self.ctx.clone()
    }
    /// Ends the step as completed.
    pub fn end(mut self) {
        self.finish(EndStatus::Completed, None, 0);
    }
    /// Ends the step as completed at a given time.
    pub fn end_at(mut self, at: SystemTime) {
        self.finish(EndStatus::Completed, None, system_time_nanos(at));
    }
    /// Ends the step as failed.
    pub fn fail(mut self, error: ErrorInfo) {
        self.finish(EndStatus::Failed, Some(error), 0);
    }
    /// Ends the step as failed at a given time.
    pub fn fail_at(mut self, error: ErrorInfo, at: SystemTime) {
        self.finish(EndStatus::Failed, Some(error), system_time_nanos(at));
    }

    fn finish(&mut self, status: EndStatus, error: Option<ErrorInfo>, t: UnixNanos) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let Some(ctx) = &self.ctx else { return };
        let Some(span) = ctx.span_id else { return };
        ctx.client.emit(Event::StepEnd(StepEnd {
            t: or_now(t),
            trace: ctx.trace_id,
            span,
            status,
            error: error.map(Box::new),
            name: Some(std::mem::take(&mut self.name)),
            attrs: None,
        }));
        context::pop(ctx.trace_id, Some(span));
    }
}

impl Drop for StepGuard {
    fn drop(&mut self) {
        // Tested first, so the usual end passes no error value to read back.
        if std::thread::panicking() {
            self.finish(EndStatus::Failed, Some(panic_error()), 0);
        } else {
            self.finish(EndStatus::Completed, None, 0);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Operations

/// Describes a state/emit/stream operation in the current step.
#[inline]
pub fn op(kind: OpKind, action: OpAction) -> OpBuilder {
    OpBuilder {
        op: Op::new(kind, action, None, None),
    }
}

/// `state.get(key)`.
pub fn state_get(key: impl Into<Name>) -> OpBuilder {
    op(OpKind::State, OpAction::Get).key(key)
}
/// `state.set(key)`.
pub fn state_set(key: impl Into<Name>) -> OpBuilder {
    op(OpKind::State, OpAction::Set).key(key)
}
/// `state.delete(key)`.
pub fn state_delete(key: impl Into<Name>) -> OpBuilder {
    op(OpKind::State, OpAction::Delete).key(key)
}
/// `state.clear()`.
pub fn state_clear() -> OpBuilder {
    op(OpKind::State, OpAction::Clear)
}
/// `emit(topic)`; add `.to(step)` for the step it triggers.
pub fn emit(topic: impl Into<Name>) -> OpBuilder {
    op(OpKind::Emit, OpAction::Send).topic(topic)
}
/// `stream.get(stream, id)`.
pub fn stream_get(stream: impl Into<Name>, id: impl Into<Name>) -> OpBuilder {
    op(OpKind::Stream, OpAction::Get).stream(stream).item(id)
}
/// `stream.set(stream, id)`.
pub fn stream_set(stream: impl Into<Name>, id: impl Into<Name>) -> OpBuilder {
    op(OpKind::Stream, OpAction::Set).stream(stream).item(id)
}
/// `stream.delete(stream, id)`.
pub fn stream_delete(stream: impl Into<Name>, id: impl Into<Name>) -> OpBuilder {
    op(OpKind::Stream, OpAction::Delete).stream(stream).item(id)
}
/// `stream.send(stream)`.
pub fn stream_send(stream: impl Into<Name>) -> OpBuilder {
    op(OpKind::Stream, OpAction::Send).stream(stream)
}

/// An operation to record; finish with [`record`](Self::record), [`start`](Self::start) or
/// [`time`](Self::time).
#[must_use = "call .record(), .start() or .time(..) to send the operation"]
#[derive(Debug)]
pub struct OpBuilder {
    op: Op,
}

impl OpBuilder {
    /// State key (the op's subject).
    pub fn key(mut self, key: impl Into<Name>) -> Self {
        self.op.subject = Some(key.into());
        self
    }
    /// Emit topic (the op's subject).
    pub fn topic(mut self, topic: impl Into<Name>) -> Self {
        self.op.subject = Some(topic.into());
        self
    }
    /// The step an emit triggers (the op's detail).
    pub fn to(mut self, step: impl Into<Name>) -> Self {
        self.op.detail = Some(step.into());
        self
    }
    /// Stream name (the op's subject).
    pub fn stream(mut self, stream: impl Into<Name>) -> Self {
        self.op.subject = Some(stream.into());
        self
    }
    /// Stream item id (the op's detail).
    pub fn item(mut self, id: impl Into<Name>) -> Self {
        self.op.detail = Some(id.into());
        self
    }
    /// Start time (default: when recorded or started).
    pub fn at(mut self, at: SystemTime) -> Self {
        self.op.t = system_time_nanos(at);
        self
    }
    /// Duration, for [`record`](Self::record).
    pub fn duration(mut self, duration: Duration) -> Self {
        self.op.dur = duration.as_nanos() as u64;
        self
    }
    /// Marks the operation failed.
    pub fn failed(mut self, error: impl Into<String>) -> Self {
        self.op.ok = false;
        self.op.error = Some(error.into().into_boxed_str());
        self
    }
    /// Sends the operation now with the duration given (default zero).
    #[inline]
    pub fn record(self) {
        let op = self.op;
        emit_here(move |trace, span| {
            Event::Op(Op {
                t: or_now(op.t),
                trace,
                span,
                ..op
            })
        });
    }
    /// Starts timing; the operation is sent when the timer ends or drops.
    pub fn start(mut self) -> OpTimer {
        self.op.t = or_now(self.op.t);
        let started = crate::clock::ticks();
        OpTimer {
            op: Some(self.op),
            started,
        }
    }
    /// Times `f` and sends the operation; a `None`/`Err` result is still recorded as done.
    pub fn time<R>(self, f: impl FnOnce() -> R) -> R {
        let timer = self.start();
        let out = f();
        timer.end();
        out
    }
}

/// A running operation; sent with its measured duration on [`end`](Self::end) or drop.
#[must_use = "the operation is sent when the timer drops"]
#[derive(Debug)]
pub struct OpTimer {
    op: Option<Op>,
    /// `clock::ticks` at the start.
    started: u64,
}

impl OpTimer {
    /// Ends it as successful.
    pub fn end(mut self) {
        self.finish(None);
    }
    /// Ends it as failed.
    pub fn fail(mut self, error: impl Into<String>) {
        self.finish(Some(error.into()));
    }
    fn finish(&mut self, error: Option<String>) {
        let Some(mut op) = self.op.take() else { return };
        op.dur = crate::clock::ticks().saturating_sub(self.started);
        if error.is_some() {
            op.ok = false;
            op.error = error.map(String::into_boxed_str);
        }
        emit_here(|trace, span| {
            op.trace = trace;
            op.span = span;
            Event::Op(op)
        });
    }
}

impl Drop for OpTimer {
    fn drop(&mut self) {
        self.finish(None);
    }
}

// ---------------------------------------------------------------------------------------------
// Events inside a step

/// A log line in the current step.
pub fn log(level: LogLevel, message: impl Into<String>) {
    log_with(level, message, None);
}

/// A log line with structured fields.
pub fn log_with(level: LogLevel, message: impl Into<String>, fields: Option<Attributes>) {
    let msg = message.into();
    emit_here(|trace, span| {
        Event::Log(Log {
            t: now_nanos(),
            trace,
            span,
            level,
            msg,
            fields,
        })
    });
}

/// A retry of the current step or call.
pub fn retry(attempt: u32, reason: Option<&str>, backoff: Option<Duration>) {
    emit_here(|trace, span| {
        Event::Retry(Retry {
            t: now_nanos(),
            trace,
            span,
            attempt,
            reason: reason.map(str::to_owned),
            backoff_ms: backoff.map(|d| d.as_millis() as u64),
        })
    });
}

/// A checkpoint written by the current step.
pub fn checkpoint(id: impl Into<String>) {
    let id = id.into();
    emit_here(|trace, span| {
        Event::Checkpoint(Checkpoint {
            t: now_nanos(),
            trace,
            span,
            id,
        })
    });
}

/// A state-machine transition.
pub fn transition(from: impl Into<String>, to: impl Into<String>, action: Option<&str>) {
    let (from, to) = (from.into(), to.into());
    emit_here(|trace, span| {
        Event::Transition(Transition {
            t: now_nanos(),
            trace,
            span,
            from,
            to,
            action: action.map(str::to_owned),
        })
    });
}

/// An application-defined event.
pub fn custom(name: impl Into<String>, payload: Option<serde_json::Value>) {
    let name = name.into();
    emit_here(|trace, span| {
        Event::Custom(Custom {
            t: now_nanos(),
            trace,
            span,
            name,
            payload,
        })
    });
}

/// Describes an LLM call in the current step.
pub fn llm(model: impl Into<String>) -> LlmBuilder {
    LlmBuilder {
        llm: Llm {
            model: model.into(),
            ..Llm::default()
        },
    }
}

/// An LLM call to record.
#[must_use = "call .record() to send the LLM call"]
#[derive(Debug)]
pub struct LlmBuilder {
    llm: Llm,
}

impl LlmBuilder {
    /// Provider name.
    pub fn provider(mut self, provider: impl Into<String>) -> Self {
        self.llm.provider = Some(provider.into());
        self
    }
    /// Prompt text (or JSON-encoded messages).
    pub fn prompt(mut self, prompt: impl Into<String>) -> Self {
        self.llm.prompt = Some(prompt.into());
        self
    }
    /// Response text (or JSON-encoded messages).
    pub fn response(mut self, response: impl Into<String>) -> Self {
        self.llm.response = Some(response.into());
        self
    }
    /// Token usage.
    pub fn tokens(mut self, input: u64, output: u64) -> Self {
        self.llm.input_tokens = Some(input);
        self.llm.output_tokens = Some(output);
        self
    }
    /// Cost in USD.
    pub fn cost(mut self, usd: f64) -> Self {
        self.llm.cost = Some(usd);
        self
    }
    /// Call duration.
    pub fn duration(mut self, duration: Duration) -> Self {
        self.llm.dur = duration.as_nanos() as u64;
        self
    }
    /// Start time (default: now minus the duration).
    pub fn at(mut self, at: SystemTime) -> Self {
        self.llm.t = system_time_nanos(at);
        self
    }
    /// Sends it.
    pub fn record(self) {
        let mut llm = self.llm;
        emit_here(|trace, span| {
            if llm.t == 0 {
                llm.t = now_nanos().saturating_sub(llm.dur);
            }
            llm.trace = trace;
            llm.span = span;
            Event::Llm(Box::new(llm))
        });
    }
}

/// Describes an artifact produced by the current step.
pub fn artifact(name: impl Into<String>) -> ArtifactBuilder {
    ArtifactBuilder {
        artifact: Artifact {
            name: name.into(),
            ..Artifact::default()
        },
    }
}

/// An artifact to record.
#[must_use = "call .record() to send the artifact"]
#[derive(Debug)]
pub struct ArtifactBuilder {
    artifact: Artifact,
}

impl ArtifactBuilder {
    /// Download URL.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.artifact.url = Some(url.into());
        self
    }
    /// Inline text preview.
    pub fn preview(mut self, preview: impl Into<String>) -> Self {
        self.artifact.preview = Some(preview.into());
        self
    }
    /// MIME type.
    pub fn mime(mut self, mime: impl Into<String>) -> Self {
        self.artifact.mime = Some(mime.into());
        self
    }
    /// Size in bytes.
    pub fn size(mut self, bytes: u64) -> Self {
        self.artifact.size = Some(bytes);
        self
    }
    /// Sends it.
    pub fn record(self) {
        let mut artifact = self.artifact;
        emit_here(|trace, span| {
            artifact.t = now_nanos();
            artifact.trace = trace;
            artifact.span = span;
            Event::Artifact(Box::new(artifact))
        });
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    #[test]
    fn literal_names_are_carried_without_allocating() {
        let op = emit("user.validated").to("save-user").op;
        assert!(matches!(op.subject, Some(Cow::Borrowed("user.validated"))));
        assert!(matches!(op.detail, Some(Cow::Borrowed("save-user"))));
        assert!(matches!(
            state_get("k").op.subject,
            Some(Cow::Borrowed("k"))
        ));
        assert!(matches!(step("validate").name, Cow::Borrowed("validate")));
        // A runtime string is moved in, not copied.
        let key = String::from("user.42");
        let ptr = key.as_ptr();
        match state_set(key).op.subject {
            Some(Cow::Owned(owned)) => assert_eq!(owned.as_ptr(), ptr),
            other => panic!("expected the owned key, got {other:?}"),
        }
    }
}
