//! Ingest throughput over the real Unix socket into a real in-process agent (1, 2 and 8
//! connections), next to a raw Unix-socket sink that only discards the same bytes, plus memory
//! per stored step and operation (counting allocator).
//!
//! `cargo bench -p flowscope-agent --bench ingest` (`-- memory` measures memory only, `-- breakdown`
//! decode and build+store on one thread only)

#![allow(unsafe_code)] // the counting allocator below

#[allow(dead_code)] // shared with the other benches
mod workload;

use std::alloc::{GlobalAlloc, Layout};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use flowscope::wire::{self, Encoding};
use flowscope_agent::store::Store;
use flowscope_agent::{AgentConfig, run_with};
use workload::{
    EVENTS_PER_TRACE, OPS_PER_TRACE, STEPS_PER_TRACE, frames, send_in_parallel, trace_events,
};

/// Counts live heap bytes while [`COUNTING`] is set (only for the memory figures: the shared
/// counter is an atomic operation per allocation, on a cache line every thread writes, which the
/// agent does not pay outside this bench).
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

fn count(bytes: isize) {
    if COUNTING.load(Ordering::Relaxed) {
        LIVE.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// What the agent binary allocates with (see `src/main.rs`), so throughput here is the binary's.
static INNER: mimalloc::MiMalloc = mimalloc::MiMalloc;

// SAFETY: forwards to the agent's allocator and only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        unsafe { INNER.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        unsafe { INNER.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        unsafe { INNER.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The peer: the same frames written to a Unix socket whose reader only discards them (one
/// thread per connection, 64 KiB reads). Returns bytes/s.
fn raw_sink_run(connections: u64, traces_per_conn: u64) -> f64 {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raw.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let work: Vec<Vec<Vec<u8>>> = (0..connections)
        .map(|c| frames(c * traces_per_conn, traces_per_conn))
        .collect();
    let bytes: usize = work.iter().flatten().map(Vec::len).sum();
    let started = Instant::now();
    let readers = std::thread::spawn(move || {
        let readers: Vec<_> = (0..connections)
            .map(|_| {
                let (mut stream, _) = listener.accept().unwrap();
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    while stream.read(&mut buf).unwrap_or(0) > 0 {}
                })
            })
            .collect();
        readers.into_iter().for_each(|r| r.join().unwrap());
    });
    let writers: Vec<_> = work
        .into_iter()
        .map(|frames| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut stream = std::os::unix::net::UnixStream::connect(path).unwrap();
                for frame in frames {
                    stream.write_all(&frame).unwrap();
                }
            })
        })
        .collect();
    writers.into_iter().for_each(|w| w.join().unwrap());
    readers.join().unwrap();
    bytes as f64 / started.elapsed().as_secs_f64()
}

fn ingest_run(runtime: &tokio::runtime::Runtime, connections: u64, traces_per_conn: u64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let mut config = AgentConfig::for_socket(dir.path().join("bench.sock"));
    config.max_traces = std::num::NonZeroUsize::new(10_000).unwrap();
    let agent = runtime.block_on(run_with(config)).expect("agent");
    let work: Vec<Vec<Vec<u8>>> = (0..connections)
        .map(|c| frames(c * traces_per_conn, traces_per_conn))
        .collect();
    let total = connections * traces_per_conn * EVENTS_PER_TRACE as u64;
    let started = Instant::now();
    send_in_parallel(&agent.socket_path, work);
    let state = Arc::clone(&agent.state);
    while state.store.read().counters().events_applied < total {
        std::thread::sleep(Duration::from_micros(200));
    }
    let elapsed = started.elapsed();
    runtime.block_on(agent.shutdown());
    total as f64 / elapsed.as_secs_f64()
}

fn store_bytes(traces: u64, with_ops: bool) -> isize {
    // Frees of memory allocated while not counting would be counted; nothing is freed here that
    // was allocated before (the batches below are made after counting starts).
    COUNTING.store(true, Ordering::Relaxed);
    let service = Arc::new(flowscope_agent::trace::Origin::named("bench"));
    // Measured from before the events exist: apply consumes them, moving their strings into the store.
    let before = LIVE.load(Ordering::Relaxed);
    let batches: Vec<_> = (0..traces).map(|n| trace_events(n, with_ops)).collect();
    let mut store = Store::new(std::num::NonZeroUsize::new(traces as usize).unwrap());
    for events in batches {
        store.apply_batch(&service, events, 0);
    }
    let after = LIVE.load(Ordering::Relaxed);
    drop(store);
    // `batches` was consumed (moved into apply_batch), so `after - before` is the store alone.
    after - before
}

/// Decode and build+store rates on one thread (no socket), to see where ingest time goes. Each
/// frame is decoded and applied in turn, as a connection does, so both stages run on warm memory.
fn breakdown() {
    let frames = frames(0, 50_000);
    let total = (50_000 * EVENTS_PER_TRACE) as f64;
    let origin = Arc::new(flowscope_agent::trace::Origin::named("bench"));
    let mut store = Store::new(std::num::NonZeroUsize::new(10_000).unwrap());
    let (mut decode, mut apply) = (Duration::ZERO, Duration::ZERO);
    for frame in &frames {
        let started = Instant::now();
        let batch = wire::decode_batch(Encoding::Msgpack, &frame[4..]).expect("decode");
        let decoded = Instant::now();
        store.apply_batch(&origin, batch, 0);
        apply += decoded.elapsed();
        decode += decoded - started;
    }
    println!(
        "  breakdown, one thread: decode {:.2} M events/s, build+store {:.2} M events/s",
        total / decode.as_secs_f64() / 1e6,
        total / apply.as_secs_f64() / 1e6
    );
}

fn main() {
    if std::env::args().skip(1).any(|arg| arg == "memory") {
        memory();
        return;
    }
    if std::env::args().skip(1).any(|arg| arg == "breakdown") {
        breakdown();
        return;
    }
    let runtime = workload::runtime();
    println!(
        "ingest over the Unix socket (msgpack, 1024-event frames, {EVENTS_PER_TRACE}-event traces, 10k-trace LRU):"
    );
    // Bytes per event of these frames, to set events/s against the raw sink's bytes/s.
    let sample = frames(0, 1_000);
    let bytes_per_event =
        sample.iter().map(Vec::len).sum::<usize>() as f64 / (1_000 * EVENTS_PER_TRACE) as f64;
    for (connections, traces) in [(1u64, 60_000u64), (2, 30_000), (8, 7_500)] {
        // Agent and raw sink alternate, so a noisy neighbour hits both alike.
        let (mut rates, mut raw): (Vec<f64>, Vec<f64>) = (0..3)
            .map(|_| {
                (
                    ingest_run(&runtime, connections, traces),
                    raw_sink_run(connections, traces),
                )
            })
            .unzip();
        rates.sort_by(f64::total_cmp);
        raw.sort_by(f64::total_cmp);
        println!(
            "  {connections} connection(s): median {:.2} M events/s = {:.0} MB/s (runs: {}); raw Unix-socket sink {:.0} MB/s; agent = {:.1} % of raw",
            rates[1] / 1e6,
            rates[1] * bytes_per_event / 1e6,
            rates
                .iter()
                .map(|r| format!("{:.2}", r / 1e6))
                .collect::<Vec<_>>()
                .join(", "),
            raw[1] / 1e6,
            rates[1] * bytes_per_event / raw[1] * 100.0
        );
    }

    breakdown();
    memory();
}

/// Memory per stored operation, everything counted.
fn memory() {
    // The workload: 60k traces × 3 steps × 3 ops, all kept.
    let traces = 60_000u64;
    let full = store_bytes(traces, true);
    let no_ops = store_bytes(traces, false);
    let ops = traces * OPS_PER_TRACE as u64;
    let steps = traces * STEPS_PER_TRACE as u64;
    println!("memory, {traces} stored traces ({steps} steps, {ops} ops):");
    println!(
        "  store total:      {:.1} MiB ({} B per trace)",
        full as f64 / 1048576.0,
        full / traces as isize
    );
    println!("  marginal per op:  {} B", (full - no_ops) / ops as isize);
    println!(
        "  total per op:     {} B (everything / ops; goal ≤ 200 B)",
        full / ops as isize
    );
}
