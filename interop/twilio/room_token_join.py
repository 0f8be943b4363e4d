#!/usr/bin/env python3
"""Joins a group room on a running mediaseal server as a Twilio customer would: creates an API
key with the official helper library (new_keys.create, POST .../Keys.json), a group room
(video.v1.rooms.create), signs an Access Token with that key (AccessToken + VideoGrant) and
sends it in `join` on the signalling WebSocket (/v1/Rooms/{RoomSid}/Connect, docs/ROOMS.md §3),
which must answer `joined`. Then deletes the key: the same token is refused with 20107.

Usage: room_token_join.py BASE_URL ACCOUNT_SID AUTH_TOKEN

Exits non-zero on the first failure. The last line of stdout is {"key_sid", "key_secret"}, so
the caller can check the secret is nowhere in the server's files.
"""
import asyncio
import json
import sys

import aiohttp
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VideoGrant
from twilio.rest import Client

BASE, AC, TOKEN = sys.argv[1:4]


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


async def first_answer(room_sid, token):
    url = BASE.replace("http", "ws", 1) + f"/v1/Rooms/{room_sid}/Connect"
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url) as ws:
            await ws.send_str(json.dumps({"type": "join", "token": token}))
            msg = await ws.receive(timeout=15)
            check(msg.type == aiohttp.WSMsgType.TEXT, f"an answer to join ({msg.type})")
            return json.loads(msg.data)


client = Client(AC, TOKEN)
for domain in (client.api, client.video):
    domain.base_url = BASE

key = client.new_keys.create(friendly_name="rooms")
check(key.sid.startswith("SK") and key.secret, "API key created with its secret")
room = client.video.v1.rooms.create(unique_name="standup", type="group")
check(room.sid.startswith("RM"), "group room created")

token = AccessToken(AC, key.sid, key.secret, identity="alice", ttl=3600)
token.add_grant(VideoGrant(room="standup"))
jwt = token.to_jwt()

answer = asyncio.run(first_answer(room.sid, jwt))
check(answer.get("type") == "joined", f"the token joins ({answer})")
check(answer.get("room_sid") == room.sid, "joined the room asked for")

check(client.keys(key.sid).delete() is True, "API key deleted")
answer = asyncio.run(first_answer(room.sid, jwt))
check(answer == {"type": "error", "code": 20107, "message": answer.get("message")},
      f"a deleted key's token is refused with 20107 ({answer})")

print(json.dumps({"key_sid": key.sid, "key_secret": key.secret}))
