//! [`ThinStr`]: shared text in one pointer.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// Immutable shared text in one pointer (`Arc<str>` takes two words). Operations hold up to
/// three strings, and millions of operations are kept, so the word saved is 24 bytes per
/// operation. Clones share one copy; the store interns repeated names into it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ThinStr(Arc<Box<str>>);

impl ThinStr {
    /// A new copy of `text`.
    pub fn new(text: &str) -> Self {
        Self(Arc::new(text.into()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `a` and `b` are clones of one copy.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    /// Whether another clone shares this copy.
    pub fn is_shared(&self) -> bool {
        Arc::strong_count(&self.0) > 1
    }
}

impl Default for ThinStr {
    /// The empty text, one copy shared by all.
    fn default() -> Self {
        static EMPTY: std::sync::LazyLock<ThinStr> = std::sync::LazyLock::new(|| ThinStr::new(""));
        EMPTY.clone()
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
        &self.0
    }
}

impl Borrow<str> for ThinStr {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ThinStr {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<String> for ThinStr {
    /// Moves the string in (no copy when it has no spare capacity, as decoded strings do).
    fn from(text: String) -> Self {
        Self(Arc::new(text.into_boxed_str()))
    }
}

impl From<Box<str>> for ThinStr {
    /// Moves the text in, without a copy.
    fn from(text: Box<str>) -> Self {
        Self(Arc::new(text))
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
}
