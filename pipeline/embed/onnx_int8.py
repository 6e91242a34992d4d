"""The CPU fast path: the sentence-transformers model exported to ONNX and quantised to int8.

On a CPU the fp32 forward pass is already near the FLOP peak, so only lower precision (or fewer
tokens) makes embedding faster. This module exports the model's transformer once with
``torch.onnx.export``, quantises its MatMul weights to int8 per output channel (activations are
quantised at run time: ONNX Runtime's dynamic quantisation, which uses VNNI on CPUs that have it)
and runs it with ONNX Runtime.

Dynamic quantisation scales activations per call, over the whole input tensor, so in a batch an
article's vector would depend on which articles share the batch (measured: mean cosine 0.9990,
min 0.988 between two orderings of the same texts). A backfill would then not embed as live runs
did. So each text runs alone — no padding, its vector a function of its own tokens — and texts are
spread over worker threads, each running the model single-threaded; on 2 cores that is also faster
than batches (131/s against ~100/s at batch 16). Pooling and normalisation are done here exactly as the
model's own sentence-transformers modules define them (mean or CLS pooling; always unit-length).

Measured on the ECB+ texts at 128 tokens (bench/throughput.py): per-channel weights keep the mean
cosine to the fp32 vectors at ~0.994; per-tensor weights, the usual default, drift to ~0.953.
The exported files are cached by model, so the export (~20 s) happens once per machine.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.embed.base import clip_for_tokens, pooling_mode

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger("storyline.embed")

# Bump when the export or quantisation recipe changes: cached files of an older recipe are ignored.
RECIPE = "v2-weight-matmuls-int8-per-channel"
# Texts no longer than this (headlines) run through the fp32 export: int8 saves little on them,
# and on the headline-only gold set its noise cost 0.033 B3-F1 (UCI: 0.576 int8, 0.609 fp32).
FP32_UP_TO_TOKENS = 48
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "storyline" / "onnx"


def _model_key(model: SentenceTransformer) -> str:
    # What the export is made of (config and weights), not where the model lives: two virtualenvs
    # share one export, and a model retrained in place is exported again. Hashing the ~90 MB of
    # weights takes about 0.1 s.
    auto = model[0].auto_model
    config = auto.config.to_dict() if hasattr(auto.config, "to_dict") else {"repr": repr(auto.config)}
    config.pop("_name_or_path", None)
    digest = hashlib.sha256(f"{RECIPE}\n{json.dumps(config, sort_keys=True, default=str)}".encode())
    import torch

    for name, tensor in sorted(auto.state_dict().items()):
        digest.update(name.encode())
        # As raw bytes, so any dtype (bf16 too) hashes.
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()[:16]


def _export(model: SentenceTransformer, target: Path) -> None:
    import torch

    auto = model[0].auto_model.eval()
    tokenizer = model.tokenizer

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    sample = tokenizer(
        ["a short text", "a somewhat longer text to pad against"], padding=True, return_tensors="pt"
    )
    if "token_type_ids" not in sample:
        sample["token_type_ids"] = torch.zeros_like(sample["input_ids"])
    dynamic = {name: {0: "batch", 1: "tokens"} for name in (*_INPUTS, "last_hidden_state")}
    # The tracer warns about shape checks it freezes (padding length, causal flag): both hold for
    # every input here, as the vector tests at other batch shapes and lengths confirm.
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LastHiddenState(auto).cpu(),
            tuple(sample[name].cpu() for name in _INPUTS),
            str(target),
            input_names=list(_INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes=dynamic,
            opset_version=17,
            dynamo=False,
        )


def _quantise(source: Path, target: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Only MatMuls with a weight matrix: attention's activation-by-activation products stay fp32
    # (measured: same cosines, 8 % faster than quantising them too).
    graph = onnx.load(str(source)).graph
    weights = {init.name for init in graph.initializer}
    activation_only = [n.name for n in graph.node if n.op_type == "MatMul" and not set(n.input) & weights]
    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul"],
        nodes_to_exclude=activation_only,
    )


_lock = threading.Lock()


def exported_model(
    model: SentenceTransformer, source: str, cache_dir: Path | None = None
) -> tuple[Path, Path]:
    """(int8, fp32) ONNX files for ``model`` (``source``: its name or path), made on first use."""
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    key = _model_key(model)
    int8, fp32 = cache / f"{key}-int8.onnx", cache / f"{key}-fp32.onnx"
    with _lock:
        if int8.is_file() and fp32.is_file():
            return int8, fp32
        cache.mkdir(parents=True, exist_ok=True)
        # Build next to the targets and rename: a crash never leaves a half-written model in the cache.
        part32 = cache / f".{key}-{os.getpid()}-fp32.onnx"
        part8 = cache / f".{key}-{os.getpid()}-int8.onnx"
        log.info("exporting %s to ONNX int8 (once per machine) ...", source)
        root = logging.getLogger()
        level = root.level
        try:
            _export(model, part32)
            # The quantiser logs a generic "consider pre-processing" warning on the root logger;
            # pre-processing was measured and gains nothing on this model.
            root.setLevel(logging.ERROR)
            _quantise(part32, part8)
            root.setLevel(level)
            part8.replace(int8)
            part32.replace(fp32)
        finally:
            root.setLevel(level)
            for leftover in (part32, part8):
                leftover.unlink(missing_ok=True)
    return int8, fp32


class OnnxEncoder:
    """Sentence embeddings from the int8 ONNX export (a ``pipeline.embed.Encoder``)."""

    backend = "onnx-int8"
    # Texts handed to a worker thread at a time (each still runs alone through the model).
    default_batch_size = 16

    def __init__(
        self,
        model: SentenceTransformer,
        source: str,
        *,
        cache_dir: Path | None = None,
        threads: int | None = None,
    ) -> None:
        import onnxruntime as ort

        self.pooling = pooling_mode(model)
        self.tokenizer = model.tokenizer
        self.dim = int(model[0].auto_model.config.hidden_size)
        self.max_seq_length = int(model.max_seq_length or 512)
        self.workers = max(1, threads or (os.cpu_count() or 1))
        options = ort.SessionOptions()
        # Parallel over texts, not inside one: single-text matrices are too small to split well.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        int8, fp32 = exported_model(model, source, cache_dir)
        self.session = ort.InferenceSession(str(int8), options, providers=["CPUExecutionProvider"])
        self.session_fp32 = ort.InferenceSession(str(fp32), options, providers=["CPUExecutionProvider"])

    def _encode_one(self, input_ids: list[int], token_type_ids: list[int] | None) -> np.ndarray:
        ids = np.asarray([input_ids], dtype=np.int64)
        feeds = {
            "input_ids": ids,
            "attention_mask": np.ones_like(ids),
            "token_type_ids": np.asarray([token_type_ids], dtype=np.int64)
            if token_type_ids is not None
            else np.zeros_like(ids),
        }
        session = self.session if ids.shape[1] > FP32_UP_TO_TOKENS else self.session_fp32
        hidden = session.run(None, feeds)[0][0]
        vec = hidden[0] if self.pooling == "cls" else hidden.mean(axis=0)
        # Unit vectors whatever the model's last module: storage and clustering rely on it.
        return (vec / max(float(np.linalg.norm(vec)), 1e-12)).astype(np.float32, copy=False)

    def _encode_range(self, tokens: Any, start: int, stop: int) -> np.ndarray:
        types = tokens.get("token_type_ids")
        return np.stack(
            [
                self._encode_one(tokens["input_ids"][i], types[i] if types else None)
                for i in range(start, stop)
            ]
        )

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
        max_tokens: int | None = 128,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """(n, dim) float32 unit vectors in input order; each depends only on its own text."""
        n = len(texts)
        out = np.zeros((n, self.dim), dtype=np.float32)
        if n == 0:
            return out
        limit = min(max_tokens or self.max_seq_length, self.max_seq_length)
        step = max(1, batch_size or self.default_batch_size)
        # Tokenised up front, unpadded, in one call (the Rust tokenizer parallelises it); the
        # worker threads only run the model.
        tokens = self.tokenizer(
            [clip_for_tokens(t, limit) or " " for t in texts], truncation=True, max_length=limit
        )
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="onnx") as pool:
            futures = {
                pool.submit(self._encode_range, tokens, start, min(start + step, n)): start
                for start in range(0, n, step)
            }
            for future in as_completed(futures):
                vecs = future.result()
                start = futures[future]
                out[start : start + len(vecs)] = vecs
                if progress:
                    progress(len(vecs))
        return out
