"""Question -> Answer. Retrieval, abstention and the citation check are shared by both modes:

    resolve follow-up -> retrieve -> number sources -> abstain? -> extractive | LLM
                      -> citation check -> Answer

`stream()` yields events as they happen (sources first, then text, then the final Answer);
`answer()` is the same pipeline, consumed.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Literal

from assistant import citations, coverage, extractive, prompts, support
from assistant.chat import Resolved, history_text, resolve
from assistant.corpus import scrub_surrogates
from assistant.errors import AssistantError, LLMError
from assistant.prompts import ABSTAIN_PHRASE
from assistant.retrieve import Retriever
from assistant.settings import Settings
from assistant.types import Answer, Citation, Hit, Source


@dataclass
class Event:
    kind: Literal["sources", "token", "answer"]
    data: Any


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 1)


GENERIC_SHARE = 0.15  # of the corpus's chunks: a word this common names no survey group
RANK_DEPTH = 20  # papers ranked per answer (Answer.ranked), beyond the numbered sources


def abstained_text(hits: list[Hit], reason: str | None = None) -> str:
    lines = [ABSTAIN_PHRASE]
    if reason:
        lines[0] += f" (Why: {reason}.)"
    if hits:
        lines += ["", "Closest matches (not evidence — none of them answers it):"]
        lines += [f"- {h.title}" for h in hits[:3]]
    return "\n".join(lines)


def says_abstain(text: str) -> bool:
    norm = " ".join(text.lower().split())
    return ABSTAIN_PHRASE.lower().rstrip(".") in norm


class Answerer:
    def __init__(self, retriever: Retriever, settings: Settings,
                 llm_factory: Callable[[], Any] | None = None) -> None:
        self.retriever = retriever
        self.settings = settings
        self._llm_factory = llm_factory
        self._claim_corpus: tuple[int, support.Corpus] | None = None
        self._corpus_lock = threading.Lock()

    # --- public ------------------------------------------------------------------------

    def warm(self) -> None:
        """Build what the first answer would otherwise wait for: the claim-checking corpus
        (word statistics and its background sentences' vectors, ~1 s for 633 papers)."""
        corpus = self.claim_corpus()
        corpus.background(support.checker_for(self.retriever.embedder, corpus))

    def claim_corpus(self) -> support.Corpus:
        """The served index as claim-checking statistics (rebuilt after an ingest)."""
        version = self.retriever.corpus_version()
        with self._corpus_lock:
            if self._claim_corpus is None or self._claim_corpus[0] != version:
                self._claim_corpus = (version, support.Corpus.of(self.retriever.corpus()))
            return self._claim_corpus[1]

    def answer(self, question: str, history: list[Answer] | None = None,
               mode: str | None = None, k: int | None = None,
               exclude: frozenset[str] = frozenset()) -> Answer:
        final = None
        for event in self.stream(question, history, mode, k, exclude):
            if event.kind == "answer":
                final = event.data
        assert final is not None
        return final

    def stream(self, question: str, history: list[Answer] | None = None,
               mode: str | None = None, k: int | None = None,
               exclude: frozenset[str] = frozenset()) -> Iterator[Event]:
        """`exclude`: papers retrieval must not return (near-miss evals hide gold papers)."""
        t0 = time.perf_counter()
        history = history or []
        use = self.settings.resolved_mode(mode)
        timings: dict[str, float] = {}
        base: dict[str, Any] = dict(question=question[:200], mode=use, timings_ms=timings,
                    model=self.settings.llm_model if use == "llm" else None)
        limit = self.settings.max_question_chars
        if len(question) > limit:
            # Checked before any work: tokenising, embedding and coverage all grow with it.
            msg = (f"The question is too long ({len(question):,} characters; the limit is "
                   f"{limit:,}). Shorten it to the question itself.")
            yield Event("answer", Answer(answer=f"⚠ {msg}", error=msg, **base))
            return
        question = " ".join(scrub_surrogates(question).split())  # tokenizers reject lone surrogates
        base["question"] = question
        if not question:
            yield Event("answer", Answer(answer="Ask a question about the papers.", **base))
            return

        t = time.perf_counter()
        resolved = resolve(question, history)
        if use == "llm" and resolved.is_followup and self.settings.llm_configured:
            resolved = self._condense(question, history, resolved, timings)
        timings["condense_ms"] = _ms(t)

        if resolved.dangling:
            reason = "there is no earlier answer in this chat for it to refer to"
            text = ("There is nothing to follow up on yet: this chat has no earlier answer. "
                    "Ask the question on its own (name the paper or the topic).")
            yield Event("token", text)
            yield Event("answer", Answer(answer=text, abstained=True, abstain_reason=reason,
                                         **base))
            return

        t = time.perf_counter()
        k = k or self.settings.top_k
        hidden = frozenset(exclude) | frozenset(resolved.beyond)
        retrieval = self.retriever.retrieve(resolved.query, k=max(k, RANK_DEPTH), exclude=hidden)
        ranked_hits = self._pin(resolved, retrieval.hits)
        named = {m.paper_id for m in retrieval.title_matches}
        # Decided once, on the full ranking: a survey numbers more papers as sources.
        wanted = extractive.layout(question, ranked_hits, self.retriever.embedder, named) \
            if use == "extractive" and not resolved.focus else "single"
        chosen: frozenset[str] | None = None
        if wanted == "survey":  # its papers share words the question does not use: search
            ranked_hits = survey_hits(self.retriever, retrieval, ranked_hits, hidden)  # again
            hits, chosen = extractive.survey_sources(question, ranked_hits,
                                                     self.retriever.embedder, named)
        else:
            hits = ranked_hits[: max(k, len(resolved.focus))]
        timings["retrieve_ms"] = _ms(t)
        numbered = list(enumerate(hits, start=1))
        sources = [Source(n=n, paper_id=h.paper_id, title=h.title, score=h.score,
                          abstract=h.abstract) for n, h in numbered]
        base.update(standalone_query=resolved.query, searched_for=retrieval.searched_for,
                    corrections=retrieval.fixes, ranked=[h.paper_id for h in ranked_hits])
        yield Event("sources", sources)

        # A follow-up about papers already on the table is covered by definition; anything
        # else (new topics mid-chat, "is there another paper ...") is checked on its own.
        if not resolved.focus:
            t = time.perf_counter()
            cov = self.covers(retrieval, hidden)
            timings["coverage_ms"] = _ms(t)
            base["coverage"] = cov.probability
            if not cov.covered:
                text = abstained_text(hits, cov.reason)
                yield Event("token", text)
                timings["total_ms"] = _ms(t0)
                yield Event("answer", Answer(answer=text, abstained=True, sources=sources,
                                             abstain_reason=cov.reason, **base))
                return

        if use == "extractive":
            yield from self._extractive(question, resolved, numbered, sources, base, t0, named,
                                        wanted, chosen)
        else:
            # The answer prompt carries no conversation: a follow-up ("what did it report?")
            # is asked in its standalone form, or the model cannot tell what "it" is.
            asked = resolved.query if resolved.is_followup else question
            yield from self._generate(asked, numbered, sources, base, t0)

    def covers(self, retrieval, hidden: frozenset[str] = frozenset()) -> coverage.Coverage:
        model = None
        if self.settings.abstain_threshold is not None:
            model = replace(coverage.default_model(), threshold=self.settings.abstain_threshold)
        return coverage.assess(
            retrieval.searched_for, retrieval.hits, retrieval.title_matches,
            self.retriever.vocabulary, self.retriever.texts_of(hidden) if hidden else [],
            model=model, embedder=self.retriever.embedder)

    def _generic(self, word: str) -> bool:
        """A word in at least GENERIC_SHARE of the corpus's chunks ("language", "learning" in
        a corpus of ML papers): it names no group of a survey."""
        vocab = self.retriever.vocabulary
        terms = vocab.keyword.terms(word)
        return bool(terms) and all(vocab.df(t) >= GENERIC_SHARE * vocab.n_docs for t in terms)

    # --- stages ------------------------------------------------------------------------

    def _pin(self, resolved: Resolved, hits: list[Hit]) -> list[Hit]:
        """A follow-up's papers first (as the user sees them), then the search results."""
        if not resolved.focus:
            return hits
        papers = self.retriever.papers(resolved.focus)
        found = {h.paper_id: h for h in hits}
        pinned = [found.get(pid) or Hit(paper_id=p.id, title=p.title, abstract=p.abstract,
                                        snippet=p.abstract[:300], score=1.0, rank=0)
                  for pid in resolved.focus if (p := papers.get(pid))]
        rest = [h for h in hits if h.paper_id not in set(resolved.focus)]
        return pinned + rest

    def _condense(self, question: str, history: list[Answer], resolved: Resolved,
                  timings: dict[str, float]) -> Resolved:
        prompt = prompts.load("condense").render(history=history_text(history),
                                                 question=question)
        try:
            gen = self._llm().complete([{"role": "user", "content": prompt}])
        except LLMError:
            return resolved  # retrieval still works from the rule-based query
        query = gen.text.strip().strip('"').splitlines()[0] if gen.text.strip() else ""
        timings["condense_llm_ms"] = round(gen.total_ms, 1)
        return replace(resolved, query=query or resolved.query)

    def _extractive(self, question, resolved, numbered, sources, base, t0,
                    named: set[str], wanted: extractive.Wanted,
                    chosen: frozenset[str] | None = None) -> Iterator[Event]:
        t = time.perf_counter()
        plan = extractive.plan(question, numbered, self.retriever.embedder, self.settings,
                               focus=set(resolved.focus), named=named, wanted=wanted,
                               generic=self._generic, chosen=chosen)
        # A quoted sentence's own "[2]" is not a citation of source 2 (citations.defang).
        text = extractive.compose(extractive.defanged(plan, citations.defang))
        picks = plan.picks
        for line in text.splitlines(keepends=True):
            yield Event("token", line)
        base["timings_ms"]["compose_ms"] = _ms(t)
        quotes = {p.n: p.quotes for p in picks}
        yield Event("answer", self._finish(text, sources, quotes, base, t0))

    def _generate(self, question, numbered, sources, base, t0) -> Iterator[Event]:
        from assistant.llm import Generation

        timings = base["timings_ms"]
        if not self.settings.llm_configured:
            msg = ("No LLM endpoint is configured: set OPENAI_BASE_URL (and OPENAI_API_KEY if "
                   "it needs one), or use --mode extractive.")
            yield from self._failed(msg, sources, base, t0)
            return
        source_tpl = prompts.load("source")
        block = "\n".join(
            source_tpl.render(n=n, title=prompts.fence(h.title).replace('"', "'"),
                              abstract=prompts.fence(h.abstract)).strip()
            for n, h in numbered)
        messages = [
            {"role": "system",
             "content": prompts.load("system").render(abstain_phrase=ABSTAIN_PHRASE)},
            {"role": "user", "content": prompts.load("answer").render(
                sources=block, question=question, abstain_phrase=ABSTAIN_PHRASE)},
        ]
        gen = Generation()
        t = time.perf_counter()
        try:
            for delta in self._llm().stream(messages, gen):
                yield Event("token", delta)
        except AssistantError as e:
            timings["generate_ms"] = _ms(t)
            yield from self._failed(str(e), sources, base, t0)
            return
        timings["generate_ms"] = _ms(t)
        if gen.first_token_ms is not None:
            timings["first_token_ms"] = round(gen.first_token_ms, 1)
        base["usage"] = gen.usage
        if says_abstain(gen.text):
            timings["total_ms"] = _ms(t0)
            yield Event("answer", Answer(answer=abstained_text([h for _, h in numbered]),
                                         abstained=True, sources=sources, **base))
            return
        yield Event("answer", self._finish(gen.text, sources, None, base, t0))

    def _failed(self, message: str, sources, base, t0) -> Iterator[Event]:
        listing = "\n".join(f"- [{s.n}] {s.title}" for s in sources[:5])
        text = f"⚠ {message}" + (f"\n\nRetrieved papers:\n{listing}" if listing else "")
        base["timings_ms"]["total_ms"] = _ms(t0)
        yield Event("answer", Answer(answer=text, error=message, sources=sources, **base))

    def _finish(self, text: str, sources: list[Source], quotes: dict[int, list[str]] | None,
                base: dict, t0: float) -> Answer:
        checked = citations.check(text, {s.n for s in sources})
        by_n = {s.n: s for s in sources}
        for s in sources:
            s.cited = s.n in checked.cited
            s.quotes = (quotes or {}).get(s.n) or (
                supporting_sentences(checked.text, s) if s.cited else [])
        t = time.perf_counter()
        try:  # every sentence against the papers it cites (flags; nothing is rewritten)
            claims = support.check_answer(checked.text, sources, self.retriever.embedder,
                                          self.claim_corpus())
        except AssistantError:
            claims = []
        base["timings_ms"]["support_ms"] = _ms(t)
        base["timings_ms"]["total_ms"] = _ms(t0)
        asked = base.get("searched_for") or base.get("standalone_query") or base["question"]
        return Answer(
            claims=claims,
            unstated=support.unstated_figures(
                asked, by_n[checked.cited[0]] if checked.cited else None),
            answer=checked.text,
            citations=[Citation(n=n, paper_id=by_n[n].paper_id, title=by_n[n].title)
                       for n in checked.cited],
            sources=sources, flagged_sentences=checked.uncited_sentences,
            removed_citations=checked.removed, **base,
        )

    def _llm(self):
        if self._llm_factory is None:
            raise LLMError("No LLM is wired into this answerer.", "config")
        return self._llm_factory()


def survey_hits(retriever: Retriever, retrieval, hits: list[Hit],
                hidden: frozenset[str] = frozenset()) -> list[Hit]:
    """A survey's candidate papers: a second search around the first one's best papers
    (Retriever.search_around). The papers the question names, else the first search's best
    paper, stay first: the survey is led by it, and a lookup taken for a survey still
    answers with its paper first. The survey relevance model is fitted on these
    (evals/fit_survey.py)."""
    first = [m.paper_id for m in retrieval.title_matches] or [h.paper_id for h in hits[:1]]
    return retriever.search_around(retrieval.searched_for, hits,
                                   max(extractive.SURVEY_POOL, len(hits)), hidden, first)


def supporting_sentences(answer_text: str, source: Source, limit: int = 2) -> list[str]:
    """Abstract sentences closest (by shared content words) to the answer's claims citing it."""
    claims = [s for s in citations.sentences(answer_text)
              if source.n in citations.markers(s)]
    words = set().union(*(extractive.content_words(re.sub(citations.MARKER, "", c))
                           for c in claims)) if claims else set()
    if not words:
        return []
    ranked = sorted(citations.sentences(source.abstract),
                    key=lambda s: -len(words & extractive.content_words(s)))
    return [s for s in ranked[:limit] if words & extractive.content_words(s)]
