//! The router: host, then path, then method, header and query conditions.
//!
//! Hosts are looked up exact first, then wildcards (`*.example.com`, longest suffix first, any
//! depth of subdomain, never the apex), then routes without hosts; the first host table with a
//! matching route wins, so a host-specific API does not hide the host-independent ones for
//! paths it does not serve.

mod conditions;
mod path;

use foldhash::HashMap;
use std::sync::Arc;

use http::{HeaderMap, Method};
use tollgate_model::PathPattern;
use tollgate_plugin_api::Params;

pub(crate) use conditions::{Conditions, ValueTest};
pub(crate) use path::{Entry, MAX_PARAMS, PathTable};

/// What the router looks at.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// Host without port, any case.
    pub host: Option<&'a str>,
    /// Method.
    pub method: &'a Method,
    /// Normalized path.
    pub path: &'a str,
    /// Raw query string.
    pub query: Option<&'a str>,
    /// Headers.
    pub headers: &'a HeaderMap,
}

/// A routing decision.
#[derive(Debug, Clone)]
pub struct Match {
    /// The route, in [`crate::Snapshot::routes`].
    pub route: crate::RouteId,
    /// Captured parameters.
    pub params: Params,
    /// The literal path prefix the matched pattern stands for (for prefix rewrites).
    pub static_prefix: Arc<str>,
}

/// Host tables of path tables.
#[derive(Debug, Default)]
pub struct Router {
    exact: HashMap<Box<str>, PathTable>,
    /// `(".example.com", table)`, longest suffix first.
    wildcard: Vec<(Box<str>, PathTable)>,
    any: PathTable,
}

impl Router {
    pub(crate) fn insert(&mut self, host: Option<&str>, pattern: &PathPattern, entry: Entry) {
        let table = match host {
            None => &mut self.any,
            Some(h) => {
                let h = h.to_ascii_lowercase();
                if let Some(suffix) = h.strip_prefix('*') {
                    match self.wildcard.iter().position(|(s, _)| **s == *suffix) {
                        Some(i) => &mut self.wildcard[i].1,
                        None => {
                            self.wildcard.push((suffix.into(), PathTable::default()));
                            let last = self.wildcard.len() - 1;
                            &mut self.wildcard[last].1
                        }
                    }
                } else {
                    self.exact.entry(h.into()).or_default()
                }
            }
        };
        table.insert(pattern, entry);
    }

    pub(crate) fn finish(&mut self) {
        self.wildcard.sort_by_key(|w| std::cmp::Reverse(w.0.len()));
        for t in self.exact.values_mut() {
            t.finish();
        }
        for (_, t) in &mut self.wildcard {
            t.finish();
        }
        self.any.finish();
    }

    /// Finds the route for a request.
    pub fn find(&self, req: &RequestView<'_>) -> Option<Match> {
        let cx = path::Cx {
            method: req.method,
            headers: req.headers,
            query: req.query,
        };
        let mut lowered = String::new();
        let host = req.host.map(|h| {
            if h.bytes().any(|b| b.is_ascii_uppercase()) {
                lowered = h.to_ascii_lowercase();
                lowered.as_str()
            } else {
                h
            }
        });
        if let Some(host) = host {
            if let Some(m) = self.exact.get(host).and_then(|t| t.find(req.path, &cx)) {
                return Some(to_match(m));
            }
            for (suffix, table) in &self.wildcard {
                if host.len() > suffix.len()
                    && host.ends_with(&**suffix)
                    && let Some(m) = table.find(req.path, &cx)
                {
                    return Some(to_match(m));
                }
            }
        }
        self.any.find(req.path, &cx).map(to_match)
    }
}

fn to_match(m: path::PathMatch<'_, '_>) -> Match {
    let mut params: Vec<(Arc<str>, String)> = m
        .captures
        .into_iter()
        .map(|(n, v)| (n, v.to_owned()))
        .collect();
    params.extend(m.regex_captures);
    Match {
        route: m.entry.route,
        params: Params(params),
        static_prefix: m.entry.static_prefix.clone(),
    }
}

#[cfg(test)]
mod tests;
