#!/usr/bin/env python3
"""Rotates an account's auth token on a running mediaseal server with the official Twilio Python
helper library, unchanged: secondary_auth_token().create()/.delete() and
auth_token_promotion().update() (accounts v1), as issue 10 asks.

Usage: token_rotation.py BASE_URL ACCOUNT_SID AUTH_TOKEN

Exits non-zero on the first failure. The account's primary auth token has changed afterwards.
"""
import sys

from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

BASE, AC, TOKEN = sys.argv[1:4]


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


def client(user, password, account=None):
    c = Client(user, password, account)
    for domain in (c.api, c.accounts):
        domain.base_url = BASE
    return c


def status_of(call):
    try:
        call()
        return 200
    except TwilioRestException as e:
        return e.status


def fetch_account(c):
    return c.api.accounts(AC).fetch()


primary = client(AC, TOKEN)

# Nothing to delete yet.
check(status_of(lambda: primary.accounts.v1.secondary_auth_token().delete()) == 404,
      "deleting a secondary token that does not exist is 404")

made = primary.accounts.v1.secondary_auth_token().create()
check(made.account_sid == AC, "secondary token created for the account")
check(made.secondary_auth_token and made.secondary_auth_token != TOKEN, "a new token is returned")
check(made.date_created is not None and made.date_created.year >= 2024, "date_created parsed as ISO 8601")
check(made.url.endswith("/v1/AuthTokens/Secondary"), "url names the resource")
secondary = client(AC, made.secondary_auth_token)
check(fetch_account(secondary).sid == AC, "the secondary token authenticates")
check(fetch_account(primary).sid == AC, "the primary still authenticates")

check(primary.accounts.v1.secondary_auth_token().delete() is True, "secondary token deleted")
check(status_of(lambda: fetch_account(secondary)) == 401, "the deleted secondary is refused")

# An API key may not rotate the account's token.
key = primary.new_keys.create(friendly_name="rotation")
via_key = client(key.sid, key.secret, AC)
check(status_of(lambda: via_key.accounts.v1.secondary_auth_token().create()) == 403,
      "an API key gets 403 creating a secondary token")
check(status_of(lambda: via_key.accounts.v1.auth_token_promotion().update()) == 403,
      "an API key gets 403 promoting")

made = primary.accounts.v1.secondary_auth_token().create()
promoted = primary.accounts.v1.auth_token_promotion().update()
check(promoted.account_sid == AC, "promotion answers for the account")
check(promoted.auth_token == made.secondary_auth_token, "the secondary became the primary")
check(promoted.url.endswith("/v1/AuthTokens/Promote"), "url names the promotion")
check(status_of(lambda: fetch_account(primary)) == 401, "the old primary is refused after the promotion")
now = client(AC, promoted.auth_token)
check(fetch_account(now).auth_token == promoted.auth_token, "the new primary authenticates and is shown")
check(status_of(lambda: now.accounts.v1.auth_token_promotion().update()) == 404,
      "nothing left to promote")
print("ALL PASSED")
