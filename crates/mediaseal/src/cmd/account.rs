//! `mediaseal account …`: main accounts and auth token rotation, straight in the store (no
//! server needed). The rotation commands do what `/v1/AuthTokens/Secondary` and
//! `/v1/AuthTokens/Promote` do over HTTP, for an operator who has lost the primary token or
//! must rotate it without the API.

use std::future::Future;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use mediaseal_server::RotateTokenError;
use mediaseal_server::clock::iso8601;
use mediaseal_server::serve::open_meta;

use crate::error::CliError;

/// `mediaseal account …`.
#[derive(Debug, Args)]
pub(crate) struct AccountArgs {
    #[command(subcommand)]
    pub(crate) command: AccountCommand,
}

/// Where the server's store is.
#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
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
}

#[derive(Debug, Subcommand)]
pub(crate) enum AccountCommand {
    /// Create a main account and print its SID and auth token as JSON.
    Create {
        #[command(flatten)]
        store: StoreArgs,
        /// Display name of the account.
        #[arg(long, value_name = "NAME")]
        friendly_name: Option<String>,
    },
    /// Create or delete an account's secondary auth token, which authenticates beside the
    /// primary until it is promoted or deleted.
    SecondaryToken {
        #[command(subcommand)]
        command: SecondaryTokenCommand,
    },
    /// Make the account's secondary auth token its primary; the old primary stops working at
    /// once (requests and webhook signatures). Prints the new primary as JSON.
    PromoteToken {
        #[command(flatten)]
        store: StoreArgs,
        /// The account (AC…).
        #[arg(value_name = "ACCOUNT_SID")]
        account: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SecondaryTokenCommand {
    /// Create a secondary auth token (replacing any) and print it as JSON.
    Create {
        #[command(flatten)]
        store: StoreArgs,
        /// The account (AC…).
        #[arg(value_name = "ACCOUNT_SID")]
        account: String,
    },
    /// Delete the secondary auth token; it stops working at once.
    Delete {
        #[command(flatten)]
        store: StoreArgs,
        /// The account (AC…).
        #[arg(value_name = "ACCOUNT_SID")]
        account: String,
    },
}

/// Runs `work` to completion on a runtime of its own.
fn block_on<T>(work: impl Future<Output = Result<T, CliError>>) -> Result<T, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(format!("cannot start the async runtime: {e}")))?
        .block_on(work)
}

fn cannot_open(e: impl std::fmt::Display) -> CliError {
    CliError::new(format!("cannot open the store: {e}"))
}

/// The account SID argument, checked before the store is opened.
fn account_sid(given: &str) -> Result<&str, CliError> {
    if mediaseal_server::sid::is_sid(given, "AC") {
        Ok(given)
    } else {
        Err(CliError::usage(format!(
            "'{}' is not an account SID: expected AC followed by 32 hex digits",
            given.chars().take(40).collect::<String>()
        )))
    }
}

fn rotation_failed(e: &RotateTokenError) -> CliError {
    let hint = matches!(e, RotateTokenError::NoSecondary(_))
        .then(|| "run 'mediaseal account secondary-token create ACCOUNT_SID' first".to_owned());
    let e = CliError::new(e.to_string());
    match hint {
        Some(h) => e.with_hint(h),
        None => e,
    }
}

fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

pub(crate) fn run_account(args: &AccountArgs) -> Result<(), CliError> {
    match &args.command {
        AccountCommand::Create {
            store,
            friendly_name,
        } => {
            let account = block_on(async {
                let meta = open_meta(&store.data, store.database.as_deref())
                    .await
                    .map_err(cannot_open)?;
                mediaseal_server::create_account(meta.as_ref(), friendly_name.as_deref(), None)
                    .await
                    .map_err(|e| CliError::new(format!("cannot create the account: {e}")))
            })?;
            print_json(&serde_json::json!({
                "sid": account.sid,
                "auth_token": account.auth_token,
                "friendly_name": account.friendly_name,
            }));
            Ok(())
        }
        AccountCommand::SecondaryToken {
            command: SecondaryTokenCommand::Create { store, account },
        } => {
            let sid = account_sid(account)?;
            let made = block_on(async {
                let meta = open_meta(&store.data, store.database.as_deref())
                    .await
                    .map_err(cannot_open)?;
                mediaseal_server::create_secondary_auth_token(meta.as_ref(), sid)
                    .await
                    .map_err(|e| rotation_failed(&e))
            })?;
            print_json(&serde_json::json!({
                "account_sid": made.account_sid,
                "secondary_auth_token": made.token,
                "date_created": iso8601(made.date_created),
                "date_updated": iso8601(made.date_updated),
            }));
            Ok(())
        }
        AccountCommand::SecondaryToken {
            command: SecondaryTokenCommand::Delete { store, account },
        } => {
            let sid = account_sid(account)?;
            block_on(async {
                let meta = open_meta(&store.data, store.database.as_deref())
                    .await
                    .map_err(cannot_open)?;
                mediaseal_server::delete_secondary_auth_token(meta.as_ref(), sid)
                    .await
                    .map_err(|e| rotation_failed(&e))
            })?;
            print_json(&serde_json::json!({
                "account_sid": sid,
                "secondary_auth_token": null,
            }));
            Ok(())
        }
        AccountCommand::PromoteToken { store, account } => {
            let sid = account_sid(account)?;
            let promoted = block_on(async {
                let meta = open_meta(&store.data, store.database.as_deref())
                    .await
                    .map_err(cannot_open)?;
                mediaseal_server::promote_secondary_auth_token(meta.as_ref(), sid)
                    .await
                    .map_err(|e| rotation_failed(&e))
            })?;
            print_json(&serde_json::json!({
                "account_sid": promoted.account_sid,
                "auth_token": promoted.token,
                "date_created": iso8601(promoted.date_created),
                "date_updated": iso8601(promoted.date_updated),
            }));
            Ok(())
        }
    }
}
