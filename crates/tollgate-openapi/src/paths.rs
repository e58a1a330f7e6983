//! OpenAPI paths and route path patterns, both ways.
//!
//! An OpenAPI path names exactly one path shape, never the paths below it, so import writes:
//!
//! | OpenAPI path          | route pattern                                  |
//! |-----------------------|------------------------------------------------|
//! | `/pets`               | `= /pets` (exact; a plain `/pets` would be a prefix) |
//! | `/pets/{petId}`       | `/pets/{petId}` (a template: one segment per parameter) |
//! | `/files/{name}.{ext}` | `~ ^/files/(?P<name>[^/]+)\.(?P<ext>[^/]+)$` (parameters inside a segment) |
//!
//! Parameter names in patterns are letters, digits and `_`: others become `_` (see
//! [`capture_name`]). Export reverses each form; a prefix route or a catch-all template has no
//! OpenAPI equivalent and is exported under its nearest path with the pattern in
//! `x-tollgate-path`, which import reads back.

use tollgate_model::{PathPattern, Segment};

/// The name a route pattern captures an OpenAPI path parameter under: characters other than
/// ASCII letters, digits and `_` become `_`, and a leading digit gets a `_` in front
/// (`pet-id` → `pet_id`). Request validation uses the same rule to find a parameter's value.
pub fn capture_name(openapi_name: &str) -> String {
    let mut out: String = openapi_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The route pattern for an OpenAPI path (relative to the API base path). `Err` explains why
/// the path cannot be routed.
pub(crate) fn pattern_for(path: &str) -> Result<PathPattern, String> {
    if !path.starts_with('/') {
        return Err("a path must start with '/'".to_owned());
    }
    let parts = pieces(path)?;
    // The path with parameters replaced must be a path a request can have.
    let literal: String = parts
        .iter()
        .map(|p| match p {
            Piece::Literal(t) => t,
            Piece::Param(_) => "x",
        })
        .collect();
    PathPattern::parse(&format!("= {literal}")).map_err(|e| e.to_string())?;
    if !parts.iter().any(|p| matches!(p, Piece::Param(_))) {
        return PathPattern::parse(&format!("= {path}")).map_err(|e| e.to_string());
    }
    let whole_segments = path
        .split('/')
        .all(|s| !s.contains(['{', '}']) || is_whole_param(s));
    if whole_segments {
        return PathPattern::parse(&with_capture_names(path)).map_err(|e| e.to_string());
    }
    let mut re = String::from("~ ^");
    for part in &parts {
        match part {
            Piece::Literal(t) => re.push_str(&regex::escape(t)),
            Piece::Param(name) => {
                re.push_str("(?P<");
                re.push_str(&capture_name(name));
                re.push_str(">[^/]+)");
            }
        }
    }
    re.push('$');
    PathPattern::parse(&re).map_err(|e| e.to_string())
}

/// `{name}` and nothing else.
fn is_whole_param(segment: &str) -> bool {
    segment.starts_with('{') && segment.ends_with('}') && segment.matches('{').count() == 1
}

/// An OpenAPI path for a route pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpenApiPath {
    /// The path, with `{name}` for each parameter (pattern names).
    pub(crate) path: String,
    /// Parameter names in order; `true` for a catch-all.
    pub(crate) params: Vec<(String, bool)>,
    /// Whether the path means exactly what the pattern matches; when not, export records the
    /// pattern in `x-tollgate-path`.
    pub(crate) faithful: bool,
}

/// The OpenAPI path for a pattern, or `None` for a regular expression other than the ones
/// [`pattern_for`] writes.
pub(crate) fn openapi_path(pattern: &PathPattern) -> Option<OpenApiPath> {
    match pattern {
        PathPattern::Exact(p) => Some(OpenApiPath {
            path: p.clone(),
            params: Vec::new(),
            faithful: true,
        }),
        PathPattern::Prefix(p) => Some(OpenApiPath {
            path: p.clone(),
            params: Vec::new(),
            faithful: false,
        }),
        PathPattern::Template(segments) => {
            let mut path = String::new();
            let mut params = Vec::new();
            for segment in segments {
                match segment {
                    Segment::Static(s) => {
                        path.push('/');
                        path.push_str(s);
                    }
                    Segment::Param(n) => {
                        path.push_str(&format!("/{{{n}}}"));
                        params.push((n.clone(), false));
                    }
                    Segment::CatchAll(n) => {
                        path.push_str(&format!("/{{{n}}}"));
                        params.push((n.clone(), true));
                    }
                }
            }
            if path.is_empty() {
                path.push('/');
            }
            let faithful = !params.iter().any(|(_, catch_all)| *catch_all);
            Some(OpenApiPath {
                path,
                params,
                faithful,
            })
        }
        PathPattern::Regex(re) => from_regex(re),
    }
}

/// The OpenAPI path with its parameter names as patterns capture them.
pub(crate) fn with_capture_names(path: &str) -> String {
    rename_params(path, capture_name)
}

/// `path` with each `{name}` replaced by `{rename(name)}`.
pub(crate) fn rename_params(path: &str, rename: impl Fn(&str) -> String) -> String {
    match pieces(path) {
        Ok(parts) => parts
            .into_iter()
            .map(|p| match p {
                Piece::Literal(t) => t.to_owned(),
                Piece::Param(n) => format!("{{{}}}", rename(n)),
            })
            .collect(),
        Err(_) => path.to_owned(),
    }
}

/// Names of the `{...}` parameters of an OpenAPI path, as written.
pub(crate) fn param_names(path: &str) -> Vec<String> {
    pieces(path)
        .map(|parts| {
            parts
                .into_iter()
                .filter_map(|p| match p {
                    Piece::Param(n) => Some(n.to_owned()),
                    Piece::Literal(_) => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

enum Piece<'a> {
    Literal(&'a str),
    Param(&'a str),
}

/// Splits an OpenAPI path into literal text and `{name}` parameters.
fn pieces(path: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        match rest.find(['{', '}']) {
            Some(i) if rest.as_bytes()[i] == b'}' => {
                return Err("unbalanced '}' in the path".to_owned());
            }
            Some(open) => {
                if open > 0 {
                    out.push(Piece::Literal(&rest[..open]));
                }
                let after = &rest[open + 1..];
                let close = after
                    .find('}')
                    .ok_or_else(|| "unclosed '{' in the path".to_owned())?;
                let name = &after[..close];
                if name.is_empty() || name.contains(['{', '/']) {
                    return Err(format!("bad parameter {{{name}}} in the path"));
                }
                out.push(Piece::Param(name));
                rest = &after[close + 1..];
            }
            None => {
                out.push(Piece::Literal(rest));
                rest = "";
            }
        }
    }
    Ok(out)
}

/// Inverts the regular expressions [`pattern_for`] writes: `^`, escaped literal text and
/// `(?P<name>[^/]+)` groups, `$`.
fn from_regex(re: &str) -> Option<OpenApiPath> {
    const GROUP_END: &str = ">[^/]+)";
    let mut rest = re.strip_prefix('^')?.strip_suffix('$')?;
    let mut path = String::new();
    let mut params = Vec::new();
    while let Some(c) = rest.chars().next() {
        if let Some(group) = rest.strip_prefix("(?P<") {
            let end = group.find(GROUP_END)?;
            let name = &group[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return None;
            }
            path.push_str(&format!("{{{name}}}"));
            params.push((name.to_owned(), false));
            rest = &group[end + GROUP_END.len()..];
        } else if c == '\\' {
            let escaped = rest[1..].chars().next()?;
            if !is_meta(escaped) {
                return None;
            }
            path.push(escaped);
            rest = &rest[1 + escaped.len_utf8()..];
        } else if is_meta(c) {
            return None;
        } else {
            path.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    path.starts_with('/').then_some(OpenApiPath {
        path,
        params,
        faithful: true,
    })
}

/// Characters `regex::escape` escapes.
fn is_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '.'
            | '+'
            | '*'
            | '?'
            | '('
            | ')'
            | '|'
            | '['
            | ']'
            | '{'
            | '}'
            | '^'
            | '$'
            | '#'
            | '&'
            | '-'
            | '~'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(path: &str) -> String {
        pattern_for(path).unwrap().to_string()
    }

    #[test]
    fn openapi_paths_become_exact_routes() {
        assert_eq!(pattern("/pets"), "= /pets");
        assert_eq!(pattern("/"), "= /");
        assert_eq!(pattern("/pets/{petId}"), "/pets/{petId}");
        assert_eq!(pattern("/users/{user-id}/keys"), "/users/{user_id}/keys");
        assert_eq!(
            pattern("/files/{name}.{ext}"),
            r"~ ^/files/(?P<name>[^/]+)\.(?P<ext>[^/]+)$"
        );
        assert!(pattern_for("pets").is_err());
        assert!(pattern_for("/a//b").is_err());
        assert!(pattern_for("/a/{b").is_err());
        assert!(pattern_for("/a/{x}/{x}").is_err());
        assert_eq!(pattern("/a/{x}{y}"), "~ ^/a/(?P<x>[^/]+)(?P<y>[^/]+)$");
    }

    #[test]
    fn patterns_become_openapi_paths() {
        for path in [
            "/pets",
            "/pets/{petId}",
            "/files/{name}.{ext}",
            "/a-b/v{n}~x",
        ] {
            let p = pattern_for(path).unwrap();
            let back = openapi_path(&p).unwrap();
            assert_eq!(back.path, path);
            assert!(back.faithful);
        }
        let prefix = openapi_path(&PathPattern::parse("/echo").unwrap()).unwrap();
        assert_eq!((prefix.path.as_str(), prefix.faithful), ("/echo", false));
        let rest = openapi_path(&PathPattern::parse("/f/{*rest}").unwrap()).unwrap();
        assert_eq!(rest.path, "/f/{rest}");
        assert_eq!(rest.params, vec![("rest".to_owned(), true)]);
        assert!(!rest.faithful);
        assert!(openapi_path(&PathPattern::parse("~ ^/v[0-9]+/").unwrap()).is_none());
    }

    #[test]
    fn capture_names() {
        assert_eq!(capture_name("petId"), "petId");
        assert_eq!(capture_name("pet-id"), "pet_id");
        assert_eq!(capture_name("1st"), "_1st");
        assert_eq!(with_capture_names("/a/{pet-id}"), "/a/{pet_id}");
        assert_eq!(param_names("/a/{pet-id}/{b}.json"), ["pet-id", "b"]);
    }
}
