//! What the user sees when a command fails: one sentence, and a hint when there is a next step.

use std::io;
use std::path::Path;

use mediaseal_crypto::{DecryptError, DetailsError, EncryptError, KeyError};

/// A failed command.
#[derive(Debug)]
pub(crate) struct CliError {
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
    pub(crate) exit_code: u8,
    broken_pipe: bool,
}

impl CliError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
            exit_code: 1,
            broken_pipe: false,
        }
    }

    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Usage mistakes exit with 2, like clap's own.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            exit_code: 2,
            ..Self::new(message)
        }
    }

    pub(crate) fn is_broken_pipe(&self) -> bool {
        self.broken_pipe
    }

    /// An I/O failure on a named file.
    pub(crate) fn io(action: &str, path: &Path, err: &io::Error) -> Self {
        let shown = shown_path(path);
        let mut e = Self::new(format!("cannot {action} {shown}: {}", io_reason(err)));
        e.broken_pipe = err.kind() == io::ErrorKind::BrokenPipe;
        e
    }

    /// A key file that could not be used.
    pub(crate) fn key(path: &Path, err: &KeyError) -> Self {
        let e = Self::new(format!("{}: {err}", shown_path(path)));
        match err {
            KeyError::NotAKey | KeyError::Malformed { .. } => {
                e.with_hint("make a key pair with 'mediaseal keygen --out DIR' or 'openssl genrsa -out private_key.pem 2048'")
            }
            KeyError::TooSmall { .. } => e.with_hint("generate a 2048-bit or larger key: 'mediaseal keygen --bits 3072 --out DIR'"),
            _ => e,
        }
    }

    pub(crate) fn encrypt(err: EncryptError) -> Self {
        match err {
            EncryptError::Io(io) => Self::stream_io(&io),
            other => Self::new(format!("encryption failed: {other}")),
        }
    }

    pub(crate) fn decrypt(err: DecryptError) -> Self {
        match err {
            DecryptError::Io(io) => Self::stream_io(&io),
            DecryptError::WrongKey { .. } => Self::new(err.to_string()).with_hint(
                "use the private key that belongs to the public key named above; if it is the right key and \
                 another tool wrote the file, check that it used RSA-OAEP with SHA-256 *and* MGF1-SHA-256 \
                 (Java's default provider reads OAEPWithSHA-256AndMGF1Padding as MGF1-SHA-1)",
            ),
            DecryptError::Header(h) => Self::new(h.to_string()),
            other => Self::new(other.to_string()),
        }
    }

    pub(crate) fn details(source: &str, err: &DetailsError) -> Self {
        Self::new(format!("{source}: {err}"))
    }

    fn stream_io(err: &io::Error) -> Self {
        let mut e = Self::new(format!("I/O error: {}", io_reason(err)));
        e.broken_pipe = err.kind() == io::ErrorKind::BrokenPipe;
        e
    }
}

fn io_reason(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => err.to_string(),
    }
}

pub(crate) fn shown_path(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "standard input".to_owned()
    } else {
        format!("'{}'", path.display())
    }
}
