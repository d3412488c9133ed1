//! Pass-through forwarding of OTLP-ingested spans: each accepted request goes upstream as
//! received (not re-derived from the model), over the exporter's configured transport, through a
//! byte-bounded queue that keeps requests while the collector is down and retries with backoff.
//! The model-derived exporter skips OTLP origins, so no span leaves twice.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use parking_lot::Mutex;
use prost::Message as _;
use tokio::sync::{Notify, watch};

use super::ExportConfig;
use super::upstream::{Delivery, Upstream, UpstreamError};
use crate::telemetry::ExportMetrics;

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

    /// `pending` got an answer: accepted (minus what the collector rejected inside it) or
    /// refused for good; either way it leaves the queue.
    fn sent(&self, pending: &Pending, delivery: &Delivery) {
        let mut waiting = self.waiting.lock();
        waiting.owed.settled();
        let done = if pending.from_backlog {
            waiting.backlog_gone()
        } else {
            None
        };
        waiting.bytes = waiting.bytes.saturating_sub(pending.bytes);
        self.metrics.forward_queue_bytes.set(waiting.bytes as i64);
        if let Delivery::Refused(why) = delivery {
            tracing::warn!(%why, spans = pending.spans, "collector refused forwarded OTLP spans");
        }
        let dropped = delivery.dropped(pending.spans);
        self.metrics.forwarded_spans.inc_by(pending.spans - dropped);
        self.metrics.forward_dropped_spans.inc_by(dropped);
        drop(waiting);
        if let Some(done) = done {
            done();
        }
    }
}

/// Builds the forwarder for `config` and its worker task.
pub fn start(
    config: &ExportConfig,
    metrics: Arc<ExportMetrics>,
    shutdown: watch::Receiver<bool>,
) -> Result<(Arc<Forwarder>, tokio::task::JoinHandle<()>), UpstreamError> {
    let upstream = Upstream::new(config)?;
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
        match upstream.send(Cow::Borrowed(&pending.request)).await {
            Ok(delivery) => {
                forwarder.sent(&pending, &delivery);
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
            match upstream.send(Cow::Borrowed(&pending.request)).await {
                Ok(delivery) => forwarder.sent(&pending, &delivery),
                Err(_) => {
                    // Kept: with --data-dir the agent saves what is left for the next start.
                    forwarder.put_back(pending);
                    return;
                }
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), flush).await;
}
