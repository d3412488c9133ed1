//! Trace list queries: indexed filters, newest-first order, cursor pagination.

use std::ops::Bound;

use flowscope::wire::TraceId;

use super::Store;
use crate::trace::{Trace, TraceStatus};

/// A (start time, id) position in the list order.
type Pos = (u64, TraceId);
/// Inclusive/exclusive bounds on positions.
type PosRange = (Bound<Pos>, Bound<Pos>);

/// A position in the newest-first list; the next page starts strictly after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Start time (unix ns) of the last trace returned.
    pub start_ns: u64,
    /// Its id.
    pub id: TraceId,
}

impl Cursor {
    /// Opaque text form: `<start_ns>-<trace id hex>`.
    pub fn encode(&self) -> String {
        format!("{}-{}", self.start_ns, self.id)
    }

    /// Parses [`Cursor::encode`]'s output.
    pub fn decode(s: &str) -> Option<Self> {
        let (start, id) = s.split_once('-')?;
        Some(Self {
            start_ns: start.parse().ok()?,
            id: TraceId::from_hex(id).ok()?,
        })
    }
}

/// Filters for the trace list. Empty means "everything".
#[derive(Debug, Clone, Default)]
pub struct TraceQuery {
    /// Flow name.
    pub flow: Option<String>,
    /// Has a segment from this service.
    pub service: Option<String>,
    /// Status.
    pub status: Option<TraceStatus>,
    /// Has a step with this name.
    pub step: Option<String>,
    /// Touched this state key.
    pub state_key: Option<String>,
    /// Emitted this topic.
    pub topic: Option<String>,
    /// In this correlation group.
    pub correlation_id: Option<String>,
    /// Case-insensitive text in the id, flow, step names or correlation id (lowercase).
    pub text: Option<String>,
    /// Started at or after (unix ns).
    pub since_ns: Option<u64>,
    /// Started at or before (unix ns).
    pub until_ns: Option<u64>,
    /// Ended traces at least this long (ns).
    pub min_duration_ns: Option<u64>,
    /// Ended traces at most this long (ns).
    pub max_duration_ns: Option<u64>,
    /// Page size.
    pub limit: usize,
    /// Continue after this position.
    pub cursor: Option<Cursor>,
}

/// One page of results, newest first.
#[derive(Debug)]
pub struct Page<'a> {
    /// Traces on this page.
    pub traces: Vec<&'a Trace>,
    /// Where the next page starts, if there is one.
    pub next: Option<Cursor>,
}

impl TraceQuery {
    fn matches_unindexed(&self, trace: &Trace) -> bool {
        if self.min_duration_ns.is_some() || self.max_duration_ns.is_some() {
            let Some(duration) = trace.duration_ns() else {
                return false;
            };
            if self.min_duration_ns.is_some_and(|min| duration < min)
                || self.max_duration_ns.is_some_and(|max| duration > max)
            {
                return false;
            }
        }
        if let Some(text) = &self.text {
            let needle = text.as_bytes();
            let hit = |s: &str| contains_ignore_ascii_case(s.as_bytes(), needle);
            let mut hex = [0u8; 32];
            let found = trace.id.encode_hex(&mut hex).contains(text.as_str())
                || hit(trace.flow())
                || trace.correlation_id.as_deref().is_some_and(hit)
                || trace.steps.iter().any(|s| hit(&s.name));
            if !found {
                return false;
            }
        }
        true
    }

    /// The inclusive (start, id) range allowed by since/until and the cursor.
    fn range(&self) -> PosRange {
        let low = match self.since_ns {
            Some(since) => Bound::Included((since, TraceId(0))),
            None => Bound::Unbounded,
        };
        let until = self.until_ns.map(|until| (until, TraceId(u128::MAX)));
        let high = match (self.cursor, until) {
            (Some(c), Some(u)) if u < (c.start_ns, c.id) => Bound::Included(u),
            (Some(c), _) => Bound::Excluded((c.start_ns, c.id)),
            (None, Some(u)) => Bound::Included(u),
            (None, None) => Bound::Unbounded,
        };
        (low, high)
    }
}

/// Whether `needle` (lowercase) occurs in `haystack`, ignoring ASCII case, without allocating.
fn contains_ignore_ascii_case(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

fn in_range(pos: &Pos, (low, high): &PosRange) -> bool {
    let above = match low {
        Bound::Included(l) => pos >= l,
        Bound::Excluded(l) => pos > l,
        Bound::Unbounded => true,
    };
    let below = match high {
        Bound::Included(h) => pos <= h,
        Bound::Excluded(h) => pos < h,
        Bound::Unbounded => true,
    };
    above && below
}

impl Store {
    /// The traces a `q=` text can match: those indexed under a flow name, step name or
    /// correlation id containing it (any case), and, for a hex needle, those whose id contains it.
    fn text_candidates(&self, text: &str) -> super::index::IdSet {
        let idx = self.indexes();
        let needle = text.as_bytes();
        let hit = |s: &str| contains_ignore_ascii_case(s.as_bytes(), needle);
        let mut out = super::index::IdSet::default();
        for (name, ids) in idx.flow.iter().chain(idx.step.iter()) {
            if hit(name) {
                out.extend(ids.iter().copied());
            }
        }
        for (cid, group) in &idx.groups {
            if hit(cid) {
                out.extend(group.traces.iter().copied());
            }
        }
        if !text.is_empty() && text.len() <= 32 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut hex = [0u8; 32];
            for (_, id) in &idx.by_start {
                if id.encode_hex(&mut hex).contains(text) {
                    out.insert(*id);
                }
            }
        }
        // Traces without a flow name show as `unknown`.
        if hit(crate::trace::UNKNOWN_FLOW) {
            out.extend(
                idx.by_start
                    .iter()
                    .map(|(_, id)| *id)
                    .filter(|id| self.peek(*id).is_some_and(|t| t.flow_name.is_none())),
            );
        }
        out
    }

    /// Runs a list query.
    pub fn query(&self, q: &TraceQuery) -> Page<'_> {
        let limit = q.limit.max(1);
        let range = q.range();
        let idx = self.indexes();
        let empty = super::index::IdSet::default();
        let keyed = [
            (&q.flow, &idx.flow),
            (&q.service, &idx.service),
            (&q.step, &idx.step),
            (&q.state_key, &idx.state_key),
            (&q.topic, &idx.topic),
        ];
        let mut sets: Vec<&super::index::IdSet> = keyed
            .iter()
            .filter_map(|(want, index)| want.as_deref().map(|key| index.get(key).unwrap_or(&empty)))
            .collect();
        if let Some(status) = q.status {
            sets.push(&idx.status[status.index()]);
        }
        if let Some(cid) = &q.correlation_id {
            sets.push(idx.groups.get(cid).map_or(&empty, |g| &g.traces));
        }
        // Text: the distinct flow names, step names and correlation ids that contain it (and ids,
        // for a hex needle) give the candidates, instead of every step of every trace.
        // A common text matches most traces: then the newest-first scan, which stops after a
        // page, is cheaper than sorting every candidate.
        let text_candidates = q
            .text
            .as_deref()
            .map(|text| self.text_candidates(text))
            .filter(|c| c.len().saturating_mul(8) < self.len());
        if let Some(candidates) = &text_candidates {
            sets.push(candidates);
        }

        let mut hits: Vec<&Trace> = Vec::with_capacity(limit + 1);
        if sets.is_empty() {
            for (_, id) in idx.by_start.range(range).rev() {
                let Some(trace) = self.peek(*id) else {
                    continue;
                };
                if q.matches_unindexed(trace) {
                    hits.push(trace);
                    if hits.len() > limit {
                        break;
                    }
                }
            }
        } else {
            sets.sort_by_key(|s| s.len());
            let (smallest, rest) = sets.split_first().expect("at least one filter set");
            let mut found: Vec<&Trace> = smallest
                .iter()
                .filter(|id| rest.iter().all(|s| s.contains(id)))
                .filter_map(|id| self.peek(*id))
                .filter(|t| in_range(&(t.start_ns, t.id), &range) && q.matches_unindexed(t))
                .collect();
            found.sort_unstable_by_key(|t| std::cmp::Reverse((t.start_ns, t.id)));
            found.truncate(limit + 1);
            hits = found;
        }
        let next = if hits.len() > limit {
            hits.truncate(limit);
            hits.last().map(|t| Cursor {
                start_ns: t.start_ns,
                id: t.id,
            })
        } else {
            None
        };
        Page { traces: hits, next }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use flowscope::wire::{Event, TraceEnd, TraceStart};

    use super::*;
    use crate::trace::Origin;

    fn store_with(n: u64) -> Store {
        let mut store = Store::new(std::num::NonZeroUsize::new(1000).unwrap());
        let origin = Arc::new(Origin::named("svc"));
        for i in 0..n {
            let trace = TraceId(u128::from(i) + 1);
            let flow = if i % 2 == 0 { "even" } else { "odd" };
            store.apply(
                &origin,
                Event::TraceStart(Box::new(TraceStart {
                    t: 1_000 + i,
                    trace,
                    flow: flow.into(),
                    ..TraceStart::default()
                })),
                0,
            );
            store.apply(
                &origin,
                Event::TraceEnd(TraceEnd {
                    t: 2_000 + i,
                    trace,
                    ..TraceEnd::default()
                }),
                0,
            );
        }
        store
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = Cursor {
            start_ns: 42,
            id: TraceId(0xabc),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        for bad in [
            "",
            "42",
            "x-0000000000000000000000000000000a",
            "42-zz",
            "-1-00",
        ] {
            assert_eq!(Cursor::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn pages_are_newest_first_and_cover_everything_once() {
        let store = store_with(25);
        let mut seen = Vec::new();
        let mut query = TraceQuery {
            limit: 10,
            ..TraceQuery::default()
        };
        loop {
            let page = store.query(&query);
            let ids: Vec<TraceId> = page.traces.iter().map(|t| t.id).collect();
            assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
            seen.extend(ids);
            match page.next {
                Some(next) => query.cursor = Some(next),
                None => break,
            }
        }
        let expected: Vec<TraceId> = (1..=25u128).rev().map(TraceId).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn text_search_finds_flows_steps_groups_and_ids_any_case() {
        // 100 traces: a rare match takes the candidate path, a common one the scan.
        let mut store = store_with(100);
        let origin = Arc::new(Origin::named("svc"));
        store.apply(
            &origin,
            Event::StepStart(flowscope::wire::StepStart {
                t: 1_500,
                trace: TraceId(3),
                span: flowscope::wire::SpanId(9),
                name: "Charge-Card".into(),
                ..flowscope::wire::StepStart::default()
            }),
            0,
        );
        let find = |text: &str| -> Vec<TraceId> {
            let q = TraceQuery {
                text: Some(text.to_owned()),
                limit: 100,
                ..TraceQuery::default()
            };
            let mut ids: Vec<TraceId> = store.query(&q).traces.iter().map(|t| t.id).collect();
            ids.sort();
            ids
        };
        assert_eq!(find("charge"), [TraceId(3)], "a step name, any case");
        assert_eq!(find("od").len(), 50, "the flow `odd`");
        assert_eq!(
            find("00000000000000000000000000000064"),
            [TraceId(100)],
            "an id"
        );
        assert_eq!(
            find("0000000000000000000000000000000"),
            (1..=15).map(TraceId).collect::<Vec<_>>()
        );
        assert_eq!(find("nothing-like-it"), []);
    }

    #[test]
    fn an_indexed_filter_pages_the_same_way() {
        let store = store_with(25);
        let mut query = TraceQuery {
            flow: Some("odd".into()),
            limit: 5,
            ..TraceQuery::default()
        };
        let first = store.query(&query);
        assert_eq!(first.traces.len(), 5);
        assert!(first.traces.iter().all(|t| t.flow() == "odd"));
        query.cursor = first.next;
        let second = store.query(&query);
        // 12 odd traces: 5 + 5 + 2, no overlap.
        assert_eq!(second.traces.len(), 5);
        assert!(second.traces[0].id < first.traces[4].id);
        query.cursor = second.next;
        let third = store.query(&query);
        assert_eq!(third.traces.len(), 2);
        assert!(third.next.is_none());
    }
}
