-- Conversational Intelligence (issue 13): services (`GA…`) and transcripts (`GT…`). Portable
-- between SQLite and PostgreSQL: BIGINT and TEXT only; times in microseconds since the Unix
-- epoch; booleans 0/1. No transcript text is ever stored here: a transcript's sentences live in
-- one sealed object (`object_key`), sealed with the customer's key or the service's at-rest key;
-- with data logging (switched on by an operator only) a second copy sealed at rest
-- (`log_object_key`); with redaction, the redacted view sealed like the sentences
-- (`redacted_object_key`).

CREATE TABLE intelligence_services (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL,
    unique_name TEXT NOT NULL,
    friendly_name TEXT,
    language_code TEXT NOT NULL,
    auto_transcribe BIGINT NOT NULL,
    data_logging BIGINT NOT NULL,
    auto_redaction BIGINT NOT NULL,
    media_redaction BIGINT NOT NULL,
    webhook_url TEXT,
    webhook_http_method TEXT,
    encryption_credential_sid TEXT,
    version BIGINT NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL
);
CREATE UNIQUE INDEX intelligence_services_name ON intelligence_services (account_sid, unique_name);
CREATE INDEX intelligence_services_list ON intelligence_services (account_sid, date_created, sid);

CREATE TABLE transcripts (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL,
    service_sid TEXT NOT NULL,
    status TEXT NOT NULL,
    channel TEXT NOT NULL,
    source_sid TEXT,
    language_code TEXT NOT NULL,
    customer_key TEXT,
    media_start_time BIGINT,
    duration BIGINT,
    data_logging BIGINT NOT NULL,
    redaction BIGINT NOT NULL,
    encryption_credential_sid TEXT,
    sealing TEXT NOT NULL,
    object_key TEXT,
    log_object_key TEXT,
    redacted_object_key TEXT,
    sentence_count BIGINT NOT NULL,
    error_message TEXT,
    deleted BIGINT NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL
);
CREATE INDEX transcripts_list ON transcripts (account_sid, date_created, sid);
CREATE INDEX transcripts_object ON transcripts (object_key);
CREATE INDEX transcripts_log_object ON transcripts (log_object_key);
CREATE INDEX transcripts_redacted_object ON transcripts (redacted_object_key);
