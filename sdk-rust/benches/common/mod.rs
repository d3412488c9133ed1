//! What the SDK benches share: a socket sink that discards frames, an OTel exporter that
//! discards spans, and chunked timing that keeps both queues from overflowing.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use flowscope::wire::{self, AgentReply, Encoding};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// Iterations per timed chunk (fits both queues).
pub const CHUNK: u64 = 2_000;

/// A socket peer that completes the handshake and discards every frame.
pub fn start_sink(path: &std::path::Path) {
    let listener = UnixListener::bind(path).expect("bind sink");
    let named = || std::thread::Builder::new().name(SINK_THREAD.into());
    let _ = named().spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let _ = named().spawn(move || {
                let mut header = [0u8; 4];
                if stream.read_exact(&mut header).is_err() {
                    return;
                }
                let mut hello = vec![0u8; wire::frame_len(header)];
                let _ = stream.read_exact(&mut hello);
                let mut reply = Vec::new();
                let accept = AgentReply::accept("sink", wire::DEFAULT_MAX_FRAME as u32);
                wire::encode_frame(Encoding::Json, &accept, 1 << 16, &mut reply).unwrap();
                let _ = stream.write_all(&reply);
                let mut buf = vec![0u8; 1 << 20];
                while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
}

#[derive(Debug)]
pub struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        std::hint::black_box(batch);
        Ok(())
    }
}

pub fn timed_in_chunks(iters: u64, mut body: impl FnMut(), mut drain: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(CHUNK);
        let started = Instant::now();
        for _ in 0..n {
            body();
        }
        total += started.elapsed();
        drain();
        left -= n;
    }
    total
}

/// The sink's threads: they stand for the agent, so [`app_cpu_ns`] leaves them out.
const SINK_THREAD: &str = "sink";

/// CPU time used so far by this process's threads, except the sink's (Linux `schedstat`, ns):
/// the emitting thread plus each SDK's background thread (flowscope's writer, OpenTelemetry's
/// batch processor).
pub fn app_cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|comm| comm.trim() != SINK_THREAD)
        })
        .filter_map(|task| {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            stat.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum()
}

/// Times `ours` and `peer` (each `iters` calls, drained between chunks) in alternating rounds and
/// prints the medians and their ratio: the figure to quote, measured side by side. Also prints
/// the CPU each side's threads used per call, background threads included: flowscope's writer
/// encodes and sends every event, while the OpenTelemetry exporter here discards its spans.
pub fn print_ratio(
    case: &str,
    iters: u64,
    (mut ours, mut ours_drain): (impl FnMut(), impl FnMut()),
    (mut peer, mut peer_drain): (impl FnMut(), impl FnMut()),
) {
    let (mut a, mut b, mut cpu_a, mut cpu_b) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let per_call = |d: Duration| d.as_nanos() as f64 / iters as f64;
    for _ in 0..7 {
        let cpu = app_cpu_ns();
        a.push(per_call(timed_in_chunks(iters, &mut ours, &mut ours_drain)));
        let between = app_cpu_ns();
        b.push(per_call(timed_in_chunks(iters, &mut peer, &mut peer_drain)));
        cpu_a.push((between - cpu) as f64 / iters as f64);
        cpu_b.push((app_cpu_ns() - between) as f64 / iters as f64);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (a, b) = (median(&mut a), median(&mut b));
    println!(
        "{case}: flowscope {a:.0} ns, OpenTelemetry {b:.0} ns: {:.2}x cheaper (median of 7 alternating rounds)",
        b / a
    );
    let (cpu_a, cpu_b) = (median(&mut cpu_a), median(&mut cpu_b));
    println!(
        "  CPU per call, all app threads (flowscope's writer encodes and sends; the OTel exporter discards): flowscope {cpu_a:.0} ns, OpenTelemetry {cpu_b:.0} ns: {:.2}x",
        cpu_b / cpu_a
    );
}
