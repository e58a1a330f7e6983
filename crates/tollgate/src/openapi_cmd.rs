//! `tollgate openapi import`: turn an OpenAPI 3.0/3.1 document into an API definition for a
//! configuration file (no gateway needed).

use std::path::PathBuf;
use std::process::ExitCode;

use tollgate_openapi::{ImportOptions, import};

/// `tollgate openapi` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum OpenApiCommand {
    /// Print the API an OpenAPI document describes, as YAML for the `apis:` list of a
    /// configuration file (routes, parameters and body schemas kept for validation).
    Import {
        /// OpenAPI document (YAML or JSON).
        file: PathBuf,
        /// Service every route forwards to.
        #[arg(long)]
        service: String,
        /// API name (default: from `info.title`).
        #[arg(long)]
        name: Option<String>,
        /// API version (default: `info.version`).
        #[arg(long)]
        api_version: Option<String>,
        /// Base path (default: the path of the first server URL).
        #[arg(long)]
        base_path: Option<String>,
        /// Also create authentication policies from the document's security schemes.
        #[arg(long)]
        auth_policies: bool,
    },
}

/// Runs an `openapi` command.
pub(crate) fn run(command: OpenApiCommand) -> ExitCode {
    let OpenApiCommand::Import {
        file,
        service,
        name,
        api_version,
        base_path,
        auth_policies,
    } = command;
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}: cannot read: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let options = ImportOptions {
        name,
        version: api_version,
        base_path,
        auth_policies,
        ..ImportOptions::new(service)
    };
    let imported = match import(&text, &options) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    for warning in &imported.warnings {
        eprintln!("{}: warning: {warning}", file.display());
    }
    match imported.to_config_yaml() {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tollgate: {e}");
            ExitCode::from(1)
        }
    }
}
