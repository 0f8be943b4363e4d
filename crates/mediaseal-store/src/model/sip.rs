//! SIP: domains, credential lists and IP access control lists with their entries, and the
//! lists mapped to a domain's `Auth/Calls` and `Auth/Registrations`.

use super::spelling::spelled_enum;

spelled_enum! {
    /// Which kind of list (`sip_lists.kind`, `sip_domain_mappings.kind`).
    pub enum SipListKind ("SIP list kind") {
        /// A credential list (`CL…`) of usernames and passwords.
        Credential = "credential",
        /// An IP access control list (`AL…`) of addresses and ranges.
        IpAccessControl = "ip",
    }
}

spelled_enum! {
    /// What a list is mapped to on a domain (`sip_domain_mappings.kind`).
    pub enum SipMappingKind ("SIP mapping kind") {
        /// A credential list on `Auth/Calls`: who may call the domain with a password.
        CallsCredential = "credential",
        /// An IP access control list on `Auth/Calls`: who may call the domain from an address.
        CallsIp = "ip",
        /// A credential list on `Auth/Registrations`: who may register to the domain.
        RegistrationCredential = "registration",
    }
}

impl From<SipListKind> for SipMappingKind {
    fn from(kind: SipListKind) -> Self {
        match kind {
            SipListKind::Credential => Self::CallsCredential,
            SipListKind::IpAccessControl => Self::CallsIp,
        }
    }
}

impl SipMappingKind {
    /// The kind of list the mapping names.
    pub fn list_kind(self) -> SipListKind {
        match self {
            Self::CallsCredential | Self::RegistrationCredential => SipListKind::Credential,
            Self::CallsIp => SipListKind::IpAccessControl,
        }
    }
}

/// A SIP Domain (`SD…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipDomain {
    /// `SD…`.
    pub sid: String,
    /// The owning account.
    pub account_sid: String,
    /// The full domain name, lower case; unique across the service (it routes calls).
    pub domain_name: String,
    /// The customer's label.
    pub friendly_name: Option<String>,
    /// Where the TwiML of a call comes from.
    pub voice_url: Option<String>,
    /// `GET` or `POST`.
    pub voice_method: String,
    /// Requested when `voice_url` fails.
    pub voice_fallback_url: Option<String>,
    /// `GET` or `POST`.
    pub voice_fallback_method: String,
    /// Told about call status changes.
    pub voice_status_callback_url: Option<String>,
    /// `GET` or `POST`.
    pub voice_status_callback_method: String,
    /// TLS signalling and SRTP required.
    pub secure: bool,
    /// `SipRegistration`: phones may REGISTER to the domain (with credentials of the lists
    /// mapped to its `Auth/Registrations`).
    pub sip_registration: bool,
    /// Created.
    pub date_created: i64,
    /// Last changed.
    pub date_updated: i64,
}

/// A credential list (`CL…`) or an IP access control list (`AL…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipList {
    /// `CL…` or `AL…`.
    pub sid: String,
    /// The owning account.
    pub account_sid: String,
    /// Which kind.
    pub kind: SipListKind,
    /// The customer's label.
    pub friendly_name: String,
    /// Created.
    pub date_created: i64,
    /// Last changed.
    pub date_updated: i64,
}

/// A SIP credential (`CR…`). The password is only ever stored sealed; `Debug` leaves it out.
#[derive(Clone, PartialEq, Eq)]
pub struct SipCredential {
    /// `CR…`.
    pub sid: String,
    /// The owning account.
    pub account_sid: String,
    /// The credential list (`CL…`).
    pub list_sid: String,
    /// The digest username; unique within the list.
    pub username: String,
    /// The password, sealed by the service (never plaintext, never shown).
    pub password_sealed: String,
    /// Created.
    pub date_created: i64,
    /// Last changed.
    pub date_updated: i64,
}

impl std::fmt::Debug for SipCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipCredential")
            .field("sid", &self.sid)
            .field("list_sid", &self.list_sid)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// An address or range of an IP access control list (`IP…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipIpAddress {
    /// `IP…`.
    pub sid: String,
    /// The owning account.
    pub account_sid: String,
    /// The IP access control list (`AL…`).
    pub list_sid: String,
    /// The customer's label.
    pub friendly_name: String,
    /// The address (IPv4 or IPv6), as given.
    pub ip_address: String,
    /// The prefix length of the range (32 or 128 for one address).
    pub cidr_prefix_length: i64,
    /// Created.
    pub date_created: i64,
    /// Last changed.
    pub date_updated: i64,
}

/// A list mapped to a domain's `Auth/Calls`, as the API shows it (with the list's name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipMapping {
    /// The mapped list's SID (the mapping's SID in Twilio's shape).
    pub sid: String,
    /// The owning account.
    pub account_sid: String,
    /// The domain (`SD…`).
    pub domain_sid: String,
    /// What the list is mapped to.
    pub kind: SipMappingKind,
    /// The list's label.
    pub friendly_name: String,
    /// When it was mapped.
    pub date_created: i64,
    /// When it was mapped.
    pub date_updated: i64,
}

/// Everything a domain's mapped lists let call it.
#[derive(Debug, Clone, Default)]
pub struct SipDomainAuth {
    /// Addresses of the mapped IP access control lists.
    pub ip_addresses: Vec<SipIpAddress>,
    /// Credentials of the credential lists mapped to `Auth/Calls`.
    pub credentials: Vec<SipCredential>,
    /// Credentials of the credential lists mapped to `Auth/Registrations`.
    pub registration_credentials: Vec<SipCredential>,
}
