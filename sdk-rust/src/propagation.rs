//! Header propagation: `X-Motia-Correlation-Id` and W3C Trace Context (`traceparent`,
//! `tracestate`), following <https://www.w3.org/TR/trace-context/> parsing rules.

use crate::wire::{SpanId, TraceId};

/// Correlation header (lowercase, as HTTP/2 and most frameworks present it).
pub const CORRELATION_HEADER: &str = "x-motia-correlation-id";
/// W3C `traceparent`.
pub const TRACEPARENT_HEADER: &str = "traceparent";
/// W3C `tracestate`.
pub const TRACESTATE_HEADER: &str = "tracestate";

/// Most list members a `tracestate` may carry.
const MAX_TRACESTATE_MEMBERS: usize = 32;

/// A parsed `traceparent` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// Trace id.
    pub trace_id: TraceId,
    /// The caller's span id.
    pub parent_id: SpanId,
    /// Trace flags (bit 0: sampled).
    pub flags: u8,
}

impl TraceParent {
    /// Parses a header value; `None` for anything the spec says to ignore.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim_matches(|c| c == ' ' || c == '\t');
        if !value.is_ascii() {
            return None; // also keeps the byte-index slicing below on char boundaries
        }
        let bytes = value.as_bytes();
        if bytes.len() < 55 || !is_lower_hex(&value[..2]) {
            return None;
        }
        let version = u8::from_str_radix(&value[..2], 16).ok()?;
        if version == 0xff {
            return None;
        }
        // Version 00 is exactly 55 chars; a later version may append "-…" fields.
        if (version == 0 && bytes.len() != 55)
            || (version > 0 && bytes.len() > 55 && bytes[55] != b'-')
        {
            return None;
        }
        if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return None;
        }
        let (trace, parent, flags) = (&value[3..35], &value[36..52], &value[53..55]);
        if !is_lower_hex(trace) || !is_lower_hex(parent) || !is_lower_hex(flags) {
            return None;
        }
        let trace_id = TraceId::from_hex(trace).ok().filter(|t| t.is_valid())?;
        let parent_id = SpanId::from_hex(parent).ok().filter(|s| s.is_valid())?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(Self {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// Whether the caller sampled this trace.
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// Formats as a version-00 header value.
    pub fn to_header(&self) -> String {
        format!("00-{}-{}-{:02x}", self.trace_id, self.parent_id, self.flags)
    }
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// What an incoming request carried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Incoming {
    /// `X-Motia-Correlation-Id`, if present and non-empty.
    pub correlation_id: Option<String>,
    /// A valid `traceparent`.
    pub traceparent: Option<TraceParent>,
    /// `tracestate`, kept only alongside a valid `traceparent` (as the spec requires).
    pub tracestate: Option<String>,
}

/// Reads the propagation headers through `get` (a case-insensitive header lookup).
pub fn extract<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Incoming {
    let correlation_id = get(CORRELATION_HEADER)
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 256)
        .map(str::to_owned);
    let traceparent = get(TRACEPARENT_HEADER).and_then(TraceParent::parse);
    let tracestate = traceparent
        .and(get(TRACESTATE_HEADER))
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.split(',').count() <= MAX_TRACESTATE_MEMBERS)
        .map(str::to_owned);
    Incoming {
        correlation_id,
        traceparent,
        tracestate,
    }
}

/// The headers to put on an outgoing call made from `trace_id`/`span_id`.
pub fn inject(
    trace_id: TraceId,
    span_id: SpanId,
    correlation_id: Option<&str>,
    tracestate: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut headers = vec![(
        TRACEPARENT_HEADER,
        TraceParent {
            trace_id,
            parent_id: span_id,
            flags: 1,
        }
        .to_header(),
    )];
    if let Some(state) = tracestate.filter(|s| !s.is_empty()) {
        headers.push((TRACESTATE_HEADER, state.to_owned()));
    }
    if let Some(cid) = correlation_id.filter(|c| !c.is_empty()) {
        headers.push((CORRELATION_HEADER, cid.to_owned()));
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_spec_example() {
        let tp = TraceParent::parse(VALID).unwrap();
        assert_eq!(tp.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tp.parent_id.to_string(), "00f067aa0ba902b7");
        assert!(tp.sampled());
        assert_eq!(tp.to_header(), VALID);
    }

    #[test]
    fn ignores_invalid_values() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "€€€€€€€€€€€€€€€€€€€€",
            "00-4bf92f3577b34da6a3ce929d0e0e47€-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?} should be ignored");
        }
    }

    #[test]
    fn accepts_future_versions_with_extra_fields() {
        let future =
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds";
        assert!(TraceParent::parse(future).is_some());
        let glued = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x";
        assert!(TraceParent::parse(glued).is_none());
    }

    #[test]
    fn tracestate_needs_a_valid_traceparent() {
        let headers = [(TRACEPARENT_HEADER, "garbage"), (TRACESTATE_HEADER, "a=b")];
        let got = extract(|name| headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v));
        assert_eq!(got.tracestate, None);
        let headers = [
            (TRACEPARENT_HEADER, VALID),
            (TRACESTATE_HEADER, "a=b,c=d"),
            (CORRELATION_HEADER, " t-1 "),
        ];
        let got = extract(|name| headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v));
        assert_eq!(got.tracestate.as_deref(), Some("a=b,c=d"));
        assert_eq!(got.correlation_id.as_deref(), Some("t-1"));
    }
}
