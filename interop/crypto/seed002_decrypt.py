#!/usr/bin/env python3
"""Seed 002's decryption script, adapted only to take its inputs as arguments.

Performs RSA-OAEP decryption of AES key, then AES-GCM decryption of payload, exactly as the
Conversational Intelligence documentation does (RSA-OAEP with SHA-256 and MGF1-SHA-256, then
AES-GCM with the last 16 bytes of the body as the tag). The tag *is* verified: `modes.GCM(iv, tag)`
followed by `finalize()` raises `InvalidTag` on any mismatch, and then nothing is written.

Like the original it reads the whole ciphertext into memory.

usage: seed002_decrypt.py ENCRYPTED_KEY_B64 IV_B64 CIPHERTEXT_FILE PRIVATE_KEY_FILE OUT_FILE
exit status: 0 on success, 3 when the tag does not verify, 1 on any other failure.
"""

import base64
import sys
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def main(argv):
    if len(argv) != 6:
        print(__doc__, file=sys.stderr)
        return 1
    _, key_b64, iv_b64, ciphertext_file, private_key_file, out_file = argv

    # Decode base64 values
    encrypted_key = base64.b64decode(key_b64)
    iv = base64.b64decode(iv_b64)

    # Read encrypted file
    cipher_plus_tag = Path(ciphertext_file).read_bytes()

    # Read private key
    private_key_string = Path(private_key_file).read_text()
    rsa_private_key = serialization.load_pem_private_key(
        private_key_string.encode("utf-8"), password=None, backend=default_backend()
    )

    # RSA/ECB/OAEPWithSHA-256AndMGF1Padding equivalent
    raw_aes_key = rsa_private_key.decrypt(
        encrypted_key,
        padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None),
    )

    # AES/GCM decrypt the payload; the tag is the last 16 bytes
    ciphertext = cipher_plus_tag[:-16]
    tag = cipher_plus_tag[-16:]
    cipher = Cipher(algorithms.AES(raw_aes_key), modes.GCM(iv, tag), backend=default_backend())
    decryptor = cipher.decryptor()
    try:
        plaintext = decryptor.update(ciphertext) + decryptor.finalize()
    except InvalidTag:
        print("authentication tag mismatch", file=sys.stderr)
        return 3

    Path(out_file).write_bytes(plaintext)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
