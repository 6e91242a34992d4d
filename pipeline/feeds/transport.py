"""An httpx client bounded by a whole-request deadline, and the headers and timeouts it sends.

Connect and read timeouts come from the settings; on top of them a deadline
(deadline_s) covers connect, redirects, headers and body, because a server that
trickles one byte at a time never trips a per-read timeout. With a client from
make_client, a hop that must stay public connects only to the addresses just
checked, so a second, different DNS answer cannot slip past the check.
"""

from __future__ import annotations

import functools
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

from pipeline.feeds.addresses import Resolver, public_addresses_only, resolve_host
from pipeline.settings import FetchSettings

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)

# Whole-request deadline, enforced on every socket operation of the calling thread.
# Fetches run on a thread pool sharing one client, and a request is performed
# synchronously in the thread that makes it, so a thread-local deadline is exact.
_deadline = threading.local()


@contextmanager
def request_deadline(seconds: float, resolve: Resolver) -> Iterator[None]:
    """Bound this thread's sockets by a deadline ``seconds`` from now until the block ends.

    ``resolve`` is the resolver that hops which must stay public connect through.
    """
    _deadline.until = time.monotonic() + seconds
    _deadline.resolve = resolve
    _deadline.public_only = False
    try:
        yield
    finally:
        _deadline.until = None
        _deadline.resolve = None
        _deadline.public_only = False


def remaining() -> float | None:
    """Seconds left before this thread's deadline; None when no deadline is set."""
    until = getattr(_deadline, "until", None)
    return None if until is None else until - time.monotonic()


def public_only() -> bool:
    """Whether this thread's connections must go to public addresses only (see require_public)."""
    return getattr(_deadline, "public_only", False)


def require_public() -> None:
    """From now until the deadline ends, connect this thread to public addresses only."""
    _deadline.public_only = True


def _bounded(timeout: float | None, exc: type[Exception]) -> float | None:
    left = remaining()
    if left is None:
        return timeout
    if left <= 0:
        raise exc("whole-request deadline exceeded")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> Any:
        inner = self._inner.start_tls(
            ssl_context, server_hostname, _bounded(timeout, httpcore.ConnectTimeout)
        )
        return _DeadlineStream(inner)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        if not public_only():
            bounded = _bounded(timeout, httpcore.ConnectTimeout)
            inner = self._inner.connect_tcp(host, port, bounded, local_address, socket_options)
            return _DeadlineStream(inner)
        # After a redirect from a public address: connect only to the addresses just
        # checked, so a DNS answer that changes between check and connect cannot
        # reach an internal one. (TLS still verifies the certificate for the host name.)
        error: httpcore.ConnectError | None = None
        resolve: Resolver = getattr(_deadline, "resolve", None) or resolve_host
        for address in public_addresses_only(host, port, resolve):
            bounded = _bounded(timeout, httpcore.ConnectTimeout)
            try:
                stream = self._inner.connect_tcp(address, port, bounded, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
                continue
            return _DeadlineStream(stream)
        assert error is not None
        raise error

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> Any:
        return self._inner.connect_unix_socket(path, timeout, socket_options)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process: building one loads the CA bundle, ~30 ms of CPU (httpx issue
    838), which a client per source would pay per feed, most of the CPU of fetching a plain feed.
    Built as httpx builds its default (certifi, or SSL_CERT_FILE / SSL_CERT_DIR)."""
    return httpx.create_ssl_context()


def make_client(settings: FetchSettings) -> httpx.Client:
    """An httpx client whose sockets honour fetch_source's whole-request deadline.

    Share one across threads. A client made elsewhere works too, but then only
    the body download is bounded by the deadline, not a trickled header.
    """
    transport = httpx.HTTPTransport(
        verify=_tls_context(),
        limits=httpx.Limits(max_connections=max(4, settings.max_workers * 2), max_keepalive_connections=16),
    )
    pool = getattr(transport, "_pool", None)
    # httpx has no public hook for the network backend; without this the deadline
    # still bounds the body, just not a server that trickles its headers.
    if isinstance(pool, httpcore.ConnectionPool) and hasattr(pool, "_network_backend"):
        pool._network_backend = _DeadlineBackend(pool._network_backend)
    return httpx.Client(
        transport=transport,
        timeout=request_timeout(settings),
        headers=request_headers(settings),
        follow_redirects=False,
    )


def request_timeout(settings: FetchSettings) -> httpx.Timeout:
    return httpx.Timeout(
        connect=settings.connect_timeout_s,
        read=settings.read_timeout_s,
        write=settings.read_timeout_s,
        pool=settings.deadline_s,
    )


def request_headers(settings: FetchSettings) -> dict[str, str]:
    return {"User-Agent": settings.user_agent, "Accept-Encoding": "gzip", "Accept": ACCEPT}
