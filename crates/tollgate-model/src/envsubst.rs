//! `${VAR}` and `${VAR:-default}` substitution in configuration text.

use std::borrow::Cow;

/// A reference to an environment variable that is not set and has no default.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{line}:{column}: environment variable {name} is not set (write ${{{name}:-default}} to give a default)"
)]
pub struct EnvError {
    /// Variable name.
    pub name: String,
    /// 1-based line of the reference.
    pub line: usize,
    /// 1-based column of the `$`.
    pub column: usize,
}

/// Replaces `${NAME}` and `${NAME:-default}` with values from `lookup`; `$$` stands for `$`.
/// Anything else, including a lone `$`, is left as written, and so are YAML comments (from a
/// `#` that starts a line or follows a blank, outside quotes, to the end of the line).
/// Returns the text unchanged (borrowed) when it has no `$`.
pub fn substitute_env<'a>(
    text: &'a str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Cow<'a, str>, EnvError> {
    if !text.contains('$') {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let (code, comment) = line.split_at(comment_start(line));
        substitute_line(code, index + 1, &lookup, &mut out)?;
        out.push_str(comment);
    }
    Ok(Cow::Owned(out))
}

/// Byte offset where a YAML comment starts in `line` (its length when there is none).
fn comment_start(line: &str) -> usize {
    let mut quote: Option<char> = None;
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' && previous.is_whitespace() => return i,
            None => {}
        }
        previous = c;
    }
    line.len()
}

fn substitute_line(
    line: &str,
    number: usize,
    lookup: &impl Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<(), EnvError> {
    let mut rest = line;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let Some((name, default, tail)) = reference(after) else {
            out.push('$');
            rest = after;
            continue;
        };
        match (lookup(name).filter(|v| !v.is_empty()), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => {
                let offset = line.len() - rest.len() + pos;
                return Err(EnvError {
                    name: name.to_owned(),
                    line: number,
                    column: line[..offset].chars().count() + 1,
                });
            }
        }
        rest = tail;
    }
    out.push_str(rest);
    Ok(())
}

/// Parses `{NAME}` or `{NAME:-default}` at the start of `s`: (name, default, rest).
fn reference(s: &str) -> Option<(&str, Option<&str>, &str)> {
    let body = s.strip_prefix('{')?;
    let end = body.find('}')?;
    let inner = &body[..end];
    let (name, default) = match inner.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (inner, None),
    };
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    valid.then(|| (name, default, &body[end + 1..]))
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
    fn missing_variable_names_line_and_column() {
        let err = substitute_env("a: 1\nb:  ${NOPE}", env).unwrap_err();
        assert_eq!((err.name.as_str(), err.line, err.column), ("NOPE", 2, 5));
    }

    #[test]
    fn comments_are_left_alone() {
        let text = "# token: ${NOPE}\na: \"x # ${PORT}\" # ${NOPE}\nb: a#${PORT}\n";
        let out = substitute_env(text, env).unwrap();
        assert_eq!(
            out,
            "# token: ${NOPE}\na: \"x # 9000\" # ${NOPE}\nb: a#9000\n"
        );
    }
}
