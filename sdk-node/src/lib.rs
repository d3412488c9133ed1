//! Node.js binding of the flowscope client (napi-rs).
//!
//! This crate only translates: JavaScript values in, [`flowscope::wire`] events out through one
//! process-wide [`flowscope::Client`]. The current trace and step live on the JavaScript side (in
//! an `AsyncLocalStorage`); events are built with explicit trace/span ids, which JavaScript hands
//! over when its current frame changes (`context.rs`). The Rust client's own thread-local
//! context is not used. The generated `native.js` is private: users load the hand-written
//! `index.js` / `index.mjs`.
//!
//! | file | job |
//! |---|---|
//! | `client.rs` | the process-wide client: `init`, `flush`, `stats` |
//! | `context.rs` | the current trace/step, ids coming from and going to JavaScript |
//! | `text.rs` | strings from JavaScript, with a one-call fast path for short ones |
//! | `events.rs` | one function per event kind (the hot path: primitives in, one `emit`) |
//! | `propagation.rs` | `extract` / `inject` of the correlation and W3C headers |
//! | `error.rs` | JavaScript errors → [`flowscope::ErrorInfo`], Rust errors → napi errors |

// napi-derive registers the exported items with Node only outside `cfg(test)`; in the test build
// (`cargo clippy --all-targets`) nothing references them, so they would all be dead code.
#![cfg_attr(test, allow(dead_code))]

// `#[napi]` expands into registration glue with `unsafe` FFI blocks; the workspace denies
// `unsafe_code`, so it is allowed for the modules holding `#[napi]` items, and nowhere else.
#[allow(unsafe_code)]
mod client;
#[allow(unsafe_code)]
mod context;
mod error;
#[allow(unsafe_code)]
mod events;
#[allow(unsafe_code)]
mod propagation;
// The bundled agent (`runAgent`, for the package's `flowscope` bin).
#[allow(unsafe_code)]
mod agent;
// Raw Node-API calls for the short-string fast path.
#[allow(unsafe_code)]
mod text;
