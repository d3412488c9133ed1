//! Static copies of the names a program repeats (state keys, topics, step names), for bindings
//! whose strings arrive as borrowed text: the first sight of a name copies it once, for good, and
//! every later event carries it as [`Name::Borrowed`] — no allocation on the emitting thread and
//! no free on the writer's. Bounded: past [`MAX_NAMES`] names (or for long ones) events carry an
//! owned copy as before, so a stream of unique keys costs at most `MAX_NAMES × MAX_LEN` bytes.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;

use parking_lot::Mutex;

use crate::wire::Name;

/// Distinct names kept at most (process-wide).
pub const MAX_NAMES: usize = 4096;
/// Longest name kept, in bytes.
pub const MAX_LEN: usize = 128;

static KEPT: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);

thread_local! {
    /// This thread's view of `KEPT`: a hit needs no lock.
    static SEEN: RefCell<HashSet<&'static str>> = RefCell::new(HashSet::new());
}

/// `text` as a [`Name`]: borrowed from the kept copy when it is (or can become) one of them.
pub fn name_of(text: &str) -> Name {
    if text.len() > MAX_LEN {
        return Cow::Owned(text.to_owned());
    }
    if let Some(kept) = SEEN.with(|seen| seen.borrow().get(text).copied()) {
        return Cow::Borrowed(kept);
    }
    let kept = {
        let mut guard = KEPT.lock();
        let names = guard.get_or_insert_with(HashSet::new);
        match names.get(text) {
            Some(kept) => Some(*kept),
            None if names.len() < MAX_NAMES => {
                let kept: &'static str = Box::leak(text.into());
                names.insert(kept);
                Some(kept)
            }
            None => None,
        }
    };
    match kept {
        Some(kept) => {
            SEEN.with(|seen| seen.borrow_mut().insert(kept));
            Cow::Borrowed(kept)
        }
        None => Cow::Owned(text.to_owned()),
    }
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
        assert!(matches!(name_of("never-seen-before"), Cow::Owned(_)));
        assert_eq!(name_of("never-seen-before"), "never-seen-before");
        assert!(
            matches!(name_of("user.email"), Cow::Borrowed(_)),
            "kept ones stay"
        );
    }
}
