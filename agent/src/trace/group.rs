//! Trace groups: the traces sharing a correlation id, their status, and the gaps between them.

use std::sync::Arc;

use super::model::{Trace, TraceStatus};
use flowscope::wire::Event;

/// A group's members, snapshotted from the store in start order.
#[derive(Debug, Clone)]
pub struct GroupMembers {
    /// Correlation id.
    pub id: String,
    /// Display name from a `correlate` event.
    pub name: Option<String>,
    /// Members by (start time, id).
    pub traces: Vec<Arc<Trace>>,
}

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
pub struct GroupSummary {
    /// Correlation id.
    pub id: String,
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
    pub traces: Vec<Arc<Trace>>,
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
    /// LLM usage and errors over the members.
    pub rollup: Rollup,
}

/// Summarizes a group from its members in one pass plus a sort (O(n log n)).
/// `stall_after_ns` turns a quiet running group "stalled".
pub fn summarize(members: GroupMembers, now_ns: u64, stall_after_ns: u64) -> GroupSummary {
    let GroupMembers {
        id,
        name,
        mut traces,
    } = members;
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
            && trace.start_ns >= end.saturating_add(MIN_GAP_NS)
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

    let (mut step_ns, mut ended_steps) = (0u128, 0u128);
    for step in traces.iter().flat_map(|t| t.steps.iter()) {
        if let (Some(start), Some(end)) = (step.start_ns, step.end_ns) {
            step_ns += u128::from(end.saturating_sub(start));
            ended_steps += 1;
        }
    }
    let average_step_ns = step_ns.checked_div(ended_steps).unwrap_or(0) as u64;

    let rollup = rollup(traces.iter().map(|t| &**t));
    GroupSummary {
        name: name.unwrap_or_else(|| traces.first().map_or(id.as_str(), |t| t.flow()).to_owned()),
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
        rollup,
        id,
    }
}

/// LLM and error totals of a group's members (`metadata` of `/api/groups/{id}`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rollup {
    /// LLM calls.
    pub llm_calls: usize,
    /// Tokens (input + output).
    pub total_tokens: u64,
    /// Cost (USD).
    pub total_cost: f64,
    /// Failed steps (or failed traces without a failed step).
    pub error_count: usize,
}

/// Sums what a group's members cost and how often they failed.
pub fn rollup<'a>(traces: impl Iterator<Item = &'a Trace>) -> Rollup {
    let mut out = Rollup::default();
    for trace in traces {
        out.error_count += trace.error_count();
        for event in trace.all_events() {
            if let Event::Llm(llm) = event {
                out.llm_calls += 1;
                out.total_tokens = out
                    .total_tokens
                    .saturating_add(llm.input_tokens.unwrap_or(0))
                    .saturating_add(llm.output_tokens.unwrap_or(0));
                out.total_cost += llm.cost.unwrap_or(0.0);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use flowscope::wire::TraceId;

    use super::*;
    use crate::trace::{Origin, Trace};

    fn member(id: u128, start: u64, end: Option<u64>) -> Arc<Trace> {
        let mut trace = Trace::new(TraceId(id), Arc::new(Origin::named("s")), start, start);
        trace.end_ns = end;
        trace.last_event_ns = end.unwrap_or(start);
        trace.status = if end.is_some() {
            TraceStatus::Completed
        } else {
            TraceStatus::Running
        };
        Arc::new(trace)
    }

    #[test]
    fn gaps_are_the_waits_between_members_not_the_overlaps() {
        const MS: u64 = 1_000_000;
        let summary = summarize(
            GroupMembers {
                id: "thread-1".into(),
                name: None,
                // Out of order on purpose; 2 overlaps 1, then a 50 ms wait, then a sub-ms hand-off.
                traces: vec![
                    member(3, 200 * MS, Some(250 * MS)),
                    member(1, 0, Some(100 * MS)),
                    member(2, 90 * MS, Some(150 * MS)),
                    member(4, 250 * MS + MS / 2, Some(300 * MS)),
                ],
            },
            300 * MS,
            u64::MAX,
        );
        assert_eq!(summary.gaps.len(), 1, "{:?}", summary.gaps);
        assert_eq!(
            summary.gaps[0].after, 1,
            "after the second member by start time"
        );
        assert_eq!(summary.gaps[0].duration_ns, 50 * MS);
        assert_eq!(summary.status, GroupStatus::Completed);
    }

    #[test]
    fn a_quiet_running_group_is_stalled() {
        let members = || GroupMembers {
            id: "g".into(),
            name: None,
            traces: vec![member(1, 0, None)],
        };
        assert_eq!(summarize(members(), 10, 100).status, GroupStatus::Active);
        assert_eq!(
            summarize(members(), 1_000, 100).status,
            GroupStatus::Stalled
        );
    }
}
