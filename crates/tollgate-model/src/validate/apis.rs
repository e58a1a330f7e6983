//! APIs and routes: names, versions, hosts, base paths, patterns, conditions and rewrites, and
//! the keys each route claims, which [`super::conflicts`] compares across the API versions
//! live in one environment.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use super::conflicts::{Claim, ConflictCheck, HashedKey, MatchKey};
use super::{Envs, Validator, check_host, is_name, is_token_byte};
use crate::{
    Api, ByVersion, Config, FieldPath, HeaderMatch, Marks, PathPattern, QueryMatch, Route,
    VersionRef, same_definition,
};

/// The checks of one API version that depend on nothing else, kept for as long as its
/// definition does not change: only error-free APIs are kept, so a kept API has nothing to
/// report and only its claims (for conflicts across APIs) are needed.
#[derive(Debug, Default)]
pub(super) struct ApiChecks {
    checked: ByVersion<Checked>,
    /// Numbers the validations: entries the last one did not visit are dropped.
    marks: Marks,
    /// The last conflict check: its inputs and what it reported.
    pub(super) conflicts: Option<ConflictCheck>,
    /// The inputs of the last validation, when its APIs had no problem but conflicts.
    last: Option<LastInputs>,
}

/// What the checks of APIs depend on: the definitions (by pointer: consecutive
/// configurations of a store share the unchanged ones), the service names and the
/// environments. An admin write that changes none of them (a consumer, a global policy, a
/// service's targets) is checked without a look at any API, whose definitions are cold in
/// memory by then: at 100 API versions, comparing their names with the cached ones was a
/// fifth of the validation's time.
#[derive(Debug)]
struct LastInputs {
    apis: Vec<Arc<Api>>,
    services: Vec<String>,
    environments: Vec<String>,
    explicit: bool,
}

impl LastInputs {
    fn of(config: &Config, envs: &Envs<'_>) -> Self {
        Self {
            apis: config.apis.clone(),
            services: config.services.iter().map(|s| s.name.clone()).collect(),
            environments: envs.list.iter().map(|e| e.name.clone()).collect(),
            explicit: envs.explicit,
        }
    }

    fn matches(&self, config: &Config, envs: &Envs<'_>) -> bool {
        self.explicit == envs.explicit
            && self.apis.len() == config.apis.len()
            && self
                .apis
                .iter()
                .zip(&config.apis)
                .all(|(a, b)| Arc::ptr_eq(a, b))
            && self.services.len() == config.services.len()
            && self
                .services
                .iter()
                .zip(&config.services)
                .all(|(a, b)| *a == b.name)
            && self.environments.len() == envs.list.len()
            && self
                .environments
                .iter()
                .zip(envs.list)
                .all(|(a, b)| *a == b.name)
    }
}

/// A definition checked without problems, its routes' claims, and the services its routes
/// use (each once).
#[derive(Debug)]
struct Checked {
    api: Arc<Api>,
    claims: Arc<Vec<Claim>>,
    services: Vec<String>,
    /// The validation that last used it.
    pass: u64,
}

pub(super) fn route_path(api: usize, route: usize) -> FieldPath {
    FieldPath::root()
        .key("apis")
        .index(api)
        .key("routes")
        .index(route)
}

impl Validator {
    pub(super) fn apis(&mut self, config: &Config, envs: &Envs<'_>, cache: &mut ApiChecks) {
        if let Some(last) = &cache.last
            && last.matches(config, envs)
            && let Some(conflicts) = &cache.conflicts
        {
            self.errors.extend(conflicts.reported.iter().cloned());
            return;
        }
        cache.last = None;
        let errors_before = self.errors.len();
        // Built on every admin write, looked up once per API version: a fast hash and no
        // growing.
        let mut services: foldhash::HashSet<&str> =
            HashSet::with_capacity_and_hasher(config.services.len(), Default::default());
        services.extend(config.services.iter().map(|s| s.name.as_str()));
        let root = FieldPath::root().key("apis");
        let mut versions: foldhash::HashMap<(&str, &str), usize> =
            HashMap::with_capacity_and_hasher(config.apis.len(), Default::default());
        let pass = cache.marks.start();
        let mut claims: Vec<(usize, Arc<Vec<Claim>>)> = Vec::with_capacity(config.apis.len());
        for (i, api) in config.apis.iter().enumerate() {
            // Comparing a definition with the one checked before walks all its routes.
            tollgate_pace::check();
            let key = VersionRef(&api.name, &api.version);
            // An entry already used in this validation belongs to a duplicate (reported).
            let reused = cache
                .checked
                .get_mut(&key)
                .filter(|checked| checked.pass != pass && same_definition(&checked.api, api));
            // Checks across APIs (unique name and version, services) are made every time; the
            // others only for a definition not checked before.
            let before = self.errors.len();
            let mut shared = 0;
            if reused.is_none() {
                self.name(&root.index(i).key("name"), &api.name);
                if !is_name(&api.version) {
                    self.err(
                        root.index(i).key("version"),
                        format!(
                            "{:?} is not a valid version (1-128 of letters, digits, '-', '_', '.')",
                            api.version
                        ),
                    );
                }
            }
            if let Some(first) = versions.insert((api.name.as_str(), api.version.as_str()), i) {
                shared += 1;
                self.err(
                    root.index(i).key("name"),
                    format!(
                        "duplicate API {:?} version {:?} (first defined at apis[{first}]); name and version together are unique",
                        api.name, api.version
                    ),
                );
            }
            if let Some(checked) = reused {
                checked.pass = pass;
                // The next configuration shares this one's definition when it is unchanged.
                checked.api = api.clone();
                // Routes are looked at only when one of their services is gone.
                if checked
                    .services
                    .iter()
                    .any(|s| !services.contains(s.as_str()))
                {
                    for (j, route) in api.routes.iter().enumerate() {
                        tollgate_pace::point();
                        if !services.contains(route.service.as_str()) {
                            self.err(
                                route_path(i, j).key("service"),
                                format!("no service named {:?}", route.service),
                            );
                        }
                    }
                }
                claims.push((i, checked.claims.clone()));
                continue;
            }
            let at = root.index(i);
            for (h, host) in api.hosts.iter().enumerate() {
                if let Err(reason) = check_host(host) {
                    self.err(at.key("hosts").index(h), reason);
                }
            }
            if let Some(base) = &api.base_path
                && !matches!(PathPattern::parse(base), Ok(PathPattern::Prefix(_)))
            {
                self.err(
                    at.key("base_path"),
                    format!("base path {base:?} must be a plain path such as /v1"),
                );
            }
            let mut route_names = HashMap::new();
            let mut api_claims = Vec::with_capacity(api.routes.len());
            for (j, route) in api.routes.iter().enumerate() {
                tollgate_pace::point();
                let rat = at.key("routes").index(j);
                self.name(&rat.key("name"), &route.name);
                if let Some(first) = route_names.insert(route.name.as_str(), j) {
                    self.err(
                        rat.key("name"),
                        format!(
                            "duplicate route name {:?} in API {:?} (first defined at routes[{first}])",
                            route.name, api.name
                        ),
                    );
                }
                if !services.contains(route.service.as_str()) {
                    shared += 1;
                    self.err(
                        rat.key("service"),
                        format!("no service named {:?}", route.service),
                    );
                }
                let (keys, methods) = self.route(api, route, &rat);
                api_claims.push(Claim {
                    route: j,
                    keys,
                    methods,
                });
            }
            let api_claims = Arc::new(api_claims);
            claims.push((i, api_claims.clone()));
            if self.errors.len() - before == shared {
                let mut used: Vec<String> = Vec::new();
                for route in &api.routes {
                    if !used.contains(&route.service) {
                        used.push(route.service.clone());
                    }
                }
                cache.checked.insert(
                    key.to_key(),
                    Checked {
                        api: api.clone(),
                        claims: api_claims,
                        services: used,
                        pass,
                    },
                );
            }
        }
        cache.checked.retain(|_, checked| checked.pass == pass);
        let clean = self.errors.len() == errors_before;
        self.conflicts(config, envs, claims, cache);
        if clean {
            cache.last = Some(LastInputs::of(config, envs));
        }
    }

    /// Checks one route; returns the keys it claims and its (upper-cased) methods.
    fn route(
        &mut self,
        api: &Api,
        route: &Route,
        at: &FieldPath,
    ) -> (Vec<HashedKey>, BTreeSet<String>) {
        if route.paths.is_empty() {
            self.err(at.key("paths"), "a route needs at least one path");
        }
        let mut methods = BTreeSet::new();
        for (m, method) in route.methods.iter().enumerate() {
            if method.is_empty() || !method.bytes().all(is_token_byte) {
                self.err(
                    at.key("methods").index(m),
                    format!("{method:?} is not an HTTP method"),
                );
            } else {
                methods.insert(method.to_ascii_uppercase());
            }
        }
        for (h, host) in route.hosts.iter().enumerate() {
            if let Err(reason) = check_host(host) {
                self.err(at.key("hosts").index(h), reason);
            }
        }
        for (h, m) in route.headers.iter().enumerate() {
            self.condition(
                &at.key("headers").index(h),
                &m.name,
                [m.value.is_some(), m.regex.is_some(), m.present.is_some()],
                m.regex.as_deref(),
            );
            if !m.name.bytes().all(is_token_byte) || m.name.is_empty() {
                self.err(
                    at.key("headers").index(h).key("name"),
                    format!("{:?} is not a header name", m.name),
                );
            }
        }
        for (q, m) in route.query.iter().enumerate() {
            self.condition(
                &at.key("query").index(q),
                &m.name,
                [m.value.is_some(), m.regex.is_some(), m.present.is_some()],
                m.regex.as_deref(),
            );
        }
        let mut patterns = Vec::new();
        for (p, text) in route.paths.iter().enumerate() {
            match PathPattern::parse(text) {
                Ok(pattern) => {
                    let pattern = match &api.base_path {
                        Some(base) => pattern.with_base(base),
                        None => pattern,
                    };
                    patterns.push(pattern);
                }
                Err(e) => self.err(at.key("paths").index(p), e.to_string()),
            }
        }
        if let Some(rewrite) = &route.rewrite {
            let set = [
                rewrite.strip_prefix,
                rewrite.replace_prefix.is_some(),
                rewrite.template.is_some(),
            ]
            .iter()
            .filter(|x| **x)
            .count();
            if set != 1 {
                self.err(
                    at.key("rewrite"),
                    "set exactly one of `strip_prefix`, `replace_prefix`, `template`",
                );
            }
            if let Some(template) = &rewrite.template {
                self.rewrite_template(at, template, &patterns);
            }
            if let Some(prefix) = &rewrite.replace_prefix
                && !prefix.starts_with('/')
            {
                self.err(
                    at.key("rewrite").key("replace_prefix"),
                    "must start with '/'",
                );
            }
        }
        let hosts: Vec<String> = if !route.hosts.is_empty() {
            route.hosts.iter().map(|h| h.to_ascii_lowercase()).collect()
        } else if !api.hosts.is_empty() {
            api.hosts.iter().map(|h| h.to_ascii_lowercase()).collect()
        } else {
            vec!["*".to_owned()]
        };
        let conditions = conditions_key(&route.headers, &route.query);
        let mut keys = Vec::new();
        for host in &hosts {
            for pattern in &patterns {
                let key = MatchKey {
                    host: host.clone(),
                    path: canonical(pattern),
                    conditions: conditions.clone(),
                };
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
        (keys.into_iter().map(HashedKey::new).collect(), methods)
    }

    fn rewrite_template(&mut self, at: &FieldPath, template: &str, patterns: &[PathPattern]) {
        let path = at.key("rewrite").key("template");
        if !template.starts_with('/') {
            self.err(path.clone(), "must start with '/'");
        }
        if template.contains(['?', '#']) {
            self.err(
                path.clone(),
                "a path template cannot contain '?' or '#' (the request's query is kept as it is)",
            );
        }
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else {
                self.err(path.clone(), "unclosed '{'");
                return;
            };
            let name = &rest[open + 1..open + close];
            for pattern in patterns {
                if !pattern.param_names().iter().any(|n| n == name) {
                    self.err(
                        path.clone(),
                        format!("parameter {{{name}}} is not captured by path {pattern}"),
                    );
                }
            }
            rest = &rest[open + close + 1..];
        }
    }

    fn condition(&mut self, at: &FieldPath, name: &str, set: [bool; 3], regex: Option<&str>) {
        if name.is_empty() {
            self.err(at.key("name"), "must not be empty");
        }
        if set.iter().filter(|x| **x).count() != 1 {
            self.err(at.clone(), "set exactly one of `value`, `regex`, `present`");
        }
        if let Some(re) = regex
            && let Err(e) = regex::Regex::new(re)
        {
            self.err(at.key("regex"), format!("invalid regular expression: {e}"));
        }
    }
}

/// A pattern's text with parameter names erased: `/users/{id}` and `/users/{uid}` match the
/// same requests.
fn canonical(pattern: &PathPattern) -> String {
    match pattern {
        PathPattern::Template(segments) => {
            let mut out = String::new();
            for s in segments {
                match s {
                    crate::Segment::Static(t) => {
                        out.push('/');
                        out.push_str(t);
                    }
                    crate::Segment::Param(_) => out.push_str("/{}"),
                    crate::Segment::CatchAll(_) => out.push_str("/{*}"),
                }
            }
            if out.is_empty() {
                out.push('/');
            }
            out
        }
        other => other.to_string(),
    }
}

fn conditions_key(headers: &[HeaderMatch], query: &[QueryMatch]) -> Vec<String> {
    let mut out: Vec<String> = headers
        .iter()
        .map(|h| {
            format!(
                "h:{}:{:?}:{:?}:{:?}",
                h.name.to_ascii_lowercase(),
                h.value,
                h.regex,
                h.present
            )
        })
        .chain(
            query
                .iter()
                .map(|q| format!("q:{}:{:?}:{:?}:{:?}", q.name, q.value, q.regex, q.present)),
        )
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{BASE, errors, valid};
    use crate::{Format, parse_config};

    #[test]
    fn dangling_service_reference() {
        let e = errors(&format!(
            "{BASE}apis:\n  - name: a\n    routes:\n      - name: r\n        paths: [/x]\n        service: users\n"
        ));
        assert!(
            e.contains("apis[0].routes[0].service: no service named \"users\""),
            "{e}"
        );
        assert!(e.contains("t.yaml:9:"), "{e}");
    }

    #[test]
    fn identical_routes_conflict_but_different_methods_do_not() {
        let yaml = format!(
            "{BASE}apis:\n  - name: a\n    routes:\n      - {{name: r1, paths: [/x], service: s, methods: [GET]}}\n      - {{name: r2, paths: [/x/], service: s, methods: [{{M}}]}}\n"
        );
        let e = errors(&yaml.replace("{M}", "GET"));
        assert!(e.contains("conflicts with apis[0].routes[0]"), "{e}");
        assert!(!e.contains("in environment"), "{e}");
        assert!(parse_config(&yaml.replace("{M}", "POST"), Format::Yaml, "t").is_ok());
    }

    #[test]
    fn templates_differing_only_in_parameter_names_conflict() {
        let e = errors(&format!(
            "{BASE}apis:\n  - name: a\n    routes:\n      - {{name: r1, paths: ['/u/{{id}}'], service: s}}\n      - {{name: r2, paths: ['/u/{{uid}}'], service: s}}\n"
        ));
        assert!(e.contains("conflicts with apis[0].routes[0]"), "{e}");
    }

    #[test]
    fn bad_rewrite_template() {
        let e = errors(&format!(
            "{BASE}apis:\n  - name: a\n    routes:\n      - name: r\n        paths: ['/u/{{id}}']\n        service: s\n        rewrite: {{template: '/v/{{name}}'}}\n"
        ));
        assert!(e.contains("parameter {name} is not captured"), "{e}");
    }

    const ENVS: &str = "environments:\n  - {name: prod, hosts: [api.test]}\n  - {name: test}\n";

    fn api(name: &str, version: &str, publish: &str, path: &str) -> String {
        format!(
            "  - name: {name}\n    version: '{version}'\n{publish}    routes:\n      - {{name: r, paths: [{path}], service: s}}\n"
        )
    }

    #[test]
    fn name_and_version_together_are_unique() {
        let e = errors(&format!(
            "{BASE}{ENVS}apis:\n{}{}",
            api("a", "1", "    publish: [prod]\n", "/x"),
            api("a", "1", "    publish: [test]\n", "/y"),
        ));
        assert!(
            e.contains(
                "apis[1].name: duplicate API \"a\" version \"1\" (first defined at apis[0])"
            ),
            "{e}"
        );
        let e = errors(&format!("{BASE}apis:\n{}", api("a", "v 2", "", "/x")));
        assert!(
            e.contains("apis[0].version: \"v 2\" is not a valid version"),
            "{e}"
        );
    }

    #[test]
    fn routes_conflict_only_within_one_environment() {
        // Same path, different APIs, live in different environments: fine.
        valid(&format!(
            "{BASE}{ENVS}apis:\n{}{}",
            api("a", "1", "    publish: [prod]\n", "/x"),
            api("b", "1", "    publish: [test]\n", "/x"),
        ));
        // Both live in test.
        let e = errors(&format!(
            "{BASE}{ENVS}apis:\n{}{}",
            api("a", "1", "", "/x"),
            api("b", "1", "    publish: [test]\n", "/x"),
        ));
        assert!(
            e.contains("apis[1].routes[0]: conflicts with apis[0].routes[0]: both match host * and path /x with the same conditions in environment \"test\""),
            "{e}"
        );
        assert_eq!(e.matches("conflicts with").count(), 1, "{e}");
    }

    #[test]
    fn drafts_are_checked_for_their_own_conflicts_only() {
        valid(&format!(
            "{BASE}{ENVS}apis:\n{}{}",
            api("a", "1", "", "/x"),
            api("a", "2", "    publish: []\n", "/x"),
        ));
        let e = errors(&format!(
            "{BASE}apis:\n  - name: d\n    publish: []\n    routes:\n      - {{name: r1, paths: [/x], service: s}}\n      - {{name: r2, paths: [/x], service: s}}\n"
        ));
        assert!(
            e.contains("apis[0].routes[1]: conflicts with apis[0].routes[0]"),
            "{e}"
        );
    }
}
