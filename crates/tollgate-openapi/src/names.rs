//! Names: API and route names made from titles, operationIds and paths, following the model's
//! rule (1-128 of letters, digits, `-`, `_`, `.`), and made unique.

use std::collections::HashSet;

/// Longest name the model accepts.
const MAX_NAME: usize = 128;

/// Whether `name` follows the model's rule for API, route and service names.
pub(crate) fn is_valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `text` with every run of characters a name cannot hold replaced by one `-`, trimmed of `-`,
/// cut so that a `-N` suffix still fits. Empty when nothing usable is left.
pub(crate) fn sanitize(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '_' | '.') {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out = out.trim_matches('-').to_owned();
    out.truncate(MAX_NAME - 8);
    out.trim_end_matches('-').to_owned()
}

/// An API name from a document title: `Swagger Petstore` → `swagger-petstore`.
pub(crate) fn slugify_title(title: &str) -> String {
    let lower: String = title
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    sanitize(&lower)
}

/// A route name for an operation without `operationId`: `get` `/pets/{petId}` →
/// `get-pets-petId`; the root path gives `get-root`.
pub(crate) fn operation_slug(method: &str, path: &str) -> String {
    let rest = sanitize(&path.replace(['{', '}'], ""));
    if rest.is_empty() {
        format!("{method}-root")
    } else {
        format!("{method}-{rest}")
    }
}

/// Hands out names, each once: a taken name gets `-2`, `-3`, ...
#[derive(Debug, Default)]
pub(crate) struct Unique {
    taken: HashSet<String>,
}

impl Unique {
    /// `base`, or `base-N` with the smallest N ≥ 2 not yet taken; marks it taken.
    pub(crate) fn claim(&mut self, base: &str) -> String {
        let mut name = base.to_owned();
        let mut n = 2;
        while !self.taken.insert(name.clone()) {
            name = format!("{base}-{n}");
            n += 1;
        }
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_titles_ids_and_paths() {
        assert_eq!(
            slugify_title("Swagger Petstore (v2)!"),
            "swagger-petstore-v2"
        );
        assert_eq!(sanitize("pets.list"), "pets.list");
        assert_eq!(sanitize("get /pets/{id}"), "get-pets-id");
        assert_eq!(sanitize("  ?? "), "");
        assert_eq!(operation_slug("get", "/pets/{petId}"), "get-pets-petId");
        assert_eq!(operation_slug("post", "/"), "post-root");
        assert!(is_valid(&sanitize(&"x".repeat(500))));
    }

    #[test]
    fn unique_suffixes() {
        let mut u = Unique::default();
        assert_eq!(u.claim("a"), "a");
        assert_eq!(u.claim("a"), "a-2");
    }
}
