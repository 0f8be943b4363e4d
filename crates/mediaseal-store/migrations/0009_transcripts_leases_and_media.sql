-- Transcripts (issue 13): leases of their jobs, and redacted media.
--
-- A `queued` or `in-progress` transcript is owned by the node running its job
-- (`lease_owner`), which renews `lease_until` (µs) while the job lives. A lapsed lease
-- means the job died with its node: any node then claims the transcript and re-runs it, or
-- fails it when its audio can no longer be read. Rows from before this migration have no
-- lease, which counts as lapsed.
ALTER TABLE transcripts ADD COLUMN lease_owner TEXT;
ALTER TABLE transcripts ADD COLUMN lease_until BIGINT;
CREATE INDEX transcripts_unfinished ON transcripts (status, lease_until);

-- `MediaRedaction`: whether the service asked for a redacted copy of the audio when the
-- transcript was made, and that copy (a WAV with the PII silenced), sealed like the sentences.
ALTER TABLE transcripts ADD COLUMN media_redaction BIGINT NOT NULL DEFAULT 0;
ALTER TABLE transcripts ADD COLUMN redacted_media_key TEXT;
CREATE INDEX transcripts_redacted_media ON transcripts (redacted_media_key);
