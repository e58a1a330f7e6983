//! The document-level parts of an OpenAPI document that an [`Api`] keeps in its `openapi`
//! field, both ways: import picks them out of the document ([`keep`]); export lays them back
//! (`info`, `externalDocs`, described tags, security schemes as written, the top-level
//! `security`) around what it builds from the routes.
//!
//! What is kept, in the document's own shape: `info` as written; `externalDocs`; the `tags`
//! entries that say more than a name (the others are rebuilt from the API's tags); the
//! `components.securitySchemes` not written by export for a policy (those carry
//! `x-tollgate-policy` and are rebuilt from the policies in force), references resolved; the
//! top-level `security`. Paths, schemas and everything per operation live in the routes.
//!
//! [`Api`]: tollgate_model::Api

use serde_json::{Map, Value};
use tollgate_model::Api;

use crate::resolve::Resolver;
use crate::security::POLICY_EXTENSION;
use crate::{ImportError, Pointer};

/// The parts of `doc` an API keeps, or `None` when it has none of them.
pub(crate) fn keep(doc: &Value, resolver: &mut Resolver<'_>) -> Result<Option<Value>, ImportError> {
    let mut kept = Map::new();
    for key in ["info", "externalDocs", "security"] {
        if let Some(value) = doc.get(key) {
            kept.insert(key.to_owned(), value.clone());
        }
    }
    let described: Vec<Value> = doc
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| t.as_object().is_some_and(|o| o.keys().any(|k| k != "name")))
        .cloned()
        .collect();
    if !described.is_empty() {
        kept.insert("tags".to_owned(), Value::Array(described));
    }
    let schemes_at = Pointer::root().push("components").push("securitySchemes");
    if let Some(Value::Object(schemes)) = schemes_at.get(doc) {
        let mut written = Map::new();
        for (name, raw) in schemes {
            let scheme = resolver.resolve(raw, &schemes_at.push(name))?;
            if scheme.get(POLICY_EXTENSION).is_none() {
                written.insert(name.clone(), scheme);
            }
        }
        if !written.is_empty() {
            let mut components = Map::new();
            components.insert("securitySchemes".to_owned(), Value::Object(written));
            kept.insert("components".to_owned(), Value::Object(components));
        }
    }
    Ok((!kept.is_empty()).then_some(Value::Object(kept)))
}

/// The kept value at `key` of one API.
fn part<'a>(api: &'a Api, key: &str) -> Option<&'a Value> {
    api.openapi.as_ref().and_then(|k| k.get(key))
}

/// The kept `info` of an exported API (one API only), as an object.
pub(crate) fn info(api: &Api) -> Map<String, Value> {
    match part(api, "info") {
        Some(Value::Object(info)) => info.clone(),
        _ => Map::new(),
    }
}

/// The kept `externalDocs` of an API.
pub(crate) fn external_docs(api: &Api) -> Option<&Value> {
    part(api, "externalDocs")
}

/// The kept tag object named `name` in any of `apis`.
pub(crate) fn tag<'a>(apis: &[&'a Api], name: &str) -> Option<&'a Value> {
    apis.iter()
        .filter_map(|a| part(a, "tags").and_then(Value::as_array))
        .flatten()
        .find(|t| t.get("name").and_then(Value::as_str) == Some(name))
}

/// The kept security schemes of `apis`, the first API's winning a shared name.
pub(crate) fn security_schemes(apis: &[&Api]) -> Map<String, Value> {
    let mut out = Map::new();
    for api in apis {
        let schemes = api
            .openapi
            .as_ref()
            .and_then(|k| k.pointer("/components/securitySchemes"))
            .and_then(Value::as_object);
        for (name, scheme) in schemes.into_iter().flatten() {
            if !out.contains_key(name) {
                out.insert(name.clone(), scheme.clone());
            }
        }
    }
    out
}

/// The kept top-level `security` of an API.
pub(crate) fn security(api: &Api) -> Option<&Value> {
    part(api, "security")
}
