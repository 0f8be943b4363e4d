"""A SIP-over-TLS callee for the SIP edge tests: it checks what mediaseal sends for
`<Sip>sip:…;secure=true</Sip>`.

Listens on HOST:5061 with the given certificate, accepts one INVITE, records the offer
(transport, m= line, every a=crypto line), answers 200 with its own SRTP key (or --status),
receives SRTP for a while (decrypting with the offered key), then waits for the BYE or sends
one (reporting the edge's answer to it as `bye_response`). Prints one JSON object; when the TLS handshake fails (an edge that does not trust our
certificate), it says so. It sends silence, or a sine of --tone Hz; it accepts the
telephone-event payload type of the offer and reports the RFC 4733 keys it receives
(`rx_digits`, one per event).

With --digest user:pass it first answers 401 with an MD5 digest challenge and reports whether
the INVITE that follows answered it (`auth`: "ok", or "failed" and a 403).

Usage: tls_uas.py --host 127.0.0.3 --cert cert.pem --key key.pem [--status 200] [--hold 2]
       [--tone 1000] [--digest user:pass]
"""
import argparse
import base64
import hashlib
import json
import math
import os
import re
import socket
import ssl
import struct
import threading
import time
import uuid

import pylibsrtp

P = pylibsrtp.Policy
KEYS = "0123456789*#ABCD"


def ulaw(sample):
    """G.711 mu-law of a 16-bit sample."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent = 7
    while exponent > 0 and not magnitude & (0x4000 >> (7 - exponent)):
        exponent -= 1
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def read_message(conn, buf):
    while True:
        buf = buf.lstrip(b"\r\n")
        if b"\r\n\r\n" in buf:
            head, rest = buf.split(b"\r\n\r\n", 1)
            m = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
            n = int(m.group(1)) if m else 0
            if len(rest) >= n:
                return head.decode(errors="replace"), rest[:n].decode(errors="replace"), rest[n:]
        data = conn.recv(65535)
        if not data:
            raise EOFError
        buf += data


def headers_of(head):
    lines = head.split("\r\n")
    hs = []
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            hs.append((k.strip(), v.strip()))
    return lines[0], hs


def get(hs, name):
    for k, v in hs:
        if k.lower() == name.lower():
            return v
    return None


def response(hs, code, reason, to_tag, body="", contact=None, extra=""):
    r = f"SIP/2.0 {code} {reason}\r\n"
    for k, v in hs:
        if k.lower() == "via":
            r += f"Via: {v}\r\n"
    r += f"From: {get(hs, 'From')}\r\n"
    to = get(hs, "To")
    if to_tag and ";tag=" not in to:
        to += f";tag={to_tag}"
    r += f"To: {to}\r\nCall-ID: {get(hs, 'Call-ID')}\r\nCSeq: {get(hs, 'CSeq')}\r\n"
    if contact:
        r += f"Contact: {contact}\r\n"
    r += extra
    if body:
        r += "Content-Type: application/sdp\r\n"
    r += f"Content-Length: {len(body.encode())}\r\n\r\n{body}"
    return r.encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, default=5061)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--status", type=int, default=200)
    ap.add_argument("--hold", type=float, default=2.0)
    ap.add_argument("--timeout", type=float, default=15)
    ap.add_argument("--tone", type=float, default=0, help="send a sine of this frequency")
    ap.add_argument("--digest", default=None,
                    help="user:pass: challenge the INVITE with 401 (MD5, qop=auth) once")
    a = ap.parse_args()
    out = {"listening": True, "handshake_failed": False, "invite": False, "request_uri": None,
           "via": None, "offer_proto": None, "offer_crypto": [], "answer_crypto": None,
           "rx_packets": 0, "rx_auth_fail": 0, "rx_digits": "", "got_bye": False,
           "bye_response": None, "auth": None}
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((a.host, a.port))
    srv.listen(4)
    srv.settimeout(a.timeout)
    print("READY", flush=True)
    deadline = time.time() + a.timeout
    conn = None
    while time.time() < deadline:
        try:
            raw, _ = srv.accept()
        except socket.timeout:
            break
        try:
            conn = ctx.wrap_socket(raw, server_side=True)
            break
        except (ssl.SSLError, OSError) as e:
            out["handshake_failed"] = True
            out["handshake_error"] = str(e)[:200]
            continue
    if conn is None:
        print(json.dumps(out), flush=True)
        return
    conn.settimeout(max(1.0, deadline - time.time()))
    buf = b""
    head, body, buf = read_message(conn, buf)
    start, hs = headers_of(head)
    if not start.startswith("INVITE "):
        print(json.dumps(out), flush=True)
        return
    out["invite"] = True
    if a.digest:
        # 401 with an MD5 challenge; the INVITE that follows must answer it (RFC 2617, qop=auth).
        user, password = a.digest.split(":", 1)
        realm, nonce = "callee.test", uuid.uuid4().hex
        challenge = (f'WWW-Authenticate: Digest realm="{realm}", nonce="{nonce}", '
                     f'qop="auth", algorithm=MD5\r\n')
        conn.sendall(response(hs, 401, "Unauthorized", uuid.uuid4().hex[:8], extra=challenge))
        try:
            head, body, buf = read_message(conn, buf)  # the ACK
            head, body, buf = read_message(conn, buf)
        except (socket.timeout, ssl.SSLError, EOFError, OSError):
            out["auth"] = "no retry"
            print(json.dumps(out), flush=True)
            return
        start, hs = headers_of(head)
        creds = dict(re.findall(r'(\w+)="?([^",]*)"?', get(hs, "Authorization") or ""))
        md5 = lambda t: hashlib.md5(t.encode()).hexdigest()
        ha1 = md5(f"{user}:{realm}:{password}")
        ha2 = md5(f"INVITE:{creds.get('uri', '')}")
        want = md5(f"{ha1}:{nonce}:{creds.get('nc', '')}:{creds.get('cnonce', '')}:auth:{ha2}")
        ok = (start.startswith("INVITE ") and creds.get("username") == user
              and creds.get("nonce") == nonce and creds.get("response") == want)
        out["auth"] = "ok" if ok else "failed"
        if not ok:
            conn.sendall(response(hs, 403, "Forbidden", uuid.uuid4().hex[:8]))
            try:
                read_message(conn, buf)  # the ACK
            except Exception:
                pass
            print(json.dumps(out), flush=True)
            return
    out["request_uri"] = start.split()[1]
    out["via"] = get(hs, "Via")
    offered = {}
    remote = None
    event_pt = None
    for line in body.splitlines():
        m = re.match(r"a=rtpmap:(\d+) telephone-event/8000", line)
        if m:
            event_pt = int(m.group(1))
        if line.startswith("m=audio"):
            out["offer_proto"] = line.split()[2]
            port = int(line.split()[1])
        if line.startswith("c=IN IP4"):
            ip = line.split()[2]
        if line.startswith("a=crypto:"):
            c = line[len("a=crypto:"):]
            out["offer_crypto"].append(c)
            m = re.match(r"(\d+)\s+(\S+)\s+inline:([A-Za-z0-9+/=]+)", c)
            if m:
                offered[m.group(1)] = (m.group(2), base64.b64decode(m.group(3)))
    remote = (ip, port)
    to_tag = uuid.uuid4().hex[:8]
    conn.sendall(response(hs, 180, "Ringing", to_tag))
    if a.status != 200:
        conn.sendall(response(hs, a.status, "Busy Here" if a.status == 486 else "Refused", to_tag))
        try:
            read_message(conn, buf)  # the ACK
        except Exception:
            pass
        print(json.dumps(out), flush=True)
        return
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind((a.host, 0))
    rtp_port = rtp.getsockname()[1]
    tag, (suite, their_key) = next(iter(offered.items()))
    our_key = os.urandom(30)
    answer_line = f"{tag} {suite} inline:{base64.b64encode(our_key).decode()}"
    out["answer_crypto"] = answer_line
    events = ""
    if event_pt is not None:
        events = f"a=rtpmap:{event_pt} telephone-event/8000\r\na=fmtp:{event_pt} 0-15\r\n"
    pts = "0" if event_pt is None else f"0 {event_pt}"
    sdp = (f"v=0\r\no=- 2 2 IN IP4 {a.host}\r\ns=-\r\nc=IN IP4 {a.host}\r\nt=0 0\r\n"
           f"m=audio {rtp_port} RTP/SAVP {pts}\r\na=rtpmap:0 PCMU/8000\r\n{events}"
           f"a=crypto:{answer_line}\r\na=sendrecv\r\n")
    contact = f"<sip:jack@{a.host}:{a.port};transport=tls>"
    conn.sendall(response(hs, 200, "OK", to_tag, sdp, contact))
    profile = P.SRTP_PROFILE_AES128_CM_SHA1_80
    rx = pylibsrtp.Session(P(key=their_key, ssrc_type=P.SSRC_ANY_INBOUND, srtp_profile=profile))
    tx = pylibsrtp.Session(P(key=our_key, ssrc_type=P.SSRC_ANY_OUTBOUND, srtp_profile=profile))
    stop = threading.Event()
    seen_events = set()

    def receiver():
        rtp.settimeout(0.2)
        while not stop.is_set():
            try:
                data, _ = rtp.recvfrom(4096)
            except socket.timeout:
                continue
            if len(data) >= 2 and 192 <= data[1] <= 223:
                continue
            try:
                plain = rx.unprotect(data)
                out["rx_packets"] += 1
            except pylibsrtp.Error:
                out["rx_auth_fail"] += 1
                continue
            # One key per event: its packets share a timestamp.
            if event_pt is not None and plain[1] & 0x7F == event_pt and len(plain) >= 16:
                stamp = plain[4:8]
                if stamp not in seen_events and plain[12] < len(KEYS):
                    seen_events.add(stamp)
                    out["rx_digits"] += KEYS[plain[12]]

    threading.Thread(target=receiver, daemon=True).start()
    # Send silence (or the tone) so the edge has something to relay back.
    ssrc, seq, ts = 0x1234, 1, 0
    t_end = time.time() + a.hold
    while time.time() < t_end:
        if a.tone:
            payload = bytes(ulaw(int(8000 * math.sin(2 * math.pi * a.tone * (ts + i) / 8000)))
                            for i in range(160))
        else:
            payload = b"\xff" * 160
        pkt = struct.pack("!BBHII", 0x80, 0, seq, ts, ssrc) + payload
        rtp.sendto(tx.protect(pkt), remote)
        seq += 1
        ts += 160
        time.sleep(0.02)
    # Hang up unless the edge already did.
    conn.settimeout(0.2)
    try:
        while True:
            head, body, buf = read_message(conn, buf)
            start, hs2 = headers_of(head)
            if start.startswith("BYE "):
                out["got_bye"] = True
                conn.sendall(response(hs2, 200, "OK", None))
                break
    except (socket.timeout, ssl.SSLError, EOFError, OSError):
        pass
    if not out["got_bye"]:
        bye = (f"BYE {contact.strip('<>')} SIP/2.0\r\nVia: SIP/2.0/TLS {a.host}:{a.port};branch=z9hG4bK{uuid.uuid4().hex[:10]}\r\n"
               f"Max-Forwards: 70\r\nFrom: {get(hs, 'To')};tag={to_tag}\r\nTo: {get(hs, 'From')}\r\n"
               f"Call-ID: {get(hs, 'Call-ID')}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n")
        # The BYE goes to the edge's Contact in the INVITE.
        m = re.search(r"<([^>]+)>", get(hs, "Contact") or "")
        target_uri = m.group(1) if m else ""
        bye = bye.replace(f"BYE {contact.strip('<>')}", f"BYE {target_uri}")
        try:
            conn.sendall(bye.encode())
            # The edge's answer to our BYE (`bye_response`: its status code).
            conn.settimeout(5.0)
            while True:
                head, body, buf = read_message(conn, buf)
                start, _ = headers_of(head)
                if start.startswith("SIP/2.0 "):
                    out["bye_response"] = int(start.split()[1])
                    break
        except (socket.timeout, ssl.SSLError, EOFError, OSError, ValueError):
            pass
    stop.set()
    time.sleep(0.25)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
