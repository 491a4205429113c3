"""The Gradio chat UI, wired: layout (ui/layout.py) + handlers (ui/handlers.py) -> gr.Blocks.

    build_app(settings, services) -> gr.Blocks     the app, queue configured, not launched
    launch_options(settings, ...)  -> dict         launch() keyword arguments (safe defaults)
    launch(settings, services, ...)                build + launch (what `assistant ui` runs)

Per browser session the conversation is a gr.State holding the list of Answer objects (and
the id of its saved copy, assistant/history.py); the chat and the sources panel are
rendered from it by ui.render (pure functions), so what is shown and what follow-ups are
resolved against can never drift apart.

API endpoints (gradio_client): "/ask" (question, k, mode, temperature) streaming
(chat, sources_html, question_box, export_file, answer_json, then the sidebar list, the
follow-up chips and the feedback note); "/new_chat"; "/test_connection".
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import gradio as gr
from pydantic import SecretStr
from starlette.middleware import Middleware

from assistant.history import History
from assistant.settings import Settings
from ui.guard import MAX_FILE_SIZE, RequestGuard
from ui.handlers import (  # noqa: F401  (re-exported: ui.app is the UI's entry point)
    EXAMPLE_LABELS,
    EXAMPLES,
    MAX_K,
    MAX_QUESTION_CHARS,
    MODES,
    NO_LLM_IN_UI,
    ChatUI,
    corpus_stats,
    endpoint_status,
    question_limit,
)
from ui.layout import STATIC, build_layout, static  # noqa: F401

# --- index ------------------------------------------------------------------------------


# --- the app ----------------------------------------------------------------------------


def build_app(settings: Settings, services: Any, history: History | None = None) -> gr.Blocks:
    """The UI as a gr.Blocks with its queue configured (launch it with launch_options()).

    Conversations are saved in `history` (default: the data dir's history.sqlite3)."""
    ui = ChatUI(settings, services, history=history)
    # delete_cache: exported files served from Gradio's cache go after a day.
    with gr.Blocks(title="Paper assistant", fill_width=True, analytics_enabled=False,
                   delete_cache=(3600, 86400)) as demo:
        page = build_layout(settings, ui)
        turn_in, turn_out = page.turn_inputs(), page.turn_outputs()
        quiet: dict[str, Any] = dict(api_visibility="private", show_progress="hidden")
        asked = [
            page.question.submit(ui.ask_turn, [page.question, *turn_in], turn_out,
                                 api_name="ask", show_progress="hidden",
                                 api_description="Ask a question; streams the conversation."),
            page.send.click(ui.ask_turn, [page.question, *turn_in], turn_out, **quiet),
            page.examples.load_input_event.then(ui.ask_turn, [page.question, *turn_in],
                                                turn_out, **quiet),
            page.chatbot.retry(ui.retry, turn_in, turn_out, **quiet),
            page.chatbot.edit(ui.edit, turn_in, turn_out, **quiet),
            *(chip.click(ui.ask_chip, [chip, *turn_in], turn_out, **quiet)
              for chip in page.chips),
        ]
        # The .bib follows each answer (and an emptied chat) as a step of its own.
        for event in asked:
            event.then(ui.export_bib, [page.answers], [page.export_bib], queue=False, **quiet)
        # Cancel first, then redraw: no late update of the cancelled answer lands after it.
        page.stop.click(None, None, None, cancels=asked, queue=False, **quiet).then(
            ui.stopped, [page.answers], [page.chatbot, page.sources, *page.chips, page.note],
            queue=False, **quiet)
        page.new_chat.click(ui.new_chat, None, turn_out, api_name="new_chat", cancels=asked,
                            queue=False).then(ui.export_bib, [page.answers], [page.export_bib],
                                              api_visibility="private", queue=False)
        page.chatbot.clear(ui.new_chat, None, turn_out, cancels=asked, queue=False, **quiet)
        page.chatbot.select(ui.select, [page.answers], [page.sources], queue=False, **quiet)
        page.chatbot.like(ui.like, [page.answers, page.conv], [page.note], queue=False,
                          **quiet)
        page.history.input(ui.open_chat, [page.history], turn_out, cancels=asked,
                           queue=False, **quiet).then(
            ui.export_bib, [page.answers], [page.export_bib], queue=False, **quiet)
        page.rename.click(ui.rename, [page.conv, page.rename_box],
                          [page.history, page.rename_box], queue=False, **quiet)
        page.rename_box.submit(ui.rename, [page.conv, page.rename_box],
                               [page.history, page.rename_box], queue=False, **quiet)
        page.delete.click(ui.delete, [page.conv], turn_out, cancels=asked, queue=False,
                          **quiet).then(ui.export_bib, [page.answers], [page.export_bib],
                                        queue=False, **quiet)
        page.test.click(ui.test_connection, None, page.status, api_name="test_connection")
        demo.load(ui.on_load, None, [page.stats, page.history], queue=False, **quiet)
    demo.queue(default_concurrency_limit=settings.ui_concurrency,
               max_size=settings.ui_max_queue)
    return demo


def parse_auth(auth: str | SecretStr | None) -> tuple[str, str] | list[tuple[str, str]] | None:
    """'user:password' (plain or SecretStr) -> ("user", "password"); None/'' -> None.

    Several logins, each with its own saved conversations: 'alice:pw1,bob:pw2' -> a list of
    pairs (split at commas only when every piece is a user:password pair, so a single
    password may still contain a comma)."""
    if isinstance(auth, SecretStr):
        auth = auth.get_secret_value()
    if not auth:
        return None
    pieces = [p.strip() for p in auth.split(",")]
    if len(pieces) > 1 and all(_pair(p) for p in pieces):
        pairs = [_pair(p) for p in pieces]
        if len({u for u, _ in pairs}) != len(pairs):
            raise ValueError("auth names a user twice")
        return pairs  # type: ignore[return-value]
    pair = _pair(auth)
    if pair is None:
        raise ValueError("auth must look like 'user:password' (several: 'a:pw1,b:pw2')")
    return pair


def _pair(text: str) -> tuple[str, str] | None:
    user, sep, password = text.partition(":")
    return (user, password) if sep and user and password else None


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
        css=static("app.css"),
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
    # In the background while the server starts: the first answer need not wait for it.
    threading.Thread(target=_warm, args=(services,), daemon=True, name="warm").start()
    options = launch_options(settings, host=host, port=port, auth=auth, share=share)
    options.update(overrides)
    if options["server_name"] not in ("127.0.0.1", "localhost", "::1") and not options["auth"]:
        print(f"warning: serving on {options['server_name']} without a login; anyone who can "
              "reach this port can use the assistant (set ASSISTANT_UI_AUTH=user:password).",
              flush=True)
    demo.launch(**options)
    return demo


def _warm(services: Any) -> None:
    try:
        services.answerer.warm()
    except Exception as e:  # noqa: BLE001 - a failed warm-up only costs the first answer time
        print(f"note: warm-up skipped ({type(e).__name__}: {e})", flush=True)
