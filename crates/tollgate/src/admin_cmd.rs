//! `tollgate admin ...`: local administration that works on the store directly, without a
//! running gateway (it is how the first admin token comes to exist).

use std::process::ExitCode;

use tollgate_store::secrets::{random_token, sha256_hex};
use tollgate_store::{Role, Store, TokenRecord};

use crate::store_mode::StoreArgs;

/// `tollgate admin` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum AdminCommand {
    /// Admin API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

/// `tollgate admin token` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a token and print it once (only its hash is stored).
    Create {
        /// What the token may do.
        #[arg(long, value_parser = ["viewer", "operator", "admin"])]
        role: String,
        /// A name for the token (shown in the audit log). Default: `<role>-<id>`.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List tokens (never their secrets).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a token by id.
    Revoke {
        /// Token id (from `list`).
        id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Runs an admin command; exit 0, 1 (store failure) or 2 (bad usage).
pub(crate) fn run(command: AdminCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tollgate: cannot start a runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let AdminCommand::Token(command) = command;
    match runtime.block_on(token(command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tollgate: {e}");
            ExitCode::from(1)
        }
    }
}

async fn open(store: &StoreArgs) -> Result<Store, String> {
    store.open().await
}

fn local_actor() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

async fn token(command: TokenCommand) -> Result<(), String> {
    match command {
        TokenCommand::Create { role, name, store } => {
            let role = Role::parse(&role).ok_or_else(|| format!("unknown role {role:?}"))?;
            let store = open(&store).await?;
            let secret = random_token("tg_", 32).map_err(|e| e.to_string())?;
            let id = random_token("", 6).map_err(|e| e.to_string())?;
            let record = TokenRecord {
                name: name.unwrap_or_else(|| format!("{}-{id}", role.as_str())),
                id,
                role,
                hash: sha256_hex(&secret),
                created_at: tollgate_model::Timestamp::now().unix_seconds(),
                created_by: local_actor(),
            };
            store
                .create_token(&record)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!(
                "created {} token {:?} (id {}); it is shown only once:",
                role.as_str(),
                record.name,
                record.id
            );
            println!("{secret}");
            Ok(())
        }
        TokenCommand::List { store } => {
            let store = open(&store).await?;
            let tokens = store.list_tokens().await.map_err(|e| e.to_string())?;
            println!("{:<10} {:<9} {:<24} CREATED BY", "ID", "ROLE", "NAME");
            for t in tokens {
                println!(
                    "{:<10} {:<9} {:<24} {} ({})",
                    t.id,
                    t.role.as_str(),
                    t.name,
                    t.created_by,
                    tollgate_model::Timestamp::from_unix(t.created_at)
                );
            }
            Ok(())
        }
        TokenCommand::Revoke { id, store } => {
            let store = open(&store).await?;
            if store
                .delete_token(&id, &local_actor())
                .await
                .map_err(|e| e.to_string())?
            {
                eprintln!("revoked token {id}");
                Ok(())
            } else {
                Err(format!("no token with id {id:?}"))
            }
        }
    }
}
