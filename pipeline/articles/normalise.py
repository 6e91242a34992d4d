"""Parsed feed entries and imported records to cleaned Article objects."""

from __future__ import annotations

import re
import reprlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pipeline.articles.clean import clean_text, html_to_text
from pipeline.articles.identity import article_id, canonical_url, content_hash
from pipeline.articles.language import detect_language
from pipeline.articles.publisher import is_aggregator, publisher_of, strip_outlet_suffix
from pipeline.records import Article, FeedEntry, ParsedFeed, Source

# Dates this far past the fetch time are wrong clocks or time zones, not scheduled news.
FUTURE_TOLERANCE = timedelta(hours=1)
# Dates at or before the Unix epoch are placeholders (0001-01-01, 1970-01-01T00:00Z) or broken
# clocks, not news; years near 1 also overflow the time arithmetic downstream (lookback windows).
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_DERIVED_TITLE = 90
# Per-article caps, for feed entries and imported records alike. A feed body is capped at
# FetchSettings.max_bytes (10 MB) in all, but one entry could still be nearly all of it; no
# headline or article needs more than this, and embedding reads only the first few hundred tokens.
MAX_TITLE_CHARS = 1_000
MAX_TEXT_CHARS = 100_000
# Raw (HTML) fields are cut at this many times the cap before cleaning, so cleaning stays cheap.
_RAW_FACTOR = 4
# Other imported string fields (id, source, url, language): longer ones are not ids or URLs.
MAX_FIELD_CHARS = 4_096
# C0 control characters other than tab and line breaks are never text (NUL breaks tools
# downstream); vertical tab and form feed separate words. Lone surrogates (from JSON escapes
# such as "\ud800", half a character) cannot be stored as UTF-8 at all.
_CONTROLS = {c: None for c in (*range(0x20), 0x7F) if chr(c) not in "\t\n\r"} | {0x0B: " ", 0x0C: " "}
_SURROGATE = re.compile("[\ud800-\udfff]")
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)]*\s+")
# A period after these ends a title or an initial, not a sentence ("Alaska Gov. Sarah Palin").
# fmt: off
_ABBREVIATIONS = frozenset({
    "mr", "mrs", "ms", "dr", "prof", "gov", "sen", "rep", "gen", "col", "lt", "sgt", "capt", "adm",
    "st", "mt", "ft", "jr", "sr", "inc", "ltd", "co", "corp", "no", "vs",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
})
# fmt: on
_INITIALS = re.compile(r"(?:[A-Za-z]\.)*[A-Za-z]")


def first_sentence(line: str) -> str:
    """The first sentence of one line of text, not fooled by abbreviations and initials."""
    for end in _SENTENCE_END.finditer(line):
        rest = line[end.end() :]
        if rest[:1].islower():
            continue
        words = line[: end.start()].split()
        word = words[-1].lstrip("(\"'“‘") if words else ""
        bare_period = end.group().rstrip() == "."
        if bare_period and (word.lower() in _ABBREVIATIONS or _INITIALS.fullmatch(word)):
            continue
        return line[: end.end()].strip()
    return line.strip()


def derive_title(text: str, limit: int = MAX_DERIVED_TITLE) -> str:
    """A headline for an entry that has none: its first sentence, cut at a word boundary."""
    first = first_sentence(text.strip().split("\n", 1)[0])
    if len(first) <= limit:
        return first
    cut = first[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:-–—") or first[: limit - 1]
    return cut + "…"


def _one_line(html: str | None) -> str:
    return " ".join(html_to_text(html or "").split())


def _printable(text: str) -> str:
    """Text without control characters or lone surrogates (these become U+FFFD)."""
    return _SURROGATE.sub("\ufffd", text.translate(_CONTROLS))


def _cut(text: str, limit: int) -> str:
    """At most ``limit`` characters, ending at a word boundary where one is near, marked with "…"."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    boundary = max(cut.rfind(" "), cut.rfind("\n"))
    if boundary > limit * 0.9:
        cut = cut[:boundary]
    return cut.rstrip() + "…"


def capped_title(raw: str | None, outlet: str | None = None) -> tuple[str, bool]:
    """A one-line headline (without an aggregator's outlet suffix) within MAX_TITLE_CHARS; and whether
    it was cut."""
    raw = raw or ""
    limit = MAX_TITLE_CHARS * _RAW_FACTOR
    title = _printable(strip_outlet_suffix(_one_line(raw[:limit]), outlet))
    return _cut(title, MAX_TITLE_CHARS), len(raw) > limit or len(title) > MAX_TITLE_CHARS


def capped_text(title: str, raw: str | None) -> tuple[str, bool]:
    """Clean body text within MAX_TEXT_CHARS; and whether it was cut."""
    raw = raw or ""
    limit = MAX_TEXT_CHARS * _RAW_FACTOR
    text = _printable(clean_text(title, raw[:limit]))
    return _cut(text, MAX_TEXT_CHARS), len(raw) > limit or len(text) > MAX_TEXT_CHARS


def date_problem(published: datetime, now: datetime) -> str | None:
    """Why a publication date is not to be trusted, ``now`` being the fetch or import time; or None."""
    if published <= EPOCH:
        return f"{published.isoformat()} is not after 1970"
    if published > now + FUTURE_TOLERANCE:
        return f"{published.isoformat()} is in the future"
    return None


@dataclass
class _Draft:
    """An entry after cleaning, before its id is final."""

    index: int
    entry: FeedEntry
    title: str
    text: str
    title_derived: bool
    canonical: str | None
    published_at: datetime | None

    @property
    def given_title(self) -> str:
        # Ids and hashes use only what the feed said, so a better headline heuristic never re-keys articles.
        return "" if self.title_derived else self.title


def _draft(index: int, entry: FeedEntry, fetched_at: datetime, notes: list[str]) -> _Draft | None:
    label = _label(index, entry)
    title, title_cut = capped_title(entry.title)
    bodies = [b for b in (entry.content, entry.summary) if b]
    body = max(bodies, key=len) if bodies else ""
    text, text_cut = capped_text(title, body)
    if not title and not text:
        notes.append(f"{label}: no title and no text, skipped")
        return None
    for what, cut, limit in (("title", title_cut, MAX_TITLE_CHARS), ("text", text_cut, MAX_TEXT_CHARS)):
        if cut:
            notes.append(f"{label}: {what} cut to {limit:,} characters")
    derived = not title
    if derived:
        title = derive_title(text)
    published = entry.published_at
    problem = date_problem(published, fetched_at) if published is not None else None
    if problem:
        # Not trusted: kept as undated (timed by the fetch) rather than as the newest or oldest news.
        notes.append(f"{label}: date {problem}, ignored")
        published = None
    return _Draft(index, entry, title, text, derived, canonical_url(entry.link), published)


def _label(index: int, entry: FeedEntry) -> str:
    name = entry.guid or entry.link or (entry.title or "")[:60]
    return f"entry #{index + 1}" + (f" ({name})" if name else "")


def entries_to_articles(
    feed: ParsedFeed, source: Source, fetched_at: datetime
) -> tuple[list[Article], list[str]]:
    """Clean a feed's entries into articles; notes say what was skipped or repaired.

    Ids come from the GUID, except where one GUID is shared by entries with
    different links or text (a broken feed generator): those fall back to their
    canonical URL or text so no article is lost. Entries that end up with the same
    id are one article; the first is kept.
    """
    notes: list[str] = []
    drafts = [d for i, e in enumerate(feed.entries) if (d := _draft(i, e, fetched_at, notes))]

    by_guid: dict[str, list[_Draft]] = defaultdict(list)
    for d in drafts:
        if d.entry.guid:
            by_guid[d.entry.guid].append(d)
    ambiguous: set[str] = set()
    # Entries whose GUID and link are both shared with different content: only their text tells them apart.
    text_keyed: set[int] = set()
    for guid, group in by_guid.items():
        variants = {(d.canonical, content_hash(d.given_title, d.text)) for d in group}
        if len(variants) > 1:
            ambiguous.add(guid)
            notes.append(
                f"GUID {guid!r} is shared by {len(group)} different entries; their ids come from link or text"
            )
            per_link: dict[str | None, set[str]] = defaultdict(set)
            for canonical, text_hash in variants:
                per_link[canonical].add(text_hash)
            text_keyed.update(d.index for d in group if d.canonical is None or len(per_link[d.canonical]) > 1)

    articles: list[Article] = []
    seen: set[str] = set()
    dropped = 0
    aggregator = is_aggregator(feed.entries, source.aggregator)
    for d in drafts:
        guid = d.entry.guid if d.entry.guid not in ambiguous else None
        canonical = None if d.index in text_keyed else d.canonical
        aid = article_id(source=source.name, guid=guid, canonical=canonical, title=d.given_title, text=d.text)
        if aid in seen:
            dropped += 1
            continue
        seen.add(aid)
        # Ids stay keyed by the feed: a better reading of who published an item never re-keys it.
        publisher, title = publisher_of(d.entry, d.title, aggregator=aggregator)
        articles.append(
            Article(
                article_id=aid,
                source=publisher or source.name,
                title=title,
                text=d.text,
                url=d.entry.link,
                canonical_url=d.canonical,
                published_at=d.published_at,
                fetched_at=fetched_at,
                guid=d.entry.guid,
                language=source.language or detect_language(title, d.text),
                content_hash=content_hash(d.given_title, d.text),
                via_feed=source.name,
            )
        )
    if dropped:
        notes.append(f"{dropped} repeated entries (same article twice in the feed) dropped")
    return articles, notes


# JSON Lines import


def record_date(value: Any) -> tuple[datetime | None, str | None]:
    """ISO date or datetime to UTC (a naive value is taken as UTC); and, for a value that is there but
    unusable, why. A missing, null or empty value is simply no date."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    if not isinstance(value, str):
        return None, f"published_at {_short(value)} is a JSON {type(value).__name__}, not an ISO 8601 date"
    raw = value.strip()
    try:
        if len(raw) == 10:
            d = date.fromisoformat(raw)
            return datetime(d.year, d.month, d.day, tzinfo=UTC), None
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
        return (parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)), None
    except ValueError:
        return None, f"published_at {_short(raw)} is not a valid ISO 8601 date"
    except OverflowError:  # year 1 or 9999 shifted out of range by its UTC offset
        return None, f"published_at {_short(raw)} is out of range"


def parse_record_date(value: Any) -> datetime | None:
    """ISO date or datetime to UTC; a naive value is taken as UTC; anything else is None."""
    return record_date(value)[0]


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = 60


def _short(value: Any) -> str:
    """A value as it would be written in Python, shortened (a record can hold anything)."""
    return _REPR.repr(value)


@dataclass
class RecordIssues:
    """What was wrong with an imported record that was stored all the same."""

    # Why its published_at was not used (the article is stored undated).
    date: str | None = None
    # Fields cut to the per-article caps.
    cut: list[str] = field(default_factory=list)
    # Strings with half a character (a lone surrogate escape such as "\ud800"), replaced with U+FFFD.
    broken_characters: bool = False


def _str_field(record: dict[str, Any], key: str, issues: RecordIssues | None = None) -> str | None:
    """A string field; numbers (numeric ids) become strings, other types count as missing.
    Control characters are dropped and lone surrogates replaced."""
    value = record.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    if issues is not None and _SURROGATE.search(value):
        issues.broken_characters = True
    return _printable(value).strip() or None


def _short_field(record: dict[str, Any], key: str, issues: RecordIssues) -> str | None:
    value = _str_field(record, key, issues)
    if value is not None and len(value) > MAX_FIELD_CHARS:
        raise ValueError(f"field {key!r} is {len(value):,} characters long (at most {MAX_FIELD_CHARS:,})")
    return value


def article_from_record(
    record: Any,
    *,
    imported_at: datetime,
    default_source: str = "import",
    issues: RecordIssues | None = None,
) -> Article:
    """One JSON Lines record (keys id, source, url, published_at, title, text) to an Article.

    Extra keys are ignored; a field of the wrong type counts as missing. Title and text are cut to
    MAX_TITLE_CHARS and MAX_TEXT_CHARS; a date that is unusable, not after 1970 or in the future
    (relative to ``imported_at``, as for feeds) leaves the article undated. ``issues``, if given,
    is told about each of these. Raises ValueError only when the record is not an object, has
    neither title nor text, or has an id, source, url or language longer than MAX_FIELD_CHARS.
    """
    if not isinstance(record, dict):
        raise ValueError(f"record is a JSON {type(record).__name__}, not an object")
    issues = issues if issues is not None else RecordIssues()
    given_source = _short_field(record, "source", issues)
    source = given_source or default_source
    external_id = _short_field(record, "id", issues)
    url = _short_field(record, "url", issues)
    language = _short_field(record, "language", issues)
    title, title_cut = capped_title(_str_field(record, "title", issues), given_source)
    text, text_cut = capped_text(title, _str_field(record, "text", issues))
    if not title and not text:
        raise ValueError("record has neither title nor text")
    issues.cut = [name for name, cut in (("title", title_cut), ("text", text_cut)) if cut]
    given_title = title
    if not title:
        title = derive_title(text)
    canonical = canonical_url(url)
    published, issues.date = record_date(record.get("published_at"))
    if published is not None and (problem := date_problem(published, imported_at)):
        published, issues.date = None, f"published_at {problem}"
    return Article(
        article_id=article_id(
            source=source, guid=external_id, canonical=canonical, title=given_title, text=text
        ),
        source=source,
        title=title,
        text=text,
        url=url,
        canonical_url=canonical,
        published_at=published,
        fetched_at=imported_at,
        external_id=external_id,
        language=language or detect_language(title, text),
        content_hash=content_hash(given_title, text),
    )
