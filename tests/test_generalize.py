"""The failures of issue 12, each as a test on the seed index (extractive mode): questions
that name a paper, everyday words, typos, topic switches mid-chat, follow-ups asking for a
*different* paper, the first-ranked source never dropped, known-item search, and near-miss
questions (the named paper hidden) abstaining. Behaviour, not exact scores: each assert
holds with margin on fp32 and int8 vectors."""

from __future__ import annotations

import pytest

from assistant.answer import Answerer
from assistant.titles import TitleIndex

pytestmark = pytest.mark.slow

DPO = "Direct Preference Optimization: Your Language Model is Secretly a Reward Model"


@pytest.fixture(scope="module")
def answerer(seed_services, seed_settings) -> Answerer:
    return Answerer(seed_services.retriever,
                    seed_settings.model_copy(update={"answer_mode": "extractive"}))


def cited(answer) -> list[str]:
    return [c.title for c in answer.citations]


@pytest.mark.parametrize(("question", "title_start"), [
    ("Which papers study Muon?", "Muon is Scalable"),
    ("What results does SMoA report?", "SMoA:"),
    ("Tell me about CreditDecoding.", "CreditDecoding:"),
    ("how does Skeleton-of-Thought work", "Skeleton-of-Thought:"),
    ("What is the gist of the Direct Preference Optimization paper?", DPO),
    ("Honestly confused: how does DPO get rid of the reward model?", DPO),
    ("My colleague mentioned averaging fine-tuned weights into a soup; what was that paper?",
     "Model soups"),
])
def test_questions_naming_a_paper_cite_it(answerer, question, title_start):
    answer = answerer.answer(question)
    assert not answer.abstained, answer.answer
    assert cited(answer)[0].startswith(title_start), cited(answer)


def test_a_typo_question_is_corrected_and_answered(answerer):
    answer = answerer.answer("wich OPTIMIZERS cut memmory use for LLM traning??")
    assert not answer.abstained
    assert ("memmory", "memory") in answer.corrections
    assert "memory" in answer.searched_for and "training" in answer.searched_for
    assert any("Memory" in t or "memory" in t for t in cited(answer)), cited(answer)


def test_a_new_topic_mid_chat_is_a_new_search(answerer):
    first = answerer.answer("Which optimizers reduce memory use when training large language "
                            "models?")
    before = set(cited(first))
    switch = answerer.answer("Any work on LLM watermarking?", history=[first])
    assert not set(cited(switch)) & before
    zero = answerer.answer("Which paper introduced ZeRO-Infinity?")
    dpo = answerer.answer("Which papers compare DPO with PPO?", history=[zero])
    assert not any(t.startswith("ZeRO") for t in cited(dpo)), cited(dpo)
    prefix = answerer.answer("Which paper does prefix caching for hybrid LLMs?")
    boiling = answerer.answer("What is the boiling point of ethanol?", history=[prefix])
    assert boiling.abstained and boiling.citations == []
    assert boiling.abstain_reason


def test_asking_for_another_paper_about_it_looks_beyond_it(answerer):
    first = answerer.answer("Which paper compresses Adam's communication to one bit?")
    assert cited(first)[0].startswith("1-bit Adam")
    follow = answerer.answer("Is there a paper that argues it hurts convergence, and what does "
                             "it propose instead?", history=[first])
    assert not any(t.startswith("1-bit Adam") for t in cited(follow)), cited(follow)


def test_the_first_ranked_paper_is_always_quoted(answerer):
    answer = answerer.answer("What results does Rewarded meta-pruning report?")
    assert answer.sources[0].title.startswith("Rewarded meta-pruning")
    assert cited(answer)[0] == answer.sources[0].title
    assert all(s.score is not None for s in answer.sources)


def test_every_hit_has_a_dense_similarity(seed_services):
    hits = seed_services.retriever.retrieve("Rewarded meta-pruning", k=10).hits
    assert hits and all(h.dense_score is not None for h in hits)


def test_known_item_search_ranks_the_named_paper_first(seed_services):
    retriever = seed_services.retriever
    assert retriever.retrieve("Direct Preference Optimization").hits[0].title == DPO
    titles = seed_services.index.catalog.titles()
    named = [(pid, t) for pid, t in titles.items() if ":" in t]
    misses = [t for pid, t in named
              if retriever.retrieve(t.split(":")[0], k=3).hits[0].paper_id != pid]
    # Names shared by two papers (a name and its sequel) are the only allowed misses.
    assert len(misses) <= 0.01 * len(named), misses
    full = [t for pid, t in list(titles.items())[::5]
            if retriever.retrieve(t, k=3).hits[0].paper_id != pid]
    assert len(full) <= 1, full


def test_title_index_needs_the_casing_of_an_everyday_name():
    index = TitleIndex({"p1": "Echo: Decoupling Inference", "p2": "SMoA: Sparse Agents"})
    assert [m.paper_id for m in index.match("how do I find papers on echo state networks")] == []
    assert [m.paper_id for m in index.match("What is Echo about?")] == ["p1"]
    assert [m.paper_id for m in index.match("smoa results?")] == ["p2"]


def test_an_acronym_joined_to_another_word_names_a_kind_not_the_paper():
    """As "ZeRO-Infinity" is not "ZeRO": "DPO-style training" asks about methods like DPO,
    "Online-DPO" is another method; "DPO" alone names the paper."""
    index = TitleIndex({"p1": "Direct Preference Optimization: Your Language Model is "
                              "Secretly a Reward Model"})
    assert [m.paper_id for m in index.match("how does DPO drop the reward model?")] == ["p1"]
    assert index.match("aligning video generators with DPO-style training?") == []
    assert index.match("is Online-DPO better?") == []


def test_a_misspelt_name_matches_but_an_everyday_word_near_it_does_not():
    index = TitleIndex({"p1": "Gradientclipper: Adaptive Clipping for Training"})
    assert [m.paper_id for m in index.match("what does Gradientcliper propose?")] == ["p1"]
    # "control" is a correctly spelt everyday word one edit from the name: no match.
    index = TitleIndex({"p1": "Xcontrol: Adaptive Clipping for Training"})
    assert [m.paper_id for m in index.match("sample efficiency in continuous control")] == []


def test_a_name_found_inside_a_longer_word_is_not_a_misspelling_of_it():
    """"ee tuning" aligns with the end of "fine tuning" ("ne tuning", one letter off), but
    widened to whole words it is "fine tuning": no paper named EE-Tuning is asked for."""
    index = TitleIndex({"p1": "EE-Tuning: An Economical yet Scalable Solution for Tuning"})
    assert index.match("Which paper proposes low-rank adapters for fine-tuning?") == []
    assert index.match("is preference fine tuning enough?") == []
    assert [m.paper_id for m in index.match("What does EE-Tuning propose?")] == ["p1"]


@pytest.mark.parametrize("question", [
    "What results does SMoA report?",
    "Tell me about CreditDecoding.",
    "how does Skeleton-of-Thought work",
])
def test_near_miss_a_named_paper_hidden_abstains(answerer, seed_services, question):
    named = answerer.answer(question)
    gold = named.citations[0].paper_id
    hidden = answerer.answer(question, exclude=frozenset({gold}))
    assert hidden.abstained, hidden.answer
    assert gold not in hidden.ranked


def test_off_corpus_method_abstains_with_a_reason(answerer):
    answer = answerer.answer("Which paper proposes the Sophia optimizer?")
    assert answer.abstained and "Sophia" in (answer.abstain_reason or "")


def test_too_long_question_is_refused_before_any_work(answerer):
    answer = answerer.answer("why " * 3000)
    assert answer.error and "too long" in answer.error and not answer.sources


def test_a_name_other_papers_write_as_a_lower_case_phrase_needs_its_own_casing():
    """"Convex Optimization: ..." is not named by a question about convex optimization when
    other papers write the phrase in lower case; a name other papers cite capitalised, or
    that no other paper uses, matches in any case."""
    from assistant.titles import TitleIndex

    titles = {"a": "Convex Optimization: Algorithms and Complexity",
              "b": "Marconi: Prefix Caching for the Era of Hybrid LLMs",
              "f": "Direct Preference Optimization: Your Language Model is Secretly a Reward",
              "c": "One", "d": "Two", "e": "Three"}
    texts = [("a", "convex optimization theorems"), ("b", "prefix caching"),
             *[(p, f"results from convex optimization for {p}; unlike Direct Preference "
                   "Optimization (DPO)") for p in "cde"]]
    index = TitleIndex(titles, texts=lambda: iter(texts))
    assert not index.match("a bound from non-smooth convex optimization theory")
    assert [m.paper_id for m in index.match("What does Convex Optimization cover?")] == ["a"]
    assert [m.paper_id for m in index.match("how does marconi work")] == ["b"]
    assert [m.paper_id for m in index.match("is direct preference optimization stable?")] == \
        ["f"]
    # Two other papers are not enough to make a name an ordinary phrase.
    fewer = TitleIndex(titles, texts=lambda: iter(texts[:-1]))
    assert [m.paper_id for m in fewer.match("non-smooth convex optimization")] == ["a"]


def test_a_comparison_naming_a_famous_method_in_lower_case_finds_it(answerer):
    answer = answerer.answer(
        "how does direct preference optimization compare with creative preference optimization?")
    cited = {s.title.split(":")[0] for s in answer.sources if f"[{s.n}]" in answer.answer}
    assert {"Direct Preference Optimization", "Creative Preference Optimization"} <= cited
