-- Conversational Intelligence operators (issue 13): the account's custom operators (`LY…`),
-- which operators each service runs, and the results of a transcript's operators. Portable
-- between SQLite and PostgreSQL: BIGINT and TEXT only; times in microseconds since the Unix
-- epoch. No result text is ever stored here: each result is one sealed object (`object_key`),
-- sealed like the transcript's sentences, with data logging's at-rest copy in
-- `log_object_key`. `config` is the customer's operator configuration (phrases to look for).

CREATE TABLE custom_operators (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL,
    friendly_name TEXT NOT NULL,
    operator_type TEXT NOT NULL,
    config TEXT NOT NULL,
    version BIGINT NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL
);
CREATE INDEX custom_operators_list ON custom_operators (account_sid, date_created, sid);

CREATE TABLE operator_attachments (
    account_sid TEXT NOT NULL,
    service_sid TEXT NOT NULL,
    operator_sid TEXT NOT NULL,
    date_created BIGINT NOT NULL,
    PRIMARY KEY (service_sid, operator_sid)
);
CREATE INDEX operator_attachments_operator ON operator_attachments (operator_sid);

CREATE TABLE operator_results (
    account_sid TEXT NOT NULL,
    transcript_sid TEXT NOT NULL,
    operator_sid TEXT NOT NULL,
    operator_type TEXT NOT NULL,
    name TEXT NOT NULL,
    sealing TEXT NOT NULL,
    object_key TEXT NOT NULL,
    log_object_key TEXT,
    date_created BIGINT NOT NULL,
    PRIMARY KEY (transcript_sid, operator_sid)
);
CREATE INDEX operator_results_object ON operator_results (object_key);
CREATE INDEX operator_results_log_object ON operator_results (log_object_key);
