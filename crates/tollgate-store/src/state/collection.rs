//! The kinds of stored objects as types, so that reads and writes are written once.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tollgate_model::{Certificate, Consumer, Environment, PolicySpec, Service};

use super::{ApiVersion, Deployment, Entry, Release, State, kind};

/// A keyed collection of the state.
pub trait Collection {
    /// Key in the state's map.
    type Key: Ord + Clone + std::fmt::Debug;
    /// Stored value.
    type Value: Serialize + DeserializeOwned + Clone + PartialEq;
    /// Document kind.
    const KIND: &'static str;
    /// Word for messages (`service`, `API version`).
    const LABEL: &'static str;
    /// The map in a state.
    fn map(state: &State) -> &BTreeMap<Self::Key, Arc<Entry<Self::Value>>>;
    /// The map in a state, for writing (copied first if other states share it).
    fn map_mut(state: &mut State) -> &mut BTreeMap<Self::Key, Arc<Entry<Self::Value>>>;
    /// The document key.
    fn doc_key(key: &Self::Key) -> String;
    /// How a key is shown in messages.
    fn show(key: &Self::Key) -> String {
        format!("{:?}", Self::doc_key(key))
    }
    /// The value as the audit log (and `config diff`) shows it: the stored form, except
    /// where even that must not be repeated (certificates' encrypted keys).
    fn audit_json(value: &Self::Value) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(value)
    }
}

macro_rules! collection {
    ($(#[$doc:meta])* $name:ident, $field:ident, $key:ty, $value:ty, $kind:expr, $label:expr, |$k:ident| $doc_key:expr $(, audit: $audit:path)?) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name;

        impl Collection for $name {
            type Key = $key;
            type Value = $value;
            const KIND: &'static str = $kind;
            const LABEL: &'static str = $label;
            fn map(state: &State) -> &BTreeMap<Self::Key, Arc<Entry<Self::Value>>> {
                &state.$field
            }
            fn map_mut(state: &mut State) -> &mut BTreeMap<Self::Key, Arc<Entry<Self::Value>>> {
                Arc::make_mut(&mut state.$field)
            }
            fn doc_key($k: &Self::Key) -> String {
                $doc_key
            }
            $(
                fn audit_json(value: &Self::Value) -> Result<serde_json::Value, serde_json::Error> {
                    $audit(value)
                }
            )?
        }
    };
}

collection!(
    /// Services by name.
    Services, services, String, Service, kind::SERVICE, "service", |k| k.clone()
);
collection!(
    /// Global policies by plugin name.
    Policies, policies, String, PolicySpec, kind::POLICY, "policy", |k| k.clone()
);
collection!(
    /// Environments by name.
    Environments, environments, String, Environment, kind::ENVIRONMENT, "environment", |k| k.clone()
);
collection!(
    /// Consumers by name.
    Consumers, consumers, String, Consumer, kind::CONSUMER, "consumer", |k| k.clone()
);
collection!(
    /// Certificates by name; the audit log never shows their encrypted keys.
    Certificates, certificates, String, Certificate, kind::CERTIFICATE, "certificate", |k| k.clone(),
    audit: super::certificates::audit_json
);
collection!(
    /// API versions by (name, version).
    ApiVersions, versions, (String, String), ApiVersion, kind::API_VERSION, "API version",
    |k| format!("{}/{}", k.0, k.1)
);
collection!(
    /// Deployments by (environment, API).
    Deployments, deployments, (String, String), Deployment, kind::DEPLOYMENT, "deployment",
    |k| format!("{}/{}", k.0, k.1)
);
collection!(
    /// Releases by id.
    Releases, releases, i64, Release, kind::RELEASE, "release", |k| k.to_string()
);
