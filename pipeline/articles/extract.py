"""The main text of an article page, without its furniture (navigation, related links, cookie
banners, comments, newsletter boxes), by trafilatura.

trafilatura was chosen on its own published evaluation (750 documents: F1 0.909, against
news-please 0.808 and newspaper3k 0.713); bench/fulltext.py measures it on our data.
"""

from __future__ import annotations

import logging

import trafilatura

# trafilatura logs every page it finds nothing in; one per article is noise in a run's log.
logging.getLogger("trafilatura").setLevel(logging.ERROR)


def extract_main_text(page: bytes | str, url: str | None = None) -> str:
    """Plain text of the page's article body, paragraphs on their own lines; "" when none is found.

    Bytes are decoded by trafilatura (meta charset, else detection). Comments and tables are left
    out: they are rarely the article, and comments are the wrong kind of text for a story.
    trafilatura's ``deduplicate`` is left off: its cache of seen paragraphs is process-wide, so a
    second page with the same paragraphs (a re-fetch, a syndicated copy) would come out empty.
    """
    if not page:
        return ""
    try:
        text = trafilatura.extract(
            page,
            url=url,
            include_comments=False,
            include_tables=False,
            include_images=False,
            include_links=False,
        )
    except Exception:  # a malformed page is "no text", never a failed run
        return ""
    return (text or "").strip()
