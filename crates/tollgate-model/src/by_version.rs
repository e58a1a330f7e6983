//! Maps keyed by API version (name, version) that are looked up with borrowed names.
//!
//! The caches that make an admin write cheap (validation, projection, compile plans) hold one
//! entry per API version and are consulted once per API version on every write. Keyed by
//! `(String, String)` in a standard map, each lookup had to build an owned key (two
//! allocations) and each compile rebuilt the map (growing it from empty, rehashing every
//! entry several times): at 100 API versions about a fifth of a write's instructions. A
//! [`ByVersion`] is looked up with a [`VersionRef`] of the definition's own names and updated
//! in place; [`Marks`] tells which entries the last pass did not visit, to drop them.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::Api;

/// A map keyed by (API name, version), hashed with foldhash (keys come from the
/// configuration, whose authors are trusted).
pub type ByVersion<V> = hashbrown::HashMap<(String, String), V, foldhash::fast::RandomState>;

/// A borrowed (API name, version) to look a [`ByVersion`] up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionRef<'a>(pub &'a str, pub &'a str);

impl Hash for VersionRef<'_> {
    /// Hashes as `(String, String)` does: each name as a `str`, in order.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
        self.1.hash(state);
    }
}

impl hashbrown::Equivalent<(String, String)> for VersionRef<'_> {
    fn equivalent(&self, key: &(String, String)) -> bool {
        self.0 == key.0 && self.1 == key.1
    }
}

impl VersionRef<'_> {
    /// The owned key.
    pub fn to_key(self) -> (String, String) {
        (self.0.to_owned(), self.1.to_owned())
    }
}

/// Whether a cache's `kept` definition is `api`'s: the same shared definition (consecutive
/// configurations of a store share the unchanged ones: one comparison), or an equal one (a
/// configuration parsed again, as a file reload does: compared route by route).
pub fn same_definition(kept: &Arc<Api>, api: &Arc<Api>) -> bool {
    Arc::ptr_eq(kept, api) || **kept == **api
}

/// Pass numbers for entries of a cache updated in place: an entry records the pass that last
/// visited it; those an ended pass did not visit are stale.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Marks {
    pass: u64,
}

impl Marks {
    /// Starts a pass; returns its number (never 0, so that 0 can mean "never visited").
    pub fn start(&mut self) -> u64 {
        self.pass += 1;
        self.pass
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn a_borrowed_key_hashes_and_compares_as_the_owned_one() {
        let state = foldhash::fast::RandomState::default();
        let owned = ("orders".to_owned(), "v2".to_owned());
        let borrowed = VersionRef("orders", "v2");
        assert_eq!(state.hash_one(&owned), state.hash_one(borrowed));
        // Where the names split matters: ("ab", "c") is not ("a", "bc").
        assert_ne!(
            state.hash_one(VersionRef("ab", "c")),
            state.hash_one(VersionRef("a", "bc"))
        );
        let mut map: ByVersion<u32> = ByVersion::default();
        map.insert(owned, 7);
        assert_eq!(map.get(&borrowed), Some(&7));
        assert_eq!(map.get(&VersionRef("orders", "v1")), None);
        assert_eq!(map.remove_entry(&borrowed), Some((borrowed.to_key(), 7)));
    }

    #[test]
    fn passes_are_numbered_from_one() {
        let mut marks = Marks::default();
        assert_eq!(marks.start(), 1);
        assert_eq!(marks.start(), 2);
    }
}
