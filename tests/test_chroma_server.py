"""Ingest and search against a real `chroma run` server instead of embedded Chroma."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.index import Index, Manifest, ingest
from assistant.retrieve import Retriever

pytestmark = pytest.mark.slow

HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def heartbeat(port: int) -> bool:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    try:
        client = chromadb.HttpClient(host=HOST, port=port,
                                     settings=ChromaSettings(anonymized_telemetry=False))
        return bool(client.heartbeat())
    except Exception:  # noqa: BLE001 - not up yet
        return False


@pytest.fixture
def chroma_server(tmp_path):
    """A `chroma run` process on a free port; yields the port, kills the server afterwards."""
    exe = Path(sys.executable).parent / "chroma"
    assert exe.exists(), exe
    port = free_port()
    log = (tmp_path / "chroma.log").open("w")
    proc = subprocess.Popen(
        [str(exe), "run", "--path", str(tmp_path / "server-data"), "--host", HOST,
         "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not heartbeat(port):
            if proc.poll() is not None:
                pytest.fail(f"chroma exited with {proc.returncode}: "
                            f"{(tmp_path / 'chroma.log').read_text()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"chroma did not answer on port {port} in {START_TIMEOUT_S:.0f} s")
            time.sleep(0.3)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def test_ingest_and_search_through_chroma_server(chroma_server, tmp_path, make_settings,
                                                 small_corpus, small_papers, embedder):
    import chromadb

    port = chroma_server
    settings = make_settings(tmp_path / "data", chroma_host=HOST, chroma_port=port)
    report = ingest(settings, [small_corpus], embedder, progress=False)
    assert report.new == len(small_papers) and report.chunks_embedded >= len(small_papers)
    assert not (settings.data_dir / "chroma").exists(), "vectors went to embedded Chroma"

    server = chromadb.HttpClient(host=HOST, port=port)
    collection = Manifest.read(settings.data_dir).collection
    assert server.get_collection(collection).count() == report.chunks_embedded

    index = Index.open(settings)
    try:
        retriever = Retriever(index, embedder, settings)
        for paper in small_papers:
            hits = retriever.search(paper["query"], k=3)
            assert hits[0].title == paper["title"], (paper["query"], [h.title for h in hits])
            assert hits[0].dense_score is not None
        stats = index.stats()
        assert f"http://{HOST}:{port}" in stats["index_location"]
        assert str(settings.data_dir.resolve()) in stats["index_location"]
        assert stats["papers"] == len(small_papers)
    finally:
        index.close()

    again = ingest(settings, [small_corpus], embedder, progress=False)
    assert again.chunks_embedded == 0 and again.unchanged == len(small_papers)


def test_two_data_dirs_sharing_a_server_keep_their_own_collections(
        chroma_server, tmp_path, make_settings, small_corpus, small_papers, embedder):
    """A first ingest (or a rebuild) of one data dir must not drop another's collections."""
    import chromadb

    port = chroma_server
    first = make_settings(tmp_path / "a", chroma_host=HOST, chroma_port=port)
    second = make_settings(tmp_path / "b", chroma_host=HOST, chroma_port=port)
    report = ingest(first, [small_corpus], embedder, progress=False)
    ingest(second, [small_corpus], embedder, progress=False)
    ingest(second, [small_corpus], embedder, rebuild=True, progress=False)

    server = chromadb.HttpClient(host=HOST, port=port)
    mine = Manifest.read(first.data_dir)
    theirs = Manifest.read(second.data_dir)
    assert mine.collection != theirs.collection
    assert server.get_collection(mine.collection).count() == report.chunks_embedded
    index = Index.open(first)
    try:
        hits = Retriever(index, embedder, first).search(small_papers[0]["query"], k=1)
        assert hits[0].title == small_papers[0]["title"]
    finally:
        index.close()
