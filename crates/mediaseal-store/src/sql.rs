//! The metadata store on SQL: SQLite (the embedded default) or PostgreSQL, through one body of
//! portable SQL on sqlx's `Any` driver. The schema uses only `BIGINT` and `TEXT`, `$N`
//! placeholders work on both engines, and the one dialect difference (`FOR UPDATE SKIP LOCKED`
//! for leasing) is chosen at connect time.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use crate::error::StoreError;
use crate::meta::{AccountStore, MetadataStore, OutboxStore, StoreResult, VoiceStore};
use crate::model::{
    Account, ApiKey, Callback, Cursor, Notification, PublicKeyRecord, Recording, RecordingFilter,
    RecordingSettings, Sealing,
};

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
}

impl SqlStore {
    /// Opens (creating if needed) the SQLite database at `path`, in WAL mode, and migrates it.
    pub async fn open_sqlite(path: &Path) -> StoreResult<Self> {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Self::connect(&url).await
    }

    /// Connects to `sqlite://…` or `postgres://…` and applies migrations.
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
        let pool = match dialect {
            Dialect::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL lets readers run beside the single writer; NORMAL syncs at
                            // checkpoints, which WAL makes safe against corruption.
                            sqlx::query("PRAGMA journal_mode=WAL")
                                .execute(&mut *conn)
                                .await?;
                            sqlx::query("PRAGMA synchronous=NORMAL")
                                .execute(&mut *conn)
                                .await?;
                            sqlx::query("PRAGMA busy_timeout=10000")
                                .execute(&mut *conn)
                                .await?;
                            sqlx::query("PRAGMA foreign_keys=ON")
                                .execute(&mut *conn)
                                .await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
            Dialect::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(32)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(options)
                    .await?
            }
        };
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool, dialect })
    }

    /// The engine in use.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The connection pool, for extensions living in other modules of this crate.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A transaction for a reservation row (an upload about to start), committed without waiting
    /// for the WAL flush on PostgreSQL. Safe because nothing is promised to a client on the
    /// strength of a reservation, and if a crash loses one, its object has no row pointing at it,
    /// which the sweeper removes after `orphan_age` like any unreferenced object. What a client
    /// is told about (the published recording) is still committed synchronously. SQLite in WAL
    /// mode with `synchronous=NORMAL` does not flush per commit anyway.
    pub(crate) async fn begin_reservation(
        &self,
    ) -> StoreResult<sqlx::Transaction<'static, sqlx::Any>> {
        let mut tx = self.pool.begin().await?;
        if self.dialect == Dialect::Postgres {
            sqlx::query("SET LOCAL synchronous_commit TO OFF")
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// `FOR UPDATE SKIP LOCKED` where the engine has it; SQLite serialises writers anyway.
    pub(crate) fn skip_locked(&self) -> &'static str {
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

fn b(v: bool) -> i64 {
    i64::from(v)
}

fn opt_str(row: &AnyRow, col: &str) -> StoreResult<Option<String>> {
    Ok(row.try_get::<Option<String>, _>(col)?)
}

fn account_from(row: &AnyRow) -> StoreResult<Account> {
    Ok(Account {
        sid: row.try_get("sid")?,
        parent_sid: opt_str(row, "parent_sid")?,
        friendly_name: row.try_get("friendly_name")?,
        status: row.try_get("status")?,
        auth_token: row.try_get("auth_token")?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
    })
}

fn api_key_from(row: &AnyRow) -> StoreResult<ApiKey> {
    Ok(ApiKey {
        sid: row.try_get("sid")?,
        account_sid: row.try_get("account_sid")?,
        friendly_name: row.try_get("friendly_name")?,
        secret_hash: row.try_get("secret_hash")?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
    })
}

fn public_key_from(row: &AnyRow) -> StoreResult<PublicKeyRecord> {
    Ok(PublicKeyRecord {
        sid: row.try_get("sid")?,
        account_sid: row.try_get("account_sid")?,
        friendly_name: row.try_get("friendly_name")?,
        spki_der_hex: row.try_get("spki_der")?,
        fingerprint: row.try_get("fingerprint")?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
    })
}

fn settings_from(row: &AnyRow) -> StoreResult<RecordingSettings> {
    Ok(RecordingSettings {
        account_sid: row.try_get("account_sid")?,
        encryption_enabled: row.try_get::<i64, _>("encryption_enabled")? != 0,
        encryption_public_key_sid: opt_str(row, "encryption_public_key_sid")?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
    })
}

fn recording_from(row: &AnyRow) -> StoreResult<Recording> {
    Ok(Recording {
        sid: row.try_get("sid")?,
        account_sid: row.try_get("account_sid")?,
        call_sid: opt_str(row, "call_sid")?,
        conference_sid: opt_str(row, "conference_sid")?,
        channels: row.try_get("channels")?,
        source: row.try_get("source")?,
        track: opt_str(row, "track")?,
        duration: row.try_get("duration")?,
        status: row.try_get("status")?,
        error_code: row.try_get("error_code")?,
        start_time: row.try_get("start_time")?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
        encryption_details: opt_str(row, "encryption_details")?,
        sealing: Sealing::parse(&row.try_get::<String, _>("sealing")?),
        object_key: opt_str(row, "object_key")?,
        sealed_size: row.try_get("sealed_size")?,
        plain_size: row.try_get("plain_size")?,
        content_type: row.try_get("content_type")?,
        visible: row.try_get::<i64, _>("visible")? != 0,
        deleted: row.try_get::<i64, _>("deleted")? != 0,
        date_deleted: row.try_get("date_deleted")?,
    })
}

fn notification_from(row: &AnyRow) -> StoreResult<Notification> {
    Ok(Notification {
        sid: row.try_get("sid")?,
        account_sid: row.try_get("account_sid")?,
        call_sid: opt_str(row, "call_sid")?,
        resource_sid: opt_str(row, "resource_sid")?,
        error_code: row.try_get("error_code")?,
        log_level: row.try_get("log_level")?,
        message_text: row.try_get("message_text")?,
        more_info: row.try_get("more_info")?,
        request_method: opt_str(row, "request_method")?,
        request_url: opt_str(row, "request_url")?,
        date_created: row.try_get("date_created")?,
    })
}

fn callback_from(row: &AnyRow) -> StoreResult<Callback> {
    Ok(Callback {
        id: row.try_get("id")?,
        account_sid: row.try_get("account_sid")?,
        resource_sid: row.try_get("resource_sid")?,
        url: row.try_get("url")?,
        method: row.try_get("method")?,
        params: row.try_get("params")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        state: row.try_get("state")?,
        last_error: opt_str(row, "last_error")?,
        created_at: row.try_get("created_at")?,
        delivered_at: row.try_get("delivered_at")?,
    })
}

/// Ends a newest-first keyset page query: with a cursor, only rows strictly before its
/// `(date_created, sid)`, bound at `$cursor_at` and `$cursor_at + 1`; then newest first, at most
/// `$2` rows.
pub(crate) fn newest_first_page(sql: &mut String, after: Option<&Cursor>, cursor_at: usize) {
    if after.is_some() {
        let (a, b) = (cursor_at, cursor_at + 1);
        sql.push_str(&format!(
            " AND (date_created < ${a} OR (date_created = ${a} AND sid < ${b}))"
        ));
    }
    sql.push_str(" ORDER BY date_created DESC, sid DESC LIMIT $2");
}

const ACCOUNT_COLS: &str =
    "sid, parent_sid, friendly_name, status, auth_token, date_created, date_updated";
const RECORDING_COLS: &str = "sid, account_sid, call_sid, conference_sid, channels, source, track, duration, status, \
     error_code, start_time, date_created, date_updated, encryption_details, sealing, object_key, sealed_size, \
     plain_size, content_type, visible, deleted, date_deleted";
const NOTIFICATION_COLS: &str = "sid, account_sid, call_sid, resource_sid, error_code, log_level, message_text, \
     more_info, request_method, request_url, date_created";
const CALLBACK_COLS: &str = "id, account_sid, resource_sid, url, method, params, attempts, next_attempt_at, state, \
     last_error, created_at, delivered_at";

#[async_trait]
impl AccountStore for SqlStore {
    async fn insert_account(&self, a: &Account) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO accounts (sid, parent_sid, friendly_name, status, auth_token, date_created, date_updated) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&a.sid)
        .bind(&a.parent_sid)
        .bind(&a.friendly_name)
        .bind(&a.status)
        .bind(&a.auth_token)
        .bind(a.date_created)
        .bind(a.date_updated)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn account(&self, sid: &str) -> StoreResult<Option<Account>> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLS} FROM accounts WHERE sid = $1"
        ))
        .bind(sid)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(account_from).transpose()
    }

    async fn list_accounts(
        &self,
        owner: &str,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<Account>> {
        let mut sql =
            format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE (sid = $1 OR parent_sid = $1)");
        newest_first_page(&mut sql, after, 3);
        let mut q = sqlx::query(&sql).bind(owner).bind(limit);
        if let Some(c) = after {
            q = q.bind(c.date_created).bind(&c.sid);
        }
        q.fetch_all(&self.pool)
            .await?
            .iter()
            .map(account_from)
            .collect()
    }

    async fn update_account(
        &self,
        sid: &str,
        friendly_name: Option<&str>,
        status: Option<&str>,
        now: i64,
    ) -> StoreResult<Option<Account>> {
        sqlx::query(
            "UPDATE accounts SET friendly_name = COALESCE($2, friendly_name), status = COALESCE($3, status), \
             date_updated = $4 WHERE sid = $1",
        )
        .bind(sid)
        .bind(friendly_name)
        .bind(status)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.account(sid).await
    }

    async fn insert_api_key(&self, k: &ApiKey) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_keys (sid, account_sid, friendly_name, secret_hash, date_created, date_updated) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&k.sid)
        .bind(&k.account_sid)
        .bind(&k.friendly_name)
        .bind(&k.secret_hash)
        .bind(k.date_created)
        .bind(k.date_updated)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn api_key(&self, sid: &str) -> StoreResult<Option<ApiKey>> {
        let row = sqlx::query(
            "SELECT sid, account_sid, friendly_name, secret_hash, date_created, date_updated FROM api_keys WHERE sid = $1",
        )
        .bind(sid)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(api_key_from).transpose()
    }

    async fn list_api_keys(
        &self,
        account_sid: &str,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<ApiKey>> {
        let mut sql = "SELECT sid, account_sid, friendly_name, secret_hash, date_created, date_updated FROM api_keys \
                       WHERE account_sid = $1"
            .to_owned();
        newest_first_page(&mut sql, after, 3);
        let mut q = sqlx::query(&sql).bind(account_sid).bind(limit);
        if let Some(c) = after {
            q = q.bind(c.date_created).bind(&c.sid);
        }
        q.fetch_all(&self.pool)
            .await?
            .iter()
            .map(api_key_from)
            .collect()
    }

    async fn update_api_key(
        &self,
        sid: &str,
        friendly_name: &str,
        now: i64,
    ) -> StoreResult<Option<ApiKey>> {
        sqlx::query("UPDATE api_keys SET friendly_name = $2, date_updated = $3 WHERE sid = $1")
            .bind(sid)
            .bind(friendly_name)
            .bind(now)
            .execute(&self.pool)
            .await?;
        self.api_key(sid).await
    }

    async fn delete_api_key(&self, sid: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM api_keys WHERE sid = $1")
            .bind(sid)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert_public_key(&self, k: &PublicKeyRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO public_keys (sid, account_sid, friendly_name, spki_der, fingerprint, date_created, date_updated) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&k.sid)
        .bind(&k.account_sid)
        .bind(&k.friendly_name)
        .bind(&k.spki_der_hex)
        .bind(&k.fingerprint)
        .bind(k.date_created)
        .bind(k.date_updated)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn public_key(&self, sid: &str) -> StoreResult<Option<PublicKeyRecord>> {
        let row = sqlx::query(
            "SELECT sid, account_sid, friendly_name, spki_der, fingerprint, date_created, date_updated \
             FROM public_keys WHERE sid = $1",
        )
        .bind(sid)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(public_key_from).transpose()
    }

    async fn list_public_keys(
        &self,
        account_sid: &str,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<PublicKeyRecord>> {
        let mut sql = "SELECT sid, account_sid, friendly_name, spki_der, fingerprint, date_created, date_updated \
                       FROM public_keys WHERE account_sid = $1"
            .to_owned();
        newest_first_page(&mut sql, after, 3);
        let mut q = sqlx::query(&sql).bind(account_sid).bind(limit);
        if let Some(c) = after {
            q = q.bind(c.date_created).bind(&c.sid);
        }
        q.fetch_all(&self.pool)
            .await?
            .iter()
            .map(public_key_from)
            .collect()
    }

    async fn latest_public_key(&self, account_sid: &str) -> StoreResult<Option<PublicKeyRecord>> {
        Ok(self
            .list_public_keys(account_sid, None, 1)
            .await?
            .into_iter()
            .next())
    }

    async fn update_public_key(
        &self,
        sid: &str,
        friendly_name: &str,
        now: i64,
    ) -> StoreResult<Option<PublicKeyRecord>> {
        sqlx::query("UPDATE public_keys SET friendly_name = $2, date_updated = $3 WHERE sid = $1")
            .bind(sid)
            .bind(friendly_name)
            .bind(now)
            .execute(&self.pool)
            .await?;
        self.public_key(sid).await
    }

    async fn delete_public_key(&self, sid: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM public_keys WHERE sid = $1")
            .bind(sid)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

/// Writes a recording row in full, inserting or replacing.
async fn upsert_recording<'e, E>(executor: E, r: &Recording) -> StoreResult<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(&format!(
        "INSERT INTO recordings ({RECORDING_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
         $14, $15, $16, $17, $18, $19, $20, $21, $22) \
         ON CONFLICT (sid) DO UPDATE SET call_sid = excluded.call_sid, conference_sid = excluded.conference_sid, \
         channels = excluded.channels, source = excluded.source, track = excluded.track, duration = excluded.duration, \
         status = excluded.status, error_code = excluded.error_code, start_time = excluded.start_time, \
         date_updated = excluded.date_updated, encryption_details = excluded.encryption_details, \
         sealing = excluded.sealing, object_key = excluded.object_key, sealed_size = excluded.sealed_size, \
         plain_size = excluded.plain_size, content_type = excluded.content_type, visible = excluded.visible, \
         deleted = excluded.deleted, date_deleted = excluded.date_deleted"
    ))
    .bind(&r.sid)
    .bind(&r.account_sid)
    .bind(&r.call_sid)
    .bind(&r.conference_sid)
    .bind(r.channels)
    .bind(&r.source)
    .bind(&r.track)
    .bind(r.duration)
    .bind(&r.status)
    .bind(r.error_code)
    .bind(r.start_time)
    .bind(r.date_created)
    .bind(r.date_updated)
    .bind(&r.encryption_details)
    .bind(r.sealing.as_str())
    .bind(&r.object_key)
    .bind(r.sealed_size)
    .bind(r.plain_size)
    .bind(&r.content_type)
    .bind(b(r.visible))
    .bind(b(r.deleted))
    .bind(r.date_deleted)
    .execute(executor)
    .await?;
    Ok(())
}

pub(crate) async fn insert_callback<'e, E>(executor: E, c: &Callback) -> StoreResult<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(&format!(
        "INSERT INTO callbacks ({CALLBACK_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    ))
    .bind(&c.id)
    .bind(&c.account_sid)
    .bind(&c.resource_sid)
    .bind(&c.url)
    .bind(&c.method)
    .bind(&c.params)
    .bind(c.attempts)
    .bind(c.next_attempt_at)
    .bind(&c.state)
    .bind(&c.last_error)
    .bind(c.created_at)
    .bind(c.delivered_at)
    .execute(executor)
    .await?;
    Ok(())
}

pub(crate) async fn insert_notification<'e, E>(executor: E, n: &Notification) -> StoreResult<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(&format!(
        "INSERT INTO notifications ({NOTIFICATION_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    ))
    .bind(&n.sid)
    .bind(&n.account_sid)
    .bind(&n.call_sid)
    .bind(&n.resource_sid)
    .bind(n.error_code)
    .bind(n.log_level)
    .bind(&n.message_text)
    .bind(&n.more_info)
    .bind(&n.request_method)
    .bind(&n.request_url)
    .bind(n.date_created)
    .execute(executor)
    .await?;
    Ok(())
}

#[async_trait]
impl VoiceStore for SqlStore {
    async fn recording_settings(
        &self,
        account_sid: &str,
    ) -> StoreResult<Option<RecordingSettings>> {
        let row = sqlx::query(
            "SELECT account_sid, encryption_enabled, encryption_public_key_sid, date_created, date_updated \
             FROM recording_settings WHERE account_sid = $1",
        )
        .bind(account_sid)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(settings_from).transpose()
    }

    async fn put_recording_settings(&self, s: &RecordingSettings) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO recording_settings (account_sid, encryption_enabled, encryption_public_key_sid, \
             date_created, date_updated) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (account_sid) DO UPDATE SET encryption_enabled = excluded.encryption_enabled, \
             encryption_public_key_sid = excluded.encryption_public_key_sid, date_updated = excluded.date_updated",
        )
        .bind(&s.account_sid)
        .bind(b(s.encryption_enabled))
        .bind(&s.encryption_public_key_sid)
        .bind(s.date_created)
        .bind(s.date_updated)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn reserve_recording(&self, recording: &Recording) -> StoreResult<()> {
        let mut tx = self.begin_reservation().await?;
        upsert_recording(&mut *tx, recording).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn publish_recording(
        &self,
        recording: &Recording,
        callbacks: &[Callback],
        notifications: &[Notification],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        upsert_recording(&mut *tx, recording).await?;
        for c in callbacks {
            insert_callback(&mut *tx, c).await?;
        }
        for n in notifications {
            insert_notification(&mut *tx, n).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn recording(
        &self,
        account_sid: &str,
        sid: &str,
        include_deleted: bool,
    ) -> StoreResult<Option<Recording>> {
        let row = sqlx::query(&format!(
            "SELECT {RECORDING_COLS} FROM recordings WHERE account_sid = $1 AND sid = $2 AND visible = 1 \
             AND (deleted = 0 OR $3 = 1)"
        ))
        .bind(account_sid)
        .bind(sid)
        .bind(b(include_deleted))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(recording_from).transpose()
    }

    async fn list_recordings(
        &self,
        account_sid: &str,
        filter: &RecordingFilter,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<Recording>> {
        let mut sql = format!(
            "SELECT {RECORDING_COLS} FROM recordings WHERE account_sid = $1 AND visible = 1 AND (deleted = 0 OR $3 = 1) \
             AND ($4 IS NULL OR call_sid = $4) AND ($5 IS NULL OR conference_sid = $5) \
             AND ($6 IS NULL OR date_created >= $6) AND ($7 IS NULL OR date_created < $7)"
        );
        newest_first_page(&mut sql, after, 8);
        let mut q = sqlx::query(&sql)
            .bind(account_sid)
            .bind(limit)
            .bind(b(filter.include_deleted))
            .bind(&filter.call_sid)
            .bind(&filter.conference_sid)
            .bind(filter.created_from)
            .bind(filter.created_before);
        if let Some(c) = after {
            q = q.bind(c.date_created).bind(&c.sid);
        }
        q.fetch_all(&self.pool)
            .await?
            .iter()
            .map(recording_from)
            .collect()
    }

    async fn delete_recording(
        &self,
        account_sid: &str,
        sid: &str,
        now: i64,
    ) -> StoreResult<Option<Recording>> {
        let Some(before) = self.recording(account_sid, sid, false).await? else {
            return Ok(None);
        };
        sqlx::query(
            "UPDATE recordings SET deleted = 1, status = 'deleted', date_deleted = $3, date_updated = $3, \
             object_key = NULL, sealing = 'none' WHERE account_sid = $1 AND sid = $2 AND deleted = 0",
        )
        .bind(account_sid)
        .bind(sid)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(Some(before))
    }

    async fn stale_reservations(&self, before: i64, limit: i64) -> StoreResult<Vec<Recording>> {
        let rows = sqlx::query(&format!(
            "SELECT {RECORDING_COLS} FROM recordings WHERE visible = 0 AND date_created < $1 \
             ORDER BY date_created LIMIT $2"
        ))
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(recording_from).collect()
    }

    async fn drop_reservation(&self, sid: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM recordings WHERE sid = $1 AND visible = 0")
            .bind(sid)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn object_in_use(&self, object_key: &str) -> StoreResult<bool> {
        // Voice recordings, video track recordings and compositions all own objects.
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM recordings WHERE object_key = $1) \
             + (SELECT COUNT(*) FROM track_recordings WHERE object_key = $1) \
             + (SELECT COUNT(*) FROM compositions WHERE object_key = $1) AS n",
        )
        .bind(object_key)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    async fn insert_notification(&self, n: &Notification) -> StoreResult<()> {
        insert_notification(&self.pool, n).await
    }

    async fn notification(
        &self,
        account_sid: &str,
        sid: &str,
    ) -> StoreResult<Option<Notification>> {
        let row = sqlx::query(&format!(
            "SELECT {NOTIFICATION_COLS} FROM notifications WHERE account_sid = $1 AND sid = $2"
        ))
        .bind(account_sid)
        .bind(sid)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(notification_from).transpose()
    }

    async fn list_notifications(
        &self,
        account_sid: &str,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<Notification>> {
        let mut sql =
            format!("SELECT {NOTIFICATION_COLS} FROM notifications WHERE account_sid = $1");
        newest_first_page(&mut sql, after, 3);
        let mut q = sqlx::query(&sql).bind(account_sid).bind(limit);
        if let Some(c) = after {
            q = q.bind(c.date_created).bind(&c.sid);
        }
        q.fetch_all(&self.pool)
            .await?
            .iter()
            .map(notification_from)
            .collect()
    }
}

#[async_trait]
impl OutboxStore for SqlStore {
    async fn enqueue_callbacks(&self, callbacks: &[Callback]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for c in callbacks {
            insert_callback(&mut *tx, c).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn lease_due_callbacks(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<Callback>> {
        let sql = format!(
            "UPDATE callbacks SET lease_owner = $1, lease_until = $2 WHERE id IN (\
               SELECT id FROM callbacks WHERE state = 'pending' AND next_attempt_at <= $3 \
               AND (lease_until IS NULL OR lease_until < $3) ORDER BY next_attempt_at LIMIT $4{}) \
             RETURNING {CALLBACK_COLS}",
            self.skip_locked()
        );
        let rows = sqlx::query(&sql)
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(callback_from).collect()
    }

    async fn mark_delivered(&self, id: &str, now: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE callbacks SET state = 'delivered', delivered_at = $2, attempts = attempts + 1, \
             lease_owner = NULL, lease_until = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn mark_attempt_failed(
        &self,
        id: &str,
        attempts: i64,
        next_attempt_at: i64,
        error: &str,
        give_up: bool,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE callbacks SET attempts = $2, next_attempt_at = $3, last_error = $4, state = $5, \
             lease_owner = NULL, lease_until = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(attempts)
        .bind(next_attempt_at)
        .bind(error)
        .bind(if give_up { "failed" } else { "pending" })
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn callbacks_for(&self, resource_sid: &str) -> StoreResult<Vec<Callback>> {
        let rows = sqlx::query(&format!(
            "SELECT {CALLBACK_COLS} FROM callbacks WHERE resource_sid = $1 ORDER BY created_at, id"
        ))
        .bind(resource_sid)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(callback_from).collect()
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
