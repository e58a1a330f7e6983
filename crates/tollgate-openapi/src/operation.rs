//! One OpenAPI operation read into what a route keeps: its pattern, the operation object with
//! references inlined and path-level parameters merged, and its security requirements.

use serde_json::{Map, Value};
use tollgate_model::PathPattern;

use crate::paths::{self, openapi_path, with_capture_names};
use crate::resolve::Resolver;
use crate::schema30::upgrade_schemas;
use crate::source::Version;
use crate::{ImportError, Pointer, Warning};

/// The HTTP methods an OpenAPI 3.0/3.1 Path Item can hold, in the order routes are written.
pub(crate) const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Extension in an operation carrying the route pattern when the OpenAPI path alone does not say
/// it (a prefix route, a catch-all). Written by export, read (and removed) by import.
pub(crate) const PATH_EXTENSION: &str = "x-tollgate-path";

/// An operation read from the document.
#[derive(Debug)]
pub(crate) struct ReadOperation {
    /// Where it is: `/paths/<path>/<method>`.
    pub(crate) at: Pointer,
    /// Lowercase method.
    pub(crate) method: &'static str,
    /// The route pattern.
    pub(crate) pattern: PathPattern,
    /// `operationId`, as written.
    pub(crate) operation_id: Option<String>,
    /// The kept operation object.
    pub(crate) operation: Value,
    /// The Security Requirement list in force (the operation's, else the document's), if any.
    pub(crate) security: Option<Vec<Value>>,
    /// The operation's own `security`, as written (taken out of `operation`): put back when
    /// it does not become policies.
    pub(crate) own_security: Option<Vec<Value>>,
}

/// A Path Item being read.
#[derive(Debug)]
pub(crate) struct PathItem<'a> {
    /// The OpenAPI path.
    pub(crate) path: &'a str,
    /// Its route pattern.
    pub(crate) pattern: &'a PathPattern,
    /// The Path Item Object, its own `$ref` followed.
    pub(crate) item: &'a Map<String, Value>,
    /// Where the Path Item is.
    pub(crate) at: Pointer,
    /// Its `parameters`, references inlined.
    pub(crate) parameters: Value,
}

/// Reads the operation `method` of a Path Item; `doc_security` is the document's `security`.
pub(crate) fn read(
    resolver: &mut Resolver<'_>,
    version: Version,
    doc_security: Option<&Vec<Value>>,
    item: &PathItem<'_>,
    method: &'static str,
    warnings: &mut Vec<Warning>,
) -> Result<ReadOperation, ImportError> {
    let at = &item.at.push(method);
    let path = item.path;
    let raw = item.item.get(method).unwrap_or(&Value::Null);
    if !raw.is_object() {
        return Err(ImportError::invalid(at, "an operation must be a mapping"));
    }
    let Value::Object(mut operation) = resolver.resolve(raw, at)? else {
        return Err(ImportError::invalid(at, "an operation must be a mapping"));
    };
    let parameters = merge_parameters(
        &item.parameters,
        &item.at.push("parameters"),
        operation.get("parameters"),
        &at.push("parameters"),
    )?;
    if !parameters.is_empty() {
        operation.insert("parameters".to_owned(), Value::Array(parameters));
    }
    check_path_parameters(path, &operation, at, warnings);

    let pattern = match operation.remove(PATH_EXTENSION) {
        Some(Value::String(text)) => match PathPattern::parse(&text) {
            Ok(p) if openapi_path(&p).map(|o| o.path) == Some(with_capture_names(path)) => p,
            _ => {
                warnings.push(Warning::new(
                    &at.push(PATH_EXTENSION),
                    format!("{text:?} is not a route pattern for {path:?}; ignored"),
                ));
                item.pattern.clone()
            }
        },
        Some(_) => {
            warnings.push(Warning::new(
                &at.push(PATH_EXTENSION),
                "must be a string; ignored",
            ));
            item.pattern.clone()
        }
        None => item.pattern.clone(),
    };

    if operation.remove("servers").is_some() {
        warnings.push(Warning::new(
            &at.push("servers"),
            "operation servers are not kept: requests go through the gateway to the API's service",
        ));
    }
    let own_security = match operation.remove("security") {
        Some(Value::Array(list)) => Some(list),
        Some(_) => {
            return Err(ImportError::invalid(
                &at.push("security"),
                "must be a list of security requirements",
            ));
        }
        None => None,
    };
    let security = own_security.clone().or_else(|| doc_security.cloned());
    let operation_id = match operation.get("operationId") {
        Some(Value::String(id)) => Some(id.clone()),
        Some(_) => {
            return Err(ImportError::invalid(
                &at.push("operationId"),
                "must be a string",
            ));
        }
        None => None,
    };
    let mut operation = Value::Object(operation);
    if version == Version::V30 {
        upgrade_schemas(&mut operation);
    }
    Ok(ReadOperation {
        at: at.clone(),
        method,
        pattern,
        operation_id,
        operation,
        security,
        own_security,
    })
}

/// Path-level parameters not overridden by the operation (same `name` and `in`), then the
/// operation's own.
fn merge_parameters(
    shared: &Value,
    shared_at: &Pointer,
    own: Option<&Value>,
    own_at: &Pointer,
) -> Result<Vec<Value>, ImportError> {
    let shared = parameter_list(Some(shared), shared_at)?;
    let own = parameter_list(own, own_at)?;
    let mut out: Vec<Value> = shared
        .iter()
        .filter(|(key, _)| !own.iter().any(|(k, _)| k == key))
        .map(|(_, p)| p.clone())
        .collect();
    out.extend(own.into_iter().map(|(_, p)| p));
    Ok(out)
}

/// A parameter's identity: `name` and `in`.
type ParameterKey = (String, String);

/// Parameters with their identity, checked.
fn parameter_list(
    list: Option<&Value>,
    at: &Pointer,
) -> Result<Vec<(ParameterKey, Value)>, ImportError> {
    let items = match list {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(ImportError::invalid(at, "parameters must be a list")),
    };
    let mut out: Vec<(ParameterKey, Value)> = Vec::new();
    for (i, p) in items.iter().enumerate() {
        let at = at.push(i);
        let name = p.get("name").and_then(Value::as_str);
        let location = p.get("in").and_then(Value::as_str);
        let (Some(name), Some(location)) = (name, location) else {
            return Err(ImportError::invalid(
                &at,
                "a parameter needs a `name` and `in` (query, header, path or cookie)",
            ));
        };
        if !matches!(location, "query" | "header" | "path" | "cookie") {
            return Err(ImportError::invalid(
                &at.push("in"),
                format!("{location:?} is not query, header, path or cookie"),
            ));
        }
        let key = (name.to_owned(), location.to_owned());
        if out.iter().any(|(k, _)| *k == key) {
            return Err(ImportError::invalid(
                &at,
                format!("parameter {name:?} in {location} is listed twice"),
            ));
        }
        out.push((key, p.clone()));
    }
    Ok(out)
}

/// Warns about `{name}`s in the path with no `in: path` parameter.
fn check_path_parameters(
    path: &str,
    operation: &Map<String, Value>,
    at: &Pointer,
    warnings: &mut Vec<Warning>,
) {
    let declared: Vec<&str> = operation
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|p| p.get("in").and_then(Value::as_str) == Some("path"))
        .filter_map(|p| p.get("name").and_then(Value::as_str))
        .collect();
    for name in paths::param_names(path) {
        if !declared.contains(&name.as_str()) {
            warnings.push(Warning::new(
                at,
                format!("path parameter {{{name}}} is not declared in `parameters`"),
            ));
        }
    }
}
