//! Validation that needs no plugin knowledge: names, references, patterns, conflicts.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::{
    Api, Config, Diagnostic, FieldPath, HeaderMatch, PathPattern, QueryMatch, Route, Service,
};

/// Checks a parsed configuration; returns every problem found (empty list never returned).
pub fn validate(config: &Config) -> Result<(), Vec<Diagnostic>> {
    let mut v = Validator::default();
    v.services(&config.services);
    v.apis(config);
    v.certificates(config);
    if v.errors.is_empty() {
        Ok(())
    } else {
        Err(v.errors)
    }
}

#[derive(Default)]
struct Validator {
    errors: Vec<Diagnostic>,
}

impl Validator {
    fn err(&mut self, path: FieldPath, message: impl Into<String>) {
        self.errors.push(Diagnostic::new(path, message));
    }

    fn services(&mut self, services: &[Service]) {
        let root = FieldPath::root().key("services");
        let mut seen = HashMap::new();
        for (i, service) in services.iter().enumerate() {
            let at = root.index(i);
            self.name(&at.key("name"), &service.name);
            if let Some(first) = seen.insert(service.name.as_str(), i) {
                self.err(
                    at.key("name"),
                    format!(
                        "duplicate service name {:?} (first defined at services[{first}])",
                        service.name
                    ),
                );
            }
            match (&service.mock, service.targets.is_empty()) {
                (Some(_), false) => self.err(
                    at.key("mock"),
                    "a service has either `targets` or `mock`, not both",
                ),
                (None, true) => self.err(
                    at.key("targets"),
                    "a service needs at least one target (or `mock`)",
                ),
                _ => {}
            }
            if let Some(mock) = &service.mock
                && !(200..=599).contains(&mock.status)
            {
                self.err(
                    at.key("mock").key("status"),
                    format!("{} is not a final HTTP status code (200-599)", mock.status),
                );
            }
            for (j, target) in service.targets.iter().enumerate() {
                if let Err(reason) = TargetUrl::parse(&target.url) {
                    self.err(at.key("targets").index(j).key("url"), reason);
                }
            }
            if !service.targets.is_empty() && service.targets.iter().all(|t| t.weight == 0) {
                self.err(at.key("targets"), "every target has weight 0");
            }
        }
    }

    fn apis(&mut self, config: &Config) {
        let services: HashSet<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
        let root = FieldPath::root().key("apis");
        let mut api_names = HashMap::new();
        let mut matches: HashMap<MatchKey, Vec<(FieldPath, BTreeSet<String>)>> = HashMap::new();
        for (i, api) in config.apis.iter().enumerate() {
            let at = root.index(i);
            self.name(&at.key("name"), &api.name);
            if let Some(first) = api_names.insert(api.name.as_str(), i) {
                self.err(
                    at.key("name"),
                    format!(
                        "duplicate API name {:?} (first defined at apis[{first}])",
                        api.name
                    ),
                );
            }
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
            for (j, route) in api.routes.iter().enumerate() {
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
                    self.err(
                        rat.key("service"),
                        format!("no service named {:?}", route.service),
                    );
                }
                self.route(api, route, &rat, &mut matches);
            }
        }
        // Conflicts: the same host, pattern and conditions with overlapping methods.
        let mut reported = HashSet::new();
        for (key, routes) in &matches {
            for (a, (path_a, methods_a)) in routes.iter().enumerate() {
                for (path_b, methods_b) in &routes[a + 1..] {
                    let overlap = methods_a.is_empty()
                        || methods_b.is_empty()
                        || !methods_a.is_disjoint(methods_b);
                    if overlap && reported.insert((path_b.clone(), path_a.clone())) {
                        self.err(
                            path_b.clone(),
                            format!(
                                "conflicts with {path_a}: both match host {} and path {} with the same conditions; make one more specific",
                                key.host, key.path
                            ),
                        );
                    }
                }
            }
        }
        self.errors.sort_by_key(|e| e.path.to_string());
    }

    fn route(
        &mut self,
        api: &Api,
        route: &Route,
        at: &FieldPath,
        matches: &mut HashMap<MatchKey, Vec<(FieldPath, BTreeSet<String>)>>,
    ) {
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
        for host in &hosts {
            for pattern in &patterns {
                let key = MatchKey {
                    host: host.clone(),
                    path: canonical(pattern),
                    conditions: conditions.clone(),
                };
                let entry = matches.entry(key).or_default();
                if !entry.iter().any(|(path, _)| path == at) {
                    entry.push((at.clone(), methods.clone()));
                }
            }
        }
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

    fn certificates(&mut self, config: &Config) {
        for (i, cert) in config.tls.certificates.iter().enumerate() {
            for (h, host) in cert.hosts.iter().enumerate() {
                if let Err(reason) = check_host(host) {
                    self.err(
                        FieldPath::root()
                            .key("tls")
                            .key("certificates")
                            .index(i)
                            .key("hosts")
                            .index(h),
                        reason,
                    );
                }
            }
        }
    }

    fn name(&mut self, at: &FieldPath, name: &str) {
        let ok = !name.is_empty()
            && name.len() <= 128
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            self.err(
                at.clone(),
                format!("{name:?} is not a valid name (1-128 of letters, digits, '-', '_', '.')"),
            );
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct MatchKey {
    host: String,
    path: String,
    conditions: Vec<String>,
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

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Checks a host pattern: `example.com`, `*.example.com`.
fn check_host(host: &str) -> Result<(), String> {
    let name = host.strip_prefix("*.").unwrap_or(host);
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{host:?} is not a host name (exact like api.example.com, or wildcard like *.example.com; no port)"
        ))
    }
}

/// A parsed upstream target URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl {
    /// `true` for `https`.
    pub tls: bool,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// Port (default 80/443).
    pub port: u16,
    /// Path prefix without trailing slash (empty when none).
    pub base_path: String,
}

impl TargetUrl {
    /// Parses `http[s]://host[:port][/base]`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else {
            return Err(format!(
                "target url {url:?} must start with http:// or https://"
            ));
        };
        if rest.contains(['?', '#', '@']) {
            return Err(format!(
                "target url {url:?} must not have a query, fragment or user info"
            ));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let Some((host, after)) = v6.split_once(']') else {
                return Err(format!("target url {url:?} has an unclosed '['"));
            };
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(format!("target url {url:?} has no host"));
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("target url {url:?} has an invalid port {p:?}"))?,
            None if tls => 443,
            None => 80,
        };
        if path.contains("//") || path.split('/').any(|s| s == "." || s == "..") {
            return Err(format!("target url {url:?} has a non-normalized path"));
        }
        Ok(Self {
            tls,
            host: host.to_owned(),
            port,
            base_path: path.trim_end_matches('/').to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Format, parse_config};

    fn errors(yaml: &str) -> String {
        parse_config(yaml, Format::Yaml, "t.yaml")
            .unwrap_err()
            .to_string()
    }

    const BASE: &str = "services:\n  - name: s\n    targets: [{url: 'http://127.0.0.1:1'}]\n";

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
    fn bad_target_urls() {
        for url in [
            "ftp://x",
            "http://",
            "http://h:0",
            "http://h:99999",
            "http://h/a/../b",
        ] {
            assert!(TargetUrl::parse(url).is_err(), "{url}");
        }
        let t = TargetUrl::parse("https://[::1]/base/").unwrap();
        assert_eq!(
            (t.tls, t.host.as_str(), t.port, t.base_path.as_str()),
            (true, "::1", 443, "/base")
        );
    }

    #[test]
    fn duplicate_names_and_bad_rewrite() {
        let e = errors(&format!(
            "{BASE}  - name: s\n    mock: {{body: hi}}\napis:\n  - name: a\n    routes:\n      - name: r\n        paths: ['/u/{{id}}']\n        service: s\n        rewrite: {{template: '/v/{{name}}'}}\n"
        ));
        assert!(e.contains("duplicate service name"), "{e}");
        assert!(e.contains("parameter {name} is not captured"), "{e}");
    }
}
