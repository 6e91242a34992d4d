"""Throughput: embedding paths against plain SentenceTransformer.encode, incremental clustering
against the store size, and one end-to-end run over local HTTP. Figures, not assertions.

    .venv/bin/python bench/throughput.py embed        # articles/s per path, cosine to fp32, ECB+ B3-F1
    .venv/bin/python bench/throughput.py budget       # token budget vs B3-F1 on the four gold sets
    .venv/bin/python bench/throughput.py incremental  # +1,000 articles onto 10k / 50k / 100k stored
    .venv/bin/python bench/throughput.py e2e          # `storyline run` on 10,000 items over HTTP
    .venv/bin/python bench/throughput.py all

Texts come from ../shared/data (see bench/README.md); nothing from there enters the repo. Every
path runs in this process on the same texts; ratios are against plain ``encode`` measured in the
same run. GPU paths run when torch sees a GPU; the device is named in the output.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.datasets import load_dataset
from pipeline.embed.base import embed_input, load_model
from pipeline.embed.select import load_encoder

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def _device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name(0)}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU: {cpu}, {os.cpu_count()} cores"


def _timed(fn: Callable[[], np.ndarray], repeat: int = 2) -> tuple[np.ndarray, float]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    assert out is not None
    return out, best


def _ecb_texts(limit: int | None = None) -> list[str]:
    ds = load_dataset(SHARED / "ecbplus")
    texts = ds.texts if limit is None else ds.texts[:limit]
    return list(texts)


def _b3_ecb(vectors: np.ndarray) -> float:
    from bench.metrics import bcubed
    from pipeline.settings import Settings
    from pipeline.stories.cluster import ClusterParams, cluster_window

    ds = load_dataset(SHARED / "ecbplus")
    labels = cluster_window(vectors, ds.texts, None, ClusterParams.from_settings(Settings().cluster))
    return bcubed(ds.gold(), labels)[2]


def bench_embed(args: argparse.Namespace) -> None:
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    texts = _ecb_texts()
    sample = texts[: args.sample]
    tokenizer = load_model("default", "cpu").tokenizer
    lengths = [len(tokenizer(t, truncation=False)["input_ids"]) for t in sample]
    print(f"\n== embedding: {len(sample)} ECB+ articles (title + text), {_device_name()}")
    print(f"   tokens per article: median {int(np.median(lengths))}, mean {np.mean(lengths):.0f}")

    plain_model = load_model("default", device)
    # The reference: plain encode as a user would call it (its own defaults: 256 tokens, batch 32).
    plain_model.max_seq_length = 256
    _ref, plain_s = _timed(
        lambda: plain_model.encode(sample, normalize_embeddings=True, convert_to_numpy=True)
    )
    rows = [("plain SentenceTransformer.encode (256 tok)", len(sample) / plain_s, 1.0, 1.0, 1.0, None)]
    paths: list[tuple[str, str, str]] = [("torch", "cpu", "torch fp32, length-sorted")]
    paths.append(("onnx-int8", "cpu", "ONNX int8 (per-channel)"))
    if device == "cuda":
        paths = [("torch", "cuda", "torch fp32 on GPU"), ("pipelined", "cuda", "pipelined fp16 on GPU")]
    for backend, dev, label in paths:
        encoder = load_encoder("default", dev, backend)
        for tokens in (128,):
            # fp32 vectors at the same budget isolate what the precision costs.
            same_budget = load_encoder("default", dev, "torch").encode(sample, max_tokens=tokens)
            encoder.encode(sample[:64], max_tokens=tokens, batch_size=args.batch)  # warm-up
            vecs, secs = _timed(
                lambda e=encoder, t=tokens: e.encode(sample, max_tokens=t, batch_size=args.batch)
            )
            cos = (vecs * same_budget).sum(axis=1)
            rows.append((f"{label} ({tokens} tok)", len(sample) / secs, len(sample) / secs / rows[0][1],
                         float(cos.mean()), float(cos.min()), backend))  # fmt: skip
    print(f"   {'path':46s} {'art/s':>8s} {'x plain':>8s} {'cos mean':>9s} {'cos min':>8s}")
    for name, rate, ratio, cmean, cmin, _ in rows:
        print(f"   {name:46s} {rate:8.1f} {ratio:8.2f} {cmean:9.4f} {cmin:8.4f}")
    print(
        "   (cosine: against fp32 torch vectors at the same token budget; "
        "plain encode: the 256-token reference)"
    )

    if args.quality:
        print("\n   ECB+ B3-F1 with each path's vectors (all 982 articles, default clustering):")
        fp32 = load_encoder("default", device, "torch").encode(texts, max_tokens=128)
        base = _b3_ecb(fp32)
        print(f"   {'torch fp32 (128 tok)':46s} {base:.3f}")
        for backend, dev, label in paths:
            if backend == "torch":
                continue
            vecs = load_encoder("default", dev, backend).encode(texts, max_tokens=128, batch_size=args.batch)
            f1 = _b3_ecb(vecs)
            print(f"   {label + ' (128 tok)':46s} {f1:.3f}  (change {f1 - base:+.3f}; allowed -0.010)")


def bench_budget(args: argparse.Namespace) -> None:
    from bench.metrics import bcubed
    from pipeline.settings import Settings
    from pipeline.stories.cluster import ClusterParams, cluster_window

    print(f"\n== token budget (title + lead) vs B3-F1, {args.backend} vectors, default clustering")
    budgets = [int(b) for b in args.budgets.split(",")]
    encoder = load_encoder("default", "cpu", args.backend)
    print(f"   {'set':16s} " + " ".join(f"{b:>7d}" for b in budgets) + "   (tokens)")
    for name in ("gedikli", "ecbplus", "gva-2013-2015", "uci-headlines"):
        ds = load_dataset(SHARED / name)
        scores = []
        for b in budgets:
            vecs = encoder.encode(ds.texts, max_tokens=b)
            params = ClusterParams.from_settings(Settings().cluster)
            labels = cluster_window(vecs, ds.texts, ds.times if ds.dated else None, params)
            scores.append(bcubed(ds.gold(), labels)[2])
        print(f"   {name:16s} " + " ".join(f"{s:7.3f}" for s in scores), flush=True)


def _gaza_stream() -> tuple[list[dict], np.ndarray]:
    """The Gaza headline stream in time order, with each headline's vector as the pipeline stores it
    (outlet suffix stripped, default encoder); vectors cached in bench/.cache."""
    from bench.datasets import CACHE_DIR
    from pipeline.articles.normalise import article_from_record
    from storage.convert import utcnow

    path = SHARED / "gaza-headlines" / "articles.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows.sort(key=lambda r: (r["published_at"], r["id"]))
    cache = CACHE_DIR / f"gaza-stream-{path.stat().st_size}-{path.stat().st_mtime_ns}.npy"
    if cache.exists():
        return rows, np.load(cache)
    now = utcnow()
    texts = []
    for r in rows:
        a = article_from_record(r, imported_at=now)
        texts.append(embed_input(a.title, a.text))
    print(f"   embedding {len(texts)} Gaza headlines once (cached in {cache}) ...", flush=True)
    vectors = load_encoder().encode(texts)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors)
    return rows, vectors


def _store(db: Path, rows: list[dict], vectors: np.ndarray) -> None:
    """Import rows (real importer) and store their vectors through storage, keyed by external id."""
    from flows.importer import import_step
    from pipeline.settings import DEFAULT_MODEL, load_settings
    from storage import embeddings as embedding_store
    from storage.db import open_db

    archive = db.with_suffix(f".{len(rows)}.jsonl")
    archive.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    import_step(load_settings(db=db), archive)
    by_id = {r["id"]: i for i, r in enumerate(rows)}
    with open_db(db) as con:
        stored = con.execute("SELECT external_id, article_id FROM articles").fetchall()
        ids = [a for e, a in stored if e in by_id]
        embedding_store.store_embeddings(
            con, DEFAULT_MODEL, ids, vectors[[by_id[e] for e, _ in stored if e in by_id]]
        )
    archive.unlink()


def bench_incremental(args: argparse.Namespace) -> None:
    import tempfile
    from datetime import UTC, datetime, timedelta

    from flows.cluster import cluster_step
    from pipeline.settings import load_settings

    print("\n== incremental cluster run: +1,000 new articles onto a stored history")
    rows, vectors = _gaza_stream()
    new_rows, history = rows[-1000:], rows[:-1000]
    cut = datetime.fromisoformat(new_rows[0]["published_at"]).replace(tzinfo=UTC)
    span = timedelta(
        days=(cut - datetime.fromisoformat(history[0]["published_at"]).replace(tzinfo=UTC)).days + 1
    )
    print(
        f"   stream: {len(rows)} Google News headlines on Gaza; history up to {cut:%Y-%m-%d}, the next 1,000 "
        f"arrive within one day; older history is the stream shifted back by {span.days} days per copy"
    )
    print(f"   {'stored':>8s} {'cluster run':>12s} {'window':>7s} {'context':>8s} {'stories':>8s}  (2 cores)")
    for size in [int(x) for x in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory(prefix="storyline-incr-") as tmp:
            db = Path(tmp) / "s.duckdb"
            stored: list[dict] = []
            copy = 0
            while len(stored) < size:
                take = history[-(size - len(stored)) :] if copy == 0 else history
                for r in reversed(take):
                    if len(stored) >= size:
                        break
                    when = datetime.fromisoformat(r["published_at"]).replace(tzinfo=UTC) - copy * span
                    # Older copies are other outlets at other URLs, so nothing is folded as a re-post.
                    outlet = r["source"] if copy == 0 else f"{r['source']} ({copy})"
                    stored.append(
                        r
                        | {
                            "id": f"{r['id']}~{copy}",
                            "published_at": when.isoformat(),
                            "source": outlet,
                            "url": f"{r['url']}#copy{copy}",
                        }
                    )
                copy += 1
            index = {r["id"]: i for i, r in enumerate(rows)}
            vecs = np.vstack([vectors[index[r["id"].split("~")[0]]] for r in stored])
            _store(db, stored, vecs)
            settings = load_settings(db=db)
            # Live operation before the burst: a cluster run per day over the last month.
            for day in range(35, 0, -1):
                cluster_step(settings, as_of=cut - timedelta(days=day))
            # The next 1,000 headlines of the stream, spread over one day (86 s apart).
            burst = [
                r | {"id": f"{r['id']}~new", "published_at": (cut + timedelta(seconds=86 * k)).isoformat()}
                for k, r in enumerate(new_rows)
            ]
            _store(db, burst, np.vstack([vectors[index[r["id"]]] for r in new_rows]))
            start = time.perf_counter()
            report = cluster_step(settings, as_of=cut + timedelta(days=1))
            secs = time.perf_counter() - start
            print(
                f"   {size:8d} {secs:11.2f}s {report.window_articles:7d} {report.context_articles:8d} "
                f"{report.stories_touched:8d}",
                flush=True,
            )


def _feed_items(count: int) -> list[tuple[str, str, str]]:
    """(guid, title, summary) for ``count`` feed items from the shared sets (summary: ~80 words)."""
    items = []
    for name in ("gva-2013-2015", "ecbplus", "gedikli", "uci-headlines", "gaza-headlines"):
        path = SHARED / name / "articles.jsonl"
        for line in path.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            title = (r.get("title") or "").strip()
            words = (r.get("text") or "").split()
            if not title and not words:
                continue
            items.append((f"{name}-{r['id']}", title or " ".join(words[:12]), " ".join(words[:80])))
            if len(items) == count:
                return items
    return items


def _rss(items: list[tuple[str, str, str]], times: list[str]) -> str:
    from html import escape

    body = "".join(
        f'<item><guid isPermaLink="false">{escape(g)}</guid><title>{escape(t)}</title>'
        f"<pubDate>{when}</pubDate><description>{escape(d)}</description></item>"
        for (g, t, d), when in zip(items, times, strict=True)
    )
    head = '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>x</title>'
    return f"{head}{body}</channel></rss>"


def bench_e2e(args: argparse.Namespace) -> None:
    import subprocess
    import tempfile
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    from devkit.feed_server import FeedServer

    feeds, per_feed = 100, args.items // 100
    items = _feed_items(feeds * per_feed)
    now = datetime.now(UTC)
    print(f"\n== end to end: `storyline run` on {len(items)} new items from {feeds} feeds over local HTTP")
    with tempfile.TemporaryDirectory(prefix="storyline-e2e-") as tmp, FeedServer() as srv:
        lines = []
        for f in range(feeds):
            chunk = items[f * per_feed : (f + 1) * per_feed]
            # Spread over the last three days: one cluster window holds all of them.
            times = [
                format_datetime(now - timedelta(minutes=(f * 37 + k * 43) % 4320)) for k in range(len(chunk))
            ]
            srv.route(f"/feed{f}.xml", _rss(chunk, times), etag=f'"f{f}"')
            lines.append(f'[[sources]]\nname = "Outlet {f}"\nurl = "{srv.url(f"/feed{f}.xml")}"\n')
        sources = Path(tmp) / "sources.toml"
        sources.write_text("\n".join(lines))
        env = {k: v for k, v in os.environ.items() if not k.startswith("STORYLINE_")}
        env["PREFECT_HOME"] = str(Path(tmp) / ".prefect")
        cmd = [
            sys.executable,
            "-m",
            "flows.cli",
            "run",
            "--sources",
            str(sources),
            "--db",
            str(Path(tmp) / "e.duckdb"),
        ]
        for label in ("first run (everything new)", "second run (unchanged feeds)"):
            start = time.perf_counter()
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            secs = time.perf_counter() - start
            summary = " | ".join(
                line.strip() for line in done.stdout.splitlines() if line and not line.startswith("  ")
            )
            print(f"   {label}: {secs:.1f} s wall (exit {done.returncode})\n     {summary}", flush=True)
            if done.returncode:
                print(done.stderr[-2000:])


COMMANDS = {"embed": bench_embed, "budget": bench_budget, "incremental": bench_incremental, "e2e": bench_e2e}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=[*COMMANDS, "all"])
    parser.add_argument("--sample", type=int, default=400, help="articles timed per embedding path")
    parser.add_argument("--batch", type=int, default=None, help="texts per batch (default: each path's own)")
    parser.add_argument(
        "--no-quality", dest="quality", action="store_false", help="skip the ECB+ B3-F1 check"
    )
    parser.add_argument("--budgets", default="64,128,256")
    parser.add_argument("--backend", default="torch", help="embedding path for the budget table")
    parser.add_argument(
        "--sizes", default="10000,50000,100000", help="stored articles for the incremental run"
    )
    parser.add_argument("--items", type=int, default=10000, help="feed items for the end-to-end run")
    args = parser.parse_args(argv)
    for name, fn in COMMANDS.items():
        if args.what in (name, "all"):
            fn(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
