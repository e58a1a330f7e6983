//! What can go wrong importing a document, and what import could only do in part.

use std::fmt;

use crate::Pointer;

/// Why a document could not be imported. Each error names the place in the document as a JSON
/// Pointer, e.g. `/paths/~1pets/get/parameters/0: $ref #/components/parameters/Nope not found`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// The text is neither YAML nor JSON.
    #[error("not a valid {format} document{}: {message}", at_line(*line, *column))]
    Syntax {
        /// `YAML` or `JSON`, as detected.
        format: &'static str,
        /// The parser's message.
        message: String,
        /// 1-based line, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        column: Option<usize>,
    },
    /// A part of the document import relies on is missing or malformed.
    #[error("{pointer}: {message}")]
    Invalid {
        /// Where.
        pointer: Pointer,
        /// What is wrong.
        message: String,
    },
    /// A local `$ref` names nothing in the document.
    #[error("{pointer}: $ref {reference} not found")]
    RefNotFound {
        /// Where the `$ref` is.
        pointer: Pointer,
        /// The reference as written.
        reference: String,
    },
    /// A `$ref` to another file or a URL.
    #[error(
        "{pointer}: $ref {reference} points outside the document; only local references ('#/...') are supported (bundle the document first)"
    )]
    ExternalRef {
        /// Where the `$ref` is.
        pointer: Pointer,
        /// The reference as written.
        reference: String,
    },
    /// `$ref`s that lead back to themselves without a schema in between.
    #[error("{pointer}: $ref cycle {}", chain.join(" -> "))]
    RefCycle {
        /// Where the `$ref` that closes the cycle is.
        pointer: Pointer,
        /// The references of the cycle, in order, the first repeated at the end.
        chain: Vec<String>,
    },
    /// Resolving `$ref`s would produce an unreasonably large operation.
    #[error(
        "{pointer}: resolving $refs produces more than {limit} values; the document shares schemas too deeply to inline"
    )]
    TooLarge {
        /// The operation being resolved.
        pointer: Pointer,
        /// The limit.
        limit: usize,
    },
    /// An import option is invalid.
    #[error("import option `{option}`: {message}")]
    Option {
        /// The option's field name.
        option: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl ImportError {
    pub(crate) fn invalid(pointer: &Pointer, message: impl Into<String>) -> Self {
        Self::Invalid {
            pointer: pointer.clone(),
            message: message.into(),
        }
    }
}

fn at_line(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l} column {c}"),
        (Some(l), None) => format!(" at line {l}"),
        _ => String::new(),
    }
}

/// Something import left out or changed: the API was produced, but not all of the document is in
/// it. Shown to the user next to the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where in the document.
    pub pointer: Pointer,
    /// What was left out or changed, and why.
    pub message: String,
}

impl Warning {
    pub(crate) fn new(pointer: &Pointer, message: impl Into<String>) -> Self {
        Self {
            pointer: pointer.clone(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pointer, self.message)
    }
}

/// The imported API could not be written as YAML.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the imported API as YAML: {0}")]
pub struct RenderError(#[from] serde_yaml_ng::Error);
