//! Storage failures.

/// Why a storage operation failed. Messages never contain stored values, only what went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database refused or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A row holds a value this version does not understand.
    #[error("corrupt metadata: {0}")]
    Corrupt(String),
    /// Object storage I/O failed.
    #[error("object storage error: {0}")]
    Io(#[from] std::io::Error),
    /// The object does not exist.
    #[error("object not found: {0}")]
    ObjectNotFound(String),
    /// The object store (S3) answered with an error.
    #[error("object store error: {0}")]
    ObjectStore(String),
    /// The configuration names something unusable.
    #[error("storage configuration: {0}")]
    Config(String),
}
