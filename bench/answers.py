"""Answer figures (issue: answers with checked citations).

- extractive answer latency p50/p95, warm, in process, over the golden questions (the
  `question` field of evals/datasets/dev.jsonl, one warm-up first), with the per-stage
  p50/p95 of Answer.timings_ms;
- cold start of `assistant ask --mode extractive --json` and of `assistant search --json`
  (fresh processes, 5 runs each);
- time to first streamed token (TTFT) in LLM mode against the scripted OpenAI-compatible
  server of tests/support (started in this process, no delay): Answerer.stream() call to the
  first `token` event, split into our pipeline before the request reaches the server and the
  server + transport + client part after it;
- on the golden set, scored exactly like `assistant eval` (evals.run.evaluate_row, follow-up
  rows as two turns): citation validity, share of answerable questions whose answer cites at
  least one gold paper, abstention precision/recall on the off-corpus questions.

The index is built once (`assistant ingest` of seeds/) in --data-dir, by default
$TMPDIR/paper-assistant-bench-index-<embed backend>, shared with bench/ui_perf.py; an
existing index there is reused (delete the folder to rebuild it).

Usage: .venv/bin/python bench/answers.py [--data-dir DIR] [--cold-runs 5] [--ttft-questions 30]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BIN, add_data_dir_option, golden, pct, run_timed, seed_index, write  # noqa: E402

ASK_Q = "Which optimizers reduce memory use when training large language models?"
SEARCH_Q = "prefix caching for hybrid LLMs"
LLM_TEXT = ("Several methods shrink the optimizer state to save memory during training [1]. "
            "Others trade extra communication for a smaller footprint on each device [2]. "
            "Low-rank projections of the gradients are a third way to reduce memory [1].")
# Environment that would point a child process at a real LLM endpoint.
LLM_ENV = ("OPENAI_BASE_URL", "OPENAI_API_KEY", "ASSISTANT_LLM_BASE_URL", "ASSISTANT_LLM_API_KEY")


def child_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """os.environ for a child `assistant` process: this data dir, no LLM endpoint."""
    env = {k: v for k, v in os.environ.items() if k not in LLM_ENV}
    env.update({"ASSISTANT_DATA_DIR": str(data_dir), "GRADIO_ANALYTICS_ENABLED": "False",
                "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    env.update(extra)
    return env


def summary(values: list[float]) -> dict:
    return {"p50": pct(values, 50), "p95": pct(values, 95), "n": len(values),
            "min": round(min(values), 2) if values else None,
            "max": round(max(values), 2) if values else None}


# --- extractive latency -----------------------------------------------------------------------


def extractive_latency(answerer, rows: list[dict]) -> dict:
    from evals.metrics import latency_summary

    answerer.answer("Which methods reduce memory when training language models?",
                    mode="extractive")  # warm-up: model, Chroma, BM25 loaded
    wall, answered, abstained, timings = [], [], [], []
    for row in rows:
        t0 = time.perf_counter()
        a = answerer.answer(row["question"], mode="extractive")
        ms = (time.perf_counter() - t0) * 1000
        wall.append(ms)
        (abstained if a.abstained else answered).append(ms)
        if a.timings_ms:
            timings.append(a.timings_ms)
    return {"all_ms": summary(wall), "answered_ms": summary(answered),
            "abstained_ms": summary(abstained), "stages_ms": latency_summary(timings)}


# --- cold starts ------------------------------------------------------------------------------


def cold_starts(data_dir: Path, runs: int) -> dict:
    env = child_env(data_dir)
    assistant = str(BIN / "assistant")
    out: dict = {}
    cmds = {
        "ask_extractive": [assistant, "ask", "--mode", "extractive", "--json", ASK_Q],
        "search": [assistant, "search", SEARCH_Q, "--json"],
    }
    for name, cmd in cmds.items():
        walls, inside = [], []
        for _ in range(runs):
            wall, _, stdout = run_timed(cmd, env)
            walls.append(wall)
            if name == "ask_extractive":
                answer = json.loads(stdout)
                assert not answer.get("error"), answer.get("error")
                inside.append(answer["timings_ms"].get("total_ms", 0.0) / 1000)
        out[name] = {"p50_s": pct(walls, 50), "runs_s": [round(w, 2) for w in walls]}
        if inside:
            out[name]["answer_total_in_process_p50_s"] = pct(inside, 50)
            out[name]["startup_share_p50_s"] = round(pct(walls, 50) - pct(inside, 50), 2)
        print(f"`assistant {cmd[1]}` cold start: p50 {pct(walls, 50):.2f} s "
              f"({', '.join(f'{w:.2f}' for w in walls)})")
    return out


# --- time to first token against the scripted server ---------------------------------------


def ttft(services, rows: list[dict], n_questions: int) -> dict:
    from pydantic import SecretStr

    from assistant.services import Services
    from evals.run import pick
    from tests.support.openai_server import FOREVER, Reply, ScriptedOpenAIServer

    arrivals: list[float] = []
    lock = threading.Lock()

    def responder(body: dict) -> str:  # runs in the server thread when a request arrives
        with lock:
            arrivals.append(time.perf_counter())
        return LLM_TEXT

    answerable = [r for r in rows if r["type"] != "offcorpus"]
    questions = [r["question"] for r in pick(answerable, n_questions)]
    with ScriptedOpenAIServer() as server:
        server.default_reply = Reply(responder=responder, repeat=FOREVER)
        settings = services.settings.model_copy(update={
            "llm_base_url": server.base_url, "llm_api_key": SecretStr("bench"),
            "answer_mode": "llm", "llm_max_retries": 0, "llm_timeout_s": 30.0})
        llm_services = Services(settings, embedder=services.embedder, index=services.index)
        answerer = llm_services.answerer
        answerer.answer(ASK_Q, mode="llm")  # warm-up: openai/llama-index imports, client

        ttfts, totals, before, after, client_ftt, retrieve = [], [], [], [], [], []
        skipped = errors = invalid = 0
        for q in questions:
            with lock:
                arrivals.clear()
            first = final = None
            t0 = time.perf_counter()
            for event in answerer.stream(q, mode="llm"):
                if event.kind == "token" and first is None:
                    first = time.perf_counter()
                elif event.kind == "answer":
                    final = event.data
            total = time.perf_counter() - t0
            with lock:
                arrived = arrivals[0] if arrivals else None
            if arrived is None or first is None or final is None:
                skipped += 1  # abstained before asking the LLM: no request was made
                continue
            errors += bool(final.error)
            invalid += len(final.removed_citations)
            ttfts.append((first - t0) * 1000)
            totals.append(total * 1000)
            before.append((arrived - t0) * 1000)
            after.append((first - arrived) * 1000)
            if "first_token_ms" in final.timings_ms:
                client_ftt.append(final.timings_ms["first_token_ms"])
            if "retrieve_ms" in final.timings_ms:
                retrieve.append(final.timings_ms["retrieve_ms"])
    print(f"TTFT (scripted server, 0 delay): p50 {pct(ttfts, 50)} ms, p95 {pct(ttfts, 95)} ms "
          f"over {len(ttfts)} questions; before the request reaches the server p50 "
          f"{pct(before, 50)} ms, server + transport + client after it p50 {pct(after, 50)} ms")
    return {
        "questions": len(questions), "measured": len(ttfts),
        "abstained_before_llm": skipped, "errors": errors,
        "removed_citations": invalid,
        "ttft_ms": summary(ttfts),
        "total_ms": summary(totals),
        # Our pipeline alone: retrieval, coverage check, prompt, building and sending the
        # request (everything until the server has parsed it).
        "pipeline_before_request_ms": summary(before),
        "of_which_retrieve_ms": summary(retrieve),
        # Server sending its first chunk + loopback + openai/llama-index parsing the SSE.
        "server_and_client_to_first_token_ms": summary(after),
        # Answer.timings_ms.first_token_ms: from the LLM call to its first delta.
        "llm_call_first_token_ms": summary(client_ftt),
        "server": "tests.support.openai_server.ScriptedOpenAIServer in this process, "
                  "delay 0, chunk delay 0",
    }


# --- quality on the golden set ----------------------------------------------------------------


def quality(services, rows: list[dict]) -> dict:
    from assistant.answer import Answerer
    from evals.baselines import OURS, build_configs
    from evals.metrics import aggregate
    from evals.run import evaluate_row

    retr = build_configs(services.retriever, [OURS])[OURS]
    answerer = Answerer(retr, services.settings)
    scored = [evaluate_row(answerer, retr, row, "extractive") for row in rows]
    agg = aggregate([r["metrics"] for r in scored])
    answerable = [r for r in scored if r["gold"]]
    cites_gold = [r for r in answerable if set(r["cited"]) & set(r["gold"])]
    answered = [r for r in answerable if not r["abstained"]]
    off = [r for r in scored if not r["gold"]]
    out = {
        "questions": len(scored),
        "answerable": len(answerable),
        "off_corpus": len(off),
        "citation_validity": agg["citation_validity"],
        "citation_markers": sum(r["metrics"]["markers"] for r in scored),
        "removed_citations": sum(len(r["removed_citations"] or []) for r in scored),
        "answerable_citing_a_gold_paper": round(len(cites_gold) / len(answerable), 3),
        "answered_citing_a_gold_paper": round(
            sum(1 for r in answered if set(r["cited"]) & set(r["gold"])) / len(answered), 3)
        if answered else None,
        "abstention_precision": agg["abstention_precision"],
        "abstention_recall": agg["abstention_recall"],
        "abstention_f1": agg["abstention_f1"],
        "false_abstention_rate": agg["false_abstention_rate"],
        "off_corpus_abstained": sum(1 for r in off if r["abstained"]),
        "answerable_abstained": len(answerable) - len(answered),
        "citation_precision": agg["citation_precision"],
        "gold_recall": agg["gold_recall"],
        "errors": sum(1 for r in scored if r["error"]),
    }
    for key, value in out.items():
        if isinstance(value, float):
            out[key] = round(value, 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    add_data_dir_option(ap)
    ap.add_argument("--cold-runs", type=int, default=5)
    ap.add_argument("--ttft-questions", type=int, default=30)
    args = ap.parse_args()
    t_start = time.perf_counter()
    data_dir, out = seed_index(args)

    from assistant.services import Services
    from assistant.settings import Settings

    # Hermetic: no .env; extractive unless a figure says otherwise.
    settings = Settings(_env_file=None, data_dir=data_dir, answer_mode="extractive",
                        llm_base_url=None, llm_api_key=None)
    services = Services(settings)
    rows = golden()

    lat = extractive_latency(services.answerer, rows)
    out["extractive_latency"] = lat
    print(f"extractive answer, warm, in process: p50 {lat['all_ms']['p50']} ms, "
          f"p95 {lat['all_ms']['p95']} ms over {lat['all_ms']['n']} golden questions "
          f"(answered p50 {lat['answered_ms']['p50']} ms, abstained p50 "
          f"{lat['abstained_ms']['p50']} ms)")
    for stage, s in lat["stages_ms"].items():
        print(f"  {stage:16} p50 {s['p50']:>8} ms  p95 {s['p95']:>8} ms  (n={s['n']})")

    out["cold_start"] = cold_starts(data_dir, args.cold_runs)
    out["ttft_llm"] = ttft(services, rows, args.ttft_questions)

    q = quality(services, rows)
    out["golden_quality_extractive"] = q
    print(f"\ngolden set (extractive, {q['questions']} questions, scored as `assistant eval`):")
    print(f"  citation validity               {q['citation_validity']} "
          f"({q['citation_markers']} markers, {q['removed_citations']} removed)")
    print(f"  answerable citing a gold paper  {q['answerable_citing_a_gold_paper']} "
          f"(of {q['answerable']}; of those answered: {q['answered_citing_a_gold_paper']})")
    print(f"  abstention precision / recall   {q['abstention_precision']} / "
          f"{q['abstention_recall']} ({q['off_corpus_abstained']} of {q['off_corpus']} "
          f"off-corpus abstained, {q['answerable_abstained']} answerable abstained)")
    out["seconds"] = round(time.perf_counter() - t_start, 1)
    services.index.close()
    write("answers", out)


if __name__ == "__main__":
    main()
