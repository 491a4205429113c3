"""The index, as one import: manifest (manifest.py), vector store and the read side
(store.py), ingest pipeline (ingest.py).

Kept so `from assistant.index import Index, ingest, Manifest, ...` goes on working; new code
imports from the module that does the job.
"""

from assistant.ingest import (
    LOCK_WAIT_S,
    MAX_SKIPPED_KEPT,
    SWAP_GRACE_S,
    WRITE_BATCH_BYTES,
    Chunker,
    IngestReport,
    Progress,
    check_settings,
    ensure_index,
    ingest,
)
from assistant.manifest import MANIFEST, Manifest, check_model, gen_dir, manifest_stamp
from assistant.store import (
    Index,
    chroma_client,
    chroma_location,
    collection_name,
    dir_size,
    forget_cached_chroma,
    max_write,
)

__all__ = [
    "LOCK_WAIT_S", "MANIFEST", "MAX_SKIPPED_KEPT", "SWAP_GRACE_S", "WRITE_BATCH_BYTES",
    "Chunker", "Index", "IngestReport", "Manifest", "Progress", "check_model",
    "check_settings", "chroma_client", "chroma_location", "collection_name", "dir_size",
    "ensure_index", "forget_cached_chroma", "gen_dir", "ingest", "manifest_stamp",
    "max_write",
]
