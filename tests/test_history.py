"""assistant/history.py: conversations, turns and feedback in SQLite, per user."""

from __future__ import annotations

import sqlite3
import stat

import pytest

from assistant.history import FILENAME, LOCAL_USER, History, normalize_reason, title_for
from assistant.types import Answer, Citation, Claim, Source


def answer(question: str, text: str = "It does [1].", **extra) -> Answer:
    src = Source(n=1, paper_id="p1", title="Paper One: A Study", score=0.8, abstract="Abs.",
                 cited=True, quotes=["Abs."], url="https://arxiv.org/abs/2401.00001")
    return Answer(question=question, answer=text, mode="extractive", sources=[src],
                  citations=[Citation(n=1, paper_id="p1", title=src.title, url=src.url)],
                  claims=[Claim(sentence="It does [1].", citations=[1], support=0.9,
                                label="supported", evidence={1: "Abs."})],
                  timings_ms={"total_ms": 12.0}, **extra)


@pytest.fixture
def store(tmp_path) -> History:
    return History.open(tmp_path)


def test_title_is_the_first_question_on_one_line_cut_at_a_word():
    assert title_for("  What is\n prefix   caching? ") == "What is prefix caching?"
    long = "word " * 40
    title = title_for(long)
    assert len(title) <= 80 and title.endswith("…") and "wor…" not in title
    assert title_for("   ") == "Untitled chat"


def test_a_conversation_round_trips_with_sources_and_claims(store, tmp_path):
    conv = store.create("alice", "What is prefix caching?")
    first, second = answer("What is prefix caching?"), answer("And the second paper?")
    assert store.save_turn("alice", conv.id, 0, first)
    assert store.save_turn("alice", conv.id, 1, second)
    # A new store on the same file (a restarted app) reads the same answers back.
    again = History.open(tmp_path)
    assert (tmp_path / FILENAME).exists()
    assert again.answers("alice", conv.id) == [first, second]
    [listed] = again.conversations("alice")
    assert (listed.title, listed.turns) == ("What is prefix caching?", 2)
    assert again.answers("alice", conv.id)[0].sources[0].url.startswith("https://arxiv.org/")


def test_users_see_only_their_own_conversations(store):
    a = store.create("alice", "alice's question")
    b = store.create("bob", "bob's question")
    store.save_turn("alice", a.id, 0, answer("alice's question"))
    assert [c.id for c in store.conversations("alice")] == [a.id]
    assert [c.id for c in store.conversations("bob")] == [b.id]
    assert store.conversations(LOCAL_USER) == []
    # Bob cannot read, write, rename, delete or rate Alice's conversation.
    assert store.answers("bob", a.id) == []
    assert not store.save_turn("bob", a.id, 1, answer("intrusion"))
    assert not store.rename("bob", a.id, "mine now")
    assert not store.delete("bob", a.id)
    assert store.set_feedback("bob", a.id, 0, "down", "wrong paper") is None
    assert store.get("alice", a.id).title == "alice's question"
    assert len(store.answers("alice", a.id)) == 1 and store.feedback() == []


def test_most_recently_updated_first_rename_and_delete(store):
    old = store.create(LOCAL_USER, "old")
    new = store.create(LOCAL_USER, "new")
    store.save_turn(LOCAL_USER, old.id, 0, answer("old"))  # touched last: listed first
    assert [c.title for c in store.conversations(LOCAL_USER)] == ["old", "new"]
    assert store.rename(LOCAL_USER, new.id, "  Renamed\n chat ")
    assert store.get(LOCAL_USER, new.id).title == "Renamed chat"
    assert not store.rename(LOCAL_USER, new.id, "   ")  # a blank title is refused
    store.set_feedback(LOCAL_USER, old.id, 0, "down", "missed a paper")
    assert store.delete(LOCAL_USER, old.id)
    assert [c.title for c in store.conversations(LOCAL_USER)] == ["Renamed chat"]
    assert store.answers(LOCAL_USER, old.id) == [] and store.feedback() == []


def test_saving_a_turn_again_replaces_it_and_drops_later_turns(store):
    conv = store.create("u", "q1")
    for i, q in enumerate(("q1", "q2", "q3")):
        store.save_turn("u", conv.id, i, answer(q))
    store.save_turn("u", conv.id, 1, answer("q2 edited"))  # edit-and-resend of turn 2
    assert [a.question for a in store.answers("u", conv.id)] == ["q1", "q2 edited"]
    assert store.truncate("u", conv.id, 1)
    assert [a.question for a in store.answers("u", conv.id)] == ["q1"]


def test_feedback_is_stored_with_the_full_answer(store, tmp_path):
    conv = store.create("u", "q1")
    shown = answer("q1", abstained=False)
    store.save_turn("u", conv.id, 0, shown)
    up = store.set_feedback("u", conv.id, 0, "up")
    assert up is not None and up.rating == "up" and up.reason is None
    down = store.set_feedback("u", conv.id, 0, "down", "Wrong  Paper")  # replaces the 👍
    assert down.reason == "wrong paper"
    [saved] = History.open(tmp_path).feedback(rating="down")
    assert saved.answer == shown and saved.question == "q1" and saved.user == "u"
    assert store.feedback(rating="up") == []
    # The stored JSON is the whole Answer (claims and urls included).
    raw = sqlite3.connect(tmp_path / FILENAME).execute("SELECT answer_json FROM feedback")
    assert '"evidence"' in raw.fetchone()[0]
    assert store.feedback_values("u", conv.id, [shown]) == ["Wrong paper"]
    # Withdrawn; and a reason that is not one of the four is dropped, the 👎 kept.
    assert store.set_feedback("u", conv.id, 0, None) is None and store.feedback() == []
    assert store.set_feedback("u", conv.id, 0, "down", "meh").reason is None
    assert store.feedback_values("u", conv.id, [shown]) == ["Dislike"]
    # No such turn: nothing stored.
    assert store.set_feedback("u", conv.id, 5, "up") is None
    with pytest.raises(ValueError):
        store.set_feedback("u", conv.id, 0, "meh")


def test_feedback_on_a_replaced_answer_stays_with_that_answer(store):
    conv = store.create("u", "q")
    store.save_turn("u", conv.id, 0, answer("q", "First try [1]."))
    store.set_feedback("u", conv.id, 0, "down", "should have abstained")
    retried = answer("q", "Second try [1].")
    store.save_turn("u", conv.id, 0, retried)  # retry
    [fb] = store.feedback()
    assert fb.answer.answer == "First try [1]."
    assert store.feedback_values("u", conv.id, [retried]) == [None]


def test_reasons_are_normalised():
    assert normalize_reason("Should have answered") == "should have answered"
    assert normalize_reason("") is None and normalize_reason("other") is None


def test_the_store_is_readable_by_its_owner_only(tmp_path):
    store = History.open(tmp_path)
    conv = store.create("local", "a private question")
    assert conv.id
    mode = stat.S_IMODE((tmp_path / FILENAME).stat().st_mode)
    assert mode & 0o077 == 0, oct(mode)
