//! Security schemes and authentication policies, both ways.
//!
//! | policy (config)                          | security scheme                                  |
//! |------------------------------------------|--------------------------------------------------|
//! | `key-auth` (`header`, default `X-API-Key`) | `apiKey` in header                             |
//! | `key-auth` (`query_param`)               | `apiKey` in query, an alternative to the header  |
//! | `basic-auth`                             | `http`, scheme `basic`                           |
//! | `jwt`                                    | `http`, scheme `bearer`, `bearerFormat: JWT`     |
//! | `hmac-auth`                              | `apiKey` in header `Signature` (RFC 9421), marked `x-tollgate-policy: hmac-auth` |
//!
//! Several authentication policies on one route must all pass, so they form one requirement
//! object; the header and query locations of `key-auth` are alternatives. Import reads the same
//! table backwards; schemes outside it (`oauth2`, `openIdConnect`, `mutualTLS`, cookie API keys,
//! non-JWT bearer tokens) have no policy and are reported as warnings.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use tollgate_model::PolicySpec;

/// The header `key-auth` reads when its config names none.
pub const DEFAULT_KEY_HEADER: &str = "X-API-Key";

/// Names of the policies that authenticate callers, which export turns into security schemes.
pub const AUTH_POLICIES: &[&str] = &["key-auth", "basic-auth", "jwt", "hmac-auth"];

/// Marks a scheme with the policy it came from.
pub(crate) const POLICY_EXTENSION: &str = "x-tollgate-policy";

/// One way of presenting credentials that a policy checks.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Credential {
    KeyHeader(String),
    KeyQuery(String),
    Basic,
    Jwt,
    Hmac,
}

// ---------------------------------------------------------------- import: schemes to policies

/// The policies that enforce `requirements` (a Security Requirement list), with `schemes` the
/// document's `components.securitySchemes` (references resolved). `Ok(vec![])`: no
/// authentication; `Err`: why it cannot be expressed with policies.
pub(crate) fn policies_for(
    requirements: &[Value],
    schemes: &Map<String, Value>,
) -> Result<Vec<PolicySpec>, String> {
    let mut alternatives: Vec<Vec<Credential>> = Vec::new();
    for requirement in requirements {
        let Some(requirement) = requirement.as_object() else {
            return Err("a security requirement must be a mapping".to_owned());
        };
        if requirement.is_empty() {
            // `{}` among the alternatives: credentials are optional.
            return Ok(Vec::new());
        }
        let mut all = Vec::new();
        for name in requirement.keys() {
            let scheme = schemes.get(name).ok_or_else(|| {
                format!("security scheme {name:?} is not defined in components.securitySchemes")
            })?;
            all.push(credential(scheme).map_err(|why| format!("scheme {name:?}: {why}"))?);
        }
        all.sort();
        if !alternatives.contains(&all) {
            alternatives.push(all);
        }
    }
    match alternatives.as_slice() {
        [] => Ok(Vec::new()),
        [only] => {
            let keys = only
                .iter()
                .filter(|c| matches!(c, Credential::KeyHeader(_) | Credential::KeyQuery(_)))
                .count();
            if keys > 1 {
                return Err("several API keys required together have no policy".to_owned());
            }
            Ok(only
                .iter()
                .map(|c| policy(std::slice::from_ref(c)))
                .collect())
        }
        several => {
            let keys: Vec<Credential> = several
                .iter()
                .filter_map(|alt| match alt.as_slice() {
                    [c @ (Credential::KeyHeader(_) | Credential::KeyQuery(_))] => Some(c.clone()),
                    _ => None,
                })
                .collect();
            let headers = keys
                .iter()
                .filter(|c| matches!(c, Credential::KeyHeader(_)))
                .count();
            if keys.len() != several.len() || headers > 1 || keys.len() - headers > 1 {
                return Err(
                    "alternative security requirements are only supported as one API key in a header or the query"
                        .to_owned(),
                );
            }
            Ok(vec![policy(&keys)])
        }
    }
}

/// The credential a Security Scheme Object describes.
fn credential(scheme: &Value) -> Result<Credential, String> {
    if scheme.get(POLICY_EXTENSION).and_then(Value::as_str) == Some("hmac-auth") {
        return Ok(Credential::Hmac);
    }
    let field = |key: &str| scheme.get(key).and_then(Value::as_str).unwrap_or_default();
    match field("type") {
        "apiKey" => match field("in") {
            "header" => Ok(Credential::KeyHeader(field("name").to_owned())),
            "query" => Ok(Credential::KeyQuery(field("name").to_owned())),
            other => Err(format!("API keys in {other:?} have no policy")),
        },
        "http" if field("scheme").eq_ignore_ascii_case("basic") => Ok(Credential::Basic),
        "http"
            if field("scheme").eq_ignore_ascii_case("bearer")
                && field("bearerFormat").eq_ignore_ascii_case("JWT") =>
        {
            Ok(Credential::Jwt)
        }
        "http" => Err(format!(
            "HTTP scheme {:?}{} has no policy (basic and bearer JWT have)",
            field("scheme"),
            match field("bearerFormat") {
                "" => String::new(),
                format => format!(" with bearerFormat {format:?}"),
            }
        )),
        other => Err(format!("type {other:?} has no policy")),
    }
}

/// The policy for credentials that are alternatives of one kind.
fn policy(credentials: &[Credential]) -> PolicySpec {
    let (name, config) = match credentials.first() {
        Some(Credential::KeyHeader(_) | Credential::KeyQuery(_)) => {
            let mut config = Map::new();
            for c in credentials {
                match c {
                    Credential::KeyHeader(h) if !h.eq_ignore_ascii_case(DEFAULT_KEY_HEADER) => {
                        config.insert("header".to_owned(), Value::String(h.clone()));
                    }
                    Credential::KeyQuery(q) => {
                        config.insert("query_param".to_owned(), Value::String(q.clone()));
                    }
                    _ => {}
                }
            }
            ("key-auth", Value::Object(config))
        }
        Some(Credential::Basic) => ("basic-auth", json!({})),
        Some(Credential::Jwt) => ("jwt", json!({})),
        Some(Credential::Hmac) | None => ("hmac-auth", json!({})),
    };
    PolicySpec {
        name: name.to_owned(),
        config,
        enabled: true,
    }
}

// ---------------------------------------------------------------- export: policies to schemes

/// The security schemes an exported document defines, collected while operations are written.
#[derive(Debug, Default)]
pub(crate) struct Schemes {
    by_name: BTreeMap<String, Value>,
}

impl Schemes {
    /// Schemes starting with `written` (the ones kept from imported documents): a policy's
    /// scheme whose name is taken gets `-2`, `-3`, ...
    pub(crate) fn with_written(written: Map<String, Value>) -> Self {
        Self {
            by_name: written.into_iter().collect(),
        }
    }

    /// The `security` of an operation protected by `policies` (the route's effective, enabled
    /// policies); `None` when none of them authenticates.
    pub(crate) fn requirements(&mut self, policies: &[&PolicySpec]) -> Option<Vec<Value>> {
        let mut product: Vec<Map<String, Value>> = vec![Map::new()];
        let mut any = false;
        for spec in policies {
            let alternatives: Vec<String> = credentials_of(spec)
                .into_iter()
                .map(|c| self.define(&c))
                .collect();
            if alternatives.is_empty() {
                continue;
            }
            any = true;
            product = product
                .iter()
                .flat_map(|partial| {
                    alternatives.iter().map(move |name| {
                        let mut next = partial.clone();
                        next.insert(name.clone(), Value::Array(Vec::new()));
                        next
                    })
                })
                .collect();
        }
        any.then(|| product.into_iter().map(Value::Object).collect())
    }

    /// `components.securitySchemes`, or `None` when no operation needs one.
    pub(crate) fn into_components(self) -> Option<Value> {
        (!self.by_name.is_empty()).then(|| Value::Object(self.by_name.into_iter().collect()))
    }

    /// Adds the scheme for `credential` and returns its name.
    fn define(&mut self, credential: &Credential) -> String {
        let (base, scheme) = scheme_of(credential);
        let mut name = base.clone();
        let mut n = 2;
        loop {
            match self.by_name.get(&name) {
                Some(existing) if *existing == scheme => return name,
                Some(_) => {
                    name = format!("{base}-{n}");
                    n += 1;
                }
                None => {
                    self.by_name.insert(name.clone(), scheme);
                    return name;
                }
            }
        }
    }
}

fn credentials_of(spec: &PolicySpec) -> Vec<Credential> {
    let config = |key: &str| spec.config.get(key).and_then(Value::as_str);
    match spec.name.as_str() {
        "key-auth" => {
            let header = config("header").unwrap_or(DEFAULT_KEY_HEADER).to_owned();
            let mut out = vec![Credential::KeyHeader(header)];
            if let Some(q) = config("query_param") {
                out.push(Credential::KeyQuery(q.to_owned()));
            }
            out
        }
        "basic-auth" => vec![Credential::Basic],
        "jwt" => vec![Credential::Jwt],
        "hmac-auth" => vec![Credential::Hmac],
        _ => Vec::new(),
    }
}

/// A scheme name and Security Scheme Object.
fn scheme_of(credential: &Credential) -> (String, Value) {
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    match credential {
        Credential::KeyHeader(h) => (
            if h.eq_ignore_ascii_case(DEFAULT_KEY_HEADER) {
                "key-auth".to_owned()
            } else {
                format!("key-auth-header-{}", safe(h))
            },
            json!({"type": "apiKey", "in": "header", "name": h,
                   "description": "API key, checked by the gateway (key-auth policy).",
                   POLICY_EXTENSION: "key-auth"}),
        ),
        Credential::KeyQuery(q) => (
            format!("key-auth-query-{}", safe(q)),
            json!({"type": "apiKey", "in": "query", "name": q,
                   "description": "API key, checked by the gateway (key-auth policy).",
                   POLICY_EXTENSION: "key-auth"}),
        ),
        Credential::Basic => (
            "basic-auth".to_owned(),
            json!({"type": "http", "scheme": "basic",
                   "description": "User name and password, checked by the gateway (basic-auth policy).",
                   POLICY_EXTENSION: "basic-auth"}),
        ),
        Credential::Jwt => (
            "jwt".to_owned(),
            json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                   "description": "JSON Web Token, checked by the gateway (jwt policy).",
                   POLICY_EXTENSION: "jwt"}),
        ),
        Credential::Hmac => (
            "hmac-auth".to_owned(),
            json!({"type": "apiKey", "in": "header", "name": "Signature",
                   "description": "HTTP Message Signatures (RFC 9421) with an HMAC key: send `Signature` and `Signature-Input`; the key id is the consumer credential's id (hmac-auth policy).",
                   POLICY_EXTENSION: "hmac-auth"}),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, config: Value) -> PolicySpec {
        PolicySpec {
            name: name.to_owned(),
            config,
            enabled: true,
        }
    }

    #[test]
    fn schemes_map_to_policies() {
        let schemes = json!({
            "key": {"type": "apiKey", "in": "header", "name": "api_key"},
            "q": {"type": "apiKey", "in": "query", "name": "token"},
            "basic": {"type": "http", "scheme": "Basic"},
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "opaque": {"type": "http", "scheme": "bearer"},
            "oauth": {"type": "oauth2", "flows": {}}
        });
        let schemes = schemes.as_object().unwrap();
        let map = |req: Value| policies_for(req.as_array().unwrap(), schemes);
        assert_eq!(
            map(json!([{"key": []}])).unwrap(),
            [spec("key-auth", json!({"header": "api_key"}))]
        );
        assert_eq!(
            map(json!([{"key": []}, {"q": []}])).unwrap(),
            [spec(
                "key-auth",
                json!({"header": "api_key", "query_param": "token"})
            )]
        );
        assert_eq!(
            map(json!([{"basic": [], "bearer": []}])).unwrap(),
            [spec("basic-auth", json!({})), spec("jwt", json!({}))]
        );
        assert!(map(json!([{"basic": []}, {}])).unwrap().is_empty());
        assert!(map(json!([])).unwrap().is_empty());
        assert!(map(json!([{"opaque": []}])).unwrap_err().contains("bearer"));
        assert!(
            map(json!([{"oauth": ["read"]}]))
                .unwrap_err()
                .contains("oauth2")
        );
        assert!(map(json!([{"basic": []}, {"key": []}])).is_err());
        assert!(
            map(json!([{"nope": []}]))
                .unwrap_err()
                .contains("not defined")
        );
    }

    #[test]
    fn policies_become_schemes_and_requirements() {
        let mut schemes = Schemes::default();
        let key = spec("key-auth", json!({"query_param": "k"}));
        let jwt = spec("jwt", json!({"issuer": "x"}));
        let cors = spec("cors", json!({}));
        let req = schemes.requirements(&[&key, &jwt, &cors]).unwrap();
        assert_eq!(
            req,
            [
                json!({"key-auth": [], "jwt": []}),
                json!({"key-auth-query-k": [], "jwt": []})
            ]
        );
        assert!(schemes.requirements(&[&cors]).is_none());
        let other = spec("key-auth", json!({"header": "X-Key"}));
        assert_eq!(
            schemes.requirements(&[&other]).unwrap(),
            [json!({"key-auth-header-X-Key": []})]
        );
        let components = schemes.into_components().unwrap();
        assert_eq!(components["jwt"]["bearerFormat"], "JWT");
        assert_eq!(components["key-auth"]["name"], "X-API-Key");
    }

    #[test]
    fn exported_schemes_import_as_the_same_policies() {
        for policy in [
            spec("key-auth", json!({})),
            spec("key-auth", json!({"header": "X-Key", "query_param": "k"})),
            spec("key-auth", json!({"query_param": "k"})),
            spec("basic-auth", json!({})),
            spec("jwt", json!({})),
            spec("hmac-auth", json!({})),
        ] {
            let mut schemes = Schemes::default();
            let req = schemes.requirements(&[&policy]).unwrap();
            let components = schemes.into_components().unwrap();
            let back = policies_for(&req, components.as_object().unwrap()).unwrap();
            assert_eq!(back, std::slice::from_ref(&policy), "{policy:?}");
        }
    }
}
