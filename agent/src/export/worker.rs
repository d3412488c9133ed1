//! The export worker: drains the queue in batches, one `export` call per resource, retrying a
//! failed batch with exponential backoff while the queue (bounded) keeps accepting spans.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_sdk::trace::SpanExporter as _;
use tokio::sync::watch;

use super::mapping;
use super::queue::{CollectorState, ExportQueue, Queued};
use crate::telemetry::ExportMetrics;
use crate::trace::Origin;

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
}

/// Runs until shutdown, then makes one bounded attempt to flush what is left.
pub async fn run(
    mut exporter: opentelemetry_otlp::SpanExporter,
    queue: Arc<ExportQueue>,
    metrics: Arc<ExportMetrics>,
    config: WorkerConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut resources: HashMap<Arc<Origin>, opentelemetry_sdk::Resource> = HashMap::new();
    let mut backoff = config.min_backoff;
    loop {
        let batch = queue.take(config.batch_size);
        if batch.is_empty() {
            tokio::select! {
                _ = queue.notify.notified() => {}
                _ = shutdown.changed() => break,
            }
            // Let a burst gather into full batches instead of waking for every span.
            tokio::select! {
                _ = tokio::time::sleep(config.linger) => {}
                _ = shutdown.changed() => break,
            }
            continue;
        }
        match export(&mut exporter, &mut resources, batch, &metrics).await {
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
            if let Err(unsent) = export(&mut exporter, &mut resources, batch, &metrics).await {
                // Kept: with --data-dir the agent saves what is left for the next start.
                queue.requeue(unsent);
                return;
            }
            queue.delivered();
        }
    };
    let _ = tokio::time::timeout(config.shutdown_flush, flush).await;
    let _ = exporter.shutdown();
}

/// Exports a batch, one call per origin; on failure returns the spans not yet accepted.
async fn export(
    exporter: &mut opentelemetry_otlp::SpanExporter,
    resources: &mut HashMap<Arc<Origin>, opentelemetry_sdk::Resource>,
    batch: Vec<Queued>,
    metrics: &ExportMetrics,
) -> Result<(), Vec<Queued>> {
    let mut groups = super::queue::group_by_origin(batch).into_iter();
    while let Some((origin, items)) = groups.next() {
        let resource = resources
            .entry(Arc::clone(&origin))
            .or_insert_with(|| mapping::resource(&origin));
        exporter.set_resource(resource);
        // Built from the sources, which stay queued for a retry (a first attempt copies no
        // built span).
        let spans = items.iter().map(|q| q.span.build()).collect();
        let n = items.len() as u64;
        match exporter.export(spans).await {
            Ok(()) => {
                metrics.spans_sent.inc_by(n);
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
    if resources.len() > 1024 {
        resources.clear(); // origins come and go; the cache is only a shortcut
    }
    Ok(())
}
