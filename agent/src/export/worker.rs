//! The export worker: drains the queue in batches, one request per resource, retrying a batch
//! the collector may yet accept with exponential backoff while the queue (bounded) keeps
//! accepting spans.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::mapping;
use super::queue::{CollectorState, ExportQueue, Queued};
use super::upstream::{Delivery, Upstream};
use crate::telemetry::ExportMetrics;

/// Worker settings.
#[derive(Debug, Clone, Copy)]
pub struct WorkerConfig {
    /// Spans per export call at most.
    pub batch_size: usize,
    /// First retry delay.
    pub min_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// How long a final flush may take at shutdown.
    pub shutdown_flush: Duration,
    /// How long spans gather after the queue stops being empty before the worker takes them.
    pub linger: Duration,
    /// How long, at most, the worker holds off while spans keep arriving (a burst).
    pub burst_delay: Duration,
}

/// Whether an idle worker that woke for new spans keeps holding off: while the queue still
/// grows (ingest is busy and has the CPU first), is under half its bound (nothing is near being
/// dropped) and the first span has waited less than `burst_delay`.
fn hold_off(grew: bool, half_full: bool, waited: Duration, burst_delay: Duration) -> bool {
    grew && !half_full && waited < burst_delay
}

/// Runs until shutdown, then makes one bounded attempt to flush what is left.
pub async fn run(
    mut upstream: Upstream,
    queue: Arc<ExportQueue>,
    metrics: Arc<ExportMetrics>,
    config: WorkerConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = config.min_backoff;
    'run: loop {
        let batch = queue.take(config.batch_size);
        if batch.is_empty() {
            tokio::select! {
                _ = queue.notify.notified() => {}
                _ = shutdown.changed() => break 'run,
            }
            // Let a burst gather into full batches instead of waking for every span, and let
            // ingest have the CPU while it lasts: on a small machine the burst is stored at
            // full speed and forwarded just after (within `burst_delay`), instead of both
            // going slower.
            let woke = tokio::time::Instant::now();
            let mut seen = 0;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(config.linger) => {}
                    _ = shutdown.changed() => break 'run,
                }
                let len = queue.len();
                if !hold_off(
                    len > seen,
                    queue.half_full(),
                    woke.elapsed(),
                    config.burst_delay,
                ) {
                    break;
                }
                seen = len;
            }
            continue;
        }
        match export(&mut upstream, batch, &metrics).await {
            Ok(()) => {
                queue.delivered();
                queue.set_state(CollectorState::Up);
                backoff = config.min_backoff;
            }
            Err(unsent) => {
                queue.set_state(CollectorState::Down);
                queue.requeue(unsent);
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => break,
                }
                backoff = (backoff * 2).min(config.max_backoff);
            }
        }
    }
    let flush = async {
        loop {
            let batch = queue.take(config.batch_size);
            if batch.is_empty() {
                return;
            }
            if let Err(unsent) = export(&mut upstream, batch, &metrics).await {
                // Kept: with --data-dir the agent saves what is left for the next start.
                queue.requeue(unsent);
                return;
            }
            queue.delivered();
        }
    };
    let _ = tokio::time::timeout(config.shutdown_flush, flush).await;
}

/// Exports a batch, one request per origin; on a failure a retry may fix, returns the spans
/// not yet answered. Spans the collector refused for good (or rejected inside an accepted
/// request) are dropped and counted.
async fn export(
    upstream: &mut Upstream,
    batch: Vec<Queued>,
    metrics: &ExportMetrics,
) -> Result<(), Vec<Queued>> {
    let mut groups = super::queue::group_by_origin(batch).into_iter();
    while let Some((origin, items)) = groups.next() {
        // Built per request: a cached one would have to be cloned into it, which costs the same.
        let resource = mapping::resource(&origin);
        // Built from the sources, which stay queued for a retry (a first attempt copies no
        // built span).
        let spans = items.iter().map(|q| q.span.build()).collect();
        let n = items.len() as u64;
        match upstream
            .send(Cow::Owned(mapping::request(resource, spans)))
            .await
        {
            Ok(delivery) => {
                let dropped = delivery.dropped(n);
                match &delivery {
                    Delivery::Refused(why) => {
                        tracing::warn!(%why, spans = n, "collector refused exported spans; dropped");
                        metrics.export_errors.inc();
                    }
                    Delivery::Accepted { .. } if dropped > 0 => {
                        tracing::warn!(
                            dropped,
                            spans = n,
                            "collector rejected some exported spans"
                        );
                    }
                    Delivery::Accepted { .. } => {}
                }
                metrics.spans_sent.inc_by(n - dropped);
                metrics.spans_dropped.inc_by(dropped);
            }
            Err(err) => {
                metrics.spans_failed.inc_by(n);
                metrics.export_errors.inc();
                tracing::debug!(%err, spans = n, "OTLP export failed; will retry");
                let mut unsent = items;
                unsent.extend(groups.flat_map(|(_, rest)| rest));
                return Err(unsent);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_held_off_only_while_it_grows_below_half_the_bound_within_the_delay() {
        let delay = Duration::from_secs(1);
        let early = Duration::from_millis(20);
        assert!(hold_off(true, false, early, delay), "still arriving: wait");
        assert!(
            !hold_off(false, false, early, delay),
            "it stopped: export now"
        );
        assert!(
            !hold_off(true, true, early, delay),
            "half full: export before anything is dropped"
        );
        assert!(
            !hold_off(true, false, delay, delay),
            "the first span waited the whole delay: export however busy ingest is"
        );
    }
}
