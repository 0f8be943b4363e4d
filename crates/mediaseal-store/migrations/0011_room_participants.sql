-- Room participants: the Participants resource of a video room, one row per connection (a
-- participant who rejoins gets a new PA…). Written by the room's event consumer in the server:
-- inserted `connected` when the worker reports the participant's media up, closed when it
-- reports the participant gone or the room's process ends. Portable between SQLite and
-- PostgreSQL: BIGINT and TEXT only; times in microseconds since the Unix epoch, `duration` in
-- whole seconds.

CREATE TABLE room_participants (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL,
    room_sid TEXT NOT NULL,
    identity TEXT NOT NULL,
    status TEXT NOT NULL,
    start_time BIGINT NOT NULL,
    end_time BIGINT,
    duration BIGINT,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL
);
CREATE INDEX room_participants_list ON room_participants (account_sid, room_sid, date_created, sid);

-- The tracks each participant publishes now (the PublishedTracks resource): inserted on the
-- worker's `track_published`, deleted on `track_unpublished`, when the participant leaves and
-- when the room's process ends. `enabled` is 0/1.
CREATE TABLE room_published_tracks (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL,
    room_sid TEXT NOT NULL,
    participant_sid TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL
);
CREATE INDEX room_published_tracks_list ON room_published_tracks (account_sid, room_sid, participant_sid, date_created, sid);
