"""The vector store: Chroma (embedded or a server), its collections per generation, and the
read side of an index (Index: catalog + BM25 keyword index + Chroma collection).

Layout of the data dir:
    manifest.json        see manifest.py
    gen-N/catalog.sqlite papers and chunks (the source of truth, see catalog.py)
    gen-N/bm25/          keyword index saved by keyword.py
    chroma/              embedded Chroma (unless a Chroma server is configured)

Readers follow the manifest: an opened Index checks its stamp (one stat) before each query
and, when an ingest rewrote it (every ingest that changed something does), reopens the
catalog, the keyword index and the Chroma collection of the generation it names. So a
running UI keeps answering through a rebuild and sees papers added by a normal ingest in
another process (embedded Chroma caches a collection's vectors per process: the cached
client is replaced). The old generation is dropped a grace period after the switch, so a
query in flight finishes on it; one that still misses it is retried on the new one.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

from assistant.catalog import Catalog
from assistant.corpus import iter_batches
from assistant.errors import IndexMissing
from assistant.keyword import KeywordIndex
from assistant.manifest import Manifest, check_model, gen_dir, manifest_stamp
from assistant.settings import Settings


def chroma_client(settings: Settings):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    # Telemetry off: this machine (and many users') has no route out.
    conf = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_host:
        return chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port,
                                   settings=conf)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.data_dir / "chroma"), settings=conf)


_chroma_lock = threading.Lock()
_chroma_stamps: dict[str, object] = {}


def forget_cached_chroma(settings: Settings, stamp: object) -> None:
    """Make the next embedded client for this data dir a fresh one (once per `stamp`).

    Embedded Chroma shares one client per path in a process and keeps each collection's
    vectors in memory as first loaded: vectors another process added later are not seen
    (a running UI found new papers by keyword only). Dropped from the shared map, not
    stopped: a query running on the old client finishes; the old one goes with its handles.
    """
    if settings.chroma_host:
        return  # a server is shared by everyone: nothing cached here
    from chromadb.api.shared_system_client import SharedSystemClient

    path = str(settings.data_dir / "chroma")  # the identifier chroma_client's client gets
    with _chroma_lock:
        if _chroma_stamps.get(path) == stamp:
            return
        _chroma_stamps[path] = stamp
        try:  # chromadb internals (pinned to 1.5.x): if they move, readers just stay stale
            with SharedSystemClient._refcount_lock:
                SharedSystemClient._identifier_to_system.pop(path, None)
                SharedSystemClient._identifier_to_refcount.pop(path, None)
        except AttributeError:
            pass


def chroma_location(settings: Settings) -> str:
    if settings.chroma_host:
        return f"http://{settings.chroma_host}:{settings.chroma_port}"
    return "embedded"


class Index:
    """An opened index. Chroma and BM25 are opened on first use (cheap `stats`).

    Opened with Index.open (a reader), it follows the manifest (see refresh()); the writer's
    own Index (follow=False) stays on the generation it writes.
    """

    def __init__(self, settings: Settings, manifest: Manifest, *, follow: bool = False,
                 stamp: object = None) -> None:
        self.settings = settings
        self.manifest = manifest
        self.dir = gen_dir(settings.data_dir, manifest.generation)
        self.catalog = Catalog(self.dir / "catalog.sqlite")
        self._collection: Any = None  # the Chroma collection, opened on first use
        self._store: Any = None  # llama-index's ChromaVectorStore over it
        self._keyword: KeywordIndex | None = None
        self._follow = follow
        self._stamp = stamp
        self._retired: list[Catalog] = []
        self._refresh_lock = threading.Lock()

    @classmethod
    def open(cls, settings: Settings) -> Index:
        stamp = manifest_stamp(settings.data_dir)
        manifest = Manifest.read(settings.data_dir)
        if manifest is None:
            raise IndexMissing(settings.data_dir)
        check_model(manifest, settings)
        return cls(settings, manifest, follow=True, stamp=stamp)

    def refresh(self) -> bool:
        """Follow a rewritten manifest (a finished ingest or rebuild); True if it moved.

        One stat when nothing changed. On a change: the generation's catalog and keyword
        index are reopened if the generation moved, and the Chroma collection always (a
        fresh client: see forget_cached_chroma). The previous catalog is kept open until
        close() — a query in flight on another thread may still be reading it.
        """
        if not self._follow:
            return False
        stamp = manifest_stamp(self.settings.data_dir)
        if stamp is None or stamp == self._stamp:
            return False
        with self._refresh_lock:
            if stamp == self._stamp:
                return False
            try:
                manifest = Manifest.read(self.settings.data_dir)
            except (OSError, ValueError, TypeError):
                return False  # mid-replace or damaged: keep serving what is open
            if manifest is None:
                return False
            check_model(manifest, self.settings)
            if (manifest.generation, manifest.collection) != (self.manifest.generation,
                                                              self.manifest.collection):
                directory = gen_dir(self.settings.data_dir, manifest.generation)
                self._retired.append(self.catalog)
                self.catalog = Catalog(directory / "catalog.sqlite")
                self.dir = directory
                self._keyword = None
            forget_cached_chroma(self.settings, stamp)
            self.manifest = manifest
            self._collection = None
            self._store = None
            self._stamp = stamp
        return True

    @property
    def collection(self):
        if self._collection is None:
            client = chroma_client(self.settings)
            self._collection = client.get_or_create_collection(
                self.manifest.collection, metadata={"hnsw:space": "cosine"}
            )
        return self._collection

    @property
    def vector_store(self):
        if self._store is None:
            from llama_index.vector_stores.chroma import ChromaVectorStore

            self._store = ChromaVectorStore(chroma_collection=self.collection)
        return self._store

    @property
    def keyword(self) -> KeywordIndex:
        self.refresh()
        version = self.catalog.version
        if self._keyword is None or self._keyword.version != version:
            loaded = KeywordIndex.load(self.dir / "bm25")
            if loaded is None or loaded.version != version:
                loaded = KeywordIndex.build(self.catalog.chunk_rows(), version)
            self._keyword = loaded
        return self._keyword

    def dense_search(self, vector: list[float], n: int) -> list[tuple[str, str, float]]:
        """Top-n chunks as (chunk id, paper id, cosine similarity); orphans filtered out."""
        # Straight to the collection rather than through ChromaVectorStore.query: same
        # request, but importing llama-index costs ~1 s of every command's cold start. No
        # count() first: Chroma 1.x returns what it has, and count() scans the collection
        # (15 ms at 180k chunks, ten times the query itself).
        self.refresh()
        query = dict(query_embeddings=[list(map(float, vector))], n_results=max(1, n),
                     include=["distances"])
        try:
            result = self.collection.query(**query)
        except Exception:
            # The generation was swapped (and the old one dropped) mid-query: the manifest
            # has moved, so follow it and ask the new generation once.
            if not self.refresh():
                raise
            result = self.collection.query(**query)
        ids = list(result["ids"][0])
        known = self.catalog.chunk_papers(ids)
        # Chroma's cosine distance is 1 - cos.
        return [
            (cid, known[cid], 1.0 - float(dist))
            for cid, dist in zip(ids, result["distances"][0], strict=True)
            if cid in known
        ]

    def stats(self) -> dict[str, Any]:
        self.refresh()
        papers, chunks = self.catalog.count()
        return {
            "papers": papers,
            "chunks": chunks,
            "embedding_model": self.manifest.embed_model,
            "dimension": self.manifest.dim,
            "generation": self.manifest.generation,
            "index_location": (
                str(self.settings.data_dir.resolve()) if self.manifest.chroma == "embedded"
                else f"{self.manifest.chroma} (catalog in {self.settings.data_dir.resolve()})"
            ),
            "size_on_disk_mb": round(dir_size(self.settings.data_dir) / 1e6, 2),
        }

    def close(self) -> None:
        for catalog in [*self._retired, self.catalog]:
            catalog.close()
        self._retired.clear()


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def max_write(index: Index) -> int:
    """Records per Chroma add: the client's max batch size (5461 embedded), capped."""
    try:
        limit = int(index.collection._client.get_max_batch_size())
    except Exception:  # noqa: BLE001 — older clients: a size every Chroma accepts
        limit = 1000
    return max(1, min(limit, 5000))


def delete_vectors(index: Index, ids: list[str]) -> None:
    for part in iter_batches(ids, 1000):
        index.collection.delete(ids=part)


def collection_name(settings: Settings, index_id: str, generation: int) -> str:
    return f"{collection_prefix(settings, index_id)}{generation}"


def collection_prefix(settings: Settings, index_id: str) -> str:
    return f"{settings.collection}-{index_id}-g" if index_id else f"{settings.collection}-g"


def drop_generations(settings: Settings, index_id: str, keep: set[int]) -> None:
    """Delete leftovers of this index's other generations (a finished or abandoned rebuild)."""
    for d in settings.data_dir.glob("gen-*"):
        try:
            g = int(d.name.split("-", 1)[1])
        except ValueError:
            continue
        if g not in keep:
            shutil.rmtree(d, ignore_errors=True)
    try:
        client = chroma_client(settings)
        for col in client.list_collections():
            name = col if isinstance(col, str) else col.name
            prefix = collection_prefix(settings, index_id)
            if name.startswith(prefix) and name[len(prefix):].isdigit() \
                    and int(name[len(prefix):]) not in keep:
                client.delete_collection(name)
    except Exception:  # noqa: BLE001 — cleanup is best effort; the manifest decides what is live
        pass
