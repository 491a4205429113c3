"""The page's components, laid out; no event wiring (ui/app.py) and no handlers (ui/handlers.py).

    layout = build_layout(settings, ui)   # inside `with gr.Blocks() as demo:`

A sidebar of saved conversations (open, rename, delete), a header, the chat with its input
row, follow-up chips and examples, the answer options, and the sources column.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from assistant.settings import Settings
from ui import render
from ui.handlers import (
    EXAMPLE_LABELS,
    EXAMPLES,
    FEEDBACK_OPTIONS,
    MAX_CHIPS,
    MAX_K,
    MODES,
    ChatUI,
    endpoint_status,
    question_limit,
)

STATIC = Path(__file__).resolve().parent / "static"


def static(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


@dataclass
class Layout:
    """The components event wiring needs."""

    answers: gr.State
    conv: gr.State
    history: gr.Radio
    rename_box: gr.Textbox
    rename: gr.Button
    delete: gr.Button
    new_chat: gr.Button
    export: gr.DownloadButton
    export_bib: gr.DownloadButton
    chatbot: gr.Chatbot
    question: gr.Textbox
    send: gr.Button
    stop: gr.Button
    chips: list[gr.Button]
    note: gr.Markdown
    examples: gr.Examples
    k: gr.Slider
    temperature: gr.Slider
    mode: gr.Radio
    test: gr.Button
    status: gr.Markdown
    stats: gr.Markdown
    answer_json: gr.JSON
    sources: gr.HTML

    def turn_inputs(self) -> list[Any]:
        """What a turn reads besides its question."""
        return [self.answers, self.k, self.mode, self.temperature, self.conv]

    def turn_outputs(self) -> list[Any]:
        """What a turn (and opening a chat, New chat) writes: ChatUI.ask's six outputs, then
        the conversation id, the sidebar list, the chips and the feedback note."""
        return [self.chatbot, self.answers, self.sources, self.question, self.export,
                self.answer_json, self.conv, self.history, *self.chips, self.note]


def build_layout(settings: Settings, ui: ChatUI) -> Layout:
    """Create the components (call inside a gr.Blocks context)."""
    answers = gr.State([])
    conv = gr.State(None)
    with gr.Sidebar(open=False, label="Conversations", elem_id="pa-sidebar", width=300):
        gr.Markdown("**Your conversations**", elem_id="pa-history-head")
        history = gr.Radio([], value=None, label="Saved conversations", show_label=False,
                           elem_id="pa-history", info="Saved as you ask; pick one to reopen "
                           "it with its sources.")
        rename_box = gr.Textbox(label="Rename the open conversation", max_length=200,
                                placeholder="New title…", elem_id="pa-rename-box", lines=1)
        with gr.Row():
            rename = gr.Button("Rename", size="sm", elem_id="pa-rename")
            delete = gr.Button("Delete", size="sm", variant="stop", elem_id="pa-delete")
    with gr.Row(elem_id="pa-header", equal_height=True):
        gr.HTML(
            '<div class="pa-brand"><span class="pa-logo">§</span><div>'
            '<div class="pa-name">Paper assistant</div><div class="pa-tag">Answers from '
            "paper abstracts. Every claim cites its paper; click a "
            '<span class="cite-demo">[n]</span> to see the sentences behind it.'
            "</div></div></div>", elem_id="pa-brand", js_on_load=None, scale=1)
        with gr.Row(elem_id="pa-actions", equal_height=True):
            new_chat = gr.Button("New chat", size="sm", variant="secondary", scale=0,
                                 min_width=96, elem_id="pa-new")
            export = gr.DownloadButton("Export chat (.md)", value=ui.export_file([]),
                                       size="sm", scale=0, min_width=150, elem_id="pa-export")
            export_bib = gr.DownloadButton("References (.bib)", value=ui.export_bib([]),
                                           size="sm", scale=0, min_width=150,
                                           elem_id="pa-export-bib")
    with gr.Row(elem_id="pa-main", equal_height=False):
        with gr.Column(scale=3, min_width=300, elem_id="pa-chat-col"):
            chatbot = gr.Chatbot(
                label="Conversation", show_label=False, elem_id="pa-chat",
                height="calc(100vh - 400px)", min_height=360,
                buttons=["copy", "copy_all"], latex_delimiters=[], sanitize_html=True,
                allow_tags=False, feedback_options=FEEDBACK_OPTIONS, editable="user",
                autoscroll=True,
                placeholder="Ask about the papers in the corpus, or pick an example below.",
            )
            with gr.Row(elem_id="pa-chips", equal_height=True):
                chips = [gr.Button("", visible=False, size="sm", variant="secondary",
                                   scale=0, elem_classes=["pa-chip"], elem_id=f"pa-chip-{i}")
                         for i in range(MAX_CHIPS)]
            with gr.Row(elem_id="pa-input"):
                question = gr.Textbox(
                    label="Question", show_label=False,
                    placeholder="Ask a question about the papers…",
                    lines=1, max_lines=6, scale=6, autofocus=True, elem_id="pa-question",
                    container=False, max_length=question_limit(settings))
                send = gr.Button("Send", variant="primary", scale=1, min_width=90,
                                 elem_id="pa-send")
                stop = gr.Button("Stop", variant="secondary", scale=0, min_width=70,
                                 elem_id="pa-stop")
            note = gr.Markdown("", elem_id="pa-note")
            examples = gr.Examples(examples=[[q] for q in EXAMPLES], inputs=[question],
                                   example_labels=EXAMPLE_LABELS, label="Examples",
                                   examples_per_page=4)
            # "Answer options", not "Settings": Gradio's footer has a Settings of its own.
            with gr.Accordion("Answer options", open=False, elem_id="pa-settings"):
                with gr.Row():
                    k = gr.Slider(1, MAX_K, value=min(settings.top_k, MAX_K), step=1,
                                  label="Papers to retrieve", elem_id="pa-k")
                    temperature = gr.Slider(0.0, 2.0, value=settings.temperature, step=0.05,
                                            label="Temperature (LLM mode)", elem_id="pa-temp")
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
        with gr.Column(scale=2, min_width=300, elem_id="pa-sources-col"):
            sources = gr.HTML(render.EMPTY_SOURCES, elem_id="pa-sources",
                              js_on_load=static("app.js"), padding=False)
    return Layout(answers, conv, history, rename_box, rename, delete, new_chat, export,
                  export_bib, chatbot, question, send, stop, chips, note, examples, k,
                  temperature, mode, test, status, stats, answer_json, sources)
