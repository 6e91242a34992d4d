"""The daily digest as Markdown (the file beside the HTML page, and the Prefect artifact).

Feed text is untrusted: Markdown and HTML syntax in it is escaped, and only http(s) URLs are
linked (see ``pipeline.digest`` for what is shown and why).
"""

from __future__ import annotations

import math
import re
from datetime import tzinfo
from urllib.parse import quote

from pipeline.digest.rank import EARLIER_LIMIT, DayCount, DigestArticle, DigestHeader, RankedStory, local_time
from pipeline.digest.wording import (
    brief_lines,
    feed_text,
    header_zone,
    language_mark,
    new_today_lines,
    one_line,
    safe_url,
    sources_line,
    stats_line,
    status_line,
    title_line,
)

_SPARK = "▁▂▃▄▅▆▇█"


_MD_SPECIAL = re.compile(r"([\\`*_\[\]()#+\-.!|~{}])")


def md_text(value: str | None) -> str:
    """Feed text made inert for Markdown: one line, HTML and Markdown syntax escaped."""
    text = one_line(value or "")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def _md_link(text: str, url: str | None) -> str:
    label = md_text(text) or "untitled"
    link = safe_url(url)
    if link is None:
        return label
    # Percent-encode anything that could end the link destination or start markup.
    target = quote(link, safe=":/?#@!$&*+,;=%~-._")
    return f"[{label}]({target})"


def render_markdown(header: DigestHeader, ranked: list[RankedStory]) -> str:
    """The digest as Markdown (for a Prefect artifact or a file)."""
    zone = header_zone(header)
    lines = [f"# {md_text(title_line(header))}", ""]
    lines.append(md_text(sources_line(header)) + "  ")
    generated = local_time(header.generated_at, zone)
    lines.append(f"Generated {generated:%Y-%m-%d %H:%M} {md_text(header.timezone)}")
    lines.append("")
    if not ranked:
        lines.append("*No stories had coverage on this day\\.*")
        return "\n".join(lines) + "\n"
    for rank, item in enumerate(ranked, start=1):
        badge = "**NEW**" if item.status == "new" else "**DEVELOPING**"
        lines.append(f"## {rank}\\. {md_text(feed_text(item.story.headline))}")
        lines.append("")
        lines.append(f"{badge} · {md_text(status_line(item))}  ")
        if item.story.keywords:
            lines.append(f"Keywords: {', '.join(md_text(k) for k in item.story.keywords)}  ")
        if item.story.topics:
            lines.append(f"Watch topics: {', '.join(md_text(t) for t in item.story.topics)}  ")
        lines.extend(_md_brief(item))
        lines.append(f"{md_text(stats_line(item))}  ")
        lines.append(f"Outlets: {', '.join(md_text(o) for o in item.outlets)}  ")
        lines.append(f"Coverage: {_md_timeline(item.timeline)}")
        lines.append("")
        for a in item.articles_today:
            lines.append(_md_article(a, zone, "%H:%M", header.language))
        if item.earlier_articles:
            lines.append("")
            lines.append(f"Earlier coverage ({len(item.earlier_articles)}):")
            lines.append("")
            for a in item.earlier_articles[:EARLIER_LIMIT]:
                lines.append(_md_article(a, zone, "%Y-%m-%d %H:%M", header.language))
            more = len(item.earlier_articles) - EARLIER_LIMIT
            if more > 0:
                lines.append(f"- … and {more} more")
        lines.append("")
    return "\n".join(lines)


def _md_brief(item: RankedStory) -> list[str]:
    def said(lines: list[tuple[str, str]]) -> str:
        return " ".join(f"{md_text(text)} \\({md_text(outlet)}\\)" for text, outlet in lines)

    out = []
    if lines := brief_lines(item):
        out.append(f"{said(lines)}  ")
    if lines := new_today_lines(item):
        out.append(f"**New today:** {said(lines)}  ")
    return out


def _md_article(a: DigestArticle, zone: tzinfo, fmt: str, main: str | None = None) -> str:
    when = local_time(a.published_at, zone).strftime(fmt)
    copy = " \\(syndicated copy\\)" if a.is_duplicate else ""
    mark = language_mark(a.language, main)
    lang = f" \\[{md_text(mark)}\\]" if mark else ""
    return f"- {_md_link(feed_text(a.title), a.url)}{lang} — {md_text(a.source)}, {when}{copy}"


def _md_timeline(timeline: list[DayCount]) -> str:
    peak = max((d.articles for d in timeline), default=0) or 1
    cells = []
    for d in timeline:
        level = _SPARK[min(len(_SPARK) - 1, math.ceil(d.articles / peak * (len(_SPARK) - 1)))]
        cells.append(f"{d.day:%d %b} {level if d.articles else '·'} {d.articles}")
    return " · ".join(cells)
