//! Import: an OpenAPI 3.0/3.1 document to an [`Api`] with one route per operation.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::{Map, Value};
use tollgate_model::{Api, HostPolicy, PathPattern, PolicySpec, Route, Segment};

use crate::document;
use crate::names::{self, Unique};
use crate::operation::{self, METHODS, PathItem, ReadOperation};
use crate::paths::pattern_for;
use crate::resolve::Resolver;
use crate::security::policies_for;
use crate::source::{self, Version};
use crate::{ImportError, Pointer, RenderError, Warning};

/// How to import a document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// The service every route forwards to (required; it must exist in the configuration the
    /// API is added to).
    pub service: String,
    /// API name; default: the document's `info.title` made into a name (`Swagger Petstore` →
    /// `swagger-petstore`).
    pub name: Option<String>,
    /// API version; default: `info.version`.
    pub version: Option<String>,
    /// API base path; default: the path of the first server URL (`https://host/v1` → `/v1`).
    /// `/` or empty: none.
    pub base_path: Option<String>,
    /// Turn the document's security requirements into authentication policies (`key-auth`,
    /// `basic-auth`, `jwt`, `hmac-auth`), so the gateway checks credentials. Off by default:
    /// the gateway then passes credentials through and the service checks them.
    pub auth_policies: bool,
}

impl ImportOptions {
    /// Options with the required service and every default.
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            ..Self::default()
        }
    }
}

/// The result of an import: the API, and what could not be carried over.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// The API, one route per operation.
    pub api: Api,
    /// Parts of the document left out or changed, for the user to review.
    pub warnings: Vec<Warning>,
}

impl Imported {
    /// The API as a configuration file fragment (`apis:` with one entry), preceded by the
    /// warnings as `#` comments: what `tollgate openapi import` prints.
    pub fn to_config_yaml(&self) -> Result<String, RenderError> {
        #[derive(Serialize)]
        struct Fragment<'a> {
            apis: [&'a Api; 1],
        }
        let mut out = String::new();
        for warning in &self.warnings {
            for (i, line) in warning.to_string().lines().enumerate() {
                out.push_str(if i == 0 { "# warning: " } else { "#   " });
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push_str(&serde_yaml_ng::to_string(&Fragment { apis: [&self.api] })?);
        Ok(out)
    }
}

/// Reads an OpenAPI 3.0.x or 3.1.x document (YAML or JSON, detected) into an API whose routes
/// forward to `options.service`. See docs/openapi.md for the mapping.
pub fn import(text: &str, options: &ImportOptions) -> Result<Imported, ImportError> {
    check_options(options)?;
    let doc = source::parse(text)?;
    let version = source::version(&doc)?;
    let mut importer = Importer {
        doc: &doc,
        version,
        resolver: Resolver::new(&doc, version),
        warnings: Vec::new(),
    };
    let api = importer.api(options)?;
    Ok(Imported {
        api,
        warnings: importer.warnings,
    })
}

fn check_options(options: &ImportOptions) -> Result<(), ImportError> {
    let name_rule = "must be 1-128 letters, digits, '-', '_' or '.'";
    if !names::is_valid(&options.service) {
        return Err(ImportError::Option {
            option: "service",
            message: format!("{:?} {name_rule}", options.service),
        });
    }
    if let Some(name) = &options.name
        && !names::is_valid(name)
    {
        return Err(ImportError::Option {
            option: "name",
            message: format!("{name:?} {name_rule}"),
        });
    }
    if let Some(version) = &options.version
        && version.trim().is_empty()
    {
        return Err(ImportError::Option {
            option: "version",
            message: "must not be empty".to_owned(),
        });
    }
    if let Some(base) = &options.base_path {
        normalize_base_path(base).map_err(|message| ImportError::Option {
            option: "base_path",
            message,
        })?;
    }
    Ok(())
}

struct Importer<'a> {
    doc: &'a Value,
    version: Version,
    resolver: Resolver<'a>,
    warnings: Vec<Warning>,
}

impl<'a> Importer<'a> {
    fn warn(&mut self, at: &Pointer, message: impl Into<String>) {
        self.warnings.push(Warning::new(at, message));
    }

    fn api(&mut self, options: &ImportOptions) -> Result<Api, ImportError> {
        let info_at = Pointer::root().push("info");
        let info = self.doc.get("info");
        let info_text = |key: &str| info.and_then(|i| i.get(key)).and_then(Value::as_str);
        let name = match &options.name {
            Some(name) => name.clone(),
            None => {
                let title = info_text("title").ok_or_else(|| {
                    ImportError::invalid(&info_at.push("title"), "missing (or give the API a name)")
                })?;
                let name = names::slugify_title(title);
                if name.is_empty() {
                    return Err(ImportError::invalid(
                        &info_at.push("title"),
                        format!("{title:?} gives no usable API name; give one"),
                    ));
                }
                name
            }
        };
        let version = match (&options.version, info_text("version")) {
            (Some(v), _) => v.clone(),
            (None, Some(v)) if !v.trim().is_empty() => v.to_owned(),
            (None, _) => {
                return Err(ImportError::invalid(
                    &info_at.push("version"),
                    "missing (or give the API a version)",
                ));
            }
        };
        let base_path = match &options.base_path {
            Some(base) => normalize_base_path(base).map_err(|message| ImportError::Option {
                option: "base_path",
                message,
            })?,
            None => self.server_base_path()?,
        };
        if self.doc.get("webhooks").is_some() {
            self.warn(
                &Pointer::root().push("webhooks"),
                "webhooks are requests the API sends, not routes; not imported",
            );
        }

        let operations = self.operations()?;
        let route_names = route_names(&operations);
        let policies = self.policies(options, &operations)?;
        // An operation's own security stays in its kept operation unless policies enforce it.
        let keep_security: Vec<bool> = policies.iter().map(Vec::is_empty).collect();
        let (api_policies, route_policies) = split_policies(policies);
        let mut tags = self.document_tags();
        let mut routes = Vec::with_capacity(operations.len());
        let each = operations
            .into_iter()
            .zip(route_names)
            .zip(route_policies)
            .zip(keep_security);
        for (((mut read, name), policies), keep_security) in each {
            if keep_security
                && let (Some(own), Value::Object(operation)) =
                    (read.own_security.take(), &mut read.operation)
            {
                operation.insert("security".to_owned(), Value::Array(own));
            }
            for tag in read
                .operation
                .get("tags")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !tags.iter().any(|t| t == tag) {
                    tags.push(tag.to_owned());
                }
            }
            routes.push(Route {
                name,
                paths: vec![read.pattern.to_string()],
                methods: vec![read.method.to_ascii_uppercase()],
                hosts: Vec::new(),
                headers: Vec::new(),
                query: Vec::new(),
                priority: 0,
                service: options.service.clone(),
                rewrite: None,
                host_header: HostPolicy::default(),
                policies,
                operation: Some(read.operation),
            });
        }
        let openapi = document::keep(self.doc, &mut self.resolver)?;
        Ok(Api {
            name,
            version,
            description: info_text("description").map(str::to_owned),
            group: None,
            tags,
            publish: None,
            deprecation: Default::default(),
            hosts: Vec::new(),
            base_path,
            policies: api_policies,
            routes: routes.into(),
            openapi,
        })
    }

    /// Every operation of every path, in path order then [`METHODS`] order; operations that
    /// cannot be routed, or that match what an earlier one matches, are left out with a warning.
    fn operations(&mut self) -> Result<Vec<ReadOperation>, ImportError> {
        let doc = self.doc;
        let paths_at = Pointer::root().push("paths");
        let paths = match doc.get("paths") {
            Some(Value::Object(paths)) => paths,
            Some(_) => return Err(ImportError::invalid(&paths_at, "must be a mapping")),
            None => {
                return Err(ImportError::invalid(
                    &paths_at,
                    "missing: the document has no operations to import",
                ));
            }
        };
        let doc_security = match doc.get("security") {
            Some(Value::Array(list)) => Some(list),
            Some(_) => {
                return Err(ImportError::invalid(
                    &Pointer::root().push("security"),
                    "must be a list of security requirements",
                ));
            }
            None => None,
        };
        let mut out: Vec<ReadOperation> = Vec::new();
        let mut seen: HashSet<(&'static str, String)> = HashSet::new();
        for (path, raw_item) in paths {
            if path.starts_with("x-") {
                continue;
            }
            let at = paths_at.push(path);
            if !path.starts_with('/') {
                return Err(ImportError::invalid(&at, "a path must start with '/'"));
            }
            let (item, item_at) = self.resolver.follow(raw_item, &at)?;
            let Some(item) = item.as_object() else {
                return Err(ImportError::invalid(
                    &item_at,
                    "a path item must be a mapping",
                ));
            };
            let pattern = match pattern_for(path) {
                Ok(pattern) => pattern,
                Err(why) => {
                    self.warn(&at, format!("not imported: {why}"));
                    continue;
                }
            };
            if matches!(pattern, PathPattern::Regex(_)) {
                self.warn(
                    &at,
                    format!(
                        "parameters inside a path segment: routed by the regular expression {pattern}"
                    ),
                );
            }
            if item.contains_key("servers") {
                self.warn(
                    &item_at.push("servers"),
                    "path servers are not kept: requests go through the gateway to the API's service",
                );
            }
            let parameters = match item.get("parameters") {
                Some(raw) => self.resolver.resolve(raw, &item_at.push("parameters"))?,
                None => Value::Array(Vec::new()),
            };
            let path_item = PathItem {
                path,
                pattern: &pattern,
                item,
                at: item_at,
                parameters,
            };
            for method in METHODS.iter().copied() {
                if !item.contains_key(method) {
                    continue;
                }
                let read = operation::read(
                    &mut self.resolver,
                    self.version,
                    doc_security,
                    &path_item,
                    method,
                    &mut self.warnings,
                )?;
                if !seen.insert((method, match_key(&read.pattern))) {
                    self.warn(
                        &read.at,
                        "not imported: an earlier operation matches the same method and path",
                    );
                    continue;
                }
                out.push(read);
            }
        }
        if out.is_empty() {
            return Err(ImportError::invalid(
                &paths_at,
                "the document has no operations to import",
            ));
        }
        Ok(out)
    }

    /// The authentication policies of each operation (all empty unless asked for).
    fn policies(
        &mut self,
        options: &ImportOptions,
        operations: &[ReadOperation],
    ) -> Result<Vec<Vec<PolicySpec>>, ImportError> {
        let secured = operations
            .iter()
            .any(|op| op.security.as_ref().is_some_and(|s| !s.is_empty()));
        if !options.auth_policies {
            if secured {
                self.warn(
                    &Pointer::root().push("components").push("securitySchemes"),
                    "security requirements were not turned into policies: the gateway passes credentials through unchecked (ask for authentication policies to map them)",
                );
            }
            return Ok(vec![Vec::new(); operations.len()]);
        }
        let schemes_at = Pointer::root().push("components").push("securitySchemes");
        let schemes = match schemes_at.get(self.doc) {
            Some(raw) => match self.resolver.resolve(raw, &schemes_at)? {
                Value::Object(map) => map,
                _ => return Err(ImportError::invalid(&schemes_at, "must be a mapping")),
            },
            None => Map::new(),
        };
        let mut out = Vec::with_capacity(operations.len());
        for op in operations {
            let requirements = op.security.as_deref().unwrap_or_default();
            match policies_for(requirements, &schemes) {
                Ok(policies) => out.push(policies),
                Err(why) => {
                    self.warn(
                        &op.at,
                        format!("{why}: the gateway does not check credentials for this route"),
                    );
                    out.push(Vec::new());
                }
            }
        }
        Ok(out)
    }

    /// Names in the document's `tags` list.
    fn document_tags(&self) -> Vec<String> {
        self.doc
            .get("tags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| t.get("name").and_then(Value::as_str))
            .map(str::to_owned)
            .collect()
    }

    /// The path of the first server URL (variables replaced by their defaults), if any.
    fn server_base_path(&mut self) -> Result<Option<String>, ImportError> {
        let at = Pointer::root().push("servers").push(0);
        let Some(server) = at.get(self.doc) else {
            return Ok(None);
        };
        let url_at = at.push("url");
        let Some(url) = server.get("url").and_then(Value::as_str) else {
            return Err(ImportError::invalid(&url_at, "a server needs a `url`"));
        };
        let mut expanded = String::new();
        let mut rest = url;
        while let Some(open) = rest.find('{') {
            let close = rest[open..].find('}').map(|c| open + c).ok_or_else(|| {
                ImportError::invalid(&url_at, format!("unclosed '{{' in {url:?}"))
            })?;
            let variable = &rest[open + 1..close];
            let value = server
                .pointer(&format!("/variables/{variable}/default"))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    ImportError::invalid(
                        &url_at,
                        format!("variable {{{variable}}} has no default in `variables`"),
                    )
                })?;
            expanded.push_str(&rest[..open]);
            expanded.push_str(value);
            rest = &rest[close + 1..];
        }
        expanded.push_str(rest);
        let without_query = expanded
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .to_owned();
        let path = if let Some(i) = without_query.find("://") {
            let after = &without_query[i + 3..];
            after.find('/').map_or("", |j| &after[j..])
        } else if let Some(after) = without_query.strip_prefix("//") {
            after.find('/').map_or("", |j| &after[j..])
        } else if without_query.starts_with('/') || without_query.is_empty() {
            without_query.as_str()
        } else {
            self.warn(
                &url_at,
                format!("{url:?} is relative to where the document is served; no base path taken from it"),
            );
            ""
        };
        normalize_base_path(path).map_err(|why| {
            ImportError::invalid(&url_at, format!("{why} (or set the base path explicitly)"))
        })
    }
}

/// `Some("/v1")` for `/v1/`, `None` for `/` or empty; `Err` for what is not a plain path.
fn normalize_base_path(base: &str) -> Result<Option<String>, String> {
    let trimmed = base.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(None);
    }
    match PathPattern::parse(trimmed) {
        Ok(PathPattern::Prefix(p)) => Ok(Some(p)),
        _ => Err(format!(
            "base path {base:?} must be a plain path such as /v1"
        )),
    }
}

/// What two patterns share when they match the same requests: templates compare without
/// parameter names.
fn match_key(pattern: &PathPattern) -> String {
    match pattern {
        PathPattern::Template(segments) => segments
            .iter()
            .map(|s| match s {
                Segment::Static(t) => format!("/{t}"),
                Segment::Param(_) => "/{}".to_owned(),
                Segment::CatchAll(_) => "/{*}".to_owned(),
            })
            .collect(),
        other => other.to_string(),
    }
}

/// Route names: `operationId`s first (made valid and unique, in order), then `method-path`
/// names for operations without one.
fn route_names(operations: &[ReadOperation]) -> Vec<String> {
    let mut unique = Unique::default();
    let mut out = vec![String::new(); operations.len()];
    for (i, op) in operations.iter().enumerate() {
        if let Some(id) = &op.operation_id {
            let name = names::sanitize(id);
            if !name.is_empty() {
                out[i] = unique.claim(&name);
            }
        }
    }
    for (i, op) in operations.iter().enumerate() {
        if out[i].is_empty() {
            let path = crate::paths::openapi_path(&op.pattern)
                .map(|p| p.path)
                .unwrap_or_default();
            out[i] = unique.claim(&names::operation_slug(op.method, &path));
        }
    }
    out
}

/// Policies shared by every route become the API's; otherwise each route keeps its own.
fn split_policies(per_route: Vec<Vec<PolicySpec>>) -> (Vec<PolicySpec>, Vec<Vec<PolicySpec>>) {
    match per_route.first() {
        Some(first) if !first.is_empty() && per_route.iter().all(|p| p == first) => {
            let shared = first.clone();
            (shared, vec![Vec::new(); per_route.len()])
        }
        _ => (Vec::new(), per_route),
    }
}
