//! The Motia RFC's user-registration example, sent through the Rust SDK, comes back exactly.

use std::time::Duration;

use flowscope::EntryType;
use serde_json::{Value, json};

use crate::support::{Agent, at, flush};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Sends the RFC flow with the RFC's timings; returns the trace id.
pub fn send_registration(client: &flowscope::Client) -> flowscope::TraceId {
    let trace = client
        .trace("user-registration")
        .entry(EntryType::Api, "validate-user")
        .start_time(at(0))
        .start();
    let id = trace.id();
    let step = trace.step("validate-user").start_time(at(0)).start();
    flowscope::state_get("user.email")
        .at(at(2))
        .duration(ms(15))
        .record();
    flowscope::state_set("validation.status")
        .at(at(20))
        .duration(ms(8))
        .record();
    flowscope::state_set("validation.result")
        .at(at(30))
        .duration(ms(12))
        .record();
    flowscope::emit("user.validated")
        .to("save-user")
        .at(at(50))
        .duration(ms(5))
        .record();
    step.end_at(at(95));

    let step = trace.step("save-user").start_time(at(95)).start();
    flowscope::state_get("validation.result")
        .at(at(97))
        .duration(ms(8))
        .record();
    flowscope::stream_set("users", "user-1")
        .at(at(110))
        .duration(ms(45))
        .record();
    flowscope::state_set("user.saved")
        .at(at(160))
        .duration(ms(10))
        .record();
    flowscope::emit("user.saved")
        .to("send-email")
        .at(at(175))
        .duration(ms(3))
        .record();
    step.end_at(at(250));

    let step = trace.step("send-email").start_time(at(250)).start();
    flowscope::state_get("user.saved")
        .at(at(252))
        .duration(ms(5))
        .record();
    flowscope::stream_set("email-queue", "email-1")
        .at(at(260))
        .duration(ms(25))
        .record();
    flowscope::state_set("email.queued")
        .at(at(290))
        .duration(ms(8))
        .record();
    step.end_at(at(325));
    trace.end_at(at(325));
    id
}

fn rfc_example(id: &str) -> Value {
    json!({
      "id": id,
      "flowName": "user-registration",
      "status": "completed",
      "startTime": 1703943052000u64,
      "duration": 325,
      "entryPoint": { "type": "api", "stepName": "validate-user" },
      "steps": [
        { "name": "validate-user", "status": "completed", "startTime": 0, "duration": 95,
          "operations": { "state": 3, "emit": 1, "stream": 0 } },
        { "name": "save-user", "status": "completed", "startTime": 95, "duration": 155,
          "operations": { "state": 2, "emit": 1, "stream": 1 } },
        { "name": "send-email", "status": "completed", "startTime": 250, "duration": 75,
          "operations": { "state": 2, "emit": 0, "stream": 1 } }
      ],
      "metadata": { "totalSteps": 3, "completedSteps": 3, "errorCount": 0 }
    })
}

#[test]
fn motia_endpoint_returns_exactly_the_rfc_trace() {
    let agent = Agent::start(&[]);
    let client = agent.client();
    let id = send_registration(&client);
    flush(&client);
    let got = agent.wait_for(&format!("/motia/traces/{id}"), |s, b| {
        s == 200 && b["status"] == "completed"
    });
    assert_eq!(got, rfc_example(&id.to_string()));
    let list = agent.get_ok("/motia/traces");
    assert_eq!(list, json!([rfc_example(&id.to_string())]));
}

#[test]
fn api_endpoint_has_the_rfc_fields_plus_operations_in_detail() {
    let agent = Agent::start(&[]);
    let client = agent.client();
    let id = send_registration(&client);
    flush(&client);
    let trace = agent.wait_trace(id, |t| t["status"] == "completed");
    let rfc = rfc_example(&id.to_string());
    for field in [
        "id",
        "flowName",
        "status",
        "startTime",
        "duration",
        "entryPoint",
        "metadata",
    ] {
        assert_eq!(trace[field], rfc[field], "field {field}");
    }
    assert_eq!(trace["service"], "e2e-tests");
    let steps = trace["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["validate-user", "save-user", "send-email"]);
    for (step, want) in steps.iter().zip(rfc["steps"].as_array().unwrap()) {
        for field in ["status", "startTime", "duration", "operations"] {
            assert_eq!(step[field], want[field], "{} {field}", step["name"]);
        }
    }
    let first_ops = steps[0]["ops"].as_array().unwrap();
    assert_eq!(first_ops.len(), 4);
    assert_eq!(
        first_ops[0],
        json!({"kind": "state", "action": "get", "key": "user.email", "startTime": 2.0, "duration": 15.0, "ok": true})
    );
    assert_eq!(first_ops[3]["topic"], "user.validated");
    assert_eq!(first_ops[3]["to"], "save-user");
    let stream_op = &steps[1]["ops"][1];
    assert_eq!(
        (stream_op["stream"].as_str(), stream_op["id"].as_str()),
        (Some("users"), Some("user-1"))
    );
}

#[test]
fn timeline_view_and_step_endpoint_split_the_full_trace() {
    let agent = Agent::start(&[]);
    let client = agent.client();
    let id = send_registration(&client);
    flush(&client);
    let full = agent.wait_trace(id, |t| t["status"] == "completed");
    let timeline = agent.get_ok(&format!("/api/traces/{id}?view=timeline"));
    for (light, heavy) in timeline["steps"]
        .as_array()
        .unwrap()
        .iter()
        .zip(full["steps"].as_array().unwrap())
    {
        assert!(
            light.get("ops").is_none() && light.get("events").is_none(),
            "{light}"
        );
        for field in [
            "id",
            "name",
            "status",
            "startTime",
            "duration",
            "operations",
        ] {
            assert_eq!(light[field], heavy[field]);
        }
        let emits: Vec<&Value> = heavy["ops"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["kind"] == "emit")
            .collect();
        assert_eq!(
            light["emits"]
                .as_array()
                .unwrap()
                .iter()
                .collect::<Vec<_>>(),
            emits
        );
        let step = agent.get_ok(&format!(
            "/api/traces/{id}/steps/{}",
            heavy["id"].as_str().unwrap()
        ));
        assert_eq!(&step, heavy, "the step endpoint gives the full step");
    }
    assert_eq!(timeline["steps"][0]["emits"][0]["to"], "save-user");
    assert_eq!(timeline["steps"][0]["eventCounts"], json!({}));
    let (status, body) = agent.get(&format!("/api/traces/{id}?view=tiny"));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_parameter"))
    );
    let (status, body) = agent.get(&format!("/api/traces/{id}/steps/00000000000000ff"));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, body) = agent.get(&format!("/api/traces/{id}/steps/nope"));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_id"))
    );
}
