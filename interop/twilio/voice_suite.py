#!/usr/bin/env python3
"""Drives a running mediaseal server with the official Twilio Python helper library, unchanged.

Usage: voice_suite.py BASE_URL ACCOUNT_SID AUTH_TOKEN WORKDIR MEDIASEAL_BIN

Covers public keys, recording settings (raw HTTP: not in the helper library), ingest (raw HTTP:
mediaseal's door), recording fetch/list across pages/delete, the error paths, and opening an
encrypted recording both with seed 002's Python decryption (tag verified) and with
`mediaseal decrypt`, using only what the API returned. Exits non-zero on the first failure.
"""
import base64
import json
import os
import subprocess
import sys
import urllib.request

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

BASE, AC, TOKEN, WORK, BIN = sys.argv[1:6]


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


def raw(method, path, body=None, ctype=None, auth=(AC, TOKEN)):
    req = urllib.request.Request(BASE + path, data=body, method=method)
    req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    if ctype:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


client = Client(AC, TOKEN)
for domain in (client.api, client.video, client.intelligence, client.accounts):
    domain.base_url = BASE

# Keys made by Python's cryptography, exported the way the seeds' openssl commands do.
private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
public_pem = private.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
).decode()
pkcs1_pem = private.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
)
key_path = os.path.join(WORK, "private_key.pem")
with open(key_path, "wb") as f:
    f.write(pkcs1_pem)

# --- public keys ---------------------------------------------------------------------------
pk = client.accounts.v1.credentials.public_key.create(public_key=public_pem, friendly_name="voice key")
check(pk.sid.startswith("CR") and len(pk.sid) == 34, "public key created with a CR SID")
check(pk.date_created is not None and pk.date_created.year >= 2024, "public key date parsed as ISO 8601")
extra = [client.accounts.v1.credentials.public_key.create(public_key=public_pem, friendly_name=f"k{i}") for i in range(2)]
listed = [k.sid for k in client.accounts.v1.credentials.public_key.list(page_size=1)]
check(set([pk.sid] + [k.sid for k in extra]) <= set(listed), "public keys listed across pages")
renamed = client.accounts.v1.credentials.public_key(extra[0].sid).update(friendly_name="renamed")
check(renamed.friendly_name == "renamed", "public key renamed")
check(client.accounts.v1.credentials.public_key(extra[1].sid).delete() is True, "public key deleted")
try:
    client.accounts.v1.credentials.public_key(extra[1].sid).fetch()
    check(False, "deleted key still fetchable")
except TwilioRestException as e:
    check(e.status == 404 and e.code == 20404, "deleted key is 404/20404")
try:
    pem_private = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    client.accounts.v1.credentials.public_key.create(public_key=pem_private)
    check(False, "private key accepted as public")
except TwilioRestException as e:
    check(e.status == 400 and "private key" in e.msg, "private key refused with a clear message")

# --- encryption on, ingest, fetch ----------------------------------------------------------
status, body = raw(
    "POST",
    f"/2010-04-01/Accounts/{AC}/RecordingSettings.json",
    f"EncryptionEnabled=true&EncryptionPublicKeySid={pk.sid}".encode(),
    "application/x-www-form-urlencoded",
)
check(status == 200 and json.loads(body)["encryption_enabled"] is True, "recording encryption enabled")

audio = b"RIFF" + os.urandom(100) + b"PLAINTEXT-MARKER-FOR-PYTHON" + os.urandom(200_000)
sids = []
for i in range(3):
    status, body = raw(
        "POST",
        f"/2010-04-01/Accounts/{AC}/Recordings.json?CallSid=CA{i:032x}&Channels=1",
        audio,
        "audio/x-wav",
    )
    check(status == 201, f"recording {i} ingested")
    sids.append(json.loads(body)["sid"])

rec = client.recordings(sids[0]).fetch()
check(rec.status == "completed", "recording fetched through the helper library")
check(rec.date_created.year >= 2024, "RFC 2822 date parsed")
details = rec.encryption_details
check(details["type"] == "rsa-aes" and details["public_key_sid"] == pk.sid, "encryption_details names the key")
check(len(details["encrypted_cek"]) == 344 and len(details["iv"]) == 16, "encryption_details sizes")

# Download the sealed media with Basic auth, as a customer would.
status, sealed = raw("GET", f"/2010-04-01/Accounts/{AC}/Recordings/{sids[0]}")
check(status == 200 and len(sealed) == len(audio) + 16, "sealed media downloaded")
check(b"PLAINTEXT-MARKER-FOR-PYTHON" not in sealed, "media is ciphertext")

# Seed 002's decryption, with the tag verified (modes.GCM(iv, tag) + finalize()).
cek = private.decrypt(
    base64.b64decode(details["encrypted_cek"]),
    padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None),
)
decryptor = Cipher(algorithms.AES(cek), modes.GCM(base64.b64decode(details["iv"]), sealed[-16:])).decryptor()
plain = decryptor.update(sealed[:-16]) + decryptor.finalize()
check(plain == audio, "seed-002 Python decryption opens the recording, tag verified")
tampered = bytearray(sealed)
tampered[10] ^= 1
try:
    d = Cipher(algorithms.AES(cek), modes.GCM(base64.b64decode(details["iv"]), bytes(tampered[-16:]))).decryptor()
    d.update(bytes(tampered[:-16])) + d.finalize()
    check(False, "tampered recording decrypted")
except Exception:
    check(True, "tampered recording rejected by the tag")

# mediaseal decrypt with the details exactly as the API returned them.
sealed_path = os.path.join(WORK, "sealed.bin")
details_path = os.path.join(WORK, "details.json")
out_path = os.path.join(WORK, "plain.wav")
with open(sealed_path, "wb") as f:
    f.write(sealed)
with open(details_path, "w") as f:
    json.dump(details, f)
subprocess.run([BIN, "decrypt", "--private-key", key_path, "--in", sealed_path, "--out", out_path, "--details", details_path], check=True)
with open(out_path, "rb") as f:
    check(f.read() == audio, "mediaseal decrypt opens the recording from the API's details")

# --- list across pages, filters, delete ----------------------------------------------------
all_sids = [r.sid for r in client.recordings.list(page_size=1)]
check(all_sids[:3] == list(reversed(sids)), "recordings listed newest first across pages of 1")
by_call = client.recordings.list(call_sid=f"CA{1:032x}")
check([r.sid for r in by_call] == [sids[1]], "CallSid filter")
check(client.recordings(sids[2]).delete() is True, "recording deleted")
try:
    client.recordings(sids[2]).fetch()
    check(False, "deleted recording still fetchable")
except TwilioRestException as e:
    check(e.status == 404 and e.code == 20404, "deleted recording is 404")
soft = client.recordings.list(include_soft_deleted=True)
check(any(r.sid == sids[2] and r.status == "deleted" for r in soft), "IncludeSoftDeleted shows status deleted")
status, _ = raw("GET", f"/2010-04-01/Accounts/{AC}/Recordings/{sids[2]}.wav")
check(status == 404, "deleted media is gone")

# --- error paths -----------------------------------------------------------------------------
bad = Client(AC, "wrong-token")
bad.api.base_url = BASE
try:
    bad.recordings.list()
    check(False, "bad credentials accepted")
except TwilioException as e:
    # List pages raise the generic exception carrying the HTTP response.
    check("401" in str(e) and "20003" in str(e), "bad credentials on a list: 401/20003")
try:
    bad.recordings(sids[0]).fetch()
    check(False, "bad credentials accepted")
except TwilioRestException as e:
    check(e.status == 401 and e.code == 20003, "bad credentials on a fetch: 401/20003")
try:
    client.recordings("RE" + "0" * 32).fetch()
    check(False, "missing recording fetched")
except TwilioRestException as e:
    check(e.status == 404 and e.code == 20404, "missing recording: 404/20404")
other = Client("AC" + "f" * 32, TOKEN)
other.api.base_url = BASE
try:
    other.recordings(sids[0]).fetch()
    check(False, "unknown account accepted")
except TwilioRestException as e:
    check(e.status == 401, "unknown account: 401")

# Subaccounts and API keys through the helper library.
sub = client.api.accounts.create(friendly_name="sub")
check(sub.sid.startswith("AC") and sub.owner_account_sid == AC, "subaccount created")
key = client.new_keys.create(friendly_name="ci key")
check(key.sid.startswith("SK") and key.secret, "API key created, secret shown once")
via_key = Client(key.sid, key.secret, AC)
via_key.api.base_url = BASE
check(via_key.recordings(sids[0]).fetch().sid == sids[0], "API key authenticates")
keys = [k.sid for k in client.keys.list()]
check(key.sid in keys, "API key listed")
check(client.keys(key.sid).delete() is True, "API key deleted")
try:
    via_key.recordings(sids[0]).fetch()
    check(False, "deleted API key still authenticates")
except TwilioRestException as e:
    check(e.status == 401, "deleted API key refused")
print("ALL PASSED")
