//! The agent's own counters, one place for every thing that happens (read by `/healthz` and,
//! later, `/metrics`).

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a connection was closed by the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Payload length over the limit.
    FrameTooLarge,
    /// Batch could not be decoded.
    MalformedBatch,
    /// Hello could not be parsed.
    MalformedHello,
    /// Hello with a protocol version we do not speak.
    UnsupportedVersion,
    /// Connection closed in the middle of a frame.
    Truncated,
    /// No hello within the handshake timeout.
    HandshakeTimeout,
}

impl Rejection {
    /// All reasons, in counter order.
    pub const ALL: [Rejection; 6] = [
        Rejection::FrameTooLarge,
        Rejection::MalformedBatch,
        Rejection::MalformedHello,
        Rejection::UnsupportedVersion,
        Rejection::Truncated,
        Rejection::HandshakeTimeout,
    ];

    /// Stable code, also sent in the error frame.
    pub fn code(self) -> &'static str {
        match self {
            Rejection::FrameTooLarge => "frame_too_large",
            Rejection::MalformedBatch => "malformed_batch",
            Rejection::MalformedHello => "malformed_hello",
            Rejection::UnsupportedVersion => "unsupported_version",
            Rejection::Truncated => "truncated_frame",
            Rejection::HandshakeTimeout => "handshake_timeout",
        }
    }
}

/// Ingest counters.
#[derive(Debug, Default)]
pub struct IngestMetrics {
    /// Connections accepted.
    pub connections_total: AtomicU64,
    /// Connections open now.
    pub connections_open: AtomicU64,
    /// Batch frames decoded.
    pub frames: AtomicU64,
    /// Events decoded.
    pub events: AtomicU64,
    /// Payload bytes decoded.
    pub bytes: AtomicU64,
    rejections: [AtomicU64; 6],
}

impl IngestMetrics {
    /// Counts a rejected connection.
    pub fn rejected(&self, why: Rejection) {
        let i = Rejection::ALL.iter().position(|r| *r == why).unwrap_or(0);
        self.rejections[i].fetch_add(1, Ordering::Relaxed);
        tracing::warn!(reason = why.code(), "closing ingest connection");
    }

    /// Rejections by reason.
    pub fn rejections(&self) -> impl Iterator<Item = (Rejection, u64)> + '_ {
        Rejection::ALL
            .iter()
            .zip(&self.rejections)
            .map(|(r, c)| (*r, c.load(Ordering::Relaxed)))
    }

    /// Counts a decoded batch.
    pub fn batch(&self, events: usize, bytes: usize) {
        self.frames.fetch_add(1, Ordering::Relaxed);
        self.events.fetch_add(events as u64, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}
