//! `mediaseal`: the one user-facing binary.
//!
//! `main` only parses arguments, runs a command and turns its outcome into an exit code and, on
//! failure, one sentence on stderr (plus a hint line where there is something to do next).

mod cli;
mod cmd;
mod error;
mod io_util;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::error::CliError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.is_broken_pipe() => {
            // The reader of our output went away (`mediaseal decrypt … | head`): not an error.
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("mediaseal: {}", err.message);
            if let Some(hint) = &err.hint {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(err.exit_code)
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Keygen(args) => cmd::keygen::run(&args),
        Command::Encrypt(args) => cmd::encrypt::run(&args),
        Command::Decrypt(args) => cmd::decrypt::run(&args),
        Command::Inspect(args) => cmd::inspect::run(&args),
        Command::Serve(args) => cmd::serve::run_serve(&args),
        Command::Account(args) => cmd::account::run_account(&args),
        Command::Download(args) => cmd::download::run(&args),
        Command::Intelligence(args) => cmd::intelligence::run_intelligence(&args),
    }
}
