"""Ingest and the index: incremental updates, pruning, rebuilds, model pinning, self-repair.

Every test that writes builds its own small index (real Chroma in tmp_path, real MiniLM);
the session seed index is only read.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.errors import CorpusError, EmbeddingMismatch, IndexBusy, IndexMissing
from assistant.index import Chunker, Index, Manifest, chroma_client, ingest
from assistant.keyword import KeywordIndex
from assistant.retrieve import Retriever

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
NEW_ABSTRACT = (
    "We revisit reentrancy in Vyper rather than Solidity and find that the compiler's "
    "nonreentrant decorator is sound only for single-contract systems. A cross-contract "
    "counterexample drains a lending pool in our testbed. We propose a lock inference that "
    "closes the gap and check it on 140 deployed Vyper contracts."
)


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def vector_ids(settings) -> set[str]:
    index = Index.open(settings)
    try:
        return set(index.collection.get(include=[])["ids"])
    finally:
        index.close()


def catalog_view(settings) -> tuple[set[str], dict[str, str]]:
    """(chunk ids, paper id -> abstract) as the catalog of the live generation has them."""
    index = Index.open(settings)
    try:
        return index.catalog.chunk_ids(), {p.id: p.abstract for p in index.catalog.all_papers()}
    finally:
        index.close()


def index_stats(settings) -> dict:
    index = Index.open(settings)
    try:
        return index.stats()
    finally:
        index.close()


@pytest.fixture
def small_index(tmp_path, make_settings, small_corpus, embedder):
    """(settings, first ingest report) for an index of the small corpus in tmp_path/data."""
    settings = make_settings(tmp_path / "data")
    report = ingest(settings, [small_corpus], embedder, progress=False)
    return settings, report


# --- incremental ingest -----------------------------------------------------------------


def test_first_ingest_counts_everything_as_new(small_index, small_corpus, small_papers):
    settings, report = small_index
    n = len(small_papers)
    assert (report.papers, report.new, report.updated, report.unchanged) == (n, n, 0, 0)
    assert report.files == [str(small_corpus)]
    assert report.pruned == 0 and report.orphans_removed == 0 and not report.rebuilt
    chunk_ids, papers = catalog_view(settings)
    assert report.chunks_embedded == len(chunk_ids) >= n
    assert vector_ids(settings) == chunk_ids
    assert sorted(papers.values()) == sorted(p["abstract"] for p in small_papers)
    assert f"{n} new" in report.summary()


def test_second_ingest_embeds_nothing(small_index, small_corpus, embedder):
    settings, first = small_index
    before = vector_ids(settings)
    report = ingest(settings, [small_corpus], embedder, progress=False)
    assert report.chunks_embedded == 0
    assert report.unchanged == report.papers == first.papers
    assert report.new == report.updated == 0
    assert vector_ids(settings) == before


def test_changed_abstract_replaces_its_chunks(small_index, tmp_path, small_papers, embedder):
    settings, _ = small_index
    target = next(p for p in small_papers if p["title"].startswith("Proving Absence"))
    chunks_before, papers_before = catalog_view(settings)
    (pid,) = [k for k, v in papers_before.items() if v == target["abstract"]]
    old_chunks = {c for c in chunks_before if c.startswith(pid + ":")}
    assert old_chunks

    target["abstract"] = NEW_ABSTRACT
    corpus = write_jsonl(tmp_path / "edited.jsonl", small_papers)
    report = ingest(settings, [corpus], embedder, progress=False)
    assert (report.updated, report.new, report.unchanged) == (1, 0, len(small_papers) - 1)
    assert report.chunks_embedded == 1

    chunks_after, papers_after = catalog_view(settings)
    in_chroma = vector_ids(settings)
    assert papers_after[pid] == NEW_ABSTRACT
    assert not old_chunks & chunks_after, "old chunks left in the catalog"
    assert not old_chunks & in_chroma, "old vectors left in Chroma"
    assert in_chroma == chunks_after
    assert len(chunks_after) == len(chunks_before)

    index = Index.open(settings)
    try:
        hits = Retriever(index, embedder, settings).search("Vyper nonreentrant decorator", k=3)
        assert hits[0].paper_id == pid and "Vyper" in hits[0].snippet
        bm25 = Retriever(index, embedder, settings).search("lending pool Vyper", fusion="bm25")
        assert bm25[0].paper_id == pid
    finally:
        index.close()


def test_prune_removes_papers_no_longer_present(small_index, tmp_path, small_papers, embedder):
    settings, _ = small_index
    kept = small_papers[:4]
    subset = write_jsonl(tmp_path / "subset.jsonl", kept)

    report = ingest(settings, [subset], embedder, progress=False)  # no --prune: nothing goes
    assert report.pruned == 0
    assert index_stats(settings)["papers"] == len(small_papers)

    report = ingest(settings, [subset], embedder, prune=True, progress=False)
    assert report.pruned == len(small_papers) - 4
    assert report.chunks_embedded == 0
    chunk_ids, papers = catalog_view(settings)
    assert sorted(papers.values()) == sorted(p["abstract"] for p in kept)
    assert vector_ids(settings) == chunk_ids
    index = Index.open(settings)
    try:
        assert set(index.keyword.paper_ids) == set(papers)
        hits = Retriever(index, embedder, settings).search("qubit surface code decoder", k=10)
        assert "Surface Code" not in " ".join(h.title for h in hits)
        assert {h.paper_id for h in hits} <= set(papers)
    finally:
        index.close()


def test_prune_keeps_papers_of_a_file_that_could_not_be_read(small_index, tmp_path,
                                                             small_papers, embedder):
    settings, _ = small_index
    first = write_jsonl(tmp_path / "first.jsonl", small_papers[:4])
    rest = write_jsonl(tmp_path / "rest.jsonl", small_papers[4:])
    assert ingest(settings, [first, rest], embedder, progress=False).unchanged == 7
    rest.write_bytes(b"\x00" * 64)  # the file got corrupted, its papers did not go away

    report = ingest(settings, [first, rest], embedder, prune=True, progress=False)
    assert [s.file for s in report.failed_files] == ["rest.jsonl"]
    assert report.pruned == 0 and report.prune_skipped
    assert "Not pruned" in report.summary()
    assert index_stats(settings)["papers"] == len(small_papers)


# --- model pinning, failures, rebuilds --------------------------------------------------


def test_model_mismatch_is_refused(small_index, small_corpus, make_settings, embedder):
    settings, _ = small_index
    other = make_settings(settings.data_dir, embed_model="paraphrase-MiniLM-L3-v2")
    before = vector_ids(settings)
    # The manifest check runs before any text is embedded, so no second model is loaded.
    with pytest.raises(EmbeddingMismatch) as e:
        ingest(other, [small_corpus], embedder, progress=False)
    msg = str(e.value)
    assert MINILM in msg
    assert "sentence-transformers:paraphrase-MiniLM-L3-v2" in msg
    assert "--rebuild" in msg
    with pytest.raises(EmbeddingMismatch):
        Index.open(other)
    assert vector_ids(settings) == before
    assert Manifest.read(settings.data_dir).embed_model == MINILM


@pytest.mark.parametrize("flags", [{}, {"prune": True}, {"rebuild": True}])
def test_failed_ingest_leaves_index_intact(small_index, tmp_path, embedder, flags):
    settings, _ = small_index
    stats_before = index_stats(settings)
    ids_before = vector_ids(settings)
    binary = tmp_path / "broken.jsonl"
    binary.write_bytes(b"\x00\x01\x02\x03" * 100)
    empty = tmp_path / "empty.txt"
    empty.write_text("")

    if flags.get("rebuild"):
        # A rebuild refuses outright: it would hold only what could be read.
        with pytest.raises(CorpusError, match="broken.jsonl"):
            ingest(settings, [binary, empty], embedder, progress=False, **flags)
    else:
        report = ingest(settings, [binary, empty], embedder, progress=False, **flags)
        assert report.files == []
        assert sorted(s.file for s in report.failed_files) == ["broken.jsonl", "empty.txt"]
        assert report.pruned == 0 and report.chunks_embedded == 0
        assert any("broken.jsonl" in line for line in report.summary().splitlines())
    stats_after = index_stats(settings)
    stats_before.pop("size_on_disk_mb")
    stats_after.pop("size_on_disk_mb")
    assert stats_after == stats_before
    assert vector_ids(settings) == ids_before


def test_opening_a_missing_index_says_how_to_build_one(tmp_path, make_settings):
    with pytest.raises(IndexMissing, match="assistant ingest"):
        Index.open(make_settings(tmp_path / "nowhere"))


def test_rebuild_switches_generation(small_index, small_corpus, small_papers, embedder):
    settings, first = small_index
    data = settings.data_dir
    assert Manifest.read(data).generation == 1

    report = ingest(settings, [small_corpus], embedder, rebuild=True, progress=False)
    assert report.rebuilt
    assert report.new == len(small_papers)
    assert report.chunks_embedded == first.chunks_embedded

    manifest = Manifest.read(data)
    assert manifest.generation == 2
    assert manifest.collection == f"papers-{manifest.index_id}-g2"
    assert (data / "gen-2" / "catalog.sqlite").exists()
    assert not (data / "gen-1").exists()
    names = {c if isinstance(c, str) else c.name for c in chroma_client(settings)
             .list_collections()}
    assert names == {manifest.collection}

    index = Index.open(settings)
    try:
        assert index.stats()["generation"] == 2
        assert index.stats()["papers"] == len(small_papers)
        target = small_papers[6]
        hits = Retriever(index, embedder, settings).search(target["query"], k=3)
        assert hits[0].title == target["title"]
    finally:
        index.close()


def test_concurrent_ingest_is_refused(small_index, small_corpus, embedder):
    from filelock import FileLock

    settings, _ = small_index
    holder = FileLock(str(settings.data_dir / ".ingest.lock"))
    with holder, pytest.raises(IndexBusy, match="Another ingest"):
        ingest(settings, [small_corpus], embedder, progress=False, lock_wait_s=0.2)
    report = ingest(settings, [small_corpus], embedder, progress=False)  # released: fine
    assert report.unchanged == report.papers


# --- consistency of the three stores ----------------------------------------------------


def test_bm25_chroma_and_catalog_agree_on_seed_index(seed_services):
    index = seed_services.index
    catalog_ids = index.catalog.chunk_ids()
    chroma_ids = set(index.collection.get(include=[])["ids"])
    stored = KeywordIndex.load(index.dir / "bm25")
    assert stored is not None and stored.version == index.catalog.version
    assert len(stored.chunk_ids) == len(set(stored.chunk_ids))
    assert set(stored.chunk_ids) == chroma_ids == catalog_ids
    assert index.collection.count() == len(catalog_ids) == index.stats()["chunks"]
    papers_of = index.catalog.chunk_papers(stored.chunk_ids)
    assert [papers_of[c] for c in stored.chunk_ids] == stored.paper_ids


def test_seed_chunks_fit_the_model_window(seed_services, seed_settings):
    """Long abstracts are split; no chunk exceeds chunk_size word pieces."""
    from tokenizers import Tokenizer

    from assistant.embeddings import bundled_model_path

    index = seed_services.index
    papers, chunks = index.catalog.count()
    assert papers == 633 and chunks > papers  # some abstracts needed several chunks
    tok = Tokenizer.from_file(str(bundled_model_path() / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    sizes = [len(tok.encode(text, add_special_tokens=False).ids)
             for *_, text in index.catalog.chunk_rows()]
    assert max(sizes) <= seed_settings.chunk_size
    longest = max(index.catalog.all_papers(), key=lambda p: len(p.abstract))
    parts = Chunker(seed_settings).chunks(longest)
    assert len(parts) > 1
    assert [c.position for c in parts] == list(range(len(parts)))
    assert all(c.id.startswith(f"{longest.id}:{longest.content_hash}:") for c in parts)


@pytest.mark.parametrize("how", ["bare vector", "llama-index node"])
def test_orphan_vectors_are_never_returned_and_removed(small_index, small_corpus, small_papers,
                                                       embedder, how):
    from llama_index.core.schema import TextNode

    settings, _ = small_index
    target = small_papers[1]
    vector = embedder.embed([target["query"]])[0].tolist()
    index = Index.open(settings)
    try:
        orphan = "t:0000000000000000:deadbeefdeadbeef:0"
        if how == "bare vector":
            index.collection.add(ids=[orphan], embeddings=[vector])
        else:  # what a crash between the Chroma write and the catalog commit leaves behind
            index.vector_store.add([TextNode(id_=orphan, text=target["query"], embedding=vector,
                                             metadata={"paper_id": "t:0000000000000000"})])
        assert index.collection.count() == len(index.catalog.chunk_ids()) + 1
        rows = index.dense_search(vector, 20)
        assert orphan not in {cid for cid, _, _ in rows}
        assert rows and rows[0][1] != "t:0000000000000000"
        hits = Retriever(index, embedder, settings).search(target["query"], k=10)
        assert all(h.paper_id != "t:0000000000000000" for h in hits)
        assert hits[0].title == target["title"]
    finally:
        index.close()

    report = ingest(settings, [small_corpus], embedder, progress=False)
    assert report.orphans_removed == 1
    assert report.chunks_embedded == 0
    chunk_ids, _ = catalog_view(settings)
    assert vector_ids(settings) == chunk_ids


def test_missing_vectors_are_embedded_again(small_index, small_corpus, embedder):
    """A paper whose vectors vanished from Chroma is forgotten by the catalog and re-embedded."""
    settings, _ = small_index
    index = Index.open(settings)
    try:
        victim = sorted(index.catalog.chunk_ids())[0]
        index.collection.delete(ids=[victim])
    finally:
        index.close()
    report = ingest(settings, [small_corpus], embedder, progress=False)
    assert report.new == 1 and report.chunks_embedded >= 1
    chunk_ids, _ = catalog_view(settings)
    assert victim in chunk_ids
    assert vector_ids(settings) == chunk_ids


def test_stale_keyword_index_is_rebuilt_from_catalog(small_index, small_papers, embedder):
    import shutil

    settings, _ = small_index
    shutil.rmtree(settings.data_dir / "gen-1" / "bm25")  # killed before the BM25 save
    index = Index.open(settings)
    try:
        assert len(index.keyword.chunk_ids) == len(index.catalog.chunk_ids())
        hits = Retriever(index, embedder, settings).search("FASTQ nucleotides", fusion="bm25")
        assert hits[0].title == small_papers[1]["title"]
    finally:
        index.close()


# --- stats ------------------------------------------------------------------------------


def test_stats_fields(small_index, small_papers):
    settings, report = small_index
    stats = index_stats(settings)
    assert set(stats) == {"papers", "chunks", "embedding_model", "dimension", "generation",
                          "index_location", "size_on_disk_mb"}
    assert stats["papers"] == len(small_papers)
    assert stats["chunks"] == report.chunks_embedded
    assert stats["embedding_model"] == MINILM
    assert stats["dimension"] == 384
    assert stats["generation"] == 1
    assert stats["index_location"] == str(settings.data_dir.resolve())
    assert isinstance(stats["size_on_disk_mb"], float) and stats["size_on_disk_mb"] > 0
    manifest = json.loads((settings.data_dir / "manifest.json").read_text())
    assert manifest["embed_model"] == MINILM and manifest["chroma"] == "embedded"


def test_seed_stats(seed_services):
    stats = seed_services.index.stats()
    assert stats["papers"] == 633
    assert stats["chunks"] == seed_services.index.collection.count()
    assert stats["embedding_model"] == MINILM and stats["dimension"] == 384


def test_sources_accumulate_across_ingests(tmp_path, make_settings, embedder):
    """A paper ingested from file A, then from file B alone, keeps both file names."""
    record = {"title": "Sparse Mixture Routing for Tiny Models",
              "abstract": "We route tokens to a sparse set of experts in very small models and "
                          "show that routing noise matters more than expert count."}
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text(json.dumps(record) + "\n")
    b.write_text(json.dumps(record) + "\n")
    settings = make_settings(tmp_path / "data")
    ingest(settings, [a], embedder, progress=False)
    second = ingest(settings, [b], embedder, progress=False)
    assert second.unchanged == 1 and second.chunks_embedded == 0
    index = Index.open(settings)
    try:
        (paper,) = index.catalog.all_papers()
        assert paper.sources == ["a.jsonl", "b.jsonl"]
    finally:
        index.close()


def test_rebuild_refuses_when_a_file_cannot_be_read(tmp_path, make_settings, small_corpus,
                                                   embedder):
    settings = make_settings(tmp_path / "data")
    ingest(settings, [small_corpus], embedder, progress=False)
    before = Index.open(settings)
    stats_before = before.stats()["papers"]
    before.close()
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CorpusError) as info:
        ingest(settings, [small_corpus, broken], embedder, rebuild=True, progress=False)
    assert "broken.jsonl" in str(info.value) and "unchanged" in str(info.value)
    after = Index.open(settings)
    try:
        assert after.stats()["papers"] == stats_before
        assert after.manifest.generation == 1
    finally:
        after.close()
