"""Window clustering at scale: seconds, peak memory and B3-F1 per window size, sparse vs exact.

    nice .venv/bin/python bench/scale.py 10000 100000 300000 1000000
    nice .venv/bin/python bench/scale.py ann 100000          # k-NN index choices: build/search time, recall
    nice .venv/bin/python bench/scale.py inc 100000 1000000  # hourly updates (+1k, +10k) onto a window

Each size runs in its own process (so peak RSS is that size's alone) on a seeded synthetic
window (bench/synthetic.py: heavy-tailed stories with known truth). The sparse path is
``cluster_window`` as configured (windows above ``exact_max`` take it); the exact path, every
pair compared, runs side by side up to ``--exact-upto`` articles (n^2 memory: 20k needs 11 GB).
Printed: wall seconds and CPU seconds (both cores; on a machine shared with other work the wall
figure is inflated, the CPU figure is not), peak RSS of the process (generated window included;
"base" is the RSS before clustering), B3 precision / recall / F1 against the truth, and the
agreement of the two paths.

``inc N``: the window's graph is built over the N oldest articles (pipeline/stories/incremental.py),
then each update slides it as an hourly run does: the oldest ``k`` articles leave, ``k`` new ones
arrive (k = 1,000, then 10,000 onto the same start). Printed per update: seconds (the update
only: what an hourly run pays for clustering), peak RSS of the process, B3-F1 of the updated
labels against the truth, and, with ``--compare``, a full build over the same final window
for the same figures and the agreement of the two (ARI).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.metrics import bcubed
from bench.synthetic import make_window
from pipeline.settings import Settings
from pipeline.stories.cluster import ClusterParams, cluster_window


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def _current_rss_gb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1e6
    return 0.0


def one(n: int, path: str, seed: int) -> dict:
    """One window size and one path, in this process."""
    window = make_window(n, seed=seed)
    base = ClusterParams.from_settings(Settings().cluster)
    params = (
        dataclasses.replace(base, exact_max=10**9)
        if path == "exact"
        else dataclasses.replace(base, exact_max=1)
    )
    rss_before = _current_rss_gb()
    start, cpu = time.perf_counter(), time.process_time()
    labels = cluster_window(window.vectors, window.texts, window.times, params)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    p, r, f1 = bcubed(window.truth, labels)
    out = Path(f"/tmp/scale-{n}-{seed}-{path}.npy")
    np.save(out, labels)
    return {
        "n": n,
        "path": path,
        "s": seconds,
        "cpu": cpu,
        "peak_gb": _rss_gb(),
        "base_gb": rss_before,
        "b3": (p, r, f1),
    }


def ann(n: int, seed: int) -> None:
    """Recall@20 of the index choices against exact neighbours on a 2,000-article sample."""
    import faiss

    vecs = make_window(n, seed=seed).vectors
    k = 20
    rng = np.random.default_rng(0)
    sample = rng.choice(n, 2000, replace=False)
    truth = np.argsort(-(vecs[sample] @ vecs.T), axis=1)[:, 1 : k + 1]

    def recall(idx: np.ndarray) -> float:
        return float(np.mean([len(set(idx[a]) & set(truth[t])) / k for t, a in enumerate(sample)]))

    def report(name: str, build: float, search: float, idx: np.ndarray) -> None:
        print(
            f"{name:34s} build {build:6.1f} s  search {search:6.1f} s  recall@{k} {recall(idx):.4f}",
            flush=True,
        )

    nlist = int(4 * np.sqrt(n))
    t = time.perf_counter()
    ivf = faiss.IndexIVFFlat(
        faiss.IndexFlatIP(vecs.shape[1]), vecs.shape[1], nlist, faiss.METRIC_INNER_PRODUCT
    )
    ivf.cp.niter = 10
    ivf.train(vecs[:: max(1, n // (40 * nlist))])
    ivf.add(vecs)
    build = time.perf_counter() - t
    for nprobe in (8, 16, 32):
        ivf.nprobe = nprobe
        t = time.perf_counter()
        _, idx = ivf.search(vecs, k + 1)
        report(f"faiss IVFFlat nlist {nlist} nprobe {nprobe}", build, time.perf_counter() - t, idx[:, 1:])
    del ivf
    t = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(vecs.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 128
    hnsw.add(vecs)
    build = time.perf_counter() - t
    hnsw.hnsw.efSearch = 64
    t = time.perf_counter()
    _, idx = hnsw.search(vecs, k + 1)
    report("faiss HNSWFlat M16 ef128/64", build, time.perf_counter() - t, idx[:, 1:])


def incremental_runs(n: int, adds: list[int], seed: int, compare: bool) -> None:
    """Hourly updates onto a window of n articles (in this process; printed as table rows)."""
    from sklearn.metrics import adjusted_rand_score

    from pipeline.stories import incremental
    from pipeline.stories.numbering import canonical_labels

    window = make_window(n + max(adds), seed=seed)
    order = np.argsort(window.times, kind="stable")
    vecs, times, truth = window.vectors[order], window.times[order], window.truth[order]
    texts = [window.texts[k] for k in order]
    del window
    params = dataclasses.replace(ClusterParams.from_settings(Settings().cluster), exact_max=1)
    start, cpu = time.perf_counter(), time.process_time()
    state = incremental.build(vecs[:n], texts[:n], times[:n], params)
    print(
        f"| {n:,} | build | {time.perf_counter() - start:.1f} ({time.process_time() - cpu:.1f}) "
        f"| {_rss_gb():.2f} | {bcubed(truth[:n], canonical_labels(state.labels))[2]:.3f} | | |",
        flush=True,
    )
    for add in adds:
        keep = np.arange(n) >= add
        new = slice(n, n + add)
        start, cpu = time.perf_counter(), time.process_time()
        updated = incremental.update(state, keep, vecs[add : n + add], texts[new], times[new], params)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        labels = canonical_labels(updated.labels)
        f1 = bcubed(truth[add : n + add], labels)[2]
        full_f1, agree = "", ""
        if compare:
            full = canonical_labels(
                incremental.build(
                    vecs[add : n + add], texts[add : n + add], times[add : n + add], params
                ).labels
            )
            full_f1 = f"{bcubed(truth[add : n + add], full)[2]:.3f}"
            agree = f"{adjusted_rand_score(full, labels):.4f}"
        print(
            f"| {n:,} | +{add:,} / -{add:,} | {seconds:.1f} ({cpu:.1f}) | {_rss_gb():.2f} | {f1:.3f} "
            f"| {full_f1} | {agree} |",
            flush=True,
        )
        del updated


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sizes", nargs="+", help="window sizes, or 'ann N'")
    ap.add_argument("--exact-upto", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--one", choices=["sparse", "exact"], help=argparse.SUPPRESS)
    ap.add_argument("--adds", default="1000,10000", help="inc: articles per update (comma-separated)")
    ap.add_argument("--compare", action="store_true", help="inc: a full build of each final window too")
    ap.add_argument("--inc-one", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sizes[0] == "ann":
        ann(int(args.sizes[1]), args.seed)
        return
    adds = [int(a) for a in args.adds.split(",")]
    if args.inc_one:
        incremental_runs(int(args.sizes[0]), adds, args.seed, args.compare)
        return
    if args.sizes[0] == "inc":
        print("| window | step | seconds (CPU s) | peak RSS GB | B3-F1 | B3-F1 full build | ARI vs full |")
        print("|---|---|---|---|---|---|---|")
        for n in (int(s) for s in args.sizes[1:]):
            cmd = [
                sys.executable,
                __file__,
                str(n),
                "--inc-one",
                "--adds",
                args.adds,
                "--seed",
                str(args.seed),
            ]
            subprocess.run(cmd + (["--compare"] if args.compare else []), check=True)
        return
    if args.one:
        print(json.dumps(one(int(args.sizes[0]), args.one, args.seed)))
        return
    print("| n | path | seconds (CPU s) | peak RSS GB (base) | B3 P / R / F1 | same partition as exact |")
    print("|---|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes):
        paths = ["exact", "sparse"] if n <= args.exact_upto else ["sparse"]
        for path in paths:
            cmd = [sys.executable, __file__, str(n), "--one", path, "--seed", str(args.seed)]
            res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            agree = ""
            if path == "sparse" and "exact" in paths:
                from sklearn.metrics import adjusted_rand_score

                a = np.load(f"/tmp/scale-{n}-{args.seed}-exact.npy")
                b = np.load(f"/tmp/scale-{n}-{args.seed}-sparse.npy")
                same = "identical" if np.array_equal(a, b) else "differs"
                agree = f"{same}, ARI {adjusted_rand_score(a, b):.4f}"
            p, r, f1 = res["b3"]
            print(
                f"| {n:,} | {path} | {res['s']:.1f} ({res['cpu']:.1f}) "
                f"| {res['peak_gb']:.2f} ({res['base_gb']:.2f}) "
                f"| {p:.3f} / {r:.3f} / {f1:.3f} | {agree} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
