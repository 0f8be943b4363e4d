//! The metadata store on SQL: SQLite (the embedded default) or PostgreSQL, through one body of
//! portable SQL on sqlx's `Any` driver. The schema uses only `BIGINT` and `TEXT`, `$N`
//! placeholders work on both engines, and the one dialect difference (`FOR UPDATE SKIP LOCKED`
//! for leasing) is chosen at connect time.
//!
//! The ingest path's writes (reserving and publishing recordings) go through a group-commit
//! queue ([`commit`]), so concurrent uploads share one transaction and one log flush.

mod accounts;
mod calls;
mod commit;
mod intelligence;
mod operators;
mod outbox;
mod participants;
mod recording_rules;
mod rows;
mod sip;
#[cfg(test)]
mod tests;
mod video;
mod voice;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};

use self::commit::CommitQueue;
use crate::error::StoreError;
use crate::meta::{MetadataStore, StoreResult};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Which SQL engine is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Embedded, single writer.
    Sqlite,
    /// Shared by several nodes.
    Postgres,
}

/// The SQL metadata store.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    dialect: Dialect,
    commits: CommitQueue,
}

/// Per-connection settings of SQLite. `durable` chooses `synchronous=FULL` (the WAL is flushed
/// at every commit) over `NORMAL` (flushed at checkpoints; WAL still keeps the file consistent).
async fn sqlite_pragmas(conn: &mut sqlx::AnyConnection, durable: bool) -> Result<(), sqlx::Error> {
    // WAL lets readers run beside the single writer.
    sqlx::query("PRAGMA journal_mode=WAL")
        .execute(&mut *conn)
        .await?;
    let sync = if durable {
        "PRAGMA synchronous=FULL"
    } else {
        "PRAGMA synchronous=NORMAL"
    };
    sqlx::query(sync).execute(&mut *conn).await?;
    sqlx::query("PRAGMA busy_timeout=10000")
        .execute(&mut *conn)
        .await?;
    sqlx::query("PRAGMA foreign_keys=ON")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl SqlStore {
    /// Opens (creating if needed) the SQLite database at `path`, in WAL mode, and migrates it.
    /// The database and its `-wal` and `-shm` files are owner-only (0600): created so, or
    /// tightened with a warning when an older deployment left them readable by others.
    pub async fn open_sqlite(path: &Path) -> StoreResult<Self> {
        // SQLite creates `-wal` and `-shm` with the database file's mode, so the database is made
        // (empty, which SQLite takes as a new database) 0600 before SQLite first opens it.
        crate::perms::secure_file(path)?;
        let companions = ["-wal", "-shm", "-journal"].map(|suffix| {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            std::path::PathBuf::from(p)
        });
        for p in &companions {
            crate::perms::secure_existing_file(p)?;
        }
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let store = Self::connect(&url).await?;
        for p in &companions {
            crate::perms::secure_existing_file(p)?;
        }
        Ok(store)
    }

    /// Connects to `sqlite://…` or `postgres://…` and applies migrations. Starts the
    /// group-commit writer on the current Tokio runtime.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Dialect::Postgres
        } else {
            return Err(StoreError::Config(format!(
                "unsupported database URL scheme in '{}': use sqlite:// or postgres://",
                redact_url(url)
            )));
        };
        let options = AnyConnectOptions::from_str(url)?;
        let (pool, writer) = match dialect {
            Dialect::Sqlite => {
                let pool = AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(|conn, _| Box::pin(sqlite_pragmas(conn, false)))
                    .connect_with(options.clone())
                    .await?;
                MIGRATOR.run(&pool).await?;
                if url.contains(":memory:") || url.contains("mode=memory") {
                    // Every connection to an in-memory database is a database of its own, so the
                    // writer must share the pool (nothing is durable there anyway).
                    (pool.clone(), pool)
                } else {
                    // The group-commit writer has a connection of its own, so its synchronous
                    // setting (chosen per batch) never leaks into the shared pool, and SQLite's
                    // single write lock is taken by one queue instead of fought over by eight
                    // connections.
                    let writer = AnyPoolOptions::new()
                        .max_connections(1)
                        .acquire_timeout(Duration::from_secs(30))
                        .after_connect(|conn, _| Box::pin(sqlite_pragmas(conn, true)))
                        .connect_with(options)
                        .await?;
                    (pool, writer)
                }
            }
            Dialect::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(32)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(options)
                    .await?;
                MIGRATOR.run(&pool).await?;
                (pool.clone(), pool)
            }
        };
        let commits = CommitQueue::start(writer, dialect);
        Ok(Self {
            pool,
            dialect,
            commits,
        })
    }

    /// The engine in use.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The shared connection pool.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// `FOR UPDATE SKIP LOCKED` where the engine has it; SQLite serialises writers anyway.
    fn skip_locked(&self) -> &'static str {
        match self.dialect {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        }
    }
}

/// Hides the password in a database URL before it appears in a message.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..scheme_end], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

impl MetadataStore for SqlStore {
    fn backend(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }
}
