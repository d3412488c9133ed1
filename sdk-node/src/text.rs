//! Strings from JavaScript.
//!
//! napi-rs reads a `String` argument with two Node-API calls (length, then copy). Event arguments
//! are mostly short (keys, topics, step names, messages), so [`Text`] first copies into a stack
//! buffer with a single call and only falls back to the two-call path when the string may not
//! have fit. That saves about 25 ns per string argument (measured with Node 20).
//!
//! The generated `native.d.ts` declares `type Text = string` (see `scripts/build.js`).

use std::mem::MaybeUninit;

use napi::bindgen_prelude::{FromNapiValue, TypeName, ValidateNapiValue};
use napi::{Status, ValueType, sys};

/// Stack buffer size; V8 never splits a character, so a result shorter than `FITS` is complete.
const BUFFER: usize = 256;
const FITS: usize = BUFFER - 4;

/// A JavaScript string argument, as UTF-8.
pub(crate) struct Text(pub(crate) String);

impl From<Text> for String {
    fn from(text: Text) -> Self {
        text.0
    }
}

impl TypeName for Text {
    fn type_name() -> &'static str {
        "String"
    }

    fn value_type() -> ValueType {
        ValueType::String
    }
}

impl ValidateNapiValue for Text {}

/// Reads a string argument: `small` gets the UTF-8 bytes of a short one from a stack buffer (one
/// Node-API call), `large` a longer one as a `String` (napi-rs' two-call path).
///
/// # Safety
/// `env` and `value` as Node-API passes them to [`FromNapiValue::from_napi_value`].
unsafe fn read_str<R>(
    env: sys::napi_env,
    value: sys::napi_value,
    small: impl FnOnce(&[u8]) -> R,
    large: impl FnOnce(String) -> R,
) -> napi::Result<R> {
    let mut buffer = MaybeUninit::<[u8; BUFFER]>::uninit();
    let mut len = 0usize;
    // SAFETY: the buffer holds BUFFER bytes; Node-API writes at most BUFFER - 1 bytes plus
    // a NUL and reports how many it wrote (without the NUL) in `len`.
    let status = unsafe {
        sys::napi_get_value_string_utf8(env, value, buffer.as_mut_ptr().cast(), BUFFER, &mut len)
    };
    if status != sys::Status::napi_ok {
        return Err(napi::Error::new(
            Status::StringExpected,
            "expected a string",
        ));
    }
    if len < FITS {
        // SAFETY: Node-API initialised the first `len` bytes.
        let bytes = unsafe { std::slice::from_raw_parts(buffer.as_ptr().cast::<u8>(), len) };
        return Ok(small(bytes));
    }
    // SAFETY: same env and value, as napi-rs' own conversion expects.
    unsafe { String::from_napi_value(env, value) }.map(large)
}

impl FromNapiValue for Text {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
        // SAFETY: forwarded as received.
        unsafe {
            read_str(
                env,
                value,
                |bytes| Text(String::from_utf8_lossy(bytes).into_owned()),
                Text,
            )
        }
    }
}

/// A name argument (step name, state key, topic, stream, item id): a name the program repeats is
/// carried as the core's kept copy ([`flowscope::name_of`]), with no allocation per call.
///
/// It may also be the id `nameId` returned for a kept name (`index.js` caches them per name):
/// reading a number costs a few nanoseconds where converting a string costs about 60.
pub(crate) struct NameArg(pub(crate) flowscope::wire::Name);

impl TypeName for NameArg {
    fn type_name() -> &'static str {
        "String"
    }

    fn value_type() -> ValueType {
        ValueType::String
    }
}

impl ValidateNapiValue for NameArg {}

impl FromNapiValue for NameArg {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
        let mut kind = sys::ValueType::napi_undefined;
        // SAFETY: `env` and `value` as Node-API passed them; `kind` is a valid out pointer.
        let typed = unsafe { sys::napi_typeof(env, value, &mut kind) };
        if typed == sys::Status::napi_ok && kind == sys::ValueType::napi_number {
            let mut id = 0u32;
            // SAFETY: as above; `value` is a number.
            let read = unsafe { sys::napi_get_value_uint32(env, value, &mut id) };
            return match (read == sys::Status::napi_ok)
                .then(|| flowscope::name_by_id(id))
                .flatten()
            {
                Some(name) => Ok(NameArg(name)),
                None => Err(napi::Error::new(
                    Status::InvalidArg,
                    format!("{id} is not a name id"),
                )),
            };
        }
        // SAFETY: forwarded as received.
        unsafe {
            read_str(
                env,
                value,
                |bytes| {
                    NameArg(match std::str::from_utf8(bytes) {
                        Ok(text) => flowscope::name_of(text),
                        Err(_) => String::from_utf8_lossy(bytes).into_owned().into(),
                    })
                },
                |text| NameArg(text.into()),
            )
        }
    }
}

/// The id of `name`'s kept copy, to pass in its place as a [`NameArg`] (`null` when the core
/// cannot keep it: too long, or its table of names is full).
#[napi_derive::napi]
pub fn name_id(name: String) -> Option<u32> {
    flowscope::name_id(&name)
}
