//! Error bridging, both ways.
//!
//! JavaScript → agent: a thrown value's name, message, code and stack become an
//! [`ErrorInfo`]. Rust → JavaScript: [`NapiErrExt`] turns any displayable error into a
//! `napi::Error` (used only on cold paths such as `init`; the emit functions never throw).

use std::fmt::Display;

use flowscope::ErrorInfo;
use napi::Status;
use napi_derive::napi;

/// Converts a `Result` with a displayable error into a napi result (a JavaScript exception).
pub(crate) trait NapiErrExt<T> {
    /// The error becomes an `Error` with the given status (`InvalidArg` ⇒ a `TypeError`-like
    /// code `InvalidArg` on the JavaScript side) and a message prefixed with `context`.
    fn napi_err(self, status: Status, context: &str) -> napi::Result<T>;
}

impl<T, E: Display> NapiErrExt<T> for Result<T, E> {
    fn napi_err(self, status: Status, context: &str) -> napi::Result<T> {
        self.map_err(|e| napi::Error::new(status, format!("{context}: {e}")))
    }
}

/// The error HTTP middleware records for a 5xx response without an exception, by the SDK core's
/// rule: `{ message, name, code }`.
#[napi(object)]
pub struct HttpStatusError {
    /// `HTTP 503`.
    pub message: String,
    /// `HttpError`.
    pub name: String,
    /// `503`.
    pub code: String,
}

/// See [`HttpStatusError`].
#[napi]
pub fn http_status_error(status: u32) -> HttpStatusError {
    let error = ErrorInfo::http_status(u16::try_from(status).unwrap_or(u16::MAX));
    HttpStatusError {
        message: error.message,
        name: error.error_type.unwrap_or_default(),
        code: error.code.unwrap_or_default(),
    }
}

/// The error object of a failed step or trace, from the parts JavaScript extracted from the
/// thrown value (`name`, `message`, `code`, `stack`). `None` when nothing was given.
pub(crate) fn error_info(
    message: Option<String>,
    error_type: Option<String>,
    code: Option<String>,
    stack: Option<String>,
) -> Option<Box<ErrorInfo>> {
    if message.is_none() && error_type.is_none() && code.is_none() && stack.is_none() {
        return None;
    }
    Some(Box::new(ErrorInfo::from_parts(
        message.as_deref(),
        error_type.as_deref(),
        code.as_deref(),
        stack.as_deref(),
    )))
}
