//! JSON Pointers (RFC 6901): where in a document a problem is, and local `$ref` targets.
//!
//! Errors and warnings name places in the source document as pointers
//! (`/paths/~1pets/get/parameters/0`); `$ref`s inside the document are `#` followed by one.

use std::fmt;

use serde_json::Value;

/// A JSON Pointer into the imported document. Displays as the pointer text, or `(document)` for
/// the whole document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pointer(String);

impl Pointer {
    /// The whole document.
    pub fn root() -> Self {
        Self(String::new())
    }

    /// Parses pointer text (`/a/b~1c`); `None` unless empty or starting with `/`.
    pub fn parse(text: &str) -> Option<Self> {
        (text.is_empty() || text.starts_with('/')).then(|| Self(text.to_owned()))
    }

    /// This pointer with one more reference token (a key or an index), escaped.
    pub fn push(&self, token: impl fmt::Display) -> Self {
        let token = token.to_string().replace('~', "~0").replace('/', "~1");
        Self(format!("{}/{token}", self.0))
    }

    /// The pointer text (empty for the whole document).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `self` points at or below `other`.
    pub fn starts_with(&self, other: &str) -> bool {
        self.0 == other
            || self
                .0
                .strip_prefix(other)
                .is_some_and(|rest| rest.starts_with('/'))
    }

    /// The value this pointer names in `root`.
    pub fn get<'a>(&self, root: &'a Value) -> Option<&'a Value> {
        root.pointer(&self.0)
    }
}

impl fmt::Display for Pointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("(document)")
        } else {
            f.write_str(&self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_escapes_slashes_and_tildes() {
        let p = Pointer::root().push("paths").push("/pets/{id}").push("a~b");
        assert_eq!(p.as_str(), "/paths/~1pets~1{id}/a~0b");
        assert_eq!(Pointer::root().to_string(), "(document)");
    }

    #[test]
    fn starts_with_is_segment_bounded() {
        let p = Pointer::parse("/components/schemas/Pet").unwrap();
        assert!(p.starts_with("/components/schemas"));
        assert!(!p.starts_with("/components/schema"));
    }
}
