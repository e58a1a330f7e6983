//! From state to configuration: what the runtime compiles and `config export` writes.

use std::collections::BTreeMap;

use tollgate_model::{Config, Diagnostic, Listen};

use super::State;
use crate::secrets::SecretKey;

impl State {
    /// The configuration this state describes, in the file schema: every API version with
    /// `publish` set to the environments it is live in (`[]` for drafts and versions live
    /// nowhere) and its deprecations; secrets (and certificates' private keys) in their stored
    /// (hashed or encrypted) form.
    /// `listen` is the node's own (listeners are not stored).
    pub fn to_config(&self, listen: Listen) -> Config {
        let mut live: BTreeMap<(&str, &str), Vec<&super::Deployment>> = BTreeMap::new();
        for d in self.deployments.values() {
            live.entry((d.value.api.as_str(), d.value.version.as_str()))
                .or_default()
                .push(&d.value);
        }
        let apis = self
            .versions
            .iter()
            .map(|((api, version), entry)| {
                let mut definition = entry.value.definition.clone();
                let deployments = live
                    .get(&(api.as_str(), version.as_str()))
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                definition.publish =
                    Some(deployments.iter().map(|d| d.environment.clone()).collect());
                definition.deprecation = deployments
                    .iter()
                    .filter_map(|d| Some((d.environment.clone(), d.deprecation.clone()?)))
                    .collect();
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
        let mut config = self.to_config(listen);
        super::certificates::reveal_keys(&mut config, key)?;
        Ok(config)
    }
}
