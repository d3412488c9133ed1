//! Static copies of the names a program repeats (state keys, topics, step names), for bindings
//! whose strings arrive as borrowed text: the first sight of a name copies it once, for good, and
//! every later event carries it as [`Name::Borrowed`] — no allocation on the emitting thread and
//! no free on the writer's. Bounded: past [`MAX_NAMES`] names (or for long ones) events carry an
//! owned copy as before, so a stream of unique keys costs at most `MAX_NAMES × MAX_LEN` bytes.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use parking_lot::Mutex;

use crate::wire::Name;

/// Distinct names kept at most (process-wide).
pub const MAX_NAMES: usize = 4096;
/// Longest name kept, in bytes.
pub const MAX_LEN: usize = 128;

/// The kept names and their ids (positions in `BY_ID`).
static KEPT: Mutex<Option<HashMap<&'static str, u32>>> = Mutex::new(None);
/// The kept names by id, readable without a lock.
static BY_ID: [OnceLock<&'static str>; MAX_NAMES] = [const { OnceLock::new() }; MAX_NAMES];

thread_local! {
    /// This thread's view of `KEPT`: a hit needs no lock.
    static SEEN: RefCell<HashSet<&'static str>> = RefCell::new(HashSet::new());
}

/// The kept copy of `text` and its id, keeping it when there is room.
fn keep(text: &str) -> Option<(&'static str, u32)> {
    if text.len() > MAX_LEN {
        return None;
    }
    let mut guard = KEPT.lock();
    let names = guard.get_or_insert_with(HashMap::new);
    if let Some((kept, id)) = names.get_key_value(text) {
        return Some((*kept, *id));
    }
    let id = names.len();
    let slot = BY_ID.get(id)?;
    let kept: &'static str = Box::leak(text.into());
    let id = id as u32;
    names.insert(kept, id);
    let _ = slot.set(kept);
    Some((kept, id))
}

/// `text` as a [`Name`]: borrowed from the kept copy when it is (or can become) one of them.
pub fn name_of(text: &str) -> Name {
    if text.len() > MAX_LEN {
        // Never kept: not worth hashing on every call.
        return Cow::Owned(text.to_owned());
    }
    if let Some(kept) = SEEN.with(|seen| seen.borrow().get(text).copied()) {
        return Cow::Borrowed(kept);
    }
    match keep(text) {
        Some((kept, _)) => {
            SEEN.with(|seen| seen.borrow_mut().insert(kept));
            Cow::Borrowed(kept)
        }
        None => Cow::Owned(text.to_owned()),
    }
}

/// The id of `text`'s kept copy (keeping it when there is room), for bindings that pass a name
/// they repeat as a number instead of converting the string on every call; `None` when it cannot
/// be kept (too long, or the table is full).
pub fn name_id(text: &str) -> Option<u32> {
    keep(text).map(|(_, id)| id)
}

/// The kept name with id `id` (see [`name_id`]).
pub fn name_by_id(id: u32) -> Option<Name> {
    let kept = BY_ID.get(usize::try_from(id).ok()?)?.get()?;
    Some(Cow::Borrowed(*kept))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_names_are_shared_and_the_table_is_bounded() {
        let a = name_of("user.email");
        let b = name_of(&String::from("user.email"));
        match (&a, &b) {
            (Cow::Borrowed(a), Cow::Borrowed(b)) => assert!(std::ptr::eq(*a, *b)),
            other => panic!("expected two borrowed copies, got {other:?}"),
        }
        // Another thread sees the same copy.
        let c = std::thread::spawn(|| name_of("user.email")).join().unwrap();
        assert!(matches!(c, Cow::Borrowed(s) if std::ptr::eq(s, a.as_ref())));
        assert!(matches!(name_of(&"x".repeat(MAX_LEN + 1)), Cow::Owned(_)));
        for i in 0..MAX_NAMES {
            let _ = name_of(&format!("unique-{i}"));
        }
        assert!(KEPT.lock().as_ref().unwrap().len() <= MAX_NAMES);
        // Ids name the same kept copies; past the table there is none.
        let id = name_id("user.email").expect("kept");
        assert!(matches!(name_by_id(id), Some(Cow::Borrowed(s)) if std::ptr::eq(s, a.as_ref())));
        assert_eq!(name_id("never-seen-before"), None);
        assert_eq!(name_by_id(MAX_NAMES as u32), None);
        assert_eq!(name_id(&"x".repeat(MAX_LEN + 1)), None);
        assert!(matches!(name_of("never-seen-before"), Cow::Owned(_)));
        assert_eq!(name_of("never-seen-before"), "never-seen-before");
        assert!(
            matches!(name_of("user.email"), Cow::Borrowed(_)),
            "kept ones stay"
        );
    }
}
