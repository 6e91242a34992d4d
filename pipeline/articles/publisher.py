"""Who published an aggregator's item: the outlet, not the feed it came through.

Google News and similar feeds list many publishers in one feed. Each item names its real
publisher in an RSS ``<source url="...">Name</source>`` element, in a " - Publisher" suffix on the
headline, or both. Counting the aggregator as the source of all of them would make twenty
outlets' coverage look like one outlet's (and one outlet's ten items look like independent
coverage when the aggregator is also configured beside the outlet), so the publisher becomes the
article's source and the feed is kept as the article's ``via_feed``.

When a feed is treated as an aggregator:
  * the sources file says ``aggregator = true``; or
  * its items name at least two different publishers in ``<source>`` elements (an outlet that
    names itself in every item is not an aggregator: its configured name stays).
In an aggregator, an item with a ``<source>`` counts for that publisher (and a matching suffix is
removed from its headline); an item without one counts for the outlet its " - Publisher" suffix
names; an item with neither stays the feed's own.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.records import FeedEntry

# A headline suffix longer than this is part of the headline ("Talks - and what comes next"),
# not an outlet's name.
MAX_SUFFIX_WORDS = 6
MAX_SUFFIX_CHARS = 60
_SEPARATORS = (" - ", " – ", " — ", " | ")


def strip_outlet_suffix(title: str, outlet: str | None) -> str:
    """A headline without the " - Outlet" (or " | Outlet") that aggregators such as Google News
    append: it is the same for every headline of an outlet and pulls unrelated ones together."""
    if not outlet or not title:
        return title
    for sep in _SEPARATORS:
        suffix = sep + outlet
        if title.casefold().endswith(suffix.casefold()) and len(title) > len(suffix):
            return title[: -len(suffix)].rstrip()
    return title


def is_aggregator(entries: Sequence[FeedEntry], configured: bool) -> bool:
    """Whether a feed's items count for their own publishers (see the module docstring)."""
    if configured:
        return True
    named = {e.publisher.casefold() for e in entries if e.publisher}
    return len(named) >= 2


def suffix_outlet(title: str) -> str | None:
    """The outlet a " - Outlet" headline suffix names, or None when the title has no such suffix."""
    at, sep = max((title.rfind(sep), sep) for sep in _SEPARATORS)
    if at <= 0:
        return None
    outlet = title[at + len(sep) :].strip()
    if not outlet or len(outlet) > MAX_SUFFIX_CHARS or len(outlet.split()) > MAX_SUFFIX_WORDS:
        return None
    # "Prices rise - 3.5%" or "Live - updates": an outlet's name starts with a letter or digit
    # and is not the end of a sentence.
    if not outlet[0].isalnum() or outlet.endswith((".", "!", "?", ":")):
        return None
    return outlet


def publisher_of(entry: FeedEntry, title: str, *, aggregator: bool) -> tuple[str | None, str]:
    """(publisher, headline without the publisher's suffix) of an item; publisher None = the feed's.

    ``title`` is the item's cleaned one-line headline.
    """
    if not aggregator:
        return None, title
    publisher = entry.publisher or suffix_outlet(title)
    if not publisher:
        return None, title
    publisher = " ".join(publisher.split())
    return publisher, strip_outlet_suffix(title, publisher)
