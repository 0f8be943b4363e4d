-- SIP: domains, credential lists and IP access control lists (one table, told apart by `kind`),
-- their entries, and the domains' Auth/Calls mappings. Portable between SQLite and PostgreSQL:
-- BIGINT and TEXT only; times in microseconds since the Unix epoch; booleans 0/1.
-- Credential passwords are stored sealed (AES-256-GCM under a key derived from the at-rest
-- key); the digest HA1 is derived for the domain's realm when a call is authenticated.

CREATE TABLE sip_domains (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL,
    domain_name TEXT NOT NULL UNIQUE,
    friendly_name TEXT,
    voice_url TEXT,
    voice_method TEXT NOT NULL,
    voice_fallback_url TEXT,
    voice_fallback_method TEXT NOT NULL,
    voice_status_callback_url TEXT,
    voice_status_callback_method TEXT NOT NULL,
    secure BIGINT NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL
);
CREATE INDEX sip_domains_list ON sip_domains (account_sid, date_created, sid);

CREATE TABLE sip_lists (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL,
    kind TEXT NOT NULL,
    friendly_name TEXT NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL
);
CREATE INDEX sip_lists_list ON sip_lists (account_sid, kind, date_created, sid);

CREATE TABLE sip_credentials (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL,
    list_sid TEXT NOT NULL,
    username TEXT NOT NULL,
    password_sealed TEXT NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL,
    UNIQUE (list_sid, username)
);
CREATE INDEX sip_credentials_list ON sip_credentials (list_sid, date_created, sid);

CREATE TABLE sip_ip_addresses (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL,
    list_sid TEXT NOT NULL,
    friendly_name TEXT NOT NULL,
    ip_address TEXT NOT NULL,
    cidr_prefix_length BIGINT NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL
);
CREATE INDEX sip_ip_addresses_list ON sip_ip_addresses (list_sid, date_created, sid);

CREATE TABLE sip_domain_mappings (
    account_sid TEXT NOT NULL,
    domain_sid TEXT NOT NULL,
    kind TEXT NOT NULL,
    list_sid TEXT NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL,
    PRIMARY KEY (domain_sid, kind, list_sid)
);
CREATE INDEX sip_domain_mappings_list ON sip_domain_mappings (list_sid);
