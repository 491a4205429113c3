"""One writer at a time: the lock scenario run by tests/test_lock.py and bench/reliability.py."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from tests.support.crash import (
    ASSISTANT,
    ROOT,
    clean_env,
    committed_papers,
    fresh_chroma,
    sigkill,
    spawn_ingest,
)

QUESTION = "How does ReefWatch detect coral bleaching in drone imagery?"
CLI_MARGIN_S = 12.0  # process start-up (imports) on a busy 2-CPU machine, on top of the wait


def write_big_corpus(path: Path, copies: int = 3) -> int:
    """The seed papers `copies` times over (retitled, so each copy is new): a long ingest."""
    from assistant.corpus import read_corpus

    papers = read_corpus([ROOT / "seeds"]).papers
    with path.open("w", encoding="utf-8") as fh:
        for c in range(copies):
            for p in papers:
                title = p.title if c == 0 else f"{p.title} (copy {c})"
                fh.write(json.dumps({"title": title, "abstract": p.abstract}) + "\n")
    return copies * len(papers)


def run_cli(*args: str, timeout: float = 120) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.monotonic()
    proc = subprocess.run([str(ASSISTANT), *args], capture_output=True, text=True,
                          env=clean_env(), cwd=ROOT, timeout=timeout)  # never hangs
    return proc, time.monotonic() - t0


def lock_scenario(root: Path, embedder, small_corpus: Path, question: str) -> dict:
    """Build a small index, start a long writer, then try a second writer and readers."""
    from concurrent.futures import ThreadPoolExecutor

    from assistant.errors import IndexBusy
    from assistant.index import LOCK_WAIT_S, ingest
    from assistant.services import Services
    from assistant.settings import Settings

    data_dir = root / "data"
    settings = Settings(_env_file=None, data_dir=data_dir)
    ingest(settings, [small_corpus], embedder, progress=False)
    base = committed_papers(data_dir)
    big = root / "big.jsonl"
    write_big_corpus(big)

    writer = spawn_ingest(big, data_dir, root / "writer.log")
    facts: dict = {"lock_wait_s": LOCK_WAIT_S}
    try:
        t0 = time.monotonic()
        while committed_papers(data_dir) <= base:  # it holds the lock and is writing
            assert writer.poll() is None, (root / "writer.log").read_text()[-2000:]
            assert time.monotonic() - t0 < 240, "the writer never acknowledged a batch"
            time.sleep(0.05)

        with ThreadPoolExecutor(2) as pool:
            second = pool.submit(run_cli, "ingest", str(small_corpus), "-q",
                                 "--data-dir", str(data_dir))
            reader = pool.submit(run_cli, "search", question, "--json", "-k", "3",
                                 "--data-dir", str(data_dir))

            t = time.monotonic()
            try:
                ingest(settings, [small_corpus], embedder, progress=False, lock_wait_s=1.0)
                raise AssertionError("a second in-process ingest got the lock")
            except IndexBusy as e:
                facts["in_process_wait_s"] = round(time.monotonic() - t, 2)
                facts["in_process_message"] = str(e)

            fresh_chroma()
            services = Services(settings, embedder=embedder)
            answer = services.answerer.answer(question, mode="extractive")
            hits = services.retriever.search(question, k=3)
            services.index.close()
            facts["in_process_answer_ok"] = bool(answer.citations) and not answer.error
            facts["in_process_answer"] = answer.answer[:300]
            facts["in_process_search_hits"] = len(hits)

            proc, facts["cli_second_ingest_s"] = second.result()
            facts["cli_second_ingest_exit"] = proc.returncode
            facts["cli_second_ingest_message"] = (proc.stderr + proc.stdout).strip()
            proc, facts["cli_search_s"] = reader.result()
            facts["cli_search_exit"] = proc.returncode
            facts["cli_search_hits"] = (len(json.loads(proc.stdout)["results"])
                                        if proc.returncode == 0 else 0)
        facts["writer_still_running"] = writer.poll() is None
        facts["writer_committed"] = committed_papers(data_dir)
    finally:
        sigkill(writer)
        fresh_chroma()

    # The killed writer's lock died with it: the next ingest gets it without waiting.
    t = time.monotonic()
    ingest(settings, [small_corpus], embedder, progress=False, lock_wait_s=1.0)
    facts["lock_after_kill_s"] = round(time.monotonic() - t, 2)
    fresh_chroma()
    return facts
