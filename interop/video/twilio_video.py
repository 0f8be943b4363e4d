"""Drives mediaseal's Video v1 surface with the official Twilio helper library (twilio-python).

Usage: twilio_video.py CONFIG.json  -> prints a JSON report on stdout, exits non-zero on failure.

CONFIG: {"base_url", "account_sid", "auth_token", "public_key_pem", "tracks": {"alice": PATH,
"bob": PATH, "carol": PATH}, "composition_seconds": EXPECTED}

The library is pointed at the server by setting `base_url` on its domain objects
(twilio-api.md section 8). Uploads of track media use `requests` (a dependency of twilio-python),
since the helper library has no upload call: the ingest door is mediaseal's own.
"""

import json
import sys
import time

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def main():
    cfg = json.load(open(sys.argv[1]))
    base = cfg["base_url"]
    sid, token = cfg["account_sid"], cfg["auth_token"]
    client = Client(sid, token)
    for domain in (client.video, client.accounts, client.api):
        domain.base_url = base
    v = client.video.v1
    report = {}

    key = client.accounts.v1.credentials.public_key.create(
        public_key=open(cfg["public_key_pem"]).read(), friendly_name="video key"
    )
    report["key_sid"] = key.sid

    # Settings: independent singletons; FriendlyName is required.
    fresh = v.recording_settings().fetch()
    check(fresh.encryption_enabled is False, "fresh recording settings are off")
    rs = v.recording_settings().create(friendly_name="rec", encryption_key_sid=key.sid, encryption_enabled=True)
    check(rs.encryption_enabled is True and rs.encryption_key_sid == key.sid, "recording settings stored")
    check(rs.url == base + "/v1/RecordingSettings/Default", "recording settings url: " + str(rs.url))
    cs = v.composition_settings().create(friendly_name="comp", encryption_key_sid=key.sid, encryption_enabled=True,
                                         aws_storage_enabled=False)
    check(cs.encryption_enabled is True, "composition settings stored")
    check(v.recording_settings().fetch().friendly_name == "rec", "recording settings unchanged by composition settings")
    try:
        v.recording_settings().create(friendly_name="bad", encryption_enabled=True)
        raise AssertionError("EncryptionEnabled without a key was accepted")
    except TwilioRestException as e:
        check(e.status == 400 and "EncryptionKeySid" in e.msg, "missing key refused: " + e.msg)

    room = v.rooms.create(unique_name="standup-%d" % time.time_ns(), type="group")
    check(room.sid.startswith("RM") and room.status == "in-progress", "room created")
    check(v.rooms(room.sid).fetch().unique_name == room.unique_name, "room fetched")
    check(v.rooms(room.unique_name).fetch().sid == room.sid, "room fetched by unique name")
    report["room_sid"] = room.sid

    def upload(name, path, offset):
        r = requests.post(
            "%s/v1/Rooms/%s/Recordings" % (base, room.sid),
            params={"ParticipantSid": "PA" + ("%032x" % abs(hash(name)))[:32], "TrackName": name + "-mic",
                    "Type": "audio", "Codec": "OPUS", "ContainerFormat": "mka", "Offset": str(offset)},
            data=open(path, "rb"),
            auth=(sid, token),
        )
        check(r.status_code == 201, "upload %s: %s %s" % (name, r.status_code, r.text))
        return r.json()

    carol = upload("carol", cfg["tracks"]["carol"], 0)  # sealed with the customer key
    v.recording_settings().create(friendly_name="rec", encryption_enabled=False)
    alice = upload("alice", cfg["tracks"]["alice"], 1000)
    bob = upload("bob", cfg["tracks"]["bob"], 2000)
    report["encrypted_recording_sid"] = carol["sid"]
    report["alice_sid"], report["bob_sid"] = alice["sid"], bob["sid"]

    # Recordings: fetch, list, filters, paging through absolute next_page_url.
    fetched = v.recordings(alice["sid"]).fetch()
    check(fetched.type == "audio" and fetched.container_format == "mka" and fetched.codec == "opus", "recording fields")
    check(fetched.grouping_sids["room_sid"] == room.sid, "grouping_sids")
    check(fetched.duration is not None and fetched.duration > 0, "duration known: %r" % fetched.duration)
    check(fetched.date_created is not None and not isinstance(fetched.date_created, str), "ISO date parsed")
    in_room = v.recordings.list(grouping_sid=[room.sid])
    check(sorted(r.sid for r in in_room) == sorted([carol["sid"], alice["sid"], bob["sid"]]), "grouping filter")
    paged = list(v.recordings.stream(grouping_sid=[room.sid], page_size=1))
    check(len(paged) == 3, "paging by one: %d" % len(paged))
    check(len(v.recordings.list(grouping_sid=[room.sid], media_type="video")) == 0, "media_type filter")
    check(len(v.rooms(room.sid).recordings.list()) == 3, "room-scoped list")
    check(v.rooms(room.sid).recordings(bob["sid"]).fetch().sid == bob["sid"], "room-scoped fetch")

    # Compositions: refused while the room is in progress, then refused for the encrypted track.
    try:
        v.compositions.create(room_sid=room.sid, audio_sources=["*"])
        raise AssertionError("composition of a room in progress was accepted")
    except TwilioRestException as e:
        check(e.status == 400, "in-progress room refused")
    done = v.rooms(room.sid).update(status="completed")
    check(done.status == "completed" and done.end_time is not None, "room completed")
    try:
        v.compositions.create(room_sid=room.sid, audio_sources=["*"])
        raise AssertionError("composition of an encrypted recording was accepted")
    except TwilioRestException as e:
        check(e.status == 400 and carol["sid"] in e.msg, "encrypted recording named: " + e.msg)
        report["encrypted_refusal"] = e.msg

    comp = v.compositions.create(room_sid=room.sid, audio_sources=["alice*", "bob*"], format="webm",
                                 status_callback="https://example.invalid/cb")
    check(comp.status in ("enqueued", "processing", "completed"), "composition queued: " + comp.status)
    deadline = time.time() + 180
    while True:
        comp = v.compositions(comp.sid).fetch()
        if comp.status in ("completed", "failed") or time.time() > deadline:
            break
        time.sleep(0.5)
    check(comp.status == "completed", "composition completed, got " + comp.status)
    check(abs(comp.duration - cfg["composition_seconds"]) <= 1, "composition duration %r" % comp.duration)
    check(comp.audio_sources == ["alice*", "bob*"] and comp.size > 0, "composition fields")
    check(any(c.sid == comp.sid for c in v.compositions.list(room_sid=room.sid)), "composition listed")
    report["composition_sid"] = comp.sid

    # /Media: 302 with the URL in the JSON body; client.request does not follow redirects.
    media = client.request("GET", "%s/v1/Compositions/%s/Media" % (base, comp.sid), params={"Ttl": 600})
    check(media.status_code == 302, "composition /Media status %d" % media.status_code)
    report["composition_media_url"] = json.loads(media.text)["redirect_to"]
    media = client.request("GET", "%s/v1/Recordings/%s/Media" % (base, carol["sid"]))
    check(media.status_code == 302, "recording /Media status %d" % media.status_code)
    report["encrypted_recording_media_url"] = json.loads(media.text)["redirect_to"]

    # Composition hooks.
    hook = v.composition_hooks.create(friendly_name="all-audio", audio_sources=["*"], format="mp4", enabled=False)
    check(hook.sid.startswith("HK") and hook.enabled is False and hook.format == "mp4", "hook created")
    check(v.composition_hooks(hook.sid).fetch().friendly_name == "all-audio", "hook fetched")
    hook = v.composition_hooks(hook.sid).update(friendly_name="renamed", audio_sources=["alice*"], enabled=True)
    check(hook.friendly_name == "renamed" and hook.enabled is True, "hook updated")
    check([h.sid for h in v.composition_hooks.list(enabled=True)] == [hook.sid], "hook listed")
    check(v.composition_hooks(hook.sid).delete() is True, "hook deleted")

    # Deleting a recording keeps its metadata, marked deleted, and destroys the media.
    check(v.recordings(bob["sid"]).delete() is True, "recording deleted")
    check(v.recordings(bob["sid"]).fetch().status == "deleted", "deleted recording shows status deleted")
    gone = client.request("GET", "%s/v1/Recordings/%s/Media" % (base, bob["sid"]))
    check(gone.status_code == 404, "deleted recording has no media")

    print(json.dumps(report))


if __name__ == "__main__":
    main()
