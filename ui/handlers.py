"""The UI's event handlers (ChatUI) and the helpers they use; no layout here (ui/layout.py).

ChatUI.ask streams one turn as (chat, answers, sources_html, question_box, export,
answer_json); ChatUI.ask_turn wraps it for the page: the finished answer is saved in the
user's conversation (assistant/history.py) and the outputs gain the conversation id, the
sidebar list, the follow-up chips and the feedback note. Retry, edit-and-resend, stop,
feedback and the sidebar's open / rename / delete are methods here too.
"""

from __future__ import annotations

import contextlib
import html
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gradio as gr

from assistant import links
from assistant.answer import Answerer
from assistant.errors import AssistantError
from assistant.history import LOCAL_USER, REASONS, History
from assistant.settings import Settings
from assistant.types import Answer, Source
from ui import render

log = logging.getLogger(__name__)

MODES = ("auto", "llm", "extractive")
MAX_K = 12
EXPORT_TTL_S = 600
MAX_CHIPS = 3
# Longest question the UI takes when the settings carry no max_question_chars of their own
# (the answer pipeline enforces that one for every caller). Bounded well under
# ui.guard.MAX_BODY_BYTES even when every character is JSON-escaped.
MAX_QUESTION_CHARS = 4000
# The chat's feedback menu: thumbs, then the reasons (a reason is a 👎 with that reason).
FEEDBACK_OPTIONS = ["Like", "Dislike", *(r.capitalize() for r in REASONS)]


def question_limit(settings: Settings) -> int:
    limit = getattr(settings, "max_question_chars", None)
    return int(limit) if isinstance(limit, int) and limit > 0 else MAX_QUESTION_CHARS


# Each works on the bundled seeds/ corpus; the last is a follow-up to any of the others.
EXAMPLES = [
    "How does prefix caching work for hybrid LLMs?",
    "Which optimizers reduce memory use when training large language models?",
    "How can distributed training reduce communication overhead?",
    "What does the second paper propose?",
]
EXAMPLE_LABELS = EXAMPLES[:3] + [f"Follow-up: {EXAMPLES[3]}"]
NO_LLM_IN_UI = ("LLM answers are not available: this server has no LLM endpoint configured. "
                "Choose “extractive” (or “auto”) under Answer options › Answer mode to get an "
                "answer quoted from the papers. (Whoever runs the server can set "
                "OPENAI_BASE_URL.)")


def user_of(request: gr.Request | None) -> str:
    """Whose conversations: the login name, or the single local user without a login."""
    name = getattr(request, "username", None) if request is not None else None
    return str(name) if name else LOCAL_USER


# --- helpers ----------------------------------------------------------------------------


def _uses_openai(settings: Settings) -> bool:
    """Cost estimates only make sense on OpenAI's own endpoint."""
    url = settings.llm_base_url
    try:
        return url is None or (urlsplit(url).hostname or "").endswith("api.openai.com")
    except ValueError:  # a malformed URL ("http://[bad"): not OpenAI's; answers say why
        return False


def _code(text: str) -> str:
    return f"<code>{render.escape_html(text)}</code>"


def endpoint_status(settings: Settings) -> str:
    mode = settings.resolved_mode()
    if not settings.llm_configured:
        return ("No LLM endpoint configured: answers are **extractive** (quoted sentences). "
                "Set `OPENAI_BASE_URL` (and `OPENAI_API_KEY` if needed) to enable LLM answers.")
    from assistant.llm import OPENAI_URL
    from assistant.redact import display_url

    url = display_url(settings.llm_base_url or OPENAI_URL)
    return (f"Model {_code(settings.llm_model)} at {_code(url)} · default mode "
            f"**{'LLM' if mode == 'llm' else 'extractive'}**")


def corpus_stats(services: Any) -> str:
    try:
        facts = services.index.stats()
    except AssistantError as e:
        return f"⚠ {render.escape_html(str(e))}"
    except Exception as e:  # noqa: BLE001 — a stats failure must not break the page
        log.exception("index stats failed")
        return f"⚠ Index unavailable ({render.escape_html(type(e).__name__)})."
    return (f"**{facts.get('papers', 0):,}** papers · **{facts.get('chunks', 0):,}** chunks · "
            f"embeddings {_code(str(facts.get('embedding_model', '?')))}")


class _Answerers:
    """services.answerer at the configured temperature; a cached sibling per other value."""

    def __init__(self, services: Any) -> None:
        self.services = services
        self._lock = threading.Lock()
        self._tuned: dict[float, Answerer] = {}

    def get(self, temperature: float | None) -> Answerer:
        settings: Settings = self.services.settings
        if temperature is None or abs(float(temperature) - settings.temperature) < 1e-6:
            return self.services.answerer
        key = round(min(2.0, max(0.0, float(temperature))), 2)
        with self._lock:
            if key not in self._tuned:
                from assistant.llm import LLM

                tuned = settings.model_copy(update={"temperature": key})
                llm = LLM(tuned)
                self._tuned[key] = Answerer(self.services.retriever, tuned,
                                            llm_factory=lambda: llm)
            return self._tuned[key]


# --- the app ----------------------------------------------------------------------------


def _open_history(settings: Settings) -> History | None:
    """The data dir's conversation store; None (chats not saved) when it cannot be opened."""
    try:
        return History.open(settings.data_dir)
    except Exception:  # noqa: BLE001 — a read-only data dir still serves answers
        log.warning("conversations will not be saved: cannot open the history in %s",
                    settings.data_dir, exc_info=True)
        return None


class ChatUI:
    """The event handlers, bound to one Services (shared by all sessions)."""

    def __init__(self, settings: Settings, services: Any,
                 history: History | None = None) -> None:
        self.settings = settings
        self.services = services
        self.history = history if history is not None else _open_history(settings)
        self.priced = _uses_openai(settings)
        self.answerers = _Answerers(services)
        self.export_dir = Path(tempfile.mkdtemp(prefix="paper-assistant-export-"))
        weakref.finalize(self, shutil.rmtree, self.export_dir, ignore_errors=True)

    # -- chat --

    def chat(self, answers: list[Answer]) -> list[dict[str, str]]:
        return render.chat_messages(answers, priced=self.priced)

    def failed(self, question: str, message: str, mode: str | None,
               sources: list[Source], t0: float) -> Answer:
        try:
            use = self.settings.resolved_mode(mode)
        except Exception:  # noqa: BLE001
            use = "extractive"
        return Answer(question=question, answer=f"⚠ {message}", mode=use, error=message,
                      sources=sources, timings_ms={"total_ms": round((time.perf_counter() - t0)
                                                                     * 1000, 1)})

    def export_file(self, answers: list[Answer]) -> str:
        """Write the conversation as Markdown; Gradio copies it to its cache to serve it."""
        stamp = datetime.now(UTC)
        for old in self.export_dir.glob("*.md"):  # served copies live in Gradio's cache
            with contextlib.suppress(OSError):
                if time.time() - old.stat().st_mtime > EXPORT_TTL_S:
                    old.unlink()
        path = self.export_dir / (f"conversation-{stamp:%Y%m%d-%H%M%S}-"
                                  f"{uuid.uuid4().hex[:6]}.md")
        # Owner-only (0600): Gradio's cached copy keeps the mode (shutil.copy2), and its
        # cache folder under /tmp is readable by every user of the machine.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(render.export_markdown(answers, now=stamp, priced=self.priced))
        return str(path)

    def _papers(self) -> Any:
        """The catalog lookup for links (None when the index cannot be opened)."""
        try:
            return self.services.retriever
        except Exception:  # noqa: BLE001 — links fall back to ids and titles
            return None

    def export_bib(self, answers: list[Answer] | None) -> str:
        """Write the cited papers of the conversation as BibTeX (owner-only file)."""
        from assistant.bibtex import bibtex

        answers = [links.attach(a, self._papers()) for a in answers or []]
        stamp = datetime.now(UTC)
        path = self.export_dir / (f"references-{stamp:%Y%m%d-%H%M%S}-"
                                  f"{uuid.uuid4().hex[:6]}.bib")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(bibtex(answers, self._papers()) or "% No papers cited yet.\n")
        return str(path)

    def ask(self, question: str, answers: list[Answer] | None, k: float | None,
            mode: str | None, temperature: float | None) -> Iterator[tuple]:
        """Stream one turn: (chat, answers, sources_html, question_box, export, answer_json)."""
        t0 = time.perf_counter()
        answers = list(answers or [])
        raw = str(question or "")
        limit = question_limit(self.settings)
        if len(raw) > limit:
            # The textbox stops typing at the limit; this is for API callers. Checked before
            # the whitespace is collapsed, so a megabyte of spaces costs nothing either.
            # Worded as the answer pipeline's own check (assistant/answer.py), which
            # CLI and API callers get.
            final = self.failed(raw[:80] + "…", f"The question is too long ({len(raw):,} "
                                f"characters; the limit is {limit:,}). Shorten it to the "
                                "question itself.", mode if mode in MODES else None, [], t0)
            answers = [*answers, final]
            yield (self.chat(answers), answers, render.source_cards_html(final), gr.skip(),
                   gr.skip(), final.to_json_dict())
            return
        q = " ".join(raw.split())
        if not q:
            yield (self.chat(answers), answers, gr.skip(), gr.skip(), gr.skip(), gr.skip())
            return
        mode = mode if mode in MODES else None
        if self.settings.resolved_mode(mode) == "llm" and not self.settings.llm_configured:
            # Worded for the person at the browser (no CLI flag to pass), and no model named.
            final = self.failed(q, NO_LLM_IN_UI, "llm", [], t0)
            answers = [*answers, final]
            yield (self.chat(answers), answers, render.source_cards_html(final), "",
                   gr.skip(), final.to_json_dict())
            return
        k = int(min(50, max(1, k))) if isinstance(k, int | float) else None
        prior = self.chat(answers)
        user = {"role": "user", "content": render.user_markdown(q)}
        sources: list[Source] = []
        text = ""

        def pending(html: Any = None, clear: bool = False) -> tuple:
            bubble = {"role": "assistant", "content": render.streaming_markdown(text, sources)}
            return ([*prior, user, bubble], answers, gr.skip() if html is None else html,
                    "" if clear else gr.skip(), gr.skip(), gr.skip())

        final: Answer | None = None
        try:
            yield pending(clear=True)
            history = [a for a in answers if not a.error]
            stream = self.answerers.get(temperature).stream(q, history, mode=mode, k=k)
            for event in stream:
                if event.kind == "sources":
                    sources = list(event.data)
                    links.attach_sources(sources, self._papers())
                    yield pending(render.retrieved_html(q, sources))
                elif event.kind == "token":
                    text += str(event.data)
                    yield pending()
                elif event.kind == "answer":
                    final = event.data
            if final is None:
                raise RuntimeError("the answer stream ended without an answer")
        except AssistantError as e:
            final = self.failed(q, str(e), mode, sources, t0)
        except Exception as e:  # noqa: BLE001 — shown inline, never a stuck spinner
            log.exception("answering %r failed", q)
            detail = " ".join(str(e).split())[:300]
            final = self.failed(q, f"Something went wrong while answering "
                                   f"({type(e).__name__}{': ' + detail if detail else ''}). "
                                   "Try again or rephrase the question.", mode, sources, t0)
        links.attach(final, self._papers())  # every source and citation opens (url)
        answers = [*answers, final]
        try:
            chat, cards = self.chat(answers), render.source_cards_html(final)
        except Exception:  # noqa: BLE001 — a rendering bug must not leave a spinner behind
            log.exception("rendering the answer to %r failed", q)
            chat = [*prior, user, {"role": "assistant", "content": "⚠ The answer could not be "
                                   "displayed (rendering failed); see the server log."}]
            cards = render.EMPTY_SOURCES
        try:
            export: Any = self.export_file(answers)
        except OSError:
            log.exception("writing the export file failed")
            export = gr.skip()
        yield chat, answers, cards, gr.skip(), export, final.to_json_dict()

    # -- the page: turns saved in the user's conversation (outputs: see ui/layout.TURN) --

    def _sidebar(self, user: str, current: str | None) -> Any:
        convs = self.history.conversations(user) if self.history is not None else []
        ids = {c.id for c in convs}
        return gr.update(choices=[(c.title, c.id) for c in convs],
                         value=current if current in ids else None)

    def _chips(self, answer: Answer | None) -> list[Any]:
        """The follow-up chips of an answer (hidden when there are none)."""
        questions = render.follow_ups(answer, MAX_CHIPS)
        return [gr.update(value=questions[i], visible=True) if i < len(questions)
                else gr.update(value="", visible=False) for i in range(MAX_CHIPS)]

    def _save(self, user: str, conv: str | None, answers: list[Answer]) -> str | None:
        """Store the newest answer in the user's conversation (created at its first question,
        or again if it was deleted meanwhile); returns the conversation id."""
        if self.history is None or not answers:
            return conv
        try:
            if conv and self.history.save_turn(user, conv, len(answers) - 1, answers[-1]):
                return conv
            conv = self.history.create(user, answers[0].question).id
            for i, a in enumerate(answers):
                self.history.save_turn(user, conv, i, a)
            return conv
        except Exception:  # noqa: BLE001 — the answer is shown even if it cannot be saved
            log.exception("saving the conversation failed")
            return conv

    def ask_turn(self, question: str, answers: list[Answer] | None, k: float | None,
                 mode: str | None, temperature: float | None, conv: str | None,
                 request: gr.Request = None) -> Iterator[tuple]:
        """ask() for the page: the finished turn is saved, then the conversation id, the
        sidebar, the follow-up chips and the feedback note follow the six outputs."""
        user = user_of(request)
        before = len(answers or [])
        first = True
        for item in self.ask(question, answers, k, mode, temperature):
            new = item[1]
            if isinstance(new, list) and len(new) > before:
                conv = self._save(user, conv, new)
                yield (*item, conv, self._sidebar(user, conv), *self._chips(new[-1]), "")
                return
            chips = self._chips(None) if first else [gr.skip()] * MAX_CHIPS
            first = False
            yield (*item, gr.skip(), gr.skip(), *chips, gr.skip())

    def ask_chip(self, chip: str, answers: list[Answer] | None, k: float | None,
                 mode: str | None, temperature: float | None, conv: str | None,
                 request: gr.Request = None) -> Iterator[tuple]:
        """A follow-up chip asks its question."""
        yield from self.ask_turn(chip, answers, k, mode, temperature, conv, request)

    def retry(self, answers: list[Answer] | None, k: float | None, mode: str | None,
              temperature: float | None, conv: str | None, evt: gr.RetryData,
              request: gr.Request = None) -> Iterator[tuple]:
        """The chat's retry button: ask that turn's question again (later turns dropped)."""
        answers = list(answers or [])
        turn = _turn_of(evt.index)
        if not 0 <= turn < len(answers):
            return
        yield from self.ask_turn(answers[turn].question, answers[:turn], k, mode, temperature,
                                 conv, request)

    def edit(self, answers: list[Answer] | None, k: float | None, mode: str | None,
             temperature: float | None, conv: str | None, evt: gr.EditData,
             request: gr.Request = None) -> Iterator[tuple]:
        """An edited question is asked in place of the original (later turns dropped)."""
        answers = list(answers or [])
        turn = _turn_of(evt.index)
        text = _text_of(evt.value)
        if not 0 <= turn <= len(answers) or not text.strip():
            yield (self.chat(answers), *[gr.skip()] * 11)
            return
        yield from self.ask_turn(text, answers[:turn], k, mode, temperature, conv, request)

    def stopped(self, answers: list[Answer] | None) -> tuple:
        """After Stop: the chat as saved (the cut-off answer is dropped), its sources."""
        answers = list(answers or [])
        last = answers[-1] if answers else None
        return (self.chat(answers), render.source_cards_html(last), *self._chips(last),
                "Stopped: the unfinished answer was dropped (retry or edit the question).")

    def like(self, answers: list[Answer] | None, conv: str | None, evt: gr.LikeData,
             request: gr.Request = None) -> str:
        """👍/👎 (or a reason, which is a 👎 with that reason) on an answer: stored with it."""
        turn = _turn_of(evt.index)
        liked = evt.liked
        if liked is True:
            rating, reason = "up", None
        elif liked is False:
            rating, reason = "down", None
        elif liked:
            rating, reason = "down", str(liked)
        else:
            rating, reason = None, None
        if self.history is None or not conv or not 0 <= turn < len(answers or []):
            return "⚠ Feedback not saved: this chat is not stored (see the server log)."
        try:
            saved = self.history.set_feedback(user_of(request), conv, turn, rating, reason)
        except Exception:  # noqa: BLE001
            log.exception("saving feedback failed")
            return "⚠ Feedback not saved (see the server log)."
        if rating is None:
            return "Feedback withdrawn."
        if saved is None:
            return "⚠ Feedback not saved: the answer is no longer in this chat."
        mark = "👍" if rating == "up" else "👎"
        why = f" ({saved.reason})" if saved.reason else ""
        return f"Thanks: {mark}{why} saved with answer {turn + 1}."

    def new_chat(self, request: gr.Request = None) -> tuple:
        user = user_of(request)
        return ([], [], render.EMPTY_SOURCES, "", self.export_file([]), None, None,
                self._sidebar(user, None), *self._chips(None), "")

    def open_chat(self, conv: str | None, request: gr.Request = None) -> tuple:
        """A conversation picked in the sidebar: its turns, feedback and last sources."""
        user = user_of(request)
        if self.history is None or not conv:
            return self.new_chat(request)
        answers = self.history.answers(user, conv)
        if not answers:
            return self.new_chat(request)
        last = answers[-1]
        try:
            export: Any = self.export_file(answers)
        except OSError:
            export = gr.skip()
        chat = gr.update(value=self.chat(answers),
                         feedback_value=self.history.feedback_values(user, conv, answers))
        return (chat, answers, render.source_cards_html(last), "", export,
                last.to_json_dict(), conv, self._sidebar(user, conv), *self._chips(last), "")

    def rename(self, conv: str | None, title: str, request: gr.Request = None) -> tuple:
        user = user_of(request)
        if self.history is not None and conv:
            self.history.rename(user, conv, title)
        return self._sidebar(user, conv), ""

    def delete(self, conv: str | None, request: gr.Request = None) -> tuple:
        if self.history is not None and conv:
            self.history.delete(user_of(request), conv)
        return self.new_chat(request)

    def on_load(self, request: gr.Request = None) -> tuple:
        """Page load: the corpus figures and the user's saved conversations."""
        return corpus_stats(self.services), self._sidebar(user_of(request), None)

    def select(self, answers: list[Answer] | None, evt: gr.SelectData) -> Any:
        """Clicking a message shows the sources of its turn."""
        index = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        turn = int(index) // 2 if isinstance(index, int | float) else -1
        if answers and 0 <= turn < len(answers):
            return render.source_cards_html(answers[turn])
        return gr.skip()

    def test_connection(self) -> str:
        if not self.settings.llm_configured:
            return ("Not tested: no LLM endpoint is configured (set `OPENAI_BASE_URL` or "
                    "`OPENAI_API_KEY`). Extractive answers work without one.")
        try:
            return f"✅ {render.escape_html(self.services.llm.check())}"
        except AssistantError as e:
            return f"❌ {render.escape_html(str(e))}"
        except Exception as e:  # noqa: BLE001
            log.exception("connection test failed")
            return f"❌ Connection test failed ({render.escape_html(type(e).__name__)})."




def _turn_of(index: Any) -> int:
    """A chat message index (user 2t, assistant 2t+1) -> turn t; -1 when unreadable."""
    if isinstance(index, list | tuple):
        index = index[0] if index else None
    return int(index) // 2 if isinstance(index, int | float) else -1


def _text_of(value: Any) -> str:
    """An edited message's text (a string, or Gradio's [{"type": "text", "text": ...}]),
    its HTML entities (the chat shows escaped text) turned back into characters."""
    if isinstance(value, list):
        value = " ".join(_text_of(v) for v in value)
    elif isinstance(value, dict):
        value = value.get("text") or value.get("content") or ""
    return html.unescape(str(value or ""))
