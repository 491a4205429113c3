"""Prompt templates as files in prompts/, loaded by name, variables checked at load time.

Placeholders are written {{name}}. A template is rejected at load when it lacks a variable
its caller needs; rendering is rejected when a variable is missing or unexpected. Values are
substituted once, so braces inside an abstract are never re-interpreted.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

from assistant.citations import defang
from assistant.errors import PromptError

# Package data: the repo's top-level prompts/ ships inside the wheel as
# assistant/prompt_files/ (in the checkout, assistant/prompt_files is a link to ../prompts).
PROMPTS_DIR: Traversable = resources.files("assistant") / "prompt_files"
_VAR = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")

# The one sentence that means "the sources do not answer". Shared by the prompt (injected as
# a variable), the answer parser and the tests — change it here and everything follows.
ABSTAIN_PHRASE = "The corpus does not cover this question."

# What each template must contain.
REQUIRED = {
    "system": {"abstain_phrase"},
    "answer": {"sources", "question", "abstain_phrase"},
    "condense": {"history", "question"},
    "source": {"n", "title", "abstract"},
}


class Prompt:
    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
        self.variables = set(_VAR.findall(text))

    def render(self, **values: object) -> str:
        missing = self.variables - values.keys()
        extra = values.keys() - self.variables
        if missing or extra:
            raise PromptError(
                f"prompts/{self.name}.md: missing {sorted(missing)}, unexpected {sorted(extra)}"
            )
        return _VAR.sub(lambda m: str(values[m.group(1)]), self.text)


@cache
def load(name: str, directory: Traversable = PROMPTS_DIR) -> Prompt:
    path = directory / f"{name}.md"
    if not path.is_file():
        raise PromptError(f"{path}: prompt file missing (expected one of {sorted(REQUIRED)}).")
    prompt = Prompt(name, path.read_text(encoding="utf-8"))
    need = REQUIRED.get(name, set())
    if need - prompt.variables:
        raise PromptError(
            f"{path}: the template must use {sorted(need - prompt.variables)} "
            f"(written as {{{{name}}}})."
        )
    return prompt


def fence(text: str) -> str:
    """Keep source text from closing or opening the fence it sits in, and from posing as a
    citation marker ("[2]" in source 5's abstract is its own reference, not source 2)."""
    return defang(re.sub(r"<(/?)(sources?)\b", r"‹\1\2", text, flags=re.IGNORECASE))
