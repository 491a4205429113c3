"""The ONNX backend's one-time export: torch.onnx.export of the transformer, ONNX Runtime's
fusions, int8 dynamic quantization, each checked against PyTorch; cached by model hash.

    python -m assistant.onnx_export [fp32|int8 ...]   export ahead of time

Only this module imports torch, transformers and onnx (and only when exporting).
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from pathlib import Path

import numpy as np

from assistant.errors import AssistantError
from assistant.onnx_runtime import (
    _INPUTS,
    DEFAULT_PRECISION,
    EXPORT_VERSION,
    FILES,
    META,
    OPSET,
    PRECISIONS,
    ModelSpec,
    _pad,
    _read_json,
    _run_session,
    _safe,
    _session,
    cache_root,
    load_tokenizer,
    pool,
    resolve_model,
    unit,
)
from assistant.settings import Precision, Settings

EXPORT_LOCK_TIMEOUT_S = 900.0
MIN_FP32_COSINE = 0.9999  # an fp32 export that disagrees more with PyTorch is a broken export
_PROBE_TEXTS = [
    "Attention is all you need",
    "A retrieval-augmented assistant answers questions over paper abstracts\n"
    "We embed every chunk with a small sentence encoder and fuse dense and keyword rankings.",
    "ok",
    "Quantization of transformer encoders for fast CPU inference. " * 40,  # > max length
]


def _atomic_tmp(path: Path) -> Path:
    """A unique sibling of path for writing before os.replace (same folder = same filesystem)."""
    return path.with_name(f".{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{path.suffix}")


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = _atomic_tmp(path)
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(tmp, path)


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
              and (n != "token_type_ids" or bool(getattr(config, "type_vocab_size", 0)))]

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
            fp32 = folder / FILES[Precision.FP32]
            started = time.time()
            if not fp32.is_file():
                meta.update(_export_fp32(spec, fp32))
                meta.update(model=str(spec.root), fingerprint=folder.name,
                            export_version=EXPORT_VERSION, opset=OPSET,
                            fp32_export_s=round(time.time() - started, 1))
            if precision == Precision.INT8:
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


def main(argv: list[str] | None = None) -> None:
    """`python -m assistant.onnx_export [fp32|int8 ...]`: export ahead of time."""
    import sys

    settings = Settings()
    for precision in (argv if argv is not None else sys.argv[1:]) or [DEFAULT_PRECISION]:
        started = time.perf_counter()
        path = ensure_export(resolve_model(settings), precision)
        print(f"{precision}: {path} ({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
