//! OpenAPI 3.0 Schema Objects rewritten as JSON Schema 2020-12 (the 3.1 form).
//!
//! Kept operations are always in 3.1 form, so request validation reads one dialect and export
//! writes a valid 3.1 document. Two 3.0 keywords change meaning:
//! - `nullable: true` becomes `"null"` added to `type` (and to `enum` when there is one);
//!   `nullable` is removed;
//! - boolean `exclusiveMinimum`/`exclusiveMaximum` become the number of `minimum`/`maximum`
//!   (which is then removed), or disappear when `false`.
//!
//! Everything else in a 3.0 schema is also valid in 3.1.

use serde_json::{Map, Value};

/// Rewrites every Schema Object inside `value` (an operation, or any part of one).
pub(crate) fn upgrade_schemas(value: &mut Value) {
    match value {
        Value::Object(object) => {
            for (key, child) in object.iter_mut() {
                match key.as_str() {
                    "schema" => upgrade(child),
                    "example" | "examples" | "default" => {}
                    k if k.starts_with("x-") => {}
                    _ => upgrade_schemas(child),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(upgrade_schemas),
        _ => {}
    }
}

/// Rewrites one schema and its subschemas.
fn upgrade(schema: &mut Value) {
    let Value::Object(object) = schema else {
        return;
    };
    nullable(object);
    exclusive(object, "exclusiveMinimum", "minimum");
    exclusive(object, "exclusiveMaximum", "maximum");
    for (key, child) in object.iter_mut() {
        match key.as_str() {
            "properties" | "patternProperties" | "$defs" | "definitions" | "dependentSchemas" => {
                if let Value::Object(map) = child {
                    map.values_mut().for_each(upgrade);
                }
            }
            "allOf" | "anyOf" | "oneOf" | "prefixItems" => {
                if let Value::Array(items) = child {
                    items.iter_mut().for_each(upgrade);
                }
            }
            "items"
            | "additionalItems"
            | "additionalProperties"
            | "not"
            | "contains"
            | "if"
            | "then"
            | "else"
            | "propertyNames"
            | "unevaluatedItems"
            | "unevaluatedProperties" => match child {
                Value::Array(items) => items.iter_mut().for_each(upgrade),
                other => upgrade(other),
            },
            _ => {}
        }
    }
}

fn nullable(object: &mut Map<String, Value>) {
    let Some(nullable) = object.remove("nullable") else {
        return;
    };
    if nullable != Value::Bool(true) {
        return;
    }
    let null = Value::String("null".to_owned());
    match object.get_mut("type") {
        Some(Value::String(t)) => {
            let t = Value::String(std::mem::take(t));
            object.insert("type".to_owned(), Value::Array(vec![t, null.clone()]));
        }
        Some(Value::Array(types)) if !types.contains(&null) => types.push(null.clone()),
        _ => {}
    }
    if let Some(Value::Array(values)) = object.get_mut("enum")
        && !values.contains(&Value::Null)
    {
        values.push(Value::Null);
    }
}

fn exclusive(object: &mut Map<String, Value>, keyword: &str, bound: &str) {
    match object.get(keyword) {
        Some(Value::Bool(true)) => match object.remove(bound) {
            Some(limit) => {
                object.insert(keyword.to_owned(), limit);
            }
            None => {
                object.remove(keyword);
            }
        },
        Some(Value::Bool(false)) => {
            object.remove(keyword);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nullable_and_exclusive_bounds_become_2020_12() {
        let mut op = json!({"parameters": [{"name": "n", "in": "query", "schema": {
            "type": "integer", "nullable": true, "minimum": 1, "exclusiveMinimum": true,
            "maximum": 9, "exclusiveMaximum": false
        }}], "requestBody": {"content": {"application/json": {"schema": {
            "type": "object", "properties": {
                "nullable": {"type": "string", "enum": ["a"], "nullable": true},
                "list": {"type": "array", "items": {"type": "number", "nullable": true}}
            }
        }}}}});
        upgrade_schemas(&mut op);
        assert_eq!(
            op["parameters"][0]["schema"],
            json!({"type": ["integer", "null"], "exclusiveMinimum": 1, "maximum": 9})
        );
        let props = &op["requestBody"]["content"]["application/json"]["schema"]["properties"];
        assert_eq!(
            props["nullable"],
            json!({"type": ["string", "null"], "enum": ["a", null]})
        );
        assert_eq!(props["list"]["items"]["type"], json!(["number", "null"]));
    }
}
