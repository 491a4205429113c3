"""The citation check: parsing [n] markers, removing invalid ones, flagging uncited claims."""

from __future__ import annotations

import pytest

from assistant import citations
from assistant.citations import check, markers, parse_numbers, sentences, uncited_sentences

VALID = {1, 2, 3, 4, 5, 6}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A claim [1].", [1]),
        ("A claim [1, 3].", [1, 3]),
        ("A claim [1,3;5].", [1, 3, 5]),
        ("A claim [2-4].", [2, 3, 4]),
        ("A claim [2–4].", [2, 3, 4]),  # en dash
        ("A claim [1][2].", [1, 2]),
        ("A claim [ 2 ].", [2]),
        ("A claim [ 1 , 2 ].", [1, 2]),
        ("First [3], then [1], then [3] again.", [3, 1, 3]),
    ],
)
def test_markers_parse_every_form(text, expected):
    assert markers(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "BERT prepends a [CLS] token.",
        "Options [a] and [b] differ.",
        "The value rose by 34.4% in 2023 and 1.5x overall.",
        "An interval (1, 3) and a list {2} and a matrix A[i].",
        "A decimal in brackets [34.4%] is not a citation.",
        "Empty brackets [] and [ ] cite nothing.",
    ],
)
def test_non_citation_text_is_not_a_marker(text):
    assert markers(text) == []
    checked = check(text, VALID)
    assert checked.text == text  # untouched
    assert checked.cited == [] and checked.removed == []


def test_parse_numbers_ranges():
    assert parse_numbers("1-3") == [1, 2, 3]
    assert parse_numbers("3 - 5, 1") == [3, 4, 5, 1]
    # A reversed or absurdly long range is two numbers, not an expansion.
    assert parse_numbers("4-2") == [4, 2]
    assert parse_numbers("1-500") == [1, 500]


def test_check_keeps_valid_markers_and_normalises_them():
    checked = check("Marconi caches prefixes [1, 2]. It is fast [3-4].", VALID)
    assert checked.text == "Marconi caches prefixes [1][2]. It is fast [3][4]."
    assert checked.cited == [1, 2, 3, 4]
    assert checked.removed == []
    assert checked.uncited_sentences == []


def test_spaced_marker_is_recognised_and_normalised():
    checked = check("The model is trained on C4 data [ 2 ].", VALID)
    assert checked.text == "The model is trained on C4 data [2]."
    assert checked.cited == [2]


def test_adjacent_markers():
    checked = check("Both report gains on GLUE [1][2].", VALID)
    assert checked.text == "Both report gains on GLUE [1][2]."
    assert checked.cited == [1, 2]


def test_markers_outside_sources_are_removed_and_reported():
    checked = check("Caching helps hybrid models [99].", VALID)
    assert checked.text == "Caching helps hybrid models."  # the gap is tidied too
    assert checked.removed == [99]
    assert checked.cited == []
    assert checked.uncited_sentences == ["Caching helps hybrid models."]


def test_partially_invalid_marker_keeps_the_valid_part():
    checked = check("Prefix caching reduces latency [2, 7]. Another claim is made here [0].",
                    VALID)
    assert checked.text == "Prefix caching reduces latency [2]. Another claim is made here."
    assert checked.cited == [2]
    assert checked.removed == [7, 0]
    assert checked.uncited_sentences == ["Another claim is made here."]


def test_removed_marker_in_mid_sentence_leaves_single_spaces():
    checked = check("Marconi [9] improves hit rates [1] by far.", VALID)
    assert checked.text == "Marconi improves hit rates [1] by far."
    assert "  " not in checked.text
    assert checked.removed == [9]


def test_duplicates_are_collapsed():
    checked = check("A claim about caching [1, 1, 2]. Another about caching [2][1].", VALID)
    assert checked.text == "A claim about caching [1][2]. Another about caching [2][1]."
    assert checked.cited == [1, 2]  # each once


def test_cited_order_is_first_appearance():
    checked = check("Claim one is here [5]. Claim two is here [2]. Claim three [5][4].", VALID)
    assert checked.cited == [5, 2, 4]


def test_reference_list_is_exactly_the_cited_sources():
    checked = check("Only this source is cited here [3]. And [3] again, plus [8].", VALID)
    assert set(checked.cited) == {3}
    assert set(checked.cited) <= VALID
    assert 8 in checked.removed


def test_uncited_sentences_are_flagged():
    text = ("Marconi supports prefix caching for hybrid models [1]. "
            "It is the best system ever built for this purpose. "
            "Results:\n- The hit rate rises a lot [1].\n- Short one.")
    checked = check(text, VALID)
    assert checked.uncited_sentences == ["It is the best system ever built for this purpose."]


def test_headings_and_short_labels_are_not_flagged():
    assert uncited_sentences("## Findings:\nKey results:\n- Fast.") == []


def test_numbers_in_text_do_not_split_or_cite():
    text = "Marconi reaches 34.4% higher hit rates and 617 ms lower TTFT [1]."
    assert sentences(text) == [text]
    checked = check(text, VALID)
    assert checked.text == text
    assert checked.cited == [1]
    assert checked.uncited_sentences == []


def test_sentences_split_on_terminators_and_newlines():
    assert sentences("One thing here [1]. Two things here [2]!\nThree? Four.") == [
        "One thing here [1].", "Two things here [2]!", "Three?", "Four.",
    ]


def test_a_quoted_reference_does_not_end_its_sentence():
    """An abstract's own "[33]", quoted as "[ref. 33]", is inside the quoted sentence: split
    at "ref." it became an uncited half and a half that seemed to state the figure 33."""
    quote = citations.defang("We tune the Transformer model [33] in the field of AI.")
    text = f"- **A paper** — {quote} [2]. Next claim here [1]."
    assert sentences(text) == [f"- **A paper** — {quote} [2].", "Next claim here [1]."]
    assert uncited_sentences(text) == []


def test_check_with_no_valid_sources_removes_everything():
    checked = check("A claim here [1]. Another [2-3].", set())
    assert checked.cited == []
    assert checked.removed == [1, 2, 3]
    assert not citations.MARKER.search(checked.text)
