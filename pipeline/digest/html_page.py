"""The daily digest as one self-contained HTML page.

Feed text is untrusted and stored as plain text, so every text is escaped and never parsed
again; links are http(s) only with rel="noopener noreferrer"; the page has no script, inline
style only, and a CSP that forbids scripts and every external load.
"""

from __future__ import annotations

import html
import re
from datetime import date, tzinfo

from pipeline.digest.rank import (
    EARLIER_LIMIT,
    DayCount,
    DigestArticle,
    DigestHeader,
    RankedStory,
    as_utc,
    local_time,
)
from pipeline.digest.wording import (
    brief_lines,
    feed_text,
    header_zone,
    html_text,
    language_mark,
    new_today_lines,
    plural,
    safe_url,
    shorten,
    sources_line,
    stats_line,
    status_line,
    title_line,
)

# The digest page must not run or fetch anything: no scripts, no remote images or
# fonts, no forms; only its own inline style and data: images.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
SUMMARY_CHARS = 280


def _html_link(text: str, url: str | None) -> str:
    label = html_text(text) or "untitled"
    link = safe_url(url)
    if link is None:
        return f'<span class="nolink">{label}</span>'
    return f'<a href="{html.escape(link, quote=True)}" rel="noopener noreferrer" target="_blank">{label}</a>'


_CSS = """
:root { color-scheme: light; --ink: #1d2330; --muted: #5d6677; --line: #e3e6ec; --accent: #2456c7;
  --new: #17803d; --dev: #a35a00; --bar: #7b9be0; --bar-ind: #2456c7; }
* { box-sizing: border-box; }
body { margin: 0; background: #f6f7f9; color: var(--ink); overflow-wrap: anywhere;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header.page, main { max-width: 60rem; margin: 0 auto; padding: 1rem 1.25rem; }
header.page h1 { font-size: 1.6rem; margin: 1rem 0 .25rem; }
header.page p { margin: .15rem 0; color: var(--muted); }
.story { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 1rem 1.25rem;
  margin: 0 0 1rem; }
.story h2 { font-size: 1.25rem; margin: 0 0 .35rem; line-height: 1.3; }
.rank { color: var(--muted); font-weight: 400; margin-right: .35rem; }
.badge { display: inline-block; font-size: .75rem; font-weight: 700; text-transform: uppercase;
  letter-spacing: .04em; padding: .05rem .45rem; border-radius: 4px; color: #fff; vertical-align: middle; }
.badge.new { background: var(--new); }
.badge.developing { background: var(--dev); }
.meta { color: var(--muted); font-size: .9rem; margin: .2rem 0; }
.kw span { display: inline-block; background: #eef2fb; color: #23408a; border-radius: 4px;
  padding: 0 .4rem; margin: 0 .25rem .2rem 0; font-size: .85rem; }
.timeline { display: flex; align-items: flex-end; gap: 3px; height: 48px; margin: .5rem 0 .1rem;
  padding-bottom: 2px; border-bottom: 1px solid var(--line); }
.timeline .day { flex: 0 0 22px; height: 100%; display: flex; flex-direction: column;
  justify-content: flex-end; }
.timeline .all { background: var(--bar); border-radius: 2px 2px 0 0; display: flex;
  flex-direction: column; justify-content: flex-end; min-height: 1px; }
.timeline .ind { background: var(--bar-ind); border-radius: 2px 2px 0 0; }
.timeline .today .all { outline: 2px solid #f0b400; outline-offset: 1px; }
.tl-labels { display: flex; gap: 3px; font-size: .65rem; color: var(--muted); margin-bottom: .4rem; }
.tl-labels span { flex: 0 0 22px; text-align: center; }
.articles { list-style: none; padding: 0; margin: .5rem 0 0; }
.articles li { padding: .35rem 0; border-top: 1px solid var(--line); }
.articles a { color: var(--accent); text-decoration: none; font-weight: 600; }
.articles a:hover { text-decoration: underline; }
.nolink { font-weight: 600; }
.src { color: var(--ink); font-size: .85rem; }
.lang { font-size: .7rem; text-transform: uppercase; color: var(--muted); border: 1px solid var(--line);
  border-radius: 3px; padding: 0 .25rem; }
time, .copy { color: var(--muted); font-size: .85rem; }
.summary { margin: .15rem 0 0; color: #3a4150; font-size: .92rem; }
details { margin-top: .5rem; }
summary { cursor: pointer; color: var(--muted); font-size: .9rem; }
.brief { margin: .4rem 0; }
.new-today { background: #f3f8ef; border-left: 3px solid var(--new); padding: .2rem .6rem; }
.empty { color: var(--muted); font-style: italic; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
"""


def render_html(header: DigestHeader, ranked: list[RankedStory]) -> str:
    """The digest as one self-contained HTML page: inline CSS, no script, no external load."""
    zone = header_zone(header)
    generated = local_time(header.generated_at, zone)
    title = html_text(title_line(header))
    out = [
        "<!DOCTYPE html>",
        f'<html lang="{html_text(header.language or "en")}">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # An empty data: icon stops the browser asking for /favicon.ico.
        '<link rel="icon" href="data:,">',
        f"<title>{title}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        '<header class="page">',
        f"<h1>{title}</h1>",
        f'<p class="sources">{html_text(sources_line(header))}</p>',
        f'<p>Generated <time datetime="{as_utc(header.generated_at).isoformat()}">'
        f"{generated:%Y-%m-%d %H:%M}</time> {html_text(header.timezone)}</p>",
        "</header>",
        "<main>",
    ]
    if not ranked:
        out.append('<p class="empty">No stories had coverage on this day.</p>')
    for rank, item in enumerate(ranked, start=1):
        out.extend(_html_story(rank, item, zone, header.day, main=header.language))
    out.extend(["</main>", "</body>", "</html>", ""])
    return "\n".join(out)


def _html_story(rank: int, item: RankedStory, zone: tzinfo, day: date, *, main: str | None) -> list[str]:
    story = item.story
    anchor = re.sub(r"[^A-Za-z0-9_-]", "", story.story_id)[:64] or str(rank)
    parts = [
        f'<article class="story" id="story-{anchor}">',
        f'<h2><span class="rank">{rank}.</span>{html_text(feed_text(story.headline))} '
        f'<span class="badge {item.status}">{item.status}</span></h2>',
        f'<p class="meta status">{html_text(status_line(item))}</p>',
    ]
    if story.keywords:
        chips = "".join(f"<span>{html_text(k)}</span>" for k in story.keywords)
        parts.append(f'<p class="kw"><span class="sr">Keywords: </span>{chips}</p>')
    if story.topics:
        parts.append(
            f'<p class="meta topics">Watch topics: {", ".join(html_text(t) for t in story.topics)}</p>'
        )
    parts.extend(_html_brief(item))
    parts.append(f'<p class="meta stats">{html_text(stats_line(item))}</p>')
    parts.append(f'<p class="meta outlets">Covered by: {", ".join(html_text(o) for o in item.outlets)}</p>')
    parts.extend(_html_timeline(item.timeline, day))
    parts.append('<ul class="articles">')
    for a in item.articles_today:
        parts.append(_html_article(a, zone, "%H:%M", with_summary=True, main=main))
    parts.append("</ul>")
    if item.earlier_articles:
        parts.append(f"<details><summary>Earlier coverage ({len(item.earlier_articles)})</summary>")
        parts.append('<ul class="articles">')
        for a in item.earlier_articles[:EARLIER_LIMIT]:
            parts.append(_html_article(a, zone, "%Y-%m-%d %H:%M", with_summary=False, main=main))
        more = len(item.earlier_articles) - EARLIER_LIMIT
        if more > 0:
            parts.append(f'<li class="copy">… and {more} more</li>')
        parts.append("</ul></details>")
    parts.append("</article>")
    return parts


def _html_brief(item: RankedStory) -> list[str]:
    def said(lines: list[tuple[str, str]]) -> str:
        return " ".join(
            f'{html_text(text)} <span class="src">({html_text(outlet)})</span>' for text, outlet in lines
        )

    parts = []
    if lines := brief_lines(item):
        parts.append(f'<p class="brief">{said(lines)}</p>')
    if lines := new_today_lines(item):
        parts.append(f'<p class="brief new-today"><strong>New today:</strong> {said(lines)}</p>')
    return parts


def _html_article(
    a: DigestArticle, zone: tzinfo, fmt: str, *, with_summary: bool, main: str | None = None
) -> str:
    local = local_time(a.published_at, zone)
    copy = ' <span class="copy">(syndicated copy)</span>' if a.is_duplicate else ""
    mark = language_mark(a.language, main)
    lang = f' <span class="lang" title="language">{html_text(mark)}</span>' if mark else ""
    line = (
        f"<li>{_html_link(feed_text(a.title), a.url)}{lang} "
        f'<span class="src">{html_text(a.source)}</span> '
        f'<time datetime="{as_utc(a.published_at).isoformat()}">{local.strftime(fmt)}</time>{copy}'
    )
    summary = shorten(feed_text(a.summary), SUMMARY_CHARS) if with_summary else ""
    if summary:
        line += f'<p class="summary">{html_text(summary)}</p>'
    return line + "</li>"


def _html_timeline(timeline: list[DayCount], day: date) -> list[str]:
    peak = max((d.articles for d in timeline), default=0) or 1
    described = ", ".join(f"{d.day:%d %b}: {d.articles}" for d in timeline)
    bars, labels = [], []
    for d in timeline:
        # Heights are numbers we compute; nothing from a feed reaches a style attribute.
        total_pct = round(100 * d.articles / peak)
        ind_pct = round(100 * d.independent / d.articles) if d.articles else 0
        tip = f"{d.day:%a %d %b}: {plural(d.articles, 'article')}, {d.independent} independent"
        today = " today" if d.day == day else ""
        bars.append(
            f'<div class="day{today}" title="{tip}"><div class="all" style="height:{total_pct}%">'
            f'<div class="ind" style="height:{ind_pct}%"></div></div></div>'
        )
        labels.append(f"<span>{d.day.day}</span>")
    label = html_text(f"Articles per day: {described}")
    return [
        f'<div class="timeline" role="img" aria-label="{label}">{"".join(bars)}</div>',
        f'<div class="tl-labels" aria-hidden="true">{"".join(labels)}</div>',
    ]
