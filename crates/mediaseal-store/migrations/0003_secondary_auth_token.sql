-- Auth token rotation (Twilio's /v1/AuthTokens/Secondary and /Promote): an optional secondary
-- token, accepted beside the primary until it is promoted or deleted, and when it was made.
-- Portable between SQLite and PostgreSQL: nullable TEXT and BIGINT columns added in place.

ALTER TABLE accounts ADD COLUMN secondary_auth_token TEXT;
ALTER TABLE accounts ADD COLUMN secondary_date_created BIGINT;
