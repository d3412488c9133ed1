//! OTLP ingest next to socket ingest, same run, same traces: each trace is one root span and four
//! child spans — as OTLP/HTTP protobuf requests (500 spans each, one keep-alive connection) and as
//! the equivalent flowscope events over the Unix socket (msgpack frames, one connection). Prints
//! spans/s for both and their ratio.
//!
//! `cargo bench -p flowscope-agent --bench otlp_ingest`

#[allow(dead_code)] // shared with the other benches
mod workload;

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowscope::wire::{
    self, Encoding, EndStatus, Event, SpanId, SpanKind, StepEnd, StepStart, TraceEnd, TraceId,
    TraceStart,
};
use flowscope_agent::{AgentConfig, run_with};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span};
use prost::Message as _;

const CHILDREN: u64 = 4;
const SPANS_PER_TRACE: u64 = CHILDREN + 1;
const TRACES_PER_REQUEST: u64 = 100;
const T0: u64 = 1_700_000_000_000_000_000;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

fn otlp_trace(n: u64, out: &mut Vec<Span>) {
    let trace = (u128::from(n) + 1).to_be_bytes().to_vec();
    let root = (n << 8) | 1;
    let start = T0 + n * 1_000_000;
    out.push(Span {
        trace_id: trace.clone(),
        span_id: root.to_be_bytes().to_vec(),
        name: "POST /orders".into(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 900_000,
        attributes: vec![kv("http.request.method", "POST")],
        ..Span::default()
    });
    for c in 0..CHILDREN {
        out.push(Span {
            trace_id: trace.clone(),
            span_id: (root + 1 + c).to_be_bytes().to_vec(),
            parent_span_id: root.to_be_bytes().to_vec(),
            name: format!("step-{c}"),
            kind: span::SpanKind::Internal as i32,
            start_time_unix_nano: start + 10_000 + c * 100_000,
            end_time_unix_nano: start + 90_000 + c * 100_000,
            attributes: vec![kv("app.step", "x")],
            ..Span::default()
        });
    }
}

fn otlp_requests(traces: u64) -> Vec<Vec<u8>> {
    (0..traces / TRACES_PER_REQUEST)
        .map(|r| {
            let mut spans = Vec::new();
            for n in r * TRACES_PER_REQUEST..(r + 1) * TRACES_PER_REQUEST {
                otlp_trace(n, &mut spans);
            }
            ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![kv("service.name", "bench")],
                        ..Resource::default()
                    }),
                    scope_spans: vec![ScopeSpans {
                        spans,
                        ..ScopeSpans::default()
                    }],
                    ..ResourceSpans::default()
                }],
            }
            .encode_to_vec()
        })
        .collect()
}

fn socket_trace(n: u64, out: &mut Vec<Event>) {
    let trace = TraceId(u128::from(n) + 1);
    let root = (n << 8) | 1;
    let start = T0 + n * 1_000_000;
    out.push(Event::TraceStart(Box::new(TraceStart {
        t: start,
        trace,
        flow: "POST /orders".into(),
        span: Some(SpanId(root)),
        ..TraceStart::default()
    })));
    for c in 0..CHILDREN {
        let span = SpanId(root + 1 + c);
        let mut attrs = wire::Attributes::new();
        attrs.insert("app.step".into(), "x".into());
        out.push(Event::StepStart(StepStart {
            t: start + 10_000 + c * 100_000,
            trace,
            span,
            parent: Some(SpanId(root)),
            name: format!("step-{c}").into(),
            kind: SpanKind::Internal,
            attrs: Some(attrs),
        }));
        out.push(Event::StepEnd(StepEnd {
            t: start + 90_000 + c * 100_000,
            trace,
            span,
            status: EndStatus::Completed,
            ..StepEnd::default()
        }));
    }
    out.push(Event::TraceEnd(TraceEnd {
        t: start + 900_000,
        trace,
        span: Some(SpanId(root)),
        ..TraceEnd::default()
    }));
}

fn socket_frames(traces: u64) -> Vec<Vec<u8>> {
    (0..traces / TRACES_PER_REQUEST)
        .map(|r| {
            let mut events = Vec::new();
            for n in r * TRACES_PER_REQUEST..(r + 1) * TRACES_PER_REQUEST {
                socket_trace(n, &mut events);
            }
            let mut frame = Vec::new();
            wire::encode_batch(Encoding::Msgpack, &events, usize::MAX, &mut frame).unwrap();
            frame
        })
        .collect()
}

fn agent(runtime: &tokio::runtime::Runtime) -> (flowscope_agent::RunningAgent, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = AgentConfig::for_socket(dir.path().join("bench.sock"));
    config.max_traces = std::num::NonZeroUsize::new(10_000).unwrap();
    (runtime.block_on(run_with(config)).expect("agent"), dir)
}

fn wait_applied(agent: &flowscope_agent::RunningAgent, events: u64) {
    let state = Arc::clone(&agent.state);
    while state.store.read().counters().events_applied < events {
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Spans/s through `POST /v1/traces`.
fn otlp_run(runtime: &tokio::runtime::Runtime, traces: u64) -> f64 {
    let (agent, _dir) = agent(runtime);
    let requests = otlp_requests(traces);
    let client = reqwest::blocking::Client::new();
    let url = format!("http://{}/v1/traces", agent.http_addr);
    let started = Instant::now();
    for body in requests {
        let response = client
            .post(&url)
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .unwrap();
        assert!(response.status().is_success());
    }
    wait_applied(&agent, traces * (2 + 2 * CHILDREN));
    let elapsed = started.elapsed();
    runtime.block_on(agent.shutdown());
    (traces * SPANS_PER_TRACE) as f64 / elapsed.as_secs_f64()
}

/// Spans/s through the Unix socket (the same traces as flowscope events).
fn socket_run(runtime: &tokio::runtime::Runtime, traces: u64) -> f64 {
    let (agent, _dir) = agent(runtime);
    let frames = socket_frames(traces);
    let started = Instant::now();
    let mut stream = workload::connect(&agent.socket_path);
    for frame in frames {
        stream.write_all(&frame).unwrap();
    }
    wait_applied(&agent, traces * (2 + 2 * CHILDREN));
    let elapsed = started.elapsed();
    drop(stream);
    runtime.block_on(agent.shutdown());
    (traces * SPANS_PER_TRACE) as f64 / elapsed.as_secs_f64()
}

fn main() {
    let runtime = workload::runtime();
    let traces = 20_000;
    println!(
        "ingest of {traces} traces x {SPANS_PER_TRACE} spans, one connection, {TRACES_PER_REQUEST} traces per request/frame:"
    );
    let mut otlp = Vec::new();
    let mut socket = Vec::new();
    for _ in 0..3 {
        otlp.push(otlp_run(&runtime, traces));
        socket.push(socket_run(&runtime, traces));
    }
    let (otlp, socket) = (workload::median(otlp), workload::median(socket));
    println!("  OTLP/HTTP protobuf: median {:.0} k spans/s", otlp / 1e3);
    println!(
        "  Unix socket msgpack: median {:.0} k spans/s",
        socket / 1e3
    );
    println!("  OTLP / socket: {:.2}x", otlp / socket);
}
