//! Path rewrites, precompiled.

use tollgate_model::Rewrite;

use crate::Match;

/// A route's path rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompiledRewrite {
    /// Remove the pattern's literal prefix.
    StripPrefix,
    /// Replace the pattern's literal prefix.
    ReplacePrefix(String),
    /// Build the path from literal parts and captured parameters.
    Template(Vec<TemplatePart>),
}

/// A piece of a rewrite template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart {
    /// Literal text.
    Literal(String),
    /// A captured parameter's value.
    Param(String),
}

impl CompiledRewrite {
    /// Compiles a validated rewrite.
    pub fn new(rewrite: &Rewrite) -> Option<Self> {
        if rewrite.strip_prefix {
            return Some(Self::StripPrefix);
        }
        if let Some(prefix) = &rewrite.replace_prefix {
            return Some(Self::ReplacePrefix(prefix.clone()));
        }
        let template = rewrite.template.as_ref()?;
        let mut parts = Vec::new();
        let mut rest = template.as_str();
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(TemplatePart::Literal(rest[..open].to_owned()));
            }
            let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
            parts.push(TemplatePart::Param(
                rest[open + 1..close].trim_start_matches('*').to_owned(),
            ));
            rest = rest.get(close + 1..).unwrap_or("");
        }
        if !rest.is_empty() {
            parts.push(TemplatePart::Literal(rest.to_owned()));
        }
        Some(Self::Template(parts))
    }

    /// The rewritten path for a request whose normalized path is `path`.
    pub fn apply(&self, path: &str, m: &Match) -> String {
        let remainder = path.strip_prefix(&*m.static_prefix).unwrap_or(path);
        match self {
            Self::StripPrefix => {
                if remainder.starts_with('/') {
                    remainder.to_owned()
                } else {
                    format!("/{remainder}")
                }
            }
            Self::ReplacePrefix(prefix) => {
                // `/old` → `/new`, `/old/x` → `/new/x`, as written (no slash added or lost).
                let mut out = String::with_capacity(prefix.len() + remainder.len());
                out.push_str(prefix);
                match (prefix.ends_with('/'), remainder.strip_prefix('/')) {
                    (true, Some(rest)) => out.push_str(rest),
                    (false, None) if !remainder.is_empty() => {
                        out.push('/');
                        out.push_str(remainder);
                    }
                    _ => out.push_str(remainder),
                }
                if out.is_empty() {
                    out.push('/');
                }
                out
            }
            Self::Template(parts) => {
                let mut out = String::with_capacity(path.len());
                for part in parts {
                    match part {
                        TemplatePart::Literal(s) => out.push_str(s),
                        TemplatePart::Param(name) => out.push_str(m.params.get(name).unwrap_or("")),
                    }
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tollgate_plugin_api::Params;

    use super::*;

    fn m(prefix: &str, params: &[(&str, &str)]) -> Match {
        Match {
            route: crate::RouteId::new(0, 0),
            params: Params(
                params
                    .iter()
                    .map(|(k, v)| (Arc::from(*k), (*v).to_owned()))
                    .collect(),
            ),
            static_prefix: prefix.into(),
        }
    }

    fn rw(r: Rewrite) -> CompiledRewrite {
        CompiledRewrite::new(&r).unwrap()
    }

    fn rewrite() -> Rewrite {
        Rewrite {
            strip_prefix: false,
            replace_prefix: None,
            template: None,
        }
    }

    #[test]
    fn strip_replace_template() {
        let strip = rw(Rewrite {
            strip_prefix: true,
            ..rewrite()
        });
        assert_eq!(strip.apply("/api/users", &m("/api", &[])), "/users");
        assert_eq!(strip.apply("/api", &m("/api", &[])), "/");
        let replace = rw(Rewrite {
            replace_prefix: Some("/v2/".into()),
            ..rewrite()
        });
        assert_eq!(replace.apply("/api/users", &m("/api", &[])), "/v2/users");
        assert_eq!(replace.apply("/api", &m("/api", &[])), "/v2/");
        let bare = rw(Rewrite {
            replace_prefix: Some("/v2".into()),
            ..rewrite()
        });
        assert_eq!(bare.apply("/api", &m("/api", &[])), "/v2");
        assert_eq!(bare.apply("/api/users", &m("/api", &[])), "/v2/users");
        let template = rw(Rewrite {
            template: Some("/internal/{id}/files/{rest}".into()),
            ..rewrite()
        });
        assert_eq!(
            template.apply("/u/7/f/a/b", &m("/u", &[("id", "7"), ("rest", "a/b")])),
            "/internal/7/files/a/b"
        );
    }
}
