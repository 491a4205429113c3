"""Follow-up resolution (rule-based) and multi-turn extractive chat over the seed index."""

from __future__ import annotations

import pytest

from assistant.answer import Answerer
from assistant.chat import Resolved, history_text, resolve
from assistant.citations import markers
from assistant.types import Answer, Citation, Source

MARCONI = "Marconi: Prefix Caching for the Era of Hybrid LLMs"
LOOKUP = "that paper about prefix caching for hybrid LLMs with state space layers"
FOLLOW_UP = "what hit rate improvement did it report?"


def turn(cited: list[int], n_sources: int = 6, abstained: bool = False,
         question: str = "Which papers cache prefixes?", answer: str = "Some answer [1].",
         ) -> Answer:
    """A previous turn whose sources are papers p1..pN titled 'Paper 1'..'Paper N'."""
    return Answer(
        question=question, answer=answer, mode="extractive", abstained=abstained,
        sources=[Source(n=n, paper_id=f"p{n}", title=f"Paper {n}", score=1 - n / 10)
                 for n in range(1, n_sources + 1)],
        citations=[Citation(n=n, paper_id=f"p{n}", title=f"Paper {n}") for n in cited],
    )


# --- resolve() ------------------------------------------------------------------------------


def test_no_history_leaves_the_question_unchanged():
    question = "what dataset did it use?"
    assert resolve(question, []) == Resolved(query=question, focus=[], is_followup=False)


def test_pronoun_refers_to_the_first_cited_paper():
    resolved = resolve("what dataset did it use?", [turn(cited=[2, 4])])
    assert resolved.focus == ["p2"]
    assert resolved.is_followup
    assert resolved.query == "what dataset did it use? (Paper 2)"


def test_this_paper_refers_to_the_first_cited_paper():
    assert resolve("Who are the authors of this paper and where was it published?",
                   [turn(cited=[3, 1])]).focus == ["p3"]


def test_the_second_one_is_the_second_cited_paper():
    resolved = resolve("tell me more about the second one", [turn(cited=[2, 4])])
    assert resolved.focus == ["p4"]
    assert "Paper 4" in resolved.query and "Paper 2" not in resolved.query


def test_ordinal_beyond_the_cited_papers_falls_back_to_source_number():
    assert resolve("and the third paper?", [turn(cited=[1])]).focus == ["p3"]


def test_compare_it_with_the_second_one_focuses_both():
    resolved = resolve("compare it with the second one", [turn(cited=[2, 4, 5])])
    assert resolved.focus == ["p2", "p4"]
    assert resolved.query == "compare it with the second one (Paper 2; Paper 4)"


def test_plural_reference_focuses_the_cited_papers():
    resolved = resolve("how do they differ in memory use?", [turn(cited=[1, 3, 5, 6])])
    assert resolved.focus == ["p1", "p3", "p5"]


def test_the_last_one():
    assert resolve("what about the last one?", [turn(cited=[2, 3, 6])]).focus == ["p6"]


def test_explicit_marker_refers_to_that_source_number():
    # The answer showed [1], [3] and [5]: "[3]" is the paper shown as [3], not the third cited.
    history = [turn(cited=[1, 3, 5])]
    assert resolve("what dataset does [3] use?", history).focus == ["p3"]
    assert resolve("tell me more about paper 5", history).focus == ["p5"]
    assert resolve("and source #1?", history).focus == ["p1"]


def test_short_question_without_a_subject_continues_the_topic():
    assert resolve("And the dataset?", [turn(cited=[4, 2])]).focus == ["p4"]


def test_short_request_for_other_papers_starts_a_new_search():
    history = [turn(cited=[1])]
    for question in ("Which papers use dataset distillation?",
                     "Any papers on speculative decoding?",
                     "Is there a paper on protein folding?"):
        resolved = resolve(question, history)
        assert resolved == Resolved(query=question), question


def test_long_question_without_references_is_standalone():
    question = "Which methods reduce optimizer memory by quantizing Adam moments to 4 bits?"
    assert resolve(question, [turn(cited=[1, 2])]) == Resolved(query=question)


def test_after_an_abstention_references_use_the_top_sources():
    history = [turn(cited=[], abstained=True)]
    assert resolve("what dataset did it use?", history).focus == ["p1"]
    # No topic to continue: a short question stands alone.
    assert resolve("And the dataset?", history).focus == []


def test_uncited_previous_turn_uses_its_top_sources():
    assert resolve("compare them", [turn(cited=[])]).focus == ["p1", "p2", "p3"]


def test_only_the_latest_turn_is_used():
    older, latest = turn(cited=[5]), turn(cited=[2])
    assert resolve("what dataset did it use?", [older, latest]).focus == ["p2"]


# --- history_text() and looking beyond --------------------------------------------------------


def test_later_work_looks_beyond_the_paper_on_the_table():
    resolved = resolve("Is there later work that extends it to many GPUs?", [turn(cited=[2])])
    assert resolved.focus == [] and resolved.beyond == ["p2"] and resolved.is_followup
    # The earlier paper's title stays in the query: it says what the later work builds on.
    assert resolved.query.endswith("(Paper 2)")


def test_a_noun_like_that_quantity_refers_to_the_first_cited_paper():
    resolved = resolve("Does that quantity grow mainly with model size?", [turn(cited=[3, 1])])
    assert resolved.focus == ["p3"] and resolved.beyond == []


def test_history_text_lists_questions_answers_and_citations():
    text = history_text([turn(cited=[1, 3], question="Q one?", answer="A one [1][3].")])
    assert text == "User: Q one?\nAssistant: A one [1][3].\n(Cited: [1] Paper 1; [3] Paper 3)"


def test_history_text_is_bounded():
    turns = [turn(cited=[], question=f"Q{i}?", answer="x" * 1000) for i in range(6)]
    text = history_text(turns, max_turns=4)
    assert "Q0?" not in text and "Q1?" not in text and "Q5?" in text
    assert "x" * 601 not in text and "x" * 600 in text
    assert "(Cited:" not in text


# --- multi-turn extractive chat over the seed index -----------------------------------------


@pytest.fixture(scope="module")
def answerer(seed_services, seed_settings) -> Answerer:
    return Answerer(seed_services.retriever,
                    seed_settings.model_copy(update={"answer_mode": "extractive"}))


@pytest.fixture(scope="module")
def first(answerer) -> Answer:
    answer = answerer.answer(LOOKUP)
    assert answer.citations[0].title == MARCONI
    return answer


def assert_turn_consistent(answer: Answer) -> None:
    """Every [n] in the text, and every citation, refers to this turn's own sources."""
    assert answer.sources
    by_n = {s.n: s for s in answer.sources}
    assert [s.n for s in answer.sources] == list(range(1, len(answer.sources) + 1))
    assert set(markers(answer.answer)) <= set(by_n)
    for c in answer.citations:
        assert (c.paper_id, c.title) == (by_n[c.n].paper_id, by_n[c.n].title)
    assert answer.flagged_sentences == [] and answer.removed_citations == []


@pytest.mark.slow
def test_follow_up_about_it_answers_from_marconi(answerer, first):
    second = answerer.answer(FOLLOW_UP, history=[first])
    assert second.sources[0].title == MARCONI
    assert "34.4" in second.answer
    assert MARCONI in second.standalone_query and second.standalone_query.startswith(FOLLOW_UP)
    assert [c.title for c in second.citations] == [MARCONI]
    assert not second.abstained
    assert_turn_consistent(first)
    assert_turn_consistent(second)


@pytest.mark.slow
def test_compare_follow_up_focuses_both_papers(answerer, first):
    question = "compare it with the second one"
    answer = answerer.answer(question, history=[first])
    expected = [MARCONI, first.sources[1].title]
    assert [s.title for s in answer.sources[:2]] == expected
    assert [c.title for c in answer.citations] == expected
    assert_turn_consistent(answer)


@pytest.mark.slow
def test_new_topic_in_a_conversation_is_not_pinned_to_the_last_paper(answerer, first):
    answer = answerer.answer("Which papers use dataset distillation?", history=[first])
    titles = [c.title for c in answer.citations]
    assert MARCONI not in titles
    assert MARCONI not in [s.title for s in answer.sources]
    assert any("Distillation" in t for t in titles), titles
    assert_turn_consistent(answer)


@pytest.mark.slow
def test_off_topic_follow_up_after_an_abstention_still_abstains(answerer):
    off = answerer.answer("best sourdough bread recipe")
    assert off.abstained
    again = answerer.answer("And the starter?", history=[off])
    assert again.abstained and again.citations == []
    assert again.sources


@pytest.mark.slow
def test_later_version_follow_up_answers_with_the_later_paper(answerer):
    zero = answerer.answer("Which paper introduced the Zero Redundancy Optimizer for removing "
                           "memory redundancy in data- and model-parallel training?")
    assert zero.citations[0].title.startswith("ZeRO: Memory Optimizations")
    later = answerer.answer("What was the later version that also taps CPU and NVMe memory, "
                            "and how large a model can it fit?",
                            history=[zero])
    assert later.sources[0].title.startswith("ZeRO-Infinity"), [s.title for s in later.sources]
    assert later.citations[0].title.startswith("ZeRO-Infinity")
    assert_turn_consistent(later)


def test_a_positional_reference_in_an_empty_chat_is_dangling():
    assert resolve("What does the second paper propose?", []).dangling
    assert resolve("and [2]?", []).dangling
    assert not resolve("Which paper proposes ZeRO?", []).dangling


@pytest.mark.slow
def test_follow_up_in_an_empty_chat_says_there_is_nothing_to_follow(answerer):
    answer = answerer.answer("What does the second paper propose?")
    assert answer.abstained and answer.citations == []
    assert "nothing to follow up" in answer.answer
