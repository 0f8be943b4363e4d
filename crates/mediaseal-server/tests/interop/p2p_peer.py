"""One aiortc participant of a mediaseal peer-to-peer room (tests/room_p2p.rs).

Joins through mediaseal's signalling WebSocket with an Access Token, takes the TURN servers and
credentials from `joined`, and connects to every other participant end to end: the newcomer
sends `peer_offer` to each one in `joined.participants`, the others answer with `peer_answer`,
and both sides send their ICE candidates as `peer_candidate` (stripped from the SDP, so the
connection depends on the relayed candidates). With --relay only TURN relay candidates are used.

Sends PCMU "canary" audio: the first 24 samples of every 20 ms frame spell the frame counter
and this peer's index in well-separated levels, the rest is a fixed pattern of this peer. It
decodes what it receives and counts the frames whose samples spell another peer's index.

stdout, JSON lines: {"type": "joined", "sid", "ice_servers"}, {"type": "signal", "message",
"peer"} for each server message (SDP left out), then once it decoded --frames canary frames
from --expect peers: {"type": "report", "decoded": {sid: frames}, "canary_tail": hex,
"local_candidate_types": [...], "states": {...}}. stdin: "close" leaves the room and exits.
Logs go to stderr.

Usage: p2p_peer.py --url WS_URL --token JWT --index N --expect K [--frames F] [--relay]
"""

import argparse
import asyncio
import fractions
import json
import struct
import sys

import aiohttp
import av
import aiortc.rtcdtlstransport as dtls
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.sdp import candidate_from_sdp

# The plaintext PCMU payload of one sent frame (test oracle: the harness looks for it in the
# TURN server's capture). Taken where aiortc protects it, before SRTP.
sent_payload = {}

_setup_srtp = dtls.RTCDtlsTransport._setup_srtp


class _TxTap:
    def __init__(self, inner):
        self.inner = inner

    def protect(self, packet):
        # Plain RTP, no extension bits from aiortc for PCMU: 12-byte header unless CSRC/ext.
        if len(packet) >= 12 and packet[1] & 0x7F == 0 and "pcmu" not in sent_payload:
            header = 12 + 4 * (packet[0] & 0x0F)
            if packet[0] & 0x10:
                (words,) = struct.unpack("!H", packet[header + 2 : header + 4])
                header += 4 + 4 * words
            sent_payload["pcmu"] = bytes(packet[header:])
        return self.inner.protect(packet)

    def protect_rtcp(self, packet):
        return self.inner.protect_rtcp(packet)


def _tapped_setup_srtp(self):
    _setup_srtp(self)
    if self._tx_srtp is not None and not isinstance(self._tx_srtp, _TxTap):
        self._tx_srtp = _TxTap(self._tx_srtp)


dtls.RTCDtlsTransport._setup_srtp = _tapped_setup_srtp

LEVEL = 7000


class CanaryAudio(MediaStreamTrack):
    """8 kHz mono PCM; frame counter (16 bits) and peer index (8 bits) in the first samples."""

    kind = "audio"

    def __init__(self, index):
        super().__init__()
        self.index = index
        self.frame = 0
        self.start = None

    async def recv(self):
        loop = asyncio.get_running_loop()
        if self.start is None:
            self.start = loop.time()
        await asyncio.sleep(max(0, self.start + self.frame * 0.02 - loop.time()))
        samples = [LEVEL if (self.frame >> bit) & 1 else -LEVEL for bit in range(16)]
        samples += [LEVEL if (self.index >> bit) & 1 else -LEVEL for bit in range(8)]
        samples += [((i * 89 + self.index * 1237) % 16000) - 8000 for i in range(24, 160)]
        f = av.AudioFrame(format="s16", layout="mono", samples=160)
        f.planes[0].update(struct.pack("<160h", *samples))
        f.sample_rate = 8000
        f.pts = self.frame * 160
        f.time_base = fractions.Fraction(1, 8000)
        self.frame += 1
        return f


def spelled_index(frame):
    """The peer index a decoded canary frame spells, or None if it is not one."""
    if frame.format.name != "s16" or frame.samples < 24:
        return None
    pcm = struct.unpack("<24h", bytes(frame.planes[0])[:48])
    if any(abs(int(s)) < LEVEL // 2 for s in pcm[:24]):
        return None
    return sum(1 << bit for bit in range(8) if pcm[16 + bit] > 0)


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def split_candidates(sdp):
    """The SDP without its candidate lines, and [(mid, candidate)] taken out of it."""
    sections = [[]]
    for line in sdp.splitlines():
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    lines, found = [], []
    for section in sections:
        mid = next((l[6:].strip() for l in section if l.startswith("a=mid:")), None)
        for line in section:
            if line.startswith("a=candidate:"):
                found.append((mid, line[2:]))
            elif not line.startswith("a=end-of-candidates"):
                lines.append(line)
    return "\r\n".join(lines) + "\r\n", found


class Room:
    def __init__(self, args, ws):
        self.args = args
        self.ws = ws
        self.me = None
        self.config = None
        self.pcs = {}
        self.decoded = {}
        self.reported = False

    async def send(self, obj):
        await self.ws.send_str(json.dumps(obj))

    def peer_connection(self, sid):
        pc = RTCPeerConnection(self.config)
        self.pcs[sid] = pc
        self.decoded[sid] = 0
        transceiver = pc.addTransceiver(CanaryAudio(self.args.index), direction="sendrecv")
        transceiver.setCodecPreferences(
            [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.mimeType == "audio/PCMU"]
        )

        @pc.on("connectionstatechange")
        def on_state():
            print(f"peer {self.args.index} -> {sid}: {pc.connectionState}", file=sys.stderr, flush=True)

        @pc.on("track")
        def on_track(track):
            async def pump():
                try:
                    while True:
                        frame = await track.recv()
                        index = spelled_index(frame)
                        if index is not None and index != self.args.index:
                            self.decoded[sid] += 1
                            self.maybe_report()
                except MediaStreamError:
                    pass

            asyncio.ensure_future(pump())

        return pc

    async def send_description(self, kind, sid, pc):
        sdp, candidates = split_candidates(pc.localDescription.sdp)
        await self.send({"type": kind, "to": sid, "sdp": sdp})
        for mid, candidate in candidates:
            await self.send({"type": "peer_candidate", "to": sid, "candidate": candidate, "sdp_mid": mid})
        await self.send({"type": "peer_candidate", "to": sid, "candidate": ""})

    async def offer_to(self, sid):
        pc = self.peer_connection(sid)
        await pc.setLocalDescription(await pc.createOffer())
        await self.send_description("peer_offer", sid, pc)

    async def on_message(self, msg):
        kind = msg["type"]
        peer = msg.get("from") or (msg.get("participant") or {}).get("sid")
        say({"type": "signal", "message": kind, "peer": peer, "code": msg.get("code")})
        if kind == "peer_offer":
            pc = self.peer_connection(msg["from"])
            await pc.setRemoteDescription(RTCSessionDescription(sdp=msg["sdp"], type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            await self.send_description("peer_answer", msg["from"], pc)
        elif kind == "peer_answer":
            await self.pcs[msg["from"]].setRemoteDescription(
                RTCSessionDescription(sdp=msg["sdp"], type="answer")
            )
        elif kind == "peer_candidate":
            pc = self.pcs[msg["from"]]
            if msg["candidate"]:
                candidate = candidate_from_sdp(msg["candidate"].removeprefix("candidate:"))
                candidate.sdpMid = msg.get("sdp_mid")
                await pc.addIceCandidate(candidate)
            else:
                await pc.addIceCandidate(None)

    def maybe_report(self):
        if self.reported:
            return
        done = [sid for sid, n in self.decoded.items() if n >= self.args.frames]
        if len(done) < self.args.expect:
            return
        self.reported = True
        types = []
        for pc in self.pcs.values():
            for t in pc.getTransceivers():
                connection = t.receiver.transport.transport._connection
                for pair in getattr(connection, "_nominated", {}).values():
                    types.append(pair.local_candidate.type)
        say(
            {
                "type": "report",
                "decoded": dict(self.decoded),
                "canary_tail": sent_payload.get("pcmu", b"")[24:].hex(),
                "local_candidate_types": types,
                "states": {sid: pc.connectionState for sid, pc in self.pcs.items()},
            }
        )


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--relay", action="store_true")
    args = parser.parse_args()

    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)

    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(args.url) as ws:
            room = Room(args, ws)
            await room.send({"type": "join", "token": args.token})
            joined = json.loads((await ws.receive()).data)
            if joined["type"] != "joined":
                say({"type": "refused", "message": joined})
                return
            room.me = joined["participant"]["sid"]
            servers = [
                RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
                for s in joined.get("ice_servers", [])
            ]
            policy = RTCIceTransportPolicy.RELAY if args.relay else RTCIceTransportPolicy.ALL
            room.config = RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)
            say({"type": "joined", "sid": room.me, "ice_servers": joined.get("ice_servers", [])})
            for other in joined["participants"]:
                await room.offer_to(other["sid"])

            async def read_socket():
                async for message in ws:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        break
                    await room.on_message(json.loads(message.data))
                say({"type": "socket_closed"})

            reader = asyncio.ensure_future(read_socket())
            while True:
                line = await stdin.readline()
                if not line or line.strip() == b"close":
                    break
            reader.cancel()
            if not ws.closed:
                await room.send({"type": "leave"})
            for pc in room.pcs.values():
                await pc.close()
    say({"type": "closed"})


asyncio.run(main())
