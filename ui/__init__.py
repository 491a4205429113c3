"""The Gradio chat UI (ui.app) and its pure rendering functions (ui.render)."""
