"""Headers every response carries, and the access token for non-loopback listeners.

The pages load nothing but their own stylesheet: no script at all, no external asset, no
frames; forms submit only to the app. Feed text is escaped by the templates (Jinja2
autoescape) and links are http(s) only, so the CSP is the second line of defence, not the first.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
TOKEN_COOKIE = "storyline_token"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def secure_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    # A route may carry its own (stricter or page-specific) policy: the digest page's.
    response.headers.setdefault("Content-Security-Policy", CSP)
    return response


Scope = MutableMapping[str, Any]
CallNext = Callable[[Request], Awaitable[Response]]


def token_guard(token: str | None) -> Callable[[Request, CallNext], Awaitable[Response]]:
    """Middleware: with a token configured, every request must carry it (a Bearer header, the
    cookie set on a first visit with ``?token=``, or ``?token=`` itself, which feed readers use)."""
    expected = token.encode() if token else None

    async def guard(request: Request, call_next: CallNext) -> Response:
        if expected is not None:
            offered = _offered(request)
            if offered is None or not hmac.compare_digest(offered.encode(), expected):
                return secure_headers(PlainTextResponse("access token required\n", status_code=401))
        response = await call_next(request)
        if expected is not None and request.query_params.get("token"):
            response.set_cookie(TOKEN_COOKIE, token or "", httponly=True, samesite="strict")
        return secure_headers(response)

    return guard


def _offered(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE)
