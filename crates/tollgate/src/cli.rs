//! Commands that act on a running gateway through its admin API: `config export|diff|apply`
//! and the everyday lifecycle actions (`api list|versions|releases|publish|rollback|unpublish|
//! deprecate`).

use std::path::PathBuf;
use std::process::ExitCode;

use bytes::Bytes;

use crate::client::{AdminArgs, CallError, Output, encode, remote};

/// `tollgate config` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ConfigCommand {
    /// Write the gateway's whole configuration as one YAML (or JSON) file; secrets appear
    /// only in their stored (hashed or encrypted) form.
    Export {
        #[command(flatten)]
        admin: AdminArgs,
        /// Write to this file instead of standard output.
        #[arg(short = 'f', long)]
        file: Option<PathBuf>,
        /// `yaml` or `json`.
        #[arg(long, default_value = "yaml", value_parser = ["yaml", "json"])]
        format: String,
    },
    /// Show what `apply` would change.
    Diff {
        #[command(flatten)]
        admin: AdminArgs,
        /// Configuration file (YAML or JSON); `${VAR}` are read from this shell's environment.
        #[arg(short = 'f', long)]
        file: PathBuf,
    },
    /// Make the gateway's configuration what the file says, in one transaction.
    Apply {
        #[command(flatten)]
        admin: AdminArgs,
        /// Configuration file (YAML or JSON); `${VAR}` are read from this shell's environment.
        #[arg(short = 'f', long)]
        file: PathBuf,
    },
}

/// `tollgate api` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ApiCommand {
    /// List APIs, their versions and where they are live.
    List {
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Release history of an API.
    Releases {
        /// API name.
        name: String,
        /// Only this environment.
        #[arg(long = "env")]
        environment: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Make a version live in an environment.
    Publish {
        /// API name.
        name: String,
        /// Version.
        #[arg(value_name = "VERSION")]
        api_version: String,
        /// Environment.
        #[arg(long = "env")]
        environment: String,
        /// Release note.
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Make an earlier release live again (default: the previous version).
    Rollback {
        /// API name.
        name: String,
        /// Environment.
        #[arg(long = "env")]
        environment: String,
        /// Release id to restore.
        #[arg(long = "to")]
        release: Option<i64>,
        /// Release note.
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Remove an API from an environment.
    Unpublish {
        /// API name.
        name: String,
        /// Environment.
        #[arg(long = "env")]
        environment: String,
        /// Release note.
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Mark an API deprecated in an environment (it keeps serving, with Deprecation/Sunset
    /// headers).
    Deprecate {
        /// API name.
        name: String,
        /// Environment.
        #[arg(long = "env")]
        environment: String,
        /// When it stops answering (RFC 3339).
        #[arg(long)]
        sunset: Option<String>,
        /// Page explaining the deprecation.
        #[arg(long)]
        link: Option<String>,
        /// Release note.
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

fn read_file(file: &PathBuf) -> Result<(String, Bytes), CallError> {
    let raw = std::fs::read_to_string(file)
        .map_err(|e| CallError::Unreachable(format!("{}: cannot read: {e}", file.display())))?;
    let text = tollgate_model::substitute_env(&raw, |name| std::env::var(name).ok())
        .map_err(|e| CallError::Unreachable(format!("{}:{e}", file.display())))?
        .into_owned();
    let content_type = if file
        .to_string_lossy()
        .to_ascii_lowercase()
        .ends_with(".json")
    {
        "application/json"
    } else {
        "application/yaml"
    };
    Ok((content_type.to_owned(), Bytes::from(text)))
}

fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// The change records of a diff/apply answer (a list, or an object holding one).
fn records(value: &serde_json::Value) -> Vec<serde_json::Value> {
    if let Some(list) = value.as_array() {
        return list.clone();
    }
    for key in ["changes", "items", "records"] {
        if let Some(list) = value[key].as_array() {
            return list.clone();
        }
    }
    Vec::new()
}

fn print_changes(value: &serde_json::Value, verb: &str) {
    let changes = records(value);
    if changes.is_empty() {
        println!("no changes");
        return;
    }
    for c in &changes {
        println!(
            "{:<28} {}",
            c["action"].as_str().unwrap_or("?"),
            c["key"].as_str().unwrap_or("?")
        );
    }
    println!("{} change(s) {verb}", changes.len());
}

/// Runs a `config` command.
pub(crate) fn config(command: ConfigCommand) -> ExitCode {
    remote(|| async {
        match command {
            ConfigCommand::Export {
                admin,
                file,
                format,
            } => {
                let accept = if format == "json" {
                    "application/json"
                } else {
                    "application/yaml"
                };
                let answer = admin.call("GET", "/api/v1/config", None, accept).await?;
                match file {
                    Some(path) => std::fs::write(&path, &answer.body).map_err(|e| {
                        CallError::Unreachable(format!("{}: cannot write: {e}", path.display()))
                    })?,
                    None => print!("{}", String::from_utf8_lossy(&answer.body)),
                }
                Ok(())
            }
            ConfigCommand::Diff { admin, file } => {
                let (content_type, body) = read_file(&file)?;
                let answer = admin
                    .call(
                        "POST",
                        "/api/v1/config/diff",
                        Some((&content_type, body)),
                        "application/json",
                    )
                    .await?;
                match admin.output {
                    Output::Json => print_json(&answer.json()),
                    Output::Text => print_changes(&answer.json(), "would be made"),
                }
                Ok(())
            }
            ConfigCommand::Apply { admin, file } => {
                let (content_type, body) = read_file(&file)?;
                let answer = admin
                    .call(
                        "POST",
                        "/api/v1/config/apply",
                        Some((&content_type, body)),
                        "application/json",
                    )
                    .await?;
                match admin.output {
                    Output::Json => print_json(&answer.json()),
                    Output::Text => print_changes(&answer.json(), "applied"),
                }
                Ok(())
            }
        }
    })
}

/// Runs an `api` command.
pub(crate) fn api(command: ApiCommand) -> ExitCode {
    remote(|| async {
        let (admin, method, path, body) = match command {
            ApiCommand::List { admin } => (admin, "GET", "/api/v1/apis".to_owned(), None),
            ApiCommand::Releases {
                name,
                environment,
                admin,
            } => {
                let query = environment
                    .map(|e| format!("?environment={}", encode(&e)))
                    .unwrap_or_default();
                (
                    admin,
                    "GET",
                    format!("/api/v1/apis/{}/releases{query}", encode(&name)),
                    None,
                )
            }
            ApiCommand::Publish {
                name,
                api_version: version,
                environment,
                note,
                admin,
            } => (
                admin,
                "POST",
                format!(
                    "/api/v1/apis/{}/versions/{}/publish",
                    encode(&name),
                    encode(&version)
                ),
                Some(serde_json::json!({"environment": environment, "note": note})),
            ),
            ApiCommand::Rollback {
                name,
                environment,
                release,
                note,
                admin,
            } => (
                admin,
                "POST",
                format!("/api/v1/apis/{}/rollback", encode(&name)),
                Some(
                    serde_json::json!({"environment": environment, "release": release, "note": note}),
                ),
            ),
            ApiCommand::Unpublish {
                name,
                environment,
                note,
                admin,
            } => (
                admin,
                "POST",
                format!("/api/v1/apis/{}/unpublish", encode(&name)),
                Some(serde_json::json!({"environment": environment, "note": note})),
            ),
            ApiCommand::Deprecate {
                name,
                environment,
                sunset,
                link,
                note,
                admin,
            } => (
                admin,
                "POST",
                format!("/api/v1/apis/{}/deprecate", encode(&name)),
                Some(serde_json::json!({
                    "environment": environment, "sunset": sunset, "link": link, "note": note
                })),
            ),
        };
        let body = body.map(|mut b| {
            if let Some(map) = b.as_object_mut() {
                map.retain(|_, v| !v.is_null());
            }
            ("application/json", Bytes::from(b.to_string()))
        });
        let answer = admin.call(method, &path, body, "application/json").await?;
        let json = answer.json();
        match admin.output {
            Output::Json => print_json(&json),
            Output::Text => print_text(&json),
        }
        Ok(())
    })
}

/// A readable rendering of list answers (`items`) and single objects.
fn print_text(value: &serde_json::Value) {
    let items = value["items"].as_array().cloned();
    match items {
        Some(items) if items.is_empty() => println!("(none)"),
        Some(items) => {
            for item in items {
                println!("{}", one_line(&item));
            }
        }
        None => println!("{}", one_line(value)),
    }
}

fn one_line(value: &serde_json::Value) -> String {
    if let (Some(name), Some(versions)) = (value["name"].as_str(), value["versions"].as_array()) {
        // An API: its versions and where each is live.
        let versions: Vec<String> = versions
            .iter()
            .map(|v| {
                let live: Vec<&str> = v["live_in"]
                    .as_array()
                    .map(|l| l.iter().filter_map(|e| e.as_str()).collect())
                    .unwrap_or_default();
                let state = if !live.is_empty() {
                    format!("live in {}", live.join(", "))
                } else if v["published"].as_bool() == Some(true) {
                    "published, not live".to_owned()
                } else {
                    "draft".to_owned()
                };
                format!("{} ({state})", v["version"].as_str().unwrap_or("?"))
            })
            .collect();
        return format!("{name:<24} {}", versions.join("; "));
    }
    if let (Some(id), Some(action)) = (value["id"].as_i64(), value["action"].as_str()) {
        // A release.
        return format!(
            "#{id:<5} {:<20} {action:<11} {:<8} {:<12} {}{}",
            value["at"].as_str().unwrap_or(""),
            value["environment"].as_str().unwrap_or(""),
            value["version"].as_str().unwrap_or("-"),
            value["actor"].as_str().unwrap_or(""),
            value["note"]
                .as_str()
                .map(|n| format!("  \"{n}\""))
                .unwrap_or_default()
        );
    }
    match value.as_object() {
        Some(map) => map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join("  "),
        None => value.to_string(),
    }
}
