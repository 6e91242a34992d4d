"""Options of the reading commands: `storyline web`, `search` and `feed`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _int_between(low: int, high: int, noun: str, bounds: str) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high`` (``noun``/``bounds`` word the errors)."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not {noun}: {value!r}") from exc
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{bounds} {low}–{high}, not {number}")
        return number

    return parse


_port = _int_between(1, 65535, "a port number", "a port is")
_limit = _int_between(1, 500, "a whole number", "must be")


def add_reading_commands(sub: Any, common: Any, parse_day: Any) -> None:
    """Register the commands on the parser's subparsers (``common`` adds --db)."""
    p = sub.add_parser("web", help="serve the web app, its JSON API and Atom feeds until stopped")
    common(p)
    p.add_argument("--host", help="address to listen on (default 127.0.0.1; others need a token or --public)")
    p.add_argument("--port", type=_port, help="port (default 8080)")
    p.add_argument(
        "--public", action="store_true", help="allow listening beyond loopback without an access token"
    )

    p = sub.add_parser("search", help="find stories by meaning and words, best match first")
    p.add_argument("query", help='free text, e.g. "hostage deal"')
    common(p)
    p.add_argument("--from", dest="since", type=parse_day, help="stories seen on or after this day")
    p.add_argument("--to", dest="until", type=parse_day, help="stories that began on or before this day")
    p.add_argument("--limit", type=_limit, default=10, help="how many stories (default 10)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = sub.add_parser("feed", help="write the Atom feed of stories (or of a watch topic) to a file")
    common(p)
    p.add_argument("--topic", help="only stories of this watch topic")
    p.add_argument("--out", type=Path, required=True, help="the .atom file to write")
    p.add_argument("--base-url", help="where the web app is reachable, for links (default: web.base_url)")
