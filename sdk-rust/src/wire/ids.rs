//! W3C-compatible identifiers: 16-byte trace ids and 8-byte span ids, hex on the wire.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Error for an identifier that is not the right number of lowercase/uppercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: expected {len} hex digits, got {got:?}")]
pub struct IdParseError {
    what: &'static str,
    len: usize,
    got: String,
}

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $int:ty, $len:expr, $what:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub $int);

        impl $name {
            /// The all-zero id, invalid in W3C Trace Context.
            pub const INVALID: Self = Self(0);

            /// Whether this id is not all zeros.
            pub fn is_valid(self) -> bool {
                self.0 != 0
            }

            /// Writes the lowercase hex form into `buf` without allocating.
            pub fn encode_hex(self, buf: &mut [u8; $len]) -> &str {
                write_hex(self.0 as u128, buf)
            }

            /// The lowercase hex form as ASCII bytes (for encoders that need no `str`).
            pub fn hex_bytes(self) -> [u8; $len] {
                let mut buf = [0u8; $len];
                fill_hex(self.0 as u128, &mut buf);
                buf
            }

            /// Parses exactly the expected number of hex digits.
            pub fn from_hex(s: &str) -> Result<Self, IdParseError> {
                Self::from_hex_bytes(s.as_bytes())
            }

            /// [`from_hex`](Self::from_hex) on bytes (any that are not hex digits are refused, so
            /// a decoder need not check UTF-8 first).
            pub fn from_hex_bytes(digits: &[u8]) -> Result<Self, IdParseError> {
                let err = || IdParseError {
                    what: $what,
                    len: $len,
                    got: String::from_utf8_lossy(digits).into_owned(),
                };
                if digits.len() != $len {
                    return Err(err());
                }
                parse_hex(digits).map(|v| Self(v as $int)).ok_or_else(err)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:0width$x}", self.0, width = $len)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::from_hex(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut buf = [0u8; $len];
                let text = write_hex(self.0 as u128, &mut buf);
                serializer.serialize_str(text)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct IdVisitor;
                impl Visitor<'_> for IdVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "{} hex digits", $len)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        $name::from_hex(v).map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(IdVisitor)
            }
        }
    };
}

hex_id!(
    /// A trace id: 16 bytes, 32 hex digits (W3C Trace Context `trace-id`).
    TraceId, u128, 32, "trace id"
);
hex_id!(
    /// A span (step) id: 8 bytes, 16 hex digits (W3C Trace Context `parent-id`).
    SpanId, u64, 16, "span id"
);

/// Writes `value` as `buf.len()` lowercase hex digits into `buf` without allocating.
/// The value of up to 32 hex digits (either case); `None` for anything else. Two 64-bit halves
/// and a table, checked once at the end: a decoder parses a trace id and a span id per event.
fn parse_hex(digits: &[u8]) -> Option<u128> {
    if digits.len() > 32 {
        return None;
    }
    let (high, low) = digits.split_at(digits.len().saturating_sub(16));
    Some(u128::from(parse_hex64(high)?) << 64 | u128::from(parse_hex64(low)?))
}

/// The value of up to 16 hex digits; `None` when one is not a hex digit.
#[inline]
fn parse_hex64(digits: &[u8]) -> Option<u64> {
    /// A digit's value, or `NOT_HEX`.
    const NOT_HEX: u8 = 0x80;
    const VALUES: [u8; 256] = {
        let mut values = [NOT_HEX; 256];
        let mut i = 0;
        while i < 16 {
            values[b"0123456789abcdef"[i] as usize] = i as u8;
            values[b"0123456789ABCDEF"[i] as usize] = i as u8;
            i += 1;
        }
        values
    };
    let mut value = 0u64;
    let mut seen = 0u8;
    for &digit in digits {
        let nibble = VALUES[usize::from(digit)];
        seen |= nibble;
        value = value << 4 | u64::from(nibble & 0xf);
    }
    (seen & NOT_HEX == 0).then_some(value)
}

/// Writes the low `buf.len()` hex digits of `value` into `buf`, two digits per table lookup.
fn fill_hex(mut value: u128, buf: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    const PAIRS: [[u8; 2]; 256] = {
        let mut pairs = [[0u8; 2]; 256];
        let mut i = 0;
        while i < 256 {
            pairs[i] = [DIGITS[i >> 4], DIGITS[i & 0xf]];
            i += 1;
        }
        pairs
    };
    let mut chunks = buf.rchunks_exact_mut(2);
    for pair in &mut chunks {
        pair.copy_from_slice(&PAIRS[(value & 0xff) as usize]);
        value >>= 8;
    }
    if let [digit] = chunks.into_remainder() {
        *digit = DIGITS[(value & 0xf) as usize];
    }
}

fn write_hex(value: u128, buf: &mut [u8]) -> &str {
    fill_hex(value, buf);
    // Only ASCII hex digits were written.
    std::str::from_utf8(buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_keeps_leading_zeros() {
        let id = TraceId(0x00ab);
        let text = id.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(text, "000000000000000000000000000000ab");
        assert_eq!(TraceId::from_hex(&text).unwrap(), id);
        assert_eq!(
            serde_json::to_string(&SpanId(1)).unwrap(),
            "\"0000000000000001\""
        );
    }

    #[test]
    fn rejects_wrong_length_and_non_hex() {
        assert!(TraceId::from_hex("abc").is_err());
        assert!(SpanId::from_hex("zzzzzzzzzzzzzzzz").is_err());
        assert!(SpanId::from_hex("+00000000000000f").is_err());
        assert!(serde_json::from_str::<SpanId>("\"12\"").is_err());
        // A bad digit anywhere, in either half, and one digit too many.
        for at in [0, 15, 16, 31] {
            let mut text = *b"0123456789abcdefABCDEF0123456789";
            text[at] = b'g';
            assert!(TraceId::from_hex_bytes(&text).is_err(), "bad digit at {at}");
        }
        assert!(parse_hex(&[b'1'; 33]).is_none());
    }

    #[test]
    fn parses_every_digit_in_both_cases() {
        let id = TraceId::from_hex("0123456789abcdefABCDEF0123456789").unwrap();
        assert_eq!(id, TraceId(0x0123_4567_89ab_cdef_abcd_ef01_2345_6789));
        assert_eq!(
            SpanId::from_hex("fedcba9876543210").unwrap(),
            SpanId(0xfedc_ba98_7654_3210)
        );
        assert_eq!(parse_hex(b""), Some(0));
        assert_eq!(parse_hex(b"1f"), Some(0x1f));
    }
}
