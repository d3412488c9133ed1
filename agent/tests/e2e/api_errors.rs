//! Bad query parameters and ids answer 400/404 with a JSON error.

use crate::support::Agent;

#[test]
fn bad_parameters_are_400_with_a_clear_json_error() {
    let agent = Agent::start(&[]);
    for (query, param) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("status=sleeping", "status"),
        ("since=-5", "since"),
        ("since=20&until=10", "since"),
        ("minDuration=1.5", "minDuration"),
        ("cursor=garbage", "cursor"),
        ("flow=", "flow"),
        ("flow=a&flow=b", "flow"),
        ("colour=red", "colour"),
    ] {
        let (status, body) = agent.get(&format!("/api/traces?{query}"));
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], "invalid_parameter", "{query}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("`{param}`")),
            "{query}: {message}"
        );
    }
    let (status, body) = agent.get("/motia/traces?limit=0");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_parameter"))
    );
    let (status, body) = agent.get("/api/groups?x=1");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_parameter"))
    );
}

#[test]
fn bad_and_unknown_ids() {
    let agent = Agent::start(&[]);
    for path in [
        "/api/traces/xyz",
        "/motia/traces/123",
        "/api/executions/zz/trace",
    ] {
        let (status, body) = agent.get(path);
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_id")),
            "{path}: {body}"
        );
    }
    let missing = "0123456789abcdef0123456789abcdef";
    for path in [
        format!("/api/traces/{missing}"),
        format!("/motia/traces/{missing}"),
        "/api/groups/none".into(),
    ] {
        let (status, body) = agent.get(&path);
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("not_found")),
            "{path}: {body}"
        );
    }
    let (status, body) = agent.get("/api/nothing-here");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("no_route"))
    );
}
