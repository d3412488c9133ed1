//! One live message and the per-subscriber filter.

use flowscope::wire::TraceId;

/// A message for live subscribers: `{"type": kind, "data": …}`.
#[derive(Debug, Clone)]
pub struct LiveEvent {
    /// Sequence number (SSE `id:`).
    pub seq: u64,
    /// `trace.created`, `trace.updated`, `trace.completed`, `group.updated`, `flow.status`,
    /// `heartbeat`, `error`.
    pub kind: &'static str,
    /// Flows it concerns (for the `flow` filter).
    pub flows: Vec<String>,
    /// Traces it concerns (for the `traceId` filter).
    pub trace_ids: Vec<TraceId>,
    /// JSON of `data`.
    pub data: String,
}

impl LiveEvent {
    /// A heartbeat.
    pub fn heartbeat(seq: u64) -> Self {
        let time = flowscope::now_nanos() / 1_000_000;
        Self {
            seq,
            kind: "heartbeat",
            flows: vec![],
            trace_ids: vec![],
            data: format!(r#"{{"time":{time}}}"#),
        }
    }

    /// The error sent to a client before it is dropped.
    pub fn dropped(seq: u64, code: &str, message: &str) -> Self {
        let data = serde_json::json!({"code": code, "message": message}).to_string();
        Self {
            seq,
            kind: "error",
            flows: vec![],
            trace_ids: vec![],
            data,
        }
    }

    /// The WebSocket text: `{"type":…,"data":…}`.
    pub fn envelope(&self) -> String {
        format!(
            r#"{{"type":"{}","seq":{},"data":{}}}"#,
            self.kind, self.seq, self.data
        )
    }
}

/// A live-stream query parameter that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid query parameter `{name}`: {message}")]
pub struct FilterError {
    /// The parameter.
    pub name: String,
    /// What is wrong.
    pub message: String,
}

/// What a subscriber wants (query parameters `flow` and `traceId`).
#[derive(Debug, Clone, Default)]
pub struct LiveFilter {
    /// Only this flow.
    pub flow: Option<String>,
    /// Only this trace.
    pub trace_id: Option<TraceId>,
}

impl LiveFilter {
    /// Parses the query string (`flow`, `traceId`; names in `ignore` are skipped); errors name
    /// the bad parameter.
    pub fn parse(raw: Option<&str>, ignore: &[&str]) -> Result<Self, FilterError> {
        let bad = |name: &str, message: String| FilterError {
            name: name.to_owned(),
            message,
        };
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|e| bad("query", e.to_string()))?;
        let mut filter = LiveFilter::default();
        for (name, value) in pairs {
            match name.as_str() {
                "flow" if !value.is_empty() => filter.flow = Some(value),
                "flow" => return Err(bad("flow", "must not be empty".into())),
                "traceId" => {
                    filter.trace_id =
                        Some(TraceId::from_hex(&value).map_err(|e| bad("traceId", e.to_string()))?)
                }
                other if ignore.contains(&other) => {}
                _ => {
                    return Err(bad(
                        &name,
                        "unknown parameter; expected flow, traceId or token".into(),
                    ));
                }
            }
        }
        Ok(filter)
    }

    /// Whether `event` passes. Heartbeats and errors always do.
    pub fn admits(&self, event: &LiveEvent) -> bool {
        if matches!(event.kind, "heartbeat" | "error") {
            return true;
        }
        self.flow
            .as_ref()
            .is_none_or(|f| event.flows.iter().any(|x| x == f))
            && self.trace_id.is_none_or(|id| event.trace_ids.contains(&id))
    }
}
