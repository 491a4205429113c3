"""Embedders: the bundled MiniLM (sentence-transformers), any other local model, or an endpoint.

Heavy imports (torch, sentence-transformers) happen inside the classes, only when a text is
actually embedded: `assistant stats` or a UI page load must not pay ~8 s for them.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

import numpy as np

from assistant.embed_model import bundled_model_path, model_identity
from assistant.settings import BUNDLED_MODEL, Settings
from assistant.types import TokenVectors

__all__ = ["Embedder", "bundled_model_path", "make_embedder", "model_identity"]


class Embedder(Protocol):
    """Optional: `embed_tokens(texts) -> (vectors, [TokenVectors])`, embed() plus each text's
    token vectors from the same pass (both local backends have it; assistant/coverage.py
    uses it for soft_cover and falls back to word matching without it)."""

    name: str  # recorded in the manifest; a different name means different vectors

    @property
    def dim(self) -> int: ...

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ...


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class SentenceTransformerEmbedder:
    def __init__(self, settings: Settings) -> None:
        self.name = model_identity(settings)
        self._path = (
            str(bundled_model_path()) if settings.embed_model == BUNDLED_MODEL
            else settings.embed_model
        )
        self._batch = settings.embed_batch_size
        self._model: Any = None  # a SentenceTransformer, loaded on first use

    def _load(self):
        if self._model is None:
            # Never reach for a hub: the bundled weights are on disk.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(self._path, device="cpu")
        return self._model

    @property
    def dim(self) -> int:
        model = self._load()
        get_dim = (getattr(model, "get_embedding_dimension", None)
                   or model.get_sentence_embedding_dimension)
        return int(get_dim())

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._load().encode(
            texts, batch_size=self._batch, normalize_embeddings=True, show_progress_bar=False,
            convert_to_numpy=True,
        )
        return _unit(vectors)

    def embed_tokens(self, texts: list[str]) -> tuple[np.ndarray, list[TokenVectors]]:
        """embed(), plus each text's token vectors (as OnnxEmbedder.embed_tokens)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32), []
        import torch

        model = self._load()
        vectors, tokens = [], []
        for i in range(0, len(texts), self._batch):
            batch = texts[i : i + self._batch]
            spans = model.tokenizer(batch, return_offsets_mapping=True, truncation=True,
                                    max_length=model.max_seq_length)
            features = (getattr(model, "preprocess", None) or model.tokenize)(batch)
            with torch.no_grad():
                out = model.forward(features)
            vectors.append(out["sentence_embedding"].numpy())
            hidden = out["token_embeddings"].numpy()
            for j in range(len(batch)):
                # Special tokens ([CLS], [SEP]) belong to no word of the text.
                keep = [t for t, w in enumerate(spans.word_ids(j)) if w is not None]
                tokens.append(TokenVectors(_unit(hidden[j, keep]),
                                           [tuple(spans["offset_mapping"][j][t])
                                            for t in keep]))
        return _unit(np.concatenate(vectors)), tokens


class EndpointEmbedder:
    """An OpenAI-compatible /embeddings endpoint (the call itself lives in llm.py)."""

    def __init__(self, settings: Settings) -> None:
        from assistant.llm import EmbeddingClient

        self.name = model_identity(settings)
        self._client = EmbeddingClient(settings)
        self._batch = settings.embed_batch_size
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.embed(["dimension probe"]).shape[1])
        return self._dim

    def embed(self, texts: list[str]) -> np.ndarray:
        rows: list[list[float]] = []
        for i in range(0, len(texts), self._batch):
            rows.extend(self._client.embed(texts[i : i + self._batch]))
        out = _unit(np.array(rows, dtype=np.float32))
        if out.size:
            self._dim = out.shape[1]
        return out


def make_embedder(settings: Settings) -> Embedder:
    if settings.embed_backend == "openai":
        return EndpointEmbedder(settings)
    if settings.embed_backend == "onnx":
        from assistant.onnx_embedder import OnnxEmbedder

        return OnnxEmbedder(settings)
    return SentenceTransformerEmbedder(settings)
