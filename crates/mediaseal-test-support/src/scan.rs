//! The plaintext scanner: which files under a directory hold any of a set of needles.
//!
//! Tests seal media with markers in it, then scan the server's data directory, temp directory and
//! object store for those markers: a hit is plaintext at rest.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Name prefix of the directories tests keep their own plaintext inputs in; scans skip them,
/// since tests running side by side make identical media from the same sources.
pub const TEST_MEDIA_PREFIX: &str = "mediaseal-test-media-";

/// A fresh directory for a test's own plaintext inputs and decrypted outputs.
pub fn media_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(TEST_MEDIA_PREFIX)
        .tempdir()
        .expect("create a test media directory")
}

/// What to scan and what to leave out.
#[derive(Debug, Clone)]
pub struct Scan<'a> {
    /// Only files modified at or after this instant are read (`UNIX_EPOCH` for all).
    pub since: SystemTime,
    /// Subtrees to leave out (a test's own inputs, for instance).
    pub skip: &'a [&'a Path],
    /// How deep to descend below the starting directory.
    pub max_depth: usize,
    /// Files larger than this are not read.
    pub max_file_bytes: u64,
}

impl Default for Scan<'_> {
    fn default() -> Self {
        Self {
            since: SystemTime::UNIX_EPOCH,
            skip: &[],
            max_depth: 6,
            max_file_bytes: 256 << 20,
        }
    }
}

impl Scan<'_> {
    /// Files under `dir` holding any of `needles`, skipping every test's media directory.
    pub fn files_containing(&self, dir: &Path, needles: &[Vec<u8>]) -> Vec<PathBuf> {
        let mut hits = Vec::new();
        let mut stack = vec![(dir.to_path_buf(), 0)];
        while let Some((d, depth)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if self.skip.iter().any(|s| path.starts_with(s))
                    || entry
                        .file_name()
                        .to_string_lossy()
                        .starts_with(TEST_MEDIA_PREFIX)
                {
                    continue;
                }
                let Ok(meta) = std::fs::symlink_metadata(&path) else {
                    continue;
                };
                if meta.is_dir() && depth < self.max_depth {
                    stack.push((path, depth + 1));
                } else if meta.is_file()
                    && meta.len() <= self.max_file_bytes
                    && meta.modified().is_ok_and(|m| m >= self.since)
                    && let Ok(bytes) = std::fs::read(&path)
                    && needles.iter().any(|n| crate::contains(&bytes, n))
                {
                    hits.push(path);
                }
            }
        }
        hits
    }
}

/// Files under `dir` modified after `since` that hold any needle (skipping `skip`).
pub fn files_containing(
    dir: &Path,
    needles: &[Vec<u8>],
    since: SystemTime,
    skip: &[&Path],
) -> Vec<PathBuf> {
    Scan {
        since,
        skip,
        ..Scan::default()
    }
    .files_containing(dir, needles)
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_a_marker_and_skips_media_dirs() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("a.bin"), b"xxSECRETxx").unwrap();
        std::fs::write(root.path().join("b.bin"), b"nothing").unwrap();
        let own = tempfile::Builder::new()
            .prefix(super::TEST_MEDIA_PREFIX)
            .tempdir_in(root.path())
            .unwrap();
        std::fs::write(own.path().join("c.bin"), b"SECRET").unwrap();
        let hits = super::Scan::default().files_containing(root.path(), &[b"SECRET".to_vec()]);
        assert_eq!(hits, vec![root.path().join("a.bin")]);
    }
}
