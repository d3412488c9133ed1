//! The wire protocol shared by every SDK and the agent: ids, events, handshake, framing.
//!
//! The normative description is `PROTOCOL.md` at the root of this crate.

mod codec;
mod event;
mod fast;
mod handshake;
mod ids;

pub use codec::{
    DEFAULT_MAX_FRAME, DecodeError, EncodeError, HEADER_LEN, decode_batch, encode_batch,
    encode_frame, frame_len,
};
pub use event::*;
pub use handshake::{AgentReply, Encoding, ErrorBody, Hello, PROTOCOL_VERSION};
pub use ids::{IdParseError, SpanId, TraceId};

/// A name on the hot path (step names, state keys, topics, streams): a `&'static str` literal is
/// carried without allocating, a `String` is moved in. Decoded values are always owned.
pub type Name = std::borrow::Cow<'static, str>;

/// The one sampling rule both sides use: a trace is in a `ratio` sample when the low 56 bits of
/// its id (the random part W3C Level 2 guarantees) fall under `ratio` of their range. The agent
/// exports by it; an SDK that knows the agent's ratio (from the handshake) sets the sampled flag
/// it propagates by it, so the two agree.
pub fn sampled_by_ratio(trace: TraceId, ratio: f64) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    if ratio.is_nan() || ratio <= 0.0 {
        return false;
    }
    const RANDOM_BITS: u64 = (1 << 56) - 1;
    let random = (trace.0 as u64) & RANDOM_BITS;
    (random as f64) < ratio * (RANDOM_BITS as f64 + 1.0)
}
