"""The survey-or-single decision (assistant/intent.py): its parts, its fitted file, and what it
decides on the seed index. Example questions are written here (never the test split's)."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest

from assistant import extractive, intent
from assistant.answer import RANK_DEPTH
from assistant.types import Hit


def test_form_masks_the_topic_and_keeps_the_wording():
    form = intent.form_of("What are the main approaches to KV-cache compression in LLMs?")
    assert form.startswith("what are the main approaches to something")
    assert "kv-cache" not in form and "llms" not in form
    # A run of masked words is one mask: the form does not count the topic's words.
    assert "something something" not in intent.form_of("Tell me about Muon AdamW Sophia")
    # Contractions are judged by their first word.
    assert intent.form_of("I'm new to X").startswith("i'm new to")


def _hit(pid: str, dense: float) -> Hit:
    return Hit(paper_id=pid, title=pid, abstract="", snippet="", score=dense,
               dense_score=dense)


def test_retrieval_features_tell_one_dominant_paper_from_many_comparable():
    dominant = intent.retrieval_features([_hit("a", 0.8), _hit("b", 0.5), _hit("c", 0.45)])
    crowded = intent.retrieval_features([_hit(x, 0.6 - i * 0.01) for i, x in enumerate("abcde")])
    assert dominant["dominance"] > 0.25 and dominant["spread"] == 1
    assert crowded["spread"] == 5 and crowded["dominance"] < 0.02
    assert intent.retrieval_features([]) == {"spread": 0.0, "dominance": 0.0}


def test_fitted_file_is_dev_only_and_matches_the_features():
    data = json.loads((resources.files("assistant") / "intent.json").read_text())
    assert tuple(data["features"]) == intent.FEATURES
    assert all(not name.startswith("test") for name in data["fitted_on"])
    assert 0.0 < data["threshold"] < 1.0
    # The cross-validated figures are recorded with the weights, and are not degenerate.
    assert data["cv_survey_recall"] >= 0.8 and data["cv_single_kept"] >= 0.8
    dims = {len(v) for v in data["centroids"].values()}
    assert len(dims) == 1 and dims.pop() > 100
    # Held out one question set at a time, with each set's figures kept; the hedged band
    # lies below the survey threshold and catches more of the held-out survey questions.
    assert "question set" in data["cv"]
    assert set(data["by_set"]) <= set(data["fitted_on"])
    assert 0.0 < data["hedge"] < data["threshold"]
    assert data["cv_hedged_or_survey"] > data["cv_survey_recall"]


@pytest.mark.parametrize(("p", "wanted"), [(0.99, "survey"), (None, "survey"),
                                            (-1, "hedged"), (0.001, "single")])
def test_decide_maps_the_probability_to_three_layouts(monkeypatch, p, wanted):
    m = intent.model()
    value = {None: m["threshold"], -1: (m["hedge"] + m["threshold"]) / 2}.get(p, p)
    monkeypatch.setattr(intent, "survey_probability", lambda q, h, e, peers: value)
    assert intent.decide("q", [], None, 0.0) == wanted


def test_peers_tell_a_topic_many_papers_answer_from_one_paper_described(seed_services):
    """The survey relevance of the best other candidates: high when several papers answer
    the question (a topic), low when one does (a paper described by what it does)."""
    emb = seed_services.embedder

    def peers(q):
        hits = seed_services.retriever.retrieve(q, k=20).hits
        return extractive.peer_relevance(q, list(enumerate(hits, start=1)), emb)

    topic = peers("3D Gaussian Splatting for large city-scale scenes")
    one = peers("prefix caching for hybrid LLMs that mix attention with state space layers")
    assert topic > one + 0.2, (topic, one)
    assert extractive.peer_relevance("q", [], emb) == 0.0


def test_a_hedged_answer_adds_the_sure_papers_once_each(seed_services):
    """Same first paper and quotes as the single answer, plus sources the survey relevance
    model is sure of (one quote each, at most HEDGE_MAX)."""
    # Several papers answer, and the single answer quotes only the first of them.
    q = "KV cache compression"
    hits = list(enumerate(seed_services.retriever.retrieve(q, k=6).hits, start=1))
    emb, settings = seed_services.embedder, seed_services.settings
    single = extractive.plan(q, hits, emb, settings, wanted="single")
    hedged = extractive.plan(q, hits, emb, settings, wanted="hedged")
    assert hedged.shape == single.shape == "single"
    def seen(plan):
        return [(x.n, x.quotes) for x in plan.picks]

    assert seen(hedged)[: len(single.picks)] == seen(single)
    extra = hedged.picks[len(single.picks):]
    assert 1 <= len(extra) <= extractive.HEDGE_MAX
    assert all(len(x.quotes) == 1 for x in extra)
    scored = extractive._score(q, hits, emb, False, contribution=True,
                               limit=extractive.SURVEY_SENTENCES)
    sure = {s.n for s, p in zip(scored, extractive.relevance(
        extractive.survey_features(q, scored)), strict=True)
        if p >= extractive.HEDGE_RELEVANCE}
    assert {x.n for x in extra} <= sure
    # Named papers and follow-ups about papers on the table are never hedged.
    focus = {single.picks[0].hit.paper_id}
    assert seen(extractive.plan(q, hits, emb, settings, focus=focus, wanted="hedged")) == \
        seen(extractive.plan(q, hits, emb, settings, focus=focus, wanted="single"))


def test_probability_moves_with_the_cues():
    m = intent.model()
    neutral = {k: m["mean"][k] for k in intent.FEATURES}
    plural = dict(neutral, plural=1.0, singular=0.0)
    singular = dict(neutral, plural=0.0, singular=1.0)
    assert intent.probability(plural) > intent.probability(neutral) > \
        intent.probability(singular)


@pytest.mark.parametrize(("question", "others"), [
    ("Besides SCOPE, what compresses the KV cache?", True),
    ("SCOPE trims the KV cache. What else is there on that?", True),
    ("Who else works on learned optimizers, apart from VeLO?", True),
    ("Anything in the spirit of model soups?", True),
    ("How do Marconi and similar methods cut KV cache cost?", True),
    ("SCOPE trims the KV cache. Papers in the same line?", True),
    ("Are there other ways to cut decoding latency?", True),
    ("Which paper introduced SCOPE?", False),
    ("What does the other branch of the network in SCOPE do?", False),
])
def test_a_question_asking_beyond_a_paper_is_a_cue(question, others):
    """Said of the papers wanted, not of a part of the named one ("the other branch")."""
    assert intent.cues(question)["others"] == float(others)


def test_asking_beyond_a_paper_leans_to_a_survey():
    m = intent.model()
    neutral = {k: m["mean"][k] for k in intent.FEATURES}
    assert intent.probability(dict(neutral, others=1.0)) > \
        intent.probability(dict(neutral, others=0.0))


@pytest.mark.parametrize("question", [
    "Give me an overview of federated learning in this corpus.",
    "I'm new to preference optimization for LLMs, where should I start?",
    "Which papers propose ways to compress the KV cache?",
])
def test_survey_questions_number_more_sources(seed_services, question):
    hits = seed_services.retriever.retrieve(question, k=RANK_DEPTH).hits
    assert extractive.wants_survey(question, hits, seed_services.embedder)
    answer = seed_services.answerer.answer(question, mode="extractive")
    assert not answer.abstained
    assert len(answer.sources) > seed_services.settings.top_k


@pytest.mark.parametrize("question", [
    "Which paper uses a small auxiliary model to approximate a larger model's KV cache?",
    "Is there a paper that speeds up AlphaFold-style protein structure prediction?",
    "What accuracy does the vision transformer pruning paper report on ImageNet?",
])
def test_single_paper_questions_stay_lookups(seed_services, question):
    hits = seed_services.retriever.retrieve(question, k=RANK_DEPTH).hits
    assert not extractive.wants_survey(question, hits, seed_services.embedder)


def test_a_named_paper_asked_about_alone_stays_a_lookup(seed_services):
    q = "Which papers study APOLLO?"
    r = seed_services.retriever.retrieve(q, k=RANK_DEPTH)
    named = {m.paper_id for m in r.title_matches}
    assert named, "APOLLO is a seed paper's name before its colon: it must match"
    assert not extractive.wants_survey(q, r.hits, seed_services.embedder, named)
    q = "How do VastGaussian and CityGaussianV2 compare?"
    hits = seed_services.retriever.retrieve(q, k=RANK_DEPTH).hits
    assert not extractive.wants_survey(q, hits, seed_services.embedder)


@pytest.mark.parametrize("question", [
    "Are there alternatives to Skeleton-of-Thought for faster LLM decoding?",
    "What other work besides ZeRO-Infinity trains huge models on limited GPU memory?",
    # Asking beyond the named paper (the "others" cue), though the name dominates retrieval.
    "MicroAdam compresses optimizer states; who else works on that?",
])
def test_a_survey_anchored_on_a_named_paper_leads_with_it(seed_services, question):
    """Naming a paper does not make a lookup of a question asking for the papers around it:
    the fitted decision decides, and the named paper leads the survey."""
    r = seed_services.retriever.retrieve(question, k=RANK_DEPTH)
    named = {m.paper_id for m in r.title_matches}
    assert len(named) == 1
    assert extractive.wants_survey(question, r.hits, seed_services.embedder, named)
    answer = seed_services.answerer.answer(question, mode="extractive")
    assert not answer.abstained
    lead = next(s for s in answer.sources if s.paper_id in named)
    assert answer.answer.startswith(f"Most relevant: *{lead.title}* [{lead.n}]")
    assert len({c.paper_id for c in answer.citations}) >= 3
    assert "groups by what their abstracts say" in answer.answer


def test_vectors_are_cached_per_question(seed_services):
    calls = []

    class Counting:
        def __init__(self, inner):
            self.inner = inner

        def embed(self, texts):
            calls.append(list(texts))
            return self.inner.embed(texts)

    counting = Counting(seed_services.embedder)
    first = intent.vectors("a question asked twice", counting)
    second = intent.vectors("a question asked twice", counting)
    assert len(calls) == 1 and np.array_equal(first, second)
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0)


def test_a_single_answer_adds_at_most_one_runner_up_it_is_sure_of(seed_services,
                                                                   monkeypatch):
    q = "Is there a paper on prefix caching for hybrid attention and state-space models?"
    hits = list(enumerate(seed_services.retriever.retrieve(q, k=6).hits, start=1))
    emb, settings = seed_services.embedder, seed_services.settings
    alone = extractive.plan(q, hits, emb, settings, wanted="single")
    # No other source comes near the bar: the lookup quotes its paper alone.
    assert [x.n for x in alone.picks] == [1]
    monkeypatch.setattr(extractive, "RUNNER_UP_RELEVANCE", 0.15)  # every weak neighbour passes
    more = extractive.plan(q, hits, emb, settings, wanted="single")
    assert [x.n for x in more.picks][:1] == [1] and len(more.picks) == 2
    assert len(more.picks[1].quotes) == 1
