//! SIP domains, their credential and IP lists, and the Auth/Calls mappings in the metadata
//! store. Every lookup is scoped to an account, except [`SipStore::sip_domain_by_name`] (calls
//! arrive by domain name) and [`SipStore::sip_domain_auth`] (by domain SID, for the SIP edge).

use async_trait::async_trait;

use super::StoreResult;
use crate::model::{
    Cursor, SipCredential, SipDomain, SipDomainAuth, SipIpAddress, SipList, SipListKind,
    SipMapping, SipMappingKind,
};

/// SIP domains, lists, list entries and mappings.
#[async_trait]
pub trait SipStore: Send + Sync {
    /// Stores a new domain; `false` when its name is taken.
    async fn insert_sip_domain(&self, domain: &SipDomain) -> StoreResult<bool>;
    /// One domain of an account.
    async fn sip_domain(&self, account_sid: &str, sid: &str) -> StoreResult<Option<SipDomain>>;
    /// The domain named `domain_name` (lower case), whoever owns it.
    async fn sip_domain_by_name(&self, domain_name: &str) -> StoreResult<Option<SipDomain>>;
    /// An account's domains, newest first.
    async fn list_sip_domains(
        &self,
        account_sid: &str,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<SipDomain>>;
    /// Replaces a domain's settings; `false` when its new name is taken.
    async fn update_sip_domain(&self, domain: &SipDomain) -> StoreResult<bool>;
    /// Deletes a domain and its mappings; `false` when there was none.
    async fn delete_sip_domain(&self, account_sid: &str, sid: &str) -> StoreResult<bool>;

    /// Stores a new list.
    async fn insert_sip_list(&self, list: &SipList) -> StoreResult<()>;
    /// One list of an account.
    async fn sip_list(
        &self,
        account_sid: &str,
        kind: SipListKind,
        sid: &str,
    ) -> StoreResult<Option<SipList>>;
    /// An account's lists of one kind, newest first.
    async fn list_sip_lists(
        &self,
        account_sid: &str,
        kind: SipListKind,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<SipList>>;
    /// Renames a list; the list as it is now, if it exists.
    async fn rename_sip_list(
        &self,
        account_sid: &str,
        kind: SipListKind,
        sid: &str,
        friendly_name: &str,
        now: i64,
    ) -> StoreResult<Option<SipList>>;
    /// Deletes a list with its entries and mappings; `false` when there was none.
    async fn delete_sip_list(
        &self,
        account_sid: &str,
        kind: SipListKind,
        sid: &str,
    ) -> StoreResult<bool>;

    /// Stores a new credential; `false` when the list already has the username.
    async fn insert_sip_credential(&self, credential: &SipCredential) -> StoreResult<bool>;
    /// One credential of a list.
    async fn sip_credential(
        &self,
        account_sid: &str,
        list_sid: &str,
        sid: &str,
    ) -> StoreResult<Option<SipCredential>>;
    /// A list's credentials, newest first.
    async fn list_sip_credentials(
        &self,
        account_sid: &str,
        list_sid: &str,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<SipCredential>>;
    /// Replaces a credential's sealed password; the credential as it is now, if it exists.
    async fn update_sip_credential(
        &self,
        account_sid: &str,
        list_sid: &str,
        sid: &str,
        password_sealed: &str,
        now: i64,
    ) -> StoreResult<Option<SipCredential>>;
    /// Deletes a credential; `false` when there was none.
    async fn delete_sip_credential(
        &self,
        account_sid: &str,
        list_sid: &str,
        sid: &str,
    ) -> StoreResult<bool>;

    /// Stores a new address.
    async fn insert_sip_ip_address(&self, address: &SipIpAddress) -> StoreResult<()>;
    /// One address of a list.
    async fn sip_ip_address(
        &self,
        account_sid: &str,
        list_sid: &str,
        sid: &str,
    ) -> StoreResult<Option<SipIpAddress>>;
    /// A list's addresses, newest first.
    async fn list_sip_ip_addresses(
        &self,
        account_sid: &str,
        list_sid: &str,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<SipIpAddress>>;
    /// Replaces an address's settings; `false` when there was none.
    async fn update_sip_ip_address(&self, address: &SipIpAddress) -> StoreResult<bool>;
    /// Deletes an address; `false` when there was none.
    async fn delete_sip_ip_address(
        &self,
        account_sid: &str,
        list_sid: &str,
        sid: &str,
    ) -> StoreResult<bool>;

    /// Maps a list to a domain's `Auth/Calls` or `Auth/Registrations`; `false` when it already is.
    async fn insert_sip_mapping(
        &self,
        account_sid: &str,
        domain_sid: &str,
        kind: SipMappingKind,
        list_sid: &str,
        now: i64,
    ) -> StoreResult<bool>;
    /// One mapping of a domain.
    async fn sip_mapping(
        &self,
        account_sid: &str,
        domain_sid: &str,
        kind: SipMappingKind,
        list_sid: &str,
    ) -> StoreResult<Option<SipMapping>>;
    /// A domain's mappings of one kind, newest first.
    async fn list_sip_mappings(
        &self,
        account_sid: &str,
        domain_sid: &str,
        kind: SipMappingKind,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<SipMapping>>;
    /// Removes a mapping; `false` when there was none.
    async fn delete_sip_mapping(
        &self,
        account_sid: &str,
        domain_sid: &str,
        kind: SipMappingKind,
        list_sid: &str,
    ) -> StoreResult<bool>;

    /// The addresses and credentials of every list mapped to the domain `domain_sid`
    /// (`Auth/Calls` and `Auth/Registrations`).
    async fn sip_domain_auth(&self, domain_sid: &str) -> StoreResult<SipDomainAuth>;
}
