//! From state to configuration: what the runtime compiles and `config export` writes.
//!
//! Projecting clones every API definition; a [`Projection`] keeps the definitions of the last
//! projection so that the next one (an admin write usually changes one object) moves the
//! unchanged ones instead of cloning them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tollgate_model::{Api, Config, Deprecation, Diagnostic, Listen};

use super::{ApiVersion, Deployment, Entry, State};
use crate::secrets::SecretKey;

/// API definitions as a previous [`State::to_config_reusing`] projected them, by (API name,
/// version), with the stored entry each came from.
#[derive(Debug, Default)]
pub struct Projection {
    apis: HashMap<(String, String), Projected>,
}

/// A projected definition and the stored entry it came from.
type Projected = (Arc<Entry<ApiVersion>>, Api);

impl Projection {
    /// Takes back the definitions of `config`, which [`State::to_config_reusing`] made from
    /// `state`, for the next projection.
    pub fn recycle(&mut self, state: &State, config: Config) {
        self.apis.clear();
        for ((key, entry), api) in state.versions.iter().zip(config.apis) {
            tollgate_pace::point();
            if api.name == key.0 && api.version == key.1 {
                self.apis.insert(key.clone(), (entry.clone(), api));
            }
        }
    }
}

impl State {
    /// The configuration this state describes, in the file schema: every API version with
    /// `publish` set to the environments it is live in (`[]` for drafts and versions live
    /// nowhere) and its deprecations; secrets (and certificates' private keys) in their stored
    /// (hashed or encrypted) form.
    /// `listen` is the node's own (listeners are not stored).
    pub fn to_config(&self, listen: Listen) -> Config {
        self.to_config_reusing(listen, &mut Projection::default())
    }

    /// [`State::to_config`], moving from `projection` the definitions of API versions whose
    /// stored entry and deployments did not change instead of cloning them.
    pub fn to_config_reusing(&self, listen: Listen, projection: &mut Projection) -> Config {
        let mut live: BTreeMap<(&str, &str), Vec<&Deployment>> = BTreeMap::new();
        for d in self.deployments.values() {
            live.entry((d.value.api.as_str(), d.value.version.as_str()))
                .or_default()
                .push(&d.value);
        }
        let apis = self
            .versions
            .iter()
            .map(|((api, version), entry)| {
                tollgate_pace::check();
                let deployments = live
                    .get(&(api.as_str(), version.as_str()))
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let publish: Vec<String> =
                    deployments.iter().map(|d| d.environment.clone()).collect();
                let deprecation: BTreeMap<String, Deprecation> = deployments
                    .iter()
                    .filter_map(|d| Some((d.environment.clone(), d.deprecation.clone()?)))
                    .collect();
                if let Some((from, projected)) =
                    projection.apis.remove(&(api.clone(), version.clone()))
                    && Arc::ptr_eq(&from, entry)
                    && projected.publish.as_ref() == Some(&publish)
                    && projected.deprecation == deprecation
                {
                    return projected;
                }
                let mut definition = entry.value.definition.clone();
                definition.publish = Some(publish);
                definition.deprecation = deprecation;
                definition
            })
            .collect();
        Config {
            listen,
            server: self
                .settings
                .as_ref()
                .map(|s| s.value.clone())
                .unwrap_or_default(),
            tls: Default::default(),
            services: self.services.values().map(|e| e.value.clone()).collect(),
            apis,
            policies: self.policies.values().map(|e| e.value.clone()).collect(),
            environments: self
                .environments
                .values()
                .map(|e| e.value.clone())
                .collect(),
            consumers: self.consumers.values().map(|e| e.value.clone()).collect(),
            certificates: self
                .certificates
                .values()
                .map(|e| e.value.clone())
                .collect(),
        }
    }

    /// The configuration the data plane compiles: [`State::to_config`] with certificates'
    /// private keys decrypted (in memory only; never exported, logged or stored). A key that
    /// cannot be decrypted with `key` is reported at its field.
    pub fn to_live_config(
        &self,
        listen: Listen,
        key: &SecretKey,
    ) -> Result<Config, Vec<Diagnostic>> {
        self.to_live_config_reusing(listen, key, &mut Projection::default())
    }

    /// [`State::to_live_config`], reusing `projection` as [`State::to_config_reusing`] does.
    pub fn to_live_config_reusing(
        &self,
        listen: Listen,
        key: &SecretKey,
        projection: &mut Projection,
    ) -> Result<Config, Vec<Diagnostic>> {
        let mut config = self.to_config_reusing(listen, projection);
        super::certificates::reveal_keys(&mut config, key)?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use tollgate_model::{Format, Listen, parse_config};

    use super::Projection;
    use crate::secrets::SecretKey;
    use crate::state::{ApiVersion, ApiVersions, State, Writer};

    const CONFIG: &str = "services:\n  - {name: s, mock: {status: 200}}\napis:\n  - name: a\n    routes: [{name: r, paths: [/a], service: s}]\n  - name: b\n    routes: [{name: r, paths: [/b], service: s}]\n";

    #[test]
    fn a_reusing_projection_equals_a_fresh_one_after_changes() {
        let config = parse_config(CONFIG, Format::Yaml, "t.yaml").unwrap();
        let key = SecretKey::from_bytes(&[7; 32]).unwrap();
        let mut writer = Writer::new(&State::default(), "t");
        writer.apply_config(&config, &key).unwrap();
        let mut state = writer.finish().state;
        let mut projection = Projection::default();
        let first = state.to_config_reusing(Listen::default(), &mut projection);
        assert_eq!(first, state.to_config(Listen::default()));
        projection.recycle(&state, first);
        // A new draft version, an unpublished API.
        let mut writer = Writer::new(&state, "t");
        let mut b = state.versions[&("b".into(), "1".into())]
            .value
            .definition
            .clone();
        b.version = "2".into();
        writer
            .create::<ApiVersions>(
                ("b".into(), "2".into()),
                ApiVersion {
                    definition: b.clone(),
                    published: false,
                },
            )
            .unwrap();
        writer.unpublish("a", "prod", None).unwrap();
        state = writer.finish().state;
        let second = state.to_config_reusing(Listen::default(), &mut projection);
        assert_eq!(second, state.to_config(Listen::default()));
        projection.recycle(&state, second);
        // A changed draft.
        let mut writer = Writer::new(&state, "t");
        b.base_path = Some("/v2".into());
        writer.update_api_version(b, None).unwrap();
        state = writer.finish().state;
        let third = state.to_config_reusing(Listen::default(), &mut projection);
        assert_eq!(third, state.to_config(Listen::default()));
    }
}
