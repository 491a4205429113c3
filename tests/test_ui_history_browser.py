"""Saved conversations, feedback, follow-up chips and the narrow layout, in a real headless
Chromium (Debian's, driven by Playwright) against the app over a copy of the seed index.

* a conversation survives a restart of the app (same data dir) and reopens with its
  sources; it can be renamed and deleted;
* two logins never see each other's conversations;
* 👍/👎 and a reason are stored with the full answer (assistant/history.py);
* follow-up chips ask their question; retry and edit-and-resend replace the last turn;
  Stop drops an answer being written;
* at 420 px the header buttons leave the tagline alone, one thing is called "Settings", and
  the chat's scroll arrow covers no message (screenshots in test-artifacts/).
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from playwright import sync_api

from assistant.history import LOCAL_USER, History
from assistant.settings import Settings
from tests.support.browser import ARTIFACTS, QUESTION, TIMEOUT_MS, chromium, free_port
from ui.app import build_app, launch_options

pytestmark = [pytest.mark.browser, pytest.mark.slow]
expect = sync_api.expect


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def data(seed_settings, embedder, tmp_path_factory):
    """Settings and Services over a private copy of the seed index (the UI writes its
    history.sqlite3 into the data dir; the shared seed index stays read-only)."""
    from assistant.services import Services

    data_dir = tmp_path_factory.mktemp("history-ui") / "data"
    # Without any history.sqlite3 other UI tests served from the seed dir left there.
    shutil.copytree(seed_settings.data_dir, data_dir,
                    ignore=shutil.ignore_patterns("history.sqlite3*"))
    settings = seed_settings.model_copy(update={"data_dir": data_dir,
                                                "answer_mode": "extractive"})
    services = Services(settings)
    services.__dict__["embedder"] = embedder
    yield settings, services
    if "index" in services.__dict__:
        services.index.close()


@contextlib.contextmanager
def serve(settings, services, auth: str | None = None) -> Iterator[str]:
    """The app as `assistant ui` builds it (history in settings.data_dir)."""
    demo = build_app(settings, services)
    port = free_port()
    demo.launch(prevent_thread_lock=True, quiet=True,
                **launch_options(settings, port=port, auth=auth))
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def ask(page, question: str, answers_before: int) -> None:
    box = page.locator("#pa-question textarea")
    box.fill(question)
    box.press("Enter")
    expect(page.locator("#pa-chat .facts")).to_have_count(answers_before + 1,
                                                          timeout=TIMEOUT_MS)


def open_sidebar(page) -> None:
    """The conversations sidebar open, its list on screen. A closed sidebar (it starts
    closed) may keep its content rendered off-screen, which Playwright still calls visible:
    checking visibility alone once left it closed, and a click on a chat then timed out
    ("element is outside of the viewport")."""
    history = page.locator("#pa-history")
    history.wait_for(state="attached")
    box = history.bounding_box()
    width = page.viewport_size["width"] if page.viewport_size else 0
    if not (box and box["width"] > 0 and box["x"] >= 0 and box["x"] < width):
        page.locator(".sidebar .toggle-button, button[aria-label*='sidebar' i]").first.click()
    expect(history).to_be_in_viewport()


def history_titles(page) -> list[str]:
    return [t.strip() for t in page.locator("#pa-history label").all_inner_texts()]


def saved_at(store: History, conversation_id: str, position: int) -> float | None:
    """When turn `position` was last saved (None: not saved)."""
    with sqlite3.connect(store.path) as db:
        row = db.execute("SELECT created FROM turns WHERE conversation_id = ? AND "
                         "position = ?", (conversation_id, position)).fetchone()
    return row[0] if row else None


def wait_until(page, condition, timeout_s: float = TIMEOUT_MS / 1000) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        page.wait_for_timeout(200)


def test_conversation_survives_a_restart_reopens_renames_and_deletes(browser, data):
    settings, services = data
    store_path = settings.data_dir / "history.sqlite3"
    with serve(settings, services) as url:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(url)
        ask(page, QUESTION, 0)
        cited_before = page.locator("#pa-sources .src-card.is-cited .src-title").all_inner_texts()
        assert cited_before
        page.locator("#pa-chat button[aria-label='Like']").last.click()
        expect(page.locator("#pa-note")).to_contain_text("👍")
        open_sidebar(page)
        expect(page.locator("#pa-history label")).to_have_count(1)
        assert history_titles(page) == [QUESTION]  # titled by its first question
        page.close()
    assert store_path.exists()

    # A restarted app (new process state, same data dir): the chat is listed and reopens with
    # its answer and its sources.
    with serve(settings, services) as url:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(url)
        expect(page.locator("#pa-chat .facts")).to_have_count(0)
        open_sidebar(page)
        expect(page.locator("#pa-history label")).to_have_count(1)
        page.locator("#pa-history label", has_text=QUESTION).click()
        expect(page.locator("#pa-chat .facts")).to_have_count(1)
        expect(page.locator("#pa-chat a.cite[href='#src-1']").first).to_be_visible()
        expect(page.locator("#pa-sources .src-for")).to_contain_text(QUESTION)
        assert page.locator("#pa-sources .src-card.is-cited .src-title").all_inner_texts() \
            == cited_before
        # ... and with its feedback: the 👍 given before the restart is shown.
        expect(page.locator("#pa-chat button[aria-label='Liked']")).to_have_count(1)
        page.screenshot(path=str(ARTIFACTS / "ui-history-reopened.png"))

        # A follow-up in the reopened chat continues the same saved conversation.
        ask(page, "What does the second paper propose?", 1)
        expect(page.locator("#pa-history label")).to_have_count(1)
        [conv] = History(store_path).conversations(LOCAL_USER)
        assert conv.turns == 2

        # Rename, then delete.
        page.locator("#pa-rename-box textarea, #pa-rename-box input").first.fill(
            "Memory-light optimizers")
        page.locator("#pa-rename").click()
        expect(page.locator("#pa-history label")).to_have_text(["Memory-light optimizers"])
        assert History(store_path).conversations(LOCAL_USER)[0].title == \
            "Memory-light optimizers"
        page.locator("#pa-delete").click()
        expect(page.locator("#pa-history label")).to_have_count(0)
        expect(page.locator("#pa-chat .facts")).to_have_count(0)
        assert History(store_path).conversations(LOCAL_USER) == []
        page.close()


def test_two_logins_do_not_see_each_others_chats(browser, data):
    settings, services = data
    with serve(settings, services, auth="alice:alice-pw-1,bob:bob-pw-2") as url:
        pages = {}
        for user, password in (("alice", "alice-pw-1"), ("bob", "bob-pw-2")):
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            signed = context.request.post(url + "login",
                                          form={"username": user, "password": password})
            assert signed.ok, signed.status
            pages[user] = context.new_page()
            pages[user].goto(url)
        alice, bob = pages["alice"], pages["bob"]
        ask(alice, QUESTION, 0)
        open_sidebar(alice)
        expect(alice.locator("#pa-history label")).to_have_count(1)

        bob.reload()
        open_sidebar(bob)
        expect(bob.locator("#pa-history label")).to_have_count(0)
        ask(bob, "How does prefix caching work for hybrid LLMs?", 0)
        expect(bob.locator("#pa-history label")).to_have_text(
            ["How does prefix caching work for hybrid LLMs?"])

        alice.reload()
        open_sidebar(alice)
        expect(alice.locator("#pa-history label")).to_have_text([QUESTION])
        store = History(settings.data_dir / "history.sqlite3")
        assert [c.title for c in store.conversations("alice")] == [QUESTION]
        assert [c.title for c in store.conversations("bob")] == [
            "How does prefix caching work for hybrid LLMs?"]
        for user in ("alice", "bob"):  # tidy for the other tests of the module
            for c in store.conversations(user):
                store.delete(user, c.id)
        for p in pages.values():
            p.context.close()


def test_feedback_chips_retry_edit_and_stop(page, data):
    settings, services = data
    store = History(settings.data_dir / "history.sqlite3")
    with serve(settings, services) as url:
        page.goto(url)
        ask(page, QUESTION, 0)
        conv = store.conversations(LOCAL_USER)[0]  # the most recent
        assert conv.title == QUESTION and conv.turns == 1

        # 👎 is stored with the whole answer; then a reason replaces the bare 👎.
        page.locator("#pa-chat button[aria-label='Dislike']").last.click()
        expect(page.locator("#pa-note")).to_contain_text("👎")
        [fb] = store.feedback(conversation_id=conv.id)
        assert (fb.rating, fb.reason, fb.question) == ("down", None, QUESTION)
        assert fb.answer.citations and fb.answer.sources[0].url.startswith("https://")
        page.locator("#pa-chat button[aria-label='Feedback']").last.click()
        page.locator("#pa-chat .extra-feedback-option", has_text="Wrong paper").last.click()
        expect(page.locator("#pa-note")).to_contain_text("wrong paper")
        [fb] = store.feedback(conversation_id=conv.id)
        assert (fb.rating, fb.reason) == ("down", "wrong paper")

        # Chips from the cited papers; clicking one asks it.
        chips = page.locator("#pa-chips .pa-chip:visible")
        expect(chips).to_have_count(3)
        labels = chips.all_inner_texts()
        assert labels[0].startswith("What dataset does ") and labels[2].startswith("Compare [")
        first_title = page.locator("#pa-sources .src-card.is-cited .src-title").first.inner_text()
        assert labels[0].removeprefix("What dataset does ").removesuffix(" use?") in first_title
        page.screenshot(path=str(ARTIFACTS / "ui-chips.png"))
        chips.nth(2).click()
        expect(page.locator("#pa-chat .facts")).to_have_count(2, timeout=TIMEOUT_MS)
        expect(page.locator("#pa-chat")).to_contain_text(labels[2])
        assert [a.question for a in store.answers(LOCAL_USER, conv.id)] == [QUESTION, labels[2]]
        compared = store.answers(LOCAL_USER, conv.id)[1]
        assert not compared.abstained and len(compared.citations) >= 2

        # Retry the last turn: answered again (saved anew), still two turns.
        before = saved_at(store, conv.id, 1)
        page.locator("#pa-chat button[aria-label='Retry']").last.click()
        wait_until(page, lambda: saved_at(store, conv.id, 1) != before)
        expect(page.locator("#pa-chat .facts")).to_have_count(2, timeout=TIMEOUT_MS)
        assert len(store.answers(LOCAL_USER, conv.id)) == 2
        page.wait_for_timeout(500)  # the page takes the final update (the .bib follows)

        # Edit the last question and resend it: the second turn is replaced.
        edited = "Which optimizer cuts the memory of Adam's second moments?"
        user_msgs = page.locator("#pa-chat .message.user, #pa-chat [data-testid='user']")
        user_msgs.last.hover()
        page.locator("#pa-chat button[aria-label='Edit']").last.click()
        editor = page.locator("#pa-chat textarea").last
        editor.fill(edited)
        page.locator("#pa-chat button[aria-label='Submit']").last.click()
        wait_until(page, lambda: [a.question for a in store.answers(LOCAL_USER, conv.id)]
                   == [QUESTION, edited])
        expect(page.locator("#pa-chat")).to_contain_text(edited, timeout=TIMEOUT_MS)
        expect(page.locator("#pa-chat .facts")).to_have_count(2, timeout=TIMEOUT_MS)

        store.delete(LOCAL_USER, conv.id)


class SlowAnswerer:
    """Writes its answer a token every 0.3 s (for Stop); the retrieval is not the point."""

    def stream(self, question, history=None, mode=None, k=None):
        from assistant.answer import Event
        from assistant.types import Answer, Source

        src = Source(n=1, paper_id="slow", title="Slow: A Paper", score=0.7, abstract="A.")
        yield Event("sources", [src])
        for i in range(40):
            time.sleep(0.3)
            yield Event("token", f"word{i} ")
        yield Event("answer", Answer(question=question, answer="done [1].", mode="extractive",
                                     sources=[src.model_copy(update={"cited": True})]))


def test_stop_drops_the_answer_being_written(page, tmp_path):
    settings = Settings(_env_file=None, data_dir=tmp_path, answer_mode="extractive")
    services = SimpleNamespace(settings=settings, answerer=SlowAnswerer(),
                               index=SimpleNamespace(stats=lambda: {"papers": 1}))
    with serve(settings, services) as url:
        page.goto(url)
        box = page.locator("#pa-question textarea")
        box.fill("A question answered slowly?")
        box.press("Enter")
        expect(page.locator("#pa-chat")).to_contain_text("word1")
        page.locator("#pa-stop").click()
        expect(page.locator("#pa-note")).to_contain_text("Stopped")
        expect(page.locator("#pa-chat .message")).to_have_count(0)
        page.wait_for_timeout(2000)  # nothing arrives or is saved after Stop
        assert "word" not in page.locator("#pa-chat").inner_text()
        assert History(tmp_path / "history.sqlite3").conversations(LOCAL_USER) == []
        # The next question is answered as usual.
        box.fill("And another?")
        box.press("Enter")
        expect(page.locator("#pa-chat .facts")).to_have_count(1, timeout=TIMEOUT_MS)
        [conv] = History(tmp_path / "history.sqlite3").conversations(LOCAL_USER)
        assert conv.title == "And another?"


def _overlap(a: dict, b: dict) -> bool:
    return (a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]
            and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])


def test_narrow_layout_header_settings_and_scroll_arrow(browser, data):
    settings, services = data
    with serve(settings, services) as url:
        page = browser.new_page(viewport={"width": 1440, "height": 860})
        page.goto(url)
        # Wide and narrow: the header buttons sit on the page, clear of the name and tagline.
        for width in (1440, 420):
            page.set_viewport_size({"width": width, "height": 860})
            page.wait_for_timeout(300)
            tagline = page.locator(".pa-tag").bounding_box()
            name = page.locator(".pa-name").bounding_box()
            for button in ("#pa-new", "#pa-export", "#pa-export-bib"):
                box = page.locator(button).bounding_box()
                assert box and box["width"] > 0, button
                assert not _overlap(box, tagline), (width, button, box, tagline)
                assert not _overlap(box, name), (width, button, box, name)
                assert box["x"] + box["width"] <= width, (width, button, box)
        # One thing on the page is called "Settings" (Gradio's footer); ours is
        # "Answer options".
        expect(page.get_by_text("Settings", exact=True)).to_have_count(1)
        expect(page.locator("#pa-settings")).to_contain_text("Answer options")
        page.screenshot(path=str(ARTIFACTS / "ui-420-header.png"), full_page=True)

        # A long answer, scrolled up: the "scroll to the latest" arrow covers no message.
        ask(page, QUESTION, 0)
        # Scrolled up (again, should the page still scroll the chat down after the answer).
        arrow = page.locator("#pa-chat .scroll-down-button-container button")
        for _ in range(10):
            scrolled = page.evaluate("""() => {
                const els = [...document.querySelectorAll('#pa-chat *')].filter(
                    el => el.scrollHeight > el.clientHeight + 50 &&
                          /(auto|scroll)/.test(getComputedStyle(el).overflowY));
                els.forEach(el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); });
                return els.length; }""")
            assert scrolled, "the chat should scroll: a long answer at 420 px"
            page.locator("#pa-chat").hover()
            page.mouse.wheel(0, -400)
            page.wait_for_timeout(400)
            if arrow.is_visible():
                break
        expect(arrow).to_be_visible()
        # The arrow and every message's text box, measured at the same moment.
        boxes = page.evaluate("""() => {
            const r = el => { const b = el.getBoundingClientRect();
                              return {x: b.x, y: b.y, width: b.width, height: b.height}; };
            const arrow = document.querySelector(
                '#pa-chat .scroll-down-button-container button');
            return {arrow: arrow && r(arrow), texts: [...document.querySelectorAll(
                '#pa-chat .message .prose p, #pa-chat .message .prose li, '
                + '#pa-chat .message .prose small')].map(el => ({...r(el),
                text: el.innerText.slice(0, 40)}))}; }""")
        page.screenshot(path=str(ARTIFACTS / "ui-420-scroll-arrow.png"))
        assert boxes["arrow"] and boxes["texts"], boxes
        covered = [t["text"] for t in boxes["texts"] if _overlap(t, boxes["arrow"])]
        assert not covered, (boxes["arrow"], covered)
        page.close()
