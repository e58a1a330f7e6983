//! Path matching within one host: exact paths, a segment trie for templates and prefixes, and
//! regular expressions.
//!
//! Order (documented in docs/routing.md):
//! 1. exact patterns (`= /health`);
//! 2. templates, walking the path segment by segment, preferring at each segment a static
//!    segment over a `{param}` over a `{*catch_all}`, with backtracking;
//! 3. regular expressions, by `priority` (highest first), then declaration order;
//! 4. prefixes, longest first.
//!
//! At every step, a pattern's candidates (routes differing in method, header or query
//! conditions) are tried most-conditions first. Matching allocates nothing unless the route
//! captures parameters.

use foldhash::HashMap;
use std::sync::Arc;

use http::{HeaderMap, Method};
use regex::Regex;
use tollgate_model::{PathPattern, Segment};

use super::conditions::Conditions;

/// Most parameters a template may capture.
pub(crate) const MAX_PARAMS: usize = 16;
/// Deepest prefix the prefix walk follows.
const MAX_PREFIX_DEPTH: usize = 64;

/// One route's claim on a pattern.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The route, in the snapshot's routes.
    pub(crate) route: crate::RouteId,
    pub(crate) conditions: Conditions,
    /// Parameter names in capture order.
    pub(crate) params: Vec<Arc<str>>,
    /// The literal prefix a `strip_prefix`/`replace_prefix` rewrite removes.
    pub(crate) static_prefix: Arc<str>,
    /// Declaration order, for ties.
    pub(crate) order: usize,
    /// For regex entries.
    pub(crate) priority: i32,
}

/// A request's inputs to condition checks.
pub(crate) struct Cx<'a> {
    pub(crate) method: &'a Method,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) query: Option<&'a str>,
}

impl Cx<'_> {
    fn first<'e>(&self, entries: &'e [Entry]) -> Option<&'e Entry> {
        entries
            .iter()
            .find(|e| e.conditions.check(self.method, self.headers, self.query))
    }
}

#[derive(Debug, Default)]
struct Node {
    statics: HashMap<Box<str>, Node>,
    param: Option<Box<Node>>,
    end: Vec<Entry>,
    catch_all: Vec<Entry>,
    prefix: Vec<Entry>,
}

/// The patterns of one host (or of the any-host table).
#[derive(Debug, Default)]
pub(crate) struct PathTable {
    exact: HashMap<Box<str>, Vec<Entry>>,
    root: Node,
    regexes: Vec<(Regex, Entry)>,
}

/// A path match: the entry and the captured values (in the entry's parameter order).
pub(crate) struct PathMatch<'t, 'p> {
    pub(crate) entry: &'t Entry,
    pub(crate) captures: Vec<(Arc<str>, &'p str)>,
    pub(crate) regex_captures: Vec<(Arc<str>, String)>,
}

impl PathTable {
    pub(crate) fn insert(&mut self, pattern: &PathPattern, entry: Entry) {
        match pattern {
            PathPattern::Exact(p) => self.exact.entry(p.as_str().into()).or_default().push(entry),
            PathPattern::Prefix(p) => {
                let mut node = &mut self.root;
                for seg in p.split('/').filter(|s| !s.is_empty()) {
                    node = node.statics.entry(seg.into()).or_default();
                }
                node.prefix.push(entry);
            }
            PathPattern::Template(segments) => {
                let mut node = &mut self.root;
                for seg in segments {
                    match seg {
                        Segment::Static(s) => {
                            node = node.statics.entry(s.as_str().into()).or_default();
                        }
                        Segment::Param(_) => {
                            node = node.param.get_or_insert_with(Box::default);
                        }
                        Segment::CatchAll(_) => {
                            node.catch_all.push(entry);
                            return;
                        }
                    }
                }
                node.end.push(entry);
            }
            PathPattern::Regex(re) => {
                // Validated by the model; an invalid one cannot reach here.
                if let Ok(re) = Regex::new(re) {
                    self.regexes.push((re, entry));
                }
            }
        }
    }

    /// Orders candidates; call once after the last insert.
    pub(crate) fn finish(&mut self) {
        fn sort(entries: &mut [Entry]) {
            entries.sort_by(|a, b| {
                b.conditions
                    .weight()
                    .cmp(&a.conditions.weight())
                    .then(a.order.cmp(&b.order))
            });
        }
        fn walk(node: &mut Node) {
            sort(&mut node.end);
            sort(&mut node.catch_all);
            sort(&mut node.prefix);
            for child in node.statics.values_mut() {
                walk(child);
            }
            if let Some(p) = node.param.as_mut() {
                walk(p);
            }
        }
        for entries in self.exact.values_mut() {
            sort(entries);
        }
        walk(&mut self.root);
        self.regexes.sort_by(|(_, a), (_, b)| {
            b.priority
                .cmp(&a.priority)
                .then(b.conditions.weight().cmp(&a.conditions.weight()))
                .then(a.order.cmp(&b.order))
        });
    }

    pub(crate) fn find<'t, 'p>(&'t self, path: &'p str, cx: &Cx<'_>) -> Option<PathMatch<'t, 'p>> {
        if let Some(entry) = self.exact.get(path).and_then(|e| cx.first(e)) {
            return Some(PathMatch {
                entry,
                captures: Vec::new(),
                regex_captures: Vec::new(),
            });
        }
        let rest = path.strip_prefix('/').unwrap_or(path);
        let mut caps: [&'p str; MAX_PARAMS] = [""; MAX_PARAMS];
        if let Some((entry, n)) = dfs(&self.root, rest, &mut caps, 0, cx) {
            let captures = entry
                .params
                .iter()
                .cloned()
                .zip(caps[..n].iter().copied())
                .collect();
            return Some(PathMatch {
                entry,
                captures,
                regex_captures: Vec::new(),
            });
        }
        for (re, entry) in &self.regexes {
            if !entry.conditions.check(cx.method, cx.headers, cx.query) {
                continue;
            }
            if entry.params.is_empty() {
                if re.is_match(path) {
                    return Some(PathMatch {
                        entry,
                        captures: Vec::new(),
                        regex_captures: Vec::new(),
                    });
                }
            } else if let Some(c) = re.captures(path) {
                let regex_captures = entry
                    .params
                    .iter()
                    .filter_map(|name| c.name(name).map(|m| (name.clone(), m.as_str().to_owned())))
                    .collect();
                return Some(PathMatch {
                    entry,
                    captures: Vec::new(),
                    regex_captures,
                });
            }
        }
        self.longest_prefix(rest, cx).map(|entry| PathMatch {
            entry,
            captures: Vec::new(),
            regex_captures: Vec::new(),
        })
    }

    fn longest_prefix(&self, mut rest: &str, cx: &Cx<'_>) -> Option<&Entry> {
        let mut stack: [Option<&Node>; MAX_PREFIX_DEPTH] = [None; MAX_PREFIX_DEPTH];
        stack[0] = Some(&self.root);
        let mut depth = 1;
        let mut node = &self.root;
        while !rest.is_empty() && depth < MAX_PREFIX_DEPTH {
            let (seg, next) = split_segment(rest);
            match node.statics.get(seg) {
                Some(child) => {
                    node = child;
                    stack[depth] = Some(child);
                    depth += 1;
                    rest = next;
                }
                None => break,
            }
        }
        stack[..depth]
            .iter()
            .rev()
            .flatten()
            .find_map(|n| cx.first(&n.prefix))
    }
}

fn split_segment(rest: &str) -> (&str, &str) {
    match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    }
}

fn dfs<'t, 'p>(
    node: &'t Node,
    rest: &'p str,
    caps: &mut [&'p str; MAX_PARAMS],
    n: usize,
    cx: &Cx<'_>,
) -> Option<(&'t Entry, usize)> {
    if rest.is_empty() {
        if let Some(e) = cx.first(&node.end) {
            return Some((e, n));
        }
    } else {
        let (seg, next) = split_segment(rest);
        if let Some(child) = node.statics.get(seg)
            && let Some(found) = dfs(child, next, caps, n, cx)
        {
            return Some(found);
        }
        if !seg.is_empty()
            && n < MAX_PARAMS
            && let Some(child) = &node.param
        {
            caps[n] = seg;
            if let Some(found) = dfs(child, next, caps, n + 1, cx) {
                return Some(found);
            }
        }
    }
    if n < MAX_PARAMS
        && let Some(e) = cx.first(&node.catch_all)
    {
        caps[n] = rest;
        return Some((e, n + 1));
    }
    None
}
