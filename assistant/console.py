"""What every command shares: option types, settings loading, and terminal output.

Terminal output goes through terminal_safe (corpus and model text may hold control
characters); --json output goes through emit (one JSON object per line). Used by the
commands (assistant/commands.py, evals/command.py) and, for terminal_safe, by the UI's
launcher; it registers no command (that is assistant/cli.py's job alone).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from assistant.corpus import scrub_surrogates
from assistant.jsonl import invalid_reason, read_jsonl
from assistant.settings import Settings

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="ASSISTANT_DATA_DIR",
                 help="Folder holding the index (default: ./data).", show_default=False),
]
TopK = Annotated[int | None, typer.Option("-k", "--top-k", min=1, max=50,
                                          help="Number of papers (default: settings.top_k).")]
Batch = Annotated[Path | None, typer.Option(
    "--batch", help="JSON Lines file, one request per line; prints one JSON result per line.",
    exists=True, dir_okay=False)]


def load_settings(data_dir: Path | None, **overrides: Any) -> Settings:
    from pydantic import ValidationError

    try:
        settings = Settings().with_data_dir(data_dir)
    except ValidationError as e:
        fail(settings_error(e))
    clean = {k: v for k, v in overrides.items() if v is not None}
    return settings.model_copy(update=clean) if clean else settings


def settings_error(error: Any) -> str:
    """A pydantic ValidationError of Settings as one line naming the variables."""
    fields = Settings.model_fields
    problems = []
    for err in error.errors():
        name = str(err["loc"][0]) if err.get("loc") else "?"
        field = fields.get(name)
        alias = getattr(field, "validation_alias", None) if field else None
        choices = getattr(alias, "choices", None)
        variable = str(choices[0]) if choices else f"ASSISTANT_{name.upper()}"
        got = err.get("input")
        shown = "" if field is not None and "secret" in str(field.annotation).lower() \
            else f" (got {str(got)[:40]!r})"
        problems.append(f"{variable}: {err['msg']}{shown}")
    return "invalid setting: " + "; ".join(problems) + ". Fix the environment or .env."


# C0 controls but tab and newline, DEL and C1 controls: corpus text (titles, abstracts, file
# names, model replies quoting them) could otherwise set the window title (ESC]0), hide a
# link (ESC]8), write the clipboard (ESC]52), clear the screen (ESC[2J), ring the bell or
# overwrite what was printed (backspace, CR). With the ESC gone, what followed it is text.
_TERMINAL_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(text: object) -> str:
    """`text` for a human's terminal: control characters (but \\n and \\t) removed.

    Used for everything the CLI prints that may hold corpus or model text; --json output
    escapes them instead (json.dumps) and does not pass through here.
    """
    return _TERMINAL_CONTROLS.sub("", str(text))


def say(text: object = "", **style: Any) -> None:
    """typer.secho for human-readable output, with terminal_safe applied."""
    typer.secho(terminal_safe(text), **style)


def fail(message: str, code: int = 1) -> NoReturn:
    say(f"error: {message}", fg="red", err=True)
    raise typer.Exit(code)


def read_batch(path: Path, key: str) -> Iterator[tuple[int, dict[str, Any], str | None]]:
    """Yield (line number, record, error) for each non-blank line of a JSONL batch file
    (the record is {} when there is an error)."""
    for no, value, error in read_jsonl(path, errors="replace"):
        if error:
            yield no, {}, error
            continue
        try:
            # Round trip with lone surrogates ("\\ud800" escapes) scrubbed: the tokenizer and
            # the UTF-8 output reject them.
            obj = json.loads(scrub_surrogates(json.dumps(value, ensure_ascii=False)))
        except (ValueError, RecursionError) as e:
            yield no, {}, f"{path}:{no}: not valid JSON ({invalid_reason(e)})"
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get(key), str) \
                or not obj[key].strip():
            yield no, {}, f"{path}:{no}: expected an object with a string '{key}' field"
            continue
        yield no, obj, None


_LINE_BREAKS = str.maketrans({"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def emit(obj: dict[str, Any]) -> None:
    # Escaped, the Unicode line breaks str.splitlines() (and older JavaScript) split on
    # cannot cut one JSON record into two lines.
    sys.stdout.write(json.dumps(obj, ensure_ascii=False).translate(_LINE_BREAKS) + "\n")
    sys.stdout.flush()
