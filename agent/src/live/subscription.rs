//! One subscriber: a queue the publisher fills (bounded in events and bytes, checked when
//! publishing) and the stream side that drains it, with heartbeats. A subscriber over its budget
//! is sent one `error` (`slow_client`) and closed; the agent never waits for it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Interval;

use super::{Hub, LiveEvent, LiveFilter};

#[derive(Default)]
struct Queue {
    events: VecDeque<Arc<LiveEvent>>,
    bytes: usize,
    /// No more events will be queued (dropped, or the agent is shutting down).
    closed: bool,
}

/// The publisher's handle on one subscriber.
pub(super) struct Mailbox {
    filter: LiveFilter,
    queue: Mutex<Queue>,
    wake: Notify,
    max_events: usize,
    max_bytes: usize,
}

/// What [`Mailbox::offer`] did.
pub(super) enum Offered {
    /// Queued (or filtered out).
    Kept,
    /// The subscriber was over its budget and is now closed.
    Dropped,
}

impl Mailbox {
    pub(super) fn new(filter: LiveFilter, max_events: usize, max_bytes: usize) -> Self {
        Self {
            filter,
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            max_events: max_events.max(1),
            max_bytes: max_bytes.max(1),
        }
    }

    /// Queues `event` if the filter admits it; past the budget the queue is replaced by one
    /// `slow_client` error and closed.
    pub(super) fn offer(&self, event: &Arc<LiveEvent>, hub: &Hub) -> Offered {
        if !self.filter.admits(event) {
            return Offered::Kept;
        }
        let mut queue = self.queue.lock();
        if queue.closed {
            return Offered::Kept;
        }
        let size = event.data.len() + 64;
        if queue.events.len() >= self.max_events || queue.bytes + size > self.max_bytes {
            let message = format!(
                "client fell behind by {} messages ({} bytes); reconnect and reload",
                queue.events.len(),
                queue.bytes
            );
            queue.events.clear();
            queue.events.push_back(Arc::new(LiveEvent::dropped(
                hub.next_seq(),
                "slow_client",
                &message,
            )));
            queue.bytes = 0;
            queue.closed = true;
            drop(queue);
            self.wake.notify_one();
            return Offered::Dropped;
        }
        queue.bytes += size;
        queue.events.push_back(Arc::clone(event));
        drop(queue);
        self.wake.notify_one();
        Offered::Kept
    }

    /// Ends the stream after what is queued (shutdown).
    pub(super) fn close(&self) {
        self.queue.lock().closed = true;
        self.wake.notify_one();
    }

    fn pop(&self) -> Result<Option<Arc<LiveEvent>>, ()> {
        let mut queue = self.queue.lock();
        match queue.events.pop_front() {
            Some(event) => {
                queue.bytes = queue.bytes.saturating_sub(event.data.len() + 64);
                Ok(Some(event))
            }
            None if queue.closed => Err(()),
            None => Ok(None),
        }
    }
}

/// A subscriber's stream of events.
pub struct Subscription {
    mailbox: Arc<Mailbox>,
    heartbeat: Interval,
    hub: Arc<Hub>,
}

impl Subscription {
    /// Subscribes to `hub` with `filter`, heartbeating every `heartbeat`; `None` when the hub
    /// already has its maximum of subscribers.
    pub fn new(hub: Arc<Hub>, filter: LiveFilter, heartbeat: Duration) -> Option<Self> {
        let mut heartbeat = tokio::time::interval(heartbeat);
        heartbeat.reset(); // the first tick after one period, not now
        Some(Self {
            mailbox: hub.register(filter)?,
            heartbeat,
            hub,
        })
    }

    /// The next event to send; `None` when the stream is over. A client that fell behind gets
    /// one `error` event (code `slow_client`), then the end.
    pub async fn next(&mut self) -> Option<Arc<LiveEvent>> {
        loop {
            match self.mailbox.pop() {
                Ok(Some(event)) => return Some(event),
                Err(()) => return None,
                Ok(None) => {}
            }
            tokio::select! {
                _ = self.mailbox.wake.notified() => {}
                _ = self.heartbeat.tick() => {
                    return Some(Arc::new(LiveEvent::heartbeat(self.hub.next_seq())));
                }
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unregister(&self.mailbox);
    }
}

/// Counts a dropped subscriber.
pub(super) fn count_drop(hub: &Hub) {
    hub.dropped_clients.fetch_add(1, Ordering::Relaxed);
    tracing::warn!("dropping a slow live client");
}
