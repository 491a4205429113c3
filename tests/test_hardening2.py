"""Hardening, round 2 (issue 17), through the real parts: the launched UI over raw HTTP,
the CLI on a real index, real Chroma and the real embedder.

* Bodies are capped on every route before they are read: 300 MB to /login (Content-Length
  or chunked) is refused after a few MB at most, nothing spooled to a temp file; 150 MB to
  the queue is refused; the login is throttled per client address.
* Questions over the UI's limit get a one-line message; the textbox carries the limit.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from assistant.settings import Settings
from tests.support.ui import PASSWORD, USER, App, client
from ui import guard
from ui.app import question_limit

pytestmark = pytest.mark.slow

MB = 1_000_000


@pytest.fixture(scope="module")
def ui_settings(tmp_path_factory) -> Settings:
    data_dir = tmp_path_factory.mktemp("hardening2") / "data"
    data_dir.mkdir()
    return Settings(_env_file=None, data_dir=data_dir, answer_mode="extractive")


@pytest.fixture
def auth_app(ui_settings):
    # Per test: each has its own login throttle.
    served = App(ui_settings, auth=f"{USER}:{PASSWORD}")
    yield served
    served.close()


class TempSpool:
    """The largest temp file this process (the in-process server) holds open meanwhile."""

    def __init__(self) -> None:
        self.tmp = os.path.realpath(tempfile.gettempdir())
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            for fd in os.listdir("/proc/self/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/self/fd/{fd}")
                    # Files open before the request (the session's index under /tmp) are
                    # not what the request spooled.
                    if target.startswith(self.tmp + "/") and target not in self._before:
                        self.peak = max(self.peak, os.stat(f"/proc/self/fd/{fd}").st_size)
            time.sleep(0.005)

    def __enter__(self) -> TempSpool:
        self._before = set()
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                self._before.add(os.readlink(f"/proc/self/fd/{fd}"))
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def push_body(port: int, path: str, total: int, *, chunked: bool) -> tuple[int, int]:
    """POST a multipart file part of `total` bytes; stop as soon as the server answers.

    Returns (status, bytes sent). The file part is what Starlette would spool to disk.
    """
    boundary = "b" + uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"password\"; "
            f"filename=\"x.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    headers = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
               f"Content-Type: multipart/form-data; boundary={boundary}"]
    headers.append("Transfer-Encoding: chunked" if chunked
                   else f"Content-Length: {len(head) + total + len(tail)}")
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sent, block = 0, b"A" * 65536
    reply = b""
    try:
        sock.sendall(("\r\n".join(headers) + "\r\n\r\n").encode())

        def send(data: bytes) -> None:
            sock.sendall(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)

        send(head)
        deadline = time.monotonic() + 120
        while sent < total and time.monotonic() < deadline:
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered before the body was complete
            try:
                send(block)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(block)
        else:
            with contextlib.suppress(OSError):
                send(tail)
                if chunked:
                    sock.sendall(b"0\r\n\r\n")
        sock.settimeout(30)
        with contextlib.suppress(OSError):
            while b"\r\n" not in reply:
                got = sock.recv(4096)
                if not got:
                    break
                reply += got
    finally:
        sock.close()
    assert reply.startswith(b"HTTP/1.1 "), reply[:200]
    return int(reply.split()[1]), sent


# --- 1. /login: capped before it is read, throttled ------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_300mb_login_body_is_refused_unread(auth_app, chunked):
    with TempSpool() as spool:
        status, sent = push_body(auth_app.port, "/login", 300 * MB, chunked=chunked)
    assert status == 413
    # Refused long before the end: what was sent sits in socket buffers, never on disk.
    assert sent < 40 * MB, sent
    assert spool.peak < MB, f"a {spool.peak:,}-byte temp file was written"
    # The login still works afterwards.
    ok = httpx.post(auth_app.url + "/login", data={"username": USER, "password": PASSWORD})
    assert ok.status_code == 200 and ok.cookies


def test_150mb_request_to_any_route_is_refused(auth_app):
    for path in ("/gradio_api/queue/join", "/gradio_api/call/ask", "/gradio_api/run/ask",
                 "/", "/gradio_api/component_server"):
        status, sent = push_body(auth_app.port, path, 150 * MB, chunked=False)
        assert status == 413, path
        assert sent < 40 * MB, (path, sent)
    # Signed in, a chunked body past the cap is cut off too.
    signed = httpx.Client(base_url=auth_app.url, timeout=30)
    assert signed.post("/login", data={"username": USER, "password": PASSWORD}).cookies

    def chunks():
        for _ in range(40):
            yield b"x" * 65536

    r = signed.post("/gradio_api/call/ask", content=chunks(),
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert signed.get("/config").status_code == 200  # and the app is fine


def test_wrong_password_flood_gets_429_per_client(auth_app):
    statuses = []
    with httpx.Client(base_url=auth_app.url, timeout=10) as c:
        for _ in range(40):
            r = c.post("/login", data={"username": USER, "password": "wrong"})
            statuses.append(r.status_code)
        # Throttled: even the right password waits now.
        late = c.post("/login", data={"username": USER, "password": PASSWORD})
    assert statuses.count(429) >= 40 - guard.LOGIN_BURST - 2, statuses
    assert statuses[0] != 429 and late.status_code == 429
    assert int(late.headers["retry-after"]) >= 1
    # Another client address (127.0.0.2 reaches the same loopback server) is not affected.
    other = httpx.Client(base_url=auth_app.url, timeout=10,
                         transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    r = other.post("/login", data={"username": USER, "password": PASSWORD})
    assert r.status_code == 200 and r.cookies


def test_throttle_refills():
    throttle = guard.LoginThrottle(burst=2, refill_s=0.2)
    assert throttle.wait("a") == 0 and throttle.wait("a") == 0
    assert throttle.wait("a") > 0 and throttle.wait("b") == 0
    time.sleep(0.25)
    assert throttle.wait("a") == 0


# --- 2. question length ----------------------------------------------------------------


def test_question_over_the_limit_gets_a_message(ui_settings):
    app = App(ui_settings)
    try:
        limit = question_limit(ui_settings)
        status, _, body = app.raw("GET", "/config")
        assert status == 200 and f'"max_length":{limit}' in body.decode().replace(" ", "")
        c = client(app.url + "/")
        out = c.predict("x " * limit, 6, "extractive", 0.1, api_name="/ask")
        answer = out[4]
        assert answer["error"] and f"limit is {limit:,}" in answer["error"]
        assert answer["sources"] == []  # never reached retrieval
        ok = c.predict("q?", 6, "extractive", 0.1, api_name="/ask")
        assert not ok[4]["error"]
    finally:
        app.close()


def test_question_limit_fits_the_body_cap(ui_settings):
    # Even fully JSON-escaped (\\uXXXX per character) the longest question fits the cap.
    assert question_limit(ui_settings) * 6 + 4096 < guard.MAX_BODY_BYTES


# --- 3. exports: no live link or image from a reply or an abstract ------------------------

BEACONS = [
    "[1](http://a.example/x)![b](http://127.0.0.1:8765/beacon.png)",
    "[1](//evil.example/phish)",
    "See `code [1](http://a.example/y)` and ``[2](//evil.example/z)``",
    "http://a.example/[1](//evil.example/w)![x](//evil.example/beacon2.png)",
    "[1]: http://evil.example/ref\n\nas shown [1] and [2][1]",
    "<http://evil.example/auto> <img src=//evil.example/i.png> [x]: //evil.example/r",
    "![b]( <//evil.example/s.png> ) [1] ( //evil.example/t )",
    "[text](javascript:alert(1)) [1][1] www.evil.example/u me@evil.example",
    "\\[1\\](//evil.example/esc) \\\\[1](//evil.example/dbl)",
    "![b](http://127.0.0.1:8765/beacon3.png \"t\")",
]


def beacon_answer(reply: str):
    from assistant.types import Answer, Citation, Source

    evil = "Abstract says " + " ".join(BEACONS)
    sources = [
        Source(n=1, paper_id="arxiv:2401.01234", title="Real [1](//evil.example/title) paper",
               score=0.9, abstract=evil, cited=True, quotes=[BEACONS[0], BEACONS[1]]),
        Source(n=2, paper_id="t:0123456789abcdef", title="Other ![t](//evil.example/t.png)",
               score=0.8, abstract=evil, cited=True, quotes=[BEACONS[4]]),
    ]
    return Answer(question="What? " + BEACONS[0], answer=reply, mode="llm",
                  citations=[Citation(n=1, paper_id=sources[0].paper_id, title="x")],
                  sources=sources, model="m ![m](//evil.example/m.png)")


def rendered_links(markdown: str) -> tuple[list[str], list[str]]:
    """(<a href>s, <img src>s) of the Markdown as CommonMark renders it, and as GFM-style
    linkify renders it (bare URLs too)."""
    from html.parser import HTMLParser

    import markdown_it

    hrefs: list[str] = []
    imgs: list[str] = []

    class Audit(HTMLParser):
        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "a":
                hrefs.append(attrs.get("href") or "")
            if tag == "img" or "src" in attrs:
                imgs.append(attrs.get("src") or "")

    gfm = markdown_it.MarkdownIt("gfm-like", {"html": True, "linkify": True})
    # GFM's extended autolinks: www., scheme:// and e-mail addresses, not bare domains
    # (linkify-it's fuzzy links); linkify-it's protocol-relative "//host" stays on.
    gfm.linkify.set({"fuzzy_link": False})
    for md in (markdown_it.MarkdownIt("commonmark", {"html": True}), gfm):
        Audit().feed(md.render(markdown))
    return hrefs, imgs


def test_export_has_no_live_link_or_image_but_the_source_links():
    from ui import render

    for reply in BEACONS:
        md = render.export_markdown([beacon_answer(reply + " [1]")])
        hrefs, imgs = rendered_links(md)
        assert imgs == [], (reply, imgs)
        # Only our own link to the cited arXiv paper (once per renderer).
        assert hrefs == ["https://arxiv.org/abs/2401.01234"] * 2, (reply, hrefs, md)
        # The reply is still readable: the characters are there, as text.
        assert "beacon" in md or "evil" in md or "javascript" in md
    # Everything at once, with the beacons also in the question, titles and quotes.
    md = render.export_markdown([beacon_answer("\n".join(BEACONS)) for _ in range(2)])
    hrefs, imgs = rendered_links(md)
    assert imgs == [] and set(hrefs) == {"https://arxiv.org/abs/2401.01234"}


def test_source_links_only_for_wellformed_arxiv_ids():
    from ui import render

    assert render.source_link("arxiv:2401.01234") == "https://arxiv.org/abs/2401.01234"
    assert render.source_link("arxiv:hep-th/9901001") == "https://arxiv.org/abs/hep-th/9901001"
    for bad in ("arxiv:2401.01234)(//evil", "arxiv://evil.example", "t:abc",
                "arxiv:2401.01234 x", "2401.01234"):
        assert render.source_link(bad) is None, bad


# --- 4. terminal control codes from the corpus ------------------------------------------

CODES = ("\x1b]0;pwned-title\x07", "\x1b]8;;http://evil.example/\x1b\\hidden\x1b]8;;\x1b\\",
         "\x1b]52;c;cm0gLXJmIH4=\x07", "\x1b[2J", "\x07", "\x08\x08\x08", "\x00", "\x9b31m",
         "\r", "\x7f", "\x1c")
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@pytest.fixture
def cli(monkeypatch, embedder):
    """invoke(*args, input=None) -> click Result; the session's (real) model is shared."""
    from typer.testing import CliRunner

    import assistant.embeddings
    from assistant import commands  # noqa: F401  (registers ask/chat)
    from assistant.cli import app

    monkeypatch.setattr(assistant.embeddings, "make_embedder", lambda settings: embedder)
    for name in list(os.environ):
        if name.startswith(("ASSISTANT_", "OPENAI_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(Path(__file__).resolve().parent)  # no .env of the developer's
    runner = CliRunner()

    def invoke(*args, input: str | None = None):
        return runner.invoke(app, [str(a) for a in args], input=input,
                             catch_exceptions=False)

    return invoke


def test_cli_strips_terminal_controls_from_corpus_text(cli, tmp_path, small_papers):


    evil = {
        "title": "Tidal Turbines " + "".join(CODES) + "for Estuary Power",
        "abstract": "Tidal stream turbines harvest estuary currents for electricity. "
                    + " ".join(CODES) + " We place tidal turbines where estuary currents "
                    "peak and report the yearly energy from tidal power in three estuaries.",
    }
    corpus = tmp_path / "evil\x1b]0;file-title\x07.jsonl"
    lines = [json.dumps(p) for p in small_papers] + [json.dumps(evil), "{not json"]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = ["--data-dir", str(tmp_path / "data")]

    ingested = cli("ingest", corpus, "-q", *data)
    assert ingested.exit_code == 0, ingested.output
    assert "file-title" in ingested.output and "not valid JSON" in ingested.output
    question = "How much energy do tidal turbines in estuaries produce?"
    runs = {
        "ingest": ingested,
        "search": cli("search", "tidal turbines estuary currents", *data),
        "ask": cli("ask", question, "--mode", "extractive", *data),
        "chat": cli("chat", "--mode", "extractive", *data, input=f"{question}\n/quit\n"),
        "stats": cli("stats", *data),
    }
    for name, result in runs.items():
        assert result.exit_code == 0, (name, result.output)
        found = sorted(set(CONTROL.findall(result.output)))
        assert not found, f"{name} printed control characters {found!r}"
    for name in ("search", "ask", "chat"):
        out = runs[name].output
        assert "Tidal Turbines" in out, (name, out)
        # The payloads are left as inert text: nothing is hidden from the reader.
        assert "pwned-title" in out and "52;c;" in out, (name, out)
    # --json keeps every character, escaped.
    raw = cli("search", "tidal turbines estuary currents", "--json", *data)
    assert "\\u001b]0;pwned-title\\u0007" in raw.stdout and "\x1b" not in raw.stdout


def test_terminal_safe_keeps_text_newlines_and_tabs():
    from assistant.console import terminal_safe

    assert terminal_safe("a\tb\nc\x1b[2Jd\x9be\u00e9\u2028") == "a\tb\nc[2Jde\u00e9\u2028"
    assert terminal_safe(3) == "3"


# --- 5. a running reader survives a rebuild and sees new papers -------------------------

NEW_PAPER = {
    "title": "Acoustic Monitoring of Honeybee Colonies with Hive-Mounted Microphones",
    "abstract": "Beekeepers lose colonies to swarming and queen failure they notice too late. "
                "We record the hum inside hives with cheap microphones and classify colony "
                "states from spectrograms; queenless colonies are detected four days before "
                "inspection finds them, across 62 hives over two seasons.",
}


def run_cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    """`assistant ARGS` in its own process (its own embedded Chroma client)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSISTANT_", "OPENAI_"))}
    env["ASSISTANT_DATA_DIR"] = str(data_dir)
    done = subprocess.run([sys.executable, "-m", "assistant.cli", *args], env=env,
                          cwd=data_dir.parent, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_running_services_survive_rebuild_and_see_new_papers(tmp_path, small_corpus,
                                                            small_papers, make_settings,
                                                            embedder):
    from assistant.index import ingest
    from assistant.services import Services

    settings = make_settings(tmp_path / "data", answer_mode="extractive")
    ingest(settings, [small_corpus], embedder, progress=False)
    services = Services(settings, embedder=embedder)
    paper = small_papers[1]

    def top(query: str, fusion: str | None = None) -> str:
        return services.retriever.search(query, k=3, fusion=fusion)[0].title

    assert top(paper["query"]) == paper["title"]
    before = services.answerer.answer(paper["query"], mode="extractive")
    assert not before.error
    generation = services.index.stats()["generation"]
    version = services.index.catalog.version

    run_cli("ingest", str(small_corpus), "--rebuild", "-q", data_dir=settings.data_dir)
    # The same objects keep answering, now from the new generation.
    assert top(paper["query"]) == paper["title"]
    assert top(paper["query"], fusion="dense") == paper["title"]
    after = services.answerer.answer(paper["query"], mode="extractive")
    assert not after.error and after.sources, after.error
    assert services.index.stats()["generation"] == generation + 1
    # Versions count on across generations: caches keyed by version see the change.
    assert services.index.catalog.version > version
    assert not (settings.data_dir / f"gen-{generation}").exists()  # the old one was dropped

    # A normal ingest in another process adds a paper: found by a dense-only query.
    more = tmp_path / "more.jsonl"
    more.write_text(json.dumps(NEW_PAPER) + "\n", encoding="utf-8")
    run_cli("ingest", str(more), "-q", data_dir=settings.data_dir)
    query = "listening to beehives to tell when the queen is gone"
    assert top(query, fusion="dense") == NEW_PAPER["title"]
    assert top(query, fusion="bm25") == NEW_PAPER["title"]
    assert services.index.stats()["papers"] == len(small_papers) + 1
    services.index.close()



# --- 6. ingest: bounded batches, bounded records, per-line errors, safe prune -------------

LONG_WORDS = ("Sparse attention kernels trade exactness for speed on long sequences, and "
              "we measure where the trade stops paying off across many model sizes. ")


def catalog_chunks(data_dir: Path) -> int:
    import sqlite3

    from assistant.index import Manifest

    manifest = Manifest.read(data_dir)
    db = data_dir / f"gen-{manifest.generation}" / "catalog.sqlite"
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
    finally:
        con.close()


def test_batches_are_bounded_by_chunks_not_papers(tmp_path, make_settings, embedder):
    """Long papers: each batch commits about write_batch chunks, never 8 papers' worth."""
    from assistant.index import Index, ingest, max_write

    corpus = tmp_path / "long.jsonl"
    corpus.write_text("".join(json.dumps({"title": f"Long paper {i}",
                                          "abstract": LONG_WORDS * 12}) + "\n"
                              for i in range(6)), encoding="utf-8")
    settings = make_settings(tmp_path / "data", chunk_size=48, chunk_overlap=0,
                             write_batch=16)
    committed: list[int] = []
    report = ingest(settings, [corpus], embedder, progress=False,
                    on_progress=lambda done, total: committed.append(
                        catalog_chunks(settings.data_dir)))
    per_paper = report.chunks_embedded // 6
    assert per_paper >= 6, report.chunks_embedded  # long papers: several chunks each
    sizes = [b - a for a, b in zip([0, *committed], committed, strict=False)]
    assert sum(sizes) == report.chunks_embedded
    # Every batch stops once it holds write_batch chunks: at most one paper over.
    assert max(sizes) < settings.write_batch + per_paper, sizes
    index = Index.open(settings)
    try:
        assert len(index.collection.get(include=[])["ids"]) == report.chunks_embedded
        client_max = index.collection._client.get_max_batch_size()
        assert 0 < max_write(index) <= client_max
    finally:
        index.close()


def test_oversized_record_and_bad_utf8_line_are_skipped_alone(tmp_path, make_settings,
                                                              embedder, small_papers):
    from assistant import corpus as corpus_mod
    from assistant.index import Index, ingest

    path = tmp_path / "mixed.jsonl"
    lines = [json.dumps(p).encode() for p in small_papers[:3]]
    huge = {"title": "Huge", "abstract": "word " * (corpus_mod.MAX_RECORD_BYTES // 4)}
    lines.insert(1, json.dumps(huge).encode())  # line 2
    lines.insert(3, json.dumps({"title": "Café", "abstract": "x " * 60}).encode("utf-8")
                 .replace(b"Caf\\u00e9", b"Caf\xe9"))  # line 4: latin-1 byte
    path.write_bytes(b"\n".join(lines) + b"\n")
    settings = make_settings(tmp_path / "data")
    report = ingest(settings, [path], embedder, progress=False)
    assert report.papers == 3 and report.new == 3 and not report.failed_files
    reasons = [str(s) for s in report.skipped]
    assert len(reasons) == 2, reasons
    assert reasons[0].startswith("mixed.jsonl:2: record of 1.") and "limit" in reasons[0]
    assert reasons[1].startswith("mixed.jsonl:4: not valid UTF-8")
    index = Index.open(settings)
    try:
        assert index.stats()["papers"] == 3
    finally:
        index.close()


def test_prune_keeps_a_paper_whose_line_became_unreadable(tmp_path, make_settings, embedder,
                                                          small_papers):
    from assistant.index import Index, ingest

    path = tmp_path / "p.jsonl"
    rows = [json.dumps(p) for p in small_papers[:4]]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    settings = make_settings(tmp_path / "data")
    ingest(settings, [path], embedder, progress=False)
    # Line 2 breaks (truncated JSON), line 4's paper is really gone.
    path.write_text("\n".join([rows[0], rows[1][:40], rows[2]]) + "\n", encoding="utf-8")
    report = ingest(settings, [path], embedder, prune=True, progress=False)
    assert report.pruned == 0 and report.prune_kept == 2
    assert "Not pruned: 2 papers" in report.summary()
    index = Index.open(settings)
    try:
        assert index.stats()["papers"] == 4
    finally:
        index.close()
    # Fixed, the file prunes again.
    path.write_text("\n".join(rows[:3]) + "\n", encoding="utf-8")
    report = ingest(settings, [path], embedder, prune=True, progress=False)
    assert report.pruned == 1 and report.prune_kept == 0


def test_streamed_reader_does_not_hold_the_file(tmp_path):
    """iter_file yields the first paper of a big file before reading the rest of it."""
    from assistant.corpus import iter_file

    path = tmp_path / "big.jsonl"
    record = json.dumps({"title": "T", "abstract": LONG_WORDS}) + "\n"
    with path.open("w", encoding="utf-8") as fh:
        for i in range(20_000):
            fh.write(record.replace('"T"', f'"T{i}"'))
    read: list[int] = []
    stream = iter_file(path, read.append)
    first = next(stream)
    assert first.title == "T0"
    assert sum(read) < 64 * 1024 < path.stat().st_size // 40
    assert sum(1 for _ in stream) == 19_999
    assert sum(read) == path.stat().st_size


# --- 7. bad settings and replies: one line, never a traceback ---------------------------


@pytest.fixture
def raw_cli(monkeypatch, tmp_path):
    """invoke(*args, **env) -> click Result: the real CLI, hermetic environment."""
    from typer.testing import CliRunner

    from assistant import commands  # noqa: F401  (registers ask/chat/ui)
    from assistant.cli import app

    for name in list(os.environ):
        if name.startswith(("ASSISTANT_", "OPENAI_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env of the developer's

    def invoke(*args, **env: str):
        return CliRunner().invoke(app, [str(a) for a in args], env=env)

    return invoke


def one_line_error(result, needle: str) -> str:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    out = result.output.strip()
    assert "Traceback" not in out and len(out.splitlines()) == 1, out
    assert out.startswith("error: ") and needle in out, out
    return out


def test_chunk_overlap_not_below_size_is_refused_before_writing(raw_cli, tmp_path,
                                                                small_corpus):
    data = tmp_path / "data"
    result = raw_cli("ingest", small_corpus, "-q", "--data-dir", data,
                     ASSISTANT_CHUNK_SIZE="64", ASSISTANT_CHUNK_OVERLAP="100")
    one_line_error(result, "ASSISTANT_CHUNK_OVERLAP (100) must be smaller than "
                           "ASSISTANT_CHUNK_SIZE (64)")
    assert not (data / "manifest.json").exists() and not list(data.glob("gen-*"))
    invalid = raw_cli("ingest", small_corpus, "-q", "--data-dir", data,
                      ASSISTANT_CHUNK_SIZE="ten")
    one_line_error(invalid, "ASSISTANT_CHUNK_SIZE")
    assert "'ten'" in invalid.output


def test_malformed_openai_base_url_is_one_line(raw_cli, tmp_path, small_corpus,
                                               make_settings, embedder):
    from assistant.index import ingest
    from ui.app import build_app, endpoint_status

    settings = make_settings(tmp_path / "data")
    ingest(settings, [small_corpus], embedder, progress=False)
    bad = "http://[bad"
    for args in (["ask", "How do drones spot coral bleaching?", "--mode", "llm"],
                 ["ask", "How do drones spot coral bleaching?", "--mode", "llm", "--json"]):
        result = raw_cli(*args, "--data-dir", settings.data_dir, OPENAI_BASE_URL=bad)
        assert "Traceback" not in result.output and result.exception is None or \
            isinstance(result.exception, SystemExit), repr(result.exception)
        assert "OPENAI_BASE_URL is not a valid URL" in result.output, result.output
    # The UI builds and says so instead of failing to start.
    ui_settings = make_settings(tmp_path / "data", llm_base_url=bad)
    assert "&#91;bad" in endpoint_status(ui_settings)
    build_app(ui_settings, object()).close()


class HtmlHandler(__import__("http.server").server.BaseHTTPRequestHandler):
    def _html(self):
        body = b"<!doctype html><html><body><h1>Welcome to nginx!</h1></body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _html

    def log_message(self, *args):
        pass


def test_embeddings_endpoint_answering_html_is_one_line(raw_cli, tmp_path, small_corpus):
    from http.server import ThreadingHTTPServer

    server = ThreadingHTTPServer(("127.0.0.1", 0), HtmlHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        data = tmp_path / "data"
        result = raw_cli("ingest", small_corpus, "-q", "--data-dir", data,
                         ASSISTANT_EMBED_BACKEND="openai",
                         ASSISTANT_EMBED_BASE_URL=f"http://127.0.0.1:{server.server_port}/v1",
                         ASSISTANT_LLM_MAX_RETRIES="0")
        one_line_error(result, "answered, but not with embeddings")
        assert not (data / "manifest.json").exists()
        malformed = raw_cli("ingest", small_corpus, "-q", "--data-dir", data,
                            ASSISTANT_EMBED_BACKEND="openai",
                            ASSISTANT_EMBED_BASE_URL="http://[bad")
        one_line_error(malformed, "ASSISTANT_EMBED_BASE_URL is not a valid URL")
    finally:
        server.shutdown()


def test_auth_on_the_command_line_is_discouraged(raw_cli):
    helped = raw_cli("ui", "--help")
    assert helped.exit_code == 0
    text = " ".join(helped.output.split())
    assert "ASSISTANT_UI_AUTH" in text and "ps" in text
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert "prefer `ASSISTANT_UI_AUTH`" in readme


def test_exports_and_their_cached_copies_are_private(ui_settings):
    app = App(ui_settings)
    try:
        c = client(app.url + "/")
        out = c.predict("q?", 6, "extractive", 0.1, api_name="/ask")
        assert out[3]  # the export file, downloaded by gradio_client
        status, _, body = app.raw("GET", "/config")
        cached = [comp["props"]["value"]["path"]
                  for comp in json.loads(body)["components"]
                  if comp.get("type") == "downloadbutton"]
        assert cached and os.path.exists(cached[0])
        for path in cached:
            assert os.stat(path).st_mode & 0o077 == 0, oct(os.stat(path).st_mode)
        exports = list(Path(tempfile.gettempdir()).glob("paper-assistant-export-*/*.md"))
        mine = [p for p in exports if p.stat().st_uid == os.getuid()]
        assert mine and all(p.stat().st_mode & 0o077 == 0 for p in mine
                            if time.time() - p.stat().st_mtime < 60)
    finally:
        app.close()
