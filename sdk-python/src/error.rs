//! Error bridging: Rust errors become Python exceptions through [`PyErrExt`].
//!
//! The Python package wraps every emitting call so that nothing ever reaches user code; these
//! exceptions only tell that wrapper (and the tests) what was wrong with the arguments.

use flowscope::wire::IdParseError;
use pyo3::PyErr;
use pyo3::exceptions::PyValueError;

/// Converts a `Result` with a Rust error into a `PyResult`.
pub(crate) trait PyErrExt<T> {
    /// Maps the error to the matching Python exception.
    fn py_err(self) -> Result<T, PyErr>;
}

impl<T> PyErrExt<T> for Result<T, IdParseError> {
    fn py_err(self) -> Result<T, PyErr> {
        self.map_err(|e| PyValueError::new_err(e.to_string()))
    }
}

/// A `ValueError` for an argument outside its allowed values.
pub(crate) fn invalid(what: &str, got: &str, allowed: &str) -> PyErr {
    PyValueError::new_err(format!("invalid {what} {got:?}: expected one of {allowed}"))
}
