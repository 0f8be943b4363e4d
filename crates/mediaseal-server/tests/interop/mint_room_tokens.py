"""Mints room Access Tokens with twilio-python (AccessToken + VideoGrant, as customers do) for
the signalling endpoint's tests.

Reads {"now", "account_sid", "api_key_sid", "api_key_secret", "room_name"} on stdin and prints
{case: jwt}.
"""

import json
import sys

from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VideoGrant

args = json.load(sys.stdin)
now = args["now"]


def token(identity, room=None, secret=None, key=None, nbf=None, valid_until=None):
    t = AccessToken(
        args["account_sid"],
        key or args["api_key_sid"],
        secret or args["api_key_secret"],
        identity=identity,
        nbf=now if nbf is None else nbf,
        ttl=3600,
        valid_until=now + 3600 if valid_until is None else valid_until,
    )
    t.add_grant(VideoGrant(room=room) if room else VideoGrant())
    return t.to_jwt()


room = args["room_name"]
print(
    json.dumps(
        {
            "alice": token("alice", room=room),
            "bob": token("bob", room=room),
            "any_room": token("carol"),
            "other_room": token("dave", room="some-other-room"),
            "bad_signature": token("erin", secret="not-the-secret-of-this-api-key-0123"),
            "unknown_key": token("frank", key="SK" + "0" * 32),
            "expired": token("grace", nbf=now - 7200, valid_until=now - 3600),
        }
    )
)
