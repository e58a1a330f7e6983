//! Environment selection: which environment's router serves a request.
//!
//! Each environment has its own [`Router`], compiled from the API versions live in it. A
//! request is served by, in order: the environment its environment header names, when that
//! environment allows `header_selection`; the environment bound to its host (exact before
//! wildcard, longest wildcard suffix first, as for API hosts); the environment without hosts.
//! None of these: no environment, and the proxy answers `404 no_environment`.
//!
//! The table is built when a snapshot is compiled. Selecting allocates nothing unless the host
//! has upper-case letters and more than one environment could answer; with a single
//! environment without hosts (the implicit `prod` of a configuration without `environments`)
//! it is one comparison.

use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderMap, HeaderName};

use crate::Router;

/// One environment, compiled.
#[derive(Debug)]
pub struct CompiledEnvironment {
    /// Its name, for logs and metrics.
    pub name: Arc<str>,
    /// Routes of the API versions live in it (shared with the next snapshot when they do not
    /// change).
    pub router: Arc<Router>,
}

/// How an environment is reached, as configured.
#[derive(Debug, Clone, Default)]
pub(crate) struct Binding {
    /// Bound hosts: exact or `*.` wildcards (validated).
    pub(crate) hosts: Vec<String>,
    /// Whether the environment header may select it.
    pub(crate) header_selection: bool,
}

/// Every environment of a snapshot, with the tables that select one for a request.
#[derive(Debug)]
pub struct Environments {
    list: Vec<CompiledEnvironment>,
    header: HeaderName,
    /// Environments the header may select: (name, index).
    by_header: Vec<(Box<str>, usize)>,
    exact: HashMap<Box<str>, usize>,
    /// `(".example.com", index)`, longest suffix first.
    wildcard: Vec<(Box<str>, usize)>,
    hostless: Option<usize>,
    /// The environment every request gets, when there is only one and it has no hosts.
    only: Option<usize>,
}

impl Environments {
    /// Builds the selection tables; `bindings[i]` belongs to `list[i]`.
    pub(crate) fn new(
        list: Vec<CompiledEnvironment>,
        bindings: &[Binding],
        header: HeaderName,
    ) -> Self {
        let mut by_header = Vec::new();
        let mut exact = HashMap::new();
        let mut wildcard: Vec<(Box<str>, usize)> = Vec::new();
        let mut hostless = None;
        for (i, binding) in bindings.iter().enumerate().take(list.len()) {
            if binding.header_selection {
                by_header.push((list[i].name.as_ref().into(), i));
            }
            if binding.hosts.is_empty() {
                hostless.get_or_insert(i);
            }
            for host in &binding.hosts {
                let host = host.to_ascii_lowercase();
                match host.strip_prefix('*') {
                    Some(suffix) => wildcard.push((suffix.into(), i)),
                    None => {
                        exact.entry(host.into_boxed_str()).or_insert(i);
                    }
                }
            }
        }
        wildcard.sort_by_key(|w| std::cmp::Reverse(w.0.len()));
        let only = (list.len() == 1).then_some(hostless).flatten();
        Self {
            list,
            header,
            by_header,
            exact,
            wildcard,
            hostless,
            only,
        }
    }

    /// The environment for a request with these headers and this host (without port, any
    /// case; only computed when hosts decide).
    pub fn select<'h>(
        &self,
        host: impl FnOnce() -> Option<&'h str>,
        headers: &HeaderMap,
    ) -> Option<(usize, &CompiledEnvironment)> {
        let index = self.select_index(host, headers)?;
        self.list.get(index).map(|e| (index, e))
    }

    fn select_index<'h>(
        &self,
        host: impl FnOnce() -> Option<&'h str>,
        headers: &HeaderMap,
    ) -> Option<usize> {
        if self.only.is_some() {
            return self.only;
        }
        if !self.by_header.is_empty()
            && let Some(wanted) = headers.get(&self.header)
            && let Some((_, i)) = self
                .by_header
                .iter()
                .find(|(name, _)| name.as_bytes() == wanted.as_bytes())
        {
            return Some(*i);
        }
        if (!self.exact.is_empty() || !self.wildcard.is_empty())
            && let Some(host) = host()
        {
            let lowered;
            let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
                lowered = host.to_ascii_lowercase();
                lowered.as_str()
            } else {
                host
            };
            if let Some(i) = self.exact.get(host) {
                return Some(*i);
            }
            for (suffix, i) in &self.wildcard {
                if host.len() > suffix.len() && host.ends_with(&**suffix) {
                    return Some(*i);
                }
            }
        }
        self.hostless
    }

    /// The environment at `index` (as in [`crate::CompiledRoute::environment`]).
    pub fn get(&self, index: usize) -> Option<&CompiledEnvironment> {
        self.list.get(index)
    }

    /// Every environment, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &CompiledEnvironment> {
        self.list.iter()
    }

    /// Number of environments.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when there is none (never, for a compiled configuration).
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The request header that selects an environment; never forwarded upstream.
    pub fn header(&self) -> &HeaderName {
        &self.header
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn envs(spec: &[(&str, &[&str], bool)]) -> Environments {
        let list = spec
            .iter()
            .map(|(name, _, _)| CompiledEnvironment {
                name: (*name).into(),
                router: Arc::default(),
            })
            .collect();
        let bindings: Vec<Binding> = spec
            .iter()
            .map(|(_, hosts, header_selection)| Binding {
                hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
                header_selection: *header_selection,
            })
            .collect();
        Environments::new(list, &bindings, HeaderName::from_static("x-tollgate-env"))
    }

    fn pick(e: &Environments, host: Option<&str>, header: Option<&str>) -> Option<String> {
        let mut headers = HeaderMap::new();
        if let Some(h) = header {
            headers.insert("x-tollgate-env", HeaderValue::from_str(h).unwrap());
        }
        e.select(|| host, &headers)
            .map(|(_, env)| env.name.to_string())
    }

    #[test]
    fn a_single_hostless_environment_takes_everything() {
        let e = envs(&[("prod", &[], false)]);
        assert_eq!(pick(&e, None, None).as_deref(), Some("prod"));
        assert_eq!(
            pick(&e, Some("x.test"), Some("test")).as_deref(),
            Some("prod")
        );
        // Without hosts to compare, the host is not even looked at.
        let picked = e.select(|| panic!("host computed"), &HeaderMap::new());
        assert_eq!(picked.map(|(i, _)| i), Some(0));
    }

    #[test]
    fn header_then_host_exact_then_wildcard_then_hostless() {
        let e = envs(&[
            ("prod", &[], false),
            ("test", &["*.test.example.com", "test.example.com"], true),
            ("staging", &["*.example.com", "Stage.example.com"], false),
        ]);
        assert_eq!(
            pick(&e, Some("api.example.com"), None).as_deref(),
            Some("staging")
        );
        assert_eq!(
            pick(&e, Some("a.test.example.com"), None).as_deref(),
            Some("test")
        );
        assert_eq!(
            pick(&e, Some("TEST.example.com"), None).as_deref(),
            Some("test")
        );
        assert_eq!(
            pick(&e, Some("stage.example.com"), None).as_deref(),
            Some("staging")
        );
        // The apex is not covered by its wildcard.
        assert_eq!(pick(&e, Some("example.com"), None).as_deref(), Some("prod"));
        assert_eq!(pick(&e, None, None).as_deref(), Some("prod"));
        // The header selects an environment that allows it, from any host ...
        assert_eq!(
            pick(&e, Some("api.example.com"), Some("test")).as_deref(),
            Some("test")
        );
        // ... and is ignored for one that does not, or that does not exist.
        assert_eq!(
            pick(&e, Some("a.test.example.com"), Some("staging")).as_deref(),
            Some("test")
        );
        assert_eq!(pick(&e, None, Some("prod")).as_deref(), Some("prod"));
        assert_eq!(pick(&e, None, Some("nope")).as_deref(), Some("prod"));
    }

    #[test]
    fn without_a_hostless_environment_unbound_hosts_get_none() {
        let e = envs(&[
            ("prod", &["api.example.com"], false),
            ("test", &["t.example.com"], true),
        ]);
        assert_eq!(pick(&e, Some("other.example.com"), None), None);
        assert_eq!(pick(&e, None, None), None);
        assert_eq!(
            pick(&e, Some("other.example.com"), Some("test")).as_deref(),
            Some("test")
        );
        let single = envs(&[("prod", &["api.example.com"], false)]);
        assert_eq!(pick(&single, Some("x.example.com"), None), None);
        assert_eq!(
            pick(&single, Some("api.example.com"), None).as_deref(),
            Some("prod")
        );
    }
}
