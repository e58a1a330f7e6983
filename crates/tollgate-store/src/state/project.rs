//! From state to configuration: what the runtime compiles and `config export` writes.
//!
//! Projecting builds every API definition with where it is live; a [`Projection`] keeps the
//! definitions of the last projection so that the next one (an admin write usually changes
//! one object) shares the unchanged ones instead of building them again: the validation and
//! the compiler then know them unchanged by pointer.

use std::collections::BTreeMap;
use std::sync::Arc;

use tollgate_model::{Api, ByVersion, Config, Deprecation, Diagnostic, Listen, Marks, VersionRef};

use super::{ApiVersion, Deployment, Entry, Shared, State};
use crate::secrets::SecretKey;

/// API definitions as the previous [`State::to_config_reusing`] projected them, by (API name,
/// version).
#[derive(Debug, Default)]
pub struct Projection {
    apis: ByVersion<Projected>,
    /// Numbers the projections: entries the last one did not visit are dropped.
    marks: Marks,
    /// The last projection's inputs and result: while a write leaves both maps alone (they
    /// are copied on write, so an unchanged one is the same allocation), the definitions are
    /// the last ones, without a look at any of them.
    last: Option<LastProjection>,
}

#[derive(Debug)]
struct LastProjection {
    versions: Shared<(String, String), ApiVersion>,
    deployments: Shared<(String, String), Deployment>,
    apis: Vec<Arc<Api>>,
}

/// A projected definition, the stored entry it came from, and the projection that last used
/// it.
#[derive(Debug)]
struct Projected {
    from: Arc<Entry<ApiVersion>>,
    api: Arc<Api>,
    pass: u64,
}

impl State {
    /// The configuration this state describes, in the file schema: every API version with
    /// `publish` set to the environments it is live in (`[]` for drafts and versions live
    /// nowhere) and its deprecations; secrets (and certificates' private keys) in their stored
    /// (hashed or encrypted) form.
    /// `listen` is the node's own (listeners are not stored).
    pub fn to_config(&self, listen: Listen) -> Config {
        self.config_with(listen, self.project_apis(&mut Projection::default()))
    }

    /// [`State::to_config`], sharing from `projection` the definitions of API versions whose
    /// stored entry and deployments did not change instead of building them again.
    pub fn to_config_reusing(&self, listen: Listen, projection: &mut Projection) -> Config {
        let apis = match &projection.last {
            Some(last)
                if Arc::ptr_eq(&last.versions, &self.versions)
                    && Arc::ptr_eq(&last.deployments, &self.deployments) =>
            {
                last.apis.clone()
            }
            _ => {
                let apis = self.project_apis(projection);
                projection.last = Some(LastProjection {
                    versions: self.versions.clone(),
                    deployments: self.deployments.clone(),
                    apis: apis.clone(),
                });
                apis
            }
        };
        self.config_with(listen, apis)
    }

    /// Every API definition, sharing the unchanged ones from `projection`.
    fn project_apis(&self, projection: &mut Projection) -> Vec<Arc<Api>> {
        // Deployments in the order of `versions` (API name, version), so that one cursor
        // walks both.
        let mut live: Vec<&Deployment> = self.deployments.values().map(|d| &d.value).collect();
        live.sort_by(|a, b| (&a.api, &a.version).cmp(&(&b.api, &b.version)));
        let mut live = live.as_slice();
        let pass = projection.marks.start();
        let apis = self
            .versions
            .iter()
            .map(|((api, version), entry)| {
                tollgate_pace::point();
                let skip = live
                    .iter()
                    .take_while(|d| (&d.api, &d.version) < (api, version))
                    .count();
                let here = live[skip..]
                    .iter()
                    .take_while(|d| d.api == *api && d.version == *version)
                    .count();
                let deployments = &live[skip..skip + here];
                live = &live[skip + here..];
                let name = VersionRef(api, version);
                if let Some(projected) = projection.apis.get_mut(&name)
                    && Arc::ptr_eq(&projected.from, entry)
                    && deployed_as(&projected.api, deployments)
                {
                    projected.pass = pass;
                    return projected.api.clone();
                }
                let mut definition = entry.value.definition.clone();
                definition.publish =
                    Some(deployments.iter().map(|d| d.environment.clone()).collect());
                definition.deprecation = deployments
                    .iter()
                    .filter_map(|d| Some((d.environment.clone(), d.deprecation.clone()?)))
                    .collect::<BTreeMap<String, Deprecation>>();
                let definition = Arc::new(definition);
                projection.apis.insert(
                    name.to_key(),
                    Projected {
                        from: entry.clone(),
                        api: definition.clone(),
                        pass,
                    },
                );
                definition
            })
            .collect();
        projection.apis.retain(|_, p| p.pass == pass);
        apis
    }

    /// The configuration with API definitions `apis`.
    fn config_with(&self, listen: Listen, apis: Vec<Arc<Api>>) -> Config {
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

/// Whether `api`'s `publish` and `deprecation` are what `deployments` (its own, in
/// environment order) make them.
fn deployed_as(api: &Api, deployments: &[&Deployment]) -> bool {
    let publish = api.publish.as_deref().unwrap_or_default();
    publish.len() == deployments.len()
        && publish
            .iter()
            .zip(deployments)
            .all(|(e, d)| *e == d.environment)
        && api.deprecation.len()
            == deployments
                .iter()
                .filter(|d| d.deprecation.is_some())
                .count()
        && deployments.iter().all(|d| match &d.deprecation {
            Some(deprecation) => api.deprecation.get(&d.environment) == Some(deprecation),
            None => true,
        })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tollgate_model::{Format, Listen, parse_config};

    use super::Projection;
    use crate::secrets::SecretKey;
    use crate::state::{ApiVersion, ApiVersions, State, Writer};

    const CONFIG: &str = "services:\n  - {name: s, mock: {status: 200}}\napis:\n  - name: a\n    routes: [{name: r, paths: [/a], service: s}]\n  - name: b\n    routes: [{name: r, paths: [/b], service: s}]\n";

    /// The state `CONFIG` describes.
    fn loaded() -> State {
        let config = parse_config(CONFIG, Format::Yaml, "t.yaml").unwrap();
        let key = SecretKey::from_bytes(&[7; 32]).unwrap();
        let mut writer = Writer::new(&State::default(), "t");
        writer.apply_config(&config, &key).unwrap();
        writer.finish().state
    }

    #[test]
    fn a_reusing_projection_equals_a_fresh_one_after_changes() {
        let mut state = loaded();
        let mut projection = Projection::default();
        let first = state.to_config_reusing(Listen::default(), &mut projection);
        assert_eq!(first, state.to_config(Listen::default()));
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
        // `b` 1 is untouched: the same definition, shared; `a` is no longer live: rebuilt.
        assert!(Arc::ptr_eq(&first.apis[1], &second.apis[1]));
        assert!(!Arc::ptr_eq(&first.apis[0], &second.apis[0]));
        assert_eq!(second.apis[0].publish, Some(vec![]));
        // A changed draft.
        let mut writer = Writer::new(&state, "t");
        b.base_path = Some("/v2".into());
        writer.update_api_version(b, None).unwrap();
        state = writer.finish().state;
        let third = state.to_config_reusing(Listen::default(), &mut projection);
        assert_eq!(third, state.to_config(Listen::default()));
    }

    #[test]
    fn a_write_that_leaves_versions_and_deployments_alone_shares_every_definition() {
        let mut state = loaded();
        let mut projection = Projection::default();
        let first = state.to_config_reusing(Listen::default(), &mut projection);
        // A global policy: the APIs are the same shared definitions, the policy is new.
        let mut writer = Writer::new(&state, "t");
        let policy: tollgate_model::PolicySpec =
            serde_json::from_str(r#"{"name": "cors", "config": {}}"#).unwrap();
        writer
            .upsert::<crate::state::Policies>("cors".into(), policy, None)
            .unwrap();
        state = writer.finish().state;
        let second = state.to_config_reusing(Listen::default(), &mut projection);
        assert_eq!(second, state.to_config(Listen::default()));
        assert_eq!(second.policies.len(), 1);
        assert!(
            first
                .apis
                .iter()
                .zip(&second.apis)
                .all(|(a, b)| Arc::ptr_eq(a, b))
        );
        // Then a deployment only: the API that moved is rebuilt, the other shared.
        let mut writer = Writer::new(&state, "t");
        writer.unpublish("b", "prod", None).unwrap();
        state = writer.finish().state;
        let third = state.to_config_reusing(Listen::default(), &mut projection);
        assert_eq!(third, state.to_config(Listen::default()));
        assert_eq!(third.apis[1].publish, Some(vec![]));
        assert!(Arc::ptr_eq(&second.apis[0], &third.apis[0]));
    }
}
