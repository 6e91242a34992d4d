"""OPML subscription lists in and out, as feed readers export and import them.

Reading covers OPML 1.0, 1.1 and 2.0 as Feedly, Inoreader, Miniflux, FreshRSS and NetNewsWire
write it: a feed is an ``<outline>`` with an ``xmlUrl``; outlines without one that hold others are
folders, and a feed's folders (outermost first, joined by "/") become its ``category``. Its name is
the outline's ``text`` (what the reader showed), else its ``title``, else the feed's host.
Attribute names are matched ignoring case (``xmlURL`` and ``xmlurl`` occur in the wild).

OPML files come from other people: they are parsed with defusedxml (no entity declarations, no
external entities or DTDs fetched; expat's own amplification limits apply too) and capped in size,
and only http(s) feed URLs are accepted: an OPML file must not make Storyline read local files.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from pipeline.feeds.sources import normalise_category, normalise_name
from pipeline.records import Source

# Subscription lists of thousands of feeds are a few hundred kilobytes.
MAX_OPML_BYTES = 16 * 1024 * 1024
# Folders deeper than this are flattened into the deepest one kept (readers show two levels).
MAX_FOLDER_DEPTH = 8


class OpmlError(ValueError):
    """The document is not an OPML subscription list (the message says why)."""


@dataclass(frozen=True)
class OpmlFeed:
    """One feed outline, as read."""

    name: str
    url: str
    category: str | None
    language: str | None
    # Where it was in the file, for messages: "outline #12 'Name'".
    where: str


@dataclass
class OpmlDocument:
    title: str | None
    feeds: list[OpmlFeed] = field(default_factory=list)
    folders: int = 0
    # Outlines that are not usable feeds, each with why.
    invalid: list[str] = field(default_factory=list)


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _attr(element: ET.Element, name: str) -> str | None:
    """An attribute by name, ignoring case and namespace; stripped, None when empty."""
    wanted = name.lower()
    for key, value in element.attrib.items():
        if _local(key) == wanted:
            value = " ".join(value.split())
            return value or None
    return None


def feed_url(raw: str | None) -> tuple[str | None, str | None]:
    """(the http(s) URL of an xmlUrl value, None) or (None, why it is not usable)."""
    if not raw:
        return None, "has no xmlUrl"
    url = raw.strip()
    lowered = url.lower()
    # Old readers wrote feed://host/path and feed:https://host/path for "subscribe" links.
    if lowered.startswith("feed://"):
        url = "http://" + url[len("feed://") :]
    elif lowered.startswith("feed:"):
        url = url[len("feed:") :]
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None, f"xmlUrl {raw[:80]!r} is not a valid URL"
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None, f"xmlUrl {raw[:80]!r} is not an http(s) URL"
    if parts.username or parts.password:
        return None, "xmlUrl carries a user name or password; add it by hand if you mean it"
    return url, None


def read_opml(data: bytes) -> OpmlDocument:
    """The feeds, folders and unusable outlines of an OPML document. Raises OpmlError when the
    document is too large, not well-formed XML, uses entity declarations, or is not OPML."""
    if len(data) > MAX_OPML_BYTES:
        raise OpmlError(f"file is {len(data):,} bytes, over the {MAX_OPML_BYTES:,}-byte limit for OPML")
    try:
        root = SafeET.fromstring(data.lstrip(b" \t\r\n"), forbid_dtd=False, forbid_entities=True)
    except DefusedXmlException as exc:
        raise OpmlError(f"refused: the document declares entities or external references ({exc})") from exc
    except ET.ParseError as exc:
        raise OpmlError(f"not well-formed XML: {exc}") from exc
    if _local(root.tag) != "opml":
        raise OpmlError(f"an XML document with root <{_local(root.tag)}>, not <opml>")
    head = next((child for child in root if _local(child.tag) == "head"), None)
    title_el = next((c for c in head if _local(c.tag) == "title"), None) if head is not None else None
    body = next((child for child in root if _local(child.tag) == "body"), None)
    if body is None:
        raise OpmlError("an <opml> document without a <body>")
    title = " ".join((title_el.text or "").split()) if title_el is not None else ""
    doc = OpmlDocument(title=title or None)
    for number, (outline, folders) in enumerate(_outlines(body, []), start=1):
        name = _attr(outline, "text") or _attr(outline, "title")
        where = f"outline #{number}" + (f" {name[:80]!r}" if name else "")
        raw_url = _attr(outline, "xmlUrl")
        has_children = any(_local(c.tag) == "outline" for c in outline)
        if raw_url is None and has_children:
            doc.folders += 1
            continue
        url, problem = feed_url(raw_url)
        if url is None:
            kind = _attr(outline, "type")
            if raw_url is None and kind and kind.lower() not in ("rss", "atom", "feed"):
                problem = f"is a {kind!r} outline, not a feed"
            doc.invalid.append(f"{where} {problem}")
            continue
        category = normalise_category("/".join(folders)) or _category_attribute(outline)
        language = _attr(outline, "language")
        doc.feeds.append(
            OpmlFeed(
                name=normalise_name(name or "") or (urlsplit(url).hostname or url).removeprefix("www."),
                url=url,
                category=category,
                language=language if language and len(language) <= 35 else None,
                where=where,
            )
        )
    return doc


def _outlines(parent: ET.Element, folders: list[str]) -> Iterator[tuple[ET.Element, list[str]]]:
    """Every outline below ``parent`` in document order, with the folder names above it."""
    for child in parent:
        if _local(child.tag) != "outline":
            continue
        yield child, folders
        if any(_local(c.tag) == "outline" for c in child):
            name = _attr(child, "text") or _attr(child, "title")
            inner = folders if _attr(child, "xmlUrl") or not name else [*folders, name.replace("/", "-")]
            yield from _outlines(child, inner[:MAX_FOLDER_DEPTH])


def _category_attribute(outline: ET.Element) -> str | None:
    """OPML 2.0's ``category`` attribute ("/News/World,/Tags/x"): its first path, when no folder."""
    value = _attr(outline, "category")
    if not value:
        return None
    return normalise_category(value.split(",")[0].strip().strip("/"))


def write_opml(sources: Sequence[Source], *, title: str, now: datetime | None = None) -> str:
    """An OPML 2.0 document of the sources, in folders by category (sources without one at the top
    level), in the order given. Feed readers import it as subscriptions."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = format_datetime(now or datetime.now(UTC))
    body = ET.SubElement(root, "body")
    folders: dict[tuple[str, ...], ET.Element] = {(): body}

    def folder(path: tuple[str, ...]) -> ET.Element:
        if path not in folders:
            folders[path] = ET.SubElement(folder(path[:-1]), "outline", text=path[-1], title=path[-1])
        return folders[path]

    for source in sources:
        path = tuple(source.category.split("/")) if source.category else ()
        attrs = {"type": "rss", "text": source.name, "title": source.name, "xmlUrl": source.url}
        if source.language:
            attrs["language"] = source.language
        ET.SubElement(folder(path), "outline", attrs)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
