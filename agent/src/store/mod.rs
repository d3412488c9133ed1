//! The bounded store: the most recently active traces (LRU, `--max-traces`) and the indexes
//! that make filters cheap. Evicting a trace removes it from every index and group.

mod flows;
pub mod index;
mod query;

use std::collections::HashSet;
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

/// A snapshot of the store's lifetime counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StoreCounters {
    /// Events applied to traces.
    pub events_applied: u64,
    /// Events of kinds this agent does not know.
    pub events_unknown: u64,
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
    index: Indexes,
    metrics: Arc<StoreMetrics>,
    client_stats: LruCache<Arc<str>, ClientStats>,
    caps: TraceCaps,
    /// Traces changed since the live publisher last looked.
    dirty: HashSet<TraceId>,
    /// The last trace marked dirty (consecutive events mostly hit one trace).
    last_dirty: Option<TraceId>,
    /// OTLP forwarding, when configured.
    exporter: Option<crate::export::Exporter>,
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
            client_stats: LruCache::new(
                NonZeroUsize::new(MAX_CLIENT_SERVICES).unwrap_or(NonZeroUsize::MIN),
            ),
            caps: TraceCaps::default(),
            dirty: HashSet::new(),
            last_dirty: None,
            exporter: None,
        }
    }

    /// Sets the per-trace caps.
    pub fn set_caps(&mut self, caps: TraceCaps) {
        self.caps = caps;
    }

    /// Applies a decoded batch from a connection of `service`. `now_ns` is the agent's clock.
    pub fn apply_batch(&mut self, origin: &Arc<Origin>, events: Vec<Event>, now_ns: u64) {
        for event in events {
            self.apply(origin, event, now_ns);
        }
    }

    /// Applies one event.
    pub fn apply(&mut self, origin: &Arc<Origin>, mut event: Event, now_ns: u64) {
        let cut = match limits::sanitize(&mut event) {
            Ok(cut) => cut,
            Err(invalid) => {
                self.metrics.invalid(invalid.code());
                return;
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
            return;
        };
        self.metrics.events_applied.inc();
        if !self.traces.contains(&id) {
            let first = builder::event_times(&event).map_or(now_ns, |(t, _)| t);
            self.insert(Trace::new(id, Arc::clone(origin), first, now_ns));
        }
        let is_start = matches!(event, Event::TraceStart(_));
        let Some(trace) = self.traces.get_mut(&id) else {
            return;
        };
        let trace = Arc::make_mut(trace);
        trace.truncated.strings = trace.truncated.strings.saturating_add(cut);
        let applied = builder::apply(trace, &mut self.index, origin, event, now_ns, &self.caps);
        self.observe(id, &applied);
        if let Some(exporter) = &self.exporter
            && applied != Applied::Nothing
            && let Some(trace) = self.traces.peek(&id)
        {
            let links = match applied {
                Applied::SegmentEnded { .. } => self.root_links(trace),
                _ => crate::export::mapping::RootLinks::default(),
            };
            exporter.offer(trace, applied, &links);
        }
        if self.last_dirty != Some(id) {
            self.dirty.insert(id);
            self.last_dirty = Some(id);
        }
        if is_start {
            self.inherit_parent_group(id);
        }
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
        if self.traces.len() == self.traces.cap().get()
            && let Some((_, evicted)) = self.traces.pop_lru()
        {
            self.index.remove_trace(&evicted);
            self.metrics.traces_evicted.inc();
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
            traces_created: m.traces_created.get(),
            traces_evicted: m.traces_evicted.get(),
            traces_abandoned: m.traces_abandoned.get(),
        }
    }

    /// Records step and workflow durations when something ended.
    fn observe(&self, id: TraceId, applied: &Applied) {
        let Some(trace) = self.traces.peek(&id) else {
            return;
        };
        match applied {
            Applied::StepEnded(span) => {
                let Some(step) = trace.step(*span) else {
                    return;
                };
                let (Some(start), Some(end)) = (step.start_ns, step.end_ns) else {
                    return;
                };
                let labels =
                    self.metrics
                        .step_labels(trace.flow(), &step.name, step.status.as_str());
                self.metrics
                    .step_duration
                    .get_or_create(&labels)
                    .observe(seconds(end.saturating_sub(start)));
            }
            Applied::SegmentEnded {
                trace_ended: true, ..
            } => {
                let Some(duration) = trace.duration_ns() else {
                    return;
                };
                let labels = self
                    .metrics
                    .flow_labels(trace.flow(), trace.status.as_str());
                self.metrics
                    .workflow_duration
                    .get_or_create(&labels)
                    .observe(seconds(duration));
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
