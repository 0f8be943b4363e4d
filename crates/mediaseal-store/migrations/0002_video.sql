-- Video: settings, rooms, track recordings, compositions (which double as the composition job
-- queue) and composition hooks. Portable between SQLite and PostgreSQL: BIGINT and TEXT only;
-- times in microseconds since the Unix epoch; booleans 0/1; lists and layouts as JSON text.

CREATE TABLE video_settings (
    account_sid TEXT NOT NULL,
    kind TEXT NOT NULL,
    friendly_name TEXT,
    encryption_enabled BIGINT NOT NULL,
    encryption_key_sid TEXT,
    aws_storage_enabled BIGINT NOT NULL,
    aws_s3_url TEXT,
    aws_credentials_sid TEXT,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL,
    PRIMARY KEY (account_sid, kind)
);

CREATE TABLE rooms (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL,
    unique_name TEXT NOT NULL,
    room_type TEXT NOT NULL,
    status TEXT NOT NULL,
    status_callback TEXT,
    status_callback_method TEXT NOT NULL,
    max_participants BIGINT NOT NULL,
    record_participants_on_connect BIGINT NOT NULL,
    audio_only BIGINT NOT NULL,
    media_region TEXT,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL,
    end_time BIGINT
);
CREATE INDEX rooms_list ON rooms (account_sid, date_created, sid);
CREATE INDEX rooms_name ON rooms (account_sid, unique_name);

CREATE TABLE track_recordings (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL,
    room_sid TEXT NOT NULL,
    participant_sid TEXT NOT NULL,
    source_sid TEXT NOT NULL,
    track_name TEXT NOT NULL,
    media_type TEXT NOT NULL,
    codec TEXT NOT NULL,
    container_format TEXT NOT NULL,
    offset_ms BIGINT NOT NULL,
    duration_ms BIGINT,
    status TEXT NOT NULL,
    sealing TEXT NOT NULL,
    encryption_key_sid TEXT,
    object_key TEXT,
    sealed_size BIGINT NOT NULL,
    plain_size BIGINT NOT NULL,
    status_callback TEXT,
    status_callback_method TEXT NOT NULL,
    visible BIGINT NOT NULL,
    deleted BIGINT NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL,
    date_deleted BIGINT
);
CREATE INDEX track_recordings_list ON track_recordings (account_sid, date_created, sid);
CREATE INDEX track_recordings_room ON track_recordings (account_sid, room_sid);
CREATE INDEX track_recordings_pending ON track_recordings (visible, date_created);
CREATE INDEX track_recordings_object ON track_recordings (object_key);

CREATE TABLE compositions (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL,
    room_sid TEXT NOT NULL,
    hook_sid TEXT,
    status TEXT NOT NULL,
    audio_sources TEXT NOT NULL,
    audio_sources_excluded TEXT NOT NULL,
    video_layout TEXT NOT NULL,
    resolution TEXT NOT NULL,
    format TEXT NOT NULL,
    trim_media BIGINT NOT NULL,
    status_callback TEXT,
    status_callback_method TEXT NOT NULL,
    seal_key_sid TEXT,
    sealing TEXT NOT NULL,
    object_key TEXT,
    sealed_size BIGINT NOT NULL,
    plain_size BIGINT NOT NULL,
    bitrate BIGINT NOT NULL,
    duration BIGINT NOT NULL,
    error_code BIGINT,
    error_message TEXT,
    attempts BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    deleted BIGINT NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL,
    date_completed BIGINT,
    date_deleted BIGINT
);
CREATE INDEX compositions_list ON compositions (account_sid, date_created, sid);
CREATE INDEX compositions_queue ON compositions (status, lease_until);
CREATE INDEX compositions_object ON compositions (object_key);

CREATE TABLE composition_hooks (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL,
    friendly_name TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    audio_sources TEXT NOT NULL,
    audio_sources_excluded TEXT NOT NULL,
    video_layout TEXT NOT NULL,
    resolution TEXT NOT NULL,
    format TEXT NOT NULL,
    trim_media BIGINT NOT NULL,
    status_callback TEXT,
    status_callback_method TEXT NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL
);
CREATE UNIQUE INDEX composition_hooks_name ON composition_hooks (account_sid, friendly_name);
CREATE INDEX composition_hooks_list ON composition_hooks (account_sid, date_created, sid);
