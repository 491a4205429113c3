"""Pure rendering for the UI: Answer -> chat Markdown, source cards (HTML), export Markdown.

Everything that comes from a paper (title, abstract), from the user or from the model is
untrusted text. It is escaped before it goes into HTML or Markdown, so that a source holding
``<script>`` or a Markdown image beacon ``![x](http://evil/x.png)`` renders as inert text:

* ``& < > " '`` become HTML entities;
* the characters of Markdown link / image / code syntax (``[ ] ( ) ! ` \\``) become entities
  in what the browser renders, or backslash escapes in the exported Markdown file — there
  every bracket and parenthesis, our own ``[n]`` markers included, so no reply or abstract
  can open a link, an image or a link reference definition in any CommonMark renderer;
* bare URLs and e-mail addresses (which GFM would auto-link) become code spans.

The only live markup in a chat message is ours: the ``[n]`` citation links (``#src-n``
anchors to the source cards) and the small facts line. Emphasis and list markers written by
the answerer (``**title**``, ``- item``) stay live: they cannot load or link anything.
No Gradio import here: every function is a plain str -> str transformation.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from assistant.citations import MARKER, parse_numbers
from assistant.display import clean_latex
from assistant.links import semantic_scholar_url
from assistant.support import claim_flag_text, unstated_text
from assistant.types import Answer, Claim, Source

# USD per 1M tokens (input, output): OpenAI list prices, for a cost estimate on OpenAI's own
# endpoint only (a local server may serve a model under the same name for free).
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
}

EMPTY_SOURCES = (
    '<div class="src-panel src-empty"><div class="src-heading">Sources</div>'
    "<p>Ask a question: the papers behind the answer appear here, with the sentences it "
    "relies on highlighted. Click a <span class=\"cite-demo\">[n]</span> in an answer to "
    "jump to its paper.</p></div>"
)

# --- escaping ---------------------------------------------------------------------------

# Markdown syntax that could build a link, an image, code or a template: rendered by the
# browser as the same characters, but never parsed as syntax. (Applied after html.escape,
# whose entities contain none of these characters.)
_ENTITIES = str.maketrans({
    "[": "&#91;", "]": "&#93;", "(": "&#40;", ")": "&#41;", "!": "&#33;", "`": "&#96;",
    "\\": "&#92;", "$": "&#36;", "{": "&#123;", "}": "&#125;", "|": "&#124;", "@": "&#64;",
})
_MD_SPECIAL = re.compile(r"([\\`\[\]()!|$])")
_MD_EMPHASIS = re.compile(r"([*_#~])")
# GFM auto-links these (linkify-it also links protocol-relative "//host/..."); they become
# code spans (no renderer links the inside of code).
_URL = re.compile(r"(?:https?|ftp)://[^\s<>`\"']+|www\.[^\s<>`\"']+|[\w.+-]+@[\w-]+\.[\w.-]+"
                  r"|(?<![\w/:])//[\w-]+(?:\.[\w-]+)+[^\s<>`\"']*", re.IGNORECASE)
_URL_TRAIL = ".,;:!?)]}'\""


def escape_html(text: str) -> str:
    """Untrusted text -> HTML (or Markdown-rendered-as-HTML) that displays exactly `text`."""
    out = html.escape(text, quote=True).translate(_ENTITIES)
    # "http://x" / "www.x" stay text even for a renderer that auto-links literal URLs.
    return out.replace("://", ":&#47;&#47;").replace("www.", "www&#46;")


def escape_md(text: str, *, emphasis: bool = True) -> str:
    """Untrusted text -> Markdown source (export file): readable, with backslash escapes.

    With emphasis=True, ``*``/``_``/``#``/``~`` are escaped too (titles, questions).
    """
    out = html.escape(text, quote=False)
    out = _MD_SPECIAL.sub(r"\\\1", out)
    if emphasis:
        out = _MD_EMPHASIS.sub(r"\\\1", out)
    return out


def _split_urls(text: str) -> Iterable[tuple[str, bool]]:
    """(segment, is_url) pieces of text."""
    pos = 0
    for m in _URL.finditer(text):
        url = m.group(0).rstrip(_URL_TRAIL)
        if not url:
            continue
        if m.start() > pos:
            yield text[pos:m.start()], False
        yield url, True
        pos = m.start() + len(url)
    if pos < len(text):
        yield text[pos:], False


def _code_span(text: str) -> str:
    # No backticks in a URL match (see _URL), so one backtick delimits it safely.
    return f"`{text}`"


def _inline(text: str, target: str, *, emphasis: bool = False) -> str:
    """Escape free text for the chat ('chat': entities) or the export ('md': backslashes).

    URLs and e-mail addresses become code spans; emphasis=True (export only) also escapes
    ``* _ # ~`` (titles and questions carry no formatting of their own).
    """
    parts = []
    for segment, is_url in _split_urls(text):
        if is_url:
            parts.append(_code_span(segment))
        elif target == "chat":  # LaTeX residue of abstracts cleaned for display only
            parts.append(escape_html(clean_latex(segment)))
        else:
            parts.append(escape_md(segment, emphasis=emphasis))
    return "".join(parts)


# --- chat messages ----------------------------------------------------------------------


def _cite_link(n: int, title: str | None) -> str:
    tip = f' title="{html.escape(title, quote=True)}"' if title else ""
    return f'<a class="cite" href="#src-{n}"{tip}>[{n}]</a>'


def _cite_with_evidence(n: int, title: str | None, evidence: str | None) -> str:
    """[n] with a tooltip (hover or keyboard focus) quoting paper n's supporting sentence."""
    link = _cite_link(n, title)
    if not evidence:
        return link
    return (f'<span class="cite-wrap">{link}<span class="cite-tip" role="tooltip">'
            f"<b>&#91;{n}&#93;</b> “{escape_html(evidence)}”</span></span>")


def _claim_spans(text: str, claims: Sequence[Claim]) -> list[tuple[int, int, Claim]]:
    """Where each claim sits in `text`; `text` may also be a piece of one claim (a table
    cell), which then gets that claim's evidence (its flag goes after the whole claim)."""
    spans, cursor = [], 0
    for c in claims:
        start = text.find(c.sentence, cursor)
        if start < 0 or not c.sentence:
            continue
        spans.append((start, start + len(c.sentence), c))
        cursor = start + len(c.sentence)
    if not spans and text.strip():
        piece = next((c for c in claims if text.strip() in c.sentence), None)
        if piece is not None:
            spans.append((0, len(text), piece.model_copy(update={"label": "supported",
                                                                 "better": None})))
    return spans


def cited_markdown(text: str, sources: Sequence[Source] | dict[int, str],
                   claims: Sequence[Claim] = ()) -> str:
    """Answer text -> chat Markdown: escaped, with each valid [n] a link to card #src-n.

    A marker pointing outside `sources` stays (escaped) text. `sources` may also be a dict
    {n: title}. With `claims` (the claim check), each [n] shows paper n's supporting sentence
    on hover/focus, and a sentence that is not supported is followed by its flag and reason.
    """
    if _TABLE_ROW.search(text):  # a comparison table: its pipes stay live, cells escaped
        return _with_tables(text, lambda part: cited_markdown(part, sources, claims), "chat")
    titles = sources if isinstance(sources, dict) else {s.n: s.title for s in sources}
    spans = _claim_spans(text, claims)
    flags = {e: f' <span class="claim-flag claim-{c.label}">⚠ {escape_html(flag)}</span>'
             for _, e, c in spans if (flag := claim_flag_text(c))}
    cuts = sorted(flags)
    out: list[str] = []

    def plain(a: int, b: int, last: bool = False) -> None:
        for cut in cuts:
            if a <= cut < b or (last and cut == b):
                out.append(_inline(text[a:cut], "chat") + flags[cut])
                a = cut
        out.append(_inline(text[a:b], "chat"))

    pos = 0
    for m in MARKER.finditer(text):
        plain(pos, m.start())
        numbers = parse_numbers(m.group(1))
        claim = next((c for s, e, c in spans if s <= m.start() < e), None)
        if numbers and all(n in titles for n in numbers):
            out.append("".join(
                _cite_with_evidence(n, titles[n], claim.evidence.get(n) if claim else None)
                for n in dict.fromkeys(numbers)))
        else:
            out.append(escape_html(m.group(0)))
        pos = m.end()
    plain(pos, len(text), last=True)
    return "".join(out)


# A Markdown table row of an answer (the comparison shape): "| cell | cell |" on one line.
_TABLE_ROW = re.compile(r"(?m)^\|.*\|[ \t]*$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def _with_tables(text: str, render, target: str) -> str:
    """Render `text` whose table rows keep their structure: every other line as a block by
    `render`, each table cell by `render` on its own (a quoted pipe, written "\\|", is
    text), joined by live pipes. Nothing inside a cell can add or end a cell."""
    out: list[str] = []
    block: list[str] = []

    def flush() -> None:
        if block:
            out.append(render("\n".join(block)))
            block.clear()

    for line in text.split("\n"):
        if not _TABLE_ROW.fullmatch(line):
            block.append(line)
            continue
        flush()
        cells = [c.strip().replace("\\|", "|") for c in _CELL_SPLIT.split(line.strip())[1:-1]]
        rendered = [render(c) if c else "" for c in cells]
        if target == "chat":
            rendered = [r.replace("|", "&#124;") for r in rendered]
        else:
            rendered = [_CELL_SPLIT.sub(r"\\|", r) for r in rendered]
        out.append("| " + " | ".join(rendered) + " |")
    flush()
    return "\n".join(out)


def user_markdown(question: str) -> str:
    """The user's message as chat Markdown (inert text)."""
    return _inline(question, "chat")


def price_of(model: str | None) -> tuple[float, float] | None:
    if not model:
        return None
    if model in PRICES:
        return PRICES[model]
    for name in sorted(PRICES, key=len, reverse=True):  # dated snapshots: gpt-4o-2024-08-06
        if model.startswith(name + "-"):
            return PRICES[name]
    return None


def _duration(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def facts_line(answer: Answer, *, priced: bool = False) -> str:
    """'LLM · gpt-4o-mini · 2.1 s · 812 tokens (700 in, 112 out) · ≈$0.0002' (plain text).

    Cost only with priced=True (OpenAI's own endpoint) and a model in PRICES.
    """
    parts = ["LLM" if answer.mode == "llm" else "extractive"]
    # The model only when it was called (a reply or tokens), not when the call never began.
    called = answer.usage is not None or "generate_ms" in answer.timings_ms
    if answer.mode == "llm" and answer.model and called:
        parts.append(answer.model)
    if answer.abstained:
        parts.append("abstained")
    total = answer.timings_ms.get("total_ms")
    if total is not None:
        parts.append(_duration(total))
    first = answer.timings_ms.get("first_token_ms")
    if first is not None and answer.mode == "llm":
        parts.append(f"first token {_duration(first)}")
    usage = answer.usage
    if usage and usage.total_tokens:
        parts.append(f"{usage.total_tokens:,} tokens "
                     f"({usage.prompt_tokens:,} in, {usage.completion_tokens:,} out)")
        price = price_of(answer.model) if priced else None
        if price:
            cost = (usage.prompt_tokens * price[0] + usage.completion_tokens * price[1]) / 1e6
            parts.append(f"≈${cost:.4f}" if cost >= 0.0001 else "<$0.0001")
    if answer.corrections:  # the spelling was fixed: say what was actually searched
        parts.append(f"searched for: {answer.searched_for}")
    if answer.removed_citations:
        bad = ", ".join(f"[{n}]" for n in dict.fromkeys(answer.removed_citations))
        parts.append(f"removed invalid citation{'s' if len(answer.removed_citations) > 1 else ''}"
                     f" {bad}")
    if answer.flagged_sentences and answer.mode == "llm" and not answer.abstained:
        k = len(answer.flagged_sentences)
        parts.append(f"{k} sentence{'s' if k > 1 else ''} without a citation")
    return " · ".join(parts)


def answer_to_markdown(answer: Answer, *, priced: bool = False) -> str:
    """The assistant's chat message: the answer with [n] links, then a small facts line."""
    body = cited_markdown(answer.answer, answer.sources, answer.claims)
    if answer.error and not answer.answer.lstrip().startswith("⚠"):
        body = f"⚠ {body}"
    if note := unstated_text(answer):
        # Up front: the question's own figures are not what the papers say.
        body = f'<p class="premise">⚠ {escape_html(note[0].upper() + note[1:])}</p>\n\n{body}'
    facts = escape_html(facts_line(answer, priced=priced))
    return f'{body}\n\n<small class="facts">{facts}</small>'


def streaming_markdown(text: str, sources: Sequence[Source]) -> str:
    """A partial answer while tokens arrive (with a cursor)."""
    return cited_markdown(text, sources) + " ▍" if text else "_Searching the papers…_"


# --- source cards -----------------------------------------------------------------------


def _quote_spans(abstract: str, quotes: Iterable[str]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for quote in quotes:
        q = quote.strip()
        if not q:
            continue
        start = abstract.find(q)
        if start >= 0:
            spans.append((start, start + len(q)))
            continue
        words = q.split()
        if not words:
            continue
        # The same sentence with different whitespace (line breaks in the abstract).
        m = re.search(r"\s+".join(re.escape(w) for w in words), abstract)
        if m:
            spans.append(m.span())
    spans.sort()
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged


def highlight(abstract: str, quotes: Iterable[str]) -> str:
    """The abstract as escaped HTML, the quoted sentences wrapped in <mark>."""
    out, pos = [], 0
    # Spans are found in the stored text; each piece is shown with its LaTeX residue cleaned.
    for s, e in _quote_spans(abstract, quotes):
        out.append(escape_html(clean_latex(abstract[pos:s])))
        out.append(f"<mark>{escape_html(clean_latex(abstract[s:e]))}</mark>")
        pos = e
    out.append(escape_html(clean_latex(abstract[pos:])))
    return "".join(out)


_NEW_TAB = 'target="_blank" rel="noopener noreferrer"'


def paper_links(source: Source) -> str:
    """The card's links out: the paper's page (arXiv, or an arXiv title search) and a
    Semantic Scholar title search, each opening in a new tab. Only https urls are linked."""
    out = []
    if source.url.startswith("https://"):
        label = "arXiv" if source.url.startswith("https://arxiv.org/abs/") else "Search arXiv"
        out.append(f'<a class="src-link" href="{html.escape(source.url, quote=True)}" '
                   f"{_NEW_TAB}>{label} ↗</a>")
    s2 = semantic_scholar_url(source.title)
    out.append(f'<a class="src-link" href="{html.escape(s2, quote=True)}" {_NEW_TAB}>'
               "Semantic Scholar ↗</a>")
    return f'<div class="src-links">{"".join(out)}</div>'


def _card(source: Source, *, expanded: bool, bar: bool = True) -> str:
    """One source card; bar=False (closest matches of an abstention) shows no relevance bar:
    they are not evidence, and a full bar would say otherwise."""
    score = max(0.0, min(1.0, float(source.score)))
    cls = "src-card is-cited" if source.cited else "src-card"
    abstract = highlight(source.abstract, source.quotes) if source.abstract else ""
    if not abstract:
        body = '<p class="src-abs src-none">No abstract.</p>'
    elif expanded:
        body = f'<p class="src-abs">{abstract}</p>'
    else:
        body = (f'<details><summary>Abstract</summary><p class="src-abs">{abstract}</p>'
                "</details>")
    title = escape_html(source.title)
    if source.url.startswith("https://"):
        title = (f'<a class="src-title-link" href="{html.escape(source.url, quote=True)}" '
                 f"{_NEW_TAB}>{title}</a>")
    meta = (f'<div class="src-meta"><span class="src-score" title="Fused relevance, 0 to 1">'
            f'relevance {score:.2f}</span><span class="src-bar"><i style="width:'
            f'{score * 100:.0f}%"></i></span></div>') if bar else ""
    return (
        f'<article class="{cls}" id="src-{int(source.n)}">'
        f'<div class="src-top"><span class="src-n">{int(source.n)}</span>'
        f'<span class="src-title">{title}</span></div>'
        f"{meta}{paper_links(source)}{body}</article>"
    )


def _section(title: str, note: str, cards: list[str], kind: str) -> str:
    if not cards:
        return ""
    hint = f'<p class="src-note">{note}</p>' if note else ""
    return (f'<section class="src-section src-{kind}"><div class="src-heading">{title}'
            f'<span class="src-count">{len(cards)}</span></div>{hint}{"".join(cards)}</section>')


def _panel(question: str, sections: list[str], status: str = "") -> str:
    head = (f'<div class="src-for">Sources for <q>{escape_html(question)}</q>'
            + (f' <span class="src-status">{status}</span>' if status else "") + "</div>")
    body = "".join(sections) or '<p class="src-note">No papers were retrieved.</p>'
    return f'<div class="src-panel">{head}{body}</div>'


def source_cards_html(answer: Answer | None) -> str:
    """The sources panel for one answer.

    Cited papers as expanded cards (cited sentences marked), then the other retrieved papers
    under "Also retrieved"; an abstention lists "Closest matches" instead.
    """
    if answer is None:
        return EMPTY_SOURCES
    if answer.abstained:
        cards = [_card(s, expanded=False, bar=False) for s in answer.sources]
        return _panel(answer.question, [_section(
            "Closest matches",
            "The corpus does not answer this question; these are the nearest papers, "
            "not evidence.", cards, "closest")])
    cited = sorted((s for s in answer.sources if s.cited), key=lambda s: s.n)
    rest = [s for s in answer.sources if not s.cited]
    if not cited:
        title = "Retrieved papers" if answer.error else "Retrieved, not cited"
        note = "The answer could not be written; these papers were retrieved." \
            if answer.error else ""
        return _panel(answer.question, [_section(
            title, note, [_card(s, expanded=False) for s in rest], "retrieved")])
    return _panel(answer.question, [
        _section("Cited", "", [_card(s, expanded=True) for s in cited], "cited"),
        _section("Also retrieved", "Retrieved for this question but not cited.",
                 [_card(s, expanded=False) for s in rest], "also"),
    ])


def retrieved_html(question: str, sources: Sequence[Source]) -> str:
    """The panel while the answer is being written: the retrieved papers, not yet cited."""
    return _panel(question, [_section("Retrieved", "", [_card(s, expanded=False)
                                                        for s in sources], "retrieved")],
                  status="writing the answer…")


# --- export -----------------------------------------------------------------------------


# Our own links in the export: arXiv abstract pages of cited papers, built from an id of
# this exact shape (new-style or old-style arXiv identifiers), never from free text.
_ARXIV_LINK_ID = re.compile(r"(?:\d{4}\.\d{4,5}|[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?")


def source_link(paper_id: str) -> str | None:
    """The app's link to a source in the export (arXiv papers only), or None."""
    arxiv = paper_id.removeprefix("arxiv:")
    if arxiv != paper_id and _ARXIV_LINK_ID.fullmatch(arxiv):
        return f"https://arxiv.org/abs/{arxiv}"
    return None


def _export_answer_text(text: str, valid: set[int]) -> str:
    """Answer text for the .md file: escaped, valid [n] markers kept as (escaped) [n].

    Escaped, a marker still reads "[1]" but cannot open a link: "[1](//evil)" or a line
    "[1]: http://evil" (a reference definition) written by a model stays text.
    """
    if _TABLE_ROW.search(text):
        return _with_tables(text, lambda part: _export_answer_text(part, valid), "md")
    out, pos = [], 0
    for m in MARKER.finditer(text):
        out.append(_inline(text[pos:m.start()], "md"))
        numbers = parse_numbers(m.group(1))
        if numbers and all(n in valid for n in numbers):
            out.append("".join(f"\\[{n}\\]" for n in dict.fromkeys(numbers)))
        else:
            out.append(escape_md(m.group(0)))
        pos = m.end()
    out.append(_inline(text[pos:], "md"))
    return "".join(out)


def export_markdown(answers: Sequence[Answer], *, now: datetime | None = None,
                    priced: bool = False) -> str:
    """The conversation as a Markdown document, with the cited papers listed per turn."""
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    n = len(answers)
    lines = ["# Paper assistant — conversation", "",
             f"_Exported {stamp} · {n} question{'s' if n != 1 else ''}_", ""]
    if not answers:
        lines += ["_No questions yet._", ""]
    for i, a in enumerate(answers, start=1):
        valid = {s.n for s in a.sources}
        lines += [f"## {i}. {_inline(a.question, 'md', emphasis=True)}", ""]
        if note := unstated_text(a):
            lines += [f"> ⚠ {_inline(note[0].upper() + note[1:], 'md', emphasis=True)}", ""]
        lines += [_export_answer_text(a.answer, valid), ""]
        lines += [f"_{escape_md(facts_line(a, priced=priced))}_", ""]
        checks = [(c, f) for c in a.claims if (f := claim_flag_text(c))]
        if checks:  # the claim check's flags travel with the answer
            lines += ["**Claim check**", ""]
            lines += [f"- ⚠ {_inline(f, 'md', emphasis=True)} — "
                      f"“{_inline(c.sentence, 'md', emphasis=True)}”" for c, f in checks]
            lines.append("")
        cited = sorted((s for s in a.sources if s.cited), key=lambda s: s.n)
        if cited:
            lines += ["**References**", ""]
            for s in cited:
                link = s.url if s.url.startswith("https://") else source_link(s.paper_id)
                lines.append(f"- \\[{s.n}\\] {_inline(s.title, 'md', emphasis=True)} "
                             f"\\(relevance {s.score:.2f}\\)"
                             + (f" · <{link}>" if link else ""))
                quotes = [f"  > {_inline(q, 'md', emphasis=True)}" for q in s.quotes]
                lines += "\n  >\n".join(quotes).splitlines()  # one paragraph per quote
            lines.append("")
        elif a.abstained:
            lines += ["_No papers cited: the corpus does not cover this question._", ""]
        else:
            lines += ["_No papers cited._", ""]
    return "\n".join(lines).rstrip() + "\n"


def chat_messages(answers: Sequence[Answer], *, priced: bool = False) -> list[dict[str, str]]:
    """The conversation as Gradio chat messages (user / assistant dicts)."""
    messages: list[dict[str, str]] = []
    for a in answers:
        messages.append({"role": "user", "content": user_markdown(a.question)})
        messages.append({"role": "assistant", "content": answer_to_markdown(a, priced=priced)})
    return messages


# --- suggested follow-ups ---------------------------------------------------------------

_SHORT_NAME = re.compile(r"^\s*([^:]{2,40}?)\s*:\s+\S")


def short_name(title: str) -> str:
    """What a follow-up calls a paper: the name before a title's colon ("APOLLO" from
    "APOLLO: SGD-like Memory, AdamW-level Performance"), else the title (LaTeX cleaned)."""
    title = " ".join(clean_latex(title).split())
    m = _SHORT_NAME.match(title)
    if m and len(m.group(1).split()) <= 5:
        return m.group(1)
    return title


def follow_ups(answer: Answer | None, limit: int = 3) -> list[str]:
    """Follow-up questions built from the papers an answer cites (no LLM): what dataset the
    first cited paper uses, which later work builds on it, and a comparison of the first two
    cited papers by number. None for an abstention, a failed answer or an answer citing
    nothing."""
    if answer is None or answer.abstained or answer.error:
        return []
    cited = sorted({s.n: s for s in answer.sources if s.cited}.values(), key=lambda s: s.n)
    if not cited:
        numbers = {c.n for c in answer.citations}
        cited = [s for s in answer.sources if s.n in numbers]
    if not cited:
        return []
    first = short_name(cited[0].title)
    out = [f"What dataset does {first} use?", f"Which later work builds on {first}?"]
    if len(cited) > 1:
        out.append(f"Compare [{cited[0].n}] and [{cited[1].n}]")
    return out[:limit]
