"""The UI in a real headless Chromium (Debian's, driven by Playwright; no browser download):
ask, watch the answer stream in, follow [n] links to their source cards, and check that a
malicious abstract stays inert text. Screenshots go to test-artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright import sync_api

from assistant.answer import Event
from assistant.settings import Settings
from assistant.types import Answer, Citation, Source
from tests.support.browser import ARTIFACTS, QUESTION, TIMEOUT_MS, chromium, serve, use_extractive

pytestmark = [pytest.mark.browser, pytest.mark.slow]



@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 900},
                                  permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def in_viewport(page, selector: str) -> bool:
    return page.eval_on_selector(selector, """el => {
        const r = el.getBoundingClientRect();
        return r.top >= 0 && r.top < window.innerHeight && r.height > 0; }""")


def test_ask_stream_and_follow_citations(page, seed_settings, seed_services):
    expect = sync_api.expect
    with serve(seed_settings, seed_services) as url:
        page.goto(url)
        # Settings: extractive mode (no LLM needed); corpus stats are shown.
        accordion = use_extractive(page)
        expect(page.locator("#pa-mode input[value='extractive']")).to_be_checked()
        expect(page.locator("#pa-stats")).to_contain_text("633 papers")
        accordion.click()

        box = page.locator("#pa-question textarea")
        box.fill(QUESTION)
        box.press("Enter")
        # The answer streams in, then the cited source cards replace the retrieved list.
        page.wait_for_selector("#pa-chat a.cite[href='#src-1']", timeout=TIMEOUT_MS)
        page.wait_for_selector("#pa-sources #src-1.is-cited", timeout=TIMEOUT_MS)
        page.wait_for_selector("#pa-chat .facts", timeout=TIMEOUT_MS)
        expect(box).to_have_value("")
        expect(page.locator("#pa-chat .facts").last).to_contain_text("extractive")
        expect(page.locator("#pa-sources mark").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "ui-answer.png"))

        # Hovering (or focusing) a [n] shows the sentence of paper n that supports the claim.
        wrap = page.locator("#pa-chat li .cite-wrap").first  # a quoted sentence's [n]
        tip = wrap.locator(".cite-tip")
        expect(tip).to_be_hidden()
        wrap.locator("a.cite").hover()
        expect(tip).to_be_visible()
        evidence = tip.inner_text()
        n = wrap.locator("a.cite").inner_text().strip("[]")
        quoted = evidence.split("“", 1)[1].rstrip("”").strip()
        assert len(quoted) > 20
        assert quoted[:40] in page.locator(f"#pa-sources #src-{n}").inner_text()
        page.screenshot(path=str(ARTIFACTS / "ui-evidence.png"))
        page.mouse.move(5, 5)
        expect(tip).to_be_hidden()
        wrap.locator("a.cite").focus()
        expect(tip).to_be_visible()
        page.locator("#pa-question textarea").focus()

        # The copy button copies clean text: [n] markers, no markup, no facts line.
        page.locator("#pa-chat button[aria-label='Copy message']").last.click()
        copied = page.evaluate("navigator.clipboard.readText()")
        assert "[1]" in copied and "<" not in copied and "&#" not in copied
        assert "extractive ·" not in copied

        # [1] -> card #src-1, targeted and in view.
        page.locator("#pa-chat a.cite[href='#src-1']").first.click()
        card = page.locator("#src-1")
        expect(card).to_be_in_viewport()
        assert card.evaluate(
            "el => el.matches(':target') || el.classList.contains('is-target')")
        assert page.url.endswith("#src-1")

        # The last cited card starts below the fold of the sources panel: it scrolls to it,
        # and only the panel scrolls (the chat stays where it was).
        last = max(int(h.split("-")[1]) for h in page.eval_on_selector_all(
            "#pa-chat a.cite", "els => els.map(e => e.getAttribute('href'))"))
        link = page.locator(f"#pa-chat a.cite[href='#src-{last}']").last
        link.scroll_into_view_if_needed()
        chat_top = page.eval_on_selector("#pa-chat", "el => el.getBoundingClientRect().top")
        link.click()
        expect(page.locator(f"#src-{last}")).to_be_in_viewport()
        expect(page.locator(f"#src-{last}")).to_have_class("src-card is-cited is-target flash")
        page.wait_for_timeout(700)  # let the smooth scroll settle for the screenshot
        assert page.eval_on_selector(
            "#pa-chat", "el => el.getBoundingClientRect().top") == pytest.approx(chat_top)
        assert in_viewport(page, f"#src-{last}")
        page.screenshot(path=str(ARTIFACTS / "ui-citation.png"))

        # A follow-up through the Send button keeps the conversation.
        box.fill("What does the second paper propose?")
        page.locator("#pa-send").click()
        expect(page.locator("#pa-chat .facts")).to_have_count(2, timeout=TIMEOUT_MS)
        page.wait_for_selector("#pa-sources #src-1.is-cited")
        assert page.locator("#pa-chat .message").count() >= 4
        sources_for = page.locator("#pa-sources .src-for")
        expect(sources_for).to_contain_text("What does the second paper propose?")

        # Clicking an earlier message shows that turn's sources again.
        page.locator("#pa-chat .message").first.click()
        expect(sources_for).to_contain_text(QUESTION)

        # New chat clears the conversation and the sources.
        page.locator("#pa-new").click()
        expect(page.locator("#pa-chat .facts")).to_have_count(0)
        expect(page.locator("#pa-sources")).to_contain_text("Ask a question")


# --- a malicious abstract, rendered by the real frontend -------------------------------------

EVIL_ABSTRACT = (
    "Benign opening sentence. <script>window.__pwned = 'script'</script> "
    "<img src=x onerror=\"window.__pwned = 'img'\"> ![beacon](http://evil.invalid/beacon.png) "
    "[click](javascript:window.__pwned='link') ${window.__pwned='tpl'} {{7*7}} "
    "See http://evil.invalid/track.gif for details."
)
EVIL_TITLE = "Evil <b>bold</b> ![t](http://evil.invalid/title.png) title"


class EvilAnswerer:
    def stream(self, question, history=None, mode=None, k=None):
        src = Source(n=1, paper_id="evil", title=EVIL_TITLE, score=0.9, abstract=EVIL_ABSTRACT)
        yield Event("sources", [src])
        text = f"The paper says: {EVIL_ABSTRACT} [1]"
        yield Event("token", text)
        cited = src.model_copy(update={"cited": True, "quotes": [EVIL_ABSTRACT.split(". ")[1]]})
        yield Event("answer", Answer(
            question=question, answer=text, mode="extractive", sources=[cited],
            citations=[Citation(n=1, paper_id="evil", title=EVIL_TITLE)],
            timings_ms={"total_ms": 3.0}))


class EvilServices:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.answerer = EvilAnswerer()

        class _Index:
            def stats(self) -> dict:
                return {"papers": 1, "chunks": 1, "embedding_model": "stub"}

        self.index = _Index()


def test_malicious_source_renders_as_inert_text(page, tmp_path):
    settings = Settings(_env_file=None, data_dir=tmp_path, answer_mode="extractive")
    dialogs: list[str] = []
    evil_requests: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("request", lambda r: evil_requests.append(r.url) if "evil" in r.url else None)
    with serve(settings, EvilServices(settings)) as url:
        page.goto(url)
        box = page.locator("#pa-question textarea")
        box.fill('<img src=x onerror="window.__pwned=\'question\'"> is this safe?')
        box.press("Enter")
        page.wait_for_selector("#pa-sources #src-1.is-cited")
        page.wait_for_selector("#pa-chat .facts")
        page.wait_for_timeout(500)
        page.screenshot(path=str(ARTIFACTS / "ui-escaping.png"))

        assert page.evaluate("window.__pwned") is None
        assert not dialogs and not evil_requests
        for where in ("#pa-chat", "#pa-sources"):
            assert page.locator(f"{where} script, {where} img, {where} iframe").count() == 0
            hrefs = page.eval_on_selector_all(
                f"{where} a", "els => els.map(e => e.getAttribute('href'))")
            # Only the citation anchor and the app's own outbound search links (the
            # malicious title percent-encoded in their query string).
            assert all(h == "#src-1" or h.startswith(("https://arxiv.org/",
                                                      "https://www.semanticscholar.org/"))
                       for h in hrefs), hrefs
            assert not any("evil.invalid/" in h for h in hrefs), hrefs
        sources_text = page.locator("#pa-sources").inner_text()
        assert "<script>window.__pwned = 'script'</script>" in sources_text
        assert "![beacon](http://evil.invalid/beacon.png)" in sources_text
        assert "${window.__pwned='tpl'} {{7*7}}" in sources_text
        chat_text = page.locator("#pa-chat").inner_text()
        assert "onerror" in chat_text and "![beacon](" in chat_text
        # Copying the answer gives the abstract's text back, as text.
        page.locator("#pa-chat button[aria-label='Copy message']").last.click()
        copied = page.evaluate("navigator.clipboard.readText()")
        assert "<script>window.__pwned = 'script'</script>" in copied and "[1]" in copied
        assert page.evaluate("window.__pwned") is None


# --- answer shapes: a survey's groups and a comparison's table, in the chat and the export ----

SURVEY_Q = "Which papers scale 3D Gaussian Splatting reconstruction to large or city-scale scenes?"
COMPARE_Q = "How do VastGaussian and CityGaussianV2 compare?"


def test_survey_and_comparison_render(page, seed_settings, seed_services):
    expect = sync_api.expect
    with serve(seed_settings, seed_services) as url:
        page.goto(url)
        use_extractive(page).click()
        box = page.locator("#pa-question textarea")

        # A survey: a lead naming the groups, then per group a bold line citing its papers
        # and one quoted sentence per paper.
        box.fill(SURVEY_Q)
        box.press("Enter")
        expect(page.locator("#pa-chat .facts")).to_have_count(1, timeout=TIMEOUT_MS)
        message = page.locator("#pa-chat .message").last
        cited = set(message.locator("a.cite").evaluate_all(
            "els => els.map(e => e.getAttribute('href'))"))
        assert len(cited) >= 4, cited
        assert message.locator("li").count() >= 4
        assert message.locator("strong").count() >= message.locator("li").count()
        expect(message).to_contain_text("papers in")
        page.screenshot(path=str(ARTIFACTS / "ui-survey.png"))

        # A comparison: a table, one row per compared paper, every filled cell cited.
        box.fill(COMPARE_Q)
        box.press("Enter")
        expect(page.locator("#pa-chat .facts")).to_have_count(2, timeout=TIMEOUT_MS)
        table = page.locator("#pa-chat .message").last.locator("table")
        expect(table).to_be_visible()
        expect(table.locator("th").first).to_have_text("Paper")
        rows = table.locator("tbody tr")
        expect(rows).to_have_count(2)
        titles = rows.locator("td:first-child strong").all_inner_texts()
        assert any("VastGaussian" in t for t in titles), titles
        assert any("CityGaussianV2" in t for t in titles), titles
        for cell in rows.locator("td").all():
            text = cell.inner_text().strip()
            assert text == "—" or cell.locator("a.cite").count() == 1, text
        page.screenshot(path=str(ARTIFACTS / "ui-comparison.png"))

        # The export carries both shapes: the group lines and the table as Markdown.
        with page.expect_download() as download:
            page.locator("#pa-export").click()
        exported = Path(download.value.path()).read_text(encoding="utf-8")
        assert "| Paper | Proposes | Headline result | Data, benchmark |" in exported
        assert exported.count("\n| **") == 2
        assert "papers in" in exported
