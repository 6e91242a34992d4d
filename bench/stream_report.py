"""What `bench/stream.py` reads back from the stream's database: the `runs` table, each cluster run's
path (exact, sparse with the graph built or updated, skipped), and the per-path time figures."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import duckdb


def read_runs(db: Path) -> tuple[list[dict], dict]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT run_id, kind, status, started_at, finished_at, stats FROM runs ORDER BY run_id"
        ).fetchall()
        (articles, copies, embedded) = con.execute(
            "SELECT count(*), count(duplicate_of), (SELECT count(*) FROM embeddings) FROM articles"
        ).fetchone()
        (stories,) = con.execute("SELECT count(*) FROM story_summary").fetchone()
        (alone,) = con.execute(
            "SELECT count(*) FROM articles a WHERE NOT EXISTS "
            "(SELECT 1 FROM story_articles s WHERE s.article_id = a.article_id)"
        ).fetchone()
    runs = [
        {
            "run_id": r[0],
            "kind": r[1],
            "status": r[2],
            "started": r[3],
            "seconds": (r[4] - r[3]).total_seconds() if r[4] else None,
            "stats": json.loads(r[5]) if r[5] else {},
        }
        for r in rows
    ]
    store = {"articles": articles, "copies": copies, "embedded": embedded, "stories": stories, "alone": alone}
    return runs, store


def cluster_path(run: dict, exact_max: int) -> str:
    stats = run["stats"]
    if stats.get("skipped"):  # a reason when skipped; False in a run that did its work
        return "skipped"
    if stats.get("graph"):
        return f"sparse, graph {stats['graph']}"
    size = stats.get("window_articles", 0) + stats.get("context_articles", 0)
    return "exact" if size <= exact_max else "sparse"


def summarise(values: list[float]) -> tuple[int, float, float, float, float, float]:
    if not values:
        return 0, 0.0, 0.0, 0.0, 0.0, 0.0
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, max(0, -(-9 * len(ordered) // 10) - 1))]
    return len(values), sum(values), statistics.fmean(values), statistics.median(values), p90, ordered[-1]


def report(runs: list[dict], result: dict, exact_max: int) -> dict:
    ended = result["ended_at"]
    cluster = [r for r in runs if r["kind"] == "cluster"]
    for here, after in zip(cluster, [*cluster[1:], None], strict=True):
        here["step_s"] = ((after["started"] if after else ended) - here["started"]).total_seconds()
        here["path"] = cluster_path(here, exact_max)
    rows: list[tuple[str, list[float], list[float]]] = []
    for kind in ("import", "embed"):
        done = [r for r in runs if r["kind"] == kind]
        rows.append((kind, [r["seconds"] or 0.0 for r in done], []))
    rows.append(("cluster, all", [r["seconds"] or 0.0 for r in cluster], [r["step_s"] for r in cluster]))
    for path in ("skipped", "exact", "sparse", "sparse, graph built", "sparse, graph updated"):
        these = [r for r in cluster if r["path"] == path]
        if these:
            rows.append((f"  {path}", [r["seconds"] or 0.0 for r in these], [r["step_s"] for r in these]))
    heads = ("runs", "total s", "mean", "median", "p90", "max")
    print(
        f"\n{'runs table':24s} "
        + " ".join(f"{h:>{w}s}" for h, w in zip(heads, (5, 8, 7, 7, 7, 7), strict=True))
    )
    for name, recorded, steps in rows:
        n, total, mean, median, p90, top = summarise(recorded)
        print(f"{name:24s} {n:5d} {total:8.1f} {mean:7.2f} {median:7.2f} {p90:7.2f} {top:7.2f}")
        if steps:
            n, total, mean, median, p90, top = summarise(steps)
            label = "    step (start to next)"
            print(f"{label:24s} {n:5d} {total:8.1f} {mean:7.2f} {median:7.2f} {p90:7.2f} {top:7.2f}")
    in_runs = sum(r["seconds"] or 0.0 for r in runs)
    print(f"{'outside runs':24s} {'':5s} {result['wall_s'] - in_runs:8.1f}   (start-up, model load, gaps)")
    print(f"{'backfill command':24s} {'':5s} {result['wall_s']:8.1f}")
    worked = [r for r in cluster if r["path"] != "skipped"]
    windows = [r["stats"].get("window_articles", 0) for r in worked]
    contexts = [r["stats"].get("context_articles", 0) for r in worked]
    if worked:
        print(
            f"\ncluster windows: {min(windows):,}-{max(windows):,} articles "
            f"(mean {statistics.fmean(windows):,.0f}), context {statistics.fmean(contexts):,.0f} mean; "
            "slowest runs:"
        )
        for r in sorted(worked, key=lambda r: -(r["seconds"] or 0.0))[:3]:
            s = r["stats"]
            print(
                f"  run {r['run_id']}: {r['seconds']:.1f} s (step {r['step_s']:.1f} s), {r['path']}, "
                f"window {s.get('window_articles', 0):,} + context {s.get('context_articles', 0):,}"
            )
    for r in runs:
        if r["kind"] in ("import", "embed"):
            shown = {k: v for k, v in r["stats"].items() if k != "run_id" and v not in (0, None)}
            print(f"{r['kind']} run: " + ", ".join(f"{k} {v}" for k, v in shown.items()))
    failed = [r for r in runs if r["status"] != "ok"]
    if failed:
        print(
            f"\n{len(failed)} runs not ok: "
            + ", ".join(f"{r['run_id']} {r['kind']} {r['status']}" for r in failed)
        )
    return {
        "cluster_runs": [
            {k: r[k] for k in ("run_id", "seconds", "step_s", "path")} | {"stats": r["stats"]}
            for r in cluster
        ],
        "import_s": rows[0][1],
        "embed_s": rows[1][1],
        "import_stats": [r["stats"] for r in runs if r["kind"] == "import"],
        "embed_stats": [r["stats"] for r in runs if r["kind"] == "embed"],
    }
