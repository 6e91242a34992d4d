"""Labelled article sets for the quality benchmark, with cached embeddings.

A set is a JSONL file with one article per line (``id, story, source, url,
published_at, title, text``; see ../shared/README.md). Embeddings cost minutes
on CPU for the long-text sets, so they are computed once and kept under
``bench/.cache/`` keyed by the set's path, size and mtime, the model and the
token budget.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from pipeline.embed.base import embed_input, load_model
from pipeline.embed.torch_fp32 import embed_texts
from pipeline.settings import DEFAULT_MODEL

CACHE_DIR = Path(__file__).resolve().parent / ".cache"


@dataclass(frozen=True)
class Dataset:
    name: str
    path: Path
    ids: list[str]
    stories: list[str | None]
    sources: list[str | None]
    urls: list[str | None]
    titles: list[str]
    bodies: list[str]
    texts: list[str]
    # Epoch seconds, NaN where the article has no date.
    times: np.ndarray
    # "" for the set as published; "titles" for its headline-only variant (own embedding cache).
    variant: str = ""

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dated(self) -> bool:
        return bool(np.isfinite(self.times).any())

    def gold(self) -> np.ndarray:
        """Gold story labels as ints; unlabelled articles become their own singleton."""
        index: dict[str, int] = {}
        out = np.empty(len(self), dtype=np.int64)
        for i, story in enumerate(self.stories):
            key = story if story is not None else f"__single_{i}"
            out[i] = index.setdefault(key, len(index))
        return out


def parse_time(value: str | None) -> float:
    """ISO date or datetime to epoch seconds (UTC when no zone is given); NaN when absent or unreadable."""
    if not value:
        return float("nan")
    text = value.strip().replace("Z", "+00:00")
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return float("nan")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def load_dataset(path: str | Path) -> Dataset:
    path = Path(path)
    if path.is_dir():
        path = path / "articles.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    titles = [(r.get("title") or "").strip() for r in rows]
    bodies = [(r.get("text") or "").strip() for r in rows]
    # Same input the production flow builds (pipeline.embed.embed_input), so
    # the benchmark measures what the pipeline sees.
    texts = [embed_input(t, b) for t, b in zip(titles, bodies, strict=True)]
    name = path.parent.name if path.name == "articles.jsonl" else path.stem
    return Dataset(
        name=name,
        path=path,
        ids=[str(r["id"]) for r in rows],
        stories=[None if r.get("story") is None else str(r["story"]) for r in rows],
        sources=[r.get("source") for r in rows],
        urls=[r.get("url") for r in rows],
        titles=titles,
        bodies=bodies,
        texts=texts,
        times=np.array([parse_time(r.get("published_at")) for r in rows], dtype=np.float64),
    )


def titles_only(ds: Dataset) -> Dataset:
    """The set as a headline-only feed would give it: titled articles only, text = the title."""
    keep = [i for i, t in enumerate(ds.titles) if t]
    return Dataset(
        name=f"{ds.name}-titles",
        path=ds.path,
        ids=[ds.ids[i] for i in keep],
        stories=[ds.stories[i] for i in keep],
        sources=[ds.sources[i] for i in keep],
        urls=[ds.urls[i] for i in keep],
        titles=[ds.titles[i] for i in keep],
        bodies=["" for _ in keep],
        texts=[ds.titles[i] for i in keep],
        times=ds.times[keep],
        variant="titles",
    )


def _cache_path(ds: Dataset, model: str, max_tokens: int) -> Path:
    stat = ds.path.stat()
    key = f"{ds.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{model}|{max_tokens}"
    if ds.variant:
        key += f"|{ds.variant}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return CACHE_DIR / f"{ds.name}-{max_tokens}-{digest}.npy"


def embeddings(ds: Dataset, model: str = DEFAULT_MODEL, max_tokens: int = 128) -> np.ndarray:
    """Unit vectors for the set's texts, from the cache when present."""
    cache = _cache_path(ds, model, max_tokens)
    if cache.exists():
        vecs = np.load(cache)
        if vecs.shape[0] == len(ds):
            return vecs
    print(f"embedding {ds.name}: {len(ds)} texts (cached afterwards in {cache})", file=sys.stderr)
    vecs = embed_texts(load_model(model), ds.texts, max_tokens=max_tokens)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npy")
    np.save(tmp, vecs)
    tmp.replace(cache)
    return vecs
