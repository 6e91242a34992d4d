"""What readers see, assembled from one read-only view of the data: search, related stories,
watch-topic tags, Atom feeds and story details. Shared by `storyline search`/`feed` (on the
live file) and the web app (on its in-memory copy, ``storage.snapshot``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np

from flows.digest import check_category
from pipeline.embed.select import encoder_for
from pipeline.publish.atom import FeedArticle, FeedInfo, FeedStory, render_atom, tag_uri
from pipeline.search.rank import SearchHit, StoryLabel, label_terms, search_stories
from pipeline.settings import ConfigError, Settings
from pipeline.stories.topics import match_topics, topic_text
from storage import briefs as brief_store
from storage import sources as source_store
from storage import web as web_store

if TYPE_CHECKING:
    from storage.snapshot import Snapshot

# Related stories shown on a story page, and the least cosine between centroids to count.
RELATED = 5
RELATED_MIN_COSINE = 0.3
QUERY_TOKENS = 64


# Vectors cached by model and text (queries repeat, topics always do).
_VECTORS: dict[tuple[str, str, int], np.ndarray] = {}
_VECTORS_MAX = 256


def embed_text(settings: Settings, text: str, *, max_tokens: int = QUERY_TOKENS) -> np.ndarray:
    """A query or topic description as a vector of the articles' model."""
    key = (settings.embed.model, " ".join(text.split()), max_tokens)
    if key not in _VECTORS:
        if len(_VECTORS) >= _VECTORS_MAX:
            _VECTORS.clear()
        _VECTORS[key] = encoder_for(settings.embed).encode([key[1]], max_tokens=max_tokens)[0]
    return _VECTORS[key]


@dataclass
class ReadView:
    con: duckdb.DuckDBPyConnection
    settings: Settings
    # Live stories and their unit centroids, one row each.
    story_ids: list[str]
    centroids: np.ndarray
    # Derived data shared by every view of the same copy (the web app's snapshot memo).
    memo: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of_live_file(cls, con: duckdb.DuckDBPyConnection, settings: Settings) -> ReadView:
        """A view on a read-only connection to the live file (centroids computed from embeddings)."""
        ids, matrix = web_store.live_centroids(con, settings.embed.model)
        return cls(con, settings, ids, matrix)

    @classmethod
    def of_snapshot(cls, snapshot: Snapshot, settings: Settings) -> ReadView:
        """A view on the web app's in-memory copy, through its own cursor (one per request)."""
        return cls(snapshot.con.cursor(), settings, snapshot.story_ids, snapshot.centroids, snapshot.memo)

    def row(self, story_id: str) -> int | None:
        if "rows" not in self.memo:
            self.memo["rows"] = {sid: i for i, sid in enumerate(self.story_ids)}
        row: int | None = self.memo["rows"].get(story_id)
        return row

    # ------------------------------------------------------------------ topics

    def check_category(self, category: str | None) -> None:
        if category:
            check_category(category, source_store.categories(self.con))

    def categories(self) -> list[str]:
        return source_store.categories(self.con)

    def check_topic(self, topic: str | None) -> None:
        if topic and topic not in {t.name for t in self.settings.digest.topics}:
            known = ", ".join(t.name for t in self.settings.digest.topics) or "none configured"
            raise ConfigError(f"unknown watch topic {topic!r} (known: {known})")

    def topic_tags(self) -> dict[str, list[str]]:
        """Story id -> the watch topics it belongs to (centroid cosine to each topic's text)."""
        if "tags" not in self.memo:
            topics = self.settings.digest.topics
            if not topics or not self.story_ids:
                self.memo["tags"] = {}
            else:
                # 256 tokens, as the digest embeds topics (flows.digest.tag_topics).
                vectors = {
                    t.name: embed_text(self.settings, topic_text(t.name, t.description), max_tokens=256)
                    for t in topics
                }
                centres = {sid: self.centroids[i] for i, sid in enumerate(self.story_ids)}
                self.memo["tags"] = match_topics(centres, vectors, {t.name: t.threshold for t in topics})
        tags: dict[str, list[str]] = self.memo["tags"]
        return tags

    def tag(self, _con: Any, _settings: Settings, stories: list[Any]) -> None:
        """Tag digest stories with topics (the signature ``flows.digest.compose_digest`` takes)."""
        tags = self.topic_tags()
        for s in stories:
            s.topics = tags.get(s.story_id, [])

    # ------------------------------------------------------------------ search and neighbours

    def search(
        self, query: str, *, since: date | None = None, until: date | None = None, limit: int = 20
    ) -> list[tuple[SearchHit, web_store.StoryRow]]:
        if "labels" not in self.memo:
            self.memo["labels"] = [
                (sid, first, StoryLabel(h or "", k, last, label_terms(h or "", k)))
                for sid, h, k, first, last in web_store.live_labels(self.con)
            ]
        labels = {
            sid: label
            for sid, first, label in self.memo["labels"]
            if (since is None or label.last_seen.date() >= since) and (until is None or first.date() <= until)
        }
        ids = [s for s in self.story_ids if s in labels]
        matrix = self.centroids[[self.row(s) for s in ids]] if ids else self.centroids[:0]
        hits = search_stories(query, embed_text(self.settings, query), ids, matrix, labels, limit=limit)
        rows = web_store.story_rows(self.con, [h.story_id for h in hits])
        return [(h, rows[h.story_id]) for h in hits if h.story_id in rows]

    def related(self, story_id: str, limit: int = RELATED) -> list[tuple[web_store.StoryRow, float]]:
        i = self.row(story_id)
        if i is None or len(self.story_ids) < 2:
            return []
        sims = self.centroids @ self.centroids[i]
        order = [j for j in np.argsort(-sims, kind="stable") if j != i and sims[j] >= RELATED_MIN_COSINE]
        ids = [self.story_ids[j] for j in order[:limit]]
        rows = web_store.story_rows(self.con, ids)
        return [(rows[s], float(sims[self.row(s) or 0])) for s in ids if s in rows]

    # ------------------------------------------------------------------ feeds

    def feed_stories(self, topic: str | None = None) -> list[FeedStory]:
        self.check_topic(topic)
        wanted = None
        if topic:
            wanted = [sid for sid, names in self.topic_tags().items() if topic in names]
        rows = web_store.recently_updated(self.con, limit=self.settings.web.feed_entries, story_ids=wanted)
        ids = [r.story_id for r in rows]
        articles = web_store.articles_of(self.con, ids)
        briefs = brief_store.load_briefs(self.con, ids)
        tags = self.topic_tags()
        return [
            FeedStory(
                story_id=r.story_id, headline=r.headline or r.story_id, keywords=r.keywords,
                first_seen=r.first_seen, updated=r.updated, brief=briefs.get(r.story_id),
                topics=tags.get(r.story_id, []),
                articles=[FeedArticle(a.title, a.source, a.url, a.published_at, a.is_duplicate)
                          for a in articles.get(r.story_id, [])],
            )
            for r in rows
        ]  # fmt: skip

    def atom(
        self,
        topic: str | None = None,
        *,
        base_url: str | None = None,
        self_path: str = "",
        stories: list[FeedStory] | None = None,
    ) -> bytes:
        """The Atom feed of ``topic`` (all stories if None); ``stories``: its feed_stories, if at hand."""
        authority = self.settings.web.tag_authority
        base = base_url.rstrip("/") if base_url else None
        info = FeedInfo(
            title=f"Storyline — {topic}" if topic else "Storyline — stories",
            feed_id=tag_uri(authority, f"topic/{topic}" if topic else "stories"),
            subtitle="One entry per story, updated as the story develops",
            self_url=f"{base}{self_path}" if base and self_path else None,
            home_url=f"{base}/" if base else None,
        )

        def story_url(sid: str) -> str | None:
            return f"{base}/stories/{sid}" if base else None

        if stories is None:
            stories = self.feed_stories(topic)
        return render_atom(info, stories, authority=authority, story_url=story_url)
