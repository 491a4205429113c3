"""The ONNX backend's run time: the model folder, its tokenizer, pooling and batching.

Needs onnxruntime, tokenizers and numpy only (no torch): loading a cached export and
embedding with it. The one-time export and quantization are in onnx_export.py; the
Embedder itself in onnx_embedder.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.embed_model import bundled_model_path
from assistant.errors import AssistantError
from assistant.settings import BUNDLED_MODEL, Precision, Settings

EXPORT_VERSION = 1  # part of the cache key: bump when the export recipe changes
PRECISIONS = tuple(p.value for p in Precision)
DEFAULT_PRECISION = Precision.INT8.value
FILES = {Precision.FP32.value: "model.onnx", Precision.INT8.value: "model.int8.onnx"}
META = "export.json"
OPSET = 17

MAX_BATCH = 64  # texts per ONNX Runtime call...
TOKEN_BUDGET = 2048  # ...and at most this many (padded) tokens: activations stay in cache

# Inputs the exported graph may take, in the order the transformer's forward() names them.
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_POOLING_MODES = {
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
}


def cache_root(configured: Path | None = None) -> Path:
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "paper-assistant" / "onnx"


# --- the model folder -------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    """What the ONNX backend needs to know about a sentence-transformers folder."""

    name: str  # cache folder prefix
    root: Path  # the sentence-transformers folder
    transformer_dir: Path  # config.json, weights, tokenizer.json
    max_seq_length: int
    pooling: str  # mean | cls | max | mean_sqrt_len
    dim: int
    files: tuple[Path, ...]  # what the cache key hashes

    def fingerprint(self) -> str:
        h = hashlib.sha256(f"onnx-export-v{EXPORT_VERSION};opset{OPSET}".encode())
        for path in self.files:
            h.update(b"\0" + str(path.relative_to(self.root)).encode() + b"\0")
            with open(path, "rb") as f:
                while block := f.read(1 << 20):
                    h.update(block)
        return h.hexdigest()[:16]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise AssistantError(f"Cannot read {path}: {e}") from e


def resolve_model(settings: Settings) -> ModelSpec:
    """The bundled MiniLM or a local sentence-transformers folder; anything else is an error."""
    if settings.embed_model == BUNDLED_MODEL:
        root, name = bundled_model_path(), BUNDLED_MODEL
    else:
        root = Path(settings.embed_model).expanduser()
        if not root.is_dir():
            raise AssistantError(
                f"The onnx embedding backend runs the bundled model ('{BUNDLED_MODEL}') or a "
                f"local sentence-transformers folder; '{settings.embed_model}' is neither (models "
                "are never downloaded). Set ASSISTANT_EMBED_MODEL to a folder path, or use "
                "ASSISTANT_EMBED_BACKEND=local."
            )
        name = root.absolute().name or root.resolve().name
        root = root.resolve()
    if not (root / "modules.json").is_file():
        raise AssistantError(
            f"{root} is not a sentence-transformers folder (no modules.json); the onnx backend "
            "needs one (Transformer, Pooling and optionally Normalize modules)."
        )
    modules = _read_json(root / "modules.json")
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    if not kinds or kinds[0] != "Transformer" or "Pooling" not in kinds or not set(kinds) <= {
        "Transformer", "Pooling", "Normalize"
    }:
        raise AssistantError(
            f"The onnx backend supports sentence-transformers models made of Transformer -> "
            f"Pooling [-> Normalize]; {root} has {' -> '.join(kinds) or 'no modules'}. "
            "Use ASSISTANT_EMBED_BACKEND=local for it."
        )
    transformer_dir = root / modules[0].get("path", "")
    pooling_dir = root / modules[kinds.index("Pooling")].get("path", "")

    tokenizer = transformer_dir / "tokenizer.json"
    config = transformer_dir / "config.json"
    weights = [transformer_dir / w for w in ("model.safetensors", "pytorch_model.bin")]
    weights = [w for w in weights if w.is_file()]
    missing = [p.name for p in (tokenizer, config) if not p.is_file()]
    if missing or not weights:
        missing += [] if weights else ["model.safetensors"]
        raise AssistantError(f"{transformer_dir} lacks {', '.join(missing)} (the onnx backend "
                             "needs a fast tokenizer.json, config.json and the weights).")

    pooling_conf = _read_json(pooling_dir / "config.json")
    modes = [mode for key, mode in _POOLING_MODES.items() if pooling_conf.get(key)]
    others = [k for k, v in pooling_conf.items()
              if k.startswith("pooling_mode_") and v and k not in _POOLING_MODES]
    if len(modes) != 1 or others:
        raise AssistantError(
            f"The onnx backend supports one of mean/cls/max/mean_sqrt_len pooling; "
            f"{pooling_dir / 'config.json'} asks for {', '.join(modes + others) or 'none'}."
        )
    model_conf = _read_json(config)
    st_conf_path = transformer_dir / "sentence_bert_config.json"
    st_conf = _read_json(st_conf_path) if st_conf_path.is_file() else {}
    max_len = int(st_conf.get("max_seq_length") or model_conf.get("max_position_embeddings", 512))
    dim = int(pooling_conf.get("word_embedding_dimension") or model_conf["hidden_size"])

    files = [root / "modules.json", pooling_dir / "config.json", config, tokenizer, *weights]
    if st_conf_path.is_file():
        files.append(st_conf_path)
    return ModelSpec(name=name, root=root, transformer_dir=transformer_dir,
                     max_seq_length=max_len, pooling=modes[0], dim=dim,
                     files=tuple(dict.fromkeys(files)))


# --- numpy side: tokenizer, pooling ---------------------------------------------------------


def load_tokenizer(spec: ModelSpec):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(spec.transformer_dir / "tokenizer.json"))
    # tokenizer.json may carry its own padding/truncation (MiniLM's pads to 128): replace them
    # with what sentence-transformers does, truncation to max_seq_length and no padding.
    tok.no_padding()
    tok.enable_truncation(max_length=spec.max_seq_length)
    return tok


def pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """Sentence vectors from token vectors (batch, seq, dim) and the attention mask."""
    if mode == "cls":
        return hidden[:, 0].astype(np.float32)
    maskf = mask.astype(np.float32)
    if mode == "max":
        return np.where(maskf[..., None] > 0, hidden, -1e9).max(axis=1).astype(np.float32)
    summed = np.einsum("bsd,bs->bd", hidden, maskf, dtype=np.float32)
    counts = np.maximum(maskf.sum(axis=1, keepdims=True), 1e-9)
    return summed / (np.sqrt(counts) if mode == "mean_sqrt_len" else counts)


def unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def plan_batches(lengths: np.ndarray, max_batch: int = MAX_BATCH,
                 token_budget: int = TOKEN_BUDGET) -> list[np.ndarray]:
    """Indices grouped by similar length, longest first, each batch within the token budget
    (rows x longest row), so padding and activation memory stay small."""
    order = np.argsort(-lengths, kind="stable")
    batches, start = [], 0
    while start < len(order):
        longest = max(int(lengths[order[start]]), 1)
        size = max(1, min(max_batch, token_budget // longest))
        batches.append(order[start : start + size])
        start += size
    return batches


def _session(path: Path, threads: int = 1):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3  # no warnings about unused initializers etc.
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _run_session(session, spec: ModelSpec, tok, texts: list[str]) -> np.ndarray:
    """Pooled, unit-length vectors of texts (one padded batch): used to check exports."""
    names = {i.name for i in session.get_inputs()}
    encs = tok.encode_batch(texts)
    feeds, mask = _pad(encs, names)
    hidden = session.run(None, feeds)[0]
    return unit(pool(hidden, mask, spec.pooling))


def _pad(encs, names: set[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    width = max(len(e.ids) for e in encs)
    ids = np.zeros((len(encs), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    types = np.zeros_like(ids)
    for row, e in enumerate(encs):
        n = len(e.ids)
        ids[row, :n] = e.ids
        mask[row, :n] = 1
        types[row, :n] = e.type_ids
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    return {k: v for k, v in feeds.items() if k in names}, mask


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"
