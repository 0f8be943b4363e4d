#!/usr/bin/env python3
"""libsrtp peer for mediaseal-srtp's interop tests (crates/mediaseal-srtp/tests/libsrtp_interop.rs).

Reads one JSON request on stdin and writes one JSON response on stdout. The request names
libsrtp sessions (through PyPI pylibsrtp, which bundles libsrtp 2.7 + OpenSSL) and a list of
operations run in order against them:

  {"sessions": {"<name>": {"profile": "AES_CM_128_HMAC_SHA1_80", "key": "<hex key||salt>",
                           "direction": "out" | "in", "window": 128}},
   "ops": [{"op": "protect_rtp" | "unprotect_rtp" | "protect_rtcp" | "unprotect_rtcp",
            "session": "<name>", "data": "<hex>"},
           {"op": "retag_srtcp_32", "profile": "...", "key": "<hex>", "data": "<hex>"}]}

Response: {"results": [{"ok": true, "data": "<hex>"} | {"ok": false, "error": "<libsrtp msg>"}]}

`retag_srtcp_32` does not use libsrtp: it re-authenticates an SRTCP packet (80-bit tag) with a
32-bit tag, as baresip and Asterisk send on AES_CM_128_HMAC_SHA1_32 calls, deriving the SRTCP
auth key with the RFC 3711 KDF via pyca/cryptography (an implementation independent of ours).
"""

import hashlib
import hmac
import json
import sys

try:
    import pylibsrtp
except ImportError as e:  # pragma: no cover - reported to the Rust test
    sys.stderr.write(
        f"pylibsrtp is not importable ({e}); run scripts/setup.sh to create .venv with "
        "interop/requirements.txt\n"
    )
    sys.exit(3)

P = pylibsrtp.Policy
PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": P.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": P.SRTP_PROFILE_AES128_CM_SHA1_32,
    "AEAD_AES_128_GCM": P.SRTP_PROFILE_AEAD_AES_128_GCM,
    "AEAD_AES_256_GCM": P.SRTP_PROFILE_AEAD_AES_256_GCM,
}


def kdf(master_key: bytes, master_salt: bytes, label: int, n: int) -> bytes:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    salt = bytearray(master_salt.ljust(14, b"\0"))
    salt[7] ^= label
    enc = Cipher(algorithms.AES(master_key), modes.CTR(bytes(salt) + b"\0\0")).encryptor()
    return enc.update(b"\0" * n)


def retag_srtcp_32(profile: str, key: bytes, pkt: bytes) -> bytes:
    key_len = 32 if "256" in profile else 16
    auth_key = kdf(key[:key_len], key[key_len:], 4, 20)
    body = pkt[:-10]  # header ‖ ciphertext ‖ E|index, without the 80-bit tag
    return body + hmac.new(auth_key, body, hashlib.sha1).digest()[:4]


def main() -> None:
    req = json.load(sys.stdin)
    sessions = {}
    for name, s in req.get("sessions", {}).items():
        ssrc_type = P.SSRC_ANY_OUTBOUND if s["direction"] == "out" else P.SSRC_ANY_INBOUND
        policy = P(key=bytes.fromhex(s["key"]), ssrc_type=ssrc_type,
                   srtp_profile=PROFILES[s["profile"]])
        policy.window_size = s.get("window", 128)
        sessions[name] = pylibsrtp.Session(policy)
    results = []
    for op in req["ops"]:
        data = bytes.fromhex(op["data"])
        try:
            if op["op"] == "retag_srtcp_32":
                out = retag_srtcp_32(op["profile"], bytes.fromhex(op["key"]), data)
            else:
                # pylibsrtp names: protect/unprotect (RTP), protect_rtcp/unprotect_rtcp.
                method = op["op"].removesuffix("_rtp")
                out = getattr(sessions[op["session"]], method)(data)
            results.append({"ok": True, "data": out.hex()})
        except pylibsrtp.Error as e:
            results.append({"ok": False, "error": str(e)})
    json.dump({"results": results}, sys.stdout)


if __name__ == "__main__":
    main()
