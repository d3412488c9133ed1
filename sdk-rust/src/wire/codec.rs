//! Framing (`u32` big-endian length + payload) and batch encoding.

use serde::Serialize;

use super::event::Event;
use super::handshake::Encoding;

/// Default largest payload, in bytes.
pub const DEFAULT_MAX_FRAME: usize = 4 * 1024 * 1024;

/// Length of the frame header.
pub const HEADER_LEN: usize = 4;

/// A batch or handshake frame could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// MessagePack serialization failed.
    #[error("msgpack encode: {0}")]
    Msgpack(#[from] rmp_serde::encode::Error),
    /// JSON serialization failed.
    #[error("json encode: {0}")]
    Json(#[from] serde_json::Error),
    /// The payload is larger than the frame limit.
    #[error("frame of {size} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Payload size.
        size: usize,
        /// Limit.
        limit: usize,
    },
}

/// A batch payload could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Invalid MessagePack, or a known event kind with missing/mistyped fields.
    #[error("malformed msgpack batch: {0}")]
    Msgpack(#[from] rmp_serde::decode::Error),
    /// Invalid JSON, or a known event kind with missing/mistyped fields.
    #[error("malformed json batch: {0}")]
    Json(#[from] serde_json::Error),
}

/// Appends one frame holding `value` serialized with `encoding` to `out`, enforcing `limit`.
///
/// On error, `out` is left as it was.
pub fn encode_frame<T: Serialize + ?Sized>(
    encoding: Encoding,
    value: &T,
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    let written = match encoding {
        Encoding::Msgpack => {
            let mut ser = rmp_serde::Serializer::new(&mut *out).with_struct_map();
            value.serialize(&mut ser).map_err(EncodeError::from)
        }
        Encoding::Json => serde_json::to_writer(&mut *out, value).map_err(EncodeError::from),
    };
    finish_frame(out, start, written, limit)
}

/// Checks and heads the frame begun at `start`; on error `out` is left as it was before it.
fn finish_frame(
    out: &mut Vec<u8>,
    start: usize,
    written: Result<(), EncodeError>,
    limit: usize,
) -> Result<(), EncodeError> {
    let size = out.len() - start - HEADER_LEN;
    if let Err(err) = written {
        out.truncate(start);
        return Err(err);
    }
    if size > limit {
        out.truncate(start);
        return Err(EncodeError::TooLarge { size, limit });
    }
    out[start..start + HEADER_LEN].copy_from_slice(&(size as u32).to_be_bytes());
    Ok(())
}

/// Appends one batch frame to `out`. In msgpack the hot kinds are written without serde (see
/// `fast`), byte for byte as serde writes them.
pub fn encode_batch(
    encoding: Encoding,
    events: &[Event],
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    if encoding == Encoding::Json {
        return encode_frame(encoding, events, limit, out);
    }
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    let written = (|| -> Result<(), EncodeError> {
        let count = u32::try_from(events.len()).map_err(|_| EncodeError::TooLarge {
            size: events.len(),
            limit,
        })?;
        rmp::encode::write_array_len(out, count).map_err(rmp_serde::encode::Error::from)?;
        let mut ids = super::fast::Ids::default();
        for event in events {
            let fast = super::fast::write_event(out, &mut ids, event);
            if !fast.map_err(rmp_serde::encode::Error::from)? {
                let mut ser = rmp_serde::Serializer::new(&mut *out).with_struct_map();
                event.serialize(&mut ser)?;
            }
        }
        Ok(())
    })();
    finish_frame(out, start, written, limit)
}

/// Decodes a batch payload (without its length header).
pub fn decode_batch(encoding: Encoding, payload: &[u8]) -> Result<Vec<Event>, DecodeError> {
    Ok(match encoding {
        Encoding::Msgpack => super::fast::decode_batch(payload)?,
        Encoding::Json => serde_json::from_slice(payload)?,
    })
}

/// Reads the payload length from a frame header.
pub fn frame_len(header: [u8; HEADER_LEN]) -> usize {
    u32::from_be_bytes(header) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{
        Correlate, CorrelationMethod, EndStatus, Op, OpAction, OpKind, SpanId, StepEnd, TraceId,
    };

    fn sample() -> Vec<Event> {
        vec![
            Event::Op(Op {
                t: 5,
                trace: TraceId(7),
                span: Some(SpanId(9)),
                kind: OpKind::Emit,
                action: OpAction::Send,
                subject: Some("user.validated".into()),
                detail: Some("save-user".into()),
                dur: 3,
                ok: true,
                error: None,
            }),
            Event::StepEnd(StepEnd {
                t: 6,
                trace: TraceId(7),
                span: SpanId(9),
                status: EndStatus::Failed,
                error: Some(Box::new(crate::wire::ErrorInfo::new("boom"))),
                name: None,
                attrs: None,
            }),
            Event::Correlate(Correlate {
                t: 8,
                trace: TraceId(7),
                cid: "thread-1".into(),
                method: CorrelationMethod::Header,
                name: None,
            }),
        ]
    }

    #[test]
    fn both_encodings_round_trip() {
        for encoding in [Encoding::Msgpack, Encoding::Json] {
            let mut out = Vec::new();
            encode_batch(encoding, &sample(), DEFAULT_MAX_FRAME, &mut out).unwrap();
            let len = frame_len(out[..4].try_into().unwrap());
            assert_eq!(len, out.len() - 4);
            assert_eq!(decode_batch(encoding, &out[4..]).unwrap(), sample());
        }
    }

    /// One event of every kind, decoded from its wire name in [`Event::KINDS`]: the table, the
    /// decoder and the serializer agree.
    #[test]
    fn every_kind_in_the_table_round_trips_by_its_wire_name() {
        let tr = "\"tr\":\"0000000000000000000000000000000a\"";
        let fields = |kind: &str| -> String {
            match kind {
                "trace_start" => format!("{tr},\"flow\":\"f\""),
                "trace_end" => tr.to_string(),
                "correlate" => format!("{tr},\"cid\":\"c\""),
                "step_start" => format!("{tr},\"sp\":\"000000000000000b\",\"name\":\"s\""),
                "step_end" => format!("{tr},\"sp\":\"000000000000000b\""),
                "op" => format!("{tr},\"op\":\"state\",\"action\":\"get\""),
                "log" => format!("{tr},\"msg\":\"m\""),
                "llm" => format!("{tr},\"model\":\"m\""),
                "artifact" | "custom" => format!("{tr},\"name\":\"n\""),
                "retry" => format!("{tr},\"attempt\":2"),
                "checkpoint" => format!("{tr},\"id\":\"c\""),
                "transition" => format!("{tr},\"from\":\"a\",\"to\":\"b\""),
                "dropped" => format!("{tr},\"n\":3"),
                _ => String::from("\"sent\":1"),
            }
        };
        for (index, kind) in Event::KINDS.iter().enumerate() {
            let json = format!("[{{\"k\":\"{kind}\",\"t\":1,{}}}]", fields(kind));
            let events = decode_batch(Encoding::Json, json.as_bytes())
                .unwrap_or_else(|e| panic!("{kind}: {e} in {json}"));
            assert_eq!(events[0].kind(), *kind, "{json}");
            assert_eq!(events[0].kind_index(), index);
            if *kind != "unknown" {
                let back = serde_json::to_value(&events[0]).unwrap();
                assert_eq!(back["k"], *kind, "serialized under its wire name");
            }
        }
    }

    #[test]
    fn unknown_kinds_and_fields_are_tolerated() {
        let json = br#"[{"k":"teleport","t":1,"x":2},{"k":"checkpoint","t":1,"tr":"0000000000000000000000000000000a","id":"c1","future":true}]"#;
        let events = decode_batch(Encoding::Json, json).unwrap();
        assert_eq!(events[0], Event::Unknown);
        assert_eq!(events[1].kind(), "checkpoint");
    }

    #[test]
    fn op_new_puts_subject_and_detail_where_the_kind_says() {
        let s = || Some(crate::wire::Name::from("s"));
        let d = || Some(crate::wire::Name::from("d"));
        let state = Op::new(OpKind::State, OpAction::Get, s(), d());
        assert_eq!(
            (state.key(), state.to(), state.item()),
            (Some("s"), None, None)
        );
        assert_eq!((state.topic(), state.detail.as_deref()), (None, None));
        let emit = Op::new(OpKind::Emit, OpAction::Send, s(), d());
        assert_eq!(
            (emit.topic(), emit.to(), emit.item()),
            (Some("s"), Some("d"), None)
        );
        let stream = Op::new(OpKind::Stream, OpAction::Set, s(), d());
        assert_eq!(
            (stream.stream(), stream.item(), stream.to()),
            (Some("s"), Some("d"), None)
        );
        let failed = Op::new(OpKind::State, OpAction::Set, s(), None).ended_now(
            TraceId(1),
            None,
            5,
            Some("x".into()),
        );
        assert!(!failed.ok && failed.dur == 5 && failed.t > 0 && failed.trace == TraceId(1));
    }

    #[test]
    fn op_fields_keep_their_wire_names_by_kind() {
        let emit = Op::new(
            OpKind::Emit,
            OpAction::Send,
            Some("t".into()),
            Some("s".into()),
        );
        let stream = Op::new(
            OpKind::Stream,
            OpAction::Get,
            Some("m".into()),
            Some("i".into()),
        );
        let mut out = Vec::new();
        encode_batch(
            Encoding::Json,
            &[Event::Op(emit.clone()), Event::Op(stream.clone())],
            1 << 16,
            &mut out,
        )
        .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out[HEADER_LEN..]).unwrap();
        assert_eq!(
            (json[0]["topic"].as_str(), json[0]["to"].as_str()),
            (Some("t"), Some("s"))
        );
        assert_eq!(
            (json[1]["stream"].as_str(), json[1]["id"].as_str()),
            (Some("m"), Some("i"))
        );
        for field in ["key", "subject", "detail", "stream", "id"] {
            assert!(json[0].get(field).is_none(), "emit op carries {field}");
        }
        // Decoding keeps only the kind's own fields, whatever else a sender put in.
        let stray = br#"[{"k":"op","t":1,"tr":"0000000000000000000000000000000a","op":"state","action":"get","topic":"x","key":"k","to":"y"}]"#;
        match &decode_batch(Encoding::Json, stray).unwrap()[0] {
            Event::Op(op) => assert_eq!(
                (op.key(), op.topic(), op.detail.as_deref()),
                (Some("k"), None, None)
            ),
            other => panic!("not an op: {other:?}"),
        }
        let back = decode_batch(Encoding::Json, &out[HEADER_LEN..]).unwrap();
        assert_eq!(back, vec![Event::Op(emit), Event::Op(stream)]);
    }

    /// Every shape the msgpack fast path writes, and some it leaves to serde.
    fn shapes() -> Vec<Event> {
        use crate::wire::{Log, LogLevel, SpanKind, StepStart};
        let trace = TraceId(0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c);
        let mut events = Vec::new();
        for kind in OpKind::ALL {
            for action in [OpAction::Get, OpAction::Send, OpAction::Other] {
                for (subject, detail) in [(None, None), (Some("s"), None), (Some("s"), Some("d"))] {
                    let mut op = Op::new(
                        kind,
                        action,
                        subject.map(Into::into),
                        detail.map(Into::into),
                    );
                    op.trace = trace;
                    events.push(Event::Op(op.clone()));
                    op.t = u64::MAX;
                    op.span = Some(SpanId(0x00f0_67aa_0ba9_02b7));
                    op.dur = 300;
                    events.push(Event::Op(op.clone()));
                    op.ok = false;
                    op.error = Some("boom: é".into());
                    op.dur = 70_000;
                    events.push(Event::Op(op));
                }
            }
        }
        // A state op given a detail anyway: the wire has no field for it.
        let mut state = Op::new(OpKind::State, OpAction::Set, Some("k".into()), None);
        state.detail = Some("ignored".into());
        events.push(Event::Op(state));
        for (parent, kind) in [
            (None, SpanKind::Internal),
            (Some(SpanId(3)), SpanKind::Client),
        ] {
            events.push(Event::StepStart(StepStart {
                t: 1 << 40,
                trace,
                span: SpanId(2),
                parent,
                name: "validate-user".into(),
                kind,
                attrs: None,
            }));
        }
        let mut attrs = crate::wire::Attributes::new();
        attrs.insert("plan".into(), "pro".into());
        events.push(Event::StepStart(StepStart {
            attrs: Some(attrs.clone()),
            ..StepStart::default()
        }));
        for (status, name) in [(EndStatus::Completed, None), (EndStatus::Failed, Some("n"))] {
            events.push(Event::StepEnd(StepEnd {
                t: 7,
                trace,
                span: SpanId(2),
                status,
                error: None,
                name: name.map(Into::into),
                attrs: None,
            }));
        }
        events.push(Event::StepEnd(StepEnd {
            error: Some(Box::new(crate::wire::ErrorInfo::new("x"))),
            attrs: Some(attrs.clone()),
            ..StepEnd::default()
        }));
        for level in [
            LogLevel::Trace,
            LogLevel::Debug,
            LogLevel::Info,
            LogLevel::Warn,
            LogLevel::Error,
        ] {
            for span in [None, Some(SpanId(9))] {
                events.push(Event::Log(Log {
                    t: 255,
                    trace,
                    span,
                    level,
                    msg: "a log line".repeat(5),
                    fields: None,
                }));
            }
        }
        events.push(Event::Log(Log {
            t: 256,
            trace,
            span: None,
            level: LogLevel::Info,
            msg: String::new(),
            fields: Some(attrs),
        }));
        events.extend(sample());
        events
    }

    #[test]
    fn the_msgpack_fast_path_writes_what_serde_writes() {
        for event in shapes() {
            let mut fast = Vec::new();
            encode_batch(
                Encoding::Msgpack,
                std::slice::from_ref(&event),
                1 << 20,
                &mut fast,
            )
            .unwrap();
            let mut serde = Vec::new();
            encode_frame(
                Encoding::Msgpack,
                std::slice::from_ref(&event),
                1 << 20,
                &mut serde,
            )
            .unwrap();
            assert_eq!(fast, serde, "{event:?}");
            let back = decode_batch(Encoding::Msgpack, &fast[HEADER_LEN..]).unwrap();
            let expected = match event {
                // The detail a state op cannot carry is not on the wire.
                Event::Op(mut op) if op.kind == OpKind::State => {
                    op.detail = None;
                    Event::Op(op)
                }
                other => other,
            };
            assert_eq!(back, vec![expected]);
        }
        // A whole batch, fast and serde events mixed, and the limit still holds.
        let events = shapes();
        let (mut fast, mut serde) = (Vec::new(), Vec::new());
        encode_batch(Encoding::Msgpack, &events, 1 << 20, &mut fast).unwrap();
        encode_frame(Encoding::Msgpack, &events, 1 << 20, &mut serde).unwrap();
        assert_eq!(fast, serde);
        let mut small = vec![9];
        let err = encode_batch(Encoding::Msgpack, &events, 100, &mut small).unwrap_err();
        assert!(matches!(err, EncodeError::TooLarge { limit: 100, .. }));
        assert_eq!(small, vec![9]);
    }

    /// What serde alone decodes: the reference the fast path must match.
    fn serde_decode(payload: &[u8]) -> Result<Vec<Event>, rmp_serde::decode::Error> {
        rmp_serde::from_slice(payload)
    }

    fn same_as_serde(payload: &[u8]) {
        let fast = decode_batch(Encoding::Msgpack, payload);
        match (&fast, &serde_decode(payload)) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "payload {payload:02x?}"),
            (Err(_), Err(_)) => {}
            (a, b) => panic!("fast {a:?} but serde {b:?} for {payload:02x?}"),
        }
    }

    #[test]
    fn the_msgpack_fast_decoder_reads_what_serde_reads() {
        let mut frame = Vec::new();
        encode_batch(Encoding::Msgpack, &shapes(), 1 << 20, &mut frame).unwrap();
        same_as_serde(&frame[HEADER_LEN..]);
        // Maps in the order given (serde_json's maps sort their keys, which would put `k` last).
        let batch = |maps: &[Vec<(&str, serde_json::Value)>]| {
            let mut out = Vec::new();
            rmp::encode::write_array_len(&mut out, maps.len() as u32).unwrap();
            for map in maps {
                rmp::encode::write_map_len(&mut out, map.len() as u32).unwrap();
                for (key, value) in map {
                    rmp::encode::write_str(&mut out, key).unwrap();
                    let mut ser = rmp_serde::Serializer::new(&mut out);
                    value.serialize(&mut ser).unwrap();
                }
            }
            out
        };
        use serde_json::json;
        let op = |change: &[(&'static str, Option<serde_json::Value>)]| {
            let mut map: Vec<(&str, serde_json::Value)> = vec![
                ("k", json!("op")),
                ("t", json!(5)),
                ("tr", json!("0000000000000000000000000000000a")),
                ("sp", json!("000000000000000b")),
                ("op", json!("emit")),
                ("action", json!("send")),
                ("topic", json!("x")),
            ];
            for (key, value) in change {
                map.retain(|(k, _)| k != key);
                if let Some(value) = value {
                    map.push((key, value.clone()));
                }
            }
            map
        };
        let tr = || json!("0000000000000000000000000000000a");
        let sp = || json!("000000000000000b");
        // `k`, `t` and `tr` first, then `extra` in order (a `t` there makes it repeated).
        let event = |kind: &str, extra: &[(&'static str, serde_json::Value)]| {
            let mut map = vec![("k", json!(kind)), ("t", json!(5)), ("tr", tr())];
            map.extend(extra.iter().cloned());
            map
        };
        // What the fast path reads (defaults included), and maps it must leave to serde: `k`
        // not first, unknown, repeated and nil fields, other types, missing fields, unknown
        // names.
        let cases: Vec<Vec<(&str, serde_json::Value)>> = vec![
            op(&[]),
            op(&[
                ("ok", Some(json!(false))),
                ("error", Some(json!("e"))),
                ("dur", Some(json!(9))),
            ]),
            op(&[("t", Some(json!(u64::MAX)))]),
            op(&[("to", Some(json!("s")))]),
            op(&[
                ("op", Some(json!("state"))),
                ("key", Some(json!("k"))),
                ("id", Some(json!("i"))),
            ]),
            op(&[("future", Some(json!([1, {"a": 2}])))]),
            op(&[("sp", Some(serde_json::Value::Null))]),
            op(&[("t", Some(json!(-1)))]),
            op(&[("t", Some(json!(1.5)))]),
            op(&[("t", Some(json!("5")))]),
            op(&[("ok", Some(json!(1)))]),
            op(&[("action", Some(json!("teleport")))]),
            op(&[("op", Some(json!("teleport")))]),
            op(&[("tr", Some(json!("zz")))]),
            op(&[("t", None)]),
            op(&[("action", None)]),
            vec![
                ("t", json!(5)),
                ("k", json!("log")),
                ("tr", tr()),
                ("msg", json!("m")),
            ],
            event("log", &[("msg", json!("m"))]),
            event("log", &[("msg", json!("m")), ("level", json!("warning"))]),
            event("log", &[("msg", json!("m")), ("fields", json!({"a": 1}))]),
            event("log", &[("t", json!(2)), ("msg", json!("m"))]),
            event("step_end", &[("sp", sp())]),
            event("step_end", &[("sp", sp()), ("status", json!("cancelled"))]),
            event("step_start", &[("sp", sp()), ("name", json!("n"))]),
            event(
                "step_start",
                &[("sp", sp()), ("name", json!("n")), ("kind", json!("weird"))],
            ),
            event("step_start", &[("sp", sp())]),
            vec![("k", json!(7))],
            vec![],
        ];
        let mut fast_ok = 0;
        for case in &cases {
            let payload = batch(std::slice::from_ref(case));
            same_as_serde(&payload);
            fast_ok += usize::from(decode_batch(Encoding::Msgpack, &payload).is_ok());
        }
        assert!(fast_ok >= 10, "too few cases decode: {fast_ok}");
        same_as_serde(&batch(&cases));
    }

    #[test]
    fn every_one_byte_change_decodes_as_serde_decodes_it() {
        let events: Vec<Event> = shapes().into_iter().step_by(7).collect();
        let mut frame = Vec::new();
        encode_batch(Encoding::Msgpack, &events, 1 << 20, &mut frame).unwrap();
        let payload = &frame[HEADER_LEN..];
        for at in 0..payload.len() {
            for value in [
                0x00, 0x01, 0x7f, 0x80, 0x90, 0xa0, 0xa2, 0xc0, 0xc3, 0xcc, 0xd0, 0xd9, 0xff,
            ] {
                let mut changed = payload.to_vec();
                changed[at] = value;
                same_as_serde(&changed);
            }
            same_as_serde(&payload[..at]);
        }
    }

    #[test]
    fn an_event_is_copied_inline() {
        // Every emit copies the event into the queue and out; past 128 bytes each copy is a
        // `memcpy` call, which cost about a third of an op's emit time.
        assert!(
            std::mem::size_of::<Event>() <= 128,
            "{}",
            std::mem::size_of::<Event>()
        );
    }

    #[test]
    fn kind_need_not_come_first() {
        let json = br#"[{"t":1,"tr":"0000000000000000000000000000000a","id":"c1","k":"checkpoint"},{"x":1,"k":"nope"}]"#;
        let events = decode_batch(Encoding::Json, json).unwrap();
        assert_eq!(events[0].kind(), "checkpoint");
        assert_eq!(events[1], Event::Unknown);
        let missing = br#"[{"t":1,"tr":"0000000000000000000000000000000a"}]"#;
        assert!(decode_batch(Encoding::Json, missing).is_err());
    }

    #[test]
    fn escaped_keys_and_values_decode() {
        let json = br#"[{"\u006b":"log","t":1,"tr":"0000000000000000000000000000000a","msg":"caf\u00e9"}]"#;
        let events = decode_batch(Encoding::Json, json).unwrap();
        assert!(matches!(&events[0], Event::Log(l) if l.msg == "café"));
    }

    #[test]
    fn known_kind_with_missing_field_is_malformed() {
        let json = br#"[{"k":"step_start","t":1,"tr":"0000000000000000000000000000000a"}]"#;
        assert!(decode_batch(Encoding::Json, json).is_err());
    }

    #[test]
    fn oversized_frame_is_refused_and_buffer_restored() {
        let mut out = vec![1, 2, 3];
        let err = encode_batch(Encoding::Json, &sample(), 10, &mut out).unwrap_err();
        assert!(matches!(err, EncodeError::TooLarge { limit: 10, .. }));
        assert_eq!(out, vec![1, 2, 3]);
    }
}
