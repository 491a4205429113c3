"""Where a paper opens: one https url per paper, built from what the corpus says about it.

    url_for(paper)            the arXiv abstract page when an arXiv id is known, else an arXiv
                              title search (nothing is fetched: links are built, not checked)
    semantic_scholar_url(t)   a Semantic Scholar title search (the UI's second link)
    attach(answer, papers)    fill `url` on an Answer's sources and citations
    attach_hits(hits, papers) ... and on search results

An arXiv id is taken from the paper id (`arxiv:<id>`, the arXiv metadata snapshot) or from
the JSON Lines fields `arxiv_id`, `url` (an arxiv.org link) and `doi` (10.48550/arXiv.<id>).
`papers` is anything with `.papers(ids) -> {id: Paper}` (the catalog, the retriever).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from assistant.types import Answer, Citation, Hit, Paper, Source

_NEW_ID = r"\d{4}\.\d{4,5}"
_OLD_ID = r"[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7}"
_ARXIV_ID = re.compile(rf"(?:{_NEW_ID}|{_OLD_ID})")
_VERSION = re.compile(r"v\d+$")
# An arXiv id as it appears inside a field: bare, "arXiv:2401.12345v2", an abs/pdf link or
# the arXiv DOI (10.48550/arXiv.2401.12345).
_IN_FIELD = re.compile(
    rf"(?:^|arxiv[:.]\s*|arxiv\.org/(?:abs|pdf)/)({_NEW_ID}|{_OLD_ID})(?:v\d+)?(?:\.pdf)?/?$",
    re.IGNORECASE)

ARXIV_ABS = "https://arxiv.org/abs/"
ARXIV_SEARCH = "https://arxiv.org/search/"
SEMANTIC_SCHOLAR_SEARCH = "https://www.semanticscholar.org/search"


class PaperLookup(Protocol):
    def papers(self, ids: list[str]) -> dict[str, Paper]: ...


def canonical_arxiv_id(value: object) -> str | None:
    """'arXiv:2401.12345v2', 'https://arxiv.org/abs/2401.12345', '10.48550/arXiv.2401.12345',
    'hep-th/9901001' -> the id without version; anything else -> None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if len(text) > 300:
        return None
    m = _IN_FIELD.search(text)
    if not m:
        return None
    found = m.group(1)
    # Old-style archives are lowercase ("hep-th"); only the subject class is upper case.
    if "/" in found:
        archive, _, number = found.partition("/")
        head, dot, cls = archive.partition(".")
        found = f"{head.lower()}{dot}{cls.upper()}/{number}"
    return _VERSION.sub("", found) if _ARXIV_ID.fullmatch(found) else None


def arxiv_id(paper_id: str, metadata: dict[str, Any] | None = None) -> str | None:
    """The paper's arXiv id, when its id or metadata names one."""
    if paper_id.startswith("arxiv:"):
        found = canonical_arxiv_id(paper_id.removeprefix("arxiv:"))
        if found:
            return found
    meta = metadata or {}
    for key in ("arxiv_id", "arxiv", "eprint", "url", "doi"):
        found = canonical_arxiv_id(meta.get(key))
        if found:
            return found
    return None


def arxiv_abs_url(aid: str) -> str:
    return ARXIV_ABS + quote(aid, safe="/.-")


def arxiv_search_url(title: str) -> str:
    """arXiv's title search for `title` (the quoted phrase finds the paper first)."""
    words = " ".join(str(title).split())[:300]
    return ARXIV_SEARCH + "?" + urlencode({"query": words, "searchtype": "title"})


def semantic_scholar_url(title: str) -> str:
    words = " ".join(str(title).split())[:300]
    return SEMANTIC_SCHOLAR_SEARCH + "?" + urlencode({"q": words})


def url_of(paper_id: str, title: str, metadata: dict[str, Any] | None = None) -> str:
    aid = arxiv_id(paper_id, metadata)
    return arxiv_abs_url(aid) if aid else arxiv_search_url(title)


def url_for(paper: Paper) -> str:
    """The https page a paper opens: its arXiv abstract page, else an arXiv title search."""
    return url_of(paper.id, paper.title, paper.metadata)


def _lookup(papers: PaperLookup | None, ids: Iterable[str]) -> dict[str, Paper]:
    if papers is None:
        return {}
    try:
        return papers.papers(list(dict.fromkeys(ids)))
    except Exception:  # noqa: BLE001 — a link must never break an answer; fall back to ids
        return {}


def _url(pid: str, title: str, known: dict[str, Paper]) -> str:
    paper = known.get(pid)
    return url_for(paper) if paper is not None else url_of(pid, title)


def attach(answer: Answer, papers: PaperLookup | None) -> Answer:
    """Fill `url` on the answer's sources and citations (in place; returns the answer)."""
    ids = [s.paper_id for s in answer.sources] + [c.paper_id for c in answer.citations]
    known = _lookup(papers, ids)
    items: list[Source | Citation] = [*answer.sources, *answer.citations]
    for item in items:
        if not item.url:
            item.url = _url(item.paper_id, item.title, known)
    return answer


def attach_sources(sources: Sequence[Any], papers: PaperLookup | None) -> None:
    """Fill `url` on Sources (the UI's panel while an answer is written)."""
    known = _lookup(papers, [s.paper_id for s in sources])
    for s in sources:
        if not s.url:
            s.url = _url(s.paper_id, s.title, known)


def attach_hits(hits: Sequence[Hit], papers: PaperLookup | None) -> list[Hit]:
    """Fill `url` on search results (in place; returns them)."""
    known = _lookup(papers, [h.paper_id for h in hits])
    for h in hits:
        if not h.url:
            h.url = _url(h.paper_id, h.title, known)
    return list(hits)
