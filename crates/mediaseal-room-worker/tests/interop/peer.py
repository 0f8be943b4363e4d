"""One aiortc participant of a mediaseal room, driven by the room worker's tests.

Publishes a PCMU "canary" audio track whose every 20 ms frame is a known, unique byte string
(peer index and frame counter are coded into the samples) and a small VP8 test pattern, and
subscribes to whatever the room offers. Signalling is JSON lines: the harness writes
{"type": "answer"|"offer", "sdp": ...}, {"type": "report"} and {"type": "close"} to stdin;
the peer prints {"type": "offer"|"answer", "sdp": ...}, {"type": "report", ...} and
{"type": "closed"} on stdout. Logs go to stderr.

Test oracle only: the SRTP keys aiortc derives from DTLS are recorded (a pylibsrtp Policy
subclass), and so are the plaintext PCMU payloads it protects and the ones it unprotects, so
the harness can check a capture against them.

Usage: peer.py --index N [--no-video]
"""

import argparse
import asyncio
import binascii
import fractions
import json
import struct
import sys

import av
import aiortc.rtcdtlstransport as dtls
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpsender import RTCRtpSender

KEEP = 400  # payloads remembered per direction

policies = []
sent_pcmu = []
received_pcmu = []
# RTP packets decrypted, by kind: PCMU (payload type 0) is the peers' audio, any other payload
# type (VP8, its retransmissions) video.
received_rtp = {"audio": 0, "video": 0}
srtp_profile = {}


class RecordingPolicy(dtls.Policy):
    """Records each SRTP master key (key || salt) aiortc installs."""

    def __init__(self, **kw):
        inbound = kw.get("ssrc_type") == dtls.Policy.SSRC_ANY_INBOUND
        policies.append(
            {
                "dir": "in" if inbound else "out",
                "key": kw["key"].hex(),
                "profile": kw["srtp_profile"],
            }
        )
        super().__init__(**kw)


dtls.Policy = RecordingPolicy


def rtp_payload(packet):
    """(payload type, payload) of a plaintext RTP packet, or None for RTCP/short input."""
    if len(packet) < 12 or 192 <= packet[1] <= 223:
        return None
    header = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10:
        if len(packet) < header + 4:
            return None
        (words,) = struct.unpack("!H", packet[header + 2 : header + 4])
        header += 4 + 4 * words
    end = len(packet)
    if packet[0] & 0x20:  # padding
        end -= packet[-1]
    return packet[1] & 0x7F, packet[header:end]


def remember(store, packet):
    parsed = rtp_payload(packet)
    if parsed and parsed[0] == 0 and len(parsed[1]) == 160:  # PCMU
        store.append(parsed[1])
        del store[:-KEEP]


class _Tx:
    def __init__(self, inner):
        self.inner = inner

    def protect(self, data):
        remember(sent_pcmu, data)
        return self.inner.protect(data)

    def protect_rtcp(self, data):
        return self.inner.protect_rtcp(data)


class _Rx:
    def __init__(self, inner):
        self.inner = inner

    def unprotect(self, data):
        out = self.inner.unprotect(data)
        remember(received_pcmu, out)
        if len(out) >= 12 and not 192 <= out[1] <= 223:
            received_rtp["audio" if out[1] & 0x7F == 0 else "video"] += 1
        return out

    def unprotect_rtcp(self, data):
        return self.inner.unprotect_rtcp(data)


_setup_srtp = dtls.RTCDtlsTransport._setup_srtp


def _recording_setup_srtp(self):
    _setup_srtp(self)
    if self._tx_srtp is not None:
        self._tx_srtp = _Tx(self._tx_srtp)
        self._rx_srtp = _Rx(self._rx_srtp)
        srtp_profile["name"] = self._ssl.get_selected_srtp_profile().decode()


dtls.RTCDtlsTransport._setup_srtp = _recording_setup_srtp


class CanaryAudio(MediaStreamTrack):
    """8 kHz mono PCM whose first 24 samples spell the peer index and frame counter in
    well-separated levels, so every μ-law frame on the wire is unique and known."""

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
        due = self.start + self.frame * 0.02
        await asyncio.sleep(max(0, due - loop.time()))
        samples = []
        for bit in range(16):
            samples.append(7000 if (self.frame >> bit) & 1 else -7000)
        for bit in range(8):
            samples.append(7000 if (self.index >> bit) & 1 else -7000)
        for i in range(24, 160):
            samples.append(((i * 97 + self.index * 1111) % 16000) - 8000)
        f = av.AudioFrame(format="s16", layout="mono", samples=160)
        f.planes[0].update(struct.pack("<160h", *samples))
        f.sample_rate = 8000
        f.pts = self.frame * 160
        f.time_base = fractions.Fraction(1, 8000)
        self.frame += 1
        return f


class PatternVideo(MediaStreamTrack):
    """A 160x120 moving bar at 15 fps: cheap to encode on a shared 2-core machine."""

    kind = "video"

    def __init__(self, index):
        super().__init__()
        self.index = index
        self.frame = 0
        self.start = None

    async def recv(self):
        loop = asyncio.get_running_loop()
        if self.start is None:
            self.start = loop.time()
        due = self.start + self.frame / 15
        await asyncio.sleep(max(0, due - loop.time()))
        w, h = 160, 120
        bar = (self.frame * 4) % w
        frame = av.VideoFrame(w, h, "yuv420p")
        luma = frame.planes[0]
        row = bytearray(luma.line_size)
        for x in range(w):
            row[x] = 235 if bar <= x < bar + 16 else 40 + 30 * self.index
        luma.update(bytes(row) * h)
        for chroma in frame.planes[1:]:
            chroma.update(bytes([128]) * (chroma.line_size * (h // 2)))
        frame.pts = self.frame * 6000
        frame.time_base = fractions.Fraction(1, 90000)
        self.frame += 1
        return frame


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def msid_by_mid(sdp):
    """mid -> (stream id, track id) from the remote description's a=msid lines."""
    out, mid, msid = {}, None, None
    for line in sdp.splitlines() + ["m=end"]:
        if line.startswith("m="):
            if mid is not None and msid is not None:
                out[mid] = msid
            mid, msid = None, None
        elif line.startswith("a=mid:"):
            mid = line[6:].strip()
        elif line.startswith("a=msid:"):
            bits = line[7:].split()
            if len(bits) == 2:
                msid = (bits[0], bits[1])
    return out


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--no-video", action="store_true")
    args = parser.parse_args()

    # No STUN server: the room's host candidate is reachable, and nothing may leave the netns.
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    received = {}

    @pc.on("connectionstatechange")
    def on_state():
        print(f"peer {args.index}: {pc.connectionState}", file=sys.stderr, flush=True)

    @pc.on("track")
    def on_track(track):
        mid = next(
            (t.mid for t in pc.getTransceivers() if t.receiver.track is track), None
        )
        entry = {"kind": track.kind, "frames": 0}
        received[mid] = entry

        async def pump():
            try:
                while True:
                    await track.recv()
                    entry["frames"] += 1
            except MediaStreamError:
                pass

        asyncio.ensure_future(pump())

    audio = pc.addTransceiver(CanaryAudio(args.index), direction="sendonly")
    audio.setCodecPreferences(
        [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.mimeType == "audio/PCMU"]
    )
    if not args.no_video:
        video = pc.addTransceiver(PatternVideo(args.index), direction="sendonly")
        video.setCodecPreferences(
            [
                c
                for c in RTCRtpSender.getCapabilities("video").codecs
                if c.mimeType in ("video/VP8", "video/rtx")
            ]
        )

    await pc.setLocalDescription(await pc.createOffer())
    say({"type": "offer", "sdp": pc.localDescription.sdp})

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        msg = json.loads(line)
        kind = msg["type"]
        if kind == "answer":
            await pc.setRemoteDescription(RTCSessionDescription(sdp=msg["sdp"], type="answer"))
        elif kind == "offer":
            await pc.setRemoteDescription(RTCSessionDescription(sdp=msg["sdp"], type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            say({"type": "answer", "sdp": pc.localDescription.sdp})
        elif kind == "report":
            msids = msid_by_mid(pc.remoteDescription.sdp) if pc.remoteDescription else {}
            tracks = []
            for mid, entry in received.items():
                stream, track = msids.get(mid, (None, None))
                tracks.append(
                    {
                        "mid": mid,
                        "kind": entry["kind"],
                        "frames": entry["frames"],
                        "publisher": stream,
                        "track": track,
                    }
                )
            say(
                {
                    "type": "report",
                    "state": pc.connectionState,
                    "profile": srtp_profile.get("name"),
                    "tracks": tracks,
                    "received_rtp": received_rtp,
                    "keys": policies,
                    "sent_pcmu": [binascii.hexlify(p).decode() for p in sent_pcmu],
                    "received_pcmu": [binascii.hexlify(p).decode() for p in received_pcmu],
                }
            )
        elif kind == "close":
            break
    await pc.close()
    say({"type": "closed"})


asyncio.run(main())
