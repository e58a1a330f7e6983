//! Environments and what refers to them: bound hosts, variables, APIs' `publish` and
//! `deprecation`, one live version per API and environment, and `${vars.NAME}` references
//! (substituted in services' `targets[].url` and `tls.sni`, checked in every environment that
//! uses the service).

use std::collections::{BTreeSet, HashMap};

use super::{Envs, TargetUrl, Validator, check_host};
use crate::{Config, FieldPath, is_var_name, substitute_vars, var_references};

impl Validator {
    /// The `environments` list on its own: names, hosts, variables.
    pub(super) fn environments(&mut self, config: &Config) {
        let root = FieldPath::root().key("environments");
        let mut names = HashMap::new();
        // Lower-cased host → (environment name, where it is bound).
        let mut hosts: HashMap<String, (&str, FieldPath)> = HashMap::new();
        let mut hostless: Option<(&str, usize)> = None;
        for (i, env) in config.environments.iter().enumerate() {
            let at = root.index(i);
            self.name(&at.key("name"), &env.name);
            if let Some(first) = names.insert(env.name.as_str(), i) {
                self.err(
                    at.key("name"),
                    format!(
                        "duplicate environment name {:?} (first defined at environments[{first}])",
                        env.name
                    ),
                );
            }
            for (h, host) in env.hosts.iter().enumerate() {
                let hat = at.key("hosts").index(h);
                if let Err(reason) = check_host(host) {
                    self.err(hat, reason);
                    continue;
                }
                match hosts.get(&host.to_ascii_lowercase()) {
                    Some((other, first)) => {
                        let message = if *other == env.name {
                            format!("host {host:?} is listed twice (first at {first})")
                        } else {
                            format!(
                                "host {host:?} is already bound to environment {other:?} ({first}); a host selects one environment"
                            )
                        };
                        self.err(hat, message);
                    }
                    None => {
                        hosts.insert(host.to_ascii_lowercase(), (env.name.as_str(), hat));
                    }
                }
            }
            if env.hosts.is_empty() {
                match hostless {
                    Some((other, first)) => self.err(
                        at.key("hosts"),
                        format!(
                            "environments {other:?} (environments[{first}]) and {:?} both have no hosts; at most one environment takes the hosts no other is bound to",
                            env.name
                        ),
                    ),
                    None => hostless = Some((env.name.as_str(), i)),
                }
            }
            for name in env.variables.keys() {
                if !is_var_name(name) {
                    self.err(
                        at.key("variables").key(name.as_str()),
                        format!(
                            "{name:?} is not a valid variable name (letters, digits and '_', not starting with a digit)"
                        ),
                    );
                }
            }
        }
    }

    /// APIs' `publish` and `deprecation`, and at most one live version per API and environment.
    pub(super) fn publishing(&mut self, config: &Config, envs: &Envs<'_>) {
        let root = FieldPath::root().key("apis");
        // Once per API version on every admin write: nothing is allocated for a version
        // without problems (its lists are short: one entry per environment at most).
        for (i, api) in config.apis.iter().enumerate() {
            let publish = api.publish.as_deref().unwrap_or_default();
            for (k, name) in publish.iter().enumerate() {
                if envs.get(name).is_none() {
                    self.err(
                        root.index(i).key("publish").index(k),
                        format!("no environment named {name:?} ({})", envs.known()),
                    );
                } else if publish[..k].contains(name) {
                    self.err(
                        root.index(i).key("publish").index(k),
                        format!("environment {name:?} is listed twice"),
                    );
                }
            }
            for (env, deprecation) in &api.deprecation {
                let dat = root.index(i).key("deprecation").key(env.as_str());
                if envs.get(env).is_none() {
                    self.err(
                        dat.clone(),
                        format!("no environment named {env:?} ({})", envs.known()),
                    );
                } else if !api.is_published_in(env) {
                    self.err(
                        dat.clone(),
                        format!(
                            "API {:?} version {:?} is not published in environment {env:?}; deprecate it where it is live",
                            api.name, api.version
                        ),
                    );
                }
                if let Some(sunset) = deprecation.sunset
                    && sunset <= deprecation.at
                {
                    self.err(
                        dat.key("sunset"),
                        format!(
                            "the sunset ({sunset}) must be after the deprecation (`at`: {})",
                            deprecation.at
                        ),
                    );
                }
                if let Some(link) = &deprecation.link
                    && let Err(reason) = check_link(link)
                {
                    self.err(dat.key("link"), reason);
                }
            }
        }
        // One live version per API and environment.
        for env in envs.list {
            let mut live: foldhash::HashMap<&str, usize> =
                HashMap::with_capacity_and_hasher(config.apis.len(), Default::default());
            for (i, api) in config.apis.iter().enumerate() {
                if !api.is_published_in(&env.name) {
                    continue;
                }
                let Some(&first) = live.get(api.name.as_str()) else {
                    live.insert(api.name.as_str(), i);
                    continue;
                };
                let other = &config.apis[first];
                if other.version == api.version {
                    continue; // reported as a duplicate
                }
                let at = root.index(i).key("publish");
                let at = match api
                    .publish
                    .as_ref()
                    .and_then(|p| p.iter().position(|e| *e == env.name))
                {
                    Some(k) => at.index(k),
                    None => at,
                };
                self.err(
                    at,
                    format!(
                        "API {:?} has two versions live{}: {:?} (apis[{first}]) and {:?}; at most one version of an API is live per environment (a version without `publish` is live in every environment)",
                        api.name,
                        envs.suffix(&env.name),
                        other.version,
                        api.version
                    ),
                );
            }
        }
    }

    /// `${vars.NAME}` references: well-formed everywhere, defined in every environment that
    /// uses them, and giving a valid target URL there.
    pub(super) fn variables(&mut self, config: &Config, envs: &Envs<'_>) {
        let root = FieldPath::root().key("services");
        // Per service: its fields that reference variables (most services have none, and
        // then no route needs to be looked at).
        let mut referencing: Vec<(usize, Vec<Reference<'_>>)> = Vec::new();
        for (s, service) in config.services.iter().enumerate() {
            let at = root.index(s);
            let mut fields: Vec<(FieldPath, &str, bool)> = service
                .targets
                .iter()
                .enumerate()
                .map(|(t, target)| {
                    (
                        at.key("targets").index(t).key("url"),
                        target.url.as_str(),
                        true,
                    )
                })
                .collect();
            if let Some(sni) = &service.tls.sni {
                fields.push((at.key("tls").key("sni"), sni.as_str(), false));
            }
            let mut referenced = Vec::new();
            for (path, text, is_url) in fields {
                match var_references(text) {
                    Err(e) => self.err(path, e.to_string()),
                    Ok(names) if names.is_empty() => {}
                    Ok(names) => referenced.push((path, text, is_url, names)),
                }
            }
            if !referenced.is_empty() {
                referencing.push((s, referenced));
            }
        }
        if referencing.is_empty() {
            return;
        }
        // Service name → environment index → the first route using it there, for the
        // services that reference variables.
        let mut users: HashMap<&str, Vec<Option<FieldPath>>> = referencing
            .iter()
            .map(|(s, _)| {
                (
                    config.services[*s].name.as_str(),
                    vec![None; envs.list.len()],
                )
            })
            .collect();
        for (e, env) in envs.list.iter().enumerate() {
            for (i, api) in config.apis.iter().enumerate() {
                if !api.is_published_in(&env.name) {
                    continue;
                }
                for (j, route) in api.routes.iter().enumerate() {
                    tollgate_pace::point();
                    let Some(slot) = users.get_mut(route.service.as_str()) else {
                        continue;
                    };
                    if slot[e].is_none() {
                        slot[e] = Some(
                            FieldPath::root()
                                .key("apis")
                                .index(i)
                                .key("routes")
                                .index(j),
                        );
                    }
                }
            }
        }
        for (s, referenced) in &referencing {
            let Some(used) = users.get(config.services[*s].name.as_str()) else {
                continue;
            };
            for (path, text, is_url, names) in referenced {
                for (env, user) in envs.list.iter().zip(used) {
                    let Some(user) = user else { continue };
                    let mut missing = BTreeSet::new();
                    for name in names {
                        if !env.variables.contains_key(*name) {
                            missing.insert(*name);
                        }
                    }
                    for name in &missing {
                        self.err(
                            path.clone(),
                            format!(
                                "variable {name:?} is not defined in environment {:?} ({user} uses this service there)",
                                env.name
                            ),
                        );
                    }
                    if !missing.is_empty() {
                        continue;
                    }
                    if *is_url
                        && let Ok(resolved) =
                            substitute_vars(text, |n| env.variables.get(n).map(String::as_str))
                        && let Err(reason) = TargetUrl::parse(&resolved)
                    {
                        self.err(
                            path.clone(),
                            format!("in environment {:?}: {reason}", env.name),
                        );
                    }
                }
            }
        }
    }
}

/// A service field that references variables: where, its text, whether it is a target URL,
/// and the variables it names.
type Reference<'a> = (FieldPath, &'a str, bool, Vec<&'a str>);

/// A deprecation `link`: an absolute `http(s)` URL that can go in a `Link` header.
fn check_link(link: &str) -> Result<(), String> {
    let rest = link
        .strip_prefix("https://")
        .or_else(|| link.strip_prefix("http://"))
        .ok_or_else(|| format!("{link:?} is not an absolute http:// or https:// URL"))?;
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..host_end];
    let host = authority
        .strip_prefix('[')
        .and_then(|v6| v6.split_once(']').map(|(h, _)| h))
        .unwrap_or_else(|| authority.rsplit_once(':').map_or(authority, |(h, _)| h));
    if host.is_empty() || authority.contains('@') {
        return Err(format!("{link:?} has no host (or has user info)"));
    }
    if let Some((_, port)) = authority.rsplit_once(':')
        && !authority.ends_with(']')
        && port.parse::<u16>().is_err()
    {
        return Err(format!("{link:?} has an invalid port"));
    }
    if let Some(c) = link.chars().find(|c| {
        !c.is_ascii_graphic() || matches!(c, '<' | '>' | '"' | '\\' | '^' | '`' | '{' | '|' | '}')
    }) {
        return Err(format!(
            "{link:?} contains {c:?}, which a URL cannot (percent-encode it)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{BASE, errors, valid};
    use super::check_link;

    const ENVS: &str = "environments:\n  - {name: prod, hosts: [api.test, '*.api.test']}\n  - {name: test, hosts: [test.api.test], header_selection: true, variables: {backend: 'http://127.0.0.1:2'}}\n";

    #[test]
    fn environments_have_unique_names_and_hosts_and_one_takes_the_rest() {
        let e = errors(
            "environments:\n  - {name: prod}\n  - {name: prod, hosts: [A.test]}\n  - {name: 'bad name', hosts: [a.test, 'x:1']}\n  - {name: other}\n  - {name: test, hosts: [b.test, b.test]}\n",
        );
        for expected in [
            "environments[1].name: duplicate environment name \"prod\" (first defined at environments[0])",
            "environments[2].name: \"bad name\" is not a valid name",
            "environments[2].hosts[0]: host \"a.test\" is already bound to environment \"prod\" (environments[1].hosts[0])",
            "environments[2].hosts[1]: \"x:1\" is not a host name",
            "environments[3].hosts: environments \"prod\" (environments[0]) and \"other\" both have no hosts",
            "environments[4].hosts[1]: host \"b.test\" is listed twice (first at environments[4].hosts[0])",
        ] {
            assert!(e.contains(expected), "missing {expected:?} in:\n{e}");
        }
        // A wildcard and an exact host of another environment may overlap: exact wins.
        valid(&format!("{ENVS}  - {{name: other, hosts: [x.api.test]}}\n"));
    }

    #[test]
    fn variable_names_and_environment_header_are_checked() {
        let e = errors(
            "server: {environment_header: 'x env'}\nenvironments:\n  - {name: prod, variables: {'a-b': x, ok_1: y}}\n",
        );
        assert!(
            e.contains("environments[0].variables.a-b: \"a-b\" is not a valid variable name"),
            "{e}"
        );
        assert!(!e.contains("ok_1"), "{e}");
        assert!(
            e.contains("server.environment_header: \"x env\" is not a header name"),
            "{e}"
        );
    }

    fn api(version: &str, extra: &str) -> String {
        format!(
            "  - name: users\n    version: '{version}'\n{extra}    routes:\n      - {{name: r{version}, paths: [/v{version}], service: s}}\n"
        )
    }

    #[test]
    fn publish_names_existing_environments() {
        let e = errors(&format!(
            "{BASE}{ENVS}apis:\n{}",
            api("1", "    publish: [prod, stage, prod]\n")
        ));
        assert!(
            e.contains("apis[0].publish[1]: no environment named \"stage\" (known: prod, test)"),
            "{e}"
        );
        assert!(
            e.contains("apis[0].publish[2]: environment \"prod\" is listed twice"),
            "{e}"
        );
        let e = errors(&format!(
            "{BASE}apis:\n{}",
            api("1", "    publish: [test]\n")
        ));
        assert!(
            e.contains("apis[0].publish[0]: no environment named \"test\" (without `environments` there is only the implicit \"prod\")"),
            "{e}"
        );
        valid(&format!(
            "{BASE}apis:\n{}",
            api("1", "    publish: [prod]\n")
        ));
    }

    #[test]
    fn one_live_version_per_environment() {
        let e = errors(&format!(
            "{BASE}{ENVS}apis:\n{}{}",
            api("1", ""),
            api("2", "    publish: [test]\n")
        ));
        assert!(
            e.contains("apis[1].publish[0]: API \"users\" has two versions live in environment \"test\": \"1\" (apis[0]) and \"2\""),
            "{e}"
        );
        let e = errors(&format!("{BASE}apis:\n{}{}", api("1", ""), api("2", "")));
        assert!(
            e.contains(
                "apis[1].publish: API \"users\" has two versions live: \"1\" (apis[0]) and \"2\""
            ),
            "{e}"
        );
        // Their routes on the same paths are not reported as conflicts on top of that.
        let same_paths =
            format!("{BASE}apis:\n{}{}", api("1", ""), api("2", "")).replace("/v2", "/v1");
        let e = errors(&same_paths);
        assert!(e.contains("has two versions live"), "{e}");
        assert!(!e.contains("conflicts with"), "{e}");
        valid(&format!(
            "{BASE}{ENVS}apis:\n{}{}{}",
            api("1", "    publish: [prod]\n"),
            api("2", "    publish: [test]\n"),
            api("3", "    publish: []\n")
        ));
    }

    #[test]
    fn deprecation_is_where_the_version_is_live_with_sunset_after_and_a_link() {
        let e = errors(&format!(
            "{BASE}{ENVS}apis:\n{}",
            api(
                "1",
                "    publish: [prod]\n    deprecation:\n      test: {at: '2026-01-01T00:00:00Z'}\n      prod: {at: '2026-01-01T00:00:00Z', sunset: '2025-12-31T00:00:00Z', link: 'ftp://x/'}\n      qa: {at: '2026-01-01T00:00:00Z'}\n"
            )
        ));
        for expected in [
            "apis[0].deprecation.test: API \"users\" version \"1\" is not published in environment \"test\"",
            "apis[0].deprecation.prod.sunset: the sunset (2025-12-31T00:00:00Z) must be after the deprecation (`at`: 2026-01-01T00:00:00Z)",
            "apis[0].deprecation.prod.link: \"ftp://x/\" is not an absolute http:// or https:// URL",
            "apis[0].deprecation.qa: no environment named \"qa\"",
        ] {
            assert!(e.contains(expected), "missing {expected:?} in:\n{e}");
        }
        valid(&format!(
            "{BASE}{ENVS}apis:\n{}",
            api(
                "1",
                "    deprecation:\n      test: {at: '2026-01-01T00:00:00Z', sunset: '2027-01-01T00:00:00Z', link: 'https://docs.example.com/migrate?from=1#v2'}\n"
            )
        ));
    }

    #[test]
    fn links_must_be_absolute_http_urls() {
        for ok in [
            "https://a.test",
            "http://a.test:8080/x?y=1#z",
            "https://[::1]/m",
        ] {
            assert!(check_link(ok).is_ok(), "{ok}");
        }
        for bad in [
            "/relative",
            "https://",
            "https://a.test/with space",
            "https://a.test/<x>",
            "https://u@a.test/",
            "https://a.test:port/",
        ] {
            assert!(check_link(bad).is_err(), "{bad}");
        }
    }

    fn with_backend(url: &str, envs: &str, publish: &str) -> String {
        format!(
            "services:\n  - name: s\n    targets: [{{url: '{url}'}}]\n{envs}apis:\n  - name: a\n{publish}    routes:\n      - {{name: r, paths: [/], service: s}}\n"
        )
    }

    #[test]
    fn variables_must_be_defined_where_the_service_is_used() {
        let e = errors(&with_backend("${vars.backend}", ENVS, ""));
        assert!(
            e.contains("services[0].targets[0].url: variable \"backend\" is not defined in environment \"prod\" (apis[0].routes[0] uses this service there)"),
            "{e}"
        );
        assert!(!e.contains("environment \"test\""), "{e}");
        // Used only where defined.
        valid(&with_backend(
            "${vars.backend}/base",
            ENVS,
            "    publish: [test]\n",
        ));
        // Drafts use nothing.
        valid(&with_backend("${vars.nowhere}", ENVS, "    publish: []\n"));
        // Malformed references are reported even where unused.
        let e = errors(&with_backend(
            "http://${vars.a-b}",
            ENVS,
            "    publish: []\n",
        ));
        assert!(
            e.contains("services[0].targets[0].url: malformed variable reference"),
            "{e}"
        );
    }

    #[test]
    fn resolved_urls_are_checked_per_environment() {
        let envs = "environments:\n  - {name: prod, variables: {backend: 'ftp://x'}}\n  - {name: test, hosts: [t.test], variables: {backend: 'http://127.0.0.1:9'}}\n";
        let e = errors(&with_backend("${vars.backend}", envs, ""));
        assert!(
            e.contains("services[0].targets[0].url: in environment \"prod\": target url \"ftp://x\" must start with http:// or https://"),
            "{e}"
        );
        assert!(!e.contains("\"test\""), "{e}");
    }
}
