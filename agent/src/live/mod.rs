//! Live updates: a publisher turns store changes into [`LiveEvent`]s on a broadcast channel,
//! coalesced every [`PUBLISH_EVERY`]; SSE (`/api/stream`) and WebSocket (`/api/ws`) clients
//! subscribe with optional filters. A client that falls behind the channel is dropped with a
//! reason; the agent never waits for a client.

mod event;
pub mod sse;
mod subscription;
pub mod ws;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{broadcast, watch};

pub use event::{LiveEvent, LiveFilter};

use crate::AgentState;
use crate::api::shapes;
use crate::trace::{Announced, TraceStatus};

/// How often changes are gathered and published (the coalescing window).
pub const PUBLISH_EVERY: Duration = Duration::from_millis(25);

/// The broadcast side shared by the publisher and every subscriber.
pub struct Hub {
    sender: broadcast::Sender<Arc<LiveEvent>>,
    seq: AtomicU64,
    /// Subscribers dropped for being too slow.
    pub dropped_clients: AtomicU64,
}

impl Hub {
    /// A hub buffering `capacity` events per subscriber.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self {
            sender,
            seq: AtomicU64::new(0),
            dropped_clients: AtomicU64::new(0),
        }
    }

    /// A new subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.sender.subscribe()
    }

    /// Current subscribers.
    pub fn subscribers(&self) -> usize {
        self.sender.receiver_count()
    }

    /// The next sequence number.
    pub fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Ends every subscription (agent shutdown), so open streams don't hold the HTTP server.
    pub fn close(&self) {
        let seq = self.next_seq();
        self.publish(LiveEvent {
            seq,
            kind: "shutdown",
            flows: vec![],
            trace_ids: vec![],
            data: "{}".into(),
        });
    }

    fn publish(&self, event: LiveEvent) {
        // No subscriber is not an error.
        let _ = self.sender.send(Arc::new(event));
    }
}

/// Publishes coalesced changes until shutdown.
pub async fn publish_changes(state: Arc<AgentState>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(PUBLISH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => publish_once(&state),
            _ = shutdown.changed() => return,
        }
    }
}

/// Drains the store's changed traces into events (a no-op but for the drain with no subscriber).
pub fn publish_once(state: &AgentState) {
    let hub = &state.live;
    let mut store = state.store.write();
    let dirty = store.take_dirty();
    if dirty.is_empty() || hub.subscribers() == 0 {
        return;
    }
    let stall = state.config.stall_after.as_nanos() as u64;
    let now = flowscope::now_nanos();
    let mut groups = HashSet::new();
    let mut flows = HashSet::new();
    for id in dirty {
        let Some(trace) = store.peek_mut(id) else {
            continue;
        };
        let ended = trace.status != TraceStatus::Running;
        let kind = match (trace.announced, ended) {
            (Announced::Nothing, false) => "trace.created",
            (Announced::Ended, _) | (Announced::Running, false) => "trace.updated",
            (_, true) => "trace.completed",
        };
        trace.announced = if ended {
            Announced::Ended
        } else {
            Announced::Running
        };
        let trace = store.peek(id).expect("trace present");
        let data = serde_json::to_string(&shapes::trace_summary(&store, trace)).unwrap_or_default();
        if let Some(cid) = &trace.correlation_id {
            groups.insert(cid.clone());
        }
        flows.insert(trace.flow().to_owned());
        hub.publish(LiveEvent {
            seq: hub.next_seq(),
            kind,
            flows: vec![trace.flow().to_owned()],
            trace_ids: vec![id],
            data,
        });
    }
    for cid in groups {
        let Some(group) = store.group(&cid, now, stall) else {
            continue;
        };
        let data = shapes::group_json(&store, &group, false).to_string();
        hub.publish(LiveEvent {
            seq: hub.next_seq(),
            kind: "group.updated",
            flows: group.traces.iter().map(|t| t.flow().to_owned()).collect(),
            trace_ids: group.traces.iter().map(|t| t.id).collect(),
            data,
        });
    }
    for flow in flows {
        let Some(status) = store.flow_status(&flow) else {
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
}
