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
- ingest_memory (issue 17): peak RSS of `assistant ingest` against the input's size, for a
  generated --ingest-mb MB JSON Lines file of identical records (target: < 600 MB at
  200 MB; it was 2.38 GB) and for one 50 MB single-line record (skipped unread);
- oversized_questions (issue 17): `assistant ui` serving a small index while four 3 MB
  questions are posted to it: the latency of a normal question asked meanwhile (target
  < 2 s; it was 455 s), what the big ones got, the server's RSS before and after.

The scenarios are the tests' own code (tests/test_crash_safety.py, test_lock.py,
test_fuzz.py, test_injection.py), so the figures and the tests measure the same thing.

Usage: .venv/bin/python bench/reliability.py [--kills 15] [--fuzz-examples 300]
            [--ingest-mb 200] [--skip kill,lock,fuzz,injection,ingest_memory,oversized_questions]

Skipped steps keep their figures from the previous bench/results/reliability.json.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BIN, RESULTS, ROOT, write  # noqa: E402

N_PAPERS = 240


def kill_figures(root: Path, embedder, kills: int) -> dict:
    from tests.support.crash import (
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
    from tests.support.lock import QUESTION, lock_scenario
    from tests.support.papers import SMALL_PAPERS

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
    import tests.support.fuzz as fuzz

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
    from tests.support.injection import ingest_injection_corpus, injection_cases

    settings = ingest_injection_corpus(root / "data", embedder)
    cases = injection_cases(settings, embedder)
    return {"cases": len(cases), "caught": sum(c.caught for c in cases),
            "missed": [c.name for c in cases if not c.caught],
            "checks": [c.name for c in cases]}


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSISTANT_", "OPENAI_"))}
    env.update(extra)
    return env


def _peak_rss_run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run cmd; (wall s, peak RSS MB of that one child, output)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            cwd=ROOT)
    out_chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: out_chunks.append(proc.stdout.read()))
    reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    reader.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    out = b"".join(out_chunks).decode("utf-8", "replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({proc.returncode}): {out[-2000:]}")
    return time.perf_counter() - t0, usage.ru_maxrss / 1024, out


def ingest_memory_figures(root: Path, megabytes: int) -> dict:
    record = json.dumps({
        "title": "Identical Records for an Ingest Memory Benchmark",
        "abstract": "We repeat one abstract many times so that the reader, not the embedder, "
                    "dominates the run: the file is streamed a line at a time and every "
                    "record after the first is a duplicate. " * 8,
        "authors": "A. Author, B. Author", "categories": "cs.IR",
    }) + "\n"
    corpus = root / "identical.jsonl"
    with corpus.open("w", encoding="utf-8") as fh:
        for _ in range(megabytes * 1_000_000 // len(record) + 1):
            fh.write(record)
    size_mb = corpus.stat().st_size / 1e6
    cmd = [str(BIN / "assistant"), "ingest", str(corpus), "-q", "--data-dir",
           str(root / "data")]
    wall, peak, out = _peak_rss_run(cmd, _clean_env())
    corpus.unlink()
    # Baseline: the same command on a one-record file (model, Chroma, imports).
    small = root / "one.jsonl"
    small.write_text(record, encoding="utf-8")
    _, base, _ = _peak_rss_run([*cmd[:2], str(small), *cmd[3:-1], str(root / "data-one")],
                               _clean_env())
    # One 50 MB line (it used to run 15 min at 3.7 GB): skipped unread, the rest ingests.
    line = root / "one-huge-line.jsonl"
    with line.open("w", encoding="utf-8") as fh:
        fh.write(record)
        fh.write('{"title": "Huge", "abstract": "' + "word " * 10_000_000 + '"}\n')
    huge_wall, huge_peak, huge_out = _peak_rss_run(
        [*cmd[:2], str(line), *cmd[3:-1], str(root / "data-huge")], _clean_env())
    line.unlink()
    return {
        "file_mb": round(size_mb, 1),
        "records": megabytes * 1_000_000 // len(record) + 1,
        "peak_rss_mb": round(peak),
        "peak_rss_over_file_size": round(peak / size_mb, 2),
        "peak_rss_one_record_mb": round(base),
        "seconds": round(wall, 1),
        "target_peak_rss_mb": 600,
        "summary_lines": out.strip().splitlines()[:4],
        "huge_line_mb": 50,
        "huge_line_seconds": round(huge_wall, 1),
        "huge_line_peak_rss_mb": round(huge_peak),
        "huge_line_skipped": "over the limit" in huge_out,
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def oversized_question_figures(root: Path, embedder) -> dict:
    import httpx
    from gradio_client import Client

    from assistant.index import ingest
    from assistant.settings import Settings
    from tests.support.papers import SMALL_PAPERS

    corpus = root / "small.jsonl"
    corpus.write_text("".join(json.dumps(p) + "\n" for p in SMALL_PAPERS), encoding="utf-8")
    data_dir = root / "data"
    ingest(Settings(_env_file=None, data_dir=data_dir), [corpus], embedder, progress=False)
    port = _free_port()
    log = (root / "ui.log").open("wb")
    server = subprocess.Popen(
        [str(BIN / "assistant"), "ui", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        env=_clean_env(ASSISTANT_ANSWER_MODE="extractive"), start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/config", timeout=2).status_code == 200:
                    break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"assistant ui did not start: {(root / 'ui.log').read_text()}")
        client = Client(url + "/", verbose=False, analytics_enabled=False)
        question = SMALL_PAPERS[0]["query"]
        client.predict(question, 6, "extractive", 0.1, api_name="/ask")  # warm
        rss_before = _rss_mb(server.pid)
        big = json.dumps({"data": ["why " * 750_000, 6, "extractive", 0.1]}).encode()
        statuses: list[int] = []
        big_s: list[float] = []

        def send_big() -> None:
            t = time.perf_counter()
            try:
                r = httpx.post(url + "/gradio_api/call/ask", content=big, timeout=600,
                               headers={"Content-Type": "application/json"})
                statuses.append(r.status_code)
            except httpx.HTTPError as e:
                statuses.append(-1)
                print("big question:", type(e).__name__, e)
            big_s.append(time.perf_counter() - t)

        threads = [threading.Thread(target=send_big) for _ in range(4)]
        for t in threads:
            t.start()
        t0 = time.perf_counter()
        answer = client.predict(question, 6, "extractive", 0.1, api_name="/ask")[4]
        normal_s = time.perf_counter() - t0
        for t in threads:
            t.join()
        return {
            "big_question_mb": round(len(big) / 1e6, 1),
            "big_questions": 4,
            "big_question_statuses": statuses,
            "big_question_seconds_max": round(max(big_s), 3),
            "normal_question_seconds": round(normal_s, 3),
            "normal_question_answered": bool(answer.get("citations")) and not answer["error"],
            "target_normal_question_s": 2.0,
            "server_rss_mb_before": round(rss_before),
            "server_rss_mb_after": round(_rss_mb(server.pid)),
            "server_peak_rss_mb": round(_rss_mb(server.pid, "VmHWM")),
        }
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, 15)
        server.wait(timeout=30)
        log.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=15)
    ap.add_argument("--fuzz-examples", type=int, default=300)
    ap.add_argument("--ingest-mb", type=int, default=200,
                    help="size of the generated JSON Lines file for ingest_memory")
    ap.add_argument("--skip", default="", help="comma-separated: kill,lock,fuzz,injection,"
                    "ingest_memory,oversized_questions")
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
                 ("injection", lambda d: injection_figures(d, embedder)),
                 ("ingest_memory", lambda d: ingest_memory_figures(d, args.ingest_mb)),
                 ("oversized_questions", lambda d: oversized_question_figures(d, embedder))]
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

    previous_path = RESULTS / "reliability.json"
    if previous_path.exists():
        previous = json.loads(previous_path.read_text())
        for name in skip:
            if name in previous and name not in out:
                out[name] = previous[name]  # not re-measured this run
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
    if "ingest_memory" in out:
        m = out["ingest_memory"]
        summary["ingest_peak_rss"] = (f"{m['peak_rss_mb']} MB for a {m['file_mb']:.0f} MB "
                                      f"JSONL (target < {m['target_peak_rss_mb']} MB)")
    if "oversized_questions" in out:
        q = out["oversized_questions"]
        summary["question_under_4x3mb"] = (f"{q['normal_question_seconds']} s "
                                           f"(target < {q['target_normal_question_s']:g} s), "
                                           f"big ones got {q['big_question_statuses']}")
    print("\n" + "\n".join(f"{k:>24}: {v}" for k, v in summary.items()))
    write("reliability", {"summary": summary, **out})


if __name__ == "__main__":
    main()
