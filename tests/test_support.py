"""Claim support (assistant/support.py): figures, scoring, repair, answers, verify, rendering.

Real MiniLM (the session embedder), the real seed index, and the real openai client talking to
the scripted OpenAI-compatible server for LLM answers.
"""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from assistant.answer import Answerer
from assistant.llm import LLM
from assistant.support import (
    MIN_CORPUS,
    Checker,
    Corpus,
    Prepared,
    _cover_cidf,
    figures,
    missing_figures,
    stated_values,
    unstated_figures,
    verify,
)
from assistant.types import Answer, Claim, Source
from tests.support.openai_server import Reply, ScriptedOpenAIServer
from tests.support.papers import SMALL_PAPERS
from tests.support.planted import PlantedAnswers

pytestmark = pytest.mark.slow

BATTERY = SMALL_PAPERS[3]  # Gaussian-process battery health, "within 1.1%", 124 cells
TRAFFIC = SMALL_PAPERS[5]  # traffic signals, "falls by 17%", 2,500 intersections
SPEECH = SMALL_PAPERS[4]  # speech pretraining, 40 languages, "by a third"


@pytest.fixture(scope="module")
def checker(embedder) -> Checker:
    return Checker(embedder)


def sources(*papers: dict) -> list[Source]:
    return [Source(n=i, paper_id=f"p{i}", title=p["title"], score=0.9, abstract=p["abstract"])
            for i, p in enumerate(papers, start=1)]


# --- figures ------------------------------------------------------------------------------


@pytest.mark.parametrize(("claim", "source"), [
    ("memory falls by half", "memory drops by 50%"),
    ("memory falls by 50%", "we halve the memory"),
    ("a 1.5B-parameter model", "a model of 1.5 billion parameters"),
    ("a model with 1.5 billion parameters", "our 1.5B model"),
    ("34% more hits", "34.4% more hits"),
    ("2x faster", "twice as fast"),
    ("on 3 datasets", "on three datasets"),
    ("1,000 genomes", "1000 genomes"),
    ("a third fewer errors", "errors drop by 33%"),
])
def test_equivalent_figures_count_as_stated(claim, source):
    assert missing_figures(claim, stated_values(source)) == []


@pytest.mark.parametrize(("claim", "source", "missing"), [
    ("memory falls by 45%", "memory drops by 50%", ["45%"]),
    ("a 7B model", "a 1.5 billion parameter model", ["7B"]),
    ("30% more hits", "34.4% more hits", ["30%"]),
    ("on 4 datasets", "on three datasets", ["4"]),
])
def test_changed_figures_are_missing(claim, source, missing):
    assert missing_figures(claim, stated_values(source)) == missing


def test_unstated_figures_are_the_questions_figures_its_lead_paper_does_not_state():
    lead = sources(TRAFFIC)[0]  # "falls by 17%", 2,500 intersections
    assert unstated_figures("Which paper cuts waiting time by 30% at 2,500 intersections?",
                            lead) == ["30%"]
    assert unstated_figures("the 17% drop over 2500 intersections?", lead) == []
    # Years, math conditions and a figure written as a word ("I half remember") are not
    # claims about the paper; no lead paper, nothing to check against.
    assert unstated_figures("a 2021 paper, for rho < 0, that I half remember", lead) == []
    assert unstated_figures("30% at 2,500 intersections", None) == []


def test_names_with_digits_and_markers_are_not_figures():
    assert figures("GPT-4 and Llama-3 beat ResNet-50 in 3D scenes [12].") == []


# --- one claim against one paper ------------------------------------------------------------


def test_quoted_sentence_is_supported_and_a_changed_figure_is_not(checker):
    quote = ("On 124 commercial cells cycled to end of life, the model predicts state of health "
             "within 1.1% and gives calibrated uncertainty")
    ok = verify(checker, quote, BATTERY["title"], BATTERY["abstract"])
    assert ok["label"] == "supported" and ok["support"] > 0.9
    assert "124 commercial cells" in ok["evidence"]
    bad = verify(checker, quote.replace("1.1%", "4.5%"), BATTERY["title"], BATTERY["abstract"])
    assert bad["label"] == "unsupported"
    assert bad["note"] == "the paper does not state 4.5%"


def test_paraphrase_supported_by_its_paper_not_by_another(checker):
    claim = "A Gaussian process predicts battery state of health from partial charging curves."
    own = verify(checker, claim, BATTERY["title"], BATTERY["abstract"])
    other = verify(checker, claim, TRAFFIC["title"], TRAFFIC["abstract"])
    assert own["label"] == "supported"
    assert other["label"] != "supported"
    assert own["support"] > other["support"] + 0.3


# --- answers: repair and flags ----------------------------------------------------------------


def test_swapped_citation_is_flagged_and_repaired(checker):
    srcs = sources(BATTERY, TRAFFIC, SPEECH)
    text = ("A graph attention critic coordinates intersections and cuts average travel time by "
            "17% [1]. Capacity fade is modelled with a Gaussian process over partial charging "
            "curves [1].")
    swapped, fine = checker.check(text, srcs)
    assert swapped.citations == [1] and swapped.label != "supported"
    assert swapped.better == 2 and "[2] supports this better" in swapped.note
    assert fine.label == "supported" and fine.better is None
    assert "Gaussian process" in fine.evidence[1]


def test_uncited_sentence_is_flagged_with_the_source_that_supports_it(checker):
    srcs = sources(BATTERY, TRAFFIC, SPEECH)
    text = ("Word error rates drop by a third relative to multilingual baselines. "
            "Average travel time falls by 17% with cooperative agents [2].")
    uncited, cited = checker.check(text, srcs)
    assert uncited.citations == [] and uncited.label == "unsupported"
    assert uncited.better == 3 and uncited.note.startswith("cites no paper")
    assert cited.label == "supported"


def test_a_figure_is_checked_against_every_source_cited_with_it(checker):
    srcs = sources(BATTERY, TRAFFIC)
    text = "The models are tested on 124 cells and 2,500 intersections [1][2]."
    (claim,) = checker.check(text, srcs)
    assert "does not state" not in (claim.note or "")
    (bad,) = checker.check("The models are tested on 124 cells and 3,100 intersections [1][2].",
                         srcs)
    assert bad.label == "unsupported" and "does not state 3,100" in bad.note


def test_lead_line_that_only_points_at_papers_is_supported(checker):
    srcs = sources(BATTERY, TRAFFIC, SPEECH)
    text = f"Most relevant: *{BATTERY['title']}* [1]; also relevant: [2], [3]."
    (claim,) = checker.check(text, srcs)
    assert claim.label == "supported" and claim.citations == [1, 2, 3]


def test_a_group_label_may_hold_a_figure_word_its_papers_say(checker):
    """"double" reads as a figure (two times); in the label "double descent", said by the
    cited paper itself, it names the topic. A figure word no cited paper says does not."""
    dd = {"title": "Optimization and double descent",
          "abstract": "We study how the optimizer shapes double descent in deep networks. "
                      "The test error peaks at the interpolation threshold."}
    srcs = sources(dd, BATTERY)
    (claim,) = checker.check("**1. Double descent, optimization** [1][2]", srcs)
    assert claim.label == "supported", claim.note
    (bad,) = checker.check("**1. Halved descent, optimization** [1][2]", srcs)
    assert bad.label != "supported"


# --- in every Answer ----------------------------------------------------------------------------


def test_words_weigh_by_how_rare_they_are_in_the_corpus():
    # Every abstract says "model"; one says "zeolite": missing "zeolite" costs a claim more.
    abstracts = [(f"Paper {i}", f"A model of topic {i} with results.") for i in range(24)]
    abstracts.append(("Zeolites", "A model of zeolite adsorption."))
    corpus = Corpus.of(abstracts + abstracts[:3])  # duplicates count once
    assert corpus.n == 25 >= MIN_CORPUS
    assert corpus.idf("zeolit") > 2 * corpus.idf("model")
    src = Prepared.of(1, "Paper 3", "A model of topic 3 with results.")
    assert _cover_cidf("zeolite model", src, corpus) < 0.25
    # Too few abstracts for statistics: every word weighs the same.
    small = Corpus.of(abstracts[:3])
    assert small.idf("zeolit") == small.idf("model") == 1.0
    assert _cover_cidf("zeolite model", src, small) == 0.5


def test_answers_check_claims_against_the_served_index(seed_services):
    seed_services.answerer.warm()  # what the UI does at start, so no answer waits for it
    corpus = seed_services.answerer.claim_corpus()
    assert corpus._vectors is not None and len(corpus._vectors) == len(corpus.sample)
    assert corpus.n == seed_services.index.catalog.count()[0]
    assert corpus.sample and seed_services.answerer.claim_corpus() is corpus  # built once


def test_extractive_answers_are_supported_by_construction(seed_services):
    for question in ("Which optimizers reduce memory use when training large language models?",
                     "prefix caching for hybrid LLMs with state space layers",
                     "How do speculative decoding methods speed up inference?",
                     "How do VastGaussian and CityGaussianV2 compare?",  # a table
                     "Survey the dataset distillation and condensation methods in the corpus"):
        answer = seed_services.answerer.answer(question, mode="extractive")
        assert not answer.abstained
        assert answer.claims, answer.answer
        assert all(c.label == "supported" for c in answer.claims), [
            (c.sentence, c.note) for c in answer.claims if c.label != "supported"]
        cited = {n for c in answer.claims for n in c.citations}
        assert cited == {c.n for c in answer.citations}
        assert all(set(c.evidence) == set(c.citations) for c in answer.claims)
        assert "support_ms" in answer.timings_ms
        dumped = answer.to_json_dict()["claims"]
        assert dumped[0]["label"] == "supported" and "evidence" in dumped[0]


@pytest.fixture(scope="module")
def llm_answerer(seed_settings, seed_services):
    with ScriptedOpenAIServer() as server:
        settings = seed_settings.model_copy(update={
            "llm_base_url": server.base_url, "llm_api_key": SecretStr("k"),
            "llm_model": "test-model", "llm_max_retries": 0, "answer_mode": "llm"})
        yield server, Answerer(seed_services.retriever, settings,
                               llm_factory=lambda: LLM(settings))


@pytest.mark.parametrize("kind", ["swap", "figure", "uncited"])
def test_llm_answer_planted_error_is_flagged_on_the_streams_last_event(llm_answerer, kind):
    server, answerer = llm_answerer
    planted = PlantedAnswers(seed=3, kinds=(kind,))
    server.queue(Reply(responder=planted.responder))
    events = list(answerer.stream("Which optimizers reduce memory use when training large "
                                  "language models?"))
    final = events[-1].data
    assert events[-1].kind == "answer" and final.error is None
    (p,) = planted.log
    assert p.kind == kind
    flagged = [c for c in final.claims
               if c.label != "supported" or c.better is not None or not c.citations]
    wrong = p.sentences[p.planted]
    assert [c.sentence for c in flagged] and all(wrong[:40] in c.sentence for c in flagged)
    if kind == "swap":
        assert flagged[0].better == p.truth[p.planted]
    if kind == "figure":
        assert "does not state" in flagged[0].note
    assert len(final.claims) >= len(p.sentences)


# --- verify command -----------------------------------------------------------------------


@pytest.fixture
def invoke(seed_settings, embedder, monkeypatch):
    from assistant import embeddings
    from assistant.cli import app

    monkeypatch.setattr(embeddings, "make_embedder", lambda settings: embedder)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_verify_batch_passes_fields_through(invoke, tmp_path):
    batch = tmp_path / "claims.jsonl"
    rows = [
        {"id": "a", "claim": "Travel time falls by 17% across 2,500 intersections.",
         "title": TRAFFIC["title"], "abstract": TRAFFIC["abstract"], "extra": 1},
        {"id": "b", "claim": "Travel time falls by 45%.", "title": TRAFFIC["title"],
         "abstract": TRAFFIC["abstract"]},
        {"id": "c", "claim": "no abstract here"},
    ]
    batch.write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json\n")
    result = invoke("verify", "--batch", batch)
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.output.splitlines()]
    assert [o.get("id") for o in out[:2]] == ["a", "b"]
    assert out[0]["label"] == "supported" and out[0]["extra"] == 1
    assert set(out[0]) >= {"id", "support", "label", "evidence"}
    assert out[1]["label"] == "unsupported" and "45%" in out[1]["note"]
    assert "error" in out[2] and "error" in out[3]


def test_verify_one_claim_against_an_indexed_paper(invoke, seed_settings, seed_services):
    hit = seed_services.retriever.search("prefix caching hybrid LLMs", k=1)[0]
    claim = "It supports efficient prefix caching for hybrid LLMs."
    result = invoke("verify", claim, "--paper-id", hit.paper_id, "--json",
                    "--data-dir", seed_settings.data_dir)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["paper_id"] == hit.paper_id and out["label"] == "supported"
    missing = invoke("verify", claim, "--paper-id", "nope", "--data-dir", seed_settings.data_dir)
    assert missing.exit_code == 1 and "no indexed paper" in missing.output


# --- rendering: evidence on hover, flags in chat, CLI and export ------------------------------


def flagged_answer() -> Answer:
    srcs = [s.model_copy(update={"cited": True}) for s in sources(BATTERY, TRAFFIC)]
    ok = "Capacity fade is modelled with a Gaussian process [1]."
    bad = "Average travel time falls by 45% [2]."
    return Answer(question="q", answer=f"{ok} {bad}", mode="llm", sources=srcs, claims=[
        Claim(sentence=ok, citations=[1], support=0.9, label="supported",
              evidence={1: "We model capacity fade with a Gaussian process <b>."}),
        Claim(sentence=bad, citations=[2], support=0.1, label="unsupported",
              evidence={2: "Average travel time falls by 17%."},
              note="[2] does not state 45%")])


def test_chat_markdown_has_evidence_tooltips_and_flags():
    from ui.render import answer_to_markdown

    md = answer_to_markdown(flagged_answer())
    assert md.count('class="cite-tip"') == 2
    assert "Gaussian process &lt;b&gt;." in md  # evidence is escaped text
    assert '<a class="cite" href="#src-1"' in md
    flag = md.index('class="claim-flag claim-unsupported"')
    assert md.index("45%") < flag  # after the sentence it flags
    assert "does not state 45%" in md[flag:]
    assert md.count("claim-flag") == 1


def test_export_and_cli_keep_the_flags(capsys):
    from assistant.commands import print_claim_flags
    from ui.render import export_markdown

    doc = export_markdown([flagged_answer()])
    assert "**Claim check**" in doc and "does not state 45%" in doc
    print_claim_flags(flagged_answer())
    out = capsys.readouterr().out
    assert "Claim check: 1 sentence(s)" in out and "not supported: [2] does not state 45%" in out
