//! One function per event kind: primitives in, one event queued. This is the hot path: no JSON is
//! built in JavaScript, no object is read property by property, the trace and span come from the
//! context entered beforehand ([`crate::context`]), and nothing throws: without a context, or
//! with an invalid payload, the event is dropped silently.
//!
//! Small enums travel as integers; `index.js` holds the matching tables:
//! entry `0 api | 1 cron | 2 event`; op `code = kind * 8 + action` with kind
//! `0 state | 1 emit | 2 stream` and action `0 get | 1 set | 2 delete | 3 clear | 4 send |
//! 7 other`; log level `0 trace | 1 debug | 2 info | 3 warn | 4 error`; correlation method
//! `0 manual | 1 header | 2 event | 3 state | 4 temporal`.

use flowscope::wire::{
    Artifact, Attributes, Checkpoint, Correlate, CorrelationMethod, Custom, EndStatus, EntryType,
    Event, Llm, Log, LogLevel, Op, OpAction, OpKind, Retry, SpanId, StepEnd, StepStart, TraceEnd,
    TraceId, Transition,
};
use flowscope::{new_span_id, now_nanos};
use napi::bindgen_prelude::Latin1String;
use napi_derive::napi;

use crate::client::emit;
use crate::context::{Current, current, set_current, span_id, trace_id};
use crate::error::error_info;
use crate::text::{NameArg, Text};

fn entry_type(code: u32) -> EntryType {
    match code {
        1 => EntryType::Cron,
        2 => EntryType::Event,
        _ => EntryType::Api,
    }
}

fn op_kind(code: u32) -> Option<OpKind> {
    match code >> 3 {
        0 => Some(OpKind::State),
        1 => Some(OpKind::Emit),
        2 => Some(OpKind::Stream),
        _ => None,
    }
}

fn op_action(code: u32) -> OpAction {
    match code & 7 {
        0 => OpAction::Get,
        1 => OpAction::Set,
        2 => OpAction::Delete,
        3 => OpAction::Clear,
        4 => OpAction::Send,
        _ => OpAction::Other,
    }
}

fn correlation_method_of(code: u32) -> CorrelationMethod {
    match code {
        1 => CorrelationMethod::Header,
        2 => CorrelationMethod::Event,
        3 => CorrelationMethod::State,
        4 => CorrelationMethod::Temporal,
        _ => CorrelationMethod::Manual,
    }
}

/// A JSON object (log fields, trace attributes); anything else is dropped.
fn attributes(json: Option<String>) -> Option<Attributes> {
    json.and_then(|text| serde_json::from_str::<Attributes>(&text).ok())
}

/// Nanoseconds from JavaScript (a double), clamped to `u64`.
fn nanos(value: Option<f64>) -> u64 {
    match value {
        Some(v) if v.is_finite() && v > 0.0 => v as u64,
        _ => 0,
    }
}

fn count(value: Option<f64>) -> Option<u64> {
    value
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| v as u64)
}

fn status(failed: bool) -> EndStatus {
    if failed {
        EndStatus::Failed
    } else {
        EndStatus::Completed
    }
}

/// Emits the event `make` builds from the current context, if there is one.
#[inline]
fn emit_here(make: impl FnOnce(TraceId, Option<SpanId>) -> Event) {
    if let Some(ctx) = current() {
        emit(make(ctx.trace, ctx.span));
    }
}

/// What `traceStart` started: the ids and W3C state JavaScript keeps in the trace's frames.
#[napi(object)]
pub struct TraceStarted {
    /// Trace id (the caller's when a valid `traceparent` was continued).
    pub trace_id: String,
    /// This segment's root span id: parent of top-level steps, parent-id outside any step.
    pub root_span: String,
    /// W3C flags to propagate (bit 0 sampled, bit 1 random).
    pub flags: u32,
    /// Validated `tracestate` to pass on.
    pub tracestate: Option<String>,
}

/// Sends `trace_start` (through the core's `begin_trace`: id, `traceparent` continuation, flags,
/// `tracestate` validation and the correlation rule live there), makes the trace current and
/// returns what JavaScript keeps. `traceparent`/`tracestate` are the raw incoming header values.
#[napi]
#[allow(clippy::too_many_arguments)] // one positional call per event is the point
pub fn trace_start(
    flow: String,
    trace: Option<Latin1String>,
    entry: u32,
    step: Option<String>,
    correlation_id: Option<String>,
    parent_trace: Option<Latin1String>,
    attributes_json: Option<String>,
    correlation_method: Option<u32>,
    traceparent: Option<String>,
    tracestate: Option<String>,
) -> Option<TraceStarted> {
    let client = crate::client::current()?;
    let incoming = traceparent.as_deref().map(|tp| {
        let tp = tp.is_ascii().then_some(tp);
        flowscope::propagation::extract(|name| match name {
            flowscope::propagation::TRACEPARENT_HEADER => tp,
            flowscope::propagation::TRACESTATE_HEADER => tracestate.as_deref(),
            _ => None,
        })
    });
    let context = client.begin_trace(flowscope::TraceOptions {
        flow,
        entry: entry_type(entry),
        step,
        correlation_id,
        correlation_method: correlation_method
            .map_or(CorrelationMethod::Manual, correlation_method_of),
        parent_trace: parent_trace.as_ref().and_then(trace_id),
        attributes: attributes(attributes_json),
        trace_id: trace.as_ref().and_then(trace_id),
        incoming,
        t: 0,
    });
    set_current(Some(Current {
        trace: context.trace_id,
        span: None,
        parent: None,
        root: Some(context.root_span),
    }));
    Some(TraceStarted {
        trace_id: context.trace_id.to_string(),
        root_span: context.root_span.to_string(),
        flags: u32::from(context.flags),
        tracestate: context.tracestate.clone(),
    })
}

/// Sends `trace_end` for the segment `root` of `trace`, failed with an error when `failed`.
#[napi]
#[allow(clippy::too_many_arguments)] // one positional call per event is the point
pub fn trace_end(
    trace: Latin1String,
    root: Option<Latin1String>,
    failed: bool,
    message: Option<String>,
    error_type: Option<String>,
    code: Option<String>,
    stack: Option<String>,
) {
    let Some(trace) = trace_id(&trace) else {
        return;
    };
    emit(Event::TraceEnd(TraceEnd {
        t: now_nanos(),
        trace,
        status: status(failed),
        error: error_info(message, error_type, code, stack),
        span: span_id(root.as_ref()),
    }));
}

/// Sends `step_start` for a step under the current context, makes it current, and returns its
/// span id (`null` without a context).
#[napi]
pub fn step_start(name: NameArg) -> Option<Latin1String> {
    let ctx = current()?;
    let span = new_span_id();
    emit(Event::StepStart(StepStart {
        t: now_nanos(),
        trace: ctx.trace,
        span,
        parent: ctx.span.or(ctx.root),
        name: name.0,
        ..StepStart::default()
    }));
    set_current(Some(Current {
        trace: ctx.trace,
        span: Some(span),
        parent: Some(ctx.span),
        root: ctx.root,
    }));
    Some(span.to_string().into())
}

/// Starts the CLIENT span of one outgoing HTTP call from the current step (or the trace) and
/// returns its span id: the parent-id to send (`null` without a context).
#[napi]
pub fn client_call_start(method: String, url: String) -> Option<String> {
    let ctx = current()?;
    let client = crate::client::current()?;
    let trace = flowscope::TraceContext::restore(ctx.trace, ctx.root?, 0, None, None);
    Some(
        client
            .begin_client_call(&trace, ctx.span, &method, &url)
            .to_string(),
    )
}

/// Ends a client call: `status` is the response status (5xx fails it); `message`/`errorType`
/// describe a call that got no response.
#[napi]
pub fn client_call_end(
    trace: Latin1String,
    span: Latin1String,
    status: Option<u32>,
    message: Option<String>,
    error_type: Option<String>,
) {
    let (Some(trace), Some(span), Some(client)) = (
        trace_id(&trace),
        span_id(Some(&span)),
        crate::client::current(),
    ) else {
        return;
    };
    let context = flowscope::TraceContext::restore(trace, span, 0, None, None);
    let error = message.map(|m| {
        flowscope::wire::ErrorInfo::from_parts(Some(&m), error_type.as_deref(), None, None)
    });
    let status = status.and_then(|s| u16::try_from(s).ok());
    client.end_client_call(&context, span, status, error);
}

fn step_end_event(
    trace: TraceId,
    span: SpanId,
    name: Option<String>,
    failed: bool,
    error: [Option<String>; 4],
) -> Event {
    let [message, error_type, code, stack] = error;
    Event::StepEnd(StepEnd {
        t: now_nanos(),
        trace,
        span,
        status: status(failed),
        error: error_info(message, error_type, code, stack),
        name: name.map(Into::into),
        attrs: None,
    })
}

/// Sends `step_end` for `trace`/`span`, failed with an error when `failed`.
#[napi]
#[allow(clippy::too_many_arguments)] // one positional call per event is the point
pub fn step_end(
    trace: Latin1String,
    span: Latin1String,
    name: Option<Text>,
    failed: bool,
    message: Option<String>,
    error_type: Option<String>,
    code: Option<String>,
    stack: Option<String>,
) {
    let (Some(trace), Some(span)) = (trace_id(&trace), span_id(Some(&span))) else {
        return;
    };
    emit(step_end_event(
        trace,
        span,
        name.map(Into::into),
        failed,
        [message, error_type, code, stack],
    ));
}

/// Sends `step_end` (failed) for the current step, then makes its enclosing context current
/// again when known. Returns whether it did (false: no context is current now; JavaScript
/// re-enters before the next event).
#[napi]
pub fn step_fail_current(
    message: Option<String>,
    error_type: Option<String>,
    code: Option<String>,
    stack: Option<String>,
) -> bool {
    end_current(true, [message, error_type, code, stack])
}

/// Sends `step_end` (completed) for the current step, like [`step_fail_current`]. No arguments:
/// napi-rs then skips argument handling entirely, and this runs once per step.
#[napi]
pub fn step_end_current() -> bool {
    end_current(false, [None, None, None, None])
}

fn end_current(failed: bool, error: [Option<String>; 4]) -> bool {
    let Some(Current {
        trace,
        span: Some(span),
        parent,
        root,
    }) = current()
    else {
        return false;
    };
    emit(step_end_event(trace, span, None, failed, error));
    let here = Current {
        trace,
        span: Some(span),
        parent,
        root,
    };
    set_current(enclosing(here));
    parent.is_some()
}

/// The context a step returns to when it ends: its parent when known (whose own parent is not),
/// else none.
fn enclosing(step: Current) -> Option<Current> {
    step.parent.map(|span| Current {
        trace: step.trace,
        span,
        parent: None,
        root: step.root,
    })
}

/// Sends an `op` that took no measured time (the common untimed record): `code` and `subject` as
/// in [`op`]. Two arguments instead of five keep the call cheap.
#[napi]
pub fn op_now(code: u32, subject: Option<NameArg>) {
    op(code, subject, None, None, None, None);
}

/// Sends an `op` that ended now after `dur_ns` (its start is now − duration). `subject` is the
/// state key, emit topic or stream name; `detail` the emit's target step or the stream item id;
/// an `error` message marks it failed.
#[napi]
pub fn op(
    code: u32,
    subject: Option<NameArg>,
    dur_ns: Option<f64>,
    detail: Option<NameArg>,
    error: Option<String>,
    error_type: Option<String>,
) {
    let (subject, detail) = (subject.map(|s| s.0), detail.map(|d| d.0));
    // The error text is the core's rule (`Type: message`), as in every SDK.
    let error = error.map(|message| {
        flowscope::wire::ErrorInfo::from_parts(Some(&message), error_type.as_deref(), None, None)
            .op_text()
    });
    let Some(kind) = op_kind(code) else {
        return;
    };
    emit_here(|trace, span| {
        let op = Op::new(kind, op_action(code), subject, detail);
        Event::Op(op.ended_now(trace, span, nanos(dur_ns), error))
    });
}

/// Numbers per record in an [`op_batch`]. An op: code, subject name id, detail name id (−1:
/// none), the `performance.now()` at which it ended, its duration in ns. A step start:
/// [`STEP_START`], name id, the high and low 32 bits of its span id (from [`span_ids`]), the
/// `performance.now()` at which it started. A step end (completed): [`STEP_END`], three unused
/// numbers, the `performance.now()` at which it ended.
const OP_RECORD: usize = 5;
/// A record that starts a step under the current context and makes it current.
const STEP_START: u32 = 64;
/// A record that ends the current step as completed, like [`step_end_current`].
const STEP_END: u32 = 65;

/// Fresh span ids from the core's generator, `count` of them (at most 4096) as two numbers each
/// (high and low 32 bits): `index.js` takes the ids of the steps it starts in a batch from here,
/// one call for many steps.
#[napi]
pub fn span_ids(count: u32) -> napi::bindgen_prelude::Uint32Array {
    let mut ids = Vec::with_capacity(2 * count.min(4096) as usize);
    for _ in 0..count.min(4096) {
        let id = new_span_id().0;
        ids.push((id >> 32) as u32);
        ids.push(id as u32);
    }
    ids.into()
}

/// Sends `count` records that `index.js` made in the current context, `OP_RECORD` numbers each
/// (names by id, see `name_id`): one Node-API call for many ops and steps, where a call costs
/// about 50 ns before it does anything. `now` is `performance.now()` at this call: a record's
/// time is this call's wall-clock time less the difference, so the JavaScript clock needs no
/// anchoring. The records move the current context as [`step_start`] and [`step_end_current`]
/// would, in order. A record with an unknown code or name id is skipped; a step start with an
/// unknown name is kept (named `step`), so its ops and end stay in it.
#[napi]
pub fn op_batch(records: napi::bindgen_prelude::Float64ArraySlice<'_>, count: u32, now: f64) {
    let Some(client) = crate::client::current() else {
        return;
    };
    let mut ctx = current();
    let wall = now_nanos();
    let at = |js: f64| wall.saturating_sub(nanos(Some((now - js) * 1e6)));
    let name = |id: f64| -> Option<Option<flowscope::wire::Name>> {
        if id < 0.0 {
            return Some(None);
        }
        flowscope::name_by_id(id as u32).map(Some)
    };
    for record in records.chunks_exact(OP_RECORD).take(count as usize) {
        let &[code, a, b, c, d] = record else {
            continue;
        };
        let Some(here) = ctx else {
            continue;
        };
        match code as u32 {
            STEP_START => {
                let span = SpanId((u64::from(b as u32) << 32) | u64::from(c as u32));
                if !span.is_valid() {
                    continue;
                }
                client.emit(Event::StepStart(StepStart {
                    t: at(d),
                    trace: here.trace,
                    span,
                    parent: here.span.or(here.root),
                    name: name(a)
                        .flatten()
                        .unwrap_or(std::borrow::Cow::Borrowed("step")),
                    ..StepStart::default()
                }));
                ctx = Some(Current {
                    trace: here.trace,
                    span: Some(span),
                    parent: Some(here.span),
                    root: here.root,
                });
            }
            STEP_END => {
                let Some(span) = here.span else {
                    continue;
                };
                client.emit(Event::StepEnd(StepEnd {
                    t: at(d),
                    trace: here.trace,
                    span,
                    status: status(false),
                    error: None,
                    name: None,
                    attrs: None,
                }));
                ctx = enclosing(here);
            }
            code => {
                let (Some(kind), Some(subject), Some(detail)) = (op_kind(code), name(a), name(b))
                else {
                    continue;
                };
                let ended = at(c);
                let dur = nanos(Some(d));
                let mut op = Op::new(kind, op_action(code), subject, detail);
                op.t = ended.saturating_sub(dur);
                op.dur = dur;
                op.trace = here.trace;
                op.span = here.span;
                client.emit(Event::Op(op));
            }
        }
    }
    set_current(ctx);
}

/// Sends a `log` line; `fields_json` is a JSON object or absent.
#[napi]
pub fn log(level: String, message: Text, fields_json: Option<String>) {
    emit_here(|trace, span| {
        Event::Log(Log {
            t: now_nanos(),
            trace,
            span,
            level: LogLevel::parse(&level),
            msg: message.into(),
            fields: attributes(fields_json),
        })
    });
}

/// Sends an `llm` call that ended now after `dur_ns`.
#[napi]
#[allow(clippy::too_many_arguments)] // one positional call per event is the point
pub fn llm(
    model: String,
    provider: Option<String>,
    prompt: Option<String>,
    response: Option<String>,
    input_tokens: Option<f64>,
    output_tokens: Option<f64>,
    cost: Option<f64>,
    dur_ns: Option<f64>,
) {
    emit_here(|trace, span| {
        let dur = nanos(dur_ns);
        Event::Llm(Box::new(Llm {
            t: now_nanos().saturating_sub(dur),
            trace,
            span,
            model,
            provider,
            prompt,
            response,
            input_tokens: count(input_tokens),
            output_tokens: count(output_tokens),
            cost: cost.filter(|c| c.is_finite()),
            dur,
        }))
    });
}

/// Sends an `artifact`.
#[napi]
pub fn artifact(
    name: String,
    url: Option<String>,
    preview: Option<String>,
    mime: Option<String>,
    size: Option<f64>,
) {
    emit_here(|trace, span| {
        Event::Artifact(Box::new(Artifact {
            t: now_nanos(),
            trace,
            span,
            name,
            url,
            preview,
            mime,
            size: count(size),
        }))
    });
}

/// Sends a `retry`.
#[napi]
pub fn retry(attempt: u32, reason: Option<String>, backoff_ms: Option<f64>) {
    emit_here(|trace, span| {
        Event::Retry(Retry {
            t: now_nanos(),
            trace,
            span,
            attempt,
            reason,
            backoff_ms: count(backoff_ms),
        })
    });
}

/// Sends a `checkpoint`.
#[napi]
pub fn checkpoint(id: Text) {
    emit_here(|trace, span| {
        Event::Checkpoint(Checkpoint {
            t: now_nanos(),
            trace,
            span,
            id: id.into(),
        })
    });
}

/// Sends a `transition`.
#[napi]
pub fn transition(from: String, to: String, action: Option<String>) {
    emit_here(|trace, span| {
        Event::Transition(Transition {
            t: now_nanos(),
            trace,
            span,
            from,
            to,
            action,
        })
    });
}

/// Sends a `correlate`: the current trace joins the group `correlation_id`.
#[napi]
pub fn correlate(correlation_id: String, method: u32, name: Option<String>) {
    if correlation_id.is_empty() {
        return;
    }
    emit_here(|trace, _| {
        Event::Correlate(Correlate {
            t: now_nanos(),
            trace,
            cid: correlation_id,
            method: correlation_method_of(method),
            name,
        })
    });
}

/// Sends a `custom` event; `payload_json` is any JSON text (kept as a string if it does not
/// parse).
#[napi]
pub fn custom(name: String, payload_json: Option<String>) {
    emit_here(|trace, span| {
        let payload = payload_json
            .map(|text| serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)));
        Event::Custom(Custom {
            t: now_nanos(),
            trace,
            span,
            name,
            payload,
        })
    });
}
