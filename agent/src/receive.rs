//! The order in which received batches are stamped, journaled and applied.
//!
//! The export watermark (`meta.export_acked_ns`, see ARCHITECTURE.md › Persistence) says "every
//! batch received through this time has left for the collector". That holds only if a batch with
//! an earlier receive time can never still be on its way into the store when a later one is
//! delivered. So every ingest path (socket and OTLP) takes [`ReceiveOrder`] around stamping the
//! batch, journaling it, applying it to the store and offering it for forwarding: receive times
//! are then handed out in apply order, and strictly increasing even when the wall clock steps
//! back.

/// Hands out receive times; hold the lock from stamping a batch until it is applied.
#[derive(Debug, Default)]
pub struct ReceiveOrder {
    last: tokio::sync::Mutex<u64>,
}

/// The held order: stamp with [`receive_time`](Self::receive_time) while holding it.
pub struct Stamp<'a> {
    last: tokio::sync::MutexGuard<'a, u64>,
}

impl ReceiveOrder {
    /// Waits for the order (async ingest tasks).
    pub async fn lock(&self) -> Stamp<'_> {
        Stamp {
            last: self.last.lock().await,
        }
    }

    /// Waits for the order on a blocking thread (OTLP ingest runs on `spawn_blocking`).
    pub fn blocking_lock(&self) -> Stamp<'_> {
        Stamp {
            last: self.last.blocking_lock(),
        }
    }
}

impl Stamp<'_> {
    /// The receive time for the next batch: now, or just after the last one handed out.
    pub fn receive_time(&mut self) -> u64 {
        let now = flowscope::now_nanos().max(self.last.saturating_add(1));
        *self.last = now;
        now
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn stamps_increase_in_the_order_the_lock_was_taken() {
        let order = Arc::new(ReceiveOrder::default());
        let applied = Arc::new(std::sync::Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (order, applied) = (Arc::clone(&order), Arc::clone(&applied));
                std::thread::spawn(move || {
                    for _ in 0..500 {
                        let mut stamp = order.blocking_lock();
                        let t = stamp.receive_time();
                        // Stands for journaling and applying the batch, under the same hold.
                        applied.lock().unwrap().push(t);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let applied = applied.lock().unwrap();
        assert_eq!(applied.len(), 2000);
        assert!(
            applied.windows(2).all(|w| w[0] < w[1]),
            "a later-applied batch got an earlier receive time"
        );
    }

    #[test]
    fn stamps_never_go_back_with_the_clock() {
        let order = ReceiveOrder::default();
        let future = flowscope::now_nanos() + 3_600_000_000_000;
        {
            // As if the last batch was stamped before the wall clock stepped back an hour.
            let mut stamp = order.blocking_lock();
            *stamp.last = future;
        }
        let mut stamp = order.blocking_lock();
        assert_eq!(stamp.receive_time(), future + 1);
        assert_eq!(stamp.receive_time(), future + 2);
    }
}
