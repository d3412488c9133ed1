//! Conformance driver for the Rust SDK: runs `tests/conformance/scenario.json` (path in argv)
//! against the agent at `FLOWSCOPE_SOCKET` and prints the trace ids it produced as one JSON list.
//! `tests/conformance/run.py` compares what the agent built with the Python and Node drivers'.
//!
//! `cargo run -p flowscope --example conformance -- tests/conformance/scenario.json`

use std::time::Duration;

use flowscope::wire::{EntryType, ErrorInfo, LogLevel};
use serde_json::Value;

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// A name field as an owned string (empty when absent).
fn name(v: &Value, key: &str) -> String {
    text(v, key).unwrap_or_default().to_owned()
}

/// Runs one action; a failing step returns its error, which fails the enclosing steps and trace
/// as an exception would in the other languages.
fn run(client: &flowscope::Client, action: &Value) -> Result<(), ErrorInfo> {
    if let Some(name) = text(action, "step") {
        let step = flowscope::step(name.to_owned()).start();
        if let Some(error) = action.get("error") {
            let error =
                ErrorInfo::from_parts(text(error, "message"), text(error, "type"), None, None);
            step.fail(error.clone());
            return Err(error);
        }
        for inner in action["body"].as_array().into_iter().flatten() {
            if let Err(error) = run(client, inner) {
                step.fail(error.clone());
                return Err(error);
            }
        }
        step.end();
    } else if let Some(op) = text(action, "op") {
        let builder = match op {
            "state_get" => flowscope::state_get(name(action, "key")),
            "state_set" => flowscope::state_set(name(action, "key")),
            "state_delete" => flowscope::state_delete(name(action, "key")),
            "state_clear" => flowscope::state_clear(),
            "emit" => {
                let b = flowscope::emit(name(action, "topic"));
                match text(action, "to") {
                    Some(to) => b.to(to.to_owned()),
                    None => b,
                }
            }
            stream => {
                let (stream_name, id) = (name(action, "stream"), name(action, "id"));
                match stream {
                    "stream_get" => flowscope::stream_get(stream_name, id),
                    "stream_set" => flowscope::stream_set(stream_name, id),
                    "stream_delete" => flowscope::stream_delete(stream_name, id),
                    _ => flowscope::stream_send(stream_name).item(id),
                }
            }
        };
        match text(action, "failed") {
            // The timed form, failing: what an exception inside the timed op records elsewhere.
            Some(error) => builder.start().fail(error),
            None => builder.record(),
        }
    } else if let Some(level) = text(action, "log") {
        let fields = action.get("fields").and_then(Value::as_object).cloned();
        flowscope::log_with(
            LogLevel::parse(level),
            text(action, "message").unwrap_or_default(),
            fields,
        );
    } else if let Some(call) = action.get("llm") {
        let mut llm = flowscope::llm(text(call, "model").unwrap_or_default());
        if let Some(p) = text(call, "provider") {
            llm = llm.provider(p);
        }
        if let Some(p) = text(call, "prompt") {
            llm = llm.prompt(p);
        }
        if let Some(r) = text(call, "response") {
            llm = llm.response(r);
        }
        if let (Some(i), Some(o)) = (call["inputTokens"].as_u64(), call["outputTokens"].as_u64()) {
            llm = llm.tokens(i, o);
        }
        if let Some(c) = call["cost"].as_f64() {
            llm = llm.cost(c);
        }
        llm.record();
    } else if let Some(retry) = action.get("retry") {
        flowscope::retry(
            retry["attempt"].as_u64().unwrap_or(1) as u32,
            text(retry, "reason"),
            retry["backoffMs"].as_u64().map(Duration::from_millis),
        );
    } else if let Some(id) = text(action, "checkpoint") {
        flowscope::checkpoint(id);
    } else if let Some(t) = action.get("transition") {
        flowscope::transition(
            text(t, "from").unwrap_or_default(),
            text(t, "to").unwrap_or_default(),
            text(t, "action"),
        );
    } else if let Some(a) = action.get("artifact") {
        let mut artifact = flowscope::artifact(text(a, "name").unwrap_or_default());
        if let Some(u) = text(a, "url") {
            artifact = artifact.url(u);
        }
        if let Some(m) = text(a, "mime") {
            artifact = artifact.mime(m);
        }
        if let Some(s) = a["size"].as_u64() {
            artifact = artifact.size(s);
        }
        artifact.record();
    } else if let Some(c) = action.get("custom") {
        flowscope::custom(
            text(c, "name").unwrap_or_default(),
            c.get("payload").cloned(),
        );
    } else if let Some(h) = action.get("http") {
        let ctx = flowscope::SpanContext::current().expect("inside a step");
        let call = client.begin_client_call(
            &ctx.trace,
            ctx.span_id,
            text(h, "method").unwrap_or("GET"),
            text(h, "url").unwrap_or_default(),
        );
        let status = h["status"].as_u64().and_then(|s| u16::try_from(s).ok());
        client.end_client_call(&ctx.trace, call, status, None);
    } else {
        panic!("unknown action {action}");
    }
    Ok(())
}

fn main() {
    let path = std::env::args().nth(1).expect("scenario path");
    let scenario: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read scenario")).expect("JSON");
    let client = flowscope::init(flowscope::Config::from_env("conformance"));
    let mut ids = Vec::new();
    for spec in scenario["traces"].as_array().into_iter().flatten() {
        let entry = match text(spec, "entry") {
            Some("cron") => EntryType::Cron,
            Some("event") => EntryType::Event,
            _ => EntryType::Api,
        };
        let mut builder = client.trace(text(spec, "flow").unwrap_or_default());
        builder = match text(spec, "step") {
            Some(step) => builder.entry(entry, step),
            None => builder.entry_type(entry),
        };
        if let Some(cid) = text(spec, "correlationId") {
            builder = builder.correlation_id(cid);
        }
        for (key, value) in spec["attributes"].as_object().into_iter().flatten() {
            builder = builder.attribute(key.clone(), value.clone());
        }
        let trace = builder.start();
        ids.push(trace.id().to_string());
        let mut failure = None;
        for action in spec["body"].as_array().into_iter().flatten() {
            if let Err(error) = run(&client, action) {
                failure = Some(error);
                break;
            }
        }
        match failure {
            Some(error) => trace.fail(error),
            None => trace.end(),
        }
    }
    assert!(
        client.flush(Duration::from_secs(10)),
        "{:?}",
        client.stats()
    );
    // No HTTP middleware in the Rust SDK: the server part is the other languages'.
    println!("{}", serde_json::json!({"traces": ids, "server": null}));
}
