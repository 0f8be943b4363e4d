-- What the service needs to report a voice recording as failed (16104, with its callback and
-- notification) if a crash cuts its upload off: written with the reservation, read by the
-- sweeper. Portable between SQLite and PostgreSQL: a nullable TEXT column added in place.

ALTER TABLE recordings ADD COLUMN interruption TEXT;
