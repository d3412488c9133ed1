//! Insights over the real socket and HTTP, on a workload whose figures are computed by hand:
//! critical path in `/api/traces/{id}`, `/api/flows/{flow}/insights`, `/api/compare`, and the
//! LLM/error rollups of `/api/groups/{id}`.

use serde_json::{Value, json};

use crate::support::{Agent, RawConn};

const MS: u64 = 1_000_000;

fn tr(n: u64) -> String {
    format!("{n:032x}")
}

fn sp(n: u64) -> String {
    format!("{n:016x}")
}

/// One run of flow "checkout" starting at `t0` (ms): validate (10 ms) → charge (`charge` ms,
/// failing when `fail`) ∥ notify (5 ms) → ship (20 ms). An LLM call in validate.
fn run(conn: &mut RawConn, n: u64, t0: u64, charge: u64, fail: bool) {
    let trace = tr(0xc0_0000 + n);
    let at = |ms: u64| (t0 + ms) * MS;
    let base = n * 16;
    let mut events = vec![
        json!({"k":"trace_start","t":at(0),"tr":trace,"flow":"checkout","cid":"cart-9"}),
        json!({"k":"step_start","t":at(0),"tr":trace,"sp":sp(base + 1),"name":"validate"}),
        json!({"k":"op","t":at(1),"tr":trace,"sp":sp(base + 1),"op":"state","action":"get","key":"cart.items","dur":MS}),
        json!({"k":"llm","t":at(2),"tr":trace,"sp":sp(base + 1),"model":"gpt-4o","provider":"openai","input_tokens":100,"output_tokens":20,"cost":0.01,"dur":MS}),
        json!({"k":"step_end","t":at(10),"tr":trace,"sp":sp(base + 1)}),
        json!({"k":"step_start","t":at(10),"tr":trace,"sp":sp(base + 2),"name":"charge"}),
        json!({"k":"op","t":at(11),"tr":trace,"sp":sp(base + 2),"op":"state","action":"set","key":"payment.status","dur":MS}),
        json!({"k":"step_start","t":at(10),"tr":trace,"sp":sp(base + 3),"name":"notify"}),
        json!({"k":"op","t":at(11),"tr":trace,"sp":sp(base + 3),"op":"emit","action":"send","topic":"order.paid","dur":0}),
        json!({"k":"step_end","t":at(15),"tr":trace,"sp":sp(base + 3)}),
    ];
    if fail {
        events.push(json!({"k":"step_end","t":at(10 + charge),"tr":trace,"sp":sp(base + 2),"status":"failed","error":{"message":"declined"}}));
        events.push(json!({"k":"trace_end","t":at(10 + charge),"tr":trace,"status":"failed"}));
    } else {
        events.push(json!({"k":"step_end","t":at(10 + charge),"tr":trace,"sp":sp(base + 2)}));
        events.push(json!({"k":"step_start","t":at(10 + charge),"tr":trace,"sp":sp(base + 4),"name":"ship"}));
        events.push(json!({"k":"op","t":at(11 + charge),"tr":trace,"sp":sp(base + 4),"op":"stream","action":"set","stream":"shipments","id":"s1","dur":MS}));
        events.push(json!({"k":"step_end","t":at(30 + charge),"tr":trace,"sp":sp(base + 4)}));
        events.push(json!({"k":"trace_end","t":at(30 + charge),"tr":trace}));
    }
    conn.send_events(&events);
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn flow_insights_compare_and_group_rollups_match_the_hand_computed_figures() {
    let agent = Agent::start(&[]);
    let mut conn = RawConn::handshake(&agent, "json");
    // Four runs: charge takes 20, 40, 60 ms; the fourth fails after 80 ms.
    run(&mut conn, 1, 1_000, 20, false);
    run(&mut conn, 2, 2_000, 40, false);
    run(&mut conn, 3, 3_000, 60, false);
    run(&mut conn, 4, 4_000, 80, true);
    for n in 1..=4 {
        agent.wait_trace(tr(0xc0_0000 + n), |t| t["status"] != "running");
    }

    // Critical path: validate → charge → ship (notify ends before charge, so it is not).
    let t1 = agent.get_ok(&format!("/api/traces/{}", tr(0xc0_0001)));
    let path: Vec<&str> = t1["criticalPath"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(path, vec![sp(17), sp(18), sp(20)]);
    let timeline = agent.get_ok(&format!("/api/traces/{}?view=timeline", tr(0xc0_0001)));
    assert_eq!(timeline["criticalPath"], t1["criticalPath"]);

    let insights = agent.get_ok("/api/flows/checkout/insights");
    assert_eq!(insights["runs"], 4);
    assert_eq!(
        (insights["completed"].as_u64(), insights["failed"].as_u64()),
        (Some(3), Some(1))
    );
    // Run durations 50, 70, 90 ms and 90 ms for the failed one (10 + 80) → 50 70 90 90.
    assert_eq!(insights["duration"]["p50"], 70.0);
    assert_eq!(insights["duration"]["p95"], 90.0);
    assert_eq!(insights["duration"]["avg"], 75.0);
    let step = |name: &str| -> Value {
        insights["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap()
    };
    let names: Vec<&str> = insights["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["validate", "charge", "notify", "ship"],
        "in the order they start"
    );
    let charge = step("charge");
    assert_eq!(charge["count"], 4);
    assert_eq!(charge["duration"]["p50"], 40.0);
    assert_eq!(charge["duration"]["p99"], 80.0);
    assert_eq!(charge["errorRate"], 0.25);
    // charge: 200 ms of 300 ms of flow time, all of it on the critical path.
    assert!(close(
        charge["shareOfFlowTime"].as_f64().unwrap(),
        200.0 / 300.0
    ));
    assert!(close(
        charge["criticalShare"].as_f64().unwrap(),
        200.0 / 300.0
    ));
    assert!(close(
        step("notify")["criticalShare"].as_f64().unwrap(),
        0.0
    ));
    assert_eq!(step("ship")["count"], 3);
    assert_eq!(insights["bottleneck"], "charge");
    assert_eq!(insights["operations"]["state"], json!({"get": 4, "set": 4}));
    assert_eq!(insights["operations"]["emit"], json!({"send": 4}));
    assert_eq!(insights["operations"]["stream"], json!({"set": 3}));
    let keys: Vec<&str> = insights["stateKeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec!["cart.items", "payment.status"]);
    assert_eq!(insights["streams"][0]["name"], "shipments");
    assert_eq!(
        insights["topics"][0],
        json!({"name": "order.paid", "actions": {"send": 4}, "runs": 4})
    );
    assert_eq!(insights["llmCalls"], 4);
    assert_eq!(insights["totalTokens"], 480);
    assert_eq!(insights["tokensPerRun"], 120.0);
    assert!(close(insights["costPerRun"].as_f64().unwrap(), 0.01));
    assert_eq!(insights["models"][0]["model"], "gpt-4o");
    assert_eq!(insights["models"][0]["calls"], 4);

    // A time range keeps the runs started in it.
    let ranged = agent.get_ok("/api/flows/checkout/insights?since=1500&until=3500");
    assert_eq!(ranged["runs"], 2);
    assert_eq!(agent.get("/api/flows/nope/insights").0, 404);
    assert_eq!(agent.get("/api/flows/checkout/insights?since=x").0, 400);
    assert_eq!(
        agent.get("/api/flows/checkout/insights?since=5&until=1").0,
        400
    );

    // Compare the 20 ms run with the failed one.
    let cmp = agent.get_ok(&format!(
        "/api/compare?a={}&b={}",
        tr(0xc0_0001),
        tr(0xc0_0004)
    ));
    assert_eq!(cmp["durationDelta"], 40.0);
    assert_eq!(cmp["statusChanged"], true);
    let matched: Vec<&str> = cmp["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(matched, vec!["validate", "charge", "notify"]);
    let charge = &cmp["steps"][1];
    assert_eq!(
        (
            charge["durationDelta"].as_f64(),
            charge["statusChanged"].as_bool()
        ),
        (Some(60.0), Some(true))
    );
    assert_eq!(charge["opsDelta"], 0);
    assert_eq!(cmp["onlyInA"][0]["name"], "ship");
    assert_eq!(cmp["onlyInB"], json!([]));
    assert_eq!(cmp["a"]["status"], "completed");
    assert_eq!(cmp["b"]["status"], "failed");
    assert_eq!(agent.get(&format!("/api/compare?a={}", tr(1))).0, 400);
    assert_eq!(agent.get(&format!("/api/compare?a={}&b=zz", tr(1))).0, 400);
    assert_eq!(
        agent
            .get(&format!("/api/compare?a={}&b={}", tr(1), tr(2)))
            .0,
        404
    );

    // The group rolls tokens, cost, calls and errors up.
    let group = agent.get_ok("/api/groups/cart-9");
    let meta = &group["metadata"];
    assert_eq!(
        (meta["llmCalls"].as_u64(), meta["totalTokens"].as_u64()),
        (Some(4), Some(480))
    );
    assert!(close(meta["totalCost"].as_f64().unwrap(), 0.04));
    assert_eq!(meta["errorCount"], 1);
}
