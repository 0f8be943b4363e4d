-- The tracks each participant receives now (the SubscribedTracks resource): inserted on the room
-- worker's `track_subscribed` (the subscriber's m-line for the track was negotiated), deleted on
-- `track_unsubscribed`, when the track is unpublished, when the subscriber or the publisher
-- leaves, and when the room's process ends. `participant_sid` is the subscriber, as in Twilio's
-- resource. `kind` and `name` are copied from the published track when the subscription is
-- recorded. `enabled` is 0/1. Portable between SQLite and PostgreSQL like 0011.
CREATE TABLE room_subscribed_tracks (
    account_sid TEXT NOT NULL,
    room_sid TEXT NOT NULL,
    participant_sid TEXT NOT NULL,
    sid TEXT NOT NULL,
    publisher_sid TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL,
    PRIMARY KEY (participant_sid, sid)
);
CREATE INDEX room_subscribed_tracks_list ON room_subscribed_tracks (account_sid, room_sid, participant_sid, date_created, sid);
CREATE INDEX room_subscribed_tracks_track ON room_subscribed_tracks (account_sid, room_sid, sid);
CREATE INDEX room_subscribed_tracks_publisher ON room_subscribed_tracks (account_sid, room_sid, publisher_sid);
