//! Ingest-time validation of one event: ids the protocol calls invalid are refused, times are
//! clamped into a sane window (so no later arithmetic can overflow) and names, keys and topics are
//! cut to [`MAX_NAME_BYTES`]. Per-trace caps live in the builder; their excess is recorded in a
//! trace's [`Truncation`].

use flowscope::wire::{Event, Name, SpanId};

/// Longest flow/step name, state key, topic, stream, item id or correlation id kept, in bytes.
pub const MAX_NAME_BYTES: usize = 1024;
/// Latest timestamp accepted (2100-01-01T00:00:00Z); later ones are clamped to it.
pub const MAX_UNIX_NS: u64 = 4_102_444_800_000_000_000;
/// Earliest timestamp accepted (1 ns after the epoch; 0 is clamped to it).
pub const MIN_UNIX_NS: u64 = 1;

/// Why an event was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// All-zero trace id (W3C: invalid).
    TraceId,
    /// All-zero span id (W3C: invalid).
    SpanId,
}

impl Invalid {
    /// Stable code for metrics and `/healthz`.
    pub fn code(self) -> &'static str {
        match self {
            Invalid::TraceId => "invalid_trace_id",
            Invalid::SpanId => "invalid_span_id",
        }
    }
}

/// What the per-trace caps and ingest validation left out of a trace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Truncation {
    /// Step starts refused past `--max-steps-per-trace`.
    pub steps: u32,
    /// Operations and events refused past `--max-events-per-trace` (or for refused steps).
    pub events: u32,
    /// Steps nested deeper than `--max-depth`, attached at that depth instead.
    pub depth: u32,
    /// Names/keys/topics cut to [`MAX_NAME_BYTES`].
    pub strings: u32,
}

impl Truncation {
    /// Whether anything was left out.
    pub fn any(&self) -> bool {
        *self != Self::default()
    }
}

fn clamp_time(t: &mut u64) {
    *t = (*t).clamp(MIN_UNIX_NS, MAX_UNIX_NS);
}

fn clamp_duration(t: u64, dur: &mut u64) {
    *dur = (*dur).min(MAX_UNIX_NS - t);
}

/// The length `text` is cut to, when it is longer than a name may be.
fn cut_len(text: &str) -> Option<usize> {
    if text.len() <= MAX_NAME_BYTES {
        return None;
    }
    let mut end = MAX_NAME_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(end)
}

fn cut(text: &mut String) -> u32 {
    cut_len(text).map_or(0, |end| {
        text.truncate(end);
        1
    })
}

fn cut_opt(text: &mut Option<String>) -> u32 {
    text.as_mut().map_or(0, cut)
}

fn cut_name(text: &mut Name) -> u32 {
    cut_len(text).map_or(0, |end| {
        text.to_mut().truncate(end);
        1
    })
}

fn cut_opt_name(text: &mut Option<Name>) -> u32 {
    text.as_mut().map_or(0, cut_name)
}

fn span_ok(span: Option<SpanId>) -> Result<(), Invalid> {
    match span {
        Some(s) if !s.is_valid() => Err(Invalid::SpanId),
        _ => Ok(()),
    }
}

/// Validates and normalises `event` in place. Returns how many strings were cut.
pub fn sanitize(event: &mut Event) -> Result<u32, Invalid> {
    if event.trace_id().is_some_and(|id| !id.is_valid()) {
        return Err(Invalid::TraceId);
    }
    let cut_count = match event {
        Event::TraceStart(e) => {
            clamp_time(&mut e.t);
            if e.parent.is_some_and(|p| !p.is_valid()) {
                e.parent = None;
            }
            cut(&mut e.flow) + cut_opt(&mut e.step) + cut_opt(&mut e.cid)
        }
        Event::TraceEnd(e) => {
            clamp_time(&mut e.t);
            0
        }
        Event::StepStart(e) => {
            clamp_time(&mut e.t);
            span_ok(Some(e.span))?;
            // A step cannot be its own parent; an invalid parent is no parent.
            if e.parent.is_some_and(|p| !p.is_valid() || p == e.span) {
                e.parent = None;
            }
            cut_name(&mut e.name)
        }
        Event::StepEnd(e) => {
            clamp_time(&mut e.t);
            span_ok(Some(e.span))?;
            cut_opt_name(&mut e.name)
        }
        Event::Op(e) => {
            clamp_time(&mut e.t);
            clamp_duration(e.t, &mut e.dur);
            span_ok(e.span)?;
            cut_opt_name(&mut e.subject) + cut_opt_name(&mut e.detail)
        }
        Event::Log(e) => {
            clamp_time(&mut e.t);
            span_ok(e.span)?;
            0
        }
        Event::Llm(e) => {
            clamp_time(&mut e.t);
            clamp_duration(e.t, &mut e.dur);
            span_ok(e.span)?;
            if e.cost.is_some_and(|c| !c.is_finite() || c < 0.0) {
                e.cost = None;
            }
            cut(&mut e.model) + cut_opt(&mut e.provider)
        }
        Event::Artifact(e) => {
            clamp_time(&mut e.t);
            span_ok(e.span)?;
            cut(&mut e.name) + cut_opt(&mut e.mime)
        }
        Event::Retry(e) => {
            clamp_time(&mut e.t);
            span_ok(e.span)?;
            0
        }
        Event::Checkpoint(e) => {
            clamp_time(&mut e.t);
            span_ok(e.span)?;
            cut(&mut e.id)
        }
        Event::Transition(e) => {
            clamp_time(&mut e.t);
            span_ok(e.span)?;
            cut(&mut e.from) + cut(&mut e.to) + cut_opt(&mut e.action)
        }
        Event::Correlate(e) => {
            clamp_time(&mut e.t);
            cut(&mut e.cid) + cut_opt(&mut e.name)
        }
        Event::Custom(e) => {
            clamp_time(&mut e.t);
            span_ok(e.span)?;
            cut(&mut e.name)
        }
        Event::Dropped(e) => {
            clamp_time(&mut e.t);
            0
        }
        Event::Stats(_) | Event::Unknown => 0,
    };
    Ok(cut_count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowscope::wire::{Op, OpAction, OpKind, StepStart, TraceId};

    #[test]
    fn zero_ids_are_refused() {
        let mut e = Event::StepStart(StepStart {
            t: 5,
            trace: TraceId(0),
            span: SpanId(1),
            parent: None,
            name: "x".into(),
            ..StepStart::default()
        });
        assert_eq!(sanitize(&mut e), Err(Invalid::TraceId));
        let mut e = Event::StepStart(StepStart {
            t: 5,
            trace: TraceId(1),
            span: SpanId(0),
            parent: None,
            name: "x".into(),
            ..StepStart::default()
        });
        assert_eq!(sanitize(&mut e), Err(Invalid::SpanId));
    }

    #[test]
    fn times_are_clamped_so_sums_cannot_overflow() {
        let mut op = Op::new(OpKind::State, OpAction::Get, Some("k".into()), None);
        op.trace = TraceId(1);
        op.t = u64::MAX;
        op.dur = u64::MAX;
        let mut e = Event::Op(op);
        sanitize(&mut e).unwrap();
        let Event::Op(op) = e else { unreachable!() };
        assert_eq!(op.t, MAX_UNIX_NS);
        assert!(
            op.t.checked_add(op.dur)
                .is_some_and(|end| end <= MAX_UNIX_NS)
        );
    }

    #[test]
    fn self_parent_and_long_names_are_normalised() {
        let mut e = Event::StepStart(StepStart {
            t: 0,
            trace: TraceId(1),
            span: SpanId(7),
            parent: Some(SpanId(7)),
            name: "é".repeat(MAX_NAME_BYTES).into(),
            ..StepStart::default()
        });
        assert_eq!(sanitize(&mut e), Ok(1));
        let Event::StepStart(s) = e else {
            unreachable!()
        };
        assert_eq!((s.t, s.parent), (MIN_UNIX_NS, None));
        assert!(s.name.len() <= MAX_NAME_BYTES && s.name.chars().all(|c| c == 'é'));
    }
}
