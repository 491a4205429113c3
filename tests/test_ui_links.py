"""The UI's links out and rough edges: source cards open their paper (arXiv, Semantic
Scholar) in a new tab with rel="noopener noreferrer"; closest matches under an abstention
carry no relevance bar; LLM mode without an endpoint speaks to the web user and names no
model; the API names its inputs; `--help` texts are whole and say what `ui` does."""

from __future__ import annotations

from html.parser import HTMLParser

from typer.testing import CliRunner

from assistant.types import Answer, Source
from ui import render

Q_MEMORY = "Which optimizers reduce memory use when training large language models?"


class Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[dict[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.anchors.append(dict(attrs))


def anchors(html: str) -> list[dict[str, str | None]]:
    parser = Anchors()
    parser.feed(html)
    return parser.anchors


def outbound(html: str) -> list[dict[str, str | None]]:
    return [a for a in anchors(html) if not (a.get("href") or "").startswith("#")]


def source(n: int, url: str, **kw) -> Source:
    return Source(n=n, paper_id=f"t:{n}", title=f"Paper <{n}> & co", score=0.94,
                  abstract="An abstract.", url=url, **kw)


def test_cards_link_out_in_a_new_tab_without_opener_or_referrer():
    answer = Answer(question="q", answer="It works [1].", mode="extractive", sources=[
        source(1, "https://arxiv.org/abs/2401.12345", cited=True),
        source(2, "https://arxiv.org/search/?query=Paper+2&searchtype=title")])
    links = outbound(render.source_cards_html(answer))
    hrefs = [a["href"] for a in links]
    assert hrefs.count("https://arxiv.org/abs/2401.12345") == 2  # title and "arXiv"
    assert "https://arxiv.org/search/?query=Paper+2&searchtype=title" in hrefs
    assert sum(h.startswith("https://www.semanticscholar.org/search?q=Paper") for h in hrefs) == 2
    for a in links:
        assert a["target"] == "_blank" and a["rel"] == "noopener noreferrer", a
        assert a["href"].startswith("https://")


def test_a_url_that_is_not_https_is_never_linked():
    answer = Answer(question="q", answer="x [1].", mode="extractive",
                    sources=[source(1, "javascript:alert(1)", cited=True)])
    html = render.source_cards_html(answer)
    assert "javascript:" not in html
    assert [a["href"].split("?")[0] for a in outbound(html)] == [
        "https://www.semanticscholar.org/search"]


def test_closest_matches_under_an_abstention_have_no_relevance_bar():
    sources = [source(1, "https://arxiv.org/abs/2401.12345")]
    abstained = Answer(question="Sourdough?", answer="The corpus does not cover this.",
                       mode="extractive", abstained=True, sources=sources)
    html = render.source_cards_html(abstained)
    assert "Closest matches" in html and "not evidence" in html
    assert "src-bar" not in html and "relevance 0.94" not in html
    assert outbound(html)  # they still open
    cited = Answer(question="q", answer="x [1].", mode="extractive",
                   sources=[source(1, "https://arxiv.org/abs/2401.12345", cited=True)])
    assert "src-bar" in render.source_cards_html(cited)


def test_the_footer_names_a_model_only_when_it_was_called():
    never = Answer(question="q", answer="⚠ No endpoint.", mode="llm", model="gpt-4o-mini",
                   error="No endpoint.", timings_ms={"total_ms": 12.0})
    assert "gpt-4o-mini" not in render.facts_line(never)
    called = never.model_copy(update={"timings_ms": {"total_ms": 900.0, "generate_ms": 800.0}})
    assert "gpt-4o-mini" in render.facts_line(called)


def test_llm_mode_without_an_endpoint_speaks_to_the_web_user(seed_settings, seed_services):
    from ui.app import ChatUI

    settings = seed_settings.model_copy(update={"llm_base_url": None, "llm_api_key": None})
    ui = ChatUI(settings, seed_services)
    *_, last = list(ui.ask("What is prefix caching?", [], 6, "llm", 0.1))
    chat, answers, _cards, _box, _export, answer_json = last
    text = chat[-1]["content"]
    assert "Answer options" in text and "extractive" in text
    assert "--mode" not in text and "flag" not in text
    assert answer_json["error"] and settings.llm_model not in text


def test_ui_answer_sources_carry_urls_and_cards_link_them(seed_settings, seed_services):
    from ui.app import ChatUI

    ui = ChatUI(seed_settings, seed_services)
    *_, last = list(ui.ask(Q_MEMORY, [], 6, "extractive", 0.1))
    answers, cards, answer_json = last[1], last[2], last[5]
    assert answer_json["citations"]
    for item in answer_json["citations"] + answer_json["sources"]:
        assert item["url"].startswith("https://arxiv.org/"), item
    hrefs = {a["href"] for a in outbound(cards)}
    assert {s.url for s in answers[-1].sources} <= hrefs


def test_api_page_names_the_question_box(seed_settings, seed_services):
    from ui.app import build_app

    info = build_app(seed_settings, seed_services).get_api_info()
    params = [p["parameter_name"] for p in info["named_endpoints"]["/ask"]["parameters"]]
    assert params[0] == "question"
    assert not any(p.startswith("parameter_") for p in params), params


def test_help_lists_whole_descriptions_and_ui_says_it_serves():
    from assistant import commands  # noqa: F401  (registers ask/chat/ui/mcp)
    from assistant.cli import app

    runner = CliRunner()
    top = runner.invoke(app, ["--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert top.exit_code == 0
    commands_part = top.stdout.split("Commands:")[1]
    assert "..." not in commands_part
    assert "(only new or changed" in commands_part and "papers are embedded)" in commands_part
    assert "mcp" in commands_part
    ui_help = runner.invoke(app, ["ui", "--help"], terminal_width=80).stdout
    assert "Serve the chat" in ui_help and "Open the chat in the browser" not in ui_help
    assert "public" in ui_help and "--open" in ui_help


def test_ui_command_says_where_it_serves_and_names_its_flags(seed_settings):
    """The real `assistant ui`: one line with the address and the flags, not Gradio's advice
    to edit launch(); the page answers at that address."""
    import os
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).parent / "assistant"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSISTANT_", "OPENAI_"))}
    proc = subprocess.Popen(
        [str(exe), "ui", "--port", str(port), "--data-dir", str(seed_settings.data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        cwd=seed_settings.data_dir)
    try:
        first = ""
        while "Serving" not in first:  # stderr is merged: skip any warning printed before
            line = proc.stdout.readline()
            assert line, "the command ended before saying where it serves"
            first = line
        assert f"Serving the chat on http://127.0.0.1:{port}/" in first, first
        assert "--share" in first
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "the UI did not start"
            time.sleep(0.5)
    finally:
        proc.terminate()
        rest, _ = proc.communicate(timeout=60)
    assert "launch()" not in first + rest and "share=True" not in first + rest
