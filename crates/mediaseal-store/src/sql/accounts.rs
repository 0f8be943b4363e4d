//! Accounts, API keys and public keys on SQL.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::SqlStore;
use super::rows::{checked, newest_first_page, opt_str};
use crate::error::StoreError;
use crate::meta::{AccountStore, StoreResult};
use crate::model::{Account, AccountStatus, ApiKey, Cursor, PublicKeyRecord, SecondaryAuthToken};

const ACCOUNT_COLS: &str = "sid, parent_sid, friendly_name, status, auth_token, \
     secondary_auth_token, secondary_date_created, date_created, date_updated";

fn account_from(row: &AnyRow) -> StoreResult<Account> {
    Ok(Account {
        sid: row.try_get("sid")?,
        parent_sid: opt_str(row, "parent_sid")?,
        friendly_name: row.try_get("friendly_name")?,
        status: checked::<AccountStatus>(row, "accounts", "status")?,
        auth_token: row.try_get("auth_token")?,
        secondary_auth_token: secondary_from(row)?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
    })
}

/// The secondary token columns: both set or both empty; one without the other is corrupt.
fn secondary_from(row: &AnyRow) -> StoreResult<Option<SecondaryAuthToken>> {
    let token = opt_str(row, "secondary_auth_token")?;
    let created: Option<i64> = row.try_get("secondary_date_created")?;
    match (token, created) {
        (Some(token), Some(date_created)) => Ok(Some(SecondaryAuthToken {
            token,
            date_created,
        })),
        (None, None) => Ok(None),
        _ => Err(StoreError::Corrupt(
            "accounts.secondary_auth_token and secondary_date_created must be set together"
                .to_owned(),
        )),
    }
}

fn api_key_from(row: &AnyRow) -> StoreResult<ApiKey> {
    Ok(ApiKey {
        sid: row.try_get("sid")?,
        account_sid: row.try_get("account_sid")?,
        friendly_name: row.try_get("friendly_name")?,
        secret_hash: row.try_get("secret_hash")?,
        secret_sealed: opt_str(row, "secret_sealed")?,
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

#[async_trait]
impl AccountStore for SqlStore {
    async fn insert_account(&self, a: &Account) -> StoreResult<()> {
        let secondary = a.secondary_auth_token.as_ref();
        sqlx::query(
            "INSERT INTO accounts (sid, parent_sid, friendly_name, status, auth_token, \
             secondary_auth_token, secondary_date_created, date_created, date_updated) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&a.sid)
        .bind(&a.parent_sid)
        .bind(&a.friendly_name)
        .bind(&a.status)
        .bind(&a.auth_token)
        .bind(secondary.map(|s| s.token.as_str()))
        .bind(secondary.map(|s| s.date_created))
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
            "UPDATE accounts SET friendly_name = COALESCE($2, friendly_name), \
             status = CASE WHEN status = 'closed' THEN status ELSE COALESCE($3, status) END, \
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

    async fn set_secondary_auth_token(
        &self,
        sid: &str,
        token: &str,
        now: i64,
    ) -> StoreResult<Option<Account>> {
        sqlx::query(
            "UPDATE accounts SET secondary_auth_token = $2, secondary_date_created = $3, \
             date_updated = $3 WHERE sid = $1",
        )
        .bind(sid)
        .bind(token)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.account(sid).await
    }

    async fn clear_secondary_auth_token(&self, sid: &str, now: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE accounts SET secondary_auth_token = NULL, secondary_date_created = NULL, \
             date_updated = $2 WHERE sid = $1 AND secondary_auth_token IS NOT NULL",
        )
        .bind(sid)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn promote_secondary_auth_token(
        &self,
        sid: &str,
        now: i64,
    ) -> StoreResult<Option<SecondaryAuthToken>> {
        let Some(secondary) = self
            .account(sid)
            .await?
            .and_then(|a| a.secondary_auth_token)
        else {
            return Ok(None);
        };
        // Swap only the token just read: if a concurrent request deleted or replaced it, nothing
        // changes and the caller hears "no secondary token", never a token that is not primary.
        let done = sqlx::query(
            "UPDATE accounts SET auth_token = secondary_auth_token, secondary_auth_token = NULL, \
             secondary_date_created = NULL, date_updated = $3 \
             WHERE sid = $1 AND secondary_auth_token = $2",
        )
        .bind(sid)
        .bind(&secondary.token)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok((done.rows_affected() > 0).then_some(secondary))
    }

    async fn insert_api_key(&self, k: &ApiKey) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_keys (sid, account_sid, friendly_name, secret_hash, secret_sealed, \
             date_created, date_updated) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&k.sid)
        .bind(&k.account_sid)
        .bind(&k.friendly_name)
        .bind(&k.secret_hash)
        .bind(&k.secret_sealed)
        .bind(k.date_created)
        .bind(k.date_updated)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn api_key(&self, sid: &str) -> StoreResult<Option<ApiKey>> {
        let row = sqlx::query(
            "SELECT sid, account_sid, friendly_name, secret_hash, secret_sealed, date_created, date_updated FROM api_keys WHERE sid = $1",
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
        let mut sql = "SELECT sid, account_sid, friendly_name, secret_hash, secret_sealed, date_created, date_updated FROM api_keys \
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
