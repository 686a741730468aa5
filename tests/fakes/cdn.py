"""A provider's CDN on loopback: the files a provider's result points at (issue 15).

``FakeCDN.put(path, body, ...)`` serves ``body`` at ``url(path)``; a file can be slow to
start (``delay``), trickle (``trickle``: seconds between 1 KB chunks), have no
Content-Length (``chunked``) or claim one it never sends, answer with any status and
type. ``requests`` lists the paths fetched.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from PIL import Image

from tests.fakes.server import LoopbackServer


@dataclass
class File:
    body: bytes
    content_type: str = "application/octet-stream"
    status: int = 200
    delay: float = 0.0
    trickle: float = 0.0
    chunked: bool = False


class FakeCDN(LoopbackServer):
    def __init__(self):
        self.files: dict[str, File] = {}
        self.requests: list[str] = []
        self.stop = threading.Event()
        super().__init__(_Handler, "cdn")

    def __exit__(self, *exc):
        self.stop.set()  # slow answers give up at once
        super().__exit__(*exc)

    def put(self, path: str, body: bytes, content_type: str = "application/octet-stream", **behaviour) -> str:
        self.files[path] = File(body, content_type, **behaviour)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        cdn: FakeCDN = self.server.cdn
        cdn.requests.append(self.path)
        file = cdn.files.get(self.path)
        if file is None:
            file = File(b"<html>not found</html>", "text/html", status=404)
        if file.delay and cdn.stop.wait(file.delay):
            return
        try:
            self.send_response(file.status)
            self.send_header("Content-Type", file.content_type)
            if file.chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(file.body)))
            self.end_headers()
            step = 1024 if file.trickle else 64 * 1024
            for start in range(0, len(file.body), step):
                chunk = file.body[start : start + step]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if file.chunked else chunk)
                self.wfile.flush()
                if file.trickle and cdn.stop.wait(file.trickle):
                    return
            if file.chunked:
                self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client gave up (reset, broken pipe, aborted)
            pass

    def log_message(self, format, *args):
        pass


def image_bytes(size=(64, 48), format="PNG", colour=(200, 40, 90)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=format)
    return buffer.getvalue()


def video_bytes(size=(64, 48), frames=8, codec="libx264", format="mp4") -> bytes:
    """A real little video (PyAV), ``frames`` at 8 fps."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format=format) as container:
        stream = container.add_stream(codec, rate=8)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_image(Image.new("RGB", size, (i * 30 % 256, 80, 160)))
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()
