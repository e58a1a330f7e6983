//! A [`Compiler`] that reuses parts of its previous compile must give what a compile from
//! scratch gives, for every kind of change: routes (what each request matches, with its
//! chain, service, version, deprecation), services, fallback chain, and the same errors.

use std::sync::Arc;

use http::{HeaderMap, Method};
use tollgate_model::{FieldPath, Format, parse_config};
use tollgate_plugin_api::{Phases, Policy, PolicyConfigError, PolicyFactory, Registry};

use super::*;
use crate::{Backend, RequestView, RouteSlot};

/// A plugin whose policies are named after their configuration, so that a chain's `Debug`
/// shows which configuration each of its policies was built from.
struct Tag(&'static str, i32);

struct Tagged(&'static str);

impl Policy for Tagged {
    fn name(&self) -> &'static str {
        self.0
    }
    fn phases(&self) -> Phases {
        Phases::ACCESS | Phases::RESPONSE
    }
}

impl PolicyFactory for Tag {
    fn name(&self) -> &'static str {
        self.0
    }
    fn priority(&self) -> i32 {
        self.1
    }
    fn build(&self, config: &serde_json::Value) -> Result<Arc<dyn Policy>, PolicyConfigError> {
        if config.get("bad").is_some() {
            return Err(PolicyConfigError::new(FieldPath::root().key("bad"), "bad"));
        }
        let name: &'static str = Box::leak(format!("{}:{config}", self.0).into_boxed_str());
        Ok(Arc::new(Tagged(name)))
    }
}

fn registry() -> Registry {
    Registry::new(vec![Arc::new(Tag("tag-a", 10)), Arc::new(Tag("tag-b", 20))])
}

const BASE: &str = r#"
environments:
  - {name: prod, hosts: [api.test]}
  - {name: test, variables: {host: "127.0.0.2"}}
services:
  - {name: s, targets: [{url: "http://127.0.0.1:1"}]}
  - {name: v, targets: [{url: "http://${vars.host}:1"}]}
  - {name: m, mock: {status: 200}}
policies:
  - {name: tag-a, config: {v: 1}}
apis:
  - name: a
    base_path: /a
    policies: [{name: tag-b, config: {api: a}}]
    routes:
      - {name: r0, paths: ["= /x", "/u/{id}"], service: s}
      - {name: r1, paths: ["/p/"], service: s, methods: [GET], policies: [{name: tag-a, config: {route: 1}}]}
  - name: b
    publish: [test]
    routes:
      - {name: r0, paths: ["/b/{*rest}"], service: v, rewrite: {strip_prefix: true}}
  - name: c
    publish: []
    routes:
      - {name: r0, paths: ["= /c"], service: m}
  - name: d
    deprecation: {prod: {at: "2026-01-01T00:00:00Z"}}
    routes:
      - {name: r0, paths: ["= /d"], service: m, hosts: [d.api.test]}
"#;

/// Each step is applied to the previous one's text.
const STEPS: &[(&str, &str)] = &[
    ("tag-a, config: {v: 1}", "tag-a, config: {v: 2}"),
    (
        "  - {name: tag-a, config: {v: 2}}\n",
        "  - {name: tag-a, config: {v: 2}}\n  - {name: tag-b, config: {g: 1}}\n",
    ),
    ("\"= /x\", \"/u/{id}\"", "\"= /x\", \"/w/{id}\""),
    (
        "  - name: c\n",
        "  - name: e\n    routes:\n      - {name: r0, paths: [\"= /e\"], service: s}\n  - name: c\n",
    ),
    (
        "  - name: b\n    publish: [test]\n    routes:\n      - {name: r0, paths: [\"/b/{*rest}\"], service: v, rewrite: {strip_prefix: true}}\n",
        "",
    ),
    ("http://127.0.0.1:1", "http://127.0.0.1:2"),
    ("host: \"127.0.0.2\"", "host: \"127.0.0.3\""),
    (
        "policies:\n  - {name: tag-a, config: {v: 2}}\n  - {name: tag-b, config: {g: 1}}\n",
        "",
    ),
    ("service: s, methods", "service: m, methods"),
    ("    publish: []\n", "    publish: [test]\n"),
    (
        "{name: r0, paths: [\"= /e\"], service: s}",
        "{name: r0, paths: [\"= /e\"], service: gone}",
    ),
    ("service: gone", "service: s"),
    ("{api: a}", "{bad: 1}"),
    ("{bad: 1}", "{api: b}"),
    (
        "  - {name: test, variables",
        "  - {name: qa, hosts: [qa.test]}\n  - {name: test, variables",
    ),
    // A service that reused plans use goes away, and stays away over a change that does not
    // touch services: both compiles report the routes that use it.
    (
        "{name: m, mock: {status: 200}}",
        "{name: m2, mock: {status: 200}}",
    ),
    ("host: \"127.0.0.3\"", "host: \"127.0.0.4\""),
    ("{name: m2, mock", "{name: m, mock"),
];

fn apply(text: &str, (from, to): (&str, &str)) -> String {
    assert!(
        text.contains(from),
        "step {from:?} does not apply to:\n{text}"
    );
    text.replacen(from, to, 1)
}

/// Everything observable about a compile.
fn observe(result: &Result<Snapshot, Vec<Diagnostic>>) -> Vec<String> {
    let s = match result {
        Ok(s) => s,
        Err(errors) => {
            return errors
                .iter()
                .map(|d| format!("error {}: {}", d.path, d.message))
                .collect();
        }
    };
    let mut out = vec![format!("fallback {:?}", s.fallback_chain)];
    for (i, route) in s.routes.iter().enumerate() {
        out.push(format!("route {i} {route:?} {:?}", s.chain(route)));
    }
    for service in &s.services {
        let target = match &service.backend {
            Backend::Pool(p) => p.targets()[0].url.clone(),
            Backend::Mock(_) => "mock".to_owned(),
        };
        out.push(format!("service {} {target}", service.name));
    }
    let hosts = ["api.test", "d.api.test", "qa.test", "other.test"];
    let paths = [
        "/a/x", "/a/u/7", "/a/w/7", "/a/p/q", "/b/z/y", "/c", "/d", "/e", "/nope",
    ];
    for env in [None, Some("test"), Some("qa")] {
        for host in hosts {
            for path in paths {
                let mut headers = HeaderMap::new();
                if let Some(env) = env {
                    headers.insert("x-tollgate-env", env.parse().unwrap());
                }
                let found =
                    s.environments
                        .select(|| Some(host), &headers)
                        .and_then(|(_, environment)| {
                            environment.router.find(&RequestView {
                                host: Some(host),
                                method: &Method::GET,
                                path,
                                query: None,
                                headers: &headers,
                            })
                        });
                out.push(format!("{env:?} {host} {path} -> {found:?}"));
            }
        }
    }
    out
}

/// Compiles `yaml`; `service: gone` and a service renamed `m2` (which validation would refuse)
/// make routes name a missing service.
fn compile_with(compiler: &mut Compiler, yaml: &str) -> Result<Snapshot, Vec<Diagnostic>> {
    let valid = yaml
        .replace("service: gone", "service: s")
        .replace("{name: m2, mock", "{name: m, mock");
    let mut config = parse_config(&valid, Format::Yaml, "t.yaml").unwrap();
    if yaml.contains("{name: m2, mock") {
        for service in &mut config.services {
            if service.name == "m" {
                service.name = "m2".into();
            }
        }
    }
    if yaml.contains("service: gone") {
        for api in &mut config.apis {
            for route in Arc::make_mut(api).routes.make_mut() {
                if route.paths == ["= /e"] {
                    route.service = "gone".into();
                }
            }
        }
    }
    compiler.compile(
        &config,
        &CompileOptions {
            registry: &registry(),
            previous: None,
            workers: 1,
            revision: 1,
        },
    )
}

#[test]
fn reusing_compiler_matches_compiling_from_scratch_after_every_change() {
    let mut reusing = Compiler::default();
    let mut text = BASE.to_owned();
    let first = compile_with(&mut reusing, &text);
    assert!(first.is_ok(), "{:?}", observe(&first));
    let mut failures = 0;
    for (n, step) in STEPS.iter().enumerate() {
        text = apply(&text, *step);
        let incremental = observe(&compile_with(&mut reusing, &text));
        let scratch = observe(&compile_with(&mut Compiler::default(), &text));
        assert_eq!(incremental, scratch, "step {n}: {step:?}");
        failures += usize::from(incremental[0].starts_with("error"));
    }
    // The missing services (twice for the deleted one) and the bad policy configuration
    // were refused.
    assert_eq!(failures, 4);
}

#[test]
fn a_global_policy_change_keeps_routers_and_a_route_change_rebuilds_them() {
    let mut compiler = Compiler::default();
    let one = compile_with(&mut compiler, BASE).unwrap();
    let text = apply(BASE, ("tag-a, config: {v: 1}", "tag-a, config: {v: 2}"));
    let two = compile_with(&mut compiler, &text).unwrap();
    let router = |s: &Snapshot, e: usize| s.environments.get(e).unwrap().router.clone();
    assert!(Arc::ptr_eq(&router(&one, 0), &router(&two, 0)));
    assert!(Arc::ptr_eq(&router(&one, 1), &router(&two, 1)));
    let chain = |s: &Snapshot| s.chains[s.routes.iter().next().unwrap().chain].clone();
    assert!(!Arc::ptr_eq(&chain(&one), &chain(&two)));
    let text = apply(&text, ("\"= /x\", \"/u/{id}\"", "\"= /x\", \"/w/{id}\""));
    let three = compile_with(&mut compiler, &text).unwrap();
    assert!(!Arc::ptr_eq(&router(&two, 0), &router(&three, 0)));
}

#[test]
fn a_global_policy_change_keeps_every_block_of_routes_and_an_api_change_only_its_own() {
    let same = |a: &Snapshot, b: &Snapshot| -> Vec<bool> {
        assert_eq!(a.routes.blocks().len(), b.routes.blocks().len());
        a.routes
            .blocks()
            .iter()
            .zip(b.routes.blocks())
            .map(|(x, y)| Arc::ptr_eq(x, y))
            .collect()
    };
    let mut compiler = Compiler::default();
    let one = compile_with(&mut compiler, BASE).unwrap();
    let text = apply(BASE, ("tag-a, config: {v: 1}", "tag-a, config: {v: 2}"));
    let two = compile_with(&mut compiler, &text).unwrap();
    assert!(
        same(&one, &two).iter().all(|&s| s),
        "a global policy change rebuilt routes"
    );
    // The routes see the new chain through the snapshot's chain table.
    let first = two.routes.iter().next().unwrap();
    assert!(format!("{:?}", two.chain(first)).contains(r#"tag-a:{\"v\":2}"#));
    // API `a` changes: only its blocks (one per environment it is live in) are new.
    let text = apply(&text, ("\"= /x\", \"/u/{id}\"", "\"= /x\", \"/w/{id}\""));
    let three = compile_with(&mut compiler, &text).unwrap();
    let kept = same(&two, &three);
    for (block, kept) in three.routes.blocks().iter().zip(&kept) {
        assert_eq!(&*block[0].info.api == "a", !kept, "{:?}", block[0].info);
    }
}

#[test]
fn route_slots_are_carried_while_the_route_is_unchanged() {
    fn slot_of<'s>(s: &'s Snapshot, api: &str, route: &str, env: usize) -> &'s Arc<RouteSlot> {
        let r = s
            .routes
            .iter()
            .find(|r| &*r.info.api == api && &*r.info.route == route && r.environment == env)
            .unwrap();
        &r.slot
    }
    let mut compiler = Compiler::default();
    let one = compile_with(&mut compiler, BASE).unwrap();
    // A global policy change: every route keeps its slot.
    let text = apply(BASE, ("tag-a, config: {v: 1}", "tag-a, config: {v: 2}"));
    let two = compile_with(&mut compiler, &text).unwrap();
    assert_eq!(one.routes.len(), two.routes.len());
    for (a, b) in one.routes.iter().zip(two.routes.iter()) {
        assert!(Arc::ptr_eq(&a.slot, &b.slot), "{:?}", b.info);
    }
    // API `a` changes: its routes get new slots, the others keep theirs.
    let text = apply(&text, ("\"= /x\", \"/u/{id}\"", "\"= /x\", \"/w/{id}\""));
    let three = compile_with(&mut compiler, &text).unwrap();
    assert!(!Arc::ptr_eq(
        slot_of(&two, "a", "r0", 0),
        slot_of(&three, "a", "r0", 0)
    ));
    assert!(Arc::ptr_eq(
        slot_of(&two, "d", "r0", 0),
        slot_of(&three, "d", "r0", 0)
    ));
    // The same route in two environments has one slot in each.
    assert!(!Arc::ptr_eq(
        slot_of(&three, "a", "r0", 0),
        slot_of(&three, "a", "r0", 1)
    ));
    // A refused compile (API `a` breaks) keeps the slots of the APIs it did not touch.
    let bad = apply(&text, ("{api: a}", "{bad: 1}"));
    assert!(compile_with(&mut compiler, &bad).is_err());
    let four = compile_with(&mut compiler, &text).unwrap();
    assert!(Arc::ptr_eq(
        slot_of(&three, "d", "r0", 0),
        slot_of(&four, "d", "r0", 0)
    ));
}
