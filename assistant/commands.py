"""The commands of `assistant` (but eval: evals/command.py), as plain functions.

Registered on the app in one place, assistant/cli.py; importing this module registers
nothing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from assistant.console import (
    Batch,
    DataDir,
    TopK,
    emit,
    fail,
    load_settings,
    read_batch,
    say,
)
from assistant.corpus import scrub_surrogates
from assistant.errors import AssistantError
from assistant.settings import AnswerMode, Fusion, choices
from assistant.types import Answer

MODES = {m.value for m in AnswerMode}
FUSIONS = {f.value for f in Fusion}

Mode = Annotated[str | None, typer.Option(
    "--mode", help="llm (needs OPENAI_BASE_URL or OPENAI_API_KEY) or extractive "
    "(no LLM: cited sentences from the abstracts). Default: llm when configured.")]


def _check_mode(mode: str | None) -> None:
    if mode is not None and mode not in MODES:
        fail(f"--mode must be llm or extractive, not {mode!r}.", 2)


def _services(data_dir: Path | None, k: int | None = None):
    from assistant.services import Services

    return Services(load_settings(data_dir, top_k=k))


# --- ingest / search / stats ------------------------------------------------------------


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
    if fusion is not None and fusion not in FUSIONS:
        fail(f"--fusion must be {choices(Fusion)}, not {fusion!r}.", 2)
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
        assert query is not None
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


# --- answering ------------------------------------------------------------------------


def print_answer(services, question: str, history: list[Answer], mode: str | None,
                 k: int | None) -> Answer:
    """Stream an answer to the terminal; returns the checked Answer (urls filled).

    Printed as plain text: the answer's Markdown emphasis (**title**) is dropped and LaTeX
    residue of the abstracts cleaned (assistant/display.py).
    """
    from assistant.display import PlainStream, clean_latex, plain
    from assistant.links import attach

    final: Answer | None = None
    streamed = ""
    out = PlainStream()
    for event in services.answerer.stream(question, history, mode, k):
        if event.kind == "token":
            streamed += event.data
            say(clean_latex(out.feed(event.data)), nl=False)
        elif event.kind == "answer":
            final = event.data
    assert final is not None
    say(clean_latex(out.flush()), nl=False)
    attach(final, services.retriever)
    if final.error or final.answer.strip() != streamed.strip():
        # The citation check changed the text (or the stream failed): show the final version.
        say("\n\n" + ("" if final.error else "Checked answer:\n")
            + clean_latex(plain(final.answer)), nl=False)
    say("\n")
    if final.citations:
        say("References", bold=True)
        for c in final.citations:
            say(f"  [{c.n}] {c.title}  ({c.paper_id})")
            say(f"      {c.url}", dim=True)
    if final.removed_citations:
        say(f"Removed citations to non-sources: {final.removed_citations}", fg="yellow")
    if final.flagged_sentences:
        say(f"{len(final.flagged_sentences)} sentence(s) cite nothing.", fg="yellow")
    print_claim_flags(final)
    from assistant.support import unstated_text

    if note := unstated_text(final):
        say(f"⚠ Premise: {note}", fg="yellow")
    if final.corrections:  # the spelling was fixed: say what was actually searched
        say(f"Searched for: {final.searched_for}", dim=True)
    facts = f"mode: {final.mode} · {final.timings_ms.get('total_ms', 0):.0f} ms"
    if final.usage:
        facts += f" · {final.usage.total_tokens} tokens"
    say(facts, dim=True)
    return final


def print_claim_flags(answer: Answer) -> None:
    """The claim check's flags: each sentence not supported by the paper it cites, and why."""
    from assistant.support import claim_flag_text

    flags = [(c, f) for c in answer.claims if (f := claim_flag_text(c))]
    if not flags:
        return
    say(f"Claim check: {len(flags)} sentence(s) not supported by the cited paper", fg="yellow")
    for c, flag in flags:
        sentence = c.sentence if len(c.sentence) <= 160 else c.sentence[:157] + "…"
        say(f"  ⚠ {flag}", fg="yellow")
        say(f"    “{sentence}”", dim=True)


def ask(
    question: Annotated[str | None, typer.Argument(help="Your question, in plain words.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON Answer.")] = False,
    mode: Mode = None,
    k: TopK = None,
    batch: Batch = None,
    export: Annotated[str | None, typer.Option(
        "--export", metavar="bib|md",
        help="Print the answer for writing instead: bib (BibTeX of the cited papers, every "
        "field known: title, authors, year, arXiv id, url) or md (a Markdown document with "
        "the answer and its references). Redirect it to a file: > refs.bib")] = None,
    data_dir: DataDir = None,
) -> None:
    """Answer QUESTION from the corpus, every claim cited as [n].

    Streams to the terminal unless --json or --export. Every citation and source carries a
    url (the arXiv page, or an arXiv title search). Batch: one {"question": ...,
    "followup": ...} per line (followup optional, asked as the second turn); prints one JSON
    Answer per line, with the first turn's Answer under "first" for follow-up lines.

    Example: assistant ask "Which optimizers save memory?" --export bib > refs.bib
    """
    from assistant.links import attach

    _check_mode(mode)
    if (question is None) == (batch is None):
        fail("give either a QUESTION or --batch FILE.jsonl (see assistant ask --help).", 2)
    if question is not None and not question.strip():
        fail("the question is empty: write it in quotes, e.g. "
             "assistant ask \"Which optimizers save memory?\".", 2)
    if export not in (None, "bib", "md"):
        fail(f"--export must be bib or md, not {export!r}.", 2)
    if export and batch is not None:
        fail("--export takes one QUESTION, not --batch.", 2)
    services = _services(data_dir, k)
    try:
        if batch is not None:
            _ask_batch(services, batch, mode, k)
        elif export:
            answer = attach(services.answerer.answer(question, mode=mode, k=k),
                            services.retriever)
            sys.stdout.write(export_text([answer], export, services.retriever))
            if answer.error:
                say(f"error: {answer.error}", fg="red", err=True)
                raise typer.Exit(1)
        elif as_json:
            answer = services.answerer.answer(question, mode=mode, k=k)
            emit(attach(answer, services.retriever).to_json_dict())
        else:
            assert question is not None
            answer = print_answer(services, question, [], mode, k)
            if answer.error:
                raise typer.Exit(1)
    except AssistantError as e:
        fail(str(e))


def export_text(answers: list[Answer], kind: str, papers: Any) -> str:
    """The conversation for writing: 'bib' (BibTeX of the cited papers) or 'md' (Markdown)."""
    if kind == "bib":
        from assistant.bibtex import bibtex

        return bibtex(answers, papers) or "% No papers were cited.\n"
    from ui.render import export_markdown

    return export_markdown(answers)


def _ask_batch(services, batch: Path, mode: str | None, k: int | None) -> None:
    from assistant.links import attach

    for _, obj, err in read_batch(batch, "question"):
        if err:
            emit({"error": err})
            continue
        first = attach(services.answerer.answer(obj["question"], mode=mode, k=k),
                       services.retriever)
        extra = {key: v for key, v in obj.items() if key not in ("question", "followup")}
        followup = obj.get("followup")
        if isinstance(followup, str) and followup.strip():
            second = attach(services.answerer.answer(followup, [first], mode=mode, k=k),
                            services.retriever)
            out: dict[str, Any] = {**extra, **second.to_json_dict(),
                                   "first": first.to_json_dict()}
        else:
            out = {**extra, **first.to_json_dict()}
        emit(out)


def chat(
    mode: Mode = None,
    k: TopK = None,
    data_dir: DataDir = None,
) -> None:
    """A conversation in the terminal: follow-ups ("what dataset did it use?") use the history.

    Type /new to start over, /quit (or Ctrl-D) to leave.
    """
    _check_mode(mode)
    services = _services(data_dir, k)
    try:
        services.index  # fail early with the ingest hint  # noqa: B018
    except AssistantError as e:
        fail(str(e))
    history: list[Answer] = []
    label = services.settings.resolved_mode(mode)
    typer.secho(f"Ask about the papers ({label} mode). /new starts over, /quit leaves.",
                dim=True)
    while True:
        try:
            question = input("\n› ").strip()
        except (EOFError, KeyboardInterrupt):
            typer.echo()
            return
        if not question:
            continue
        if question in ("/quit", "/exit"):
            return
        if question == "/new":
            history.clear()
            typer.secho("New conversation.", dim=True)
            continue
        try:
            history.append(print_answer(services, question, history, mode, k))
        except AssistantError as e:
            say(f"error: {e}", fg="red", err=True)
        sys.stdout.flush()


def mcp(
    mode: Mode = None,
    data_dir: DataDir = None,
) -> None:
    """Serve the corpus to other assistants over MCP (Model Context Protocol, stdio).

    Tools: search_papers (query, k), ask (question, mode: cited answer with its sources and
    urls), get_paper (paper_id). An MCP client starts this command itself; see the README
    for a client config. Stdout carries only the protocol; messages go to stderr.
    """
    from assistant.mcp_server import serve

    _check_mode(mode)
    services = _services(data_dir)
    if mode:
        services.settings = services.settings.model_copy(update={"answer_mode": mode})
    try:
        services.index  # fail early with the ingest hint  # noqa: B018
    except AssistantError as e:
        fail(str(e))
    serve(services)


def ui(
    host: Annotated[str | None, typer.Option(
        help="Interface to bind (default 127.0.0.1: only this machine).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 7860).")] = None,
    auth: Annotated[str | None, typer.Option(
        envvar="ASSISTANT_UI_AUTH",
        help="Require a login, as user:password. On the command line the password is "
        "visible to every user of the machine (ps, /proc): prefer the environment variable "
        "ASSISTANT_UI_AUTH (or .env).")] = None,
    share: Annotated[bool, typer.Option(
        help="Also publish the chat on a temporary public https://*.gradio.live address "
        "through Gradio's share servers: anyone with the link can use it (set --auth). "
        "Off by default.")] = False,
    open_browser: Annotated[bool, typer.Option(
        "--open", help="Open the chat in the default web browser once it is served.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Serve the chat UI on http://127.0.0.1:7860 (open it in a browser; --open does it).

    Runs until Ctrl-C. On a fresh data dir, ingests seeds/ first. --host/--port choose the
    address, --auth requires a login, --share adds a public link.
    """
    from pydantic import SecretStr

    from assistant.ingest import ensure_index
    from ui.app import launch, parse_auth

    services = _services(data_dir)
    if auth and os.environ.get("ASSISTANT_UI_AUTH") != auth:
        say("note: --auth puts the password in the process list (ps); set "
            "ASSISTANT_UI_AUTH=user:password in the environment or .env instead.",
            fg="yellow", err=True)
    # Held as a SecretStr (like Settings.ui_auth) so the password never shows in a repr.
    login = SecretStr(auth) if auth else services.settings.ui_auth
    try:
        parse_auth(login)
    except ValueError as e:
        fail(f"--auth / ASSISTANT_UI_AUTH: {e}", 2)
    try:
        if ensure_index(services.settings, lambda: services.embedder, log=say):
            services.reset_index()
        settings = services.settings
        where = f"http://{host or settings.ui_host}:{port or settings.ui_port}/"
        say(f"Serving the chat on {where} — open it in a browser. Ctrl-C stops it."
            + ("" if share else " (--share adds a public link.)"))
        # quiet: Gradio's own banner tells users to edit launch(); ours names the flags.
        launch(settings, services, host=host, port=port, auth=login, share=share,
               inbrowser=open_browser, quiet=not share)
    except AssistantError as e:
        fail(str(e))


def verify(
    claim: Annotated[str | None, typer.Argument(help="A claim to check, in plain words.")] = None,
    paper_id: Annotated[str | None, typer.Option(
        "--paper-id", help="The indexed paper to check CLAIM against (its id, as printed by "
        "search --json).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    batch: Batch = None,
    data_dir: DataDir = None,
) -> None:
    """Does a paper support a claim? Support 0..1, a label (supported, weak, unsupported), the
    abstract sentence closest to the claim and, when not supported, why.

    Example: assistant verify "Marconi improves token hit rates" --paper-id <id>
    Batch: one {"id", "claim", "title", "abstract"} per line (other fields passed through)
    -> one {"id", "support", "label", "evidence", "note"} per line; needs no index. How rare
    a word is, and how ordinary a claim's wording, are judged against the batch's own
    abstracts (20 or more give these statistics; fewer: every word weighs the same).
    """
    from assistant.support import Checker, Corpus
    from assistant.support import verify as check_one

    if (claim is None) == (batch is None):
        fail('give either a CLAIM with --paper-id, or --batch FILE.jsonl '
             '(see assistant verify --help).', 2)
    if claim is not None and not paper_id:
        fail("give --paper-id ID: the indexed paper to check the claim against "
             "(assistant search \"...\" --json prints ids).", 2)
    settings = load_settings(data_dir)
    try:
        if batch is not None:
            from assistant.embeddings import make_embedder

            papers = [(o["title"] if isinstance(o.get("title"), str) else "", o["abstract"])
                      for _, o, e in read_batch(batch, "claim")
                      if e is None and isinstance(o.get("abstract"), str)]
            checker = Checker(make_embedder(settings), corpus=Corpus.of(papers))
            for _, obj, err in read_batch(batch, "claim"):
                if err is None and not isinstance(obj.get("abstract"), str):
                    err = f"{batch}: line with id {obj.get('id')!r} has no string 'abstract'"
                if err:
                    emit({"error": err})
                    continue
                title = obj["title"] if isinstance(obj.get("title"), str) else ""
                emit({**obj, **check_one(checker, obj["claim"], title, obj["abstract"])})
            return
        from assistant.services import Services

        assert claim is not None and paper_id is not None
        services = Services(settings)
        paper = services.retriever.papers([paper_id]).get(paper_id)
        if paper is None:
            fail(f"no indexed paper has the id {paper_id!r} (assistant search \"...\" --json "
                 "prints ids).")
        result = {"paper_id": paper.id, "title": paper.title, "claim": claim,
                  **check_one(Checker(services.embedder,
                                      corpus=services.answerer.claim_corpus()),
                              claim, paper.title, paper.abstract)}
    except AssistantError as e:
        fail(str(e))
    if as_json:
        emit(result)
        return
    color = {"supported": "green", "weak": "yellow"}.get(result["label"], "red")
    say(f"{result['label']} (support {result['support']:.2f}) · {paper.title}", fg=color,
        bold=True)
    if result["note"]:
        say(f"  {result['note']}", fg=color)
    say(f"  evidence: “{result['evidence']}”")
