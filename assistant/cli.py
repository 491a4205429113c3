"""The `assistant` command: ingest | search | stats | ask | chat | ui | eval."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core

from assistant.corpus import scrub_surrogates
from assistant.errors import AssistantError
from assistant.settings import Settings


class _Commands(typer.core.TyperGroup):
    """`assistant --help` lists each command's first sentence whole (wrapped, not cut)."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


app = typer.Typer(
    help="Chat with a corpus of paper abstracts; every claim cites a numbered paper.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts contain [n] citations, not markup
    cls=_Commands,
)

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


def fail(message: str, code: int = 1) -> None:
    say(f"error: {message}", fg="red", err=True)
    raise typer.Exit(code)


def read_batch(path: Path, key: str) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """Yield (line number, record, error) for each non-blank line of a JSONL batch file."""
    with path.open(encoding="utf-8", errors="replace") as fh:
        for no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                # Round trip with lone surrogates ("\\ud800" escapes) scrubbed: the tokenizer
                # and the UTF-8 output reject them.
                obj = json.loads(scrub_surrogates(json.dumps(json.loads(line),
                                                             ensure_ascii=False)))
            except (ValueError, RecursionError) as e:  # also ints over 4300 digits, deep nests
                reason = getattr(e, "msg", None) or (
                    "nested too deeply" if isinstance(e, RecursionError) else "number too long")
                yield no, None, f"{path}:{no}: not valid JSON ({reason})"
                continue
            if not isinstance(obj, dict) or not isinstance(obj.get(key), str) \
                    or not obj[key].strip():
                yield no, None, f"{path}:{no}: expected an object with a string '{key}' field"
                continue
            yield no, obj, None


_LINE_BREAKS = str.maketrans({"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def emit(obj: dict[str, Any]) -> None:
    # Escaped, the Unicode line breaks str.splitlines() (and older JavaScript) split on
    # cannot cut one JSON record into two lines.
    sys.stdout.write(json.dumps(obj, ensure_ascii=False).translate(_LINE_BREAKS) + "\n")
    sys.stdout.flush()


# --- ingest / search / stats ------------------------------------------------------------


@app.command()
def ingest(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="Corpus files or folders: HF listing pages (.txt), JSON Lines with title and "
        "abstract, or arXiv metadata snapshots (default: seeds/).", show_default=False)] = None,
    rebuild: Annotated[bool, typer.Option(
        help="Re-embed everything into a fresh index (needed after changing the embedding "
        "model); the old index serves until the new one is complete.")] = False,
    prune: Annotated[bool, typer.Option(
        help="Remove indexed papers that are no longer in the given files.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Read the corpus and bring the index up to date (only new or changed papers are embedded).

    Example: assistant ingest seeds/ my_papers.jsonl --prune
    """
    from assistant.embeddings import make_embedder
    from assistant.index import ingest as run_ingest

    settings = load_settings(data_dir)
    try:
        report = run_ingest(settings, paths or settings.corpus_paths, make_embedder(settings),
                            rebuild=rebuild, prune=prune, progress=not quiet)
    except AssistantError as e:
        fail(str(e))
    say(report.summary())
    if not report.files:
        fail("no corpus file could be read; nothing was changed in the index.")


@app.command()
def search(
    query: Annotated[str | None, typer.Argument(help="What to look for, in plain words.")] = None,
    k: TopK = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    batch: Batch = None,
    fusion: Annotated[str | None, typer.Option(
        help="convex or rrf (hybrid), dense or bm25 (default: settings.fusion).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Find the papers most relevant to QUERY (hybrid dense + keyword retrieval).

    JSON shape: {"query", "results": [{"paper_id", "title", "score", "snippet", "url"}]}
    (url: the paper's arXiv page, or an arXiv title search when no arXiv id is known).
    Batch: assistant search --batch queries.jsonl  (one {"query": ...} per line).
    """
    from assistant.services import Services

    if (query is None) == (batch is None):
        fail("give either a QUERY or --batch FILE.jsonl (see assistant search --help).", 2)
    if fusion not in (None, "convex", "rrf", "dense", "bm25"):
        fail(f"--fusion must be convex, rrf, dense or bm25, not {fusion!r}.", 2)
    if query is not None:
        query = scrub_surrogates(query)  # undecodable argv bytes arrive as lone surrogates
    services = Services(load_settings(data_dir))

    def run(q: str) -> dict[str, Any]:
        from assistant.links import attach_hits

        hits = attach_hits(services.retriever.search(q, k=k, fusion=fusion), services.retriever)
        return {"query": q, "results": [
            {"paper_id": h.paper_id, "title": h.title, "score": h.score, "snippet": h.snippet,
             "url": h.url} for h in hits]}

    try:
        if batch is not None:
            for _, obj, err in read_batch(batch, "query"):
                if err:
                    emit({"error": err})
                    continue
                emit({**obj, **run(obj["query"])})
            return
        result = run(query)
    except AssistantError as e:
        fail(str(e))
    if as_json:
        emit(result)
        return
    from assistant.display import clean_latex

    if not result["results"]:
        say("No matching papers.")
    for i, r in enumerate(result["results"], start=1):
        say(f"{i}. {r['title']}", bold=True)
        say(f"   score {r['score']:.3f} · {r['paper_id']}")
        say(f"   {r['url']}")
        snippet = clean_latex(r["snippet"])  # display only: --json keeps the stored text
        say(f"   {snippet[:240]}{'…' if len(snippet) > 240 else ''}")


@app.command()
def stats(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Show what is indexed: papers, chunks, embedding model, location and size on disk."""
    from assistant.index import Index

    try:
        index = Index.open(load_settings(data_dir))
        facts = index.stats()
    except AssistantError as e:
        fail(str(e))
    if as_json:
        emit(facts)
        return
    for key, value in facts.items():
        say(f"{key.replace('_', ' '):>16}: {value}")


def main() -> None:
    from assistant import commands  # noqa: F401  (registers ask/chat/ui)
    from evals import command  # noqa: F401  (registers eval)

    app()


if __name__ == "__main__":
    main()
