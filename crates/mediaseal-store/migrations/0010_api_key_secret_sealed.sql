-- Room Access Tokens are HS256-signed with an API key's secret, so verifying one needs the
-- secret itself, not only the SHA-256 kept for request authentication. New keys also store it
-- sealed (AES-256-GCM under a key derived from the at-rest key, the key's SID as associated
-- data; see mediaseal_service::sealed). Keys made before this have none and sign no tokens.
-- Portable between SQLite and PostgreSQL: a nullable TEXT column added in place.

ALTER TABLE api_keys ADD COLUMN secret_sealed TEXT;
