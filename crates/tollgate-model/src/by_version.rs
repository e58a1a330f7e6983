//! Maps keyed by API version (name, version) that are looked up with borrowed names.
//!
//! The caches that make an admin write cheap (validation, projection, compile plans) hold one
//! entry per API version and are consulted once per API version on every write. Keyed by
//! `(String, String)` in a standard map, each lookup had to build an owned key (two
//! allocations) and each compile rebuilt the map (growing it from empty, rehashing every
//! entry several times): at 100 API versions about a fifth of a write's instructions. A
//! [`ByVersion`] is looked up with a [`VersionRef`] of the definition's own names and updated
//! in place; [`Marks`] tells which entries the last pass did not visit, to drop them.
//!
//! [`Kept`] goes one step further for a cache rebuilt by every pass: its values sit in the
//! last configuration's order and are matched by position and pointer first, so an unchanged
//! API version costs one pointer comparison instead of hashing and comparing names that are
//! cold in memory by the next write.

use std::hash::{BuildHasher, Hash, Hasher};
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

/// A value kept for one API version, made from its definition.
pub trait OfApi {
    /// The definition the value was made from.
    fn api(&self) -> &Arc<Api>;
}

/// The values a cache kept from its last pass, in that pass's configuration order (`None`
/// where it kept nothing), to be taken by the next pass.
#[derive(Debug)]
pub struct Kept<V> {
    slots: Vec<Option<V>>,
    /// Slot by (API name, version), built at the first lookup that position did not answer.
    index: Option<hashbrown::HashTable<usize>>,
    hasher: foldhash::fast::RandomState,
}

impl<V> Default for Kept<V> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            index: None,
            hasher: Default::default(),
        }
    }
}

impl<V: OfApi> Kept<V> {
    /// Values in configuration order.
    pub fn new(slots: Vec<Option<V>>) -> Self {
        Self {
            slots,
            index: None,
            hasher: Default::default(),
        }
    }

    /// How many values are kept.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the value kept for `api`, at position `at` of the new configuration, when it was
    /// made from the same definition ([`same_definition`]). Looks at the same position first:
    /// there, the same shared definition is a match without reading it, and the same name
    /// and version with another definition (the version just edited) is a miss. Otherwise
    /// (APIs added, removed or reordered) looks the name up. Each value is taken once, so a
    /// duplicate API version finds nothing.
    pub fn take(&mut self, at: usize, api: &Arc<Api>) -> Option<V> {
        if let Some(slot) = self.slots.get_mut(at)
            && let Some(kept) = slot
        {
            let kept = kept.api();
            if Arc::ptr_eq(kept, api) {
                return slot.take();
            }
            if kept.name == api.name && kept.version == api.version {
                let same = **kept == **api;
                return if same { slot.take() } else { None };
            }
        }
        let hasher = &self.hasher;
        let slots = &self.slots;
        let index = self.index.get_or_insert_with(|| {
            let mut index = hashbrown::HashTable::with_capacity(slots.len());
            for (i, slot) in slots.iter().enumerate() {
                if let Some(kept) = slot {
                    let kept = kept.api();
                    let hash = hasher.hash_one(VersionRef(&kept.name, &kept.version));
                    index.insert_unique(hash, i, |&j| key_hash(hasher, &slots[j]));
                }
            }
            index
        });
        let hash = hasher.hash_one(VersionRef(&api.name, &api.version));
        let found = index.find(hash, |&i| {
            slots[i].as_ref().is_some_and(|kept| {
                kept.api().name == api.name && kept.api().version == api.version
            })
        });
        let &i = found?;
        let slot = &mut self.slots[i];
        if slot
            .as_ref()
            .is_some_and(|kept| same_definition(kept.api(), api))
        {
            slot.take()
        } else {
            None
        }
    }
}

/// The hash of a slot's (API name, version); 0 for an empty slot (never rehashed: the index
/// is built once, at its final size).
fn key_hash<V: OfApi>(hasher: &foldhash::fast::RandomState, slot: &Option<V>) -> u64 {
    slot.as_ref().map_or(0, |kept| {
        let kept = kept.api();
        hasher.hash_one(VersionRef(&kept.name, &kept.version))
    })
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

    struct Plan(Arc<Api>);

    impl OfApi for Plan {
        fn api(&self) -> &Arc<Api> {
            &self.0
        }
    }

    fn api(name: &str, path: &str) -> Arc<Api> {
        let yaml =
            format!("{{name: {name}, routes: [{{name: r, paths: [{path:?}], service: s}}]}}");
        Arc::new(serde_yaml_ng::from_str(&yaml).unwrap())
    }

    fn kept(apis: &[&Arc<Api>]) -> Kept<Plan> {
        Kept::new(apis.iter().map(|a| Some(Plan(Arc::clone(a)))).collect())
    }

    #[test]
    fn kept_values_are_taken_by_position_then_by_name_each_once() {
        let (a, b, c) = (api("a", "/a"), api("b", "/b"), api("c", "/c"));
        // Unchanged positions.
        let mut k = kept(&[&a, &b]);
        assert_eq!(k.len(), 2);
        assert!(Arc::ptr_eq(&k.take(0, &a).unwrap().0, &a));
        assert!(Arc::ptr_eq(&k.take(1, &b).unwrap().0, &b));
        assert!(k.is_empty());
        // An API inserted in front: the others are found by name.
        let mut k = kept(&[&a, &b]);
        assert!(k.take(0, &c).is_none());
        assert!(Arc::ptr_eq(&k.take(1, &a).unwrap().0, &a));
        assert!(Arc::ptr_eq(&k.take(2, &b).unwrap().0, &b));
        // A duplicate API version finds nothing the second time.
        let mut k = kept(&[&a, &b]);
        assert!(k.take(0, &a).is_some());
        assert!(k.take(2, &a).is_none());
        assert!(k.take(1, &b).is_some());
    }

    #[test]
    fn a_kept_value_is_taken_only_for_the_same_definition() {
        let a = api("a", "/a");
        // Edited in place: same name and version, other routes.
        let mut k = kept(&[&a]);
        assert!(k.take(0, &api("a", "/other")).is_none());
        // Parsed again (a file reload): equal, not shared.
        let mut k = kept(&[&a]);
        assert!(k.take(0, &api("a", "/a")).is_some());
        // Edited and moved: found by name, refused.
        let mut k = kept(&[&api("b", "/b"), &a]);
        assert!(k.take(0, &api("a", "/other")).is_none());
        assert_eq!(k.len(), 2);
    }
}
