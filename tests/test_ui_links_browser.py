"""Links and exports in a real headless Chromium (Debian's, driven by Playwright): after an
answer every source card links its paper and a Semantic Scholar search in a new tab with
rel="noopener noreferrer" (as rendered by the browser, after Gradio), the API info names
the question box, and both exports download: Markdown titled after the app with reference urls,
BibTeX of the cited papers that bibtexparser reads back. Screenshots: test-artifacts/."""

from __future__ import annotations

from pathlib import Path

import bibtexparser
import pytest
from playwright import sync_api

from tests.support.browser import ARGS, ARTIFACTS, CHROMIUM, QUESTION, TIMEOUT_MS, serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]



def test_cards_link_out_and_exports_download(seed_settings, seed_services):
    expect = sync_api.expect
    ARTIFACTS.mkdir(exist_ok=True)
    settings = seed_settings.model_copy(update={"answer_mode": "extractive"})
    with sync_api.sync_playwright() as pw, serve(settings, seed_services) as url:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(20_000)
            page.goto(url)
            box = page.locator("#pa-question textarea")
            box.fill(QUESTION)
            box.press("Enter")
            page.wait_for_selector("#pa-sources #src-1.is-cited", timeout=TIMEOUT_MS)
            page.wait_for_selector("#pa-chat .facts", timeout=TIMEOUT_MS)

            out = page.eval_on_selector_all(
                "#pa-sources a:not([href^='#'])",
                "els => els.map(a => [a.getAttribute('href'), a.target, a.rel, a.innerText])")
            cards = page.locator("#pa-sources article.src-card").count()
            assert cards >= 2
            # Per card: the title, the arXiv link and the Semantic Scholar search.
            assert len(out) == 3 * cards, out
            for href, target, rel, _ in out:
                assert href.startswith(("https://arxiv.org/", "https://www.semanticscholar.org/"))
                assert target == "_blank" and rel == "noopener noreferrer", (href, rel)
            assert sum("Semantic Scholar" in text for *_, text in out) == cards
            title = page.locator("#src-1 a.src-title-link")
            expect(title).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "ui-links.png"))

            # Clicking the title opens a new tab (not this page) with no opener.
            with page.context.expect_page() as popup:
                title.click()
            opened = popup.value
            assert opened.evaluate("window.opener") is None
            opened.close()
            assert page.url.startswith(url)

            with page.expect_download() as download:
                page.locator("#pa-export").click()
            md = Path(download.value.path()).read_text(encoding="utf-8")
            assert md.startswith("# Paper assistant — conversation")
            assert "<https://arxiv.org/" in md.split("**References**")[1]

            # The .bib follows the answer as a step of its own: poll until it has entries.
            entries: list[dict] = []
            for _ in range(20):
                with page.expect_download() as download:
                    page.locator("#pa-export-bib").click()
                bib = Path(download.value.path()).read_text(encoding="utf-8")
                entries = bibtexparser.loads(bib).entries
                if entries:
                    break
                page.wait_for_timeout(500)
            cited = page.locator("#pa-sources article.src-card.is-cited").count()
            assert len(entries) == cited >= 1
            assert all(e["url"].startswith("https://arxiv.org/") for e in entries)

            # The API page's data names the question box (not parameter_N).
            info = page.request.get(url + "gradio_api/info").json()
            params = [p["parameter_name"]
                      for p in info["named_endpoints"]["/ask"]["parameters"]]
            assert params[0] == "question" and not any(
                p.startswith("parameter_") for p in params), params
        finally:
            browser.close()
