//! Python values → JSON values (attributes, log fields, custom payloads).

use flowscope::wire::Attributes;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Number, Value};

/// Deeper structures are cut (shown as their `str()`), so a cycle cannot recurse forever.
const MAX_DEPTH: usize = 16;

/// Converts a Python dict into attributes; keys become strings.
pub(crate) fn attributes(dict: &Bound<'_, PyDict>) -> Attributes {
    let mut map = Attributes::new();
    for (k, v) in dict.iter() {
        map.insert(key_string(&k), value(&v, 1));
    }
    map
}

/// Converts a Python value: None, bool, int, float, str, dict, list and tuple map to their JSON
/// counterparts; anything else becomes its `str()`.
pub(crate) fn value(obj: &Bound<'_, PyAny>, depth: usize) -> Value {
    if obj.is_none() {
        return Value::Null;
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Value::String(s.to_string_lossy().into_owned());
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Value::Bool(b.is_true());
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Value::from(i);
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Value::from(u);
        }
        return text(obj);
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Number::from_f64(f.value()).map_or(Value::Null, Value::Number);
    }
    if depth >= MAX_DEPTH {
        return text(obj);
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = serde_json::Map::new();
        for (k, v) in d.iter() {
            map.insert(key_string(&k), value(&v, depth + 1));
        }
        return Value::Object(map);
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return Value::Array(l.iter().map(|v| value(&v, depth + 1)).collect());
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return Value::Array(t.iter().map(|v| value(&v, depth + 1)).collect());
    }
    text(obj)
}

fn key_string(k: &Bound<'_, PyAny>) -> String {
    match k.cast::<PyString>() {
        Ok(s) => s.to_string_lossy().into_owned(),
        Err(_) => match text(k) {
            Value::String(s) => s,
            _ => String::new(),
        },
    }
}

fn text(obj: &Bound<'_, PyAny>) -> Value {
    obj.str()
        .map(|s| Value::String(s.to_string_lossy().into_owned()))
        .unwrap_or(Value::Null)
}
