//! Node.js bindings of the flowscope client (skeleton).
