"""ONNX Runtime backend: the same sentence-transformers model, exported once, run without torch.

The transformer of a sentence-transformers folder (the bundled MiniLM, or any local folder whose
modules are Transformer -> Pooling [-> Normalize]) is exported with ``torch.onnx.export``, fused
with ONNX Runtime's transformer optimizer and, for ``int8``, dynamically quantized
(per-channel int8 weights). The files live in a cache folder keyed by a hash of the model files:

    settings.onnx_cache (default ~/.cache/paper-assistant/onnx)/<model>-<hash>/
        model.onnx         fp32
        model.int8.onnx    int8 (dynamic quantization of model.onnx)
        export.json        versions and the agreement with PyTorch measured at export time

Only the export imports torch/transformers/onnx. Loading a cached export, tokenizing (the
model's own ``tokenizer.json``), pooling and normalising need onnxruntime, tokenizers and numpy.

Precision: ``int8`` by default: ~3.3-3.6x the PyTorch throughput on ingest chunks on a 2-core
CPU, cosine 0.995 mean / 0.990 min to the PyTorch vectors, recall@5 on the golden set -0.1
point (bench/embed_throughput.py). ``fp32`` reproduces PyTorch (cosine 1.0) but is only
~1.5-1.7x faster. Choose with ``OnnxEmbedder(settings, precision=...)`` or
``settings.onnx_precision`` (ASSISTANT_ONNX_PRECISION=fp32|int8). Very short texts ("ok")
lose more to int8 (~0.97).

Both share the manifest name of the sentence-transformers backend (``model_identity``): an index
built by one can be queried by the other.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from assistant.embed_model import model_identity
from assistant.errors import AssistantError
from assistant.onnx_export import ensure_export, main
from assistant.onnx_runtime import (  # noqa: F401  (re-exported: the old import path)
    DEFAULT_PRECISION,
    FILES,
    MAX_BATCH,
    PRECISIONS,
    ModelSpec,
    _pad,
    _session,
    cache_root,
    load_tokenizer,
    plan_batches,
    pool,
    resolve_model,
    unit,
)
from assistant.settings import Precision, Settings
from assistant.types import TokenVectors

__all__ = ["OnnxEmbedder", "ensure_export", "main", "plan_batches", "resolve_model", "FILES"]


class OnnxEmbedder:
    """Embedder protocol on ONNX Runtime. Exports on first use (seconds, imports torch);
    afterwards loading needs only onnxruntime + tokenizers + numpy.

    Batches of similar length run concurrently on ``threads`` single-threaded ONNX Runtime
    workers (one per core by default): on a small, shared CPU that beats one batch at a time
    with intra-op threads, which stall on every op whenever another process holds a core.
    """

    def __init__(self, settings: Settings, precision: str | None = None,
                 threads: int | None = None, cache: Path | None = None) -> None:
        self.name = model_identity(settings)
        self.precision = (precision or settings.onnx_precision or DEFAULT_PRECISION).lower()
        if self.precision not in PRECISIONS:
            raise AssistantError(f"Unknown ONNX precision {self.precision!r}: use one of "
                                 f"{', '.join(PRECISIONS)} (ASSISTANT_ONNX_PRECISION).")
        self.spec = resolve_model(settings)
        self.threads = max(1, threads or os.cpu_count() or 1)
        self._cache = cache_root(cache or settings.onnx_cache)
        # int8 activations are quantized with one scale per run: batched, a text's vector
        # would depend on its batchmates. One text per run keeps int8 vectors a function of
        # the text alone (and a little closer to fp32); without padding, it costs nothing.
        self._max_batch = 1 if self.precision == Precision.INT8 else min(MAX_BATCH,
                                                                  settings.embed_batch_size)
        self._lock = threading.Lock()
        self._session: Any = None  # onnxruntime.InferenceSession, opened by load()
        self._tokenizer: Any = None  # tokenizers.Tokenizer
        self._inputs: set[str] = set()
        self.model_path: Path | None = None

    @property
    def dim(self) -> int:
        return self.spec.dim

    def load(self) -> OnnxEmbedder:
        """Export if needed, then open the session (embed() calls this on first use)."""
        with self._lock:
            if self._session is None:
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                self.model_path = ensure_export(self.spec, self.precision, self._cache)
                self._tokenizer = load_tokenizer(self.spec)
                session = _session(self.model_path, threads=1)
                self._inputs = {i.name for i in session.get_inputs()}
                self._session = session
        return self

    def embed(self, texts: list[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.load()
        encs = self._tokenizer.encode_batch(texts)
        lengths = np.fromiter((len(e.ids) for e in encs), dtype=np.int64, count=len(encs))
        out = np.empty((len(texts), self.dim), dtype=np.float32)

        def run(rows: np.ndarray) -> None:
            feeds, mask = _pad([encs[i] for i in rows], self._inputs)
            hidden = self._session.run(None, feeds)[0]
            out[rows] = pool(hidden, mask, self.spec.pooling)

        batches = plan_batches(lengths, self._max_batch)
        if self.threads == 1 or len(batches) == 1:
            for rows in batches:
                run(rows)
        else:
            with ThreadPoolExecutor(min(self.threads, len(batches))) as workers:
                list(workers.map(run, batches))  # list(): re-raise a worker's exception
        return unit(out)

    def embed_tokens(self, texts: list[str]) -> tuple[np.ndarray, list[TokenVectors]]:
        """embed(), plus each text's token vectors from the same forward pass."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32), []
        self.load()
        encs = self._tokenizer.encode_batch(texts)
        lengths = np.fromiter((len(e.ids) for e in encs), dtype=np.int64, count=len(encs))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        tokens: list[TokenVectors | None] = [None] * len(texts)
        for rows in plan_batches(lengths, self._max_batch):
            feeds, mask = _pad([encs[i] for i in rows], self._inputs)
            hidden = self._session.run(None, feeds)[0]
            out[rows] = pool(hidden, mask, self.spec.pooling)
            for j, i in enumerate(rows):
                # Special tokens ([CLS], [SEP]) belong to no word of the text.
                keep = [t for t, w in enumerate(encs[i].word_ids) if w is not None]
                tokens[i] = TokenVectors(unit(hidden[j, keep]),
                                         [tuple(encs[i].offsets[t]) for t in keep])
        return unit(out), [t for t in tokens if t is not None]


if __name__ == "__main__":
    main()
