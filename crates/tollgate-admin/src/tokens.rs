//! Where admin API tokens are checked: a [`TokenSource`] maps the SHA-256 of a presented
//! bearer token to who holds it and what they may do. Two sources exist: the store's token
//! table ([`StoreTokens`], store mode, tokens made with `tollgate admin token create` or
//! `POST /api/v1/tokens`) and a fixed list of hashes ([`StaticTokens`], read from a token file
//! in file mode, where there is no store). Clear tokens are never kept or logged: only their
//! hashes are compared.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tollgate_store::secrets::is_sha256_hex;
use tollgate_store::{Role, Store, StoreError};

/// Who presented a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The token's public id.
    pub id: String,
    /// The token's name: the actor recorded in the audit log.
    pub name: String,
    /// What the token may do.
    pub role: Role,
}

/// A boxed future, so that token sources can be used as trait objects.
pub type Lookup<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Identity>, StoreError>> + Send + 'a>>;

/// Checks admin tokens.
pub trait TokenSource: Send + Sync + 'static {
    /// Called on every admin API request with the lowercase hex SHA-256 of the presented
    /// token. `Ok(None)`: no such token (the caller answers 401); `Err`: the source could not
    /// be read (503).
    fn identify<'a>(&'a self, token_sha256: &'a str) -> Lookup<'a>;

    /// Called after a token was created or revoked through the API, so that cached answers
    /// do not outlive it. Default: nothing to forget.
    fn invalidate(&self) {}
}

/// How long [`StoreTokens`] trusts a cached lookup: a token revoked on another node stops
/// working within this time (at once on the node that revoked it).
const CACHE_TTL: Duration = Duration::from_secs(5);
/// Cached lookups kept at most (the cache is emptied when full).
const CACHE_ENTRIES: usize = 1024;

/// Tokens in the store's token table, with a short-lived cache of known tokens (unknown ones
/// are never cached, so a new token works at once and random guesses cannot fill memory).
pub struct StoreTokens {
    store: Store,
    generation: AtomicU64,
    cache: tokio::sync::Mutex<HashMap<String, Cached>>,
}

struct Cached {
    identity: Identity,
    at: Instant,
    generation: u64,
}

impl std::fmt::Debug for StoreTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreTokens")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl StoreTokens {
    /// Tokens of `store`.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            generation: AtomicU64::new(0),
            cache: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    async fn lookup(&self, hash: &str) -> Result<Option<Identity>, StoreError> {
        let generation = self.generation.load(Ordering::Acquire);
        {
            let cache = self.cache.lock().await;
            if let Some(hit) = cache.get(hash)
                && hit.generation == generation
                && hit.at.elapsed() < CACHE_TTL
            {
                return Ok(Some(hit.identity.clone()));
            }
        }
        let Some(record) = self.store.token_by_hash(hash).await? else {
            return Ok(None);
        };
        let identity = Identity {
            id: record.id,
            name: record.name,
            role: record.role,
        };
        let mut cache = self.cache.lock().await;
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(
            hash.to_owned(),
            Cached {
                identity: identity.clone(),
                at: Instant::now(),
                generation,
            },
        );
        Ok(Some(identity))
    }
}

impl TokenSource for StoreTokens {
    fn identify<'a>(&'a self, token_sha256: &'a str) -> Lookup<'a> {
        Box::pin(self.lookup(token_sha256))
    }

    fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

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
    use super::*;
    use tollgate_store::secrets::sha256_hex;

    #[test]
    fn token_file_lists_hashes_with_roles_and_names() {
        let hash = sha256_hex("tg_secret");
        let text = format!(
            "# admins\n\nadmin {hash} ops-team\nviewer {} ci\n",
            "A".repeat(64)
        );
        let tokens = StaticTokens::parse(&text).unwrap();
        assert_eq!(tokens.len(), 2);
        let who = futures_lite(tokens.identify(&hash)).unwrap().unwrap();
        assert_eq!((who.name.as_str(), who.role), ("ops-team", Role::Admin));
        assert!(
            futures_lite(tokens.identify(&sha256_hex("other")))
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

    fn futures_lite<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }
}
