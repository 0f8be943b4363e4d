-- Transcripts (issue 13): how many times a transcript was claimed after its job died.
--
-- A transcript whose job kills its node every time it runs (an engine or a codec that takes
-- the process down on this audio) would otherwise be claimed and run again forever, taking a
-- node with it on every pass. Each claim counts here; past a cap the transcript fails instead.
ALTER TABLE transcripts ADD COLUMN recoveries BIGINT NOT NULL DEFAULT 0;
