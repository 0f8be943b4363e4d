"""Drives mediaseal's Conversational Intelligence v2 surface with the official Twilio helper
library (twilio-python), unchanged, and opens the encrypted sentences with seed 002's own
decryption steps. Language operators: the built-in PII operator and a custom phrase-matching one
are attached to both services; the encrypted operator results are downloaded and opened with
seed 002's script (interop/crypto/seed002_decrypt.py), the plain ones read through the library.

Usage: twilio_intelligence.py CONFIG.json  -> prints a JSON report on stdout, exits non-zero on
failure.

CONFIG: {"base_url", "account_sid", "auth_token", "public_key_pem", "private_key_pem",
"recording_wav"}

The library is pointed at the server by setting `base_url` on its domain objects
(twilio-api.md section 8). The recording is uploaded with `requests` (a dependency of
twilio-python): the ingest door is mediaseal's own.
"""

import base64
import json
import subprocess
import sys
import time
from pathlib import Path

import requests
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def seed_002_decrypt(encrypted_key_b64, iv_b64, cipher_plus_tag, private_key_pem):
    """DecryptScript.main of seed 002, with its inputs passed in instead of edited in."""
    encrypted_key = base64.b64decode(encrypted_key_b64)
    iv = base64.b64decode(iv_b64)
    rsa_private_key = serialization.load_pem_private_key(
        private_key_pem.encode("utf-8"), password=None, backend=default_backend()
    )
    raw_aes_key = rsa_private_key.decrypt(
        encrypted_key,
        padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None),
    )
    ciphertext = cipher_plus_tag[:-16]
    tag = cipher_plus_tag[-16:]
    cipher = Cipher(algorithms.AES(raw_aes_key), modes.GCM(iv, tag), backend=default_backend())
    decryptor = cipher.decryptor()
    return decryptor.update(ciphertext) + decryptor.finalize()


PII_OPERATOR = "LY00000000000000000000000000000001"
SEED_SCRIPT = Path(__file__).resolve().parent.parent / "crypto" / "seed002_decrypt.py"


def seed_002_script(encrypted_key_b64, iv_b64, cipher_plus_tag, private_key_file, work, name):
    """Opens one download with seed 002's script, run as a program on files in `work`."""
    cipher_file = Path(work) / (name + ".enc")
    out_file = Path(work) / (name + ".json")
    cipher_file.write_bytes(cipher_plus_tag)
    done = subprocess.run(
        [sys.executable, str(SEED_SCRIPT), encrypted_key_b64, iv_b64, str(cipher_file),
         private_key_file, str(out_file)],
        capture_output=True,
    )
    check(done.returncode == 0, "seed script: %s" % done.stderr.decode(errors="replace"))
    return json.loads(out_file.read_bytes())


def attach_operators(v2, service_sid, custom_sid):
    v2.operator_attachment(service_sid, PII_OPERATOR).create()
    v2.operator_attachment(service_sid, custom_sid).create()
    attached = v2.operator_attachments(service_sid).fetch().operator_sids
    check(attached == [PII_OPERATOR, custom_sid], "operators attached: %s" % attached)
    check(v2.services(service_sid).fetch().read_only_attached_operator_sids == attached,
          "service lists its operators")


def wait_done(v2, sid):
    deadline = time.time() + 300
    while True:
        t = v2.transcripts(sid).fetch()
        if t.status not in ("queued", "in-progress"):
            return t
        check(time.time() < deadline, "transcript %s stuck in %s" % (sid, t.status))
        time.sleep(0.3)


def main():
    cfg = json.load(open(sys.argv[1]))
    base = cfg["base_url"]
    sid, token = cfg["account_sid"], cfg["auth_token"]
    client = Client(sid, token)
    for domain in (client.intelligence, client.accounts, client.api):
        domain.base_url = base
    v2 = client.intelligence.v2
    report = {}

    key = client.accounts.v1.credentials.public_key.create(
        public_key=open(cfg["public_key_pem"]).read(), friendly_name="transcripts"
    )

    # A recording sealed at rest (the account has no voice recording encryption).
    wav = Path(cfg["recording_wav"]).read_bytes()
    r = requests.post(
        "%s/2010-04-01/Accounts/%s/Recordings.json" % (base, sid),
        data=wav,
        headers={"Content-Type": "audio/x-wav"},
        auth=(sid, token),
    )
    check(r.status_code == 201, "recording ingested: %s %s" % (r.status_code, r.text))
    recording_sid = r.json()["sid"]

    # Services: create, fetch, update with If-Match, DataLogging refused.
    encrypted = v2.services.create(
        unique_name="encrypted-%d" % time.time_ns(), friendly_name="with my key",
        encryption_credential_sid=key.sid,
    )
    check(encrypted.sid.startswith("GA") and encrypted.encryption_credential_sid == key.sid, "service created")
    check(encrypted.data_logging is False and encrypted.version == 1, "service defaults")
    fetched = v2.services(encrypted.sid).fetch()
    check(fetched.unique_name == encrypted.unique_name, "service fetched")
    updated = v2.services(encrypted.sid).update(friendly_name="renamed", if_match='"1"')
    check(updated.friendly_name == "renamed" and updated.version == 2, "service updated")
    try:
        v2.services(encrypted.sid).update(friendly_name="stale", if_match='"1"')
        raise AssertionError("a stale If-Match was accepted")
    except TwilioRestException as e:
        check(e.status == 412, "stale If-Match refused: %s" % e.status)
    try:
        v2.services.create(unique_name="logging-%d" % time.time_ns(), data_logging=True)
        raise AssertionError("DataLogging=true was accepted")
    except TwilioRestException as e:
        check(e.status == 400 and "DataLogging" in e.msg, "DataLogging refused: " + e.msg)
    plain = v2.services.create(unique_name="plain-%d" % time.time_ns())
    names = [s.sid for s in v2.services.list()]
    check(encrypted.sid in names and plain.sid in names, "services listed")

    # Operators: the built-in types and PII operator, and a custom phrase-matching one.
    types = [t.name for t in v2.operator_type.list()]
    check("pii-extraction" in types and "phrase-matching" in types, "operator types: %s" % types)
    check(PII_OPERATOR in [o.sid for o in v2.operators.list()], "built-in PII operator listed")
    custom = v2.custom_operators.create(
        friendly_name="card talk", operator_type="phrase-matching",
        config={"configuration": {"phrases": ["card number"]}},
    )
    check(custom.sid.startswith("LY") and custom.version == 1, "custom operator created")
    check(v2.custom_operators(custom.sid).fetch().friendly_name == "card talk", "custom operator fetched")
    try:
        v2.custom_operators.create(friendly_name="bad", operator_type="phrase-matching",
                                   config={"configuration": {"phrase": ["x"]}})
        raise AssertionError("a bad Config was accepted")
    except TwilioRestException as e:
        check(e.status == 400 and "configuration.phrase" in e.msg, "bad Config refused: " + e.msg)
    attach_operators(v2, encrypted.sid, custom.sid)
    attach_operators(v2, plain.sid, custom.sid)

    channel = {
        "media_properties": {"source_sid": recording_sid},
        "participants": [{"channel_participant": 1, "role": "Customer"}],
    }

    # With the customer's key: plain sentences refused, encrypted sentences opened by the seed.
    t = v2.transcripts.create(service_sid=encrypted.sid, channel=channel, customer_key="case-7")
    check(t.sid.startswith("GT") and t.status == "queued", "transcript created: %s" % t.status)
    t = wait_done(v2, t.sid)
    check(t.status == "completed", "encrypted transcript completed: %s" % t.status)
    check(t.encryption_credential_sid == key.sid and t.customer_key == "case-7", "transcript fields")
    try:
        v2.transcripts(t.sid).sentences.list()
        raise AssertionError("plain sentences of an encrypted transcript were served")
    except TwilioException as e:
        # A list page that fails raises the base exception with the response as its argument.
        check("HTTP 403" in str(e) and "Sentences/Encrypted" in str(e), "plain sentences refused: %s" % e)
    enc = v2.transcripts(t.sid).encrypted_sentences().fetch()
    check(enc.transcript_sid == t.sid, "encrypted sentences resource")
    download = requests.get(enc.location)
    check(download.status_code == 200, "download: %s" % download.status_code)
    plaintext = seed_002_decrypt(
        download.headers["x-amz-meta-x-amz-key"],
        download.headers["x-amz-meta-x-amz-iv"],
        download.content,
        open(cfg["private_key_pem"]).read(),
    )
    sentences = json.loads(plaintext)["sentences"]
    check(sentences and all(s["sid"].startswith("GX") for s in sentences), "decrypted sentences")
    report["encrypted_text"] = " ".join(s["transcript"] for s in sentences)

    # Encrypted operator results: one download per result, each opened by the seed's script.
    try:
        v2.transcripts(t.sid).operator_results.list()
        raise AssertionError("plain operator results of an encrypted transcript were served")
    except TwilioException as e:
        check("HTTP 403" in str(e) and "OperatorResults/Encrypted" in str(e), "plain results refused: %s" % e)
    enc_results = v2.transcripts(t.sid).encrypted_operator_results().fetch()
    check(enc_results.transcript_sid == t.sid and len(enc_results.locations) == 2,
          "encrypted operator results: %s" % enc_results.locations)
    work = Path(cfg["private_key_pem"]).parent
    opened = []
    for i, location in enumerate(enc_results.locations):
        d = requests.get(location)
        check(d.status_code == 200, "result download: %s" % d.status_code)
        opened.append(seed_002_script(
            d.headers["x-amz-meta-x-amz-key"], d.headers["x-amz-meta-x-amz-iv"], d.content,
            cfg["private_key_pem"], work, "result%d" % i,
        ))
    pii = [r for r in opened if r["operator_sid"] == PII_OPERATOR]
    check(len(pii) == 1 and pii[0]["operator_type"] == "pii-extract", "PII result opened")
    report["encrypted_cards"] = pii[0]["extract_results"].get("CREDIT_CARD", [])
    report["encrypted_phones"] = pii[0]["extract_results"].get("PHONE_NUMBER", [])

    # Without a key: plain sentences through the library, with words.
    t2 = v2.transcripts.create(service_sid=plain.sid, channel=channel)
    t2 = wait_done(v2, t2.sid)
    check(t2.status == "completed" and t2.encryption_credential_sid is None, "plain transcript completed")
    listed = v2.transcripts(t2.sid).sentences.list(word_timestamps=True, page_size=2)
    check(listed, "plain sentences listed")
    check(all(isinstance(s.media_channel, int) for s in listed), "sentence channels")
    check(listed[0].words, "words with WordTimestamps")
    report["plain_text"] = " ".join(s.transcript for s in listed)
    results = v2.transcripts(t2.sid).operator_results.list()
    check(len(results) == 2, "plain operator results: %d" % len(results))
    by_sid = {r.operator_sid: r for r in results}
    pii = by_sid[PII_OPERATOR]
    check(pii.operator_type == "pii-extract" and pii.transcript_sid == t2.sid, "plain PII result")
    report["plain_cards"] = pii.extract_results.get("CREDIT_CARD", [])
    one = v2.transcripts(t2.sid).operator_results(custom.sid).fetch()
    check(one.operator_type == "extract" and one.name == "card talk", "one plain result")
    report["phrase_match"] = one.extract_match
    try:
        v2.transcripts(t2.sid).encrypted_sentences().fetch()
        raise AssertionError("encrypted sentences of a plain transcript were served")
    except TwilioRestException as e:
        check(e.status == 400, "encrypted sentences refused: %s" % e.status)

    ours = [x.sid for x in v2.transcripts.list(service_sid=plain.sid)]
    check(ours == [t2.sid], "transcripts listed by service: %s" % ours)
    check(v2.transcripts(t2.sid).delete() is True, "transcript deleted")
    check(v2.services(plain.sid).delete() is True, "service deleted")
    check(v2.custom_operators(custom.sid).delete() is True, "custom operator deleted")
    report["transcripts"] = [t.sid, t2.sid]
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
