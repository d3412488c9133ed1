//! Live updates: a publisher turns store changes into [`LiveEvent`]s on a broadcast channel,
//! coalesced every [`PUBLISH_EVERY`]; SSE (`/api/stream`) and WebSocket (`/api/ws`) clients
//! subscribe with optional filters. A client that falls behind the channel is dropped with a
//! reason; the agent never waits for a client.

mod event;
mod subscription;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use flowscope::wire::TraceId;
use parking_lot::Mutex;
use tokio::sync::watch;

pub use event::{FilterError, LiveEvent, LiveFilter};
pub use subscription::Subscription;
use subscription::{Mailbox, Offered};

use crate::AgentState;
use crate::trace::group::summarize;
use crate::trace::{Announced, TraceStatus};
use crate::view as shapes;

/// How often changes are gathered and published (the coalescing window).
pub const PUBLISH_EVERY: Duration = Duration::from_millis(25);
/// A flow's status is published at most this often (it summarizes every stored run).
pub const FLOW_STATUS_EVERY: Duration = Duration::from_millis(250);

/// The publisher side shared by every subscriber: one bounded mailbox per subscriber.
pub struct Hub {
    mailboxes: Mutex<Vec<Arc<Mailbox>>>,
    max_subscribers: usize,
    max_events: usize,
    max_bytes: usize,
    seq: AtomicU64,
    /// Subscribers dropped for being too slow.
    pub dropped_clients: AtomicU64,
}

impl Hub {
    /// A hub of at most `max_subscribers`, queueing at most `max_events` events and
    /// `max_bytes` bytes for each.
    pub fn new(max_subscribers: usize, max_events: usize, max_bytes: usize) -> Self {
        Self {
            mailboxes: Mutex::new(Vec::new()),
            max_subscribers: max_subscribers.max(1),
            max_events,
            max_bytes,
            seq: AtomicU64::new(0),
            dropped_clients: AtomicU64::new(0),
        }
    }

    fn register(&self, filter: LiveFilter) -> Option<Arc<Mailbox>> {
        let mut mailboxes = self.mailboxes.lock();
        if mailboxes.len() >= self.max_subscribers {
            return None;
        }
        let mailbox = Arc::new(Mailbox::new(filter, self.max_events, self.max_bytes));
        mailboxes.push(Arc::clone(&mailbox));
        Some(mailbox)
    }

    fn unregister(&self, mailbox: &Arc<Mailbox>) {
        self.mailboxes.lock().retain(|m| !Arc::ptr_eq(m, mailbox));
    }

    /// Current subscribers.
    pub fn subscribers(&self) -> usize {
        self.mailboxes.lock().len()
    }

    /// The next sequence number.
    pub fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The last sequence number handed out. Read before the store, it tells a client which
    /// stream events are newer than what it read: those with a higher `seq` (list, then watch).
    pub fn current_seq(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }

    /// Ends every subscription (agent shutdown), so open streams don't hold the HTTP server.
    pub fn close(&self) {
        for mailbox in self.mailboxes.lock().iter() {
            mailbox.close();
        }
    }

    /// Offers `event` to every subscriber; the budget of each is checked here, not when the
    /// client reads, so a client that never reads costs at most its budget.
    pub fn publish(&self, event: LiveEvent) {
        let event = Arc::new(event);
        let mailboxes = self.mailboxes.lock().clone();
        for mailbox in mailboxes {
            if let Offered::Dropped = mailbox.offer(&event, self) {
                subscription::count_drop(self);
            }
        }
    }
}

/// What the publisher remembers between ticks.
#[derive(Default)]
struct PublisherState {
    announced: HashMap<TraceId, Announced>,
    flow_published: HashMap<String, Instant>,
    flows_pending: HashSet<String>,
}

/// Publishes coalesced changes until shutdown.
pub async fn publish_changes(state: Arc<AgentState>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(PUBLISH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut memory = PublisherState::default();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let shared = Arc::clone(&state);
                memory = match tokio::task::spawn_blocking(move || {
                    publish_once(&shared, &mut memory);
                    memory
                })
                .await
                {
                    Ok(memory) => memory,
                    Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
                    Err(_) => return,
                };
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// Drains the store's changed traces into events: snapshots under the lock, JSON after it.
fn publish_once(state: &AgentState, memory: &mut PublisherState) {
    let hub = &state.live;
    let now = Instant::now();
    let (changed, groups, flows) = {
        let mut store = state.store.write();
        let dirty = store.take_dirty();
        if hub.subscribers() == 0 {
            memory.announced.clear();
            memory.flows_pending.clear();
            return;
        }
        let mut changed = Vec::with_capacity(dirty.len());
        let mut group_ids = HashSet::new();
        for id in dirty {
            let Some(trace) = store.snapshot(id) else {
                continue;
            };
            let index = store.trace_index(&trace);
            if let Some(cid) = &trace.correlation_id {
                group_ids.insert(cid.clone());
            }
            memory.flows_pending.insert(trace.flow().to_owned());
            changed.push((trace, index));
        }
        let groups: Vec<_> = group_ids
            .iter()
            .filter_map(|cid| store.group_members(cid))
            .collect();
        let due: Vec<String> = memory
            .flows_pending
            .iter()
            .filter(|f| {
                memory
                    .flow_published
                    .get(*f)
                    .is_none_or(|at| now.duration_since(*at) >= FLOW_STATUS_EVERY)
            })
            .cloned()
            .collect();
        let flows: Vec<_> = due
            .into_iter()
            .map(|flow| {
                let members = store.flow_members(&flow);
                (flow, members)
            })
            .collect();
        if memory.announced.len() > 2 * store.len() + 1024 {
            memory.announced.retain(|id, _| store.peek(*id).is_some());
        }
        (changed, groups, flows)
    };
    for (trace, index) in changed {
        let ended = trace.status != TraceStatus::Running;
        let announced = memory.announced.entry(trace.id).or_default();
        let kind = match (*announced, ended) {
            (Announced::Nothing, false) => "trace.created",
            (Announced::Ended, _) | (Announced::Running, false) => "trace.updated",
            (_, true) => "trace.completed",
        };
        *announced = if ended {
            Announced::Ended
        } else {
            Announced::Running
        };
        let data = serde_json::to_string(&shapes::trace_summary(&trace, index)).unwrap_or_default();
        hub.publish(LiveEvent {
            seq: hub.next_seq(),
            kind,
            flows: vec![trace.flow().to_owned()],
            trace_ids: vec![trace.id],
            data,
        });
    }
    let stall = state.config.stall_after.as_nanos() as u64;
    let now_ns = flowscope::now_nanos();
    for members in groups {
        let group = summarize(members, now_ns, stall);
        let data = shapes::group_json(&group, false).to_string();
        let mut flows: Vec<String> = group.traces.iter().map(|t| t.flow().to_owned()).collect();
        flows.sort_unstable();
        flows.dedup();
        hub.publish(LiveEvent {
            seq: hub.next_seq(),
            kind: "group.updated",
            flows,
            trace_ids: group.traces.iter().map(|t| t.id).collect(),
            data,
        });
    }
    for (flow, members) in flows {
        memory.flows_pending.remove(&flow);
        memory.flow_published.insert(flow.clone(), now);
        let Some(status) = crate::store::flow_status_of(&flow, members.iter().map(|t| &**t)) else {
            continue;
        };
        let data = serde_json::to_string(&status).unwrap_or_default();
        hub.publish(LiveEvent {
            seq: hub.next_seq(),
            kind: "flow.status",
            flows: vec![flow],
            trace_ids: vec![],
            data,
        });
    }
    if memory.flow_published.len() > 4096 {
        memory
            .flow_published
            .retain(|_, at| now.duration_since(*at) < FLOW_STATUS_EVERY);
    }
}
