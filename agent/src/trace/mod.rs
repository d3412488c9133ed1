//! Event → trace building: the trace model and the per-trace state machine that merges events,
//! in any order, into it.

pub mod builder;
pub mod limits;
mod model;
mod text;

pub use limits::Truncation;
pub use model::{
    Announced, Evidence, OpCounts, Operation, Origin, Segment, Step, StepStatus, Trace,
    TraceStatus, UNKNOWN_FLOW, unknown_flow,
};
pub use text::ThinStr;
pub mod group;
