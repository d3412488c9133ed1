//! `--redact` for forwarded OTLP requests. An ingested request goes upstream as received, so the
//! rules the agent applies to what it stores are applied to the request too before it leaves:
//! values under listed keys and text matching listed patterns, in resource, scope, span, event
//! and link attributes and status messages; with `--hide-llm-content`, GenAI / OpenInference
//! prompt and response attributes and content events. Ids, names, kinds and times are kept.

use flowscope::redact::{REDACTED, RedactConfig};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};

/// Span events whose attributes are message content (older GenAI conventions).
const LLM_CONTENT_EVENTS: &[&str] = &[
    "gen_ai.content.prompt",
    "gen_ai.content.completion",
    "gen_ai.system.message",
    "gen_ai.user.message",
    "gen_ai.assistant.message",
    "gen_ai.tool.message",
    "gen_ai.choice",
];

/// Applies `rules` to `request` in place.
pub fn redact_request(rules: &RedactConfig, request: &mut ExportTraceServiceRequest) {
    let hide = rules.hide_llm_content;
    for resource_spans in &mut request.resource_spans {
        if let Some(resource) = &mut resource_spans.resource {
            attributes(rules, &mut resource.attributes, false);
        }
        for scope_spans in &mut resource_spans.scope_spans {
            if let Some(scope) = &mut scope_spans.scope {
                attributes(rules, &mut scope.attributes, false);
            }
            for span in &mut scope_spans.spans {
                attributes(rules, &mut span.attributes, true);
                for event in &mut span.events {
                    if hide && LLM_CONTENT_EVENTS.contains(&event.name.as_str()) {
                        event.attributes.iter_mut().for_each(replace);
                    } else {
                        attributes(rules, &mut event.attributes, true);
                    }
                }
                for link in &mut span.links {
                    attributes(rules, &mut link.attributes, false);
                }
                if let Some(status) = &mut span.status {
                    rules.redact_text(&mut status.message);
                }
            }
        }
    }
}

fn replace(kv: &mut KeyValue) {
    kv.value = Some(AnyValue {
        value: Some(any_value::Value::StringValue(REDACTED.into())),
    });
}

/// `may_hold_content`: span and event attributes, where LLM prompts and responses live.
fn attributes(rules: &RedactConfig, list: &mut [KeyValue], may_hold_content: bool) {
    for kv in list {
        let whole = if may_hold_content {
            rules.redacts_attribute(&kv.key)
        } else {
            rules.redacts_key(&kv.key)
        };
        if whole {
            replace(kv);
        } else if let Some(value) = &mut kv.value {
            any_value(rules, value);
        }
    }
}

/// Walks a value without recursion (arrays and key-value lists nest without bound).
fn any_value(rules: &RedactConfig, root: &mut AnyValue) {
    let mut stack: Vec<&mut AnyValue> = vec![root];
    while let Some(value) = stack.pop() {
        match &mut value.value {
            Some(any_value::Value::StringValue(text)) => rules.redact_text(text),
            Some(any_value::Value::ArrayValue(array)) => stack.extend(array.values.iter_mut()),
            Some(any_value::Value::KvlistValue(list)) => {
                for kv in &mut list.values {
                    if rules.redacts_key(&kv.key) {
                        replace(kv);
                    } else if let Some(item) = &mut kv.value {
                        stack.push(item);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};

    fn text(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.into())),
            }),
            ..KeyValue::default()
        }
    }

    fn string_of(kv: &KeyValue) -> &str {
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => s,
            other => panic!("not a string: {other:?}"),
        }
    }

    fn request(span: Span) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![span],
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        }
    }

    #[test]
    fn keys_patterns_and_llm_content_are_redacted_everywhere_ids_stay() {
        let rules = RedactConfig::parse(
            &[
                "password,authorization".into(),
                r"re:sk-[a-z0-9]{6,}".into(),
            ],
            true,
        )
        .unwrap();
        let nested = KeyValue {
            key: "payload".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::ArrayValue(ArrayValue {
                    values: vec![AnyValue {
                        value: Some(any_value::Value::KvlistValue(KeyValueList {
                            values: vec![text("Password", "hunter2"), text("note", "ok")],
                        })),
                    }],
                })),
            }),
            ..KeyValue::default()
        };
        let mut sent = request(Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "POST /login".into(),
            attributes: vec![
                text("authorization", "Bearer abc"),
                text("http.url", "/v1?key=sk-abcdef123"),
                text("gen_ai.input.messages", "[{\"role\":\"user\"}]"),
                text("llm.output_messages.0.message.content", "the answer"),
                text("gen_ai.request.model", "gpt-4o"),
                nested,
            ],
            events: vec![
                span::Event {
                    name: "gen_ai.user.message".into(),
                    attributes: vec![text("content", "my secret question")],
                    ..span::Event::default()
                },
                span::Event {
                    name: "exception".into(),
                    attributes: vec![text("exception.message", "bad key sk-zzzzzz99")],
                    ..span::Event::default()
                },
            ],
            status: Some(Status {
                message: "rejected sk-abcdef123".into(),
                code: 2,
            }),
            ..Span::default()
        });
        redact_request(&rules, &mut sent);
        let span = &sent.resource_spans[0].scope_spans[0].spans[0];
        let attrs: Vec<&str> = span.attributes.iter().map(string_of_or_nested).collect();
        assert_eq!(
            attrs,
            [
                REDACTED,
                "/v1?key=[redacted]",
                REDACTED,
                REDACTED,
                "gpt-4o",
                "nested"
            ]
        );
        let Some(any_value::Value::ArrayValue(array)) =
            &span.attributes[5].value.as_ref().unwrap().value
        else {
            unreachable!()
        };
        let Some(any_value::Value::KvlistValue(list)) = &array.values[0].value else {
            unreachable!()
        };
        assert_eq!(string_of(&list.values[0]), REDACTED);
        assert_eq!(string_of(&list.values[1]), "ok");
        assert_eq!(string_of(&span.events[0].attributes[0]), REDACTED);
        assert_eq!(
            string_of(&span.events[1].attributes[0]),
            "bad key [redacted]"
        );
        assert_eq!(span.status.as_ref().unwrap().message, "rejected [redacted]");
        assert_eq!(
            (span.name.as_str(), &span.trace_id, &span.span_id),
            ("POST /login", &vec![1; 16], &vec![2; 8])
        );
    }

    fn string_of_or_nested(kv: &KeyValue) -> &str {
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => s,
            _ => "nested",
        }
    }
}
