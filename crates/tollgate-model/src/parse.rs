//! The configuration root and its parser.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{
    Api, Certificate, Consumer, Diagnostic, Diagnostics, Environment, FieldPath, Listen, Location,
    PolicySpec, ServerConfig, Service, TlsConfig,
};

/// A whole configuration document: what a file holds and what `config export` writes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listener addresses.
    #[serde(default)]
    pub listen: Listen,
    /// HTTP server settings.
    #[serde(default)]
    pub server: ServerConfig,
    /// Downstream TLS.
    #[serde(default)]
    pub tls: TlsConfig,
    /// Backends.
    #[serde(default)]
    pub services: Vec<Service>,
    /// APIs and their routes, shared: consecutive configurations of a store (one per admin
    /// write) share the definitions that did not change, so that validating and compiling
    /// them can tell unchanged ones by pointer instead of comparing them route by route.
    #[serde(default)]
    pub apis: Vec<Arc<Api>>,
    /// Policies applied to every route.
    #[serde(default)]
    pub policies: Vec<PolicySpec>,
    /// Deployment targets APIs are published to; none: one implicit `prod` environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<Environment>,
    /// Callers and their credentials.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<Consumer>,
    /// Named downstream TLS certificates (inline PEM), chosen by SNI.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<Certificate>,
}

impl Config {
    /// The environments in force: the configured ones, or the implicit `prod`.
    pub fn effective_environments(&self) -> Vec<Environment> {
        if self.environments.is_empty() {
            vec![Environment::implicit()]
        } else {
            self.environments.clone()
        }
    }
}

/// Source syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML 1.2 (which also reads most JSON).
    Yaml,
    /// JSON.
    Json,
}

impl Format {
    /// The format a file name implies: `.json` is JSON, anything else YAML.
    pub fn from_path(path: &str) -> Self {
        if path.to_ascii_lowercase().ends_with(".json") {
            Self::Json
        } else {
            Self::Yaml
        }
    }
}

/// Parses configuration text (after `${VAR}` substitution) into wire types, then validates it.
/// Every problem found is reported with its field path and source location; `origin` names the
/// source in messages.
pub fn parse_config(source: &str, format: Format, origin: &str) -> Result<Config, Diagnostics> {
    let config = deserialize(source, format)
        .map_err(|d| Diagnostics::new(origin, vec![d]).locate_in(source))?;
    crate::validate(&config).map_err(|items| Diagnostics::new(origin, items).locate_in(source))?;
    Ok(config)
}

fn deserialize(source: &str, format: Format) -> Result<Config, Diagnostic> {
    match format {
        Format::Json => {
            let de = &mut serde_json::Deserializer::from_str(source);
            serde_path_to_error::deserialize(de).map_err(|e| {
                let path = FieldPath::from_serde(e.path());
                let inner = e.into_inner();
                let location = (inner.line() > 0).then(|| Location {
                    line: inner.line(),
                    column: inner.column(),
                });
                Diagnostic {
                    path,
                    message: strip_location(&inner.to_string()),
                    location,
                }
            })
        }
        Format::Yaml => {
            if source.trim().is_empty() {
                return Ok(Config::default());
            }
            let de = serde_yaml_ng::Deserializer::from_str(source);
            serde_path_to_error::deserialize(de).map_err(|e| {
                let path = FieldPath::from_serde(e.path());
                let inner = e.into_inner();
                let location = inner.location().map(|l| Location {
                    line: l.line(),
                    column: l.column(),
                });
                Diagnostic {
                    path,
                    message: strip_location(&inner.to_string()),
                    location,
                }
            })
        }
    }
}

/// serde_json and serde_yaml append " at line X column Y" to messages; we report the location
/// separately.
fn strip_location(message: &str) -> String {
    let cut = message.find(" at line ").unwrap_or(message.len());
    let message = &message[..cut];
    // serde_yaml_ng prefixes the path it knows ("apis[0]: ..."); we print our own.
    match message.split_once(": ") {
        Some((prefix, rest))
            if !prefix.is_empty()
                && prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.[]".contains(c)) =>
        {
            rest.to_owned()
        }
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
listen:
  proxy: 127.0.0.1:18080
  admin: 127.0.0.1:18081
services:
  - name: echo
    targets:
      - url: http://127.0.0.1:18090
apis:
  - name: echo-api
    routes:
      - name: echo
        paths: ["/echo"]
        service: echo
"#;

    #[test]
    fn minimal_file_from_the_contract_parses() {
        let config = parse_config(MINIMAL, Format::Yaml, "t.yaml").unwrap();
        assert_eq!(config.services[0].targets[0].weight, 1);
        assert_eq!(config.apis[0].routes[0].service, "echo");
        assert_eq!(config.listen.admin.port(), 18081);
    }

    #[test]
    fn unknown_field_is_reported_with_path_and_line() {
        let text = MINIMAL.replace("service: echo", "service: echo\n        servce: x");
        let err = parse_config(&text, Format::Yaml, "t.yaml").unwrap_err();
        let shown = err.to_string();
        assert!(shown.contains("servce"), "{shown}");
        assert!(shown.contains("apis[0].routes[0]"), "{shown}");
        assert_eq!(shown.matches("apis[0].routes[0]").count(), 1, "{shown}");
        assert_eq!(err.items[0].location.map(|l| l.line), Some(15), "{shown}");
    }

    #[test]
    fn wrong_type_is_reported() {
        let text = MINIMAL.replace("127.0.0.1:18080", "not-an-address");
        let err = parse_config(&text, Format::Yaml, "t.yaml").unwrap_err();
        assert!(err.to_string().contains("listen.proxy"), "{err}");
    }

    #[test]
    fn json_errors_have_locations() {
        let err =
            parse_config("{\"services\": [{\"nam\": 1}]}", Format::Json, "t.json").unwrap_err();
        assert!(err.to_string().starts_with("t.json:1:"), "{err}");
        assert!(err.to_string().contains("services[0]"), "{err}");
    }
}
