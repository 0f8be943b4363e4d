//! Command-line definitions. Spellings here are a contract with users and scripts.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use mediaseal_crypto::Format;

/// Customer-held-key encryption for recordings, compositions and transcripts.
#[derive(Debug, Parser)]
#[command(name = "mediaseal", version, about, long_about = None, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per process; the serve settings are the largest and boxing buys nothing"
)]
pub(crate) enum Command {
    /// Generate an RSA key pair: DIR/private_key.pem (mode 0600) and DIR/public_key.pem.
    Keygen(KeygenArgs),
    /// Seal a file to one or more RSA public keys.
    Encrypt(EncryptArgs),
    /// Open a sealed file with your RSA private key.
    Decrypt(DecryptArgs),
    /// Show what a native file's header says, without any key.
    Inspect(InspectArgs),
    /// Run the service: Twilio-shaped REST API, sealing on ingest, callbacks.
    Serve(crate::cmd::serve::ServeArgs),
    /// Manage accounts in the server's store.
    Account(crate::cmd::account::AccountArgs),
    /// Fetch a sealed recording (RE…, RT…) or composition (CJ…) by SID and decrypt it.
    Download(crate::cmd::download::DownloadArgs),
    /// Operator switches of Conversational Intelligence (data logging).
    Intelligence(crate::cmd::intelligence::IntelligenceArgs),
}

#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// Modulus size in bits.
    #[arg(long, default_value_t = 2048, value_parser = parse_bits)]
    pub(crate) bits: usize,
    /// Write the private key as PKCS#1 (`BEGIN RSA PRIVATE KEY`) instead of PKCS#8.
    #[arg(long)]
    pub(crate) pkcs1: bool,
    /// Directory to write the two key files into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Replace key files that already exist.
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct EncryptArgs {
    /// Envelope format: native, rsa-aes (voice), s3-cbc (video), s3-gcm (transcripts).
    #[arg(long, value_name = "FORMAT")]
    pub(crate) format: Format,
    /// Public key to seal to (PEM or DER; SPKI or PKCS#1). Repeat for several recipients (native).
    #[arg(long = "public-key", value_name = "PEM", required = true)]
    pub(crate) public_keys: Vec<PathBuf>,
    /// Public key SID (`CR…`) to record for each --public-key, in the same order.
    #[arg(long = "key-sid", value_name = "CR…")]
    pub(crate) key_sids: Vec<String>,
    /// Input file, or - for standard input.
    #[arg(long = "in", value_name = "FILE|-")]
    pub(crate) input: PathBuf,
    /// Output file, or - for standard output.
    #[arg(long = "out", value_name = "FILE|-")]
    pub(crate) output: PathBuf,
    /// Where to write the key material of rsa-aes (JSON) and s3-* (header lines).
    #[arg(long, value_name = "FILE")]
    pub(crate) details: Option<PathBuf>,
    /// Native segment size in bytes: a power of two from 4096 to 16777216.
    #[arg(long, value_name = "BYTES", default_value_t = 65_536)]
    pub(crate) segment_size: usize,
    /// Worker threads for native sealing (default: all cores).
    #[arg(long, value_name = "N")]
    pub(crate) threads: Option<usize>,
    /// Never show a progress bar.
    #[arg(long, short)]
    pub(crate) quiet: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DecryptArgs {
    /// Your RSA private key (PEM or DER; PKCS#8 or PKCS#1).
    #[arg(long = "private-key", value_name = "PEM")]
    pub(crate) private_key: PathBuf,
    /// Sealed input file, or - for standard input.
    #[arg(long = "in", value_name = "FILE|-")]
    pub(crate) input: PathBuf,
    /// Output file, or - for standard output.
    #[arg(long = "out", value_name = "FILE|-")]
    pub(crate) output: PathBuf,
    /// Key material for rsa-aes/s3-* objects: encryption_details JSON (or a whole Recording
    /// resource) or x-amz-meta-* header lines (wget -S / curl -i output works).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["encrypted_key", "iv"])]
    pub(crate) details: Option<PathBuf>,
    /// The wrapped key as the seeds hand it out (encrypted_cek or x-amz-meta-x-amz-key), base64.
    #[arg(long = "encrypted-key", value_name = "BASE64", requires = "iv")]
    pub(crate) encrypted_key: Option<String>,
    /// The IV as the seeds hand it out (iv or x-amz-meta-x-amz-iv), base64.
    #[arg(long, value_name = "BASE64", requires = "encrypted_key")]
    pub(crate) iv: Option<String>,
    /// Native only: decrypt just bytes START-END (inclusive, like an HTTP Range), e.g. 0-1023.
    #[arg(long, value_name = "START-END")]
    pub(crate) range: Option<String>,
    /// Worker threads for native opening (default: all cores).
    #[arg(long, value_name = "N")]
    pub(crate) threads: Option<usize>,
    /// Never show a progress bar.
    #[arg(long, short)]
    pub(crate) quiet: bool,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// A native file.
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

fn parse_bits(text: &str) -> Result<usize, String> {
    match text {
        "2048" => Ok(2048),
        "3072" => Ok(3072),
        "4096" => Ok(4096),
        _ => Err("choose 2048, 3072 or 4096".to_owned()),
    }
}
