//! JSON shapes of traces, steps and groups (camelCase), shared by the HTTP API and the live
//! streams. Times: trace `startTime` in unix ms; step `startTime` in
//! ms from the trace start (integers, as in the Motia RFC); operations and events in fractional
//! ms from the trace start.

use flowscope::wire::{
    Attributes, CorrelationMethod, EntryType, ErrorInfo, Event, OpAction, OpKind, SpanId, SpanKind,
    TraceId,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::trace::group::GroupSummary;
use crate::trace::{OpCounts, Operation, Segment, Step, Trace, Truncation};

pub use crate::units::{ms, ms_f, unix_ms};

/// Most step names a summary lists (the rest are announced by `stepNamesTruncated`).
pub const MAX_SUMMARY_STEP_NAMES: usize = 50;

/// `entryPoint`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryPointJson<'a> {
    #[serde(rename = "type")]
    entry_type: EntryType,
    step_name: &'a str,
}

/// `operations` counts.
#[derive(Serialize)]
pub struct CountsJson {
    state: u32,
    emit: u32,
    stream: u32,
}

impl From<OpCounts> for CountsJson {
    fn from(c: OpCounts) -> Self {
        Self {
            state: c.state,
            emit: c.emit,
            stream: c.stream,
        }
    }
}

/// `metadata` of a trace.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataJson {
    total_steps: usize,
    completed_steps: usize,
    error_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_child_trace: Option<bool>,
}

fn metadata(trace: &Trace, trace_index: Option<usize>) -> MetadataJson {
    MetadataJson {
        total_steps: trace.steps.len(),
        completed_steps: trace.completed_steps(),
        error_count: trace.error_count(),
        trace_index,
        is_child_trace: trace_index.map(|i| i > 0 || trace.parent_trace.is_some()),
    }
}

fn entry_point(trace: &Trace) -> EntryPointJson<'_> {
    let step_name = trace
        .entry_step
        .as_deref()
        .or_else(|| trace.steps_in_time_order().first().map(|s| s.name.as_str()))
        .unwrap_or("");
    EntryPointJson {
        entry_type: trace.entry,
        step_name,
    }
}

/// A trace in lists: no steps' insides.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceSummaryJson<'a> {
    id: TraceId,
    flow_name: &'a str,
    service: &'a str,
    /// Every service the trace crossed (one per segment), the trace's own first.
    services: Vec<&'a str>,
    status: &'static str,
    start_time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<u64>,
    entry_point: EntryPointJson<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_method: Option<CorrelationMethod>,
    /// How an automatic link was found (key/topic/attribute, the other trace).
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_evidence: Option<&'a crate::trace::Evidence>,
    /// 0..1: 1 for manual, header, parent, state and event links.
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_confidence: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_trace_id: Option<TraceId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_reason: Option<&'static str>,
    step_names: Vec<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    step_names_truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    truncated: Option<TruncationJson>,
    /// The SDK dropped events of this trace (its queue was full): what is shown is partial.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    incomplete: bool,
    #[serde(skip_serializing_if = "is_zero_u64")]
    dropped_events: u64,
    metadata: MetadataJson,
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// What the per-trace caps left out (only the non-zero counts).
#[derive(Serialize)]
pub struct TruncationJson {
    #[serde(skip_serializing_if = "is_zero")]
    steps: u32,
    #[serde(skip_serializing_if = "is_zero")]
    events: u32,
    #[serde(skip_serializing_if = "is_zero")]
    depth: u32,
    #[serde(skip_serializing_if = "is_zero")]
    strings: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The `truncated` object, when anything was left out.
pub fn truncation(t: &Truncation) -> Option<TruncationJson> {
    t.any().then_some(TruncationJson {
        steps: t.steps,
        events: t.events,
        depth: t.depth,
        strings: t.strings,
    })
}

/// Up to [`MAX_SUMMARY_STEP_NAMES`] distinct step names in time order; whether there were more.
fn step_names(trace: &Trace) -> (Vec<&str>, bool) {
    let mut seen = std::collections::HashSet::new();
    let mut names = Vec::new();
    for step in trace.steps_in_time_order() {
        if seen.insert(step.name.as_str()) {
            if names.len() == MAX_SUMMARY_STEP_NAMES {
                return (names, true);
            }
            names.push(step.name.as_str());
        }
    }
    (names, false)
}

/// Builds a list entry; `trace_index` is its position in its group.
pub fn trace_summary(trace: &Trace, trace_index: Option<usize>) -> TraceSummaryJson<'_> {
    let (step_names, step_names_truncated) = step_names(trace);
    TraceSummaryJson {
        id: trace.id,
        flow_name: trace.flow(),
        service: &trace.origin.service,
        services: trace.services(),
        status: trace.status.as_str(),
        start_time: unix_ms(trace.start_ns),
        duration: trace.duration_ns().map(ms),
        entry_point: entry_point(trace),
        correlation_id: trace.correlation_id.as_deref(),
        correlation_method: trace.correlation_method,
        correlation_evidence: trace.correlation_evidence.as_deref(),
        correlation_confidence: trace.correlation_id.as_ref().map(|_| {
            trace
                .correlation_evidence
                .as_ref()
                .map_or(1.0, |e| e.confidence)
        }),
        parent_trace_id: trace.parent_trace,
        failure_reason: trace.failure_reason,
        step_names,
        step_names_truncated,
        truncated: truncation(&trace.truncated),
        incomplete: trace.dropped_events > 0,
        dropped_events: trace.dropped_events,
        metadata: metadata(trace, trace_index),
    }
}

/// One operation.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpJson<'a> {
    kind: OpKind,
    action: OpAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    topic: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    start_time: f64,
    duration: f64,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

fn op_json<'a>(op: &'a Operation, trace_start: u64) -> OpJson<'a> {
    let fields =
        flowscope::wire::OpFields::of(op.kind, op.subject.as_deref(), op.detail.as_deref());
    OpJson {
        kind: op.kind,
        action: op.action,
        key: fields.key,
        topic: fields.topic,
        to: fields.to,
        stream: fields.stream,
        id: fields.id,
        start_time: ms_f(op.start_ns.saturating_sub(trace_start)),
        duration: ms_f(op.duration_ns),
        ok: op.ok,
        error: op.error.as_deref(),
    }
}

/// A step event (log, llm, artifact, retry, checkpoint, transition, custom) as JSON.
pub fn event_json(event: &Event, trace_start: u64) -> Value {
    let at = |t: u64| ms_f(t.saturating_sub(trace_start));
    match event {
        Event::Log(e) => {
            json!({"type": "log", "time": at(e.t), "level": e.level, "message": e.msg, "fields": e.fields})
        }
        Event::Llm(e) => json!({
            "type": "llm", "time": at(e.t), "duration": ms_f(e.dur), "model": e.model, "provider": e.provider,
            "prompt": e.prompt, "response": e.response, "inputTokens": e.input_tokens,
            "outputTokens": e.output_tokens,
            "totalTokens": e.input_tokens.zip(e.output_tokens).map(|(i, o)| i.saturating_add(o)), "cost": e.cost,
        }),
        Event::Artifact(e) => json!({
            "type": "artifact", "time": at(e.t), "name": e.name, "url": e.url, "preview": e.preview,
            "mime": e.mime, "size": e.size,
        }),
        Event::Retry(e) => {
            json!({"type": "retry", "time": at(e.t), "attempt": e.attempt, "reason": e.reason, "backoffMs": e.backoff_ms})
        }
        Event::Checkpoint(e) => json!({"type": "checkpoint", "time": at(e.t), "id": e.id}),
        Event::Transition(e) => {
            json!({"type": "transition", "time": at(e.t), "from": e.from, "to": e.to, "action": e.action})
        }
        Event::Custom(e) => {
            json!({"type": "custom", "time": at(e.t), "name": e.name, "payload": e.payload})
        }
        other => json!({"type": other.kind()}),
    }
}

/// A step with its operations and events.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepJson<'a> {
    id: SpanId,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_id: Option<SpanId>,
    name: &'a str,
    /// The service that ran it.
    service: &'a str,
    /// `client` for an outgoing call (absent for ordinary steps).
    #[serde(skip_serializing_if = "is_internal")]
    kind: SpanKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    attributes: Option<&'a Attributes>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_time: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<u64>,
    operations: CountsJson,
    /// Operations (full view).
    #[serde(skip_serializing_if = "Option::is_none")]
    ops: Option<Vec<OpJson<'a>>>,
    /// Events (full view).
    #[serde(skip_serializing_if = "Option::is_none")]
    events: Option<Vec<Value>>,
    /// Emits only, for arrows (timeline view).
    #[serde(skip_serializing_if = "Option::is_none")]
    emits: Option<Vec<OpJson<'a>>>,
    /// Events per type (timeline view).
    #[serde(skip_serializing_if = "Option::is_none")]
    event_counts: Option<std::collections::BTreeMap<&'static str, u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a ErrorInfo>,
}

/// How much of each step a trace response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Everything: operations and events in full.
    Full,
    /// What a timeline draws: counts, emits (for arrows), event counts and errors.
    Timeline,
}

/// Start offset and duration of a step, in whole ms.
pub fn step_timing(step: &Step, trace_start: u64) -> (Option<u64>, Option<u64>) {
    let start = step.start_ns.map(|s| ms(s.saturating_sub(trace_start)));
    let duration = step
        .start_ns
        .zip(step.end_ns)
        .map(|(s, e)| ms(e.saturating_sub(s)));
    (start, duration)
}

fn is_internal(kind: &SpanKind) -> bool {
    *kind == SpanKind::Internal
}

/// One step of `trace` in the given view.
pub fn step_json<'a>(trace: &'a Trace, step: &'a Step, view: View) -> StepJson<'a> {
    let trace_start = trace.start_ns;
    let (start_time, duration) = step_timing(step, trace_start);
    let full = view == View::Full;
    StepJson {
        id: step.id,
        parent_id: step.parent,
        name: &step.name,
        service: trace.service_of(step),
        kind: step.kind,
        attributes: step.attributes.as_deref(),
        status: step.status.as_str(),
        start_time,
        duration,
        operations: step.counts.into(),
        ops: full.then(|| step.ops.iter().map(|op| op_json(op, trace_start)).collect()),
        events: full.then(|| {
            step.events
                .iter()
                .map(|e| event_json(e, trace_start))
                .collect()
        }),
        emits: (!full).then(|| {
            step.ops
                .iter()
                .filter(|op| op.kind == OpKind::Emit)
                .map(|op| op_json(op, trace_start))
                .collect()
        }),
        event_counts: (!full).then(|| {
            let mut counts = std::collections::BTreeMap::new();
            for event in &step.events {
                *counts.entry(event.kind()).or_insert(0) += 1;
            }
            counts
        }),
        error: step.error.as_deref(),
    }
}

/// A full trace.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceJson<'a> {
    #[serde(flatten)]
    summary: TraceSummaryJson<'a>,
    /// Other groups an automatic link could have chosen.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    correlation_candidates: &'a [crate::trace::Evidence],
    #[serde(skip_serializing_if = "Option::is_none")]
    attributes: Option<&'a Attributes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a ErrorInfo>,
    /// The services' parts of the trace (one per `traceparent` hop).
    segments: Vec<SegmentJson<'a>>,
    /// Span ids of the steps on the critical path, in time order.
    critical_path: Vec<SpanId>,
    steps: Vec<StepJson<'a>>,
    ops: Vec<OpJson<'a>>,
    events: Vec<Value>,
}

/// One service's part of a trace.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentJson<'a> {
    /// The segment's root span id (absent for SDKs that predate segments).
    #[serde(skip_serializing_if = "Option::is_none")]
    span_id: Option<SpanId>,
    /// The caller's span it continues.
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_span_id: Option<SpanId>,
    service: &'a str,
    flow_name: &'a str,
    entry_point: EntryPointJson<'a>,
    status: &'static str,
    /// Start, ms from the trace start.
    start_time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a ErrorInfo>,
}

fn segment_json<'a>(trace: &'a Trace, segment: &'a Segment) -> SegmentJson<'a> {
    SegmentJson {
        span_id: segment.span,
        parent_span_id: segment.remote_parent,
        service: &segment.origin.service,
        flow_name: if segment.flow.is_empty() {
            trace.flow()
        } else {
            &segment.flow
        },
        entry_point: EntryPointJson {
            entry_type: segment.entry,
            step_name: segment.entry_step.as_deref().unwrap_or(""),
        },
        status: segment.status.as_str(),
        start_time: ms(segment.start_ns.saturating_sub(trace.start_ns)),
        duration: segment
            .end_ns
            .map(|e| ms(e.saturating_sub(segment.start_ns))),
        error: segment.error.as_deref(),
    }
}

/// Builds the trace in the given view; `trace_index` is its position in its group.
pub fn trace_full(trace: &Trace, trace_index: Option<usize>, view: View) -> TraceJson<'_> {
    let start = trace.start_ns;
    TraceJson {
        summary: trace_summary(trace, trace_index),
        correlation_candidates: &trace.correlation_candidates,
        attributes: trace.attributes.as_deref(),
        error: trace.error.as_deref(),
        segments: trace
            .segments
            .iter()
            .map(|s| segment_json(trace, s))
            .collect(),
        critical_path: crate::insights::critical_path(trace),
        steps: trace
            .steps_in_time_order()
            .into_iter()
            .map(|s| step_json(trace, s, view))
            .collect(),
        ops: trace.ops.iter().map(|op| op_json(op, start)).collect(),
        events: trace.events.iter().map(|e| event_json(e, start)).collect(),
    }
}

/// A trace group; `with_traces` adds the member summaries.
pub fn group_json(group: &GroupSummary, with_traces: bool) -> Value {
    let gaps: Vec<Value> = group
        .gaps
        .iter()
        .map(|g| {
            json!({
                "afterTraceId": group.traces[g.after].id,
                "beforeTraceId": group.traces[g.after + 1].id,
                "duration": ms(g.duration_ns),
            })
        })
        .collect();
    let mut out = json!({
        "id": group.id,
        "correlationId": group.id,
        "name": group.name,
        "status": group.status.as_str(),
        "startTime": unix_ms(group.start_ns),
        "lastActivity": unix_ms(group.last_activity_ns),
        "totalDuration": group.total_duration_ns.map(ms),
        "metadata": {
            "totalTraces": group.traces.len(),
            "llmCalls": group.rollup.llm_calls,
            "totalTokens": group.rollup.total_tokens,
            "totalCost": group.rollup.total_cost,
            "errorCount": group.rollup.error_count,
            "completedTraces": group.completed,
            "activeTraces": group.active,
            "totalSteps": group.total_steps,
            "averageStepDuration": ms(group.average_step_ns),
            "gapsCount": group.gaps.len(),
            "totalGapDuration": ms(group.gaps.iter().fold(0u64, |a, g| a.saturating_add(g.duration_ns))),
        },
        "gaps": gaps,
    });
    if with_traces {
        out["traces"] = serde_json::to_value(
            group
                .traces
                .iter()
                .enumerate()
                .map(|(i, t)| trace_summary(t, Some(i)))
                .collect::<Vec<_>>(),
        )
        .unwrap_or(Value::Null);
    }
    out
}
