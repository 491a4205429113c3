"""`assistant feedback export`: 👎 answers from the UI -> candidate eval questions to review.

Each 👎 stored by the UI (assistant/history.py, with the full Answer) becomes one JSON line in
the dev-set format of evals/datasets/dev_styles.jsonl (id, type, question, gold_titles,
expected_keywords, style, notes), plus a `review` object with what the answer cited, the
reason given and the answer itself. gold_titles is left empty: a person fills them in (or,
for "should have abstained", keeps them empty: an off-corpus question) before the line goes
into the dev set.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from assistant.history import FILENAME, Feedback, History

# "should have abstained": the corpus does not answer it, an off-corpus question (no gold);
# the other reasons are answerable questions whose gold paper a reviewer names.
_TYPE = {"should have abstained": "offcorpus"}


def candidate(fb: Feedback) -> dict[str, Any]:
    """One 👎 as a candidate eval question (dev_styles.jsonl fields + `review`)."""
    a = fb.answer
    cited = [{"n": c.n, "paper_id": c.paper_id, "title": c.title} for c in a.citations]
    shown = [{"n": s.n, "paper_id": s.paper_id, "title": s.title, "cited": s.cited}
             for s in a.sources]
    reason = fb.reason or "unspecified"
    when = datetime.fromtimestamp(fb.created, UTC).strftime("%Y-%m-%d %H:%M UTC")
    what = ("abstained" if a.abstained
            else f"cited {', '.join(c.title for c in a.citations)}" if cited else "cited nothing")
    return {
        "id": f"fb-{fb.id:04d}",
        "type": _TYPE.get(reason, "lookup"),
        "question": fb.question,
        "gold_titles": [],
        "expected_keywords": [],
        "style": ["feedback"],
        "notes": f"FOR REVIEW: 👎 ({reason}) on {when}; the answer {what}. Fill gold_titles "
                 "(empty for an off-corpus question) before adding it to the dev set.",
        "review": {
            "reason": fb.reason,
            "abstained": a.abstained,
            "cited": cited,
            "sources": shown,
            "answer": a.answer,
            "mode": a.mode,
            "searched_for": a.searched_for or a.standalone_query,
            "conversation_id": fb.conversation_id,
            "turn": fb.position,
            "user": fb.user,
        },
    }


def export_candidates(history: History) -> list[dict[str, Any]]:
    """Every 👎 in the store, oldest first, as candidate eval questions."""
    return [candidate(fb) for fb in history.feedback(rating="down")]


def write_jsonl(rows: list[dict[str, Any]], out: Path | None) -> None:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")


cli = typer.Typer(help="Answer feedback from the UI (👍/👎 with a reason).",
                  no_args_is_help=True, add_completion=False, rich_markup_mode=None)


@cli.command("export")
def export(
    out: Annotated[Path | None, typer.Option(
        "--out", help="Write the JSON Lines here (default: print them).", dir_okay=False)] = None,
    data_dir: Annotated[Path | None, typer.Option(
        "--data-dir", envvar="ASSISTANT_DATA_DIR",
        help="Folder holding the index and the UI's history (default: ./data).",
        show_default=False)] = None,
) -> None:
    """Turn 👎 answers into candidate eval questions (dev-set JSONL).

    One line per 👎: question, gold_titles (empty: to review), the reason given and what the
    answer cited. Review each line, then add it to evals/datasets/.
    """
    from assistant.console import fail, load_settings

    settings = load_settings(data_dir)
    path = Path(settings.data_dir) / FILENAME
    if not path.exists():
        fail(f"no feedback yet: {path} does not exist (rate answers with 👍/👎 in "
             "`assistant ui` first).")
    rows = export_candidates(History(path))
    write_jsonl(rows, out)
    if out is not None:
        typer.echo(f"{len(rows)} candidate question{'s' if len(rows) != 1 else ''} "
                   f"written to {out}", err=True)
