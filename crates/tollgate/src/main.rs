//! The `tollgate` binary: command line, wiring of the crates, signals, reload and shutdown.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 invalid usage or invalid configuration.

mod admin_cmd;
mod cli;
mod client;
mod compile_thread;
mod debugger;
mod heap;
mod load;
mod logging;
mod openapi_cmd;
mod reload;
mod role;
mod run;
mod store_health;
mod store_mode;
mod validator;
mod watch;
#[cfg(test)]
mod write_cost;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tollgate, an API gateway.
#[derive(Debug, Parser)]
#[command(
    name = "tollgate",
    version,
    about = "Tollgate, an API gateway: routing, policies, TLS and hot reload from one binary",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway.
    Run(run::RunArgs),
    /// Check a configuration file and exit: 0 valid, 2 invalid (errors on stderr).
    Validate {
        /// Configuration file (YAML or JSON).
        #[arg(short, long, env = "TOLLGATE_CONFIG")]
        config: PathBuf,
    },
    /// Export, diff and apply the configuration of a running gateway.
    #[command(subcommand)]
    Config(cli::ConfigCommand),
    /// Lifecycle of APIs on a running gateway: list, publish, rollback, unpublish, deprecate.
    #[command(subcommand)]
    Api(cli::ApiCommand),
    /// OpenAPI documents: import as API definitions, export from a running gateway.
    #[command(subcommand)]
    Openapi(openapi_cmd::OpenApiCommand),
    /// Local administration on the store (admin API tokens).
    #[command(subcommand)]
    Admin(admin_cmd::AdminCommand),
    /// Print the version.
    Version,
}

fn main() -> ExitCode {
    // Until the control loop installs its handlers, a SIGHUP (e.g. from a config management
    // tool reacting to the same change that started us) must not kill the process.
    let early_hup = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let _ = signal_hook::flag::register(signal_hook::consts::SIGHUP, early_hup);
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Version => {
            println!("tollgate {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Validate { config } => match load::read_config(&config) {
            Ok(loaded) => {
                let registry = tollgate_plugins::registry();
                match load::compile(&loaded, &registry, None, 1, 0) {
                    Ok(_) => {
                        println!("{}: configuration is valid", config.display());
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("{e}");
                        ExitCode::from(2)
                    }
                }
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Command::Run(args) => run::run(args),
        Command::Admin(command) => admin_cmd::run(command),
        Command::Config(command) => cli::config(command),
        Command::Openapi(command) => openapi_cmd::run(command),
        Command::Api(command) => cli::api(command),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
