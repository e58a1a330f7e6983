//! Validation that needs no plugin knowledge: names, references, patterns, conflicts.
//!
//! One [`Validator`] walks the whole configuration and collects every problem with the field
//! path it is about. The checks are split by concern: [`services`] (targets and their URLs),
//! [`apis`] (APIs and routes), [`conflicts`] (routes matching the same requests, per
//! environment), [`environments`]
//! (environments, publishing, deprecation and `${vars.NAME}` references), [`consumers`]
//! (credentials and grants) and [`certificates`] (certificate files and named certificates).
//! Plugin configurations are checked later, by the runtime. A [`ValidationCache`] validates a
//! sequence of configurations (admin writes), checking again only the API versions that
//! changed.

mod apis;
mod certificates;
mod conflicts;
mod consumers;
mod environments;
mod services;

pub use services::TargetUrl;

use crate::{Config, Diagnostic, Environment, FieldPath};

/// Checks a parsed configuration; returns every problem found (empty list never returned),
/// sorted by field path.
pub fn validate(config: &Config) -> Result<(), Vec<Diagnostic>> {
    ValidationCache::default().validate(config)
}

/// Validates configurations one after the other, reusing the checks of API versions whose
/// definitions did not change since the previous one (each API version's own checks depend
/// on its definition only; the checks across APIs, such as route conflicts, are made every
/// time). Gives exactly what [`validate`] gives.
#[derive(Debug, Default)]
pub struct ValidationCache {
    apis: apis::ApiChecks,
}

impl ValidationCache {
    /// [`validate`], reusing what this cache checked before.
    pub fn validate(&mut self, config: &Config) -> Result<(), Vec<Diagnostic>> {
        let mut v = Validator::default();
        let envs = config.effective_environments();
        let envs = Envs {
            list: &envs,
            explicit: !config.environments.is_empty(),
        };
        v.server(config);
        v.services(&config.services);
        v.environments(config);
        v.apis(config, &envs, &mut self.apis);
        v.publishing(config, &envs);
        v.variables(config, &envs);
        v.consumers(config, &envs);
        v.certificate_files(config);
        v.certificates(config);
        if v.errors.is_empty() {
            Ok(())
        } else {
            v.errors.sort_by_cached_key(|e| e.path.to_string());
            Err(v.errors)
        }
    }
}

/// The environments in force (the configured ones, or the implicit `prod`).
struct Envs<'a> {
    list: &'a [Environment],
    /// False for the implicit `prod` of a configuration without `environments`.
    explicit: bool,
}

impl Envs<'_> {
    fn get(&self, name: &str) -> Option<&Environment> {
        self.list.iter().find(|e| e.name == name)
    }

    /// The known names, for messages.
    fn known(&self) -> String {
        if self.explicit {
            let names: Vec<&str> = self.list.iter().map(|e| e.name.as_str()).collect();
            format!("known: {}", names.join(", "))
        } else {
            format!(
                "without `environments` there is only the implicit {:?}",
                crate::DEFAULT_ENVIRONMENT
            )
        }
    }

    /// ` in environment "x"`, or nothing for the implicit environment.
    fn suffix(&self, name: &str) -> String {
        if self.explicit {
            format!(" in environment {name:?}")
        } else {
            String::new()
        }
    }
}

#[derive(Default)]
struct Validator {
    errors: Vec<Diagnostic>,
}

impl Validator {
    fn err(&mut self, path: FieldPath, message: impl Into<String>) {
        self.errors.push(Diagnostic::new(path, message));
    }

    fn server(&mut self, config: &Config) {
        let header = &config.server.environment_header.0;
        if header.is_empty() || !header.bytes().all(is_token_byte) {
            self.err(
                FieldPath::root().key("server").key("environment_header"),
                format!("{header:?} is not a header name"),
            );
        }
    }

    fn name(&mut self, at: &FieldPath, name: &str) {
        if !is_name(name) {
            self.err(
                at.clone(),
                format!("{name:?} is not a valid name (1-128 of letters, digits, '-', '_', '.')"),
            );
        }
    }
}

/// 1-128 of ASCII letters, digits, `-`, `_`, `.`: names of services, APIs, routes,
/// environments and consumers, and API versions.
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Checks a host pattern: `example.com`, `*.example.com`.
fn check_host(host: &str) -> Result<(), String> {
    let name = host.strip_prefix("*.").unwrap_or(host);
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{host:?} is not a host name (exact like api.example.com, or wildcard like *.example.com; no port)"
        ))
    }
}

#[cfg(test)]
mod reuse_tests;

#[cfg(test)]
mod test_support {
    use crate::{Format, parse_config};

    /// The diagnostics of an invalid YAML configuration, as `tollgate validate` prints them.
    pub(super) fn errors(yaml: &str) -> String {
        parse_config(yaml, Format::Yaml, "t.yaml")
            .unwrap_err()
            .to_string()
    }

    /// Asserts a YAML configuration is valid.
    pub(super) fn valid(yaml: &str) {
        if let Err(e) = parse_config(yaml, Format::Yaml, "t.yaml") {
            panic!("expected valid, got:\n{e}");
        }
    }

    pub(super) const BASE: &str =
        "services:\n  - name: s\n    targets: [{url: 'http://127.0.0.1:1'}]\n";
}
