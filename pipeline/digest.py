"""The daily digest: which stories mattered on a day, as HTML and Markdown.

Flows fill the dataclasses below from storage; everything here is pure.

Which stories appear: those with at least one article published on the day
(in the digest's time zone). A story first seen that day is **new**; one seen
on an earlier day is **developing**, with the day it started.

Ranking. For each story on the day:

    S_t  distinct outlets with an independent (non-syndicated) article that day
    N_t  independent articles that day
    S    distinct independent outlets over the story's life up to the day
    P    independent articles per earlier day of the story (0 for a new story)

    score = 3·S_t + 2·ln(1 + N_t) + ln(1 + S) + ln(1 + N_t / (1 + P))

Why: separate newsrooms choosing to cover something that day is the best
signal that it matters, so S_t dominates. Article volume counts, but
logarithmically, so one outlet posting ten updates cannot outrank broad
coverage. Overall breadth S gives weight to big stories without letting
yesterday's news bury today's. The last term rewards growth: coverage above
the story's usual daily rate (a new story counts as all growth). Syndicated
copies carry no weight: a wire story in twenty papers is one source's
reporting. Equal scores are ordered by story id so the output is stable.

Safety. Titles, summaries, outlet names and keywords come from feeds and are
untrusted. Storage holds them as plain text (the clean step turned the feed's
HTML into text), so HTML output escapes every text and never parses it again:
markup-like characters in a headline are shown as the outlet published them;
links are kept only for http(s) URLs
and carry rel="noopener noreferrer"; the page has no script and a CSP that
forbids scripts and every external load. Markdown output escapes Markdown and
HTML syntax in feed text and links only http(s) URLs.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Literal
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

Status = Literal["new", "developing"]

# The digest page must not run or fetch anything: no scripts, no remote images or
# fonts, no forms; only its own inline style and data: images.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

# Days of per-day bars shown at most; older coverage is summed into the stats only.
TIMELINE_DAYS = 14
# Earlier articles listed per developing story; the rest is counted.
EARLIER_LIMIT = 15
SUMMARY_CHARS = 280

_SPARK = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class DigestArticle:
    article_id: str
    title: str
    source: str
    url: str | None
    published_at: datetime
    # True for a syndicated / near-identical copy of another outlet's article.
    is_duplicate: bool = False
    summary: str | None = None


@dataclass
class DigestStory:
    story_id: str
    headline: str
    keywords: list[str]
    first_seen: datetime
    # Every article of the story up to the end of the digest day.
    articles: list[DigestArticle]
    topics: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DigestHeader:
    day: date
    sources_total: int
    sources_ok: int
    sources_failed: int
    # Articles that came in on the day, over all sources.
    articles_in: int
    generated_at: datetime
    topic: str | None = None
    timezone: str = "UTC"


@dataclass(frozen=True)
class DayCount:
    day: date
    articles: int
    independent: int


@dataclass
class RankedStory:
    story: DigestStory
    # The digest day these figures are for.
    day: date
    status: Status
    started: date
    score: float
    # Articles published on the digest day, copies included / excluded.
    new_today: int
    new_independent_today: int
    sources_today: int
    # Up to the end of the digest day.
    article_count: int
    independent_count: int
    # Every outlet that carried the story, in order of first coverage.
    outlets: list[str]
    independent_source_count: int
    timeline: list[DayCount]
    articles_today: list[DigestArticle]
    # Earlier articles, newest first.
    earlier_articles: list[DigestArticle]

    @property
    def syndicated_count(self) -> int:
        return self.article_count - self.independent_count


def rank_stories(
    stories: list[DigestStory],
    day: date,
    tz: tzinfo | str = UTC,
    *,
    topic: str | None = None,
    limit: int | None = None,
) -> list[RankedStory]:
    """Stories with coverage on ``day`` (in ``tz``), most important first.

    ``topic`` keeps only stories tagged with that watch topic; ``limit`` keeps
    the top stories. Articles published after the day are ignored, so a digest
    for a past day shows that day as it was.
    """
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    ranked: list[RankedStory] = []
    for story in stories:
        if topic is not None and topic not in story.topics:
            continue
        item = _day_stats(story, day, zone)
        if item is not None:
            ranked.append(item)
    ranked.sort(key=lambda r: (-r.score, r.story.story_id))
    return ranked[:limit] if limit is not None else ranked


def _day_stats(story: DigestStory, day: date, zone: tzinfo) -> RankedStory | None:
    def local_day(a: DigestArticle) -> date:
        return _local(a.published_at, zone).date()

    articles = sorted(
        (a for a in story.articles if local_day(a) <= day),
        key=lambda a: (_utc(a.published_at), a.source, a.article_id),
    )
    today = [a for a in articles if local_day(a) == day]
    if not today:
        return None
    earlier = [a for a in articles if local_day(a) < day]

    independent = [a for a in articles if not a.is_duplicate]
    independent_today = [a for a in today if not a.is_duplicate]
    started = min([_local(story.first_seen, zone).date(), local_day(articles[0])])
    status: Status = "new" if started >= day else "developing"

    outlets: list[str] = []
    for a in articles:
        if a.source not in outlets:
            outlets.append(a.source)

    s_today = len({a.source for a in independent_today})
    n_today = len(independent_today)
    s_all = len({a.source for a in independent})
    earlier_days = (day - started).days
    per_day_before = (len(independent) - n_today) / earlier_days if earlier_days > 0 else 0.0
    score = (
        3.0 * s_today
        + 2.0 * math.log1p(n_today)
        + math.log1p(s_all)
        + math.log1p(n_today / (1.0 + per_day_before))
    )

    first_bar = max(started, day - timedelta(days=TIMELINE_DAYS - 1))
    timeline = []
    for offset in range((day - first_bar).days + 1):
        d = first_bar + timedelta(days=offset)
        on_day = [a for a in articles if local_day(a) == d]
        timeline.append(DayCount(d, len(on_day), sum(1 for a in on_day if not a.is_duplicate)))

    return RankedStory(
        story=story,
        day=day,
        status=status,
        started=started,
        score=round(score, 9),
        new_today=len(today),
        new_independent_today=n_today,
        sources_today=s_today,
        article_count=len(articles),
        independent_count=len(independent),
        outlets=outlets,
        independent_source_count=s_all,
        timeline=timeline,
        articles_today=today,
        earlier_articles=list(reversed(earlier)),
    )


# ---------------------------------------------------------------- safety helpers


def safe_url(url: str | None) -> str | None:
    """The URL if it is an absolute http(s) URL a reader may follow, else None."""
    if not url:
        return None
    url = url.strip()
    # Browsers drop tabs and newlines inside URLs ("java\tscript:"): refuse them outright.
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    return url


def feed_text(value: str | None) -> str:
    """Stored feed text (a title, a summary) as one line, for escaping by the renderer.

    Storage holds plain text: the clean step already turned the feed's HTML into text and
    decoded its entities. What still looks like markup here is text the outlet published
    ("win <img src=x onerror=alert(1)>" in a headline), so it is shown as characters,
    never parsed again: dropping it would misquote the outlet, rendering it would run it.
    """
    return _one_line(value or "")


def _one_line(value: str) -> str:
    # Collapsing all whitespace keeps feed text from starting Markdown blocks or headings.
    return " ".join("".join(ch for ch in value if ch.isprintable() or ch.isspace()).split())


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] or text[:limit]
    return cut.rstrip(" ,.;:") + "…"


def _local(value: datetime, zone: tzinfo) -> datetime:
    return _utc(value).astimezone(zone)


def _utc(value: datetime) -> datetime:
    # Naive times are taken as UTC, the project's storage convention.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _zone(header: DigestHeader) -> tzinfo:
    try:
        return ZoneInfo(header.timezone)
    except (ValueError, KeyError):
        return UTC


def digest_basename(day: date, topic: str | None = None) -> str:
    """File name stem for a digest: ``digest-2024-05-13`` or ``digest-2024-05-13-energy``."""
    stem = f"digest-{day.isoformat()}"
    if topic:
        slug = re.sub(r"[^a-z0-9]+", "-", topic.casefold()).strip("-")[:60]
        stem = f"{stem}-{slug or 'topic'}"
    return stem


def _title(header: DigestHeader) -> str:
    title = f"Storyline digest — {header.day:%A %d %B %Y}"
    return f"{title} — {_one_line(header.topic)}" if header.topic else title


def _sources_line(header: DigestHeader) -> str:
    if header.sources_ok or header.sources_failed:
        fetched = f"{header.sources_ok} fetched, {header.sources_failed} failed"
    else:
        # An archive, or a digest of a day before the feeds were first fetched.
        fetched = "no fetch ran that day"
    return f"{header.sources_total} sources: {fetched} · {header.articles_in} articles in"


def _stats_line(item: RankedStory) -> str:
    parts = [
        _plural(item.article_count, "article"),
        _plural(item.independent_source_count, "independent source"),
    ]
    if item.syndicated_count:
        parts.append(_plural(item.syndicated_count, "syndicated copy", "syndicated copies"))
    parts.append(f"{item.new_today} today")
    return " · ".join(parts)


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def _status_line(item: RankedStory) -> str:
    if item.status == "new":
        return "first seen today"
    return f"since {item.started:%a %d %b %Y} (day {(item.day - item.started).days + 1})"


# ---------------------------------------------------------------- Markdown

_MD_SPECIAL = re.compile(r"([\\`*_\[\]()#+\-.!|~{}])")


def md_text(value: str | None) -> str:
    """Feed text made inert for Markdown: one line, HTML and Markdown syntax escaped."""
    text = _one_line(value or "")
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
    zone = _zone(header)
    lines = [f"# {md_text(_title(header))}", ""]
    lines.append(md_text(_sources_line(header)) + "  ")
    generated = _local(header.generated_at, zone)
    lines.append(f"Generated {generated:%Y-%m-%d %H:%M} {md_text(header.timezone)}")
    lines.append("")
    if not ranked:
        lines.append("*No stories had coverage on this day\\.*")
        return "\n".join(lines) + "\n"
    for rank, item in enumerate(ranked, start=1):
        badge = "**NEW**" if item.status == "new" else "**DEVELOPING**"
        lines.append(f"## {rank}\\. {md_text(feed_text(item.story.headline))}")
        lines.append("")
        lines.append(f"{badge} · {md_text(_status_line(item))}  ")
        if item.story.keywords:
            lines.append(f"Keywords: {', '.join(md_text(k) for k in item.story.keywords)}  ")
        if item.story.topics:
            lines.append(f"Watch topics: {', '.join(md_text(t) for t in item.story.topics)}  ")
        lines.append(f"{md_text(_stats_line(item))}  ")
        lines.append(f"Outlets: {', '.join(md_text(o) for o in item.outlets)}  ")
        lines.append(f"Coverage: {_md_timeline(item.timeline)}")
        lines.append("")
        for a in item.articles_today:
            lines.append(_md_article(a, zone, "%H:%M"))
        if item.earlier_articles:
            lines.append("")
            lines.append(f"Earlier coverage ({len(item.earlier_articles)}):")
            lines.append("")
            for a in item.earlier_articles[:EARLIER_LIMIT]:
                lines.append(_md_article(a, zone, "%Y-%m-%d %H:%M"))
            more = len(item.earlier_articles) - EARLIER_LIMIT
            if more > 0:
                lines.append(f"- … and {more} more")
        lines.append("")
    return "\n".join(lines)


def _md_article(a: DigestArticle, zone: tzinfo, fmt: str) -> str:
    when = _local(a.published_at, zone).strftime(fmt)
    copy = " \\(syndicated copy\\)" if a.is_duplicate else ""
    return f"- {_md_link(feed_text(a.title), a.url)} — {md_text(a.source)}, {when}{copy}"


def _md_timeline(timeline: list[DayCount]) -> str:
    peak = max((d.articles for d in timeline), default=0) or 1
    cells = []
    for d in timeline:
        level = _SPARK[min(len(_SPARK) - 1, math.ceil(d.articles / peak * (len(_SPARK) - 1)))]
        cells.append(f"{d.day:%d %b} {level if d.articles else '·'} {d.articles}")
    return " · ".join(cells)


# ---------------------------------------------------------------- HTML


def _e(value: str | None) -> str:
    return html.escape(_one_line(value or ""), quote=True)


def _html_link(text: str, url: str | None) -> str:
    label = _e(text) or "untitled"
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
time, .copy { color: var(--muted); font-size: .85rem; }
.summary { margin: .15rem 0 0; color: #3a4150; font-size: .92rem; }
details { margin-top: .5rem; }
summary { cursor: pointer; color: var(--muted); font-size: .9rem; }
.empty { color: var(--muted); font-style: italic; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
"""


def render_html(header: DigestHeader, ranked: list[RankedStory]) -> str:
    """The digest as one self-contained HTML page: inline CSS, no script, no external load."""
    zone = _zone(header)
    generated = _local(header.generated_at, zone)
    title = _e(_title(header))
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
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
        f'<p class="sources">{_e(_sources_line(header))}</p>',
        f'<p>Generated <time datetime="{_utc(header.generated_at).isoformat()}">'
        f"{generated:%Y-%m-%d %H:%M}</time> {_e(header.timezone)}</p>",
        "</header>",
        "<main>",
    ]
    if not ranked:
        out.append('<p class="empty">No stories had coverage on this day.</p>')
    for rank, item in enumerate(ranked, start=1):
        out.extend(_html_story(rank, item, zone, header.day))
    out.extend(["</main>", "</body>", "</html>", ""])
    return "\n".join(out)


def _html_story(rank: int, item: RankedStory, zone: tzinfo, day: date) -> list[str]:
    story = item.story
    anchor = re.sub(r"[^A-Za-z0-9_-]", "", story.story_id)[:64] or str(rank)
    parts = [
        f'<article class="story" id="story-{anchor}">',
        f'<h2><span class="rank">{rank}.</span>{_e(feed_text(story.headline))} '
        f'<span class="badge {item.status}">{item.status}</span></h2>',
        f'<p class="meta status">{_e(_status_line(item))}</p>',
    ]
    if story.keywords:
        chips = "".join(f"<span>{_e(k)}</span>" for k in story.keywords)
        parts.append(f'<p class="kw"><span class="sr">Keywords: </span>{chips}</p>')
    if story.topics:
        parts.append(f'<p class="meta topics">Watch topics: {", ".join(_e(t) for t in story.topics)}</p>')
    parts.append(f'<p class="meta stats">{_e(_stats_line(item))}</p>')
    parts.append(f'<p class="meta outlets">Covered by: {", ".join(_e(o) for o in item.outlets)}</p>')
    parts.extend(_html_timeline(item.timeline, day))
    parts.append('<ul class="articles">')
    for a in item.articles_today:
        parts.append(_html_article(a, zone, "%H:%M", with_summary=True))
    parts.append("</ul>")
    if item.earlier_articles:
        parts.append(f"<details><summary>Earlier coverage ({len(item.earlier_articles)})</summary>")
        parts.append('<ul class="articles">')
        for a in item.earlier_articles[:EARLIER_LIMIT]:
            parts.append(_html_article(a, zone, "%Y-%m-%d %H:%M", with_summary=False))
        more = len(item.earlier_articles) - EARLIER_LIMIT
        if more > 0:
            parts.append(f'<li class="copy">… and {more} more</li>')
        parts.append("</ul></details>")
    parts.append("</article>")
    return parts


def _html_article(a: DigestArticle, zone: tzinfo, fmt: str, *, with_summary: bool) -> str:
    local = _local(a.published_at, zone)
    copy = ' <span class="copy">(syndicated copy)</span>' if a.is_duplicate else ""
    line = (
        f"<li>{_html_link(feed_text(a.title), a.url)} "
        f'<span class="src">{_e(a.source)}</span> '
        f'<time datetime="{_utc(a.published_at).isoformat()}">{local.strftime(fmt)}</time>{copy}'
    )
    summary = _shorten(feed_text(a.summary), SUMMARY_CHARS) if with_summary else ""
    if summary:
        line += f'<p class="summary">{_e(summary)}</p>'
    return line + "</li>"


def _html_timeline(timeline: list[DayCount], day: date) -> list[str]:
    peak = max((d.articles for d in timeline), default=0) or 1
    described = ", ".join(f"{d.day:%d %b}: {d.articles}" for d in timeline)
    bars, labels = [], []
    for d in timeline:
        # Heights are numbers we compute; nothing from a feed reaches a style attribute.
        total_pct = round(100 * d.articles / peak)
        ind_pct = round(100 * d.independent / d.articles) if d.articles else 0
        tip = f"{d.day:%a %d %b}: {_plural(d.articles, 'article')}, {d.independent} independent"
        today = " today" if d.day == day else ""
        bars.append(
            f'<div class="day{today}" title="{tip}"><div class="all" style="height:{total_pct}%">'
            f'<div class="ind" style="height:{ind_pct}%"></div></div></div>'
        )
        labels.append(f"<span>{d.day.day}</span>")
    label = _e(f"Articles per day: {described}")
    return [
        f'<div class="timeline" role="img" aria-label="{label}">{"".join(bars)}</div>',
        f'<div class="tl-labels" aria-hidden="true">{"".join(labels)}</div>',
    ]
