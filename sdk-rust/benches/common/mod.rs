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
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
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

/// Times `ours` and `peer` (each `iters` calls, drained between chunks) in alternating rounds and
/// prints the medians and their ratio: the figure to quote, measured side by side.
pub fn print_ratio(
    case: &str,
    iters: u64,
    (mut ours, mut ours_drain): (impl FnMut(), impl FnMut()),
    (mut peer, mut peer_drain): (impl FnMut(), impl FnMut()),
) {
    let mut a = Vec::new();
    let mut b = Vec::new();
    for _ in 0..7 {
        a.push(timed_in_chunks(iters, &mut ours, &mut ours_drain).as_nanos() as f64 / iters as f64);
        b.push(timed_in_chunks(iters, &mut peer, &mut peer_drain).as_nanos() as f64 / iters as f64);
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (a, b) = (a[3], b[3]);
    println!(
        "{case}: flowscope {a:.0} ns, OpenTelemetry {b:.0} ns: {:.2}x cheaper (median of 7 alternating rounds)",
        b / a
    );
}
