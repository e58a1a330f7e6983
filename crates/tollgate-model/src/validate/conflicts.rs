//! Route conflicts: two routes of API versions live in the same environment (or a draft with
//! itself) that match the same host, pattern and conditions with overlapping methods. Each
//! route's claims are computed once, when its API version is checked ([`super::apis`]), and
//! the check across APIs is skipped while none of its inputs changed.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use super::apis::{ApiChecks, route_path};
use super::{Envs, Validator};
use crate::Config;

/// What one route claims: the keys it matches under, with its methods.
#[derive(Debug)]
pub(super) struct Claim {
    /// Index in the API's routes.
    pub(super) route: usize,
    pub(super) keys: Vec<HashedKey>,
    pub(super) methods: BTreeSet<String>,
}

/// A claimed key with its hash, computed once when its API is checked (route conflicts are
/// looked for across every API at every validation; hashing the keys again each time was
/// most of its cost).
#[derive(Debug)]
pub(super) struct HashedKey {
    hash: u64,
    key: MatchKey,
}

impl HashedKey {
    pub(super) fn new(key: MatchKey) -> Self {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        Self {
            hash: BuildHasherDefault::<DefaultHasher>::default().hash_one(&key),
            key,
        }
    }
}

impl PartialEq for HashedKey {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.key == other.key
    }
}

impl Eq for HashedKey {}

impl std::hash::Hash for HashedKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// Hashes a [`HashedKey`] by taking its precomputed hash.
#[derive(Default)]
struct Precomputed(u64);

impl std::hash::Hasher for Precomputed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A conflict check is a function of the claims of each API (the same `Arc` while the API's
/// definition is unchanged), which APIs are live together, and the environments' names: when
/// those are all as last time (a change of policies, services, consumers, variables), its
/// result is too, and the walk over every route's keys is skipped.
#[derive(Debug)]
pub(super) struct ConflictCheck {
    claims: Vec<(usize, Arc<Vec<Claim>>)>,
    groups: Vec<(Option<String>, Vec<bool>)>,
    explicit: bool,
    pub(super) reported: Vec<crate::Diagnostic>,
}

impl ConflictCheck {
    fn same_inputs(
        &self,
        claims: &[(usize, Arc<Vec<Claim>>)],
        groups: &[(Option<&str>, Vec<bool>)],
        explicit: bool,
    ) -> bool {
        self.explicit == explicit
            && self.claims.len() == claims.len()
            && self
                .claims
                .iter()
                .zip(claims)
                .all(|((a, x), (b, y))| a == b && Arc::ptr_eq(x, y))
            && self.groups.len() == groups.len()
            && self
                .groups
                .iter()
                .zip(groups)
                .all(|((a, x), (b, y))| a.as_deref() == *b && x == y)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct MatchKey {
    pub(super) host: String,
    pub(super) path: String,
    pub(super) conditions: Vec<String>,
}

impl Validator {
    /// Route conflicts: the same host, pattern and conditions with overlapping methods, among
    /// the API versions live in one environment. A version live nowhere (a draft) is checked
    /// on its own.
    pub(super) fn conflicts(
        &mut self,
        config: &Config,
        envs: &Envs<'_>,
        claims: Vec<(usize, Arc<Vec<Claim>>)>,
        cache: &mut ApiChecks,
    ) {
        let mut groups: Vec<(Option<&str>, Vec<bool>)> = Vec::new();
        for env in envs.list {
            let live = config
                .apis
                .iter()
                .map(|a| a.is_published_in(&env.name))
                .collect();
            groups.push((Some(env.name.as_str()), live));
        }
        for (i, api) in config.apis.iter().enumerate() {
            if !envs.list.iter().any(|e| api.is_published_in(&e.name)) {
                let mut only = vec![false; config.apis.len()];
                only[i] = true;
                groups.push((None, only));
            }
        }
        if let Some(last) = &cache.conflicts
            && last.same_inputs(&claims, &groups, envs.explicit)
        {
            self.errors.extend(last.reported.iter().cloned());
            return;
        }
        let before = self.errors.len();
        self.conflicts_among(config, envs, &claims, &groups);
        cache.conflicts = Some(ConflictCheck {
            groups: groups
                .into_iter()
                .map(|(env, members)| (env.map(str::to_owned), members))
                .collect(),
            claims,
            explicit: envs.explicit,
            reported: self.errors[before..].to_vec(),
        });
    }

    fn conflicts_among(
        &mut self,
        config: &Config,
        envs: &Envs<'_>,
        claims: &[(usize, Arc<Vec<Claim>>)],
        groups: &[(Option<&str>, Vec<bool>)],
    ) {
        let mut reported = HashSet::new();
        for (env, members) in groups {
            // The first claimant of every key (no allocation per key: most keys have one), and
            // every claimant of the keys claimed by more than one route.
            type ByKey<'k, V> =
                HashMap<&'k HashedKey, V, std::hash::BuildHasherDefault<Precomputed>>;
            let mut first_of: ByKey<'_, (usize, &Claim)> = HashMap::with_capacity_and_hasher(
                claims
                    .iter()
                    .filter(|(a, _)| members[*a])
                    .flat_map(|(_, c)| c.iter())
                    .map(|c| c.keys.len())
                    .sum(),
                Default::default(),
            );
            let mut by_key: ByKey<'_, Vec<(usize, &Claim)>> = HashMap::default();
            for (api, api_claims) in claims.iter().filter(|(a, _)| members[*a]) {
                for claim in api_claims.iter() {
                    tollgate_pace::point();
                    for key in &claim.keys {
                        let first = match first_of.entry(key) {
                            std::collections::hash_map::Entry::Vacant(v) => {
                                v.insert((*api, claim));
                                continue;
                            }
                            std::collections::hash_map::Entry::Occupied(o) => *o.get(),
                        };
                        let entry = by_key.entry(key).or_insert_with(|| vec![first]);
                        if !entry
                            .iter()
                            .any(|(a, c)| *a == *api && c.route == claim.route)
                        {
                            entry.push((*api, claim));
                        }
                    }
                }
            }
            drop(first_of);
            tollgate_pace::check();
            let suffix = env.map(|e| envs.suffix(e)).unwrap_or_default();
            // Keys claimed more than once, in a stable order, so the reported pair does not
            // depend on hashing.
            let mut keys: Vec<&&HashedKey> = by_key
                .iter()
                .filter(|(_, list)| list.len() > 1)
                .map(|(k, _)| k)
                .collect();
            keys.sort_by_key(|k| (&k.key.host, &k.key.path, &k.key.conditions));
            for key in keys {
                let list = &by_key[*key];
                for (a, (first_api, first)) in list.iter().enumerate() {
                    for (second_api, second) in &list[a + 1..] {
                        // Two versions of one API live together is reported on its own.
                        let versions = first_api != second_api
                            && config.apis[*first_api].name == config.apis[*second_api].name;
                        let overlap = first.methods.is_empty()
                            || second.methods.is_empty()
                            || !first.methods.is_disjoint(&second.methods);
                        if overlap
                            && !versions
                            && reported
                                .insert(((*second_api, second.route), (*first_api, first.route)))
                        {
                            self.err(
                                route_path(*second_api, second.route),
                                format!(
                                    "conflicts with {}: both match host {} and path {} with the same conditions{suffix}; make one more specific",
                                    route_path(*first_api, first.route),
                                    key.key.host,
                                    key.key.path
                                ),
                            );
                        }
                    }
                }
            }
        }
    }
}
