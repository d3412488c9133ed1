//! SDK emit cost, side by side with the OpenTelemetry Rust SDK (BatchSpanProcessor with an
//! exporter that discards) in the same run.
//!
//! - `event`: one operation inside an active step (flowscope: one `op` event; OTel: one child span).
//! - `step`: a step with 3 operations (flowscope: 5 events; OTel: a span with 3 child spans).
//!
//! Only the emitting thread is timed. Between timed chunks (smaller than both queues) the
//! queues are drained untimed, so neither side measures its drop path.
//!
//! After criterion's groups, each pair is timed again in alternating rounds and the ratio is
//! printed (`… x cheaper`): the figure to quote.
//!
//! `cargo bench -p flowscope --bench emit`
//!
//! `FLOWSCOPE_BENCH_RATIOS_ONLY=1 cargo bench -p flowscope --bench emit` times only the ratios,
//! in a process criterion has not run in: as an app emitting bursts sees it (criterion's heap
//! keeps memory the allocator would otherwise give back, and its pauses are not an app's).

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use flowscope::{Client, Config};
use opentelemetry::trace::{Span, TraceContextExt, Tracer, TracerProvider};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};

mod common;
use common::{Discard, print_ratio, start_sink, timed_in_chunks};

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("sink.sock");
    start_sink(&socket);
    let client = Client::new(Config::new("bench").socket(&socket));
    let flush = || {
        assert!(
            client.flush(Duration::from_secs(10)),
            "flowscope flush timed out"
        )
    };

    let processor = BatchSpanProcessor::builder(Discard)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(65_536)
                .with_max_export_batch_size(1024)
                .build(),
        )
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .build();
    let tracer = provider.tracer("bench");
    let otel_flush = || {
        let _ = provider.force_flush();
    };

    let trace = client.trace("bench-flow").start();
    let step = trace.step("bench-step").start();
    let otel_root = tracer.start("flow bench-flow");
    let root_cx = opentelemetry::Context::current_with_span(otel_root);
    let otel_step = tracer.start_with_context("bench-step", &root_cx);
    let step_cx = root_cx.with_span(otel_step);

    // Each case once, used by criterion and by the ratio pass below.
    let fs_event = || flowscope::state_get("user.email").record();
    let otel_event = || tracer.start("state.get user.email").end();
    let fs_step = || {
        let _step = flowscope::step("validate-user").start();
        flowscope::state_get("user.email").record();
        flowscope::state_set("validation.result").record();
        flowscope::emit("user.validated").to("save-user").record();
    };
    let otel_step = || {
        tracer.in_span("validate-user", |_cx| {
            tracer.start("state.get user.email").end();
            tracer.start("state.set validation.result").end();
            tracer.start("emit user.validated").end();
        })
    };

    let ratios_only = std::env::var_os("FLOWSCOPE_BENCH_RATIOS_ONLY").is_some();
    let mut group = c.benchmark_group("event");
    if !ratios_only {
        group.bench_function("flowscope", |b| {
            b.iter_custom(|iters| timed_in_chunks(iters, fs_event, flush))
        });
        group.bench_function("opentelemetry", |b| {
            let _attached = step_cx.clone().attach();
            b.iter_custom(|iters| timed_in_chunks(iters, otel_event, otel_flush))
        });
    }
    group.finish();
    drop(step);

    let mut group = c.benchmark_group("step_with_3_ops");
    if !ratios_only {
        group.bench_function("flowscope", |b| {
            b.iter_custom(|iters| timed_in_chunks(iters, fs_step, flush))
        });
        group.bench_function("opentelemetry", |b| {
            let _attached = root_cx.clone().attach();
            b.iter_custom(|iters| timed_in_chunks(iters, otel_step, otel_flush))
        });
    }
    group.finish();

    // The ratios, each pair timed in alternating rounds.
    {
        let _attached = root_cx.clone().attach();
        let step = flowscope::step("bench-step").start();
        let _step_cx = step_cx.clone().attach();
        print_ratio(
            "event (one op in a step | one nested span)",
            200_000,
            (fs_event, flush),
            (otel_event, otel_flush),
        );
        drop(step);
    }
    {
        let _attached = root_cx.clone().attach();
        print_ratio(
            "step + 3 ops (5 events | 4 nested spans)",
            50_000,
            (fs_step, flush),
            (otel_step, otel_flush),
        );
    }
    trace.end();
    flush();
    let stats = client.stats();
    println!(
        "flowscope client after the run: sent {} dropped {}",
        stats.sent, stats.dropped
    );
    let _ = provider.shutdown();
}

criterion_group!(benches, bench);
criterion_main!(benches);
