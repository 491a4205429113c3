"""Reliability and security figures (issue: reliability and security).

- kill loop: `assistant ingest` SIGKILLed --kills times (2 during start-up, 2 during a
  `--rebuild`, the rest after the run acknowledged a batch), then run to completion: kills
  survived, papers lost (committed papers a later run no longer had), final consistency of
  catalog / Chroma / BM25 / manifest, old index serving through killed rebuilds;
- lock: a second ingest while one writes — its exit time against the lock wait, the
  in-process IndexBusy wait, readers (CLI search, in-process answer) during the ingest;
- fuzz: the hypothesis properties of tests/test_fuzz.py run in process (--fuzz-examples
  cases each): cases run, properties failed;
- injection: the attack checks of tests/test_injection.py: cases caught / total.

The scenarios are the tests' own code (tests/test_crash_safety.py, test_lock.py,
test_fuzz.py, test_injection.py), so the figures and the tests measure the same thing.

Usage: .venv/bin/python bench/reliability.py [--kills 15] [--fuzz-examples 300]
                                             [--skip kill,lock,fuzz,injection]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import write  # noqa: E402

N_PAPERS = 240


def kill_figures(root: Path, embedder, kills: int) -> dict:
    from tests.test_crash_safety import (
        check_consistent,
        finish_ingest,
        kill_loop,
        kill_rebuilds,
        search_snapshot,
        write_corpus,
    )

    corpus = root / "corpus.jsonl"
    papers = write_corpus(corpus, N_PAPERS)
    data_dir = root / "data"
    rebuild_kills, startup_kills = 2, 2
    stats = kill_loop(corpus, data_dir, N_PAPERS, startup_kills=startup_kills,
                      kills_after_ack=max(1, kills - rebuild_kills - startup_kills),
                      log=root / "ingest.log")
    t = time.perf_counter()
    finish_ingest(corpus, data_dir, stats=stats)
    out: dict = {"final_run_s": round(time.perf_counter() - t, 1)}
    try:
        out["after_kills"] = check_consistent(data_dir, papers)
        out["consistent"] = True
    except AssertionError as e:
        out["consistent"], out["inconsistency"] = False, str(e)[:500]
    queries = [papers[3].title, papers[100].abstract[:120], "diffusion models for images"]
    before = search_snapshot(data_dir, embedder, queries)
    served: list[bool] = []
    kill_rebuilds(corpus, data_dir, rebuild_kills, stats, log=root / "ingest.log",
                  check=lambda: served.append(
                      search_snapshot(data_dir, embedder, queries) == before))
    finish_ingest(corpus, data_dir, stats=stats)
    try:
        check_consistent(data_dir, papers)
    except AssertionError as e:
        out["consistent"], out["inconsistency"] = False, str(e)[:500]
    out["old_index_served_through_killed_rebuilds"] = all(served) and len(served) > 0
    counts = stats.committed_after_each_kill
    return {
        "corpus_papers": N_PAPERS,
        "write_batch_chunks": 16,
        "kills": stats.kills,
        "kills_after_first_ack": stats.kills_after_ack,
        "kills_during_startup": stats.kills_during_startup,
        "kills_during_rebuild": stats.rebuild_kills,
        "kills_survived": stats.kills if out["consistent"] and stats.papers_lost == 0 else 0,
        "papers_lost": stats.papers_lost,
        "committed_monotonic": counts == sorted(counts),
        "committed_after_each_kill": counts,
        "catalog_polls": stats.polls,
        "kill_loop_s": stats.seconds,
        **out,
    }


def lock_figures(root: Path, embedder) -> dict:
    from tests.conftest import SMALL_PAPERS
    from tests.test_lock import QUESTION, lock_scenario

    corpus = root / "small.jsonl"
    corpus.write_text("".join(json.dumps(p) + "\n" for p in SMALL_PAPERS), encoding="utf-8")
    facts = lock_scenario(root, embedder, corpus, QUESTION)
    facts.pop("in_process_answer", None)
    facts["cli_second_ingest_s"] = round(facts["cli_second_ingest_s"], 2)
    facts["cli_search_s"] = round(facts["cli_search_s"], 2)
    facts["lock_wait_bound_s"] = facts["cli_second_ingest_s"]
    return facts


def fuzz_figures(root: Path, embedder, examples: int) -> dict:
    os.environ["FUZZ_EXAMPLES"] = str(examples)  # read when the module is imported
    import tests.test_fuzz as fuzz

    failed: dict[str, str] = {}
    t0 = time.perf_counter()
    with fuzz.small_cli_index(root, embedder) as data_dir:
        for prop in fuzz.PROPERTIES:
            try:
                if "cli_index" in inspect.signature(prop).parameters:
                    prop(cli_index=data_dir)
                else:
                    prop()
            except Exception as e:  # noqa: BLE001 — a failed property is a figure, not a crash
                failed[prop.__name__] = "".join(traceback.format_exception_only(e))[-800:]
    return {"examples_per_property": examples, "properties": len(fuzz.PROPERTIES),
            "cases_run": sum(fuzz.FUZZ_CASES.values()), "cases_by_property":
            dict(fuzz.FUZZ_CASES), "cli_outcomes": dict(sorted(fuzz.FUZZ_OUTCOMES.items())),
            "properties_failed": failed,
            "seconds": round(time.perf_counter() - t0, 1)}


def injection_figures(root: Path, embedder) -> dict:
    from tests.test_injection import ingest_injection_corpus, injection_cases

    settings = ingest_injection_corpus(root / "data", embedder)
    cases = injection_cases(settings, embedder)
    return {"cases": len(cases), "caught": sum(c.caught for c in cases),
            "missed": [c.name for c in cases if not c.caught],
            "checks": [c.name for c in cases]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=15)
    ap.add_argument("--fuzz-examples", type=int, default=300)
    ap.add_argument("--skip", default="", help="comma-separated: kill,lock,fuzz,injection")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    from assistant.embeddings import make_embedder
    from assistant.settings import Settings

    embedder = make_embedder(Settings(_env_file=None))
    assert embedder.dim == 384
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-reliability-") as tmp:
        root = Path(tmp)
        steps = [("kill", lambda d: kill_figures(d, embedder, args.kills)),
                 ("lock", lambda d: lock_figures(d, embedder)),
                 ("fuzz", lambda d: fuzz_figures(d, embedder, args.fuzz_examples)),
                 ("injection", lambda d: injection_figures(d, embedder))]
        for name, step in steps:
            if name in skip:
                continue
            d = root / name
            d.mkdir()
            t0 = time.perf_counter()
            print(f"== {name}", flush=True)
            out[name] = step(d)
            out[name].setdefault("seconds", round(time.perf_counter() - t0, 1))
            print(json.dumps(out[name], indent=1), flush=True)

    summary = {}
    if "kill" in out:
        summary["kills_survived"] = f"{out['kill']['kills_survived']}/{out['kill']['kills']}"
        summary["papers_lost"] = out["kill"]["papers_lost"]
    if "lock" in out:
        summary["lock_wait_bound_s"] = (f"{out['lock']['lock_wait_bound_s']} "
                                        f"(lock wait {out['lock']['lock_wait_s']:g} s)")
    if "fuzz" in out:
        summary["fuzz_cases_run"] = out["fuzz"]["cases_run"]
    if "injection" in out:
        summary["injection_cases_caught"] = (f"{out['injection']['caught']}/"
                                             f"{out['injection']['cases']}")
    print("\n" + "\n".join(f"{k:>24}: {v}" for k, v in summary.items()))
    write("reliability", {"summary": summary, **out})


if __name__ == "__main__":
    main()
