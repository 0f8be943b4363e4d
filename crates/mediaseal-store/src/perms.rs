//! Owner-only permissions on everything the embedded store keeps on disk.
//!
//! The SQLite database holds every auth token (webhook signatures are keyed with them, as on
//! Twilio), so the data directory and everything the store writes under it are readable by the
//! service's user only: directories 0700, files 0600, from the first start. A deployment made
//! before this rule is tightened when the store opens, with a warning naming each path and its
//! old mode (object trees are summarised in one line per tree, not one per object).

use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of every directory the store creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file the store creates.
pub const FILE_MODE: u32 = 0o600;

/// Creates `path` (and missing parents) with mode 0700, or tightens an existing directory to
/// 0700, logging its old mode. Parents that already exist are left alone (they may be `/var`).
pub fn secure_dir(path: &Path) -> io::Result<()> {
    match std::fs::metadata(path) {
        Ok(md) if md.is_dir() => tighten(path, md.permissions().mode(), DIR_MODE),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a directory", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(path),
        Err(e) => Err(e),
    }
}

/// Creates `path` empty with mode 0600 if it does not exist (so that a program creating it
/// later, such as SQLite, finds it owner-only), else tightens it to 0600, logging its old mode.
pub fn secure_file(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(md) if md.is_file() => tighten(path, md.permissions().mode(), FILE_MODE),
        // A symlink or special file is the operator's business: leave it.
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(FILE_MODE)
                .open(path)
            {
                Ok(_) => Ok(()),
                // Another process made it in between: tighten theirs.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => secure_existing_file(path),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Tightens `path` to 0600 if it exists (logging its old mode); nothing if it does not.
pub fn secure_existing_file(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(md) if md.is_file() => tighten(path, md.permissions().mode(), FILE_MODE),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Tightens a whole tree: `root` and every directory under it to 0700, every regular file to
/// 0600. Logs one warning for `root` and one summary for what was under it. Symlinks are not
/// followed.
pub fn secure_tree(root: &Path) -> io::Result<()> {
    secure_dir(root)?;
    let mut dirs = 0usize;
    let mut files = 0usize;
    let mut modes = std::collections::BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let path = entry.path();
            let wanted = if kind.is_dir() {
                stack.push(path.clone());
                DIR_MODE
            } else if kind.is_file() {
                FILE_MODE
            } else {
                continue;
            };
            let old = entry.metadata()?.permissions().mode() & 0o7777;
            if old & !wanted != 0 {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(old & wanted))?;
                modes.insert(old);
                if kind.is_dir() {
                    dirs += 1;
                } else {
                    files += 1;
                }
            }
        }
    }
    if dirs + files > 0 {
        let old_modes: Vec<String> = modes.iter().map(|m| format!("{m:04o}")).collect();
        tracing::warn!(
            path = %root.display(),
            directories = dirs,
            files,
            old_modes = %old_modes.join(","),
            "tightened permissions under the object directory to owner-only (0700/0600)"
        );
    }
    Ok(())
}

fn tighten(path: &Path, mode: u32, wanted: u32) -> io::Result<()> {
    let old = mode & 0o7777;
    if old & !wanted == 0 {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(old & wanted))?;
    tracing::warn!(
        path = %path.display(),
        old_mode = %format!("{old:04o}"),
        new_mode = %format!("{:04o}", old & wanted),
        "tightened permissions: the store keeps auth tokens and sealed objects, readable by \
         this service's user only"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn creates_owner_only_and_tightens_what_exists() {
        let base = tempfile::tempdir().unwrap();
        let fresh = base.path().join("a/b");
        secure_dir(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o700);
        let f = fresh.join("f");
        secure_file(&f).unwrap();
        assert_eq!(mode(&f), 0o600);

        let old = base.path().join("old");
        std::fs::create_dir_all(old.join("AC1")).unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(old.join("AC1"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(old.join("AC1/RE1"), b"x").unwrap();
        std::fs::set_permissions(old.join("AC1/RE1"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        secure_tree(&old).unwrap();
        assert_eq!(mode(&old), 0o700);
        assert_eq!(mode(&old.join("AC1")), 0o700);
        assert_eq!(mode(&old.join("AC1/RE1")), 0o600);
        // Already tight: nothing changes, and a stricter mode is not loosened.
        std::fs::set_permissions(old.join("AC1/RE1"), std::fs::Permissions::from_mode(0o400))
            .unwrap();
        secure_tree(&old).unwrap();
        assert_eq!(mode(&old.join("AC1/RE1")), 0o400);
        // Not a directory: a clear error.
        let err = secure_dir(&old.join("AC1/RE1")).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }
}
