"""Clustering quality on labelled article sets: Storyline's default window clusterer against baselines.

    .venv/bin/python bench/quality.py ../shared/data/gedikli ../shared/data/ecbplus/articles.jsonl ...

Every method sees the whole set as one window and runs in this process on the
same cached embeddings (bench/.cache/). Storyline runs with the default
ClusterParams: nothing is tuned per set. Scores: B-cubed precision / recall /
F1 and pairwise F1 (noise points count as singletons), adjusted mutual
information. See bench/README.md for the numbers and how they were reached.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.datasets import Dataset, embeddings, load_dataset, titles_only
from pipeline.cluster import ClusterParams, cluster_window
from pipeline.metrics import ami, bcubed, pairwise_f1

# Fixed baseline settings (one value for every set, like Storyline's default).
TFIDF_DISTANCE = 0.8  # average-link cosine distance cut for TF-IDF vectors
SINGLE_PASS_THRESHOLD = 0.7  # embedding cosine to a cluster centroid to join it


@dataclass
class Result:
    method: str
    labels: np.ndarray
    seconds: float


Method = Callable[[Dataset, np.ndarray], np.ndarray]


def storyline(ds: Dataset, vectors: np.ndarray) -> np.ndarray:
    return cluster_window(vectors, ds.texts, ds.times if ds.dated else None, ClusterParams())


def plain_hdbscan(ds: Dataset, vectors: np.ndarray) -> np.ndarray:
    import hdbscan

    # Euclidean distance on unit vectors ranks pairs like cosine does.
    return hdbscan.HDBSCAN(min_cluster_size=2).fit_predict(vectors.astype(np.float64))


def tfidf_average_link(ds: Dataset, vectors: np.ndarray) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.feature_extraction.text import TfidfVectorizer

    if len(ds) < 2:
        return np.full(len(ds), -1)
    tfidf = TfidfVectorizer(sublinear_tf=True, stop_words="english").fit_transform(ds.texts)
    # Rows are unit-normalised, so 1 - dot is the cosine distance (sparse product, no dense vocabulary).
    dist = np.clip(1.0 - (tfidf @ tfidf.T).toarray(), 0.0, None)
    model = AgglomerativeClustering(
        n_clusters=None, distance_threshold=TFIDF_DISTANCE, metric="precomputed", linkage="average"
    )
    return model.fit_predict(dist)


def single_pass(ds: Dataset, vectors: np.ndarray) -> np.ndarray:
    """SCStory-style streaming: each article, in time order, joins the closest centroid or opens a cluster."""
    times = np.nan_to_num(ds.times, nan=np.inf) if ds.dated else np.zeros(len(ds))
    order = np.lexsort((np.arange(len(ds)), times))
    labels = np.full(len(ds), -1)
    sums: list[np.ndarray] = []
    for i in order:
        v = vectors[i].astype(np.float64)
        if sums:
            cents = np.stack(sums)
            cents /= np.linalg.norm(cents, axis=1, keepdims=True)
            sims = cents @ v
            best = int(np.argmax(sims))
            if sims[best] >= SINGLE_PASS_THRESHOLD:
                labels[i] = best
                sums[best] += v
                continue
        labels[i] = len(sums)
        sums.append(v.copy())
    return labels


def replay_daily(ds: Dataset, vectors: np.ndarray) -> np.ndarray:
    """Replay the set day by day as the cluster flow would see it, with stories kept in memory.

    Each day's run clusters the window ending at that day's end (``ClusterSettings.window_days``)
    with the default ClusterParams and hands the labels to ``pipeline.stories.assign_stories``,
    which keeps story IDs across runs; the result is each article's story after the last run
    (-1 for none). Storage is not involved: this mirrors flows/cluster.py's pure part, not its
    SQL. An undated set has no days and is clustered as one window.
    """
    from datetime import UTC, datetime

    from pipeline.settings import ClusterSettings
    from pipeline.stories import LiveStory, MatchParams, WindowArticle, assign_stories, story_centroid

    settings = ClusterSettings()
    match = MatchParams.from_settings(settings)
    n = len(ds)
    known = np.isfinite(ds.times)
    times = np.where(known, ds.times, np.nanmin(ds.times) if known.any() else 0.0)
    stamps = [datetime.fromtimestamp(t, tz=UTC) for t in times]
    position = {aid: k for k, aid in enumerate(ds.ids)}
    story_of: dict[int, str] = {}
    existing: set[str] = set()
    day = 86400.0
    if known.any():
        first_day = np.floor(times.min() / day) * day
        ends = np.arange(first_day + day, times.max() + day + 1, day)
    else:
        ends = np.array([times.max() + 1.0])
    window_s = settings.window_days * day
    gate_s = settings.match_gate_days * day
    for end in ends:
        idx = np.flatnonzero((times < end) & (times >= end - window_s)) if known.any() else np.arange(n)
        if len(idx) == 0:
            continue
        texts = [ds.texts[i] for i in idx]
        labels = cluster_window(vectors[idx], texts, ds.times[idx] if known.any() else None)
        members: dict[str, list[int]] = {}
        for i, sid in story_of.items():
            members.setdefault(sid, []).append(i)
        live = []
        for sid, mem in members.items():
            last = max(times[m] for m in mem)
            if last >= end - window_s - gate_s:
                live.append(
                    LiveStory(
                        story_id=sid,
                        first_seen=stamps[min(mem, key=lambda m: times[m])],
                        last_seen=datetime.fromtimestamp(last, tz=UTC),
                        centroid=story_centroid(vectors[mem]),
                        size=len(mem),
                    )
                )
        in_window = set(idx.tolist())
        outside = {s.story_id: [ds.ids[m] for m in members[s.story_id] if m not in in_window] for s in live}
        update = assign_stories(
            [WindowArticle(ds.ids[i], stamps[i], story_of.get(i)) for i in idx],
            labels,
            vectors[idx],
            live,
            existing_ids=existing,
            members_outside_window=outside,
            params=match,
        )
        for change in update.changes:
            story_of[position[change.article_id]] = change.to_story
        existing.update(update.new_stories)
    codes: dict[str, int] = {}
    return np.array([codes.setdefault(story_of[i], len(codes)) if i in story_of else -1 for i in range(n)])


METHODS: dict[str, Method] = {
    "storyline": storyline,
    "hdbscan-plain": plain_hdbscan,
    f"tfidf-avglink@{TFIDF_DISTANCE}": tfidf_average_link,
    f"single-pass@{SINGLE_PASS_THRESHOLD}": single_pass,
}


def run_methods(ds: Dataset, vectors: np.ndarray, methods: dict[str, Method]) -> list[Result]:
    results = []
    for name, method in methods.items():
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            labels = np.asarray(method(ds, vectors))
        results.append(Result(name, labels, time.perf_counter() - start))
    return results


def report(ds: Dataset, results: list[Result]) -> dict[str, float]:
    gold = ds.gold()
    stories = len(set(gold.tolist()))
    print(f"\n{ds.name}: {len(ds)} articles, {stories} gold stories, {'dated' if ds.dated else 'undated'}")
    header = f"  {'method':22s} {'B3-P':>6s} {'B3-R':>6s} {'B3-F1':>6s} {'pair-F1':>7s} {'AMI':>6s}"
    print(header + f" {'clusters':>8s} {'noise':>6s} {'sec':>6s}")
    f1s = {}
    for r in results:
        p, rec, f1 = bcubed(gold, r.labels)
        f1s[r.method] = f1
        clusters = len(set(r.labels.tolist()) - {-1})
        noise = float(np.mean(r.labels == -1)) if len(r.labels) else 0.0
        print(
            f"  {r.method:22s} {p:6.3f} {rec:6.3f} {f1:6.3f} {pairwise_f1(gold, r.labels)[2]:7.3f} "
            f"{ami(gold, r.labels):6.3f} {clusters:8d} {noise:6.2f} {r.seconds:6.2f}"
        )
    return f1s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="+", type=Path, help="articles.jsonl files or their folders")
    parser.add_argument(
        "--replay",
        choices=["none", "daily"],
        default="none",
        help="daily: also replay each set day by day through story matching (in memory, default settings)",
    )
    parser.add_argument(
        "--titles-only",
        action="store_true",
        help="score each set as a headline-only feed (titled articles, title as the whole text)",
    )
    args = parser.parse_args(argv)
    methods = dict(METHODS)
    if args.replay == "daily":
        methods["storyline-replay-daily"] = replay_daily
    summary: dict[str, dict[str, float]] = {}
    for path in args.datasets:
        ds = load_dataset(path)
        if args.titles_only:
            ds = titles_only(ds)
        vectors = embeddings(ds)
        summary[ds.name] = report(ds, run_methods(ds, vectors, methods))
    print("\nB3-F1 summary")
    names = list(summary)
    print(f"  {'method':22s} " + " ".join(f"{n[:14]:>14s}" for n in names) + f" {'mean':>6s}")
    for method in methods:
        scores = [summary[n][method] for n in names]
        cells = " ".join(f"{s:14.3f}" for s in scores)
        print(f"  {method:22s} {cells} {np.mean(scores):6.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
