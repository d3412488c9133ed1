//! Persistence, each figure next to its peer in the same run:
//! - ingest over the real Unix socket with `--data-dir` on vs off (ratio);
//! - restart time with 10,000 and 100,000 stored traces (open + replay until the store is full);
//! - journal bytes per stored op.
//!
//! `cargo bench -p flowscope-agent --bench persist`

#[allow(dead_code)] // shared with the other benches
mod workload;

use std::sync::Arc;
use std::time::{Duration, Instant};

use flowscope_agent::{AgentConfig, run_with};
use workload::{EVENTS_PER_TRACE, OPS_PER_TRACE, frames, send_in_parallel};

fn config(dir: &std::path::Path, data: Option<&std::path::Path>, max_traces: usize) -> AgentConfig {
    let mut config = AgentConfig::for_socket(dir.join("bench.sock"));
    config.max_traces = std::num::NonZeroUsize::new(max_traces).unwrap();
    config.persist.dir = data.map(std::path::Path::to_owned);
    config.persist.max_stored_traces = Some(1_000_000);
    config
}

/// Events/s ingesting `traces` traces over one connection; with `data`, persistence on (and the
/// journal committed before the clock stops).
fn ingest(runtime: &tokio::runtime::Runtime, traces: u64, data: Option<&std::path::Path>) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let agent = runtime
        .block_on(run_with(config(dir.path(), data, 10_000)))
        .expect("agent");
    let work = vec![frames(0, traces)];
    let total = traces * EVENTS_PER_TRACE as u64;
    let started = Instant::now();
    send_in_parallel(&agent.socket_path, work);
    let state = Arc::clone(&agent.state);
    while state.store.read().counters().events_applied < total {
        std::thread::sleep(Duration::from_micros(200));
    }
    if let Some(persist) = state.persist.get() {
        assert!(persist.flush(Duration::from_secs(60)));
    }
    let elapsed = started.elapsed();
    runtime.block_on(agent.shutdown());
    total as f64 / elapsed.as_secs_f64()
}

/// Fills a journal with `traces` traces; returns its directory and the journal's bytes.
fn fill(runtime: &tokio::runtime::Runtime, traces: u64) -> (tempfile::TempDir, u64) {
    let data = tempfile::tempdir().unwrap();
    ingest(runtime, traces, Some(data.path()));
    let bytes = std::fs::read_dir(data.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("flowscope.db"))
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum();
    (data, bytes)
}

/// Seconds from start to a store holding `traces` restored traces.
fn restart(runtime: &tokio::runtime::Runtime, data: &std::path::Path, traces: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let agent = runtime
        .block_on(run_with(config(dir.path(), Some(data), traces)))
        .expect("agent");
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(agent.state.store.read().len(), traces, "not all restored");
    runtime.block_on(agent.shutdown());
    elapsed
}

fn main() {
    let runtime = workload::runtime();
    let traces = 20_000u64;
    println!(
        "ingest of {traces} traces x {EVENTS_PER_TRACE} events, one connection, persistence off vs on (same run):"
    );
    let mut off = Vec::new();
    let mut on = Vec::new();
    for _ in 0..3 {
        off.push(ingest(&runtime, traces, None));
        let data = tempfile::tempdir().unwrap();
        on.push(ingest(&runtime, traces, Some(data.path())));
    }
    let (off, on) = (workload::median(off), workload::median(on));
    println!("  off: median {:.2} M events/s", off / 1e6);
    println!(
        "  on:  median {:.2} M events/s (journal committed before the clock stops)",
        on / 1e6
    );
    println!("  on / off: {:.0}%", 100.0 * on / off);

    for stored in [10_000u64, 100_000] {
        let (data, bytes) = fill(&runtime, stored);
        let ops = stored * OPS_PER_TRACE as u64;
        let runs: Vec<f64> = (0..3)
            .map(|_| restart(&runtime, data.path(), stored as usize))
            .collect();
        println!(
            "restart with {stored} stored traces: median {:.2} s to a full store; journal {:.1} MiB = {:.0} B per op ({:.0} B per event)",
            workload::median(runs),
            bytes as f64 / (1 << 20) as f64,
            bytes as f64 / ops as f64,
            bytes as f64 / (stored * EVENTS_PER_TRACE as u64) as f64,
        );
    }
}
