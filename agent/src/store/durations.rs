//! The store's duration histograms, looked up by the permanent names of their flow and step.

use std::collections::HashMap;

use prometheus_client::metrics::histogram::Histogram;

use super::index::IndexHasher;
use crate::telemetry::StoreMetrics;
use crate::trace::ThinStr;

/// Duration histograms by the permanent names of their flow and step (see
/// [`ThinStr::permanent_id`]), so a step's end skips the label budget's mutex, the label
/// `String`s and the family's SipHash lookup. Bounded: past [`DurationHistograms::MAX`]
/// entries, and for names that are not permanent, the labelled lookup
/// ([`StoreMetrics::step_histogram`]) runs each time.
#[derive(Debug, Default)]
pub struct DurationHistograms {
    steps: HashMap<(usize, usize, &'static str), Histogram, IndexHasher>,
    flows: HashMap<(usize, &'static str), Histogram, IndexHasher>,
}

impl DurationHistograms {
    /// Entries kept at most, per histogram family.
    pub const MAX: usize = 4096;

    /// Records a step of (`flow`, `step`) that ended with `status` after `seconds`.
    pub fn observe_step(
        &mut self,
        metrics: &StoreMetrics,
        (flow, step): (&ThinStr, &ThinStr),
        status: &'static str,
        seconds: f64,
    ) {
        let key = flow.permanent_id().zip(step.permanent_id());
        let key = key.map(|(f, s)| (f, s, status));
        let make = || metrics.step_histogram(flow, step, status);
        observe_cached(&mut self.steps, key, make, seconds);
    }

    /// Records a run of `flow` that ended with `status` after `seconds`.
    pub fn observe_flow(
        &mut self,
        metrics: &StoreMetrics,
        flow: &ThinStr,
        status: &'static str,
        seconds: f64,
    ) {
        let key = flow.permanent_id().map(|f| (f, status));
        let make = || metrics.flow_histogram(flow, status);
        observe_cached(&mut self.flows, key, make, seconds);
    }
}

/// Observes `seconds` in the histogram cached under `key`, else in the one `make` looks up,
/// which is cached when there is a key and room ([`DurationHistograms::MAX`]).
fn observe_cached<K: std::hash::Hash + Eq>(
    cache: &mut HashMap<K, Histogram, IndexHasher>,
    key: Option<K>,
    make: impl FnOnce() -> Histogram,
    seconds: f64,
) {
    let Some(key) = key else {
        return make().observe(seconds);
    };
    if let Some(histogram) = cache.get(&key) {
        return histogram.observe(seconds);
    }
    let histogram = make();
    histogram.observe(seconds);
    if cache.len() < DurationHistograms::MAX {
        cache.insert(key, histogram);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Metrics;
    use crate::trace::unknown_flow;

    /// The `_count` sample of `metric` whose labels include each of `labels`.
    fn count(metrics: &Metrics, metric: &str, labels: &[&str]) -> Option<u64> {
        metrics
            .encode()
            .lines()
            .find(|l| {
                l.contains(&format!("{metric}_count{{")) && labels.iter().all(|w| l.contains(w))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }

    #[test]
    fn cached_histograms_record_like_the_labelled_lookup_and_keep_the_series_budget() {
        let metrics = Metrics::with_store(StoreMetrics::with_series_limits(1, 1));
        let store = &metrics.store;
        let mut durations = DurationHistograms::default();
        let (flow, step) = (ThinStr::permanent("signup"), ThinStr::permanent("validate"));
        for _ in 0..2 {
            durations.observe_step(store, (&flow, &step), "completed", 0.5);
        }
        let own = [
            "flow=\"signup\"",
            "step=\"validate\"",
            "status=\"completed\"",
        ];
        assert_eq!(count(&metrics, "step_duration_seconds", &own), Some(2));
        assert_eq!(durations.steps.len(), 1, "permanent names are cached");

        // Counted names are recorded without a cache entry (their address may be reused).
        let counted = ThinStr::new("validate");
        durations.observe_step(store, (&flow, &counted), "completed", 0.5);
        assert_eq!(count(&metrics, "step_duration_seconds", &own), Some(3));
        assert_eq!(durations.steps.len(), 1);

        // Past the series budget the cached handle is the folded `other` series.
        let (flow2, step2) = (ThinStr::permanent("checkout"), ThinStr::permanent("charge"));
        for _ in 0..2 {
            durations.observe_step(store, (&flow2, &step2), "failed", 1.0);
        }
        let other = ["flow=\"other\"", "step=\"other\"", "status=\"failed\""];
        assert_eq!(count(&metrics, "step_duration_seconds", &other), Some(2));
        assert_eq!(
            count(&metrics, "step_duration_seconds", &["flow=\"checkout\""]),
            None
        );
        assert_eq!(durations.steps.len(), 2);

        for _ in 0..3 {
            durations.observe_flow(store, &flow, "completed", 2.0);
        }
        let run = ["flow=\"signup\"", "status=\"completed\""];
        assert_eq!(count(&metrics, "workflow_duration_seconds", &run), Some(3));
        assert_eq!(durations.flows.len(), 1);
        durations.observe_flow(store, unknown_flow(), "running", 1.0);
        let unknown = ["flow=\"unknown\"", "status=\"running\""];
        assert_eq!(
            count(&metrics, "workflow_duration_seconds", &unknown),
            None,
            "over budget"
        );
        assert_eq!(
            count(
                &metrics,
                "workflow_duration_seconds",
                &["flow=\"other\"", "status=\"running\""]
            ),
            Some(1)
        );
    }
}
