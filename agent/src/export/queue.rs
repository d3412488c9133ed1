//! The bounded export queue (by span count and estimated bytes). Producers never wait: beyond
//! the bound the oldest spans are dropped and counted.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use parking_lot::Mutex;
use prost::Message as _;
use tokio::sync::Notify;

use super::mapping::Span;
use crate::telemetry::ExportMetrics;
use crate::trace::Origin;

/// A span waiting for export, with the resource it belongs to.
pub struct Queued {
    /// Whose resource.
    pub origin: Arc<Origin>,
    /// The span, or what it is built from.
    pub span: QueuedSpan,
    /// Its estimated encoded size.
    pub bytes: usize,
    /// When the batch it came from was received (the journal's time for that batch).
    pub received_ns: u64,
}

/// A queued span. Operations, the most numerous spans, are queued as their few fields and built
/// by the export worker, off the store's write lock and off ingest's threads.
pub enum QueuedSpan {
    /// Built (boxed: a span is three times the size of what it is built from).
    Built(Box<Span>),
    /// The `index`-th operation under `parent` in `trace`, to build.
    Op {
        /// Trace id.
        trace: flowscope::wire::TraceId,
        /// The span it hangs under.
        parent: flowscope::wire::SpanId,
        /// Its position among the operations there (its span id derives from it).
        index: usize,
        /// The operation.
        op: crate::trace::Operation,
    },
    /// A step's span, to build.
    Step(Box<super::mapping::StepSpanSource>),
    /// A segment's root span, to build.
    Segment(Box<super::mapping::SegmentSpanSource>),
}

impl QueuedSpan {
    /// The span, built from its source (each call builds anew, so a batch that is retried keeps
    /// its sources and a first attempt copies nothing).
    pub fn build(&self) -> Span {
        match self {
            QueuedSpan::Built(span) => (**span).clone(),
            QueuedSpan::Op {
                trace,
                parent,
                index,
                op,
            } => super::mapping::op_span_under(*trace, *parent, *index, op),
            QueuedSpan::Step(source) => source.build(),
            QueuedSpan::Segment(source) => source.build(),
        }
    }

    /// The span, built, consuming the source.
    pub fn into_built(self) -> Span {
        match self {
            QueuedSpan::Built(span) => *span,
            source => source.build(),
        }
    }

    /// A rough encoded size.
    fn estimate(&self) -> usize {
        match self {
            QueuedSpan::Built(span) => span.encoded_len(),
            // Name, four attributes and ids, about what a built one encodes to.
            QueuedSpan::Op { op, .. } => {
                let text = |s: Option<&str>| s.map_or(0, str::len);
                64 + 24
                    + 2 * text(op.subject.as_deref())
                    + text(op.detail.as_deref())
                    + text(op.error.as_deref())
                    + 4 * 30
            }
            // Name, ids and the six fixed attributes, about what a built one encodes to.
            QueuedSpan::Step(source) => 64 + 6 * 30 + source.text_bytes(),
            // Name, ids, the fixed attributes and up to two links.
            QueuedSpan::Segment(source) => 64 + 6 * 30 + 2 * 40 + source.text_bytes(),
        }
    }
}

/// `items` grouped by origin (one export call per resource), origins in first-seen order.
pub fn group_by_origin(items: Vec<Queued>) -> Vec<(Arc<Origin>, Vec<Queued>)> {
    let mut groups: Vec<(Arc<Origin>, Vec<Queued>)> = Vec::new();
    for item in items {
        match groups
            .iter_mut()
            .find(|(o, _)| Arc::ptr_eq(o, &item.origin))
        {
            Some((_, group)) => group.push(item),
            None => groups.push((Arc::clone(&item.origin), vec![item])),
        }
    }
    groups
}

/// How far a queue got, by the receive times of the batches its spans (or requests) came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// The oldest it still owes the collector (queued or in flight), if any.
    pub oldest_owed: Option<u64>,
    /// The newest it was given.
    pub newest: u64,
}

/// A queue's batch times, kept alike by the export queue and the forwarder: the newest it was
/// given, and the oldest of what its worker has taken and not yet settled.
#[derive(Debug, Default)]
pub(crate) struct Owed {
    newest_ns: u64,
    in_flight_ns: Option<u64>,
}

impl Owed {
    /// Something received at `received_ns` was queued.
    pub(crate) fn given(&mut self, received_ns: u64) {
        self.newest_ns = self.newest_ns.max(received_ns);
    }

    /// The worker took what was received from `oldest_ns` on.
    pub(crate) fn taken(&mut self, oldest_ns: u64) {
        self.in_flight_ns = Some(self.in_flight_ns.map_or(oldest_ns, |t| t.min(oldest_ns)));
    }

    /// What the worker took was delivered, saved, or put back in the queue.
    pub(crate) fn settled(&mut self) {
        self.in_flight_ns = None;
    }

    /// The progress, given the receive time of the oldest still queued.
    pub(crate) fn progress(&self, oldest_queued_ns: Option<u64>) -> Progress {
        Progress {
            oldest_owed: [oldest_queued_ns, self.in_flight_ns]
                .into_iter()
                .flatten()
                .min(),
            newest: self.newest_ns,
        }
    }
}

impl Progress {
    /// Through when everything left (delivered, saved or dropped by the bound).
    pub fn acked_through(self) -> u64 {
        self.merge(Progress::default())
    }

    /// Through when everything of both left: just before the oldest either owes, else as far
    /// as either was given (a queue that owes nothing holds nothing back). A restart after a
    /// crash exports again what came later (at-least-once).
    pub fn merge(self, other: Progress) -> u64 {
        match [self.oldest_owed, other.oldest_owed]
            .into_iter()
            .flatten()
            .min()
        {
            Some(oldest) => oldest.saturating_sub(1),
            None => self.newest.max(other.newest),
        }
    }
}

/// Collector state as seen by the exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectorState {
    /// Nothing exported yet.
    Unknown,
    /// The last export succeeded.
    Up,
    /// The last export failed.
    Down,
}

impl CollectorState {
    /// API name.
    pub fn as_str(self) -> &'static str {
        match self {
            CollectorState::Unknown => "unknown",
            CollectorState::Up => "up",
            CollectorState::Down => "down",
        }
    }
}

#[derive(Default)]
struct Inner {
    items: VecDeque<Queued>,
    bytes: usize,
    /// Batch times given and in flight.
    owed: Owed,
}

/// The queue shared by the store (producer) and the export worker (consumer).
pub struct ExportQueue {
    inner: Mutex<Inner>,
    max_spans: usize,
    max_bytes: usize,
    metrics: Arc<ExportMetrics>,
    state: AtomicU8,
    /// Wakes the worker when spans arrive in an empty queue.
    pub notify: Notify,
}

impl ExportQueue {
    /// A queue bounded at `max_spans` spans and `max_bytes` estimated bytes.
    pub fn new(max_spans: usize, max_bytes: usize, metrics: Arc<ExportMetrics>) -> Self {
        Self {
            inner: Mutex::default(),
            max_spans: max_spans.max(1),
            max_bytes: max_bytes.max(1),
            metrics,
            state: AtomicU8::new(0),
            notify: Notify::new(),
        }
    }

    /// Appends the spans (built or to build, each with its resource) from the batch received at
    /// `received_ns`, dropping the oldest beyond the bound. One lock for the whole batch.
    pub fn push_offered(
        &self,
        received_ns: u64,
        spans: impl IntoIterator<Item = (Arc<Origin>, QueuedSpan)>,
    ) {
        let mut spans = spans.into_iter().peekable();
        if spans.peek().is_none() {
            return;
        }
        let mut inner = self.inner.lock();
        let was_empty = inner.items.is_empty();
        inner.owed.given(received_ns);
        for (origin, span) in spans {
            let bytes = span.estimate();
            inner.bytes += bytes;
            inner.items.push_back(Queued {
                origin,
                span,
                bytes,
                received_ns,
            });
        }
        self.enforce_bound(&mut inner);
        drop(inner);
        // The worker drains until the queue is empty before it waits: only the first span after
        // that needs to wake it (a wake-up per span would cost ingest a futex call each).
        if was_empty {
            self.notify.notify_one();
        }
    }

    /// Takes up to `max` spans from the front, to deliver; [`delivered`](Self::delivered) or
    /// [`requeue`](Self::requeue) says how that went.
    pub fn take(&self, max: usize) -> Vec<Queued> {
        let mut inner = self.inner.lock();
        let n = max.min(inner.items.len());
        let taken: Vec<Queued> = inner.items.drain(..n).collect();
        inner.bytes -= taken.iter().map(|q| q.bytes).sum::<usize>();
        if let Some(oldest) = taken.iter().map(|q| q.received_ns).min() {
            inner.owed.taken(oldest);
        }
        self.update_gauges(&inner);
        taken
    }

    /// The spans taken last were delivered.
    pub fn delivered(&self) {
        self.inner.lock().owed.settled();
    }

    /// Everything still waiting, handed over for saving (at shutdown): it counts as delivered.
    pub fn drain(&self) -> Vec<Queued> {
        let taken = self.take(usize::MAX);
        self.delivered();
        taken
    }

    /// How far export got (see [`Progress`]).
    pub fn progress(&self) -> Progress {
        let inner = self.inner.lock();
        inner
            .owed
            .progress(inner.items.front().map(|q| q.received_ns))
    }

    /// The newest batch time through which every span has been delivered, saved or dropped.
    pub fn acked_through(&self) -> u64 {
        self.progress().acked_through()
    }

    /// Puts spans whose export failed back at the front (they are the oldest).
    pub fn requeue(&self, spans: Vec<Queued>) {
        let mut inner = self.inner.lock();
        inner.owed.settled();
        for item in spans.into_iter().rev() {
            inner.bytes += item.bytes;
            inner.items.push_front(item);
        }
        self.enforce_bound(&mut inner);
    }

    /// Spans waiting.
    pub fn len(&self) -> usize {
        self.inner.lock().items.len()
    }

    /// Whether half the bound (in spans or bytes) is used.
    pub fn half_full(&self) -> bool {
        let inner = self.inner.lock();
        inner.items.len() * 2 >= self.max_spans || inner.bytes * 2 >= self.max_bytes
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The collector state.
    pub fn state(&self) -> CollectorState {
        match self.state.load(Ordering::Relaxed) {
            1 => CollectorState::Up,
            2 => CollectorState::Down,
            _ => CollectorState::Unknown,
        }
    }

    /// Records the outcome of an export attempt.
    pub fn set_state(&self, state: CollectorState) {
        let code = match state {
            CollectorState::Unknown => 0,
            CollectorState::Up => 1,
            CollectorState::Down => 2,
        };
        self.state.store(code, Ordering::Relaxed);
        self.metrics
            .collector_up
            .set(i64::from(state == CollectorState::Up));
    }

    fn enforce_bound(&self, inner: &mut Inner) {
        while inner.items.len() > self.max_spans
            || (inner.bytes > self.max_bytes && inner.items.len() > 1)
        {
            if let Some(oldest) = inner.items.pop_front() {
                inner.bytes -= oldest.bytes;
                self.metrics.spans_dropped.inc();
            }
        }
        self.update_gauges(inner);
    }

    fn update_gauges(&self, inner: &Inner) {
        self.metrics.queue_spans.set(inner.items.len() as i64);
        self.metrics.queue_bytes.set(inner.bytes as i64);
    }
}
