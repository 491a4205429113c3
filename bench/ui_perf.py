"""Chat UI figures (issue: the Gradio chat).

The app is served for real: `assistant ui --port P --data-dir D` as a subprocess on a free
local port, driven by Playwright in Debian's headless Chromium (/usr/bin/chromium) and by
gradio_client.

- page load to interactive (5 runs, a fresh browser context each, i.e. a first visit):
  from navigation start to the question box being visible and enabled and the app's script
  (ui/static/app.js) having run, read from the page's own clock (performance.now()), with
  the navigation timing (first byte, DOMContentLoaded, load) beside it;
- submit to first visible token in the browser: Enter pressed in the question box (a
  keydown listener stamps it) to the assistant bubble first showing answer text (the
  streaming cursor, or the finished answer), stamped by a MutationObserver; and to the
  finished answer. Extractive mode, and LLM mode in a second app whose OPENAI_BASE_URL is
  the scripted OpenAI-compatible server of tests/support, started in this process (no
  delay before the first chunk). 5 runs each after one warm-up question (reported apart:
  the first question after start loads the embedding model);
- memory of the app process (VmRSS, and VmHWM = peak, from /proc; children included in
  the RSS) after startup, after the page loads and after all runs;
- 10 concurrent chats through gradio_client (a thread and a session each, 2 turns: a golden
  question, then a follow-up), extractive mode: errors, p50/p95 latency per turn (submit to
  the final output); the same 2 turns by one chat alone first, for comparison. The app's
  queue runs ASSISTANT_UI_CONCURRENCY (default 4) answers at once; the rest wait.

The index is built once in --data-dir (default: the folder bench/answers.py uses,
$TMPDIR/paper-assistant-bench-index-<embed backend>) and reused when it exists.

Usage: .venv/bin/python bench/ui_perf.py [--data-dir DIR] [--runs 5] [--chats 10]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.answers import child_env  # noqa: E402
from bench.common import (  # noqa: E402
    BIN,
    ROOT,
    add_data_dir_option,
    golden,
    pct,
    seed_index,
    write,
)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 120_000
FOLLOW_UP = "What does the second paper propose?"
LLM_TEXT = ("Several optimizers shrink their state to save memory during training [1]. "
            "Others trade extra communication for a smaller footprint per device [2]. "
            "Projecting gradients to a low rank is another way to cut memory [1].")

# Stamps, on the page's clock, when the question box is usable and when app.js has run.
INTERACTIVE_PROBE = """
(() => {
  const box = () => {
    const ta = document.querySelector('#pa-question textarea');
    if (!ta || ta.disabled) return false;
    const r = ta.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  };
  const tick = () => {
    if (window.__benchBox === undefined && box()) window.__benchBox = performance.now();
    if (window.__benchJs === undefined && window.__paperAssistantCite === true)
      window.__benchJs = performance.now();
    if (window.__benchBox === undefined || window.__benchJs === undefined) setTimeout(tick, 4);
  };
  tick();
})();
"""

# Per turn: Enter in the question box -> first answer text in the last bot bubble -> done.
TURN_PROBE = """
() => {
  window.__bench = {submit: null, first: null, done: null, firstText: null};
  if (window.__benchHooked) return;
  window.__benchHooked = true;
  document.addEventListener('keydown', (e) => {
    const b = window.__bench;
    if (e.key === 'Enter' && !e.shiftKey && e.target.closest
        && e.target.closest('#pa-question') && b.submit === null) b.submit = performance.now();
  }, true);
  const check = () => {
    const b = window.__bench;
    if (b.submit === null) return;
    const bots = document.querySelectorAll('#pa-chat [data-testid="bot"]');
    const last = bots[bots.length - 1];
    if (!last) return;
    const text = (last.innerText || '').trim();
    const final = !!last.querySelector('.facts');
    if (b.first === null && (text.includes('\u258d') || final || text.startsWith('\u26a0'))) {
      b.first = performance.now();
      b.firstText = text.slice(0, 100);
    }
    if (b.done === null && (final || text.startsWith('\u26a0'))) b.done = performance.now();
  };
  new MutationObserver(check).observe(document.body,
    {subtree: true, childList: true, characterData: true});
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- memory --------------------------------------------------------------------------------


def _status(pid: int) -> dict[str, int]:
    out = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "PPid"):
                out[key] = int(value.split()[0])
    return out


def descendants(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            ppid = _status(int(entry.name)).get("PPid")
            if ppid:
                parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def memory(pid: int) -> dict:
    """RSS of the app process (+ its children) and its peak, MB."""
    me = _status(pid)
    kids = sum(_status(k).get("VmRSS", 0) for k in descendants(pid))
    return {"rss_mb": round(me.get("VmRSS", 0) / 1024, 1),
            "peak_rss_mb": round(me.get("VmHWM", 0) / 1024, 1),
            "children_rss_mb": round(kids / 1024, 1)}


# --- the app ---------------------------------------------------------------------------------


@contextlib.contextmanager
def app(data_dir: Path, log_dir: Path, name: str, **env: str) -> Iterator[dict]:
    """`assistant ui` on a free port; yields {"url", "pid", "startup_s"}."""
    port = free_port()
    log = (log_dir / f"{name}.log").open("w")
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(BIN / "assistant"), "ui", "--port", str(port),
                             "--data-dir", str(data_dir)],
                            env=child_env(data_dir, **env), cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the {name} app exited ({proc.returncode}):\n"
                                   + (log_dir / f"{name}.log").read_text()[-3000:])
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.perf_counter() - t0 > 180:
                raise RuntimeError(f"the {name} app did not answer on {url} within 180 s")
            time.sleep(0.1)
        startup = time.perf_counter() - t0
        print(f"{name} app up on {url} in {startup:.1f} s (pid {proc.pid})")
        yield {"url": url, "pid": proc.pid, "startup_s": round(startup, 2)}
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


# --- browser ---------------------------------------------------------------------------------


def new_context(browser):
    """A browser context, and the list of non-local URLs its pages request (recorded, not
    routed: interception would slow every request down)."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    external: list[str] = []

    def note(request) -> None:
        if not request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:",
                                       "blob:")):
            external.append(request.url)

    context.on("request", note)
    return context, external


def page_loads(browser, url: str, runs: int) -> dict:
    rows, blocked_all = [], []
    for _ in range(runs):
        context, blocked = new_context(browser)
        context.add_init_script(INTERACTIVE_PROBE)
        page = context.new_page()
        page.goto(url, wait_until="commit")
        page.wait_for_function("window.__benchBox !== undefined", timeout=TIMEOUT_MS,
                               polling=50)
        with contextlib.suppress(Exception):  # app.js missing: report the box alone
            page.wait_for_function("window.__benchJs !== undefined", timeout=30_000,
                                   polling=50)
        page.wait_for_load_state("load")
        f = page.evaluate("""() => {
            const n = performance.getEntriesByType('navigation')[0];
            return {box: window.__benchBox, js: window.__benchJs ?? null,
                    first_byte: n.responseStart, dom_content_loaded: n.domContentLoadedEventEnd,
                    load: n.loadEventEnd,
                    resources: performance.getEntriesByType('resource').length};
        }""")
        f["interactive"] = max(f["box"], f["js"] or 0)
        rows.append(f)
        blocked_all += blocked
        context.close()

    def col(key: str) -> list[float]:
        return [r[key] for r in rows if r[key] is not None]

    return {
        "runs": runs,
        "interactive_ms": {"p50": pct(col("interactive"), 50),
                           "runs": [round(v) for v in col("interactive")]},
        "question_box_ready_ms_p50": pct(col("box"), 50),
        "app_js_ran_ms_p50": pct(col("js"), 50) if col("js") else None,
        "first_byte_ms_p50": pct(col("first_byte"), 50),
        "dom_content_loaded_ms_p50": pct(col("dom_content_loaded"), 50),
        "load_event_ms_p50": pct(col("load"), 50),
        "resources_per_load": rows[0]["resources"] if rows else None,
        "external_requests": sorted(set(blocked_all)),
        "cache": "cold (a fresh browser context per run)",
    }


def browser_turns(browser, url: str, questions: list[str], warmup: str) -> dict:
    """One page: a warm-up question, then one measured turn per question (new chat between)."""
    context, _ = new_context(browser)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    box = page.locator("#pa-question textarea")
    box.wait_for(state="visible")
    page.evaluate(TURN_PROBE)

    def turn(question: str) -> dict:
        page.evaluate(TURN_PROBE)  # reset the stamps (the hooks are installed once)
        box.fill(question)
        box.press("Enter")
        page.wait_for_function("window.__bench.done !== null", timeout=TIMEOUT_MS, polling=50)
        b = page.evaluate("window.__bench")
        page.locator("#pa-new").click()
        page.wait_for_function(
            "document.querySelectorAll('#pa-chat [data-testid=\"bot\"]').length === 0",
            timeout=TIMEOUT_MS, polling=50)
        return {"first_token_ms": round(b["first"] - b["submit"], 1),
                "done_ms": round(b["done"] - b["submit"], 1), "first_text": b["firstText"]}

    first = turn(warmup)
    runs = [turn(q) for q in questions]
    context.close()
    ftt = [r["first_token_ms"] for r in runs]
    done = [r["done_ms"] for r in runs]
    return {"first_question_after_start": {k: first[k] for k in ("first_token_ms", "done_ms")},
            "first_token_ms": {"p50": pct(ftt, 50), "runs": ftt},
            "done_ms": {"p50": pct(done, 50), "runs": done},
            "first_text_seen": runs[0]["first_text"] if runs else None}


# --- concurrent chats --------------------------------------------------------------------------


def concurrent_chats(url: str, questions: list[str], chats: int) -> dict:
    from gradio_client import Client

    barrier = threading.Barrier(chats)
    lock = threading.Lock()
    turns: dict[int, list[float]] = {1: [], 2: []}
    errors: list[str] = []

    def ask(client, question: str) -> dict:
        job = client.submit(question, 6, "extractive", 0.1, api_name="/ask")
        return job.result(timeout=300)[4]

    def chat(i: int) -> None:
        try:
            client = Client(url, verbose=False, analytics_enabled=False)
        except Exception as e:  # noqa: BLE001
            with lock:
                errors.append(f"chat {i} connect: {type(e).__name__}: {e}"[:300])
            barrier.abort()
            return
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=120)
        for n, question in ((1, questions[i % len(questions)]), (2, FOLLOW_UP)):
            t0 = time.perf_counter()
            try:
                answer = ask(client, question)
                ms = (time.perf_counter() - t0) * 1000
                with lock:
                    turns[n].append(ms)
                    if not answer or answer.get("error"):
                        errors.append(f"chat {i} turn {n}: {(answer or {}).get('error')}"[:300])
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append(f"chat {i} turn {n}: {type(e).__name__}: {e}"[:300])
        with contextlib.suppress(Exception):
            client.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=chat, args=(i,)) for i in range(chats)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    every = turns[1] + turns[2]
    return {
        "chats": chats, "turns_per_chat": 2, "turns_completed": len(every),
        "errors": len(errors), "error_messages": errors[:10],
        "turn_latency_ms": {"p50": pct(every, 50), "p95": pct(every, 95),
                            "max": round(max(every), 1) if every else None},
        "first_turn_ms": {"p50": pct(turns[1], 50), "p95": pct(turns[1], 95)},
        "follow_up_turn_ms": {"p50": pct(turns[2], 50), "p95": pct(turns[2], 95)},
        "wall_s": round(wall, 2),
    }


# --- main --------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser()
    add_data_dir_option(ap)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--chats", type=int, default=10)
    args = ap.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit("Chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    from assistant.settings import Settings
    from tests.support.openai_server import FOREVER, Reply, ScriptedOpenAIServer

    t_start = time.perf_counter()
    data_dir, out = seed_index(args)
    defaults = Settings(_env_file=None)
    out["queue"] = {"ui_concurrency": defaults.ui_concurrency,
                    "ui_max_queue": defaults.ui_max_queue}
    rows = [r for r in golden() if r["type"] in ("lookup", "detail", "theme")]
    questions = [r["question"] for r in rows[: args.runs]]
    warmup = rows[-1]["question"]
    chat_questions = [r["question"] for r in rows[::max(1, len(rows) // args.chats)]]
    log_dir = Path(tempfile.mkdtemp(prefix="bench-ui-"))

    with sync_playwright() as pw, ScriptedOpenAIServer() as server:
        server.default_reply = Reply(text=LLM_TEXT, chunk_delay_s=0.01, repeat=FOREVER)
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)

        with app(data_dir, log_dir, "extractive", ASSISTANT_ANSWER_MODE="extractive") as a:
            time.sleep(1.0)
            mem = {"after_startup": memory(a["pid"])}
            loads = page_loads(browser, a["url"], args.runs)
            out["page_load"] = loads
            mem["after_page_loads"] = memory(a["pid"])
            print(f"page load to interactive: p50 {loads['interactive_ms']['p50']:.0f} ms "
                  f"(runs {loads['interactive_ms']['runs']}; DOMContentLoaded p50 "
                  f"{loads['dom_content_loaded_ms_p50']:.0f} ms, load p50 "
                  f"{loads['load_event_ms_p50']:.0f} ms)")
            ext = browser_turns(browser, a["url"], questions, warmup)
            mem["after_browser_turns"] = memory(a["pid"])
            print(f"extractive, submit -> first visible token: p50 "
                  f"{ext['first_token_ms']['p50']:.0f} ms (runs {ext['first_token_ms']['runs']})"
                  f"; -> finished answer p50 {ext['done_ms']['p50']:.0f} ms; first question "
                  f"after start {ext['first_question_after_start']['first_token_ms']:.0f} ms")
            alone = concurrent_chats(a["url"], chat_questions, 1)
            print(f"one chat alone through gradio_client: turn latency p50 "
                  f"{alone['turn_latency_ms']['p50']:.0f} ms ({alone['errors']} errors)")
            conc = concurrent_chats(a["url"], chat_questions, args.chats)
            mem["after_concurrent_chats"] = memory(a["pid"])
            print(f"{args.chats} concurrent chats x 2 turns: {conc['errors']} errors, turn "
                  f"latency p50 {conc['turn_latency_ms']['p50']:.0f} ms, p95 "
                  f"{conc['turn_latency_ms']['p95']:.0f} ms (wall {conc['wall_s']} s)")
            out["extractive_app"] = {"startup_s": a["startup_s"], "submit_to_token": ext,
                                     "memory": mem}
            out["concurrent_chats"] = conc
            out["one_chat_alone"] = alone
            print("extractive app memory (MB): " + ", ".join(
                f"{k} {v['rss_mb']} (peak {v['peak_rss_mb']})" for k, v in mem.items()))

        with app(data_dir, log_dir, "llm", ASSISTANT_ANSWER_MODE="llm",
                 OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="bench",
                 ASSISTANT_LLM_MAX_RETRIES="0") as b:
            time.sleep(1.0)
            mem = {"after_startup": memory(b["pid"])}
            llm = browser_turns(browser, b["url"], questions, warmup)
            mem["after_browser_turns"] = memory(b["pid"])
            chat_requests = len(server.chat_requests())
            print(f"LLM (scripted server), submit -> first visible token: p50 "
                  f"{llm['first_token_ms']['p50']:.0f} ms (runs {llm['first_token_ms']['runs']})"
                  f"; -> finished answer p50 {llm['done_ms']['p50']:.0f} ms")
            print("LLM app memory (MB): " + ", ".join(
                f"{k} {v['rss_mb']} (peak {v['peak_rss_mb']})" for k, v in mem.items()))
            out["llm_app"] = {"startup_s": b["startup_s"], "submit_to_token": llm,
                              "memory": mem, "llm_requests": chat_requests,
                              "server": "tests.support.openai_server in the bench process, "
                                        "no delay before the first chunk, 10 ms between "
                                        "chunks"}
        browser.close()
    out["seconds"] = round(time.perf_counter() - t_start, 1)
    shutil.rmtree(log_dir, ignore_errors=True)
    write("ui_perf", out)


if __name__ == "__main__":
    main()
