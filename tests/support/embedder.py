"""A deterministic stand-in for the embedding model: the fast lane's Embedder.

Hashed bag of words (tests/support/openai_server.embed_text), unit length, the same vector
for the same text in every process; texts sharing words are similar. No model is loaded, so
an index of a few papers builds in about a second. Pass it where an Embedder is taken:
`ingest(settings, paths, HashEmbedder())`, `Services(settings, embedder=HashEmbedder())`.
"""

from __future__ import annotations

import numpy as np

from tests.support.openai_server import embed_text


class HashEmbedder:
    name = "test-hash"

    def __init__(self, dim: int = 64) -> None:
        self._dim = dim
        self.calls = 0  # embed() calls, for tests that count model work

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return np.array([embed_text(t, self._dim) for t in texts], dtype=np.float32)
