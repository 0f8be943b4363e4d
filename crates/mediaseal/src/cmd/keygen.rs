//! `mediaseal keygen`: a fresh RSA key pair in the two files every seed recipe expects.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};

use mediaseal_crypto::{AtomicFile, PrivateKey};

use crate::cli::KeygenArgs;
use crate::error::CliError;

pub(crate) fn run(args: &KeygenArgs) -> Result<(), CliError> {
    let dir = &args.out;
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| CliError::io("create directory", dir, &e))?;
    } else if !dir.is_dir() {
        return Err(CliError::usage(format!(
            "'{}' exists and is not a directory",
            dir.display()
        )));
    }
    let private_path = dir.join("private_key.pem");
    let public_path = dir.join("public_key.pem");
    for path in [&private_path, &public_path] {
        if path.exists() && !args.force {
            return Err(CliError::new(format!("'{}' already exists", path.display())).with_hint(
                "pass --force to replace it; anything sealed to the old key can then no longer be opened",
            ));
        }
    }

    let key = PrivateKey::generate(args.bits)
        .map_err(|e| CliError::new(format!("key generation failed: {e}")))?;
    let private_pem = if args.pkcs1 {
        key.to_pkcs1_pem()
    } else {
        key.to_pkcs8_pem()
    }
    .map_err(|e| CliError::new(format!("key generation failed: {e}")))?;

    // AtomicFile creates its temporary file with mode 0600, so the private key is never readable
    // by others, not even for an instant.
    let mut file =
        AtomicFile::create(&private_path).map_err(|e| CliError::io("create", &private_path, &e))?;
    file.write_all(private_pem.as_bytes())
        .map_err(|e| CliError::io("write", &private_path, &e))?;
    file.commit()
        .map_err(|e| CliError::io("write", &private_path, &e))?;

    let mut file =
        AtomicFile::create(&public_path).map_err(|e| CliError::io("create", &public_path, &e))?;
    file.write_all(key.public_key().to_pem().as_bytes())
        .map_err(|e| CliError::io("write", &public_path, &e))?;
    file.file()
        .set_permissions(fs::Permissions::from_mode(0o644))
        .map_err(|e| CliError::io("set permissions on", &public_path, &e))?;
    file.commit()
        .map_err(|e| CliError::io("write", &public_path, &e))?;

    println!(
        "wrote {} ({}-bit RSA, {}, mode 0600) and {}\nfingerprint {}",
        private_path.display(),
        args.bits,
        if args.pkcs1 { "PKCS#1" } else { "PKCS#8" },
        public_path.display(),
        key.fingerprint()
    );
    Ok(())
}
