//! Inlining local `$ref`s, so that a kept operation stands on its own.
//!
//! Rules (also in docs/openapi.md):
//! - Only references inside the document (`#/...`) are followed; others are an error naming them.
//! - Literal data is never searched for `$ref`: `example`, `default`, `enum`, `const`, an
//!   Example Object's `value`, schema `examples` and `x-` extensions are copied as they are.
//! - A schema under `#/components/schemas/` that refers back to itself (a tree, a linked list) is
//!   expanded once; the inner reference becomes `{"x-tollgate-recursive": "#/components/schemas/Node"}`,
//!   a schema that accepts any value. Any other cycle (`$ref`s that only lead to each other) is
//!   an error.
//! - Keys beside a `$ref`: ignored in 3.0 (as the specification says); in 3.1 they are laid over
//!   the target when they only annotate (`summary`, `description`, ...) or the target lacks them,
//!   otherwise the result is `{"allOf": [target], ...siblings}` (JSON Schema semantics).

use serde_json::{Map, Value};

use crate::source::Version;
use crate::{ImportError, Pointer};

/// How many values one operation may have after inlining.
pub(crate) const MAX_VALUES: usize = 2_000_000;

/// Marker left where a recursive schema refers to itself.
pub(crate) const RECURSIVE: &str = "x-tollgate-recursive";

/// What the keys of the object being walked are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// Keywords of an OpenAPI object or a schema.
    Keywords,
    /// Names chosen by the author (`properties`, `responses`, `content`, ...): any key, values
    /// are objects.
    Names,
    /// An `examples` map: names to Example Objects.
    ExamplesMap,
    /// An Example Object: its `value` is literal data.
    Example,
    /// Data: copied as is.
    Literal,
}

/// Inlines local references in values taken from one document.
pub(crate) struct Resolver<'a> {
    doc: &'a Value,
    version: Version,
    /// Targets being expanded, outermost first.
    stack: Vec<String>,
    /// Values one [`Resolver::resolve`] call may produce.
    limit: usize,
    budget: usize,
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(doc: &'a Value, version: Version) -> Self {
        Self {
            doc,
            version,
            stack: Vec::new(),
            limit: MAX_VALUES,
            budget: MAX_VALUES,
        }
    }

    /// `value` (found at `at`) with every `$ref` in it inlined.
    pub(crate) fn resolve(&mut self, value: &Value, at: &Pointer) -> Result<Value, ImportError> {
        self.budget = self.limit;
        self.walk(value, at, Ctx::Keywords, at)
    }

    /// Follows `$ref` chains from the object at `at` until a non-reference; returns it with the
    /// pointer it was found at. For Path Items, security schemes and other top-level lookups.
    pub(crate) fn follow(
        &self,
        value: &'a Value,
        at: &Pointer,
    ) -> Result<(&'a Value, Pointer), ImportError> {
        let mut seen: Vec<String> = Vec::new();
        let mut current = (value, at.clone());
        while let Some(reference) = ref_of(current.0) {
            if seen.iter().any(|s| s == reference) {
                seen.push(reference.to_owned());
                return Err(ImportError::RefCycle {
                    pointer: current.1,
                    chain: seen,
                });
            }
            seen.push(reference.to_owned());
            current = self.lookup(reference, &current.1)?;
        }
        Ok(current)
    }

    fn lookup(&self, reference: &str, at: &Pointer) -> Result<(&'a Value, Pointer), ImportError> {
        let Some(fragment) = reference.strip_prefix('#') else {
            return Err(ImportError::ExternalRef {
                pointer: at.clone(),
                reference: reference.to_owned(),
            });
        };
        let not_found = || ImportError::RefNotFound {
            pointer: at.clone(),
            reference: reference.to_owned(),
        };
        let pointer = Pointer::parse(&percent_decode(fragment)).ok_or_else(not_found)?;
        let target = pointer.get(self.doc).ok_or_else(not_found)?;
        Ok((target, pointer))
    }

    fn walk(
        &mut self,
        value: &Value,
        at: &Pointer,
        ctx: Ctx,
        operation: &Pointer,
    ) -> Result<Value, ImportError> {
        self.budget = self
            .budget
            .checked_sub(1)
            .ok_or_else(|| ImportError::TooLarge {
                pointer: operation.clone(),
                limit: self.limit,
            })?;
        match value {
            Value::Array(items) if ctx != Ctx::Literal => items
                .iter()
                .enumerate()
                .map(|(i, item)| self.walk(item, &at.push(i), Ctx::Keywords, operation))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Object(object) if ctx != Ctx::Literal => {
                let is_map = matches!(ctx, Ctx::Names | Ctx::ExamplesMap);
                if let (Some(reference), false) = (ref_of(value), is_map) {
                    return self.inline(reference, object, at, ctx, operation);
                }
                let mut out = Map::new();
                for (key, child) in object {
                    let child_ctx = match ctx {
                        Ctx::Names => Ctx::Keywords,
                        Ctx::ExamplesMap => Ctx::Example,
                        Ctx::Example if key == "value" => Ctx::Literal,
                        _ => child_ctx(key, child),
                    };
                    let walked = self.walk(child, &at.push(key), child_ctx, operation)?;
                    out.insert(key.clone(), walked);
                }
                Ok(Value::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    fn inline(
        &mut self,
        reference: &str,
        object: &Map<String, Value>,
        at: &Pointer,
        ctx: Ctx,
        operation: &Pointer,
    ) -> Result<Value, ImportError> {
        let (target, target_at) = self.lookup(reference, at)?;
        let key = target_at.as_str().to_owned();
        let resolved = if let Some(depth) = self.stack.iter().position(|s| *s == key) {
            if !target_at.starts_with("/components/schemas") {
                let mut chain: Vec<String> = self.stack[depth..]
                    .iter()
                    .map(|s| format!("#{s}"))
                    .collect();
                chain.push(format!("#{key}"));
                return Err(ImportError::RefCycle {
                    pointer: at.clone(),
                    chain,
                });
            }
            let mut marker = Map::new();
            marker.insert(RECURSIVE.to_owned(), Value::String(format!("#{key}")));
            Value::Object(marker)
        } else {
            self.stack.push(key);
            // A target that is itself only a reference inherits the context of this position.
            let target_ctx = if ctx == Ctx::Example {
                Ctx::Example
            } else {
                Ctx::Keywords
            };
            let walked = self.walk(target, &target_at, target_ctx, operation);
            self.stack.pop();
            walked?
        };
        let siblings: Vec<(&String, &Value)> =
            object.iter().filter(|(k, _)| *k != "$ref").collect();
        if siblings.is_empty() || self.version == Version::V30 {
            return Ok(resolved);
        }
        let mut walked_siblings = Map::new();
        for (key, value) in siblings {
            let walked = self.walk(value, &at.push(key), child_ctx(key, value), operation)?;
            walked_siblings.insert(key.clone(), walked);
        }
        Ok(overlay(resolved, walked_siblings))
    }
}

/// The `$ref` of a Reference Object.
pub(crate) fn ref_of(value: &Value) -> Option<&str> {
    value.get("$ref").and_then(Value::as_str)
}

/// The context of the value under `key` in an object of keywords.
fn child_ctx(key: &str, value: &Value) -> Ctx {
    match key {
        "example" | "default" | "enum" | "const" => Ctx::Literal,
        "examples" if value.is_array() => Ctx::Literal,
        "examples" => Ctx::ExamplesMap,
        "properties" | "patternProperties" | "$defs" | "definitions" | "dependentSchemas"
        | "responses" | "headers" | "content" | "callbacks" | "encoding" | "links" => Ctx::Names,
        k if k.starts_with("x-") => Ctx::Literal,
        _ => Ctx::Keywords,
    }
}

/// 3.1 siblings of a `$ref` applied to the resolved target.
fn overlay(resolved: Value, siblings: Map<String, Value>) -> Value {
    const ANNOTATIONS: &[&str] = &[
        "summary",
        "description",
        "title",
        "deprecated",
        "readOnly",
        "writeOnly",
        "example",
        "examples",
        "default",
        "$comment",
    ];
    match resolved {
        Value::Object(mut target) => {
            let conflicts = siblings.keys().any(|k| {
                target.contains_key(k) && !ANNOTATIONS.contains(&k.as_str()) && !k.starts_with("x-")
            });
            if conflicts {
                let mut out = siblings;
                out.insert(
                    "allOf".to_owned(),
                    Value::Array(vec![Value::Object(target)]),
                );
                Value::Object(out)
            } else {
                target.extend(siblings);
                Value::Object(target)
            }
        }
        // A boolean schema (`true`/`false`) with siblings.
        other => {
            let mut out = siblings;
            out.insert("allOf".to_owned(), Value::Array(vec![other]));
            Value::Object(out)
        }
    }
}

/// `%XX` escapes in a URI fragment (e.g. `#/paths/~1pets%7Bid%7D`) decoded; invalid escapes kept.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn resolve(doc: &Value, version: Version) -> Result<Value, ImportError> {
        let at = Pointer::parse("/paths/~1a/get").unwrap();
        let op = at.get(doc).unwrap().clone();
        Resolver::new(doc, version).resolve(&op, &at)
    }

    #[test]
    fn inlines_nested_references() {
        let doc = json!({
            "paths": {"/a": {"get": {
                "parameters": [{"$ref": "#/components/parameters/Id"}],
                "responses": {"default": {"$ref": "#/components/responses/Err"}}
            }}},
            "components": {
                "parameters": {"Id": {"name": "id", "in": "query", "schema": {"$ref": "#/components/schemas/Id"}}},
                "schemas": {"Id": {"type": "integer"}},
                "responses": {"Err": {"description": "error"}}
            }
        });
        let op = resolve(&doc, Version::V31).unwrap();
        assert_eq!(op["parameters"][0]["schema"], json!({"type": "integer"}));
        assert_eq!(op["responses"]["default"]["description"], "error");
    }

    #[test]
    fn missing_and_external_refs_name_the_place() {
        let doc = json!({"paths": {"/a": {"get": {"parameters": [{"$ref": "#/components/parameters/Nope"}]}}}});
        let e = resolve(&doc, Version::V31).unwrap_err().to_string();
        assert_eq!(
            e,
            "/paths/~1a/get/parameters/0: $ref #/components/parameters/Nope not found"
        );
        let doc = json!({"paths": {"/a": {"get": {"requestBody": {"$ref": "other.yaml#/x"}}}}});
        let e = resolve(&doc, Version::V31).unwrap_err().to_string();
        assert!(
            e.starts_with("/paths/~1a/get/requestBody: $ref other.yaml#/x points outside"),
            "{e}"
        );
    }

    #[test]
    fn recursive_schemas_are_cut_other_cycles_refused() {
        let doc = json!({
            "paths": {"/a": {"get": {"responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}}}}}},
            "components": {"schemas": {"Node": {"type": "object", "properties": {
                "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}
            }}}}
        });
        let op = resolve(&doc, Version::V31).unwrap();
        let schema = &op["responses"]["200"]["content"]["application/json"]["schema"];
        assert_eq!(
            schema["properties"]["children"]["items"],
            json!({"x-tollgate-recursive": "#/components/schemas/Node"})
        );
        let doc = json!({
            "paths": {"/a": {"get": {"requestBody": {"$ref": "#/components/requestBodies/A"}}}},
            "components": {"requestBodies": {
                "A": {"$ref": "#/components/requestBodies/B"},
                "B": {"$ref": "#/components/requestBodies/A"}
            }}
        });
        let e = resolve(&doc, Version::V31).unwrap_err();
        assert!(matches!(e, ImportError::RefCycle { .. }), "{e}");
        assert!(e.to_string().contains("#/components/requestBodies/A -> #/components/requestBodies/B -> #/components/requestBodies/A"), "{e}");
    }

    #[test]
    fn exponential_sharing_is_refused() {
        let mut schemas = serde_json::Map::new();
        for i in 0..30 {
            let next = json!({"$ref": format!("#/components/schemas/S{}", i + 1)});
            schemas.insert(
                format!("S{i}"),
                json!({"properties": {"a": next.clone(), "b": next}}),
            );
        }
        schemas.insert("S30".to_owned(), json!({"type": "string"}));
        let doc = json!({
            "paths": {"/a": {"get": {"requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/S0"}}}}}}},
            "components": {"schemas": schemas}
        });
        let at = Pointer::parse("/paths/~1a/get").unwrap();
        let mut resolver = Resolver::new(&doc, Version::V31);
        resolver.limit = 100_000;
        let e = resolver.resolve(at.get(&doc).unwrap(), &at).unwrap_err();
        assert!(
            matches!(e, ImportError::TooLarge { limit: 100_000, .. }),
            "{e}"
        );
    }

    #[test]
    fn literal_data_is_not_resolved_and_default_response_is() {
        let doc = json!({
            "paths": {"/a": {"get": {
                "parameters": [{"name": "q", "in": "query", "example": {"$ref": "#/nowhere"},
                    "examples": {"one": {"value": {"$ref": "#/nowhere"}}}}],
                "responses": {"default": {"$ref": "#/components/responses/E"}},
                "x-data": {"$ref": "#/nowhere"}
            }}},
            "components": {"responses": {"E": {"description": "e"}}}
        });
        let op = resolve(&doc, Version::V31).unwrap();
        assert_eq!(op["parameters"][0]["example"]["$ref"], "#/nowhere");
        assert_eq!(
            op["parameters"][0]["examples"]["one"]["value"]["$ref"],
            "#/nowhere"
        );
        assert_eq!(op["responses"]["default"]["description"], "e");
    }

    #[test]
    fn siblings_of_refs_by_version() {
        let doc = json!({
            "paths": {"/a": {"get": {"responses": {"200": {"$ref": "#/components/responses/Ok", "description": "mine"}},
                "parameters": [{"name": "n", "in": "query", "schema": {"$ref": "#/components/schemas/N", "maximum": 5}}]}}},
            "components": {"responses": {"Ok": {"description": "theirs"}},
                "schemas": {"N": {"type": "integer", "maximum": 10}}}
        });
        let op31 = resolve(&doc, Version::V31).unwrap();
        assert_eq!(op31["responses"]["200"]["description"], "mine");
        assert_eq!(
            op31["parameters"][0]["schema"],
            json!({"allOf": [{"type": "integer", "maximum": 10}], "maximum": 5})
        );
        let op30 = resolve(&doc, Version::V30).unwrap();
        assert_eq!(op30["responses"]["200"]["description"], "theirs");
    }
}
