"""Reading JSON Lines with the line of every bad record named: one reader for the batch files
of the commands, the eval question sets and the external benchmark files. (Corpus files
stream through assistant/corpus.py, which also counts bytes and bounds line sizes.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def read_jsonl(path: Path, *, errors: str = "strict") -> Iterator[tuple[int, Any, str | None]]:
    """(line number, value, None) for each non-blank line, or (line number, None, message)
    for a line that is not JSON: "PATH:N: not valid JSON (reason)". `errors` is how bytes
    that are not UTF-8 are decoded ("replace" for input that should never stop a batch)."""
    with Path(path).open(encoding="utf-8", errors=errors) as fh:
        for no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except (ValueError, RecursionError) as e:  # also ints over 4300 digits, deep nests
                yield no, None, f"{path}:{no}: not valid JSON ({invalid_reason(e)})"
                continue
            yield no, value, None


def invalid_reason(error: Exception) -> str:
    """Why json.loads refused a text, in a few words."""
    return getattr(error, "msg", None) or (
        "nested too deeply" if isinstance(error, RecursionError) else "number too long")
