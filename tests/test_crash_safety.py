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

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ASSISTANT = Path(sys.executable).parent / "assistant"
SEEDS = ROOT / "seeds"
WRITE_BATCH = 16  # chunks per batch: 8 papers (write_batch // 2) per acknowledged batch
POLL_S = 0.03


# --- corpus and subprocess helpers ---------------------------------------------------------


def write_corpus(path: Path, n: int) -> list:
    """The first `n` seed papers as JSON Lines; returns their Paper records."""
    from assistant.corpus import read_corpus

    papers = read_corpus([SEEDS]).papers[:n]
    assert len(papers) == n
    path.write_text("".join(json.dumps({"title": p.title, "abstract": p.abstract}) + "\n"
                            for p in papers), encoding="utf-8")
    return papers


def clean_env(**extra: str) -> dict[str, str]:
    """The environment minus any ASSISTANT_* / OPENAI_* setting of the caller."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ASSISTANT_", "OPENAI_"))}
    env.update({"ASSISTANT_WRITE_BATCH": str(WRITE_BATCH), "TOKENIZERS_PARALLELISM": "false"})
    env.update(extra)
    return env


def spawn_ingest(corpus: Path, data_dir: Path, log: Path, *extra: str) -> subprocess.Popen:
    out = log.open("ab")
    try:
        return subprocess.Popen(
            [str(ASSISTANT), "ingest", str(corpus), "-q", "--data-dir", str(data_dir), *extra],
            stdout=out, stderr=subprocess.STDOUT, env=clean_env(), cwd=ROOT,
            start_new_session=True,  # its own process group: the kill reaches all of it
        )
    finally:
        out.close()


def sigkill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def live_generation(data_dir: Path) -> int | None:
    try:
        return int(json.loads((data_dir / "manifest.json").read_text())["generation"])
    except (OSError, ValueError, KeyError):
        return None


def committed_papers(data_dir: Path, generation: int | None = None) -> int:
    """Papers committed to the catalog of `generation` (default: the live one), read-only."""
    generation = generation or live_generation(data_dir)
    db = data_dir / f"gen-{generation}" / "catalog.sqlite"
    if generation is None or not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    except sqlite3.OperationalError:
        return 0
    try:
        return con.execute("SELECT COUNT(*) FROM papers").fetchone()[0]
    except sqlite3.OperationalError:  # created, schema not yet written
        return 0
    finally:
        con.close()


# --- the kill loop -------------------------------------------------------------------------


@dataclass
class KillStats:
    kills: int = 0
    kills_after_ack: int = 0  # the killed run had acknowledged >= 1 batch of its own
    kills_during_startup: int = 0  # killed before its first acknowledged batch
    rebuild_kills: int = 0
    papers_lost: int = 0  # committed papers that a later poll no longer found
    committed_after_each_kill: list[int] = field(default_factory=list)
    polls: int = 0
    completed_runs: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


class _Watcher:
    """Polls the committed count while a run works; any drop below `floor` is a loss."""

    def __init__(self, data_dir: Path, floor: int, stats: KillStats) -> None:
        self.data_dir, self.floor, self.stats = data_dir, floor, stats
        self.count = floor
        self.acks: list[float] = []  # when the count went up

    def poll(self) -> int:
        count = committed_papers(self.data_dir)
        self.stats.polls += 1
        if count < self.floor:
            self.stats.papers_lost = max(self.stats.papers_lost, self.floor - count)
        if count > self.count:
            self.acks.append(time.monotonic())
        self.count = max(self.count, count)
        return count

    def until(self, proc: subprocess.Popen, above: int | None = None,
              deadline: float | None = None) -> None:
        """Poll until the count exceeds `above`, or the deadline, or the run ends."""
        while proc.poll() is None:
            if above is not None and self.poll() > above:
                return
            if above is None:
                self.poll()
            if deadline is not None and time.monotonic() >= deadline:
                return
            time.sleep(POLL_S)


def kill_loop(corpus: Path, data_dir: Path, n_papers: int, *, kills_after_ack: int = 10,
              startup_kills: int = 2, seed: int = 20240611, log: Path | None = None,
              budget_s: float = 600.0) -> KillStats:
    """SIGKILL `assistant ingest` repeatedly; the committed count must never go down.

    Startup kills come after a random 0.3-6 s (import, corpus read, reconcile, model load).
    The others wait until the run acknowledged one batch of its own (sometimes two, while
    the corpus has batches to spare), then a random fraction of the measured batch time, so
    kills land anywhere in a batch: embedding, the Chroma write, between the Chroma write and
    the catalog commit, the stale-vector delete.
    """
    rng = random.Random(seed)
    log = log or data_dir.parent / "ingest.log"
    stats = KillStats()
    plan = ["startup"] * startup_kills + ["acked"] * kills_after_ack
    rng.shuffle(plan)
    per_batch = max(1, WRITE_BATCH // 2)
    batch_s = 1.0  # estimate of one batch's duration, refined from observed acks
    committed = committed_papers(data_dir)
    t_start = time.monotonic()
    for i, kind in enumerate(plan):
        if time.monotonic() - t_start > budget_s:
            break
        before = committed
        watch = _Watcher(data_dir, committed, stats)
        proc = spawn_ingest(corpus, data_dir, log)
        if kind == "startup":
            watch.until(proc, deadline=time.monotonic() + rng.uniform(0.3, 6.0))
        else:
            # A cycle costs up to 2 batches (3 with the extra one); keep one for the last run.
            spare = (n_papers - committed) // per_batch - 2 * (len(plan) - i) - 1
            extra = 1 if spare > 0 and rng.random() < 0.5 else 0
            watch.until(proc, above=before + extra * per_batch,
                        deadline=time.monotonic() + 180)
            if len(watch.acks) >= 2:
                batch_s = watch.acks[-1] - watch.acks[-2]
            pause = rng.uniform(0.0, batch_s)
            watch.until(proc, deadline=time.monotonic() + pause)
        finished = proc.poll() is not None
        sigkill(proc)
        if finished:  # the run completed before the kill: the corpus is fully in
            stats.completed_runs += 1
            committed = max(committed, committed_papers(data_dir))
            break
        stats.kills += 1
        after = committed_papers(data_dir)
        if after < committed:
            stats.papers_lost = max(stats.papers_lost, committed - after)
        if after > before:
            stats.kills_after_ack += 1
        else:
            stats.kills_during_startup += 1
        committed = max(committed, after)
        stats.committed_after_each_kill.append(after)
    stats.seconds = round(time.monotonic() - t_start, 1)
    return stats


def finish_ingest(corpus: Path, data_dir: Path, *extra: str, stats: KillStats | None = None,
                  timeout: float = 300) -> str:
    """Run ingest to completion, polled like the killed runs (its self-repair must not drop
    committed papers either); returns its output (asserts success)."""
    log = data_dir.parent / f"finish-{time.monotonic_ns()}.log"
    proc = spawn_ingest(corpus, data_dir, log, *extra)
    watch = _Watcher(data_dir, committed_papers(data_dir), stats or KillStats())
    watch.until(proc, deadline=time.monotonic() + timeout)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        sigkill(proc)
        raise AssertionError(f"ingest did not finish within {timeout} s") from None
    out = log.read_text()
    assert proc.returncode == 0, out
    return out


def kill_rebuilds(corpus: Path, data_dir: Path, n: int, stats: KillStats, *,
                  seed: int = 7, log: Path | None = None, check=None) -> None:
    """Kill `ingest --rebuild` n times after the new generation acknowledged a batch.

    The live generation must stay complete throughout; `check()` runs after each kill.
    """
    rng = random.Random(seed)
    log = log or data_dir.parent / "ingest.log"
    live = live_generation(data_dir)
    total = committed_papers(data_dir)
    for _ in range(n):
        proc = spawn_ingest(corpus, data_dir, log, "--rebuild")
        t0 = time.monotonic()
        while proc.poll() is None and time.monotonic() - t0 < 120:
            if committed_papers(data_dir, live + 1) > 0:
                break
            stats.polls += 1
            if committed_papers(data_dir, live) != total:
                stats.papers_lost = max(stats.papers_lost, 1)
            time.sleep(POLL_S)
        time.sleep(rng.uniform(0.0, 0.5))
        assert proc.poll() is None, "the rebuild finished before it could be killed"
        new_acked = committed_papers(data_dir, live + 1)
        sigkill(proc)
        stats.kills += 1
        stats.rebuild_kills += 1
        if new_acked > 0:
            stats.kills_after_ack += 1
        assert live_generation(data_dir) == live, "a killed rebuild switched the manifest"
        after = committed_papers(data_dir, live)
        if after != total:
            stats.papers_lost = max(stats.papers_lost, total - after)
        if check is not None:
            check()


# --- consistency --------------------------------------------------------------------------


def fresh_chroma() -> None:
    """Forget Chroma clients cached in this process: another process wrote the data dir."""
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


def check_consistent(data_dir: Path, papers: list) -> dict:
    """Assert the index holds exactly `papers`, whole, in all three stores. Returns facts."""
    from assistant.index import Chunker, Index, Manifest, chroma_client
    from assistant.keyword import KeywordIndex
    from assistant.settings import Settings

    fresh_chroma()
    settings = Settings(_env_file=None, data_dir=data_dir)
    manifest = Manifest.read(data_dir)
    assert manifest is not None
    assert manifest.embed_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert manifest.dim == 384
    assert manifest.collection.endswith(f"-g{manifest.generation}")
    assert [d.name for d in data_dir.glob("gen-*")] == [f"gen-{manifest.generation}"]
    index = Index.open(settings)
    try:
        catalog = index.catalog
        expected = {p.id: p for p in papers}
        stored = {p.id: p for p in catalog.all_papers()}
        assert set(stored) == set(expected), "catalog papers differ from the corpus"
        assert catalog.count()[0] == len(expected)  # every paper exactly once
        chunker = Chunker(settings)
        rows = catalog.chunk_rows()
        by_paper: dict[str, list[str]] = {}
        for cid, pid, _title, _text in rows:
            by_paper.setdefault(pid, []).append(cid)
        for pid, paper in expected.items():
            want = [c.id for c in chunker.chunks(paper)]
            assert sorted(by_paper.get(pid, [])) == sorted(want), f"half-written paper {pid}"
        chunk_ids = {r[0] for r in rows}
        got = index.collection.get(include=["metadatas"])
        assert len(got["ids"]) == len(set(got["ids"]))
        assert set(got["ids"]) == chunk_ids, "Chroma and the catalog disagree"
        paper_of = {cid: pid for cid, pid, *_ in rows}
        for cid, meta in zip(got["ids"], got["metadatas"], strict=True):
            assert meta["paper_id"] == paper_of[cid]
        bm25 = KeywordIndex.load(index.dir / "bm25")
        assert bm25 is not None and bm25.version == catalog.version, "stale BM25 index"
        assert len(bm25.chunk_ids) == len(set(bm25.chunk_ids))
        assert set(bm25.chunk_ids) == chunk_ids, "BM25 and the catalog disagree"
        assert set(bm25.paper_ids) == set(expected)
        assert not (index.dir / "bm25.new").exists() and not (index.dir / "bm25.old").exists()
        names = {c if isinstance(c, str) else c.name
                 for c in chroma_client(settings).list_collections()}
        assert names == {manifest.collection}, f"leftover collections: {names}"
        return {"generation": manifest.generation, "papers": len(stored),
                "chunks": len(chunk_ids)}
    finally:
        index.close()
        fresh_chroma()


def search_snapshot(data_dir: Path, embedder, queries: list[str]) -> dict:
    """Stats and top-5 paper ids per query, read in this process from the live index."""
    from assistant.index import Index
    from assistant.retrieve import Retriever
    from assistant.settings import Settings

    fresh_chroma()
    settings = Settings(_env_file=None, data_dir=data_dir)
    index = Index.open(settings)
    try:
        retriever = Retriever(index, embedder, settings)
        stats = index.stats()
        return {"papers": stats["papers"], "chunks": stats["chunks"],
                "generation": stats["generation"],
                "hits": {q: [h.paper_id for h in retriever.search(q, k=5)] for q in queries}}
    finally:
        index.close()
        fresh_chroma()


# --- the test -----------------------------------------------------------------------------

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
