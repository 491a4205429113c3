"""The README's promises that code can check: the configuration table matches the Settings
fields, and the quickstart commands are the Makefile targets CI runs."""

from __future__ import annotations

from pathlib import Path

from assistant.config_docs import replace_table
from assistant.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_configuration_table_matches_settings():
    text = README.read_text()
    assert text == replace_table(text), "run: .venv/bin/python -m assistant.config_docs"
    for name in Settings.model_fields:
        if name not in ("llm_base_url", "llm_api_key"):
            assert f"`ASSISTANT_{name.upper()}`" in text
    assert "`OPENAI_BASE_URL`" in text and "`OPENAI_API_KEY`" in text


def test_quickstart_is_make_run_and_make_test_and_ci_runs_make_test():
    quick = README.read_text().split("## Quickstart", 1)[1].split("##", 1)[0]
    commands = [line.split("#")[0].strip() for line in quick.splitlines()
                if line.startswith("make ")]
    assert commands == ["make run", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert "\nrun: setup\n" in makefile and "\ntest: setup" in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text()
