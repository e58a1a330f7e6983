//! Process logs (`tracing`), separate from the access log.

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// Log line format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

/// What the database driver says at `info` (notices such as "relation already exists,
/// skipping", pings of connections a restarted server dropped) or as slow-acquire warnings
/// is noise next to our own reports of the store's condition; a filter given by the user
/// that names these targets still wins.
const QUIET_DRIVER: &str = "sqlx=warn,sqlx_core=warn,sqlx::pool::acquire=error";

/// Installs the global subscriber writing to stderr. `level` is a level (`info`) or a full
/// filter (`tollgate=debug,hyper=info`); `RUST_LOG` overrides it.
pub(crate) fn init(level: &str, format: LogFormat) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.is_empty() => EnvFilter::try_new(env),
        _ if level.contains("sqlx") => EnvFilter::try_new(level),
        _ => EnvFilter::try_new(format!("{level},{QUIET_DRIVER}")),
    }
    .map_err(|e| format!("invalid log level {level:?}: {e}"))?;
    use std::io::IsTerminal;
    // Colours only for a terminal (and never when NO_COLOR is set).
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| e.to_string())
}
