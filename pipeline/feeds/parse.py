"""Feed bytes to entries: RSS, Atom and RDF through feedparser, JSON Feed by hand.

parse_feed never raises. Its outcomes:
  * entries, no warning     a well-formed feed (possibly with zero items);
  * entries and a warning   salvaged from a feed that is not well-formed, or whose
                            declared character set was wrong;
  * error_class and error   nothing usable: "empty", "not_a_feed" (an HTML page,
                            OPML, some other XML or JSON), "malformed" (garbage).
feedparser only ever sees a byte stream: given a string (even bytes) it would
open local paths and URLs.
"""

from __future__ import annotations

import calendar
import codecs
import io
import json
import re
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import feedparser

try:  # feedparser imports it too: without it, feeds in an undeclared legacy charset come out as mojibake
    import chardet
except ImportError:  # pragma: no cover - a declared dependency; parsing degrades rather than fails
    chardet = None

from pipeline.records import FeedEntry, ParsedFeed

_XML_DECL = re.compile(rb"^(\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']", re.S)
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.I)
# Single-byte charsets that any byte string "decodes" in: a UTF-8 body declared as one of these
# comes out as mojibake ("CafÃ©") unless we notice.
_LATIN = {"iso-8859-1", "iso8859-1", "latin-1", "latin1", "l1", "windows-1252", "cp1252", "us-ascii", "ascii",
          "iso-8859-15", "iso8859-15"}  # fmt: skip
# feedparser reports these as bozo, but the document was parsed normally.
_HARMLESS_BOZO = ("NonXMLContentType",)
_HTML_SNIFF = re.compile(rb"<!doctype\s+html|<html[\s>]", re.I)
_HTML_TITLE = re.compile(rb"<title[^>]*>(.{1,200}?)</title>", re.I | re.S)
_MAX_TTL_MINUTES = 7 * 24 * 60


def parse_feed(body: bytes, *, content_type: str | None = None, url: str | None = None) -> ParsedFeed:
    """Entries of a feed document, or a readable reason why there are none."""
    try:
        return _parse(body or b"", content_type, url)
    except Exception as exc:  # a parser bug must not take a whole ingest run down
        return ParsedFeed(
            entries=[], error_class="malformed", error=f"parser failed: {type(exc).__name__}: {exc}"
        )


def _parse(body: bytes, content_type: str | None, url: str | None) -> ParsedFeed:
    if not body.strip(b" \t\r\n\x00\xef\xbb\xbf"):
        return ParsedFeed(entries=[], error_class="empty", error="empty response body")
    head = body.lstrip()[:1]
    if head in (b"{", b"[") or (content_type and "json" in content_type.lower() and head != b"<"):
        return _parse_json_feed(body)
    body, content_type, charset_note = _fix_declared_charset(body, content_type)
    headers = {}
    if content_type:
        headers["content-type"] = content_type
    if url and url.lower().startswith(("http://", "https://")):
        # Base for relative links inside the feed.
        headers["content-location"] = url
    result = feedparser.parse(io.BytesIO(body), response_headers=headers)
    version = result.get("version") or ""
    raw_entries = result.get("entries") or []
    if not version and not raw_entries:
        return _no_feed(body, result)
    feed = result.get("feed") or {}
    entries = [_entry(e) for e in raw_entries]
    warnings = [charset_note] if charset_note else []
    if result.get("bozo"):
        exc = result.get("bozo_exception")
        problem = _bozo_message(exc)
        if problem and not entries and not type(exc).__name__.startswith("CharacterEncoding"):
            # A broken document that yielded nothing: report it, don't pass it off as an empty feed.
            return ParsedFeed(entries=[], version=version or None, error_class="malformed",
                              error=f"{problem}; no entries could be salvaged")  # fmt: skip
        if problem:
            warnings.append(f"{problem}; {len(entries)} entries salvaged" if entries else problem)
    return ParsedFeed(
        entries=entries,
        title=_text(feed.get("title")),
        version=version or None,
        ttl_minutes=_ttl(feed.get("ttl")),
        warning="; ".join(warnings) or None,
    )


def _fix_declared_charset(body: bytes, content_type: str | None) -> tuple[bytes, str | None, str | None]:
    """Correct the two common lies about a feed's character set, before feedparser believes them.

      * valid UTF-8 declared as a single-byte Latin charset: read as UTF-8;
      * not valid UTF-8 but declared as UTF-8, or not declared at all (XML's default is UTF-8):
        mostly UTF-8 with a few stray bytes is read as UTF-8 (those bytes become U+FFFD); anything
        else is a legacy charset (windows-1255, KOI8-R, Big5 ...), detected and converted to UTF-8.

    Also drops whitespace before the XML declaration (common in real feeds, and
    fatal to the strict parser).
    """
    stripped = body.lstrip(b" \t\r\n")
    if stripped.startswith(b"<?xml"):
        body = stripped
    declared: list[str] = []
    header_charset = _CHARSET.search(content_type or "")
    if header_charset:
        declared.append(header_charset.group(1).lower())
    prolog = _XML_DECL.match(body[:300])
    if prolog:
        declared.append(prolog.group(2).decode("ascii").lower())
    if body.isascii() or body.startswith(_UNICODE_BOMS) or b"\x00" in body[:4]:
        return body, content_type, None  # ASCII reads the same in all of them; UTF-16/32: feedparser's job
    wrong = [d for d in declared if d in _LATIN]
    if wrong:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return body, content_type, None
        note = f"declared charset {wrong[0]} but the bytes are UTF-8; read as UTF-8"
        return _as_utf8(body), _utf8_content_type(content_type), note
    if not all(_is_utf8_name(d) for d in declared):
        return body, content_type, None  # a legacy charset, declared: feedparser honours it
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return body, content_type, None
    claim = f"declared character set {declared[0]} but" if declared else "no character set declared and"
    text, how = _decode_not_utf8(body)
    note = f"{claim} the bytes are not UTF-8; {how}"
    return _as_utf8(text.encode("utf-8")), _utf8_content_type(content_type), note


_UNICODE_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# Of the non-ASCII characters of a body that is UTF-8 with stray bytes, at most this share are broken;
# legacy charsets rarely form valid UTF-8 sequences, so their bytes are nearly all broken.
_STRAY_BYTES_SHARE = 0.2
# Detection reads at most this much of the body: the lines with non-ASCII bytes in them.
_DETECT_SAMPLE = 64 * 1024
# With fewer non-ASCII bytes than this no detector can tell charsets apart (chardet calls "Café"
# Latin-9 and "£“test”" cp437): those are read as windows-1252, the commonest legacy charset.
_MIN_DETECT_BYTES = 8
_ASCII = bytes(range(128))


def _is_utf8_name(name: str) -> bool:
    return _codec_name(name) == "utf-8"


def _decode_not_utf8(body: bytes) -> tuple[str, str]:
    """A body that is not valid UTF-8 as text, and how it was read."""
    lenient = body.decode("utf-8", errors="replace")
    broken = lenient.count("\ufffd")
    non_ascii = len(lenient) - len(lenient.encode("ascii", errors="ignore"))
    if broken <= _STRAY_BYTES_SHARE * non_ascii:
        return lenient, f"read as UTF-8 with {broken} invalid byte sequence(s) replaced"
    detected, how = _detect(body)
    if detected:
        try:
            return body.decode(detected), f"read as {detected} ({how})"
        except (UnicodeDecodeError, LookupError):
            pass
    return lenient, f"no other charset detected; read as UTF-8, {broken} invalid byte sequence(s) replaced"


def _detect(body: bytes) -> tuple[str | None, str]:
    """The charset chardet finds in the body's non-ASCII lines (markup tells it nothing), and how."""
    lines = []
    size = 0
    for line in body.splitlines():
        if not line.isascii():
            lines.append(line)
            size += len(line)
            if size >= _DETECT_SAMPLE:
                break
    sample = b"\n".join(lines)
    if len(sample.translate(None, _ASCII)) < _MIN_DETECT_BYTES:
        return "windows-1252", "too few non-ASCII bytes to detect a charset"
    if chardet is None:
        return None, "chardet is not installed"
    encoding = chardet.detect(sample).get("encoding")
    if not encoding or _is_utf8_name(encoding) or encoding.lower() in ("ascii", "us-ascii"):
        return None, "not detected"
    # As in browsers: text labelled Latin-1 is windows-1252, which has printable characters (€ – ")
    # where Latin-1 has invisible control codes.
    if _codec_name(encoding) in ("latin-1", "iso8859-1"):
        return "windows-1252", f"detected {encoding}, read as its superset"
    return encoding, "detected"


def _codec_name(name: str) -> str | None:
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _utf8_content_type(content_type: str | None) -> str | None:
    if not content_type:
        return content_type
    if _CHARSET.search(content_type):
        return _CHARSET.sub("charset=utf-8", content_type)
    return f"{content_type}; charset=utf-8"


def _as_utf8(body: bytes) -> bytes:
    """UTF-8 bytes with their XML declaration (if any) saying so."""
    prolog = _XML_DECL.match(body[:300])
    if prolog:
        start, end = prolog.span(2)
        body = body[:start] + b"utf-8" + body[end:]
    return body


def _bozo_message(exc: Any) -> str | None:
    if exc is None:
        return "feed is not well-formed"
    name = type(exc).__name__
    if name in _HARMLESS_BOZO:
        return None
    if name.startswith("CharacterEncoding"):
        return f"character set problem: {exc}"
    where = ""
    if hasattr(exc, "getLineNumber"):
        try:
            where = f" at line {exc.getLineNumber()}, column {exc.getColumnNumber()}"
        except Exception:  # SAX locators may be gone after parsing
            where = ""
    return f"feed is not well-formed XML{where}: {getattr(exc, 'getMessage', lambda: str(exc))()}"


def _no_feed(body: bytes, result: Any) -> ParsedFeed:
    head = body[:4096]
    if _HTML_SNIFF.search(head):
        title = _HTML_TITLE.search(head)
        named = f" titled {_text(title.group(1).decode('utf-8', 'replace'))!r}" if title else ""
        return ParsedFeed(
            entries=[], error_class="not_a_feed", error=f"got an HTML page{named}, not a feed (wrong URL?)"
        )
    if result.get("bozo") and type(result.get("bozo_exception")).__name__ not in _HARMLESS_BOZO:
        return ParsedFeed(
            entries=[],
            error_class="malformed",
            error=f"not a readable feed: {_bozo_message(result.get('bozo_exception'))}",
        )
    root = re.search(rb"<([A-Za-z][\w:.-]*)", body.lstrip()[:2000].split(b"?>")[-1])
    what = f"an XML document with root <{root.group(1).decode('ascii', 'replace')}>" if root else "a document"
    return ParsedFeed(entries=[], error_class="not_a_feed", error=f"{what}, not an RSS, Atom or RDF feed")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _struct_to_utc(value: Any) -> datetime | None:
    """feedparser's *_parsed values are UTC struct_time; some feeds produce absurd ones."""
    if not isinstance(value, time.struct_time | tuple) or len(value) < 6:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm((*tuple(value[:6]), 0, 0, 0)), tz=UTC)
    except (ValueError, OverflowError, OSError, TypeError):
        return None


def _entry(e: Any) -> FeedEntry:
    contents = [c.get("value") for c in e.get("content") or [] if isinstance(c, dict) and c.get("value")]
    published = None
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        published = _struct_to_utc(e.get(key))
        if published:
            break
    return FeedEntry(
        guid=_text(e.get("id")),
        link=_text(e.get("link")),
        title=_text(e.get("title")),
        summary=_text(e.get("summary")),
        content=_text(max(contents, key=len)) if contents else None,
        published_at=published,
        author=_text(e.get("author")),
        publisher=_publisher(e.get("source")),
    )


def _publisher(source: Any) -> str | None:
    """The publisher an aggregator names for an item: RSS <source url="...">Name</source> (Atom's
    <source> carries the original feed's title); its host when the element has no text."""
    if not isinstance(source, dict):
        return None
    name = _text(source.get("title"))
    if name:
        return " ".join(name.split())[:200]
    href = _text(source.get("href"))
    host = urlsplit(href).hostname if href else None
    return host.removeprefix("www.") if host else None


def _ttl(value: Any) -> int | None:
    try:
        minutes = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return min(minutes, _MAX_TTL_MINUTES) if minutes > 0 else None


# JSON Feed (https://jsonfeed.org/version/1.1): cheap to map, and several real outlets publish only this.


def _iso_date(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _json_str(value: Any) -> str | None:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return _text(value)
    return None


def _json_author(item: dict[str, Any]) -> str | None:
    authors = item.get("authors")
    if isinstance(authors, list) and authors and isinstance(authors[0], dict):
        return _json_str(authors[0].get("name"))
    author = item.get("author")
    return _json_str(author.get("name")) if isinstance(author, dict) else None


def _parse_json_feed(body: bytes) -> ParsedFeed:
    try:
        doc = json.loads(body.decode("utf-8-sig", errors="replace"))
    except (ValueError, RecursionError) as exc:
        return ParsedFeed(entries=[], error_class="malformed", error=f"not valid JSON: {exc}")
    version = doc.get("version") if isinstance(doc, dict) else None
    items = doc.get("items") if isinstance(doc, dict) else None
    if not isinstance(version, str) or "jsonfeed.org" not in version:
        return ParsedFeed(entries=[], error_class="not_a_feed", error="a JSON document, not a JSON Feed")
    if items is None:
        items = []  # "items" is required, but a feed that omits it has nothing to say yet: an empty feed
    if not isinstance(items, list):
        problem = f"JSON Feed 'items' is a {type(items).__name__}, not a list"
        return ParsedFeed(entries=[], error_class="malformed", error=problem)
    entries = []
    skipped = 0
    for item in items:
        if not isinstance(item, dict):
            skipped += 1
            continue
        html = _json_str(item.get("content_html"))
        entries.append(
            FeedEntry(
                guid=_json_str(item.get("id")),
                link=_json_str(item.get("url")) or _json_str(item.get("external_url")),
                title=_json_str(item.get("title")),
                summary=_json_str(item.get("summary")),
                content=html or _json_str(item.get("content_text")),
                published_at=_iso_date(item.get("date_published")) or _iso_date(item.get("date_modified")),
                author=_json_author(item),
            )
        )
    short = "json" + version.rstrip("/").rsplit("/", 1)[-1].replace(".", "")
    return ParsedFeed(
        entries=entries,
        title=_json_str(doc.get("title")),
        version=short,
        warning=f"{skipped} JSON Feed items are not objects and were skipped" if skipped else None,
    )
