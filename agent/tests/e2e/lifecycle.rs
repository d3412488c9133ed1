//! Store bound, trace groups and gaps, abandoned traces, out-of-order events.

use std::time::Duration;

use flowscope::EntryType;
use serde_json::json;

use crate::support::{Agent, RawConn, at, flush, ids};

fn simple_trace(
    client: &flowscope::Client,
    flow: &str,
    start_ms: u64,
    end_ms: u64,
    cid: Option<&str>,
) -> String {
    let mut builder = client
        .trace(flow)
        .entry(EntryType::Api, "only")
        .start_time(at(start_ms));
    if let Some(cid) = cid {
        builder = builder.correlation_id(cid);
    }
    let trace = builder.start();
    let step = trace.step("only").start_time(at(start_ms)).start();
    flowscope::state_set(format!("{flow}.key"))
        .at(at(start_ms))
        .record();
    step.end_at(at(end_ms));
    let id = trace.id().to_string();
    trace.end_at(at(end_ms));
    id
}

#[test]
fn lru_evicts_the_least_recently_active_trace_and_its_index_entries() {
    let agent = Agent::start(&["--max-traces", "5"]);
    let client = agent.client();
    let sent: Vec<String> = (0..8)
        .map(|i| {
            simple_trace(
                &client,
                &format!("flow-{i}"),
                i * 100,
                i * 100 + 10,
                Some("g"),
            )
        })
        .collect();
    flush(&client);
    agent.wait_for("/healthz", |_, b| b["store"]["tracesCreated"] == 8);
    let list = ids(&agent.get_ok("/api/traces"));
    let want: Vec<String> = sent[3..].iter().rev().cloned().collect();
    assert_eq!(list, want);
    for gone in &sent[..3] {
        let (status, body) = agent.get(&format!("/api/traces/{gone}"));
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    // Indexes forget evicted traces too.
    assert_eq!(
        ids(&agent.get_ok("/api/traces?flow=flow-1")),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&agent.get_ok("/api/traces?stateKey=flow-2.key")),
        Vec::<String>::new()
    );
    assert_eq!(agent.get_ok("/api/groups/g")["metadata"]["totalTraces"], 5);
    let health = agent.get_ok("/healthz");
    assert_eq!(health["store"]["tracesEvicted"], 3);
    assert_eq!(health["store"]["traces"], 5);

    // Activity on an old trace protects it: touch the oldest survivor, add one more.
    let survivor: flowscope::TraceId = sent[3].parse().unwrap();
    client.emit(flowscope::wire::Event::Log(flowscope::wire::Log {
        t: flowscope::now_nanos(),
        trace: survivor,
        span: None,
        level: flowscope::LogLevel::Info,
        msg: "late log".into(),
        fields: None,
    }));
    let newest = simple_trace(&client, "flow-new", 5_000, 5_010, None);
    flush(&client);
    agent.wait_trace(&newest, |_| true);
    assert_eq!(agent.get(&format!("/api/traces/{}", sent[3])).0, 200);
    assert_eq!(agent.get(&format!("/api/traces/{}", sent[4])).0, 404);
}

#[test]
fn groups_order_traces_and_measure_gaps() {
    let agent = Agent::start(&[]);
    let client = agent.client();
    // Three messages of one chat thread: 0–150 ms, 45 s later 45 150–45 350, 10 s later 55 350–55 400.
    let a = simple_trace(&client, "chat", 0, 150, Some("thread-1"));
    let c = simple_trace(&client, "chat", 55_350, 55_400, None);
    let b = simple_trace(&client, "chat", 45_150, 45_350, Some("thread-1"));
    // The third joins by a manual correlate, after the fact.
    let c_id: flowscope::TraceId = c.parse().unwrap();
    client.emit(flowscope::wire::Event::Correlate(
        flowscope::wire::Correlate {
            t: flowscope::system_time_nanos(at(55_400)),
            trace: c_id,
            cid: "thread-1".into(),
            method: flowscope::CorrelationMethod::Manual,
            name: Some("Chat Thread".into()),
        },
    ));
    simple_trace(&client, "chat", 0, 10, Some("thread-2"));
    flush(&client);
    let group = agent.wait_for("/api/groups/thread-1", |s, b| {
        s == 200 && b["metadata"]["totalTraces"] == 3
    });
    let members: Vec<&str> = group["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(members, [a.as_str(), b.as_str(), c.as_str()]);
    assert_eq!(group["name"], "Chat Thread");
    assert_eq!(group["status"], "completed");
    assert_eq!(group["totalDuration"], 55_400);
    assert_eq!(
        group["metadata"],
        json!({"totalTraces": 3, "completedTraces": 3, "activeTraces": 0, "totalSteps": 3,
               "averageStepDuration": 133, "gapsCount": 2, "totalGapDuration": 55_000,
               "llmCalls": 0, "totalTokens": 0, "totalCost": 0.0, "errorCount": 0})
    );
    assert_eq!(
        group["gaps"],
        json!([
            {"afterTraceId": a, "beforeTraceId": b, "duration": 45_000},
            {"afterTraceId": b, "beforeTraceId": c, "duration": 10_000},
        ])
    );
    let third = agent.get_ok(&format!("/api/traces/{c}"));
    assert_eq!(third["metadata"]["traceIndex"], 2);
    assert_eq!(third["metadata"]["isChildTrace"], true);
    assert_eq!(third["correlationMethod"], "manual");
    let groups = agent.get_ok("/api/groups");
    let listed: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        ["thread-1", "thread-2"],
        "most recently active first"
    );
}

#[test]
fn a_trace_started_by_an_emit_joins_its_parents_group() {
    let agent = Agent::start(&[]);
    let client = agent.client();
    let parent = client.trace("orders").correlation_id("order-7").start();
    let parent_id = parent.id();
    parent.end();
    let child = client
        .trace("orders")
        .entry(EntryType::Event, "ship")
        .parent_trace(parent_id)
        .start();
    let child_id = child.id();
    child.end();
    flush(&client);
    let got = agent.wait_trace(child_id, |t| t["status"] == "completed");
    assert_eq!(got["correlationId"], "order-7");
    assert_eq!(got["correlationMethod"], "event");
    assert_eq!(got["parentTraceId"], parent_id.to_string());
    assert_eq!(got["metadata"]["isChildTrace"], true);
}

#[test]
fn silent_running_traces_fail_as_abandoned() {
    let agent = Agent::start(&["--abandon-after", "1s"]);
    let client = agent.client();
    let trace = client.trace("stuck").start();
    let id = trace.id();
    let step = trace.step("waits-forever").start();
    flush(&client);
    std::mem::forget(step);
    std::mem::forget(trace);
    let running = agent.wait_trace(id, |_| true);
    assert_eq!(running["status"], "running");
    let failed = agent.wait_trace(id, |t| t["status"] == "failed");
    assert_eq!(failed["failureReason"], "abandoned");
    assert_eq!(failed["steps"][0]["status"], "failed");
    assert_eq!(failed["steps"][0]["error"]["code"], "abandoned");
    assert_eq!(agent.get_ok("/healthz")["store"]["tracesAbandoned"], 1);
    std::thread::sleep(Duration::from_millis(50));
}

#[test]
fn out_of_order_events_are_merged() {
    let agent = Agent::start(&[]);
    let mut conn = RawConn::handshake(&agent, "json");
    let tr = "0af7651916cd43dd8448eb211c80319c";
    let t = |ms: u64| 1_703_943_052_000_000_000u64 + ms * 1_000_000;
    // End before start, op before its step, nested step, trace_start last.
    conn.send_frame(format!(r#"[
        {{"k":"step_end","t":{},"tr":"{tr}","sp":"00000000000000a1","status":"failed","name":"charge","error":{{"message":"card declined","code":"E_CARD","stack":"at charge()"}}}},
        {{"k":"op","t":{},"tr":"{tr}","sp":"00000000000000a1","op":"state","action":"get","key":"card","dur":1000000}},
        {{"k":"step_start","t":{},"tr":"{tr}","sp":"00000000000000b2","ps":"00000000000000a1","name":"fraud-check"}}
    ]"#, t(40), t(12), t(15)).as_bytes());
    conn.send_frame(
        format!(
            r#"[
        {{"k":"step_end","t":{},"tr":"{tr}","sp":"00000000000000b2"}},
        {{"k":"step_start","t":{},"tr":"{tr}","sp":"00000000000000a1","name":"charge"}},
        {{"k":"trace_end","t":{},"tr":"{tr}","status":"failed"}},
        {{"k":"trace_start","t":{},"tr":"{tr}","flow":"payments","entry":"event","step":"charge"}}
    ]"#,
            t(25),
            t(10),
            t(50),
            t(0)
        )
        .as_bytes(),
    );
    let got = agent.wait_trace(tr, |t| t["flowName"] == "payments");
    assert_eq!(got["status"], "failed");
    assert_eq!(got["startTime"], 1_703_943_052_000u64);
    assert_eq!(got["duration"], 50);
    assert_eq!(
        got["entryPoint"],
        json!({"type": "event", "stepName": "charge"})
    );
    let steps = got["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0]["name"], "charge");
    assert_eq!(steps[0]["status"], "failed");
    assert_eq!(
        (
            steps[0]["startTime"].as_u64(),
            steps[0]["duration"].as_u64()
        ),
        (Some(10), Some(30))
    );
    assert_eq!(
        steps[0]["error"],
        json!({"message": "card declined", "code": "E_CARD", "stack": "at charge()"})
    );
    assert_eq!(
        steps[0]["operations"],
        json!({"state": 1, "emit": 0, "stream": 0})
    );
    assert_eq!(steps[1]["name"], "fraud-check");
    assert_eq!(steps[1]["parentId"], "00000000000000a1");
    assert_eq!(
        (
            steps[1]["startTime"].as_u64(),
            steps[1]["duration"].as_u64()
        ),
        (Some(15), Some(10))
    );
    assert_eq!(
        got["metadata"],
        json!({"totalSteps": 2, "completedSteps": 1, "errorCount": 1})
    );
    let tree = agent.get_ok(&format!("/api/executions/{tr}/trace"));
    assert_eq!(tree["root"]["status"], "ERROR");
    assert_eq!(tree["root"]["children"][0]["name"], "charge");
    assert_eq!(
        tree["root"]["children"][0]["children"][0]["name"],
        "fraud-check"
    );
}

#[test]
fn guards_dropped_by_a_panic_end_their_step_and_trace_as_failed() {
    let agent = Agent::start(&[]);
    let client = agent.client();
    let worker = client.clone();
    let id = std::thread::spawn(move || {
        let trace = worker.trace("panics").start();
        let id = trace.id();
        trace.step("before").start().end();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _trace = trace;
            let _step = flowscope::step("unwinds").start();
            panic!("boom");
        }));
        assert!(outcome.is_err());
        id
    })
    .join()
    .unwrap();
    flush(&client);
    let trace = agent.wait_trace(id, |t| t["status"] != "running");
    assert_eq!(trace["status"], "failed", "{trace}");
    let steps = trace["steps"].as_array().unwrap();
    let status = |name: &str| {
        let step = steps.iter().find(|s| s["name"] == name).unwrap();
        (step["status"].clone(), step["error"].clone())
    };
    assert_eq!(status("before").0, "completed");
    let (unwound, error) = status("unwinds");
    assert_eq!(unwound, "failed", "{trace}");
    assert_eq!(error["message"], "panicked", "{error}");
    assert_eq!(error["type"], "panic", "{error}");
}
