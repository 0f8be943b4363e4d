//! `mediaseal encrypt`: seal a file in any of the four formats.

use std::io::IsTerminal;

use mediaseal_crypto::{Format, RecipientKey, Sealer};

use crate::cli::EncryptArgs;
use crate::error::CliError;
use crate::io_util::{Input, Output, Progress, is_dash, load_public_key, threads, write_text};

pub(crate) fn run(args: &EncryptArgs) -> Result<(), CliError> {
    let keys = args
        .public_keys
        .iter()
        .map(|p| load_public_key(p))
        .collect::<Result<Vec<_>, _>>()?;
    let sids = key_sids(args)?;
    let segment_log2 = segment_log2(args.segment_size)?;
    if args.format == Format::Native {
        if args.details.is_some() {
            return Err(CliError::usage(
                "--details applies to rsa-aes, s3-cbc and s3-gcm; a native file carries its own header",
            ));
        }
    } else {
        if keys.len() > 1 {
            return Err(CliError::usage(format!(
                "{} seals to exactly one public key; {} were given",
                args.format,
                keys.len()
            ))
            .with_hint("use --format native to seal to several keys at once"));
        }
        if args.details.as_deref().is_some_and(is_dash) && is_dash(&args.output) {
            return Err(CliError::usage(
                "--details - and --out - would mix the key material into the sealed output",
            )
            .with_hint("write the details to a file: --details FILE"));
        }
        if args.details.is_none() {
            return Err(CliError::usage(format!(
                "{} keeps its wrapped key and IV outside the file, so --details FILE is required",
                args.format
            ))
            .with_hint("without the details the output could never be decrypted"));
        }
    }

    let recipients: Vec<RecipientKey<'_>> = keys
        .iter()
        .zip(&sids)
        .map(|(key, sid)| RecipientKey {
            key,
            key_id: sid.as_str(),
        })
        .collect();
    let sealer = Sealer::with_segment_log2(args.format, &recipients, segment_log2)
        .map_err(CliError::encrypt)?;

    let input = Input::open(&args.input)?;
    let progress = Progress::new(args.quiet, input.len(), "encrypting");
    let output = Output::create(&args.output, true)?;
    let threads = threads(args.threads);
    let (receipt, output) = match input {
        // A regular file is read sequentially in large reads, with the kernel told so.
        Input::File(file, _) => sealer
            .seal_file(&file, progress.counting(output), threads)
            .map(|(receipt, out)| (receipt, out.into_inner())),
        Input::Stream(stream) => sealer.seal_reader(progress.wrap(stream), output, threads),
    }
    .map_err(CliError::encrypt)?;
    progress.finish();
    if let (Some(text), Some(path)) = (receipt.details_text(), &args.details) {
        write_text(path, &text)?;
    }
    output.commit(&args.output)?;
    Ok(())
}

/// One SID per key (empty when none was given), checked for shape.
fn key_sids(args: &EncryptArgs) -> Result<Vec<String>, CliError> {
    let n = args.public_keys.len();
    if !args.key_sids.is_empty() && args.key_sids.len() != n {
        return Err(CliError::usage(format!(
            "{} --key-sid values for {n} --public-key values; give one per key, in the same order",
            args.key_sids.len()
        )));
    }
    for sid in &args.key_sids {
        if sid.len() > 64 || !sid.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(CliError::usage(format!(
                "--key-sid '{sid}' must be printable ASCII of at most 64 characters"
            )));
        }
        // Only a person at a terminal is told; scripts get nothing extra on stderr.
        let looks_like_sid = sid.len() == 34
            && sid.starts_with("CR")
            && sid[2..].bytes().all(|b| b.is_ascii_hexdigit());
        if !looks_like_sid && std::io::stderr().is_terminal() {
            eprintln!(
                "mediaseal: note: --key-sid '{sid}' is not a CR… public key SID; recording it as given"
            );
        }
    }
    let mut sids = args.key_sids.clone();
    sids.resize(n, String::new());
    Ok(sids)
}

fn segment_log2(size: usize) -> Result<u8, CliError> {
    if size.is_power_of_two() && (4096..=16 << 20).contains(&size) {
        Ok(size.trailing_zeros() as u8)
    } else {
        Err(CliError::usage(format!(
            "--segment-size {size} must be a power of two from 4096 to 16777216"
        )))
    }
}
