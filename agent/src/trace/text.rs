//! [`ThinStr`]: shared text in one pointer.
//!
//! The one module of the agent with `unsafe` code: a tagged pointer, so that the names the
//! store repeats most can be copied without touching a reference count.

#![allow(unsafe_code)] // the tagged pointer below; each block says why it holds

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::Arc;

/// Immutable shared text in one pointer (`Arc<str>` takes two words). Operations hold up to
/// three strings, and millions of operations are kept, so the word saved is 24 bytes per
/// operation. Clones share one copy; the store interns repeated names into it.
///
/// A copy is either reference-counted (an `Arc<Box<str>>`, freed with its last clone) or
/// permanent (never freed, made by `ThinStr::permanent`). Cloning and dropping a permanent
/// copy touches no count: on the storing thread, the locked increment of a shared name's count
/// was 11-14 % of the time spent per event (perf), since it waits for every pending store.
pub struct ThinStr(NonNull<Box<str>>);

/// The low address bit marks a permanent copy (a `Box<str>` is 8-aligned, so the bit is free).
const PERMANENT: usize = 1;

// SAFETY: the text is never mutated; a counted copy's count is an `Arc`'s (atomic), and a
// permanent copy has no count and lives forever. So it is as `Send + Sync` as `Arc<Box<str>>`.
unsafe impl Send for ThinStr {}
// SAFETY: as for `Send`.
unsafe impl Sync for ThinStr {}

impl ThinStr {
    /// A new (reference-counted) copy of `text`.
    pub fn new(text: &str) -> Self {
        Self::counted(Arc::new(text.into()))
    }

    fn counted(text: Arc<Box<str>>) -> Self {
        let raw = Arc::into_raw(text).cast_mut();
        // SAFETY: `Arc::into_raw` never returns null.
        Self(unsafe { NonNull::new_unchecked(raw) })
    }

    /// A copy of `text` that is never freed, whose clones and drops touch no count. Each call
    /// leaks its text for good, so callers must bound how many they make (the store's
    /// interner keeps a byte budget).
    pub(crate) fn permanent(text: &str) -> Self {
        let leaked: &'static mut Box<str> = Box::leak(Box::new(text.into()));
        Self(NonNull::from(leaked).map_addr(|addr| addr | PERMANENT))
    }

    /// Whether this copy is permanent.
    pub fn is_permanent(&self) -> bool {
        self.0.addr().get() & PERMANENT != 0
    }

    /// A permanent copy's address: as it is never freed, no other text ever has it, so it
    /// identifies the text for the life of the process. `None` for a counted copy (whose
    /// address a later, different text may reuse).
    pub fn permanent_id(&self) -> Option<usize> {
        self.is_permanent().then(|| self.0.addr().get())
    }

    /// The `Box<str>` behind the pointer, tag cleared.
    fn target(&self) -> *const Box<str> {
        self.0.as_ptr().map_addr(|addr| addr & !PERMANENT)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // SAFETY: a permanent target is never freed; a counted one is kept alive by the count
        // this copy holds, for as long as `self` is borrowed.
        unsafe { &*self.target() }
    }

    /// Whether `a` and `b` are clones of one copy.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        a.0 == b.0
    }

    /// How many clones of a counted copy there are (this one included); `None` when permanent.
    pub fn clones(&self) -> Option<usize> {
        (!self.is_permanent()).then(|| {
            // SAFETY: the pointer came from `Arc::into_raw` and this copy holds a count; the
            // `ManuallyDrop` gives it back untouched.
            let arc = ManuallyDrop::new(unsafe { Arc::from_raw(self.target()) });
            Arc::strong_count(&arc)
        })
    }

    /// Whether another clone may share this copy (always, for a permanent one).
    pub fn is_shared(&self) -> bool {
        self.clones().is_none_or(|n| n > 1)
    }
}

impl Clone for ThinStr {
    fn clone(&self) -> Self {
        if !self.is_permanent() {
            // SAFETY: the pointer came from `Arc::into_raw`, and this copy's count keeps it
            // alive; the new copy takes the new count.
            unsafe { Arc::increment_strong_count(self.target()) };
        }
        Self(self.0)
    }
}

impl Drop for ThinStr {
    fn drop(&mut self) {
        if !self.is_permanent() {
            // SAFETY: the pointer came from `Arc::into_raw`; this gives back this copy's count.
            drop(unsafe { Arc::from_raw(self.target()) });
        }
    }
}

impl Default for ThinStr {
    /// The empty text, one permanent copy shared by all.
    fn default() -> Self {
        static EMPTY: std::sync::LazyLock<ThinStr> =
            std::sync::LazyLock::new(|| ThinStr::permanent(""));
        EMPTY.clone()
    }
}

impl PartialEq for ThinStr {
    fn eq(&self, other: &Self) -> bool {
        Self::ptr_eq(self, other) || self.as_str() == other.as_str()
    }
}

impl Eq for ThinStr {}

impl Hash for ThinStr {
    /// Hashes like its text (so sets of names can be looked up by `&str`).
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl PartialOrd for ThinStr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ThinStr {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialEq<str> for ThinStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ThinStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Deref for ThinStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for ThinStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for ThinStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for ThinStr {
    /// Moves the string in (no copy when it has no spare capacity, as decoded strings do).
    fn from(text: String) -> Self {
        Self::counted(Arc::new(text.into_boxed_str()))
    }
}

impl From<Box<str>> for ThinStr {
    /// Moves the text in, without a copy.
    fn from(text: Box<str>) -> Self {
        Self::counted(Arc::new(text))
    }
}

impl From<&str> for ThinStr {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl fmt::Debug for ThinStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ThinStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl serde::Serialize for ThinStr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::ThinStr;

    #[test]
    fn one_pointer_wide_and_hashes_like_its_text() {
        assert_eq!(std::mem::size_of::<Option<ThinStr>>(), 8);
        let mut set = std::collections::HashSet::new();
        set.insert(ThinStr::from("user.email"));
        assert!(set.contains("user.email"));
        let shared = set.get("user.email").cloned().unwrap();
        assert!(shared.is_shared());
        assert_eq!(format!("{shared}|{shared:?}"), "user.email|\"user.email\"");
    }

    #[test]
    fn a_counted_copy_counts_its_clones_across_threads() {
        let name = ThinStr::new("validation.result");
        assert!(!name.is_shared() && !name.is_permanent());
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    let clones: Vec<_> = (0..10_000).map(|_| name.clone()).collect();
                    assert!(clones.iter().all(|c| ThinStr::ptr_eq(c, &name)));
                    assert!(name.is_shared());
                });
            }
        });
        // Every clone gave its count back: this copy is the last one again.
        assert!(!name.is_shared());
        assert_eq!(name.as_str(), "validation.result");
    }

    #[test]
    fn a_permanent_copy_equals_hashes_and_orders_like_a_counted_one() {
        use std::hash::BuildHasher;
        let permanent = ThinStr::permanent("user.saved");
        let counted = ThinStr::new("user.saved");
        assert!(permanent.is_permanent() && permanent.is_shared());
        let clone = permanent.clone();
        assert!(ThinStr::ptr_eq(&clone, &permanent) && clone.is_permanent());
        drop(clone);
        assert_eq!(
            permanent.as_str(),
            "user.saved",
            "a dropped clone frees nothing"
        );
        assert_eq!(permanent, counted);
        assert!(!ThinStr::ptr_eq(&permanent, &counted));
        let hasher = std::collections::hash_map::RandomState::new();
        assert_eq!(hasher.hash_one(&permanent), hasher.hash_one(&counted));
        assert_eq!(hasher.hash_one(&permanent), hasher.hash_one("user.saved"));
        assert!(ThinStr::permanent("a") < ThinStr::new("b"));
        assert!(ThinStr::new("a") < ThinStr::permanent("b"));
        assert_eq!(ThinStr::default().as_str(), "");
        assert!(ThinStr::default().is_permanent());
    }
}
