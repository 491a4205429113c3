"""The README's configuration table, generated from the Settings fields so it cannot drift.

`python -m assistant.config_docs` rewrites the table between the README's markers;
tests/test_readme.py fails when the committed table differs from the fields.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import AliasChoices, SecretStr

from assistant.settings import Settings

BEGIN, END = "<!-- settings-table -->", "<!-- /settings-table -->"
# Run from the checkout's root (a development tool: the README is not package data).
README = Path("README.md")


def _env_name(name: str, field) -> str:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        # The openai client's own variable when it is one of the choices.
        names = [c for c in alias.choices if isinstance(c, str)]
        upper = [c for c in names if c.isupper()]
        return (upper or names)[0].upper()
    return f"ASSISTANT_{name.upper()}"


def _default(value) -> str:
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def settings_table() -> str:
    rows = ["| Variable | Default | What it does |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        desc = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{_env_name(name, field)}` | `{_default(field.default)}` | {desc} |")
    return "\n".join(rows)


def replace_table(readme: str) -> str:
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{settings_table()}\n{END}{tail}"


if __name__ == "__main__":
    text = README.read_text()
    README.write_text(replace_table(text))
    sys.stdout.write("README configuration table updated\n")
