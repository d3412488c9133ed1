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
    TraceId, TraceStart, Transition,
};
use flowscope::{new_span_id, new_trace_id, now_nanos};
use napi::bindgen_prelude::Latin1String;
use napi_derive::napi;

use crate::client::emit;
use crate::context::{Current, current, set_current, span_id, trace_id};
use crate::error::error_info;
use crate::text::Text;

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

fn log_level(code: u32) -> LogLevel {
    match code {
        0 => LogLevel::Trace,
        1 => LogLevel::Debug,
        3 => LogLevel::Warn,
        4 => LogLevel::Error,
        _ => LogLevel::Info,
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

/// Sends `trace_start`, makes the trace current, and returns its id (the given one when valid,
/// else a new one).
///
/// A correlation id found another way than in code (`method` header or event) is sent as a
/// `correlate` event just *before* `trace_start`, so the agent records that method rather than
/// inheriting the parent trace's group as an event link first.
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
) -> String {
    let id = trace
        .as_ref()
        .and_then(trace_id)
        .unwrap_or_else(new_trace_id);
    let t = now_nanos();
    let mut cid = correlation_id.filter(|c| !c.is_empty());
    let method = correlation_method.map_or(CorrelationMethod::Manual, correlation_method_of);
    if method != CorrelationMethod::Manual
        && let Some(cid) = cid.take()
    {
        emit(Event::Correlate(Correlate {
            t,
            trace: id,
            cid,
            method,
            name: None,
        }));
    }
    emit(Event::TraceStart(TraceStart {
        t,
        trace: id,
        flow,
        entry: entry_type(entry),
        step,
        cid,
        parent: parent_trace.as_ref().and_then(trace_id),
        attrs: attributes(attributes_json),
    }));
    set_current(Some(Current {
        trace: id,
        span: None,
        parent: None,
    }));
    id.to_string()
}

/// Sends `trace_end` for `trace`, failed with an error when `failed`.
#[napi]
pub fn trace_end(
    trace: Latin1String,
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
    }));
}

/// Sends `step_start` for a step under the current context, makes it current, and returns its
/// span id (`null` without a context).
#[napi]
pub fn step_start(name: Text) -> Option<Latin1String> {
    let ctx = current()?;
    let span = new_span_id();
    emit(Event::StepStart(StepStart {
        t: now_nanos(),
        trace: ctx.trace,
        span,
        parent: ctx.span,
        name: name.into(),
    }));
    set_current(Some(Current {
        trace: ctx.trace,
        span: Some(span),
        parent: Some(ctx.span),
    }));
    Some(span.to_string().into())
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
        name,
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
    }) = current()
    else {
        return false;
    };
    emit(step_end_event(trace, span, None, failed, error));
    set_current(parent.map(|span| Current {
        trace,
        span,
        parent: None,
    }));
    parent.is_some()
}

/// Sends an `op` that took no measured time (the common untimed record): `code` and `subject` as
/// in [`op`]. Two arguments instead of five keep the call cheap.
#[napi]
pub fn op_now(code: u32, subject: Option<Text>) {
    op(code, subject, None, None, None);
}

/// Sends an `op` that ended now after `dur_ns` (its start is now − duration). `subject` is the
/// state key, emit topic or stream name; `detail` the emit's target step or the stream item id;
/// an `error` message marks it failed.
#[napi]
pub fn op(
    code: u32,
    subject: Option<Text>,
    dur_ns: Option<f64>,
    detail: Option<Text>,
    error: Option<String>,
) {
    let (subject, detail) = (subject.map(String::from), detail.map(String::from));
    let Some(kind) = op_kind(code) else {
        return;
    };
    emit_here(|trace, span| {
        let op = Op::new(kind, op_action(code), subject, detail);
        Event::Op(op.ended_now(trace, span, nanos(dur_ns), error))
    });
}

/// Sends a `log` line; `fields_json` is a JSON object or absent.
#[napi]
pub fn log(level: u32, message: Text, fields_json: Option<String>) {
    emit_here(|trace, span| {
        Event::Log(Log {
            t: now_nanos(),
            trace,
            span,
            level: log_level(level),
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
        Event::Llm(Llm {
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
        })
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
        Event::Artifact(Artifact {
            t: now_nanos(),
            trace,
            span,
            name,
            url,
            preview,
            mime,
            size: count(size),
        })
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
