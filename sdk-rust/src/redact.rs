//! Redaction rules, shared by the SDK (applied in the writer, before an event leaves the process)
//! and the agent (applied at ingest, before anything is stored, streamed or exported): values
//! under listed key names (log fields, trace and step attributes, custom payloads) and text matching listed
//! patterns (prompts, responses, log messages, error messages and stacks, artifact previews and
//! URLs, string values) become [`REDACTED`]; `hide_llm_content` replaces every prompt and
//! response.

use std::collections::HashSet;

use crate::wire::{Attributes, ErrorInfo, Event};
use regex::Regex;
use serde_json::Value;

/// What redacted text reads.
pub const REDACTED: &str = "[redacted]";

/// Attributes that carry LLM prompts or responses under the GenAI and OpenInference conventions
/// (exact keys); `hide_llm_content` replaces them wherever attributes are kept.
pub const LLM_CONTENT_KEYS: &[&str] = &[
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.prompt",
    "gen_ai.completion",
    "input.value",
    "output.value",
];

/// Prefixes of indexed message attributes that carry prompts or responses.
pub const LLM_CONTENT_PREFIXES: &[&str] = &[
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.prompts.",
];

/// A redaction entry that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    /// The pattern does not compile.
    #[error("redact pattern `{pattern}` is not a valid regular expression: {source}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// Why.
        source: regex::Error,
    },
}

/// Redaction rules.
#[derive(Debug, Clone, Default)]
pub struct RedactConfig {
    /// Key names whose values are replaced (compared case-insensitively).
    pub keys: HashSet<String>,
    /// Patterns replaced inside any text.
    pub patterns: Vec<Regex>,
    /// Replace every LLM prompt and response.
    pub hide_llm_content: bool,
}

impl RedactConfig {
    /// Parses entries: `re:<regex>` is one pattern, anything else comma-separated key names.
    pub fn parse(entries: &[String], hide_llm_content: bool) -> Result<Self, RedactError> {
        let mut config = Self {
            hide_llm_content,
            ..Self::default()
        };
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            match entry.strip_prefix("re:") {
                Some(pattern) => config.patterns.push(Regex::new(pattern).map_err(|source| {
                    RedactError::Pattern {
                        pattern: pattern.to_owned(),
                        source,
                    }
                })?),
                None => config.keys.extend(
                    entry
                        .split(',')
                        .map(|k| k.trim().to_ascii_lowercase())
                        .filter(|k| !k.is_empty()),
                ),
            }
        }
        Ok(config)
    }

    /// Whether any rule is set (so ingest can skip the walk).
    pub fn is_active(&self) -> bool {
        !self.keys.is_empty() || !self.patterns.is_empty() || self.hide_llm_content
    }

    /// Replaces every pattern match in `text`.
    pub fn redact_text(&self, text: &mut String) {
        for pattern in &self.patterns {
            if let std::borrow::Cow::Owned(replaced) = pattern.replace_all(text, REDACTED) {
                *text = replaced;
            }
        }
    }

    fn opt_text(&self, text: &mut Option<String>) {
        if let Some(text) = text {
            self.redact_text(text);
        }
    }

    fn boxed_text(&self, text: &mut Option<Box<str>>) {
        if let Some(boxed) = text {
            for pattern in &self.patterns {
                if let std::borrow::Cow::Owned(replaced) = pattern.replace_all(boxed, REDACTED) {
                    *boxed = replaced.into_boxed_str();
                }
            }
        }
    }

    fn error(&self, error: &mut Option<Box<ErrorInfo>>) {
        if let Some(error) = error {
            self.redact_text(&mut error.message);
            self.opt_text(&mut error.stack);
        }
    }

    /// Whether values under `key` are replaced whole.
    pub fn redacts_key(&self, key: &str) -> bool {
        !self.keys.is_empty() && self.keys.contains(&key.to_ascii_lowercase())
    }

    /// Whether an attribute under `key` is replaced whole: a listed key, or LLM content when
    /// `hide_llm_content` is set.
    pub fn redacts_attribute(&self, key: &str) -> bool {
        self.redacts_key(key)
            || (self.hide_llm_content
                && (LLM_CONTENT_KEYS.contains(&key)
                    || LLM_CONTENT_PREFIXES.iter().any(|p| key.starts_with(p))))
    }

    /// Walks a JSON tree without recursion (payloads may be deeply nested).
    fn value(&self, root: &mut Value) {
        let mut stack: Vec<&mut Value> = vec![root];
        while let Some(value) = stack.pop() {
            match value {
                Value::String(s) => self.redact_text(s),
                Value::Array(items) => stack.extend(items.iter_mut()),
                Value::Object(map) => {
                    for (key, item) in map.iter_mut() {
                        if self.redacts_key(key) {
                            *item = Value::String(REDACTED.into());
                        } else {
                            stack.push(item);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn attributes(&self, attributes: &mut Option<Attributes>) {
        if let Some(map) = attributes {
            for (key, item) in map.iter_mut() {
                if self.redacts_attribute(key) {
                    *item = Value::String(REDACTED.into());
                } else {
                    self.value(item);
                }
            }
        }
    }

    /// Redacts one event in place.
    pub fn apply(&self, event: &mut Event) {
        match event {
            Event::TraceStart(e) => self.attributes(&mut e.attrs),
            Event::StepStart(e) => self.attributes(&mut e.attrs),
            Event::TraceEnd(e) => self.error(&mut e.error),
            Event::StepEnd(e) => {
                self.error(&mut e.error);
                self.attributes(&mut e.attrs);
            }
            Event::Op(e) => self.boxed_text(&mut e.error),
            Event::Log(e) => {
                self.redact_text(&mut e.msg);
                self.attributes(&mut e.fields);
            }
            Event::Llm(e) => {
                if self.hide_llm_content {
                    for text in [&mut e.prompt, &mut e.response].into_iter().flatten() {
                        *text = REDACTED.into();
                    }
                } else {
                    self.opt_text(&mut e.prompt);
                    self.opt_text(&mut e.response);
                }
            }
            Event::Artifact(e) => {
                self.opt_text(&mut e.preview);
                self.opt_text(&mut e.url);
            }
            Event::Retry(e) => self.opt_text(&mut e.reason),
            Event::Custom(e) => {
                if let Some(payload) = &mut e.payload {
                    self.value(payload);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Llm, Log, LogLevel, SpanId, TraceId};

    fn config(entries: &[&str], hide: bool) -> RedactConfig {
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        RedactConfig::parse(&entries, hide).unwrap()
    }

    #[test]
    fn keys_and_patterns_are_redacted_in_log_fields_and_messages() {
        let rules = config(&["password", r"re:sk-[a-z0-9]{8,}"], false);
        let mut fields = Attributes::new();
        fields.insert("Password".into(), Value::String("hunter2".into()));
        fields.insert(
            "nested".into(),
            serde_json::json!({"password": "x", "note": "key sk-abcdefgh12"}),
        );
        let mut event = Event::Log(Log {
            t: 1,
            trace: TraceId(1),
            span: Some(SpanId(1)),
            level: LogLevel::Info,
            msg: "using sk-abcdefgh12 now".into(),
            fields: Some(fields),
        });
        rules.apply(&mut event);
        let Event::Log(log) = event else {
            unreachable!()
        };
        assert_eq!(log.msg, "using [redacted] now");
        let fields = log.fields.unwrap();
        assert_eq!(fields["Password"], REDACTED);
        assert_eq!(fields["nested"]["password"], REDACTED);
        assert_eq!(fields["nested"]["note"], "key [redacted]");
    }

    #[test]
    fn hide_llm_content_keeps_tokens_and_model() {
        let rules = config(&[], true);
        let mut event = Event::Llm(Box::new(Llm {
            t: 1,
            trace: TraceId(1),
            span: None,
            model: "gpt".into(),
            provider: None,
            prompt: Some("secret prompt".into()),
            response: None,
            input_tokens: Some(3),
            output_tokens: Some(4),
            cost: Some(0.1),
            dur: 0,
        }));
        rules.apply(&mut event);
        let Event::Llm(llm) = event else {
            unreachable!()
        };
        assert_eq!(llm.prompt.as_deref(), Some(REDACTED));
        assert_eq!(llm.response, None);
        assert_eq!((llm.model.as_str(), llm.input_tokens), ("gpt", Some(3)));
    }

    #[test]
    fn deep_payloads_do_not_recurse() {
        let rules = config(&["secret"], false);
        let mut value = serde_json::json!({"secret": 1});
        for _ in 0..100_000 {
            value = Value::Array(vec![value]);
        }
        rules.value(&mut value);
        let mut cursor = &value;
        while let Value::Array(items) = cursor {
            cursor = &items[0];
        }
        assert_eq!(cursor["secret"], REDACTED);
        // Dropping a deep tree recurses in serde_json; unwind it by hand.
        let mut stack = vec![value];
        while let Some(v) = stack.pop() {
            if let Value::Array(items) = v {
                stack.extend(items);
            }
        }
    }

    #[test]
    fn step_attributes_are_redacted_at_start_and_end() {
        let rules = config(&["authorization", r"re:tok_[0-9]+"], false);
        let mut attrs = Attributes::new();
        attrs.insert("Authorization".into(), Value::String("Bearer abc".into()));
        attrs.insert("http.url".into(), Value::String("/pay?t=tok_123".into()));
        let mut start = Event::StepStart(crate::wire::StepStart {
            attrs: Some(attrs.clone()),
            ..crate::wire::StepStart::default()
        });
        let mut end = Event::StepEnd(crate::wire::StepEnd {
            t: 1,
            trace: TraceId(1),
            span: SpanId(1),
            status: crate::wire::EndStatus::Completed,
            error: None,
            name: None,
            attrs: Some(attrs),
        });
        rules.apply(&mut start);
        rules.apply(&mut end);
        for attrs in [
            match start {
                Event::StepStart(e) => e.attrs,
                _ => unreachable!(),
            },
            match end {
                Event::StepEnd(e) => e.attrs,
                _ => unreachable!(),
            },
        ] {
            let attrs = attrs.unwrap();
            assert_eq!(attrs["Authorization"], REDACTED);
            assert_eq!(attrs["http.url"], "/pay?t=[redacted]");
        }
    }

    #[test]
    fn hide_llm_content_covers_genai_attributes() {
        let rules = config(&[], true);
        let mut attrs = Attributes::new();
        attrs.insert("gen_ai.input.messages".into(), Value::String("q".into()));
        attrs.insert("llm.output_messages.0.message.content".into(), "a".into());
        attrs.insert("gen_ai.request.model".into(), "gpt-4o".into());
        let mut event = Event::StepStart(crate::wire::StepStart {
            attrs: Some(attrs),
            ..crate::wire::StepStart::default()
        });
        rules.apply(&mut event);
        let Event::StepStart(start) = event else {
            unreachable!()
        };
        let attrs = start.attrs.unwrap();
        assert_eq!(attrs["gen_ai.input.messages"], REDACTED);
        assert_eq!(attrs["llm.output_messages.0.message.content"], REDACTED);
        assert_eq!(attrs["gen_ai.request.model"], "gpt-4o");
        assert!(!config(&[], false).redacts_attribute("gen_ai.input.messages"));
    }

    #[test]
    fn a_bad_pattern_is_a_clear_error() {
        let err = RedactConfig::parse(&["re:(".into()], false).unwrap_err();
        assert!(err.to_string().contains("not a valid regular expression"));
    }
}
