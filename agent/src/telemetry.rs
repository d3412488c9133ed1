//! The agent's own telemetry: one typed handle per thing that happens, registered once in a
//! Prometheus registry (`GET /metrics`) and read by `/healthz`. Metric names live only here.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Why a connection was closed by the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Payload length over the limit.
    FrameTooLarge,
    /// Batch could not be decoded.
    MalformedBatch,
    /// Hello could not be parsed.
    MalformedHello,
    /// Hello with a protocol version we do not speak.
    UnsupportedVersion,
    /// Connection closed in the middle of a frame.
    Truncated,
    /// No hello within the handshake timeout.
    HandshakeTimeout,
    /// A started frame did not arrive whole within `--frame-timeout`.
    FrameTimeout,
    /// Nothing arrived for `--idle-timeout`.
    IdleTimeout,
    /// `--max-connections` connections were already open.
    TooManyConnections,
}

impl Rejection {
    /// All reasons.
    pub const ALL: [Rejection; 9] = [
        Rejection::FrameTooLarge,
        Rejection::MalformedBatch,
        Rejection::MalformedHello,
        Rejection::UnsupportedVersion,
        Rejection::Truncated,
        Rejection::HandshakeTimeout,
        Rejection::FrameTimeout,
        Rejection::IdleTimeout,
        Rejection::TooManyConnections,
    ];

    /// Stable code, also sent in the error frame.
    pub fn code(self) -> &'static str {
        match self {
            Rejection::FrameTooLarge => "frame_too_large",
            Rejection::MalformedBatch => "malformed_batch",
            Rejection::MalformedHello => "malformed_hello",
            Rejection::UnsupportedVersion => "unsupported_version",
            Rejection::Truncated => "truncated_frame",
            Rejection::HandshakeTimeout => "handshake_timeout",
            Rejection::FrameTimeout => "frame_timeout",
            Rejection::IdleTimeout => "idle_timeout",
            Rejection::TooManyConnections => "too_many_connections",
        }
    }
}

/// Position of an event's kind in [`EVENT_KINDS`].
pub fn kind_index(event: &flowscope::wire::Event) -> usize {
    event.kind_index()
}

/// Event kinds counted separately (wire names): the protocol's one table.
pub const EVENT_KINDS: [&str; 16] = flowscope::wire::Event::KINDS;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// The label value that flows and steps past the series budget share.
pub const OTHER_LABEL: &str = "other";

/// Which flow and (flow, step) label values have series of their own: the first ones seen, up
/// to a budget, so `/metrics` stays bounded whatever names senders invent.
#[derive(Debug, Default)]
struct LabelBudget {
    max_flows: usize,
    max_steps: usize,
    flows: std::collections::HashSet<String>,
    steps: std::collections::HashSet<(String, String)>,
}

impl LabelBudget {
    fn flow(&mut self, flow: &str) -> String {
        if self.flows.contains(flow) {
            return flow.to_owned();
        }
        if self.flows.len() < self.max_flows {
            self.flows.insert(flow.to_owned());
            return flow.to_owned();
        }
        OTHER_LABEL.to_owned()
    }

    fn step(&mut self, flow: &str, step: &str) -> (String, String) {
        let flow = self.flow(flow);
        if flow == OTHER_LABEL {
            return (flow, OTHER_LABEL.to_owned());
        }
        let key = (flow, step.to_owned());
        if self.steps.contains(&key) {
            return key;
        }
        if self.steps.len() < self.max_steps {
            self.steps.insert(key.clone());
            return key;
        }
        (key.0, OTHER_LABEL.to_owned())
    }
}

/// Labels of the step duration histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    /// Flow name.
    pub flow: String,
    /// Step name.
    pub step: String,
    /// completed | failed.
    pub status: &'static str,
}

/// Labels of the workflow duration histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FlowLabels {
    /// Flow name.
    pub flow: String,
    /// completed | failed.
    pub status: &'static str,
}

/// Labels of the API latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Matched route pattern.
    pub route: String,
    /// HTTP status code.
    pub status: u16,
}

fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 18))
}

fn api_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.00005, 2.0, 16))
}

/// Ingest counters.
#[derive(Debug, Default)]
pub struct IngestMetrics {
    /// Connections accepted.
    pub connections_total: Counter,
    /// Connections open now.
    pub connections_open: Gauge,
    /// Batch frames decoded.
    pub frames: Counter,
    /// Events decoded.
    pub events: Counter,
    /// Payload bytes decoded.
    pub bytes: Counter,
    decoded_by_kind: Family<KindLabel, Counter>,
    rejections: Family<ReasonLabel, Counter>,
}

impl IngestMetrics {
    /// Counts a rejected connection.
    pub fn rejected(&self, why: Rejection) {
        self.rejections
            .get_or_create(&ReasonLabel { reason: why.code() })
            .inc();
        tracing::warn!(reason = why.code(), "closing ingest connection");
    }

    /// Rejections by reason.
    pub fn rejections(&self) -> impl Iterator<Item = (Rejection, u64)> + '_ {
        Rejection::ALL.iter().map(|r| {
            (
                *r,
                self.rejections
                    .get_or_create(&ReasonLabel { reason: r.code() })
                    .get(),
            )
        })
    }

    /// Counts a decoded batch; `kinds[i]` events of kind `EVENT_KINDS[i]`.
    pub fn batch(&self, kinds: &[u64; EVENT_KINDS.len()], bytes: usize) {
        self.frames.inc();
        self.events.inc_by(kinds.iter().sum());
        self.bytes.inc_by(bytes as u64);
        for (kind, n) in EVENT_KINDS.iter().zip(kinds).filter(|(_, n)| **n > 0) {
            self.decoded_by_kind
                .get_or_create(&KindLabel { kind })
                .inc_by(*n);
        }
    }

    /// Events decoded of one kind.
    pub fn decoded(&self, kind: &'static str) -> u64 {
        self.decoded_by_kind
            .get_or_create(&KindLabel { kind })
            .get()
    }
}

/// Store counters and workflow histograms.
#[derive(Debug)]
pub struct StoreMetrics {
    /// Events applied to traces.
    pub events_applied: Counter,
    /// Events of unknown kinds.
    pub events_unknown: Counter,
    /// Events the SDKs reported dropping for traces this agent never saw.
    pub sdk_dropped_untraced: Counter,
    /// Traces created.
    pub traces_created: Counter,
    /// Traces evicted by the LRU bound.
    pub traces_evicted: Counter,
    /// Traces failed as abandoned.
    pub traces_abandoned: Counter,
    /// Traces stored now (set at scrape time).
    pub traces_stored: Gauge,
    /// Step durations by flow/step/status.
    pub step_duration: Family<StepLabels, Histogram, fn() -> Histogram>,
    /// Workflow (trace) durations by flow/status.
    pub workflow_duration: Family<FlowLabels, Histogram, fn() -> Histogram>,
    /// Events refused at ingest, by reason.
    events_invalid: Family<ReasonLabel, Counter>,
    budget: parking_lot::Mutex<LabelBudget>,
}

impl StoreMetrics {
    /// Metrics giving at most `max_flows` flows and `max_steps` (flow, step) pairs a series.
    pub fn with_series_limits(max_flows: usize, max_steps: usize) -> Self {
        let metrics = Self::default();
        {
            let mut budget = metrics.budget.lock();
            budget.max_flows = max_flows;
            budget.max_steps = max_steps;
        }
        metrics
    }

    /// The step duration histogram of (flow, step, status), labels folded past the budget.
    pub fn step_histogram(&self, flow: &str, step: &str, status: &'static str) -> Histogram {
        self.step_duration
            .get_or_create(&self.step_labels(flow, step, status))
            .clone()
    }

    /// The workflow duration histogram of (flow, status), labels folded past the budget.
    pub fn flow_histogram(&self, flow: &str, status: &'static str) -> Histogram {
        self.workflow_duration
            .get_or_create(&self.flow_labels(flow, status))
            .clone()
    }

    /// Labels for a step duration (folded into `other` past the budget).
    pub fn step_labels(&self, flow: &str, step: &str, status: &'static str) -> StepLabels {
        let (flow, step) = self.budget.lock().step(flow, step);
        StepLabels { flow, step, status }
    }

    /// Labels for a workflow duration (folded into `other` past the budget).
    pub fn flow_labels(&self, flow: &str, status: &'static str) -> FlowLabels {
        FlowLabels {
            flow: self.budget.lock().flow(flow),
            status,
        }
    }

    /// Counts an event refused at ingest.
    pub fn invalid(&self, reason: &'static str) {
        self.events_invalid
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// Events refused at ingest with `reason`.
    pub fn invalid_count(&self, reason: &'static str) -> u64 {
        self.events_invalid
            .get_or_create(&ReasonLabel { reason })
            .get()
    }
}

impl Default for StoreMetrics {
    fn default() -> Self {
        Self {
            events_invalid: Family::default(),
            budget: parking_lot::Mutex::new(LabelBudget {
                max_flows: 100,
                max_steps: 1000,
                ..LabelBudget::default()
            }),
            events_applied: Counter::default(),
            events_unknown: Counter::default(),
            sdk_dropped_untraced: Counter::default(),
            traces_created: Counter::default(),
            traces_evicted: Counter::default(),
            traces_abandoned: Counter::default(),
            traces_stored: Gauge::default(),
            step_duration: Family::new_with_constructor(seconds_histogram),
            workflow_duration: Family::new_with_constructor(seconds_histogram),
        }
    }
}

/// Export counters.
#[derive(Debug, Default)]
pub struct ExportMetrics {
    /// Spans accepted by the collector.
    pub spans_sent: Counter,
    /// Spans in failed export attempts (they are retried).
    pub spans_failed: Counter,
    /// Spans dropped because the queue was full (oldest first) or the collector refused or
    /// rejected them (sampled-out spans never count here).
    pub spans_dropped: Counter,
    /// Spans waiting in the export queue.
    pub queue_spans: Gauge,
    /// Estimated bytes waiting in the export queue.
    pub queue_bytes: Gauge,
    /// 1 when the last export attempt succeeded, 0 when it failed.
    pub collector_up: Gauge,
    /// Export attempts that failed.
    pub export_errors: Counter,
    /// OTLP-ingested spans forwarded upstream as received.
    pub forwarded_spans: Counter,
    /// OTLP-ingested spans dropped from the forward queue (full past its byte bound) or refused
    /// or rejected upstream.
    pub forward_dropped_spans: Counter,
    /// Bytes of OTLP requests waiting to be forwarded.
    pub forward_queue_bytes: Gauge,
}

/// OTLP ingest counters (`POST /v1/traces` and the gRPC receiver).
#[derive(Debug, Default)]
pub struct OtlpIngestMetrics {
    /// Spans accepted.
    pub spans_accepted: Counter,
    /// Spans refused inside accepted requests (partial success).
    pub spans_rejected: Counter,
    /// Requests refused whole (bad payload, content type, size).
    pub requests_refused: Counter,
    /// gRPC connections closed on accept (over `--otlp-grpc-max-connections`).
    pub grpc_connections_refused: Counter,
}

/// API counters.
#[derive(Debug)]
pub struct ApiMetrics {
    /// Request latency by route and status.
    pub request_duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        Self {
            request_duration: Family::new_with_constructor(api_histogram),
        }
    }
}

/// Every metric of the agent, and the registry that exposes them.
pub struct Metrics {
    /// Ingest.
    pub ingest: IngestMetrics,
    /// Store and workflows.
    pub store: std::sync::Arc<StoreMetrics>,
    /// OTLP export.
    pub export: std::sync::Arc<ExportMetrics>,
    /// OTLP ingest.
    pub otlp: OtlpIngestMetrics,
    /// HTTP API.
    pub api: ApiMetrics,
    /// Live subscribers (set at scrape time).
    pub live_subscribers: Gauge,
    /// Live clients dropped for being slow (set at scrape time).
    pub live_dropped_clients: Gauge,
    /// Background tasks restarted after a panic.
    pub task_restarts: Counter,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric, with the default series budget.
    pub fn new() -> Self {
        Self::with_store(StoreMetrics::default())
    }

    /// Creates and registers every metric around `store`'s.
    pub fn with_store(store: StoreMetrics) -> Self {
        let ingest = IngestMetrics::default();
        let store = std::sync::Arc::new(store);
        let export = std::sync::Arc::new(ExportMetrics::default());
        let api = ApiMetrics::default();
        let otlp = OtlpIngestMetrics::default();
        let live_subscribers = Gauge::default();
        let live_dropped_clients = Gauge::default();
        let task_restarts = Counter::default();
        let mut r = Registry::with_prefix("flowscope");
        r.register(
            "connections",
            "Ingest connections accepted",
            ingest.connections_total.clone(),
        );
        r.register(
            "connections_open",
            "Ingest connections open now",
            ingest.connections_open.clone(),
        );
        r.register(
            "frames_received",
            "Batch frames decoded",
            ingest.frames.clone(),
        );
        r.register(
            "events_received",
            "Events decoded (all kinds)",
            ingest.events.clone(),
        );
        r.register(
            "bytes_received",
            "Batch payload bytes decoded",
            ingest.bytes.clone(),
        );
        r.register(
            "events_decoded",
            "Events decoded by kind",
            ingest.decoded_by_kind.clone(),
        );
        r.register(
            "connections_rejected",
            "Connections closed for bad input, by reason",
            ingest.rejections.clone(),
        );
        r.register(
            "events_applied",
            "Events applied to traces",
            store.events_applied.clone(),
        );
        r.register(
            "events_invalid",
            "Events refused at ingest (invalid ids), by reason",
            store.events_invalid.clone(),
        );
        r.register(
            "task_restarts",
            "Background tasks restarted after a panic",
            task_restarts.clone(),
        );
        r.register(
            "sdk_dropped_untraced_events",
            "Events SDKs dropped for traces this agent never saw",
            store.sdk_dropped_untraced.clone(),
        );
        r.register(
            "events_unknown",
            "Events of unknown kinds, skipped",
            store.events_unknown.clone(),
        );
        r.register(
            "traces_created",
            "Traces created",
            store.traces_created.clone(),
        );
        r.register(
            "traces_evicted",
            "Traces evicted by the store bound",
            store.traces_evicted.clone(),
        );
        r.register(
            "traces_abandoned",
            "Traces failed as abandoned",
            store.traces_abandoned.clone(),
        );
        r.register(
            "traces_stored",
            "Traces in the store",
            store.traces_stored.clone(),
        );
        r.register(
            "step_duration_seconds",
            "Step durations by flow, step and status",
            store.step_duration.clone(),
        );
        r.register(
            "workflow_duration_seconds",
            "Trace durations by flow and status",
            store.workflow_duration.clone(),
        );
        r.register(
            "export_spans_sent",
            "Spans accepted by the OTLP collector",
            export.spans_sent.clone(),
        );
        r.register(
            "export_spans_failed",
            "Spans in failed export attempts (retried)",
            export.spans_failed.clone(),
        );
        r.register(
            "export_spans_dropped",
            "Spans dropped: a full export queue, or refused or rejected by the collector",
            export.spans_dropped.clone(),
        );
        r.register(
            "export_queue_spans",
            "Spans waiting in the export queue",
            export.queue_spans.clone(),
        );
        r.register(
            "export_queue_bytes",
            "Estimated bytes waiting in the export queue",
            export.queue_bytes.clone(),
        );
        r.register(
            "export_errors",
            "Failed export attempts",
            export.export_errors.clone(),
        );
        r.register(
            "otlp_forwarded_spans",
            "OTLP-ingested spans forwarded upstream as received",
            export.forwarded_spans.clone(),
        );
        r.register(
            "otlp_forward_dropped_spans",
            "OTLP-ingested spans dropped: a full forward queue, or refused or rejected upstream",
            export.forward_dropped_spans.clone(),
        );
        r.register(
            "otlp_forward_queue_bytes",
            "Bytes of OTLP requests waiting to be forwarded",
            export.forward_queue_bytes.clone(),
        );
        r.register(
            "otlp_spans_accepted",
            "Spans accepted by the OTLP receivers",
            otlp.spans_accepted.clone(),
        );
        r.register(
            "otlp_spans_rejected",
            "Spans refused inside accepted OTLP requests (invalid ids)",
            otlp.spans_rejected.clone(),
        );
        r.register(
            "otlp_requests_refused",
            "OTLP requests refused whole (bad payload, content type, size)",
            otlp.requests_refused.clone(),
        );
        r.register(
            "otlp_grpc_connections_refused",
            "OTLP/gRPC connections closed on accept (over --otlp-grpc-max-connections)",
            otlp.grpc_connections_refused.clone(),
        );
        r.register(
            "collector_up",
            "1 when the last OTLP export succeeded",
            export.collector_up.clone(),
        );
        r.register(
            "api_request_duration_seconds",
            "HTTP API latency by route",
            api.request_duration.clone(),
        );
        r.register(
            "live_subscribers",
            "Open SSE/WebSocket subscribers",
            live_subscribers.clone(),
        );
        r.register(
            "live_dropped_clients",
            "Live clients dropped for being slow",
            live_dropped_clients.clone(),
        );
        Self {
            ingest,
            store,
            export,
            otlp,
            api,
            live_subscribers,
            live_dropped_clients,
            task_restarts,
            registry: r,
        }
    }

    /// The registry in OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
