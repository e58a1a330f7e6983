//! Maps a configuration field path (`apis[1].routes[0].service`) to the line and column where that
//! field appears in the YAML or JSON source text, so that diagnostics can point at the exact spot.
//!
//! The source is read with `saphyr-parser`'s event API into a small tree of nodes that remember
//! where they start; the path is then walked through that tree. JSON needs no separate handling:
//! it is YAML flow syntax.

use std::collections::HashMap;

use saphyr_parser::{Event, Marker, Parser};

use crate::{FieldPath, Location, PathSegment};

/// Finds where the value at `path` starts in `source` (YAML or JSON text).
///
/// * For a [`PathSegment::Key`] the location is that of the key in its mapping (for
///   `routes[0].service`, the `service:` key), which is what a reader wants to see.
/// * For a [`PathSegment::Index`] the location is that of the sequence item (for a block sequence,
///   the start of the item's content right after `- `; for a flow sequence, the element itself).
/// * The root path is line 1, column 1.
///
/// When the full path does not exist (missing key, index out of range, a key asked of a sequence or
/// scalar, ...), the location of the deepest prefix of `path` that does exist is returned: for a
/// missing field, that is where the enclosing mapping is named or listed.
///
/// Lines and columns are 1-based; columns count characters (Unicode scalar values), a tab counting
/// as one. Only the first document of a multi-document stream is considered. Aliases are followed
/// to the node their anchor names, so a field reached through `*alias` is located where the
/// anchored node defines it. When a mapping repeats a key, the last occurrence wins.
///
/// Returns `None` only when the (first document of the) source is not valid YAML.
pub fn locate(source: &str, path: &FieldPath) -> Option<Location> {
    let tree = Tree::parse(source)?;
    let mut location = Location { line: 1, column: 1 };
    let Some(mut current) = tree.root else {
        return Some(location);
    };
    for segment in &path.0 {
        let Some((found, at)) = tree.step(current, segment) else {
            break;
        };
        current = found;
        location = at;
    }
    Some(location)
}

/// What a node of the document is.
#[derive(Debug)]
enum Kind {
    /// A scalar, with its (unquoted, unescaped) value.
    Scalar(String),
    /// A sequence: the indices of its items.
    Sequence(Vec<usize>),
    /// A mapping: the indices of its keys and values, in document order.
    Mapping(Vec<(usize, usize)>),
    /// An alias, with the id of the anchor it refers to.
    Alias(usize),
}

/// One node of the document with where it starts.
#[derive(Debug)]
struct Node {
    kind: Kind,
    start: Location,
}

/// A mapping or sequence whose end event has not been seen yet.
#[derive(Debug)]
struct Open {
    /// Index of the container node in [`Tree::nodes`].
    node: usize,
    /// For a mapping, a key that still waits for its value.
    pending_key: Option<usize>,
}

/// The first document of a source, as a tree of nodes in an arena.
#[derive(Debug, Default)]
struct Tree {
    nodes: Vec<Node>,
    /// Anchor id → node carrying that anchor.
    anchors: HashMap<usize, usize>,
    /// The document's root node; `None` for a stream without any document.
    root: Option<usize>,
}

impl Tree {
    /// Reads the first document of `source`; `None` if it is not valid YAML.
    fn parse(source: &str) -> Option<Self> {
        let mut tree = Self::default();
        let mut stack: Vec<Open> = Vec::new();
        let mut seen_document = false;
        for item in Parser::new_from_str(source) {
            let (event, span) = item.ok()?;
            let start = to_location(span.start);
            match event {
                Event::DocumentStart(_) => {
                    if seen_document {
                        break;
                    }
                    seen_document = true;
                }
                Event::DocumentEnd | Event::StreamEnd => {
                    if seen_document {
                        break;
                    }
                }
                Event::Nothing | Event::StreamStart => {}
                Event::Scalar(value, _, anchor, _) => {
                    let node = tree.push(Kind::Scalar(value.into_owned()), start, anchor);
                    tree.attach(&mut stack, node);
                }
                Event::Alias(anchor) => {
                    let node = tree.push(Kind::Alias(anchor), start, 0);
                    tree.attach(&mut stack, node);
                }
                Event::SequenceStart(anchor, _) => {
                    let node = tree.push(Kind::Sequence(Vec::new()), start, anchor);
                    stack.push(Open {
                        node,
                        pending_key: None,
                    });
                }
                Event::MappingStart(anchor, _) => {
                    let node = tree.push(Kind::Mapping(Vec::new()), start, anchor);
                    stack.push(Open {
                        node,
                        pending_key: None,
                    });
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    if let Some(open) = stack.pop() {
                        tree.attach(&mut stack, open.node);
                    }
                }
            }
        }
        Some(tree)
    }

    /// Adds a node (registering its anchor, if any) and returns its index.
    fn push(&mut self, kind: Kind, start: Location, anchor: usize) -> usize {
        let index = self.nodes.len();
        self.nodes.push(Node { kind, start });
        if anchor != 0 {
            self.anchors.insert(anchor, index);
        }
        index
    }

    /// Makes a complete node a child of the innermost open container, or the root.
    fn attach(&mut self, stack: &mut [Open], node: usize) {
        let Some(parent) = stack.last_mut() else {
            if self.root.is_none() {
                self.root = Some(node);
            }
            return;
        };
        let Some(container) = self.nodes.get_mut(parent.node) else {
            return;
        };
        match &mut container.kind {
            Kind::Sequence(items) => items.push(node),
            Kind::Mapping(entries) => match parent.pending_key.take() {
                Some(key) => entries.push((key, node)),
                None => parent.pending_key = Some(node),
            },
            Kind::Scalar(_) | Kind::Alias(_) => {}
        }
    }

    /// The node at `index`, following an alias to its anchored node.
    fn resolve(&self, index: usize) -> Option<&Node> {
        let node = self.nodes.get(index)?;
        match node.kind {
            Kind::Alias(anchor) => self.nodes.get(*self.anchors.get(&anchor)?),
            _ => Some(node),
        }
    }

    /// Follows one path segment from `from`: the child node and the location to report for it.
    fn step(&self, from: usize, segment: &PathSegment) -> Option<(usize, Location)> {
        match (&self.resolve(from)?.kind, segment) {
            (Kind::Mapping(entries), PathSegment::Key(wanted)) => {
                entries
                    .iter()
                    .rev()
                    .find_map(|&(key, value)| match &self.resolve(key)?.kind {
                        Kind::Scalar(text) if text == wanted => {
                            Some((value, self.nodes.get(key)?.start))
                        }
                        _ => None,
                    })
            }
            (Kind::Sequence(items), PathSegment::Index(wanted)) => {
                let item = *items.get(*wanted)?;
                Some((item, self.nodes.get(item)?.start))
            }
            _ => None,
        }
    }
}

/// Converts a parser marker (1-based line, 0-based column) to a 1-based [`Location`].
fn to_location(marker: Marker) -> Location {
    Location {
        line: marker.line(),
        column: marker.col() + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `a.b[2].c` style paths for the tests.
    fn path(text: &str) -> FieldPath {
        let mut segments = Vec::new();
        for part in text.split('.').filter(|part| !part.is_empty()) {
            let (key, mut rest) = match part.find('[') {
                Some(at) => part.split_at(at),
                None => (part, ""),
            };
            if !key.is_empty() {
                segments.push(PathSegment::Key(key.to_owned()));
            }
            while let Some(stripped) = rest.strip_prefix('[') {
                let close = stripped.find(']').expect("closing bracket");
                let index = stripped[..close].parse().expect("numeric index");
                segments.push(PathSegment::Index(index));
                rest = &stripped[close + 1..];
            }
        }
        FieldPath(segments)
    }

    fn at(line: usize, column: usize) -> Option<Location> {
        Some(Location { line, column })
    }

    const NESTED: &str = "\
# Tollgate configuration
services:
  - name: users
    targets: [\"http://10.0.0.1:8080\"]
apis:
  - name: first
    routes:
      - path: /a
        service: users
  - name: second
    routes:
      - path: /b
        service: users
        methods:
          - GET
          -   POST
      - path: /c
        \"service\": 'orders'
";

    #[test]
    fn path_helper_parses_notation() {
        assert_eq!(
            path("apis[1].routes[0].service"),
            FieldPath::root()
                .key("apis")
                .index(1)
                .key("routes")
                .index(0)
                .key("service")
        );
        assert_eq!(
            path("a[1][2]"),
            FieldPath::root().key("a").index(1).index(2)
        );
        assert_eq!(path(""), FieldPath::root());
    }

    #[test]
    fn root_is_first_line_first_column() {
        assert_eq!(locate(NESTED, &FieldPath::root()), at(1, 1));
        assert_eq!(locate("", &FieldPath::root()), at(1, 1));
        assert_eq!(locate("# only a comment\n", &FieldPath::root()), at(1, 1));
        assert_eq!(locate("{}", &FieldPath::root()), at(1, 1));
    }

    #[test]
    fn nested_block_yaml_points_at_key() {
        assert_eq!(
            locate(NESTED, &path("apis[1].routes[0].service")),
            at(13, 9)
        );
        assert_eq!(locate(NESTED, &path("apis[0].routes[0].service")), at(9, 9));
        assert_eq!(locate(NESTED, &path("apis[1].routes[0].path")), at(12, 9));
        assert_eq!(locate(NESTED, &path("apis")), at(5, 1));
        assert_eq!(locate(NESTED, &path("services")), at(2, 1));
        assert_eq!(locate(NESTED, &path("apis[1].name")), at(10, 5));
    }

    #[test]
    fn block_sequence_items_point_at_item_content() {
        assert_eq!(locate(NESTED, &path("apis[0]")), at(6, 5));
        assert_eq!(locate(NESTED, &path("apis[1]")), at(10, 5));
        assert_eq!(locate(NESTED, &path("apis[1].routes[1]")), at(17, 9));
        assert_eq!(
            locate(NESTED, &path("apis[1].routes[0].methods[0]")),
            at(15, 13)
        );
        assert_eq!(
            locate(NESTED, &path("apis[1].routes[0].methods[1]")),
            at(16, 15)
        );
        assert_eq!(locate(NESTED, &path("services[0].targets[0]")), at(4, 15));
    }

    #[test]
    fn quoted_keys_match_by_value() {
        assert_eq!(
            locate(NESTED, &path("apis[1].routes[1].service")),
            at(18, 9)
        );
        let source = "'single': 1\n\"dou\\u0062le\": 2\n";
        assert_eq!(locate(source, &path("single")), at(1, 1));
        assert_eq!(locate(source, &path("double")), at(2, 1));
    }

    #[test]
    fn missing_key_returns_enclosing_location() {
        // The route exists but has no `timeout`: point at the route item.
        assert_eq!(
            locate(NESTED, &path("apis[1].routes[0].timeout")),
            at(12, 9)
        );
        // Deeper missing path below a missing key: still the deepest existing prefix.
        assert_eq!(
            locate(NESTED, &path("apis[1].routes[0].timeout.read")),
            at(12, 9)
        );
        // Missing top-level key: the root.
        assert_eq!(locate(NESTED, &path("server")), at(1, 1));
        assert_eq!(locate(NESTED, &path("server.listen[0]")), at(1, 1));
    }

    #[test]
    fn index_out_of_range_returns_sequence_location() {
        assert_eq!(locate(NESTED, &path("apis[2]")), at(5, 1));
        assert_eq!(locate(NESTED, &path("apis[2].routes[0].service")), at(5, 1));
        assert_eq!(locate(NESTED, &path("apis[1].routes[5]")), at(11, 5));
        assert_eq!(locate("list: []\n", &path("list[0]")), at(1, 1));
    }

    #[test]
    fn wrong_shape_stops_at_deepest_prefix() {
        // A key asked of a sequence, an index asked of a mapping, anything asked of a scalar.
        assert_eq!(locate(NESTED, &path("apis.name")), at(5, 1));
        assert_eq!(locate(NESTED, &path("apis[0][0]")), at(6, 5));
        assert_eq!(locate(NESTED, &path("apis[0].name.first")), at(6, 5));
        assert_eq!(locate(NESTED, &path("apis[0].name[0]")), at(6, 5));
        // A scalar document.
        assert_eq!(locate("just text\n", &path("a")), at(1, 1));
    }

    #[test]
    fn json_input() {
        let source = r#"{
  "services": [
    {"name": "users", "targets": ["http://10.0.0.1:8080"]}
  ],
  "apis": [
    {
      "name": "first",
      "routes": [
        {"path": "/a", "service": "users"}
      ]
    }
  ]
}
"#;
        assert_eq!(locate(source, &FieldPath::root()), at(1, 1));
        assert_eq!(locate(source, &path("apis")), at(5, 3));
        assert_eq!(locate(source, &path("apis[0]")), at(6, 5));
        assert_eq!(locate(source, &path("apis[0].routes[0]")), at(9, 9));
        assert_eq!(
            locate(source, &path("apis[0].routes[0].service")),
            at(9, 24)
        );
        assert_eq!(locate(source, &path("services[0].targets[0]")), at(3, 35));
        assert_eq!(locate(source, &path("services[0].name")), at(3, 6));
        assert_eq!(locate(source, &path("apis[0].routes[0].missing")), at(9, 9));
        assert_eq!(locate(source, &path("apis[0].routes[1]")), at(8, 7));
    }

    #[test]
    fn compact_and_tab_indented_json() {
        let compact = r#"{"a":1,"b":{"c":[true,false]}}"#;
        assert_eq!(locate(compact, &path("a")), at(1, 2));
        assert_eq!(locate(compact, &path("b.c")), at(1, 13));
        assert_eq!(locate(compact, &path("b.c[1]")), at(1, 23));

        let tabs = "{\n\t\"apis\": [\n\t\t{\"name\": \"x\"}\n\t]\n}\n";
        assert_eq!(locate(tabs, &path("apis")), at(2, 2));
        assert_eq!(locate(tabs, &path("apis[0].name")), at(3, 4));
    }

    #[test]
    fn flow_style_yaml() {
        assert_eq!(locate("{a: 1}", &path("a")), at(1, 2));
        assert_eq!(locate("{a: 1}", &path("b")), at(1, 1));
        let source = "server: {listen: [\":8080\", \":8443\"], name: edge}\n";
        assert_eq!(locate(source, &path("server")), at(1, 1));
        assert_eq!(locate(source, &path("server.listen")), at(1, 10));
        assert_eq!(locate(source, &path("server.listen[1]")), at(1, 28));
        assert_eq!(locate(source, &path("server.name")), at(1, 38));
        assert_eq!(locate(source, &path("server.missing")), at(1, 1));
    }

    #[test]
    fn mixed_block_and_flow() {
        let source = "apis:\n  - {name: a, routes: [{path: /x, service: s}]}\n";
        assert_eq!(locate(source, &path("apis[0]")), at(2, 5));
        assert_eq!(
            locate(source, &path("apis[0].routes[0].service")),
            at(2, 35)
        );
    }

    #[test]
    fn empty_values_and_items() {
        let source = "a:\nb:\n  -\n  - x\n";
        assert_eq!(locate(source, &path("a")), at(1, 1));
        assert_eq!(locate(source, &path("a.c")), at(1, 1));
        assert_eq!(locate(source, &path("b[0]")), at(3, 4));
        assert_eq!(locate(source, &path("b[1]")), at(4, 5));
    }

    #[test]
    fn anchors_and_aliases() {
        let source = "\
defaults: &defaults
  timeout: 5s
  retries: 2
primary: *defaults
items:
  - &first one
  - *first
self: &loop [*loop]
";
        assert_eq!(locate(source, &path("primary")), at(4, 1));
        // Fields reached through an alias are located where the anchor defines them.
        assert_eq!(locate(source, &path("primary.retries")), at(3, 3));
        assert_eq!(locate(source, &path("primary.missing")), at(4, 1));
        assert_eq!(locate(source, &path("items[1]")), at(7, 5));
        assert_eq!(locate(source, &path("items[1].x")), at(7, 5));
        // A self-referencing anchor must not loop.
        assert_eq!(locate(source, &path("self[0][0][0][0]")), at(8, 14));
    }

    #[test]
    fn aliased_keys_match() {
        let source = "names:\n  - &k service\nroute:\n  *k : users\n";
        assert_eq!(locate(source, &path("route.service")), at(4, 3));
    }

    #[test]
    fn duplicate_keys_use_last() {
        let source = "a: 1\nb: 2\na: 3\n";
        assert_eq!(locate(source, &path("a")), at(3, 1));
    }

    #[test]
    fn multi_document_uses_first() {
        let source = "---\na: 1\n---\nb: 2\n";
        assert_eq!(locate(source, &path("a")), at(2, 1));
        assert_eq!(locate(source, &path("b")), at(1, 1));
        // A broken later document does not matter.
        let source = "a: 1\n---\nb: [\n";
        assert_eq!(locate(source, &path("a")), at(1, 1));
    }

    #[test]
    fn tags_and_explicit_documents() {
        let source = "%YAML 1.2\n---\n!!map\nkey: !!str value\nlist: !!seq\n  - !custom 1\n...\n";
        assert_eq!(locate(source, &path("key")), at(4, 1));
        assert_eq!(locate(source, &path("list[0]")), at(6, 5));
    }

    #[test]
    fn columns_count_characters_and_skip_bom() {
        let source = "\u{feff}name: é\r\nnested: {ünï: 1, après: 2}\r\n";
        assert_eq!(locate(source, &path("name")), at(1, 1));
        assert_eq!(locate(source, &path("nested.après")), at(2, 18));
    }

    #[test]
    fn unparseable_input_returns_none() {
        assert_eq!(locate("a: [1, 2\n", &FieldPath::root()), None);
        assert_eq!(locate("a: [1, 2\n", &path("a")), None);
        assert_eq!(locate("{\"a\": 1,,}", &path("a")), None);
        assert_eq!(locate("a: b: c\n", &path("a")), None);
        assert_eq!(locate("key: \"unterminated\n", &path("key")), None);
        assert_eq!(locate("a: *undefined\n", &path("a")), None);
        assert_eq!(locate("a:\n  b: 1\n c: 2\n", &path("a.b")), None);
    }
}
