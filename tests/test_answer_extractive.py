"""Extractive answers over the real seed index (633 papers, real MiniLM, real Chroma/BM25)."""

from __future__ import annotations

import re

import pytest

from assistant.answer import Answerer
from assistant.citations import markers
from assistant.extractive import SURVEY_MAX
from assistant.prompts import ABSTAIN_PHRASE
from assistant.types import Answer

pytestmark = pytest.mark.slow

MARCONI = "Marconi: Prefix Caching for the Era of Hybrid LLMs"
LOOKUP = "that paper about prefix caching for hybrid LLMs with state space layers"
DETAIL = "What token hit rate improvement does Marconi achieve?"
THEME = "Which papers scale 3D Gaussian Splatting reconstruction to large or city-scale scenes?"
GAUSSIAN_PAPERS = {
    "BlockGaussian: Efficient Large-Scale Scene Novel View Synthesis via Adaptive Block-Based "
    "Gaussian Splatting",
    "CityGaussianV2: Efficient and Geometrically Accurate Reconstruction for Large-Scale Scenes",
    "Diffusion-Guided Gaussian Splatting for Large-Scale Unconstrained 3D Reconstruction and "
    "Novel View Synthesis",
    "ICP-3DGS: SfM-free 3D Gaussian Splatting for Large-scale Unbounded Scenes",
    "VastGaussian: Vast 3D Gaussians for Large Scene Reconstruction",
    "Long-LRM: Long-sequence Large Reconstruction Model for Wide-coverage Gaussian Splats",
}
OFF_CORPUS = ["best sourdough bread recipe", "who won the 1998 football world cup"]
ANSWERED = [LOOKUP, DETAIL, THEME]


@pytest.fixture(scope="module")
def answerer(seed_services, seed_settings) -> Answerer:
    settings = seed_settings.model_copy(update={"answer_mode": "extractive"})
    return Answerer(seed_services.retriever, settings)


@pytest.fixture(scope="module")
def answers(answerer) -> dict[str, tuple[list, Answer]]:
    """Each question answered once through stream(): (events, final answer)."""
    out = {}
    for question in ANSWERED + OFF_CORPUS:
        events = list(answerer.stream(question))
        out[question] = (events, events[-1].data)
    return out


def bullet_quotes(answer: Answer) -> list[tuple[int, str]]:
    """(source number, quoted sentence) for every quote in the answer's bullets."""
    out = []
    for line in answer.answer.splitlines():
        if line.startswith("- **"):
            body = line.split("** — ", 1)[1]
            out += [(int(n), q.strip()) for q, n in re.findall(r"(.+?) \[(\d+)\]\.", body)]
    return out


def test_lookup_cites_marconi_first(answers):
    _, answer = answers[LOOKUP]
    assert answer.mode == "extractive" and answer.model is None
    assert not answer.abstained and answer.error is None
    assert answer.sources[0].title == MARCONI
    assert answer.citations[0].n == 1 and answer.citations[0].title == MARCONI
    # The lead says what was found, not how many papers "address" the question.
    assert answer.answer.startswith(f"Most relevant: *{MARCONI}* [1]")


def test_detail_question_quotes_the_figure_first(answers):
    _, answer = answers[DETAIL]
    assert "34.4" in answer.answer
    assert answer.citations[0].title == MARCONI
    quotes = bullet_quotes(answer)
    n, first = quotes[0]
    assert "34.4" in first  # the sentence stating the asked figure leads
    assert answer.sources[n - 1].title == MARCONI


def test_theme_question_is_a_survey_citing_several_papers(answers):
    _, answer = answers[THEME]
    lead = answer.answer.split("\n", 1)[0]
    # The lead names the first-ranked paper and cites every paper the answer quotes.
    assert lead.startswith(f"Most relevant: *{answer.sources[0].title}* [1]")
    assert set(markers(lead)) == {c.n for c in answer.citations}
    assert len(answer.citations) >= 4
    assert len(answer.sources) > 6  # a survey reaches deeper than the default top-k
    # One quoted sentence per paper, every cited paper quoted.
    quoted = [n for n, _ in bullet_quotes(answer)]
    assert sorted(quoted) == sorted(c.n for c in answer.citations)
    cited_titles = {c.title for c in answer.citations}
    assert len(cited_titles & GAUSSIAN_PAPERS) >= 5


@pytest.mark.parametrize("question", ANSWERED)
def test_every_sentence_cites_a_source(answers, question):
    _, answer = answers[question]
    assert answer.flagged_sentences == []
    assert answer.removed_citations == []
    for line in answer.answer.splitlines():
        if line.strip():
            assert markers(line), line


@pytest.mark.parametrize("question", ANSWERED)
def test_quotes_are_verbatim_from_the_cited_abstract(answers, question):
    _, answer = answers[question]
    by_n = {s.n: s for s in answer.sources}
    quoted = bullet_quotes(answer)
    assert quoted
    for n, sentence in quoted:
        assert sentence in by_n[n].abstract, (n, sentence)
    for s in answer.sources:
        assert s.cited == bool(s.quotes)
        for q in s.quotes:
            assert q in s.abstract
            assert q.rstrip(".") in answer.answer


@pytest.mark.parametrize("question", ANSWERED)
def test_citations_are_all_valid(answers, question):
    _, answer = answers[question]
    by_n = {s.n: s for s in answer.sources}
    used = markers(answer.answer)
    assert used and set(used) <= set(by_n)
    assert [c.n for c in answer.citations] == list(dict.fromkeys(used))
    for c in answer.citations:
        assert (c.paper_id, c.title) == (by_n[c.n].paper_id, by_n[c.n].title)
        assert by_n[c.n].cited


@pytest.mark.parametrize("question", ANSWERED)
def test_stream_events(answers, question):
    events, answer = answers[question]
    kinds = [e.kind for e in events]
    assert kinds[0] == "sources" and kinds[-1] == "answer"
    assert set(kinds[1:-1]) == {"token"} and len(kinds) > 3
    assert events[0].data == answer.sources
    assert len(answer.sources) == (SURVEY_MAX if question == THEME else 6)
    assert "".join(e.data for e in events if e.kind == "token") == answer.answer
    assert answer.standalone_query == question
    assert {"retrieve_ms", "compose_ms", "total_ms"} <= answer.timings_ms.keys()


@pytest.mark.parametrize("question", OFF_CORPUS)
def test_off_corpus_questions_abstain(answers, question):
    events, answer = answers[question]
    assert answer.abstained is True
    assert answer.citations == []
    assert answer.answer.startswith(ABSTAIN_PHRASE)
    assert "Closest matches" in answer.answer
    assert not markers(answer.answer)
    assert answer.sources  # still shown, as near misses
    for s in answer.sources[:3]:
        assert f"- {s.title}" in answer.answer
    assert not any(s.cited for s in answer.sources)
    assert [e.kind for e in events] == ["sources", "token", "answer"]


def test_k_limits_the_sources(answerer):
    answer = answerer.answer(LOOKUP, k=3)
    assert len(answer.sources) == 3
    assert answer.sources[0].title == MARCONI


def test_blank_question_asks_for_one(answerer):
    answer = answerer.answer("   \n ")
    assert answer.answer == "Ask a question about the papers."
    assert answer.sources == [] and answer.citations == []


def test_what_does_it_propose_quotes_the_contribution(answerer):
    """A follow-up asking what a paper proposes quotes the abstract's own statement of its
    contribution ("we introduce ..."), not merely the sentence most similar to the question."""
    first = answerer.answer("Which optimizers reduce memory use when training large language "
                            "models?")
    # "The second paper" is the second one the answer cites (a survey's source [2] may be
    # retrieved but not quoted).
    second_title = first.citations[1].title
    follow = answerer.answer("What does the second paper propose?", history=[first])
    assert not follow.abstained and follow.citations[0].title == second_title
    quotes = [q for n, q in bullet_quotes(follow) if n == follow.citations[0].n]
    assert quotes and any(re.search(r"\b(we|this paper|this work) (\w+ )?(propose|introduce|"
                                    r"present|develop|identify|construct|design|build)", q, re.I)
                          for q in quotes), quotes


MEGASCALE = "MegaScale: Scaling Large Language Model Training to More Than 10,000 GPUs"


def test_a_figure_the_lead_paper_does_not_state_is_named_as_unstated(answerer):
    """A question resting on a figure its paper does not give (the abstract says 55.2% MFU on
    12,288 GPUs) is answered with the paper, and the answer says which of the question's
    figures the paper does not state; the figures it does state are not named."""
    wrong = answerer.answer("Which paper reaches 70% MFU training a 175B model on 12,288 GPUs?")
    assert not wrong.abstained and wrong.citations[0].title == MEGASCALE
    assert wrong.unstated == ["70%"]
    right = answerer.answer("Which paper reaches 55.2% MFU training a 175B model on 12,288 "
                            "GPUs?")
    assert right.citations[0].title == MEGASCALE and right.unstated == []


def test_questions_without_figures_name_none_unstated(answers):
    for question in ANSWERED:
        assert answers[question][1].unstated == []


def test_a_figure_question_leads_with_a_figure_even_from_a_less_similar_sentence(answerer):
    """The sentences most like "how much faster is TPO ..." state no figure; the answer
    still leads with the abstract's best sentence that does."""
    from assistant.extractive import _FIGURE

    a = answerer.answer("how much faster is TPO than previous methods at clustering "
                        "attributed bipartite graphs")
    assert a.citations[0].title.startswith("Effective Clustering on Large Attributed Bipartite")
    first = bullet_quotes(a)[0]
    assert first[0] == a.citations[0].n and _FIGURE.search(first[1]), first
