//! Trace groups: the traces sharing a correlation id, their status, and the gaps between them.

use super::model::{Trace, TraceStatus};

/// Shorter pauses between traces are hand-offs, not waiting periods.
pub const MIN_GAP_NS: u64 = 1_000_000;

/// Status of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupStatus {
    /// A member is running and events arrived recently.
    Active,
    /// Every member ended, none failed.
    Completed,
    /// Every member ended, one failed.
    Failed,
    /// A member is running but nothing arrived for the stall timeout.
    Stalled,
}

impl GroupStatus {
    /// API name.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupStatus::Active => "active",
            GroupStatus::Completed => "completed",
            GroupStatus::Failed => "failed",
            GroupStatus::Stalled => "stalled",
        }
    }
}

/// A waiting period between consecutive traces of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// Index (in time order) of the trace before the gap.
    pub after: usize,
    /// Length (ns).
    pub duration_ns: u64,
}

/// Everything the API shows about a group.
#[derive(Debug)]
pub struct GroupSummary<'a> {
    /// Correlation id.
    pub id: &'a str,
    /// Display name.
    pub name: String,
    /// Status.
    pub status: GroupStatus,
    /// Earliest start (unix ns).
    pub start_ns: u64,
    /// Latest event (unix ns).
    pub last_activity_ns: u64,
    /// First start to last end, once every member ended.
    pub total_duration_ns: Option<u64>,
    /// Members in start order.
    pub traces: Vec<&'a Trace>,
    /// Gaps between members.
    pub gaps: Vec<Gap>,
    /// Members that ended normally.
    pub completed: usize,
    /// Members still running.
    pub active: usize,
    /// Steps across members.
    pub total_steps: usize,
    /// Mean duration of ended steps (ns).
    pub average_step_ns: u64,
}

/// Summarizes a group from its members. `stall_after_ns` turns a quiet running group "stalled".
pub fn summarize<'a>(
    id: &'a str,
    name: Option<&str>,
    mut traces: Vec<&'a Trace>,
    now_ns: u64,
    stall_after_ns: u64,
) -> GroupSummary<'a> {
    traces.sort_by_key(|t| (t.start_ns, t.id));
    let start_ns = traces.first().map_or(0, |t| t.start_ns);
    let last_activity_ns = traces
        .iter()
        .map(|t| t.last_event_ns)
        .max()
        .unwrap_or(start_ns);
    let active = traces
        .iter()
        .filter(|t| t.status == TraceStatus::Running)
        .count();
    let completed = traces
        .iter()
        .filter(|t| t.status == TraceStatus::Completed)
        .count();
    let failed = traces.len() - active - completed;

    let mut gaps = Vec::new();
    let mut frontier: Option<u64> = None;
    for (i, trace) in traces.iter().enumerate() {
        if let Some(end) = frontier
            && trace.start_ns >= end + MIN_GAP_NS
        {
            gaps.push(Gap {
                after: i - 1,
                duration_ns: trace.start_ns - end,
            });
        }
        let end = trace.end_ns.unwrap_or(trace.last_event_ns);
        frontier = Some(frontier.map_or(end, |f| f.max(end)));
    }

    let status = if active > 0 {
        let quiet =
            now_ns.saturating_sub(traces.iter().map(|t| t.last_activity_ns).max().unwrap_or(0));
        if quiet > stall_after_ns {
            GroupStatus::Stalled
        } else {
            GroupStatus::Active
        }
    } else if failed > 0 {
        GroupStatus::Failed
    } else {
        GroupStatus::Completed
    };
    let total_duration_ns =
        (active == 0).then(|| frontier.unwrap_or(start_ns).saturating_sub(start_ns));

    let ended_steps: Vec<u64> = traces
        .iter()
        .flat_map(|t| t.steps.iter())
        .filter_map(|s| Some(s.end_ns?.saturating_sub(s.start_ns?)))
        .collect();
    let average_step_ns = if ended_steps.is_empty() {
        0
    } else {
        ended_steps.iter().sum::<u64>() / ended_steps.len() as u64
    };

    GroupSummary {
        id,
        name: name
            .map(str::to_owned)
            .unwrap_or_else(|| traces.first().map_or(id, |t| t.flow()).to_owned()),
        status,
        start_ns,
        last_activity_ns,
        total_duration_ns,
        total_steps: traces.iter().map(|t| t.steps.len()).sum(),
        traces,
        gaps,
        completed,
        active,
        average_step_ns,
    }
}
