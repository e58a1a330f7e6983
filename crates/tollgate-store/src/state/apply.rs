//! Declarative sync: turning the store's state into the one a configuration file describes,
//! as one change set. Applying the state's own export changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use tollgate_model::{Config, FieldPath, Timestamp};

use super::{
    ApiVersion, ApiVersions, Certificates, Consumers, Environments, Policies, Services, State,
    WriteError, Writer, check_certificate_validity, protect_certificate, protect_consumer,
};

impl State {
    /// Refuses `desired`'s certificates whose chain is new or changed relative to this state
    /// and that are expired or not yet valid at `now` (what `config apply` checks before
    /// [`Writer::apply_config`]; a configuration *file* is not checked, so that a certificate
    /// expiring in a file does not stop the gateway).
    pub fn check_certificates_written(
        &self,
        desired: &Config,
        now: Timestamp,
    ) -> Result<(), WriteError> {
        for (i, cert) in desired.certificates.iter().enumerate() {
            let previous = self.certificates.get(&cert.name).map(|e| &e.value);
            let at = FieldPath::root().key("certificates").index(i);
            check_certificate_validity(cert, previous, &at, now)?;
        }
        Ok(())
    }
}
use crate::secrets::SecretKey;

impl Writer {
    /// Makes the state match `desired`: objects it lacks are deleted, objects it changes are
    /// replaced, versions are published, unpublished or (un)deprecated where its `publish` and
    /// `deprecation` say so. Published versions are immutable: a desired definition that
    /// differs from a published one is refused (409) rather than silently changed. Secrets
    /// and certificates' private keys are protected before they are stored (validity dates
    /// are checked by [`State::check_certificates_written`], not here).
    pub fn apply_config(&mut self, desired: &Config, key: &SecretKey) -> Result<(), WriteError> {
        let base = self.state().clone();
        self.put_settings(desired.server.clone(), None)?;
        sync_named::<Services, _>(self, &base, &desired.services, |s| s.name.clone())?;
        sync_named::<Policies, _>(self, &base, &desired.policies, |p| p.name.clone())?;
        // Environments are added before anything is published to them and deleted after.
        for env in &desired.environments {
            self.upsert::<Environments>(env.name.clone(), env.clone(), None)?;
        }
        let mut consumers = Vec::with_capacity(desired.consumers.len());
        for consumer in &desired.consumers {
            let previous = base.consumers.get(&consumer.name).map(|e| &e.value);
            consumers.push(protect_consumer(consumer, previous, key)?);
        }
        sync_named::<Consumers, _>(self, &base, &consumers, |c| c.name.clone())?;
        let mut certificates = Vec::with_capacity(desired.certificates.len());
        for cert in &desired.certificates {
            let previous = base.certificates.get(&cert.name).map(|e| &e.value);
            certificates.push(protect_certificate(cert, previous, key)?);
        }
        sync_named::<Certificates, _>(self, &base, &certificates, |c| c.name.clone())?;

        // API versions: definitions first.
        let mut wanted = BTreeSet::new();
        for api in &desired.apis {
            let mut definition = tollgate_model::Api::clone(api);
            definition.publish = None;
            definition.deprecation = BTreeMap::new();
            let key = (api.name.clone(), api.version.clone());
            wanted.insert(key.clone());
            match base.versions.get(&key) {
                None => self.create::<ApiVersions>(
                    key,
                    ApiVersion {
                        definition,
                        published: false,
                    },
                )?,
                Some(current) if current.value.definition != definition => {
                    self.update_api_version(definition, None)?;
                }
                Some(_) => {}
            }
        }

        // Then where each version is live.
        let environments: Vec<String> = if desired.environments.is_empty() {
            vec![tollgate_model::DEFAULT_ENVIRONMENT.to_owned()]
        } else {
            desired
                .environments
                .iter()
                .map(|e| e.name.clone())
                .collect()
        };
        let mut live: BTreeMap<(String, String), &tollgate_model::Api> = BTreeMap::new();
        for api in &desired.apis {
            for env in &environments {
                if api.is_published_in(env) {
                    live.insert((env.clone(), api.name.clone()), api);
                }
            }
        }
        let current: Vec<(String, String)> = self.state().deployments.keys().cloned().collect();
        for key in current {
            if !live.contains_key(&key) {
                self.unpublish(&key.1, &key.0, None)?;
            }
        }
        for ((env, name), api) in &live {
            let now = self
                .state()
                .deployments
                .get(&(env.clone(), name.clone()))
                .map(|d| d.value.clone());
            if now.as_ref().is_none_or(|d| d.version != api.version) {
                self.publish(name, &api.version, env, None)?;
            }
            let want = api.deprecation.get(env);
            let have = now
                .filter(|d| d.version == api.version)
                .and_then(|d| d.deprecation);
            match (want, have) {
                (Some(w), h) if h.as_ref() != Some(w) => {
                    self.deprecate(name, env, Some(w.at), w.sunset, w.link.clone(), None)?;
                }
                (None, Some(_)) => {
                    self.undeprecate(name, env, None)?;
                }
                _ => {}
            }
        }

        // Finally what the file no longer has.
        let stale: Vec<(String, String)> = self
            .state()
            .versions
            .keys()
            .filter(|k| !wanted.contains(*k))
            .cloned()
            .collect();
        for (api, version) in stale {
            self.delete_api_version(&api, &version, None)?;
        }
        let desired_envs: BTreeSet<&str> = desired
            .environments
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        let stale: Vec<String> = base
            .environments
            .keys()
            .filter(|e| !desired_envs.contains(e.as_str()))
            .cloned()
            .collect();
        for env in stale {
            self.delete_environment(&env, None)?;
        }
        Ok(())
    }
}

/// Upserts every desired object and deletes those the base has and `desired` lacks.
fn sync_named<C, T>(
    writer: &mut Writer,
    base: &State,
    desired: &[T],
    name: impl Fn(&T) -> String,
) -> Result<(), WriteError>
where
    C: super::Collection<Key = String, Value = T>,
    T: Clone,
{
    let mut names = BTreeSet::new();
    for item in desired {
        let key = name(item);
        if !names.insert(key.clone()) {
            // Duplicates are reported by validation with their field paths.
            continue;
        }
        writer.upsert::<C>(key, item.clone(), None)?;
    }
    for key in C::map(base).keys() {
        if !names.contains(key) {
            writer.delete::<C>(key, None)?;
        }
    }
    Ok(())
}
