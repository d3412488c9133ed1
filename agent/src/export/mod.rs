//! OTLP forwarding. When an endpoint is configured, every trace is mapped to OpenTelemetry spans
//! ([`mapping`]) as its parts finish — operations and LLM calls on arrival, a step when it ends,
//! the root span when the trace ends — queued in a bounded [`queue`], and exported in batches by
//! the [`worker`] as OTLP protobuf messages (`opentelemetry-proto`) over the [`upstream`]
//! connection (gRPC or HTTP/protobuf), which OTLP ingest's pass-through [`forward`]er shares.
//! Without an endpoint nothing is built, queued or attempted.

pub mod forward;
pub mod mapping;
pub mod queue;
pub mod upstream;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::telemetry::ExportMetrics;
use crate::trace::Trace;
use crate::trace::builder::Applied;
pub use forward::Forwarder;
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
    /// Fraction of SDK-started traces exported (by trace id, so all spans of a trace agree).
    pub sample_ratio: f64,
    /// Also export traces whose incoming W3C flags say "not sampled".
    pub export_unsampled: bool,
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
            export_unsampled: false,
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

/// The exporter could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The collector connection could not be configured.
    #[error("cannot configure the OTLP exporter: {0}")]
    Upstream(#[from] upstream::UpstreamError),
    /// The export thread or its runtime could not start.
    #[error("cannot start the OTLP export thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Nice value of the export thread. Under CPU contention ingest (nice 0) runs first and the
/// bounded queue holds spans until export catches up: a burst is stored locally at full speed
/// and forwarded when the CPU is free, instead of both going at half speed.
const EXPORT_NICE: i32 = 10;

/// The producer side, owned by the store: maps finished parts of traces and queues them.
pub struct Exporter {
    queue: Arc<ExportQueue>,
    sample_ratio: f64,
    export_unsampled: bool,
    /// Spans offered since the last [`queue_offered`](Self::queue_offered), with their resource.
    offered: Vec<(Arc<crate::trace::Origin>, queue::QueuedSpan)>,
}

impl Exporter {
    /// Whether `trace` is exported: a trace that arrived with W3C flags follows its sampled bit
    /// (unsampled ones only with `--otlp-export-unsampled`); one started by a flowscope SDK
    /// follows the sample ratio (the same rule the SDK used for the flag it propagated).
    pub fn sampled(&self, trace: &Trace) -> bool {
        match trace.sampled {
            Some(sampled) => sampled || self.export_unsampled,
            None => flowscope::wire::sampled_by_ratio(trace.id, self.sample_ratio),
        }
    }

    /// Takes the spans that `applied` completed in `trace`, each under the resource of the
    /// service that produced it, for [`queue_offered`](Self::queue_offered). `links` are the
    /// root span's links (for a segment end).
    pub fn offer(&mut self, trace: &Trace, applied: Applied, links: &mapping::RootLinks) {
        if !self.sampled(trace) {
            return;
        }
        match applied {
            Applied::Nothing => {}
            Applied::Op(span) => {
                let step = span.and_then(|s| trace.step(s));
                let ops: &[_] = step.map_or(&trace.ops, |s| &s.ops);
                if let Some(op) = ops.last() {
                    let span = queue::QueuedSpan::Op {
                        trace: trace.id,
                        parent: mapping::op_parent(trace, step),
                        index: ops.len() - 1,
                        op: op.clone(),
                    };
                    self.take(mapping::step_origin(trace, step), span);
                }
            }
            Applied::Llm(span) => {
                let step = span.and_then(|s| trace.step(s));
                let events: &[_] = step.map_or(&trace.events, |s| &s.events);
                if let Some(span) = events
                    .last()
                    .and_then(|e| mapping::llm_span(trace, step, events.len() - 1, e))
                {
                    let span = queue::QueuedSpan::Built(Box::new(span));
                    self.take(mapping::step_origin(trace, step), span);
                }
            }
            Applied::StepEnded(span) => {
                if let Some(step) = trace.step(span) {
                    let source = mapping::StepSpanSource::new(trace, step);
                    self.take(
                        mapping::step_origin(trace, Some(step)),
                        queue::QueuedSpan::Step(Box::new(source)),
                    );
                }
            }
            Applied::SegmentEnded { segment, .. } => {
                let index = usize::from(segment);
                // Only copied here; the worker builds the span.
                let Some(root) = mapping::SegmentSpanSource::new(trace, index, links) else {
                    return;
                };
                let origin = trace
                    .segments
                    .get(index)
                    .map_or(&trace.origin, |s| &s.origin);
                let end = trace.segments.get(index).and_then(|s| s.end_ns);
                // Client calls the segment end closed (no response) leave with it.
                for step in trace.steps.iter().filter(|s| {
                    s.segment == segment
                        && s.end_ns == end
                        && s.error.as_ref().and_then(|e| e.code.as_deref())
                            == Some(crate::trace::builder::NO_RESPONSE)
                }) {
                    let source = mapping::StepSpanSource::new(trace, step);
                    self.take(origin, queue::QueuedSpan::Step(Box::new(source)));
                }
                self.take(origin, queue::QueuedSpan::Segment(Box::new(root)));
            }
        }
    }

    /// A producer for `queue`, exporting by `sample_ratio` (and unsampled traces too when
    /// `export_unsampled`).
    fn new(queue: Arc<ExportQueue>, sample_ratio: f64, export_unsampled: bool) -> Self {
        Exporter {
            queue,
            sample_ratio,
            export_unsampled,
            offered: Vec::new(),
        }
    }

    /// Another producer for the same queue, with the same sampling (a scratch store that
    /// replays traces for export only).
    pub fn share(&self) -> Exporter {
        Exporter::new(
            Arc::clone(&self.queue),
            self.sample_ratio,
            self.export_unsampled,
        )
    }

    fn take(&mut self, origin: &Arc<crate::trace::Origin>, span: queue::QueuedSpan) {
        self.offered.push((Arc::clone(origin), span));
    }

    /// Queues the spans offered since the last call, from the batch received at `received_ns`.
    pub fn queue_offered(&mut self, received_ns: u64) {
        if !self.offered.is_empty() {
            self.queue.push_offered(received_ns, self.offered.drain(..));
        }
    }

    /// The queue (for readiness and tests).
    pub fn queue(&self) -> &Arc<ExportQueue> {
        &self.queue
    }

    /// What is still queued, as OTLP requests (one per resource), for saving at shutdown; the
    /// next start forwards them as they are.
    pub fn drain_requests(&self) -> Vec<(ExportTraceServiceRequest, u64)> {
        queue::group_by_origin(self.queue.drain())
            .into_iter()
            .map(|(origin, items)| {
                let n = items.len() as u64;
                let spans = items.into_iter().map(|q| q.span.into_built()).collect();
                (mapping::request(mapping::resource(&origin), spans), n)
            })
            .collect()
    }
}

/// Builds the exporter and starts its worker; `None` when no endpoint is configured.
///
/// The worker runs on a thread of its own (a current-thread runtime at `EXPORT_NICE`), so
/// mapping spans to protobuf, encoding and sending never take CPU from ingest's runtime. The
/// returned task ends when that thread does.
pub fn start(
    config: &ExportConfig,
    metrics: Arc<ExportMetrics>,
    shutdown: watch::Receiver<bool>,
) -> Result<Option<(Exporter, JoinHandle<()>)>, ExportError> {
    if !config.enabled() {
        return Ok(None);
    }
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
        linger: Duration::from_millis(5),
        // A fifth of the OpenTelemetry SDKs' 5 s batch delay.
        burst_delay: Duration::from_secs(1),
    };
    let (built_tx, built_rx) = std::sync::mpsc::sync_channel(1);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let thread_config = config.clone();
    let thread_queue = Arc::clone(&queue);
    std::thread::Builder::new()
        .name("flowscope-export".into())
        .spawn(move || {
            // Linux keeps a nice value per thread: this lowers the export thread only.
            if let Err(err) =
                rustix::process::setpriority_process(Some(rustix::thread::gettid()), EXPORT_NICE)
            {
                tracing::debug!(%err, "export thread keeps the default priority");
            }
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => {
                    let _ = built_tx.send(Err(ExportError::from(err)));
                    return;
                }
            };
            // Built inside this runtime: the gRPC channel's connection task lives here too.
            let upstream = match runtime.block_on(async { upstream::Upstream::new(&thread_config) })
            {
                Ok(upstream) => upstream,
                Err(err) => {
                    let _ = built_tx.send(Err(ExportError::from(err)));
                    return;
                }
            };
            let _ = built_tx.send(Ok(()));
            runtime.block_on(worker::run(
                upstream,
                thread_queue,
                metrics,
                worker_config,
                shutdown,
            ));
            drop(done_tx);
        })?;
    built_rx
        .recv()
        .map_err(|_| std::io::Error::other("the export thread ended while starting"))??;
    let task = tokio::spawn(async move {
        let _ = done_rx.await;
    });
    Ok(Some((
        Exporter::new(
            queue,
            config.sample_ratio.clamp(0.0, 1.0),
            config.export_unsampled,
        ),
        task,
    )))
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;

    use flowscope::wire::{Event, Op, OpAction, OpKind, SpanId, StepEnd, StepStart, TraceId};

    use super::*;
    use crate::store::Store;
    use crate::trace::Origin;

    #[test]
    fn the_watermark_stops_before_the_oldest_span_either_queue_owes() {
        use queue::Progress;
        let idle = |newest| Progress {
            oldest_owed: None,
            newest,
        };
        let owing = |oldest, newest| Progress {
            oldest_owed: Some(oldest),
            newest,
        };
        // Neither owes anything: through the newest either was given.
        assert_eq!(idle(10).merge(idle(30)), 30);
        // One owes batch 20: just before it, whatever the other was given.
        assert_eq!(owing(20, 25).merge(idle(30)), 19);
        assert_eq!(idle(40).merge(owing(20, 40)), 19);
        assert_eq!(owing(20, 25).merge(owing(15, 40)), 14);
        assert_eq!(owing(20, 25).acked_through(), 19);
    }

    #[test]
    fn spans_built_by_the_worker_equal_those_built_from_the_stored_trace() {
        let queue = Arc::new(ExportQueue::new(1000, 1 << 20, Arc::default()));
        let mut store = Store::new(NonZeroUsize::new(10).unwrap());
        store.set_exporter(Exporter::new(Arc::clone(&queue), 1.0, false));
        let origin = Arc::new(Origin::named("svc"));
        let trace = TraceId(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736);
        let step = SpanId(0x00f0_67aa_0ba9_02b7);
        let mut op = Op::new(OpKind::Emit, OpAction::Send, Some("topic".into()), None);
        op.detail = Some("next".into());
        let events = vec![
            Event::StepStart(StepStart {
                t: 10,
                trace,
                span: step,
                name: "validate".into(),
                ..StepStart::default()
            }),
            Event::Op(op.ended_now(trace, Some(step), 5, None)),
            Event::Op(
                Op::new(
                    OpKind::State,
                    OpAction::Get,
                    Some("user.email".into()),
                    None,
                )
                .ended_now(trace, Some(step), 3, Some("boom".into())),
            ),
            Event::StepEnd(StepEnd {
                t: 100,
                trace,
                span: step,
                ..StepEnd::default()
            }),
            Event::TraceEnd(flowscope::wire::TraceEnd {
                t: 120,
                trace,
                status: flowscope::wire::EndStatus::Failed,
                error: Some(Box::new(flowscope::wire::ErrorInfo::new("card declined"))),
                span: None,
            }),
        ];
        store.apply_batch(&origin, events, 1);

        let deferred: Vec<_> = queue
            .drain()
            .into_iter()
            .map(|q| {
                assert!(
                    !matches!(q.span, queue::QueuedSpan::Built(_)),
                    "built off the lock"
                );
                q.span.into_built()
            })
            .collect();
        assert_eq!(
            deferred.len(),
            4,
            "two operations, the step and the segment root"
        );
        let stored = store.peek(trace).unwrap();
        let direct = mapping::trace_spans(stored, &mapping::RootLinks::default());
        for span in &deferred {
            let same = direct
                .iter()
                .find(|d| d.span_id == span.span_id)
                .expect("the same span id");
            assert_eq!(span, same);
        }
        assert!(
            deferred
                .iter()
                .any(|s| s.name.starts_with("flow ") && s.parent_span_id.is_empty()),
            "the segment root is among them"
        );
    }
}
