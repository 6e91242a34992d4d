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
from datetime import timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.datasets import Dataset, embeddings, load_dataset, titles_only
from bench.metrics import ami, bcubed, pairwise_f1
from bench.replay import Replay, replay_set
from pipeline.settings import Settings
from pipeline.stories.cluster import ClusterParams, cluster_window

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
    """The default configuration's window clustering over the whole set as one window."""
    params = ClusterParams.from_settings(Settings().cluster)
    return cluster_window(vectors, ds.texts, ds.times if ds.dated else None, params)


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


REPLAYS: dict[str, Replay] = {}


def replay_daily(ds: Dataset, vectors: np.ndarray) -> np.ndarray:
    """The set fed to Storyline day by day (by published_at) through the real importer, storage and
    cluster step (bench/replay.py); the score is on the story IDs after the last run."""
    result = replay_set(ds, vectors, step=timedelta(days=1))
    REPLAYS[ds.name] = result
    return result.labels


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
        help="daily: also replay each set day by day through the real storage and cluster step",
    )
    parser.add_argument(
        "--twice",
        action="store_true",
        help="with --replay daily: replay each set a second time and check the story IDs are identical",
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
        if ds.name in REPLAYS:
            r = REPLAYS[ds.name]
            print(
                f"  replay stability: {r.steps} cluster runs, {r.moved} articles changed story "
                f"(all through {r.merges} merges and {r.splits} splits), {r.silent} silent changes"
            )
            if args.twice:
                again = replay_set(ds, vectors, step=timedelta(days=1))
                same = again.story_ids == r.story_ids
                print(f"  replayed twice: story IDs and memberships {'identical' if same else 'DIFFER'}")
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
