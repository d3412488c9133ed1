//! The first frame each way: the client's [`Hello`] and the agent's [`AgentReply`].

use serde::{Deserialize, Serialize};

/// Protocol version this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Encoding of the batches that follow the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// MessagePack (maps with field names), the default.
    #[default]
    Msgpack,
    /// JSON.
    Json,
}

/// Client → agent, first frame, always JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// Protocol version.
    pub v: u32,
    /// Batch encoding.
    #[serde(default)]
    pub encoding: Encoding,
    /// SDK name and version, e.g. `rust/0.1.0`.
    #[serde(default)]
    pub sdk: String,
    /// Service name (OTel `service.name`).
    #[serde(default)]
    pub service: String,
    /// Process id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// A machine-readable error code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable code (`unsupported_version`, `frame_too_large`, `malformed_batch`, …).
    pub code: String,
    /// Explanation.
    pub message: String,
}

/// Agent → client: the handshake answer, and the error frame sent before closing a connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentReply {
    /// Protocol version.
    pub v: u32,
    /// Accepted.
    pub ok: bool,
    /// Agent version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Largest payload the agent accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_frame: Option<u32>,
    /// Fraction of SDK-started traces the agent exports (see [`super::sampled_by_ratio`]); the
    /// SDK sets the sampled flag it propagates from the same rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_ratio: Option<f64>,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

impl AgentReply {
    /// A successful handshake answer.
    pub fn accept(agent_version: &str, max_frame: u32) -> Self {
        Self {
            v: PROTOCOL_VERSION,
            ok: true,
            agent: Some(agent_version.to_owned()),
            max_frame: Some(max_frame),
            sample_ratio: None,
            error: None,
        }
    }

    /// An error frame.
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        Self {
            v: PROTOCOL_VERSION,
            ok: false,
            agent: None,
            max_frame: None,
            sample_ratio: None,
            error: Some(ErrorBody {
                code: code.to_owned(),
                message: message.into(),
            }),
        }
    }
}
