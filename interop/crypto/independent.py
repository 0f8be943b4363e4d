#!/usr/bin/env python3
"""An implementation of mediaseal's four envelope formats written only from the seeds and
docs/FORMAT.md, on Python `cryptography` (OpenSSL), sharing no code with the Rust crates.

The test suite uses it in both directions: objects sealed here must open with `mediaseal decrypt`,
and native files sealed by mediaseal must open here.

usage:
  independent.py seal rsa-aes|s3-gcm|s3-cbc PUBLIC_KEY IN OUT DETAILS [KEY_SID]
      writes OUT (the body) and DETAILS (encryption_details JSON for rsa-aes, x-amz-meta-* header
      lines for s3-*)
  independent.py seal-native SEGMENT_LOG2 IN OUT PUBLIC_KEY[=KEY_ID] [PUBLIC_KEY[=KEY_ID] ...]
  independent.py open-native PRIVATE_KEY IN OUT
      exit status 3 when authentication fails (and OUT is not written)
"""

import base64
import hashlib
import json
import os
import struct
import sys
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, padding as sympadding, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"\x89MSEAL\r\n"
VERSION = 1
SUITE = 1
KIND_RSA_OAEP_SHA256 = 1
FIXED_LEN = 23
TAG = 16

OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


class AuthFailed(Exception):
    pass


def load_public(path):
    data = Path(path).read_bytes()
    if b"BEGIN RSA PUBLIC KEY" in data:
        return serialization.load_pem_public_key(data)
    return serialization.load_pem_public_key(data)


def fingerprint(public_key):
    spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).digest()


def seal_single(fmt, public_key_path, in_path, out_path, details_path, sid):
    pub = load_public(public_key_path)
    plaintext = Path(in_path).read_bytes()
    cek = os.urandom(32)
    b64 = lambda b: base64.b64encode(b).decode("ascii")
    if fmt in ("rsa-aes", "s3-gcm"):
        iv = os.urandom(12)
        body = AESGCM(cek).encrypt(iv, plaintext, None)  # ciphertext || 16-byte tag
        wrapped = pub.encrypt(cek, OAEP)
    elif fmt == "s3-cbc":
        iv = os.urandom(16)
        padder = sympadding.PKCS7(128).padder()
        padded = padder.update(plaintext) + padder.finalize()
        enc = Cipher(algorithms.AES(cek), modes.CBC(iv)).encryptor()
        body = enc.update(padded) + enc.finalize()
        wrapped = pub.encrypt(cek, padding.PKCS1v15())
    else:
        raise SystemExit(f"unknown format {fmt}")
    Path(out_path).write_bytes(body)
    if fmt == "rsa-aes":
        details = {"type": "rsa-aes", "public_key_sid": sid, "encrypted_cek": b64(wrapped), "iv": b64(iv)}
        Path(details_path).write_text(json.dumps(details))
    else:
        lines = [
            f"x-amz-meta-x-amz-key: {b64(wrapped)}",
            f"x-amz-meta-x-amz-iv: {b64(iv)}",
            f"x-amz-meta-x-amz-unencrypted-content-length: {len(plaintext)}",
            "x-amz-meta-x-amz-matdesc: {}",
        ]
        Path(details_path).write_text("\n".join(lines) + "\n")


def nonce(prefix, index, last):
    return prefix + struct.pack(">IB", index, 1 if last else 0)


def seal_native(segment_log2, in_path, out_path, recipients):
    plaintext = Path(in_path).read_bytes()
    cek = os.urandom(32)
    prefix = os.urandom(7)
    entries = b""
    for spec in recipients:
        path, _, key_id = spec.partition("=")
        pub = load_public(path)
        wrapped = pub.encrypt(cek, OAEP)
        kid = key_id.encode("ascii")
        entries += bytes([KIND_RSA_OAEP_SHA256, len(kid)]) + kid + fingerprint(pub)
        entries += struct.pack(">H", len(wrapped)) + wrapped
    total = FIXED_LEN + len(entries)
    header = MAGIC + bytes([VERSION, SUITE, segment_log2, len(recipients)]) + prefix
    header += struct.pack(">I", total) + entries
    aad = hashlib.sha256(header).digest()
    seg = 1 << segment_log2
    count = max(1, -(-len(plaintext) // seg))
    aead = AESGCM(cek)
    out = [header]
    for i in range(count):
        piece = plaintext[i * seg:(i + 1) * seg]
        out.append(aead.encrypt(nonce(prefix, i, i == count - 1), piece, aad))
    Path(out_path).write_bytes(b"".join(out))


def parse_header(data):
    if data[:8] != MAGIC:
        raise SystemExit("not a native file")
    version, suite, segment_log2, count = data[8], data[9], data[10], data[11]
    if version != VERSION or suite != SUITE or not 12 <= segment_log2 <= 24 or not 1 <= count <= 16:
        raise SystemExit("unsupported native header")
    prefix = data[12:19]
    (total,) = struct.unpack(">I", data[19:23])
    pos = FIXED_LEN
    recipients = []
    for _ in range(count):
        kind, id_len = data[pos], data[pos + 1]
        if kind != KIND_RSA_OAEP_SHA256:
            raise SystemExit("unknown recipient kind")
        pos += 2
        key_id = data[pos:pos + id_len].decode("ascii")
        pos += id_len
        fp = data[pos:pos + 32]
        pos += 32
        (wlen,) = struct.unpack(">H", data[pos:pos + 2])
        pos += 2
        recipients.append((key_id, fp, data[pos:pos + wlen]))
        pos += wlen
    if pos != total:
        raise SystemExit("header length mismatch")
    return segment_log2, prefix, recipients, total


def open_native(private_key_path, in_path, out_path):
    data = Path(in_path).read_bytes()
    segment_log2, prefix, recipients, header_len = parse_header(data)
    priv = serialization.load_pem_private_key(Path(private_key_path).read_bytes(), password=None)
    fp = fingerprint(priv.public_key())
    mine = [r for r in recipients if r[1] == fp]
    if not mine:
        raise SystemExit("the private key is not among the recipients")
    cek = priv.decrypt(mine[0][2], OAEP)
    aad = hashlib.sha256(data[:header_len]).digest()
    body = data[header_len:]
    stride = (1 << segment_log2) + TAG
    count = max(1, -(-len(body) // stride))
    aead = AESGCM(cek)
    out = []
    for i in range(count):
        piece = body[i * stride:(i + 1) * stride]
        last = i == count - 1
        if len(piece) < TAG or (len(piece) == TAG and i > 0) or (not last and len(piece) != stride):
            raise AuthFailed()
        try:
            out.append(aead.decrypt(nonce(prefix, i, last), piece, aad))
        except InvalidTag:
            raise AuthFailed()
    Path(out_path).write_bytes(b"".join(out))


def main(argv):
    try:
        if len(argv) >= 7 and argv[1] == "seal":
            seal_single(argv[2], argv[3], argv[4], argv[5], argv[6], argv[7] if len(argv) > 7 else None)
        elif len(argv) >= 6 and argv[1] == "seal-native":
            seal_native(int(argv[2]), argv[3], argv[4], argv[5:])
        elif len(argv) == 5 and argv[1] == "open-native":
            open_native(argv[2], argv[3], argv[4])
        else:
            print(__doc__, file=sys.stderr)
            return 1
    except AuthFailed:
        print("authentication failed", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
