"""The whole cluster step at scale: seconds, CPU seconds and peak RSS per phase, outside and inside
``cluster_window``.

    nice .venv/bin/python bench/cluster_flow_scale.py 20000
    nice .venv/bin/python bench/cluster_flow_scale.py 100000 --workdir /tmp/cfs

A real DuckDB file is built through the project's storage functions, as ``storyline import`` and
``storyline embed`` would leave it: N synthetic articles (``bench/synthetic.py``, seeded: texts,
vectors and known stories) spread over 3.95 days, from a few dozen sources, with their vectors stored
under the configured model. ``flows.cluster.cluster_step`` then runs twice, each run in a fresh
process (so each peak RSS is that run's alone): first with every article new, then after the newest
1% more have arrived. The built file is kept in ``--workdir`` and reused while its inputs match, so
a before/after comparison clusters the very same database.

Phases are timed by wrapping the step's functions in this process only (nothing in the library is
changed): wall and CPU seconds (both cores: on a machine shared with other work, wall is inflated,
CPU is not) and the process's peak RSS when the phase ended. A nested phase is indented under the
phase that calls it; "other" is the step's time outside every listed phase (opening the database,
the run record, the commit). Each run also prints a fingerprint of what it wrote (memberships,
stories and their labels, lineage, briefs), so two versions of the code can be checked for
identical results on the same input.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.synthetic import make_window

_SPAN_DAYS = 3.95
_SOURCES = 36
_T0 = datetime(2026, 11, 16, tzinfo=UTC)
# A version tag of the built database: change it when the way the file is built changes.
_BUILD = "v1"

# (module, attribute, label, depth): the functions timed, in display order. "a|b" wraps the function
# in whichever of the modules has it (callers look it up there); a missing one is skipped and shows
# as "-", so the bench runs on versions from before and after a refactor.
PHASES: list[tuple[str, str, str, int]] = [
    ("storage.stories", "load_window", "load window", 0),
    ("flows.cluster", "_load_context", "context (load + neighbours)", 0),
    ("storage.stories", "load_live_stories", "load live stories", 0),
    ("storage.stories", "members_outside", "members outside window", 0),
    ("storage.stories", "all_story_ids", "all story ids", 0),
    ("flows.cluster", "compute_update", "compute update", 0),
    ("flows.cluster", "cluster_window", "cluster_window", 1),
    ("flows.cluster", "assign_stories", "assign_stories", 1),
    ("pipeline.stories.assign", "build_clusters", "build clusters", 2),
    ("pipeline.stories.assign", "set_targets", "set targets", 2),
    ("pipeline.stories.assign", "merges", "merges", 2),
    ("pipeline.stories.assign", "mark_splits", "splits", 2),
    ("pipeline.stories.assign", "_births", "births", 2),
    ("pipeline.stories.assign", "_attach", "attach noise", 2),
    ("storage.stories", "apply_story_update", "apply story update", 0),
    ("storage.stories", "current_assignments", "check current stories", 1),
    ("storage.story_updates", "_check_unchanged", "check current stories", 1),
    ("storage.stories|storage.story_updates", "refresh_story_stats", "story stats", 1),
    ("flows.cluster", "relabel_stories", "relabel stories", 0),
    ("storage.labels", "label_inputs", "label inputs", 1),
    ("storage.labels", "contrast_docs", "contrast docs", 1),
    ("flows.labelling", "ctfidf_keywords", "c-TF-IDF keywords", 1),
    ("flows.labelling", "representative_index", "headline choice", 1),
    ("storage.labels", "live_labels", "live labels", 1),
    ("flows.labelling", "unique_headlines", "unique headlines", 1),
    ("storage.labels", "save_labels", "save labels", 1),
    ("flows.cluster", "refresh_briefs", "refresh briefs", 0),
    ("storage.briefs", "live_without_brief", "stories without brief", 1),
    ("storage.briefs", "brief_articles", "brief articles", 1),
    ("flows.briefing", "build_brief", "build briefs", 1),
    ("storage.briefs", "save_briefs", "save briefs", 1),
]


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


@dataclass
class Timing:
    calls: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    peak_gb: float = 0.0


@dataclass
class Timer:
    """Wall and CPU seconds per phase; a phase re-entered while running (recursion) counts once."""

    timings: dict[str, Timing] = field(default_factory=dict)
    _running: set[str] = field(default_factory=set)

    @contextmanager
    def phase(self, label: str) -> Iterator[None]:
        if label in self._running:
            yield
            return
        self._running.add(label)
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self._running.discard(label)
            t = self.timings.setdefault(label, Timing())
            t.calls += 1
            t.wall += time.perf_counter() - wall
            t.cpu += time.process_time() - cpu
            t.peak_gb = _peak_gb()

    def wrap(self, modules: str, attr: str, label: str) -> bool:
        """Time every call of ``module.attr`` (as the callers look it up) in this process."""
        wrapped = False
        for module in modules.split("|"):
            try:
                mod = importlib.import_module(module)
            except ImportError:
                continue
            fn = getattr(mod, attr, None)
            if callable(fn):
                setattr(mod, attr, self._timed(fn, label))
                wrapped = True
        return wrapped

    def _timed(self, fn: Callable[..., Any], label: str) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.phase(label):
                return fn(*args, **kwargs)

        return timed


# Building the database


def _articles(window: Any, lo: int, hi: int, order: np.ndarray) -> tuple[list[Any], list[str], np.ndarray]:
    """Articles ``order[lo:hi]`` of the synthetic window as the pipeline stores them."""
    from pipeline.records import Article

    rng = np.random.default_rng(7)
    sources = rng.integers(0, _SOURCES, size=len(window.texts))
    span = window.times.max() - window.times.min()
    out, ids = [], []
    for i in order[lo:hi].tolist():
        text = window.texts[i]
        at = _T0 + timedelta(seconds=float(window.times[i] - window.times.min()) / span * _SPAN_DAYS * 86400)
        article_id = f"a{i:07d}"
        out.append(
            Article(
                article_id=article_id,
                source=f"Outlet {sources[i]:02d}",
                title=text.split(".", 1)[0],
                text=text,
                url=f"https://outlet{sources[i]:02d}.example/{article_id}",
                canonical_url=None,
                published_at=at,
                fetched_at=at,
                language="en",
                content_hash=hashlib.sha1(text.encode()).hexdigest(),
            )
        )
        ids.append(article_id)
    return out, ids, window.vectors[order[lo:hi]]


def _store(db: Path, n: int, seed: int, part: str) -> None:
    """Store the first ``n`` articles by time (part 'initial') or the next 1% (part 'new')."""
    from pipeline.settings import Settings
    from storage import articles as article_store
    from storage import embeddings as embedding_store
    from storage.db import open_db, transaction

    extra = max(1, n // 100)
    window = make_window(n + extra, seed=seed)
    order = np.argsort(window.times, kind="stable")
    lo, hi = (0, n) if part == "initial" else (n, n + extra)
    model = Settings().embed.model
    with open_db(db) as con:
        for start in range(lo, hi, 20_000):
            articles, ids, vectors = _articles(window, start, min(start + 20_000, hi), order)
            with transaction(con):
                article_store.insert_articles(con, articles, run_id=None)
                embedding_store.store_embeddings(con, model, ids, vectors)


def _clock(db: Path) -> datetime:
    """The step's clock: an hour after the newest article, as a run shortly after it would have."""
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        newest = con.execute("SELECT max(effective_at) FROM articles").fetchall()[0][0]
    return newest.replace(tzinfo=UTC) + timedelta(hours=1)


# One cluster run, in its own process

_FINGERPRINTS = {
    "memberships": "SELECT article_id, story_id, method, run_id FROM story_articles ORDER BY ALL",
    "changes": "SELECT run_id, article_id, from_story, to_story, reason FROM membership_changes ORDER BY ALL",
    "lineage": "SELECT run_id, kind, story_id, other_id FROM story_lineage ORDER BY ALL",
    "stories": """SELECT story_id, status, merged_into, parent_id, created_run, first_seen, last_seen,
                         article_count, headline, headline_article, keywords, labelled_count
                  FROM stories ORDER BY story_id""",
    "briefs": """SELECT story_id, sentences, new_day, new_sentences, article_count
                 FROM story_briefs ORDER BY ALL""",
}


def fingerprint(db: Path) -> dict[str, str]:
    import duckdb

    out = {}
    with duckdb.connect(str(db), read_only=True) as con:
        for name, sql in _FINGERPRINTS.items():
            digest = hashlib.sha256()
            for row in con.execute(sql).fetchall():
                digest.update(repr(row).encode())
            out[name] = digest.hexdigest()[:12]
    return out


def run_once(db: Path) -> dict[str, Any]:
    import flows.cluster as cluster_flow
    from pipeline.settings import Settings

    timer = Timer()
    found: dict[str, bool] = {}
    for module, attr, label, _ in PHASES:
        found[label] = timer.wrap(module, attr, label) or found.get(label, False)
    missing = sorted(label for label, ok in found.items() if not ok)
    settings = Settings(db=db)
    as_of = _clock(db)
    with timer.phase("cluster step"):
        report = cluster_flow.cluster_step(settings, as_of=as_of)
    return {
        "timings": {k: vars(v) for k, v in timer.timings.items()},
        "missing": missing,
        "report": {k: str(v) for k, v in vars(report).items()},
        "fingerprint": fingerprint(db),
        "peak_gb": _peak_gb(),
    }


# The driver


def _sub(*args: str) -> str:
    cmd = ["nice", "-n", "10", sys.executable, __file__, *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _table(runs: list[dict[str, Any]]) -> str:
    head = "| phase | " + " | ".join(f"run {k + 1}: s (CPU s) | peak GB" for k in range(len(runs))) + " |"
    lines = [head, "|---|" + "---|---|" * len(runs)]
    labels = [("cluster step", 0), *{label: depth + 1 for _, _, label, depth in PHASES}.items()]
    for label, depth in labels:
        cells = []
        for run in runs:
            t = run["timings"].get(label)
            cells.append(f"{t['wall']:.2f} ({t['cpu']:.2f}) | {t['peak_gb']:.2f}" if t else "- | -")
        lines.append(f"| {'  ' * depth}{label} | " + " | ".join(cells) + " |")
    for name, outside in (("other", _other), ("outside cluster_window", _outside)):
        cells = [f"{w:.2f} ({c:.2f}) | " for w, c in (outside(run["timings"]) for run in runs)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _other(timings: dict[str, dict[str, float]]) -> tuple[float, float]:
    """The step's time outside every top-level phase: (wall, CPU)."""
    top = {label for _, _, label, depth in PHASES if depth == 0}
    step = timings["cluster step"]
    inside = [t for label, t in timings.items() if label in top]
    return step["wall"] - sum(t["wall"] for t in inside), step["cpu"] - sum(t["cpu"] for t in inside)


def _outside(timings: dict[str, dict[str, float]]) -> tuple[float, float]:
    step, core = timings["cluster step"], timings.get("cluster_window", {"wall": 0.0, "cpu": 0.0})
    return step["wall"] - core["wall"], step["cpu"] - core["cpu"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("n", type=int, nargs="?", default=100_000, help="articles of the first run")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/cluster-flow-scale"))
    ap.add_argument("--rebuild", action="store_true", help="build the database again even if cached")
    ap.add_argument("--store", choices=["initial", "new"], help=argparse.SUPPRESS)
    ap.add_argument("--run", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.store:
        _store(args.db, args.n, args.seed, args.store)
        return
    if args.run:
        print(json.dumps(run_once(args.db)))
        return

    args.workdir.mkdir(parents=True, exist_ok=True)
    pristine = args.workdir / f"built-{args.n}-{args.seed}-{_BUILD}.duckdb"
    work = args.workdir / f"work-{args.n}-{args.seed}.duckdb"
    print(f"start: {_uptime()}", flush=True)
    if args.rebuild or not pristine.exists():
        pristine.unlink(missing_ok=True)
        t = time.perf_counter()
        _sub(str(args.n), "--seed", str(args.seed), "--store", "initial", "--db", str(pristine))
        print(f"built {pristine} in {time.perf_counter() - t:.0f} s", flush=True)
    work.unlink(missing_ok=True)
    shutil.copyfile(pristine, work)
    runs = []
    for k in range(2):
        if k == 1:
            _sub(str(args.n), "--seed", str(args.seed), "--store", "new", "--db", str(work))
        runs.append(json.loads(_sub("--run", "--db", str(work))))
        report = runs[-1]["report"]
        print(
            f"run {k + 1}: window {report['window_articles']} (+{report['context_articles']} context), "
            f"{report['clusters']} clusters, {report['new_stories']} new stories, "
            f"{report['stories_touched']} touched, {report['merges']} merges, {report['splits']} splits, "
            f"{report['assigned']} assigned, {report['unassigned']} unassigned; "
            f"peak RSS {runs[-1]['peak_gb']:.2f} GB; fingerprint {runs[-1]['fingerprint']}; "
            f"load: {_uptime()}",
            flush=True,
        )
    if runs[0]["missing"]:
        print(f"not timed (absent in this version): {', '.join(runs[0]['missing'])}")
    print(f"\n{args.n:,} articles, then +{max(1, args.n // 100):,} (pid {os.getpid()})\n")
    print(_table(runs))


if __name__ == "__main__":
    main()
