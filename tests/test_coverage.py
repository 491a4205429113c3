"""The coverage decision (assistant/coverage.py) on its own: signals, the fitted model, reasons.

No model and no index: a keyword index of the seven small papers gives the corpus
statistics, and hits are written by hand (dense similarities included), so each signal can
be moved on its own and the decision watched.
"""

from __future__ import annotations

import pytest

from assistant import coverage
from assistant.coverage import FEATURES, AbstentionModel, assess, default_model, model_from_dict
from assistant.keyword import KeywordIndex
from assistant.types import Hit
from assistant.vocab import Vocabulary
from tests.support.papers import SMALL_PAPERS

REEF, HELIX, BATTERY = SMALL_PAPERS[0], SMALL_PAPERS[1], SMALL_PAPERS[3]


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    rows = [(f"c{i}", f"p{i}", p["title"], p["abstract"]) for i, p in enumerate(SMALL_PAPERS)]
    return Vocabulary(KeywordIndex.build(rows, 1))


def hit(paper: dict, rank: int, score: float, dense: float) -> Hit:
    return Hit(paper_id=f"p{SMALL_PAPERS.index(paper)}", title=paper["title"],
               abstract=paper["abstract"], snippet=paper["abstract"][:200], score=score,
               dense_score=dense, rank=rank)


def strong_hits() -> list[Hit]:
    return [hit(REEF, 1, 0.95, 0.72), hit(HELIX, 2, 0.30, 0.21), hit(BATTERY, 3, 0.25, 0.18)]


def test_no_hits_is_never_covered(vocab):
    cov = assess("How does ReefWatch detect bleaching?", [], [], vocab)
    assert not cov.covered and cov.probability == 0.0
    assert "no paper" in cov.reason


def test_a_question_the_top_paper_answers_is_covered(vocab):
    cov = assess("How does ReefWatch detect coral bleaching from drone imagery?",
                 strong_hits(), [], vocab)
    assert cov.features["cover_top"] == pytest.approx(1.0)
    assert cov.unknown == []
    assert cov.covered, cov
    assert "key terms" in cov.reason


def test_an_unknown_name_lowers_the_probability_and_is_named_in_the_reason(vocab):
    known = assess("How does ReefWatch detect coral bleaching?", strong_hits(), [], vocab)
    unknown = assess("How does Zorblaxian tomography detect coral bleaching?",
                     strong_hits(), [], vocab)
    assert "Zorblaxian" in unknown.unknown
    assert unknown.features["unknown_info"] > known.features["unknown_info"]
    assert unknown.probability < known.probability
    if not unknown.covered:
        assert "'Zorblaxian'" in unknown.reason and "does not occur" in unknown.reason


def test_numbers_the_papers_do_not_state_are_a_signal(vocab):
    stated = coverage.features("ReefWatch trained on 41,000 tiles?", strong_hits(), [],
                               vocab)[0]
    missing = coverage.features("ReefWatch trained on 512 tiles?", strong_hits(), [],
                                vocab)[0]
    assert stated["numbers_missing"] == 0.0 and missing["numbers_missing"] == 1.0


def test_a_broad_question_is_covered_by_the_first_papers_together(vocab):
    """Coral bleaching is in one paper, battery health in another: together they hold it."""
    question = "coral bleaching and battery health monitoring"
    feats = coverage.features(question, strong_hits(), [], vocab)[0]
    assert feats["cover_top3"] > feats["cover_best"] >= feats["cover_top"]
    assert feats["cover_top3"] == pytest.approx(1.0)
    assert feats["terms"] == 5.0  # coral, bleaching, battery, health, monitoring
    long = coverage.features(" ".join(f"term{i}" for i in range(80)), strong_hits(), [],
                             vocab)[0]
    assert long["terms"] == coverage.MAX_TERMS


def test_chat_shorthand_is_not_an_unknown_topic_word(vocab):
    assert vocab.informativeness("ppl") == 0.0 and vocab.informativeness("imo") == 0.0
    feats, unknown = coverage.features("how do ppl detect coral bleaching?", strong_hits(), [],
                                       vocab)
    assert "ppl" not in unknown and feats["unknown_info"] == 0.0


def test_hidden_papers_make_their_own_terms_unknown(vocab):
    """A near-miss: the paper that held the question's terms is hidden from the search."""
    question = "How does ReefWatch detect coral bleaching?"
    hits = [hit(HELIX, 1, 0.4, 0.2), hit(BATTERY, 2, 0.3, 0.15)]
    visible = coverage.features(question, hits, [], vocab)[1]
    hidden = coverage.features(question, hits, [], vocab,
                               hidden_texts=[f"{REEF['title']}\n{REEF['abstract']}"])[1]
    assert "ReefWatch" not in visible and "ReefWatch" in hidden


def test_a_named_paper_is_the_reason_when_covered(vocab):
    cov = assess("ReefWatch", strong_hits(), ["title match"], vocab)
    assert cov.features["name_match"] == 1.0
    if cov.covered:
        assert cov.reason.startswith("the question names a paper in the corpus")


def test_the_decision_is_the_fitted_threshold_on_the_probability(vocab):
    model = default_model()
    assert set(model.weights) >= set(FEATURES) and 0.0 < model.threshold < 1.0
    cov = assess("How does ReefWatch detect coral bleaching?", strong_hits(), [], vocab)
    assert cov.covered == (model.probability(cov.features) >= model.threshold)
    never = AbstentionModel(model.weights, model.bias, 1.01, model.mean, model.scale, {})
    assert not assess("How does ReefWatch detect coral bleaching?", strong_hits(), [], vocab,
                      model=never).covered


def test_probability_is_bounded_and_monotone_in_a_positive_weight():
    model = model_from_dict({"weights": dict.fromkeys(FEATURES, 0.0) | {"dense_top": 2.0},
                             "bias": 0.0, "threshold": 0.5,
                             "mean": dict.fromkeys(FEATURES, 0.0),
                             "scale": dict.fromkeys(FEATURES, 1.0)})
    base = dict.fromkeys(FEATURES, 0.0)
    low, high = (model.probability(base | {"dense_top": v}) for v in (0.1, 0.9))
    assert 0.0 < low < high < 1.0
    assert model.probability(base | {"dense_top": 1e9}) <= 1.0


def test_a_model_file_without_every_weight_is_refused():
    with pytest.raises(ValueError, match="fit_abstention"):
        model_from_dict({"weights": {"dense_top": 1.0}, "bias": 0, "threshold": 0.5,
                         "mean": {}, "scale": {}})


def test_a_clipped_word_is_spelled_out_with_the_corpus_word_it_begins():
    """"params" is not a typo of anything within edit distance, but the corpus spells it out;
    a clipping of a rare word, or a capitalised name, is left alone."""
    texts = ["The number of parameters matters.", "We count parameters and parameter "
             "sharing.", "Fewer parameters, same accuracy.", "Backpropagation once."]
    rows = [(f"c{i}", f"p{i}", "t", x) for i, x in enumerate(texts)]
    vocab = Vocabulary(KeywordIndex.build(rows, 1), lambda: iter(texts))
    fixed = vocab.correct("how do params scale with data")
    assert fixed.fixes == [("params", "parameters")]
    assert fixed.text == "how do parameters scale with data"
    assert vocab.correct("training without backprop").fixes == []  # seen once only
    assert vocab.correct("what is Params").fixes == []  # a name, as written


def test_two_words_run_together_are_split_only_into_a_common_phrase():
    """"eachother" is no word and no slip of one, but "each other" is a common English
    phrase; a lower-case name made of two words ("deepseek") is not, so it stays a name and
    still counts as a term the corpus lacks."""
    texts = ["Agents talk to each other.", "Memory of a model."]
    rows = [(f"c{i}", f"p{i}", "t", x) for i, x in enumerate(texts)]
    vocab = Vocabulary(KeywordIndex.build(rows, 1), lambda: iter(texts))
    fixed = vocab.correct("agents talking to eachother, alot")
    assert fixed.fixes == [("eachother", "each other"), ("alot", "a lot")]
    assert fixed.text == "agents talking to each other, a lot"
    assert vocab.correct("what did deepseek and graphsage report").fixes == []
    assert vocab.correct("Eachother").fixes == []  # written as a name


@pytest.mark.slow
def test_soft_cover_meets_a_paraphrase_that_shares_no_word(vocab, embedder):
    """soft_cover matches the question's words piece by piece in the top paper's token
    vectors (the real MiniLM): a paraphrase of what the top paper says scores above the same
    question about an unrelated paper; without token vectors it falls back to the share of
    the question's terms the paper has."""
    question = "Which system spots whitening of corals in pictures taken from the air?"
    on_reef = coverage.features(question, strong_hits(), [], vocab, embedder=embedder)[0]
    battery_first = [hit(BATTERY, 1, 0.95, 0.72), hit(HELIX, 2, 0.30, 0.21)]
    elsewhere = coverage.features(question, battery_first, [], vocab, embedder=embedder)[0]
    assert on_reef["soft_cover"] > elsewhere["soft_cover"] + 0.05, (on_reef, elsewhere)
    assert 0.0 < elsewhere["soft_cover"] < on_reef["soft_cover"] <= 1.0
    refused = assess(question, battery_first, [], vocab, embedder=embedder)
    assert not refused.covered and "wording matches the question's only loosely" in \
        refused.reason

    class NoTokens:  # an endpoint embedder: sentence vectors only
        name = "no-tokens"

        def embed(self, texts):
            return embedder.embed(texts)

    exact = "How does ReefWatch detect coral bleaching?"
    plain = coverage.features(exact, strong_hits(), [], vocab, embedder=NoTokens())[0]
    assert plain["soft_cover"] == pytest.approx(1.0)
    assert plain["sentence_top"] > 0.3
