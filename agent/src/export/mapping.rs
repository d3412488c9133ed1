//! flowscope traces → OpenTelemetry spans (DESIGN.md "OTLP mapping"):
//! a root span `flow <name>` per trace, one span per step, timed operations as child spans of
//! their step, LLM calls as `chat <model>` CLIENT spans carrying both the OTel GenAI and the
//! OpenInference attribute names, logs/retries/checkpoints/transitions/artifacts/custom events as
//! span events, errors as status ERROR plus an `exception` event.
//!
//! Span ids of steps are the SDK's; the root, operation and LLM spans get ids derived from the
//! trace/step ids and their position, so a re-export produces the same ids.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flowscope::wire::{self, EntryType, ErrorInfo, Event as WireEvent, OpAction, OpKind};
use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

use crate::trace::{Operation, Origin, Step, StepStatus, Trace, TraceStatus};

/// The instrumentation scope of every exported span.
pub fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("flowscope")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

/// The OTLP resource of an origin.
pub fn resource(origin: &Origin) -> Resource {
    let language = origin
        .sdk
        .split('/')
        .next()
        .filter(|l| !l.is_empty())
        .unwrap_or("unknown");
    let language = if language == "node" {
        "nodejs"
    } else {
        language
    };
    let mut attributes = vec![
        KeyValue::new("service.name", origin.service.clone()),
        KeyValue::new("service.instance.id", origin.instance_id()),
        KeyValue::new("telemetry.sdk.name", "flowscope"),
        KeyValue::new("telemetry.sdk.language", language.to_owned()),
        KeyValue::new(
            "telemetry.sdk.version",
            origin
                .sdk
                .split('/')
                .nth(1)
                .unwrap_or(env!("CARGO_PKG_VERSION"))
                .to_owned(),
        ),
    ];
    if let Some(pid) = origin.pid {
        attributes.push(KeyValue::new("process.pid", i64::from(pid)));
    }
    if let Some(host) = &origin.host {
        attributes.push(KeyValue::new("host.name", host.clone()));
    }
    Resource::builder_empty()
        .with_attributes(attributes)
        .build()
}

/// An OTLP int attribute: counts past `i64::MAX` saturate instead of turning negative.
fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn time(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

fn otel_trace_id(id: wire::TraceId) -> TraceId {
    TraceId::from_bytes(id.0.to_be_bytes())
}

fn otel_span_id(id: wire::SpanId) -> SpanId {
    SpanId::from_bytes(id.0.to_be_bytes())
}

/// splitmix64: a fixed, well-mixed derivation for synthetic span ids.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn derived(seed: u64) -> wire::SpanId {
    wire::SpanId(mix(seed).max(1))
}

/// The root span id of a trace.
pub fn root_span_id(trace: wire::TraceId) -> wire::SpanId {
    derived((trace.0 as u64) ^ ((trace.0 >> 64) as u64) ^ 0x0f10_5c09e)
}

/// The span id of the `index`-th operation (or LLM call when `llm`) under `parent`.
fn child_span_id(parent: wire::SpanId, index: usize, llm: bool) -> wire::SpanId {
    derived(parent.0 ^ mix(index as u64 + 1) ^ if llm { 0x11a } else { 0 })
}

fn context(trace: wire::TraceId, span: wire::SpanId) -> SpanContext {
    SpanContext::new(
        otel_trace_id(trace),
        otel_span_id(span),
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    )
}

/// What differs between the spans this module builds.
struct Parts {
    id: wire::SpanId,
    parent: Option<wire::SpanId>,
    kind: SpanKind,
    name: String,
    start: u64,
    end: u64,
    attributes: Vec<KeyValue>,
    events: Vec<Event>,
    status: Status,
}

fn span(trace: wire::TraceId, p: Parts) -> SpanData {
    let Parts {
        id,
        parent,
        kind,
        name,
        start,
        end,
        attributes,
        events,
        status,
    } = p;
    SpanData {
        span_context: context(trace, id),
        parent_span_id: parent.map_or(SpanId::INVALID, otel_span_id),
        parent_span_is_remote: false,
        span_kind: kind,
        name: Cow::Owned(name),
        start_time: time(start),
        end_time: time(end.max(start)),
        attributes,
        dropped_attributes_count: 0,
        events: span_events(events),
        links: SpanLinks::default(),
        status,
        instrumentation_scope: scope(),
    }
}

fn span_events(events: Vec<Event>) -> SpanEvents {
    let mut out = SpanEvents::default();
    out.events = events;
    out
}

fn exception(error: &ErrorInfo, at: u64) -> Event {
    let mut attributes = vec![KeyValue::new("exception.message", error.message.clone())];
    if let Some(kind) = &error.error_type {
        attributes.push(KeyValue::new("exception.type", kind.clone()));
    }
    if let Some(stack) = &error.stack {
        attributes.push(KeyValue::new("exception.stacktrace", stack.clone()));
    }
    if let Some(code) = &error.code {
        attributes.push(KeyValue::new("flowscope.error.code", code.clone()));
    }
    Event::new("exception", time(at), attributes, 0)
}

fn correlation_attributes(trace: &Trace, attributes: &mut Vec<KeyValue>) {
    if let Some(cid) = &trace.correlation_id {
        attributes.push(KeyValue::new("flowscope.correlation_id", cid.clone()));
        attributes.push(KeyValue::new("session.id", cid.clone()));
        attributes.push(KeyValue::new("gen_ai.conversation.id", cid.clone()));
    }
}

/// Span events for the step events that are not spans themselves (LLM calls are).
fn step_events(events: &[WireEvent]) -> Vec<Event> {
    events
        .iter()
        .filter_map(|event| {
            let (name, at, attributes): (&str, u64, Vec<KeyValue>) = match event {
                WireEvent::Log(e) => {
                    let mut attrs = vec![
                        KeyValue::new("log.severity", format!("{:?}", e.level).to_uppercase()),
                        KeyValue::new("log.message", e.msg.clone()),
                    ];
                    if let Some(fields) = &e.fields {
                        attrs.push(KeyValue::new(
                            "log.fields",
                            serde_json::Value::Object(fields.clone()).to_string(),
                        ));
                    }
                    ("log", e.t, attrs)
                }
                WireEvent::Retry(e) => {
                    let mut attrs = vec![KeyValue::new(
                        "flowscope.retry.attempt",
                        i64::from(e.attempt),
                    )];
                    if let Some(reason) = &e.reason {
                        attrs.push(KeyValue::new("flowscope.retry.reason", reason.clone()));
                    }
                    if let Some(backoff) = e.backoff_ms {
                        attrs.push(KeyValue::new("flowscope.retry.backoff_ms", int(backoff)));
                    }
                    ("retry", e.t, attrs)
                }
                WireEvent::Checkpoint(e) => (
                    "checkpoint",
                    e.t,
                    vec![KeyValue::new("flowscope.checkpoint.id", e.id.clone())],
                ),
                WireEvent::Transition(e) => {
                    let mut attrs = vec![
                        KeyValue::new("flowscope.transition.from", e.from.clone()),
                        KeyValue::new("flowscope.transition.to", e.to.clone()),
                    ];
                    if let Some(action) = &e.action {
                        attrs.push(KeyValue::new("flowscope.transition.action", action.clone()));
                    }
                    ("transition", e.t, attrs)
                }
                WireEvent::Artifact(e) => {
                    let mut attrs = vec![KeyValue::new("flowscope.artifact.name", e.name.clone())];
                    for (key, value) in [("url", &e.url), ("mime", &e.mime)] {
                        if let Some(v) = value {
                            attrs.push(KeyValue::new(
                                format!("flowscope.artifact.{key}"),
                                v.clone(),
                            ));
                        }
                    }
                    if let Some(size) = e.size {
                        attrs.push(KeyValue::new("flowscope.artifact.size", int(size)));
                    }
                    ("artifact", e.t, attrs)
                }
                WireEvent::Custom(e) => {
                    let mut attrs = vec![KeyValue::new("flowscope.event.name", e.name.clone())];
                    if let Some(payload) = &e.payload {
                        attrs.push(KeyValue::new(
                            "flowscope.event.payload",
                            payload.to_string(),
                        ));
                    }
                    ("custom", e.t, attrs)
                }
                _ => return None,
            };
            Some(Event::new(name, time(at), attributes, 0))
        })
        .collect()
}

fn action_name(action: OpAction) -> &'static str {
    match action {
        OpAction::Get => "get",
        OpAction::Set => "set",
        OpAction::Delete => "delete",
        OpAction::Clear => "clear",
        OpAction::Send => "send",
        OpAction::Other => "other",
    }
}

fn kind_name(kind: OpKind) -> &'static str {
    match kind {
        OpKind::State => "state",
        OpKind::Emit => "emit",
        OpKind::Stream => "stream",
    }
}

fn entry_name(entry: EntryType) -> &'static str {
    match entry {
        EntryType::Api => "api",
        EntryType::Cron => "cron",
        EntryType::Event => "event",
    }
}

fn op_name(op: &Operation) -> String {
    let action = action_name(op.action);
    let subject = op.subject.as_deref().unwrap_or("");
    match op.kind {
        OpKind::State => format!("state.{action} {subject}").trim_end().to_owned(),
        OpKind::Emit => format!("emit {subject}"),
        OpKind::Stream => format!("stream.{action} {subject}"),
    }
}

/// The span of the `index`-th operation of `step` (or of the trace when `step` is `None`).
pub fn op_span(trace: &Trace, step: Option<&Step>, index: usize, op: &Operation) -> SpanData {
    let parent = step.map_or_else(|| root_span_id(trace.id), |s| s.id);
    let mut attributes = vec![
        KeyValue::new("flowscope.op.kind", kind_name(op.kind)),
        KeyValue::new("flowscope.op.action", action_name(op.action)),
    ];
    let subject = op.subject.as_deref().map(str::to_owned);
    let detail = op.detail.as_deref().map(str::to_owned);
    match op.kind {
        OpKind::State => {
            attributes.extend(subject.map(|k| KeyValue::new("flowscope.state.key", k)))
        }
        OpKind::Emit => {
            attributes.extend(subject.map(|t| KeyValue::new("messaging.destination.name", t)));
            attributes.extend(detail.map(|s| KeyValue::new("flowscope.emit.target_step", s)));
        }
        OpKind::Stream => {
            attributes.extend(subject.map(|s| KeyValue::new("flowscope.stream.name", s)));
            attributes.extend(detail.map(|s| KeyValue::new("flowscope.stream.item_id", s)));
        }
    }
    let status = match &op.error {
        Some(message) => Status::error(message.to_string()),
        None if !op.ok => Status::error("operation failed"),
        None => Status::Unset,
    };
    let kind = if op.kind == OpKind::Emit {
        SpanKind::Producer
    } else {
        SpanKind::Internal
    };
    span(
        trace.id,
        Parts {
            id: child_span_id(parent, index, false),
            parent: Some(parent),
            kind,
            name: op_name(op),
            start: op.start_ns,
            end: op.start_ns.saturating_add(op.duration_ns),
            attributes,
            events: vec![],
            status,
        },
    )
}

/// The span of the `index`-th event of `step` (or of the trace), if it is an LLM call.
pub fn llm_span(
    trace: &Trace,
    step: Option<&Step>,
    index: usize,
    event: &WireEvent,
) -> Option<SpanData> {
    let WireEvent::Llm(llm) = event else {
        return None;
    };
    let parent = step.map_or_else(|| root_span_id(trace.id), |s| s.id);
    let mut attributes = vec![
        KeyValue::new("gen_ai.operation.name", "chat"),
        KeyValue::new("gen_ai.request.model", llm.model.clone()),
        KeyValue::new("openinference.span.kind", "LLM"),
        KeyValue::new("llm.model_name", llm.model.clone()),
    ];
    if let Some(provider) = &llm.provider {
        attributes.push(KeyValue::new("gen_ai.provider.name", provider.clone()));
        attributes.push(KeyValue::new("llm.provider", provider.clone()));
    }
    if let Some(input) = llm.input_tokens {
        attributes.push(KeyValue::new("gen_ai.usage.input_tokens", int(input)));
        attributes.push(KeyValue::new("llm.token_count.prompt", int(input)));
    }
    if let Some(output) = llm.output_tokens {
        attributes.push(KeyValue::new("gen_ai.usage.output_tokens", int(output)));
        attributes.push(KeyValue::new("llm.token_count.completion", int(output)));
    }
    if let (Some(input), Some(output)) = (llm.input_tokens, llm.output_tokens) {
        attributes.push(KeyValue::new(
            "llm.token_count.total",
            int(input.saturating_add(output)),
        ));
    }
    if let Some(cost) = llm.cost {
        attributes.push(KeyValue::new("llm.cost.total", cost));
    }
    let mut events = Vec::new();
    if let Some(prompt) = &llm.prompt {
        attributes.push(KeyValue::new(
            "gen_ai.input.messages",
            messages_json("user", prompt),
        ));
        attributes.push(KeyValue::new("input.value", prompt.clone()));
        events.push(Event::new(
            "gen_ai.content.prompt",
            time(llm.t),
            vec![KeyValue::new("gen_ai.prompt", prompt.clone())],
            0,
        ));
    }
    if let Some(response) = &llm.response {
        attributes.push(KeyValue::new(
            "gen_ai.output.messages",
            messages_json("assistant", response),
        ));
        attributes.push(KeyValue::new("output.value", response.clone()));
        let end = llm.t.saturating_add(llm.dur);
        events.push(Event::new(
            "gen_ai.content.completion",
            time(end),
            vec![KeyValue::new("gen_ai.completion", response.clone())],
            0,
        ));
    }
    correlation_attributes(trace, &mut attributes);
    Some(span(
        trace.id,
        Parts {
            id: child_span_id(parent, index, true),
            parent: Some(parent),
            kind: SpanKind::Client,
            name: format!("chat {}", llm.model),
            start: llm.t,
            end: llm.t.saturating_add(llm.dur),
            attributes,
            events,
            status: Status::Unset,
        },
    ))
}

/// `gen_ai.*.messages` JSON: the text as-is when it already is a JSON message array.
fn messages_json(role: &str, text: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value @ serde_json::Value::Array(_)) => value.to_string(),
        _ => serde_json::json!([{"role": role, "parts": [{"type": "text", "content": text}]}])
            .to_string(),
    }
}

/// The span of a step (its events become span events).
pub fn step_span(trace: &Trace, step: &Step) -> SpanData {
    let parent = step
        .parent
        .filter(|p| trace.step(*p).is_some())
        .unwrap_or_else(|| root_span_id(trace.id));
    let start = step.start_ns.or(step.end_ns).unwrap_or(trace.start_ns);
    let end = step.end_ns.unwrap_or(trace.last_event_ns);
    let mut attributes = vec![
        KeyValue::new("flowscope.step.name", step.name.clone()),
        KeyValue::new("flowscope.flow.name", trace.flow().to_owned()),
        KeyValue::new("openinference.span.kind", "CHAIN"),
        KeyValue::new("flowscope.ops.state", i64::from(step.counts.state)),
        KeyValue::new("flowscope.ops.emit", i64::from(step.counts.emit)),
        KeyValue::new("flowscope.ops.stream", i64::from(step.counts.stream)),
    ];
    correlation_attributes(trace, &mut attributes);
    let mut events = step_events(&step.events);
    let status = match (&step.error, step.status) {
        (Some(error), _) => {
            events.push(exception(error, end));
            Status::error(error.message.clone())
        }
        (None, StepStatus::Failed) => Status::error("step failed"),
        _ => Status::Ok,
    };
    span(
        trace.id,
        Parts {
            id: step.id,
            parent: Some(parent),
            kind: SpanKind::Internal,
            name: step.name.clone(),
            start,
            end,
            attributes,
            events,
            status,
        },
    )
}

/// The root span of a trace; `previous` is the trace before it in its group (a link).
pub fn root_span(trace: &Trace, previous: Option<wire::TraceId>) -> SpanData {
    let kind = match trace.entry {
        EntryType::Api => SpanKind::Server,
        EntryType::Event => SpanKind::Consumer,
        EntryType::Cron => SpanKind::Internal,
    };
    let mut attributes = vec![
        KeyValue::new("flowscope.flow.name", trace.flow().to_owned()),
        KeyValue::new("flowscope.entry.type", entry_name(trace.entry)),
        KeyValue::new("openinference.span.kind", "CHAIN"),
        KeyValue::new("flowscope.steps.total", trace.steps.len() as i64),
    ];
    if let Some(step) = &trace.entry_step {
        attributes.push(KeyValue::new("flowscope.entry.step", step.clone()));
    }
    correlation_attributes(trace, &mut attributes);
    if let Some(method) = trace.correlation_method {
        attributes.push(KeyValue::new(
            "flowscope.correlation.method",
            format!("{method:?}").to_lowercase(),
        ));
    }
    if let Some(reason) = trace.failure_reason {
        attributes.push(KeyValue::new("flowscope.failure_reason", reason));
    }
    for (key, value) in trace.attributes.iter().flatten() {
        let value = match value {
            serde_json::Value::String(s) => opentelemetry::Value::from(s.clone()),
            serde_json::Value::Bool(b) => (*b).into(),
            serde_json::Value::Number(n) if n.is_i64() => n.as_i64().unwrap_or_default().into(),
            serde_json::Value::Number(n) => n.as_f64().unwrap_or_default().into(),
            other => other.to_string().into(),
        };
        attributes.push(KeyValue::new(key.clone(), value));
    }
    let end = trace.end_ns.unwrap_or(trace.last_event_ns);
    let mut events = step_events(&trace.events);
    let status = match (trace.status, &trace.error) {
        (TraceStatus::Failed, Some(error)) => {
            events.push(exception(error, end));
            Status::error(error.message.clone())
        }
        (TraceStatus::Failed, None) => Status::error(trace.failure_reason.unwrap_or("failed")),
        (TraceStatus::Completed, _) => Status::Ok,
        (TraceStatus::Running, _) => Status::Unset,
    };
    let root = root_span_id(trace.id);
    let mut data = span(
        trace.id,
        Parts {
            id: root,
            parent: None,
            kind,
            name: format!("flow {}", trace.flow()),
            start: trace.start_ns,
            end,
            attributes,
            events,
            status,
        },
    );
    let mut links = Vec::new();
    if let Some(parent) = trace.parent_trace {
        links.push(Link::new(
            context(parent, root_span_id(parent)),
            vec![KeyValue::new("flowscope.link", "parent_trace")],
            0,
        ));
    }
    if let Some(previous) = previous.filter(|p| Some(*p) != trace.parent_trace) {
        links.push(Link::new(
            context(previous, root_span_id(previous)),
            vec![KeyValue::new("flowscope.link", "previous_in_group")],
            0,
        ));
    }
    data.links.links = links;
    data
}

/// Every span of a trace as it is now (for `GET /api/traces/{id}/export?format=otlp`).
pub fn trace_spans(trace: &Trace, previous: Option<wire::TraceId>) -> Vec<SpanData> {
    let mut spans = vec![root_span(trace, previous)];
    for step in &trace.steps {
        spans.push(step_span(trace, step));
        spans.extend(
            step.ops
                .iter()
                .enumerate()
                .map(|(i, op)| op_span(trace, Some(step), i, op)),
        );
        spans.extend(
            step.events
                .iter()
                .enumerate()
                .filter_map(|(i, e)| llm_span(trace, Some(step), i, e)),
        );
    }
    spans.extend(
        trace
            .ops
            .iter()
            .enumerate()
            .map(|(i, op)| op_span(trace, None, i, op)),
    );
    spans.extend(
        trace
            .events
            .iter()
            .enumerate()
            .filter_map(|(i, e)| llm_span(trace, None, i, e)),
    );
    spans
}
