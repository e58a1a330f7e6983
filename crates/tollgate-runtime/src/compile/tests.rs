use std::sync::Arc;

use http::{HeaderMap, Method};
use tollgate_model::{Format, parse_config};
use tollgate_plugin_api::Registry;

use super::*;
use crate::{Backend, RequestView};

fn build(yaml: &str, previous: Option<&Snapshot>) -> Snapshot {
    let config = parse_config(yaml, Format::Yaml, "t.yaml").unwrap();
    let registry = Registry::new(Vec::new());
    compile(
        &config,
        &CompileOptions {
            registry: &registry,
            previous,
            workers: 1,
            revision: 1,
        },
    )
    .unwrap()
}

/// The route serving `path` on `host` (and environment header `env`), as
/// (API version, environment, service target URL).
fn serve(
    s: &Snapshot,
    host: &str,
    env: Option<&str>,
    path: &str,
) -> Option<(String, String, String)> {
    let mut headers = HeaderMap::new();
    if let Some(env) = env {
        headers.insert("x-tollgate-env", env.parse().unwrap());
    }
    let (_, environment) = s.environments.select(|| Some(host), &headers)?;
    let found = environment.router.find(&RequestView {
        host: Some(host),
        method: &Method::GET,
        path,
        query: None,
        headers: &headers,
    })?;
    let route = &s.routes[found.route];
    let target = match &s.services[route.service].backend {
        Backend::Pool(p) => p.targets()[0].url.clone(),
        Backend::Mock(_) => "mock".to_owned(),
    };
    Some((
        route.api_version.to_string(),
        s.environments
            .get(route.environment)
            .unwrap()
            .name
            .to_string(),
        target,
    ))
}

fn pool_of(s: &Snapshot, index: usize) -> &Arc<tollgate_upstream::UpstreamPool> {
    match &s.services[index].backend {
        Backend::Pool(p) => p,
        Backend::Mock(_) => panic!("mock"),
    }
}

const ENVIRONMENTS: &str = r#"
environments:
  - name: prod
    variables: {backend: "http://10.0.0.1:80"}
  - name: test
    hosts: [test.example.com]
    header_selection: true
    variables: {backend: "http://10.0.0.2:80"}
  - name: qa
    hosts: [qa.example.com]
    variables: {backend: "http://10.0.0.1:80"}
services:
  - name: users
    targets: [{url: "${vars.backend}"}]
  - name: static
    targets: [{url: "http://10.0.0.9:80"}]
"#;

#[test]
fn without_environments_everything_is_live_in_prod() {
    let s = build(
        "services: [{name: s, targets: [{url: 'http://10.0.0.1:80'}]}]\napis: [{name: a, routes: [{name: r, paths: [/], service: s}]}]\n",
        None,
    );
    assert_eq!(s.environments.len(), 1);
    assert_eq!(s.routes.len(), 1);
    assert_eq!(
        serve(&s, "any.host", Some("test"), "/x"),
        Some(("1".into(), "prod".into(), "http://10.0.0.1:80".into()))
    );
}

#[test]
fn each_environment_routes_its_live_versions_to_its_own_backend() {
    let s = build(
        &format!(
            "{ENVIRONMENTS}apis:\n  - {{name: users, version: '1', publish: [prod, qa], deprecation: {{prod: {{at: '2026-01-01T00:00:00Z'}}}}, routes: [{{name: r, paths: [/u], service: users}}]}}\n  - {{name: users, version: '2', publish: [test], routes: [{{name: r, paths: [/u], service: users}}]}}\n  - {{name: users, version: '3', publish: [], routes: [{{name: r, paths: [/u], service: users}}]}}\n  - {{name: other, routes: [{{name: r, paths: [/o], service: static}}]}}\n"
        ),
        None,
    );
    let at = |host, env, path| serve(&s, host, env, path);
    let row = |v: &str, e: &str, t: &str| Some((v.to_owned(), e.to_owned(), t.to_owned()));
    assert_eq!(
        at("api.example.com", None, "/u"),
        row("1", "prod", "http://10.0.0.1:80")
    );
    assert_eq!(
        at("test.example.com", None, "/u"),
        row("2", "test", "http://10.0.0.2:80")
    );
    assert_eq!(
        at("api.example.com", Some("test"), "/u"),
        row("2", "test", "http://10.0.0.2:80")
    );
    assert_eq!(
        at("qa.example.com", None, "/u"),
        row("1", "qa", "http://10.0.0.1:80")
    );
    assert_eq!(
        at("qa.example.com", None, "/o"),
        row("1", "qa", "http://10.0.0.9:80")
    );
    // Per environment routes: users v1 (prod, qa), v2 (test), other (3 environments).
    assert_eq!(s.routes.len(), 6);
    // prod and qa resolve `users` identically: one compiled service, one pool; plus test's
    // and the variable-free `static`.
    assert_eq!(s.services.len(), 3);
    let users_in = |e: &str| {
        s.routes
            .iter()
            .find(|r| {
                &*r.info.api == "users" && &*s.environments.get(r.environment).unwrap().name == e
            })
            .unwrap()
    };
    assert_eq!(users_in("prod").service, users_in("qa").service);
    assert_ne!(users_in("prod").service, users_in("test").service);
    // Deprecated in prod only.
    let d = users_in("prod").deprecation.as_ref().unwrap();
    assert_eq!(d.deprecation, "@1767225600");
    assert!(users_in("qa").deprecation.is_none());
}

#[test]
fn a_reload_keeps_the_pools_of_unchanged_resolutions() {
    let apis = "apis: [{name: users, routes: [{name: r, paths: [/u], service: users}]}]\n";
    let first = build(&format!("{ENVIRONMENTS}{apis}"), None);
    // test's backend changes; prod and qa keep theirs.
    let changed = ENVIRONMENTS.replace("http://10.0.0.2:80", "http://10.0.0.3:80");
    let second = build(&format!("{changed}{apis}"), Some(&first));
    let find = |s: &Snapshot, url: &str| {
        (0..s.services.len())
            .find(|i| pool_of(s, *i).targets()[0].url == url)
            .map(|i| pool_of(s, i).clone())
            .unwrap()
    };
    assert!(Arc::ptr_eq(
        &find(&first, "http://10.0.0.1:80"),
        &find(&second, "http://10.0.0.1:80")
    ));
    assert!(Arc::ptr_eq(
        &find(&first, "http://10.0.0.9:80"),
        &find(&second, "http://10.0.0.9:80")
    ));
    assert!(second.services.iter().all(|s| match &s.backend {
        Backend::Pool(p) => p.targets()[0].url != "http://10.0.0.2:80",
        Backend::Mock(_) => true,
    }));
}

#[test]
fn unbound_hosts_without_a_hostless_environment_find_none() {
    let s = build(
        "environments: [{name: prod, hosts: [api.example.com]}]\nservices: [{name: s, mock: {}}]\napis: [{name: a, routes: [{name: r, paths: [/], service: s}]}]\n",
        None,
    );
    assert!(serve(&s, "api.example.com", None, "/").is_some());
    assert!(serve(&s, "other.example.com", None, "/").is_none());
}

#[test]
fn consumer_policies_are_checked() {
    let yaml = r#"
services:
  - name: s
    mock: {status: 200}
consumers:
  - name: app
    policies:
      - name: nope
      - name: request-size-limit
        config: {max_bytes: "lots"}
"#;
    let config = parse_config(yaml, Format::Yaml, "t").unwrap();
    let registry = Registry::new(Vec::new());
    let errors = compile(
        &config,
        &CompileOptions {
            registry: &registry,
            previous: None,
            workers: 1,
            revision: 1,
        },
    )
    .err()
    .unwrap();
    let shown: Vec<String> = errors.iter().map(|d| d.path.to_string()).collect();
    assert!(
        shown.iter().any(|p| p == "consumers[0].policies[0].name"),
        "{shown:?}"
    );
    assert!(
        shown.iter().any(|p| p == "consumers[0].policies[1].name"),
        "{shown:?}"
    );
}
