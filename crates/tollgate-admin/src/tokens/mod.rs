//! Where admin API tokens are checked: a [`TokenSource`] maps the SHA-256 of a presented
//! bearer token to who holds it and what they may do. Two sources exist: the store's token
//! table ([`StoreTokens`], store mode, tokens made with `tollgate admin token create` or
//! `POST /api/v1/tokens`), checked against a copy that survives a store outage and is saved
//! in the data directory ([`MIRROR_FILE_NAME`]), and a fixed list of hashes ([`StaticTokens`], read from
//! a token file in file mode, where there is no store). Clear tokens are never kept or
//! logged: only their hashes are compared.

mod file;
mod saved;
mod store;

use std::future::Future;
use std::pin::Pin;

use tollgate_store::{Role, StoreError};

pub use file::{StaticTokens, TokenFileError};
pub use saved::MIRROR_FILE_NAME;
pub use store::{FRESH_FOR, StoreTokens, TableRead, TokenTable};

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

#[cfg(test)]
fn block_on<T>(f: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}
