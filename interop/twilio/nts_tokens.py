#!/usr/bin/env python3
"""Mints Network Traversal Service tokens on a running mediaseal server with the official Twilio
Python helper library, unchanged: client.tokens.create() and client.tokens.create(ttl=…), as
issue 12 asks. Checks the instance's fields, then prints one JSON line per token made:
{"username", "password", "ttl", "ice_servers"} for the caller to try against coturn.

Usage: nts_tokens.py BASE_URL ACCOUNT_SID AUTH_TOKEN TTL...

Exits non-zero on the first failure.
"""
import json
import sys

from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

BASE, AC, TOKEN = sys.argv[1:4]
TTLS = [int(t) for t in sys.argv[4:]]


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}", file=sys.stderr)


client = Client(AC, TOKEN)
client.api.base_url = BASE

default = client.tokens.create()
check(default.account_sid == AC, "account_sid is the account")
check(default.ttl == "86400", f"the default ttl is Twilio's 86400 (got {default.ttl!r})")
check(default.date_created is not None, "date_created parses as RFC 2822")
check(default.username.endswith(":" + AC), "username is <expiry>:<AccountSid>")
check(
    any(s.get("urls", "").startswith("turn:") and s.get("credential") == default.password
        for s in default.ice_servers),
    "a turn: server carries the password as its credential",
)

try:
    client.tokens.create(ttl=86401)
    check(False, "ttl=86401 is refused")
except TwilioRestException as e:
    check(e.status == 400 and "Ttl" in e.msg, f"ttl=86401 is refused naming Ttl ({e.status})")

for ttl in TTLS:
    t = client.tokens.create(ttl=ttl)
    check(t.ttl == str(ttl), f"ttl={ttl} is kept")
    print(json.dumps({"username": t.username, "password": t.password, "ttl": t.ttl,
                      "ice_servers": t.ice_servers}))
