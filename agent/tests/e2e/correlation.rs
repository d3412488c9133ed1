//! Automatic correlation over the real socket: state-, event- and time-based links with
//! evidence, hot keys, two candidate groups, manual beats automatic, caps, and a precision /
//! recall workload with ground truth.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::support::{Agent, RawConn};

const MS: u64 = 1_000_000;
const T0: u64 = 1_703_943_052_000 * MS;

fn tr(n: u64) -> String {
    format!("{n:032x}")
}

fn sp(n: u64) -> String {
    format!("{n:016x}")
}

/// A finished one-step trace doing `ops` ((action, key) state ops, or ("emit", topic)).
fn trace(
    n: u64,
    at_ms: u64,
    flow: &str,
    cid: Option<&str>,
    attrs: Value,
    entry: &str,
    ops: &[(&str, &str)],
) -> Vec<Value> {
    let (id, t) = (tr(n), T0 + at_ms * MS);
    let mut start =
        json!({"k":"trace_start","t":t,"tr":id,"flow":flow,"entry":entry,"attrs":attrs});
    if let Some(cid) = cid {
        start["cid"] = json!(cid);
    }
    let mut events = vec![
        start,
        json!({"k":"step_start","t":t,"tr":id,"sp":sp(n),"name":flow}),
    ];
    for (i, (action, subject)) in ops.iter().enumerate() {
        let t = t + (i as u64 + 1) * MS;
        events.push(match *action {
            "emit" => json!({"k":"op","t":t,"tr":id,"sp":sp(n),"op":"emit","action":"send","topic":subject}),
            action => json!({"k":"op","t":t,"tr":id,"sp":sp(n),"op":"state","action":action,"key":subject}),
        });
    }
    events.push(json!({"k":"step_end","t":t + 50 * MS,"tr":id,"sp":sp(n)}));
    events.push(json!({"k":"trace_end","t":t + 50 * MS,"tr":id}));
    events
}

fn get_trace(agent: &Agent, n: u64) -> Value {
    agent.wait_trace(tr(n), |t| t["status"] == "completed")
}

#[test]
fn a_read_of_a_key_written_by_a_group_member_joins_that_group_with_evidence() {
    let agent = Agent::start(&[
        "--correlate-hot-key-readers",
        "3",
        "--correlate-exclude",
        "tmp.*",
    ]);
    let mut conn = RawConn::handshake(&agent, "json");
    let mut events = trace(
        1,
        0,
        "place-order",
        Some("order-1"),
        json!({}),
        "api",
        &[("set", "order.1.status"), ("set", "tmp.scratch")],
    );
    events.extend(trace(
        2,
        100,
        "ship",
        None,
        json!({}),
        "event",
        &[("get", "order.1.status")],
    ));
    // Excluded by glob; never written; self-written only.
    events.extend(trace(
        3,
        200,
        "audit",
        None,
        json!({}),
        "cron",
        &[("get", "tmp.scratch")],
    ));
    events.extend(trace(
        4,
        300,
        "audit",
        None,
        json!({}),
        "cron",
        &[("get", "never.written")],
    ));
    events.extend(trace(
        5,
        400,
        "loop",
        None,
        json!({}),
        "cron",
        &[("set", "self.key"), ("get", "self.key")],
    ));
    conn.send_events(&events);
    let shipped = get_trace(&agent, 2);
    assert_eq!(shipped["correlationId"], "order-1");
    assert_eq!(shipped["correlationMethod"], "state");
    assert_eq!(shipped["correlationConfidence"], 1.0);
    let evidence = &shipped["correlationEvidence"];
    assert_eq!(
        (evidence["key"].as_str(), evidence["traceId"].as_str()),
        (Some("order.1.status"), Some(tr(1).as_str()))
    );
    for n in 3..=5 {
        assert!(
            get_trace(&agent, n)["correlationId"].is_null(),
            "trace {n} must not link"
        );
    }
    let group = agent.get_ok("/api/groups/order-1");
    let members: HashMap<&str, &Value> = group["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].as_str().unwrap(), t))
        .collect();
    assert_eq!(members.len(), 2);
    assert_eq!(members[tr(2).as_str()]["correlationMethod"], "state");
    assert_eq!(
        members[tr(2).as_str()]["correlationEvidence"]["key"],
        "order.1.status"
    );
    assert_eq!(members[tr(1).as_str()]["correlationMethod"], "manual");
}

#[test]
fn hot_keys_link_nobody_and_links_made_before_they_turned_hot_are_undone() {
    let agent = Agent::start(&["--correlate-hot-key-readers", "3"]);
    let mut conn = RawConn::handshake(&agent, "json");
    let mut events = trace(
        10,
        0,
        "load-config",
        Some("cfg"),
        json!({}),
        "cron",
        &[("set", "config.tax")],
    );
    for n in 11..=16 {
        events.extend(trace(
            n,
            10 * n,
            "checkout",
            None,
            json!({}),
            "api",
            &[("get", "config.tax")],
        ));
    }
    conn.send_events(&events);
    for n in 11..=16 {
        let t = get_trace(&agent, n);
        assert!(
            t["correlationId"].is_null(),
            "reader {n} of a hot key stays ungrouped: {}",
            t["correlationId"]
        );
    }
    assert_eq!(
        agent.get_ok("/api/groups/cfg")["metadata"]["totalTraces"],
        1
    );
}

#[test]
fn of_two_matching_groups_the_most_recent_writer_wins_and_the_other_is_a_candidate() {
    let agent = Agent::start(&[]);
    let mut conn = RawConn::handshake(&agent, "json");
    let mut events = trace(
        20,
        0,
        "a",
        Some("g-old"),
        json!({}),
        "api",
        &[("set", "k.old")],
    );
    events.extend(trace(
        21,
        100,
        "b",
        Some("g-new"),
        json!({}),
        "api",
        &[("set", "k.new")],
    ));
    // Reads the older writer's key first, then the newer one's.
    events.extend(trace(
        22,
        200,
        "c",
        None,
        json!({}),
        "api",
        &[("get", "k.old"), ("get", "k.new")],
    ));
    // The newer first, then the older: stays with the newer.
    events.extend(trace(
        23,
        300,
        "c",
        None,
        json!({}),
        "api",
        &[("get", "k.new"), ("get", "k.old")],
    ));
    conn.send_events(&events);
    for n in [22, 23] {
        let t = get_trace(&agent, n);
        assert_eq!(t["correlationId"], "g-new", "trace {n}");
        let candidates = t["correlationCandidates"].as_array().unwrap();
        assert_eq!(candidates.len(), 1);
        assert_eq!(candidates[0]["correlationId"], "g-old");
        assert_eq!(candidates[0]["key"], "k.old");
    }
}

#[test]
fn manual_correlation_beats_automatic_and_caps_hold() {
    let agent = Agent::start(&[
        "--correlate-max-group",
        "2",
        "--correlate-max-candidates",
        "1",
    ]);
    let mut conn = RawConn::handshake(&agent, "json");
    let mut events = trace(
        30,
        0,
        "w",
        Some("g"),
        json!({}),
        "api",
        &[("set", "k1"), ("set", "k2"), ("set", "k3"), ("set", "k4")],
    );
    // Manually correlated first: keeps its group; the state match is only a candidate.
    events.extend(trace(
        31,
        100,
        "r",
        Some("manual-1"),
        json!({}),
        "api",
        &[("get", "k1")],
    ));
    // Automatic, then a manual correlate moves it.
    events.extend(trace(
        32,
        200,
        "r",
        None,
        json!({}),
        "api",
        &[("get", "k1")],
    ));
    events.push(
        json!({"k":"correlate","t":T0 + 260 * MS,"tr":tr(32),"cid":"manual-2","method":"manual"}),
    );
    // The group takes 2 automatic members at most.
    for n in 33..=35 {
        events.extend(trace(
            n,
            100 * n,
            "r",
            None,
            json!({}),
            "api",
            &[("get", "k2")],
        ));
    }
    conn.send_events(&events);
    let manual = get_trace(&agent, 31);
    assert_eq!(
        (
            manual["correlationId"].as_str(),
            manual["correlationMethod"].as_str()
        ),
        (Some("manual-1"), Some("manual"))
    );
    assert_eq!(manual["correlationCandidates"][0]["correlationId"], "g");
    let moved = agent.wait_trace(tr(32), |t| t["correlationId"] == "manual-2");
    assert_eq!(moved["correlationMethod"], "manual");
    assert!(moved["correlationEvidence"].is_null());
    let auto: Vec<bool> = (33..=35)
        .map(|n| get_trace(&agent, n)["correlationId"] == "g")
        .collect();
    assert_eq!(
        auto,
        vec![true, true, false],
        "the cap of 2 automatic members"
    );
    assert_eq!(
        get_trace(&agent, 35)["correlationCandidates"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn an_emit_and_a_data_key_link_the_trace_that_handles_the_event() {
    let agent = Agent::start(&["--correlate-event-key", "orderId"]);
    let mut conn = RawConn::handshake(&agent, "json");
    let mut events = trace(
        40,
        0,
        "checkout",
        Some("checkout-1"),
        json!({"orderId": "o-7"}),
        "api",
        &[("emit", "order.created")],
    );
    events.extend(trace(
        41,
        100,
        "fulfil",
        None,
        json!({"flowscope.topic": "order.created", "orderId": "o-7"}),
        "event",
        &[],
    ));
    events.extend(trace(
        42,
        200,
        "fulfil",
        None,
        json!({"flowscope.topic": "order.created", "orderId": "o-8"}),
        "event",
        &[],
    ));
    events.extend(trace(
        43,
        300,
        "fulfil",
        None,
        json!({"flowscope.topic": "order.cancelled", "orderId": "o-7"}),
        "event",
        &[],
    ));
    // An emitter without a group: both join the group named by the shared value.
    events.extend(trace(
        44,
        400,
        "refund",
        None,
        json!({"orderId": 9}),
        "api",
        &[("emit", "refund.issued")],
    ));
    events.extend(trace(
        45,
        500,
        "notify",
        None,
        json!({"messaging.destination.name": "refund.issued", "orderId": 9}),
        "event",
        &[],
    ));
    conn.send_events(&events);
    let handled = get_trace(&agent, 41);
    assert_eq!(
        (
            handled["correlationId"].as_str(),
            handled["correlationMethod"].as_str()
        ),
        (Some("checkout-1"), Some("event"))
    );
    let evidence = &handled["correlationEvidence"];
    assert_eq!(evidence["topic"], "order.created");
    assert_eq!(
        (evidence["attribute"].as_str(), evidence["value"].as_str()),
        (Some("orderId"), Some("o-7"))
    );
    assert_eq!(evidence["traceId"], tr(40));
    assert!(
        get_trace(&agent, 42)["correlationId"].is_null(),
        "another order id"
    );
    assert!(
        get_trace(&agent, 43)["correlationId"].is_null(),
        "another topic"
    );
    assert_eq!(get_trace(&agent, 45)["correlationId"], "orderId:9");
    assert_eq!(get_trace(&agent, 44)["correlationId"], "orderId:9");
}

#[test]
fn temporal_rules_link_runs_by_attribute_with_a_falling_confidence() {
    let agent = Agent::start(&["--correlate-temporal", "cart->checkout:10s@userId"]);
    let mut conn = RawConn::handshake(&agent, "json");
    let mut events = trace(50, 0, "cart", None, json!({"userId": "u1"}), "api", &[]);
    events.extend(trace(
        51,
        2_500,
        "checkout",
        None,
        json!({"userId": "u1"}),
        "api",
        &[],
    ));
    events.extend(trace(
        52,
        3_000,
        "checkout",
        None,
        json!({"userId": "u2"}),
        "api",
        &[],
    ));
    events.extend(trace(
        53,
        20_000,
        "checkout",
        None,
        json!({"userId": "u1"}),
        "api",
        &[],
    ));
    conn.send_events(&events);
    let linked = get_trace(&agent, 51);
    assert_eq!(
        (
            linked["correlationId"].as_str(),
            linked["correlationMethod"].as_str()
        ),
        (Some("userId:u1"), Some("temporal"))
    );
    assert_eq!(linked["correlationConfidence"], 0.75);
    assert_eq!(linked["correlationEvidence"]["traceId"], tr(50));
    assert!(
        get_trace(&agent, 52)["correlationId"].is_null(),
        "another user"
    );
    assert!(
        get_trace(&agent, 53)["correlationId"].is_null(),
        "outside the window"
    );
    assert_eq!(
        agent.get_ok("/api/groups/userId:u1")["metadata"]["totalTraces"],
        2
    );
}

/// Precision and recall per method on a workload with ground truth: three interleaved business
/// processes (orders), shared config keys every trace reads, and unrelated noise traces.
#[test]
fn precision_and_recall_on_interleaved_processes_with_shared_keys_and_noise() {
    let agent = Agent::start(&["--correlate-event-key", "orderId", "--max-traces", "5000"]);
    let mut conn = RawConn::handshake(&agent, "json");
    let mut truth: HashMap<u64, Option<String>> = HashMap::new();
    let mut method_of: HashMap<u64, &str> = HashMap::new();
    let mut events = trace(
        1,
        0,
        "load-config",
        Some("config"),
        json!({}),
        "cron",
        &[("set", "config.tax"), ("set", "config.currency")],
    );
    truth.insert(1, Some("config".into()));
    let mut n = 100;
    let mut at = 10;
    for round in 0..60u64 {
        for process in 0..3u64 {
            let order = round * 3 + process;
            let cid = format!("order-{order}");
            // Place the order (manual), emit for fulfilment; read shared config.
            n += 1;
            let place = n;
            events.extend(trace(
                place,
                at,
                "place-order",
                Some(&cid),
                json!({"orderId": format!("o-{order}")}),
                "api",
                &[
                    ("get", "config.tax"),
                    ("set", &format!("order.{order}.status")),
                    ("emit", "order.placed"),
                ],
            ));
            truth.insert(place, Some(cid.clone()));
            at += 3;
            // Fulfilment: an event trace with the order id (event link).
            n += 1;
            events.extend(trace(
                n,
                at,
                "fulfil",
                None,
                json!({"flowscope.topic": "order.placed", "orderId": format!("o-{order}")}),
                "event",
                &[("get", "config.currency")],
            ));
            truth.insert(n, Some(cid.clone()));
            method_of.insert(n, "event");
            at += 3;
            // Shipping: reads the order's status (state link), and shared config.
            n += 1;
            events.extend(trace(
                n,
                at,
                "ship",
                None,
                json!({}),
                "api",
                &[
                    ("get", "config.tax"),
                    ("get", &format!("order.{order}.status")),
                ],
            ));
            truth.insert(n, Some(cid));
            method_of.insert(n, "state");
            at += 3;
            // Noise: reads keys nobody wrote, and the shared config.
            n += 1;
            events.extend(trace(
                n,
                at,
                "report",
                None,
                json!({}),
                "cron",
                &[("get", "config.currency"), ("get", &format!("metrics.{n}"))],
            ));
            truth.insert(n, None);
            at += 3;
        }
    }
    for chunk in events.chunks(2_000) {
        conn.send_events(chunk);
    }
    agent.wait_trace(tr(n), |t| t["status"] == "completed");
    let mut figures: HashMap<&str, (u32, u32, u32)> = HashMap::new(); // (tp, fp, fn)
    for (&id, want) in &truth {
        let got = get_trace(&agent, id);
        let got_cid = got["correlationId"].as_str().map(str::to_owned);
        let got_method = got["correlationMethod"].as_str().unwrap_or("");
        let expected_method = method_of.get(&id).copied();
        for method in ["state", "event"] {
            let entry = figures.entry(method).or_default();
            let linked_by_it = got_method == method;
            let should = expected_method == Some(method);
            match (linked_by_it, should) {
                (true, true) if got_cid == *want => entry.0 += 1,
                (true, _) => entry.1 += 1,
                (false, true) => entry.2 += 1,
                (false, false) => {}
            }
        }
        if want.is_none() {
            assert!(
                got_cid.is_none(),
                "noise trace {id} was linked to {got_cid:?}"
            );
        }
    }
    for method in ["state", "event"] {
        let (tp, fp, fn_) = figures[method];
        let precision = f64::from(tp) / f64::from((tp + fp).max(1));
        let recall = f64::from(tp) / f64::from((tp + fn_).max(1));
        eprintln!(
            "correlation {method}: precision {precision:.3} recall {recall:.3} (tp {tp}, fp {fp}, fn {fn_})"
        );
        assert!(
            precision >= 0.95 && recall >= 0.95,
            "{method}: precision {precision}, recall {recall}"
        );
    }
}
