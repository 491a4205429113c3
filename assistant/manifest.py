"""The manifest of a data dir: what its index was built with, and which generation is live.

    manifest.json   embedding model + dimension, chunking, active generation, Chroma location

Written atomically (os.replace), so readers see the old or the new one; its stamp changes
on every rewrite, which is how readers notice an ingest. An index is only opened with the
embedding model and the chunking it was built with (`assistant ingest --rebuild` otherwise).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from assistant.embed_model import model_identity
from assistant.errors import ChunkingMismatch, EmbeddingMismatch
from assistant.settings import Settings

MANIFEST = "manifest.json"


@dataclass
class Manifest:
    embed_model: str
    dim: int
    generation: int = 1
    collection: str = "papers-g1"
    chunk_size: int = 220
    chunk_overlap: int = 40
    chroma: str = "embedded"
    # Names this index's Chroma collections, so data dirs sharing one Chroma server never
    # touch each other's collections.
    index_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    updated_at: float = field(default_factory=time.time)

    @classmethod
    def read(cls, data_dir: Path) -> Manifest | None:
        path = data_dir / MANIFEST
        if not path.exists():
            return None
        raw = json.loads(path.read_text())
        # Written before index ids: keep the legacy names ("papers-gN"), not a new random id
        # per read (which never matched, so old generations were never dropped).
        raw.setdefault("index_id", "")
        return cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})

    def write(self, data_dir: Path) -> None:
        self.updated_at = time.time()
        tmp = data_dir / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(self.__dict__, indent=2))
        os.replace(tmp, data_dir / MANIFEST)  # atomic: readers see the old or the new one


def gen_dir(data_dir: Path, generation: int) -> Path:
    return data_dir / f"gen-{generation}"


def manifest_stamp(data_dir: Path) -> tuple[int, int, int] | None:
    """Changes whenever the manifest is rewritten (os.replace: a new inode every time)."""
    try:
        st = (data_dir / MANIFEST).stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def check_model(manifest: Manifest, settings: Settings, dim: int | None = None) -> None:
    configured = model_identity(settings)
    if manifest.embed_model != configured or (dim is not None and dim != manifest.dim):
        raise EmbeddingMismatch(manifest.embed_model, manifest.dim, configured, dim)
    if (manifest.chunk_size, manifest.chunk_overlap) != (settings.chunk_size,
                                                         settings.chunk_overlap):
        raise ChunkingMismatch(manifest.chunk_size, manifest.chunk_overlap,
                               settings.chunk_size, settings.chunk_overlap)
