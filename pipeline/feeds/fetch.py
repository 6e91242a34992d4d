"""Fetch one source: HTTP(S) with conditional GET and hard limits, or a local file.

fetch_source never raises; every failure is a FetchResult with status "error",
a short stable error_class and a readable error. Error classes:

  transient (worth retrying soon): timeout, connect_error, network_error, http_5xx, rate_limited
  permanent: invalid_url, not_found, not_a_file, gone, http_4xx, too_large, too_many_redirects,
             bad_redirect, blocked_redirect, decode_error, read_error, internal_error

Redirects: a hop from a public address to a loopback, private, link-local or
otherwise non-global one is refused (blocked_redirect), so a public feed cannot
point the fetcher at internal services. A source configured on such an address
is trusted, and so are its redirects until a hop reaches a public address. With
a client from make_client the checked addresses are also the ones connected to,
so a second, different DNS answer cannot slip past the check.

Local sources (a path or file:// URL) must be regular files: devices, pipes,
sockets and anything under /proc, /sys or /dev are refused (not_a_file); a
directory is not_found.

Limits: connect and read timeouts from the settings, plus a whole-request
deadline (deadline_s) over connect, redirects, headers and body, because a
server that trickles one byte at a time never trips a per-read timeout. The
body is capped at max_bytes counted after gzip decoding, so a small compressed
bomb is caught too.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
import stat
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import httpcore
import httpx

from pipeline.records import FetchResult, FetchState, Source
from pipeline.settings import FetchSettings

MAX_REDIRECTS = 5
_REDIRECTS = {301, 302, 303, 307, 308}
_PERMANENT_REDIRECTS = {301, 308}
# Response headers the scheduler reads (pipeline.schedule).
SCHEDULING_HEADERS = ("cache-control", "expires", "age", "retry-after", "date")
TRANSIENT_ERRORS = frozenset({"timeout", "connect_error", "network_error", "http_5xx", "rate_limited"})
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)


class FetchError(Exception):
    """Internal: carries an error class to the single place that builds the result."""

    def __init__(self, error_class: str, message: str, response: httpx.Response | None = None) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.response = response


def is_transient(result: FetchResult) -> bool:
    """Whether a failed fetch is worth retrying within the same run."""
    return result.failed and result.error_class in TRANSIENT_ERRORS


# Whole-request deadline, enforced on every socket operation of the calling thread.
# Fetches run on a thread pool sharing one client, and a request is performed
# synchronously in the thread that makes it, so a thread-local deadline is exact.
_deadline = threading.local()


def _remaining() -> float | None:
    until = getattr(_deadline, "until", None)
    return None if until is None else until - time.monotonic()


def _bounded(timeout: float | None, exc: type[Exception]) -> float | None:
    remaining = _remaining()
    if remaining is None:
        return timeout
    if remaining <= 0:
        raise exc("whole-request deadline exceeded")
    return remaining if timeout is None else min(timeout, remaining)


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


# Host name resolution for the redirect check: (host, port) -> IP address strings, [] when the
# name does not resolve. fetch_source takes another one for tests.
Resolver = Callable[[str, int], list[str]]


def resolve_host(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host``; [] when it gives none."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def is_public_address(address: str) -> bool:
    """Whether ``address`` is globally routable (not loopback, private, link-local, reserved ...).

    IPv6 forms that carry an IPv4 address (mapped, 6to4, Teredo, NAT64) count only
    when that IPv4 address is global too.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if not ip.is_global:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
        if ip in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        return all(v4 is None or v4.is_global for v4 in embedded)
    return True


def _url_addresses(url: str, resolve: Resolver) -> tuple[str, list[str]]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        port = 80
    return host, resolve(host, port) if host else []


def redirect_refusal(from_url: str, to_url: str, *, resolve: Resolver = resolve_host) -> str | None:
    """Why a redirect from ``from_url`` to ``to_url`` must not be followed, or None when it may.

    Refused: from a public address to one that is not (loopback, private, link-local,
    ...). Erring on the safe side, ``from_url`` counts as public when any of its
    addresses is, and ``to_url`` as internal when any of its addresses is. A target
    that does not resolve is let through: connecting to it fails anyway.
    """
    _, sources = _url_addresses(from_url, resolve)
    if not any(is_public_address(a) for a in sources):
        return None
    host, targets = _url_addresses(to_url, resolve)
    internal = [a for a in targets if not is_public_address(a)]
    if not internal:
        return None
    return (
        f"refused a redirect from a public address to {host} ({', '.join(internal)}), "
        f"which is not a public address: {to_url}"
    )


def redirect_allowed(from_url: str, to_url: str, *, resolve: Resolver = resolve_host) -> bool:
    """Whether a redirect from ``from_url`` to ``to_url`` may be followed (see redirect_refusal)."""
    return redirect_refusal(from_url, to_url, resolve=resolve) is None


def _public_addresses_only(host: str, port: int) -> list[str]:
    """The addresses to connect to on a hop that must stay public; refuses any other."""
    resolve: Resolver = getattr(_deadline, "resolve", None) or resolve_host
    addresses = resolve(host, port)
    internal = [a for a in addresses if not is_public_address(a)]
    if internal:
        raise FetchError(
            "blocked_redirect",
            f"refused to connect to {host} ({', '.join(internal)}) after a redirect from a public "
            "address: not a public address",
        )
    if not addresses:
        raise httpcore.ConnectError(f"cannot resolve {host}")
    return addresses


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
        if not getattr(_deadline, "public_only", False):
            bounded = _bounded(timeout, httpcore.ConnectTimeout)
            inner = self._inner.connect_tcp(host, port, bounded, local_address, socket_options)
            return _DeadlineStream(inner)
        # After a redirect from a public address: connect only to the addresses just
        # checked, so a DNS answer that changes between check and connect cannot
        # reach an internal one. (TLS still verifies the certificate for the host name.)
        error: httpcore.ConnectError | None = None
        for address in _public_addresses_only(host, port):
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


def make_client(settings: FetchSettings) -> httpx.Client:
    """An httpx client whose sockets honour fetch_source's whole-request deadline.

    Share one across threads. A client made elsewhere works too, but then only
    the body download is bounded by the deadline, not a trickled header.
    """
    transport = httpx.HTTPTransport(
        limits=httpx.Limits(max_connections=max(4, settings.max_workers * 2), max_keepalive_connections=16)
    )
    pool = getattr(transport, "_pool", None)
    # httpx has no public hook for the network backend; without this the deadline
    # still bounds the body, just not a server that trickles its headers.
    if isinstance(pool, httpcore.ConnectionPool) and hasattr(pool, "_network_backend"):
        pool._network_backend = _DeadlineBackend(pool._network_backend)
    return httpx.Client(
        transport=transport,
        timeout=_timeout(settings),
        headers=_request_headers(settings),
        follow_redirects=False,
    )


def _timeout(settings: FetchSettings) -> httpx.Timeout:
    return httpx.Timeout(
        connect=settings.connect_timeout_s,
        read=settings.read_timeout_s,
        write=settings.read_timeout_s,
        pool=settings.deadline_s,
    )


def _request_headers(settings: FetchSettings) -> dict[str, str]:
    return {"User-Agent": settings.user_agent, "Accept-Encoding": "gzip", "Accept": ACCEPT}


def fetch_source(
    source: Source,
    state: FetchState,
    settings: FetchSettings,
    *,
    client: httpx.Client | None = None,
    base_dir: Path | None = None,
    now: datetime | None = None,
    resolve: Resolver | None = None,
) -> FetchResult:
    """Fetch a source's feed. Never raises: failures are results with status "error".

    ``resolve`` replaces the system resolver for the redirect checks (tests use it
    to make a local server's address count as public).
    """
    started_at = now or datetime.now(UTC)
    clock = time.monotonic()
    result = FetchResult(source=source.name, url=source.url, status="error", started_at=started_at)
    try:
        url = (source.url or "").strip()
        scheme = urlsplit(url).scheme.lower() if url else ""
        if scheme in ("http", "https"):
            if not _host(url):
                raise FetchError("invalid_url", f"{url!r} has no host name")
            _fetch_http(url, state, settings, client, result, resolve or resolve_host)
        elif scheme == "file" or (url and len(scheme) <= 1):
            # len(scheme) == 1: a Windows drive letter, i.e. a local path.
            _fetch_file(url, scheme, state, settings, base_dir, result)
        elif not url:
            raise FetchError("invalid_url", "the source has no URL")
        else:
            raise FetchError(
                "invalid_url", f"unsupported URL scheme {scheme!r} (use http, https, file or a path)"
            )
    except FetchError as exc:
        _fail(result, exc.error_class, str(exc), exc.response)
    except Exception as exc:  # never let one broken source stop a run
        _fail(result, "internal_error", f"{type(exc).__name__}: {exc}")
    result.duration_ms = int((time.monotonic() - clock) * 1000)
    return result


def _host(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def _fail(
    result: FetchResult, error_class: str, message: str, response: httpx.Response | None = None
) -> None:
    result.status = "error"
    result.error_class = error_class
    result.error = message
    result.body = None
    if response is not None:
        result.http_status = response.status_code
        result.headers = _scheduling_headers(response)


def _scheduling_headers(response: httpx.Response) -> dict[str, str]:
    return {k: response.headers[k] for k in SCHEDULING_HEADERS if k in response.headers}


def _body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _fetch_http(
    url: str,
    state: FetchState,
    settings: FetchSettings,
    client: httpx.Client | None,
    result: FetchResult,
    resolve: Resolver,
) -> None:
    own_client = client is None
    http = client or make_client(settings)
    _deadline.until = time.monotonic() + settings.deadline_s
    _deadline.resolve = resolve
    _deadline.public_only = False
    try:
        _follow(http, url, state, settings, result, resolve)
    except httpx.TimeoutException as exc:
        remaining = _remaining()
        if remaining is not None and remaining <= 0.05:
            raise FetchError(
                "timeout", f"no complete response within the {settings.deadline_s:g} s deadline"
            ) from exc
        if isinstance(exc, httpx.ConnectTimeout):
            raise FetchError("timeout", f"no connection within {settings.connect_timeout_s:g} s") from exc
        raise FetchError("timeout", f"server sent nothing for {settings.read_timeout_s:g} s") from exc
    except httpx.ConnectError as exc:
        raise FetchError("connect_error", f"cannot connect: {exc}") from exc
    except httpx.DecodingError as exc:
        raise FetchError("decode_error", f"response body cannot be decoded: {exc}") from exc
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise FetchError("invalid_url", f"invalid URL: {exc}") from exc
    except httpx.TransportError as exc:
        raise FetchError("network_error", f"{type(exc).__name__}: {exc}") from exc
    finally:
        _deadline.until = None
        _deadline.resolve = None
        _deadline.public_only = False
        if own_client:
            http.close()


def _follow(
    http: httpx.Client,
    url: str,
    state: FetchState,
    settings: FetchSettings,
    result: FetchResult,
    resolve: Resolver,
) -> None:
    headers = _request_headers(settings)
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    current = url
    for hop in range(MAX_REDIRECTS + 1):
        request = http.build_request("GET", current, headers=headers, timeout=_timeout(settings))
        response = http.send(request, stream=True, follow_redirects=False)
        try:
            if response.status_code in _REDIRECTS:
                location = response.headers.get("location")
                if not location:
                    raise FetchError(
                        "bad_redirect", f"HTTP {response.status_code} without a Location", response
                    )
                target = urljoin(current, location)
                if urlsplit(target).scheme.lower() not in ("http", "https"):
                    raise FetchError("bad_redirect", f"redirected to an unsupported URL {target!r}", response)
                refusal = redirect_refusal(current, target, resolve=resolve)
                if refusal:
                    raise FetchError("blocked_redirect", refusal, response)
                # From a public address on, every connection must go to a public one.
                if not _deadline.public_only:
                    _, addresses = _url_addresses(current, resolve)
                    _deadline.public_only = any(is_public_address(a) for a in addresses)
                if hop == 0 and response.status_code in _PERMANENT_REDIRECTS:
                    result.permanent_redirect = True
                current = target
                continue
            result.final_url = current
            _read_response(response, state, settings, result)
            return
        finally:
            response.close()
    raise FetchError("too_many_redirects", f"more than {MAX_REDIRECTS} redirects (last: {current})")


def _read_response(
    response: httpx.Response, state: FetchState, settings: FetchSettings, result: FetchResult
) -> None:
    status = response.status_code
    result.http_status = status
    result.headers = _scheduling_headers(response)
    if status == 304:
        result.status = "not_modified"
        result.etag = response.headers.get("etag") or state.etag
        result.last_modified = response.headers.get("last-modified") or state.last_modified
        result.body_hash = state.body_hash
        return
    reason = f"HTTP {status} {response.reason_phrase}".strip()
    if status == 410:
        raise FetchError("gone", f"{reason}: the feed was removed", response)
    if status == 429:
        wait = response.headers.get("retry-after")
        raise FetchError("rate_limited", reason + (f" (Retry-After: {wait})" if wait else ""), response)
    if status >= 500:
        raise FetchError("http_5xx", reason, response)
    if status >= 400:
        raise FetchError("http_4xx", reason, response)
    if not 200 <= status < 300:
        raise FetchError(
            "bad_redirect" if 300 <= status < 400 else "http_4xx", f"unexpected {reason}", response
        )

    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.max_bytes:
        raise FetchError(
            "too_large", f"response is {int(declared)} bytes, over the {settings.max_bytes} limit", response
        )
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        result.bytes_read = size
        if size > settings.max_bytes:
            raise FetchError("too_large", f"response exceeds the {settings.max_bytes}-byte limit", response)
        chunks.append(chunk)
        remaining = _remaining()
        if remaining is not None and remaining <= 0:
            raise httpx.ReadTimeout("whole-request deadline exceeded")
    body = b"".join(chunks)
    result.etag = response.headers.get("etag")
    result.last_modified = response.headers.get("last-modified")
    result.content_type = response.headers.get("content-type")
    _set_body(result, body, state)


def _set_body(result: FetchResult, body: bytes, state: FetchState) -> None:
    result.body_hash = _body_hash(body)
    result.bytes_read = len(body)
    if state.body_hash and result.body_hash == state.body_hash:
        result.status = "unchanged"
        result.body = None
    else:
        result.status = "ok"
        result.body = body


def _local_path(url: str, scheme: str, base_dir: Path | None) -> Path:
    if scheme == "file":
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise FetchError("invalid_url", f"file URL with a remote host {parts.netloc!r} is not supported")
        path = Path(unquote(parts.path))
    else:
        path = Path(url).expanduser()
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return path


# Kernel and device file systems: their "regular" files (/proc/self/environ, /sys/...)
# are not feeds, and reading them would leak process or machine details into the database.
_SYSTEM_TREES = ("/proc", "/sys", "/dev")
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
)


def _check_regular(path: Path, mode: int) -> None:
    """Refuse anything but a regular file (a directory is not_found, like a missing file)."""
    for test, kind in _KINDS:
        if test(mode):
            if kind == "a directory":
                raise FetchError("not_found", f"not a file: {path} is a directory")
            raise FetchError("not_a_file", f"{path} is {kind}, not a regular file: refused as a feed source")
    if not stat.S_ISREG(mode):
        raise FetchError("not_a_file", f"{path} is not a regular file: refused as a feed source")


def _system_tree(real: str) -> str | None:
    for tree in _SYSTEM_TREES:
        if real == tree or real.startswith(tree + os.sep):
            return tree
    return None


def _refuse_system_tree(path: Path, real: str) -> None:
    tree = _system_tree(real)
    if tree:
        raise FetchError(
            "not_a_file", f"{path} is in {tree}, a kernel or device file system: refused as a feed source"
        )


def _opened_path(fd: int) -> str | None:
    """Where an open file really is (Linux), whatever links led to it; None where unknown."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def _fetch_file(
    url: str,
    scheme: str,
    state: FetchState,
    settings: FetchSettings,
    base_dir: Path | None,
    result: FetchResult,
) -> None:
    path = _local_path(url, scheme, base_dir)
    result.final_url = str(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        hint = ""
        first = url.split("/", 1)[0]
        if scheme == "" and "." in first and not first.startswith("."):
            hint = f" (if {first!r} is a web site, write the URL with https://)"
        raise FetchError("not_found", f"no such file: {path}{hint}") from None
    except OSError as exc:
        raise FetchError("read_error", f"cannot read {path}: {exc.strerror or exc}") from exc
    # Checked before opening: opening some devices has effects of its own.
    _refuse_system_tree(path, os.path.realpath(path))
    _check_regular(path, info.st_mode)
    # Non-blocking open: should a pipe be swapped in after the check, opening it must not hang.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise FetchError("read_error", f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        # And again for the file actually opened, should a link have changed in between.
        _check_regular(path, os.fstat(fd).st_mode)
        _refuse_system_tree(path, _opened_path(fd) or os.path.realpath(path))
        with os.fdopen(fd, "rb", closefd=False) as handle:
            body = handle.read(settings.max_bytes + 1)
    except OSError as exc:
        raise FetchError("read_error", f"cannot read {path}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    if len(body) > settings.max_bytes:
        raise FetchError("too_large", f"{path} is over the {settings.max_bytes}-byte limit")
    _set_body(result, body, state)
