//! A node's local copy of the last state it served, in its data directory, so that a node
//! (re)started while its store is unreachable can serve that state until the store returns.
//!
//! The file holds the store's documents as they are at rest (secrets hashed or encrypted, as
//! in the store), readable by the node's user only. It is written atomically (a temporary
//! file, synced, then renamed), so a crash mid-write leaves the previous copy.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Doc, Loaded, State, StoreError};

/// File name of the cache in a data directory.
pub const FILE_NAME: &str = "state-cache.json";

/// Version of the file layout.
const FORMAT: u32 = 1;

/// The cache file of one node.
#[derive(Debug, Clone)]
pub struct StateCache {
    path: PathBuf,
    /// What the last file written held, by (kind, key): the object's revision and its
    /// element of the `docs` array as written. An unchanged object is neither serialized
    /// again nor escaped again into the file (at 10,000 routes, serializing every API version
    /// took milliseconds of CPU per save, and escaping the bodies into the file as much again).
    written: HashMap<(String, String), (i64, Vec<u8>)>,
    /// Length of the last file written: the next one is about as long.
    last_len: usize,
}

/// What [`StateCache::load`] found.
#[derive(Debug)]
pub struct Cached {
    /// The state.
    pub state: State,
    /// The store it was read from (credentials removed).
    pub store: String,
    /// Unix seconds when it was written.
    pub saved_at: i64,
}

/// The file as read. It is written as [`Header`] followed by the `docs` array, each element a
/// [`CachedDoc`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheFile {
    format: u32,
    store: String,
    revision: i64,
    saved_at: i64,
    docs: Vec<CachedDoc>,
}

/// The fields of [`CacheFile`] before `docs`.
#[derive(Serialize)]
struct Header<'a> {
    format: u32,
    store: &'a str,
    revision: i64,
    saved_at: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CachedDoc {
    kind: String,
    key: String,
    body: String,
    revision: i64,
    created_at: i64,
    updated_at: i64,
}

/// A [`CachedDoc`] to write.
#[derive(Serialize)]
struct DocToWrite<'a> {
    kind: &'a str,
    key: &'a str,
    body: &'a str,
    revision: i64,
    created_at: i64,
    updated_at: i64,
}

impl StateCache {
    /// The cache in `data_dir`.
    pub fn in_dir(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join(FILE_NAME),
            written: HashMap::new(),
            last_len: 0,
        }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `state` read from `store` (a display URL). Blocking: call it off the request
    /// path (it is a few MB at 10,000 routes).
    pub fn save(&mut self, state: &State, store: &str) -> Result<(), StoreError> {
        let mut before = std::mem::take(&mut self.written);
        // Objects written before at the same revision get an empty body here: their element
        // is copied from `before` below, under the same condition.
        let loaded = state.to_loaded_reusing(&mut |kind, key, revision| {
            before
                .get(&(kind.to_owned(), key.to_owned()))
                .is_some_and(|(at, _)| *at == revision)
                .then(String::new)
        })?;
        let corrupt = |e: serde_json::Error| StoreError::Corrupt {
            kind: "cache".into(),
            key: self.path.display().to_string(),
            reason: e.to_string(),
        };
        let mut bytes = Vec::with_capacity(self.last_len + 4096);
        serde_json::to_writer(
            &mut bytes,
            &Header {
                format: FORMAT,
                store,
                revision: loaded.revision,
                saved_at: crate::db::unix_now(),
            },
        )
        .map_err(corrupt)?;
        bytes.pop(); // the header's closing brace: the docs follow
        bytes.extend_from_slice(b",\"docs\":[");
        let mut written = HashMap::with_capacity(loaded.docs.len());
        for doc in loaded.docs {
            tollgate_pace::check();
            let Some(body) = doc.body else { continue };
            let at = (doc.kind, doc.key);
            let element = match before.remove(&at) {
                Some((revision, element)) if revision == doc.revision => element,
                _ => serde_json::to_vec(&DocToWrite {
                    kind: &at.0,
                    key: &at.1,
                    body: &body,
                    revision: doc.revision,
                    created_at: doc.created_at,
                    updated_at: doc.updated_at,
                })
                .map_err(corrupt)?,
            };
            if !written.is_empty() {
                bytes.push(b',');
            }
            bytes.extend_from_slice(&element);
            written.insert(at, (doc.revision, element));
        }
        bytes.extend_from_slice(b"]}");
        self.written = written;
        self.last_len = bytes.len();
        self.write_atomically(&bytes)
            .map_err(|source| StoreError::Io {
                context: format!("cannot write the state cache {}", self.path.display()),
                source,
            })
    }

    fn write_atomically(&self, bytes: &[u8]) -> std::io::Result<()> {
        write_private_file(&self.path, bytes)
    }

    /// Reads the cache; `Ok(None)` when there is none.
    pub fn load(&self) -> Result<Option<Cached>, StoreError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StoreError::Io {
                    context: format!("cannot read the state cache {}", self.path.display()),
                    source,
                });
            }
        };
        let corrupt = |reason: String| StoreError::Corrupt {
            kind: "cache".into(),
            key: self.path.display().to_string(),
            reason,
        };
        let file: CacheFile = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if file.format != FORMAT {
            return Err(corrupt(format!(
                "format {} is not the one this binary writes ({FORMAT})",
                file.format
            )));
        }
        let loaded = Loaded {
            revision: file.revision,
            docs: file
                .docs
                .into_iter()
                .map(|d| Doc {
                    kind: d.kind,
                    key: d.key,
                    body: Some(d.body),
                    revision: d.revision,
                    created_at: d.created_at,
                    updated_at: d.updated_at,
                })
                .collect(),
        };
        Ok(Some(Cached {
            state: State::from_loaded(&loaded)?,
            store: file.store,
            saved_at: file.saved_at,
        }))
    }
}

/// Writes `bytes` to `path` readable by the owner only (mode 0600 on Unix), atomically: a
/// temporary file beside it (`.tmp` appended to the extension), synced, then renamed over
/// `path`, and the directory synced, so that a crash leaves the previous file or the new
/// one. Used for the files a node keeps in its data directory.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent()
        && let Ok(dir) = std::fs::File::open(dir)
    {
        // The rename is durable once the directory is synced; failing that is harmless.
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use tollgate_model::Service;

    use super::*;
    use crate::Entry;

    fn state() -> State {
        let service: Service = serde_json::from_value(serde_json::json!({
            "name": "billing",
            "targets": [{"url": "http://127.0.0.1:9000"}]
        }))
        .unwrap();
        State {
            revision: 42,
            services: Arc::new(BTreeMap::from([(
                "billing".to_owned(),
                Arc::new(Entry::new_at(service, 40, 1_700_000_000, 1_700_000_100)),
            )])),
            ..State::default()
        }
    }

    /// A fresh directory under the system's temporary directory, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let dir = std::env::temp_dir().join(format!(
                "tollgate_cache_test_{}_{nanos}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_saved_state_loads_back_identical() {
        let dir = TempDir::new();
        let mut cache = StateCache::in_dir(&dir.0);
        assert!(cache.load().unwrap().is_none());
        cache
            .save(&state(), "postgres://tollgate@db/tollgate")
            .unwrap();
        let cached = cache.load().unwrap().unwrap();
        assert_eq!(cached.store, "postgres://tollgate@db/tollgate");
        assert_eq!(cached.state.revision, 42);
        assert_eq!(cached.state.services, state().services);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(cache.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    fn with_target(mut state: State, url: &str, revision: i64) -> State {
        let mut entry = (*state.services["billing"]).clone();
        entry.value.targets[0].url = url.to_owned();
        entry.revision = revision;
        Arc::make_mut(&mut state.services).insert("billing".into(), Arc::new(entry));
        state
    }

    #[test]
    fn an_object_is_serialized_again_only_when_its_revision_changed() {
        let dir = TempDir::new();
        let mut cache = StateCache::in_dir(&dir.0);
        let store = "postgres://tollgate@db/tollgate";
        cache.save(&state(), store).unwrap();
        let url = |cache: &StateCache| {
            let cached = cache.load().unwrap().unwrap();
            cached.state.services["billing"].value.targets[0]
                .url
                .clone()
        };
        // Written at a new revision: the new body is saved.
        let changed = with_target(state(), "http://127.0.0.1:9001", 41);
        cache.save(&changed, store).unwrap();
        assert_eq!(url(&cache), "http://127.0.0.1:9001");
        // Same revision: the body written before is reused, not serialized again (a
        // different value at an unchanged revision cannot happen in a store; here it shows
        // which body was written).
        let same_revision = with_target(state(), "http://127.0.0.1:9002", 41);
        cache.save(&same_revision, store).unwrap();
        assert_eq!(url(&cache), "http://127.0.0.1:9001");
        // A fresh cache (a restarted node) serializes everything.
        let mut fresh = StateCache::in_dir(&dir.0);
        fresh.save(&same_revision, store).unwrap();
        assert_eq!(url(&fresh), "http://127.0.0.1:9002");
    }

    #[test]
    fn a_save_reusing_elements_writes_what_a_fresh_save_writes() {
        let dir = TempDir::new();
        let fresh_dir = TempDir::new();
        let store = "postgres://tollgate@db/tollgate?application_name=\"quoted\"";
        let mut state = state();
        let mut second = (*state.services["billing"]).clone();
        second.value.name = "orders".into();
        Arc::make_mut(&mut state.services).insert("orders".into(), Arc::new(second));
        let mut cache = StateCache::in_dir(&dir.0);
        cache.save(&state, store).unwrap();
        // One object changed, one not; then nothing changed.
        let changed = with_target(state, "http://127.0.0.1:9001", 41);
        cache.save(&changed, store).unwrap();
        cache.save(&changed, store).unwrap();
        StateCache::in_dir(&fresh_dir.0)
            .save(&changed, store)
            .unwrap();
        let read = |dir: &TempDir| {
            let mut file: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.0.join(FILE_NAME)).unwrap()).unwrap();
            file.as_object_mut().unwrap().remove("saved_at");
            file
        };
        assert_eq!(read(&dir), read(&fresh_dir));
        assert_eq!(read(&dir)["docs"].as_array().unwrap().len(), 2);
        let loaded = cache.load().unwrap().unwrap();
        assert_eq!(loaded.store, store);
        assert_eq!(loaded.state.services, changed.services);
    }

    #[test]
    fn a_damaged_cache_is_an_error_naming_the_file() {
        let dir = TempDir::new();
        let cache = StateCache::in_dir(&dir.0);
        std::fs::write(cache.path(), b"{\"format\": 1, \"store\"").unwrap();
        let err = cache.load().unwrap_err().to_string();
        assert!(err.contains(FILE_NAME), "{err}");
    }
}
