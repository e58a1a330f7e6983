//! Header edits shared by `request-headers` and `response-headers`: the configuration both
//! accept, its validation, and the precompiled form applied to a [`HeaderMap`] on each request.
//! This module owns only the edit itself; which head it applies to is the policies' business.

use std::collections::BTreeMap;
use std::fmt;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Deserializer};
use tollgate_model::FieldPath;
use tollgate_plugin_api::PolicyConfigError;

use crate::config::{field, header_name, header_value, refuse_managed};

/// Edits to a message head, applied in the order `remove`, `set`, `add`.
///
/// ```json
/// { "remove": ["x-internal"], "set": {"x-env": "prod"}, "add": {"via": ["tollgate", "edge"]} }
/// ```
///
/// Header names are case-insensitive; a value is a string or a list of strings (one header
/// line each). Hop-by-hop and framing headers (`connection`, `keep-alive`, `proxy-connection`,
/// `te`, `trailer`, `transfer-encoding`, `upgrade`, `content-length`) are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderEdits {
    /// Headers to append, keeping any value already present.
    #[serde(default)]
    pub add: BTreeMap<String, HeaderValues>,
    /// Headers to replace: every existing value is dropped first.
    #[serde(default)]
    pub set: BTreeMap<String, HeaderValues>,
    /// Headers to delete (all their values).
    #[serde(default)]
    pub remove: Vec<String>,
}

/// One or more values of one header, written as `"v"` or `["v1", "v2"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderValues(pub Vec<String>);

impl<'de> Deserialize<'de> for HeaderValues {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = HeaderValues;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a header value (string) or a list of them")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<HeaderValues, E> {
                Ok(HeaderValues(vec![v.to_owned()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<HeaderValues, A::Error> {
                let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(1));
                while let Some(v) = seq.next_element::<String>()? {
                    values.push(v);
                }
                Ok(HeaderValues(values))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// [`HeaderEdits`], validated and parsed: applying it costs no parsing and no allocation
/// beyond the header map's own.
#[derive(Debug, Clone, Default)]
pub(crate) struct CompiledEdits {
    remove: Box<[HeaderName]>,
    set: Box<[(HeaderName, Box<[HeaderValue]>)]>,
    add: Box<[(HeaderName, HeaderValue)]>,
}

impl CompiledEdits {
    /// Validates `edits`; errors name the field, e.g. `set.X-Env` or `remove[1]`.
    pub(crate) fn compile(edits: &HeaderEdits) -> Result<Self, PolicyConfigError> {
        let mut remove = Vec::with_capacity(edits.remove.len());
        for (i, raw) in edits.remove.iter().enumerate() {
            let path = field("remove").index(i);
            let name = header_name(&path, raw)?;
            refuse_managed(&path, &name)?;
            remove.push(name);
        }
        let set = compile_map(&field("set"), &edits.set)?;
        let add = compile_map(&field("add"), &edits.add)?
            .into_iter()
            .flat_map(|(name, values)| values.into_iter().map(move |v| (name.clone(), v)))
            .collect();
        Ok(Self {
            remove: remove.into(),
            set: set
                .into_iter()
                .map(|(name, values)| (name, values.into()))
                .collect(),
            add,
        })
    }

    /// True when there is nothing to do.
    pub(crate) fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.set.is_empty() && self.add.is_empty()
    }

    /// Applies the edits: remove, then set, then add.
    pub(crate) fn apply(&self, headers: &mut HeaderMap) {
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, values) in &self.set {
            headers.remove(name);
            for value in values {
                headers.append(name.clone(), value.clone());
            }
        }
        for (name, value) in &self.add {
            headers.append(name.clone(), value.clone());
        }
    }
}

/// Header names with their values, in configuration order.
pub(crate) type Compiled = Vec<(HeaderName, Vec<HeaderValue>)>;

/// Validates a `{name: value | [values]}` map at `base` (e.g. `headers`): names parse, are not
/// managed by the proxy, appear once ignoring case, and have at least one valid value.
pub(crate) fn compile_map(
    base: &FieldPath,
    map: &BTreeMap<String, HeaderValues>,
) -> Result<Compiled, PolicyConfigError> {
    let mut out: Compiled = Vec::with_capacity(map.len());
    for (raw, values) in map {
        let path = base.key(raw.as_str());
        let name = header_name(&path, raw)?;
        refuse_managed(&path, &name)?;
        if out.iter().any(|(n, _)| *n == name) {
            return Err(PolicyConfigError::new(
                path,
                format!("{name:?} appears twice (header names are case-insensitive)"),
            ));
        }
        if values.0.is_empty() {
            return Err(PolicyConfigError::new(path, "needs at least one value"));
        }
        let parsed = values
            .0
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let value_path = if values.0.len() == 1 {
                    path.clone()
                } else {
                    path.index(i)
                };
                header_value(&value_path, v)
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.push((name, parsed));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_plugin_api::parse_policy_config;

    fn compile(json: serde_json::Value) -> Result<CompiledEdits, PolicyConfigError> {
        CompiledEdits::compile(&parse_policy_config::<HeaderEdits>(&json)?)
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (n, v) in pairs {
            map.append(*n, HeaderValue::from_static(v));
        }
        map
    }

    fn values<'a>(map: &'a HeaderMap, name: &str) -> Vec<&'a str> {
        map.get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    #[test]
    fn applies_remove_then_set_then_add() {
        let edits = compile(serde_json::json!({
            "remove": ["X-Drop", "x-replaced"],
            "set": {"X-Replaced": "new", "x-multi": ["a", "b"]},
            "add": {"x-keep": "second", "x-replaced": "added"},
        }))
        .unwrap();
        let mut map = headers(&[
            ("x-drop", "1"),
            ("x-drop", "2"),
            ("x-replaced", "old"),
            ("x-multi", "old"),
            ("x-keep", "first"),
        ]);
        edits.apply(&mut map);
        assert!(map.get("x-drop").is_none());
        assert_eq!(values(&map, "x-replaced"), ["new", "added"]);
        assert_eq!(values(&map, "x-multi"), ["a", "b"]);
        assert_eq!(values(&map, "x-keep"), ["first", "second"]);
    }

    #[test]
    fn empty_config_is_empty() {
        assert!(compile(serde_json::json!({})).unwrap().is_empty());
    }

    #[test]
    fn invalid_names_and_values_name_the_field() {
        let err = compile(serde_json::json!({"remove": ["ok", "bad name"]})).unwrap_err();
        assert_eq!(err.path.to_string(), "remove[1]");
        let err = compile(serde_json::json!({"set": {"x-a": "line\nbreak"}})).unwrap_err();
        assert_eq!(err.path.to_string(), "set.x-a");
        let err = compile(serde_json::json!({"add": {"x-a": ["ok", "b\u{7f}d"]}})).unwrap_err();
        assert_eq!(err.path.to_string(), "add.x-a[1]");
        let err = compile(serde_json::json!({"add": {"x-a": []}})).unwrap_err();
        assert_eq!(err.path.to_string(), "add.x-a");
        let err = compile(serde_json::json!({"set": {"x-a": 3}})).unwrap_err();
        assert_eq!(err.path.to_string(), "set.x-a");
    }

    #[test]
    fn refuses_hop_by_hop_and_framing_headers() {
        for name in [
            "Connection",
            "keep-alive",
            "proxy-connection",
            "TE",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "content-length",
        ] {
            let err = compile(serde_json::json!({"set": {(name): "x"}})).unwrap_err();
            assert_eq!(err.path.to_string(), format!("set.{name}"));
            assert!(err.message.contains("cannot change"), "{}", err.message);
            let err = compile(serde_json::json!({"remove": [name]})).unwrap_err();
            assert_eq!(err.path.to_string(), "remove[0]");
        }
    }

    #[test]
    fn host_may_be_set() {
        let edits = compile(serde_json::json!({"set": {"host": "internal.svc"}})).unwrap();
        let mut map = headers(&[("host", "public.example")]);
        edits.apply(&mut map);
        assert_eq!(values(&map, "host"), ["internal.svc"]);
    }

    #[test]
    fn duplicate_names_differing_in_case_are_refused() {
        let err = compile(serde_json::json!({"set": {"X-A": "1", "x-a": "2"}})).unwrap_err();
        assert_eq!(err.path.to_string(), "set.x-a");
        assert!(err.message.contains("twice"));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = compile(serde_json::json!({"append": {}})).unwrap_err();
        assert!(err.message.contains("unknown field"), "{}", err.message);
    }
}
