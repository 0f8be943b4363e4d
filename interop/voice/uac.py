"""A scriptable SIP caller for the SIP edge tests (mediaseal-voice/tests).

Sends one INVITE with a canned SDP offer over TLS (Python `ssl`), TCP or UDP, answers digest
challenges (MD5), and after a 200 can stream SRTP (pylibsrtp) or RTP: a sine tone in G.711
u-law, RFC 4733 DTMF events inside SRTP, SRTCP with 32-bit tags (as baresip sends on _32
calls), and forgeries injected from a second socket (wrong key, replayed packets, plain RTP).
It decrypts what it receives and can write it to a WAV file. It prints one JSON object.

Usage: uac.py --transport tls --host 127.0.0.1 --port 5061 --ruri sip:alice@d.sip.x.test \
              --crypto "1 AES_CM_128_HMAC_SHA1_80 inline:KEY" [--media-seconds 3] ...
`KEY` in a crypto line is replaced by 30 random bytes, base64.
"""
import argparse
import base64
import hashlib
import json
import math
import os
import queue
import random
import re
import socket
import ssl
import struct
import sys
import threading
import time
import uuid
import wave

import pylibsrtp

P = pylibsrtp.Policy
PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": P.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": P.SRTP_PROFILE_AES128_CM_SHA1_32,
}


def ulaw(sample):
    BIAS, CLIP = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    if sample < 0:
        sample = -sample
    sample = min(sample, CLIP) + BIAS
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not (sample & mask):
        exponent -= 1
        mask >>= 1
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def ulaw_decode(b):
    u = ~b & 0xFF
    t = ((u & 0x0F) << 3) + 0x84
    t <<= (u & 0x70) >> 4
    return (0x84 - t) if (u & 0x80) else (t - 0x84)


class Sip:
    """One SIP transport to the edge, with a reader thread."""

    def __init__(self, transport, host, port, local_ip, ca):
        self.transport = transport
        self.dest = (host, port)
        self.inbox = queue.Queue()
        self.raw = []
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((local_ip, 0))
        else:
            raw = socket.create_connection((host, port), timeout=5, source_address=(local_ip, 0))
            if transport == "tls":
                ctx = ssl.create_default_context(cafile=ca) if ca else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                if not ca:
                    ctx.verify_mode = ssl.CERT_NONE
                raw = ctx.wrap_socket(raw)
            self.sock = raw
        self.sock.settimeout(None)
        self.local = self.sock.getsockname()
        threading.Thread(target=self._read, daemon=True).start()

    def send(self, data):
        if self.transport == "udp":
            self.sock.sendto(data, self.dest)
        else:
            self.sock.sendall(data)

    def _read(self):
        buf = b""
        while True:
            try:
                if self.transport == "udp":
                    data, _ = self.sock.recvfrom(65535)
                    self._deliver(data)
                    continue
                data = self.sock.recv(65535)
            except OSError:
                return
            if not data:
                return
            buf += data
            while True:
                buf = buf.lstrip(b"\r\n")
                if b"\r\n\r\n" not in buf:
                    break
                head, rest = buf.split(b"\r\n\r\n", 1)
                m = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
                n = int(m.group(1)) if m else 0
                if len(rest) < n:
                    break
                self._deliver(head + b"\r\n\r\n" + rest[:n])
                buf = rest[n:]

    def _deliver(self, data):
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode(errors="replace").split("\r\n")
        start = lines[0]
        headers = []
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers.append((k.strip(), v.strip()))
        self.raw.append(data)
        self.inbox.put((start, headers, body.decode(errors="replace")))

    def recv(self, timeout):
        return self.inbox.get(timeout=timeout)


def header(headers, name, compact=None):
    for k, v in headers:
        if k.lower() == name.lower() or (compact and k.lower() == compact):
            return v
    return None


def headers_all(headers, name):
    return [v for k, v in headers if k.lower() == name.lower()]


def parse_challenge(value):
    value = value.strip()
    scheme, _, rest = value.partition(" ")
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', rest))
    return scheme, params


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--transport", default="tls")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ruri", required=True)
    ap.add_argument("--local-ip", default="127.0.0.1")
    ap.add_argument("--ca")
    ap.add_argument("--from-user", default="bob")
    ap.add_argument("--proto", default="RTP/SAVP")
    ap.add_argument("--crypto", action="append", default=[])
    ap.add_argument("--no-sdp", action="store_true")
    ap.add_argument("--x-header", action="append", default=[])
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--media-seconds", type=float, default=0)
    ap.add_argument("--tone", type=float, default=440.0)
    ap.add_argument("--dtmf", default="")
    ap.add_argument("--dtmf-at", type=float, default=1.0)
    ap.add_argument("--rtcp32", action="store_true")
    ap.add_argument("--forge", action="store_true")
    ap.add_argument("--wait-bye", type=float, default=0)
    ap.add_argument("--record-out")
    ap.add_argument("--timeout", type=float, default=15)
    a = ap.parse_args()

    out = {"responses": [], "final": None, "warning": None, "answer_crypto": [], "offer_crypto": [],
           "got_bye": False, "rx_packets": 0, "rx_auth_fail": 0, "challenges": [], "answer_proto": None}
    sip = Sip(a.transport, a.host, a.port, a.local_ip, a.ca)
    lip, lport = sip.local
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind((a.local_ip, 0))
    rtp_port = rtp.getsockname()[1]
    call_id = uuid.uuid4().hex
    from_tag = uuid.uuid4().hex[:10]
    crypto_lines = []
    our_keys = {}
    for c in a.crypto:
        key = base64.b64encode(os.urandom(30)).decode()
        line = c.replace("KEY", key)
        crypto_lines.append(line)
        m = re.match(r"(\d+)\s+(\S+)\s+inline:([A-Za-z0-9+/=]+)", line)
        if m:
            our_keys[m.group(1)] = (m.group(2), base64.b64decode(m.group(3)))
    out["offer_crypto"] = crypto_lines
    sdp = ""
    if not a.no_sdp:
        sdp = (f"v=0\r\no=- 1 1 IN IP4 {lip}\r\ns=-\r\nc=IN IP4 {lip}\r\nt=0 0\r\n"
               f"m=audio {rtp_port} {a.proto} 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
               "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n"
               + "".join(f"a=crypto:{c}\r\n" for c in crypto_lines) + "a=sendrecv\r\n")
    via_t = {"tls": "TLS", "tcp": "TCP", "udp": "UDP"}[a.transport]
    contact_t = "" if a.transport == "udp" else f";transport={a.transport}"

    def request(method, cseq, body="", to_tag="", extra=(), branch=None, ruri=None):
        branch = branch or "z9hG4bK" + uuid.uuid4().hex[:12]
        h = (f"{method} {ruri or a.ruri} SIP/2.0\r\nVia: SIP/2.0/{via_t} {lip}:{lport};branch={branch};rport\r\n"
             f"Max-Forwards: 70\r\nFrom: <sip:{a.from_user}@{lip}>;tag={from_tag}\r\n"
             f"To: <{a.ruri}>{to_tag}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n"
             f"Contact: <sip:{a.from_user}@{lip}:{lport}{contact_t}>\r\n")
        for x in extra:
            h += x + "\r\n"
        if body:
            h += "Content-Type: application/sdp\r\n"
        return (h + f"Content-Length: {len(body.encode())}\r\n\r\n" + body).encode(), branch

    extra = list(a.x_header)
    cseq = 1
    invite, branch = request("INVITE", cseq, sdp, extra=extra)
    sip.send(invite)
    deadline = time.time() + a.timeout
    final = None
    authed = False
    while final is None and time.time() < deadline:
        try:
            start, headers, body = sip.recv(max(0.1, deadline - time.time()))
        except queue.Empty:
            break
        if not start.startswith("SIP/2.0"):
            continue
        code = int(start.split()[1])
        out["responses"].append(code)
        if code < 200:
            continue
        to = header(headers, "To", "t") or ""
        tag_m = re.search(r";tag=([^;\s>]+)", to)
        to_tag = f";tag={tag_m.group(1)}" if tag_m else ""
        # ACK every final response (for 2xx: a new transaction; for errors: same branch).
        if code >= 300:
            ack, _ = request("ACK", cseq, "", to_tag, branch=branch)
            sip.send(ack)
        if code == 401 and a.user and not authed:
            authed = True
            out["challenges"] = headers_all(headers, "WWW-Authenticate")
            chosen = None
            for v in out["challenges"]:
                scheme, p = parse_challenge(v)
                if p.get("algorithm", "MD5").upper() == "MD5":
                    chosen = p
            if chosen is None:
                break
            realm, nonce = chosen["realm"], chosen["nonce"]
            cnonce, nc = uuid.uuid4().hex[:16], "00000001"
            ha1 = hashlib.md5(f"{a.user}:{realm}:{a.password}".encode()).hexdigest()
            ha2 = hashlib.md5(f"INVITE:{a.ruri}".encode()).hexdigest()
            resp = hashlib.md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}".encode()).hexdigest()
            auth = (f'Authorization: Digest username="{a.user}", realm="{realm}", nonce="{nonce}", '
                    f'uri="{a.ruri}", response="{resp}", algorithm=MD5, qop=auth, nc={nc}, cnonce="{cnonce}"')
            cseq += 1
            invite, branch = request("INVITE", cseq, sdp, extra=extra + [auth])
            sip.send(invite)
            continue
        final = (code, headers, body, to_tag)
    if final is None:
        out["final"] = None
        print(json.dumps(out))
        return
    code, headers, body, to_tag = final
    out["final"] = code
    out["warning"] = header(headers, "Warning")
    for line in body.splitlines():
        if line.startswith("a=crypto:"):
            out["answer_crypto"].append(line[len("a=crypto:"):])
        if line.startswith("m=audio"):
            out["answer_proto"] = line.split()[2]
    if code != 200:
        print(json.dumps(out))
        return
    ack, _ = request("ACK", cseq, "", to_tag)
    sip.send(ack)

    # Media.
    m = re.search(r"(?m)^c=IN IP4 (\S+)", body)
    port_m = re.search(r"(?m)^m=audio (\d+)", body)
    remote = (m.group(1), int(port_m.group(1)))
    te_m = re.search(r"(?m)^a=rtpmap:(\d+) telephone-event", body)
    te_pt = int(te_m.group(1)) if te_m else None
    tx = rx = None
    profile = None
    if out["answer_crypto"]:
        am = re.match(r"(\d+)\s+(\S+)\s+inline:([A-Za-z0-9+/=]+)", out["answer_crypto"][0])
        tag, suite, their_key = am.group(1), am.group(2), base64.b64decode(am.group(3))
        profile = PROFILES[suite]
        _, our_key = our_keys[tag]
        tx = pylibsrtp.Session(P(key=our_key, ssrc_type=P.SSRC_ANY_OUTBOUND, srtp_profile=profile))
        rx = pylibsrtp.Session(P(key=their_key, ssrc_type=P.SSRC_ANY_INBOUND, srtp_profile=profile))
        wrong = pylibsrtp.Session(P(key=os.urandom(30), ssrc_type=P.SSRC_ANY_OUTBOUND, srtp_profile=profile))
    received = []
    stop = threading.Event()

    def receiver():
        rtp.settimeout(0.2)
        while not stop.is_set():
            try:
                data, _ = rtp.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(data) >= 2 and 192 <= data[1] <= 223:
                continue  # RTCP (mux)
            try:
                plain = rx.unprotect(data) if rx else data
            except pylibsrtp.Error:
                out["rx_auth_fail"] += 1
                continue
            out["rx_packets"] += 1
            if (plain[1] & 0x7F) == 0:
                received.extend(ulaw_decode(b) for b in plain[12:])

    threading.Thread(target=receiver, daemon=True).start()
    ssrc = random.getrandbits(32)
    seq = random.getrandbits(15)
    ts = random.getrandbits(31)
    phase = 0.0
    inject = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    inject.bind((a.local_ip, 0))
    sent_packets = []
    dtmf_events = []  # (start_time, digit)
    for i, d in enumerate(a.dtmf):
        dtmf_events.append((a.dtmf_at + i * 0.4, d))
    out["forged"] = {"wrong_key": 0, "replayed": 0, "plain": 0}
    t0 = time.time()
    n = int(a.media_seconds * 50)
    rtcp_sent = 0
    for i in range(n):
        now_rel = i * 0.02
        # DTMF: 5 event packets + 3 end packets, same timestamp, during a digit's window.
        ev = None
        for (st, d) in dtmf_events:
            k = int(round((now_rel - st) / 0.02))
            if 0 <= k < 8:
                ev = (d, k, st)
        if ev and te_pt is not None:
            d, k, st = ev
            code_ev = "0123456789*#".index(d)
            end = k >= 5
            dur = min(k + 1, 5) * 160
            start_ts = (ts - k * 160) & 0xFFFFFFFF if k < 5 else (ts - k * 160) & 0xFFFFFFFF
            hdr = struct.pack("!BBHII", 0x80, (0x80 if k == 0 else 0) | te_pt, seq, start_ts, ssrc)
            payload = struct.pack("!BBH", code_ev, (0x80 if end else 0) | 10, dur)
        else:
            hdr = struct.pack("!BBHII", 0x80, 0, seq, ts, ssrc)
            samples = []
            for _ in range(160):
                samples.append(int(12000 * math.sin(phase)))
                phase += 2 * math.pi * a.tone / 8000
            payload = bytes(ulaw(s) for s in samples)
        pkt = hdr + payload
        wire = tx.protect(pkt) if tx else pkt
        rtp.sendto(wire, remote)
        sent_packets.append(wire)
        if a.forge and i % 5 == 2 and i > 25:
            # Forgeries carry a 1500 Hz tone so a listener would hear them if they passed.
            fs = bytes(ulaw(int(16000 * math.sin(2 * math.pi * 1500 * j / 8000))) for j in range(160))
            fhdr = struct.pack("!BBHII", 0x80, 0, (seq + 3) & 0xFFFF, ts, ssrc)
            kind = (i // 5) % 3
            if kind == 0 and tx:
                inject.sendto(wrong.protect(fhdr + fs), remote)
                out["forged"]["wrong_key"] += 1
            elif kind == 1 and len(sent_packets) > 10:
                inject.sendto(sent_packets[-10], remote)
                out["forged"]["replayed"] += 1
            else:
                inject.sendto(fhdr + fs, remote)
                out["forged"]["plain"] += 1
        if a.rtcp32 and tx and i % 50 == 10:
            # An SRTCP receiver report with a 32-bit tag: libsrtp writes the 80-bit one; the
            # 32-bit tag is its first four bytes (same HMAC, truncated shorter).
            rr = struct.pack("!BBHI", 0x80, 201, 1, ssrc)
            prot = tx.protect_rtcp(rr)
            rtcp_port = remote[1]  # rtcp-mux not offered: RTCP goes to port + 1
            rtp.sendto(prot[:-10] + prot[-10:-6], (remote[0], rtcp_port + 1))
            rtcp_sent += 1
        seq = (seq + 1) & 0xFFFF
        ts = (ts + 160) & 0xFFFFFFFF
        delay = t0 + (i + 1) * 0.02 - time.time()
        if delay > 0:
            time.sleep(delay)
    out["rtcp32_sent"] = rtcp_sent
    # Wait for the server to hang up, or hang up ourselves.
    got_bye = False
    end_wait = time.time() + a.wait_bye
    while a.wait_bye and time.time() < end_wait:
        try:
            start, headers, body = sip.recv(max(0.05, end_wait - time.time()))
        except queue.Empty:
            break
        if start.startswith("BYE "):
            got_bye = True
            vias = headers_all(headers, "Via")
            resp = "SIP/2.0 200 OK\r\n" + "".join(f"Via: {v}\r\n" for v in vias)
            for name in ("From", "To", "Call-ID", "CSeq"):
                resp += f"{name}: {header(headers, name)}\r\n"
            resp += "Content-Length: 0\r\n\r\n"
            sip.send(resp.encode())
            break
    out["got_bye"] = got_bye
    if not got_bye:
        bye, _ = request("BYE", cseq + 1, "", to_tag)
        sip.send(bye)
        time.sleep(0.3)
    stop.set()
    time.sleep(0.25)
    if a.record_out:
        w = wave.open(a.record_out, "wb")
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(struct.pack("<%dh" % len(received), *received))
        w.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
