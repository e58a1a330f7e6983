//! [`ValidationCache`] must report exactly what [`validate`] reports, after every kind of
//! change, valid or not.

use super::{ValidationCache, validate};
use crate::Config;

const BASE: &str = r#"
environments:
  - {name: prod, hosts: [api.test]}
  - {name: test}
services:
  - {name: s, targets: [{url: "http://127.0.0.1:1"}]}
  - {name: t, targets: [{url: "http://${vars.host}:1"}]}
apis:
  - name: a
    routes:
      - {name: r0, paths: ["= /x", "/u/{id}"], service: s}
      - {name: r1, paths: ["/p/"], service: s, methods: [GET]}
  - name: b
    publish: [test]
    routes:
      - {name: r0, paths: ["/b"], service: s}
  - name: c
    publish: []
    routes:
      - {name: r0, paths: ["= /c"], service: s}
"#;

/// Each step is applied to the previous one's text.
const STEPS: &[(&str, &str)] = &[
    // A conflict across APIs, then resolved.
    ("paths: [\"/b\"]", "paths: [\"/u/{uid}\"]"),
    (
        "publish: [test]\n",
        "publish: [test]\n    hosts: [b.test]\n",
    ),
    // Inside one API: a duplicate route name, then fixed.
    ("{name: r1, paths", "{name: r0, paths"),
    ("{name: r0, paths: [\"/p/\"]", "{name: r1, paths: [\"/p/\"]"),
    // A service the unchanged APIs use disappears, then comes back.
    (
        "  - {name: s, targets: [{url: \"http://127.0.0.1:1\"}]}\n",
        "",
    ),
    (
        "services:\n",
        "services:\n  - {name: s, targets: [{url: \"http://127.0.0.1:1\"}]}\n",
    ),
    // A variable no environment defines, used once `t` is.
    ("service: s, methods", "service: t, methods"),
    ("  - {name: test}", "  - {name: test, variables: {host: h}}"),
    // Duplicate API version.
    ("  - name: c\n", "  - name: a\n"),
    (
        "  - name: a\n    publish: []",
        "  - name: c\n    publish: []",
    ),
    // Invalid host and version in a new API.
    (
        "apis:\n",
        "apis:\n  - name: d\n    version: 'v 1'\n    hosts: ['bad host']\n    routes: [{name: r0, paths: [\"/d\"], service: s}]\n",
    ),
    ("    version: 'v 1'\n    hosts: ['bad host']\n", ""),
    // Drafts conflicting with themselves only.
    (
        "{name: r0, paths: [\"= /c\"], service: s}",
        "{name: r0, paths: [\"= /x\", \"= /x/\"], service: s}",
    ),
    // An environment removed under a published API.
    ("  - {name: test, variables: {host: h}}\n", ""),
];

fn errors(result: Result<(), Vec<crate::Diagnostic>>) -> Vec<String> {
    match result {
        Ok(()) => Vec::new(),
        Err(list) => list
            .iter()
            .map(|d| format!("{}: {}", d.path, d.message))
            .collect(),
    }
}

#[test]
fn a_reusing_validation_reports_what_a_full_one_reports_after_every_change() {
    let mut cache = ValidationCache::default();
    let mut text = BASE.to_owned();
    let parse = |text: &str| {
        serde_yaml_ng::from_str::<Config>(text).unwrap_or_else(|e| panic!("{e}:\n{text}"))
    };
    assert_eq!(errors(cache.validate(&parse(&text))), Vec::<String>::new());
    let mut refused = Vec::new();
    for (n, (from, to)) in STEPS.iter().enumerate() {
        assert!(text.contains(from), "step {n} does not apply:\n{text}");
        text = text.replacen(from, to, 1);
        let config = parse(&text);
        let reusing = errors(cache.validate(&config));
        assert_eq!(reusing, errors(validate(&config)), "step {n}:\n{text}");
        if !reusing.is_empty() {
            refused.push(n);
        }
    }
    // From step 6 on, `prod` lacks the variable `t` needs.
    assert_eq!(refused, [0, 2, 4, 6, 7, 8, 9, 10, 11, 12, 13]);
}

#[test]
fn a_conflict_stays_reported_while_only_other_objects_change() {
    let parse = |text: &str| {
        serde_yaml_ng::from_str::<Config>(text).unwrap_or_else(|e| panic!("{e}:\n{text}"))
    };
    let mut cache = ValidationCache::default();
    // `b` claims what `a` claims, in both environments.
    let conflicting = BASE.replacen("    publish: [test]\n", "", 1).replacen(
        "paths: [\"/b\"]",
        "paths: [\"/u/{uid}\"]",
        1,
    );
    let first = errors(cache.validate(&parse(&conflicting)));
    assert!(
        first.iter().any(|e| e.contains("conflicts with")),
        "{first:?}"
    );
    // Only services change: the conflict check is skipped and its result repeated.
    let services_only = conflicting.replacen(
        "services:\n",
        "services:\n  - {name: z, targets: [{url: \"http://127.0.0.1:9\"}]}\n",
        1,
    );
    let config = parse(&services_only);
    let again = errors(cache.validate(&config));
    assert_eq!(again, errors(validate(&config)));
    assert_eq!(again, first);
    // Only where `b` is live changes: checked again, the conflict is now in `test` only.
    let config =
        parse(&services_only.replacen("  - name: b\n", "  - name: b\n    publish: [test]\n", 1));
    let moved = errors(cache.validate(&config));
    assert_eq!(moved, errors(validate(&config)));
    assert_eq!(moved.len(), 1);
    assert!(moved[0].contains("\"test\""), "{moved:?}");
    assert_ne!(moved, first);
}

#[test]
fn a_validation_of_shared_definitions_reports_what_a_full_one_reports() {
    // Configurations that share their API definitions, as consecutive states of a store do
    // (the validation then skips the APIs' checks while their inputs are unchanged).
    let mut cache = ValidationCache::default();
    let base: Config = serde_yaml_ng::from_str(BASE).unwrap();
    let check = |cache: &mut ValidationCache, config: &Config| {
        let reusing = errors(cache.validate(config));
        assert_eq!(reusing, errors(validate(config)));
        reusing
    };
    assert!(check(&mut cache, &base).is_empty());
    assert!(check(&mut cache, &base.clone()).is_empty());
    // The service every API uses goes away, then comes back.
    let mut gone = base.clone();
    gone.services.retain(|s| s.name != "s");
    assert!(
        check(&mut cache, &gone)
            .iter()
            .any(|e| e.contains("no service named \"s\""))
    );
    assert!(check(&mut cache, &base).is_empty());
    // A service renamed: the names differ, the count does not.
    let mut renamed = base.clone();
    renamed.services[0].name = "s2".into();
    assert!(!check(&mut cache, &renamed).is_empty());
    assert!(check(&mut cache, &base).is_empty());
    // The environment `b` is published in goes away.
    let mut fewer = base.clone();
    fewer.environments.retain(|e| e.name != "test");
    assert!(!check(&mut cache, &fewer).is_empty());
    assert!(check(&mut cache, &base).is_empty());
    // A conflict across APIs stays reported while only other objects change.
    let conflicting: Config =
        serde_yaml_ng::from_str(&BASE.replacen("    publish: [test]\n", "", 1).replacen(
            "paths: [\"/b\"]",
            "paths: [\"/u/{uid}\"]",
            1,
        ))
        .unwrap();
    let first = check(&mut cache, &conflicting);
    assert!(
        first.iter().any(|e| e.contains("conflicts with")),
        "{first:?}"
    );
    let mut more = conflicting.clone();
    more.services.push(more.services[0].clone());
    more.services.last_mut().unwrap().name = "z".into();
    let mut again = conflicting.clone();
    again.policies.clear();
    assert_eq!(check(&mut cache, &again), first);
    assert_eq!(check(&mut cache, &more), first);
    // One API replaced by an equal but separate definition, and then by a changed one.
    let mut reparsed = base.clone();
    reparsed.apis[1] = std::sync::Arc::new((*base.apis[1]).clone());
    assert!(check(&mut cache, &reparsed).is_empty());
    let mut edited = reparsed.clone();
    std::sync::Arc::make_mut(&mut edited.apis[1]).version = "bad version".into();
    assert!(!check(&mut cache, &edited).is_empty());
    assert!(check(&mut cache, &reparsed).is_empty());
}
