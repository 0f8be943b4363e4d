//! Objects as files under a directory: the embedded backend.
//!
//! Durability and visibility, per object: the bytes go to a temporary file in `ROOT/.partial`,
//! which is `fdatasync`ed (data and size) *before* it is renamed to `ROOT/ACCOUNT/SID`; the
//! rename is what makes the object visible, so it is never visible with bytes that are not
//! durable. [`ObjectWriter::finish`] then returns only once a directory fsync that started after
//! the rename has completed, so a finished object survives a crash. The directory fsyncs of
//! concurrent writers are shared ([`DirSyncer`]): one fsync serves every rename made before it
//! started, which is where the per-recording cost of the old one-fsync-per-object scheme went.
//! The file `fdatasync`s themselves run in parallel, one blocking task per writer, so the device
//! sees them together.

use std::io::{self, SeekFrom, Write};
use std::ops::Range;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;

use super::dir_sync::DirSyncer;
use super::{
    ByteStream, ObjectInfo, ObjectMeta, ObjectStore, ObjectWriter, ReadSeek, validate_key,
};
use crate::error::StoreError;
use crate::meta::StoreResult;

/// Objects as files under a directory: `ROOT/ACCOUNT/SID`, headers in `ROOT/ACCOUNT/SID.meta`.
#[derive(Debug, Clone)]
pub struct FsObjectStore {
    root: PathBuf,
    dir_syncs: Arc<DirSyncer>,
}

const META_SUFFIX: &str = ".meta";
const TMP_DIR: &str = ".partial";

impl FsObjectStore {
    /// Uses (creating) `root`. Every directory under it is owner-only (0700) and every file
    /// 0600: created so, and an existing tree is tightened with a warning (see [`crate::perms`]).
    pub fn new(root: impl Into<PathBuf>) -> StoreResult<Self> {
        let root = root.into();
        crate::perms::secure_tree(&root)?;
        crate::perms::secure_dir(&root.join(TMP_DIR))?;
        Ok(Self {
            root,
            dir_syncs: Arc::default(),
        })
    }

    fn path(&self, key: &str) -> StoreResult<PathBuf> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }

    fn read_meta(path: &Path) -> StoreResult<ObjectMeta> {
        let mut meta_path = path.as_os_str().to_owned();
        meta_path.push(META_SUFFIX);
        match std::fs::read(PathBuf::from(meta_path)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::Corrupt(format!("object headers: {e}"))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(ObjectMeta::new()),
            Err(e) => Err(e.into()),
        }
    }
}

fn not_found(key: &str, e: io::Error) -> StoreError {
    if e.kind() == io::ErrorKind::NotFound {
        StoreError::ObjectNotFound(key.to_owned())
    } else {
        e.into()
    }
}

/// Writes into a temporary file and renames it into place on finish.
struct FsWriter {
    file: Option<std::fs::File>,
    temp: PathBuf,
    target: PathBuf,
    root: PathBuf,
    dir_syncs: Arc<DirSyncer>,
    buffer: Vec<u8>,
    written: u64,
}

/// Buffer writes into blocks of this size before handing them to a blocking thread.
const FS_WRITE_BLOCK: usize = 1 << 20;

impl FsWriter {
    async fn flush_buffer(&mut self) -> StoreResult<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let mut file = self
            .file
            .take()
            .ok_or_else(|| StoreError::Corrupt("writer already finished".into()))?;
        let block = std::mem::take(&mut self.buffer);
        let (file, block) = tokio::task::spawn_blocking(move || -> io::Result<_> {
            file.write_all(&block)?;
            Ok((file, block))
        })
        .await
        .map_err(|e| StoreError::Io(io::Error::other(e)))??;
        self.file = Some(file);
        self.buffer = block;
        self.buffer.clear();
        Ok(())
    }
}

#[async_trait]
impl ObjectWriter for FsWriter {
    async fn write(&mut self, chunk: Bytes) -> StoreResult<()> {
        self.written += chunk.len() as u64;
        self.buffer.extend_from_slice(&chunk);
        if self.buffer.len() >= FS_WRITE_BLOCK {
            self.flush_buffer().await?;
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>, meta: ObjectMeta) -> StoreResult<u64> {
        self.flush_buffer().await?;
        let file = self
            .file
            .take()
            .ok_or_else(|| StoreError::Corrupt("writer already finished".into()))?;
        let temp = self.temp.clone();
        let target = self.target.clone();
        let root = self.root.clone();
        let dir_syncs = self.dir_syncs.clone();
        tokio::task::spawn_blocking(move || -> io::Result<()> {
            // 1. The bytes (and the file size) are durable before anything can see them.
            file.sync_data()?;
            drop(file);
            let dir = target.parent().map(Path::to_path_buf).unwrap_or_default();
            if !dir.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(crate::perms::DIR_MODE)
                    .create(&dir)?;
                // A new account directory must itself survive a crash.
                dir_syncs.sync(&root)?;
            }
            if !meta.is_empty() {
                // The headers go first, durable too, so the object never appears without them.
                let mut meta_path = target.as_os_str().to_owned();
                meta_path.push(META_SUFFIX);
                let meta_path = PathBuf::from(meta_path);
                let meta_tmp = temp.with_extension("meta");
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(crate::perms::FILE_MODE)
                    .open(&meta_tmp)?;
                f.write_all(&serde_json::to_vec(&meta).map_err(io::Error::other)?)?;
                f.sync_data()?;
                std::fs::rename(&meta_tmp, &meta_path)?;
            }
            // 2. Visible: an atomic rename of a durable file.
            std::fs::rename(&temp, &target)?;
            // 3. Durable under its name: a directory fsync begun after the rename, shared with
            //    the writers finishing at the same time.
            dir_syncs.sync(&dir)
        })
        .await
        .map_err(|e| StoreError::Io(io::Error::other(e)))??;
        Ok(self.written)
    }

    async fn abort(mut self: Box<Self>) {
        self.file.take();
        let _ = tokio::fs::remove_file(&self.temp).await;
    }
}

impl Drop for FsWriter {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

#[async_trait]
impl ObjectStore for FsObjectStore {
    fn backend(&self) -> &'static str {
        "fs"
    }

    async fn create(&self, key: &str) -> StoreResult<Box<dyn ObjectWriter>> {
        let target = self.path(key)?;
        let temp =
            self.root
                .join(TMP_DIR)
                .join(format!("{}.{}", key.replace('/', "_"), unique_suffix()));
        let file = tokio::task::spawn_blocking({
            let temp = temp.clone();
            move || {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(crate::perms::FILE_MODE)
                    .open(temp)
            }
        })
        .await
        .map_err(|e| StoreError::Io(io::Error::other(e)))??;
        Ok(Box::new(FsWriter {
            file: Some(file),
            temp,
            target,
            root: self.root.clone(),
            dir_syncs: self.dir_syncs.clone(),
            buffer: Vec::with_capacity(FS_WRITE_BLOCK),
            written: 0,
        }))
    }

    async fn head(&self, key: &str) -> StoreResult<ObjectInfo> {
        let path = self.path(key)?;
        let key_owned = key.to_owned();
        tokio::task::spawn_blocking(move || {
            let md = std::fs::metadata(&path).map_err(|e| not_found(&key_owned, e))?;
            Ok(ObjectInfo {
                size: md.len(),
                meta: Self::read_meta(&path)?,
                modified: md.modified().ok(),
            })
        })
        .await
        .map_err(|e| StoreError::Io(io::Error::other(e)))?
    }

    async fn get(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> StoreResult<(ObjectInfo, ByteStream)> {
        let info = self.head(key).await?;
        let path = self.path(key)?;
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| not_found(key, e))?;
        let (start, end) = match range {
            Some(r) => (r.start.min(info.size), r.end.min(info.size)),
            None => (0, info.size),
        };
        use tokio::io::AsyncSeekExt;
        file.seek(SeekFrom::Start(start)).await?;
        let limited = tokio::io::AsyncReadExt::take(file, end.saturating_sub(start));
        let stream = tokio_util_stream(limited);
        Ok((info, stream))
    }

    fn open_blocking(&self, key: &str) -> StoreResult<Box<dyn ReadSeek>> {
        let path = self.path(key)?;
        let file = std::fs::File::open(path).map_err(|e| not_found(key, e))?;
        Ok(Box::new(io::BufReader::with_capacity(256 * 1024, file)))
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        let path = self.path(key)?;
        let mut meta_path = path.as_os_str().to_owned();
        meta_path.push(META_SUFFIX);
        for p in [path, PathBuf::from(meta_path)] {
            match tokio::fs::remove_file(&p).await {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<(String, SystemTime)>> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for account in std::fs::read_dir(&root)? {
                let account = account?;
                let name = account.file_name().to_string_lossy().into_owned();
                if name == TMP_DIR || !account.file_type()?.is_dir() {
                    continue;
                }
                for entry in std::fs::read_dir(account.path())? {
                    let entry = entry?;
                    let file = entry.file_name().to_string_lossy().into_owned();
                    if file.ends_with(META_SUFFIX) {
                        continue;
                    }
                    let key = format!("{name}/{file}");
                    if key.starts_with(&prefix) {
                        let modified = entry
                            .metadata()?
                            .modified()
                            .unwrap_or(SystemTime::UNIX_EPOCH);
                        out.push((key, modified));
                    }
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| StoreError::Io(io::Error::other(e)))?
    }

    async fn presign_get(&self, _key: &str, _ttl: Duration) -> StoreResult<Option<String>> {
        Ok(None)
    }

    async fn sweep_partials(&self, age: Duration) -> StoreResult<usize> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.sweep_partials_blocking(age))
            .await
            .map_err(|e| StoreError::Io(io::Error::other(e)))?
    }
}

impl FsObjectStore {
    /// Removes temporary files left by writers interrupted by a crash, untouched for at least
    /// `age` (a live writer touches its file with every block). A file that a writer finishes
    /// or aborts meanwhile is simply skipped.
    pub fn sweep_partials_blocking(&self, age: Duration) -> StoreResult<usize> {
        let gone = |e: &io::Error| e.kind() == io::ErrorKind::NotFound;
        let mut removed = 0;
        let now = SystemTime::now();
        let entries = match std::fs::read_dir(self.root.join(TMP_DIR)) {
            Ok(entries) => entries,
            Err(e) if gone(&e) => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        for entry in entries {
            let entry = entry?;
            let modified = match entry.metadata() {
                Ok(md) if md.is_file() => md.modified().ok(),
                Ok(_) => continue,
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(e.into()),
            };
            let old = modified
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|d| d >= age);
            if old {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(e) if gone(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(removed)
    }
}

fn unique_suffix() -> String {
    let mut bytes = [0u8; 8];
    // Uniqueness only; not a secret.
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    bytes.copy_from_slice(&(nanos as u64).to_be_bytes());
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{:016x}{:x}", u64::from_be_bytes(bytes), n)
}

/// Turns an `AsyncRead` into a stream of 256 KiB chunks.
fn tokio_util_stream<R: tokio::io::AsyncRead + Send + Unpin + 'static>(reader: R) -> ByteStream {
    futures::stream::unfold(reader, |mut reader| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 256 * 1024];
        match reader.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), reader))
            }
            Err(e) => Some((Err(e), reader)),
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek};

    use super::*;

    #[tokio::test]
    async fn write_read_range_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsObjectStore::new(dir.path()).unwrap();
        let mut meta = ObjectMeta::new();
        meta.insert("x-amz-meta-x-amz-iv".into(), "abc".into());
        let mut w = store.create("AC1/RE1").await.unwrap();
        assert!(
            store.head("AC1/RE1").await.is_err(),
            "not visible before finish"
        );
        w.write(Bytes::from_static(b"hello ")).await.unwrap();
        w.write(Bytes::from_static(b"world")).await.unwrap();
        assert_eq!(w.finish(meta.clone()).await.unwrap(), 11);
        let info = store.head("AC1/RE1").await.unwrap();
        assert_eq!(info.size, 11);
        assert_eq!(info.meta, meta);
        let (_, stream) = store.get("AC1/RE1", Some(2..7)).await.unwrap();
        let got: Vec<Bytes> = stream.map(|r| r.unwrap()).collect().await;
        assert_eq!(got.concat(), b"llo w");
        let mut r = store.open_blocking("AC1/RE1").unwrap();
        r.seek(SeekFrom::Start(6)).unwrap();
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "world");
        assert_eq!(store.list("AC1/").await.unwrap().len(), 1);
        store.delete("AC1/RE1").await.unwrap();
        assert!(matches!(
            store.head("AC1/RE1").await,
            Err(StoreError::ObjectNotFound(_))
        ));
        store.delete("AC1/RE1").await.unwrap();
    }

    #[tokio::test]
    async fn aborted_and_dropped_writers_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsObjectStore::new(dir.path()).unwrap();
        let mut w = store.create("AC1/RE2").await.unwrap();
        w.write(Bytes::from_static(b"x")).await.unwrap();
        w.abort().await;
        let w2 = store.create("AC1/RE3").await.unwrap();
        drop(w2);
        assert_eq!(
            std::fs::read_dir(dir.path().join(TMP_DIR)).unwrap().count(),
            0
        );
        assert!(store.list("").await.unwrap().is_empty());
    }
}
