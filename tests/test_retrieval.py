"""Hybrid retrieval on the session seed index (633 papers): paraphrase lookups and invariants."""

from __future__ import annotations

import pytest

from assistant.retrieve import _per_paper, _Ranked, convex, fuse

# Paraphrases written from the abstracts in seeds/: they avoid the titles' distinctive words.
PARAPHRASES = [
    ("Marconi: Prefix Caching for the Era of Hybrid LLMs",
     "reusing cached prompt prefixes when serving models that mix attention with state space "
     "layers"),
    ("Zeus: Understanding and Optimizing GPU Energy Consumption of DNN Training",
     "cutting the energy use of deep neural network training by choosing GPU settings "
     "automatically"),
    ("Optimizing Deep Learning Models For Raspberry Pi",
     "making neural networks small enough for a tiny low-power single-board computer"),
    ("TRADES: Generating Realistic Market Simulations with Diffusion Models",
     "synthetic stock exchange order book data produced by a denoising diffusion model"),
    ("Direct Preference Optimization: Your Language Model is Secretly a Reward Model",
     "aligning language models to human preferences without fitting a separate reward model "
     "or running RL"),
    ("Mirror Sinkhorn: Fast Online Optimization on Transport Polytopes",
     "online convex minimisation over optimal transport plans with mirror descent and matrix "
     "scaling"),
    ("Actions Speak Louder than Words: Trillion-Parameter Sequential Transducers for "
     "Generative Recommendations",
     "scaling recommender systems by modelling user behaviour sequences generatively"),
    ("ParaFold: Paralleling AlphaFold for Large-Scale Predictions",
     "speeding up protein structure prediction by parallelising the CPU alignment stage"),
    ("Meta Learning of Interface Conditions for Multi-Domain Physics-Informed Neural Networks",
     "choosing how to match solutions at subdomain boundaries when splitting a PDE across "
     "several neural solvers"),
    ("Seedream 2.0: A Native Chinese-English Bilingual Image Generation Foundation Model",
     "text-to-image generator that draws Chinese characters and understands Chinese culture"),
    ("Matrix Calculus (for Machine Learning and Beyond)",
     "course notes on differentiating functions of matrices and reverse-mode autodiff"),
    ("Distiller: A Systematic Study of Model Distillation Methods in Natural Language "
     "Processing",
     "which components of teacher-student knowledge transfer matter most for NLP models"),
]
FUSIONS = ["convex", "rrf", "dense", "bm25"]


@pytest.fixture(scope="module")
def retriever(seed_services):
    return seed_services.retriever


def titles(hits) -> list[str]:
    return [h.title for h in hits]


@pytest.mark.parametrize(("title", "query"), PARAPHRASES, ids=[t[:24] for t, _ in PARAPHRASES])
def test_paraphrase_finds_known_paper_in_top_5(retriever, title, query):
    hits = retriever.search(query, k=5)  # the default fusion of Settings
    assert title in titles(hits), f"{query!r} -> {titles(hits)}"


@pytest.mark.parametrize("fusion", FUSIONS)
def test_every_fusion_finds_most_paraphrases(retriever, fusion):
    missed = [q for title, q in PARAPHRASES
              if title not in titles(retriever.search(q, k=5, fusion=fusion))]
    assert len(PARAPHRASES) - len(missed) >= 10, f"{fusion} missed {missed}"


@pytest.mark.parametrize("fusion", FUSIONS)
def test_result_invariants(retriever, seed_services, fusion):
    query = "reducing memory use of large language model inference"
    hits = retriever.search(query, k=10, fusion=fusion)
    assert len(hits) == 10
    ids = [h.paper_id for h in hits]
    assert len(set(ids)) == len(ids), "a paper appears twice"
    scores = [h.score for h in hits]
    assert all(0 < s <= 1 for s in scores)
    assert scores == sorted(scores, reverse=True)
    assert [h.rank for h in hits] == list(range(1, 11))
    papers = seed_services.index.catalog.papers(ids)
    for h in hits:
        assert h.title == papers[h.paper_id].title
        assert h.abstract == papers[h.paper_id].abstract
        assert h.snippet and h.snippet in h.abstract  # the best chunk, taken from the abstract
    if fusion == "dense":
        assert all(h.dense_score is not None and h.bm25_score is None for h in hits)
        assert hits[0].score == 1.0
        dense = [h.dense_score for h in hits]
        assert dense == sorted(dense, reverse=True) and all(-1 <= d <= 1 for d in dense)
    elif fusion == "bm25":
        assert all(h.bm25_score is not None and h.bm25_score > 0 for h in hits)
        assert all(h.dense_score is None for h in hits)
        assert hits[0].score == 1.0
        bm25 = [h.bm25_score for h in hits]
        assert bm25 == sorted(bm25, reverse=True)
    else:  # hybrid: both retrievers contribute
        assert all(h.dense_score is not None or h.bm25_score is not None for h in hits)
        assert any(h.dense_score is not None and h.bm25_score is not None for h in hits)


def test_paper_appears_once_even_when_many_of_its_chunks_match(retriever, seed_services):
    """Pick a paper split into several chunks and query with its own text."""
    index = seed_services.index
    rows = index.catalog.chunk_rows()
    per_paper: dict[str, list[str]] = {}
    for _, pid, _, text in rows:
        per_paper.setdefault(pid, []).append(text)
    pid, texts = next((p, t) for p, t in per_paper.items() if len(t) >= 3)
    hits = retriever.search(" ".join(texts)[:400], k=20)
    ids = [h.paper_id for h in hits]
    assert ids.count(pid) == 1
    assert len(set(ids)) == len(ids)
    assert hits[0].paper_id == pid


@pytest.mark.parametrize("k", [1, 3, 7, 25])
def test_k_is_respected(retriever, k):
    hits = retriever.search("graph neural networks for molecules", k=k)
    assert len(hits) == k


def test_default_k_comes_from_settings(retriever, seed_settings):
    assert len(retriever.search("speech recognition")) == seed_settings.top_k


@pytest.mark.parametrize("query", ["the of and a is to", "xyzzyqwv blorptangle frumious", "!!!"])
@pytest.mark.parametrize("fusion", FUSIONS)
def test_queries_without_useful_words_do_not_fail(retriever, query, fusion):
    hits = retriever.search(query, k=5, fusion=fusion)
    if fusion == "bm25":
        assert hits == []  # no known term: nothing to rank by
    else:
        assert len(hits) == 5  # dense always ranks something
        assert all(h.bm25_score is None for h in hits)
        assert all(0 < h.score <= 1 for h in hits)


def test_top_similarity_is_the_best_dense_score(retriever):
    hits = retriever.search(PARAPHRASES[0][1], k=5)
    best = retriever.top_similarity(hits)
    assert best == max(h.dense_score for h in hits if h.dense_score is not None)
    assert 0.3 < best <= 1.0
    assert retriever.top_similarity(retriever.search("of the", k=5, fusion="bm25")) == 0.0


def test_fuse_normalises_and_weights():
    a = [_Ranked("p1", "c1", 0.9), _Ranked("p2", "c2", 0.8)]
    b = [_Ranked("p2", "c3", 5.0), _Ranked("p3", "c4", 4.0)]
    fused = dict(fuse([(a, 1.0), (b, 1.0)], rrf_k=60))
    assert fused["p2"] == max(fused.values())
    assert 0 < fused["p3"] < fused["p1"] < fused["p2"] < 1
    assert fuse([(a, 1.0), (a, 1.0)], rrf_k=60)[0] == ("p1", 1.0)
    only_b = dict(fuse([(a, 0.0), (b, 1.0)], rrf_k=60))
    assert only_b["p1"] == 0.0 and only_b["p2"] == 1.0
    assert fuse([], rrf_k=60) == []


def test_convex_mix_of_normalised_scores():
    dense = [_Ranked("p1", "c1", 0.8), _Ranked("p2", "c2", 0.6), _Ranked("p3", "c3", 0.4)]
    bm25 = [_Ranked("p1", "c4", 9.0), _Ranked("p3", "c5", 3.0)]
    mixed = dict(convex(dense, bm25, alpha=0.5))
    assert mixed["p1"] == pytest.approx(1.0)  # top in both
    assert mixed["p2"] == pytest.approx(0.25)
    assert mixed["p3"] == pytest.approx(0.5 / 3)
    assert all(0 < v <= 1 for v in mixed.values())
    assert dict(convex(dense, [], alpha=1.0))["p1"] == pytest.approx(1.0)
    assert dict(convex([], bm25, alpha=0.0))["p3"] == pytest.approx(1 / 3)
    assert convex([], [], alpha=0.5) == []


def test_per_paper_keeps_best_chunk_of_each_paper():
    rows = [("c1", "p1", 0.9), ("c2", "p2", 0.8), ("c3", "p1", 0.7)]
    ranked = _per_paper(rows)
    assert [(r.paper_id, r.chunk_id, r.score) for r in ranked] == [("p1", "c1", 0.9),
                                                                   ("p2", "c2", 0.8)]


SURVEY_QUERY = "Which papers reduce the memory of optimizer states when training large models?"


def test_a_survey_searches_again_around_its_first_papers(retriever):
    """The second search is widened by the first papers (their mean vector and the rare terms
    they share), not pulled off the topic: the first search's best papers stay near the top,
    the papers a title match pins stay first and hidden papers stay hidden."""
    first = retriever.retrieve(SURVEY_QUERY, k=20).hits
    hidden = frozenset({first[1].paper_id})
    pinned = [first[4].paper_id]
    around = retriever.search_around(SURVEY_QUERY, first, k=20, exclude=hidden, pinned=pinned)
    ids = [h.paper_id for h in around]
    assert len(ids) == 20 and len(set(ids)) == 20
    assert ids[0] == pinned[0] and first[1].paper_id not in ids
    assert {first[0].paper_id, first[2].paper_id} <= set(ids[:10])
    assert ids != [h.paper_id for h in first[:20]]  # it did search again


def test_feedback_terms_are_shared_by_the_first_papers_and_new_to_the_query(retriever):
    first = retriever.retrieve(SURVEY_QUERY, k=20).hits[:8]
    texts = [f"{h.title} {h.abstract}" for h in first]
    terms = retriever._feedback_terms(SURVEY_QUERY, texts)
    keyword = retriever.index.keyword
    asked = set(keyword.terms(SURVEY_QUERY))
    assert 0 < len(terms) <= retriever.settings.feedback_terms
    for term in terms:
        assert term not in asked
        assert sum(term in set(keyword.terms(t)) for t in texts) >= 2, term


def test_feedback_off_returns_the_first_search(seed_services, seed_settings):
    from assistant.retrieve import Retriever

    off = Retriever(seed_services.index, seed_services.embedder,
                    seed_settings.model_copy(update={"feedback_papers": 0}))
    first = off.retrieve(SURVEY_QUERY, k=20).hits
    assert off.search_around(SURVEY_QUERY, first, k=12) == first[:12]
