"""An outside WHEP client for tests/webrtc_outside_client.rs: aiortc (PyPI), a
WebRTC stack not written here, plays a Hearth grant's whep_url.

Usage: whep_play.py WHEP_URL SESSION_TOKEN FRAMES OUT.rgb
Offers to receive video (aiortc gathers its candidates first: no trickle),
POSTs the offer with the session as Bearer, applies the answer, decodes FRAMES
frames with aiortc's own H.264 decoder and writes the last one as raw RGB24.
Prints one JSON line: status, location, frames, width, height.
"""
import asyncio
import json
import sys
import urllib.request

from aiortc import RTCPeerConnection, RTCSessionDescription


async def main():
    url, token, want, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    done = asyncio.get_running_loop().create_future()
    frames = []

    @pc.on("track")
    def on_track(track):
        async def run():
            try:
                while len(frames) < want:
                    frames.append(await track.recv())
                done.set_result(True)
            except Exception as e:  # the track ended
                if not done.done():
                    done.set_exception(e)

        asyncio.ensure_future(run())

    await pc.setLocalDescription(await pc.createOffer())
    req = urllib.request.Request(
        url,
        data=pc.localDescription.sdp.encode(),
        method="POST",
        headers={"Content-Type": "application/sdp", "Authorization": "Bearer " + token},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        status, location, answer = r.status, r.headers.get("Location"), r.read().decode()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    await asyncio.wait_for(done, 30)
    last = frames[-1].reformat(format="rgb24")
    plane, row = last.planes[0], last.width * 3
    data = bytes(plane)
    with open(out, "wb") as f:
        for y in range(last.height):
            f.write(data[y * plane.line_size : y * plane.line_size + row])
    print(json.dumps({"status": status, "location": location, "frames": len(frames),
                      "width": last.width, "height": last.height}))
    await pc.close()


asyncio.run(main())
