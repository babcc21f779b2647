"""A small local web server for the viewer (standard library ``http.server``).

Routes: ``/`` the page, ``/api/trees`` the listing (JSON), ``/api/trees/<id>`` one tree's JSON.
It binds to 127.0.0.1 only: saved trees may hold private prompts.
"""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from qstar.errors import ConfigError
from qstar.viewer.page import page_html
from qstar.viewer.sources import TreeSource

__all__ = ["ViewerServer"]

HOST = "127.0.0.1"


class _Handler(BaseHTTPRequestHandler):
    source: TreeSource  # set on the per-server subclass
    server_version = "qstar-viewer"

    def do_GET(self) -> None:
        route = urlsplit(self.path).path
        if route in ("/", "/index.html"):
            self._send(page_html(list_url="api/trees").encode(), "text/html; charset=utf-8")
        elif route == "/api/trees":
            self._send(json.dumps(self.source.summaries()).encode(), "application/json")
        elif route.startswith("/api/trees/"):
            path = self.source.path_of(unquote(route[len("/api/trees/") :]))
            try:
                body = path.read_bytes() if path is not None else None
            except OSError:
                body = None
            if body is None:
                self._send(b"no such tree", "text/plain", HTTPStatus.NOT_FOUND)
            else:
                self._send(body, "application/json")
        elif route == "/favicon.ico":
            self._send(b"", "image/x-icon", HTTPStatus.NO_CONTENT)
        else:
            self._send(b"not found", "text/plain", HTTPStatus.NOT_FOUND)

    def _send(self, body: bytes, content_type: str, status: HTTPStatus = HTTPStatus.OK) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")  # trees change while a run is training
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        pass  # the terminal shows the URL, not one line per request


class ViewerServer:
    """Serve the viewer for a :class:`TreeSource` on 127.0.0.1 (``port=0``: a free port).

    Use :meth:`serve_forever` in a command, or :meth:`start` (a background thread) and
    :meth:`close` in tests; it is also a context manager that starts and closes.
    """

    def __init__(self, source: TreeSource, *, port: int = 0):
        handler = type("Handler", (_Handler,), {"source": source})
        try:
            self.httpd = ThreadingHTTPServer((HOST, port), handler)
        except OSError as err:
            raise ConfigError(
                f"cannot listen on {HOST}:{port} ({err.strerror}); pick another --port or leave it out"
            ) from err
        self.httpd.daemon_threads = True
        self.source = source
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def start(self) -> ViewerServer:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="qstar-viewer", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join()
            self._thread = None
        self.httpd.server_close()

    def __enter__(self) -> ViewerServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
