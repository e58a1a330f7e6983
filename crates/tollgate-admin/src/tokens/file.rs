//! [`StaticTokens`]: a fixed set of tokens read from a token file (file mode).

use std::collections::HashMap;

use tollgate_store::Role;
use tollgate_store::secrets::is_sha256_hex;

use super::{Identity, Lookup, TokenSource};

/// A fixed set of tokens, given by their hashes (file mode).
#[derive(Debug, Clone, Default)]
pub struct StaticTokens {
    by_hash: HashMap<String, Identity>,
}

/// A token file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// A line is not `ROLE SHA256 NAME`.
    #[error("line {line}: {reason}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The file cannot be read.
    #[error("cannot read token file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

impl StaticTokens {
    /// Parses a token file: one token per line as `ROLE SHA256 NAME` (role `viewer`,
    /// `operator` or `admin`; the lowercase hex SHA-256 of the token, e.g. from
    /// `printf %s "$TOKEN" | sha256sum`; a name for the audit log). Blank lines and lines
    /// starting with `#` are skipped.
    pub fn parse(text: &str) -> Result<Self, TokenFileError> {
        let mut by_hash = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: String| TokenFileError::Line {
                line: i + 1,
                reason,
            };
            let mut words = line.split_whitespace();
            let (Some(role), Some(hash), Some(name), None) =
                (words.next(), words.next(), words.next(), words.next())
            else {
                return Err(bad("expected `ROLE SHA256 NAME`".into()));
            };
            let role = Role::parse(role)
                .ok_or_else(|| bad(format!("unknown role {role:?} (viewer, operator, admin)")))?;
            let hash = hash.to_ascii_lowercase();
            if !is_sha256_hex(&hash) {
                return Err(bad(
                    "the second word must be the token's SHA-256 as 64 hex digits (never the token itself)"
                        .into(),
                ));
            }
            let identity = Identity {
                id: format!("file:{}", &hash[..8]),
                name: name.to_owned(),
                role,
            };
            if by_hash.insert(hash, identity).is_some() {
                return Err(bad("the same token is listed twice".into()));
            }
        }
        Ok(Self { by_hash })
    }

    /// Reads and parses a token file (see [`StaticTokens::parse`]).
    pub fn load(path: &std::path::Path) -> Result<Self, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// How many tokens the file lists.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether the file lists no token.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

impl TokenSource for StaticTokens {
    fn identify<'a>(&'a self, token_sha256: &'a str) -> Lookup<'a> {
        let found = self.by_hash.get(token_sha256).cloned();
        Box::pin(async move { Ok(found) })
    }
}

#[cfg(test)]
mod tests {
    use tollgate_store::secrets::sha256_hex;

    use super::*;
    use crate::tokens::block_on;

    #[test]
    fn token_file_lists_hashes_with_roles_and_names() {
        let hash = sha256_hex("tg_secret");
        let text = format!(
            "# admins\n\nadmin {hash} ops-team\nviewer {} ci\n",
            "A".repeat(64)
        );
        let tokens = StaticTokens::parse(&text).unwrap();
        assert_eq!(tokens.len(), 2);
        let who = block_on(tokens.identify(&hash)).unwrap().unwrap();
        assert_eq!((who.name.as_str(), who.role), ("ops-team", Role::Admin));
        assert!(
            block_on(tokens.identify(&sha256_hex("other")))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn token_file_refuses_clear_tokens_and_unknown_roles() {
        let e = StaticTokens::parse("admin tg_clear_token name").unwrap_err();
        assert!(
            e.to_string().contains("line 1") && e.to_string().contains("SHA-256"),
            "{e}"
        );
        let e = StaticTokens::parse(&format!("root {} x", "a".repeat(64))).unwrap_err();
        assert!(e.to_string().contains("unknown role"), "{e}");
        let e = StaticTokens::parse("admin").unwrap_err();
        assert!(e.to_string().contains("ROLE SHA256 NAME"), "{e}");
    }
}
