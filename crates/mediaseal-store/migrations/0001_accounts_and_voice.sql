-- Portable between SQLite and PostgreSQL: BIGINT, TEXT only. Times are microseconds since the
-- Unix epoch; booleans are 0/1; binary values are lowercase hex.

CREATE TABLE accounts (
    sid TEXT PRIMARY KEY,
    parent_sid TEXT,
    friendly_name TEXT NOT NULL,
    status TEXT NOT NULL,
    auth_token TEXT NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL
);
CREATE INDEX accounts_parent ON accounts (parent_sid);

CREATE TABLE api_keys (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL,
    friendly_name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL
);
CREATE INDEX api_keys_account ON api_keys (account_sid, date_created);

CREATE TABLE public_keys (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL,
    friendly_name TEXT NOT NULL,
    spki_der TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL
);
CREATE INDEX public_keys_account ON public_keys (account_sid, date_created);

CREATE TABLE recording_settings (
    account_sid TEXT PRIMARY KEY,
    encryption_enabled BIGINT NOT NULL,
    encryption_public_key_sid TEXT,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL
);

CREATE TABLE recordings (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL,
    call_sid TEXT,
    conference_sid TEXT,
    channels BIGINT NOT NULL,
    source TEXT NOT NULL,
    track TEXT,
    duration BIGINT,
    status TEXT NOT NULL,
    error_code BIGINT,
    start_time BIGINT NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL,
    encryption_details TEXT,
    sealing TEXT NOT NULL,
    object_key TEXT,
    sealed_size BIGINT NOT NULL,
    plain_size BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    visible BIGINT NOT NULL,
    deleted BIGINT NOT NULL,
    date_deleted BIGINT
);
CREATE INDEX recordings_list ON recordings (account_sid, date_created, sid);
CREATE INDEX recordings_call ON recordings (account_sid, call_sid);
CREATE INDEX recordings_pending ON recordings (visible, date_created);

CREATE TABLE notifications (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL,
    call_sid TEXT,
    resource_sid TEXT,
    error_code BIGINT NOT NULL,
    log_level BIGINT NOT NULL,
    message_text TEXT NOT NULL,
    more_info TEXT NOT NULL,
    request_method TEXT,
    request_url TEXT,
    date_created BIGINT NOT NULL
);
CREATE INDEX notifications_list ON notifications (account_sid, date_created, sid);

CREATE TABLE callbacks (
    id TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL,
    resource_sid TEXT NOT NULL,
    url TEXT NOT NULL,
    method TEXT NOT NULL,
    params TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    state TEXT NOT NULL,
    last_error TEXT,
    lease_owner TEXT,
    lease_until BIGINT,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX callbacks_due ON callbacks (state, next_attempt_at);
