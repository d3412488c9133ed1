//! OTLP spans → flowscope events, so OpenTelemetry-instrumented apps feed the same builder as the
//! SDKs (the table is in ARCHITECTURE.md, "OTLP ingest"):
//!
//! - a span with no parent, a remote parent, or (parent locality unknown) of kind SERVER or
//!   CONSUMER is a **segment root**: `trace_start`/`trace_end` of that service's part, its name the
//!   flow unless `flowscope.flow` / `workflow.name` says otherwise;
//! - every other span is a **step** under its parent, with its kind, attributes and status;
//! - GenAI / OpenInference LLM spans also carry an `llm` event, messaging PRODUCER spans an emit op,
//!   Redis-style single-key commands (or `flowscope.state.*` attributes) a state op;
//! - span events are logs; an `exception` event or an ERROR status is the step's error;
//! - `session.id`, `gen_ai.conversation.id` or `flowscope.correlation_id` joins a group.

use std::collections::HashSet;
use std::sync::Arc;

use flowscope::wire::{
    Attributes, Correlate, CorrelationMethod, EndStatus, EntryType, ErrorInfo, Event, Llm, Log,
    LogLevel, Op, OpAction, OpKind, SpanId, SpanKind, StepEnd, StepStart, TraceEnd, TraceId,
    TraceStart,
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span, span, status};
use serde_json::Value;

use crate::trace::Origin;

/// Attributes kept per span (the rest are counted, not stored).
pub const MAX_ATTRIBUTES: usize = 128;
/// Nesting kept inside one attribute value; deeper parts become `"…"`.
const MAX_VALUE_DEPTH: usize = 8;
/// Events (logs) kept per span.
const MAX_SPAN_EVENTS: usize = 128;
/// `flags` bit: whether the parent's locality is known.
const HAS_IS_REMOTE: u32 = 0x100;
/// `flags` bit: the parent is remote.
const IS_REMOTE: u32 = 0x200;

/// One request, mapped.
#[derive(Debug, Default)]
pub struct Mapped {
    /// Per resource: who sent it, and the events of its spans in order.
    pub batches: Vec<(Arc<Origin>, Vec<Event>)>,
    /// Spans mapped.
    pub accepted: u64,
    /// Spans refused (invalid ids).
    pub rejected: u64,
    /// Why the first refused span was refused.
    pub first_error: Option<String>,
}

/// Maps every span of `request`.
pub fn map_request(request: &ExportTraceServiceRequest) -> Mapped {
    let mut mapped = Mapped::default();
    for resource_spans in &request.resource_spans {
        let resource = resource_spans
            .resource
            .as_ref()
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        let origin = Arc::new(origin_of(&resource));
        let mut events = Vec::new();
        let mut correlated = HashSet::new();
        for scope in &resource_spans.scope_spans {
            for span in &scope.spans {
                match map_span(span, &resource, &mut correlated, &mut events) {
                    Ok(()) => mapped.accepted += 1,
                    Err(why) => {
                        mapped.rejected += 1;
                        mapped.first_error.get_or_insert_with(|| why.to_owned());
                    }
                }
            }
        }
        if !events.is_empty() {
            mapped.batches.push((origin, events));
        }
    }
    mapped
}

/// The sender of a resource's spans.
fn origin_of(resource: &Attributes) -> Origin {
    let text = |key: &str| resource.get(key).and_then(Value::as_str);
    let sdk = match (
        text("telemetry.sdk.language"),
        text("telemetry.sdk.version"),
    ) {
        (Some(lang), Some(version)) => format!("otlp/{lang}/{version}"),
        (Some(lang), None) => format!("otlp/{lang}"),
        _ => "otlp".to_owned(),
    };
    Origin {
        service: text("service.name")
            .filter(|s| !s.is_empty())
            .unwrap_or("unknown_service")
            .to_owned(),
        sdk,
        pid: resource
            .get("process.pid")
            .and_then(Value::as_u64)
            .and_then(|p| u32::try_from(p).ok()),
        host: text("host.name").map(str::to_owned),
        otlp: true,
    }
}

fn trace_id(bytes: &[u8]) -> Option<TraceId> {
    let id = TraceId(u128::from_be_bytes(bytes.try_into().ok()?));
    id.is_valid().then_some(id)
}

fn span_id(bytes: &[u8]) -> Option<SpanId> {
    let id = SpanId(u64::from_be_bytes(bytes.try_into().ok()?));
    id.is_valid().then_some(id)
}

fn span_kind(kind: i32) -> SpanKind {
    match span::SpanKind::try_from(kind) {
        Ok(span::SpanKind::Server) => SpanKind::Server,
        Ok(span::SpanKind::Client) => SpanKind::Client,
        Ok(span::SpanKind::Producer) => SpanKind::Producer,
        Ok(span::SpanKind::Consumer) => SpanKind::Consumer,
        _ => SpanKind::Internal,
    }
}

/// Whether a span with this parent, flags and kind begins a service's part of the trace.
fn is_segment_root(parent: Option<SpanId>, flags: u32, kind: SpanKind) -> bool {
    if parent.is_none() {
        return true;
    }
    if flags & HAS_IS_REMOTE != 0 {
        return flags & IS_REMOTE != 0;
    }
    matches!(kind, SpanKind::Server | SpanKind::Consumer)
}

/// The first of `keys` present as a string.
fn first_text<'a>(attrs: &'a Attributes, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| attrs.get(*k).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
}

/// The first of `keys` present as a non-negative integer (ints, or integer strings).
fn first_count(attrs: &Attributes, keys: &[&str]) -> Option<u64> {
    keys.iter().find_map(|k| match attrs.get(*k)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    })
}

fn first_number(attrs: &Attributes, keys: &[&str]) -> Option<f64> {
    keys.iter().find_map(|k| match attrs.get(*k)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    })
}

/// The correlation id a span names.
fn correlation_id(attrs: &Attributes, resource: &Attributes) -> Option<String> {
    const KEYS: [&str; 3] = [
        "flowscope.correlation_id",
        "session.id",
        "gen_ai.conversation.id",
    ];
    first_text(attrs, &KEYS)
        .or_else(|| first_text(resource, &KEYS))
        .map(str::to_owned)
}

fn entry_of(kind: SpanKind, attrs: &Attributes) -> EntryType {
    match first_text(attrs, &["flowscope.entry", "faas.trigger"]) {
        Some("api" | "http") => return EntryType::Api,
        Some("cron" | "timer") => return EntryType::Cron,
        Some("event" | "pubsub" | "datasource") => return EntryType::Event,
        _ => {}
    }
    match kind {
        SpanKind::Consumer => EntryType::Event,
        _ if attrs.contains_key("messaging.system") => EntryType::Event,
        _ => EntryType::Api,
    }
}

/// A failed span's error: its last `exception` event (type, message, stack), else the ERROR
/// status's message. An exception on a span that did not fail stays a log line only.
fn error_of(span: &Span, failed: bool) -> Option<ErrorInfo> {
    if !failed {
        return None;
    }
    let status_message = span
        .status
        .as_ref()
        .map(|s| s.message.clone())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "error".into());
    let Some(event) = span.events.iter().rev().find(|e| e.name == "exception") else {
        return Some(ErrorInfo::new(status_message));
    };
    let attrs = attributes(&event.attributes);
    let text = |k: &str| first_text(&attrs, &[k]).map(str::to_owned);
    Some(ErrorInfo {
        message: text("exception.message").unwrap_or(status_message),
        error_type: text("exception.type"),
        code: None,
        stack: text("exception.stacktrace"),
    })
}

fn level_of(name: &str, attrs: &Attributes) -> LogLevel {
    if name == "exception" {
        return LogLevel::Error;
    }
    let given = first_text(attrs, &["level", "log.level", "severity", "log.severity"]);
    match given.map(str::to_ascii_lowercase).as_deref() {
        Some("trace") => LogLevel::Trace,
        Some("debug") => LogLevel::Debug,
        Some("warn" | "warning") => LogLevel::Warn,
        Some("error" | "fatal" | "critical") => LogLevel::Error,
        _ => LogLevel::Info,
    }
}

/// An `llm` event for GenAI semantic-convention or OpenInference LLM spans.
fn llm_of(trace: TraceId, owner: Option<SpanId>, span: &Span, attrs: &Attributes) -> Option<Llm> {
    let openinference = first_text(attrs, &["openinference.span.kind"])
        .is_some_and(|k| k.eq_ignore_ascii_case("llm"));
    let model = first_text(
        attrs,
        &[
            "gen_ai.response.model",
            "gen_ai.request.model",
            "llm.model_name",
        ],
    );
    let genai = attrs.contains_key("gen_ai.system")
        || attrs.contains_key("gen_ai.provider.name")
        || attrs.contains_key("gen_ai.operation.name");
    if !(openinference || (genai && model.is_some())) {
        return None;
    }
    let prompt = first_text(
        attrs,
        &[
            "gen_ai.input.messages",
            "gen_ai.prompt",
            "gen_ai.prompt.0.content",
            "llm.input_messages.0.message.content",
            "input.value",
        ],
    )
    .map(str::to_owned)
    .or_else(|| event_text(span, &["gen_ai.user.message", "gen_ai.content.prompt"]));
    let response = first_text(
        attrs,
        &[
            "gen_ai.output.messages",
            "gen_ai.completion",
            "gen_ai.completion.0.content",
            "llm.output_messages.0.message.content",
            "output.value",
        ],
    )
    .map(str::to_owned)
    .or_else(|| event_text(span, &["gen_ai.choice", "gen_ai.content.completion"]));
    Some(Llm {
        t: span.start_time_unix_nano,
        trace,
        span: owner,
        model: model.unwrap_or("unknown").to_owned(),
        provider: first_text(
            attrs,
            &[
                "gen_ai.provider.name",
                "gen_ai.system",
                "llm.provider",
                "llm.system",
            ],
        )
        .map(str::to_owned),
        prompt,
        response,
        input_tokens: first_count(
            attrs,
            &[
                "gen_ai.usage.input_tokens",
                "gen_ai.usage.prompt_tokens",
                "llm.token_count.prompt",
            ],
        ),
        output_tokens: first_count(
            attrs,
            &[
                "gen_ai.usage.output_tokens",
                "gen_ai.usage.completion_tokens",
                "llm.token_count.completion",
            ],
        ),
        cost: first_number(attrs, &["gen_ai.usage.cost", "llm.cost.total"]),
        dur: duration(span),
    })
}

/// The text of the first span event named one of `names` (older GenAI content events).
fn event_text(span: &Span, names: &[&str]) -> Option<String> {
    let event = span
        .events
        .iter()
        .find(|e| names.contains(&e.name.as_str()))?;
    let attrs = attributes(&event.attributes);
    first_text(&attrs, &["content", "gen_ai.prompt", "gen_ai.completion"])
        .map(str::to_owned)
        .or_else(|| (!attrs.is_empty()).then(|| Value::Object(attrs).to_string()))
}

fn duration(span: &Span) -> u64 {
    span.end_time_unix_nano
        .saturating_sub(span.start_time_unix_nano)
}

/// An op on `subject` spanning `span`'s time, owned by `owner`.
fn timed_op(
    (trace, owner, span): (TraceId, Option<SpanId>, &Span),
    kind: OpKind,
    action: OpAction,
    subject: String,
    failed: bool,
) -> Op {
    let mut op = Op::new(kind, action, Some(subject.into()), None);
    op.t = span.start_time_unix_nano;
    op.trace = trace;
    op.span = owner;
    op.dur = duration(span);
    op.ok = !failed;
    op
}

/// An emit op for a messaging span that sends (PRODUCER, or a publish/send operation).
fn emit_of(
    trace: TraceId,
    owner: Option<SpanId>,
    span: &Span,
    kind: SpanKind,
    attrs: &Attributes,
    failed: bool,
) -> Option<Op> {
    attrs.get("messaging.system")?;
    let sends = kind == SpanKind::Producer
        || matches!(
            first_text(attrs, &["messaging.operation.type", "messaging.operation"]),
            Some("publish" | "send" | "create")
        );
    if !sends {
        return None;
    }
    let topic = first_text(
        attrs,
        &["messaging.destination.name", "messaging.destination"],
    )?;
    Some(timed_op(
        (trace, owner, span),
        OpKind::Emit,
        OpAction::Send,
        topic.to_owned(),
        failed,
    ))
}

/// A state op where the span names exactly one key: `flowscope.state.key` (+ `.action`), or a
/// Redis/Valkey/Memcached single-key command in `db.query.text` / `db.statement`.
fn state_of(
    trace: TraceId,
    owner: Option<SpanId>,
    span: &Span,
    attrs: &Attributes,
    failed: bool,
) -> Option<Op> {
    let action_of = |word: &str| match word.to_ascii_lowercase().as_str() {
        "get" | "hget" | "hgetall" | "exists" => Some(OpAction::Get),
        "set" | "setex" | "psetex" | "setnx" | "hset" | "getset" => Some(OpAction::Set),
        "del" | "unlink" | "hdel" | "delete" => Some(OpAction::Delete),
        "clear" | "flushdb" => Some(OpAction::Clear),
        _ => None,
    };
    let (action, key) = if let Some(key) = first_text(attrs, &["flowscope.state.key"]) {
        let action = first_text(attrs, &["flowscope.state.action"])
            .and_then(action_of)
            .unwrap_or(OpAction::Other);
        (action, key.to_owned())
    } else {
        let system = first_text(attrs, &["db.system.name", "db.system"])?;
        if !matches!(system, "redis" | "valkey" | "memcached") {
            return None;
        }
        let statement = first_text(attrs, &["db.query.text", "db.statement"])?;
        let mut words = statement.split_whitespace();
        let action = action_of(words.next()?)?;
        let key = words.next().filter(|k| *k != "?")?;
        // Multi-key forms (`DEL a b`) are ambiguous: only commands naming one key count.
        if action == OpAction::Delete && words.next().is_some() {
            return None;
        }
        (action, key.to_owned())
    };
    Some(timed_op(
        (trace, owner, span),
        OpKind::State,
        action,
        key,
        failed,
    ))
}

/// Appends the events of one span; refuses spans with invalid ids.
fn map_span(
    span: &Span,
    resource: &Attributes,
    correlated: &mut HashSet<(TraceId, String)>,
    out: &mut Vec<Event>,
) -> Result<(), &'static str> {
    let trace = trace_id(&span.trace_id).ok_or("invalid trace id")?;
    let id = span_id(&span.span_id).ok_or("invalid span id")?;
    let parent = match span.parent_span_id.len() {
        0 => None,
        _ => Some(span_id(&span.parent_span_id).ok_or("invalid parent span id")?),
    };
    let attrs = attributes(&span.attributes);
    let kind = span_kind(span.kind);
    let failed = span
        .status
        .as_ref()
        .is_some_and(|s| s.code == status::StatusCode::Error as i32);
    let end_status = if failed {
        EndStatus::Failed
    } else {
        EndStatus::Completed
    };
    let error = error_of(span, failed);
    let start = span.start_time_unix_nano;
    let end = span.end_time_unix_nano.max(start);
    let root = is_segment_root(parent, span.flags, kind);
    let owner = (!root).then_some(id);
    let cid = correlation_id(&attrs, resource);

    if root {
        let w3c = (span.flags & 0xff) as u8;
        out.push(Event::TraceStart(Box::new(TraceStart {
            t: start,
            trace,
            flow: first_text(&attrs, &["flowscope.flow", "workflow.name"])
                .unwrap_or(&span.name)
                .to_owned(),
            entry: entry_of(kind, &attrs),
            step: Some(span.name.clone()).filter(|n| !n.is_empty()),
            cid: cid.clone(),
            parent: None,
            attrs: Some(attrs.clone()).filter(|a| !a.is_empty()),
            span: Some(id),
            remote_parent: parent,
            // Exported spans were recorded; a sender that leaves flags out sampled them.
            flags: Some(if span.flags == 0 { 1 } else { w3c }),
        })));
        if let Some(cid) = cid {
            correlated.insert((trace, cid));
        }
    } else {
        out.push(Event::StepStart(StepStart {
            t: start,
            trace,
            span: id,
            parent,
            name: span.name.clone().into(),
            kind,
            attrs: Some(attrs.clone()).filter(|a| !a.is_empty()),
        }));
        if let Some(cid) = cid
            && correlated.insert((trace, cid.clone()))
        {
            out.push(Event::Correlate(Correlate {
                t: start,
                trace,
                cid,
                method: CorrelationMethod::Manual,
                name: None,
            }));
        }
    }
    if let Some(llm) = llm_of(trace, owner, span, &attrs) {
        out.push(Event::Llm(Box::new(llm)));
    }
    if let Some(op) = emit_of(trace, owner, span, kind, &attrs, failed) {
        out.push(Event::Op(op));
    } else if let Some(op) = state_of(trace, owner, span, &attrs, failed) {
        out.push(Event::Op(op));
    }
    for event in span.events.iter().take(MAX_SPAN_EVENTS) {
        let fields = attributes(&event.attributes);
        let msg = match event.name.as_str() {
            "exception" => first_text(&fields, &["exception.message"])
                .unwrap_or("exception")
                .to_owned(),
            name => name.to_owned(),
        };
        out.push(Event::Log(Log {
            t: event.time_unix_nano.max(1),
            trace,
            span: owner,
            level: level_of(&event.name, &fields),
            msg,
            fields: Some(fields).filter(|f| !f.is_empty()),
        }));
    }
    if root {
        out.push(Event::TraceEnd(TraceEnd {
            t: end,
            trace,
            status: end_status,
            error: error.map(Box::new),
            span: Some(id),
        }));
    } else {
        out.push(Event::StepEnd(StepEnd {
            t: end,
            trace,
            span: id,
            status: end_status,
            error: error.map(Box::new),
            name: None,
            attrs: None,
        }));
    }
    Ok(())
}

/// OTLP key/values as a JSON map (at most [`MAX_ATTRIBUTES`]; the first value of a repeated key
/// wins).
pub fn attributes(pairs: &[KeyValue]) -> Attributes {
    let mut map = Attributes::new();
    for pair in pairs {
        if map.len() >= MAX_ATTRIBUTES {
            break;
        }
        if !map.contains_key(&pair.key) {
            map.insert(pair.key.clone(), any_value(pair.value.as_ref(), 0));
        }
    }
    map
}

fn any_value(value: Option<&AnyValue>, depth: usize) -> Value {
    let Some(value) = value.and_then(|v| v.value.as_ref()) else {
        return Value::Null;
    };
    if depth >= MAX_VALUE_DEPTH {
        return Value::String("…".into());
    }
    match value {
        any_value::Value::StringValue(s) => Value::String(s.clone()),
        any_value::Value::BoolValue(b) => Value::Bool(*b),
        any_value::Value::IntValue(i) => Value::from(*i),
        any_value::Value::DoubleValue(d) => {
            serde_json::Number::from_f64(*d).map_or(Value::Null, Value::Number)
        }
        any_value::Value::BytesValue(b) => Value::String(hex::encode(b)),
        any_value::Value::ArrayValue(array) => Value::Array(
            array
                .values
                .iter()
                .take(MAX_ATTRIBUTES)
                .map(|v| any_value(Some(v), depth + 1))
                .collect(),
        ),
        // An index into a profiles dictionary: meaningless without it.
        any_value::Value::StringValueStrindex(_) => Value::Null,
        any_value::Value::KvlistValue(list) => Value::Object(
            list.values
                .iter()
                .take(MAX_ATTRIBUTES)
                .map(|kv| (kv.key.clone(), any_value(kv.value.as_ref(), depth + 1)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{
        ResourceSpans, ScopeSpans, Status, span::Event as SpanEvent,
    };

    fn kv(key: &str, value: V) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..KeyValue::default()
        }
    }

    fn span(id: u8, parent: Option<u8>, kind: span::SpanKind, name: &str) -> Span {
        Span {
            trace_id: vec![7; 16],
            span_id: vec![id; 8],
            parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
            name: name.into(),
            kind: kind as i32,
            start_time_unix_nano: 1_000 * u64::from(id),
            end_time_unix_nano: 1_000 * u64::from(id) + 500,
            ..Span::default()
        }
    }

    fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", V::StringValue("checkout".into()))],
                    ..Resource::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        }
    }

    #[test]
    fn roots_become_segments_and_children_steps() {
        let mut server = span(1, None, span::SpanKind::Server, "POST /orders");
        server
            .attributes
            .push(kv("workflow.name", V::StringValue("order".into())));
        let child = span(2, Some(1), span::SpanKind::Internal, "validate");
        let mapped = map_request(&request(vec![child, server]));
        assert_eq!((mapped.accepted, mapped.rejected), (2, 0));
        let (origin, events) = &mapped.batches[0];
        assert_eq!(origin.service, "checkout");
        assert!(origin.otlp);
        let kinds: Vec<_> = events.iter().map(|e| e.kind()).collect();
        assert_eq!(
            kinds,
            ["step_start", "step_end", "trace_start", "trace_end"]
        );
        let Event::TraceStart(start) = &events[2] else {
            unreachable!()
        };
        assert_eq!(start.flow, "order");
        assert_eq!(start.entry, EntryType::Api);
        assert_eq!(start.remote_parent, None);
    }

    #[test]
    fn parent_locality_decides_segments_when_known() {
        // A SERVER span whose parent is known to be local is a step, not a segment.
        let mut local = span(3, Some(1), span::SpanKind::Server, "inner");
        local.flags = HAS_IS_REMOTE;
        let mut remote = span(4, Some(9), span::SpanKind::Internal, "continued");
        remote.flags = HAS_IS_REMOTE | IS_REMOTE | 1;
        let mapped = map_request(&request(vec![local, remote]));
        let events = &mapped.batches[0].1;
        assert!(matches!(events[0], Event::StepStart(_)));
        let Event::TraceStart(start) = &events[2] else {
            unreachable!("{events:?}")
        };
        assert_eq!(
            start.remote_parent,
            Some(SpanId(u64::from_be_bytes([9; 8])))
        );
        assert_eq!(start.flags, Some(1));
    }

    #[test]
    fn invalid_ids_are_refused_with_a_reason() {
        let mut bad = span(1, None, span::SpanKind::Server, "x");
        bad.trace_id = vec![0; 16];
        let mut short = span(2, None, span::SpanKind::Server, "y");
        short.span_id = vec![1; 3];
        let mapped = map_request(&request(vec![
            bad,
            short,
            span(3, None, span::SpanKind::Server, "ok"),
        ]));
        assert_eq!((mapped.accepted, mapped.rejected), (1, 2));
        assert_eq!(mapped.first_error.as_deref(), Some("invalid trace id"));
    }

    #[test]
    fn llm_messaging_state_and_errors_are_recognised() {
        let mut llm = span(2, Some(1), span::SpanKind::Client, "chat gpt-4o");
        llm.attributes = vec![
            kv("gen_ai.provider.name", V::StringValue("openai".into())),
            kv("gen_ai.request.model", V::StringValue("gpt-4o".into())),
            kv("gen_ai.usage.input_tokens", V::IntValue(12)),
            kv("gen_ai.usage.output_tokens", V::IntValue(30)),
            kv("session.id", V::StringValue("thread-1".into())),
        ];
        let mut publish = span(3, Some(1), span::SpanKind::Producer, "orders publish");
        publish.attributes = vec![
            kv("messaging.system", V::StringValue("kafka".into())),
            kv(
                "messaging.destination.name",
                V::StringValue("orders".into()),
            ),
        ];
        let mut redis = span(4, Some(1), span::SpanKind::Client, "GET");
        redis.attributes = vec![
            kv("db.system", V::StringValue("redis".into())),
            kv("db.statement", V::StringValue("GET user:42".into())),
        ];
        let mut failing = span(5, Some(1), span::SpanKind::Internal, "charge");
        failing.status = Some(Status {
            code: status::StatusCode::Error as i32,
            message: "card declined".into(),
        });
        failing.events = vec![SpanEvent {
            name: "exception".into(),
            time_unix_nano: 5_100,
            attributes: vec![
                kv("exception.type", V::StringValue("PaymentError".into())),
                kv("exception.message", V::StringValue("declined".into())),
                kv("exception.stacktrace", V::StringValue("at charge()".into())),
            ],
            dropped_attributes_count: 0,
        }];
        let mapped = map_request(&request(vec![llm, publish, redis, failing]));
        let events = &mapped.batches[0].1;
        let llm = events.iter().find_map(|e| match e {
            Event::Llm(l) => Some(l),
            _ => None,
        });
        let llm = llm.expect("llm event");
        assert_eq!(
            (llm.model.as_str(), llm.provider.as_deref()),
            ("gpt-4o", Some("openai"))
        );
        assert_eq!((llm.input_tokens, llm.output_tokens), (Some(12), Some(30)));
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Correlate(c) if c.cid == "thread-1"))
        );
        let ops: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                Event::Op(op) => Some((op.kind, op.action, op.subject.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            ops,
            [
                (OpKind::Emit, OpAction::Send, Some("orders".into())),
                (OpKind::State, OpAction::Get, Some("user:42".into())),
            ]
        );
        let end = events.iter().find_map(|e| match e {
            Event::StepEnd(end) if end.status == EndStatus::Failed => Some(end),
            _ => None,
        });
        let error = end.and_then(|e| e.error.clone()).expect("failed step");
        assert_eq!(error.message, "declined");
        assert_eq!(error.error_type.as_deref(), Some("PaymentError"));
        assert_eq!(error.stack.as_deref(), Some("at charge()"));
    }

    #[test]
    fn values_are_bounded_in_count_and_depth() {
        let mut value = AnyValue {
            value: Some(V::StringValue("leaf".into())),
        };
        for _ in 0..50 {
            value = AnyValue {
                value: Some(V::ArrayValue(
                    opentelemetry_proto::tonic::common::v1::ArrayValue {
                        values: vec![value],
                    },
                )),
            };
        }
        let mut pairs: Vec<_> = (0..1000)
            .map(|i| kv(&format!("k{i}"), V::IntValue(i)))
            .collect();
        pairs.insert(
            0,
            KeyValue {
                key: "deep".into(),
                value: Some(value),
                ..KeyValue::default()
            },
        );
        let map = attributes(&pairs);
        assert_eq!(map.len(), MAX_ATTRIBUTES);
        let mut depth = 0;
        let mut cursor = &map["deep"];
        while let Value::Array(items) = cursor {
            depth += 1;
            cursor = &items[0];
        }
        assert_eq!(depth, MAX_VALUE_DEPTH);
        assert_eq!(cursor, "…");
    }
}
