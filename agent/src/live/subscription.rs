//! One subscriber's view of the hub: filtered events, heartbeats, and the drop of a slow client.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Interval;

use super::{Hub, LiveEvent, LiveFilter};

/// A subscriber's stream of events.
pub struct Subscription {
    rx: Receiver<Arc<LiveEvent>>,
    filter: LiveFilter,
    heartbeat: Interval,
    hub: Arc<Hub>,
    finished: bool,
}

impl Subscription {
    /// Subscribes to `hub` with `filter`, heartbeating every `heartbeat`.
    pub fn new(hub: Arc<Hub>, filter: LiveFilter, heartbeat: Duration) -> Self {
        let mut heartbeat = tokio::time::interval(heartbeat);
        heartbeat.reset(); // the first tick after one period, not now
        Self {
            rx: hub.subscribe(),
            filter,
            heartbeat,
            hub,
            finished: false,
        }
    }

    /// The next event to send; `None` when the stream is over. A client that lagged behind gets
    /// one `error` event (code `slow_client`), then the end.
    pub async fn next(&mut self) -> Option<Arc<LiveEvent>> {
        if self.finished {
            return None;
        }
        loop {
            tokio::select! {
                received = self.rx.recv() => match received {
                    Ok(event) if event.kind == "shutdown" => return None,
                    Ok(event) if self.filter.admits(&event) => return Some(event),
                    Ok(_) => continue,
                    Err(RecvError::Lagged(missed)) => {
                        self.finished = true;
                        self.hub.dropped_clients.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(missed, "dropping a slow live client");
                        let message = format!("client fell {missed} events behind; reconnect and reload");
                        return Some(Arc::new(LiveEvent::dropped(self.hub.next_seq(), "slow_client", &message)));
                    }
                    Err(RecvError::Closed) => return None,
                },
                _ = self.heartbeat.tick() => return Some(Arc::new(LiveEvent::heartbeat(self.hub.next_seq()))),
            }
        }
    }
}
