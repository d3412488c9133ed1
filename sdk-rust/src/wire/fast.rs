//! msgpack for the kinds an SDK sends most (op, step start and end, log), straight with `rmp`.
//!
//! Encoding writes byte for byte what the serde encoding writes (the tests compare them on every
//! shape), without serde's per-field calls or the UTF-8 check on every id. Decoding reads those
//! maps when they hold exactly what this encoder writes (`k` first, known fields once each, the
//! types the fields have); anything else (other kinds, attributes, error details, unknown or
//! repeated fields, other types) goes to serde for that event, so the result, errors included,
//! is serde's (the tests compare both on every shape and on every one-byte mutation of them).

use rmp::decode as rd;
use rmp::encode::{self as mp, ValueWriteError};

use super::event::{
    EndStatus, Event, Log, LogLevel, Op, OpAction, OpFields, OpKind, SpanKind, StepEnd, StepStart,
};
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
    let f = op.fields();
    // In `OpOut`'s field order.
    let named = [
        ("key", f.key),
        ("topic", f.topic),
        ("to", f.to),
        ("stream", f.stream),
        ("id", f.id),
    ];
    let fields = 7
        + usize::from(op.span.is_some())
        + named.iter().filter(|(_, v)| v.is_some()).count()
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
    for (key, value) in named {
        if let Some(value) = value {
            text(out, key, value)?;
        }
    }
    uint(out, "dur", op.dur)?;
    string(out, "ok")?;
    mp::write_bool(out, op.ok).map_err(ValueWriteError::InvalidMarkerWrite)?;
    if let Some(error) = op.error.as_deref() {
        text(out, "error", error)?;
    }
    Ok(())
}

fn step_start_map(out: &mut Vec<u8>, ids: &mut Ids, start: &StepStart) -> Written {
    let kind = (start.kind != SpanKind::Internal).then(|| start.kind.as_str());
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
    text(out, "status", end.status.as_str())?;
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
    text(out, "level", log.level.as_str())?;
    text(out, "msg", &log.msg)
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// Decodes a msgpack batch (an array of events): the hot kinds here, every other event by serde.
pub(super) fn decode_batch(payload: &[u8]) -> Result<Vec<Event>, rmp_serde::decode::Error> {
    use serde::Deserialize;
    let mut input = payload;
    let Ok(count) = rd::read_array_len(&mut input) else {
        return rmp_serde::from_slice(payload);
    };
    // The count is the sender's word: room grows with what actually decodes.
    let mut events = Vec::with_capacity((count as usize).min(4096));
    for _ in 0..count {
        let start = input;
        match event(&mut input) {
            Some(event) => events.push(event),
            None => {
                input = start;
                let mut de = rmp_serde::Deserializer::new(&mut input);
                events.push(Event::deserialize(&mut de)?);
            }
        }
    }
    Ok(events)
}

fn read_text<'a>(input: &mut &'a [u8]) -> Option<&'a str> {
    let (text, rest) = rd::read_str_from_slice(*input).ok()?;
    *input = rest;
    Some(text)
}

fn number(input: &mut &[u8]) -> Option<u64> {
    rd::read_int::<u64, _>(input).ok()
}

fn flag(input: &mut &[u8]) -> Option<bool> {
    rd::read_bool(input).ok()
}

/// A string's bytes, unchecked: for ids, whose hex parse refuses anything but ASCII digits.
fn read_raw<'a>(input: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = rd::read_str_len(input).ok()? as usize;
    if input.len() < len {
        return None;
    }
    let (raw, rest) = input.split_at(len);
    *input = rest;
    Some(raw)
}

fn trace_id(input: &mut &[u8]) -> Option<TraceId> {
    TraceId::from_hex_bytes(read_raw(input)?).ok()
}

fn span_id(input: &mut &[u8]) -> Option<SpanId> {
    SpanId::from_hex_bytes(read_raw(input)?).ok()
}

/// Sets `slot` once; a repeated field is left to serde (which refuses it).
fn once<T>(slot: &mut Option<T>, value: Option<T>) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value?);
    Some(())
}

/// One event in its fast form, or `None` (having read some of it) when serde must decode it.
fn event(input: &mut &[u8]) -> Option<Event> {
    let fields = rd::read_map_len(input).ok()?.checked_sub(1)?;
    if read_text(input)? != "k" {
        return None;
    }
    match read_text(input)? {
        "op" => op(input, fields).map(Event::Op),
        "step_start" => step_start(input, fields).map(Event::StepStart),
        "step_end" => step_end(input, fields).map(Event::StepEnd),
        "log" => log(input, fields).map(Event::Log),
        _ => None,
    }
}

fn op(input: &mut &[u8], fields: u32) -> Option<Op> {
    let (mut t, mut trace, mut span, mut kind, mut action) = (None, None, None, None, None);
    let (mut key, mut topic, mut to, mut stream, mut id) = (None, None, None, None, None);
    let (mut dur, mut ok, mut error) = (None, None, None);
    for _ in 0..fields {
        match read_text(input)? {
            "t" => once(&mut t, number(input))?,
            "tr" => once(&mut trace, trace_id(input))?,
            "sp" => once(&mut span, span_id(input))?,
            "op" => once(&mut kind, read_text(input).and_then(OpKind::parse))?,
            "action" => once(&mut action, read_text(input).map(OpAction::parse))?,
            "key" => once(&mut key, read_text(input))?,
            "topic" => once(&mut topic, read_text(input))?,
            "to" => once(&mut to, read_text(input))?,
            "stream" => once(&mut stream, read_text(input))?,
            "id" => once(&mut id, read_text(input))?,
            "dur" => once(&mut dur, number(input))?,
            "ok" => once(&mut ok, flag(input))?,
            "error" => once(&mut error, read_text(input))?,
            _ => return None,
        }
    }
    let kind = kind?;
    let (subject, detail) = OpFields {
        key,
        topic,
        to,
        stream,
        id,
    }
    .subject_and_detail(kind);
    Some(Op {
        t: t?,
        trace: trace?,
        span,
        kind,
        action: action?,
        ok: ok.unwrap_or(true),
        subject: subject.map(|s| s.to_owned().into()),
        detail: detail.map(|s| s.to_owned().into()),
        dur: dur.unwrap_or(0),
        error: error.map(Into::into),
    })
}

/// The one of `all` whose wire name is `text` (exactly, as serde reads it).
fn named<T: Copy, const N: usize>(
    all: [T; N],
    name: fn(T) -> &'static str,
    text: &str,
) -> Option<T> {
    all.into_iter().find(|value| name(*value) == text)
}

fn step_start(input: &mut &[u8], fields: u32) -> Option<StepStart> {
    let (mut t, mut trace, mut span, mut parent, mut name, mut kind) =
        (None, None, None, None, None, None);
    for _ in 0..fields {
        match read_text(input)? {
            "t" => once(&mut t, number(input))?,
            "tr" => once(&mut trace, trace_id(input))?,
            "sp" => once(&mut span, span_id(input))?,
            "ps" => once(&mut parent, span_id(input))?,
            "name" => once(&mut name, read_text(input))?,
            "kind" => once(
                &mut kind,
                read_text(input).and_then(|s| named(SpanKind::ALL, SpanKind::as_str, s)),
            )?,
            _ => return None,
        }
    }
    Some(StepStart {
        t: t?,
        trace: trace?,
        span: span?,
        parent,
        name: name?.to_owned().into(),
        kind: kind.unwrap_or_default(),
        attrs: None,
    })
}

fn step_end(input: &mut &[u8], fields: u32) -> Option<StepEnd> {
    let (mut t, mut trace, mut span, mut status, mut name) = (None, None, None, None, None);
    for _ in 0..fields {
        match read_text(input)? {
            "t" => once(&mut t, number(input))?,
            "tr" => once(&mut trace, trace_id(input))?,
            "sp" => once(&mut span, span_id(input))?,
            "status" => once(
                &mut status,
                read_text(input).and_then(|s| named(EndStatus::ALL, EndStatus::as_str, s)),
            )?,
            "name" => once(&mut name, read_text(input))?,
            _ => return None,
        }
    }
    Some(StepEnd {
        t: t?,
        trace: trace?,
        span: span?,
        status: status.unwrap_or_default(),
        error: None,
        name: name.map(|n| n.to_owned().into()),
        attrs: None,
    })
}

fn log(input: &mut &[u8], fields: u32) -> Option<Log> {
    let (mut t, mut trace, mut span, mut level, mut msg) = (None, None, None, None, None);
    for _ in 0..fields {
        match read_text(input)? {
            "t" => once(&mut t, number(input))?,
            "tr" => once(&mut trace, trace_id(input))?,
            "sp" => once(&mut span, span_id(input))?,
            "level" => once(
                &mut level,
                read_text(input).and_then(|s| named(LogLevel::ALL, LogLevel::as_str, s)),
            )?,
            "msg" => once(&mut msg, read_text(input))?,
            _ => return None,
        }
    }
    Some(Log {
        t: t?,
        trace: trace?,
        span,
        level: level.unwrap_or_default(),
        msg: msg?.to_owned(),
        fields: None,
    })
}
