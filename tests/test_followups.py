"""ui.render.follow_ups: suggested follow-up questions from an answer's cited papers."""

from __future__ import annotations

from assistant.types import Answer, Citation, Source
from ui.render import follow_ups, short_name


def answer(titles: list[str], cited: list[int], **extra) -> Answer:
    sources = [Source(n=i, paper_id=f"p{i}", title=t, score=0.5, cited=i in cited)
               for i, t in enumerate(titles, start=1)]
    return Answer(question="q", answer="a", mode="extractive", sources=sources,
                  citations=[Citation(n=n, paper_id=f"p{n}", title=titles[n - 1])
                             for n in cited], **extra)


def test_short_names_come_before_a_title_colon():
    assert short_name("APOLLO: SGD-like Memory, AdamW-level Performance") == "APOLLO"
    assert short_name("Fast-HuBERT: An Efficient Training Framework") == "Fast-HuBERT"
    # No colon, or a long head before it: the whole title.
    assert short_name("Scaling Laws for Neural Language Models") == \
        "Scaling Laws for Neural Language Models"
    long_head = "A Very Long Heading That Goes On And On: Sub"
    assert short_name(long_head) == long_head
    assert short_name("A 34.4times Speedup: Fast Decoding") == "A 34.4× Speedup"


def test_chips_name_the_first_cited_paper_and_compare_two():
    a = answer(["Uncited Paper: X", "Marconi: Prefix Caching", "Jamba: Hybrid"], cited=[2, 3])
    assert follow_ups(a) == ["What dataset does Marconi use?",
                             "Which later work builds on Marconi?",
                             "Compare [2] and [3]"]
    assert follow_ups(a, limit=2) == follow_ups(a)[:2]


def test_one_cited_paper_gets_no_comparison():
    chips = follow_ups(answer(["Marconi: Prefix Caching", "Other: Y"], cited=[1]))
    assert len(chips) == 2 and not any("Compare" in c for c in chips)


def test_citations_count_when_sources_are_not_marked_cited():
    a = answer(["Marconi: Prefix Caching", "Jamba: Hybrid"], cited=[])
    a = a.model_copy(update={"citations": [Citation(n=2, paper_id="p2", title="Jamba: Hybrid")]})
    assert follow_ups(a)[0] == "What dataset does Jamba use?"


def test_no_chips_for_abstentions_errors_or_nothing_cited():
    assert follow_ups(None) == []
    assert follow_ups(answer(["A: B"], cited=[1], abstained=True)) == []
    assert follow_ups(answer(["A: B"], cited=[1], error="endpoint down")) == []
    assert follow_ups(answer(["A: B"], cited=[])) == []
