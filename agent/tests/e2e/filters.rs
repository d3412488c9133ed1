//! Every list filter returns the right traces and nothing else; pagination visits each once.

use flowscope::{EntryType, ErrorInfo};
use std::collections::HashSet;

use crate::support::{Agent, at, flush, ids};

struct Sent {
    id: String,
    flow: &'static str,
    step: &'static str,
    key: &'static str,
    topic: &'static str,
    cid: Option<&'static str>,
    failed: bool,
    start_ms: u64,
    duration_ms: u64,
}

fn send(client: &flowscope::Client, n: u64) -> Sent {
    let flows = ["checkout", "signup", "report"];
    let steps = ["validate", "charge", "render"];
    let keys = ["cart.total", "user.email", "report.rows"];
    let topics = ["cart.checked", "user.created", "report.ready"];
    let i = (n % 3) as usize;
    let (start_ms, duration_ms) = (n * 1000, 10 + n * 10);
    let cid = n.is_multiple_of(4).then_some("group-a");
    let failed = n.is_multiple_of(5);
    let mut builder = client
        .trace(flows[i])
        .entry(EntryType::Api, steps[i])
        .start_time(at(start_ms));
    if let Some(cid) = cid {
        builder = builder.correlation_id(cid);
    }
    let trace = builder.start();
    let step = trace.step(steps[i]).start_time(at(start_ms)).start();
    flowscope::state_get(keys[i]).at(at(start_ms + 1)).record();
    flowscope::emit(topics[i]).at(at(start_ms + 2)).record();
    step.end_at(at(start_ms + duration_ms));
    let id = trace.id().to_string();
    if failed {
        trace.fail(ErrorInfo::new("boom"));
    } else {
        trace.end_at(at(start_ms + duration_ms));
    }
    Sent {
        id,
        flow: flows[i],
        step: steps[i],
        key: keys[i],
        topic: topics[i],
        cid,
        failed,
        start_ms,
        duration_ms,
    }
}

fn expect(agent: &Agent, query: &str, sent: &[Sent], keep: impl Fn(&Sent) -> bool) {
    let mut want: Vec<&Sent> = sent.iter().filter(|s| keep(s)).collect();
    want.sort_by_key(|s| std::cmp::Reverse(s.start_ms));
    let want: Vec<String> = want.iter().map(|s| s.id.clone()).collect();
    let got = ids(&agent.get_ok(&format!("/api/traces?limit=1000&{query}")));
    assert_eq!(got, want, "query {query}");
}

#[test]
fn each_filter_returns_exactly_its_traces() {
    let agent = Agent::start(&[]);
    let client = agent.client();
    let sent: Vec<Sent> = (1..=30).map(|n| send(&client, n)).collect();
    flush(&client);
    agent.wait_for("/api/traces?limit=1000", |_, b| {
        b["traces"].as_array().is_some_and(|t| t.len() == 30)
    });
    // Failed traces ended now, not at their planned time: their duration is not the planned one.
    let ended_as_planned = |s: &Sent| !s.failed;

    expect(&agent, "", &sent, |_| true);
    expect(&agent, "flow=signup", &sent, |s| s.flow == "signup");
    expect(&agent, "step=charge", &sent, |s| s.step == "charge");
    expect(&agent, "stateKey=report.rows", &sent, |s| {
        s.key == "report.rows"
    });
    expect(&agent, "topic=cart.checked", &sent, |s| {
        s.topic == "cart.checked"
    });
    expect(&agent, "correlationId=group-a", &sent, |s| {
        s.cid == Some("group-a")
    });
    expect(&agent, "status=failed", &sent, |s| s.failed);
    expect(&agent, "status=completed", &sent, |s| !s.failed);
    expect(&agent, "status=running", &sent, |_| false);
    expect(&agent, "flow=checkout&status=failed", &sent, |s| {
        s.flow == "checkout" && s.failed
    });
    expect(&agent, "flow=nope", &sent, |_| false);
    expect(&agent, "q=SIGN", &sent, |s| s.flow == "signup");
    expect(&agent, &format!("q={}", &sent[7].id[..12]), &sent, |s| {
        s.id == sent[7].id
    });
    let t0 = 1_703_943_052_000u64;
    expect(&agent, &format!("since={}", t0 + 10_000), &sent, |s| {
        s.start_ms >= 10_000
    });
    expect(&agent, &format!("until={}", t0 + 10_000), &sent, |s| {
        s.start_ms <= 10_000
    });
    expect(
        &agent,
        &format!("since={}&until={}", t0 + 5_000, t0 + 7_000),
        &sent,
        |s| (5_000..=7_000).contains(&s.start_ms),
    );
    expect(&agent, "minDuration=200&status=completed", &sent, |s| {
        ended_as_planned(s) && s.duration_ms >= 200
    });
    expect(&agent, "maxDuration=100&status=completed", &sent, |s| {
        ended_as_planned(s) && s.duration_ms <= 100
    });
    expect(
        &agent,
        "flow=report&minDuration=150&maxDuration=250",
        &sent,
        |s| s.flow == "report" && ended_as_planned(s) && (150..=250).contains(&s.duration_ms),
    );
}

#[test]
fn pagination_visits_every_trace_once_in_order() {
    let agent = Agent::start(&[]);
    let client = agent.client();
    let sent: Vec<Sent> = (1..=23).map(|n| send(&client, n)).collect();
    flush(&client);
    agent.wait_for("/api/traces?limit=1000", |_, b| {
        b["traces"].as_array().is_some_and(|t| t.len() == 23)
    });
    for query in ["", "flow=checkout&"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/traces?{query}limit=4&cursor={c}"),
                None => format!("/api/traces?{query}limit=4"),
            };
            let page = agent.get_ok(&path);
            seen.extend(ids(&page));
            pages += 1;
            match page["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
            assert!(pages < 20, "pagination does not end");
        }
        let mut want: Vec<&Sent> = sent
            .iter()
            .filter(|s| query.is_empty() || s.flow == "checkout")
            .collect();
        want.sort_by_key(|s| std::cmp::Reverse(s.start_ms));
        let want: Vec<String> = want.iter().map(|s| s.id.clone()).collect();
        assert_eq!(seen, want, "query {query:?}");
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len());
    }
}
