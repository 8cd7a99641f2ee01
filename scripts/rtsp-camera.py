#!/usr/bin/python3
"""A test IP camera: GStreamer's RTSP server (gst-rtsp-server, as in many NVR
test rigs) serving Hearth's simulated camera picture as H.264 with AAC audio,
behind Digest authentication, at /main and (optionally) /sub -- what a
Reolink, Hikvision or Dahua camera offers on a LAN.

The pictures come from `hearth camera simulate --h264-out -` (one process per
stream), so every frame carries the camera's visual signature and a test can
tell whose picture a viewer decoded. Each access unit arrives as a 4-byte
big-endian length and an Annex B access unit; it is pushed into the shared
media's appsrc, stamped on arrival (a live source, like a camera's sensor).

Usage: rtsp-camera.py --port P --hearth BIN --signature N [--user U --password W]
       [--size 320x180] [--sub-size 160x90] [--name NAME]
Prints "ready" when it listens. Ends when killed (its simulate processes end
with their pipe).
"""
import argparse
import struct
import subprocess
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstRtsp", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

LAUNCH = (
    "( appsrc name=src is-live=true do-timestamp=true format=time stream-type=seekable "
    "caps=video/x-h264,stream-format=byte-stream,alignment=au "
    "! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 config-interval=-1 "
    "audiotestsrc is-live=true wave=sine freq=440 volume=0.2 "
    "! audio/x-raw,rate=16000,channels=1 ! avenc_aac ! rtpmp4gpay name=pay1 pt=97 )"
)


class Stream:
    """One stream's picture source and the appsrc of its current media."""

    def __init__(self, cmd):
        self.appsrc = None
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        threading.Thread(target=self.pump, daemon=True).start()

    def pump(self):
        out = self.proc.stdout
        while True:
            head = out.read(4)
            if len(head) < 4:
                break
            (n,) = struct.unpack(">I", head)
            au = out.read(n)
            if len(au) < n:
                break
            with self.lock:
                src = self.appsrc
            if src is not None:
                src.emit("push-buffer", Gst.Buffer.new_wrapped(au))
        print("picture source ended", file=sys.stderr, flush=True)
        GLib.idle_add(loop.quit)

    def configure(self, _factory, media):
        src = media.get_element().get_child_by_name("src")
        # The server seeks the media to where a client's PLAY asks (npt=0-);
        # a live camera is always "there".
        src.connect("seek-data", lambda _src, _offset: True)
        with self.lock:
            self.appsrc = src


def factory_for(stream, auth_on):
    f = GstRtspServer.RTSPMediaFactory.new()
    f.set_launch(LAUNCH)
    f.set_shared(True)
    f.connect("media-configure", stream.configure)
    if auth_on:
        perm = GstRtspServer.RTSPPermissions.new()
        perm.add_permission_for_role("user", "media.factory.access", True)
        perm.add_permission_for_role("user", "media.factory.construct", True)
        f.set_permissions(perm)
    return f


def main():
    global loop
    p = argparse.ArgumentParser()
    p.add_argument("--port", required=True)
    p.add_argument("--hearth", required=True)
    p.add_argument("--signature", required=True)
    p.add_argument("--name", default="RTSP camera")
    p.add_argument("--size", default="320x180")
    p.add_argument("--sub-size", default=None)
    p.add_argument("--user", default=None)
    p.add_argument("--password", default=None)
    a = p.parse_args()
    Gst.init(None)
    loop = GLib.MainLoop()

    def simulate(size):
        return [a.hearth, "camera", "simulate", "--h264-out", "-", "--name", a.name,
                "--size", size, "--fps", "15", "--keyframe-ms", "1000",
                "--signature", a.signature]

    server = GstRtspServer.RTSPServer.new()
    server.set_address("127.0.0.1")
    server.set_service(a.port)
    auth_on = a.user is not None
    if auth_on:
        auth = GstRtspServer.RTSPAuth.new()
        token = GstRtspServer.RTSPToken.new()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
        auth.add_digest(a.user, a.password, token)
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        server.set_auth(auth)
    mounts = server.get_mount_points()
    streams = [("/main", Stream(simulate(a.size)))]
    if a.sub_size:
        streams.append(("/sub", Stream(simulate(a.sub_size))))
    for path, stream in streams:
        mounts.add_factory(path, factory_for(stream, auth_on))
    if server.attach(None) == 0:
        print("could not listen on port " + a.port, file=sys.stderr, flush=True)
        sys.exit(1)
    print("ready", flush=True)
    loop.run()
    for _, s in streams:
        s.proc.kill()


if __name__ == "__main__":
    main()
