"""Checks packet captures of a room call against what the aiortc peers recorded.

Reads a JSON request on stdin:
  {"captures": {name: pcap path}, "worker_ip": "10.79.0.1",
   "peers": [{"sid", "ip", "keys": [{"dir", "key", "profile"}], "sent_pcmu": [hex], ...}]}
and prints a JSON verdict:
  captures.<name>: every UDP datagram by RFC 7983 class (stun, dtls, srtp, srtcp, other),
      and how often any peer's plaintext PCMU payload (the canary) appears, whole or as any
      16-byte window;
  legs.<sid>: on the worker's capture, datagrams from the room to this peer that decrypt with
      this peer's inbound key, with another peer's inbound key, or with any peer's outbound
      key; and datagrams from this peer that decrypt with its outbound key;
  fanout: publisher packets (identified by their PCMU plaintext) seen on two subscriber legs,
      whether their ciphertexts differ, and whether either decrypts with the other leg's key.

SRTP is checked with libsrtp (PyPI pylibsrtp), independently of mediaseal and of str0m.
Captures are tcpdump -i any (LINUX_SLL2 link headers, 20 bytes) or Ethernet (14 bytes).
"""

import json
import struct
import sys
from itertools import combinations

from pylibsrtp import Error, Policy, Session


def datagrams(path):
    """(src ip, dst ip, udp payload) for each IPv4/UDP packet of a pcap file."""
    data = open(path, "rb").read()
    if len(data) < 24:
        return []
    magic, _, _, _, _, _, linktype = struct.unpack("<IHHiIII", data[:24])
    if magic != 0xA1B2C3D4:
        raise SystemExit(f"{path}: not a little-endian microsecond pcap")
    link_len = {276: 20, 113: 16, 1: 14}.get(linktype)
    if link_len is None:
        raise SystemExit(f"{path}: unsupported link type {linktype}")
    out, off = [], 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack("<IIII", data[off : off + 16])
        pkt = data[off + 16 : off + 16 + incl]
        off += 16 + incl
        ip = pkt[link_len:]
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 15) * 4
        src = ".".join(map(str, ip[12:16]))
        dst = ".".join(map(str, ip[16:20]))
        out.append((src, dst, bytes(ip[ihl + 8 :])))
    return out


def rfc7983(payload):
    if not payload:
        return "other"
    b = payload[0]
    if b <= 3:
        return "stun"
    if 20 <= b <= 63:
        return "dtls"
    if 128 <= b <= 191:
        if len(payload) > 1 and 192 <= payload[1] <= 223:
            return "srtcp"
        return "srtp"
    return "other"


def unprotect(key, packet):
    session = Session(
        Policy(
            key=bytes.fromhex(key["key"]),
            ssrc_type=Policy.SSRC_ANY_INBOUND,
            srtp_profile=key["profile"],
        )
    )
    try:
        return session.unprotect(packet)
    except Error:
        return None


def rtp_payload(packet):
    header = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10:
        (words,) = struct.unpack("!H", packet[header + 2 : header + 4])
        header += 4 + 4 * words
    end = len(packet)
    if packet[0] & 0x20:
        end -= packet[-1]
    return packet[1] & 0x7F, packet[header:end]


def key_of(peer, direction):
    return next(k for k in peer["keys"] if k["dir"] == direction)


def main():
    request = json.load(sys.stdin)
    peers = request["peers"]
    worker_ip = request["worker_ip"]
    canary_owner = {}
    for i, p in enumerate(peers):
        for h in p["sent_pcmu"]:
            canary_owner[bytes.fromhex(h)] = i
    windows = {c[o : o + 16] for c in canary_owner for o in range(0, 160 - 15, 16)}

    verdict = {"canaries": len(canary_owner), "captures": {}, "legs": {}, "fanout": {}}
    worker_datagrams = []
    for name, path in request["captures"].items():
        dgs = datagrams(path)
        classes = {"stun": 0, "dtls": 0, "srtp": 0, "srtcp": 0, "other": 0}
        for _, _, payload in dgs:
            classes[rfc7983(payload)] += 1
        raw = open(path, "rb").read()
        verdict["captures"][name] = {
            "udp": len(dgs),
            "classes": classes,
            "canary_full": sum(1 for c in canary_owner if c in raw),
            "canary_window": sum(1 for w in windows if w in raw),
        }
        if name == "worker":
            worker_datagrams = dgs

    # -i any sees each datagram on the bridge and on the veth port: keep one copy.
    unique = list(dict.fromkeys(worker_datagrams))
    by_ip = {p["ip"]: i for i, p in enumerate(peers)}
    in_keys = [key_of(p, "in") for p in peers]
    out_keys = [key_of(p, "out") for p in peers]
    legs = {p["sid"]: {"down": 0, "down_own_key": 0, "down_other_keys": 0,
                       "down_outbound_keys": 0, "up": 0, "up_own_key": 0} for p in peers}
    # publisher canary -> {subscriber index: ciphertext}
    seen = {}
    for src, dst, payload in unique:
        if rfc7983(payload) != "srtp":
            continue
        if src == worker_ip and dst in by_ip:
            k = by_ip[dst]
            leg = legs[peers[k]["sid"]]
            leg["down"] += 1
            plain = unprotect(in_keys[k], payload)
            if plain is not None:
                leg["down_own_key"] += 1
                pt, body = rtp_payload(plain)
                if pt == 0 and body in canary_owner:
                    seen.setdefault(body, {})[k] = payload
            # Cross-key checks on audio-sized packets only (video adds time, not coverage).
            if len(payload) < 400:
                for j in range(len(peers)):
                    if j != k and unprotect(in_keys[j], payload) is not None:
                        leg["down_other_keys"] += 1
                    if unprotect(out_keys[j], payload) is not None:
                        leg["down_outbound_keys"] += 1
        elif dst == worker_ip and src in by_ip:
            k = by_ip[src]
            leg = legs[peers[k]["sid"]]
            leg["up"] += 1
            if unprotect(out_keys[k], payload) is not None:
                leg["up_own_key"] += 1
    verdict["legs"] = legs

    pairs = equal = cross = 0
    for body, per_leg in seen.items():
        for a, b in combinations(sorted(per_leg), 2):
            pairs += 1
            if per_leg[a] == per_leg[b]:
                equal += 1
            if unprotect(in_keys[b], per_leg[a]) is not None:
                cross += 1
            if unprotect(in_keys[a], per_leg[b]) is not None:
                cross += 1
    verdict["fanout"] = {
        "publisher_packets_on_two_legs": pairs,
        "identical_ciphertexts": equal,
        "decrypted_with_other_leg_key": cross,
    }
    json.dump(verdict, sys.stdout)


main()
