//! `${VAR}` and `${VAR:-default}` substitution in configuration text.

use std::borrow::Cow;

/// A reference to an environment variable that is not set and has no default.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "line {line}: environment variable {name} is not set (write ${{{name}:-default}} to give a default)"
)]
pub struct EnvError {
    /// Variable name.
    pub name: String,
    /// 1-based line of the reference.
    pub line: usize,
}

/// Replaces `${NAME}` and `${NAME:-default}` with values from `lookup`; `$$` stands for `$`.
/// Anything else, including a lone `$`, is left as written. Returns the text unchanged (borrowed)
/// when it has no `$`.
pub fn substitute_env<'a>(
    text: &'a str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Cow<'a, str>, EnvError> {
    if !text.contains('$') {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let Some(body) = after.strip_prefix('{') else {
            out.push('$');
            rest = after;
            continue;
        };
        let Some(end) = body.find('}') else {
            out.push('$');
            rest = after;
            continue;
        };
        let inner = &body[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        let valid_name = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid_name {
            out.push('$');
            rest = after;
            continue;
        }
        match (lookup(name).filter(|v| !v.is_empty()), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => {
                let line = text[..text.len() - rest.len() + pos].matches('\n').count() + 1;
                return Err(EnvError {
                    name: name.to_owned(),
                    line,
                });
            }
        }
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "PORT").then(|| "9000".to_owned())
    }

    #[test]
    fn substitutes_values_and_defaults() {
        let out = substitute_env("a: ${PORT}\nb: ${HOST:-localhost}\nc: $$ $x ${}", env).unwrap();
        assert_eq!(out, "a: 9000\nb: localhost\nc: $ $x ${}");
        assert!(matches!(
            substitute_env("plain", env).unwrap(),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn missing_variable_names_line() {
        let err = substitute_env("a: 1\nb: ${NOPE}", env).unwrap_err();
        assert_eq!(err.name, "NOPE");
        assert_eq!(err.line, 2);
    }
}
