//! Export: APIs to one OpenAPI 3.1.0 document.
//!
//! Works from the [`Api`]s alone: info from the API (or group) name and version, paths from the
//! route patterns, each operation from the route's kept `operation` (or a minimal one), security
//! schemes from the authentication policies in force on each route. What cannot be written is
//! listed under `x-tollgate-skipped` at the top of the document.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};
use tollgate_model::{Api, Environment, PathPattern, PolicySpec, Route};

use crate::document;
use crate::names::Unique;
use crate::operation::{METHODS, PATH_EXTENSION};
use crate::paths::{OpenApiPath, capture_name, openapi_path, param_names, rename_params};
use crate::security::Schemes;

/// The OpenAPI version export writes.
pub const OPENAPI_VERSION: &str = "3.1.0";

/// How to export.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportOptions {
    /// Base URLs clients reach the gateway at, e.g. `https://api.example.com`; the APIs' base
    /// path is added when they share one. Empty: the shared base path alone, as a relative
    /// server URL, or no `servers`.
    pub servers: Vec<String>,
    /// `info.title`; default: the API name, or the group name when all APIs share a group.
    pub title: Option<String>,
    /// `info.version`; default: the APIs' version when they share one.
    pub version: Option<String>,
    /// Policies attached globally (the configuration's `policies`): the routes' security is
    /// computed from these, the API's and the route's, the narrower replacing the wider.
    pub policies: Vec<PolicySpec>,
    /// The environment the document describes: operations of an API deprecated there are
    /// marked `deprecated`.
    pub environment: Option<String>,
}

impl ExportOptions {
    /// Options describing `environment`: one `scheme://host` server per exact host bound to it
    /// (wildcard hosts cannot be servers), and its deprecations. `scheme` is `https` or `http`.
    pub fn for_environment(environment: &Environment, scheme: &str) -> Self {
        Self {
            servers: environment
                .hosts
                .iter()
                .filter(|h| !h.starts_with('*'))
                .map(|h| format!("{scheme}://{h}"))
                .collect(),
            environment: Some(environment.name.clone()),
            ..Self::default()
        }
    }
}

/// The APIs a name selects for export: the versions of the API called `name` (only `version`
/// when given), or, when no API has that name, the APIs of the group `name`.
pub fn select_apis<'a>(apis: &'a [Api], name: &str, version: Option<&str>) -> Vec<&'a Api> {
    let version_ok = |api: &Api| version.is_none_or(|v| api.version == v);
    let by_name: Vec<&Api> = apis
        .iter()
        .filter(|a| a.name == name && version_ok(a))
        .collect();
    if !by_name.is_empty() || apis.iter().any(|a| a.name == name) {
        return by_name;
    }
    apis.iter()
        .filter(|a| a.group.as_deref() == Some(name) && version_ok(a))
        .collect()
}

/// An OpenAPI 3.1.0 document describing `apis` as the gateway serves them.
pub fn export(apis: &[&Api], options: &ExportOptions) -> Value {
    let mut doc = Map::new();
    doc.insert("openapi".to_owned(), json!(OPENAPI_VERSION));
    doc.insert("info".to_owned(), info(apis, options));
    if let [only] = apis
        && let Some(docs) = document::external_docs(only)
    {
        doc.insert("externalDocs".to_owned(), docs.clone());
    }

    // One shared base path goes into the server URLs; otherwise into each path.
    let shared_base = match apis.split_first() {
        Some((first, rest)) if rest.iter().all(|a| a.base_path == first.base_path) => {
            Some(first.base_path.clone())
        }
        _ => None,
    };
    let servers: Vec<Value> = match (&shared_base, options.servers.is_empty()) {
        (Some(base), false) => options
            .servers
            .iter()
            .map(|s| json!({"url": join_url(s, base.as_deref())}))
            .collect(),
        (Some(Some(base)), true) => vec![json!({"url": base})],
        (None, false) => options.servers.iter().map(|s| json!({"url": s})).collect(),
        _ => Vec::new(),
    };
    if !servers.is_empty() {
        doc.insert("servers".to_owned(), Value::Array(servers));
    }

    // The kept top-level `security`: written once when the APIs share it, otherwise given to
    // each API's operations that have no security of their own.
    let kept_security = match apis.split_first() {
        Some((first, rest))
            if rest
                .iter()
                .all(|a| document::security(a) == document::security(first)) =>
        {
            if let Some(security) = document::security(first) {
                doc.insert("security".to_owned(), security.clone());
            }
            false
        }
        _ => true,
    };

    let mut writer = Writer {
        options,
        paths: Map::new(),
        schemes: Schemes::with_written(document::security_schemes(apis)),
        operation_ids: Unique::default(),
        taken: HashSet::new(),
        spellings: HashMap::new(),
        tags: Vec::new(),
        skipped: Vec::new(),
    };
    for api in apis {
        for tag in &api.tags {
            writer.tag(tag);
        }
    }
    for api in apis {
        let base = if shared_base.is_some() {
            None
        } else {
            api.base_path.as_deref()
        };
        let inherited = if kept_security {
            document::security(api)
        } else {
            None
        };
        for route in &api.routes {
            writer.route(api, route, base, inherited);
        }
    }
    if !writer.tags.is_empty() {
        let tags = writer
            .tags
            .iter()
            .map(|t| {
                document::tag(apis, t)
                    .cloned()
                    .unwrap_or_else(|| json!({"name": t}))
            })
            .collect();
        doc.insert("tags".to_owned(), Value::Array(tags));
    }
    doc.insert("paths".to_owned(), Value::Object(writer.paths));
    if let Some(schemes) = writer.schemes.into_components() {
        doc.insert(
            "components".to_owned(),
            json!({ "securitySchemes": schemes }),
        );
    }
    if !writer.skipped.is_empty() {
        doc.insert(
            "x-tollgate-skipped".to_owned(),
            Value::Array(writer.skipped),
        );
    }
    Value::Object(doc)
}

fn info(apis: &[&Api], options: &ExportOptions) -> Value {
    let group = match apis.split_first() {
        Some((first, rest)) if rest.iter().all(|a| a.group == first.group) => first.group.clone(),
        _ => None,
    };
    let kept_title = match apis {
        [only] => document::info(only)
            .get("title")
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    };
    let title = options
        .title
        .clone()
        .or(kept_title)
        .unwrap_or_else(|| match (apis, group) {
            ([only], _) => only.name.clone(),
            (_, Some(group)) => group,
            _ => join(apis.iter().map(|a| a.name.as_str())),
        });
    let version = options.version.clone().unwrap_or_else(|| match apis {
        [first, rest @ ..] if rest.iter().all(|a| a.version == first.version) => {
            first.version.clone()
        }
        _ => join(apis.iter().map(|a| format!("{} {}", a.name, a.version))),
    });
    let mut info = match apis {
        [only] => document::info(only),
        _ => Map::new(),
    };
    info.remove("x-tollgate-apis");
    info.remove("description");
    info.insert("title".to_owned(), json!(title));
    info.insert("version".to_owned(), json!(version));
    if let [only] = apis
        && let Some(description) = &only.description
    {
        info.insert("description".to_owned(), json!(description));
    }
    let mut info = Value::Object(info);
    if apis.len() > 1 {
        info["x-tollgate-apis"] = apis
            .iter()
            .map(|a| json!({"name": a.name, "version": a.version}))
            .collect();
    }
    info
}

struct Writer<'o> {
    options: &'o ExportOptions,
    paths: Map<String, Value>,
    schemes: Schemes,
    operation_ids: Unique,
    /// `(path, method)` already written.
    taken: HashSet<(String, &'static str)>,
    /// The first spelling of each path with parameter names erased: OpenAPI forbids two paths
    /// that differ only in parameter names.
    spellings: HashMap<String, String>,
    tags: Vec<String>,
    skipped: Vec<Value>,
}

impl Writer<'_> {
    fn tag(&mut self, tag: &str) {
        if !self.tags.iter().any(|t| t == tag) {
            self.tags.push(tag.to_owned());
        }
    }

    fn skip(&mut self, api: &Api, route: &Route, detail: Option<(&str, &str)>, reason: &str) {
        let mut note = json!({"api": api.name, "version": api.version, "route": route.name});
        if let Some((path, method)) = detail {
            note["path"] = json!(path);
            if !method.is_empty() {
                note["method"] = json!(method);
            }
        }
        note["reason"] = json!(reason);
        self.skipped.push(note);
    }

    /// Writes the operations of one route; `inherited` is the security of its API's document
    /// for operations that have none of their own, when not written at the top.
    fn route(&mut self, api: &Api, route: &Route, base: Option<&str>, inherited: Option<&Value>) {
        let policies = effective_policies(&self.options.policies, &api.policies, &route.policies);
        let security = self.schemes.requirements(&policies);
        let deprecated = self
            .options
            .environment
            .as_ref()
            .is_some_and(|env| api.deprecation.contains_key(env));
        let methods: Vec<String> = if route.methods.is_empty() {
            METHODS.iter().map(|m| (*m).to_owned()).collect()
        } else {
            route
                .methods
                .iter()
                .map(|m| m.to_ascii_lowercase())
                .collect()
        };
        let combinations = route.paths.len() * methods.len();
        for (j, text) in route.paths.iter().enumerate() {
            let pattern = match PathPattern::parse(text) {
                Ok(p) => base.map_or_else(|| p.clone(), |b| p.with_base(b)),
                Err(e) => {
                    self.skip(api, route, Some((text, "")), &format!("invalid path: {e}"));
                    continue;
                }
            };
            let Some(target) = openapi_path(&pattern) else {
                self.skip(
                    api,
                    route,
                    Some((text, "")),
                    "a regular expression has no OpenAPI path",
                );
                continue;
            };
            let spelled = rename_params(&target.path, |n| original_name(route, n));
            let path = self
                .spellings
                .entry(rename_params(&spelled, |_| String::new()))
                .or_insert_with(|| spelled.clone())
                .clone();
            // Parameter names of this route's path -> those of the path already written.
            let renames: Vec<(String, String)> = param_names(&spelled)
                .into_iter()
                .zip(param_names(&path))
                .filter(|(from, to)| from != to)
                .collect();
            for method in &methods {
                let Some(method) = METHODS.iter().copied().find(|m| m == method) else {
                    self.skip(
                        api,
                        route,
                        Some((text, method)),
                        "OpenAPI 3.1 has no such operation method",
                    );
                    continue;
                };
                if !self.taken.insert((path.clone(), method)) {
                    self.skip(
                        api,
                        route,
                        Some((text, method)),
                        "an earlier route has the same method and path",
                    );
                    continue;
                }
                let id = if combinations == 1 {
                    route.name.clone()
                } else if route.paths.len() == 1 {
                    format!("{}-{method}", route.name)
                } else {
                    format!("{}-{method}-{}", route.name, j + 1)
                };
                let mut operation =
                    self.operation(route, &pattern, &target, id, &security, deprecated);
                if security.is_none()
                    && let (Some(inherited), Value::Object(op)) = (inherited, &mut operation)
                {
                    op.entry("security").or_insert_with(|| inherited.clone());
                }
                rename_path_params(&mut operation, &renames);
                let item = self
                    .paths
                    .entry(path.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(item) = item {
                    item.insert(method.to_owned(), operation);
                }
            }
        }
    }

    /// The operation object for one method and path of a route.
    fn operation(
        &mut self,
        route: &Route,
        pattern: &PathPattern,
        target: &OpenApiPath,
        id: String,
        security: &Option<Vec<Value>>,
        deprecated: bool,
    ) -> Value {
        let mut op = match &route.operation {
            Some(Value::Object(kept)) => kept.clone(),
            _ => {
                let mut op = Map::new();
                op.insert("operationId".to_owned(), json!(id));
                if !target.faithful {
                    op.insert(
                        "description".to_owned(),
                        json!(format!(
                            "Routed by the gateway pattern `{pattern}`, which also matches paths this one does not describe."
                        )),
                    );
                }
                op.insert("responses".to_owned(), default_responses());
                op
            }
        };
        op.remove(PATH_EXTENSION);
        // An empty Responses Object is invalid; 3.1 allows leaving it out, not leaving it empty.
        if op
            .get("responses")
            .is_some_and(|r| r.as_object().is_some_and(Map::is_empty))
        {
            op.insert("responses".to_owned(), default_responses());
        }
        if let Some(Value::String(id)) = op.get("operationId") {
            let unique = self.operation_ids.claim(id);
            op.insert("operationId".to_owned(), json!(unique));
        }
        declare_path_params(&mut op, route, target);
        if !target.faithful {
            op.insert(PATH_EXTENSION.to_owned(), json!(pattern.to_string()));
        }
        if deprecated {
            op.insert("deprecated".to_owned(), json!(true));
        }
        if let Some(requirements) = security {
            op.insert("security".to_owned(), Value::Array(requirements.clone()));
        }
        let tags: Vec<String> = op
            .get("tags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        for tag in &tags {
            self.tag(tag);
        }
        Value::Object(op)
    }
}

/// Renames `in: path` parameters.
fn rename_path_params(op: &mut Value, renames: &[(String, String)]) {
    if renames.is_empty() {
        return;
    }
    let Some(Value::Array(parameters)) = op.get_mut("parameters") else {
        return;
    };
    for p in parameters.iter_mut() {
        if p.get("in").and_then(Value::as_str) != Some("path") {
            continue;
        }
        let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
        if let Some((_, to)) = renames.iter().find(|(from, _)| from == name) {
            p["name"] = json!(to);
        }
    }
}

fn default_responses() -> Value {
    json!({"default": {"description": "The service's response."}})
}

/// Adds a path parameter for each `{name}` of the path that the operation does not declare.
fn declare_path_params(op: &mut Map<String, Value>, route: &Route, target: &OpenApiPath) {
    let declared: Vec<String> = path_params(op).map(str::to_owned).collect();
    let mut missing = Vec::new();
    for (name, catch_all) in &target.params {
        let name = original_name(route, name);
        if declared.contains(&name) {
            continue;
        }
        let mut param =
            json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}});
        if *catch_all {
            param["description"] = json!("The rest of the path; may contain '/'.");
        }
        missing.push(param);
    }
    if missing.is_empty() {
        return;
    }
    match op.get_mut("parameters") {
        Some(Value::Array(list)) => list.extend(missing),
        _ => {
            op.insert("parameters".to_owned(), Value::Array(missing));
        }
    }
}

/// Names of the operation's `in: path` parameters.
fn path_params(op: &Map<String, Value>) -> impl Iterator<Item = &str> {
    op.get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|p| p.get("in").and_then(Value::as_str) == Some("path"))
        .filter_map(|p| p.get("name").and_then(Value::as_str))
}

/// The OpenAPI name of the parameter a pattern captures as `captured`: the kept operation's
/// path parameter with that capture name, or the captured name itself.
fn original_name(route: &Route, captured: &str) -> String {
    match &route.operation {
        Some(Value::Object(op)) => path_params(op)
            .find(|n| capture_name(n) == captured)
            .unwrap_or(captured)
            .to_owned(),
        _ => captured.to_owned(),
    }
}

/// Global, API and route policies merged (the narrower replacing the same plugin from a wider
/// scope), the disabled ones dropped.
fn effective_policies<'a>(
    global: &'a [PolicySpec],
    api: &'a [PolicySpec],
    route: &'a [PolicySpec],
) -> Vec<&'a PolicySpec> {
    let mut out: Vec<&PolicySpec> = Vec::new();
    for spec in global.iter().chain(api).chain(route) {
        match out.iter_mut().find(|s| s.name == spec.name) {
            Some(slot) => *slot = spec,
            None => out.push(spec),
        }
    }
    out.retain(|s| s.enabled);
    out
}

fn join_url(server: &str, base: Option<&str>) -> String {
    match base {
        Some(base) => format!("{}{base}", server.trim_end_matches('/')),
        None => server.to_owned(),
    }
}

fn join<S: AsRef<str>>(items: impl Iterator<Item = S>) -> String {
    items
        .map(|s| s.as_ref().to_owned())
        .collect::<Vec<_>>()
        .join(", ")
}
