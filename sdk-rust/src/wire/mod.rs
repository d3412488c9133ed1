//! The wire protocol shared by every SDK and the agent: ids, events, handshake, framing.
//!
//! The normative description is `PROTOCOL.md` at the root of this crate.

mod codec;
mod event;
mod handshake;
mod ids;

pub use codec::{
    DEFAULT_MAX_FRAME, DecodeError, EncodeError, HEADER_LEN, decode_batch, encode_batch,
    encode_frame, frame_len,
};
pub use event::*;
pub use handshake::{AgentReply, Encoding, ErrorBody, Hello, PROTOCOL_VERSION};
pub use ids::{IdParseError, SpanId, TraceId};
