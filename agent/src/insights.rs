//! What a trace, a flow or a pair of traces yields beyond its raw events: the critical path
//! (O(n log n), iterative), per-step duration percentiles, the bottleneck, operation
//! distribution, state keys/streams/topics used, LLM usage per run and model, and a two-trace
//! comparison. Pure functions over snapshots, run outside the store lock.

use std::collections::{BTreeMap, HashMap};

use flowscope::wire::{Event, OpKind, SpanId};
use serde::Serialize;

use crate::trace::{StepStatus, Trace, TraceStatus};

/// Where a step hangs in the trace's one tree: its parent step, or — for a callee segment's
/// top-level step — the caller's client step, else the root.
fn tree_parent(trace: &Trace, step: &crate::trace::Step) -> Option<usize> {
    let parent = step.parent.or_else(|| {
        trace
            .segment_of(step)
            .and_then(|segment| segment.remote_parent)
    })?;
    trace.step_position(parent)
}

/// The critical path of `trace`: the steps whose work determined when it ended, in time order.
///
/// From the end of the trace backwards: the child that finished last (before the cursor) is on
/// the path; its own children are examined the same way within its window; then the cursor moves
/// to that child's start and the next-latest child before it is taken. Children are sorted once
/// and each is looked at once, so the cost is O(n log n); the walk uses an explicit stack, so no
/// nesting depth can overflow it.
pub fn critical_path(trace: &Trace) -> Vec<SpanId> {
    let n = trace.steps.len();
    let end_of = |i: usize| {
        let step = &trace.steps[i];
        step.end_ns
            .or(trace.end_ns)
            .unwrap_or(trace.last_event_ns)
            .max(step.start_ns.unwrap_or(0))
    };
    let start_of = |i: usize| {
        trace.steps[i]
            .start_ns
            .or(trace.steps[i].end_ns)
            .unwrap_or(trace.start_ns)
    };
    // children[n] holds the roots.
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n + 1];
    for (i, step) in trace.steps.iter().enumerate() {
        let parent = tree_parent(trace, step).filter(|&p| p != i).unwrap_or(n);
        children[parent].push(i);
    }
    for kids in &mut children {
        kids.sort_unstable_by_key(|&i| std::cmp::Reverse((end_of(i), start_of(i))));
    }
    let trace_end = trace.end_ns.unwrap_or(trace.last_event_ns);
    let mut on_path = vec![false; n];
    let mut path = Vec::new();
    // (node, next child position, cursor, lower bound of the node's window)
    let mut stack: Vec<(usize, usize, u64, u64)> = vec![(n, 0, trace_end, trace.start_ns)];
    while let Some(frame) = stack.last_mut() {
        let (node, position, cursor, floor) = *frame;
        let kids = &children[node];
        if position >= kids.len() || cursor <= floor {
            stack.pop();
            continue;
        }
        frame.1 += 1;
        let child = kids[position];
        let start = start_of(child);
        if start >= cursor || on_path[child] {
            continue;
        }
        on_path[child] = true;
        path.push(child);
        frame.2 = start;
        let window_end = end_of(child).min(cursor);
        stack.push((child, 0, window_end, start));
    }
    path.sort_unstable_by_key(|&i| (start_of(i), i));
    path.into_iter().map(|i| trace.steps[i].id).collect()
}

/// Nearest-rank percentile of sorted `values` (0 when empty).
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(ns: u64) -> f64 {
    (ns / 1_000) as f64 / 1_000.0
}

/// Duration statistics, in ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Durations {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Mean.
    pub avg: f64,
    /// Longest.
    pub max: f64,
}

impl Durations {
    fn of(mut values: Vec<u64>) -> Self {
        values.sort_unstable();
        let total: u128 = values.iter().map(|&v| u128::from(v)).sum();
        Self {
            p50: ms(percentile(&values, 50.0)),
            p95: ms(percentile(&values, 95.0)),
            p99: ms(percentile(&values, 99.0)),
            avg: if values.is_empty() {
                0.0
            } else {
                ms((total / values.len() as u128) as u64)
            },
            max: ms(values.last().copied().unwrap_or(0)),
        }
    }
}

/// One step name of a flow, over its runs.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepInsight {
    /// Step name.
    pub name: String,
    /// Executions (a step run twice in one trace counts twice).
    pub count: usize,
    /// Runs of the flow in which it ran.
    pub runs: usize,
    /// Durations of its ended executions.
    pub duration: Durations,
    /// Failed / ended executions (0..1).
    pub error_rate: f64,
    /// Its total time over the flows' total time (0..1; nested or parallel steps overlap).
    pub share_of_flow_time: f64,
    /// Its time on the runs' critical paths over their total duration (0..1).
    pub critical_share: f64,
}

/// LLM usage of one provider/model.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelUsage {
    /// Provider (`unknown` when not given).
    pub provider: String,
    /// Model.
    pub model: String,
    /// Calls.
    pub calls: usize,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Cost (USD).
    pub cost: f64,
}

/// Use of one state key, stream or topic.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubjectUse {
    /// Key, stream or topic.
    pub name: String,
    /// Operations by action (`get`, `set`…).
    pub actions: BTreeMap<&'static str, usize>,
    /// Runs that touched it.
    pub runs: usize,
}

/// Everything `GET /api/flows/{flow}/insights` answers.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowInsights {
    /// Flow name.
    pub flow_name: String,
    /// Runs looked at (stored traces of the flow in the time range).
    pub runs: usize,
    /// Of which completed.
    pub completed: usize,
    /// Of which failed.
    pub failed: usize,
    /// Of which still running.
    pub running: usize,
    /// Durations of the ended runs.
    pub duration: Durations,
    /// Per step name, in the order they usually start.
    pub steps: Vec<StepInsight>,
    /// The step that costs the runs most time on their critical paths.
    pub bottleneck: Option<String>,
    /// Operations per family and action: `{state: {get: 3, set: 2}, emit: {send: 1}, …}`.
    pub operations: BTreeMap<&'static str, BTreeMap<&'static str, usize>>,
    /// State keys used.
    pub state_keys: Vec<SubjectUse>,
    /// Streams used.
    pub streams: Vec<SubjectUse>,
    /// Topics emitted.
    pub topics: Vec<SubjectUse>,
    /// LLM calls over all runs.
    pub llm_calls: usize,
    /// Tokens over all runs.
    pub total_tokens: u64,
    /// Cost over all runs (USD).
    pub total_cost: f64,
    /// Mean tokens per run.
    pub tokens_per_run: f64,
    /// Mean cost per run (USD).
    pub cost_per_run: f64,
    /// Usage by provider and model.
    pub models: Vec<ModelUsage>,
}

#[derive(Default)]
struct StepAcc {
    durations: Vec<u64>,
    count: usize,
    runs: usize,
    last_run: usize,
    failed: usize,
    ended: usize,
    total_ns: u128,
    critical_ns: u128,
    first_offset: u64,
}

/// Insights over `traces` (the runs of `flow`).
pub fn flow_insights<'a>(flow: &str, traces: impl Iterator<Item = &'a Trace>) -> FlowInsights {
    let mut steps: HashMap<&str, StepAcc> = HashMap::new();
    let mut operations: BTreeMap<&'static str, BTreeMap<&'static str, usize>> = BTreeMap::new();
    let mut subjects: [HashMap<&str, (SubjectUse, usize)>; 3] = Default::default();
    let mut models: HashMap<(&str, &str), ModelUsage> = HashMap::new();
    let (mut runs, mut completed, mut failed, mut running) = (0, 0, 0, 0);
    let mut run_durations = Vec::new();
    let mut flow_ns: u128 = 0;
    let (mut llm_calls, mut tokens, mut cost) = (0usize, 0u64, 0.0f64);
    for trace in traces {
        runs += 1;
        match trace.status {
            TraceStatus::Completed => completed += 1,
            TraceStatus::Failed => failed += 1,
            TraceStatus::Running => running += 1,
        }
        if let Some(d) = trace.duration_ns() {
            run_durations.push(d);
            flow_ns += u128::from(d);
        }
        let critical: std::collections::HashSet<SpanId> = if trace.duration_ns().is_some() {
            critical_path(trace).into_iter().collect()
        } else {
            Default::default()
        };
        for step in &trace.steps {
            if step.kind != flowscope::wire::SpanKind::Internal {
                continue;
            }
            let acc = steps.entry(step.name.as_str()).or_insert_with(|| StepAcc {
                first_offset: u64::MAX,
                ..StepAcc::default()
            });
            acc.count += 1;
            if acc.last_run != runs {
                acc.last_run = runs;
                acc.runs += 1;
            }
            if let Some(start) = step.start_ns {
                acc.first_offset = acc.first_offset.min(start.saturating_sub(trace.start_ns));
            }
            if let (Some(start), Some(end)) = (step.start_ns, step.end_ns) {
                let d = end.saturating_sub(start);
                acc.durations.push(d);
                acc.total_ns += u128::from(d);
                if critical.contains(&step.id) {
                    acc.critical_ns += u128::from(d);
                }
            }
            if matches!(step.status, StepStatus::Completed | StepStatus::Failed) {
                acc.ended += 1;
                if step.status == StepStatus::Failed {
                    acc.failed += 1;
                }
            }
        }
        for op in trace.all_ops() {
            *operations
                .entry(op.kind.as_str())
                .or_default()
                .entry(op.action.as_str())
                .or_default() += 1;
            let Some(subject) = op.subject.as_deref() else {
                continue;
            };
            let table = match op.kind {
                OpKind::State => &mut subjects[0],
                OpKind::Stream => &mut subjects[1],
                OpKind::Emit => &mut subjects[2],
            };
            let (used, last_run) = table.entry(subject).or_insert_with(|| {
                (
                    SubjectUse {
                        name: subject.to_owned(),
                        ..SubjectUse::default()
                    },
                    0,
                )
            });
            *used.actions.entry(op.action.as_str()).or_default() += 1;
            if *last_run != runs {
                *last_run = runs;
                used.runs += 1;
            }
        }
        for event in trace.all_events() {
            let Event::Llm(llm) = event else { continue };
            llm_calls += 1;
            let (input, output) = (
                llm.input_tokens.unwrap_or(0),
                llm.output_tokens.unwrap_or(0),
            );
            tokens = tokens.saturating_add(input).saturating_add(output);
            cost += llm.cost.unwrap_or(0.0);
            let usage = models
                .entry((
                    llm.provider.as_deref().unwrap_or("unknown"),
                    llm.model.as_str(),
                ))
                .or_insert_with(|| ModelUsage {
                    provider: llm.provider.clone().unwrap_or_else(|| "unknown".into()),
                    model: llm.model.clone(),
                    ..ModelUsage::default()
                });
            usage.calls += 1;
            usage.input_tokens = usage.input_tokens.saturating_add(input);
            usage.output_tokens = usage.output_tokens.saturating_add(output);
            usage.cost += llm.cost.unwrap_or(0.0);
        }
    }
    let share = |ns: u128| {
        if flow_ns == 0 {
            0.0
        } else {
            ns as f64 / flow_ns as f64
        }
    };
    let mut step_list: Vec<(u64, StepInsight)> = steps
        .into_iter()
        .map(|(name, acc)| {
            let insight = StepInsight {
                name: name.to_owned(),
                count: acc.count,
                runs: acc.runs,
                error_rate: if acc.ended == 0 {
                    0.0
                } else {
                    acc.failed as f64 / acc.ended as f64
                },
                share_of_flow_time: share(acc.total_ns),
                critical_share: share(acc.critical_ns),
                duration: Durations::of(acc.durations),
            };
            (acc.first_offset, insight)
        })
        .collect();
    step_list.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.name.cmp(&b.1.name)));
    let steps: Vec<StepInsight> = step_list.into_iter().map(|(_, s)| s).collect();
    let bottleneck = steps
        .iter()
        .filter(|s| s.critical_share > 0.0)
        .max_by(|a, b| a.critical_share.total_cmp(&b.critical_share))
        .map(|s| s.name.clone());
    let subject_list = |table: HashMap<&str, (SubjectUse, usize)>| {
        let mut list: Vec<SubjectUse> = table.into_values().map(|(u, _)| u).collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    };
    let [state_keys, streams, topics] = subjects;
    let mut models: Vec<ModelUsage> = models.into_values().collect();
    models.sort_by(|a, b| (&a.provider, &a.model).cmp(&(&b.provider, &b.model)));
    FlowInsights {
        flow_name: flow.to_owned(),
        runs,
        completed,
        failed,
        running,
        duration: Durations::of(run_durations),
        steps,
        bottleneck,
        operations,
        state_keys: subject_list(state_keys),
        streams: subject_list(streams),
        topics: subject_list(topics),
        llm_calls,
        total_tokens: tokens,
        total_cost: cost,
        tokens_per_run: if runs == 0 {
            0.0
        } else {
            tokens as f64 / runs as f64
        },
        cost_per_run: if runs == 0 { 0.0 } else { cost / runs as f64 },
        models,
    }
}

/// One side of a compared step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepSide {
    /// Span id.
    pub id: SpanId,
    /// Status.
    pub status: &'static str,
    /// Duration (ms), once ended.
    pub duration: Option<f64>,
    /// Operations (state + emit + stream).
    pub ops: u32,
}

/// A step present in both traces (the k-th step of that name in each, by start time).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepDiff {
    /// Step name.
    pub name: String,
    /// Which occurrence of the name (0-based).
    pub occurrence: usize,
    /// In trace A.
    pub a: StepSide,
    /// In trace B.
    pub b: StepSide,
    /// B − A duration (ms), when both ended.
    pub duration_delta: Option<f64>,
    /// Whether the status differs.
    pub status_changed: bool,
    /// B − A operation count.
    pub ops_delta: i64,
}

/// A step only one trace has.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoneStep {
    /// Step name.
    pub name: String,
    /// Which occurrence of the name (0-based).
    pub occurrence: usize,
    /// The step.
    #[serde(flatten)]
    pub step: StepSide,
}

/// `GET /api/compare`: two traces step by step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    /// B − A trace duration (ms), when both ended.
    pub duration_delta: Option<f64>,
    /// Whether the trace status differs.
    pub status_changed: bool,
    /// Steps in both, in A's time order.
    pub steps: Vec<StepDiff>,
    /// Steps only in A.
    pub only_in_a: Vec<LoneStep>,
    /// Steps only in B.
    pub only_in_b: Vec<LoneStep>,
}

fn side(step: &crate::trace::Step) -> StepSide {
    StepSide {
        id: step.id,
        status: step.status.as_str(),
        duration: step
            .start_ns
            .zip(step.end_ns)
            .map(|(s, e)| ms(e.saturating_sub(s))),
        ops: step.counts.state + step.counts.emit + step.counts.stream,
    }
}

/// Steps of `trace` keyed by (name, occurrence), in time order.
fn occurrences(trace: &Trace) -> Vec<((&str, usize), &crate::trace::Step)> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    trace
        .steps_in_time_order()
        .into_iter()
        .map(|step| {
            let n = seen.entry(step.name.as_str()).or_default();
            let key = (step.name.as_str(), *n);
            *n += 1;
            (key, step)
        })
        .collect()
}

/// Compares two traces: steps matched by name and position (the k-th `validate` of A with the
/// k-th of B).
pub fn compare(a: &Trace, b: &Trace) -> Comparison {
    let in_b: HashMap<(&str, usize), &crate::trace::Step> = occurrences(b).into_iter().collect();
    let mut matched = std::collections::HashSet::new();
    let mut steps = Vec::new();
    let mut only_in_a = Vec::new();
    for (key, step) in occurrences(a) {
        match in_b.get(&key) {
            Some(other) => {
                matched.insert(key);
                let (sa, sb) = (side(step), side(other));
                steps.push(StepDiff {
                    name: key.0.to_owned(),
                    occurrence: key.1,
                    duration_delta: sa.duration.zip(sb.duration).map(|(x, y)| y - x),
                    status_changed: sa.status != sb.status,
                    ops_delta: i64::from(sb.ops) - i64::from(sa.ops),
                    a: sa,
                    b: sb,
                });
            }
            None => only_in_a.push(LoneStep {
                name: key.0.to_owned(),
                occurrence: key.1,
                step: side(step),
            }),
        }
    }
    let only_in_b = occurrences(b)
        .into_iter()
        .filter(|(key, _)| !matched.contains(key))
        .map(|(key, step)| LoneStep {
            name: key.0.to_owned(),
            occurrence: key.1,
            step: side(step),
        })
        .collect();
    Comparison {
        duration_delta: a
            .duration_ns()
            .zip(b.duration_ns())
            .map(|(x, y)| ms(y) - ms(x)),
        status_changed: a.status != b.status,
        steps,
        only_in_a,
        only_in_b,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use flowscope::wire::{EndStatus, StepEnd, StepStart, TraceEnd, TraceId, TraceStart};

    use super::*;
    use crate::store::index::Indexes;
    use crate::trace::Origin;
    use crate::trace::builder::{TraceCaps, apply};

    /// A trace from `(span, parent, start, end)` steps; the trace runs 0..`end` (ns).
    fn trace(steps: &[(u64, u64, u64, u64)], end: u64) -> Trace {
        let origin = Arc::new(Origin::named("t"));
        let id = TraceId(7);
        let mut t = Trace::new(id, Arc::clone(&origin), 1, 1);
        let mut idx = Indexes::default();
        let caps = TraceCaps {
            max_steps: 100_000,
            max_events: 1_000_000,
            max_depth: 10_000,
        };
        let mut events = vec![Event::TraceStart(Box::new(TraceStart {
            t: 1,
            trace: id,
            flow: "f".into(),
            ..TraceStart::default()
        }))];
        for &(span, parent, start, stop) in steps {
            events.push(Event::StepStart(StepStart {
                t: start,
                trace: id,
                span: SpanId(span),
                parent: (parent != 0).then_some(SpanId(parent)),
                name: format!("s{span}").into(),
                ..StepStart::default()
            }));
            events.push(Event::StepEnd(StepEnd {
                t: stop,
                trace: id,
                span: SpanId(span),
                status: EndStatus::Completed,
                ..StepEnd::default()
            }));
        }
        events.push(Event::TraceEnd(TraceEnd {
            t: end,
            trace: id,
            ..TraceEnd::default()
        }));
        for e in events {
            apply(&mut t, &mut idx, &origin, e, 1, &caps);
        }
        t
    }

    fn ids(path: &[SpanId]) -> Vec<u64> {
        path.iter().map(|s| s.0).collect()
    }

    #[test]
    fn sequential_steps_are_all_critical() {
        let t = trace(&[(1, 0, 1, 10), (2, 0, 10, 30), (3, 0, 30, 40)], 40);
        assert_eq!(ids(&critical_path(&t)), vec![1, 2, 3]);
    }

    #[test]
    fn of_parallel_steps_the_one_finishing_last_is_critical() {
        // 2 and 3 run side by side after 1; 3 ends last; 4 follows 3.
        let t = trace(
            &[
                (1, 0, 1, 10),
                (2, 0, 10, 20),
                (3, 0, 10, 35),
                (4, 0, 35, 40),
            ],
            40,
        );
        assert_eq!(ids(&critical_path(&t)), vec![1, 3, 4]);
    }

    #[test]
    fn nested_children_are_followed_inside_their_parent() {
        // 1 contains 2 (10..20) and 3 (20..45); 3 contains 4 (20..30) and 5 (25..44).
        let t = trace(
            &[
                (1, 0, 1, 50),
                (2, 1, 10, 20),
                (3, 1, 20, 45),
                (4, 3, 20, 30),
                (5, 3, 25, 44),
            ],
            50,
        );
        // 4 carries 3's work from 20 until 5 starts at 25, so it is on the path too.
        assert_eq!(ids(&critical_path(&t)), vec![1, 2, 3, 4, 5]);
        // Without 4, only 5 is.
        let t = trace(
            &[
                (1, 0, 1, 50),
                (2, 1, 10, 20),
                (3, 1, 20, 45),
                (5, 3, 25, 44),
            ],
            50,
        );
        assert_eq!(ids(&critical_path(&t)), vec![1, 2, 3, 5]);
    }

    #[test]
    fn ten_thousand_steps_take_linear_time_and_no_stack() {
        // A 10,000-deep chain and 10,000 siblings.
        let mut steps: Vec<(u64, u64, u64, u64)> =
            (1..=10_000u64).map(|i| (i, i - 1, i, 40_000 - i)).collect();
        steps.extend((10_001..=20_000u64).map(|i| (i, 0, i * 2, i * 2 + 1)));
        let t = trace(&steps, 50_000);
        let started = std::time::Instant::now();
        let path = critical_path(&t);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert!(path.len() >= 10_000);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<u64> = (1..=100).map(|v| v * 1_000_000).collect();
        let d = Durations::of(values);
        assert_eq!((d.p50, d.p95, d.p99, d.max), (50.0, 95.0, 99.0, 100.0));
        assert_eq!(d.avg, 50.5);
    }
}
