//! `tollgate openapi`: OpenAPI documents in and out. `import` turns a document into an API
//! definition, printed as YAML for a configuration file (no gateway needed), or, with
//! `--upload`, created as a draft version on a running gateway; `export` fetches the OpenAPI
//! 3.1 document of an API version, of the version live in an environment, or of a group, from
//! a running gateway's admin API.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bytes::Bytes;
use tollgate_model::DEFAULT_ENVIRONMENT;
use tollgate_openapi::{ImportOptions, import};

use crate::client::{AdminArgs, CallError, Output, encode, remote};

/// `tollgate openapi` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum OpenApiCommand {
    /// Print the API an OpenAPI document describes, as YAML for the `apis:` list of a
    /// configuration file (routes, parameters and body schemas kept for validation); with
    /// `--upload`, create it as a draft version on a running gateway instead.
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
        /// Create the API as a draft version through the admin API (`POST
        /// /api/v1/apis/import`) instead of printing it.
        #[arg(long)]
        upload: bool,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Print the OpenAPI 3.1 document of an API (or group) of a running gateway: one version
    /// with `--api-version`, else the version live in `--env`.
    Export {
        /// API name (a group name with `--group`).
        name: String,
        /// This version, live or not (default: the version live in `--env`).
        #[arg(long = "api-version", value_name = "VERSION", conflicts_with = "group")]
        api_version: Option<String>,
        /// Environment: its first exact host gives the server URL; without `--api-version`,
        /// the environment whose live version is exported (default `prod`).
        #[arg(long = "env")]
        environment: Option<String>,
        /// Server URL clients use (e.g. `https://api.example.com`), instead of the
        /// environment's host.
        #[arg(long)]
        server: Option<String>,
        /// NAME is a group: export every API of it live in `--env`, as one document.
        #[arg(long)]
        group: bool,
        /// Write to this file instead of standard output.
        #[arg(short = 'f', long)]
        file: Option<PathBuf>,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

/// Runs an `openapi` command.
pub(crate) fn run(command: OpenApiCommand) -> ExitCode {
    match command {
        OpenApiCommand::Import {
            file,
            service,
            name,
            api_version,
            base_path,
            auth_policies,
            upload,
            admin,
        } => {
            let options = ImportOptions {
                name,
                version: api_version,
                base_path,
                auth_policies,
                ..ImportOptions::new(service)
            };
            if upload {
                remote(|| upload_import(&admin, &file, &options))
            } else {
                import_locally(&file, &options)
            }
        }
        OpenApiCommand::Export {
            name,
            api_version,
            environment,
            server,
            group,
            file,
            admin,
        } => remote(|| {
            let path = export_path(&name, api_version.as_deref(), environment, server, group);
            export(&admin, path, file.as_deref())
        }),
    }
}

fn import_locally(file: &Path, options: &ImportOptions) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}: cannot read: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let imported = match import(&text, options) {
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

/// `?a=x&b=y` of the parameters that are set.
fn query(pairs: &[(&str, Option<&str>)]) -> String {
    let set: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", encode(v))))
        .collect();
    if set.is_empty() {
        String::new()
    } else {
        format!("?{}", set.join("&"))
    }
}

async fn upload_import(
    admin: &AdminArgs,
    file: &Path,
    options: &ImportOptions,
) -> Result<(), CallError> {
    let text = std::fs::read(file)
        .map_err(|e| CallError::Unreachable(format!("{}: cannot read: {e}", file.display())))?;
    let is_json = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let content_type = if is_json {
        "application/json"
    } else {
        "application/yaml"
    };
    let path = format!(
        "/api/v1/apis/import{}",
        query(&[
            ("service", Some(&options.service)),
            ("name", options.name.as_deref()),
            ("version", options.version.as_deref()),
            ("base_path", options.base_path.as_deref()),
            ("auth_policies", options.auth_policies.then_some("true")),
        ])
    );
    let answer = admin
        .call(
            "POST",
            &path,
            Some((content_type, Bytes::from(text))),
            "application/json",
        )
        .await?;
    let body = answer.json();
    for warning in body["warnings"].as_array().into_iter().flatten() {
        eprintln!(
            "{}: warning: {}: {}",
            file.display(),
            warning["pointer"].as_str().unwrap_or(""),
            warning["message"].as_str().unwrap_or("")
        );
    }
    match admin.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_else(|_| body.to_string())
        ),
        Output::Text => {
            let api = &body["api"];
            println!(
                "created draft {} version {} ({} routes)",
                api["name"].as_str().unwrap_or("?"),
                api["version"].as_str().unwrap_or("?"),
                api["routes"].as_array().map_or(0, Vec::len)
            );
        }
    }
    Ok(())
}

/// The admin API path that exports what the options select.
fn export_path(
    name: &str,
    api_version: Option<&str>,
    environment: Option<String>,
    server: Option<String>,
    group: bool,
) -> String {
    match api_version {
        Some(version) => format!(
            "/api/v1/apis/{}/versions/{}/openapi{}",
            encode(name),
            encode(version),
            query(&[
                ("environment", environment.as_deref()),
                ("server", server.as_deref()),
            ])
        ),
        None => {
            let environment = environment.unwrap_or_else(|| DEFAULT_ENVIRONMENT.to_owned());
            let query = query(&[
                ("environment", Some(&environment)),
                ("server", server.as_deref()),
            ]);
            let kind = if group { "groups" } else { "apis" };
            format!("/api/v1/{kind}/{}/openapi{query}", encode(name))
        }
    }
}

async fn export(admin: &AdminArgs, path: String, file: Option<&Path>) -> Result<(), CallError> {
    let answer = admin.call("GET", &path, None, "application/json").await?;
    let doc = answer.json();
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| doc.to_string());
    text.push('\n');
    match file {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| CallError::Unreachable(format!("{}: cannot write: {e}", path.display()))),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_paths_select_a_version_the_live_version_or_a_group() {
        assert_eq!(
            export_path("pets", Some("1.0"), None, None, false),
            "/api/v1/apis/pets/versions/1%2E0/openapi"
        );
        assert_eq!(
            export_path(
                "pets",
                None,
                Some("test".into()),
                Some("https://x".into()),
                false
            ),
            "/api/v1/apis/pets/openapi?environment=test&server=https%3A%2F%2Fx"
        );
        assert_eq!(
            export_path("shop", None, None, None, true),
            "/api/v1/groups/shop/openapi?environment=prod"
        );
    }
}
