//! Route path patterns: prefix, exact, template and regex.
//!
//! | written           | kind     | matches                                           |
//! |-------------------|----------|---------------------------------------------------|
//! | `/echo`           | prefix   | `/echo`, `/echo/`, `/echo/a/b` (not `/echoes`)    |
//! | `= /health`       | exact    | `/health` only                                    |
//! | `/users/{id}`     | template | `/users/42` (one segment per parameter)           |
//! | `/files/{*rest}`  | template | `/files/` and everything below, `rest` captured   |
//! | `~ ^/v[0-9]+/`    | regex    | any path the expression matches (named captures)  |

use std::fmt;

/// One segment of a template pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Literal segment text (already normalized form).
    Static(String),
    /// `{name}`: exactly one non-empty segment.
    Param(String),
    /// `{*name}`: the rest of the path (possibly empty); only last.
    CatchAll(String),
}

/// A parsed route path pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathPattern {
    /// The path and everything below it, segment-bounded. Stored without trailing slash
    /// (except the root `/`).
    Prefix(String),
    /// Exactly this path.
    Exact(String),
    /// Segments with parameters.
    Template(Vec<Segment>),
    /// A regular expression over the whole path.
    Regex(String),
}

/// Why a path pattern is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Does not start with `/`.
    #[error("path {0:?} must start with '/'")]
    NotAbsolute(String),
    /// Bad `{...}` syntax.
    #[error("path {pattern:?}: {reason}")]
    BadTemplate {
        /// The pattern.
        pattern: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The regular expression does not compile.
    #[error("invalid regular expression {pattern:?}: {reason}")]
    BadRegex {
        /// The expression.
        pattern: String,
        /// The regex crate's message.
        reason: String,
    },
    /// Contains characters a normalized path never has.
    #[error(
        "path {0:?} contains characters that a normalized request path never has (dot segments, '//', spaces or '%')"
    )]
    NotNormalized(String),
}

impl PathPattern {
    /// Parses a pattern as written in a route's `paths`.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let text = text.trim();
        if let Some(re) = text.strip_prefix('~') {
            let re = re.trim_start();
            regex::Regex::new(re).map_err(|e| PatternError::BadRegex {
                pattern: re.to_owned(),
                reason: e.to_string(),
            })?;
            return Ok(Self::Regex(re.to_owned()));
        }
        if let Some(exact) = text.strip_prefix('=') {
            let exact = exact.trim_start();
            check_static(exact)?;
            return Ok(Self::Exact(exact.to_owned()));
        }
        if text.contains('{') || text.contains('}') {
            return parse_template(text).map(Self::Template);
        }
        check_static(text)?;
        let trimmed = text.trim_end_matches('/');
        Ok(Self::Prefix(if trimmed.is_empty() {
            "/".to_owned()
        } else {
            trimmed.to_owned()
        }))
    }

    /// The pattern with `base` (an API base path such as `/v1`) in front.
    pub fn with_base(&self, base: &str) -> Self {
        let base = base.trim_end_matches('/');
        if base.is_empty() {
            return self.clone();
        }
        match self {
            Self::Prefix(p) if p == "/" => Self::Prefix(base.to_owned()),
            Self::Prefix(p) => Self::Prefix(format!("{base}{p}")),
            Self::Exact(p) => Self::Exact(format!("{base}{p}")),
            Self::Template(segments) => {
                let mut all: Vec<Segment> = base
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(|s| Segment::Static(s.to_owned()))
                    .collect();
                all.extend(segments.iter().cloned());
                Self::Template(all)
            }
            Self::Regex(re) => {
                let body = re.strip_prefix('^').unwrap_or(re);
                Self::Regex(format!("^{}{}", regex::escape(base), body))
            }
        }
    }

    /// The literal prefix a `strip_prefix`/`replace_prefix` rewrite removes: the whole path for
    /// prefix and exact patterns, the static leading segments for templates, nothing for regex.
    pub fn static_prefix(&self) -> String {
        match self {
            Self::Prefix(p) | Self::Exact(p) => {
                if p == "/" {
                    String::new()
                } else {
                    p.clone()
                }
            }
            Self::Template(segments) => {
                let mut out = String::new();
                for segment in segments {
                    match segment {
                        Segment::Static(s) => {
                            out.push('/');
                            out.push_str(s);
                        }
                        _ => break,
                    }
                }
                out
            }
            Self::Regex(_) => String::new(),
        }
    }

    /// Names of the parameters this pattern captures.
    pub fn param_names(&self) -> Vec<String> {
        match self {
            Self::Template(segments) => segments
                .iter()
                .filter_map(|s| match s {
                    Segment::Param(n) | Segment::CatchAll(n) => Some(n.clone()),
                    Segment::Static(_) => None,
                })
                .collect(),
            Self::Regex(re) => regex::Regex::new(re)
                .map(|r| r.capture_names().flatten().map(str::to_owned).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Prefix(p) => f.write_str(p),
            Self::Exact(p) => write!(f, "= {p}"),
            Self::Regex(r) => write!(f, "~ {r}"),
            Self::Template(segments) => {
                if segments.is_empty() {
                    return f.write_str("/");
                }
                for s in segments {
                    match s {
                        Segment::Static(t) => write!(f, "/{t}")?,
                        Segment::Param(n) => write!(f, "/{{{n}}}")?,
                        Segment::CatchAll(n) => write!(f, "/{{*{n}}}")?,
                    }
                }
                Ok(())
            }
        }
    }
}

fn check_static(path: &str) -> Result<(), PatternError> {
    if !path.starts_with('/') {
        return Err(PatternError::NotAbsolute(path.to_owned()));
    }
    let bad = path.contains("//")
        || path.contains('%')
        || path.chars().any(|c| c.is_whitespace() || c.is_control())
        || path
            .split('/')
            .any(|segment| segment == "." || segment == "..");
    if bad {
        return Err(PatternError::NotNormalized(path.to_owned()));
    }
    Ok(())
}

fn parse_template(text: &str) -> Result<Vec<Segment>, PatternError> {
    let bad = |reason| PatternError::BadTemplate {
        pattern: text.to_owned(),
        reason,
    };
    if !text.starts_with('/') {
        return Err(PatternError::NotAbsolute(text.to_owned()));
    }
    let raw: Vec<&str> = text[1..].split('/').collect();
    let mut segments = Vec::with_capacity(raw.len());
    let mut names: Vec<&str> = Vec::new();
    for (i, part) in raw.iter().enumerate() {
        let last = i + 1 == raw.len();
        if part.is_empty() {
            if last {
                // A trailing slash on a template is not significant.
                continue;
            }
            return Err(bad("empty segment ('//')"));
        }
        if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            let (catch_all, name) = match inner.strip_prefix('*') {
                Some(name) => (true, name),
                None => (false, inner),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(bad("parameter names are letters, digits and '_'"));
            }
            if names.contains(&name) {
                return Err(bad("a parameter name is used twice"));
            }
            names.push(name);
            if catch_all {
                if !last {
                    return Err(bad("a catch-all '{*name}' must be the last segment"));
                }
                segments.push(Segment::CatchAll(name.to_owned()));
            } else {
                segments.push(Segment::Param(name.to_owned()));
            }
        } else if part.contains('{') || part.contains('}') {
            return Err(bad("a parameter must be a whole segment, like '/{id}'"));
        } else {
            check_static(&format!("/{part}"))?;
            segments.push(Segment::Static((*part).to_owned()));
        }
    }
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind() {
        assert_eq!(
            PathPattern::parse("/echo/").unwrap(),
            PathPattern::Prefix("/echo".into())
        );
        assert_eq!(
            PathPattern::parse("/").unwrap(),
            PathPattern::Prefix("/".into())
        );
        assert_eq!(
            PathPattern::parse("= /health").unwrap(),
            PathPattern::Exact("/health".into())
        );
        assert_eq!(
            PathPattern::parse("/users/{id}/files/{*rest}").unwrap(),
            PathPattern::Template(vec![
                Segment::Static("users".into()),
                Segment::Param("id".into()),
                Segment::Static("files".into()),
                Segment::CatchAll("rest".into()),
            ])
        );
        assert!(matches!(
            PathPattern::parse("~ ^/v[0-9]+$").unwrap(),
            PathPattern::Regex(_)
        ));
    }

    #[test]
    fn rejects_bad_patterns() {
        for bad in [
            "echo",
            "/a//b",
            "/a/../b",
            "/{*rest}/x",
            "/{id}/{id}",
            "/a{id}",
            "/{}",
            "~ (",
            "/a%2fb",
        ] {
            assert!(PathPattern::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn base_path_and_static_prefix() {
        let p = PathPattern::parse("/users/{id}").unwrap().with_base("/v1/");
        assert_eq!(p.to_string(), "/v1/users/{id}");
        assert_eq!(p.static_prefix(), "/v1/users");
        assert_eq!(
            PathPattern::parse("/").unwrap().with_base("/v1"),
            PathPattern::Prefix("/v1".into())
        );
        assert_eq!(PathPattern::Prefix("/".into()).static_prefix(), "");
    }
}
