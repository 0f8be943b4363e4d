"""Mints Access Tokens with twilio-python (the library customers use) for the token tests.

Reads {"now": unix seconds} on stdin and prints {"now", "account_sid", "api_key_sid",
"api_key_secret", "room_sid", "room_name", "tokens": {case: jwt}}. Each case is built with
twilio-python's AccessToken + VideoGrant; only `alg_none` needs PyJWT directly, since
twilio-python cannot produce an unsigned token.
"""

import json
import sys

import jwt as pyjwt
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VideoGrant, VoiceGrant

ACCOUNT = "AC" + "5" * 32
OTHER_ACCOUNT = "AC" + "6" * 32
KEY = "SK" + "7" * 32
OTHER_KEY = "SK" + "8" * 32
SECRET = "mediaseal-test-api-key-secret-0123456789"
ROOM_SID = "RM" + "9" * 32
ROOM_NAME = "daily-standup"

now = json.load(sys.stdin)["now"]


def token(grants=(), identity="alice", account=ACCOUNT, key=KEY, secret=SECRET, nbf=None,
          ttl=3600, valid_until=None, region=None, algorithm=None):
    t = AccessToken(account, key, secret, identity=identity, nbf=now if nbf is None else nbf,
                    ttl=ttl, valid_until=now + ttl if valid_until is None else valid_until,
                    region=region)
    for g in grants:
        t.add_grant(g)
    if algorithm:
        t.algorithm = algorithm
    return t.to_jwt()


def unsigned():
    signed = token([VideoGrant(room=ROOM_NAME)])
    payload = pyjwt.decode(signed, options={"verify_signature": False})
    return pyjwt.encode(payload, None, algorithm="none",
                        headers={"cty": "twilio-fpa;v=1", "typ": "JWT"})


tokens = {
    "room_by_name": token([VideoGrant(room=ROOM_NAME)]),
    "room_by_sid": token([VideoGrant(room=ROOM_SID)]),
    "any_room": token([VideoGrant()]),
    "with_region": token([VideoGrant()], region="ie1"),
    "max_ttl": token([VideoGrant()], ttl=86400),
    "other_room": token([VideoGrant(room="other-room")]),
    "expired": token([VideoGrant()], nbf=now - 7200, valid_until=now - 3600),
    "ttl_over_24h": token([VideoGrant()], ttl=86401),
    "not_yet_valid": token([VideoGrant()], nbf=now + 3600, valid_until=now + 7200),
    "bad_signature": token([VideoGrant()], secret="not-the-secret"),
    "unknown_key": token([VideoGrant()], key=OTHER_KEY),
    "other_account": token([VideoGrant()], account=OTHER_ACCOUNT),
    "alg_hs512": token([VideoGrant()], algorithm="HS512"),
    "alg_none": unsigned(),
    "no_identity": token([VideoGrant()], identity=None),
    "no_video_grant": token([VoiceGrant(outgoing_application_sid="AP" + "1" * 32)]),
}
json.dump({"now": now, "account_sid": ACCOUNT, "api_key_sid": KEY, "api_key_secret": SECRET,
           "room_sid": ROOM_SID, "room_name": ROOM_NAME, "tokens": tokens}, sys.stdout, indent=1)
