-- The recording rules of a group room (Twilio's RecordingRules resource), once a client set them:
-- `rules` is the JSON array as the API shows it, checked before it is stored. A room without a row
-- has the rules it started with ("include all" when it records participants on connect, else
-- none). One row per room; an update replaces `rules` and `date_updated`. Portable between
-- SQLite and PostgreSQL like 0011.
CREATE TABLE room_recording_rules (
    account_sid TEXT NOT NULL,
    room_sid TEXT NOT NULL PRIMARY KEY,
    rules TEXT NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL
);
