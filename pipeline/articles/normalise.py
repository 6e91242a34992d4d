"""Parsed feed entries and imported records to cleaned Article objects."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pipeline.articles.clean import clean_text, html_to_text
from pipeline.articles.identity import article_id, canonical_url, content_hash
from pipeline.records import Article, FeedEntry, ParsedFeed, Source

# Dates this far past the fetch time are wrong clocks or time zones, not scheduled news.
FUTURE_TOLERANCE = timedelta(hours=1)
MAX_DERIVED_TITLE = 90
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
    title = _one_line(entry.title)
    bodies = [b for b in (entry.content, entry.summary) if b]
    body = max(bodies, key=len) if bodies else ""
    text = clean_text(title, body)
    if not title and not text:
        notes.append(f"{label}: no title and no text, skipped")
        return None
    derived = not title
    if derived:
        title = derive_title(text)
    published = entry.published_at
    if published is not None and published > fetched_at + FUTURE_TOLERANCE:
        # Not trusted: kept as undated (timed by the fetch) rather than as the newest news.
        notes.append(f"{label}: date {published.isoformat()} is in the future, ignored")
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
    for d in drafts:
        guid = d.entry.guid if d.entry.guid not in ambiguous else None
        canonical = None if d.index in text_keyed else d.canonical
        aid = article_id(source=source.name, guid=guid, canonical=canonical, title=d.given_title, text=d.text)
        if aid in seen:
            dropped += 1
            continue
        seen.add(aid)
        articles.append(
            Article(
                article_id=aid,
                source=source.name,
                title=d.title,
                text=d.text,
                url=d.entry.link,
                canonical_url=d.canonical,
                published_at=d.published_at,
                fetched_at=fetched_at,
                guid=d.entry.guid,
                language=source.language,
                content_hash=content_hash(d.given_title, d.text),
            )
        )
    if dropped:
        notes.append(f"{dropped} repeated entries (same article twice in the feed) dropped")
    return articles, notes


# JSON Lines import


def parse_record_date(value: Any) -> datetime | None:
    """ISO date or datetime to UTC; a naive value is taken as UTC; anything else is None."""
    if not isinstance(value, str) or not value.strip():
        return None
    raw = value.strip()
    try:
        if len(raw) == 10:
            d = date.fromisoformat(raw)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def strip_outlet_suffix(title: str, outlet: str | None) -> str:
    """A headline without the " - Outlet" (or " | Outlet") that aggregators such as Google News
    append: it is the same for every headline of an outlet and pulls unrelated ones together."""
    if not outlet or not title:
        return title
    for sep in (" - ", " | ", " – ", " — "):
        suffix = sep + outlet
        if title.casefold().endswith(suffix.casefold()) and len(title) > len(suffix):
            return title[: -len(suffix)].rstrip()
    return title


def _str_field(record: dict[str, Any], key: str) -> str | None:
    """A string field; numbers (numeric ids) become strings, other types count as missing."""
    value = record.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    return (value.strip() or None) if isinstance(value, str) else None


def article_from_record(record: Any, *, imported_at: datetime, default_source: str = "import") -> Article:
    """One JSON Lines record (keys id, source, url, published_at, title, text) to an Article.

    Extra keys are ignored; a field of the wrong type counts as missing. Raises
    ValueError only when the record is not an object or has neither title nor text.
    """
    if not isinstance(record, dict):
        raise ValueError(f"record is a JSON {type(record).__name__}, not an object")
    source = _str_field(record, "source") or default_source
    external_id = _str_field(record, "id")
    url = _str_field(record, "url")
    title = strip_outlet_suffix(_one_line(_str_field(record, "title")), _str_field(record, "source"))
    text = clean_text(title, _str_field(record, "text"))
    if not title and not text:
        raise ValueError("record has neither title nor text")
    given_title = title
    if not title:
        title = derive_title(text)
    canonical = canonical_url(url)
    return Article(
        article_id=article_id(
            source=source, guid=external_id, canonical=canonical, title=given_title, text=text
        ),
        source=source,
        title=title,
        text=text,
        url=url,
        canonical_url=canonical,
        published_at=parse_record_date(record.get("published_at")),
        fetched_at=imported_at,
        external_id=external_id,
        language=_str_field(record, "language"),
        content_hash=content_hash(given_title, text),
    )
