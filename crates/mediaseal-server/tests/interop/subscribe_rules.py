"""Sets and reads a room participant's subscribe rules with twilio-python, unchanged (pointed at
the server by setting `base_url` on its Video domain), for the subscribe rules end-to-end test.

Reads {"base_url", "account_sid", "auth_token", "room", "participant", "rules"} on stdin; when
"rules" is not null it calls `rooms(room).participants(participant).subscribe_rules
.update(rules=...)`, then `.fetch()`. Prints {"updated": resource or null, "fetched": resource},
each {participant_sid, room_sid, rules, date_created, date_updated} with the dates as ISO 8601
strings (or null).
"""

import json
import sys

from twilio.rest import Client


def shown(instance):
    return {
        "participant_sid": instance.participant_sid,
        "room_sid": instance.room_sid,
        "rules": instance.rules,
        "date_created": instance.date_created.isoformat() if instance.date_created else None,
        "date_updated": instance.date_updated.isoformat() if instance.date_updated else None,
    }


args = json.load(sys.stdin)
client = Client(args["account_sid"], args["auth_token"])
client.video.base_url = args["base_url"]
rules = client.video.v1.rooms(args["room"]).participants(args["participant"]).subscribe_rules
updated = None
if args.get("rules") is not None:
    updated = shown(rules.update(rules=args["rules"]))
print(json.dumps({"updated": updated, "fetched": shown(rules.fetch())}))
