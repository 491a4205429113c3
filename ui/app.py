"""The Gradio chat UI: streamed answers with [n] links to source cards, settings, export.

    build_app(settings, services) -> gr.Blocks     the app, queue configured, not launched
    launch_options(settings, ...)  -> dict         launch() keyword arguments (safe defaults)
    launch(settings, services, ...)                build + launch (what `assistant ui` runs)
    ensure_index(settings, services, progress_cb)  ingest settings.corpus_paths if no index

Per browser session the conversation is a gr.State holding the list of Answer objects; the
chat and the sources panel are rendered from it by ui.render (pure functions), so what is
shown and what follow-ups are resolved against can never drift apart.

API endpoints (gradio_client): "/ask" (question, k, mode, temperature) streaming
(chat, sources_html, question_box, export_file, answer_json); "/new_chat"; "/test_connection".
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gradio as gr
from pydantic import SecretStr
from starlette.middleware import Middleware

from assistant import links
from assistant.answer import Answerer
from assistant.errors import AssistantError, IndexMissing
from assistant.settings import Settings
from assistant.types import Answer, Source
from ui import render
from ui.guard import MAX_FILE_SIZE, RequestGuard

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
MODES = ("auto", "llm", "extractive")
MAX_K = 12
EXPORT_TTL_S = 600
# Longest question the UI takes when the settings carry no max_question_chars of their own
# (the answer pipeline enforces that one for every caller). Bounded well under
# ui.guard.MAX_BODY_BYTES even when every character is JSON-escaped.
MAX_QUESTION_CHARS = 4000


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
                "Choose “extractive” (or “auto”) under Settings › Answer mode to get an answer "
                "quoted from the papers. (Whoever runs the server can set OPENAI_BASE_URL.)")


# --- index ------------------------------------------------------------------------------


def ensure_index(settings: Settings, services: Any,
                 progress_cb: Callable[[int, int], None] | None = None) -> bool:
    """Build the index from settings.corpus_paths when the data dir has none (or an empty one).

    Prints what it does; `progress_cb(done, total)` is called per embedded batch (without
    one, a progress bar is printed). Returns True when it ingested.
    """
    from assistant.cli import terminal_safe
    from assistant.index import Index, ingest

    try:
        index = Index.open(settings)
        try:
            if index.stats()["papers"] > 0:
                return False
        finally:
            index.close()
    except IndexMissing:
        pass
    paths = ", ".join(str(p) for p in settings.corpus_paths)
    print(f"No index in {settings.data_dir}: ingesting {paths} first "
          "(once; later runs reuse it).", flush=True)
    report = ingest(settings, settings.corpus_paths, services.embedder,
                    progress=progress_cb is None, on_progress=progress_cb)
    print(terminal_safe(report.summary()), flush=True)
    if not report.files:
        raise AssistantError(f"No corpus file could be read from {paths}; nothing to serve.")
    services.reset_index()
    return True


# --- helpers ----------------------------------------------------------------------------


def _uses_openai(settings: Settings) -> bool:
    """Cost estimates only make sense on OpenAI's own endpoint."""
    url = settings.llm_base_url
    try:
        return url is None or (urlsplit(url).hostname or "").endswith("api.openai.com")
    except ValueError:  # a malformed URL ("http://[bad"): not OpenAI's; answers say why
        return False


def _public_url(url: str) -> str:
    """An endpoint URL without credentials or query string (it is shown on the page)."""
    from assistant.llm import display_url

    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
    except ValueError:
        return display_url(url)
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else url.split("?")[0]


def _code(text: str) -> str:
    return f"<code>{render.escape_html(text)}</code>"


def endpoint_status(settings: Settings) -> str:
    mode = settings.resolved_mode()
    if not settings.llm_configured:
        return ("No LLM endpoint configured: answers are **extractive** (quoted sentences). "
                "Set `OPENAI_BASE_URL` (and `OPENAI_API_KEY` if needed) to enable LLM answers.")
    from assistant.llm import OPENAI_URL

    url = _public_url(settings.llm_base_url or OPENAI_URL)
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


class ChatUI:
    """The event handlers, bound to one Services (shared by all sessions)."""

    def __init__(self, settings: Settings, services: Any) -> None:
        self.settings = settings
        self.services = services
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

    def new_chat(self) -> tuple:
        return [], [], render.EMPTY_SOURCES, "", self.export_file([]), None

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


def _static(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def build_app(settings: Settings, services: Any) -> gr.Blocks:
    """The UI as a gr.Blocks with its queue configured (launch it with launch_options())."""
    ui = ChatUI(settings, services)
    # delete_cache: exported files served from Gradio's cache go after a day.
    with gr.Blocks(title="Paper assistant", fill_width=True, analytics_enabled=False,
                   delete_cache=(3600, 86400)) as demo:
        answers = gr.State([])
        with gr.Row(elem_id="pa-header", equal_height=True):
            gr.HTML(
                '<div class="pa-brand"><span class="pa-logo">§</span><div>'
                '<div class="pa-name">Paper assistant</div><div class="pa-tag">Answers from '
                "paper abstracts. Every claim cites its paper; click a "
                '<span class="cite-demo">[n]</span> to see the sentences behind it.'
                "</div></div></div>", elem_id="pa-brand", js_on_load=None, scale=1)
            new_chat = gr.Button("New chat", size="sm", variant="secondary", scale=0,
                                 min_width=96, elem_id="pa-new")
            export = gr.DownloadButton("Export chat (.md)", value=ui.export_file([]),
                                       size="sm", scale=0, min_width=150, elem_id="pa-export")
            export_bib = gr.DownloadButton("References (.bib)", value=ui.export_bib([]),
                                           size="sm", scale=0, min_width=150,
                                           elem_id="pa-export-bib")
        with gr.Row(elem_id="pa-main", equal_height=False):
            with gr.Column(scale=3, min_width=420, elem_id="pa-chat-col"):
                chatbot = gr.Chatbot(
                    label="Conversation", show_label=False, elem_id="pa-chat",
                    height="calc(100vh - 370px)", min_height=360,
                    buttons=["copy", "copy_all"], latex_delimiters=[], sanitize_html=True,
                    allow_tags=False, feedback_options=None, autoscroll=True,
                    placeholder="Ask about the papers in the corpus, or pick an example below.",
                )
                with gr.Row(elem_id="pa-input"):
                    question = gr.Textbox(
                        label="Question", show_label=False,
                        placeholder="Ask a question about the papers…",
                        lines=1, max_lines=6, scale=6, autofocus=True, elem_id="pa-question",
                        container=False, max_length=question_limit(settings))
                    send = gr.Button("Send", variant="primary", scale=1, min_width=90,
                                     elem_id="pa-send")
                examples = gr.Examples(examples=[[q] for q in EXAMPLES], inputs=[question],
                                       example_labels=EXAMPLE_LABELS, label="Examples",
                                       examples_per_page=4)
                with gr.Accordion("Settings", open=False, elem_id="pa-settings"):
                    with gr.Row():
                        k = gr.Slider(1, MAX_K, value=min(settings.top_k, MAX_K), step=1,
                                      label="Papers to retrieve", elem_id="pa-k")
                        temperature = gr.Slider(0.0, 2.0, value=settings.temperature, step=0.05,
                                                label="Temperature (LLM mode)",
                                                elem_id="pa-temp")
                    mode = gr.Radio(list(MODES), value=settings.answer_mode, label="Answer mode",
                                    info="auto: LLM when an endpoint is configured, else "
                                         "extractive (quoted sentences, no LLM).",
                                    elem_id="pa-mode")
                    gr.Markdown(endpoint_status(settings), elem_id="pa-endpoint")
                    with gr.Row():
                        test = gr.Button("Test connection", size="sm", scale=0, min_width=150)
                        status = gr.Markdown("", elem_id="pa-conn")
                    stats = gr.Markdown("", elem_id="pa-stats")
                answer_json = gr.JSON(visible=False, label="Last answer")
            with gr.Column(scale=2, min_width=340, elem_id="pa-sources-col"):
                sources = gr.HTML(render.EMPTY_SOURCES, elem_id="pa-sources",
                                  js_on_load=_static("app.js"), padding=False)

        outputs = [chatbot, answers, sources, question, export, answer_json]
        inputs = [question, answers, k, mode, temperature]
        asked = [
            question.submit(ui.ask, inputs, outputs, api_name="ask", show_progress="hidden",
                            api_description="Ask a question; streams the conversation."),
            send.click(ui.ask, inputs, outputs, api_visibility="private",
                       show_progress="hidden"),
            examples.load_input_event.then(ui.ask, inputs, outputs, api_visibility="private",
                                           show_progress="hidden"),
        ]
        # The .bib follows each answer (and an emptied chat) as a step of its own.
        for event in asked:
            event.then(ui.export_bib, [answers], [export_bib], api_visibility="private",
                       queue=False, show_progress="hidden")
        new_chat.click(ui.new_chat, None, outputs, api_name="new_chat", cancels=asked,
                       queue=False).then(ui.export_bib, [answers], [export_bib],
                                         api_visibility="private", queue=False)
        chatbot.clear(ui.new_chat, None, outputs, api_visibility="private", cancels=asked,
                      queue=False)
        chatbot.select(ui.select, [answers], [sources], api_visibility="private",
                       queue=False, show_progress="hidden")
        test.click(ui.test_connection, None, status, api_name="test_connection")
        demo.load(lambda: corpus_stats(services), None, stats, api_visibility="private",
                  queue=False, show_progress="hidden")
    demo.queue(default_concurrency_limit=settings.ui_concurrency,
               max_size=settings.ui_max_queue)
    return demo


def parse_auth(auth: str | SecretStr | None) -> tuple[str, str] | None:
    """'user:password' (plain or SecretStr) -> ("user", "password"); None/'' -> None."""
    if isinstance(auth, SecretStr):
        auth = auth.get_secret_value()
    if not auth:
        return None
    user, sep, password = auth.partition(":")
    if not sep or not user or not password:
        raise ValueError("auth must look like 'user:password'")
    return user, password


def theme() -> gr.themes.Base:
    # Fonts bundled with Gradio or the system's: no request to Google Fonts.
    return gr.themes.Default(
        primary_hue="indigo", secondary_hue="slate", neutral_hue="slate",
        radius_size="md", text_size="md",
        font=[gr.themes.LocalFont("IBM Plex Sans"), "ui-sans-serif", "system-ui",
              "sans-serif"],
        font_mono=[gr.themes.LocalFont("IBM Plex Mono"), "ui-monospace", "monospace"],
    )


def launch_options(settings: Settings, host: str | None = None, port: int | None = None,
                   auth: str | SecretStr | None = None,
                   share: bool = False) -> dict[str, Any]:
    """launch() keyword arguments: local bind, optional login, no share link, our styling,
    and RequestGuard (the login on every route, no uploads)."""
    data_dir = str(Path(settings.data_dir).resolve())
    return dict(
        server_name=host or settings.ui_host,
        server_port=port or settings.ui_port,
        auth=parse_auth(auth if auth is not None else settings.ui_auth),
        auth_message="Paper assistant: sign in",
        share=share,
        allowed_paths=[],
        blocked_paths=[data_dir, str(Path(".env").resolve())],
        show_error=False,
        ssr_mode=False,
        mcp_server=False,
        theme=theme(),
        css=_static("app.css"),
        footer_links=["api", "settings"],
        max_file_size=MAX_FILE_SIZE,
        # openapi_url=None: FastAPI's own /openapi.json answered without a login.
        app_kwargs={"openapi_url": None, "middleware": [Middleware(RequestGuard)]},
    )


def launch(settings: Settings, services: Any, host: str | None = None,
           port: int | None = None, auth: str | SecretStr | None = None, share: bool = False,
           **overrides: Any) -> Any:
    """Build the app and serve it (blocks until stopped unless prevent_thread_lock=True)."""
    demo = build_app(settings, services)
    options = launch_options(settings, host=host, port=port, auth=auth, share=share)
    options.update(overrides)
    if options["server_name"] not in ("127.0.0.1", "localhost", "::1") and not options["auth"]:
        print(f"warning: serving on {options['server_name']} without a login; anyone who can "
              "reach this port can use the assistant (set ASSISTANT_UI_AUTH=user:password).",
              flush=True)
    demo.launch(**options)
    return demo
