"""BibTeX of the papers an answer cites, with every field the corpus knows about them.

    bibtex(answers, papers) -> str     one entry per cited paper (first citation order, no
                                       repeats across turns); `papers` is the catalog or the
                                       retriever (`.papers(ids)`), for authors, year, venue...

Fields: title, author, year, journal (a venue), eprint / archivePrefix / primaryClass (arXiv),
doi, url (assistant/links.py), abstract, note (the corpus id). Values are braced and escaped
so that no title or abstract can end a field or an entry early (BibTeX counts even an
escaped brace, so braces become \\textbraceleft{} and \\textbraceright{}).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from assistant import links
from assistant.types import Answer, Paper

APP = "Paper assistant"

_SPECIAL = {
    "\\": r"\textbackslash{}", "{": r"\textbraceleft{}", "}": r"\textbraceright{}",
    "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}
_SPECIAL_RE = re.compile(r"[\\{}&%$#_~^]")
_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)\b")


def escape(value: object) -> str:
    """Free text -> a BibTeX field value (inside braces): LaTeX specials escaped."""
    text = " ".join(str(value).split())
    return _SPECIAL_RE.sub(lambda m: _SPECIAL[m.group(0)], text)


def _authors(meta: dict[str, Any]) -> str | None:
    raw = meta.get("authors", meta.get("author"))
    if isinstance(raw, list):
        names = [" ".join(str(a).split()) if not isinstance(a, list | tuple)
                 else " ".join(str(p) for p in reversed(a) if p) for a in raw]
        names = [n for n in names if n]
        return " and ".join(names) or None
    if isinstance(raw, str) and raw.strip():
        # The arXiv snapshot: "A. One, B. Two and C. Three".
        parts = re.split(r",\s*(?:and\s+)?|\s+and\s+", raw.strip())
        return " and ".join(p.strip() for p in parts if p.strip()) or None
    return None


def _year(meta: dict[str, Any]) -> str | None:
    for key in ("year", "published", "date", "update_date", "created"):
        value = meta.get(key)
        m = _YEAR.search(str(value)) if value is not None else None
        if m:
            return m.group(1)
    versions = meta.get("versions")
    if isinstance(versions, list) and versions and isinstance(versions[0], dict):
        m = _YEAR.search(str(versions[0].get("created", "")))
        if m:
            return m.group(1)
    return None


def _doi(meta: dict[str, Any]) -> str | None:
    value = meta.get("doi")
    if isinstance(value, str):
        m = re.search(r"10\.\d{4,9}/\S+", value)
        if m:
            return m.group(0)
    return None


def _key(paper: Paper, year: str | None, authors: str | None, taken: set[str]) -> str:
    first = (authors or "").split(" and ")[0]
    surname = first.split(",")[0] if "," in first else (first.split() or [""])[-1]
    word = next((w for w in re.findall(r"[A-Za-z0-9]+", _ascii(paper.title))
                 if len(w) > 3), "paper")
    base = re.sub(r"[^a-z0-9]", "", _ascii(surname).lower()) + (year or "") + word.lower()
    key, i = base, 1
    while key in taken:
        i += 1
        key = f"{base}{i}"
    taken.add(key)
    return key


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def entry(paper: Paper, url: str, taken: set[str] | None = None) -> str:
    """One @article (with a venue) or @misc entry for a paper."""
    meta = paper.metadata or {}
    authors, year = _authors(meta), _year(meta)
    aid = links.arxiv_id(paper.id, meta)
    venue = next((meta[k] for k in ("venue", "journal", "booktitle")
                  if isinstance(meta.get(k), str) and meta[k].strip()), None)
    categories = meta.get("categories")
    fields: list[tuple[str, str]] = [("title", escape(paper.title))]
    if authors:
        fields.append(("author", escape(authors)))
    if year:
        fields.append(("year", year))
    if venue:
        fields.append(("journal", escape(venue)))
    if aid:
        fields += [("eprint", aid), ("archiveprefix", "arXiv")]
        if isinstance(categories, str) and categories.split():
            fields.append(("primaryclass", escape(categories.split()[0])))
    doi = _doi(meta)
    if doi:
        fields.append(("doi", escape(doi)))
    fields.append(("url", url.replace("{", "%7B").replace("}", "%7D")))
    if paper.abstract:
        fields.append(("abstract", escape(paper.abstract)))
    fields.append(("note", escape(f"{APP} id {paper.id}")))
    kind = "article" if venue else "misc"
    key = _key(paper, year, authors, taken if taken is not None else set())
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
    return f"@{kind}{{{key},\n{body}\n}}\n"


def bibtex(answers: Sequence[Answer], papers: links.PaperLookup | None = None) -> str:
    """The papers cited across `answers` as a .bib file (empty string when none are cited)."""
    cited: dict[str, tuple[str, str]] = {}  # paper_id -> (title, url), first citation first
    for a in answers:
        for c in a.citations:
            cited.setdefault(c.paper_id, (c.title, c.url))
    if not cited:
        return ""
    known = papers.papers(list(cited)) if papers is not None else {}
    taken: set[str] = set()
    out = []
    for pid, (title, url) in cited.items():
        paper = known.get(pid) or Paper(id=pid, title=title, abstract="")
        out.append(entry(paper, url or links.url_for(paper), taken))
    return "\n".join(out)
