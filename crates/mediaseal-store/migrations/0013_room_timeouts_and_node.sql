-- Rooms: Twilio's EmptyRoomTimeout and UnusedRoomTimeout (whole minutes, 1 to 60, default 5),
-- handed to the room's media process, and the node whose media process runs the room, so a
-- node starting again can fail the rooms its dead predecessor left in progress without
-- touching the rooms other nodes sharing the database run. `node` is NULL for rooms without a
-- media process (peer-to-peer, Go, or a server without room workers).

ALTER TABLE rooms ADD COLUMN empty_room_timeout BIGINT NOT NULL DEFAULT 5;
ALTER TABLE rooms ADD COLUMN unused_room_timeout BIGINT NOT NULL DEFAULT 5;
ALTER TABLE rooms ADD COLUMN node TEXT;
CREATE INDEX rooms_node ON rooms (node, status);
