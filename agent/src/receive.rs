//! The order in which received batches are stamped, journaled and applied.
//!
//! The export watermark (`meta.export_acked_ns`, see ARCHITECTURE.md › Persistence) says "every
//! batch received through this time has left for the collector". That holds only if a batch with
//! an earlier receive time can never still be on its way into the store when a later one is
//! delivered. So every ingest path (socket and OTLP) takes [`ReceiveOrder`] around stamping the
//! batch, journaling it, applying it to the store and offering it for forwarding: receive times
//! are then handed out in apply order, and strictly increasing even when the wall clock steps
//! back. Only the journal's watermark depends on that order, so without a journal (`--data-dir`
//! off) ingest takes no lock: under the lock, connections take turns through a task wake-up
//! each, which cost a quarter of two-connection ingest.

/// Hands out receive times; hold the lock from stamping a batch until it is applied.
#[derive(Debug, Default)]
pub struct ReceiveOrder {
    last: tokio::sync::Mutex<u64>,
}

/// The held order (or none, when nothing depends on it): stamp with
/// [`receive_time`](Self::receive_time) while holding it.
pub struct Stamp<'a> {
    last: Option<tokio::sync::MutexGuard<'a, u64>>,
}

impl ReceiveOrder {
    /// Waits for the order when `ordered` (a journal is kept), from an async ingest task.
    pub async fn lock(&self, ordered: bool) -> Stamp<'_> {
        Stamp {
            last: if ordered {
                Some(self.last.lock().await)
            } else {
                None
            },
        }
    }

    /// [`lock`](Self::lock) on a blocking thread (OTLP ingest runs on `spawn_blocking`).
    pub fn blocking_lock(&self, ordered: bool) -> Stamp<'_> {
        Stamp {
            last: ordered.then(|| self.last.blocking_lock()),
        }
    }
}

impl Stamp<'_> {
    /// The receive time for the next batch: now, or (held) just after the last one handed out.
    pub fn receive_time(&mut self) -> u64 {
        let now = flowscope::now_nanos();
        match &mut self.last {
            Some(last) => {
                let now = now.max(last.saturating_add(1));
                **last = now;
                now
            }
            None => now,
        }
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
                        let mut stamp = order.blocking_lock(true);
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
            let mut stamp = order.blocking_lock(true);
            if let Some(last) = &mut stamp.last {
                **last = future;
            }
        }
        let mut stamp = order.blocking_lock(true);
        assert_eq!(stamp.receive_time(), future + 1);
        assert_eq!(stamp.receive_time(), future + 2);
        drop(stamp);
        // Without a journal nothing is held or remembered: plain wall-clock time.
        let mut free = order.blocking_lock(false);
        assert!(free.receive_time() < future);
    }
}
