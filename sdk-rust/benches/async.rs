//! The async path, side by side in the same run: a step with 3 operations and one `.await`
//! (a yield, so the context is re-attached on the next poll), run on a tokio runtime:
//!
//! - `flowscope_instrument`: `flowscope::step(..).instrument(async { 3 ops; yield })`;
//! - `flowscope_tracing_layer`: a `tracing` span + 3 events through [`flowscope::FlowscopeLayer`];
//! - `tracing_opentelemetry`: the same `tracing` span + 3 events through `tracing-opentelemetry`
//!   into the OpenTelemetry SDK (BatchSpanProcessor, an exporter that discards).
//!
//! `cargo bench -p flowscope --features tracing --bench async`

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use flowscope::{Client, Config};
use opentelemetry::trace::TracerProvider;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use tracing::Instrument;
use tracing_subscriber::prelude::*;

mod common;
use common::{Discard, start_sink, timed_in_chunks};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime")
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("sink.sock");
    start_sink(&socket);
    let client = Client::new(Config::new("bench").socket(&socket));
    let flush = || assert!(client.flush(Duration::from_secs(10)), "flush timed out");
    let rt = runtime();

    let provider = SdkTracerProvider::builder()
        .with_span_processor(
            BatchSpanProcessor::builder(Discard)
                .with_batch_config(
                    BatchConfigBuilder::default()
                        .with_max_queue_size(65_536)
                        .with_max_export_batch_size(1024)
                        .build(),
                )
                .build(),
        )
        .build();
    let otel_flush = || {
        let _ = provider.force_flush();
    };

    let mut group = c.benchmark_group("async_step_with_3_ops");
    group.bench_function("flowscope_instrument", |b| {
        let trace = client.trace("bench-flow").start();
        b.iter_custom(|iters| {
            timed_in_chunks(
                iters,
                || {
                    rt.block_on(flowscope::step("validate-user").instrument(async {
                        flowscope::state_get("user.email").record();
                        tokio::task::yield_now().await;
                        flowscope::state_set("validation.result").record();
                        flowscope::emit("user.validated").to("save-user").record();
                    }))
                },
                flush,
            )
        });
        trace.end();
    });
    group.bench_function("flowscope_tracing_layer", |b| {
        let subscriber =
            tracing_subscriber::registry().with(flowscope::FlowscopeLayer::new(client.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let root = tracing::info_span!("bench-flow");
            let _entered = root.enter();
            b.iter_custom(|iters| timed_in_chunks(iters, || rt.block_on(traced_step()), flush));
        });
    });
    group.bench_function("tracing_opentelemetry", |b| {
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"));
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let root = tracing::info_span!("bench-flow");
            let _entered = root.enter();
            b.iter_custom(|iters| {
                timed_in_chunks(iters, || rt.block_on(traced_step()), otel_flush)
            });
        });
    });
    group.finish();
    flush();
    let stats = client.stats();
    println!(
        "flowscope client after the run: sent {} dropped {}",
        stats.sent, stats.dropped
    );
    let _ = provider.shutdown();
}

/// A `tracing` span with 3 events and one yield.
async fn traced_step() {
    async {
        tracing::info!(key = "user.email", "state.get");
        tokio::task::yield_now().await;
        tracing::info!(key = "validation.result", "state.set");
        tracing::info!(topic = "user.validated", "emit");
    }
    .instrument(tracing::info_span!("validate-user"))
    .await
}

criterion_group!(benches, bench);
criterion_main!(benches);
