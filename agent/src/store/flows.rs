//! Live flow status: per flow, how many runs are in each step right now and how runs fare.

use std::collections::HashMap;

use serde::Serialize;

use super::Store;
use crate::trace::{StepStatus, Trace, TraceStatus};

/// Counts for one step name of a flow.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StepStatusCounts {
    /// Step name.
    pub name: String,
    /// Runs currently in this step.
    pub running: usize,
    /// Runs that completed it.
    pub completed: usize,
    /// Runs that failed in it.
    pub failed: usize,
}

/// Status of one flow over the stored traces.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FlowStatus {
    /// Flow name.
    pub flow_name: String,
    /// Steps in the order they usually run (at most [`MAX_FLOW_STEPS`]).
    pub steps: Vec<StepStatusCounts>,
    /// Whether there were more steps than listed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub steps_truncated: bool,
    /// Running traces.
    pub active_traces: usize,
    /// Stored traces.
    pub total_traces: usize,
    /// Mean duration of ended traces (ms).
    pub avg_duration: Option<u64>,
    /// Completed / ended (0..1), `None` before any ended.
    pub success_rate: Option<f64>,
}

/// Most steps a flow status lists.
pub const MAX_FLOW_STEPS: usize = 100;

/// Status of `flow` over `traces` (its stored runs); `None` when there are none.
pub fn flow_status_of<'a>(
    flow: &str,
    traces: impl Iterator<Item = &'a Trace>,
) -> Option<FlowStatus> {
    let mut steps: HashMap<&str, (StepStatusCounts, u64)> = HashMap::new();
    let (mut active, mut completed, mut failed, mut total_ns) = (0usize, 0usize, 0usize, 0u64);
    let mut any = false;
    {
        for trace in traces {
            any = true;
            match trace.status {
                TraceStatus::Running => active += 1,
                TraceStatus::Completed => completed += 1,
                TraceStatus::Failed => failed += 1,
            }
            total_ns = total_ns.saturating_add(trace.duration_ns().unwrap_or(0));
            for step in &trace.steps {
                let offset = step
                    .start_ns
                    .map_or(u64::MAX, |s| s.saturating_sub(trace.start_ns));
                let entry = steps.entry(step.name.as_str()).or_insert_with(|| {
                    let counts = StepStatusCounts {
                        name: step.name.to_string(),
                        running: 0,
                        completed: 0,
                        failed: 0,
                    };
                    (counts, offset)
                });
                entry.1 = entry.1.min(offset);
                match step.status {
                    StepStatus::Running | StepStatus::Waiting => entry.0.running += 1,
                    StepStatus::Completed => entry.0.completed += 1,
                    StepStatus::Failed => entry.0.failed += 1,
                }
            }
        }
    }
    if !any {
        return None;
    }
    let mut steps: Vec<(StepStatusCounts, u64)> = steps.into_values().collect();
    steps.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.name.cmp(&b.0.name)));
    let steps_truncated = steps.len() > MAX_FLOW_STEPS;
    steps.truncate(MAX_FLOW_STEPS);
    let ended = completed + failed;
    Some(FlowStatus {
        flow_name: flow.to_owned(),
        steps: steps.into_iter().map(|(counts, _)| counts).collect(),
        steps_truncated,
        active_traces: active,
        total_traces: active + ended,
        avg_duration: (ended > 0).then(|| crate::units::ms(total_ns / ended as u64)),
        success_rate: (ended > 0).then(|| completed as f64 / ended as f64),
    })
}

impl Store {
    /// Status of `flow`, if any stored trace runs it.
    pub fn flow_status(&self, flow: &str) -> Option<FlowStatus> {
        let ids = self.indexes().flow.get(flow)?;
        flow_status_of(flow, ids.iter().filter_map(|id| self.peek(*id)))
    }

    /// Snapshots of the stored runs of `flow`.
    pub fn flow_members(&self, flow: &str) -> Vec<std::sync::Arc<Trace>> {
        self.indexes()
            .flow
            .get(flow)
            .map(|ids| ids.iter().filter_map(|id| self.snapshot(*id)).collect())
            .unwrap_or_default()
    }

    /// Status of every flow, by name.
    pub fn flows(&self) -> Vec<FlowStatus> {
        let mut names: Vec<&str> = self.indexes().flow.keys().map(|k| &**k).collect();
        names.sort_unstable();
        names
            .into_iter()
            .filter_map(|name| self.flow_status(name))
            .collect()
    }
}
