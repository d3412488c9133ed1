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

use crate::trace::group::{GroupSummary, summarize};
use crate::trace::{Trace, TraceStatus, builder};

/// Lifetime counters of the store.
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
    counters: StoreCounters,
    client_stats: HashMap<Arc<str>, ClientStats>,
    /// Traces changed since the live publisher last looked.
    dirty: HashSet<TraceId>,
    /// The last trace marked dirty (consecutive events mostly hit one trace).
    last_dirty: Option<TraceId>,
}

impl Store {
    /// A store holding at most `max_traces` traces.
    pub fn new(max_traces: NonZeroUsize) -> Self {
        Self {
            traces: LruCache::new(max_traces),
            index: Indexes::default(),
            counters: StoreCounters::default(),
            client_stats: HashMap::new(),
            dirty: HashSet::new(),
            last_dirty: None,
        }
    }

    /// Applies a decoded batch from a connection of `service`. `now_ns` is the agent's clock.
    pub fn apply_batch(&mut self, service: &Arc<str>, events: Vec<Event>, now_ns: u64) {
        for event in events {
            self.apply(service, event, now_ns);
        }
    }

    /// Applies one event.
    pub fn apply(&mut self, service: &Arc<str>, event: Event, now_ns: u64) {
        let Some(id) = event.trace_id() else {
            match event {
                Event::Stats(stats) => {
                    self.client_stats.insert(Arc::clone(service), stats);
                }
                _ => self.counters.events_unknown += 1,
            }
            return;
        };
        self.counters.events_applied += 1;
        if !self.traces.contains(&id) {
            let first = builder::event_times(&event).map_or(now_ns, |(t, _)| t);
            self.insert(Trace::new(id, Arc::clone(service), first, now_ns));
        }
        let is_start = matches!(event, Event::TraceStart(_));
        let Some(trace) = self.traces.get_mut(&id) else {
            return;
        };
        if is_start && trace.service != *service {
            trace.service = Arc::clone(service);
        }
        builder::apply(trace, &mut self.index, event, now_ns);
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
            self.counters.traces_evicted += 1;
        }
        self.index.add_trace(&trace);
        self.counters.traces_created += 1;
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
        self.counters.traces_abandoned += stale.len() as u64;
        stale.len()
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
        self.counters
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
