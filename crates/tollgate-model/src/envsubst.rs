//! Two kinds of `${...}` references in configuration:
//!
//! * `${VAR}` and `${VAR:-default}`: process environment variables, substituted in the whole
//!   text of a file before it is parsed ([`substitute_env`]);
//! * `${vars.NAME}`: variables of a deployment environment (`environments[].variables`), kept
//!   as written by [`substitute_env`] and substituted per environment when a configuration is
//!   compiled ([`substitute_vars`]), only in the fields documented in docs/configuration.md.

use std::borrow::Cow;

/// What starts an environment variable reference: `${vars.NAME}`.
const VARS_PREFIX: &str = "vars.";

/// A problem with a `${vars.NAME}` reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VarError {
    /// The variable is not defined where the text is used.
    #[error("variable {0:?} is not defined")]
    Undefined(String),
    /// `${vars.` without a valid name and a closing `}`.
    #[error(
        "malformed variable reference {0:?} (write ${{vars.NAME}}, NAME of letters, digits and '_', not starting with a digit)"
    )]
    Malformed(String),
}

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
/// Anything else, including a lone `$` and an environment's `${vars.NAME}`, is left as written,
/// and so are YAML comments (from a `#` that starts a line or follows a blank, outside quotes,
/// to the end of the line).
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
    if inner.starts_with(VARS_PREFIX) {
        // `${vars.NAME}` belongs to a deployment environment, not to the process.
        return None;
    }
    let (name, default) = match inner.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (inner, None),
    };
    is_var_name(name).then(|| (name, default, &body[end + 1..]))
}

/// Whether `name` is a valid variable name: letters, digits and `_`, not starting with a
/// digit. The same rule holds for process variables and environments' `variables`.
pub fn is_var_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

/// The names of the `${vars.NAME}` references in `text`, in order (repeats included).
pub fn var_references(text: &str) -> Result<Vec<&str>, VarError> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some((name, tail)) = next_var(rest)? {
        names.push(name);
        rest = tail;
    }
    Ok(names)
}

/// Replaces every `${vars.NAME}` in `text` with `lookup(NAME)`. Returns the text unchanged
/// (borrowed) when it has no reference.
pub fn substitute_vars<'a, 'v>(
    text: &'a str,
    lookup: impl Fn(&str) -> Option<&'v str>,
) -> Result<Cow<'a, str>, VarError> {
    let Some(first) = text.find("${vars.") else {
        return Ok(Cow::Borrowed(text));
    };
    let mut out = String::with_capacity(text.len() + 32);
    out.push_str(&text[..first]);
    let mut rest = &text[first..];
    while let Some(start) = rest.find("${vars.") {
        out.push_str(&rest[..start]);
        let Some((name, tail)) = next_var(&rest[start..])? else {
            break;
        };
        out.push_str(lookup(name).ok_or_else(|| VarError::Undefined(name.to_owned()))?);
        rest = tail;
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// The first `${vars.NAME}` in `text`: (NAME, text after the reference).
fn next_var(text: &str) -> Result<Option<(&str, &str)>, VarError> {
    let Some(start) = text.find("${vars.") else {
        return Ok(None);
    };
    let after = &text[start + 2 + VARS_PREFIX.len()..];
    let malformed = || {
        let shown: String = text[start..].chars().take(40).collect();
        VarError::Malformed(shown)
    };
    let end = after.find('}').ok_or_else(malformed)?;
    let name = &after[..end];
    if !is_var_name(name) {
        return Err(malformed());
    }
    Ok(Some((name, &after[end + 1..])))
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
    fn environment_variable_references_are_left_for_the_environments() {
        let lookup = |name: &str| Some(format!("<{name}>"));
        let text = "a: ${vars.backend}\nb: '${vars.x:-d}' ${HOME}\n";
        let out = substitute_env(text, lookup).unwrap();
        assert_eq!(out, "a: ${vars.backend}\nb: '${vars.x:-d}' <HOME>\n");
        // A process variable literally named `vars` is not a thing: no lookup happens.
        let out = substitute_env("${vars.PATH}", |_| panic!("looked up")).unwrap();
        assert_eq!(out, "${vars.PATH}");
    }

    #[test]
    fn vars_are_listed_and_substituted() {
        let text = "http://${vars.host}:${vars.port}/x";
        assert_eq!(var_references(text).unwrap(), vec!["host", "port"]);
        let vars = |name: &str| match name {
            "host" => Some("10.0.0.1"),
            "port" => Some("8080"),
            _ => None,
        };
        assert_eq!(
            substitute_vars(text, vars).unwrap(),
            "http://10.0.0.1:8080/x"
        );
        assert!(matches!(
            substitute_vars("http://plain", vars).unwrap(),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            substitute_vars("${vars.nope}", vars).unwrap_err(),
            VarError::Undefined("nope".into())
        );
        for bad in ["${vars.}", "${vars.a-b}", "${vars.open", "${vars.1x}"] {
            assert!(
                matches!(var_references(bad), Err(VarError::Malformed(_))),
                "{bad}"
            );
        }
        assert!(var_references("$vars.x ${HOME}").unwrap().is_empty());
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
