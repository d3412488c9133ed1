//! Secondary indexes over the stored traces, so filters look up candidates instead of scanning.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use flowscope::wire::{OpKind, TraceId};

use crate::trace::{ThinStr, Trace, TraceStatus};

/// The hasher of the store's indexes: foldhash, randomly seeded per map. Trace ids and keys
/// are hashed on every event (and removed on every eviction) at a fraction of SipHash's cost.
pub type IndexHasher = foldhash::fast::RandomState;

/// A set of trace ids.
pub type IdSet = HashSet<TraceId, IndexHasher>;

/// Trace ids by one string field (flow, step name, state key, topic).
pub type KeyIndex = HashMap<Box<str>, IdSet, IndexHasher>;

/// Members of one correlation group.
#[derive(Debug, Default, Clone)]
pub struct GroupEntry {
    /// Display name given by a `correlate` event, if any.
    pub name: Option<String>,
    /// Member traces.
    pub traces: IdSet,
    /// Members by (start time, id): previous member and position in O(log n) / O(position).
    pub order: BTreeSet<(u64, TraceId)>,
    /// Members that joined by an automatic (state/event/temporal) link.
    pub auto_links: usize,
}

impl GroupEntry {
    /// The member started just before `(start_ns, id)`.
    pub fn previous(&self, start_ns: u64, id: TraceId) -> Option<TraceId> {
        self.order
            .range(..(start_ns, id))
            .next_back()
            .map(|(_, t)| *t)
    }

    /// How many members started before `(start_ns, id)`.
    pub fn position(&self, start_ns: u64, id: TraceId) -> usize {
        self.order.range(..(start_ns, id)).count()
    }
}

/// Every index the store keeps.
#[derive(Debug, Default)]
pub struct Indexes {
    /// (start time, id): the list order and cursor positions.
    pub by_start: BTreeSet<(u64, TraceId)>,
    /// Flow name → traces.
    pub flow: KeyIndex,
    /// Status → traces (indexed by [`TraceStatus::index`]).
    pub status: [IdSet; 3],
    /// Step name → traces.
    pub step: KeyIndex,
    /// State key → traces touching it.
    pub state_key: KeyIndex,
    /// Emit topic → traces emitting it.
    pub topic: KeyIndex,
    /// Service name → traces with a segment from it.
    pub service: KeyIndex,
    /// Correlation id → group.
    pub groups: HashMap<String, GroupEntry>,
    /// Shared copies of the names operations repeat.
    pub names: Interner,
}

/// Names kept once however many operations repeat them. Bounded: when full, names no
/// operation holds any more are let go, and past that new names are simply not shared. Hashed
/// with [`IndexHasher`]: a lookup per operation.
///
/// A name that [`Interner::PROMOTE_AT`] clones hold at once is made permanent (see
/// `ThinStr::permanent`): from then on its copies cost no atomic count. Permanent copies come
/// from [`PermanentNames`]; a stream of distinct names, each held by a few operations, never
/// reaches the threshold.
#[derive(Debug)]
pub struct Interner {
    names: HashSet<ThinStr, IndexHasher>,
    /// Unshared names to hand out, while full, before the next sweep.
    misses_before_sweep: usize,
    /// Where permanent copies come from (the process's, outside tests).
    permanent: &'static PermanentNames,
}

/// The permanent names of a process, and the bytes it may still spend on new ones. Permanent
/// copies outlive the store that made them (loading a trace from the journal builds a scratch
/// store, and the agent can run several times in one Python or Node process), so each name is
/// made permanent once per process, whichever store promotes it, and all of them together
/// cost at most the budget.
#[derive(Debug)]
pub struct PermanentNames {
    names: parking_lot::Mutex<HashSet<ThinStr, IndexHasher>>,
    /// Bytes left; written only under `names`' lock, read without it to skip the lock once
    /// the budget is spent.
    left: AtomicUsize,
}

impl PermanentNames {
    /// Bytes a process spends on permanent names at most, counting each as its length plus
    /// [`PermanentNames::OVERHEAD`].
    pub const BYTES: usize = 1 << 20;
    /// What a permanent name costs beside its text: its two heap blocks and their headers,
    /// and its slot here.
    pub const OVERHEAD: usize = 64;

    /// Names made from a budget of `bytes`.
    pub fn new(bytes: usize) -> Self {
        Self {
            names: parking_lot::Mutex::default(),
            left: AtomicUsize::new(bytes),
        }
    }

    /// The process's permanent names.
    pub fn process() -> &'static Self {
        static PROCESS: std::sync::LazyLock<PermanentNames> =
            std::sync::LazyLock::new(|| PermanentNames::new(PermanentNames::BYTES));
        &PROCESS
    }

    /// The permanent copy of `text`: the one made before, else a new one while the budget
    /// holds it; `None` once it does not.
    pub fn get(&self, text: &str) -> Option<ThinStr> {
        let cost = text.len() + Self::OVERHEAD;
        if self.left.load(Ordering::Relaxed) < cost {
            return None;
        }
        let mut names = self.names.lock();
        if let Some(name) = names.get(text) {
            return Some(name.clone());
        }
        let left = self.left.load(Ordering::Relaxed).checked_sub(cost)?;
        self.left.store(left, Ordering::Relaxed);
        let name = ThinStr::permanent(text);
        names.insert(name.clone());
        Some(name)
    }

    /// Bytes left to spend.
    #[cfg(test)]
    fn left(&self) -> usize {
        self.left.load(Ordering::Relaxed)
    }

    /// Permanent names made.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.names.lock().len()
    }
}

impl Default for Interner {
    fn default() -> Self {
        Self::with_permanent(PermanentNames::process())
    }
}

impl Interner {
    /// Distinct names kept at most.
    pub const MAX_NAMES: usize = 65_536;
    /// Live clones of a name that make it permanent.
    pub const PROMOTE_AT: usize = 16;

    /// An interner whose permanent copies come from `permanent`.
    pub fn with_permanent(permanent: &'static PermanentNames) -> Self {
        Self {
            names: HashSet::default(),
            misses_before_sweep: 0,
            permanent,
        }
    }

    /// The shared copy of `text`.
    pub fn get(&mut self, text: &str) -> ThinStr {
        if let Some(name) = self.names.get(text) {
            if name.clones().is_some_and(|n| n >= Self::PROMOTE_AT)
                && let Some(permanent) = self.permanent.get(text)
            {
                self.names.replace(permanent.clone());
                return permanent;
            }
            return name.clone();
        }
        if self.names.len() >= Self::MAX_NAMES {
            if self.misses_before_sweep == 0 {
                self.names.retain(ThinStr::is_shared);
                // A sweep walks every name: one per MAX_NAMES unshared names at most, so even a
                // stream of unique keys costs O(1) per name.
                self.misses_before_sweep = Self::MAX_NAMES;
            }
            if self.names.len() >= Self::MAX_NAMES {
                self.misses_before_sweep -= 1;
                return ThinStr::new(text);
            }
        }
        let name = ThinStr::new(text);
        self.names.insert(name.clone());
        name
    }

    /// Names kept.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Adds `id` under `key`.
pub fn insert_key(index: &mut KeyIndex, key: &str, id: TraceId) {
    match index.get_mut(key) {
        Some(set) => {
            set.insert(id);
        }
        None => {
            let mut set = IdSet::default();
            set.insert(id);
            index.insert(key.into(), set);
        }
    }
}

/// Removes `id` from `key`, dropping the key when empty.
pub fn remove_key(index: &mut KeyIndex, key: &str, id: TraceId) {
    if let Some(set) = index.get_mut(key) {
        set.remove(&id);
        if set.is_empty() {
            index.remove(key);
        }
    }
}

impl Indexes {
    /// Registers a new trace (start order and status).
    pub fn add_trace(&mut self, trace: &Trace) {
        self.by_start.insert((trace.start_ns, trace.id));
        self.status[trace.status.index()].insert(trace.id);
    }

    /// Moves a trace in the start order (and in its group's, when it has one).
    pub fn move_start(&mut self, id: TraceId, group: Option<&str>, from: u64, to: u64) {
        if from != to {
            self.by_start.remove(&(from, id));
            self.by_start.insert((to, id));
            if let Some(entry) = group.and_then(|cid| self.groups.get_mut(cid)) {
                entry.order.remove(&(from, id));
                entry.order.insert((to, id));
            }
        }
    }

    /// Moves a trace between status sets.
    pub fn set_status(&mut self, id: TraceId, from: TraceStatus, to: TraceStatus) {
        if from != to {
            self.status[from.index()].remove(&id);
            self.status[to.index()].insert(id);
        }
    }

    /// Moves a trace (started at `start_ns`) between groups.
    pub fn set_group(
        &mut self,
        id: TraceId,
        start_ns: u64,
        from: Option<&str>,
        to: &str,
        name: Option<String>,
    ) {
        if let Some(old) = from.filter(|old| *old != to) {
            self.leave_group(id, start_ns, old);
        }
        let entry = self.groups.entry(to.to_owned()).or_default();
        entry.traces.insert(id);
        entry.order.insert((start_ns, id));
        if name.is_some() {
            entry.name = name;
        }
    }

    /// Takes a trace out of group `cid`.
    pub fn leave(&mut self, id: TraceId, start_ns: u64, cid: &str) {
        self.leave_group(id, start_ns, cid);
    }

    fn leave_group(&mut self, id: TraceId, start_ns: u64, cid: &str) {
        if let Some(group) = self.groups.get_mut(cid) {
            group.traces.remove(&id);
            group.order.remove(&(start_ns, id));
            if group.traces.is_empty() {
                self.groups.remove(cid);
            }
        }
    }

    /// Removes every trace of an evicted trace.
    pub fn remove_trace(&mut self, trace: &Trace) {
        let id = trace.id;
        self.by_start.remove(&(trace.start_ns, id));
        self.status[trace.status.index()].remove(&id);
        if let Some(flow) = &trace.flow_name {
            remove_key(&mut self.flow, flow, id);
        }
        if let Some(cid) = &trace.correlation_id {
            self.leave_group(id, trace.start_ns, cid);
        }
        for segment in &trace.segments {
            remove_key(&mut self.service, &segment.origin.service, id);
        }
        for step in &trace.steps {
            remove_key(&mut self.step, &step.name, id);
        }
        for op in trace.all_ops() {
            let Some(subject) = op.subject.as_deref() else {
                continue;
            };
            match op.kind {
                OpKind::State => remove_key(&mut self.state_key, subject, id),
                OpKind::Emit => remove_key(&mut self.topic, subject, id),
                OpKind::Stream => {}
            }
        }
    }
}

impl Indexes {
    fn key_index(&mut self, kind: crate::trace::builder::KeyKind) -> &mut KeyIndex {
        use crate::trace::builder::KeyKind;
        match kind {
            KeyKind::Flow => &mut self.flow,
            KeyKind::Step => &mut self.step,
            KeyKind::StateKey => &mut self.state_key,
            KeyKind::Topic => &mut self.topic,
            KeyKind::Service => &mut self.service,
        }
    }
}

impl crate::trace::builder::IndexUpdates for Indexes {
    fn intern(&mut self, text: &str) -> crate::trace::ThinStr {
        self.names.get(text)
    }

    fn add_key(&mut self, kind: crate::trace::builder::KeyKind, key: &str, id: TraceId) {
        insert_key(self.key_index(kind), key, id);
    }

    fn remove_key(&mut self, kind: crate::trace::builder::KeyKind, key: &str, id: TraceId) {
        remove_key(self.key_index(kind), key, id);
    }

    fn start_moved(&mut self, id: TraceId, group: Option<&str>, from: u64, to: u64) {
        self.move_start(id, group, from, to);
    }

    fn status_changed(&mut self, id: TraceId, from: TraceStatus, to: TraceStatus) {
        self.set_status(id, from, to);
    }

    fn group_changed(
        &mut self,
        id: TraceId,
        start: u64,
        from: Option<&str>,
        to: &str,
        name: Option<String>,
    ) {
        self.set_group(id, start, from, to, name);
    }

    fn automatic_member_left(&mut self, cid: &str) {
        if let Some(group) = self.groups.get_mut(cid) {
            group.auto_links = group.auto_links.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interner_shares_names_and_stays_bounded() {
        let mut names = Interner::default();
        let a = names.get("user.email");
        let b = names.get(&String::from("user.email"));
        assert!(ThinStr::ptr_eq(&a, &b), "one copy per name");
        // Full of names nobody holds: they are let go, and new ones are shared again.
        for i in 0..Interner::MAX_NAMES {
            names.get(&format!("key-{i}"));
        }
        let c = names.get("fresh");
        assert!(names.len() < Interner::MAX_NAMES / 2, "{}", names.len());
        assert!(ThinStr::ptr_eq(&c, &names.get("fresh")));
        assert!(
            ThinStr::ptr_eq(&a, &names.get("user.email")),
            "a held name is kept"
        );
        // Full of names still held: new ones are returned but not kept, and a long stream of
        // unique names does not sweep the full set for each (that would be quadratic).
        let held: Vec<_> = (0..3 * Interner::MAX_NAMES)
            .map(|i| names.get(&format!("held-{i}")))
            .collect();
        assert_eq!(names.len(), Interner::MAX_NAMES);
        assert_eq!(&*names.get("one-more"), "one-more");
        assert!(!ThinStr::ptr_eq(
            &names.get("one-more"),
            &names.get("one-more")
        ));
        drop(held);
    }

    #[test]
    fn a_name_held_widely_becomes_permanent_once_per_process_within_its_budget() {
        let cost = |name: &str| name.len() + PermanentNames::OVERHEAD;
        let permanent: &'static PermanentNames = Box::leak(Box::new(PermanentNames::new(
            cost("user.email") + cost("user.saved"),
        )));
        let mut names = Interner::with_permanent(permanent);
        let held: Vec<_> = (0..Interner::PROMOTE_AT - 1)
            .map(|_| names.get("user.email"))
            .collect();
        assert!(
            held.iter().all(|n| !n.is_permanent()),
            "below the threshold"
        );
        let promoted = names.get("user.email");
        assert!(promoted.is_permanent(), "the next use after enough holders");
        assert!(ThinStr::ptr_eq(&promoted, &names.get("user.email")));
        assert_eq!(
            names.len(),
            1,
            "the permanent copy replaced the counted one"
        );
        assert!(
            held.iter().all(|n| *n == promoted),
            "old holders keep equal copies"
        );

        // Another store promoting the same name gets the same copy, at no cost.
        let mut scratch = Interner::with_permanent(permanent);
        let again: Vec<_> = (0..=Interner::PROMOTE_AT)
            .map(|_| scratch.get("user.email"))
            .collect();
        assert!(ThinStr::ptr_eq(again.last().unwrap(), &promoted));
        assert_eq!(permanent.left(), cost("user.saved"));

        // A second hot name fits the budget; a third does not, and stays counted.
        let mut last = ThinStr::default();
        for name in ["user.saved", "email.queued"] {
            let held: Vec<_> = (0..Interner::PROMOTE_AT).map(|_| names.get(name)).collect();
            last = names.get(name);
            drop(held);
        }
        assert!(!last.is_permanent(), "over budget");
        assert!(names.get("user.saved").is_permanent());
        assert_eq!((permanent.len(), permanent.left()), (2, 0));
        // A sweep keeps permanent names even when no operation holds them.
        drop((held, promoted, again));
        for i in 0..=Interner::MAX_NAMES {
            names.get(&format!("key-{i}"));
        }
        assert!(names.get("user.email").is_permanent());
    }
}
