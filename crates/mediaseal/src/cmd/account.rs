//! `mediaseal account create`: a main account, straight in the store (no server needed).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::error::CliError;

/// `mediaseal account …`.
#[derive(Debug, Args)]
pub(crate) struct AccountArgs {
    #[command(subcommand)]
    pub(crate) command: AccountCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AccountCommand {
    /// Create a main account and print its SID and auth token as JSON.
    Create {
        /// Data directory of the server (the embedded store).
        #[arg(
            long,
            value_name = "DIR",
            env = "MEDIASEAL_DATA",
            default_value = "mediaseal-data"
        )]
        data: PathBuf,
        /// Metadata database URL, when not the embedded SQLite.
        #[arg(long, value_name = "URL", env = "MEDIASEAL_DATABASE")]
        database: Option<String>,
        /// Display name of the account.
        #[arg(long, value_name = "NAME")]
        friendly_name: Option<String>,
    },
}

pub(crate) fn run_account(args: &AccountArgs) -> Result<(), CliError> {
    match &args.command {
        AccountCommand::Create {
            data,
            database,
            friendly_name,
        } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| CliError::new(format!("cannot start the async runtime: {e}")))?;
            let account = runtime.block_on(async {
                let meta = mediaseal_server::serve::open_meta(data, database.as_deref())
                    .await
                    .map_err(|e| CliError::new(format!("cannot open the store: {e}")))?;
                mediaseal_server::create_account(meta.as_ref(), friendly_name.as_deref(), None)
                    .await
                    .map_err(|e| CliError::new(format!("cannot create the account: {e}")))
            })?;
            let out = serde_json::json!({
                "sid": account.sid,
                "auth_token": account.auth_token,
                "friendly_name": account.friendly_name,
            });
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            Ok(())
        }
    }
}
