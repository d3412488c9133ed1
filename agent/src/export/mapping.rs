//! flowscope traces → OpenTelemetry spans (ARCHITECTURE.md "OTLP mapping"):
//! a root span `flow <name>` per trace segment (one per service the trace crossed, parented to
//! the caller's client span), one span per step (CLIENT for outgoing calls), timed operations as child spans of
//! their step, LLM calls as `chat <model>` CLIENT spans carrying both the OTel GenAI and the
//! OpenInference attribute names, logs/retries/checkpoints/transitions/artifacts/custom events as
//! span events, errors as status ERROR plus an `exception` event.
//!
//! Span ids of steps are the SDK's; the root, operation and LLM spans get ids derived from the
//! trace/step ids and their position, so a re-export produces the same ids.
//!
//! Spans are built as OTLP protobuf messages (`opentelemetry-proto`) straight from the model:
//! the export worker sends them as they are, and `GET /api/traces/{id}/export?format=otlp` is
//! their OTLP/JSON form.

use flowscope::wire::{self, EntryType, ErrorInfo, Event as WireEvent, OpKind};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
pub use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, SpanFlags, Status};

use crate::trace::{Operation, Origin, Segment, Step, StepStatus, ThinStr, Trace, TraceStatus};

/// Span links of a root span: (trace, its root span) of the trace whose emit started it, and
/// of the previous trace in its group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RootLinks {
    /// The parent trace (event-based link).
    pub parent: Option<(wire::TraceId, wire::SpanId)>,
    /// The previous member of the trace's group.
    pub previous: Option<(wire::TraceId, wire::SpanId)>,
}

/// The root span id of segment `segment` of `trace`: the SDK's, else derived from the trace id.
pub fn segment_span_id(trace: &Trace, segment: &Segment) -> wire::SpanId {
    segment.span.unwrap_or_else(|| root_span_id(trace.id))
}

/// The root span id of the trace as a whole (its primary segment's).
pub fn primary_span_id(trace: &Trace) -> wire::SpanId {
    trace
        .segments
        .iter()
        .find(|s| s.started && s.remote_parent.is_none())
        .or_else(|| trace.segments.first())
        .map_or_else(|| root_span_id(trace.id), |s| segment_span_id(trace, s))
}

/// The span a step without a parent step hangs under: its segment's root.
fn step_root(trace: &Trace, step: &Step) -> wire::SpanId {
    trace
        .segment_of(step)
        .map_or_else(|| primary_span_id(trace), |s| segment_span_id(trace, s))
}

/// The origin (resource) a step's spans are exported under.
pub fn step_origin<'a>(trace: &'a Trace, step: Option<&Step>) -> &'a std::sync::Arc<Origin> {
    step.and_then(|s| trace.segment_of(s))
        .map_or(&trace.origin, |s| &s.origin)
}

/// An attribute with any OTLP value.
fn attribute(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

/// What an attribute's value is made from.
trait IntoValue {
    fn into_value(self) -> any_value::Value;
}

impl IntoValue for &str {
    fn into_value(self) -> any_value::Value {
        any_value::Value::StringValue(self.to_owned())
    }
}

impl IntoValue for String {
    fn into_value(self) -> any_value::Value {
        any_value::Value::StringValue(self)
    }
}

impl IntoValue for i64 {
    fn into_value(self) -> any_value::Value {
        any_value::Value::IntValue(self)
    }
}

impl IntoValue for f64 {
    fn into_value(self) -> any_value::Value {
        any_value::Value::DoubleValue(self)
    }
}

/// An attribute.
fn kv(key: &str, value: impl IntoValue) -> KeyValue {
    attribute(key, value.into_value())
}

fn json_attribute(key: &str, value: &serde_json::Value) -> KeyValue {
    let value = match value {
        serde_json::Value::String(s) => any_value::Value::StringValue(s.clone()),
        serde_json::Value::Bool(b) => any_value::Value::BoolValue(*b),
        serde_json::Value::Number(n) if n.is_i64() => {
            any_value::Value::IntValue(n.as_i64().unwrap_or_default())
        }
        serde_json::Value::Number(n) => {
            any_value::Value::DoubleValue(n.as_f64().unwrap_or_default())
        }
        other => any_value::Value::StringValue(other.to_string()),
    };
    attribute(key, value)
}

fn otel_kind(kind: wire::SpanKind) -> SpanKind {
    match kind {
        wire::SpanKind::Internal => SpanKind::Internal,
        wire::SpanKind::Client => SpanKind::Client,
        wire::SpanKind::Server => SpanKind::Server,
        wire::SpanKind::Producer => SpanKind::Producer,
        wire::SpanKind::Consumer => SpanKind::Consumer,
    }
}

/// The instrumentation scope of every exported span.
pub fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "flowscope".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        ..InstrumentationScope::default()
    }
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
        kv("service.name", origin.service.as_str()),
        kv("service.instance.id", origin.instance_id()),
        kv("telemetry.sdk.name", "flowscope"),
        kv("telemetry.sdk.language", language),
        kv(
            "telemetry.sdk.version",
            origin
                .sdk
                .split('/')
                .nth(1)
                .unwrap_or(env!("CARGO_PKG_VERSION")),
        ),
    ];
    if let Some(pid) = origin.pid {
        attributes.push(kv("process.pid", i64::from(pid)));
    }
    if let Some(host) = &origin.host {
        attributes.push(kv("host.name", host.as_str()));
    }
    Resource {
        attributes,
        ..Resource::default()
    }
}

/// One export request: `spans` under `resource` and the flowscope scope.
pub fn request(resource: Resource, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource),
            scope_spans: vec![ScopeSpans {
                scope: Some(scope()),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// An OTLP int attribute: counts past `i64::MAX` saturate instead of turning negative.
fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn trace_bytes(id: wire::TraceId) -> Vec<u8> {
    id.0.to_be_bytes().to_vec()
}

fn span_bytes(id: wire::SpanId) -> Vec<u8> {
    id.0.to_be_bytes().to_vec()
}

/// W3C flags (always sampled: unsampled traces are not exported) plus OTLP's "whether the
/// parent is remote is known" bit, and the bit saying it is.
fn flags(remote_parent: bool) -> u32 {
    let known = 0x01 | SpanFlags::ContextHasIsRemoteMask as u32;
    if remote_parent {
        known | SpanFlags::ContextIsRemoteMask as u32
    } else {
        known
    }
}

fn status(code: StatusCode, message: impl Into<String>) -> Status {
    Status {
        code: code as i32,
        message: message.into(),
    }
}

fn error_status(message: impl Into<String>) -> Status {
    status(StatusCode::Error, message)
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

/// What differs between the spans this module builds.
struct Parts {
    id: wire::SpanId,
    parent: Option<wire::SpanId>,
    /// The parent is another process's span (a segment root under its caller's client span).
    remote_parent: bool,
    kind: SpanKind,
    name: String,
    start: u64,
    end: u64,
    attributes: Vec<KeyValue>,
    events: Vec<Event>,
    links: Vec<Link>,
    status: Status,
}

fn span(trace: wire::TraceId, p: Parts) -> Span {
    Span {
        trace_id: trace_bytes(trace),
        span_id: span_bytes(p.id),
        parent_span_id: p.parent.map(span_bytes).unwrap_or_default(),
        flags: flags(p.remote_parent),
        name: p.name,
        kind: p.kind as i32,
        start_time_unix_nano: p.start,
        end_time_unix_nano: p.end.max(p.start),
        attributes: p.attributes,
        events: p.events,
        links: p.links,
        status: Some(p.status),
        ..Span::default()
    }
}

fn span_event(name: &str, at: u64, attributes: Vec<KeyValue>) -> Event {
    Event {
        time_unix_nano: at,
        name: name.to_owned(),
        attributes,
        dropped_attributes_count: 0,
    }
}

fn link(trace: wire::TraceId, span: wire::SpanId, kind: &str) -> Link {
    Link {
        trace_id: trace_bytes(trace),
        span_id: span_bytes(span),
        attributes: vec![kv("flowscope.link", kind)],
        flags: flags(false),
        ..Link::default()
    }
}

fn exception(error: &ErrorInfo, at: u64) -> Event {
    let mut attributes = vec![kv("exception.message", error.message.as_str())];
    if let Some(kind) = &error.error_type {
        attributes.push(kv("exception.type", kind.as_str()));
    }
    if let Some(stack) = &error.stack {
        attributes.push(kv("exception.stacktrace", stack.as_str()));
    }
    if let Some(code) = &error.code {
        attributes.push(kv("flowscope.error.code", code.as_str()));
    }
    span_event("exception", at, attributes)
}

fn correlation_attributes(trace: &Trace, attributes: &mut Vec<KeyValue>) {
    correlation_id_attributes(trace.correlation_id.as_deref(), attributes);
}

fn correlation_id_attributes(correlation_id: Option<&str>, attributes: &mut Vec<KeyValue>) {
    if let Some(cid) = correlation_id {
        attributes.push(kv("flowscope.correlation_id", cid.to_owned()));
        attributes.push(kv("session.id", cid.to_owned()));
        attributes.push(kv("gen_ai.conversation.id", cid.to_owned()));
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
                        kv("log.severity", format!("{:?}", e.level).to_uppercase()),
                        kv("log.message", e.msg.clone()),
                    ];
                    if let Some(fields) = &e.fields {
                        attrs.push(kv(
                            "log.fields",
                            serde_json::Value::Object(fields.clone()).to_string(),
                        ));
                    }
                    ("log", e.t, attrs)
                }
                WireEvent::Retry(e) => {
                    let mut attrs = vec![kv("flowscope.retry.attempt", i64::from(e.attempt))];
                    if let Some(reason) = &e.reason {
                        attrs.push(kv("flowscope.retry.reason", reason.clone()));
                    }
                    if let Some(backoff) = e.backoff_ms {
                        attrs.push(kv("flowscope.retry.backoff_ms", int(backoff)));
                    }
                    ("retry", e.t, attrs)
                }
                WireEvent::Checkpoint(e) => (
                    "checkpoint",
                    e.t,
                    vec![kv("flowscope.checkpoint.id", e.id.clone())],
                ),
                WireEvent::Transition(e) => {
                    let mut attrs = vec![
                        kv("flowscope.transition.from", e.from.clone()),
                        kv("flowscope.transition.to", e.to.clone()),
                    ];
                    if let Some(action) = &e.action {
                        attrs.push(kv("flowscope.transition.action", action.clone()));
                    }
                    ("transition", e.t, attrs)
                }
                WireEvent::Artifact(e) => {
                    let mut attrs = vec![kv("flowscope.artifact.name", e.name.clone())];
                    for (key, value) in [("url", &e.url), ("mime", &e.mime)] {
                        if let Some(v) = value {
                            attrs.push(kv(&format!("flowscope.artifact.{key}"), v.clone()));
                        }
                    }
                    if let Some(size) = e.size {
                        attrs.push(kv("flowscope.artifact.size", int(size)));
                    }
                    ("artifact", e.t, attrs)
                }
                WireEvent::Custom(e) => {
                    let mut attrs = vec![kv("flowscope.event.name", e.name.clone())];
                    if let Some(payload) = &e.payload {
                        attrs.push(kv("flowscope.event.payload", payload.to_string()));
                    }
                    ("custom", e.t, attrs)
                }
                _ => return None,
            };
            Some(span_event(name, at, attributes))
        })
        .collect()
}

fn op_name(op: &Operation) -> String {
    let action = op.action.as_str();
    let subject = op.subject.as_deref().unwrap_or("");
    match op.kind {
        OpKind::State => format!("state.{action} {subject}").trim_end().to_owned(),
        OpKind::Emit => format!("emit {subject}"),
        OpKind::Stream => format!("stream.{action} {subject}"),
    }
}

/// The span of the `index`-th operation of `step` (or of the trace when `step` is `None`).
pub fn op_span(trace: &Trace, step: Option<&Step>, index: usize, op: &Operation) -> Span {
    op_span_under(trace.id, op_parent(trace, step), index, op)
}

/// The span an operation of `step` (or of the trace) hangs under.
pub fn op_parent(trace: &Trace, step: Option<&Step>) -> wire::SpanId {
    step.map_or_else(|| primary_span_id(trace), |s| s.id)
}

/// The span of the `index`-th operation under `parent` in `trace`: all an operation's span needs,
/// so it can be built away from the store (see [`super::queue::QueuedSpan`]).
pub fn op_span_under(
    trace: wire::TraceId,
    parent: wire::SpanId,
    index: usize,
    op: &Operation,
) -> Span {
    let mut attributes = vec![
        kv("flowscope.op.kind", op.kind.as_str()),
        kv("flowscope.op.action", op.action.as_str()),
    ];
    let subject = op.subject.as_deref().map(str::to_owned);
    let detail = op.detail.as_deref().map(str::to_owned);
    match op.kind {
        OpKind::State => attributes.extend(subject.map(|k| kv("flowscope.state.key", k))),
        OpKind::Emit => {
            attributes.extend(subject.map(|t| kv("messaging.destination.name", t)));
            attributes.extend(detail.map(|s| kv("flowscope.emit.target_step", s)));
        }
        OpKind::Stream => {
            attributes.extend(subject.map(|s| kv("flowscope.stream.name", s)));
            attributes.extend(detail.map(|s| kv("flowscope.stream.item_id", s)));
        }
    }
    let status = match &op.error {
        Some(message) => error_status(message.to_string()),
        None if !op.ok => error_status("operation failed"),
        None => status(StatusCode::Unset, ""),
    };
    let kind = if op.kind == OpKind::Emit {
        SpanKind::Producer
    } else {
        SpanKind::Internal
    };
    span(
        trace,
        Parts {
            id: child_span_id(parent, index, false),
            parent: Some(parent),
            remote_parent: false,
            kind,
            name: op_name(op),
            start: op.start_ns,
            end: op.start_ns.saturating_add(op.duration_ns),
            attributes,
            events: vec![],
            links: vec![],
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
) -> Option<Span> {
    let WireEvent::Llm(llm) = event else {
        return None;
    };
    let parent = step.map_or_else(|| primary_span_id(trace), |s| s.id);
    let mut attributes = vec![
        kv("gen_ai.operation.name", "chat"),
        kv("gen_ai.request.model", llm.model.clone()),
        kv("openinference.span.kind", "LLM"),
        kv("llm.model_name", llm.model.clone()),
    ];
    if let Some(provider) = &llm.provider {
        attributes.push(kv("gen_ai.provider.name", provider.clone()));
        attributes.push(kv("llm.provider", provider.clone()));
    }
    if let Some(input) = llm.input_tokens {
        attributes.push(kv("gen_ai.usage.input_tokens", int(input)));
        attributes.push(kv("llm.token_count.prompt", int(input)));
    }
    if let Some(output) = llm.output_tokens {
        attributes.push(kv("gen_ai.usage.output_tokens", int(output)));
        attributes.push(kv("llm.token_count.completion", int(output)));
    }
    if let (Some(input), Some(output)) = (llm.input_tokens, llm.output_tokens) {
        attributes.push(kv(
            "llm.token_count.total",
            int(input.saturating_add(output)),
        ));
    }
    if let Some(cost) = llm.cost {
        attributes.push(kv("llm.cost.total", cost));
    }
    let mut events = Vec::new();
    if let Some(prompt) = &llm.prompt {
        attributes.push(kv("gen_ai.input.messages", messages_json("user", prompt)));
        attributes.push(kv("input.value", prompt.clone()));
        events.push(span_event(
            "gen_ai.content.prompt",
            llm.t,
            vec![kv("gen_ai.prompt", prompt.clone())],
        ));
    }
    if let Some(response) = &llm.response {
        attributes.push(kv(
            "gen_ai.output.messages",
            messages_json("assistant", response),
        ));
        attributes.push(kv("output.value", response.clone()));
        let end = llm.t.saturating_add(llm.dur);
        events.push(span_event(
            "gen_ai.content.completion",
            end,
            vec![kv("gen_ai.completion", response.clone())],
        ));
    }
    correlation_attributes(trace, &mut attributes);
    Some(span(
        trace.id,
        Parts {
            id: child_span_id(parent, index, true),
            parent: Some(parent),
            remote_parent: false,
            kind: SpanKind::Client,
            name: format!("chat {}", llm.model),
            start: llm.t,
            end: llm.t.saturating_add(llm.dur),
            attributes,
            events,
            links: vec![],
            status: status(StatusCode::Unset, ""),
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
pub fn step_span(trace: &Trace, step: &Step) -> Span {
    let (parent, start, end) = step_bounds(trace, step);
    step_span_of(
        trace.id,
        parent,
        (start, end),
        (trace.flow(), trace.correlation_id.as_deref()),
        step,
    )
}

/// A step's parent span and its start and end as exported.
fn step_bounds(trace: &Trace, step: &Step) -> (wire::SpanId, u64, u64) {
    let parent = step
        .parent
        .filter(|p| trace.step(*p).is_some())
        .unwrap_or_else(|| step_root(trace, step));
    let start = step.start_ns.or(step.end_ns).unwrap_or(trace.start_ns);
    let end = step.end_ns.unwrap_or(trace.last_event_ns);
    (parent, start, end)
}

/// What a step's span is built from: taken from the trace under the store's lock (the step
/// without its operations, which are spans of their own), built by the export worker.
#[derive(Debug, Clone)]
pub struct StepSpanSource {
    trace: wire::TraceId,
    parent: wire::SpanId,
    start: u64,
    end: u64,
    flow: ThinStr,
    correlation_id: Option<String>,
    step: Step,
}

impl StepSpanSource {
    /// The parts of `step`'s span.
    pub fn new(trace: &Trace, step: &Step) -> Self {
        let (parent, start, end) = step_bounds(trace, step);
        Self {
            trace: trace.id,
            parent,
            start,
            end,
            flow: flow_of(trace),
            correlation_id: trace.correlation_id.clone(),
            step: Step {
                id: step.id,
                parent: step.parent,
                name: step.name.clone(),
                status: step.status,
                start_ns: step.start_ns,
                end_ns: step.end_ns,
                error: step.error.clone(),
                counts: step.counts,
                ops: Vec::new(),
                events: step.events.clone(),
                depth: step.depth,
                segment: step.segment,
                kind: step.kind,
                attributes: step.attributes.clone(),
            },
        }
    }

    /// Text bytes it holds (for the queue's byte bound).
    pub fn text_bytes(&self) -> usize {
        self.flow.len()
            + self.step.name.len()
            + self.correlation_id.as_deref().map_or(0, str::len) * 3
            + self.step.error.as_ref().map_or(0, |e| e.message.len())
            + self.step.events.len() * 64
            + self.step.attributes.as_ref().map_or(0, |a| a.len() * 48)
    }

    /// The span.
    pub fn build(&self) -> Span {
        step_span_of(
            self.trace,
            self.parent,
            (self.start, self.end),
            (self.flow.as_str(), self.correlation_id.as_deref()),
            &self.step,
        )
    }
}

fn step_span_of(
    trace: wire::TraceId,
    parent: wire::SpanId,
    (start, end): (u64, u64),
    (flow, correlation_id): (&str, Option<&str>),
    step: &Step,
) -> Span {
    let mut attributes = vec![
        kv("flowscope.step.name", step.name.to_string()),
        kv("flowscope.flow.name", flow.to_owned()),
        kv("openinference.span.kind", "CHAIN"),
        kv("flowscope.ops.state", i64::from(step.counts.state)),
        kv("flowscope.ops.emit", i64::from(step.counts.emit)),
        kv("flowscope.ops.stream", i64::from(step.counts.stream)),
    ];
    correlation_id_attributes(correlation_id, &mut attributes);
    for (key, value) in step.attributes.as_deref().into_iter().flatten() {
        attributes.push(json_attribute(key, value));
    }
    let mut events = step_events(&step.events);
    let status = match (&step.error, step.status) {
        (Some(error), _) => {
            events.push(exception(error, end));
            error_status(error.message.clone())
        }
        (None, StepStatus::Failed) => error_status("step failed"),
        _ => status(StatusCode::Ok, ""),
    };
    span(
        trace,
        Parts {
            id: step.id,
            parent: Some(parent),
            remote_parent: false,
            kind: otel_kind(step.kind),
            name: step.name.to_string(),
            start,
            end,
            attributes,
            events,
            links: vec![],
            status,
        },
    )
}

/// The trace's flow name, shared (no copy).
fn flow_of(trace: &Trace) -> ThinStr {
    trace
        .flow_name
        .clone()
        .unwrap_or_else(|| crate::trace::unknown_flow().clone())
}

/// The root span of segment `index` of `trace` (the whole trace's root for its primary segment,
/// which carries the span links).
pub fn segment_span(trace: &Trace, index: usize, links: &RootLinks) -> Option<Span> {
    SegmentSpanSource::new(trace, index, links).map(|source| source.build())
}

/// What a segment's root span is built from: taken from the trace under the store's lock (shared
/// names, the segment's own fields, counts), built by the export worker.
#[derive(Debug, Clone)]
pub struct SegmentSpanSource {
    trace: wire::TraceId,
    id: wire::SpanId,
    primary: bool,
    segment: Segment,
    /// The trace's flow, for a segment that names none.
    trace_flow: ThinStr,
    steps_total: usize,
    dropped_events: u64,
    correlation_id: Option<String>,
    correlation_method: Option<wire::CorrelationMethod>,
    failure_reason: Option<&'static str>,
    end: u64,
    /// The trace's own events (logs and the like outside any step), on the primary root only.
    events: thin_vec::ThinVec<WireEvent>,
    links: RootLinks,
}

impl SegmentSpanSource {
    /// The parts of segment `index`'s root span; `None` when there is no such segment.
    pub fn new(trace: &Trace, index: usize, links: &RootLinks) -> Option<Self> {
        // A trace whose `trace_start` never arrived still gets a root for its steps to hang under.
        let segment = match trace.segments.get(index) {
            Some(segment) => segment.clone(),
            None if index == 0 && trace.segments.is_empty() => Segment {
                status: trace.status,
                end_ns: trace.end_ns,
                ..Segment::new(None, std::sync::Arc::clone(&trace.origin), trace.start_ns)
            },
            None => return None,
        };
        let id = segment_span_id(trace, &segment);
        let primary = id == primary_span_id(trace);
        let end = segment
            .end_ns
            .or(trace.end_ns)
            .unwrap_or(trace.last_event_ns);
        Some(Self {
            trace: trace.id,
            id,
            primary,
            segment,
            trace_flow: flow_of(trace),
            steps_total: trace.steps.len(),
            dropped_events: trace.dropped_events,
            correlation_id: trace.correlation_id.clone(),
            correlation_method: trace.correlation_method,
            failure_reason: trace.failure_reason,
            end,
            events: if primary {
                trace.events.clone()
            } else {
                thin_vec::ThinVec::new()
            },
            links: if primary {
                *links
            } else {
                RootLinks::default()
            },
        })
    }

    /// Text bytes it holds (for the queue's byte bound).
    pub fn text_bytes(&self) -> usize {
        self.segment.flow.len().max(self.trace_flow.len())
            + self.segment.entry_step.as_deref().map_or(0, str::len)
            + self.correlation_id.as_deref().map_or(0, str::len) * 3
            + self.segment.error.as_ref().map_or(0, |e| e.message.len())
            + self.events.len() * 64
            + self.segment.attributes.as_ref().map_or(0, |a| a.len() * 48)
    }

    /// The span.
    pub fn build(&self) -> Span {
        let segment = &self.segment;
        let kind = match segment.entry {
            EntryType::Api => SpanKind::Server,
            EntryType::Event => SpanKind::Consumer,
            EntryType::Cron if segment.remote_parent.is_some() => SpanKind::Server,
            EntryType::Cron => SpanKind::Internal,
        };
        let flow: &str = if segment.flow.is_empty() {
            &self.trace_flow
        } else {
            &segment.flow
        };
        let mut attributes = vec![
            kv("flowscope.flow.name", flow.to_owned()),
            kv("flowscope.entry.type", segment.entry.as_str()),
            kv("openinference.span.kind", "CHAIN"),
            kv("flowscope.steps.total", self.steps_total as i64),
        ];
        if self.dropped_events > 0 {
            attributes.push(kv(
                "flowscope.dropped_events",
                i64::try_from(self.dropped_events).unwrap_or(i64::MAX),
            ));
        }
        if let Some(step) = &segment.entry_step {
            attributes.push(kv("flowscope.entry.step", step.to_string()));
        }
        correlation_id_attributes(self.correlation_id.as_deref(), &mut attributes);
        if let Some(method) = self.correlation_method {
            attributes.push(kv(
                "flowscope.correlation.method",
                format!("{method:?}").to_lowercase(),
            ));
        }
        if self.primary
            && let Some(reason) = self.failure_reason
        {
            attributes.push(kv("flowscope.failure_reason", reason));
        }
        for (key, value) in segment.attributes.as_deref().into_iter().flatten() {
            attributes.push(json_attribute(key, value));
        }
        let end = self.end;
        let mut events = if self.primary {
            step_events(&self.events)
        } else {
            Vec::new()
        };
        let status = match (segment.status, &segment.error) {
            (TraceStatus::Failed, Some(error)) => {
                events.push(exception(error, end));
                error_status(error.message.clone())
            }
            (TraceStatus::Failed, None) => error_status(self.failure_reason.unwrap_or("failed")),
            (TraceStatus::Completed, _) => status(StatusCode::Ok, ""),
            (TraceStatus::Running, _) => status(StatusCode::Unset, ""),
        };
        let mut links = Vec::new();
        if self.primary {
            if let Some((parent, span)) = self.links.parent {
                links.push(link(parent, span, "parent_trace"));
            }
            if let Some((previous, span)) = self
                .links
                .previous
                .filter(|p| Some(*p) != self.links.parent)
            {
                links.push(link(previous, span, "previous_in_group"));
            }
        }
        span(
            self.trace,
            Parts {
                id: self.id,
                parent: segment.remote_parent,
                remote_parent: segment.remote_parent.is_some(),
                kind,
                name: format!("flow {flow}"),
                start: segment.start_ns,
                end,
                attributes,
                events,
                links,
                status,
            },
        )
    }
}

/// Every span of a trace as it is now, with the origin each is exported under (for
/// `GET /api/traces/{id}/export?format=otlp`).
pub fn trace_spans_by_origin<'a>(
    trace: &'a Trace,
    links: &RootLinks,
) -> Vec<(&'a std::sync::Arc<Origin>, Span)> {
    let mut spans: Vec<(&std::sync::Arc<Origin>, Span)> = (0..trace.segments.len().max(1))
        .filter_map(|i| {
            let origin = trace.segments.get(i).map_or(&trace.origin, |s| &s.origin);
            Some((origin, segment_span(trace, i, links)?))
        })
        .collect();
    for step in &trace.steps {
        let origin = step_origin(trace, Some(step));
        spans.push((origin, step_span(trace, step)));
        spans.extend(
            step.ops
                .iter()
                .enumerate()
                .map(|(i, op)| (origin, op_span(trace, Some(step), i, op))),
        );
        spans.extend(
            step.events
                .iter()
                .enumerate()
                .filter_map(|(i, e)| Some((origin, llm_span(trace, Some(step), i, e)?))),
        );
    }
    spans.extend(
        trace
            .ops
            .iter()
            .enumerate()
            .map(|(i, op)| (&trace.origin, op_span(trace, None, i, op))),
    );
    spans.extend(
        trace
            .events
            .iter()
            .enumerate()
            .filter_map(|(i, e)| Some((&trace.origin, llm_span(trace, None, i, e)?))),
    );
    spans
}

/// Every span of a trace as it is now.
pub fn trace_spans(trace: &Trace, links: &RootLinks) -> Vec<Span> {
    trace_spans_by_origin(trace, links)
        .into_iter()
        .map(|(_, span)| span)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_span_ids_are_valid_stable_and_distinct() {
        let trace = wire::TraceId(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736);
        let root = root_span_id(trace);
        assert!(root.is_valid());
        assert_eq!(
            root,
            root_span_id(trace),
            "the same trace always gets the same root"
        );
        assert_ne!(root, root_span_id(wire::TraceId(trace.0 + 1)));
        let parent = wire::SpanId(0x00f0_67aa_0ba9_02b7);
        let mut ids = std::collections::HashSet::new();
        for index in 0..1000 {
            for llm in [false, true] {
                let id = child_span_id(parent, index, llm);
                assert!(id.is_valid());
                assert!(ids.insert(id), "op {index} (llm {llm}) collides");
            }
        }
        assert!(!ids.contains(&parent) && !ids.contains(&root));
        // A seed that mixes to zero still gives a valid id.
        assert!(derived(0).is_valid());
    }
}
