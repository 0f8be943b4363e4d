//! Structured logs for the server. Nothing logged ever contains media, transcripts, keys, tokens
//! or CEKs: the server code logs SIDs, sizes and outcomes only.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub(crate) fn init(format: &str) {
    let filter = EnvFilter::try_from_env("MEDIASEAL_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
