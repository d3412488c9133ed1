//! Python bindings of the flowscope client (skeleton).
