//! Bursts: the SDK queue is bounded by bytes; what overflows is counted per trace and reported,
//! so the agent marks the trace `incomplete` (API, OTLP) instead of showing a partial trace as a
//! whole one; `Overflow::Block` trades speed for completeness.

use std::time::Duration;

use flowscope::{Config, Overflow};

use crate::support::{Agent, flush};

/// Emits one trace of `ops` state ops as fast as possible; returns its id.
fn burst(client: &flowscope::Client, ops: usize) -> flowscope::wire::TraceId {
    let run = client.trace("burst").start();
    let id = run.id();
    {
        let step = run.step("hot-loop").start();
        for i in 0..ops {
            flowscope::state_set(format!("key-{i}")).record();
        }
        step.end();
    }
    run.end();
    id
}

#[test]
fn overflow_is_counted_per_trace_and_marks_the_trace_incomplete() {
    let agent = Agent::start(&[]);
    // Room for a few dozen events only: a tight loop must overflow.
    let client = flowscope::Client::new(
        Config::new("burst")
            .socket(&agent.socket)
            .queue_bytes(16 * 1024),
    );
    let id = burst(&client, 20_000);
    flush(&client);
    let dropped = client.stats().dropped;
    assert!(
        dropped > 0,
        "the loop did not overflow a 16 KiB queue: {:?}",
        client.stats()
    );
    let trace = agent.wait_trace(id, |t| t["droppedEvents"].as_u64() == Some(dropped));
    assert_eq!(trace["incomplete"], true);
    // Whatever arrived is still shown: the step and some of its ops.
    assert_eq!(trace["steps"].as_array().map(Vec::len), Some(1));

    // A trace without drops carries neither field.
    let clean = {
        let run = client.trace("calm").start();
        let id = run.id();
        run.end();
        id
    };
    flush(&client);
    let calm = agent.wait_trace(clean, |t| t["status"] == "completed");
    assert!(
        calm.get("incomplete").is_none() && calm.get("droppedEvents").is_none(),
        "{calm}"
    );
}

#[test]
fn block_overflow_waits_for_room_and_loses_nothing() {
    let agent = Agent::start(&[]);
    let client = flowscope::Client::new(
        Config::new("burst")
            .socket(&agent.socket)
            .queue_bytes(16 * 1024)
            .overflow(Overflow::Block(Duration::from_secs(10))),
    );
    let id = burst(&client, 20_000);
    flush(&client);
    assert_eq!(client.stats().dropped, 0, "{:?}", client.stats());
    let trace = agent.wait_trace(id, |t| t["status"] == "completed");
    assert_eq!(trace["steps"][0]["operations"]["state"], 20_000);
    assert!(trace.get("incomplete").is_none());
}

#[test]
fn overflow_parses_from_text() {
    assert_eq!(Overflow::parse("drop"), Some(Overflow::Drop));
    assert_eq!(
        Overflow::parse(" Block "),
        Some(Overflow::Block(Overflow::DEFAULT_WAIT))
    );
    assert_eq!(
        Overflow::parse("block:250"),
        Some(Overflow::Block(Duration::from_millis(250)))
    );
    assert_eq!(Overflow::parse("wait"), None);
}

#[test]
fn a_burst_past_the_channel_spills_within_the_byte_bound_and_keeps_its_order() {
    // No agent yet: nothing drains, so 150,000 ops must overflow the fixed 65,536-event channel
    // into the spill (default 256 MiB bound) — then the agent comes and everything arrives.
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("late.sock");
    let client = flowscope::Client::new(Config::new("burst").socket(&socket));
    let id = burst(&client, 150_000);
    let queued = client.stats();
    assert_eq!(queued.dropped, 0, "{queued:?}");
    assert!(
        queued.queued > 65_536,
        "the channel alone held it: {queued:?}"
    );
    let agent = Agent::start_at(&socket, &["--max-events-per-trace", "300000"]);
    assert!(
        client.flush(Duration::from_secs(60)),
        "{:?}",
        client.stats()
    );
    let trace = agent.wait_trace(id, |t| t["status"] == "completed");
    let ops = trace["steps"][0]["ops"].as_array().unwrap();
    assert_eq!(ops.len(), 150_000);
    // In emit order: the spilled events went out after the channel's, never before.
    for (i, op) in ops.iter().enumerate().step_by(997) {
        assert_eq!(op["key"], format!("key-{i}"), "op {i} out of order");
    }
}
