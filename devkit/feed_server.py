"""A real HTTP server on 127.0.0.1 for tests that fetch feeds.

Tests register routes, point the code under test at ``srv.url(path)`` and
afterwards read the request log. Everything is real HTTP over a socket (no
mocks); each request runs in its own thread.

    with FeedServer() as srv:
        srv.route("/a.xml", body=rss_bytes, etag='"v1"')           # 304 on If-None-Match: "v1"
        srv.route("/slow.xml", body=rss_bytes, trickle=0.05)        # one byte every 50 ms
        srv.route("/bomb.xml", body=b"\\0" * 10**7, gzip=True)      # served gzip-compressed
        srv.route("/forever.xml", endless=True)                     # streams until the client hangs up
        srv.route("/busy.xml", status=429, headers={"Retry-After": "120"})
        srv.redirect("/old.xml", "/a.xml", status=301)
        srv.route("/cut.xml", reset=True)                           # connection reset, no answer
        srv.generate("/feed/", lambda rest: Route(body=make_feed(rest)))  # any path under /feed/
        fetch(srv.url("/a.xml"))
        srv.requests_for("/a.xml")[-1].headers["if-none-match"]

Route options:
  body           bytes, str (sent as UTF-8) or a callable(RequestRecord) -> bytes | str
  status         HTTP status (default 200)
  content_type   Content-Type header (default RSS, UTF-8); None sends none
  headers        extra response headers
  etag           sent as ETag; a matching If-None-Match gets 304
  last_modified  sent as Last-Modified; If-Modified-Since at or after it gets 304
  gzip           compress the body and send Content-Encoding: gzip (whatever the client accepts)
  delay          seconds to wait before answering at all
  trickle        seconds between single bytes of the body
  endless        stream filler XML forever (no Content-Length) until the client disconnects
  redirect_to    Location header (use with a 3xx status; relative paths are fine)
  reset          abort the connection (TCP reset) without answering

``generate(prefix, make)`` serves every path under ``prefix`` that has no route of its own: ``make``
gets the rest of the path and returns the Route to answer with, or None for a 404. Feeds made on the
fly this way cost nothing until asked for (``bench/fetch_scale.py`` serves 10,000 of them).
``FeedServer(host=..., port=...)`` listens elsewhere than an ephemeral port of 127.0.0.1, e.g. on
several loopback addresses, each a host of its own for per-host limits (Linux routes 127.0.0.0/8 to
loopback). ``log_requests=False`` keeps no request log and ``poll_interval=0.5`` polls less (long
benchmarks, many servers in one process).

A pytest fixture is provided: ``from devkit.feed_server import feed_server`` in a
conftest (or a test module) makes ``feed_server`` available, one server per test.
"""

from __future__ import annotations

import gzip as gzip_module
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

import pytest

RSS = "application/rss+xml; charset=utf-8"
# Safety net for endless and trickling responses whose client never hangs up.
MAX_STREAM_SECONDS = 30.0
ENDLESS_CHUNK = b"<item><title>filler</title><description>" + b"x" * 4000 + b"</description></item>\n"


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it; header names are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    at: float


Body = bytes | str | Callable[[RequestRecord], bytes | str]


@dataclass
class Route:
    body: Body = b""
    status: int = 200
    content_type: str | None = RSS
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    gzip: bool = False
    delay: float = 0.0
    trickle: float | None = None
    endless: bool = False
    redirect_to: str | None = None
    reset: bool = False


def _not_modified(route: Route, request: RequestRecord) -> bool:
    if route.status != 200:
        return False
    if route.etag is not None and "if-none-match" in request.headers:
        tags = [t.strip() for t in request.headers["if-none-match"].split(",")]
        return route.etag in tags or "*" in tags
    since = request.headers.get("if-modified-since")
    if route.last_modified is not None and since:
        try:
            return parsedate_to_datetime(since) >= parsedate_to_datetime(route.last_modified)
        except (TypeError, ValueError):
            return False
    return False


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection: simple, and closes end bodies

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        record = RequestRecord(
            method="GET",
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            at=time.monotonic(),
        )
        owner._log(record)
        route = owner._route_for(path)
        if route is None:
            self._send(404, {"Content-Type": "text/plain"}, b"no such route")
            return
        if route.delay and owner._stopping.wait(route.delay):
            return
        if route.reset:
            self._reset()
            return
        if _not_modified(route, record):
            headers = {"ETag": route.etag} if route.etag else {}
            self._send(304, headers | route.headers, b"")
            return
        headers: dict[str, str] = {}
        if route.content_type:
            headers["Content-Type"] = route.content_type
        if route.etag:
            headers["ETag"] = route.etag
        if route.last_modified:
            headers["Last-Modified"] = route.last_modified
        if route.redirect_to:
            headers["Location"] = route.redirect_to
        headers |= route.headers
        if route.endless:
            self._stream_forever(headers)
            return
        body = route.body(record) if callable(route.body) else route.body
        data = body.encode("utf-8") if isinstance(body, str) else body
        if route.gzip:
            data = gzip_module.compress(data, compresslevel=9)
            headers["Content-Encoding"] = "gzip"
        if route.trickle:
            self._trickle(route.status, headers, data, route.trickle)
            return
        self._send(route.status, headers, data)

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _send(self, status: int, headers: dict[str, str], data: bytes) -> None:
        try:
            self._head(status, headers | {"Content-Length": str(len(data))})
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _trickle(self, status: int, headers: dict[str, str], data: bytes, pause: float) -> None:
        stopping = self.server.owner._stopping
        until = time.monotonic() + MAX_STREAM_SECONDS
        try:
            self._head(status, headers | {"Content-Length": str(len(data))})
            for i in range(len(data)):
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
                if stopping.wait(pause) or time.monotonic() > until:
                    return
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _stream_forever(self, headers: dict[str, str]) -> None:
        stopping = self.server.owner._stopping
        until = time.monotonic() + MAX_STREAM_SECONDS
        try:
            self._head(200, headers)
            self.wfile.write(b'<?xml version="1.0"?><rss version="2.0"><channel><title>endless</title>\n')
            while not stopping.is_set() and time.monotonic() < until:
                self.wfile.write(ENDLESS_CHUNK)
        except (BrokenPipeError, ConnectionResetError):
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: FeedServer


class FeedServer:
    """Local HTTP server with per-test routes and a request log (see the module docstring)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        log_requests: bool = True,
        poll_interval: float = 0.02,
    ) -> None:
        self._address = (host, port)
        self._poll_interval = poll_interval
        self._log_requests = log_requests
        self._routes: dict[str, Route] = {}
        self._generators: list[tuple[str, Callable[[str], Route | None]]] = []
        self._requests: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FeedServer:
        server = _Server(self._address, _Handler)
        server.owner = self
        self._server = server
        # A short poll interval keeps stop() (server.shutdown) fast; many servers in one process
        # (one per loopback address) take a longer one, or their polling competes for the GIL.
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": self._poll_interval},
            name="feed-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FeedServer is not running; use it as a context manager or call start()")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def route(
        self,
        path: str,
        body: Body = b"",
        *,
        status: int = 200,
        content_type: str | None = RSS,
        headers: dict[str, str] | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        gzip: bool = False,
        delay: float = 0.0,
        trickle: float | None = None,
        endless: bool = False,
        redirect_to: str | None = None,
        reset: bool = False,
    ) -> Route:
        """Serve ``body`` at ``path`` (replacing any earlier route); options as in the module docstring."""
        route = Route(
            body=body,
            status=status,
            content_type=content_type,
            headers=dict(headers or {}),
            etag=etag,
            last_modified=last_modified,
            gzip=gzip,
            delay=delay,
            trickle=trickle,
            endless=endless,
            redirect_to=redirect_to,
            reset=reset,
        )
        with self._lock:
            self._routes[path] = route
        return route

    def redirect(self, path: str, to: str, status: int = 301) -> Route:
        return self.route(path, b"", status=status, redirect_to=to, content_type="text/plain")

    def generate(self, prefix: str, make: Callable[[str], Route | None]) -> None:
        """Answer every path under ``prefix`` without a route of its own with ``make(rest of path)``."""
        with self._lock:
            self._generators.append((prefix, make))

    def _route_for(self, path: str) -> Route | None:
        with self._lock:
            route = self._routes.get(path)
            generators = list(self._generators)
        if route is not None:
            return route
        for prefix, make in generators:
            if path.startswith(prefix):
                return make(path[len(prefix) :])
        return None

    def _log(self, record: RequestRecord) -> None:
        if not self._log_requests:
            return
        with self._lock:
            self._requests.append(record)

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    def requests_for(self, path: str) -> list[RequestRecord]:
        return [r for r in self.requests if r.path.split("?", 1)[0] == path]

    def clear_log(self) -> None:
        with self._lock:
            self._requests.clear()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with FeedServer() as srv:
        yield srv
