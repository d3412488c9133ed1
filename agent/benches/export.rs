//! OTLP export throughput and cost: the same socket ingest with forwarding off, then on
//! (OTLP/gRPC to a real `otlp-receiver` process on loopback), in one run. Prints ingest events/s,
//! agent-process CPU seconds and RSS for both, exported spans/s, and the on/off ingest ratio.
//!
//! The receiver decodes every request in full and counts its spans (`--count-only`, as a
//! collector with a no-op exporter): one that kept 1.5 M spans would spend the shared CPU on
//! page faults. Each round checks that it received every span exactly once.
//!
//! `cargo build --release -p otlp-receiver && cargo bench -p flowscope-agent --bench export`

#[allow(dead_code)] // shared with the other benches
mod workload;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flowscope_agent::export::{ExportConfig, OtlpProtocol};
use flowscope_agent::{AgentConfig, run_with};
use workload::{EVENTS_PER_TRACE, frames, send_in_parallel};

const TRACES: u64 = 20_000;
const SPANS_PER_TRACE: u64 = 15;
const CONNECTIONS: u64 = 2;
const ROUNDS: usize = 5;

/// (user + system CPU seconds, resident MiB) of this process.
fn cpu_and_rss() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|u| u.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss_kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    (ticks / 100.0, rss_kb / 1024.0)
}

/// Runs one pass; returns the ingest rate (events/s).
fn run(
    runtime: &tokio::runtime::Runtime,
    receiver: Option<(&str, &str)>,
    batches: &[Vec<Vec<u8>>],
) -> f64 {
    let endpoint = receiver.map(|(grpc, _)| grpc);
    let dir = tempfile::tempdir().unwrap();
    let mut config = AgentConfig::for_socket(dir.path().join("export.sock"));
    config.max_traces = std::num::NonZeroUsize::new(TRACES as usize).unwrap();
    config.export = ExportConfig {
        endpoint: endpoint.map(str::to_owned),
        protocol: OtlpProtocol::Grpc,
        queue_spans: 1_000_000,
        queue_bytes: 1 << 30,
        ..ExportConfig::default()
    };
    let agent = runtime.block_on(run_with(config)).expect("agent");
    let total = TRACES * EVENTS_PER_TRACE as u64;
    let (cpu0, _) = cpu_and_rss();
    let started = Instant::now();
    send_in_parallel(&agent.socket_path, batches.to_vec());
    while agent.state.store.read().counters().events_applied < total {
        std::thread::sleep(Duration::from_micros(200));
    }
    let ingest = started.elapsed();
    let label = if endpoint.is_some() {
        "export on "
    } else {
        "export off"
    };
    let export = endpoint.map(|_| {
        let want = TRACES * SPANS_PER_TRACE;
        let m = &agent.state.metrics.export;
        while m.spans_sent.get() + m.spans_dropped.get() < want {
            std::thread::sleep(Duration::from_millis(1));
        }
        (started.elapsed(), m.spans_sent.get(), m.spans_dropped.get())
    });
    let (cpu1, rss) = cpu_and_rss();
    if let Some((_, http)) = receiver {
        let client = reqwest::blocking::Client::new();
        let received: serde_json::Value = client
            .get(format!("{http}/received"))
            .send()
            .and_then(|r| r.json())
            .expect("the receiver's count");
        assert_eq!(
            received["spans"].as_u64(),
            Some(TRACES * SPANS_PER_TRACE),
            "the receiver got every span once"
        );
        client
            .post(format!("{http}/reset"))
            .send()
            .expect("reset the receiver");
    }
    println!(
        "  {label}: ingest {:.2} M events/s, process CPU {:.2} s, RSS {:.0} MiB",
        total as f64 / ingest.as_secs_f64() / 1e6,
        cpu1 - cpu0,
        rss
    );
    if let Some((elapsed, sent, dropped)) = export {
        println!(
            "              exported {sent} spans ({dropped} dropped) in {:.2} s: {:.0} k spans/s end to end",
            elapsed.as_secs_f64(),
            sent as f64 / elapsed.as_secs_f64() / 1e3
        );
    }
    runtime.block_on(agent.shutdown());
    total as f64 / ingest.as_secs_f64()
}

fn main() {
    let exe = std::env::current_exe().unwrap();
    let receiver_bin = exe
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("otlp-receiver");
    if !receiver_bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "-q", "-p", "otlp-receiver"])
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "build otlp-receiver first"
        );
    }
    let mut receiver = Command::new(&receiver_bin)
        .arg("--count-only")
        .stdout(Stdio::piped())
        .spawn()
        .expect("otlp-receiver");
    let mut line = String::new();
    BufReader::new(receiver.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let grpc = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("grpc="))
        .expect("grpc address")
        .to_owned();
    let endpoint = format!("http://{grpc}");
    let http = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http="))
        .map(|a| format!("http://{a}"))
        .expect("http address");

    let runtime = workload::runtime();
    let per_conn = TRACES / CONNECTIONS;
    let batches: Vec<Vec<Vec<u8>>> = (0..CONNECTIONS)
        .map(|c| frames(c * per_conn, per_conn))
        .collect();
    println!(
        "{TRACES} traces ({} events, {} spans) over {CONNECTIONS} connections, OTLP/gRPC to a local receiver:",
        TRACES * EVENTS_PER_TRACE as u64,
        TRACES * SPANS_PER_TRACE
    );
    // Off and on alternate, so a noisy neighbour hits both alike; the median ratio is reported.
    let mut ratios: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let off = run(&runtime, None, &batches);
            let on = run(&runtime, Some((&endpoint, &http)), &batches);
            on / off
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    println!(
        "ingest with export on / off: median {:.0} % of {ROUNDS} rounds (each {}) (goal ≥ 80 %)",
        ratios[ratios.len() / 2] * 100.0,
        ratios
            .iter()
            .map(|r| format!("{:.0} %", r * 100.0))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = receiver.kill();
    let _ = receiver.wait();
}
