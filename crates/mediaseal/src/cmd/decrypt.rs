//! `mediaseal decrypt`: open any of the four formats, releasing only verified plaintext.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use mediaseal_crypto::native::{self, MAGIC};
use mediaseal_crypto::{AtomicFile, Envelope, PrivateKey, Scheme};

use crate::cli::DecryptArgs;
use crate::error::CliError;
use crate::io_util::{Input, Output, Progress, is_dash, load_private_key, read_text, threads};

pub(crate) fn run(args: &DecryptArgs) -> Result<(), CliError> {
    let key = load_private_key(&args.private_key)?;
    let envelope = envelope(args)?;
    let input = Input::open(&args.input)?;
    match envelope {
        Some(env) => {
            if input.starts_with(&MAGIC) {
                return Err(CliError::usage(format!(
                    "{} is a mediaseal native file, which carries its own header; drop --details/--encrypted-key/--iv",
                    crate::error::shown_path(&args.input)
                )));
            }
            if args.range.is_some() {
                return Err(CliError::usage(
                    "--range works on native files only; rsa-aes and s3-* must be read whole",
                ));
            }
            open_envelope(args, input, &env, &key)
        }
        None => open_native(args, input, &key),
    }
}

fn envelope(args: &DecryptArgs) -> Result<Option<Envelope>, CliError> {
    if let Some(path) = &args.details {
        let text = read_text(path, "details file")?;
        let source = format!("'{}'", path.display());
        return mediaseal_crypto::parse_details(&text)
            .map(Some)
            .map_err(|e| CliError::details(&source, &e));
    }
    match (&args.encrypted_key, &args.iv) {
        (Some(key), Some(iv)) => mediaseal_crypto::envelope_from_raw(key, iv)
            .map(Some)
            .map_err(|e| CliError::details("--encrypted-key/--iv", &e)),
        _ => Ok(None),
    }
}

fn open_envelope(
    args: &DecryptArgs,
    input: Input,
    env: &Envelope,
    key: &PrivateKey,
) -> Result<(), CliError> {
    let total = input.len().map(|n| {
        if env.scheme == Scheme::GcmOaep && is_dash(&args.output) {
            2 * n
        } else {
            n
        }
    });
    let progress = Progress::new(args.quiet, total, "decrypting");
    if !is_dash(&args.output) {
        // Straight into a temporary file beside the target; renamed only after verification.
        let reader = input.into_reader(&progress);
        mediaseal_crypto::open_to_path(reader, &args.output, env, key)
            .map_err(CliError::decrypt)?;
        progress.finish();
        return Ok(());
    }
    let out = Output::create(&args.output, false)?;
    let result = match input {
        Input::File(file, _) => {
            let file = ProgressFile::new(file, &progress)
                .map_err(|e| CliError::io("read", &args.input, &e))?;
            mediaseal_crypto::open_seekable_to_writer(file, out, env, key)
        }
        Input::Stream(stream) if env.scheme == Scheme::GcmOaep => {
            // A pipe cannot be read twice, and GCM plaintext must not leave before the tag is
            // checked: keep the ciphertext (never the plaintext) in an unlinked temporary file.
            let spooled = mediaseal_crypto::spool_ciphertext(progress.wrap(stream))
                .map_err(|e| CliError::io("buffer", Path::new("-"), &e))?;
            mediaseal_crypto::open_seekable_to_writer(spooled, out, env, key)
        }
        Input::Stream(stream) => {
            mediaseal_crypto::open_seekable_to_writer(NoSeek(progress.wrap(stream)), out, env, key)
        }
    };
    let out = result.map_err(CliError::decrypt)?;
    progress.finish();
    out.commit(&args.output)
}

fn open_native(args: &DecryptArgs, input: Input, key: &PrivateKey) -> Result<(), CliError> {
    let progress = Progress::new(args.quiet, input.len(), "decrypting");
    if let Some(range) = &args.range {
        let (start, end) = parse_range(range)?;
        let Input::File(file, _) = input else {
            return Err(CliError::usage(
                "--range needs a seekable input file, not a pipe",
            ));
        };
        let mut out = Output::create(&args.output, false)?;
        native::decrypt_range(file, key, start, end - start + 1, &mut out)
            .map_err(CliError::decrypt)?;
        return out.commit(&args.output);
    }
    let threads = threads(args.threads);
    if let Input::File(file, _) = &input
        && input.starts_with(&MAGIC)
    {
        // A regular file is read with pread by the workers themselves.
        let result = if is_dash(&args.output) {
            let out = Output::create(&args.output, false)?;
            native::open_file(file, progress.counting(out), key, threads)
                .map(|(_, out)| out.into_inner().commit(&args.output))
        } else {
            let out = AtomicFile::create(&args.output)
                .map_err(|e| CliError::io("create a file beside", &args.output, &e))?;
            native::open_file(file, progress.counting(out), key, threads).map(|(_, out)| {
                out.into_inner()
                    .commit()
                    .map_err(|e| CliError::io("write", &args.output, &e))
            })
        };
        let committed = result.map_err(CliError::decrypt)?;
        progress.finish();
        return committed;
    }
    let mut reader = input.into_reader(&progress);
    let mut magic = [0u8; 8];
    let got =
        read_up_to(&mut reader, &mut magic).map_err(|e| CliError::io("read", &args.input, &e))?;
    if magic[..got] != MAGIC[..got] || got < MAGIC.len() {
        return Err(CliError::new(format!(
            "{} is not a mediaseal native file",
            crate::error::shown_path(&args.input)
        ))
        .with_hint("for rsa-aes, s3-cbc and s3-gcm objects pass --details FILE, or --encrypted-key and --iv"));
    }
    let reader = io::Cursor::new(magic).chain(reader);
    if is_dash(&args.output) {
        let out = Output::create(&args.output, false)?;
        let (_, out) = native::open_stream(reader, out, key, threads).map_err(CliError::decrypt)?;
        progress.finish();
        return out.commit(&args.output);
    }
    let file = AtomicFile::create(&args.output)
        .map_err(|e| CliError::io("create a file beside", &args.output, &e))?;
    let (_, file) = native::open_stream(reader, file, key, threads).map_err(CliError::decrypt)?;
    progress.finish();
    file.commit()
        .map_err(|e| CliError::io("write", &args.output, &e))
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Parses `START-END` (inclusive) as in an HTTP Range header.
fn parse_range(text: &str) -> Result<(u64, u64), CliError> {
    let bad = || {
        CliError::usage(format!(
            "--range '{text}' is not START-END with START <= END, e.g. 0-1023"
        ))
    };
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let start: u64 = a.trim().parse().map_err(|_| bad())?;
    let end: u64 = b.trim().parse().map_err(|_| bad())?;
    if end < start {
        return Err(bad());
    }
    Ok((start, end))
}

/// A file whose reads advance the progress bar; seeking is passed through.
struct ProgressFile {
    reader: Box<dyn Read + Send>,
    file: std::fs::File,
}

impl ProgressFile {
    fn new(file: std::fs::File, progress: &Progress) -> io::Result<Self> {
        let reading = file.try_clone()?;
        Ok(Self {
            reader: progress.wrap(Box::new(reading)),
            file,
        })
    }
}

impl Read for ProgressFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }
}

impl Seek for ProgressFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        // The clone shares the file offset, so seeking either moves both.
        self.file.seek(pos)
    }
}

/// A stream used where `Seek` is required but never called (CBC opens in one pass).
struct NoSeek(Box<dyn Read + Send>);

impl Read for NoSeek {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Seek for NoSeek {
    fn seek(&mut self, _: SeekFrom) -> io::Result<u64> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "standard input cannot be rewound",
        ))
    }
}
