-- Calls: the Calls resource, one row per call or dialled leg, upserted at each status change
-- the SIP edge reports. Portable between SQLite and PostgreSQL: BIGINT and TEXT only; times in
-- microseconds since the Unix epoch. `status_rank` orders the statuses (ringing < in-progress
-- < final) so that a late or repeated update never moves a call backwards.

CREATE TABLE calls (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL,
    parent_call_sid TEXT,
    direction TEXT NOT NULL,
    from_address TEXT NOT NULL,
    to_address TEXT NOT NULL,
    status TEXT NOT NULL,
    status_rank BIGINT NOT NULL,
    start_time BIGINT,
    end_time BIGINT,
    duration BIGINT,
    sip_call_id TEXT,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL
);
CREATE INDEX calls_list ON calls (account_sid, date_created, sid);
CREATE INDEX calls_parent ON calls (parent_call_sid);
