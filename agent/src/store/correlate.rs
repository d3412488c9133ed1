//! Automatic correlation (the Motia RFC's state-, event- and time-based strategies), with
//! evidence: which key, topic or attribute linked a trace to which other trace, and how sure the
//! link is. Manual and header correlation always win: only a trace without a group is linked
//! automatically, and a later manual `correlate` moves it. Links are capped per trace (the rest
//! are kept as candidates) and per group, so one hot key never chains the store together.
//!
//! - **state**: a trace that reads a state key last written (within the window) by a member of
//!   group G joins G. Keys read by more distinct traces than the hot-key threshold never link;
//!   include/exclude globs narrow the keys. When several groups match, the most recent writer
//!   wins and the others are kept as candidates.
//! - **event**: a trace started by an event (entry `event`) whose `topic` attribute
//!   (`flowscope.topic`, `messaging.destination.name` or `topic`) and data key (e.g. `orderId`)
//!   match an earlier trace that emitted that topic with the same key value joins that trace's
//!   group (or both join `<key>:<value>`).
//! - **temporal** (opt-in rules `from->to:window@attribute`): a run of `to` that starts within the
//!   window after a run of `from` with the same attribute value joins its group, with a
//!   confidence that falls linearly over the window.

use std::num::NonZeroUsize;
use std::time::Duration;

use flowscope::wire::TraceId;
use lru::LruCache;

/// Keys, topics and attribute values remembered for linking (least recently used forgotten).
const MEMORY: usize = 100_000;

pub use crate::trace::Evidence;

/// A temporal rule: runs of `to` after runs of `from` sharing `attribute`, within `window`.
#[derive(Debug, Clone, PartialEq)]
pub struct TemporalRule {
    /// Earlier flow.
    pub from: String,
    /// Later flow.
    pub to: String,
    /// Longest gap.
    pub window: Duration,
    /// The attribute both runs carry.
    pub attribute: String,
}

/// A rule that cannot be parsed.
#[derive(Debug, thiserror::Error)]
#[error(
    "--correlate-temporal `{0}`: expected `from->to:window@attribute`, e.g. `cart->checkout:10m@userId`"
)]
pub struct RuleError(String);

impl TemporalRule {
    /// Parses `from->to:window@attribute`.
    pub fn parse(text: &str) -> Result<Self, RuleError> {
        let err = || RuleError(text.to_owned());
        let (flows, rest) = text.split_once(':').ok_or_else(err)?;
        let (window, attribute) = rest.split_once('@').ok_or_else(err)?;
        let (from, to) = flows.split_once("->").ok_or_else(err)?;
        let window = humantime::parse_duration(window.trim()).map_err(|_| err())?;
        let (from, to, attribute) = (from.trim(), to.trim(), attribute.trim());
        if from.is_empty() || to.is_empty() || attribute.is_empty() || window.is_zero() {
            return Err(err());
        }
        Ok(Self {
            from: from.to_owned(),
            to: to.to_owned(),
            window,
            attribute: attribute.to_owned(),
        })
    }
}

/// Automatic-correlation settings.
#[derive(Debug, Clone)]
pub struct CorrelateConfig {
    /// State-based links on.
    pub state: bool,
    /// How long a write can link a later read.
    pub state_window: Duration,
    /// A key read by more distinct traces than this is a hot key and never links.
    pub hot_key_readers: usize,
    /// Only keys matching one of these globs link (empty: all).
    pub include: Vec<String>,
    /// Keys matching one of these globs never link.
    pub exclude: Vec<String>,
    /// Data keys for event-based links (e.g. `orderId`).
    pub event_keys: Vec<String>,
    /// How long an emit can link a later consumer.
    pub event_window: Duration,
    /// Temporal rules.
    pub temporal: Vec<TemporalRule>,
    /// Candidate links kept per trace besides the one applied.
    pub max_candidates: usize,
    /// Traces a group may gain automatically.
    pub max_group_links: usize,
}

impl Default for CorrelateConfig {
    fn default() -> Self {
        Self {
            state: true,
            state_window: Duration::from_secs(3600),
            hot_key_readers: 20,
            include: Vec::new(),
            exclude: Vec::new(),
            event_keys: Vec::new(),
            event_window: Duration::from_secs(3600),
            temporal: Vec::new(),
            max_candidates: 5,
            max_group_links: 1000,
        }
    }
}

/// `*` matches any run of characters, `?` one; everything else literally.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[derive(Debug, Default)]
struct KeyStats {
    last_writer: Option<(TraceId, u64)>,
    /// Distinct readers seen, up to the hot threshold (then it stops counting).
    readers: Vec<TraceId>,
    /// Traces this key linked, retracted if the key turns hot.
    linked: Vec<TraceId>,
    hot: bool,
}

/// What a state read means for correlation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Nothing to link.
    Nothing,
    /// Link to the group of this writer (trace, write time).
    Link(TraceId, u64),
    /// The key just turned hot: undo the links it made to these traces.
    Retract(Vec<TraceId>),
}

/// (topic or flow, key or attribute, value).
type Triple = (Box<str>, Box<str>, Box<str>);

/// What the correlator remembers between events.
pub struct Correlator {
    config: CorrelateConfig,
    keys: LruCache<Box<str>, KeyStats>,
    /// (topic, data key, value) → the latest trace that emitted it, and when.
    emits: LruCache<Triple, (TraceId, u64)>,
    /// (flow, attribute, value) → the latest run, and when it started.
    runs: LruCache<Triple, (TraceId, u64)>,
}

impl Correlator {
    /// A correlator with `config`.
    pub fn new(config: CorrelateConfig) -> Self {
        let memory = NonZeroUsize::new(MEMORY).unwrap_or(NonZeroUsize::MIN);
        Self {
            config,
            keys: LruCache::new(memory),
            emits: LruCache::new(memory),
            runs: LruCache::new(memory),
        }
    }

    /// The settings.
    pub fn config(&self) -> &CorrelateConfig {
        &self.config
    }

    fn key_allowed(&self, key: &str) -> bool {
        (self.config.include.is_empty() || self.config.include.iter().any(|g| glob_matches(g, key)))
            && !self.config.exclude.iter().any(|g| glob_matches(g, key))
    }

    /// Records a state write by `trace` at `t`.
    pub fn state_written(&mut self, key: &str, trace: TraceId, t: u64) {
        if !self.config.state {
            return;
        }
        match self.keys.get_mut(key) {
            Some(stats) => stats.last_writer = Some((trace, t)),
            None => {
                self.keys.put(
                    key.into(),
                    KeyStats {
                        last_writer: Some((trace, t)),
                        ..KeyStats::default()
                    },
                );
            }
        }
    }

    /// Records a state read by `trace` at `t`: the writer whose group it could join, unless the
    /// key is hot, excluded, unwritten, too old or self-written — or, when this read makes the
    /// key hot, the links it made so far, to undo (a shared config key links nobody).
    pub fn state_read(&mut self, key: &str, trace: TraceId, t: u64) -> ReadOutcome {
        if !self.config.state || !self.key_allowed(key) {
            return ReadOutcome::Nothing;
        }
        let threshold = self.config.hot_key_readers;
        if !self.keys.contains(key) {
            self.keys.put(key.into(), KeyStats::default());
        }
        let Some(stats) = self.keys.get_mut(key) else {
            return ReadOutcome::Nothing;
        };
        if stats.hot {
            return ReadOutcome::Nothing;
        }
        if !stats.readers.contains(&trace) {
            stats.readers.push(trace);
            if stats.readers.len() > threshold {
                stats.hot = true;
                stats.readers = Vec::new();
                return ReadOutcome::Retract(std::mem::take(&mut stats.linked));
            }
        }
        let Some((writer, at)) = stats.last_writer else {
            return ReadOutcome::Nothing;
        };
        let window = self.config.state_window.as_nanos() as u64;
        if writer != trace && t.saturating_sub(at) <= window {
            ReadOutcome::Link(writer, at)
        } else {
            ReadOutcome::Nothing
        }
    }

    /// Remembers that reading `key` linked `trace` (to undo if the key turns hot).
    pub fn linked_by(&mut self, key: &str, trace: TraceId) {
        if let Some(stats) = self.keys.get_mut(key)
            && !stats.linked.contains(&trace)
        {
            stats.linked.push(trace);
        }
    }

    /// The data keys event links use.
    pub fn event_keys(&self) -> &[String] {
        &self.config.event_keys
    }

    /// Records that `trace` emitted `topic` carrying `key = value` at `t`.
    pub fn emitted(&mut self, topic: &str, key: &str, value: &str, trace: TraceId, t: u64) {
        self.emits
            .put((topic.into(), key.into(), value.into()), (trace, t));
    }

    /// The emitter a consumer of `topic` with `key = value` at `t` links to.
    pub fn emitter(
        &mut self,
        topic: &str,
        key: &str,
        value: &str,
        trace: TraceId,
        t: u64,
    ) -> Option<(TraceId, u64)> {
        let (emitter, at) = *self.emits.get(&(topic.into(), key.into(), value.into()))?;
        let window = self.config.event_window.as_nanos() as u64;
        (emitter != trace && t.saturating_sub(at) <= window).then_some((emitter, at))
    }

    /// The temporal rules.
    pub fn temporal_rules(&self) -> &[TemporalRule] {
        &self.config.temporal
    }

    /// Records a run of `flow` with `attribute = value` that started at `t`.
    pub fn run_started(
        &mut self,
        flow: &str,
        attribute: &str,
        value: &str,
        trace: TraceId,
        t: u64,
    ) {
        self.runs
            .put((flow.into(), attribute.into(), value.into()), (trace, t));
    }

    /// The latest run of `flow` with `attribute = value` before `t`, within `window`: (trace,
    /// its start, confidence).
    pub fn earlier_run(
        &mut self,
        flow: &str,
        attribute: &str,
        value: &str,
        trace: TraceId,
        t: u64,
        window: Duration,
    ) -> Option<(TraceId, u64, f64)> {
        let (earlier, at) = *self
            .runs
            .get(&(flow.into(), attribute.into(), value.into()))?;
        let gap = t.checked_sub(at)?;
        let window = window.as_nanos() as u64;
        (earlier != trace && gap <= window).then(|| {
            let confidence = 1.0 - gap as f64 / window.max(1) as f64;
            (earlier, at, (confidence * 1000.0).round() / 1000.0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_a_shell() {
        assert!(glob_matches("order.*", "order.42.status"));
        assert!(glob_matches("*.status", "order.42.status"));
        assert!(glob_matches("a?c", "abc"));
        assert!(!glob_matches("order.*", "config.tax"));
        assert!(glob_matches("*", ""));
    }

    #[test]
    fn hot_keys_stop_linking() {
        let mut c = Correlator::new(CorrelateConfig {
            hot_key_readers: 2,
            ..CorrelateConfig::default()
        });
        c.state_written("config.tax", TraceId(1), 10);
        assert_eq!(
            c.state_read("config.tax", TraceId(2), 20),
            ReadOutcome::Link(TraceId(1), 10)
        );
        c.linked_by("config.tax", TraceId(2));
        assert_eq!(
            c.state_read("config.tax", TraceId(3), 20),
            ReadOutcome::Link(TraceId(1), 10)
        );
        c.linked_by("config.tax", TraceId(3));
        assert_eq!(
            c.state_read("config.tax", TraceId(4), 20),
            ReadOutcome::Retract(vec![TraceId(2), TraceId(3)]),
            "third reader: hot, and the earlier links are undone"
        );
        assert_eq!(
            c.state_read("config.tax", TraceId(2), 30),
            ReadOutcome::Nothing,
            "and it stays hot"
        );
    }

    #[test]
    fn old_writes_and_own_writes_do_not_link() {
        let mut c = Correlator::new(CorrelateConfig {
            state_window: Duration::from_nanos(100),
            exclude: vec!["tmp.*".into()],
            ..CorrelateConfig::default()
        });
        c.state_written("k", TraceId(1), 10);
        assert_eq!(c.state_read("k", TraceId(1), 20), ReadOutcome::Nothing);
        assert_eq!(c.state_read("k", TraceId(2), 500), ReadOutcome::Nothing);
        c.state_written("tmp.x", TraceId(1), 10);
        assert_eq!(c.state_read("tmp.x", TraceId(2), 20), ReadOutcome::Nothing);
    }

    #[test]
    fn temporal_rules_parse_and_confidence_falls_over_the_window() {
        let rule = TemporalRule::parse("cart->checkout:10m@userId").unwrap();
        assert_eq!((rule.from.as_str(), rule.to.as_str()), ("cart", "checkout"));
        assert_eq!(rule.window, Duration::from_secs(600));
        assert!(TemporalRule::parse("cart:10m@u").is_err());
        let mut c = Correlator::new(CorrelateConfig::default());
        c.run_started("cart", "userId", "u1", TraceId(1), 0);
        let ten = Duration::from_secs(10);
        let (_, _, confidence) = c
            .earlier_run("cart", "userId", "u1", TraceId(2), 2_500_000_000, ten)
            .unwrap();
        assert_eq!(confidence, 0.75);
        assert!(
            c.earlier_run("cart", "userId", "u1", TraceId(2), 11_000_000_000, ten)
                .is_none()
        );
    }
}
