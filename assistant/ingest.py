"""The ingest pipeline: corpus files -> papers -> chunks -> embeddings -> Chroma + catalog + BM25.

Incremental (unchanged papers are skipped), streamed in bounded batches, one writer at a time
(.ingest.lock), crash-safe: a batch is acknowledged when its catalog transaction commits, and
the next run reconciles vectors written before a crash. `--rebuild` builds generation N+1
beside N and switches the manifest only when it is complete, so a failed rebuild leaves the
old index serving.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from assistant.catalog import Catalog
from assistant.corpus import (
    FileDone,
    Skipped,
    check_file,
    discover,
    iter_batches,
    iter_corpus,
)
from assistant.embeddings import Embedder, bundled_model_path, model_identity
from assistant.errors import (
    AssistantError,
    CorpusError,
    EmbeddingMismatch,
    IndexBusy,
    IndexMissing,
)
from assistant.keyword import KeywordIndex
from assistant.manifest import Manifest, check_model, gen_dir
from assistant.settings import Settings
from assistant.store import (
    Index,
    chroma_location,
    collection_name,
    delete_vectors,
    drop_generations,
    max_write,
)
from assistant.types import Chunk, Paper

LOCK_WAIT_S = 5.0
# After a rebuild switches the manifest, the old generation stays this long: readers move at
# their next query; a query already running finishes on the old one.
SWAP_GRACE_S = 1.5
# Text (chunk bytes) embedded and written per batch, next to settings.write_batch chunks: a
# batch of long chunks stays small in memory too.
WRITE_BATCH_BYTES = 4_000_000
# Skipped records kept for the report (the count is always exact).
MAX_SKIPPED_KEPT = 1000


class Chunker:
    """llama-index SentenceSplitter, counting tokens with the MiniLM word-piece tokenizer so a
    chunk never exceeds what the embedding model reads."""

    def __init__(self, settings: Settings) -> None:
        from llama_index.core.node_parser import SentenceSplitter
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(bundled_model_path() / "tokenizer.json"))
        tok.no_truncation()
        tok.no_padding()  # tokenizer.json pads to 128: it would inflate every count
        self._splitter = SentenceSplitter(
            chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap,
            tokenizer=lambda text: tok.encode(text, add_special_tokens=False).ids,
        )

    def chunks(self, paper: Paper) -> list[Chunk]:
        texts = self._splitter.split_text(paper.abstract) or [paper.abstract]
        return [
            Chunk(id=f"{paper.id}:{paper.content_hash}:{i}", paper_id=paper.id,
                  title=paper.title, text=t, position=i)
            for i, t in enumerate(texts)
        ]


@dataclass
class IngestReport:
    files: list[str] = field(default_factory=list)
    papers: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    pruned: int = 0
    chunks_embedded: int = 0
    orphans_removed: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    failed_files: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0
    rebuilt: bool = False
    prune_skipped: bool = False
    skipped_count: int = 0  # all skipped records; `skipped` keeps the first MAX_SKIPPED_KEPT
    prune_kept: int = 0  # papers --prune kept: their file has lines that could not be read

    def skip(self, record: Skipped) -> None:
        self.skipped_count += 1
        if len(self.skipped) < MAX_SKIPPED_KEPT:
            self.skipped.append(record)

    def summary(self) -> str:
        lines = [
            f"Files read: {len(self.files)}"
            + (f" ({len(self.failed_files)} failed)" if self.failed_files else ""),
            f"Papers: {self.papers} in corpus — {self.new} new, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.duplicates} duplicates merged"
            + (f", {self.pruned} pruned" if self.pruned else ""),
            f"Chunks embedded: {self.chunks_embedded} in {self.seconds:.1f} s"
            + (" (full rebuild)" if self.rebuilt else ""),
        ]
        if self.prune_skipped:
            lines.append("Not pruned: a file could not be read; fix it and run again.")
        if self.prune_kept:
            lines.append(f"Not pruned: {self.prune_kept} papers of files with unreadable "
                         "lines (their line may still hold them); fix those lines.")
        for s in self.failed_files:
            lines.append(f"  failed: {s.reason}")
        total = max(self.skipped_count, len(self.skipped))
        if total:
            lines.append(f"Skipped records: {total}")
            lines += [f"  {s}" for s in self.skipped[:20]]
            if total > 20:
                lines.append(f"  ... and {total - 20} more")
        return "\n".join(lines)


# on_progress(papers embedded, papers to embed) after each batch; the total is an estimate
# (from the bytes left to read) until the last call, where it is exact.
Progress = Callable[[int, int], None]


def ingest(
    settings: Settings,
    paths: Iterable[Path],
    embedder: Embedder,
    *,
    rebuild: bool = False,
    prune: bool = False,
    progress: bool = True,
    on_progress: Progress | None = None,
    lock_wait_s: float = LOCK_WAIT_S,
) -> IngestReport:
    """Bring the index in line with the corpus files. Safe to kill at any point.

    The corpus is streamed: papers are chunked, embedded and written in batches bounded by
    settings.write_batch chunks and WRITE_BATCH_BYTES of text (and each Chroma write by the
    client's max batch size), so memory is bounded by a batch, not by the files.
    """
    from filelock import FileLock, Timeout

    t0 = time.perf_counter()
    check_settings(settings)
    data_dir = settings.data_dir
    # Before locking or writing anything: missing paths, empty, binary or unknown files fail
    # fast (records are checked as they stream by).
    files = discover(paths)
    report = IngestReport()
    readable: list[Path] = []
    for path in files:
        try:
            check_file(path)
            readable.append(path)
        except CorpusError as e:
            report.failed_files.append(Skipped(path.name, None, str(e)))
        except OSError as e:
            report.failed_files.append(Skipped(path.name, None, f"{path}: cannot read ({e})"))
    if rebuild and report.failed_files:
        raise _not_rebuilding(report.failed_files)
    if not readable:
        return report
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(data_dir / ".ingest.lock"))
    try:
        lock.acquire(timeout=lock_wait_s)
    except Timeout:
        raise IndexBusy(data_dir, lock_wait_s) from None
    try:
        _ingest_locked(settings, readable, embedder, report, rebuild, prune,
                       progress, on_progress)
    finally:
        lock.release()
    report.seconds = time.perf_counter() - t0
    return report


def check_settings(settings: Settings) -> None:
    """Settings that would fail half-way through an ingest, refused before anything is
    written (a chunk overlap as large as the chunk crashed the splitter after the manifest
    was written)."""
    if settings.chunk_overlap >= settings.chunk_size:
        raise AssistantError(
            f"ASSISTANT_CHUNK_OVERLAP ({settings.chunk_overlap}) must be smaller than "
            f"ASSISTANT_CHUNK_SIZE ({settings.chunk_size}); nothing was changed.")


def _not_rebuilding(failed: list[Skipped]) -> CorpusError:
    # A rebuild holds only what was read: an unreadable file would silently drop papers.
    return CorpusError(
        "Not rebuilding: some files could not be read, and their papers would be lost:\n"
        + "\n".join(f"  {s.reason}" for s in failed)
        + "\nFix or leave out those files and run again; the current index is unchanged."
    )


def _ingest_locked(settings, files, embedder, report, rebuild, prune, progress, on_progress):
    data_dir = settings.data_dir
    current = Manifest.read(data_dir)
    identity = model_identity(settings)
    if current is not None and not rebuild:
        check_model(current, settings)
        # A rebuild killed before its switch left a generation nobody reads: drop it.
        drop_generations(settings, current.index_id, keep={current.generation})
    if current is None or rebuild:
        generation = (current.generation + 1) if current else 1
        index_id = current.index_id if current else uuid.uuid4().hex[:8]
        drop_generations(settings, index_id, keep={current.generation} if current else set())
        target = Manifest(
            embed_model=identity, dim=embedder.dim, generation=generation,
            collection=collection_name(settings, index_id, generation), index_id=index_id,
            chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap,
            chroma=chroma_location(settings),
        )
        report.rebuilt = current is not None
        if current is None:
            # First build: in place, resumable batch by batch. Written first, so a run
            # killed before its first batch leaves a collection the next run knows.
            target.write(data_dir)
    else:
        target = current
    index = Index(settings, target)
    if target is not current and current is not None:
        _continue_version(index.catalog, gen_dir(data_dir, current.generation))
    try:
        try:
            _sync(index, files, embedder, report, prune or rebuild, progress, on_progress)
        except BaseException:
            if target is not current and current is not None:
                # A failed rebuild: the old generation keeps serving, the new one goes.
                index.close()
                drop_generations(settings, target.index_id, keep={current.generation})
            raise
        if rebuild and report.failed_files:
            index.close()
            drop_generations(settings, target.index_id, keep={current.generation}
                              if current else set())
            raise _not_rebuilding(report.failed_files)
        if target is not current and current is not None:
            target.write(data_dir)  # switch readers to the finished rebuild
            time.sleep(SWAP_GRACE_S)  # a query running on the old generation finishes
            drop_generations(settings, target.index_id, keep={target.generation})
        elif report.chunks_embedded or report.pruned or report.orphans_removed:
            target.write(data_dir)  # a new stamp: running readers reload the vectors
    finally:
        index.close()


def _continue_version(catalog: Catalog, previous_dir: Path) -> None:
    """A rebuilt catalog counts on from the previous generation's version, so anything a
    reader caches by catalog version (keyword index, vocabularies) never takes the new
    generation for the old one."""
    try:
        old = Catalog(previous_dir / "catalog.sqlite", readonly=True)
    except Exception:  # noqa: BLE001 — no previous catalog to follow
        return
    try:
        floor = old.version + 1
    except Exception:  # noqa: BLE001
        return
    finally:
        old.close()
    with catalog.db:
        catalog.db.execute("UPDATE meta SET value = MAX(CAST(value AS INTEGER), ?) "
                           "WHERE key='version'", (floor,))


class _Batch:
    """Papers waiting to be embedded and written, with their chunks."""

    def __init__(self, max_chunks: int, max_bytes: int) -> None:
        self.max_chunks, self.max_bytes = max_chunks, max_bytes
        self.papers: list[Paper] = []
        self.chunks: list[Chunk] = []
        self.bytes = 0

    def add(self, paper: Paper, chunks: list[Chunk]) -> None:
        self.papers.append(paper)
        self.chunks += chunks
        self.bytes += sum(len(c.text.encode()) + len(c.title.encode()) for c in chunks)

    @property
    def full(self) -> bool:
        return len(self.chunks) >= self.max_chunks or self.bytes >= self.max_bytes


def _sync(index: Index, files: list[Path], embedder: Embedder, report: IngestReport,
          prune: bool, progress: bool, on_progress: Progress | None) -> None:
    from tqdm import tqdm

    catalog = index.catalog
    report.orphans_removed = _reconcile(index)
    known = catalog.hashes()
    # Per paper id seen in this run, the hash of its first record (later records with the
    # same id are duplicates: their files join its sources). Ids only, not papers.
    seen: dict[str, str] = {}
    extra_sources: dict[str, list[str]] = {}
    unchanged: list[Paper] = []
    unparsed_files: set[str] = set()
    chunker: Chunker | None = None
    batch = _Batch(max(1, index.settings.write_batch), WRITE_BATCH_BYTES)
    total_bytes = sum(f.stat().st_size for f in files)
    bar = tqdm(total=total_bytes, unit="B", unit_scale=True, desc="Ingesting",
               disable=not progress)
    read = [0]
    embedded = [0]

    def seen_bytes(n: int) -> None:
        read[0] += n
        bar.update(n)

    def flush() -> None:
        nonlocal batch
        if batch.papers:
            if embedder.dim != index.manifest.dim:
                raise EmbeddingMismatch(index.manifest.embed_model, index.manifest.dim,
                                        embedder.name, embedder.dim)
            _write_batch(index, batch, embedder)
            report.chunks_embedded += len(batch.chunks)
            embedded[0] += len(batch.papers)
            if on_progress:
                # (papers embedded, papers to embed): the total is estimated from the
                # bytes still to read (streamed: unknown until the end, then exact).
                rest = (total_bytes - read[0]) * embedded[0] / max(1, read[0])
                on_progress(embedded[0], embedded[0] + round(rest))
        batch = _Batch(batch.max_chunks, batch.max_bytes)

    for item in iter_corpus(files, seen_bytes):
        if isinstance(item, FileDone):
            if item.failed:
                report.failed_files.append(item.failed)
            else:
                report.files.append(str(item.path))
            continue
        if isinstance(item, Skipped):
            report.skip(item)
            if item.unparsed:
                unparsed_files.add(item.file)
            continue
        paper = item
        first_hash = seen.get(paper.id)
        if first_hash is not None:
            report.duplicates += 1
            more = [s for s in paper.sources if s not in extra_sources.get(paper.id, [])]
            if more:
                extra_sources.setdefault(paper.id, []).extend(more)
            continue
        seen[paper.id] = paper.content_hash
        report.papers += 1
        if known.get(paper.id) == paper.content_hash:
            report.unchanged += 1
            unchanged.append(paper)
            if len(unchanged) >= 500:
                catalog.update_sources(unchanged)
                unchanged = []
            continue
        if paper.id in known:
            report.updated += 1
        else:
            report.new += 1
        chunker = chunker or Chunker(index.settings)
        batch.add(paper, chunker.chunks(paper))
        if batch.full:
            flush()
    flush()
    bar.close()
    if on_progress and embedded[0]:
        on_progress(embedded[0], embedded[0])
    catalog.update_sources(unchanged)
    if extra_sources:
        # Files a paper also came from (its duplicates): merged into the stored sources.
        ids = list(extra_sources)
        for part in iter_batches(ids, 500):
            catalog.update_sources([Paper(id=pid, title="", abstract="",
                                          sources=extra_sources[pid]) for pid in part])
    if prune and report.failed_files:
        # An unreadable file is not a file whose papers were removed: prune nothing.
        prune, report.prune_skipped = False, True
    if prune:
        gone = [pid for pid in known if pid not in seen]
        if gone and unparsed_files:
            # A line that could not be read may hold one of these papers: keep the papers
            # of such files rather than delete what merely became unreadable.
            keep = {pid for pid, p in catalog.papers(gone).items()
                    if unparsed_files.intersection(p.sources)}
            report.prune_kept = len(keep)
            gone = [pid for pid in gone if pid not in keep]
        if gone:
            stale = catalog.chunk_ids_of(gone)
            catalog.delete(gone)
            delete_vectors(index, stale)
            report.pruned = len(gone)
    stored = KeywordIndex.load(index.dir / "bm25")
    if stored is None or stored.version != catalog.version:
        KeywordIndex.build(catalog.chunk_rows(), catalog.version).save(index.dir / "bm25")


def _write_batch(index: Index, batch: _Batch, embedder: Embedder) -> None:
    """Embed and write one batch; acknowledged when its catalog transaction commits."""
    from llama_index.core.schema import TextNode

    old = set(index.catalog.chunk_ids_of([p.id for p in batch.papers]))
    vectors = embedder.embed([c.embed_text for c in batch.chunks])
    nodes = [
        TextNode(id_=c.id, text=c.embed_text, embedding=v.tolist(),
                 metadata={"paper_id": c.paper_id, "title": c.title, "position": c.position},
                 excluded_embed_metadata_keys=["paper_id", "title", "position"])
        for c, v in zip(batch.chunks, vectors, strict=True)
    ]
    del vectors
    # One paper may have more chunks than Chroma takes in one call (it says how many).
    for part in iter_batches(nodes, max_write(index)):
        index.vector_store.add(part)
    index.catalog.put(batch.papers, batch.chunks)  # the batch is acknowledged here
    delete_vectors(index, sorted(old - {c.id for c in batch.chunks}))


def _reconcile(index: Index) -> int:
    """Remove vectors the catalog does not know (written before a crash, never acked) and
    forget catalog papers whose vectors are missing, so they are embedded again."""
    in_chroma: set[str] = set()
    offset, page = 0, 5000
    while True:
        got = index.collection.get(include=[], limit=page, offset=offset)
        in_chroma.update(got["ids"])
        if len(got["ids"]) < page:
            break
        offset += page
    in_catalog = index.catalog.chunk_ids()
    orphans = sorted(in_chroma - in_catalog)
    delete_vectors(index, orphans)
    missing = in_catalog - in_chroma
    if missing:
        papers = set(index.catalog.chunk_papers(missing).values())
        index.catalog.delete(sorted(papers))
    return len(orphans)


def ensure_index(settings: Settings, make_embedder: Callable[[], Embedder],
                 progress_cb: Progress | None = None,
                 log: Callable[[str], None] = lambda m: print(m, flush=True)) -> bool:
    """Build the index from settings.corpus_paths when the data dir has none (or an empty one).

    The one "ingest first if needed" of the edges (`assistant ui`, `assistant eval`).
    `make_embedder` is called only when there is something to ingest. Says what it
    does through `log`; `progress_cb(done, total)` per embedded batch (without one, a
    progress bar is printed). Returns True when it ingested; raises AssistantError when no
    corpus file could be read.
    """
    try:
        index = Index.open(settings)
        try:
            if index.stats()["papers"] > 0:
                return False
        finally:
            index.close()
    except IndexMissing:
        pass
    paths = ", ".join(str(p) for p in settings.corpus_paths)
    log(f"No index in {settings.data_dir}: ingesting {paths} first (once; later runs reuse it).")
    report = ingest(settings, settings.corpus_paths,
                    make_embedder(),
                    progress=progress_cb is None, on_progress=progress_cb)
    log(report.summary())
    if not report.files:
        raise AssistantError(f"No corpus file could be read from {paths} (set "
                             "ASSISTANT_CORPUS_PATHS or run `assistant ingest PATH` first).")
    return True
