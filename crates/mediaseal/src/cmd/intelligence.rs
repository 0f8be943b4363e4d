//! `mediaseal intelligence …`: operator switches of Conversational Intelligence, straight in the
//! store (no server needed). Data logging is the one setting the API cannot switch on (seed 002):
//! with it, transcripts sealed with the customer's key also keep a copy sealed with the service's
//! at-rest key, which the operator can read.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use mediaseal_server::clock::iso8601;
use mediaseal_server::serve::open_meta;

use crate::error::CliError;

/// `mediaseal intelligence …`.
#[derive(Debug, Args)]
pub(crate) struct IntelligenceArgs {
    #[command(subcommand)]
    pub(crate) command: IntelligenceCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum IntelligenceCommand {
    /// Switch data logging of an Intelligence Service on or off. On: every transcript made from
    /// then on that is sealed with the customer's key also keeps a second copy sealed with the
    /// service's at-rest key. Prints the service as JSON.
    DataLogging {
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
        /// The service (GA…).
        service: String,
        /// `on` or `off`.
        state: Switch,
    },
}

/// On or off.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Switch {
    /// Keep the second copy.
    On,
    /// Keep none.
    Off,
}

pub(crate) fn run_intelligence(args: &IntelligenceArgs) -> Result<(), CliError> {
    match &args.command {
        IntelligenceCommand::DataLogging {
            data,
            database,
            service,
            state,
        } => {
            if !mediaseal_server::sid::is_sid(service, "GA") {
                return Err(CliError::usage(format!(
                    "'{}' is not an Intelligence Service SID: expected GA followed by 32 hex digits",
                    service.chars().take(40).collect::<String>()
                )));
            }
            let on = matches!(state, Switch::On);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| CliError::new(format!("cannot start the async runtime: {e}")))?;
            let found = runtime.block_on(async {
                let meta = open_meta(data, database.as_deref())
                    .await
                    .map_err(|e| CliError::new(format!("cannot open the store: {e}")))?;
                mediaseal_server::set_data_logging(meta.as_ref(), service, on)
                    .await
                    .map_err(|e| CliError::new(format!("cannot update the service: {e}")))
            })?;
            let Some(s) = found else {
                return Err(CliError::new(format!(
                    "no Intelligence Service {service} in this store"
                )));
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "sid": s.sid,
                    "account_sid": s.account_sid,
                    "unique_name": s.unique_name,
                    "data_logging": s.data_logging,
                    "version": s.version,
                    "date_updated": iso8601(s.date_updated),
                }))
                .unwrap_or_default()
            );
            Ok(())
        }
    }
}
