#!/usr/bin/env python3
"""Places a call on a running mediaseal server with the official Twilio Python helper library,
unchanged (issue 11): `client.calls.create(to=sip:…;secure=true, from_=…, twiml=…)`, then
fetches it until it has ended, finds it in `client.calls.list()`, and finds the recording that
`record=True` made among the call's recordings and the account's.

Usage: outbound_calls.py BASE_URL ACCOUNT_SID AUTH_TOKEN TO

Exits non-zero on the first failure.
"""
import sys
import time

from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

BASE, AC, TOKEN, TO = sys.argv[1:5]


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


c = Client(AC, TOKEN)
c.api.base_url = BASE

try:
    c.calls.create(to="+15550002222", from_="+15550001111", twiml="<Response><Hangup/></Response>")
    check(False, "a phone number is refused")
except TwilioRestException as e:
    check(e.status == 400 and e.code == 21211, f"a phone number is refused with 21211 ({e.code})")

call = c.calls.create(to=TO, from_="+15550001111", record=True, recording_channels="dual",
                      twiml="<Response><Pause length=\"2\"/><Hangup/></Response>")
check(call.sid.startswith("CA") and call.direction == "outbound-api", "call created, outbound-api")
check(call.to == TO and call._from == "+15550001111", f"To and From as given ({call.to!r}, {call._from!r})")
check(call.status in ("queued", "ringing", "in-progress"), f"created {call.status}")

deadline = time.time() + 20
while time.time() < deadline:
    call = c.calls(call.sid).fetch()
    if call.status in ("completed", "busy", "no-answer", "failed", "canceled"):
        break
    time.sleep(0.25)
check(call.status == "completed", f"the call completed ({call.status})")
check(call.start_time is not None and call.end_time is not None, "start and end times parsed")
check(any(x.sid == call.sid and x.direction == "outbound-api" for x in c.calls.list()),
      "the call is listed")

# `record=True` records from the answer; the sealed recording completes once the call has ended.
deadline = time.time() + 20
recs = []
while time.time() < deadline:
    recs = c.calls(call.sid).recordings.list()
    if recs and all(r.status in ("completed", "failed", "absent") for r in recs):
        break
    time.sleep(0.25)
check(len(recs) == 1, f"the call has one recording ({len(recs)})")
rec = recs[0]
check(rec.status == "completed", f"the recording completed ({rec.status})")
check(rec.sid.startswith("RE") and rec.call_sid == call.sid, "the recording names its call")
check(rec.source == "OutboundAPI", f"source OutboundAPI ({rec.source!r})")
check(rec.channels == 2, f"two channels ({rec.channels!r})")
check(1 <= int(rec.duration) <= 4, f"duration of the answered call ({rec.duration!r} s)")
check([r.sid for r in c.recordings.list(call_sid=call.sid)] == [rec.sid],
      "the account's recordings filtered by CallSid hold it")
check(c.recordings(rec.sid).fetch().call_sid == call.sid, "the recording fetched by its SID")
