"""A small HTTP server on 127.0.0.1: GET path → (status, body) for IP discovery, a record of
POSTed bodies for webhook notifications, and (when asked) of GET paths for heartbeat pings."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextlib.contextmanager
def serve(
    routes: dict[str, tuple[int, str]],
    posted: list[tuple[str, str]] | None = None,
    got: list[str] | None = None,
    slow: dict[str, float] | None = None,
) -> Iterator[str]:
    """Yields the base URL, e.g. http://127.0.0.1:PORT; POSTed bodies go to `posted`, and the
    path (with its query) of each GET to `got` when one is given. `routes` is read on each
    request: a test may change it between requests. A GET of a path in `slow` waits that many
    seconds before it answers (a server slower than the client's timeout)."""
    received: list[tuple[str, str]] = [] if posted is None else posted

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            received.append((self.path, self.rfile.read(length).decode("utf-8", "replace")))
            status, body = routes.get(self.path, (200, "ok"))
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if got is not None:
                got.append(self.path)
            if slow and self.path in slow:
                time.sleep(slow[self.path])
            status, body = routes.get(self.path, (404, "not found"))
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
