"""Embedding with the real packaged model: offline, normalised, order-preserving, incremental."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.embed.base import ModelLoadError, embed_input, load_model, resolve_model_path
from pipeline.embed.torch_fp32 import embed_texts

pytestmark = pytest.mark.slow

TEXTS = [
    "Short headline.",
    "A much longer article body that goes on for a while about the harbour bridge reopening after "
    "months of repairs, with quotes from the mayor and commuters who had to take the ferry instead.",
    "Medium length: the library will open until ten at night from next month.",
]


def test_the_default_model_loads_offline_from_its_package_and_gives_unit_vectors() -> None:
    model = load_model("all-MiniLM-L6-v2", "cpu")
    vecs = embed_texts(model, TEXTS)
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_length_sorted_batches_return_vectors_in_input_order() -> None:
    model = load_model()
    batched = embed_texts(model, TEXTS, batch_size=2)
    one_by_one = np.vstack([embed_texts(model, [t]) for t in TEXTS])
    assert np.allclose(batched, one_by_one, atol=1e-5)


def test_the_token_budget_truncates_long_texts() -> None:
    model = load_model()
    long = TEXTS[1] + " " + " ".join(f"word{i}" for i in range(400))
    short_budget = embed_texts(model, [long, TEXTS[1]], max_tokens=16)
    assert float(short_budget[0] @ short_budget[1]) > 0.999, "both cut to the same first 16 tokens"


def test_a_model_that_is_not_available_offline_is_a_clear_error() -> None:
    with pytest.raises(ModelLoadError, match="hub downloads are disabled"):
        load_model("no-such-org/no-such-model", "cpu")


def test_any_model_can_be_named_by_local_path() -> None:
    path = resolve_model_path("default")
    assert embed_texts(load_model(path, "cpu"), ["x"]).shape == (1, 384)


def test_what_the_model_sees_is_the_headline_then_the_body() -> None:
    assert embed_input("Bridge reopens", "The bridge reopened.") == "Bridge reopens. The bridge reopened."
    assert embed_input("Bridge reopens", "Bridge reopens after repairs") == "Bridge reopens after repairs"
    assert embed_input("Only a title", "") == "Only a title"
    assert embed_input("", "Body only.") == "Body only."
    derived = "The first sentence of a body with no headline, cut…"
    assert embed_input(derived, "The first sentence of a body with no headline, cut short here.") == (
        "The first sentence of a body with no headline, cut short here."
    )


def test_embedding_is_incremental_per_model(make_settings) -> None:
    from datetime import UTC, datetime

    from flows.embed import embed_step
    from storage import articles as article_store
    from storage.db import open_db
    from tests.builders import article

    settings = make_settings()
    now = datetime(2026, 11, 20, tzinfo=UTC)
    arts = [
        article(f"a_{i}", t, source="s", title=t[:20], at=now, content_hash=str(i))
        for i, t in enumerate(TEXTS)
    ]
    with open_db(settings.db) as con:
        article_store.insert_articles(con, arts[:2], run_id=None)
    assert embed_step(settings).embedded == 2
    with open_db(settings.db) as con:
        article_store.insert_articles(con, arts, run_id=None)
    report = embed_step(settings)
    assert (report.pending_before, report.embedded) == (1, 1)
    assert embed_step(settings).embedded == 0


def test_the_cpu_fast_path_is_int8_onnx_and_stays_close_to_the_fp32_vectors(tmp_path) -> None:
    from pipeline.embed.select import load_encoder

    fast = load_encoder("default", "cpu", "onnx-int8", str(tmp_path / "onnx"))
    plain = load_encoder("default", "cpu", "torch")
    assert (fast.backend, plain.backend) == ("onnx-int8", "torch")
    texts = [*TEXTS, "Bank of Canada raises interest rate to 5% as inflation stays high."]
    a, b = fast.encode(texts), plain.encode(texts)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    cosines = (a * b).sum(axis=1)
    assert cosines.min() > 0.97 and cosines.mean() > 0.98
    # Neighbours are the same: the fast path ranks texts as the reference does.
    assert np.array_equal(np.argsort(-(a @ a.T), axis=1)[:, :2], np.argsort(-(b @ b.T), axis=1)[:, :2])
    exported = sorted(p.name.split("-")[-1] for p in (tmp_path / "onnx").iterdir())
    assert exported == ["fp32.onnx", "int8.onnx"], "the two cached models, no leftovers"


def test_an_int8_vector_depends_only_on_its_own_text(tmp_path) -> None:
    # Dynamic quantisation scales per model call; a backfill must embed exactly as live runs did.
    from pipeline.embed.select import load_encoder

    fast = load_encoder("default", "cpu", "onnx-int8", str(tmp_path / "onnx"))
    long = [t * 4 for t in TEXTS]
    alone = np.stack([fast.encode([t])[0] for t in long])
    together = fast.encode(long, batch_size=2)
    reversed_ = fast.encode(long[::-1], batch_size=3)[::-1]
    assert np.array_equal(alone, together) and np.array_equal(alone, reversed_)
    assert fast.encode([]).shape == (0, fast.dim)


def test_headlines_take_the_exact_fp32_export_and_long_texts_the_int8_one(tmp_path) -> None:
    from pipeline.embed.select import load_encoder

    fast = load_encoder("default", "cpu", "onnx-int8", str(tmp_path / "onnx"))
    plain = load_encoder("default", "cpu", "torch")
    headlines = ["Bridge reopens after repairs", "Central bank raises rates", "Storm hits the coast"]
    assert np.allclose(fast.encode(headlines), plain.encode(headlines), atol=1e-4)
    long = [TEXTS[1] * 3]
    assert 0.97 < float(fast.encode(long)[0] @ plain.encode(long)[0]) < 0.99999


def test_the_export_is_made_once_and_reused(tmp_path) -> None:
    from pipeline.embed.onnx_int8 import exported_model

    model = load_model("default", "cpu")
    first = exported_model(model, "default", tmp_path)
    stamps = [p.stat().st_mtime_ns for p in first]
    assert exported_model(model, "default", tmp_path) == first
    assert [p.stat().st_mtime_ns for p in first] == stamps


def test_one_export_serves_every_copy_of_a_model_and_a_changed_model_is_exported_again(tmp_path) -> None:
    import shutil

    import torch

    from pipeline.embed.onnx_int8 import exported_model

    original = resolve_model_path("default")
    copy = tmp_path / "copy-of-the-model"
    shutil.copytree(original, copy)
    cache = tmp_path / "onnx"
    first = exported_model(load_model(original, "cpu"), original, cache)
    assert exported_model(load_model(str(copy), "cpu"), str(copy), cache) == first
    retrained = load_model(str(copy), "cpu")
    with torch.no_grad():
        next(retrained[0].auto_model.parameters())[0, 0] += 0.5
    assert exported_model(retrained, str(copy), cache) != first


def test_the_pipelined_gpu_path_runs_on_a_cpu_and_matches_plain_encode() -> None:
    from pipeline.embed.select import load_encoder

    pipelined = load_encoder("default", "cpu", "pipelined")
    plain = load_encoder("default", "cpu", "torch")
    texts = TEXTS * 7  # several batches, so tokenisation runs ahead of the model
    a = pipelined.encode(texts, batch_size=4)
    assert pipelined.backend == "pipelined" and not pipelined.fp16
    assert np.allclose(a, plain.encode(texts), atol=1e-5)


def test_auto_picks_the_fast_path_on_a_cpu() -> None:
    from pipeline.embed.select import load_encoder

    assert load_encoder("default", "cpu", "auto").backend == "onnx-int8"


def test_an_explicit_backend_that_cannot_serve_is_an_error_not_a_silent_fallback() -> None:
    from pipeline.embed.select import load_encoder

    with pytest.raises(ModelLoadError, match="runs on the CPU"):
        load_encoder("default", "cuda", "onnx-int8")
