"""Crash-safe ingest: `assistant ingest` is SIGKILLed at random points, then run again.

A real subprocess on a corpus of seed papers, with small write batches so a run acknowledges
many batches. The test polls the catalog of the live generation while each run works and
after each kill: the number of committed papers never goes down (an acknowledged batch is
never lost, not even by the next run's self-repair), at least ten kills land after a batch
of that run was acknowledged, and some land during start-up (model load, reconcile). When
the loop is over, one last run completes and the three stores must agree exactly:

* every corpus paper once in the catalog, with exactly the chunks the chunker makes for it;
* each chunk's vector in Chroma (no orphans, no missing vectors, right paper id);
* the saved BM25 index built from the same catalog version, on the same chunk ids;
* the manifest naming the live generation, its collection, model and dimension.

Then `--rebuild` is killed after the new generation acknowledged a batch: the old index
must keep serving (same stats, same search results) and the next ingest cleans up.

The kill loop is also what bench/reliability.py runs (`kill_loop`, `check_consistent`).
"""

from __future__ import annotations

import json

import pytest

from tests.support.crash import (
    check_consistent,
    finish_ingest,
    fresh_chroma,
    kill_loop,
    kill_rebuilds,
    search_snapshot,
    write_corpus,
)

N_PAPERS = 400  # enough batches to spare for 9+ kills even when ONNX embeds a batch in ~0.1 s


@pytest.mark.slow
@pytest.mark.timeout(900)  # ~2.5 min on an idle 2-CPU machine; model loads dominate
def test_sigkill_during_ingest_and_rebuild_loses_nothing(tmp_path, embedder):
    corpus = tmp_path / "corpus.jsonl"
    papers = write_corpus(corpus, N_PAPERS)
    data_dir = tmp_path / "data"
    log = tmp_path / "ingest.log"

    stats = kill_loop(corpus, data_dir, N_PAPERS, kills_after_ack=9, startup_kills=2,
                      log=log)
    assert stats.papers_lost == 0, stats
    assert stats.completed_runs == 0, f"corpus too small: a run completed early {stats}"
    assert stats.kills_after_ack >= 9, stats
    counts = stats.committed_after_each_kill
    assert counts == sorted(counts), f"committed papers went down: {counts}"
    assert 0 < counts[-1] < N_PAPERS

    out = finish_ingest(corpus, data_dir, stats=stats)
    assert stats.papers_lost == 0, stats
    assert f"Papers: {N_PAPERS} in corpus" in out
    facts = check_consistent(data_dir, papers)
    assert facts["papers"] == N_PAPERS

    queries = [papers[3].title, papers[100].abstract[:120], "diffusion models for images"]
    before = search_snapshot(data_dir, embedder, queries)
    assert before["papers"] == N_PAPERS and all(before["hits"].values())
    assert before["hits"][papers[3].title][0] == papers[3].id

    def still_serving() -> None:
        now = search_snapshot(data_dir, embedder, queries)
        assert now == before, "the old index changed while a rebuild was killed"

    kill_rebuilds(corpus, data_dir, 2, stats, log=log, check=still_serving)
    assert stats.papers_lost == 0, stats
    assert stats.kills >= 13 and stats.kills_after_ack >= 11, stats

    out = finish_ingest(corpus, data_dir, stats=stats)  # drops the abandoned generation
    assert "Chunks embedded: 0" in out
    facts = check_consistent(data_dir, papers)
    assert facts["generation"] == before["generation"]
    assert search_snapshot(data_dir, embedder, queries) == before
    print("\nkill loop:", json.dumps(stats.as_dict()))


def test_legacy_manifest_drops_killed_and_replaced_generations(tmp_path, embedder,
                                                               small_corpus):
    """A data dir from before index ids ("papers-g1", no index_id in the manifest): what a
    killed rebuild left is dropped by the next ingest, and a finished rebuild drops gen 1."""
    from assistant.index import Manifest, chroma_client, ingest
    from assistant.settings import Settings

    settings = Settings(_env_file=None, data_dir=tmp_path / "data")
    ingest(settings, [small_corpus], embedder, progress=False)
    path = settings.data_dir / "manifest.json"
    raw = json.loads(path.read_text())
    client = chroma_client(settings)
    client.get_collection(raw["collection"]).modify(name="papers-g1")
    raw["collection"] = "papers-g1"
    raw.pop("index_id", None)
    path.write_text(json.dumps(raw))
    assert Manifest.read(settings.data_dir).index_id == Manifest.read(settings.data_dir).index_id

    def names() -> set[str]:
        return {c if isinstance(c, str) else c.name for c in client.list_collections()}

    client.create_collection("papers-g2")  # what a rebuild killed before its switch leaves
    (settings.data_dir / "gen-2").mkdir()
    report = ingest(settings, [small_corpus], embedder, progress=False)
    assert report.unchanged == report.papers
    assert names() == {"papers-g1"} and not (settings.data_dir / "gen-2").exists()

    ingest(settings, [small_corpus], embedder, progress=False, rebuild=True)
    manifest = Manifest.read(settings.data_dir)
    assert manifest.generation == 2 and names() == {manifest.collection}
    assert [d.name for d in settings.data_dir.glob("gen-*")] == ["gen-2"]
    fresh_chroma()
