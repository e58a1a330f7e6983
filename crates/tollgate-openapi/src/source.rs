//! Reading the document: YAML or JSON text into one JSON value, and its OpenAPI version.
//!
//! JSON is detected by a leading `{`; anything else is read as YAML. YAML mapping keys that are
//! not strings (`200:` in `responses`) become strings, merge keys (`<<`) are applied and tags
//! are dropped, so the rest of the crate works on plain JSON.

use serde_json::{Map, Number, Value};
use serde_yaml_ng::Value as Yaml;

use crate::{ImportError, Pointer};

/// The OpenAPI minor version of a document; it decides how `$ref` siblings and schemas are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// 3.0.x: Schema Objects are the OpenAPI subset (`nullable`, boolean `exclusiveMinimum`),
    /// keys beside a `$ref` are ignored.
    V30,
    /// 3.1.x: schemas are JSON Schema 2020-12; `summary`/`description` beside a `$ref` apply.
    V31,
}

/// Parses `text` as JSON (when it starts with `{`) or YAML.
pub(crate) fn parse(text: &str) -> Result<Value, ImportError> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('{') {
        return serde_json::from_str(trimmed).map_err(|e| ImportError::Syntax {
            format: "JSON",
            message: strip_location(&e.to_string()),
            line: Some(e.line()),
            column: Some(e.column()),
        });
    }
    let syntax = |e: serde_yaml_ng::Error| ImportError::Syntax {
        format: "YAML",
        message: strip_location(&e.to_string()),
        line: e.location().map(|l| l.line()),
        column: e.location().map(|l| l.column()),
    };
    let mut yaml: Yaml = serde_yaml_ng::from_str(trimmed).map_err(syntax)?;
    yaml.apply_merge().map_err(syntax)?;
    to_json(yaml, &Pointer::root())
}

/// Checks the `openapi` field and returns the version.
pub(crate) fn version(doc: &Value) -> Result<Version, ImportError> {
    let root = Pointer::root();
    let Some(object) = doc.as_object() else {
        return Err(ImportError::invalid(
            &root,
            "an OpenAPI document is a mapping with `openapi`, `info` and `paths`",
        ));
    };
    let at = root.push("openapi");
    match object.get("openapi") {
        Some(Value::String(v)) if v.starts_with("3.0.") || v == "3.0" => Ok(Version::V30),
        Some(Value::String(v)) if v.starts_with("3.1.") || v == "3.1" => Ok(Version::V31),
        Some(Value::String(v)) => Err(ImportError::invalid(
            &at,
            format!("OpenAPI version {v:?} is not supported (3.0.x and 3.1.x are)"),
        )),
        Some(other) => Err(ImportError::invalid(
            &at,
            format!("must be a version string such as \"3.1.0\", not {other}"),
        )),
        None if object.contains_key("swagger") => Err(ImportError::invalid(
            &root.push("swagger"),
            "Swagger 2.0 is not supported: convert the document to OpenAPI 3 first",
        )),
        None => Err(ImportError::invalid(
            &at,
            "missing: not an OpenAPI document (expected e.g. `openapi: 3.1.0`)",
        )),
    }
}

fn to_json(yaml: Yaml, at: &Pointer) -> Result<Value, ImportError> {
    Ok(match yaml {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Number(i.into())
            } else if let Some(u) = n.as_u64() {
                Value::Number(u.into())
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                Value::Number(Number::from_f64(f).ok_or_else(|| {
                    ImportError::invalid(at, format!("{n} is not a number JSON can hold"))
                })?)
            }
        }
        Yaml::String(s) => Value::String(s),
        Yaml::Sequence(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| to_json(item, &at.push(i)))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Mapping(mapping) => {
            let mut out = Map::new();
            for (key, value) in mapping {
                let key = match key {
                    Yaml::String(s) => s,
                    Yaml::Number(n) => n.to_string(),
                    Yaml::Bool(b) => b.to_string(),
                    Yaml::Null => "null".to_owned(),
                    _ => {
                        return Err(ImportError::invalid(
                            at,
                            "mapping keys must be strings, numbers or booleans",
                        ));
                    }
                };
                let value = to_json(value, &at.push(&key))?;
                out.insert(key, value);
            }
            Value::Object(out)
        }
        Yaml::Tagged(tagged) => to_json(tagged.value, at)?,
    })
}

/// serde_json and serde_yaml_ng append " at line X column Y"; the error carries it separately.
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_integer_keys_become_strings() {
        let doc =
            parse("responses:\n  200: {description: ok}\n  default: {description: x}\n").unwrap();
        assert!(doc.pointer("/responses/200/description").is_some());
    }

    #[test]
    fn json_is_detected_and_errors_have_lines() {
        assert_eq!(parse("{\"a\": 1}").unwrap()["a"], 1);
        let e = parse("{\"a\": \n 1,}").unwrap_err();
        assert!(
            matches!(
                e,
                ImportError::Syntax {
                    format: "JSON",
                    line: Some(2),
                    ..
                }
            ),
            "{e}"
        );
        let e = parse("a: [1\nb: 2").unwrap_err();
        assert!(
            matches!(e, ImportError::Syntax { format: "YAML", .. }),
            "{e}"
        );
    }

    #[test]
    fn versions() {
        let v = |text: &str| version(&parse(text).unwrap());
        assert_eq!(v("openapi: 3.0.3").unwrap(), Version::V30);
        assert_eq!(v("openapi: '3.1.0'").unwrap(), Version::V31);
        assert!(
            v("swagger: '2.0'")
                .unwrap_err()
                .to_string()
                .contains("Swagger 2.0")
        );
        assert!(
            v("openapi: 3.2.0")
                .unwrap_err()
                .to_string()
                .contains("/openapi")
        );
        assert!(
            v("info: {}")
                .unwrap_err()
                .to_string()
                .starts_with("/openapi: missing")
        );
    }
}
