//! Shared bench workload: registration-style traces (trace_start, 3 steps with 11 ops in all,
//! trace_end = 19 events each) with unique ids.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use flowscope::wire::{self, Encoding};
use flowscope::wire::{
    EndStatus, EntryType, Event, Op, OpAction, OpKind, SpanId, StepEnd, StepStart, TraceEnd,
    TraceId, TraceStart,
};

/// Events per generated trace.
pub const EVENTS_PER_TRACE: usize = 19;
/// Ops per generated trace.
pub const OPS_PER_TRACE: usize = 11;
/// Steps per generated trace.
pub const STEPS_PER_TRACE: usize = 3;

const FLOWS: [&str; 4] = ["user-registration", "checkout", "chat-message", "report"];
const STEPS: [[&str; 3]; 4] = [
    ["validate-user", "save-user", "send-email"],
    ["validate-cart", "charge", "ship"],
    ["get-context", "call-llm", "send-reply"],
    ["query", "render", "upload"],
];

fn op(
    t: u64,
    trace: TraceId,
    span: SpanId,
    kind: OpKind,
    action: OpAction,
    subject: &str,
) -> Event {
    Event::Op(Op {
        t,
        trace,
        span: Some(span),
        kind,
        action,
        subject: Some(subject.to_owned().into()),
        detail: match kind {
            OpKind::State => None,
            OpKind::Emit => Some("next-step".into()),
            OpKind::Stream => Some("item-42".into()),
        },
        dur: 1_500_000,
        ok: true,
        error: None,
    })
}

/// The events of trace number `n`; `with_ops = false` leaves the ops out (for marginal costs).
pub fn trace_events(n: u64, with_ops: bool) -> Vec<Event> {
    let trace = TraceId(0x1000_0000_0000_0000_0000_0000_0000_0000 | n as u128);
    let f = (n % 4) as usize;
    let t0 = 1_703_943_052_000_000_000 + n * 1_000_000;
    let mut events = vec![Event::TraceStart(Box::new(TraceStart {
        t: t0,
        trace,
        flow: FLOWS[f].to_owned(),
        entry: EntryType::Api,
        step: Some(STEPS[f][0].to_owned()),
        cid: n.is_multiple_of(10).then(|| format!("group-{}", n / 100)),
        parent: None,
        attrs: None,
        ..TraceStart::default()
    }))];
    let ops: [&[(OpKind, OpAction, &str)]; 3] = [
        &[
            (OpKind::State, OpAction::Get, "user.email"),
            (OpKind::State, OpAction::Set, "validation.status"),
            (OpKind::State, OpAction::Set, "validation.result"),
            (OpKind::Emit, OpAction::Send, "user.validated"),
        ],
        &[
            (OpKind::State, OpAction::Get, "validation.result"),
            (OpKind::Stream, OpAction::Set, "users"),
            (OpKind::State, OpAction::Set, "user.saved"),
            (OpKind::Emit, OpAction::Send, "user.saved"),
        ],
        &[
            (OpKind::State, OpAction::Get, "user.saved"),
            (OpKind::Stream, OpAction::Set, "email-queue"),
            (OpKind::State, OpAction::Set, "email.queued"),
        ],
    ];
    for (s, step_ops) in ops.iter().enumerate() {
        let span = SpanId(n << 8 | (s as u64 + 1));
        let ts = t0 + s as u64 * 100_000_000;
        events.push(Event::StepStart(StepStart {
            t: ts,
            trace,
            span,
            parent: None,
            name: STEPS[f][s].into(),
            ..StepStart::default()
        }));
        if with_ops {
            for (i, (kind, action, subject)) in step_ops.iter().enumerate() {
                events.push(op(
                    ts + i as u64 * 10_000_000,
                    trace,
                    span,
                    *kind,
                    *action,
                    subject,
                ));
            }
        }
        events.push(Event::StepEnd(StepEnd {
            t: ts + 95_000_000,
            trace,
            span,
            status: EndStatus::Completed,
            error: None,
            name: Some(STEPS[f][s].into()),
            attrs: None,
        }));
    }
    events.push(Event::TraceEnd(TraceEnd {
        t: t0 + 325_000_000,
        trace,
        status: EndStatus::Completed,
        error: None,
        span: None,
    }));
    events
}

/// Pre-encoded frames (1024 events each) for `traces` traces starting at number `first`.
pub fn frames(first: u64, traces: u64) -> Vec<Vec<u8>> {
    let events: Vec<_> = (first..first + traces)
        .flat_map(|n| trace_events(n, true))
        .collect();
    events
        .chunks(1024)
        .map(|chunk| {
            let mut out = Vec::new();
            wire::encode_batch(Encoding::Msgpack, chunk, wire::DEFAULT_MAX_FRAME, &mut out)
                .expect("encode");
            out
        })
        .collect()
}

/// Connects to the agent socket and completes the msgpack handshake.
pub fn connect(socket: &std::path::Path) -> UnixStream {
    let mut stream = UnixStream::connect(socket).expect("connect");
    let mut hello = Vec::new();
    let body =
        serde_json::json!({"v": 1, "encoding": "msgpack", "sdk": "bench", "service": "bench"});
    wire::encode_frame(Encoding::Json, &body, 65536, &mut hello).unwrap();
    stream.write_all(&hello).unwrap();
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).unwrap();
    let mut reply = vec![0u8; wire::frame_len(header)];
    stream.read_exact(&mut reply).unwrap();
    stream
}

/// Writes each entry of `work` (a connection's frames) over its own connection, all in parallel;
/// returns once everything is written.
pub fn send_in_parallel(socket: &std::path::Path, work: Vec<Vec<Vec<u8>>>) {
    let writers: Vec<_> = work
        .into_iter()
        .map(|frames| {
            let socket = socket.to_owned();
            std::thread::spawn(move || {
                let mut stream = connect(&socket);
                for frame in frames {
                    stream.write_all(&frame).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
}

/// The runtime every bench runs its in-process agent on: two workers, as this machine has cores.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The median of a few runs.
pub fn median(mut runs: Vec<f64>) -> f64 {
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}
