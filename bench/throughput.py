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
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.datasets import load_dataset
from pipeline.embed import load_encoder, load_model

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
    from flows.cluster import cluster_params
    from pipeline.cluster import cluster_window
    from pipeline.metrics import bcubed
    from pipeline.settings import Settings

    ds = load_dataset(SHARED / "ecbplus")
    labels = cluster_window(vectors, ds.texts, None, cluster_params(Settings()))
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
    from flows.cluster import cluster_params
    from pipeline.cluster import cluster_window
    from pipeline.metrics import bcubed
    from pipeline.settings import Settings

    print(f"\n== token budget (title + lead) vs B3-F1, {args.backend} vectors, default clustering")
    budgets = [int(b) for b in args.budgets.split(",")]
    encoder = load_encoder("default", "cpu", args.backend)
    print(f"   {'set':16s} " + " ".join(f"{b:>7d}" for b in budgets) + "   (tokens)")
    for name in ("gedikli", "ecbplus", "gva-2013-2015", "uci-headlines"):
        ds = load_dataset(SHARED / name)
        scores = []
        for b in budgets:
            vecs = encoder.encode(ds.texts, max_tokens=b)
            labels = cluster_window(
                vecs, ds.texts, ds.times if ds.dated else None, cluster_params(Settings())
            )
            scores.append(bcubed(ds.gold(), labels)[2])
        print(f"   {name:16s} " + " ".join(f"{s:7.3f}" for s in scores), flush=True)


COMMANDS = {"embed": bench_embed, "budget": bench_budget}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=[*COMMANDS, "all"])
    parser.add_argument("--sample", type=int, default=400, help="articles timed per embedding path")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument(
        "--no-quality", dest="quality", action="store_false", help="skip the ECB+ B3-F1 check"
    )
    parser.add_argument("--budgets", default="64,128,256")
    parser.add_argument("--backend", default="torch", help="embedding path for the budget table")
    args = parser.parse_args(argv)
    for name, fn in COMMANDS.items():
        if args.what in (name, "all"):
            fn(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
