//! API latency over real HTTP with 10,000 traces stored: `GET /api/traces/{id}`, indexed and
//! text-search list queries. Prints p50/p99 per query.
//!
//! `cargo bench -p flowscope-agent --bench query`

#[allow(dead_code)] // shared with the ingest bench, which uses the rest
mod workload;

use std::sync::Arc;
use std::time::{Duration, Instant};

use flowscope::wire::TraceId;
use flowscope_agent::{AgentConfig, run_with};
use workload::trace_events;

const TRACES: u64 = 10_000;
const REQUESTS: usize = 2_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn main() {
    let runtime = workload::runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut config = AgentConfig::for_socket(dir.path().join("query.sock"));
    config.max_traces = std::num::NonZeroUsize::new(TRACES as usize).unwrap();
    let agent = runtime.block_on(run_with(config)).expect("agent");
    {
        let service = Arc::new(flowscope_agent::trace::Origin::named("bench"));
        let mut store = agent.state.store.write();
        for n in 0..TRACES {
            store.apply_batch(&service, trace_events(n, true), 0);
        }
        assert_eq!(store.len(), TRACES as usize);
    }
    let base = format!("http://{}", agent.http_addr);
    let client = reqwest::blocking::Client::new();
    let id = |n: u64| TraceId(0x1000_0000_0000_0000_0000_0000_0000_0000 | n as u128).to_string();
    type PathFor<'a> = Box<dyn Fn(usize) -> String + 'a>;
    let queries: Vec<(&str, PathFor<'_>)> = vec![
        (
            "GET /api/traces/{id}",
            Box::new(|i| format!("/api/traces/{}", id((i as u64 * 7919) % TRACES))),
        ),
        (
            "GET /motia/traces/{id}",
            Box::new(|i| format!("/motia/traces/{}", id((i as u64 * 7919) % TRACES))),
        ),
        ("list, no filter (50)", Box::new(|_| "/api/traces".into())),
        (
            "list flow+status (50)",
            Box::new(|_| "/api/traces?flow=checkout&status=completed".into()),
        ),
        (
            "list stateKey+step (50)",
            Box::new(|_| "/api/traces?stateKey=user.saved&step=charge".into()),
        ),
        (
            "list correlationId",
            Box::new(|i| format!("/api/traces?correlationId=group-{}", i % 100)),
        ),
        (
            "list q= text scan (50)",
            Box::new(|_| "/api/traces?q=reply".into()),
        ),
        (
            "list q= no match (full scan)",
            Box::new(|_| "/api/traces?q=no-such-text".into()),
        ),
        (
            "list flow, limit 1000",
            Box::new(|_| "/api/traces?flow=report&limit=1000".into()),
        ),
    ];
    println!("API latency over HTTP, {TRACES} traces stored, {REQUESTS} sequential requests each:");
    for (name, path) in &queries {
        for i in 0..50 {
            client
                .get(format!("{base}{}", path(i)))
                .send()
                .unwrap()
                .bytes()
                .unwrap();
        }
        let mut times: Vec<Duration> = (0..REQUESTS)
            .map(|i| {
                let t = Instant::now();
                let resp = client.get(format!("{base}{}", path(i))).send().unwrap();
                assert!(resp.status().is_success(), "{name}: {}", resp.status());
                resp.bytes().unwrap();
                t.elapsed()
            })
            .collect();
        times.sort();
        println!(
            "  {name:<28} p50 {:>7.3} ms   p99 {:>7.3} ms",
            percentile(&times, 0.50).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3
        );
    }
    runtime.block_on(agent.shutdown());
}
