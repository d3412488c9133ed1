//! `/metrics` parses as Prometheus text and its counters move with what happens.

use prometheus_parse::{Sample, Scrape, Value};

use crate::registration::send_registration;
use crate::support::{Agent, RawConn, flush};

pub fn scrape(agent: &Agent) -> Scrape {
    let resp = reqwest::blocking::get(format!("{}/metrics", agent.base)).unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = resp.text().unwrap();
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("valid exposition text")
}

fn find<'a>(scrape: &'a Scrape, name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
}

pub fn number(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    match find(scrape, name, labels).map(|s| &s.value) {
        Some(Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) => *v,
        other => panic!("{name}{labels:?}: {other:?}"),
    }
}

fn histogram_count(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> u64 {
    match find(scrape, name, labels).map(|s| &s.value) {
        Some(Value::Histogram(buckets)) => buckets.last().map_or(0, |b| b.count as u64),
        other => panic!("{name}{labels:?}: {other:?}"),
    }
}

#[test]
fn metrics_count_events_traces_rejections_durations_and_api_latency() {
    let agent = Agent::start(&[]);
    let client = agent.client();
    let id = send_registration(&client);
    flush(&client);
    agent.wait_trace(id, |t| t["status"] == "completed");
    let mut bad = RawConn::connect(&agent);
    bad.send_frame(b"not json");
    assert!(bad.read_frame().is_some());

    let m = scrape(&agent);
    assert_eq!(
        number(&m, "flowscope_events_decoded_total", &[("kind", "op")]),
        11.0
    );
    assert_eq!(
        number(
            &m,
            "flowscope_events_decoded_total",
            &[("kind", "step_end")]
        ),
        3.0
    );
    assert_eq!(number(&m, "flowscope_events_received_total", &[]), 19.0);
    assert_eq!(
        number(
            &m,
            "flowscope_connections_rejected_total",
            &[("reason", "malformed_hello")]
        ),
        1.0
    );
    assert_eq!(number(&m, "flowscope_traces_stored", &[]), 1.0);
    assert_eq!(number(&m, "flowscope_traces_created_total", &[]), 1.0);
    let step = [
        ("flow", "user-registration"),
        ("step", "save-user"),
        ("status", "completed"),
    ];
    assert_eq!(
        histogram_count(&m, "flowscope_step_duration_seconds", &step),
        1
    );
    let flow = [("flow", "user-registration"), ("status", "completed")];
    assert_eq!(
        histogram_count(&m, "flowscope_workflow_duration_seconds", &flow),
        1
    );
    let route = [("route", "/api/traces/:id"), ("status", "200")];
    let api_before = histogram_count(&m, "flowscope_api_request_duration_seconds", &route);
    assert!(api_before >= 1);
    assert_eq!(
        number(&m, "flowscope_collector_up", &[]),
        0.0,
        "no collector configured"
    );

    // Counters move.
    let second = send_registration(&client);
    flush(&client);
    agent.wait_trace(second, |t| t["status"] == "completed");
    let m = scrape(&agent);
    assert_eq!(
        number(&m, "flowscope_events_decoded_total", &[("kind", "op")]),
        22.0
    );
    assert_eq!(
        histogram_count(&m, "flowscope_step_duration_seconds", &step),
        2
    );
    assert_eq!(
        histogram_count(&m, "flowscope_workflow_duration_seconds", &flow),
        2
    );
    assert!(histogram_count(&m, "flowscope_api_request_duration_seconds", &route) > api_before);
    assert_eq!(number(&m, "flowscope_traces_stored", &[]), 2.0);
}

/// Past a few runs the agent looks duration histograms up by its interned, permanent names
/// rather than by labels: every run must still land in its own flow's and step's series.
#[test]
fn duration_histograms_stay_exact_once_names_are_hot() {
    const RUNS: usize = 40;
    let agent = Agent::start(&[]);
    let client = agent.client();
    let ids: Vec<_> = (0..RUNS).map(|_| send_registration(&client)).collect();
    flush(&client);
    for id in &ids {
        agent.wait_trace(*id, |t| t["status"] == "completed");
    }
    let m = scrape(&agent);
    for step in ["validate-user", "save-user", "send-email"] {
        let labels = [
            ("flow", "user-registration"),
            ("step", step),
            ("status", "completed"),
        ];
        assert_eq!(
            histogram_count(&m, "flowscope_step_duration_seconds", &labels),
            RUNS as u64,
            "{step}"
        );
    }
    let flow = [("flow", "user-registration"), ("status", "completed")];
    assert_eq!(
        histogram_count(&m, "flowscope_workflow_duration_seconds", &flow),
        RUNS as u64
    );
}
