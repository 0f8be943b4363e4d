"""Reads a room's participants and their published and subscribed tracks with twilio-python, unchanged (the
library is pointed at the server by setting `base_url` on its Video domain), for the signalling
endpoint's end-to-end test.

Reads {"base_url", "account_sid", "auth_token", "room"} on stdin and prints
{"participants": [{sid, identity, status, room_sid, duration}],
 "by_identity": {identity: sid}, "tracks": {identity: [{sid, kind, name, enabled}]},
 "subscribed": {identity: [{sid, kind, name, enabled, participant_sid, publisher_sid}]}}.
"""

import json
import sys

from twilio.rest import Client

args = json.load(sys.stdin)
client = Client(args["account_sid"], args["auth_token"])
client.video.base_url = args["base_url"]
room = client.video.v1.rooms(args["room"])

out = {"participants": [], "by_identity": {}, "tracks": {}, "subscribed": {}}
for p in room.participants.list(status="connected"):
    out["participants"].append(
        {
            "sid": p.sid,
            "identity": p.identity,
            "status": p.status,
            "room_sid": p.room_sid,
            "duration": p.duration,
        }
    )
    fetched = room.participants(p.identity).fetch()
    out["by_identity"][p.identity] = fetched.sid
    out["tracks"][p.identity] = [
        {"sid": t.sid, "kind": t.kind, "name": t.name, "enabled": t.enabled}
        for t in room.participants(p.sid).published_tracks.list()
    ]
    out["subscribed"][p.identity] = [
        {
            "sid": t.sid,
            "kind": t.kind,
            "name": t.name,
            "enabled": t.enabled,
            "participant_sid": t.participant_sid,
            "publisher_sid": t.publisher_sid,
        }
        for t in room.participants(p.sid).subscribed_tracks.list()
    ]
print(json.dumps(out))
