"""Choosing the encoder for a configured model, device and backend (the one place that does).

Backends (``torch_fp32``, ``onnx_int8``, ``pipelined``) import only ``base``; this module is the
only one that knows them all.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from pipeline.embed.base import (
    Encoder,
    ModelLoadError,
    UnsupportedModel,
    load_model,
    resolve_device,
    resolve_model_path,
)
from pipeline.embed.torch_fp32 import TorchEncoder
from pipeline.settings import DEFAULT_MODEL, EmbedSettings

log = logging.getLogger("storyline.embed")


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
            from pipeline.embed.onnx_int8 import OnnxEncoder

            cache = Path(cache_dir) if cache_dir else None
            return OnnxEncoder(st, resolve_model_path(model), cache_dir=cache, threads=threads)
        if backend == "pipelined":
            from pipeline.embed.pipelined import PipelinedEncoder

            return PipelinedEncoder(st, device=dev)
    except (UnsupportedModel, ImportError) as exc:
        if explicit:
            raise ModelLoadError(f"embed backend {backend!r} cannot serve {model!r}: {exc}") from exc
        log.warning("embedding with plain torch: %s", exc)
    if threads:
        import torch

        torch.set_num_threads(threads)
    return TorchEncoder(st)


def encoder_for(embed: EmbedSettings) -> Encoder:
    """The configured model on the configured device and backend (loaded once per process)."""
    cache = str(embed.onnx_cache) if embed.onnx_cache else None
    return load_encoder(embed.model, embed.device, embed.backend, cache, embed.threads)
