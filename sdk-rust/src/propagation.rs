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
/// Longest `tracestate` propagated (members are dropped from the end past it).
const MAX_TRACESTATE_LEN: usize = 512;
/// Members longer than this go first when a `tracestate` must be shortened.
const LONG_MEMBER: usize = 128;

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
        .and_then(parse_tracestate);
    Incoming {
        correlation_id,
        traceparent,
        tracestate,
    }
}

/// A `tracestate` key: `[a-z0-9]` then up to 255 of `[a-z0-9_-*/@]` (simple and multi-tenant
/// keys, as the W3C test suite reads the grammar).
fn valid_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    (1..=256).contains(&bytes.len())
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes[1..].iter().all(|&b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(b, b'_' | b'-' | b'*' | b'/' | b'@')
        })
        && !key.starts_with('@')
}

/// A `tracestate` value: 1–256 printable ASCII characters except `,` and `=`, not ending in a
/// space.
fn valid_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    let allowed = |b: u8| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=';
    (1..=256).contains(&bytes.len())
        && bytes.iter().all(|&b| allowed(b))
        && bytes.last().is_some_and(|&b| b != b' ')
}

/// Validates a (possibly combined) `tracestate` header per W3C Trace Context: members are
/// `key=value` separated by `,` with optional spaces/tabs; empty members are skipped; a later
/// duplicate of a key is dropped. One invalid member, or more than 32, discards the whole header
/// (a vendor must not propagate a state it could not parse). Past 512 characters members are
/// dropped from the end, long ones (> 128) first. `None` when nothing is left.
pub fn parse_tracestate(value: &str) -> Option<String> {
    let mut members: Vec<(&str, &str)> = Vec::new();
    for member in value.split(',') {
        let member = member.trim_matches(|c| c == ' ' || c == '\t');
        if member.is_empty() {
            continue;
        }
        let (key, val) = member.split_once('=')?;
        if !valid_key(key) || !valid_value(val) {
            return None;
        }
        if !members.iter().any(|(k, _)| *k == key) {
            members.push((key, val));
        }
        if members.len() > MAX_TRACESTATE_MEMBERS {
            return None;
        }
    }
    let length = |m: &[(&str, &str)]| -> usize {
        m.iter().map(|(k, v)| k.len() + v.len() + 1).sum::<usize>() + m.len().saturating_sub(1)
    };
    while length(&members) > MAX_TRACESTATE_LEN {
        match members
            .iter()
            .rposition(|(k, v)| k.len() + v.len() + 1 > LONG_MEMBER)
        {
            Some(long) => {
                members.remove(long);
            }
            None => {
                members.pop();
            }
        }
    }
    (!members.is_empty()).then(|| {
        members
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// The headers to put on an outgoing call made from `trace_id`/`span_id` (flags `01`).
pub fn inject(
    trace_id: TraceId,
    span_id: SpanId,
    correlation_id: Option<&str>,
    tracestate: Option<&str>,
) -> Vec<(&'static str, String)> {
    inject_with_flags(trace_id, span_id, 1, correlation_id, tracestate)
}

/// The headers to put on an outgoing call made from `trace_id`/`span_id` with W3C `flags`.
pub fn inject_with_flags(
    trace_id: TraceId,
    span_id: SpanId,
    flags: u8,
    correlation_id: Option<&str>,
    tracestate: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut headers = vec![(
        TRACEPARENT_HEADER,
        TraceParent {
            trace_id,
            parent_id: span_id,
            flags,
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

    #[test]
    fn tracestate_members_follow_the_grammar() {
        let ok = |v: &str| parse_tracestate(v);
        // OWS around members, empty members, tabs.
        assert_eq!(
            ok("foo=1 \t , \t bar=2, \t baz=3").as_deref(),
            Some("foo=1,bar=2,baz=3")
        );
        assert_eq!(ok("foo=1,,bar=2").as_deref(), Some("foo=1,bar=2"));
        assert_eq!(ok("").as_deref(), None);
        // Multi-tenant and unusual-but-legal keys; every legal value character.
        for key in [
            "foo@bar",
            "9foo",
            "foo@",
            "foo@@bar",
            "a_-*/b",
            &"z".repeat(256),
        ] {
            assert!(ok(&format!("{key}=1")).is_some(), "{key}");
        }
        let value: String = (0x20u8..=0x7e)
            .filter(|b| *b != b',' && *b != b'=')
            .map(char::from)
            .collect::<String>()
            .trim_start()
            .to_owned();
        assert!(ok(&format!("k={value}")).is_some());
        // One bad member discards the whole header.
        for bad in [
            "foo=bar=baz",
            "foo=,bar=3",
            "@foo=1,bar=2",
            "Foo=1,bar=2",
            "foo.bar=1",
            "foo =1",
            "foo=1\u{1}",
            "foo",
            &format!("{}=1,bar=2", "z".repeat(257)),
            &format!("k={}", "v".repeat(257)),
        ] {
            assert_eq!(ok(bad), None, "{bad:?}");
        }
        // Duplicates: the first is kept.
        assert_eq!(ok("foo=1,foo=2").as_deref(), Some("foo=1"));
        // 32 members pass, 33 do not.
        let members = |n: usize| {
            (1..=n)
                .map(|i| format!("k{i}=v"))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert_eq!(ok(&members(32)).map(|s| s.split(',').count()), Some(32));
        assert_eq!(ok(&members(33)), None);
        // Past 512 characters, long members go first, then the last ones.
        let long = format!("big={}", "x".repeat(200));
        let many = (1..=30)
            .map(|i| format!("key{i:02}=value{i:02}"))
            .collect::<Vec<_>>()
            .join(",");
        let cut = ok(&format!("{long},{many}")).unwrap();
        assert!(cut.len() <= 512 && !cut.contains("big=") && cut.starts_with("key01="));
    }

    #[test]
    fn flags_are_propagated_as_given() {
        let tid = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        let sid = SpanId::from_hex("00f067aa0ba902b7").unwrap();
        let headers = inject_with_flags(tid, sid, 0x02, None, None);
        assert_eq!(
            headers[0].1,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02"
        );
    }
}
