//! Pass-through forwarding of OTLP-ingested spans: each accepted request goes upstream as
//! received (not re-derived from the model), over the exporter's configured transport, through a
//! byte-bounded queue that keeps requests while the collector is down and retries with backoff.
//! The model-derived exporter skips OTLP origins, so no span leaves twice.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use parking_lot::Mutex;
use prost::Message as _;
use tokio::sync::{Notify, watch};

use super::{ExportConfig, OtlpProtocol};
use crate::telemetry::ExportMetrics;

/// Time one forward call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A request waiting to go upstream.
struct Pending {
    request: ExportTraceServiceRequest,
    bytes: usize,
    spans: u64,
    /// When the agent received it (the journal's time for its batch).
    received_ns: u64,
    /// Saved by a previous run.
    from_backlog: bool,
}

/// What waits: the queue, and the bytes of it plus the request in flight.
#[derive(Default)]
struct Waiting {
    queue: VecDeque<Pending>,
    bytes: usize,
    /// Receive times offered and in flight.
    owed: super::queue::Owed,
    /// Requests of the previous run's backlog not yet sent or dropped.
    backlog_left: usize,
    /// Called once they are all gone (the journal then forgets them).
    backlog_done: Option<Box<dyn FnOnce() + Send>>,
}

impl Waiting {
    /// One backlog request left; when it was the last, what to run now.
    fn backlog_gone(&mut self) -> Option<Box<dyn FnOnce() + Send>> {
        self.backlog_left = self.backlog_left.saturating_sub(1);
        if self.backlog_left == 0 {
            self.backlog_done.take()
        } else {
            None
        }
    }
}

/// The producer side: OTLP ingest offers each accepted request here.
pub struct Forwarder {
    waiting: Mutex<Waiting>,
    max_bytes: usize,
    notify: Notify,
    metrics: Arc<ExportMetrics>,
}

impl Forwarder {
    fn new(max_bytes: usize, metrics: Arc<ExportMetrics>) -> Self {
        Self {
            waiting: Mutex::new(Waiting::default()),
            max_bytes,
            notify: Notify::new(),
            metrics,
        }
    }

    /// Queues `request` (`spans` spans, received at `received_ns`); past the byte bound the
    /// oldest requests are dropped and counted.
    pub fn offer(&self, request: ExportTraceServiceRequest, spans: u64, received_ns: u64) {
        self.enqueue(request, spans, received_ns, false);
    }

    /// Queues the requests a previous run saved, ahead of this run's; `done` runs once they have
    /// all been sent (or dropped by the bound), so they can be forgotten.
    pub fn offer_backlog(
        &self,
        requests: Vec<(ExportTraceServiceRequest, u64)>,
        done: Box<dyn FnOnce() + Send>,
    ) {
        if requests.is_empty() {
            return;
        }
        {
            let mut waiting = self.waiting.lock();
            waiting.backlog_left += requests.len();
            waiting.backlog_done = Some(done);
        }
        // Older than anything this run receives: while held it holds the watermark back.
        for (request, spans) in requests {
            self.enqueue(request, spans, 0, true);
        }
    }

    fn enqueue(
        &self,
        request: ExportTraceServiceRequest,
        spans: u64,
        received_ns: u64,
        from_backlog: bool,
    ) {
        let bytes = request.encoded_len();
        let mut done = None;
        {
            let mut waiting = self.waiting.lock();
            waiting.owed.given(received_ns);
            while waiting.bytes + bytes > self.max_bytes
                && let Some(old) = waiting.queue.pop_front()
            {
                waiting.bytes -= old.bytes;
                self.metrics.forward_dropped_spans.inc_by(old.spans);
                if old.from_backlog {
                    done = done.or_else(|| waiting.backlog_gone());
                }
            }
            if bytes > self.max_bytes {
                self.metrics.forward_dropped_spans.inc_by(spans);
                if from_backlog {
                    done = done.or_else(|| waiting.backlog_gone());
                }
                drop(waiting);
                if let Some(done) = done {
                    done();
                }
                return;
            }
            waiting.bytes += bytes;
            waiting.queue.push_back(Pending {
                request,
                bytes,
                spans,
                received_ns,
                from_backlog,
            });
            self.metrics.forward_queue_bytes.set(waiting.bytes as i64);
        }
        if let Some(done) = done {
            done();
        }
        self.notify.notify_one();
    }

    /// Everything still waiting (at shutdown), as requests with their span counts.
    pub fn drain(&self) -> Vec<(ExportTraceServiceRequest, u64)> {
        let mut waiting = self.waiting.lock();
        waiting.bytes = 0;
        // Handed over for saving: they count as delivered.
        waiting.owed.settled();
        waiting
            .queue
            .drain(..)
            .map(|p| (p.request, p.spans))
            .collect()
    }

    /// How far forwarding got (see [`super::queue::Progress`]).
    pub fn progress(&self) -> super::queue::Progress {
        let waiting = self.waiting.lock();
        waiting
            .owed
            .progress(waiting.queue.front().map(|p| p.received_ns))
    }

    fn take(&self) -> Option<Pending> {
        let mut waiting = self.waiting.lock();
        let pending = waiting.queue.pop_front()?;
        waiting.owed.taken(pending.received_ns);
        Some(pending)
    }

    fn put_back(&self, pending: Pending) {
        let mut waiting = self.waiting.lock();
        waiting.owed.settled();
        waiting.queue.push_front(pending);
    }

    fn sent(&self, pending: &Pending) {
        let mut waiting = self.waiting.lock();
        waiting.owed.settled();
        let done = if pending.from_backlog {
            waiting.backlog_gone()
        } else {
            None
        };
        waiting.bytes = waiting.bytes.saturating_sub(pending.bytes);
        self.metrics.forward_queue_bytes.set(waiting.bytes as i64);
        self.metrics.forwarded_spans.inc_by(pending.spans);
        drop(waiting);
        if let Some(done) = done {
            done();
        }
    }
}

/// Where requests go.
enum Upstream {
    Http {
        client: reqwest::Client,
        url: String,
        headers: Vec<(String, String)>,
    },
    Grpc {
        client: TraceServiceClient<tonic::transport::Channel>,
        headers: Vec<(String, String)>,
    },
}

/// The forwarder could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The endpoint is not a usable URI.
    #[error("invalid OTLP endpoint {0:?}")]
    Endpoint(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// `OTEL_EXPORTER_OTLP_TRACES_HEADERS`, else `OTEL_EXPORTER_OTLP_HEADERS`: `k=v` pairs,
/// comma-separated, values percent-decoded (as the OpenTelemetry SDKs read them).
fn env_headers() -> Vec<(String, String)> {
    let raw = std::env::var("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_HEADERS"))
        .unwrap_or_default();
    raw.split(',')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            let value: String = serde_urlencoded::from_str::<Vec<(String, String)>>(&format!(
                "v={}",
                value.trim().replace('+', "%2B")
            ))
            .ok()?
            .pop()?
            .1;
            Some((key.trim().to_ascii_lowercase(), value))
        })
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

fn upstream(config: &ExportConfig) -> Result<Upstream, ForwardError> {
    let headers = env_headers();
    match config.protocol {
        OtlpProtocol::HttpProtobuf => {
            let url = match (&config.traces_endpoint, &config.endpoint) {
                (Some(full), _) => full.clone(),
                (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
                (None, None) => "http://localhost:4318/v1/traces".to_owned(),
            };
            let client = reqwest::Client::builder().timeout(CALL_TIMEOUT).build()?;
            Ok(Upstream::Http {
                client,
                url,
                headers,
            })
        }
        OtlpProtocol::Grpc => {
            let url = config
                .traces_endpoint
                .clone()
                .or_else(|| config.endpoint.clone())
                .unwrap_or_else(|| "http://localhost:4317".to_owned());
            let endpoint = tonic::transport::Endpoint::from_shared(url.clone())
                .map_err(|_| ForwardError::Endpoint(url))?
                .timeout(CALL_TIMEOUT)
                .connect_timeout(CALL_TIMEOUT);
            Ok(Upstream::Grpc {
                client: TraceServiceClient::new(endpoint.connect_lazy()),
                headers,
            })
        }
    }
}

impl Upstream {
    async fn send(&mut self, request: &ExportTraceServiceRequest) -> Result<(), String> {
        match self {
            Upstream::Http {
                client,
                url,
                headers,
            } => {
                let mut call = client
                    .post(url.as_str())
                    .header("content-type", "application/x-protobuf")
                    .body(request.encode_to_vec());
                for (k, v) in headers.iter() {
                    call = call.header(k.as_str(), v.as_str());
                }
                let response = call.send().await.map_err(|e| e.to_string())?;
                let status = response.status();
                // 4xx other than 429 will not get better on retry: the collector refused it.
                if status.is_success() || (status.is_client_error() && status.as_u16() != 429) {
                    if !status.is_success() {
                        tracing::warn!(%status, "collector refused forwarded OTLP spans");
                    }
                    Ok(())
                } else {
                    Err(format!("collector answered {status}"))
                }
            }
            Upstream::Grpc { client, headers } => {
                let mut call = tonic::Request::new(request.clone());
                for (k, v) in headers.iter() {
                    if let (Ok(key), Ok(value)) = (
                        k.parse::<tonic::metadata::MetadataKey<_>>(),
                        v.parse::<tonic::metadata::MetadataValue<_>>(),
                    ) {
                        call.metadata_mut().insert(key, value);
                    }
                }
                match client.export(call).await {
                    Ok(_) => Ok(()),
                    Err(status)
                        if matches!(
                            status.code(),
                            tonic::Code::InvalidArgument | tonic::Code::PermissionDenied
                        ) =>
                    {
                        tracing::warn!(%status, "collector refused forwarded OTLP spans");
                        Ok(())
                    }
                    Err(status) => Err(status.to_string()),
                }
            }
        }
    }
}

/// Builds the forwarder for `config` and its worker task.
pub fn start(
    config: &ExportConfig,
    metrics: Arc<ExportMetrics>,
    shutdown: watch::Receiver<bool>,
) -> Result<(Arc<Forwarder>, tokio::task::JoinHandle<()>), ForwardError> {
    let upstream = upstream(config)?;
    let forwarder = Arc::new(Forwarder::new(config.queue_bytes, metrics));
    let min_backoff = Duration::from_millis(50).min(config.max_backoff);
    let task = tokio::spawn(run(
        Arc::clone(&forwarder),
        upstream,
        (min_backoff, config.max_backoff),
        shutdown,
    ));
    Ok((forwarder, task))
}

async fn run(
    forwarder: Arc<Forwarder>,
    mut upstream: Upstream,
    (min_backoff, max_backoff): (Duration, Duration),
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = min_backoff;
    loop {
        let Some(pending) = forwarder.take() else {
            tokio::select! {
                _ = forwarder.notify.notified() => continue,
                _ = shutdown.changed() => break,
            }
        };
        match upstream.send(&pending.request).await {
            Ok(()) => {
                forwarder.sent(&pending);
                backoff = min_backoff;
            }
            Err(err) => {
                tracing::debug!(%err, "OTLP forward failed; will retry");
                forwarder.metrics.export_errors.inc();
                forwarder.put_back(pending);
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => break,
                }
                backoff = (backoff * 2).min(max_backoff);
            }
        }
    }
    let flush = async {
        while let Some(pending) = forwarder.take() {
            if upstream.send(&pending.request).await.is_err() {
                // Kept: with --data-dir the agent saves what is left for the next start.
                forwarder.put_back(pending);
                return;
            }
            forwarder.sent(&pending);
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), flush).await;
}
