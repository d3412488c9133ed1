//! What the agent keeps per trace: steps, their operations and events, status and timing.
//! All times are unix nanoseconds; API shapes convert them (see `api::shapes`).

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use thin_vec::ThinVec;

use super::ThinStr;

use flowscope::wire::{
    Attributes, CorrelationMethod, EntryType, ErrorInfo, Event, OpAction, OpKind, SpanId, SpanKind,
    TraceId,
};

/// The flow name a trace reports before its `trace_start` names one.
pub const UNKNOWN_FLOW: &str = "unknown";

/// [`UNKNOWN_FLOW`] as one permanent copy, for what needs the name as a [`ThinStr`].
pub fn unknown_flow() -> &'static ThinStr {
    static UNKNOWN: std::sync::LazyLock<ThinStr> =
        std::sync::LazyLock::new(|| ThinStr::permanent(UNKNOWN_FLOW));
    &UNKNOWN
}

/// Status of a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TraceStatus {
    /// Not ended yet.
    Running,
    /// Ended normally.
    Completed,
    /// Ended with an error, or abandoned.
    Failed,
}

impl TraceStatus {
    /// All statuses, in index order.
    pub const ALL: [TraceStatus; 3] = [
        TraceStatus::Running,
        TraceStatus::Completed,
        TraceStatus::Failed,
    ];

    /// API name.
    pub fn as_str(self) -> &'static str {
        match self {
            TraceStatus::Running => "running",
            TraceStatus::Completed => "completed",
            TraceStatus::Failed => "failed",
        }
    }

    /// Parses an API name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// Position in [`TraceStatus::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Status of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepStatus {
    /// Triggered by an emit but not started yet.
    Waiting,
    /// Started, not ended.
    Running,
    /// Ended normally.
    Completed,
    /// Ended with an error (or abandoned).
    Failed,
}

impl StepStatus {
    /// API name.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Waiting => "waiting",
            StepStatus::Running => "running",
            StepStatus::Completed => "completed",
            StepStatus::Failed => "failed",
        }
    }
}

/// Operation counts per family, as in the Motia RFC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// State operations.
    pub state: u32,
    /// Emits.
    pub emit: u32,
    /// Stream operations.
    pub stream: u32,
}

impl OpCounts {
    /// Counts one more operation of `kind`.
    pub fn add(&mut self, kind: OpKind) {
        match kind {
            OpKind::State => self.state += 1,
            OpKind::Emit => self.emit += 1,
            OpKind::Stream => self.stream += 1,
        }
    }
}

/// One operation, kept compact (48 bytes): the subject (key/topic/stream), one detail (emit
/// target or stream item id) and the error as one-pointer strings.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// Family.
    pub kind: OpKind,
    /// Action.
    pub action: OpAction,
    /// Succeeded.
    pub ok: bool,
    /// Start (unix ns).
    pub start_ns: u64,
    /// Duration (ns).
    pub duration_ns: u64,
    /// State key, emit topic or stream name (interned: one copy of a key however many
    /// operations name it).
    pub subject: Option<ThinStr>,
    /// Emit target step or stream item id (interned).
    pub detail: Option<ThinStr>,
    /// Error message.
    pub error: Option<ThinStr>,
}

/// One step (span) of a trace.
#[derive(Debug, Clone)]
pub struct Step {
    /// Span id.
    pub id: SpanId,
    /// Enclosing step.
    pub parent: Option<SpanId>,
    /// Name (empty until known).
    pub name: ThinStr,
    /// Status.
    pub status: StepStatus,
    /// Start (unix ns), unknown when only the end arrived so far.
    pub start_ns: Option<u64>,
    /// End (unix ns).
    pub end_ns: Option<u64>,
    /// Error, when failed.
    pub error: Option<Box<ErrorInfo>>,
    /// Operation counts.
    pub counts: OpCounts,
    /// Operations in arrival order.
    pub ops: Vec<Operation>,
    /// Logs, LLM calls, artifacts, retries, checkpoints, transitions, custom events.
    pub events: ThinVec<Event>,
    /// Nesting depth (1 = top level), as placed at ingest.
    pub depth: u16,
    /// The trace segment (service) the step belongs to: index into [`Trace::segments`].
    pub segment: u16,
    /// Span kind (`client` for an outgoing call).
    pub kind: SpanKind,
    /// Attributes (HTTP method, URL and status of a client call…).
    pub attributes: Option<Box<Attributes>>,
}

impl Step {
    /// A step known only by its id so far.
    pub fn new(id: SpanId) -> Self {
        Self {
            id,
            parent: None,
            name: ThinStr::default(),
            status: StepStatus::Running,
            start_ns: None,
            end_ns: None,
            error: None,
            counts: OpCounts::default(),
            ops: Vec::new(),
            events: ThinVec::new(),
            depth: 1,
            segment: 0,
            kind: SpanKind::Internal,
            attributes: None,
        }
    }
}

/// One service's part of a trace: what one `trace_start` … `trace_end` pair described. A trace
/// that crossed services (W3C `traceparent`) has one segment per hop.
#[derive(Debug, Clone)]
pub struct Segment {
    /// The segment's own span id (`None` for SDKs that predate segments: a derived id is used).
    pub span: Option<SpanId>,
    /// The caller's span this segment continues.
    pub remote_parent: Option<SpanId>,
    /// Who sent it (`service.name`).
    pub origin: Arc<Origin>,
    /// Flow name (empty until its `trace_start` arrives).
    pub flow: ThinStr,
    /// Entry type.
    pub entry: EntryType,
    /// Entry step.
    pub entry_step: Option<ThinStr>,
    /// Attributes of its `trace_start`.
    pub attributes: Option<Box<Attributes>>,
    /// Start (unix ns).
    pub start_ns: u64,
    /// End (unix ns).
    pub end_ns: Option<u64>,
    /// Status.
    pub status: TraceStatus,
    /// Error from its `trace_end`.
    pub error: Option<Box<ErrorInfo>>,
    /// Whether its `trace_start` arrived.
    pub started: bool,
}

impl Segment {
    /// A segment known only by its span id so far.
    pub fn new(span: Option<SpanId>, origin: Arc<Origin>, start_ns: u64) -> Self {
        Self {
            span,
            remote_parent: None,
            origin,
            flow: ThinStr::default(),
            entry: EntryType::Api,
            entry_step: None,
            attributes: None,
            start_ns,
            end_ns: None,
            status: TraceStatus::Running,
            error: None,
            started: false,
        }
    }
}

/// Who sent a trace: the SDK connection's hello (becomes the OTLP resource).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Origin {
    /// `service.name`.
    pub service: String,
    /// SDK name/version, e.g. `python/0.1.0`.
    pub sdk: String,
    /// Process id.
    pub pid: Option<u32>,
    /// Host name.
    pub host: Option<String>,
    /// The spans came in as OTLP: they were forwarded upstream as received, so the exporter never
    /// derives spans from what this origin sent.
    pub otlp: bool,
}

impl Origin {
    /// An origin known only by its service name.
    pub fn named(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            ..Self::default()
        }
    }

    /// `service.instance.id`: host and pid when known.
    pub fn instance_id(&self) -> String {
        match (&self.host, self.pid) {
            (Some(host), Some(pid)) => format!("{host}/{pid}"),
            (None, Some(pid)) => pid.to_string(),
            (Some(host), None) => host.clone(),
            (None, None) => self.service.clone(),
        }
    }
}

/// What the live stream has told subscribers about a trace so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Announced {
    /// Nothing yet.
    #[default]
    Nothing,
    /// Created / updated while running.
    Running,
    /// Completed or failed.
    Ended,
}

/// A run of a flow.
#[derive(Debug, Clone)]
pub struct Trace {
    /// Trace id.
    pub id: TraceId,
    /// Flow name, `None` until `trace_start` arrives.
    pub flow_name: Option<ThinStr>,
    /// The connection that sent `trace_start` (or the first event).
    pub origin: Arc<Origin>,
    /// Entry type.
    pub entry: EntryType,
    /// Entry step name.
    pub entry_step: Option<ThinStr>,
    /// Correlation id.
    pub correlation_id: Option<String>,
    /// How it was correlated.
    pub correlation_method: Option<CorrelationMethod>,
    /// Trace whose emit started this one.
    pub parent_trace: Option<TraceId>,
    /// Attributes from `trace_start`.
    pub attributes: Option<Box<Attributes>>,
    /// Start (unix ns): `trace_start` time, else the earliest event seen.
    pub start_ns: u64,
    /// Whether `trace_start` arrived.
    pub started: bool,
    /// End (unix ns).
    pub end_ns: Option<u64>,
    /// Latest event time (unix ns).
    pub last_event_ns: u64,
    /// When the agent last received an event for it (unix ns, agent clock).
    pub last_activity_ns: u64,
    /// Estimated bytes this trace holds (the sum of its applied events' sizes), for
    /// `--max-memory`.
    pub approx_bytes: usize,
    /// Status.
    pub status: TraceStatus,
    /// Why it failed (`error`, `abandoned`).
    pub failure_reason: Option<&'static str>,
    /// Error from `trace_end`.
    pub error: Option<Box<ErrorInfo>>,
    /// Steps in arrival order.
    pub steps: Vec<Step>,
    /// Span id → position in `steps`, once there are more than [`STEP_INDEX_FROM`] (a short
    /// list is scanned faster than a map is probed, and costs no memory of its own). Use
    /// [`step_position`](Self::step_position). Boxed: most traces never have one.
    #[allow(clippy::box_collection)] // The point: one word in every trace, not a 48-byte map.
    step_index: Option<Box<HashMap<SpanId, u32>>>,
    /// Operations sent outside any step (one word while empty, as most are).
    pub ops: ThinVec<Operation>,
    /// Events sent outside any step.
    pub events: ThinVec<Event>,
    /// What the per-trace caps left out.
    pub truncated: super::limits::Truncation,
    /// Events the SDKs reported dropping (their queue was full): the trace is incomplete.
    pub dropped_events: u64,
    /// The services' parts of this trace, in arrival order (at least one once started).
    pub segments: Vec<Segment>,
    /// How an automatic link put the trace in its group (absent for manual/header/parent links).
    pub correlation_evidence: Option<Box<Evidence>>,
    /// Other groups the trace could have joined automatically (capped).
    pub correlation_candidates: ThinVec<Evidence>,
    /// The W3C sampled flag the trace arrived with (`None`: started by a flowscope SDK, the
    /// agent's sample ratio decides).
    pub sampled: Option<bool>,
    /// Operations and events kept (for `--max-events-per-trace`).
    pub event_count: u32,
}

/// Steps a trace holds before it indexes them by span id.
pub const STEP_INDEX_FROM: usize = 16;

impl Trace {
    /// A trace known only by its id so far.
    pub fn new(id: TraceId, origin: Arc<Origin>, first_event_ns: u64, now_ns: u64) -> Self {
        Self {
            id,
            flow_name: None,
            origin,
            entry: EntryType::Api,
            entry_step: None,
            correlation_id: None,
            correlation_method: None,
            parent_trace: None,
            attributes: None,
            start_ns: first_event_ns,
            started: false,
            end_ns: None,
            last_event_ns: first_event_ns,
            last_activity_ns: now_ns,
            approx_bytes: 0,
            status: TraceStatus::Running,
            failure_reason: None,
            error: None,
            steps: Vec::new(),
            step_index: None,
            ops: ThinVec::new(),
            events: ThinVec::new(),
            truncated: super::limits::Truncation::default(),
            dropped_events: 0,
            event_count: 0,
            segments: Vec::new(),
            sampled: None,
            correlation_evidence: None,
            correlation_candidates: ThinVec::new(),
        }
    }

    /// The segment whose span is `span`.
    pub fn segment_by_span(&self, span: SpanId) -> Option<usize> {
        self.segments.iter().position(|s| s.span == Some(span))
    }

    /// The segment a step belongs to.
    pub fn segment_of(&self, step: &Step) -> Option<&Segment> {
        self.segments.get(usize::from(step.segment))
    }

    /// The service of a step (its segment's, else the trace's).
    pub fn service_of(&self, step: &Step) -> &str {
        self.segment_of(step)
            .map_or(self.origin.service.as_str(), |s| s.origin.service.as_str())
    }

    /// Distinct services of the trace: the trace's own (its root service) first, then the
    /// others in the order their segments started.
    pub fn services(&self) -> Vec<&str> {
        let mut segments: Vec<&Segment> = self.segments.iter().collect();
        segments.sort_by_key(|s| s.start_ns);
        let mut out: Vec<&str> = vec![self.origin.service.as_str()];
        for service in segments.iter().map(|s| s.origin.service.as_str()) {
            if !out.contains(&service) {
                out.push(service);
            }
        }
        out
    }

    /// Flow name, or [`UNKNOWN_FLOW`] before `trace_start`.
    pub fn flow(&self) -> &str {
        self.flow_name.as_deref().unwrap_or(UNKNOWN_FLOW)
    }

    /// Duration (ns), once ended.
    pub fn duration_ns(&self) -> Option<u64> {
        self.end_ns.map(|end| end.saturating_sub(self.start_ns))
    }

    /// The position of the step with `id` in [`steps`](Self::steps), if known.
    pub fn step_position(&self, id: SpanId) -> Option<usize> {
        match &self.step_index {
            Some(index) => index.get(&id).map(|&i| i as usize),
            // The most recent steps are the likeliest.
            None => self.steps.iter().rposition(|s| s.id == id),
        }
    }

    /// The step with `id`, if known.
    pub fn step(&self, id: SpanId) -> Option<&Step> {
        self.step_position(id).map(|i| &self.steps[i])
    }

    /// The step with `id`, created when unknown. Returns (step, created).
    pub fn step_mut(&mut self, id: SpanId) -> (&mut Step, bool) {
        if let Some(i) = self.step_position(id) {
            return (&mut self.steps[i], false);
        }
        self.steps.push(Step::new(id));
        let i = self.steps.len() - 1;
        if let Some(index) = &mut self.step_index {
            index.insert(id, i as u32);
        } else if self.steps.len() > STEP_INDEX_FROM {
            self.step_index = Some(Box::new(
                (self.steps.iter().enumerate())
                    .map(|(i, s)| (s.id, i as u32))
                    .collect(),
            ));
        }
        (&mut self.steps[i], true)
    }

    /// Steps sorted by start time (unknown starts last), ties in arrival order.
    pub fn steps_in_time_order(&self) -> Vec<&Step> {
        let mut steps: Vec<&Step> = self.steps.iter().collect();
        steps.sort_by_key(|s| s.start_ns.unwrap_or(u64::MAX));
        steps
    }

    /// Completed steps.
    pub fn completed_steps(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| s.status == StepStatus::Completed)
            .count()
    }

    /// Every operation: the steps' in step order, then those outside any step.
    pub fn all_ops(&self) -> impl Iterator<Item = &Operation> {
        self.steps
            .iter()
            .flat_map(|s| s.ops.iter())
            .chain(self.ops.iter())
    }

    /// Every event: the steps' in step order, then those outside any step.
    pub fn all_events(&self) -> impl Iterator<Item = &Event> {
        self.steps
            .iter()
            .flat_map(|s| s.events.iter())
            .chain(self.events.iter())
    }

    /// Failed steps, or 1 for a failed trace without a failed step.
    pub fn error_count(&self) -> usize {
        let failed = self
            .steps
            .iter()
            .filter(|s| s.status == StepStatus::Failed)
            .count();
        if failed == 0 && self.status == TraceStatus::Failed {
            1
        } else {
            failed
        }
    }
}

/// How an automatic link was found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// `state`, `event` or `temporal`.
    pub method: CorrelationMethod,
    /// The group it points to.
    pub correlation_id: String,
    /// The trace on the other side (the writer, the emitter, the earlier run).
    pub trace_id: TraceId,
    /// The state key read (state).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The topic (event).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// The data key or attribute matched (event, temporal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    /// Its value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// When the other side happened (unix ns); the most recent writer wins.
    #[serde(skip)]
    pub at_ns: u64,
    /// 0..1: 1 for state and event links, falling over the window for temporal ones.
    pub confidence: f64,
}
