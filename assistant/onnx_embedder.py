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

import hashlib
import json
import logging
import os
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.embeddings import bundled_model_path, model_identity
from assistant.errors import AssistantError
from assistant.settings import BUNDLED_MODEL, Settings

EXPORT_VERSION = 1  # part of the cache key: bump when the export recipe changes
PRECISIONS = ("int8", "fp32")
DEFAULT_PRECISION = "int8"
FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
META = "export.json"
OPSET = 17

MAX_BATCH = 64  # texts per ONNX Runtime call...
TOKEN_BUDGET = 2048  # ...and at most this many (padded) tokens: activations stay in cache
EXPORT_LOCK_TIMEOUT_S = 900.0
MIN_FP32_COSINE = 0.9999  # an fp32 export that disagrees more with PyTorch is a broken export

# Inputs the exported graph may take, in the order the transformer's forward() names them.
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_POOLING_MODES = {
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
}
_PROBE_TEXTS = [
    "Attention is all you need",
    "A retrieval-augmented assistant answers questions over paper abstracts\n"
    "We embed every chunk with a small sentence encoder and fuse dense and keyword rankings.",
    "ok",
    "Quantization of transformer encoders for fast CPU inference. " * 40,  # > max length
]


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


# --- export (torch only here) ---------------------------------------------------------------


def _atomic_tmp(path: Path) -> Path:
    """A unique sibling of path for writing before os.replace (same folder = same filesystem)."""
    return path.with_name(f".{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{path.suffix}")


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = _atomic_tmp(path)
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(tmp, path)


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


def _torch_reference(model, spec: ModelSpec, tok, texts: list[str], inputs: list[str]):
    import torch

    encs = tok.encode_batch(texts)
    feeds, mask = _pad(encs, set(inputs))
    with torch.no_grad():
        hidden = model(*(torch.from_numpy(feeds[n]) for n in inputs))
    return unit(pool(hidden.numpy(), mask, spec.pooling))


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float((a * b).sum(axis=1).min())


def _export_fp32(spec: ModelSpec, dest: Path) -> dict:
    """torch.onnx.export of the transformer (dynamic batch and sequence axes), then ONNX
    Runtime's BERT fusions when they keep the outputs; checked against PyTorch."""
    import inspect
    import warnings

    for key, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"),
                       ("TRANSFORMERS_VERBOSITY", "error"), ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(key, value)
    try:
        import onnx  # noqa: F401  (the exporter and the optimizer need it)
        import torch
        from transformers import AutoConfig, AutoModel
    except ImportError as e:
        raise AssistantError(
            f"Exporting the embedding model to ONNX needs torch, transformers and onnx ({e}). "
            "Install them (pip install onnx), or use ASSISTANT_EMBED_BACKEND=local."
        ) from e

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    config = AutoConfig.from_pretrained(str(spec.transformer_dir))
    model = AutoModel.from_pretrained(str(spec.transformer_dir), attn_implementation="eager")
    model.eval()
    accepted = inspect.signature(model.forward).parameters
    inputs = [n for n in _INPUTS if n in accepted
              and (n != "token_type_ids" or getattr(config, "type_vocab_size", 0))]

    class Encoder(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            return self.inner(**dict(zip(inputs, args, strict=True)))[0]  # last hidden state

    encoder = Encoder(model).eval()
    tok = load_tokenizer(spec)
    # Rows of different lengths, so the trace sees a padded attention mask.
    example, _ = _pad(tok.encode_batch(_PROBE_TEXTS[:2]), set(inputs))
    axes = {n: {0: "batch", 1: "sequence"} for n in inputs}
    axes["last_hidden_state"] = {0: "batch", 1: "sequence"}
    raw = _atomic_tmp(dest.with_name("raw.onnx"))
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                encoder, tuple(torch.from_numpy(example[n]) for n in inputs), str(raw),
                input_names=inputs, output_names=["last_hidden_state"], dynamic_axes=axes,
                opset_version=OPSET, do_constant_folding=True, dynamo=False,
            )
        reference = _torch_reference(encoder, spec, tok, _PROBE_TEXTS, inputs)
        raw_cos = _min_cosine(_run_session(_session(raw), spec, tok, _PROBE_TEXTS), reference)
        if raw_cos < MIN_FP32_COSINE:
            raise AssistantError(
                f"The ONNX export of {spec.root} disagrees with PyTorch (min cosine "
                f"{raw_cos:.5f}); use ASSISTANT_EMBED_BACKEND=local for this model."
            )
        fused, fusions = _fuse(raw, config)
        chosen, cos = raw, raw_cos
        if fused is not None:
            fused_cos = _min_cosine(_run_session(_session(fused), spec, tok, _PROBE_TEXTS),
                                    reference)
            if fused_cos >= MIN_FP32_COSINE:
                chosen, cos = fused, fused_cos
            else:
                fusions = {}
        os.replace(chosen, dest)
    finally:
        for leftover in (raw, raw.with_name(raw.stem + ".fused.onnx")):
            leftover.unlink(missing_ok=True)
    return {"fp32_min_cosine_vs_torch": cos, "fusions": fusions,
            "torch": torch.__version__, "inputs": inputs}


def _fuse(raw: Path, config) -> tuple[Path | None, dict]:
    """Attention/LayerNorm/GELU fusions of onnxruntime.transformers (BERT-like models);
    opt_level 0 keeps the file portable (ORT applies its hardware-specific passes at load)."""
    heads = getattr(config, "num_attention_heads", None)
    hidden = getattr(config, "hidden_size", None)
    if not heads or not hidden:
        return None, {}
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        optimized = optimize_model(str(raw), model_type="bert", num_heads=heads,
                                   hidden_size=hidden, opt_level=0)
        out = raw.with_name(raw.stem + ".fused.onnx")
        optimized.save_model_to_file(str(out))
        stats = {k: v for k, v in optimized.get_fused_operator_statistics().items() if v}
        return out, stats
    except Exception:  # noqa: BLE001 - fusion is an optimisation; the raw export works
        return None, {}


def _quantize_int8(src: Path, dest: Path) -> None:
    """Dynamic quantization: int8 weights per output channel (per-tensor loses ~6 points of
    cosine on MiniLM), activations quantized at run time; embeddings and norms stay fp32."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = _atomic_tmp(dest)
    root_logger = logging.getLogger()
    root_logger.addFilter(_quiet_quantizer)
    try:
        quantize_dynamic(
            str(src), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
            op_types_to_quantize=["MatMul", "Attention"],
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        os.replace(tmp, dest)
    finally:
        root_logger.removeFilter(_quiet_quantizer)
        tmp.unlink(missing_ok=True)


def _quiet_quantizer(record: logging.LogRecord) -> bool:
    # The quantizer logs a generic "consider pre-processing" warning on every call.
    return "pre-processing before quantization" not in record.getMessage()


def ensure_export(spec: ModelSpec, precision: str, cache: Path | None = None) -> Path:
    """Path of the ONNX file for precision, exporting it first if the cache lacks it.

    Files appear by os.replace of a finished temporary file, so readers never see half a
    model; a lock file makes a second process wait for the first export instead of redoing it.
    """
    if precision not in PRECISIONS:
        raise AssistantError(f"Unknown ONNX precision {precision!r}; use one of {PRECISIONS}.")
    folder = (cache or cache_root()) / f"{_safe(spec.name)}-{spec.fingerprint()}"
    target = folder / FILES[precision]
    if target.is_file():
        return target
    from filelock import FileLock, Timeout

    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(folder / ".export.lock"), timeout=EXPORT_LOCK_TIMEOUT_S)
        with lock:
            if target.is_file():  # another process exported it while we waited
                return target
            meta_path = folder / META
            meta = _read_json(meta_path) if meta_path.is_file() else {}
            fp32 = folder / FILES["fp32"]
            started = time.time()
            if not fp32.is_file():
                meta.update(_export_fp32(spec, fp32))
                meta.update(model=str(spec.root), fingerprint=folder.name,
                            export_version=EXPORT_VERSION, opset=OPSET,
                            fp32_export_s=round(time.time() - started, 1))
            if precision == "int8":
                _quantize_int8(fp32, target)
                tok = load_tokenizer(spec)
                sessions = _session(target), _session(fp32)
                meta["int8_min_cosine_vs_fp32"] = min(  # one text per run, as embed() does
                    _min_cosine(*(_run_session(s, spec, tok, [text]) for s in sessions))
                    for text in _PROBE_TEXTS
                )
            import onnxruntime

            meta["onnxruntime"] = onnxruntime.__version__
            _write_json_atomic(meta_path, meta)
    except Timeout as e:
        raise AssistantError(
            f"Waited {EXPORT_LOCK_TIMEOUT_S:.0f} s for another process exporting to {folder}; "
            f"if none is running, delete {folder / '.export.lock'}."
        ) from e
    except OSError as e:
        raise AssistantError(f"Cannot write the ONNX export to {folder}: {e}. Set "
                             "ASSISTANT_ONNX_CACHE to a writable folder.") from e
    return target


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"


# --- the embedder -----------------------------------------------------------------------


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
        self._max_batch = 1 if self.precision == "int8" else min(MAX_BATCH,
                                                                  settings.embed_batch_size)
        self._lock = threading.Lock()
        self._session = None
        self._tokenizer = None
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


def main(argv: list[str] | None = None) -> None:
    """`python -m assistant.onnx_embedder [fp32|int8 ...]`: export ahead of time."""
    import sys

    settings = Settings()
    for precision in (argv if argv is not None else sys.argv[1:]) or [DEFAULT_PRECISION]:
        started = time.perf_counter()
        path = ensure_export(resolve_model(settings), precision)
        print(f"{precision}: {path} ({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
