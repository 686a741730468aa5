"""The frame of the fake HTTP services (a CDN, Stripe): a ThreadingHTTPServer on a free
loopback port, serving in a daemon thread between ``with``'s enter and exit."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackServer:
    """``handler`` reads its fake as ``self.server.<name>``; ``base`` is the server's URL."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], name: str):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        setattr(self.server, name, self)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
