"""Which addresses count as public, and which redirects may be followed.

A hop from a public address to a loopback, private, link-local or otherwise
non-global one is refused (blocked_redirect), so a public feed cannot point the
fetcher at internal services. A source configured on such an address is
trusted, and so are its redirects until a hop reaches a public address.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import httpcore

from pipeline.feeds.fetch_result import FetchError

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


def url_addresses(url: str, resolve: Resolver) -> tuple[str, list[str]]:
    """The host of ``url`` and the addresses ``resolve`` gives for it ([] when it has no host)."""
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
    _, sources = url_addresses(from_url, resolve)
    if not any(is_public_address(a) for a in sources):
        return None
    host, targets = url_addresses(to_url, resolve)
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


def public_addresses_only(host: str, port: int, resolve: Resolver) -> list[str]:
    """The addresses to connect to on a hop that must stay public; refuses any other."""
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
