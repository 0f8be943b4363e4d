"""A WHEP viewer (draft-ietf-wish-whep-03) made of aiortc, for tests/room_whip.rs.

Offers one recvonly audio and one recvonly video transceiver in a single POST (all
candidates in the offer: no trickle), applies the answer, decodes what arrives, and once it
has decoded enough of both kinds (or time is up) DELETEs its session and reports.

Reads {"url", "token", "audio_frames", "video_frames", "timeout"} on stdin and prints one
JSON object: {"status", "content_type", "location", "etag", "answer_codecs": {kind: codec},
"audio_frames", "video_frames", "video_size", "delete_status"}. Logs go to stderr.
"""

import asyncio
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError


def http(method, url, token, body=None, content_type=None):
    """(status, headers, body) of one request; HTTP errors are answers too."""
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if content_type:
        request.add_header("Content-Type", content_type)
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
            kind = fields[0]
            first_pt = fields[3] if len(fields) > 3 else None
        elif kind and line.startswith(f"a=rtpmap:{first_pt} ") and kind not in codecs:
            codecs[kind] = line.split(" ", 1)[1].split("/")[0]
    return codecs


async def count(track, counts, sizes):
    try:
        while True:
            frame = await track.recv()
            counts[track.kind] += 1
            if track.kind == "video":
                sizes.add(f"{frame.width}x{frame.height}")
    except MediaStreamError:
        pass


async def main():
    args = json.load(sys.stdin)
    out = {}
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    counts = {"audio": 0, "video": 0}
    sizes = set()
    tasks = []

    @pc.on("track")
    def on_track(track):
        print(f"whep_watch: receiving {track.kind}", file=sys.stderr)
        tasks.append(asyncio.ensure_future(count(track, counts, sizes)))

    pc.addTransceiver("audio", direction="recvonly")
    pc.addTransceiver("video", direction="recvonly")
    # aiortc gathers every candidate here, so the offer carries them all.
    await pc.setLocalDescription(await pc.createOffer())
    status, headers, body = await asyncio.get_running_loop().run_in_executor(
        None,
        lambda: http(
            "POST",
            args["url"],
            args["token"],
            pc.localDescription.sdp.encode(),
            "application/sdp",
        ),
    )
    out.update(
        status=status,
        content_type=headers.get("Content-Type"),
        location=headers.get("Location"),
        etag=headers.get("ETag"),
    )
    if status != 201:
        out["error"] = body.decode(errors="replace")
        print(json.dumps(out))
        return
    answer = body.decode()
    out["answer_codecs"] = answer_codecs(answer)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    end = time.monotonic() + args["timeout"]
    while time.monotonic() < end and (
        counts["audio"] < args["audio_frames"] or counts["video"] < args["video_frames"]
    ):
        await asyncio.sleep(0.1)
    out.update(
        audio_frames=counts["audio"],
        video_frames=counts["video"],
        video_size=sorted(sizes),
        connection=pc.connectionState,
    )

    resource = urllib.parse.urljoin(args["url"], out["location"] or "")
    status, _, _ = await asyncio.get_running_loop().run_in_executor(
        None, lambda: http("DELETE", resource, args["token"])
    )
    out["delete_status"] = status
    await pc.close()
    for task in tasks:
        task.cancel()
    print(json.dumps(out))


asyncio.run(main())
