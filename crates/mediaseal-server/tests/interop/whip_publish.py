"""A WHIP publisher (RFC 9725) made of aiortc, for tests/room_whip.rs.

Debian bookworm's packaged WHIP client (simple-whip-client) cannot run: it links libsoup 2.4,
and the GStreamer webrtc plugin pulls in libnice → gupnp-igd → libsoup 3, which aborts the
process ("libsoup2 symbols detected"). So this stands in for it: one sendonly Opus audio
track (a 440 Hz tone) and one sendonly VP8 video track (a moving bar, 320x240 at 15 fps),
offered in a single POST with every candidate in the offer (no trickle).

Reads {"url", "token"} as one JSON line on stdin, POSTs, applies the answer and prints
{"status", "content_type", "location", "etag", "answer_codecs"} (plus "error" on a refusal)
as one line; then publishes until stdin closes or it is killed. It never DELETEs: the test
does, or tests what happens when it just goes away. Logs go to stderr.
"""

import asyncio
import fractions
import json
import math
import struct
import sys
import urllib.error
import urllib.request

import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack


class Tone(MediaStreamTrack):
    """48 kHz mono, 20 ms frames of a 440 Hz sine, paced in real time."""

    kind = "audio"
    RATE = 48000
    SAMPLES = 960

    def __init__(self):
        super().__init__()
        self.sent = 0
        self.start = None

    async def recv(self):
        loop = asyncio.get_running_loop()
        if self.start is None:
            self.start = loop.time()
        await asyncio.sleep(max(0, self.start + self.sent * 0.02 - loop.time()))
        first = self.sent * self.SAMPLES
        pcm = struct.pack(
            f"<{self.SAMPLES}h",
            *(
                int(8000 * math.sin(2 * math.pi * 440 * (first + i) / self.RATE))
                for i in range(self.SAMPLES)
            ),
        )
        frame = av.AudioFrame(format="s16", layout="mono", samples=self.SAMPLES)
        frame.planes[0].update(pcm)
        frame.sample_rate = self.RATE
        frame.pts = first
        frame.time_base = fractions.Fraction(1, self.RATE)
        self.sent += 1
        return frame


class Bar(MediaStreamTrack):
    """A white bar crossing a grey 320x240 picture at 15 fps."""

    kind = "video"
    W, H, FPS = 320, 240, 15

    def __init__(self):
        super().__init__()
        self.sent = 0
        self.start = None

    async def recv(self):
        loop = asyncio.get_running_loop()
        if self.start is None:
            self.start = loop.time()
        await asyncio.sleep(max(0, self.start + self.sent / self.FPS - loop.time()))
        frame = av.VideoFrame(self.W, self.H, "yuv420p")
        luma = frame.planes[0]
        left = (self.sent * 8) % self.W
        row = bytes(
            235 if left <= x < left + 24 else 90 for x in range(luma.line_size)
        )
        luma.update(row * self.H)
        for chroma in frame.planes[1:]:
            chroma.update(bytes([128]) * (chroma.line_size * (self.H // 2)))
        frame.pts = self.sent * (90000 // self.FPS)
        frame.time_base = fractions.Fraction(1, 90000)
        self.sent += 1
        return frame


def post(url, token, sdp):
    request = urllib.request.Request(url, data=sdp.encode(), method="POST")
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/sdp")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def answer_codecs(sdp):
    """The codec the answer picked per m-line kind: the first payload type's rtpmap."""
    codecs, kind, first_pt = {}, None, None
    for line in sdp.splitlines():
        if line.startswith("m="):
            fields = line[2:].split()
            kind, first_pt = fields[0], (fields[3] if len(fields) > 3 else None)
        elif kind and line.startswith(f"a=rtpmap:{first_pt} ") and kind not in codecs:
            codecs[kind] = line.split(" ", 1)[1].split("/")[0]
    return codecs


async def main():
    loop = asyncio.get_running_loop()
    args = json.loads(await loop.run_in_executor(None, sys.stdin.readline))
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver(Tone(), direction="sendonly")
    pc.addTransceiver(Bar(), direction="sendonly")

    @pc.on("connectionstatechange")
    def on_state():
        print(f"whip_publish: connection {pc.connectionState}", file=sys.stderr)

    # aiortc gathers every candidate here, so the offer carries them all.
    await pc.setLocalDescription(await pc.createOffer())
    status, headers, body = await loop.run_in_executor(
        None, lambda: post(args["url"], args["token"], pc.localDescription.sdp)
    )
    out = {
        "status": status,
        "content_type": headers.get("Content-Type"),
        "location": headers.get("Location"),
        "etag": headers.get("ETag"),
    }
    if status != 201:
        out["error"] = body.decode(errors="replace")
        print(json.dumps(out), flush=True)
        return
    answer = body.decode()
    out["answer_codecs"] = answer_codecs(answer)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    print(json.dumps(out), flush=True)
    # Publish until the harness closes stdin.
    await loop.run_in_executor(None, sys.stdin.read)
    await pc.close()


asyncio.run(main())
