//! Store URLs: which engine, the URL the driver connects with (Tollgate's own parameters
//! taken out), and the URL shown in messages (without its password).

use std::str::FromStr;

use sqlx::any::AnyConnectOptions;

use super::Backend;
use crate::StoreError;

/// When a SQLite commit returns: `sqlite:PATH?synchronous=full` (the default) or `normal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// Every commit is on disk when the write is answered (SQLite's `FULL`: one `fsync` of
    /// the WAL per commit).
    #[default]
    Full,
    /// Commits reach the disk at the next checkpoint (SQLite's `NORMAL` in WAL mode): the
    /// store stays consistent, and a process crash loses nothing, but a power loss or an
    /// operating-system crash may undo the last writes that were answered. Less CPU and
    /// fewer wake-ups per write on the cores the proxy workers use.
    Normal,
}

/// A checked store URL: the engine, the URL to connect with, its options, the URL to show
/// and the SQLite commit setting.
pub(super) type Parsed = (Backend, String, AnyConnectOptions, String, Synchronous);

/// Checks a store URL (and creates a missing SQLite file, owner-only).
pub(super) fn parse(url: &str) -> Result<Parsed, StoreError> {
    sqlx::any::install_default_drivers();
    let display_url = redact(url);
    let invalid = |reason| StoreError::InvalidUrl {
        url: display_url.clone(),
        reason,
    };
    let (backend, url) = normalize_url(url).map_err(invalid)?;
    let (url, synchronous) = match backend {
        Backend::Sqlite => {
            let (url, synchronous) = take_synchronous(&url).map_err(invalid)?;
            create_private_file(&url).map_err(|source| StoreError::Io {
                context: format!("cannot create the store file for {display_url}"),
                source,
            })?;
            (url, synchronous)
        }
        Backend::Postgres => (url, Synchronous::Full),
    };
    let options = AnyConnectOptions::from_str(&url).map_err(|e| StoreError::InvalidUrl {
        url: display_url.clone(),
        reason: e.to_string(),
    })?;
    Ok((backend, url, options, display_url, synchronous))
}

/// Takes Tollgate's own `synchronous` parameter out of a SQLite URL (the driver does not
/// know it).
fn take_synchronous(url: &str) -> Result<(String, Synchronous), String> {
    let Some((path, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), Synchronous::Full));
    };
    let mut synchronous = Synchronous::Full;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("synchronous", value)) => {
                synchronous = match value.to_ascii_lowercase().as_str() {
                    "full" => Synchronous::Full,
                    "normal" => Synchronous::Normal,
                    _ => {
                        return Err(format!(
                            "synchronous={value:?}: expected full (the default) or normal"
                        ));
                    }
                }
            }
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    };
    Ok((url, synchronous))
}

/// `sqlite:` URLs get `mode=rwc` (create the file if missing); PostgreSQL URLs pass as they
/// are.
fn normalize_url(url: &str) -> Result<(Backend, String), String> {
    if let Some(rest) = url.strip_prefix("sqlite:") {
        if rest.trim_start_matches('/').is_empty() {
            return Err("the SQLite URL names no file (sqlite:/path/to/tollgate.db)".into());
        }
        let url = if url.contains("mode=") {
            url.to_owned()
        } else if url.contains('?') {
            format!("{url}&mode=rwc")
        } else {
            format!("{url}?mode=rwc")
        };
        Ok((Backend::Sqlite, url))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok((Backend::Postgres, url.to_owned()))
    } else {
        Err("expected sqlite:PATH or postgres://USER@HOST/DATABASE".into())
    }
}

/// Creates a missing SQLite database file readable by its owner only (it holds password
/// hashes and encrypted secrets); the WAL files SQLite creates take the same mode.
fn create_private_file(url: &str) -> std::io::Result<()> {
    let rest = url.trim_start_matches("sqlite:");
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// The URL without its password.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_synchronous_parameter_is_taken_out_of_a_sqlite_url() {
        let take = |url: &str| take_synchronous(url).unwrap();
        assert_eq!(
            take("sqlite:/d/t.db"),
            ("sqlite:/d/t.db".into(), Synchronous::Full)
        );
        assert_eq!(
            take("sqlite:/d/t.db?synchronous=normal&mode=rwc"),
            ("sqlite:/d/t.db?mode=rwc".into(), Synchronous::Normal)
        );
        assert_eq!(
            take("sqlite:/d/t.db?mode=rwc&synchronous=FULL"),
            ("sqlite:/d/t.db?mode=rwc".into(), Synchronous::Full)
        );
        assert_eq!(
            take("sqlite:/d/t.db?synchronous=normal"),
            ("sqlite:/d/t.db".into(), Synchronous::Normal)
        );
        let err = take_synchronous("sqlite:/d/t.db?synchronous=extra").unwrap_err();
        assert!(
            err.contains("expected full (the default) or normal"),
            "{err}"
        );
    }
}
