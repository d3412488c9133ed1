//! OTLP forwarding. When an endpoint is configured, every trace is mapped to OpenTelemetry spans
//! ([`mapping`]) as its parts finish — operations and LLM calls on arrival, a step when it ends,
//! the root span when the trace ends — queued in a bounded [`queue`], and exported in batches by
//! the [`worker`] through `opentelemetry-otlp` (gRPC or HTTP/protobuf). Without an endpoint
//! nothing is built, queued or attempted.

pub mod mapping;
pub mod queue;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use flowscope::wire::TraceId;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig, WithTonicConfig};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::telemetry::ExportMetrics;
use crate::trace::Trace;
use crate::trace::builder::Applied;
pub use queue::{CollectorState, ExportQueue};

/// OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OtlpProtocol {
    /// OTLP/gRPC (default port 4317).
    #[value(name = "grpc")]
    Grpc,
    /// OTLP/HTTP with protobuf bodies (default port 4318, path /v1/traces).
    #[value(name = "http/protobuf")]
    HttpProtobuf,
}

/// Exporter settings.
#[derive(Debug, Clone)]
pub struct ExportConfig {
    /// Base endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` semantics: `/v1/traces` is appended for HTTP).
    pub endpoint: Option<String>,
    /// Full traces endpoint (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, used as is; wins).
    pub traces_endpoint: Option<String>,
    /// Transport.
    pub protocol: OtlpProtocol,
    /// Fraction of traces exported (by trace id, so all spans of a trace agree).
    pub sample_ratio: f64,
    /// Queue bound in spans.
    pub queue_spans: usize,
    /// Queue bound in estimated bytes.
    pub queue_bytes: usize,
    /// Spans per export call.
    pub batch_size: usize,
    /// Longest retry delay.
    pub max_backoff: Duration,
}

impl Default for ExportConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            traces_endpoint: None,
            protocol: OtlpProtocol::HttpProtobuf,
            sample_ratio: 1.0,
            queue_spans: 100_000,
            queue_bytes: 64 * 1024 * 1024,
            batch_size: 512,
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl ExportConfig {
    /// Whether an endpoint is configured.
    pub fn enabled(&self) -> bool {
        self.endpoint.is_some() || self.traces_endpoint.is_some()
    }
}

/// The exporter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot configure the OTLP exporter: {0}")]
pub struct ExportError(#[from] opentelemetry_otlp::ExporterBuildError);

/// The producer side, owned by the store: maps finished parts of traces and queues them.
pub struct Exporter {
    queue: Arc<ExportQueue>,
    sample_threshold: u64,
}

impl Exporter {
    /// Whether `trace` is in the sample (deterministic by trace id).
    pub fn sampled(&self, trace: TraceId) -> bool {
        (trace.0 as u64) <= self.sample_threshold
    }

    /// Queues the spans that `applied` completed in `trace`. `previous` is the trace before it in
    /// its group (for the root span's link).
    pub fn offer(&self, trace: &Trace, applied: Applied, previous: Option<TraceId>) {
        if !self.sampled(trace.id) {
            return;
        }
        let spans = match applied {
            Applied::Nothing => return,
            Applied::Op(span) => {
                let step = span.and_then(|s| trace.step(s));
                let ops = step.map_or(&trace.ops, |s| &s.ops);
                ops.last()
                    .map(|op| mapping::op_span(trace, step, ops.len() - 1, op))
                    .into_iter()
                    .collect()
            }
            Applied::Llm(span) => {
                let step = span.and_then(|s| trace.step(s));
                let events = step.map_or(&trace.events, |s| &s.events);
                events
                    .last()
                    .and_then(|e| mapping::llm_span(trace, step, events.len() - 1, e))
                    .into_iter()
                    .collect()
            }
            Applied::StepEnded(span) => trace
                .step(span)
                .map(|s| mapping::step_span(trace, s))
                .into_iter()
                .collect(),
            Applied::TraceEnded => vec![mapping::root_span(trace, previous)],
        };
        self.queue.push(&trace.origin, spans);
    }

    /// The queue (for readiness and tests).
    pub fn queue(&self) -> &Arc<ExportQueue> {
        &self.queue
    }
}

/// Builds the exporter and starts its worker; `None` when no endpoint is configured.
pub fn start(
    config: &ExportConfig,
    metrics: Arc<ExportMetrics>,
    shutdown: watch::Receiver<bool>,
) -> Result<Option<(Exporter, JoinHandle<()>)>, ExportError> {
    if !config.enabled() {
        return Ok(None);
    }
    let retry = opentelemetry_otlp::RetryPolicy::disabled(); // the worker retries, keeping spans queued
    let exporter = match config.protocol {
        OtlpProtocol::Grpc => {
            let mut builder = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_retry_policy(retry);
            if let Some(endpoint) = config.traces_endpoint.as_ref().or(config.endpoint.as_ref()) {
                builder = builder.with_endpoint(endpoint.clone());
            }
            builder.build()?
        }
        OtlpProtocol::HttpProtobuf => {
            let mut builder = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_retry_policy(retry);
            let endpoint = match (&config.traces_endpoint, &config.endpoint) {
                (Some(full), _) => Some(full.clone()),
                (None, Some(base)) => Some(format!("{}/v1/traces", base.trim_end_matches('/'))),
                (None, None) => None,
            };
            if let Some(endpoint) = endpoint {
                builder = builder.with_endpoint(endpoint);
            }
            builder.build()?
        }
    };
    let queue = Arc::new(ExportQueue::new(
        config.queue_spans,
        config.queue_bytes,
        Arc::clone(&metrics),
    ));
    let worker_config = worker::WorkerConfig {
        batch_size: config.batch_size.max(1),
        min_backoff: Duration::from_millis(50).min(config.max_backoff),
        max_backoff: config.max_backoff,
        shutdown_flush: Duration::from_secs(2),
    };
    let task = tokio::spawn(worker::run(
        exporter,
        Arc::clone(&queue),
        metrics,
        worker_config,
        shutdown,
    ));
    let ratio = config.sample_ratio.clamp(0.0, 1.0);
    let sample_threshold = if ratio >= 1.0 {
        u64::MAX
    } else {
        (ratio * u64::MAX as f64) as u64
    };
    Ok(Some((
        Exporter {
            queue,
            sample_threshold,
        },
        task,
    )))
}
