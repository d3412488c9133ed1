//! A floxide-shaped async workflow (seed 004: workflow/node started, completed, failed, retry
//! attempts, checkpoints, transitions) instrumented with flowscope's async API, on a
//! multi-threaded tokio runtime. Each node is a step that survives its `.await`s.
//!
//! `FLOWSCOPE_SOCKET=/path/to/agent.sock cargo run -p flowscope --example floxide_workflow`

use std::time::Duration;

use flowscope::{Client, Config, EntryType, TraceId};

/// What a node can fail with.
#[derive(Debug)]
pub struct NodeError(pub String);

impl std::fmt::Display for NodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Fetches an order; the first `flaky` attempts time out (retried with backoff).
async fn fetch(order: &str, flaky: u32) -> Result<String, NodeError> {
    for attempt in 1.. {
        tokio::time::sleep(Duration::from_millis(2)).await;
        flowscope::state_get(format!("orders.{order}")).record();
        if attempt > flaky {
            return Ok(format!("order {order}"));
        }
        flowscope::retry(attempt, Some("timeout"), Some(Duration::from_millis(1)));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    unreachable!()
}

/// Validates; an order id starting with `bad` fails the node.
async fn validate(order: &str) -> Result<(), NodeError> {
    tokio::task::yield_now().await;
    flowscope::transition("fetched", "validated", Some("validate"));
    if order.starts_with("bad") {
        return Err(NodeError(format!("order {order} is invalid")));
    }
    flowscope::checkpoint(format!("{order}/validated"));
    Ok(())
}

/// Persists the result.
async fn persist(order: &str) -> Result<(), NodeError> {
    tokio::time::sleep(Duration::from_millis(1)).await;
    flowscope::state_set(format!("orders.{order}.status")).record();
    flowscope::emit("order.persisted").to("notify").record();
    flowscope::transition("validated", "persisted", Some("persist"));
    Ok(())
}

/// Runs the workflow for `order` as one trace: three node steps; a failed node fails the trace.
pub async fn run_workflow(
    client: &Client,
    order: &str,
    flaky: u32,
) -> (TraceId, Result<(), NodeError>) {
    let id = flowscope::new_trace_id();
    let outcome = client
        .trace("order-workflow")
        .trace_id(id)
        .entry(EntryType::Event, "fetch")
        .attribute("orderId", order)
        .instrument_result(async {
            flowscope::step("fetch")
                .instrument_result(fetch(order, flaky))
                .await?;
            flowscope::step("validate")
                .instrument_result(validate(order))
                .await?;
            flowscope::step("persist")
                .instrument_result(persist(order))
                .await
        })
        .await;
    (id, outcome)
}

fn main() {
    let client = Client::new(Config::from_env("floxide-example"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    runtime.block_on(async {
        let runs = ["o-1", "o-2", "bad-3"].map(|order| {
            let client = client.clone();
            tokio::spawn(async move { run_workflow(&client, order, 1).await })
        });
        for run in runs {
            let (id, outcome) = run.await.expect("task");
            println!(
                "{id} {}",
                if outcome.is_ok() {
                    "completed"
                } else {
                    "failed"
                }
            );
        }
    });
    client.flush(Duration::from_secs(2));
}
