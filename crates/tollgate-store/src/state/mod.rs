//! The typed configuration state built from the store's documents, and its projection to the
//! model's [`Config`](tollgate_model::Config) (what the runtime compiles and what `config export` writes).
//!
//! Document kinds and keys:
//!
//! | kind | key | body |
//! |---|---|---|
//! | `settings` | `server` | [`ServerConfig`] |
//! | `service` | name | [`Service`] |
//! | `policy` | plugin name | [`PolicySpec`] (global scope) |
//! | `environment` | name | [`Environment`] |
//! | `consumer` | name | [`Consumer`] (secrets hashed or encrypted) |
//! | `certificate` | name | [`Certificate`] (private key encrypted) |
//! | `api_version` | `api/version` | [`ApiVersion`] |
//! | `deployment` | `environment/api` | [`Deployment`]: which version is live where |
//! | `release` | release id | [`Release`]: one lifecycle event, never changed |

mod apply;
mod certificates;
mod collection;
mod entry;
mod lifecycle;
mod project;
mod protect;
mod writer;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tollgate_model::{
    Api, Certificate, Consumer, Deprecation, Environment, PolicySpec, ServerConfig, Service,
    Timestamp,
};

pub use certificates::{check_certificate_validity, protect_certificate};
pub use collection::{
    ApiVersions, Certificates, Collection, Consumers, Deployments, Environments, Policies,
    Releases, Services,
};
pub use entry::Entry;
pub use project::Projection;
pub use protect::protect_consumer;
pub use writer::{Prepared, WriteError, Writer};

use crate::{Doc, Loaded, StoreError};

/// Document kinds.
pub mod kind {
    /// Server settings (one document, key `server`).
    pub const SETTINGS: &str = "settings";
    /// Services.
    pub const SERVICE: &str = "service";
    /// Global policies.
    pub const POLICY: &str = "policy";
    /// Environments.
    pub const ENVIRONMENT: &str = "environment";
    /// Consumers.
    pub const CONSUMER: &str = "consumer";
    /// Downstream TLS certificates.
    pub const CERTIFICATE: &str = "certificate";
    /// API versions.
    pub const API_VERSION: &str = "api_version";
    /// What is live where.
    pub const DEPLOYMENT: &str = "deployment";
    /// Lifecycle history.
    pub const RELEASE: &str = "release";
}

/// One version of an API as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiVersion {
    /// The definition. Its `publish` and `deprecation` fields are not used: deployments say
    /// where the version is live.
    pub definition: Api,
    /// Whether the version was ever published; published versions are immutable.
    #[serde(default)]
    pub published: bool,
}

/// The version of an API live in an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// Environment.
    pub environment: String,
    /// API name.
    pub api: String,
    /// Live version.
    pub version: String,
    /// The release that made it live.
    pub release: i64,
    /// Set when the API is deprecated in this environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecation: Option<Deprecation>,
}

/// What a release did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseAction {
    /// Made a version live.
    Publish,
    /// Made the version of an earlier release live again.
    Rollback,
    /// Removed the API from the environment.
    Unpublish,
    /// Marked the live version deprecated (or changed its dates).
    Deprecate,
    /// Removed a deprecation.
    Undeprecate,
}

/// One lifecycle event of an API in an environment; never changed once written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// Identifier, in sequence.
    pub id: i64,
    /// API name.
    pub api: String,
    /// Environment.
    pub environment: String,
    /// The version live after the event (`None` after an unpublish).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// What happened.
    pub action: ReleaseAction,
    /// For a rollback: the release whose version was restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restores: Option<i64>,
    /// Free text given by whoever made the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Who (token name).
    pub actor: String,
    /// When.
    pub at: Timestamp,
}

/// One kind of object in a [`State`], shared between states until one of them writes to it.
pub type Shared<K, V> = Arc<BTreeMap<K, Arc<Entry<V>>>>;

/// The whole configuration state at one store revision. Cheap to clone: each kind's map is
/// shared until written to ([`Arc::make_mut`]), and entries are shared, so a write copies
/// the map it changes and nothing else.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// Store revision.
    pub revision: i64,
    /// Server settings, when set.
    pub settings: Option<Arc<Entry<ServerConfig>>>,
    /// Services by name.
    pub services: Shared<String, Service>,
    /// Global policies by plugin name.
    pub policies: Shared<String, PolicySpec>,
    /// Environments by name.
    pub environments: Shared<String, Environment>,
    /// Consumers by name.
    pub consumers: Shared<String, Consumer>,
    /// Certificates by name (private keys encrypted).
    pub certificates: Shared<String, Certificate>,
    /// API versions by (API name, version).
    pub versions: Shared<(String, String), ApiVersion>,
    /// Deployments by (environment, API name).
    pub deployments: Shared<(String, String), Deployment>,
    /// Releases by id.
    pub releases: Shared<i64, Release>,
}

impl State {
    /// Builds the state from a full load.
    pub fn from_loaded(loaded: &Loaded) -> Result<Self, StoreError> {
        let mut state = Self {
            revision: loaded.revision,
            ..Self::default()
        };
        for doc in &loaded.docs {
            state.apply_doc(doc)?;
        }
        Ok(state)
    }

    /// Applies documents read with [`crate::Store::load_since`].
    pub fn apply_delta(&mut self, delta: &Loaded) -> Result<(), StoreError> {
        for doc in &delta.docs {
            self.apply_doc(doc)?;
        }
        self.revision = self.revision.max(delta.revision);
        Ok(())
    }

    fn apply_doc(&mut self, doc: &Doc) -> Result<(), StoreError> {
        fn put<K: Ord + Clone, T: serde::de::DeserializeOwned>(
            map: &mut Shared<K, T>,
            key: K,
            doc: &Doc,
        ) -> Result<(), StoreError> {
            let map = Arc::make_mut(map);
            match &doc.body {
                Some(body) => {
                    map.insert(key, Arc::new(Entry::decode(doc, body)?));
                }
                None => {
                    map.remove(&key);
                }
            }
            Ok(())
        }
        let pair = |what: &str| -> Result<(String, String), StoreError> {
            doc.key
                .split_once('/')
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .ok_or_else(|| StoreError::Corrupt {
                    kind: doc.kind.clone(),
                    key: doc.key.clone(),
                    reason: format!("key must be {what}"),
                })
        };
        match doc.kind.as_str() {
            kind::SETTINGS => {
                self.settings = match &doc.body {
                    Some(body) => Some(Arc::new(Entry::decode(doc, body)?)),
                    None => None,
                }
            }
            kind::SERVICE => put(&mut self.services, doc.key.clone(), doc)?,
            kind::POLICY => put(&mut self.policies, doc.key.clone(), doc)?,
            kind::ENVIRONMENT => put(&mut self.environments, doc.key.clone(), doc)?,
            kind::CONSUMER => put(&mut self.consumers, doc.key.clone(), doc)?,
            kind::CERTIFICATE => put(&mut self.certificates, doc.key.clone(), doc)?,
            kind::API_VERSION => put(&mut self.versions, pair("api/version")?, doc)?,
            kind::DEPLOYMENT => put(&mut self.deployments, pair("environment/api")?, doc)?,
            kind::RELEASE => {
                let id = doc.key.parse::<i64>().map_err(|_| StoreError::Corrupt {
                    kind: doc.kind.clone(),
                    key: doc.key.clone(),
                    reason: "key must be a number".into(),
                })?;
                put(&mut self.releases, id, doc)?;
            }
            other => {
                // Written by a newer binary sharing the store: ignore what we do not know.
                tracing::debug!(kind = other, key = %doc.key, "ignoring unknown document kind");
            }
        }
        Ok(())
    }

    /// The documents this state was built from: [`State::from_loaded`] of the result gives
    /// the same state back. (Kinds this binary does not know were dropped when it read them.)
    pub fn to_loaded(&self) -> Result<Loaded, StoreError> {
        self.to_loaded_reusing(&mut |_, _, _| None)
    }

    /// [`State::to_loaded`], taking each document's body from `known(kind, key, revision)`
    /// when it returns one (a body serialized earlier for the object at that revision: an
    /// object's revision changes with every write to it), serializing the others.
    pub fn to_loaded_reusing(
        &self,
        known: &mut dyn FnMut(&str, &str, i64) -> Option<String>,
    ) -> Result<Loaded, StoreError> {
        type Known<'a> = &'a mut dyn FnMut(&str, &str, i64) -> Option<String>;
        fn docs<C: Collection>(
            state: &State,
            known: Known<'_>,
            out: &mut Vec<Doc>,
        ) -> Result<(), StoreError> {
            for (key, entry) in C::map(state) {
                tollgate_pace::check();
                out.push(doc(C::KIND, C::doc_key(key), entry, known)?);
            }
            Ok(())
        }
        fn doc<T: Serialize>(
            kind: &str,
            key: String,
            entry: &Entry<T>,
            known: Known<'_>,
        ) -> Result<Doc, StoreError> {
            let body = match known(kind, &key, entry.revision) {
                Some(body) => body,
                None => serde_json::to_string(&entry.value).map_err(|e| StoreError::Corrupt {
                    kind: kind.to_owned(),
                    key: key.clone(),
                    reason: e.to_string(),
                })?,
            };
            Ok(Doc {
                kind: kind.to_owned(),
                key,
                body: Some(body),
                revision: entry.revision,
                created_at: entry.created_at,
                updated_at: entry.updated_at,
            })
        }
        let mut out = Vec::new();
        if let Some(settings) = &self.settings {
            out.push(doc(kind::SETTINGS, "server".to_owned(), settings, known)?);
        }
        docs::<Services>(self, known, &mut out)?;
        docs::<Policies>(self, known, &mut out)?;
        docs::<Environments>(self, known, &mut out)?;
        docs::<Consumers>(self, known, &mut out)?;
        docs::<Certificates>(self, known, &mut out)?;
        docs::<ApiVersions>(self, known, &mut out)?;
        docs::<Deployments>(self, known, &mut out)?;
        docs::<Releases>(self, known, &mut out)?;
        Ok(Loaded {
            revision: self.revision,
            docs: out,
        })
    }

    /// The versions of one API, oldest first.
    pub fn versions_of<'a>(
        &'a self,
        api: &'a str,
    ) -> impl Iterator<Item = &'a Arc<Entry<ApiVersion>>> + 'a {
        self.versions
            .range((api.to_owned(), String::new())..)
            .take_while(move |((name, _), _)| name == api)
            .map(|(_, v)| v)
    }

    /// Names of all APIs (having at least one version).
    pub fn api_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.versions.keys().map(|(a, _)| a.as_str()).collect();
        names.dedup();
        names
    }

    /// Deployments of one API, by environment.
    pub fn deployments_of<'a>(
        &'a self,
        api: &'a str,
    ) -> impl Iterator<Item = &'a Arc<Entry<Deployment>>> + 'a {
        self.deployments
            .iter()
            .filter(move |((_, a), _)| a == api)
            .map(|(_, d)| d)
    }

    /// Releases of one API (optionally in one environment), newest first.
    pub fn releases_of<'a>(
        &'a self,
        api: &'a str,
        environment: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Arc<Entry<Release>>> + 'a {
        self.releases.values().rev().filter(move |r| {
            r.value.api == api && environment.is_none_or(|e| r.value.environment == e)
        })
    }
}
