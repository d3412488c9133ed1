//! msgpack for the kinds an SDK sends most (op, step start and end, log), written straight with
//! `rmp`: byte for byte what the serde encoding writes (the tests compare them on every shape),
//! without serde's per-field calls or the UTF-8 check on every id. Other kinds, and these when
//! they carry attributes or error details, go through serde.

use rmp::encode::{self as mp, ValueWriteError};

use super::event::{EndStatus, Event, Log, LogLevel, Op, OpKind, SpanKind, StepEnd, StepStart};
use super::ids::{SpanId, TraceId};

type Written = Result<(), ValueWriteError>;

/// The hex forms of the ids written last: the events of a batch mostly share their trace, and
/// an op its step's span.
#[derive(Default)]
pub(super) struct Ids {
    trace: Option<(TraceId, [u8; 32])>,
    span: Option<(SpanId, [u8; 16])>,
}

impl Ids {
    fn trace(&mut self, id: TraceId) -> [u8; 32] {
        match self.trace {
            Some((last, hex)) if last == id => hex,
            _ => {
                let hex = id.hex_bytes();
                self.trace = Some((id, hex));
                hex
            }
        }
    }

    fn span(&mut self, id: SpanId) -> [u8; 16] {
        match self.span {
            Some((last, hex)) if last == id => hex,
            _ => {
                let hex = id.hex_bytes();
                self.span = Some((id, hex));
                hex
            }
        }
    }
}

/// Writes `event` when it has a fast form; `Ok(false)` (nothing written) when it has not.
pub(super) fn write_event(
    out: &mut Vec<u8>,
    ids: &mut Ids,
    event: &Event,
) -> Result<bool, ValueWriteError> {
    match event {
        Event::Op(op) => op_map(out, ids, op)?,
        Event::StepStart(start) if start.attrs.is_none() => step_start_map(out, ids, start)?,
        Event::StepEnd(end) if end.attrs.is_none() && end.error.is_none() => {
            step_end_map(out, ids, end)?
        }
        Event::Log(log) if log.fields.is_none() => log_map(out, ids, log)?,
        _ => return Ok(false),
    }
    Ok(true)
}

fn len(fields: usize) -> u32 {
    fields as u32
}

/// Writes a string: a short one (as keys and most names are) as a fixstr in one step, others
/// through `rmp`.
fn string(out: &mut Vec<u8>, value: &str) -> Written {
    const FIXSTR: u8 = 0xa0;
    const FIXSTR_MAX: usize = 31;
    if value.len() <= FIXSTR_MAX {
        out.push(FIXSTR | value.len() as u8);
        out.extend_from_slice(value.as_bytes());
        Ok(())
    } else {
        mp::write_str(out, value)
    }
}

fn text(out: &mut Vec<u8>, key: &str, value: &str) -> Written {
    string(out, key)?;
    string(out, value)
}

fn uint(out: &mut Vec<u8>, key: &str, value: u64) -> Written {
    string(out, key)?;
    mp::write_uint(out, value).map(|_| ())
}

fn hex(out: &mut Vec<u8>, key: &str, digits: &[u8]) -> Written {
    string(out, key)?;
    mp::write_str_len(out, digits.len() as u32)?;
    out.extend_from_slice(digits);
    Ok(())
}

fn trace(out: &mut Vec<u8>, ids: &mut Ids, id: TraceId) -> Written {
    hex(out, "tr", &ids.trace(id))
}

fn span(out: &mut Vec<u8>, ids: &mut Ids, key: &str, id: SpanId) -> Written {
    hex(out, key, &ids.span(id))
}

fn op_map(out: &mut Vec<u8>, ids: &mut Ids, op: &Op) -> Written {
    let subject_key = match op.kind {
        OpKind::State => "key",
        OpKind::Emit => "topic",
        OpKind::Stream => "stream",
    };
    let detail = match op.kind {
        OpKind::State => None,
        OpKind::Emit => op.detail.as_deref().map(|d| ("to", d)),
        OpKind::Stream => op.detail.as_deref().map(|d| ("id", d)),
    };
    let fields = 7
        + usize::from(op.span.is_some())
        + usize::from(op.subject.is_some())
        + usize::from(detail.is_some())
        + usize::from(op.error.is_some());
    mp::write_map_len(out, len(fields))?;
    text(out, "k", "op")?;
    uint(out, "t", op.t)?;
    trace(out, ids, op.trace)?;
    if let Some(id) = op.span {
        span(out, ids, "sp", id)?;
    }
    text(out, "op", op.kind.as_str())?;
    text(out, "action", op.action.as_str())?;
    if let Some(subject) = op.subject.as_deref() {
        text(out, subject_key, subject)?;
    }
    if let Some((key, value)) = detail {
        text(out, key, value)?;
    }
    uint(out, "dur", op.dur)?;
    string(out, "ok")?;
    mp::write_bool(out, op.ok).map_err(ValueWriteError::InvalidMarkerWrite)?;
    if let Some(error) = op.error.as_deref() {
        text(out, "error", error)?;
    }
    Ok(())
}

fn span_kind(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Internal => "internal",
        SpanKind::Client => "client",
        SpanKind::Server => "server",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
    }
}

fn step_start_map(out: &mut Vec<u8>, ids: &mut Ids, start: &StepStart) -> Written {
    let kind = (start.kind != SpanKind::Internal).then(|| span_kind(start.kind));
    let fields = 5 + usize::from(start.parent.is_some()) + usize::from(kind.is_some());
    mp::write_map_len(out, len(fields))?;
    text(out, "k", "step_start")?;
    uint(out, "t", start.t)?;
    trace(out, ids, start.trace)?;
    span(out, ids, "sp", start.span)?;
    if let Some(parent) = start.parent {
        span(out, ids, "ps", parent)?;
    }
    text(out, "name", &start.name)?;
    if let Some(kind) = kind {
        text(out, "kind", kind)?;
    }
    Ok(())
}

fn step_end_map(out: &mut Vec<u8>, ids: &mut Ids, end: &StepEnd) -> Written {
    let fields = 5 + usize::from(end.name.is_some());
    mp::write_map_len(out, len(fields))?;
    text(out, "k", "step_end")?;
    uint(out, "t", end.t)?;
    trace(out, ids, end.trace)?;
    span(out, ids, "sp", end.span)?;
    let status = match end.status {
        EndStatus::Completed => "completed",
        EndStatus::Failed => "failed",
    };
    text(out, "status", status)?;
    if let Some(name) = end.name.as_deref() {
        text(out, "name", name)?;
    }
    Ok(())
}

fn log_map(out: &mut Vec<u8>, ids: &mut Ids, log: &Log) -> Written {
    let fields = 5 + usize::from(log.span.is_some());
    mp::write_map_len(out, len(fields))?;
    text(out, "k", "log")?;
    uint(out, "t", log.t)?;
    trace(out, ids, log.trace)?;
    if let Some(id) = log.span {
        span(out, ids, "sp", id)?;
    }
    let level = match log.level {
        LogLevel::Trace => "trace",
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    text(out, "level", level)?;
    text(out, "msg", &log.msg)
}
