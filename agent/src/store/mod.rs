//! The bounded store: the most recently active traces (LRU, `--max-traces`) and the indexes
//! that make filters cheap. Evicting a trace removes it from every index and group.

mod flows;
pub mod index;
mod query;

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::Arc;

use flowscope::wire::{ClientStats, Event, TraceId};
use lru::LruCache;

pub use flows::{FlowStatus, StepStatusCounts};
pub use index::{GroupEntry, Indexes};
pub use query::{Cursor, Page, TraceQuery};

use crate::telemetry::{FlowLabels, StepLabels, StoreMetrics};
use crate::trace::builder::Applied;
use crate::trace::group::{GroupSummary, summarize};
use crate::trace::{Origin, Trace, TraceStatus, builder};

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
pub struct Store {
    traces: LruCache<TraceId, Trace>,
    index: Indexes,
    metrics: Arc<StoreMetrics>,
    client_stats: HashMap<Arc<str>, ClientStats>,
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
            client_stats: HashMap::new(),
            dirty: HashSet::new(),
            last_dirty: None,
            exporter: None,
        }
    }

    /// Applies a decoded batch from a connection of `service`. `now_ns` is the agent's clock.
    pub fn apply_batch(&mut self, origin: &Arc<Origin>, events: Vec<Event>, now_ns: u64) {
        for event in events {
            self.apply(origin, event, now_ns);
        }
    }

    /// Applies one event.
    pub fn apply(&mut self, origin: &Arc<Origin>, event: Event, now_ns: u64) {
        let Some(id) = event.trace_id() else {
            match event {
                Event::Stats(stats) => {
                    self.client_stats
                        .insert(origin.service.as_str().into(), stats);
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
        if is_start && !Arc::ptr_eq(&trace.origin, origin) {
            trace.origin = Arc::clone(origin);
        }
        let applied = builder::apply(trace, &mut self.index, event, now_ns);
        self.observe(id, &applied);
        if let Some(exporter) = &self.exporter
            && applied != Applied::Nothing
            && let Some(trace) = self.traces.peek(&id)
        {
            let previous = if applied == Applied::TraceEnded {
                self.previous_in_group(trace)
            } else {
                None
            };
            exporter.offer(trace, applied, previous);
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
        if let Some(trace) = self.traces.peek_mut(&id) {
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
        self.traces.put(trace.id, trace);
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
            if let Some(trace) = self.traces.peek_mut(id) {
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
        group
            .traces
            .iter()
            .filter_map(|id| self.traces.peek(id))
            .filter(|t| (t.start_ns, t.id) < (trace.start_ns, trace.id))
            .max_by_key(|t| (t.start_ns, t.id))
            .map(|t| t.id)
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

    /// A mutable trace by id (does not count as activity for the LRU).
    pub fn peek_mut(&mut self, id: TraceId) -> Option<&mut Trace> {
        self.traces.peek_mut(&id)
    }

    /// A trace by id (does not count as activity for the LRU).
    pub fn peek(&self, id: TraceId) -> Option<&Trace> {
        self.traces.peek(&id)
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
                let labels = StepLabels {
                    flow: trace.flow().to_owned(),
                    step: step.name.clone(),
                    status: step.status.as_str(),
                };
                self.metrics
                    .step_duration
                    .get_or_create(&labels)
                    .observe(seconds(end.saturating_sub(start)));
            }
            Applied::TraceEnded => {
                let Some(duration) = trace.duration_ns() else {
                    return;
                };
                let labels = FlowLabels {
                    flow: trace.flow().to_owned(),
                    status: trace.status.as_str(),
                };
                self.metrics
                    .workflow_duration
                    .get_or_create(&labels)
                    .observe(seconds(duration));
            }
            _ => {}
        }
    }

    /// Latest `stats` event per service.
    pub fn client_stats(&self) -> &HashMap<Arc<str>, ClientStats> {
        &self.client_stats
    }

    /// Summary of the group `cid`.
    pub fn group<'a>(
        &'a self,
        cid: &'a str,
        now_ns: u64,
        stall_after_ns: u64,
    ) -> Option<GroupSummary<'a>> {
        let (id, entry) = self.index.groups.get_key_value(cid)?;
        let members = entry
            .traces
            .iter()
            .filter_map(|t| self.traces.peek(t))
            .collect();
        Some(summarize(
            id,
            entry.name.as_deref(),
            members,
            now_ns,
            stall_after_ns,
        ))
    }

    /// Every group, most recently active first.
    pub fn groups(&self, now_ns: u64, stall_after_ns: u64) -> Vec<GroupSummary<'_>> {
        let mut groups: Vec<GroupSummary<'_>> = self
            .index
            .groups
            .keys()
            .filter_map(|cid| self.group(cid, now_ns, stall_after_ns))
            .collect();
        groups.sort_by(|a, b| {
            b.last_activity_ns
                .cmp(&a.last_activity_ns)
                .then_with(|| a.id.cmp(b.id))
        });
        groups
    }
}
