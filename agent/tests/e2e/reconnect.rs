//! The SDK never blocks: with no agent it drops and counts; when the agent comes (back) it
//! reconnects and later events arrive.

use std::time::{Duration, Instant};

use flowscope::{Client, Config};

use crate::support::{Agent, flush};

#[test]
fn no_agent_means_fast_emits_and_counted_drops_then_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("later.sock");
    let client = Client::new(Config::new("late-agent").socket(&socket).queue_capacity(64));

    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..10_000 {
        let t = Instant::now();
        let trace = client.trace(format!("lost-{i}")).start();
        trace.end();
        slowest = slowest.max(t.elapsed());
    }
    let total = started.elapsed();
    assert!(
        total < Duration::from_secs(2),
        "10k traces took {total:?} with no agent"
    );
    assert!(
        slowest < Duration::from_millis(250),
        "an emit blocked for {slowest:?}"
    );
    let stats = client.stats();
    assert!(
        stats.dropped >= 20_000 - 64 - 1024,
        "drops not counted: {stats:?}"
    );
    assert!(!stats.connected);
    assert!(
        !client.flush(Duration::from_millis(50)),
        "flush cannot succeed without an agent"
    );

    let agent = Agent::start_at(&socket, &[]);
    // The writer reconnects by itself and delivers what it held; then the queue has room again.
    assert!(
        client.flush(Duration::from_secs(5)),
        "no reconnect: {:?}",
        client.stats()
    );
    assert!(client.stats().connected);
    let trace = client.trace("arrives").start();
    let id = trace.id();
    trace.end();
    assert!(
        client.flush(Duration::from_secs(5)),
        "no reconnect: {:?}",
        client.stats()
    );
    agent.wait_trace(id, |t| t["status"] == "completed");
    assert!(client.stats().connected);
}

#[test]
fn agent_restart_is_survived() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("restart.sock");
    let mut first = Agent::start_at(&socket, &[]);
    let client = Client::new(Config::new("restarts").socket(&socket));
    let trace = client.trace("before-restart").start();
    let before = trace.id();
    trace.end();
    flush(&client);
    first.wait_trace(before, |_| true);
    first.kill();

    let second = Agent::start_at(&socket, &[]);
    // The first writes after the restart may hit the dead connection; keep sending until one lands.
    let deadline = Instant::now() + Duration::from_secs(5);
    let landed = loop {
        let trace = client.trace("after-restart").start();
        let id = trace.id();
        trace.end();
        client.flush(Duration::from_secs(1));
        if second.get(&format!("/api/traces/{id}")).0 == 200 {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "never reconnected: {:?}",
            client.stats()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    second.wait_trace(landed, |t| t["status"] == "completed");
    assert!(client.stats().reconnects >= 1, "{:?}", client.stats());
}
