"""Crash-safety scenarios: ingest subprocesses SIGKILLed mid-write, then checked for a consistent
index. Used by tests/test_crash_safety.py, tests/test_lock.py and bench/reliability.py."""

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

ROOT = Path(__file__).resolve().parents[2]
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
