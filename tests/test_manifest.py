"""The manifest pins what an index was built with: the embedding model and the chunking.

Fast lane: a deterministic hashed embedder (tests/support/embedder.py) instead of the model.
"""

from __future__ import annotations

import pytest

from assistant.errors import ChunkingMismatch
from assistant.ingest import ensure_index, ingest
from assistant.manifest import Manifest
from assistant.store import Index


def test_manifest_records_the_chunking(make_settings, small_corpus, hash_embedder, tmp_path):
    settings = make_settings(tmp_path / "data", chunk_size=120, chunk_overlap=10)
    ingest(settings, [small_corpus], hash_embedder, progress=False)
    manifest = Manifest.read(settings.data_dir)
    assert (manifest.chunk_size, manifest.chunk_overlap) == (120, 10)
    assert manifest.dim == hash_embedder.dim


@pytest.mark.parametrize("change", [{"chunk_size": 100}, {"chunk_overlap": 20}])
def test_other_chunking_is_refused_with_the_rebuild_hint(make_settings, small_corpus,
                                                          hash_embedder, tmp_path, change):
    built = make_settings(tmp_path / "data")
    ingest(built, [small_corpus], hash_embedder, progress=False)
    other = make_settings(tmp_path / "data", **change)

    with pytest.raises(ChunkingMismatch) as opened:
        Index.open(other)
    assert "--rebuild" in str(opened.value)
    assert f"{built.chunk_size} tokens overlapping by {built.chunk_overlap}" in str(opened.value)
    # An incremental ingest would mix two chunkings in one index: refused, nothing written.
    before = Manifest.read(built.data_dir)
    with pytest.raises(ChunkingMismatch):
        ingest(other, [small_corpus], hash_embedder, progress=False)
    assert Manifest.read(built.data_dir).updated_at == before.updated_at

    report = ingest(other, [small_corpus], hash_embedder, rebuild=True, progress=False)
    assert report.rebuilt
    index = Index.open(other)
    try:
        assert index.stats()["papers"] == report.papers
        assert (index.manifest.chunk_size, index.manifest.chunk_overlap) == (
            other.chunk_size, other.chunk_overlap)
    finally:
        index.close()


def test_ensure_index_builds_once(make_settings, small_corpus, hash_embedder, tmp_path):
    settings = make_settings(tmp_path / "data", corpus_paths=[small_corpus])
    said: list[str] = []
    assert ensure_index(settings, lambda: hash_embedder, log=said.append)
    assert "No index in" in said[0] and "Papers: 7 in corpus" in said[1]
    calls = hash_embedder.calls
    assert not ensure_index(settings, lambda: hash_embedder, log=said.append)
    assert hash_embedder.calls == calls and len(said) == 2


def test_ensure_index_says_what_to_do_when_nothing_is_readable(make_settings, tmp_path,
                                                               hash_embedder):
    from assistant.errors import AssistantError

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    settings = make_settings(tmp_path / "data", corpus_paths=[empty])
    with pytest.raises(AssistantError, match="ASSISTANT_CORPUS_PATHS"):
        ensure_index(settings, lambda: hash_embedder, log=lambda m: None)
