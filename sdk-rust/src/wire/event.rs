//! The events an SDK sends. Each is a map with `"k"` (kind) and `"t"` (unix nanoseconds).
//!
//! See `PROTOCOL.md` at the crate root for the field tables. Optional fields are omitted on the
//! wire when absent; unknown fields are ignored and unknown kinds decode as [`Event::Unknown`].

use std::borrow::Cow;
use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::Name;
use super::ids::{SpanId, TraceId};

/// Free-form attributes (JSON object semantics in both encodings).
pub type Attributes = serde_json::Map<String, serde_json::Value>;

/// Unix time in nanoseconds.
pub type UnixNanos = u64;

/// One event. The serde tag `k` carries the kind in snake_case (`trace_start`, `op`, …).
///
/// Decoding is hand-written for speed: when `k` is the first key (as every flowscope SDK writes
/// it) the rest of the map goes straight into the variant's struct, with no intermediate buffer;
/// otherwise the map is buffered once and decoded the same way.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum Event {
    /// A run of a flow begins.
    TraceStart(Box<TraceStart>),
    /// A run of a flow ends.
    TraceEnd(TraceEnd),
    /// A step begins.
    StepStart(StepStart),
    /// A step ends.
    StepEnd(StepEnd),
    /// A state, emit or stream operation (timed).
    Op(Op),
    /// A log line.
    Log(Log),
    /// An LLM call.
    Llm(Box<Llm>),
    /// An artifact produced by a step.
    Artifact(Box<Artifact>),
    /// A retry of a step or call.
    Retry(Retry),
    /// A checkpoint was written.
    Checkpoint(Checkpoint),
    /// A state-machine transition.
    Transition(Transition),
    /// The trace joins a correlation group.
    Correlate(Correlate),
    /// An application-defined event.
    Custom(Custom),
    /// Client-side counters, sent periodically by the SDK writer.
    Stats(ClientStats),
    /// The SDK dropped events of a trace (its queue was full): the trace is incomplete.
    Dropped(Dropped),
    /// A kind this version does not know; counted and skipped by the agent.
    Unknown,
}

/// A map key or kind name, borrowed from the input when possible.
struct Text<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// Decodes the variant named `kind` from a deserializer over the rest of its fields.
fn variant<'de, D: Deserializer<'de>>(kind: &str, fields: D) -> Result<Event, D::Error> {
    Ok(match kind {
        "trace_start" => Event::TraceStart(Box::new(TraceStart::deserialize(fields)?)),
        "trace_end" => Event::TraceEnd(TraceEnd::deserialize(fields)?),
        "step_start" => Event::StepStart(StepStart::deserialize(fields)?),
        "step_end" => Event::StepEnd(StepEnd::deserialize(fields)?),
        "op" => Event::Op(Op::deserialize(fields)?),
        "log" => Event::Log(Log::deserialize(fields)?),
        "llm" => Event::Llm(Box::new(Llm::deserialize(fields)?)),
        "artifact" => Event::Artifact(Box::new(Artifact::deserialize(fields)?)),
        "retry" => Event::Retry(Retry::deserialize(fields)?),
        "checkpoint" => Event::Checkpoint(Checkpoint::deserialize(fields)?),
        "transition" => Event::Transition(Transition::deserialize(fields)?),
        "correlate" => Event::Correlate(Correlate::deserialize(fields)?),
        "custom" => Event::Custom(Custom::deserialize(fields)?),
        "stats" => Event::Stats(ClientStats::deserialize(fields)?),
        "dropped" => Event::Dropped(Dropped::deserialize(fields)?),
        _ => {
            IgnoredAny::deserialize(fields)?;
            Event::Unknown
        }
    })
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EventVisitor;
        impl<'de> Visitor<'de> for EventVisitor {
            type Value = Event;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event map with a `k` kind")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
                let first: Option<Text<'de>> = map.next_key()?;
                if first.as_ref().is_some_and(|k| k.0 == "k") {
                    let kind: Text<'de> = map.next_value()?;
                    return variant(&kind.0, MapAccessDeserializer::new(map));
                }
                // `k` is not first: buffer the map once, then decode from the buffer.
                let mut buffered = serde_json::Map::new();
                if let Some(key) = first {
                    buffered.insert(key.0.into_owned(), map.next_value()?);
                }
                while let Some((key, value)) = map.next_entry::<String, serde_json::Value>()? {
                    buffered.insert(key, value);
                }
                let kind = match buffered.get("k") {
                    Some(serde_json::Value::String(kind)) => kind.clone(),
                    _ => return Err(de::Error::missing_field("k")),
                };
                variant(&kind, serde_json::Value::Object(buffered)).map_err(de::Error::custom)
            }
        }
        deserializer.deserialize_map(EventVisitor)
    }
}

impl Event {
    /// Every kind's wire name, in [`Event::kind_index`] order: the one table metrics, health
    /// and the decoder's tests use.
    pub const KINDS: [&'static str; 16] = [
        "trace_start",
        "trace_end",
        "step_start",
        "step_end",
        "op",
        "log",
        "llm",
        "artifact",
        "retry",
        "checkpoint",
        "transition",
        "correlate",
        "custom",
        "stats",
        "dropped",
        "unknown",
    ];

    /// This event's position in [`Event::KINDS`].
    pub fn kind_index(&self) -> usize {
        match self {
            Event::TraceStart(_) => 0,
            Event::TraceEnd(_) => 1,
            Event::StepStart(_) => 2,
            Event::StepEnd(_) => 3,
            Event::Op(_) => 4,
            Event::Log(_) => 5,
            Event::Llm(_) => 6,
            Event::Artifact(_) => 7,
            Event::Retry(_) => 8,
            Event::Checkpoint(_) => 9,
            Event::Transition(_) => 10,
            Event::Correlate(_) => 11,
            Event::Custom(_) => 12,
            Event::Stats(_) => 13,
            Event::Dropped(_) => 14,
            Event::Unknown => 15,
        }
    }

    /// The event's own time (`t`), to set in place. `None` for the kinds without one.
    pub fn time_mut(&mut self) -> Option<&mut UnixNanos> {
        Some(match self {
            Event::TraceStart(e) => &mut e.t,
            Event::TraceEnd(e) => &mut e.t,
            Event::StepStart(e) => &mut e.t,
            Event::StepEnd(e) => &mut e.t,
            Event::Op(e) => &mut e.t,
            Event::Log(e) => &mut e.t,
            Event::Llm(e) => &mut e.t,
            Event::Artifact(e) => &mut e.t,
            Event::Retry(e) => &mut e.t,
            Event::Checkpoint(e) => &mut e.t,
            Event::Transition(e) => &mut e.t,
            Event::Correlate(e) => &mut e.t,
            Event::Custom(e) => &mut e.t,
            Event::Dropped(_) | Event::Stats(_) | Event::Unknown => return None,
        })
    }

    /// When the event's subject started and ended (unix ns); equal for instants. `None` for the
    /// kinds without a time (`dropped`, `stats`, unknown).
    pub fn times(&self) -> Option<(UnixNanos, UnixNanos)> {
        let t = match self {
            Event::TraceStart(e) => e.t,
            Event::TraceEnd(e) => e.t,
            Event::StepStart(e) => e.t,
            Event::StepEnd(e) => e.t,
            Event::Op(e) => return Some((e.t, e.t.saturating_add(e.dur))),
            Event::Log(e) => e.t,
            Event::Llm(e) => return Some((e.t, e.t.saturating_add(e.dur))),
            Event::Artifact(e) => e.t,
            Event::Retry(e) => e.t,
            Event::Checkpoint(e) => e.t,
            Event::Transition(e) => e.t,
            Event::Correlate(e) => e.t,
            Event::Custom(e) => e.t,
            Event::Dropped(_) | Event::Stats(_) | Event::Unknown => return None,
        };
        Some((t, t))
    }

    /// The wire name of this event's kind.
    pub fn kind(&self) -> &'static str {
        Self::KINDS[self.kind_index()]
    }

    /// An estimate of the memory this event holds (its own size, its boxed parts, strings and
    /// attributes), which bounds the SDK queue in bytes. Cheap: one pass over top-level fields.
    #[inline]
    pub fn queued_size(&self) -> usize {
        fn text(s: &str) -> usize {
            s.len()
        }
        fn opt<S: AsRef<str>>(s: &Option<S>) -> usize {
            s.as_ref().map_or(0, |s| text(s.as_ref()))
        }
        fn attrs(a: &Option<Attributes>) -> usize {
            a.as_ref().map_or(0, |map| {
                map.iter()
                    .map(|(k, v)| {
                        // A map entry's own overhead, its key, and a flat guess for nested values.
                        64 + k.len()
                            + match v {
                                serde_json::Value::String(s) => s.len(),
                                serde_json::Value::Array(a) => 32 * a.len(),
                                serde_json::Value::Object(o) => 64 * o.len(),
                                _ => 0,
                            }
                    })
                    .sum()
            })
        }
        fn error(e: &Option<Box<ErrorInfo>>) -> usize {
            e.as_ref().map_or(0, |e| {
                size_of::<ErrorInfo>()
                    + e.message.len()
                    + opt(&e.error_type)
                    + opt(&e.code)
                    + opt(&e.stack)
            })
        }
        use std::mem::size_of;
        size_of::<Event>()
            + match self {
                Event::TraceStart(e) => {
                    size_of::<TraceStart>()
                        + text(&e.flow)
                        + opt(&e.step)
                        + opt(&e.cid)
                        + attrs(&e.attrs)
                }
                Event::TraceEnd(e) => error(&e.error),
                Event::StepStart(e) => text(&e.name) + attrs(&e.attrs),
                Event::StepEnd(e) => error(&e.error) + opt(&e.name) + attrs(&e.attrs),
                Event::Op(e) => opt(&e.subject) + opt(&e.detail) + opt(&e.error),
                Event::Log(e) => text(&e.msg) + attrs(&e.fields),
                Event::Llm(e) => {
                    size_of::<Llm>()
                        + text(&e.model)
                        + opt(&e.provider)
                        + opt(&e.prompt)
                        + opt(&e.response)
                }
                Event::Artifact(e) => {
                    size_of::<Artifact>()
                        + text(&e.name)
                        + opt(&e.url)
                        + opt(&e.preview)
                        + opt(&e.mime)
                }
                Event::Retry(e) => opt(&e.reason),
                Event::Checkpoint(e) => text(&e.id),
                Event::Transition(e) => text(&e.from) + text(&e.to) + opt(&e.action),
                Event::Correlate(e) => text(&e.cid) + opt(&e.name),
                // A payload is not walked: a flat guess keeps this cheap.
                Event::Custom(e) => text(&e.name) + e.payload.as_ref().map_or(0, |_| 256),
                Event::Stats(_) | Event::Dropped(_) | Event::Unknown => 0,
            }
    }

    /// The trace this event belongs to (`None` for `stats` and unknown kinds).
    pub fn trace_id(&self) -> Option<TraceId> {
        Some(match self {
            Event::TraceStart(e) => e.trace,
            Event::TraceEnd(e) => e.trace,
            Event::StepStart(e) => e.trace,
            Event::StepEnd(e) => e.trace,
            Event::Op(e) => e.trace,
            Event::Log(e) => e.trace,
            Event::Llm(e) => e.trace,
            Event::Artifact(e) => e.trace,
            Event::Retry(e) => e.trace,
            Event::Checkpoint(e) => e.trace,
            Event::Transition(e) => e.trace,
            Event::Correlate(e) => e.trace,
            Event::Custom(e) => e.trace,
            Event::Dropped(e) => e.trace,
            Event::Stats(_) | Event::Unknown => return None,
        })
    }
}

/// How a trace was triggered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryType {
    /// An HTTP/API request.
    #[default]
    Api,
    /// A schedule.
    Cron,
    /// An event/topic subscription.
    Event,
}

impl EntryType {
    /// Every entry type.
    pub const ALL: [Self; 3] = [Self::Api, Self::Cron, Self::Event];

    /// The entry type with this wire name, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }

    /// The wire and API name (`api`, `cron`, `event`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Cron => "cron",
            Self::Event => "event",
        }
    }
}

/// Final status reported by `trace_end` / `step_end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndStatus {
    /// Finished normally.
    #[default]
    Completed,
    /// Finished with an error.
    Failed,
}

impl EndStatus {
    /// Every status.
    pub const ALL: [Self; 2] = [Self::Completed, Self::Failed];

    /// The wire name (`completed`, `failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }
}

/// An error attached to a failed step or trace.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// Human-readable message.
    pub message: String,
    /// Exception/error type name (`ValueError`, `TypeError`, …).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Application error code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Stack trace as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
}

impl ErrorInfo {
    /// An error with just a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            ..Self::default()
        }
    }

    /// The error every SDK records for a raised exception: empty type, code and stack are left
    /// out; an empty message becomes the type name, else `error`.
    pub fn from_parts(
        message: Option<&str>,
        error_type: Option<&str>,
        code: Option<&str>,
        stack: Option<&str>,
    ) -> Self {
        let keep = |s: Option<&str>| {
            s.map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let error_type = keep(error_type);
        Self {
            message: keep(message)
                .or_else(|| error_type.clone())
                .unwrap_or_else(|| "error".to_owned()),
            error_type,
            code: keep(code),
            stack: stack.filter(|s| !s.trim().is_empty()).map(str::to_owned),
        }
    }

    /// The text of a failed operation's `error` field, as every SDK writes it: `Type: message`,
    /// or the message alone when there is no type.
    pub fn op_text(&self) -> String {
        match self.error_type.as_deref() {
            Some(kind) if !self.message.is_empty() => format!("{kind}: {}", self.message),
            Some(kind) => kind.to_owned(),
            None => self.message.clone(),
        }
    }

    /// The error an SDK's HTTP server middleware records for a 5xx response without an
    /// exception: `HTTP 503`, type `HttpError`, code `503`.
    pub fn http_status(status: u16) -> Self {
        Self {
            message: format!("HTTP {status}"),
            error_type: Some("HttpError".to_owned()),
            code: Some(status.to_string()),
            stack: None,
        }
    }
}

/// `trace_start`: a run of `flow` begins — or, when the trace id already has work from another
/// service, a new **segment** of that trace (this service's part of it) begins.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TraceStart {
    /// Time (unix ns).
    pub t: UnixNanos,
    /// Trace id.
    #[serde(rename = "tr")]
    pub trace: TraceId,
    /// Flow name.
    pub flow: String,
    /// What triggered the run.
    #[serde(default)]
    pub entry: EntryType,
    /// Name of the entry step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Correlation id (joins the trace group of that id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
    /// The trace whose emit started this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<TraceId>,
    /// Free-form attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attrs: Option<Attributes>,
    /// This segment's own span id: the parent of its top-level steps and the parent-id sent on
    /// calls made outside any step. Absent from older SDKs (one segment, derived id).
    #[serde(rename = "sp", default, skip_serializing_if = "Option::is_none")]
    pub span: Option<SpanId>,
    /// The caller's span (from an incoming `traceparent`) this segment continues.
    #[serde(rename = "ps", default, skip_serializing_if = "Option::is_none")]
    pub remote_parent: Option<SpanId>,
    /// W3C trace flags received with the remote parent (bit 0 sampled, bit 1 random).
    #[serde(rename = "fl", default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<u8>,
}

/// `trace_end`: the run (or this service's segment of it) is over.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TraceEnd {
    /// Time (unix ns).
    pub t: UnixNanos,
    /// Trace id.
    #[serde(rename = "tr")]
    pub trace: TraceId,
    /// Final status.
    #[serde(default)]
    pub status: EndStatus,
    /// Error, when failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Box<ErrorInfo>>,
    /// The segment that ends (its `trace_start` `sp`).
    #[serde(rename = "sp", default, skip_serializing_if = "Option::is_none")]
    pub span: Option<SpanId>,
}

/// What a step stands for (OpenTelemetry span kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    /// Work inside the service (a workflow step).
    #[default]
    Internal,
    /// An outgoing call (HTTP client); its span id is the parent-id sent with the call.
    Client,
    /// Handling an incoming call.
    Server,
    /// Sending a message.
    Producer,
    /// Handling a message.
    Consumer,
}

impl SpanKind {
    /// Every kind.
    pub const ALL: [Self; 5] = [
        Self::Internal,
        Self::Client,
        Self::Server,
        Self::Producer,
        Self::Consumer,
    ];

    /// The wire name (`internal`, `client`, `server`, `producer`, `consumer`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Internal => "internal",
            Self::Client => "client",
            Self::Server => "server",
            Self::Producer => "producer",
            Self::Consumer => "consumer",
        }
    }
}

/// `step_start`: a step (span) begins.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StepStart {
    /// Time (unix ns).
    pub t: UnixNanos,
    /// Trace id.
    #[serde(rename = "tr")]
    pub trace: TraceId,
    /// This step's span id.
    #[serde(rename = "sp")]
    pub span: SpanId,
    /// Enclosing step for nested steps, or the segment's span (`trace_start` `sp`) for a
    /// top-level one.
    #[serde(rename = "ps", default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<SpanId>,
    /// Step name.
    pub name: Name,
    /// Span kind (default `internal`; `client` for an outgoing call).
    #[serde(default, skip_serializing_if = "is_internal")]
    pub kind: SpanKind,
    /// Attributes (e.g. `http.request.method`, `url.full` of a client call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attrs: Option<Attributes>,
}

fn is_internal(kind: &SpanKind) -> bool {
    *kind == SpanKind::Internal
}

/// `step_end`: a step ends.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StepEnd {
    /// Time (unix ns).
    pub t: UnixNanos,
    /// Trace id.
    #[serde(rename = "tr")]
    pub trace: TraceId,
    /// The step's span id.
    #[serde(rename = "sp")]
    pub span: SpanId,
    /// Final status.
    #[serde(default)]
    pub status: EndStatus,
    /// Error, when failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Box<ErrorInfo>>,
    /// Step name, repeated so an end that overtakes its start still names the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Name>,
    /// Attributes known at the end (e.g. `http.response.status_code`), merged into the step's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attrs: Option<Attributes>,
}

/// Family of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// Key/value state.
    State,
    /// Emitting to a topic.
    Emit,
    /// Stream items.
    Stream,
}

impl OpKind {
    /// Every kind.
    pub const ALL: [Self; 3] = [Self::State, Self::Emit, Self::Stream];

    /// The kind with this wire name, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The wire and API name (`state`, `emit`, `stream`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::State => "state",
            Self::Emit => "emit",
            Self::Stream => "stream",
        }
    }
}

/// What an operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpAction {
    /// Read.
    Get,
    /// Write.
    Set,
    /// Remove one key/item.
    Delete,
    /// Remove everything (state scope).
    Clear,
    /// Send to a stream / publish to a topic.
    Send,
    /// Any other action; kept as "other".
    #[serde(other)]
    Other,
}

impl OpAction {
    /// The action with this wire name; anything else is `other`, as the protocol says.
    pub fn parse(name: &str) -> Self {
        [Self::Get, Self::Set, Self::Delete, Self::Clear, Self::Send]
            .into_iter()
            .find(|a| a.as_str() == name)
            .unwrap_or(Self::Other)
    }

    /// The wire and API name (`get`, `set`, `delete`, `clear`, `send`, `other`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Set => "set",
            Self::Delete => "delete",
            Self::Clear => "clear",
            Self::Send => "send",
            Self::Other => "other",
        }
    }
}

/// `op`: a state/emit/stream operation inside a step.
///
/// On the wire the subject is `key`, `topic` or `stream` and the detail `to` or `id`, by kind
/// (PROTOCOL.md). In memory they are two fields, so that the event stays small: every op is
/// copied into the SDK queue and out again, and an `Event` of at most 128 bytes is copied inline.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    /// Start time (unix ns).
    pub t: UnixNanos,
    /// Trace id.
    pub trace: TraceId,
    /// Step it ran in.
    pub span: Option<SpanId>,
    /// Family.
    pub kind: OpKind,
    /// Action.
    pub action: OpAction,
    /// Whether it succeeded.
    pub ok: bool,
    /// The state key, emit topic or stream name (`key` / `topic` / `stream` on the wire).
    pub subject: Option<Name>,
    /// The step an emit triggers (`to`) or the stream item id (`id`); none for state.
    pub detail: Option<Name>,
    /// Duration (ns).
    pub dur: u64,
    /// Error message, when it failed.
    pub error: Option<Box<str>>,
}

impl Op {
    /// An operation on `subject` — the state key, emit topic or stream name, by `kind` — with
    /// `detail`: the step an emit triggers, or the stream item id (ignored for state). Untimed
    /// and unattached until [`ended_now`](Self::ended_now) (or the fields) say otherwise.
    #[inline]
    pub fn new(
        kind: OpKind,
        action: OpAction,
        subject: Option<Name>,
        detail: Option<Name>,
    ) -> Self {
        Self {
            t: 0,
            trace: TraceId::INVALID,
            span: None,
            kind,
            action,
            ok: true,
            subject,
            detail: if kind == OpKind::State { None } else { detail },
            dur: 0,
            error: None,
        }
    }

    /// This operation in `trace`/`span`, ended now after `dur` ns; an `error` marks it failed.
    pub fn ended_now(
        mut self,
        trace: TraceId,
        span: Option<SpanId>,
        dur: u64,
        error: Option<String>,
    ) -> Self {
        self.t = crate::now_nanos().saturating_sub(dur);
        self.trace = trace;
        self.span = span;
        self.dur = dur;
        self.ok = error.is_none();
        self.error = error.map(String::into_boxed_str);
        self
    }

    /// The subject and detail under their wire names.
    pub fn fields(&self) -> OpFields<&str> {
        OpFields::of(self.kind, self.subject.as_deref(), self.detail.as_deref())
    }
    /// The state key (`None` for other kinds).
    pub fn key(&self) -> Option<&str> {
        self.fields().key
    }
    /// The emit topic (`None` for other kinds).
    pub fn topic(&self) -> Option<&str> {
        self.fields().topic
    }
    /// The stream name (`None` for other kinds).
    pub fn stream(&self) -> Option<&str> {
        self.fields().stream
    }
    /// The step an emit triggers (`None` for other kinds).
    pub fn to(&self) -> Option<&str> {
        self.fields().to
    }
    /// The stream item id (`None` for other kinds).
    pub fn item(&self) -> Option<&str> {
        self.fields().id
    }
}

/// An op's subject and detail under their names on the wire and in the API: the subject is
/// `key`, `topic` or `stream` and the detail `to` or `id`, by kind (a state op has no detail).
/// The one rule every encoder, decoder and view of an op follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpFields<T> {
    /// State key.
    pub key: Option<T>,
    /// Emit topic.
    pub topic: Option<T>,
    /// Step an emit triggers.
    pub to: Option<T>,
    /// Stream name.
    pub stream: Option<T>,
    /// Stream item id.
    pub id: Option<T>,
}

impl<T> OpFields<T> {
    /// Where a `kind` op's `subject` and `detail` go.
    pub fn of(kind: OpKind, subject: Option<T>, detail: Option<T>) -> Self {
        let mut fields = Self {
            key: None,
            topic: None,
            to: None,
            stream: None,
            id: None,
        };
        match kind {
            OpKind::State => fields.key = subject,
            OpKind::Emit => (fields.topic, fields.to) = (subject, detail),
            OpKind::Stream => (fields.stream, fields.id) = (subject, detail),
        }
        fields
    }

    /// The subject and detail of a `kind` op: its own fields; the others are ignored.
    pub fn subject_and_detail(self, kind: OpKind) -> (Option<T>, Option<T>) {
        match kind {
            OpKind::State => (self.key, None),
            OpKind::Emit => (self.topic, self.to),
            OpKind::Stream => (self.stream, self.id),
        }
    }
}

/// An [`Op`] as the wire spells it, borrowed for encoding.
#[derive(Serialize)]
struct OpOut<'a> {
    t: UnixNanos,
    tr: TraceId,
    #[serde(skip_serializing_if = "Option::is_none")]
    sp: Option<SpanId>,
    op: OpKind,
    action: OpAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    topic: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    dur: u64,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

impl Serialize for Op {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = self.fields();
        OpOut {
            t: self.t,
            tr: self.trace,
            sp: self.span,
            op: self.kind,
            action: self.action,
            key: fields.key,
            topic: fields.topic,
            to: fields.to,
            stream: fields.stream,
            id: fields.id,
            dur: self.dur,
            ok: self.ok,
            error: self.error.as_deref(),
        }
        .serialize(serializer)
    }
}

/// An [`Op`] as decoded from the wire: each kind keeps only its own subject and detail fields.
#[derive(Deserialize)]
struct OpIn {
    t: UnixNanos,
    tr: TraceId,
    #[serde(default)]
    sp: Option<SpanId>,
    op: OpKind,
    action: OpAction,
    #[serde(default)]
    key: Option<Name>,
    #[serde(default)]
    topic: Option<Name>,
    #[serde(default)]
    to: Option<Name>,
    #[serde(default)]
    stream: Option<Name>,
    #[serde(default)]
    id: Option<Name>,
    #[serde(default)]
    dur: u64,
    #[serde(default = "yes")]
    ok: bool,
    #[serde(default)]
    error: Option<String>,
}

impl<'de> Deserialize<'de> for Op {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = OpIn::deserialize(deserializer)?;
        let (subject, detail) = OpFields {
            key: wire.key,
            topic: wire.topic,
            to: wire.to,
            stream: wire.stream,
            id: wire.id,
        }
        .subject_and_detail(wire.op);
        Ok(Self {
            t: wire.t,
            trace: wire.tr,
            span: wire.sp,
            kind: wire.op,
            action: wire.action,
            ok: wire.ok,
            subject,
            detail,
            dur: wire.dur,
            error: wire.error.map(String::into_boxed_str),
        })
    }
}

fn yes() -> bool {
    true
}

/// Log severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// Trace.
    Trace,
    /// Debug.
    Debug,
    /// Info.
    #[default]
    Info,
    /// Warning.
    Warn,
    /// Error.
    Error,
}

impl LogLevel {
    /// Every level.
    pub const ALL: [Self; 5] = [
        Self::Trace,
        Self::Debug,
        Self::Info,
        Self::Warn,
        Self::Error,
    ];

    /// The wire name (`trace`, `debug`, `info`, `warn`, `error`); [`parse`](Self::parse) reads
    /// these and more.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }

    /// A level name as every SDK reads it: `trace`, `debug`, `info`, `warn`/`warning`,
    /// `error`/`critical`/`fatal`, in any case; anything else is `info`.
    pub fn parse(text: &str) -> Self {
        match text.trim().to_ascii_lowercase().as_str() {
            "trace" => Self::Trace,
            "debug" => Self::Debug,
            "warn" | "warning" => Self::Warn,
            "error" | "critical" | "fatal" => Self::Error,
            _ => Self::Info,
        }
    }
}

/// `log`: a log line inside a step (or the trace).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Log {
    /// Time (unix ns).
    pub t: UnixNanos,
    /// Trace id.
    #[serde(rename = "tr")]
    pub trace: TraceId,
    /// Step.
    #[serde(rename = "sp", default, skip_serializing_if = "Option::is_none")]
    pub span: Option<SpanId>,
    /// Severity.
    #[serde(default)]
    pub level: LogLevel,
    /// Message.
    pub msg: String,
    /// Structured fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Attributes>,
}

/// `llm`: one model call.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Llm {
    /// Start time (unix ns).
    pub t: UnixNanos,
    /// Trace id.
    #[serde(rename = "tr")]
    pub trace: TraceId,
    /// Step.
    #[serde(rename = "sp", default, skip_serializing_if = "Option::is_none")]
    pub span: Option<SpanId>,
    /// Model name.
    pub model: String,
    /// Provider (`openai`, `anthropic`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Prompt (text or JSON-encoded messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Response (text or JSON-encoded messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    /// Input tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Output tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// Cost in USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    /// Duration (ns).
    #[serde(default)]
    pub dur: u64,
}

/// `artifact`: something a step produced.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Artifact {
    /// Time (unix ns).
    pub t: UnixNanos,
    /// Trace id.
    #[serde(rename = "tr")]
    pub trace: TraceId,
    /// Step.
    #[serde(rename = "sp", default, skip_serializing_if = "Option::is_none")]
    pub span: Option<SpanId>,
    /// File name.
    pub name: String,
    /// Download URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Inline preview (text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
    /// MIME type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime: Option<String>,
    /// Size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// `retry`: an attempt is being retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retry {
    /// Time (unix ns).
    pub t: UnixNanos,
    /// Trace id.
    #[serde(rename = "tr")]
    pub trace: TraceId,
    /// Step.
    #[serde(rename = "sp", default, skip_serializing_if = "Option::is_none")]
    pub span: Option<SpanId>,
    /// Attempt number (1 = first retry).
    pub attempt: u32,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Wait before the attempt (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_ms: Option<u64>,
}

/// `checkpoint`: a checkpoint was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Time (unix ns).
    pub t: UnixNanos,
    /// Trace id.
    #[serde(rename = "tr")]
    pub trace: TraceId,
    /// Step.
    #[serde(rename = "sp", default, skip_serializing_if = "Option::is_none")]
    pub span: Option<SpanId>,
    /// Checkpoint id.
    pub id: String,
}

/// `transition`: a state machine moved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// Time (unix ns).
    pub t: UnixNanos,
    /// Trace id.
    #[serde(rename = "tr")]
    pub trace: TraceId,
    /// Step.
    #[serde(rename = "sp", default, skip_serializing_if = "Option::is_none")]
    pub span: Option<SpanId>,
    /// Previous state.
    pub from: String,
    /// New state.
    pub to: String,
    /// Action that caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// How a trace was linked to its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CorrelationMethod {
    /// `correlate(id)` in code.
    #[default]
    Manual,
    /// `X-Motia-Correlation-Id` header.
    Header,
    /// Inherited through an emit from a correlated trace.
    Event,
    /// Shared state key.
    State,
    /// Timing heuristic.
    Temporal,
}

impl CorrelationMethod {
    /// Every method.
    pub const ALL: [Self; 5] = [
        Self::Manual,
        Self::Header,
        Self::Event,
        Self::State,
        Self::Temporal,
    ];

    /// The wire name (`manual`, `header`, `event`, `state`, `temporal`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Header => "header",
            Self::Event => "event",
            Self::State => "state",
            Self::Temporal => "temporal",
        }
    }

    /// The method with this wire name, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

/// `correlate`: the trace joins the group `cid`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Correlate {
    /// Time (unix ns).
    pub t: UnixNanos,
    /// Trace id.
    #[serde(rename = "tr")]
    pub trace: TraceId,
    /// Correlation id.
    pub cid: String,
    /// How the link was made.
    #[serde(default)]
    pub method: CorrelationMethod,
    /// Display name for the group ("Chat Thread").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `custom`: an application-defined event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Custom {
    /// Time (unix ns).
    pub t: UnixNanos,
    /// Trace id.
    #[serde(rename = "tr")]
    pub trace: TraceId,
    /// Step.
    #[serde(rename = "sp", default, skip_serializing_if = "Option::is_none")]
    pub span: Option<SpanId>,
    /// Event name.
    pub name: String,
    /// Any payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
}

/// `stats`: the client's own counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClientStats {
    /// Time (unix ns).
    pub t: UnixNanos,
    /// Events written to the socket.
    #[serde(default)]
    pub sent: u64,
    /// Events dropped (queue full, oversized, disabled writer).
    #[serde(default)]
    pub dropped: u64,
    /// Successful reconnects after a lost connection.
    #[serde(default)]
    pub reconnects: u64,
}

/// `dropped`: the SDK could not queue `n` more events of trace `tr` (sent by the writer as soon
/// as it can, so the agent marks the trace incomplete instead of showing a partial trace as whole).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Dropped {
    /// Time (unix ns).
    pub t: UnixNanos,
    /// Trace id.
    #[serde(rename = "tr")]
    pub trace: TraceId,
    /// Events of the trace dropped since the last report.
    pub n: u64,
}

#[cfg(test)]
mod tests {
    use super::{EndStatus, EntryType, LogLevel, OpAction, OpKind, SpanKind};

    fn wire_name<T: serde::Serialize>(value: T) -> String {
        serde_json::to_value(value)
            .expect("serializes")
            .as_str()
            .expect("a string")
            .to_owned()
    }

    /// `as_str` is what the agent puts in OTLP attributes and insights; it must be the wire name.
    #[test]
    fn as_str_is_the_wire_name() {
        for kind in [OpKind::State, OpKind::Emit, OpKind::Stream] {
            assert_eq!(kind.as_str(), wire_name(kind));
        }
        for action in [
            OpAction::Get,
            OpAction::Set,
            OpAction::Delete,
            OpAction::Clear,
            OpAction::Send,
            OpAction::Other,
        ] {
            assert_eq!(action.as_str(), wire_name(action));
        }
        for entry in EntryType::ALL {
            assert_eq!(entry.as_str(), wire_name(entry));
            assert_eq!(EntryType::parse(entry.as_str()), Some(entry));
        }
        for method in super::CorrelationMethod::ALL {
            assert_eq!(method.as_str(), wire_name(method));
            assert_eq!(
                super::CorrelationMethod::parse(method.as_str()),
                Some(method)
            );
        }
        for kind in OpKind::ALL {
            assert_eq!(OpKind::parse(kind.as_str()), Some(kind));
        }
        for kind in SpanKind::ALL {
            assert_eq!(kind.as_str(), wire_name(kind));
        }
        for status in EndStatus::ALL {
            assert_eq!(status.as_str(), wire_name(status));
        }
        for level in LogLevel::ALL {
            assert_eq!(level.as_str(), wire_name(level));
            assert_eq!(LogLevel::parse(level.as_str()), level);
        }
        assert_eq!(OpAction::parse("merge"), OpAction::Other);
        assert_eq!(OpAction::parse("send"), OpAction::Send);
        assert_eq!(EntryType::parse("nope"), None);
    }
}
