//! The lifecycle of an API: versions (drafts editable, published ones immutable), publishing a
//! version to an environment, rollback, unpublish, deprecation. Every lifecycle event is a
//! [`Release`], numbered in sequence.

use tollgate_model::{Api, DEFAULT_ENVIRONMENT, Deprecation, Timestamp};

use super::{
    ApiVersion, ApiVersions, Deployment, Deployments, Environments, Release, ReleaseAction,
    Releases, State,
};
use super::{WriteError, Writer};

impl State {
    /// Whether `name` is an environment APIs can be published to (with no environments
    /// defined, only the implicit `prod`).
    pub fn has_environment(&self, name: &str) -> bool {
        if self.environments.is_empty() {
            name == DEFAULT_ENVIRONMENT
        } else {
            self.environments.contains_key(name)
        }
    }
}

impl Writer {
    /// Adds a new draft version of an API (the API exists once it has a version).
    pub fn create_api_version(&mut self, definition: Api) -> Result<(), WriteError> {
        let definition = lifecycle_free(definition)?;
        let key = (definition.name.clone(), definition.version.clone());
        self.create::<ApiVersions>(
            key,
            ApiVersion {
                definition,
                published: false,
            },
        )
    }

    /// Replaces a draft version; published versions are immutable (409).
    pub fn update_api_version(
        &mut self,
        definition: Api,
        if_match: Option<i64>,
    ) -> Result<(), WriteError> {
        let definition = lifecycle_free(definition)?;
        let key = (definition.name.clone(), definition.version.clone());
        if let Some(current) = self.state().versions.get(&key)
            && current.value.published
            && current.value.definition != definition
        {
            return Err(WriteError::Conflict(format!(
                "version {:?} of API {:?} has been published and cannot change; create a new version",
                key.1, key.0
            )));
        }
        let published = self
            .state()
            .versions
            .get(&key)
            .is_some_and(|v| v.value.published);
        self.replace::<ApiVersions>(
            key,
            ApiVersion {
                definition,
                published,
            },
            if_match,
        )
    }

    /// Deletes a version that is live nowhere.
    pub fn delete_api_version(
        &mut self,
        api: &str,
        version: &str,
        if_match: Option<i64>,
    ) -> Result<(), WriteError> {
        let live: Vec<String> = self
            .state()
            .deployments_of(api)
            .filter(|d| d.value.version == version)
            .map(|d| d.value.environment.clone())
            .collect();
        if !live.is_empty() {
            return Err(WriteError::Conflict(format!(
                "version {version:?} of API {api:?} is live in {}: unpublish it first",
                live.join(", ")
            )));
        }
        self.delete::<ApiVersions>(&(api.to_owned(), version.to_owned()), if_match)
    }

    /// Deletes an environment nothing is published to.
    pub fn delete_environment(
        &mut self,
        name: &str,
        if_match: Option<i64>,
    ) -> Result<(), WriteError> {
        let live: Vec<String> = self
            .state()
            .deployments
            .keys()
            .filter(|(env, _)| env == name)
            .map(|(_, api)| api.clone())
            .collect();
        if !live.is_empty() {
            return Err(WriteError::Conflict(format!(
                "environment {name:?} still serves {}: unpublish them first",
                live.join(", ")
            )));
        }
        self.delete::<Environments>(&name.to_owned(), if_match)
    }

    /// Makes `version` of `api` live in `environment`.
    pub fn publish(
        &mut self,
        api: &str,
        version: &str,
        environment: &str,
        note: Option<String>,
    ) -> Result<Release, WriteError> {
        self.require_environment(environment)?;
        let key = (api.to_owned(), version.to_owned());
        let Some(current) = self.state().versions.get(&key).cloned() else {
            return Err(WriteError::NotFound(format!(
                "API {api:?} has no version {version:?}"
            )));
        };
        if let Some(d) = self.live(environment, api)
            && d.version == version
        {
            return Err(WriteError::Conflict(format!(
                "version {version:?} of API {api:?} is already live in {environment:?}"
            )));
        }
        if !current.value.published {
            let mut published = current.value.clone();
            published.published = true;
            self.replace::<ApiVersions>(key, published, None)?;
        }
        self.release(
            api,
            environment,
            Some(version),
            ReleaseAction::Publish,
            None,
            note,
            None,
        )
    }

    /// Makes the version of an earlier release live again: `to`, or the release before the
    /// one now live whose version differs.
    pub fn rollback(
        &mut self,
        api: &str,
        environment: &str,
        to: Option<i64>,
        note: Option<String>,
    ) -> Result<Release, WriteError> {
        let live = self.live(environment, api);
        let target = match to {
            Some(id) => {
                let Some(r) = self.state().releases.get(&id) else {
                    return Err(WriteError::NotFound(format!("no release {id}")));
                };
                if r.value.api != api || r.value.environment != environment {
                    return Err(WriteError::Conflict(format!(
                        "release {id} is of API {:?} in {:?}, not of {api:?} in {environment:?}",
                        r.value.api, r.value.environment
                    )));
                }
                r.value.clone()
            }
            None => {
                let current = live.as_ref().map(|d| d.version.clone());
                let found = self
                    .state()
                    .releases_of(api, Some(environment))
                    .map(|r| &r.value)
                    .find(|r| {
                        matches!(r.action, ReleaseAction::Publish | ReleaseAction::Rollback)
                            && r.version.is_some()
                            && r.version != current
                    })
                    .cloned();
                found.ok_or_else(|| {
                    WriteError::Conflict(format!(
                        "API {api:?} has no earlier release in {environment:?} to roll back to"
                    ))
                })?
            }
        };
        let Some(version) = target.version.clone() else {
            return Err(WriteError::Conflict(format!(
                "release {} unpublished API {api:?}; roll back to a release that published a version",
                target.id
            )));
        };
        if !self
            .state()
            .versions
            .contains_key(&(api.to_owned(), version.clone()))
        {
            return Err(WriteError::Conflict(format!(
                "version {version:?} of API {api:?} (release {}) has been deleted",
                target.id
            )));
        }
        if live.as_ref().is_some_and(|d| d.version == version) {
            return Err(WriteError::Conflict(format!(
                "version {version:?} of API {api:?} is already live in {environment:?}"
            )));
        }
        self.release(
            api,
            environment,
            Some(&version),
            ReleaseAction::Rollback,
            Some(target.id),
            note,
            None,
        )
    }

    /// Removes `api` from `environment` (its routes answer 404 there).
    pub fn unpublish(
        &mut self,
        api: &str,
        environment: &str,
        note: Option<String>,
    ) -> Result<Release, WriteError> {
        self.require_live(environment, api)?;
        self.release(
            api,
            environment,
            None,
            ReleaseAction::Unpublish,
            None,
            note,
            None,
        )
    }

    /// Deprecates the version of `api` live in `environment` (`at` defaults to now).
    pub fn deprecate(
        &mut self,
        api: &str,
        environment: &str,
        at: Option<Timestamp>,
        sunset: Option<Timestamp>,
        link: Option<String>,
        note: Option<String>,
    ) -> Result<Release, WriteError> {
        let live = self.require_live(environment, api)?;
        let deprecation = Deprecation {
            at: at.unwrap_or_else(|| Timestamp::from_unix(self.now())),
            sunset,
            link,
        };
        self.release(
            api,
            environment,
            Some(&live.version),
            ReleaseAction::Deprecate,
            None,
            note,
            Some(deprecation),
        )
    }

    /// Removes the deprecation of `api` in `environment`.
    pub fn undeprecate(
        &mut self,
        api: &str,
        environment: &str,
        note: Option<String>,
    ) -> Result<Release, WriteError> {
        let live = self.require_live(environment, api)?;
        if live.deprecation.is_none() {
            return Err(WriteError::Conflict(format!(
                "API {api:?} is not deprecated in {environment:?}"
            )));
        }
        self.release(
            api,
            environment,
            Some(&live.version),
            ReleaseAction::Undeprecate,
            None,
            note,
            None,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn release(
        &mut self,
        api: &str,
        environment: &str,
        version: Option<&str>,
        action: ReleaseAction,
        restores: Option<i64>,
        note: Option<String>,
        deprecation: Option<Deprecation>,
    ) -> Result<Release, WriteError> {
        // Ids are sequential; the compare-and-swap commit makes them unique across writers.
        let id = self
            .state()
            .releases
            .last_key_value()
            .map_or(1, |(id, _)| id + 1);
        let release = Release {
            id,
            api: api.to_owned(),
            environment: environment.to_owned(),
            version: version.map(str::to_owned),
            action,
            restores,
            note,
            actor: self.actor().to_owned(),
            at: Timestamp::from_unix(self.now()),
        };
        self.create::<Releases>(id, release.clone())?;
        let key = (environment.to_owned(), api.to_owned());
        match version {
            None => self.delete::<Deployments>(&key, None)?,
            Some(version) => {
                let keep_release = matches!(
                    action,
                    ReleaseAction::Deprecate | ReleaseAction::Undeprecate
                );
                let release_id = match (keep_release, self.live(environment, api)) {
                    (true, Some(d)) => d.release,
                    _ => id,
                };
                self.upsert::<Deployments>(
                    key,
                    Deployment {
                        environment: environment.to_owned(),
                        api: api.to_owned(),
                        version: version.to_owned(),
                        release: release_id,
                        deprecation,
                    },
                    None,
                )?;
            }
        }
        Ok(release)
    }

    fn live(&self, environment: &str, api: &str) -> Option<Deployment> {
        self.state()
            .deployments
            .get(&(environment.to_owned(), api.to_owned()))
            .map(|d| d.value.clone())
    }

    fn require_live(&self, environment: &str, api: &str) -> Result<Deployment, WriteError> {
        self.require_environment(environment)?;
        self.live(environment, api).ok_or_else(|| {
            WriteError::NotFound(format!("API {api:?} is not published in {environment:?}"))
        })
    }

    fn require_environment(&self, environment: &str) -> Result<(), WriteError> {
        if self.state().has_environment(environment) {
            Ok(())
        } else {
            Err(WriteError::NotFound(format!(
                "no environment {environment:?}"
            )))
        }
    }
}

/// API definitions written through version endpoints carry no lifecycle fields: where a
/// version is live is changed by publishing.
fn lifecycle_free(definition: Api) -> Result<Api, WriteError> {
    if definition.publish.is_some() || !definition.deprecation.is_empty() {
        return Err(WriteError::Invalid(vec![tollgate_model::Diagnostic::new(
            tollgate_model::FieldPath::root().key(if definition.publish.is_some() {
                "publish"
            } else {
                "deprecation"
            }),
            "set through the lifecycle endpoints (publish, unpublish, deprecate), not in the definition",
        )]));
    }
    Ok(definition)
}
