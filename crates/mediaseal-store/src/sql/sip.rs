//! SIP domains, lists, list entries and mappings on SQL.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::SqlStore;
use super::rows::{b, flag, is_unique_violation, newest_first_page, opt_str, spelled};
use crate::meta::{SipStore, StoreResult};
use crate::model::{
    Cursor, SipCredential, SipDomain, SipDomainAuth, SipIpAddress, SipList, SipListKind,
    SipMapping, SipMappingKind,
};

const DOMAIN_COLS: &str = "sid, account_sid, domain_name, friendly_name, voice_url, voice_method, \
     voice_fallback_url, voice_fallback_method, voice_status_callback_url, voice_status_callback_method, secure, \
     date_created, date_updated, sip_registration";
const LIST_COLS: &str = "sid, account_sid, kind, friendly_name, date_created, date_updated";
const CREDENTIAL_COLS: &str =
    "sid, account_sid, list_sid, username, password_sealed, date_created, date_updated";
const ADDRESS_COLS: &str = "sid, account_sid, list_sid, friendly_name, ip_address, cidr_prefix_length, \
     date_created, date_updated";
/// Mappings with their list's name, as one relation whose `sid` is the list's (so the shared
/// keyset paging applies unchanged).
const MAPPINGS: &str = "(SELECT m.list_sid AS sid, m.account_sid AS account_sid, m.domain_sid AS domain_sid, \
     m.kind AS kind, l.friendly_name AS friendly_name, m.date_created AS date_created, \
     m.date_updated AS date_updated FROM sip_domain_mappings m JOIN sip_lists l ON l.sid = m.list_sid) mapped";
const MAPPING_COLS: &str =
    "sid, account_sid, domain_sid, kind, friendly_name, date_created, date_updated";

fn domain_from(row: &AnyRow) -> StoreResult<SipDomain> {
    Ok(SipDomain {
        sid: row.try_get("sid")?,
        account_sid: row.try_get("account_sid")?,
        domain_name: row.try_get("domain_name")?,
        friendly_name: opt_str(row, "friendly_name")?,
        voice_url: opt_str(row, "voice_url")?,
        voice_method: row.try_get("voice_method")?,
        voice_fallback_url: opt_str(row, "voice_fallback_url")?,
        voice_fallback_method: row.try_get("voice_fallback_method")?,
        voice_status_callback_url: opt_str(row, "voice_status_callback_url")?,
        voice_status_callback_method: row.try_get("voice_status_callback_method")?,
        secure: flag(row, "secure")?,
        sip_registration: flag(row, "sip_registration")?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
    })
}

fn list_from(row: &AnyRow) -> StoreResult<SipList> {
    Ok(SipList {
        sid: row.try_get("sid")?,
        account_sid: row.try_get("account_sid")?,
        kind: spelled::<SipListKind>(row, "sip_lists", "kind")?,
        friendly_name: row.try_get("friendly_name")?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
    })
}

fn credential_from(row: &AnyRow) -> StoreResult<SipCredential> {
    Ok(SipCredential {
        sid: row.try_get("sid")?,
        account_sid: row.try_get("account_sid")?,
        list_sid: row.try_get("list_sid")?,
        username: row.try_get("username")?,
        password_sealed: row.try_get("password_sealed")?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
    })
}

fn address_from(row: &AnyRow) -> StoreResult<SipIpAddress> {
    Ok(SipIpAddress {
        sid: row.try_get("sid")?,
        account_sid: row.try_get("account_sid")?,
        list_sid: row.try_get("list_sid")?,
        friendly_name: row.try_get("friendly_name")?,
        ip_address: row.try_get("ip_address")?,
        cidr_prefix_length: row.try_get("cidr_prefix_length")?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
    })
}

fn mapping_from(row: &AnyRow) -> StoreResult<SipMapping> {
    Ok(SipMapping {
        sid: row.try_get("sid")?,
        account_sid: row.try_get("account_sid")?,
        domain_sid: row.try_get("domain_sid")?,
        kind: spelled::<SipMappingKind>(row, "sip_domain_mappings", "kind")?,
        friendly_name: row.try_get("friendly_name")?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
    })
}

/// `Ok(true)`, or `Ok(false)` for a unique-constraint violation.
fn inserted(result: Result<sqlx::any::AnyQueryResult, sqlx::Error>) -> StoreResult<bool> {
    match result {
        Ok(r) => Ok(r.rows_affected() > 0),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[async_trait]
impl SipStore for SqlStore {
    async fn insert_sip_domain(&self, d: &SipDomain) -> StoreResult<bool> {
        let result = sqlx::query(&format!(
            "INSERT INTO sip_domains ({DOMAIN_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(&d.sid)
        .bind(&d.account_sid)
        .bind(&d.domain_name)
        .bind(&d.friendly_name)
        .bind(&d.voice_url)
        .bind(&d.voice_method)
        .bind(&d.voice_fallback_url)
        .bind(&d.voice_fallback_method)
        .bind(&d.voice_status_callback_url)
        .bind(&d.voice_status_callback_method)
        .bind(b(d.secure))
        .bind(d.date_created)
        .bind(d.date_updated)
        .bind(b(d.sip_registration))
        .execute(self.pool())
        .await;
        inserted(result)
    }

    async fn sip_domain(&self, account_sid: &str, sid: &str) -> StoreResult<Option<SipDomain>> {
        let row = sqlx::query(&format!(
            "SELECT {DOMAIN_COLS} FROM sip_domains WHERE account_sid = $1 AND sid = $2"
        ))
        .bind(account_sid)
        .bind(sid)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(domain_from).transpose()
    }

    async fn sip_domain_by_name(&self, domain_name: &str) -> StoreResult<Option<SipDomain>> {
        let row = sqlx::query(&format!(
            "SELECT {DOMAIN_COLS} FROM sip_domains WHERE domain_name = $1"
        ))
        .bind(domain_name)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(domain_from).transpose()
    }

    async fn list_sip_domains(
        &self,
        account_sid: &str,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<SipDomain>> {
        let mut sql = format!("SELECT {DOMAIN_COLS} FROM sip_domains WHERE account_sid = $1");
        newest_first_page(&mut sql, after, 3);
        let mut q = sqlx::query(&sql).bind(account_sid).bind(limit);
        if let Some(c) = after {
            q = q.bind(c.date_created).bind(&c.sid);
        }
        q.fetch_all(self.pool())
            .await?
            .iter()
            .map(domain_from)
            .collect()
    }

    async fn update_sip_domain(&self, d: &SipDomain) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE sip_domains SET domain_name = $3, friendly_name = $4, voice_url = $5, voice_method = $6, \
             voice_fallback_url = $7, voice_fallback_method = $8, voice_status_callback_url = $9, \
             voice_status_callback_method = $10, secure = $11, date_updated = $12, \
             sip_registration = $13 WHERE account_sid = $1 AND sid = $2",
        )
        .bind(&d.account_sid)
        .bind(&d.sid)
        .bind(&d.domain_name)
        .bind(&d.friendly_name)
        .bind(&d.voice_url)
        .bind(&d.voice_method)
        .bind(&d.voice_fallback_url)
        .bind(&d.voice_fallback_method)
        .bind(&d.voice_status_callback_url)
        .bind(&d.voice_status_callback_method)
        .bind(b(d.secure))
        .bind(d.date_updated)
        .bind(b(d.sip_registration))
        .execute(self.pool())
        .await;
        inserted(result)
    }

    async fn delete_sip_domain(&self, account_sid: &str, sid: &str) -> StoreResult<bool> {
        let mut tx = self.pool().begin().await?;
        let gone = sqlx::query("DELETE FROM sip_domains WHERE account_sid = $1 AND sid = $2")
            .bind(account_sid)
            .bind(sid)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM sip_domain_mappings WHERE account_sid = $1 AND domain_sid = $2")
            .bind(account_sid)
            .bind(sid)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(gone > 0)
    }

    async fn insert_sip_list(&self, l: &SipList) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO sip_lists ({LIST_COLS}) VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(&l.sid)
        .bind(&l.account_sid)
        .bind(l.kind.as_str())
        .bind(&l.friendly_name)
        .bind(l.date_created)
        .bind(l.date_updated)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn sip_list(
        &self,
        account_sid: &str,
        kind: SipListKind,
        sid: &str,
    ) -> StoreResult<Option<SipList>> {
        let row = sqlx::query(&format!(
            "SELECT {LIST_COLS} FROM sip_lists WHERE account_sid = $1 AND kind = $2 AND sid = $3"
        ))
        .bind(account_sid)
        .bind(kind.as_str())
        .bind(sid)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(list_from).transpose()
    }

    async fn list_sip_lists(
        &self,
        account_sid: &str,
        kind: SipListKind,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<SipList>> {
        let mut sql =
            format!("SELECT {LIST_COLS} FROM sip_lists WHERE account_sid = $1 AND kind = $3");
        newest_first_page(&mut sql, after, 4);
        let mut q = sqlx::query(&sql)
            .bind(account_sid)
            .bind(limit)
            .bind(kind.as_str());
        if let Some(c) = after {
            q = q.bind(c.date_created).bind(&c.sid);
        }
        q.fetch_all(self.pool())
            .await?
            .iter()
            .map(list_from)
            .collect()
    }

    async fn rename_sip_list(
        &self,
        account_sid: &str,
        kind: SipListKind,
        sid: &str,
        friendly_name: &str,
        now: i64,
    ) -> StoreResult<Option<SipList>> {
        sqlx::query(
            "UPDATE sip_lists SET friendly_name = $4, date_updated = $5 \
             WHERE account_sid = $1 AND kind = $2 AND sid = $3",
        )
        .bind(account_sid)
        .bind(kind.as_str())
        .bind(sid)
        .bind(friendly_name)
        .bind(now)
        .execute(self.pool())
        .await?;
        self.sip_list(account_sid, kind, sid).await
    }

    async fn delete_sip_list(
        &self,
        account_sid: &str,
        kind: SipListKind,
        sid: &str,
    ) -> StoreResult<bool> {
        let mut tx = self.pool().begin().await?;
        let gone =
            sqlx::query("DELETE FROM sip_lists WHERE account_sid = $1 AND kind = $2 AND sid = $3")
                .bind(account_sid)
                .bind(kind.as_str())
                .bind(sid)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if gone > 0 {
            let entries = match kind {
                SipListKind::Credential => "DELETE FROM sip_credentials WHERE list_sid = $1",
                SipListKind::IpAccessControl => "DELETE FROM sip_ip_addresses WHERE list_sid = $1",
            };
            sqlx::query(entries).bind(sid).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM sip_domain_mappings WHERE list_sid = $1")
                .bind(sid)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(gone > 0)
    }

    async fn insert_sip_credential(&self, c: &SipCredential) -> StoreResult<bool> {
        let result = sqlx::query(&format!(
            "INSERT INTO sip_credentials ({CREDENTIAL_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(&c.sid)
        .bind(&c.account_sid)
        .bind(&c.list_sid)
        .bind(&c.username)
        .bind(&c.password_sealed)
        .bind(c.date_created)
        .bind(c.date_updated)
        .execute(self.pool())
        .await;
        inserted(result)
    }

    async fn sip_credential(
        &self,
        account_sid: &str,
        list_sid: &str,
        sid: &str,
    ) -> StoreResult<Option<SipCredential>> {
        let row = sqlx::query(&format!(
            "SELECT {CREDENTIAL_COLS} FROM sip_credentials WHERE account_sid = $1 AND list_sid = $2 AND sid = $3"
        ))
        .bind(account_sid)
        .bind(list_sid)
        .bind(sid)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(credential_from).transpose()
    }

    async fn list_sip_credentials(
        &self,
        account_sid: &str,
        list_sid: &str,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<SipCredential>> {
        let mut sql = format!(
            "SELECT {CREDENTIAL_COLS} FROM sip_credentials WHERE account_sid = $1 AND list_sid = $3"
        );
        newest_first_page(&mut sql, after, 4);
        let mut q = sqlx::query(&sql)
            .bind(account_sid)
            .bind(limit)
            .bind(list_sid);
        if let Some(c) = after {
            q = q.bind(c.date_created).bind(&c.sid);
        }
        q.fetch_all(self.pool())
            .await?
            .iter()
            .map(credential_from)
            .collect()
    }

    async fn update_sip_credential(
        &self,
        account_sid: &str,
        list_sid: &str,
        sid: &str,
        password_sealed: &str,
        now: i64,
    ) -> StoreResult<Option<SipCredential>> {
        sqlx::query(
            "UPDATE sip_credentials SET password_sealed = $4, date_updated = $5 \
             WHERE account_sid = $1 AND list_sid = $2 AND sid = $3",
        )
        .bind(account_sid)
        .bind(list_sid)
        .bind(sid)
        .bind(password_sealed)
        .bind(now)
        .execute(self.pool())
        .await?;
        self.sip_credential(account_sid, list_sid, sid).await
    }

    async fn delete_sip_credential(
        &self,
        account_sid: &str,
        list_sid: &str,
        sid: &str,
    ) -> StoreResult<bool> {
        let gone = sqlx::query(
            "DELETE FROM sip_credentials WHERE account_sid = $1 AND list_sid = $2 AND sid = $3",
        )
        .bind(account_sid)
        .bind(list_sid)
        .bind(sid)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(gone > 0)
    }

    async fn insert_sip_ip_address(&self, a: &SipIpAddress) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO sip_ip_addresses ({ADDRESS_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&a.sid)
        .bind(&a.account_sid)
        .bind(&a.list_sid)
        .bind(&a.friendly_name)
        .bind(&a.ip_address)
        .bind(a.cidr_prefix_length)
        .bind(a.date_created)
        .bind(a.date_updated)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn sip_ip_address(
        &self,
        account_sid: &str,
        list_sid: &str,
        sid: &str,
    ) -> StoreResult<Option<SipIpAddress>> {
        let row = sqlx::query(&format!(
            "SELECT {ADDRESS_COLS} FROM sip_ip_addresses WHERE account_sid = $1 AND list_sid = $2 AND sid = $3"
        ))
        .bind(account_sid)
        .bind(list_sid)
        .bind(sid)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(address_from).transpose()
    }

    async fn list_sip_ip_addresses(
        &self,
        account_sid: &str,
        list_sid: &str,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<SipIpAddress>> {
        let mut sql = format!(
            "SELECT {ADDRESS_COLS} FROM sip_ip_addresses WHERE account_sid = $1 AND list_sid = $3"
        );
        newest_first_page(&mut sql, after, 4);
        let mut q = sqlx::query(&sql)
            .bind(account_sid)
            .bind(limit)
            .bind(list_sid);
        if let Some(c) = after {
            q = q.bind(c.date_created).bind(&c.sid);
        }
        q.fetch_all(self.pool())
            .await?
            .iter()
            .map(address_from)
            .collect()
    }

    async fn update_sip_ip_address(&self, a: &SipIpAddress) -> StoreResult<bool> {
        let changed = sqlx::query(
            "UPDATE sip_ip_addresses SET friendly_name = $4, ip_address = $5, cidr_prefix_length = $6, \
             date_updated = $7 WHERE account_sid = $1 AND list_sid = $2 AND sid = $3",
        )
        .bind(&a.account_sid)
        .bind(&a.list_sid)
        .bind(&a.sid)
        .bind(&a.friendly_name)
        .bind(&a.ip_address)
        .bind(a.cidr_prefix_length)
        .bind(a.date_updated)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(changed > 0)
    }

    async fn delete_sip_ip_address(
        &self,
        account_sid: &str,
        list_sid: &str,
        sid: &str,
    ) -> StoreResult<bool> {
        let gone = sqlx::query(
            "DELETE FROM sip_ip_addresses WHERE account_sid = $1 AND list_sid = $2 AND sid = $3",
        )
        .bind(account_sid)
        .bind(list_sid)
        .bind(sid)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(gone > 0)
    }

    async fn insert_sip_mapping(
        &self,
        account_sid: &str,
        domain_sid: &str,
        kind: SipMappingKind,
        list_sid: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "INSERT INTO sip_domain_mappings (account_sid, domain_sid, kind, list_sid, date_created, date_updated) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(account_sid)
        .bind(domain_sid)
        .bind(kind.as_str())
        .bind(list_sid)
        .bind(now)
        .execute(self.pool())
        .await;
        inserted(result)
    }

    async fn sip_mapping(
        &self,
        account_sid: &str,
        domain_sid: &str,
        kind: SipMappingKind,
        list_sid: &str,
    ) -> StoreResult<Option<SipMapping>> {
        let row = sqlx::query(&format!(
            "SELECT {MAPPING_COLS} FROM {MAPPINGS} WHERE account_sid = $1 AND domain_sid = $2 AND kind = $3 \
             AND sid = $4"
        ))
        .bind(account_sid)
        .bind(domain_sid)
        .bind(kind.as_str())
        .bind(list_sid)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(mapping_from).transpose()
    }

    async fn list_sip_mappings(
        &self,
        account_sid: &str,
        domain_sid: &str,
        kind: SipMappingKind,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<SipMapping>> {
        let mut sql = format!(
            "SELECT {MAPPING_COLS} FROM {MAPPINGS} WHERE account_sid = $1 AND domain_sid = $3 AND kind = $4"
        );
        newest_first_page(&mut sql, after, 5);
        let mut q = sqlx::query(&sql)
            .bind(account_sid)
            .bind(limit)
            .bind(domain_sid)
            .bind(kind.as_str());
        if let Some(c) = after {
            q = q.bind(c.date_created).bind(&c.sid);
        }
        q.fetch_all(self.pool())
            .await?
            .iter()
            .map(mapping_from)
            .collect()
    }

    async fn delete_sip_mapping(
        &self,
        account_sid: &str,
        domain_sid: &str,
        kind: SipMappingKind,
        list_sid: &str,
    ) -> StoreResult<bool> {
        let gone = sqlx::query(
            "DELETE FROM sip_domain_mappings WHERE account_sid = $1 AND domain_sid = $2 AND kind = $3 \
             AND list_sid = $4",
        )
        .bind(account_sid)
        .bind(domain_sid)
        .bind(kind.as_str())
        .bind(list_sid)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(gone > 0)
    }

    async fn sip_domain_auth(&self, domain_sid: &str) -> StoreResult<SipDomainAuth> {
        // Entries must belong to the domain's own account: a mapping is only ever made within
        // one account, and the join says so again.
        let ip_addresses = sqlx::query(&format!(
            "SELECT {} FROM sip_ip_addresses a JOIN sip_domain_mappings m \
             ON m.list_sid = a.list_sid AND m.account_sid = a.account_sid \
             WHERE m.domain_sid = $1 AND m.kind = 'ip' ORDER BY a.sid",
            prefixed("a", ADDRESS_COLS)
        ))
        .bind(domain_sid)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(address_from)
        .collect::<StoreResult<Vec<_>>>()?;
        let credentials = sqlx::query(&format!(
            "SELECT {} FROM sip_credentials c JOIN sip_domain_mappings m \
             ON m.list_sid = c.list_sid AND m.account_sid = c.account_sid \
             WHERE m.domain_sid = $1 AND m.kind = 'credential' ORDER BY c.sid",
            prefixed("c", CREDENTIAL_COLS)
        ))
        .bind(domain_sid)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(credential_from)
        .collect::<StoreResult<Vec<_>>>()?;
        let registration_credentials = sqlx::query(&format!(
            "SELECT {} FROM sip_credentials c JOIN sip_domain_mappings m \
             ON m.list_sid = c.list_sid AND m.account_sid = c.account_sid \
             WHERE m.domain_sid = $1 AND m.kind = 'registration' ORDER BY c.sid",
            prefixed("c", CREDENTIAL_COLS)
        ))
        .bind(domain_sid)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(credential_from)
        .collect::<StoreResult<Vec<_>>>()?;
        Ok(SipDomainAuth {
            ip_addresses,
            credentials,
            registration_credentials,
        })
    }
}

/// `a.x AS x, a.y AS y, …` for a column list.
fn prefixed(table: &str, cols: &str) -> String {
    cols.split(',')
        .map(str::trim)
        .map(|c| format!("{table}.{c} AS {c}"))
        .collect::<Vec<_>>()
        .join(", ")
}
