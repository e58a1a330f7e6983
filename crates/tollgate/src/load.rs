//! Reading, parsing, validating and compiling a configuration file.

use std::fmt;
use std::path::{Path, PathBuf};

use tollgate_model::{Config, Diagnostics, Format, parse_config, substitute_env};
use tollgate_plugin_api::Registry;
use tollgate_runtime::{CompileOptions, Snapshot, compile as compile_snapshot};

/// A configuration read from a file, with its text for locating errors.
pub(crate) struct Loaded {
    pub(crate) path: PathBuf,
    pub(crate) text: String,
    pub(crate) config: Config,
}

/// Why a configuration could not be loaded.
#[derive(Debug)]
pub(crate) enum LoadError {
    Io(PathBuf, std::io::Error),
    Env(PathBuf, tollgate_model::EnvError),
    Invalid(Diagnostics),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(path, e) => write!(f, "{}: cannot read: {e}", path.display()),
            Self::Env(path, e) => write!(f, "{}:{e}", path.display()),
            // EnvError displays as "line:column: message".
            Self::Invalid(d) => write!(f, "{d}"),
        }
    }
}

/// Reads and parses `path` (with `${VAR}` substitution) and validates it.
pub(crate) fn read_config(path: &Path) -> Result<Loaded, LoadError> {
    let raw = std::fs::read_to_string(path).map_err(|e| LoadError::Io(path.to_owned(), e))?;
    let text = substitute_env(&raw, |name| std::env::var(name).ok())
        .map_err(|e| LoadError::Env(path.to_owned(), e))?
        .into_owned();
    let origin = path.display().to_string();
    let config =
        parse_config(&text, Format::from_path(&origin), &origin).map_err(LoadError::Invalid)?;
    Ok(Loaded {
        path: path.to_owned(),
        text,
        config,
    })
}

/// Compiles a loaded configuration into a snapshot.
pub(crate) fn compile(
    loaded: &Loaded,
    registry: &Registry,
    previous: Option<&Snapshot>,
    workers: usize,
    revision: u64,
) -> Result<Snapshot, LoadError> {
    let started = std::time::Instant::now();
    let snapshot = compile_snapshot(
        &loaded.config,
        &CompileOptions {
            registry,
            previous,
            workers,
            revision,
        },
    )
    .map_err(|items| {
        LoadError::Invalid(
            Diagnostics::new(loaded.path.display().to_string(), items).locate_in(&loaded.text),
        )
    })?;
    tracing::debug!(
        revision,
        routes = snapshot.routes.len(),
        services = snapshot.services.len(),
        elapsed = ?started.elapsed(),
        "configuration compiled"
    );
    Ok(snapshot)
}
