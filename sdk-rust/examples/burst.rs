//! A burst with default settings: 200,000 steps × 3 ops (1,000,000 events) in traces of 100 steps,
//! as fast as one thread can emit, to the agent at `FLOWSCOPE_SOCKET`. Prints the client's
//! counters as JSON (`scripts/burst.sh` runs it beside the Python and Node loops).
//!
//! `cargo run --release -p flowscope --example burst`

use std::time::{Duration, Instant};

fn main() {
    let client = flowscope::init(flowscope::Config::from_env("burst-rust"));
    let started = Instant::now();
    for t in 0..2_000 {
        let run = client.trace("burst").attribute("round", t).start();
        for s in 0..100 {
            let step = run.step(format!("step-{}", s % 10)).start();
            flowscope::state_get("user.email").record();
            flowscope::state_set("user.status").record();
            flowscope::emit("user.updated").record();
            step.end();
        }
        run.end();
    }
    let emitted = started.elapsed();
    let flushed = client.flush(Duration::from_secs(120));
    let stats = client.stats();
    println!(
        "{{\"sdk\":\"rust\",\"events\":{},\"sent\":{},\"dropped\":{},\"emitSeconds\":{:.3},\"totalSeconds\":{:.3},\"flushed\":{flushed}}}",
        stats.enqueued + stats.dropped,
        stats.sent,
        stats.dropped,
        emitted.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
