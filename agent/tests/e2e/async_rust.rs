//! The async Rust SDK against a real agent: steps that survive `.await` across tokio worker
//! threads, cancellation and `Err` outcomes, the `tracing` layer, and the floxide-shaped example.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tracing::Instrument;
use tracing_subscriber::prelude::*;

use crate::support::{Agent, flush};

#[path = "../../../sdk-rust/examples/floxide_workflow.rs"]
#[allow(dead_code)]
mod floxide_workflow;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

fn step<'a>(trace: &'a Value, name: &str) -> &'a Value {
    trace["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {trace}"))
}

/// The SDK queues each thread's events apart; a step handed from thread to thread must still
/// arrive in the order its operations happened.
#[test]
fn a_step_handed_between_threads_keeps_its_operations_in_order() {
    let agent = Agent::start(&[]);
    let client = agent.client();
    let run = client.trace("handoff").start();
    let id = run.id();
    let guard = run.step("ping-pong").start();
    let ctx = guard.context().expect("a live step");
    const OPS: usize = 3000;
    let (to_b, at_b) = std::sync::mpsc::channel::<usize>();
    let (to_a, at_a) = std::sync::mpsc::channel::<usize>();
    let play = |inbox: std::sync::mpsc::Receiver<usize>, outbox: std::sync::mpsc::Sender<usize>| {
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            let _attached = ctx.attach();
            while let Ok(i) = inbox.recv() {
                if i == OPS {
                    let _ = outbox.send(i);
                    return;
                }
                flowscope::state_set(format!("op-{i}")).record();
                let _ = outbox.send(i + 1);
            }
        })
    };
    let a = play(at_a, to_b.clone());
    let b = play(at_b, to_a.clone());
    to_a.send(0).unwrap();
    a.join().unwrap();
    b.join().unwrap();
    guard.end();
    run.end();
    flush(&client);
    let trace = agent.wait_trace(id, |t| t["status"] == "completed");
    let keys: Vec<String> = step(&trace, "ping-pong")["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap().to_owned())
        .collect();
    let want: Vec<String> = (0..OPS).map(|i| format!("op-{i}")).collect();
    assert_eq!(keys.len(), OPS);
    let first_swap = keys.iter().zip(&want).position(|(got, want)| got != want);
    assert_eq!(first_swap, None, "operations out of order");
}

/// Where the kernel keeps time with the cycle counter, ops and steps leave the SDK stamped with
/// it and its writer turns each stamp into wall-clock time: the agent must get times between
/// the wall-clock reads around each op, in order, across the writer's naps and sleeps.
#[test]
fn stamped_ops_and_steps_arrive_in_wall_clock_time_and_in_order() {
    let agent = Agent::start(&[]);
    let client = agent.client();
    // The API gives times in milliseconds after the trace's start (a wall-clock read).
    let trace_before = flowscope::now_nanos();
    let run = client.trace("stamps").start();
    let trace_after = flowscope::now_nanos();
    let id = run.id();
    let mut windows = Vec::new();
    let step_before = flowscope::now_nanos();
    let guard = run.step("stamped").start();
    let step_after = flowscope::now_nanos();
    for i in 0..120u64 {
        let before = flowscope::now_nanos();
        flowscope::state_get(format!("k{i}")).record();
        windows.push((before, flowscope::now_nanos()));
        // Pauses inside the writer's nap window and past it.
        if i % 40 == 39 {
            std::thread::sleep(Duration::from_millis(if i < 40 { 3 } else { 60 }));
        }
    }
    guard.end();
    run.end();
    flush(&client);
    let trace = agent.wait_trace(id, |t| t["status"] == "completed");
    let stamped = step(&trace, "stamped");
    let ops = stamped["ops"].as_array().unwrap();
    assert_eq!(ops.len(), windows.len());
    // Microseconds in the API, and the wall clock's reads around a stamp can be a microsecond
    // off the counter's.
    const SLACK: f64 = 5_000.0;
    // A time after the trace's start lies within [before, after] when it could have been read
    // between them, whenever in its window the trace's own start was read.
    let within_by = |slack: f64, rel_ms: f64, before: u64, after: u64| {
        let rel = rel_ms * 1e6;
        rel + slack >= before as f64 - trace_after as f64
            && rel <= after as f64 - trace_before as f64 + slack
    };
    let within = |rel_ms, before, after| within_by(SLACK, rel_ms, before, after);
    let mut last = f64::MIN;
    for (op, &(before, after)) in ops.iter().zip(&windows) {
        let t = op["startTime"]
            .as_f64()
            .unwrap_or_else(|| panic!("op time: {op}"));
        assert!(
            within(t, before, after),
            "{t} ms after the trace's start, read between {} and {} ms: {op}",
            (before as f64 - trace_after as f64) / 1e6,
            (after as f64 - trace_before as f64) / 1e6
        );
        assert!(t >= last, "op times out of order: {t} after {last}");
        last = t;
    }
    let start = stamped["startTime"]
        .as_f64()
        .unwrap_or_else(|| panic!("{stamped}"));
    // Steps are given in whole milliseconds.
    assert!(
        within_by(1e6, start, step_before, step_after),
        "step start {start}: {stamped}"
    );
}

#[test]
fn steps_keep_their_operations_across_awaits_on_many_worker_threads() {
    let agent = Agent::start(&[]);
    let client = agent.client();
    let threads = Arc::new(Mutex::new(HashSet::new()));
    let ids = runtime().block_on(async {
        let tasks: Vec<_> = (0..10)
            .map(|n| {
                let (client, threads) = (client.clone(), Arc::clone(&threads));
                tokio::spawn(async move {
                    let id = flowscope::new_trace_id();
                    client
                        .trace(format!("job-{n}"))
                        .trace_id(id)
                        .instrument(async {
                            flowscope::step("io")
                                .instrument(async {
                                    for i in 0..20 {
                                        flowscope::state_get(format!("k{n}.{i}")).record();
                                        threads.lock().unwrap().insert(std::thread::current().id());
                                        tokio::time::sleep(Duration::from_millis(1)).await;
                                        tokio::task::yield_now().await;
                                    }
                                })
                                .await;
                            flowscope::step("after")
                                .instrument(async {
                                    flowscope::emit("done").record();
                                })
                                .await;
                        })
                        .await;
                    (n, id)
                })
            })
            .collect();
        let mut ids = Vec::new();
        for task in tasks {
            ids.push(task.await.unwrap());
        }
        ids
    });
    flush(&client);
    for (n, id) in ids {
        let trace = agent.wait_trace(id, |t| t["status"] == "completed");
        let io = step(&trace, "io");
        let keys: Vec<String> = io["ops"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["key"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            keys,
            (0..20).map(|i| format!("k{n}.{i}")).collect::<Vec<_>>()
        );
        assert_eq!(step(&trace, "after")["ops"][0]["topic"], "done");
        assert_eq!(
            trace["ops"].as_array().unwrap().len(),
            0,
            "nothing leaked outside the steps"
        );
    }
    eprintln!(
        "steps were polled on {} worker threads",
        threads.lock().unwrap().len()
    );
    // Nothing stays attached to the runtime's threads afterwards.
    assert!(flowscope::SpanContext::current().is_none());
}

#[test]
fn a_dropped_future_fails_its_step_and_an_err_fails_it_with_the_message() {
    let agent = Agent::start(&[]);
    let client = agent.client();
    let id = flowscope::new_trace_id();
    runtime().block_on(client.trace("outcomes").trace_id(id).instrument(async {
        let never = flowscope::step("stuck").instrument(std::future::pending::<()>());
        assert!(
            tokio::time::timeout(Duration::from_millis(10), never)
                .await
                .is_err()
        );
        let failed: Result<(), String> = flowscope::step("fallible")
            .instrument_result(async { Err("quota exceeded".to_owned()) })
            .await;
        assert!(failed.is_err());
    }));
    flush(&client);
    let trace = agent.wait_trace(id, |t| t["status"] == "completed");
    let stuck = step(&trace, "stuck");
    assert_eq!(
        (stuck["status"].as_str(), stuck["error"]["type"].as_str()),
        (Some("failed"), Some("cancelled"))
    );
    let fallible = step(&trace, "fallible");
    assert_eq!(fallible["error"]["message"], "quota exceeded");
}

#[test]
fn the_tracing_layer_turns_spans_into_steps_and_events_into_logs() {
    let agent = Agent::start(&[]);
    let client = agent.client();
    let subscriber =
        tracing_subscriber::registry().with(flowscope::FlowscopeLayer::new(client.clone()));
    let id = tracing::subscriber::with_default(subscriber, || {
        runtime().block_on(
            async {
                let id = flowscope::SpanContext::current().map(|c| c.trace_id);
                async {
                    tracing::info!(sku = "s-1", qty = 2u64, "reserving");
                    flowscope::state_set("inventory.s-1").record();
                    tokio::task::yield_now().await;
                }
                .instrument(tracing::info_span!("reserve"))
                .await;
                async {
                    tracing::warn!("card declined once");
                    tracing::error!("payment failed");
                }
                .instrument(tracing::info_span!("charge"))
                .await;
                id
            }
            .instrument(tracing::info_span!(
                "order",
                flow = "orders",
                tenant = "acme"
            )),
        )
    })
    .expect("the root span started a trace");
    flush(&client);
    let trace = agent.wait_trace(id, |t| t["status"] == "completed");
    assert_eq!(trace["flowName"], "orders");
    assert_eq!(trace["attributes"]["tenant"], "acme");
    let reserve = step(&trace, "reserve");
    assert_eq!(reserve["status"], "completed");
    let log = &reserve["events"][0];
    assert_eq!(
        (log["message"].as_str(), log["level"].as_str()),
        (Some("reserving"), Some("info"))
    );
    assert_eq!(
        (log["fields"]["sku"].as_str(), log["fields"]["qty"].as_u64()),
        (Some("s-1"), Some(2))
    );
    assert_eq!(
        reserve["ops"][0]["key"], "inventory.s-1",
        "flowscope calls inside a span land in its step"
    );
    let charge = step(&trace, "charge");
    assert_eq!(charge["status"], "failed");
    assert_eq!(charge["error"]["message"], "payment failed");
    let levels: Vec<&str> = charge["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["level"].as_str().unwrap())
        .collect();
    assert_eq!(levels, vec!["warn", "error"]);
}

#[test]
fn the_floxide_shaped_workflow_records_nodes_retries_checkpoints_and_transitions() {
    let agent = Agent::start(&[]);
    let client = agent.client();
    let runs = runtime().block_on(async {
        let mut runs = Vec::new();
        for order in ["o-1", "bad-2"] {
            let client = client.clone();
            runs.push(
                tokio::spawn(
                    async move { floxide_workflow::run_workflow(&client, order, 2).await },
                )
                .await
                .unwrap(),
            );
        }
        runs
    });
    flush(&client);
    let (ok_id, ok) = &runs[0];
    assert!(ok.is_ok());
    let trace = agent.wait_trace(ok_id, |t| t["status"] == "completed");
    assert_eq!(trace["flowName"], "order-workflow");
    let names: Vec<&str> = trace["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["fetch", "validate", "persist"]);
    let fetch = step(&trace, "fetch");
    let retries: Vec<u64> = fetch["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "retry")
        .map(|e| e["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(retries, vec![1, 2]);
    assert_eq!(fetch["ops"].as_array().unwrap().len(), 3);
    let validate = step(&trace, "validate");
    let kinds: Vec<&str> = validate["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["transition", "checkpoint"]);
    assert_eq!(
        step(&trace, "persist")["ops"][1]["topic"],
        "order.persisted"
    );

    let (bad_id, bad) = &runs[1];
    assert!(bad.is_err());
    let failed = agent.wait_trace(bad_id, |t| t["status"] == "failed");
    assert_eq!(step(&failed, "validate")["status"], "failed");
    assert_eq!(failed["error"]["message"], "order bad-2 is invalid");
    assert!(
        failed["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["name"] != "persist")
    );
}
