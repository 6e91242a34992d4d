"""The plain path: sentence-transformers' own fp32 forward pass (any model, CPU or GPU)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from pipeline.embed.base import clip_for_tokens, embedding_dim, length_sorted_batches

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


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


class TorchEncoder:
    """Plain sentence-transformers encode with length-sorted batches (fp32; any model)."""

    backend = "torch"
    # On 2 CPU cores batch 32 beat 64 and 128 (measured with bench/throughput.py).
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
