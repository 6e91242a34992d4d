"""Merging imported feeds (OPML) into a sources file without losing what it holds.

The existing file is kept byte for byte: its entries, comments and layout stay as the user wrote
them, and new entries are appended as ``[[sources]]`` tables after a comment saying where they came
from. An imported feed whose URL is already listed is left out (the existing entry wins, with its
name, language and category); one whose name is taken by another feed gets the feed's host added
("News (example.org)"), as sources need unique names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pipeline.feeds.opml import OpmlFeed
from pipeline.feeds.sources import same_url_key
from pipeline.records import Source


@dataclass
class MergePlan:
    """What an import adds, and what it leaves out or changes, each with a readable line."""

    added: list[Source] = field(default_factory=list)
    # Feeds the sources file lists already (by URL).
    already_listed: list[str] = field(default_factory=list)
    # Feeds listed twice in the imported file: the first is kept.
    duplicates: list[str] = field(default_factory=list)
    # Feeds renamed because another feed has their name.
    renamed: list[str] = field(default_factory=list)


def plan_import(feeds: Sequence[OpmlFeed], existing: Sequence[Source]) -> MergePlan:
    """Which of ``feeds`` to add to a sources file that lists ``existing``."""
    plan = MergePlan()
    by_url = {same_url_key(s.url): s.name for s in existing}
    imported_urls: dict[str, str] = {}
    names = {s.name.casefold() for s in existing}
    for feed in feeds:
        key = same_url_key(feed.url)
        if key in by_url:
            plan.already_listed.append(f"{feed.where}: already listed as {by_url[key]!r}")
            continue
        if key in imported_urls:
            plan.duplicates.append(f"{feed.where}: same xmlUrl as {imported_urls[key]}, left out")
            continue
        imported_urls[key] = feed.where
        name = _free_name(feed.name, feed.url, names)
        if name != feed.name:
            plan.renamed.append(f"{feed.where}: name taken by another feed, added as {name!r}")
        names.add(name.casefold())
        plan.added.append(Source(name=name, url=feed.url, language=feed.language, category=feed.category))
    return plan


def _free_name(name: str, url: str, taken: set[str]) -> str:
    if name.casefold() not in taken:
        return name
    host = (urlsplit(url).hostname or "").removeprefix("www.")
    candidate = f"{name} ({host})" if host else name
    number = 2
    while candidate.casefold() in taken:
        candidate = f"{name} ({host} {number})" if host else f"{name} ({number})"
        number += 1
    return candidate


def toml_string(value: str) -> str:
    """A TOML basic string holding ``value`` exactly."""
    out = ['"']
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\t":
            out.append(ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def sources_toml(sources: Sequence[Source]) -> str:
    """``[[sources]]`` tables for the sources, in order, each followed by a blank line."""
    blocks = []
    for s in sources:
        lines = ["[[sources]]", f"name = {toml_string(s.name)}", f"url = {toml_string(s.url)}"]
        if s.language:
            lines.append(f"language = {toml_string(s.language)}")
        if s.category:
            lines.append(f"category = {toml_string(s.category)}")
        if s.aggregator:
            lines.append("aggregator = true")
        if s.fulltext is not None:
            lines.append(f"fulltext = {'true' if s.fulltext else 'false'}")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def appended(existing_text: str, sources: Sequence[Source], note: str) -> str:
    """The sources file text with ``sources`` appended after a ``# note`` comment line."""
    if not sources:
        return existing_text
    head = existing_text
    if head and not head.endswith("\n"):
        head += "\n"
    if head.strip():
        head += "\n"
    comment = "# " + " ".join(note.split()) + "\n"
    return head + comment + sources_toml(sources)
