//! The bounded store: the most recently active traces (LRU, `--max-traces`) and the indexes
//! that make filters cheap. Evicting a trace removes it from every index and group.

pub mod correlate;
mod durations;
mod flows;
pub mod index;
mod query;

use std::num::NonZeroUsize;
use std::sync::Arc;

use flowscope::wire::{ClientStats, Event, TraceId};
use lru::LruCache;

pub use flows::{FlowStatus, MAX_FLOW_STEPS, StepStatusCounts, flow_status_of};
pub use index::{GroupEntry, Indexes};
pub use query::{Cursor, Page, TraceQuery};

use crate::telemetry::StoreMetrics;
use crate::trace::builder::{Applied, TraceCaps};
use crate::trace::group::GroupMembers;
use crate::trace::{Origin, Trace, TraceStatus, builder, limits};

/// Services whose latest client stats are kept by default.
const MAX_CLIENT_SERVICES: usize = 256;

fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// A trace attribute as text (strings as they are, numbers and booleans printed).
fn attribute_text(trace: &Trace, key: &str) -> Option<String> {
    match trace.attributes.as_ref()?.get(key)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A snapshot of the store's lifetime counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StoreCounters {
    /// Events applied to traces.
    pub events_applied: u64,
    /// Events of kinds this agent does not know.
    pub events_unknown: u64,
    /// Events the SDKs dropped for traces this agent never saw.
    pub sdk_dropped_untraced: u64,
    /// Traces created.
    pub traces_created: u64,
    /// Traces evicted by the LRU bound.
    pub traces_evicted: u64,
    /// Traces failed as abandoned.
    pub traces_abandoned: u64,
}

/// Traces, indexes, groups and the latest client stats per service.
///
/// Traces are held as `Arc`s: a reader clones the `Arc` under the lock and renders after
/// releasing it, and the next write to that trace copies it first (`Arc::make_mut`), so a heavy
/// render never holds up ingest or health checks.
pub struct Store {
    traces: LruCache<TraceId, Arc<Trace>>,
    /// Estimated bytes of `traces`.
    memory_bytes: usize,
    /// `--max-memory`.
    max_memory: usize,
    index: Indexes,
    metrics: Arc<StoreMetrics>,
    /// Duration histograms by permanent flow and step names.
    durations: durations::DurationHistograms,
    client_stats: LruCache<Arc<str>, ClientStats>,
    caps: TraceCaps,
    /// Traces changed since the live publisher last looked.
    dirty: index::IdSet,
    /// The last trace marked dirty (consecutive events mostly hit one trace).
    last_dirty: Option<TraceId>,
    /// OTLP forwarding, when configured.
    exporter: Option<crate::export::Exporter>,
    /// Which applied batches offer spans to the exporter (differs only during a replay).
    export_mode: ExportMode,
    /// Automatic correlation (state, event, temporal).
    correlator: correlate::Correlator,
}

/// Which applied batches offer spans to the exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExportMode {
    /// Live ingest: SDK batches (ingested OTLP is forwarded as received instead).
    Live,
    /// Replaying what the previous run delivered: none.
    Delivered,
    /// Replaying what it may not have delivered: all.
    Owed,
}

impl Store {
    /// A store holding at most `max_traces` traces, with metrics of its own.
    pub fn new(max_traces: NonZeroUsize) -> Self {
        Self::with_metrics(max_traces, Arc::default())
    }

    /// A store reporting into `metrics`.
    pub fn with_metrics(max_traces: NonZeroUsize, metrics: Arc<StoreMetrics>) -> Self {
        Self {
            traces: LruCache::new(max_traces),
            index: Indexes::default(),
            metrics,
            durations: durations::DurationHistograms::default(),
            client_stats: LruCache::new(
                NonZeroUsize::new(MAX_CLIENT_SERVICES).unwrap_or(NonZeroUsize::MIN),
            ),
            caps: TraceCaps::default(),
            dirty: index::IdSet::default(),
            last_dirty: None,
            exporter: None,
            export_mode: ExportMode::Live,
            correlator: correlate::Correlator::new(correlate::CorrelateConfig::default()),
            memory_bytes: 0,
            max_memory: usize::MAX,
        }
    }

    /// Bounds the estimated bytes of the traces in memory: past it the least recently active
    /// traces leave (with `--data-dir` they stay on disk and load back on request).
    pub fn set_max_memory(&mut self, bytes: usize) {
        self.max_memory = bytes.max(1);
    }

    /// Estimated bytes of the traces in memory.
    pub fn memory_bytes(&self) -> usize {
        self.memory_bytes
    }

    fn evict_lru(&mut self) -> bool {
        let Some((_, evicted)) = self.traces.pop_lru() else {
            return false;
        };
        self.memory_bytes = self.memory_bytes.saturating_sub(evicted.approx_bytes);
        self.index.remove_trace(&evicted);
        self.metrics.traces_evicted.inc();
        true
    }

    /// Sets the automatic-correlation rules.
    pub fn set_correlation(&mut self, config: correlate::CorrelateConfig) {
        self.correlator = correlate::Correlator::new(config);
    }

    /// The per-trace caps.
    pub fn caps(&self) -> TraceCaps {
        self.caps
    }

    /// Sets the per-trace caps.
    pub fn set_caps(&mut self, caps: TraceCaps) {
        self.caps = caps;
    }

    /// Applies a decoded batch from a connection of `service`. `now_ns` is the agent's clock.
    pub fn apply_batch(&mut self, origin: &Arc<Origin>, events: Vec<Event>, now_ns: u64) {
        let mut applied = 0;
        for event in events {
            applied += u64::from(self.apply_event(origin, event, now_ns));
        }
        // One atomic add per batch: per event, its wait for pending stores showed in perf.
        self.metrics.events_applied.inc_by(applied);
        self.queue_export(now_ns);
    }

    /// Applies one event.
    pub fn apply(&mut self, origin: &Arc<Origin>, event: Event, now_ns: u64) {
        if self.apply_event(origin, event, now_ns) {
            self.metrics.events_applied.inc();
        }
        self.queue_export(now_ns);
    }

    /// Hands the spans the last events completed to the export queue: once per batch, so ingest
    /// takes the queue's lock once per batch rather than once per span.
    fn queue_export(&mut self, received_ns: u64) {
        if let Some(exporter) = &mut self.exporter {
            exporter.queue_offered(received_ns);
        }
    }

    /// Applies one event; the spans it completes wait in the exporter until
    /// [`queue_export`](Self::queue_export). Whether it counts as applied (the caller counts).
    fn apply_event(&mut self, origin: &Arc<Origin>, mut event: Event, now_ns: u64) -> bool {
        let cut = match limits::sanitize(&mut event) {
            Ok(cut) => cut,
            Err(invalid) => {
                self.metrics.invalid(invalid.code());
                return false;
            }
        };
        let Some(id) = event.trace_id() else {
            match event {
                Event::Stats(stats) => {
                    self.client_stats.put(origin.service.as_str().into(), stats);
                }
                _ => {
                    self.metrics.events_unknown.inc();
                }
            }
            return false;
        };
        if let Event::Dropped(dropped) = &event
            && !self.traces.contains(&id)
        {
            // Every event of that trace was lost: no empty trace for it, only the count.
            self.metrics.sdk_dropped_untraced.inc_by(dropped.n);
            return false;
        }
        if !self.traces.contains(&id) {
            let first = event.times().map_or(now_ns, |(t, _)| t);
            self.insert(Trace::new(id, Arc::clone(origin), first, now_ns));
        }
        let is_start = matches!(event, Event::TraceStart(_));
        let Some(trace) = self.traces.get_mut(&id) else {
            return true;
        };
        let trace = Arc::make_mut(trace);
        trace.truncated.strings = trace.truncated.strings.saturating_add(cut);
        let size = event.queued_size();
        trace.approx_bytes = trace.approx_bytes.saturating_add(size);
        self.memory_bytes = self.memory_bytes.saturating_add(size);
        let applied = builder::apply(trace, &mut self.index, origin, event, now_ns, &self.caps);
        self.observe(id, &applied);
        // OTLP-ingested spans were forwarded as received; deriving them again would send them twice.
        if self.exporter.is_some()
            && applied != Applied::Nothing
            && match self.export_mode {
                ExportMode::Live => !origin.otlp,
                ExportMode::Delivered => false,
                ExportMode::Owed => true,
            }
            && let Some(trace) = self.traces.peek(&id)
        {
            let links = match applied {
                Applied::SegmentEnded { .. } => self.root_links(trace),
                _ => crate::export::mapping::RootLinks::default(),
            };
            if let Some(exporter) = &mut self.exporter {
                exporter.offer(trace, applied, &links);
            }
        }
        if self.last_dirty != Some(id) {
            self.dirty.insert(id);
            self.last_dirty = Some(id);
        }
        if is_start {
            self.inherit_parent_group(id);
            self.correlate_started(id);
        }
        if let Applied::Op(span) = applied {
            self.correlate_op(id, span);
        }
        // The trace just touched is the most recent: the least recently active go first, and
        // the last one stays even when it alone is over the bound.
        while self.memory_bytes > self.max_memory && self.traces.len() > 1 {
            if !self.evict_lru() {
                break;
            }
        }
        true
    }

    /// State- and event-based links from the operation just applied to `id` (no allocation
    /// unless a link is made).
    fn correlate_op(&mut self, id: TraceId, span: Option<flowscope::wire::SpanId>) {
        use flowscope::wire::{OpAction, OpKind};
        let Some(trace) = self.traces.peek(&id) else {
            return;
        };
        let ops = match span.and_then(|s| trace.step(s)) {
            Some(step) => step.ops.as_slice(),
            None => trace.ops.as_slice(),
        };
        let Some(op) = ops.last() else { return };
        let Some(subject) = op.subject.as_deref() else {
            return;
        };
        let t = op.start_ns;
        let evidence = match (op.kind, op.action) {
            // A manually correlated trace still counts towards a key's readers (hot keys), and a
            // match is kept as its candidate.
            (OpKind::State, OpAction::Get) => {
                let (writer, at) = match self.correlator.state_read(subject, id, t) {
                    correlate::ReadOutcome::Link(writer, at) => (writer, at),
                    correlate::ReadOutcome::Nothing => return,
                    correlate::ReadOutcome::Retract(linked) => {
                        let key = subject.to_owned();
                        for trace in linked {
                            self.unlink(trace, &key);
                        }
                        return;
                    }
                };
                let Some(cid) = self
                    .traces
                    .peek(&writer)
                    .and_then(|w| w.correlation_id.clone())
                else {
                    return;
                };
                correlate::Evidence {
                    method: flowscope::wire::CorrelationMethod::State,
                    correlation_id: cid,
                    trace_id: writer,
                    key: Some(subject.to_owned()),
                    topic: None,
                    attribute: None,
                    value: None,
                    at_ns: at,
                    confidence: 1.0,
                }
            }
            (OpKind::State, OpAction::Set | OpAction::Delete) => {
                self.correlator.state_written(subject, id, t);
                return;
            }
            (OpKind::Emit, _) => {
                for key in self.correlator.event_keys().to_vec() {
                    if let Some(value) = attribute_text(trace, &key) {
                        self.correlator.emitted(subject, &key, &value, id, t);
                    }
                }
                return;
            }
            _ => return,
        };
        let key = evidence.key.clone();
        if self.link(id, evidence)
            && let Some(key) = key
        {
            self.correlator.linked_by(&key, id);
        }
    }

    /// Undoes a state link of `id` made through `key` (the key turned out to be hot).
    fn unlink(&mut self, id: TraceId, key: &str) {
        let Some(trace) = self.traces.peek_mut(&id).map(Arc::make_mut) else {
            return;
        };
        let through_key = trace
            .correlation_evidence
            .as_ref()
            .is_some_and(|e| e.key.as_deref() == Some(key));
        if through_key && let Some(cid) = trace.correlation_id.take() {
            self.index.leave(id, trace.start_ns, &cid);
            if let Some(g) = self.index.groups.get_mut(&cid) {
                g.auto_links = g.auto_links.saturating_sub(1);
            }
            trace.correlation_method = None;
            trace.correlation_evidence = None;
        }
        trace
            .correlation_candidates
            .retain(|c| c.key.as_deref() != Some(key));
        self.dirty.insert(id);
    }

    /// Event- and time-based links of a trace that just started, and its run recorded for
    /// temporal rules.
    fn correlate_started(&mut self, id: TraceId) {
        let Some(trace) = self.traces.peek(&id) else {
            return;
        };
        let (flow, t) = (trace.flow().to_owned(), trace.start_ns);
        let mut found = Vec::new();
        if trace.entry == flowscope::wire::EntryType::Event
            && let Some(topic) = ["flowscope.topic", "messaging.destination.name", "topic"]
                .iter()
                .find_map(|k| attribute_text(trace, k))
        {
            let keys: Vec<(String, String)> = self
                .correlator
                .event_keys()
                .iter()
                .filter_map(|k| Some((k.clone(), attribute_text(trace, k)?)))
                .collect();
            for (key, value) in keys {
                if let Some((emitter, at)) = self.correlator.emitter(&topic, &key, &value, id, t) {
                    found.push((
                        emitter,
                        at,
                        1.0,
                        flowscope::wire::CorrelationMethod::Event,
                        Some(topic.clone()),
                        key,
                        value,
                    ));
                }
            }
        }
        let rules = self.correlator.temporal_rules().to_vec();
        for rule in &rules {
            let Some(value) = attribute_text(trace, &rule.attribute) else {
                continue;
            };
            if rule.to == flow
                && let Some((earlier, at, confidence)) = self.correlator.earlier_run(
                    &rule.from,
                    &rule.attribute,
                    &value,
                    id,
                    t,
                    rule.window,
                )
            {
                found.push((
                    earlier,
                    at,
                    confidence,
                    flowscope::wire::CorrelationMethod::Temporal,
                    None,
                    rule.attribute.clone(),
                    value.clone(),
                ));
            }
            if rule.from == flow {
                self.correlator
                    .run_started(&flow, &rule.attribute, &value, id, t);
            }
        }
        for (other, at, confidence, method, topic, attribute, value) in found {
            // The other side's group, or one named by the shared value that both join.
            let cid = match self.traces.peek(&other).map(|o| o.correlation_id.clone()) {
                Some(Some(cid)) => cid,
                Some(None) => {
                    let cid = format!("{attribute}:{value}");
                    if let Some(o) = self.traces.peek_mut(&other).map(Arc::make_mut) {
                        builder::correlate(o, &mut self.index, cid.clone(), method, None);
                    }
                    cid
                }
                None => continue,
            };
            self.link(
                id,
                correlate::Evidence {
                    method,
                    correlation_id: cid,
                    trace_id: other,
                    key: None,
                    topic,
                    attribute: Some(attribute),
                    value: Some(value),
                    at_ns: at,
                    confidence,
                },
            );
        }
    }

    /// Applies an automatic link to `id` — unless it has a manual/header/parent group, its group
    /// already has its share of automatic members, or an earlier automatic link is more recent:
    /// then the link is kept as a candidate.
    fn link(&mut self, id: TraceId, evidence: correlate::Evidence) -> bool {
        let max_candidates = self.correlator.config().max_candidates;
        let max_group = self.correlator.config().max_group_links;
        let group_full = self
            .index
            .groups
            .get(&evidence.correlation_id)
            .is_some_and(|g| g.auto_links >= max_group);
        let Some(trace) = self.traces.peek_mut(&id).map(Arc::make_mut) else {
            return false;
        };
        if trace.correlation_id.as_deref() == Some(evidence.correlation_id.as_str()) {
            return false;
        }
        let replace = !group_full
            && match (&trace.correlation_id, &trace.correlation_evidence) {
                (None, _) => true,
                // Another automatic link: the most recent writer/emitter wins.
                (Some(_), Some(current)) => evidence.at_ns > current.at_ns,
                // Manual, header or parent-trace links always win.
                (Some(_), None) => false,
            };
        if !replace {
            if trace.correlation_candidates.len() < max_candidates
                && !trace
                    .correlation_candidates
                    .iter()
                    .any(|c| c.correlation_id == evidence.correlation_id)
            {
                trace.correlation_candidates.push(evidence);
            }
            return false;
        }
        let previous = trace.correlation_evidence.clone();
        // (builder::correlate frees the previous group's automatic share.)
        builder::correlate(
            trace,
            &mut self.index,
            evidence.correlation_id.clone(),
            evidence.method,
            None,
        );
        if let Some(previous) = previous
            && trace.correlation_candidates.len() < max_candidates
        {
            trace.correlation_candidates.push(*previous);
        }
        if let Some(g) = self.index.groups.get_mut(&evidence.correlation_id) {
            g.auto_links += 1;
        }
        trace.correlation_evidence = Some(Box::new(evidence));
        self.dirty.insert(id);
        true
    }

    /// A trace started by an emit of a correlated trace joins that trace's group.
    fn inherit_parent_group(&mut self, id: TraceId) {
        let Some(parent) = self
            .traces
            .peek(&id)
            .filter(|t| t.correlation_id.is_none())
            .and_then(|t| t.parent_trace)
        else {
            return;
        };
        let Some(cid) = self
            .traces
            .peek(&parent)
            .and_then(|p| p.correlation_id.clone())
        else {
            return;
        };
        if let Some(trace) = self.traces.peek_mut(&id).map(Arc::make_mut) {
            builder::correlate(
                trace,
                &mut self.index,
                cid,
                flowscope::wire::CorrelationMethod::Event,
                None,
            );
        }
    }

    fn insert(&mut self, trace: Trace) {
        if self.traces.len() == self.traces.cap().get() {
            self.evict_lru();
        }
        self.index.add_trace(&trace);
        self.metrics.traces_created.inc();
        self.traces.put(trace.id, Arc::new(trace));
    }

    /// Fails running traces with no event received for `abandon_after_ns`. Returns how many.
    pub fn sweep_abandoned(&mut self, now_ns: u64, abandon_after_ns: u64) -> usize {
        let stale: Vec<TraceId> = self.index.status[TraceStatus::Running.index()]
            .iter()
            .filter(|id| {
                self.traces
                    .peek(*id)
                    .is_some_and(|t| now_ns.saturating_sub(t.last_activity_ns) >= abandon_after_ns)
            })
            .copied()
            .collect();
        for id in &stale {
            if let Some(trace) = self.traces.peek_mut(id).map(Arc::make_mut) {
                builder::abandon(trace, &mut self.index);
                self.dirty.insert(*id);
            }
        }
        self.metrics.traces_abandoned.inc_by(stale.len() as u64);
        stale.len()
    }

    /// Turns OTLP forwarding on.
    pub fn set_exporter(&mut self, exporter: crate::export::Exporter) {
        self.exporter = Some(exporter);
    }

    /// Applies a batch replayed from the journal. One the previous run `delivered` is rebuilt
    /// without offering spans; one it may not have delivered offers them all, ingested OTLP
    /// included (its as-received copy died with the process).
    pub fn replay_batch(
        &mut self,
        origin: &Arc<Origin>,
        events: Vec<Event>,
        received_ns: u64,
        delivered: bool,
    ) {
        self.export_mode = if delivered {
            ExportMode::Delivered
        } else {
            ExportMode::Owed
        };
        self.apply_batch(origin, events, received_ns);
        self.export_mode = ExportMode::Live;
    }

    /// The exporter, if forwarding is on.
    pub fn exporter(&self) -> Option<&crate::export::Exporter> {
        self.exporter.as_ref()
    }

    /// The trace started just before `trace` in its group.
    pub fn previous_in_group(&self, trace: &Trace) -> Option<TraceId> {
        let group = self.index.groups.get(trace.correlation_id.as_deref()?)?;
        group.previous(trace.start_ns, trace.id)
    }

    /// The root span id of a stored trace (its primary segment's), else the derived one.
    pub fn root_span_of(&self, id: TraceId) -> flowscope::wire::SpanId {
        self.traces.peek(&id).map_or_else(
            || crate::export::mapping::root_span_id(id),
            |t| crate::export::mapping::primary_span_id(t),
        )
    }

    /// The span links of `trace`'s root span: the trace whose emit started it and the previous
    /// trace of its group.
    pub fn root_links(&self, trace: &Trace) -> crate::export::mapping::RootLinks {
        let link = |id: TraceId| (id, self.root_span_of(id));
        crate::export::mapping::RootLinks {
            parent: trace.parent_trace.map(link),
            previous: self.previous_in_group(trace).map(link),
        }
    }

    /// Position of `trace` in its group (0-based, by start time).
    pub fn trace_index(&self, trace: &Trace) -> Option<usize> {
        let group = self.index.groups.get(trace.correlation_id.as_deref()?)?;
        Some(group.position(trace.start_ns, trace.id))
    }

    /// A snapshot of one trace, to render after the lock is released.
    pub fn snapshot(&self, id: TraceId) -> Option<Arc<Trace>> {
        self.traces.peek(&id).cloned()
    }

    /// Takes the ids of traces changed since the last call (still stored ones only).
    pub fn take_dirty(&mut self) -> Vec<TraceId> {
        self.last_dirty = None;
        let dirty = std::mem::take(&mut self.dirty);
        dirty
            .into_iter()
            .filter(|id| self.traces.contains(id))
            .collect()
    }

    /// A mutable trace by id (does not count as activity for the LRU; copies it if a reader
    /// holds a snapshot).
    pub fn peek_mut(&mut self, id: TraceId) -> Option<&mut Trace> {
        self.traces.peek_mut(&id).map(Arc::make_mut)
    }

    /// A trace by id (does not count as activity for the LRU).
    pub fn peek(&self, id: TraceId) -> Option<&Trace> {
        self.traces.peek(&id).map(|t| &**t)
    }

    /// Number of stored traces.
    pub fn len(&self) -> usize {
        self.traces.len()
    }

    /// Whether no trace is stored.
    pub fn is_empty(&self) -> bool {
        self.traces.is_empty()
    }

    /// The indexes.
    pub fn indexes(&self) -> &Indexes {
        &self.index
    }

    /// Lifetime counters.
    pub fn counters(&self) -> StoreCounters {
        let m = &self.metrics;
        m.traces_stored.set(self.traces.len() as i64);
        StoreCounters {
            events_applied: m.events_applied.get(),
            events_unknown: m.events_unknown.get(),
            sdk_dropped_untraced: m.sdk_dropped_untraced.get(),
            traces_created: m.traces_created.get(),
            traces_evicted: m.traces_evicted.get(),
            traces_abandoned: m.traces_abandoned.get(),
        }
    }

    /// Records step and workflow durations when something ended.
    fn observe(&mut self, id: TraceId, applied: &Applied) {
        let Some(trace) = self.traces.peek(&id) else {
            return;
        };
        let flow = trace
            .flow_name
            .as_ref()
            .unwrap_or_else(|| crate::trace::unknown_flow());
        match applied {
            Applied::StepEnded(span) => {
                let Some(step) = trace.step(*span) else {
                    return;
                };
                let (Some(start), Some(end)) = (step.start_ns, step.end_ns) else {
                    return;
                };
                self.durations.observe_step(
                    &self.metrics,
                    (flow, &step.name),
                    step.status.as_str(),
                    seconds(end.saturating_sub(start)),
                );
            }
            Applied::SegmentEnded {
                trace_ended: true, ..
            } => {
                let Some(duration) = trace.duration_ns() else {
                    return;
                };
                self.durations.observe_flow(
                    &self.metrics,
                    flow,
                    trace.status.as_str(),
                    seconds(duration),
                );
            }
            _ => {}
        }
    }

    /// Latest `stats` event per service (the most recent services, bounded).
    pub fn client_stats(&self) -> impl Iterator<Item = (&Arc<str>, &ClientStats)> {
        self.client_stats.iter()
    }

    /// The members of group `cid`, as snapshots (render them after releasing the lock).
    pub fn group_members(&self, cid: &str) -> Option<GroupMembers> {
        let (id, entry) = self.index.groups.get_key_value(cid)?;
        Some(GroupMembers {
            id: id.clone(),
            name: entry.name.clone(),
            traces: entry
                .order
                .iter()
                .filter_map(|(_, t)| self.traces.peek(t).cloned())
                .collect(),
        })
    }

    /// Every group's members, most recently active first after summarizing.
    pub fn all_group_members(&self) -> Vec<GroupMembers> {
        self.index
            .groups
            .keys()
            .filter_map(|cid| self.group_members(cid))
            .collect()
    }
}
