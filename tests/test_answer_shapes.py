"""Answer shapes without an LLM (issue 16): what the question asks decides the shape; survey
answers group papers, comparisons are tables, detail answers lead with the figure. Pure
functions first, then answers over the real seed index (633 papers, MiniLM, Chroma/BM25)."""

from __future__ import annotations

import json
import re
from itertools import combinations

import numpy as np
import pytest
from markdown_it import MarkdownIt

from assistant import extractive
from assistant.answer import Answerer
from assistant.citations import check, markers
from assistant.extractive import Group, Pick, Plan, Row, compose, group_terms, question_form
from assistant.types import Hit
from ui.render import cited_markdown, export_markdown

# --- the question's form (phrasings of the dev sets; never the test split's) --------------


@pytest.mark.parametrize("question", [
    "Which papers use zeroth-order optimization to fine-tune language models?",
    "What approaches fine-tune language models with forward-pass-only optimization?",
    "Give me an overview of work on scaling 3D Gaussian Splatting to city-scale scenes.",
    "What are the main techniques for prefill/decode disaggregation in LLM inference?",
    "Summarize the work on error feedback for compressed communication.",
])
def test_survey_questions(question):
    assert question_form(question) == "survey"


@pytest.mark.parametrize("question", [
    "Which paper uses a small auxiliary model to approximate a larger model's KV cache?",
    "I remember a paper about reusing cached prompt prefixes. Which one was it?",
    "Which benchmark paper assembles meta-datasets from OpenML for comparing HPO methods?",
    "Is there a paper that speeds up AlphaFold-style protein structure prediction?",
])
def test_single_paper_questions(question):
    assert question_form(question) == "single"


@pytest.mark.parametrize(("question", "names"), [
    ("How do VastGaussian and CityGaussianV2 compare?", ["VastGaussian", "CityGaussianV2"]),
    ("Compare OptiMUS, ORLM and LLMOPT for optimization modeling.",
     ["OptiMUS", "ORLM", "LLMOPT"]),
    ("How does AffineQuant compare to CBQ?", ["AffineQuant", "CBQ"]),
    ("EE-LLM vs EE-Tuning: how do they differ?", ["EE-LLM", "EE-Tuning"]),
])
def test_comparison_questions_and_what_they_compare(question, names):
    assert question_form(question) == "comparison"
    assert extractive._mentions(question) == names


@pytest.mark.parametrize(("question", "names"), [
    # Implied comparisons: "each", "what changed from", "X or Y: which one".
    ("How do GaLore and LoRA each save optimizer memory?", [["GaLore"], ["LoRA"]]),
    ("What changed from Mamba to Mamba-2?", [["Mamba"], ["Mamba-2"]]),
    # A name given again in parentheses is an alias of the name before it.
    ("Adafactor or SM3 (Square-root Memory) - which one suits embeddings?",
     [["Adafactor"], ["SM3", "Square-root Memory"]]),
    # A lowercase word or two may open a name after the joiner.
    ("How does SGD differ from sign-based Lion?", [["SGD"], ["sign-based Lion"]]),
])
def test_implied_comparisons_and_the_names_they_give(question, names):
    assert question_form(question) == "comparison"
    assert extractive._mention_names(question) == names


@pytest.mark.parametrize(("question", "form"), [
    # Compared things described, not named: still a comparison.
    ("Compare the sparse-attention long-context paper with the state-space model paper.",
     "comparison"),
    ("rotary embeddings paper vs the ALiBi-style bias one: which extrapolates further?",
     "comparison"),
    ("What does the learned-router approach add on top of plain top-k gating?", "comparison"),
    ("Is the sparse retriever or the late-interaction one more promising for code search?",
     "comparison"),
    ("Which method needs less memory: the low-rank projection one, or the 8-bit state one?",
     "comparison"),
    # A later paper told against one it builds on (dev_compare2.jsonl), even with a result
    # verb that does not ask for a number.
    ("How does the follow-up improve on the earlier sparse-attention paper?", "comparison"),
    ("Going beyond FlashAttention, what does the newer kernel change in its tiling?",
     "comparison"),
    ("What does the streaming variant add over the original method to reach low latency?",
     "comparison"),
    # ... but a search for papers (or one paper) that make a comparison is not,
    ("Which papers compare pruning with distillation for small models?", "survey"),
    ("Which paper compares pruning with distillation?", "single"),
    ("Which papers improve on LoRA for multi-task adapters?", "survey"),
    ("Is there a paper that builds on DPO for image generation?", "single"),
    # nor is a how-to, or a figure asked against a baseline.
    ("How can you compare two retrievers fairly?", "neutral"),
])
def test_described_comparisons_and_what_is_not_one(question, form):
    assert question_form(question) == form


def test_a_described_comparison_takes_the_best_ranked_papers_for_what_it_does_not_name():
    hits = list(enumerate([
        _titled("x", "Sparse Attention for Long Contexts", "We propose X."),
        _titled("y", "State Space Models Revisited", "We propose Y."),
        _titled("z", "Unrelated Third Paper", "We propose Z."),
    ], start=1))
    two = extractive._compared("Compare the sparse attention paper with the state space one.",
                               hits, frozenset(), frozenset())
    assert [h.paper_id for _, h in two] == ["x", "y"]
    # Three things listed: three papers, the one it names (by an alias) included.
    three = extractive._compared(
        "Contrast Gamma (Unrelated Third Paper), the sparse attention paper, and the SSM one.",
        hits, frozenset(), frozenset())
    assert sorted(h.paper_id for _, h in three) == ["x", "y", "z"]


def _titled(pid: str, title: str, abstract: str = "An abstract.") -> Hit:
    return Hit(paper_id=pid, title=title, abstract=abstract, snippet=abstract, score=0.5,
               rank=1)


def test_a_compared_name_finds_its_paper_by_title_initials_typo_or_abstract():
    hits = list(enumerate([
        _titled("other", "Creative Preference Optimization", "Unlike DPO, we ..."),
        _titled("dpo", "Direct Preference Optimization: Your Language Model is a Reward Model"),
        _titled("nas", "ProxylessNAS: Direct Neural Architecture Search on Target Task"),
        _titled("abs", "A Simple Method", "We call our method FooBarNet."),
    ], start=1))
    named = extractive._paper_named
    assert named(["DPO"], hits)[1].paper_id == "dpo"  # initials of the lead name
    assert named(["ProxylesNAS"], hits)[1].paper_id == "nas"  # one typo
    assert named(["FooBarNet"], hits)[1].paper_id == "abs"  # only its abstract says it
    assert named(["Nonexistent"], hits) is None


def test_two_papers_named_by_title_are_compared_whatever_the_wording():
    from assistant.settings import Settings
    from tests.support.embedder import HashEmbedder

    hits = list(enumerate([
        _titled("a", "Alpha: One Method", "We propose Alpha. Alpha reaches 90% on X."),
        _titled("b", "Beta: Another Method", "We propose Beta. Beta reaches 80% on X."),
        _titled("c", "Gamma: A Third", "We propose Gamma."),
    ], start=1))
    p = extractive.plan("is alpha or beta the better pick here", hits, HashEmbedder(),
                        Settings(_env_file=None), named={"a", "b"})
    assert p.shape == "comparison"
    assert {r.pick.hit.paper_id for r in p.rows} == {"a", "b"}


@pytest.mark.parametrize("question", [
    # A figure asked "compared with" something is a detail question, not a comparison.
    "How much higher token hit rate does Marconi report compared with prior systems?",
    "What speedup does CreditDecoding achieve over LLaDA-8B-Instruct?",
    "How much faster is the fused kernel compared with the original one?",
])
def test_figure_questions_are_not_comparisons_or_surveys(question):
    assert question_form(question) in ("single", "neutral")


def test_group_terms_are_whole_words_as_the_claim_checker_reads_them():
    """A label's words must be in its papers as the support check tokenizes them: "4-bit"
    is one word there, so "bit" cut out of it would make the label unsupported."""
    from assistant.support import tokens

    groups = [["Our 4-bit optimizer states use 4-bit quantization.",
               "8-bit optimizers keep 8-bit statistics of optimizer states."],
              ["Zeroth-order methods estimate gradients from forward passes."]]
    names = group_terms(groups)
    assert names[0] and names[1]
    for name, docs in zip(names, groups, strict=True):
        words = set(tokens(" ".join(docs)))
        for term in name:
            assert set(tokens(term)) <= words, (term, name)
    assert "bit" not in {w for n in names for t in n for w in t.lower().split()}


def test_group_terms_name_each_group_by_its_own_distinctive_words():
    groups = [["Block partitioning of city scenes for Gaussian splatting. Each block is "
               "optimised separately with block partitioning and visibility."],
              ["Diffusion priors generate pseudo views for Gaussian splatting. The diffusion "
               "prior fills unseen regions."]]
    names = [[t.lower() for t in n] for n in group_terms(groups, avoid={"gaussian", "splatting"})]
    assert any("block" in t for t in names[0]) and not any("diffusion" in t for t in names[0])
    assert any("diffusion" in t for t in names[1]) and not any("block" in t for t in names[1])
    assert not any("gaussian" in t for n in names for t in n)


def test_words_common_across_the_corpus_name_no_group():
    """c-TF-IDF sees only the answer's groups; the corpus knows "language" names nothing."""
    groups = [["Language models prune their language layers. Language pruning of layers."],
              ["Language models quantize language weights. Language quantization of weights."]]
    plain = [[t.lower() for t in n] for n in group_terms(groups)]
    assert any("language" in t for n in plain for t in n)  # what the corpus check removes
    named = [[t.lower() for t in n]
             for n in group_terms(groups, generic=lambda w: w in {"language", "models"})]
    assert not any(set(t.split()) <= {"language", "models"} for n in named for t in n)
    assert any("prun" in t for t in named[0]) and any("quantiz" in t for t in named[1])


def _hit(i: int, title: str, abstract: str) -> Hit:
    return Hit(paper_id=f"p{i}", title=title, abstract=abstract, snippet="", score=0.5)


def test_composed_shapes_cite_every_line_and_quote_verbatim():
    a = Pick(_hit(1, "Alpha: one", "We propose Alpha. It is 3% better on COCO."), 1,
             ["We propose Alpha."], 1.0)
    b = Pick(_hit(2, "Beta | two", "We present Beta, a | b."), 2, ["We present Beta, a | b."],
             0.9)
    c = Pick(_hit(3, "Gamma", "Gamma prunes weights."), 3, ["Gamma prunes weights."], 0.8)
    survey = compose(Plan("survey", [a, b, c], groups=[Group(["alpha"], [a, c]),
                                                        Group(["beta"], [b])]))
    table = compose(Plan("comparison", [a, b], rows=[
        Row(a, "We propose Alpha.", "It is 3% better on COCO.", None),
        Row(b, "We present Beta, a | b.", None, None)]))
    for text in (survey, table):
        checked = check(text, {1, 2, 3})
        assert checked.uncited_sentences == [] and checked.removed == []
        assert all(markers(line) for line in text.splitlines()  # all but the table header
                   if line.strip() and not set(line) <= set("|-") and line != extractive.HEADER)
    assert "**1. Alpha** [1][3]" in survey and "**2. Beta** [2]" in survey
    names = group_terms([["KD pipelines distil KD."], ["BitStack compresses weights."]])
    assert names[1][0].startswith("BitStack")  # group names keep the papers' own casing
    lines = table.splitlines()
    assert lines[2] == extractive.HEADER and len([x for x in lines if x.startswith("| ")]) == 2
    html = MarkdownIt("commonmark").enable("table").render(
        cited_markdown(table, {1: "Alpha: one", 2: "Beta | two"}))
    assert html.count("<tr>") == 3 and "a | b" in html  # the quoted pipe stays text


def test_mmr_skips_near_duplicate_sentences():
    v = np.eye(4, dtype=np.float32)
    dup = (v[0] + 0.01 * v[1]) / np.linalg.norm(v[0] + 0.01 * v[1])
    vectors = np.stack([v[0], dup, v[2]])
    assert extractive._mmr([0, 1, 2], vectors, [], 2) == [0, 2]
    assert extractive._mmr([1, 2], vectors, [v[0]], 2) == [2]


def test_survey_model_is_fitted_on_dev_only():
    model = extractive.survey_model()
    assert "test.jsonl" not in model["fitted_on"]
    assert set(model["weights"]) == set(extractive.FEATURES)
    assert 0 < model["threshold"] < 1


# --- answers over the seed index ------------------------------------------------------------

SURVEY = "Which papers propose dataset distillation or condensation methods that synthesize a " \
    "small training set?"
COMPARE = "How do VastGaussian and CityGaussianV2 compare?"
DETAIL = "What model FLOPs utilization does MegaScale achieve when training a 175B model on " \
    "12,288 GPUs?"


@pytest.fixture(scope="module")
def answerer(seed_services, seed_settings) -> Answerer:
    settings = seed_settings.model_copy(update={"answer_mode": "extractive"})
    return Answerer(seed_services.retriever, settings)


@pytest.fixture(scope="module")
def shaped(answerer):
    return {q: list(answerer.stream(q)) for q in (SURVEY, COMPARE, DETAIL)}


def _quotes(answer) -> list[tuple[int, str]]:
    out = []
    for line in answer.answer.splitlines():
        if line.startswith("- **"):
            body = line.split("** — ", 1)[1]
            out += [(int(n), q) for q, n in re.findall(r"(.+?) \[(\d+)\]\.", body)]
        elif line.startswith("| **"):
            for cell in line.strip("| ").split(" | ")[1:]:
                if m := re.fullmatch(r"(.+) \[(\d+)\]", cell):
                    out.append((int(m.group(2)), m.group(1)))
    return out


@pytest.mark.slow
def test_survey_groups_cite_all_their_papers(shaped, seed_services):
    events = shaped[SURVEY]
    answer = events[-1].data
    assert "".join(e.data for e in events if e.kind == "token") == answer.answer
    lines = answer.answer.splitlines()
    heads = [i for i, line in enumerate(lines) if re.match(r"\*\*\d+\. .+\*\* (\[\d+\])+$", line)]
    assert len(heads) >= 2, answer.answer
    seen = []
    for i, start in enumerate(heads):
        end = heads[i + 1] if i + 1 < len(heads) else len(lines)
        bullets = [x for x in lines[start:end] if x.startswith("- **")]
        group_cites = markers(lines[start])
        assert sorted(group_cites) == sorted(n for b in bullets for n in markers(b))
        seen += group_cites
    assert sorted(seen) == sorted(c.n for c in answer.citations)  # each paper in one group
    by_n = {s.n: s for s in answer.sources}
    quotes = _quotes(answer)
    assert len(quotes) == len(answer.citations)  # one sentence per paper
    for n, q in quotes:
        assert q in by_n[n].abstract
    v = seed_services.embedder.embed([q for _, q in quotes])
    assert max(float(v[i] @ v[j]) for i, j in combinations(range(len(quotes)), 2)) <= 0.9


@pytest.mark.slow
def test_comparison_is_a_table_naming_every_compared_paper(shaped):
    answer = shaped[COMPARE][-1].data
    rows = [x for x in answer.answer.splitlines() if x.startswith("| **")]
    assert len(rows) == 2
    titles = {c.title.split(":")[0] for c in answer.citations}
    assert titles == {"VastGaussian", "CityGaussianV2"}
    by_n = {s.n: s for s in answer.sources}
    for n, q in _quotes(answer):
        assert q in by_n[n].abstract  # every cell a verbatim fragment of its paper
    assert answer.flagged_sentences == [] and answer.removed_citations == []
    exported = export_markdown([answer])
    html = MarkdownIt("commonmark").enable("table").render(exported)
    assert html.count("<tr>") == 3


@pytest.mark.slow
def test_detail_answer_leads_with_the_figure(shaped):
    answer = shaped[DETAIL][-1].data
    n, first = _quotes(answer)[0]
    assert "55.2%" in first
    assert answer.sources[n - 1].title.startswith("MegaScale")


@pytest.mark.slow
def test_answer_json_still_one_answer(shaped):
    answer = shaped[SURVEY][-1].data
    data = json.loads(json.dumps(answer.to_json_dict()))
    assert data["mode"] == "extractive" and len(data["citations"]) >= 3


@pytest.mark.slow
def test_a_survey_numbers_the_papers_of_its_second_search(shaped, seed_services):
    """A survey's sources come from its widened search (answer.survey_hits), not the first
    one, led by the first search's best paper: the papers it quotes out of that pool of
    SURVEY_POOL, then the best-ranked of the rest, in the pool's order."""
    from assistant.answer import RANK_DEPTH, survey_hits

    answer = shaped[SURVEY][-1].data
    retriever = seed_services.retriever
    retrieval = retriever.retrieve(SURVEY, k=RANK_DEPTH)
    pool = survey_hits(retriever, retrieval, retrieval.hits)
    around = [h.paper_id for h in pool]
    assert answer.ranked == around and len(around) == extractive.SURVEY_POOL
    assert around[0] == retrieval.hits[0].paper_id
    shown = [s.paper_id for s in answer.sources]
    assert shown == [pid for pid in around if pid in set(shown)]  # the pool's order
    assert len(shown) == extractive.SURVEY_MAX
    expected, kept = extractive.survey_sources(SURVEY, pool, retriever.embedder)
    assert shown == [h.paper_id for h in expected]
    assert {c.paper_id for c in answer.citations} <= kept <= set(shown)


def test_a_survey_quotes_a_relevant_paper_ranked_below_the_sources_it_shows():
    """survey_sources() scores SURVEY_POOL candidates but numbers SURVEY_MAX: a paper the
    relevance model keeps is shown however deep it ranks, and bystanders make way for it."""
    from tests.support.embedder import HashEmbedder

    question = "Which papers distill datasets into a few synthetic images?"
    on_topic = ["We distill datasets into a few synthetic images for training.",
                "Our condensation method turns large datasets into synthetic images that "
                "distill what a classifier needs."]
    pool = [Hit(paper_id=f"p{i}", title=f"Paper {i}", abstract=f"Unrelated text number {i} "
                "about graph coloring heuristics.", snippet="", score=0.05, rank=i)
            for i in range(1, extractive.SURVEY_POOL + 1)]
    for j, i in enumerate((0, extractive.SURVEY_POOL - 3)):  # the first and the 27th
        pool[i] = Hit(paper_id=f"p{i + 1}", title="Dataset Distillation", abstract=on_topic[j],
                      snippet="", score=0.9, rank=i + 1)
    shown, kept = extractive.survey_sources(question, pool, HashEmbedder())
    deep = f"p{extractive.SURVEY_POOL - 2}"
    assert {"p1", deep} <= kept
    ids = [h.paper_id for h in shown]
    assert len(ids) == extractive.SURVEY_MAX and ids[0] == "p1" and deep in ids
    assert ids == sorted(ids, key=lambda p: int(p[1:]))  # the pool's order
    # plan() quotes exactly the chosen papers out of the numbered sources.
    from assistant.settings import Settings

    numbered = list(enumerate(shown, start=1))
    p = extractive.plan(question, numbered, HashEmbedder(), Settings(_env_file=None),
                        wanted="survey", chosen=kept)
    assert p.shape == "survey"
    assert {pick.hit.paper_id for pick in p.picks} == set(kept)


@pytest.mark.slow
def test_survey_group_names_hold_no_word_common_across_the_corpus(shaped, answerer):
    answer = shaped[SURVEY][-1].data
    heads = re.findall(r"^\*\*\d+\. (.+)\*\* (?:\[\d+\])+$", answer.answer, re.M)
    assert heads, answer.answer
    terms = [t.strip() for h in heads for t in h.split(",")]
    assert not [t for t in terms if all(answerer._generic(w) for w in t.lower().split())]
    assert answerer._generic("language") and not answerer._generic("distillation")
