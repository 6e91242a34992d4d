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
so a second, different DNS answer cannot slip past the check. (The rules:
pipeline.feeds.addresses; the pinned connections: pipeline.feeds.transport.)

Local sources (a path or file:// URL) must be regular files: devices, pipes,
sockets and anything under /proc, /sys or /dev are refused (not_a_file); a
directory is not_found. (pipeline.feeds.local_files.)

Limits: connect and read timeouts from the settings, plus a whole-request
deadline (deadline_s) over connect, redirects, headers and body, because a
server that trickles one byte at a time never trips a per-read timeout. The
body is capped at max_bytes counted after gzip decoding, so a small compressed
bomb is caught too.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from pipeline.feeds.addresses import (
    Resolver,
    is_public_address,
    redirect_allowed,
    redirect_refusal,
    resolve_host,
    url_addresses,
)
from pipeline.feeds.fetch_result import SCHEDULING_HEADERS, FetchError, fail, scheduling_headers, set_body
from pipeline.feeds.local_files import fetch_file
from pipeline.feeds.transport import (
    ACCEPT,
    make_client,
    public_only,
    remaining,
    request_deadline,
    request_headers,
    request_timeout,
    require_public,
)
from pipeline.records import FetchResult, FetchState, Source
from pipeline.settings import FetchSettings

__all__ = [
    "ACCEPT",
    "MAX_REDIRECTS",
    "SCHEDULING_HEADERS",
    "TRANSIENT_ERRORS",
    "FetchError",
    "Resolver",
    "fetch_source",
    "is_public_address",
    "is_transient",
    "make_client",
    "redirect_allowed",
    "redirect_refusal",
    "resolve_host",
]

MAX_REDIRECTS = 5
_REDIRECTS = {301, 302, 303, 307, 308}
_PERMANENT_REDIRECTS = {301, 308}
TRANSIENT_ERRORS = frozenset({"timeout", "connect_error", "network_error", "http_5xx", "rate_limited"})


def is_transient(result: FetchResult) -> bool:
    """Whether a failed fetch is worth retrying within the same run."""
    return result.failed and result.error_class in TRANSIENT_ERRORS


def fetch_source(
    source: Source,
    state: FetchState,
    settings: FetchSettings,
    *,
    client: httpx.Client | None = None,
    base_dir: Path | None = None,
    now: datetime | None = None,
    resolve: Resolver | None = None,
    public_only: bool = False,
) -> FetchResult:
    """Fetch a source's feed. Never raises: failures are results with status "error".

    ``resolve`` replaces the system resolver for the redirect checks (tests use it
    to make a local server's address count as public). ``public_only``: every
    connection, the first included, goes to public addresses only (for URLs taken
    from feed content, such as article pages; refused otherwise as blocked_redirect).
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
            _fetch_http(url, state, settings, client, result, resolve or resolve_host, public_only)
        elif scheme == "file" or (url and len(scheme) <= 1):
            # len(scheme) == 1: a Windows drive letter, i.e. a local path.
            fetch_file(url, scheme, state, settings, base_dir, result)
        elif not url:
            raise FetchError("invalid_url", "the source has no URL")
        else:
            raise FetchError(
                "invalid_url", f"unsupported URL scheme {scheme!r} (use http, https, file or a path)"
            )
    except FetchError as exc:
        fail(result, exc.error_class, str(exc), exc.response)
    except Exception as exc:  # never let one broken source stop a run
        fail(result, "internal_error", f"{type(exc).__name__}: {exc}")
    result.duration_ms = int((time.monotonic() - clock) * 1000)
    return result


def _host(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def _fetch_http(
    url: str,
    state: FetchState,
    settings: FetchSettings,
    client: httpx.Client | None,
    result: FetchResult,
    resolve: Resolver,
    only_public: bool = False,
) -> None:
    own_client = client is None
    http = client or make_client(settings)
    try:
        with request_deadline(settings.deadline_s, resolve):
            if only_public:
                require_public()
            try:
                _follow(http, url, state, settings, result, resolve)
            except httpx.TimeoutException as exc:
                left = remaining()
                if left is not None and left <= 0.05:
                    raise FetchError(
                        "timeout", f"no complete response within the {settings.deadline_s:g} s deadline"
                    ) from exc
                if isinstance(exc, httpx.ConnectTimeout):
                    raise FetchError(
                        "timeout", f"no connection within {settings.connect_timeout_s:g} s"
                    ) from exc
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
    headers = request_headers(settings)
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    current = url
    for hop in range(MAX_REDIRECTS + 1):
        request = http.build_request("GET", current, headers=headers, timeout=request_timeout(settings))
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
                if not public_only():
                    _, addresses = url_addresses(current, resolve)
                    if any(is_public_address(a) for a in addresses):
                        require_public()
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
    result.headers = scheduling_headers(response)
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
        left = remaining()
        if left is not None and left <= 0:
            raise httpx.ReadTimeout("whole-request deadline exceeded")
    body = b"".join(chunks)
    result.etag = response.headers.get("etag")
    result.last_modified = response.headers.get("last-modified")
    result.content_type = response.headers.get("content-type")
    set_body(result, body, state)
