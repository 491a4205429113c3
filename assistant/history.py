"""Saved conversations and answer feedback, in one SQLite file in the data dir.

    store = History.open(data_dir)                       # data_dir/history.sqlite3
    conv = store.create(user, title_for(question))       # a Conversation
    store.save_turn(user, conv.id, position, answer)     # turn `position` (and later ones) replaced
    store.conversations(user) / store.answers(user, id)  # the sidebar / a reopened chat
    store.rename(user, id, title) / store.delete(user, id)
    store.set_feedback(user, id, position, "down", "wrong paper")   # with the full Answer
    store.feedback(rating="down")                        # what `assistant feedback export` reads

Every read and write names the user: a conversation belongs to whoever created it (the login
name, or LOCAL_USER without a login) and is invisible to anyone else. Answers are stored as
their JSON (Answer.to_json_dict), sources and claim checks included, so a reopened chat shows
what was shown. Plain stdlib sqlite3, one short connection per call (safe from the UI's
worker threads), WAL journal. No UI code here.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from assistant.types import Answer

FILENAME = "history.sqlite3"
LOCAL_USER = "local"  # the single user of an app served without a login
TITLE_CHARS = 80
REASONS = ("wrong paper", "missed a paper", "should have abstained", "should have answered")
Rating = Literal["up", "down"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    title TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_user ON conversations (user, updated);
CREATE TABLE IF NOT EXISTS turns (
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    question TEXT NOT NULL,
    answer_json TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (conversation_id, position)
);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user TEXT NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    reason TEXT,
    question TEXT NOT NULL,
    answer_json TEXT NOT NULL,
    created REAL NOT NULL,
    UNIQUE (conversation_id, position, answer_json)
);
"""


@dataclass(frozen=True)
class Conversation:
    id: str
    user: str
    title: str
    created: float
    updated: float
    turns: int = 0


@dataclass(frozen=True)
class Feedback:
    id: int
    user: str
    conversation_id: str
    position: int
    rating: Rating
    reason: str | None
    question: str
    answer: Answer
    created: float


def title_for(question: str) -> str:
    """A conversation's title: its first question on one line, cut at a word."""
    text = " ".join(str(question).split()) or "Untitled chat"
    if len(text) <= TITLE_CHARS:
        return text
    cut = text[:TITLE_CHARS - 1].rsplit(" ", 1)[0] or text[:TITLE_CHARS - 1]
    return cut.rstrip(" ,;:") + "…"


def normalize_reason(reason: str | None) -> str | None:
    """One of REASONS (case and spacing forgiven), or None."""
    if not reason:
        return None
    key = " ".join(str(reason).lower().split())
    return key if key in REASONS else None


class History:
    """The store: conversations, their turns and feedback, per user (see module doc)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Conversations are the user's questions: readable by the owner only (created so
        # before SQLite opens it; its -wal/-shm files follow the main file's mode).
        os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        with self._db() as db:
            db.executescript(_SCHEMA)

    @classmethod
    def open(cls, data_dir: Path | str) -> History:
        return cls(Path(data_dir) / FILENAME)

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10.0)
        try:
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA journal_mode = WAL")
            with db:  # one transaction: committed, or rolled back on an exception
                yield db
        finally:
            db.close()

    # -- conversations --

    def create(self, user: str, title: str) -> Conversation:
        now = time.time()
        conv = Conversation(uuid.uuid4().hex, user, title_for(title), now, now)
        with self._db() as db:
            db.execute("INSERT INTO conversations VALUES (?, ?, ?, ?, ?)",
                       (conv.id, conv.user, conv.title, conv.created, conv.updated))
        return conv

    def conversations(self, user: str) -> list[Conversation]:
        """The user's conversations, most recently updated first."""
        with self._db() as db:
            rows = db.execute(
                "SELECT c.id, c.user, c.title, c.created, c.updated, COUNT(t.position) "
                "FROM conversations c LEFT JOIN turns t ON t.conversation_id = c.id "
                "WHERE c.user = ? GROUP BY c.id ORDER BY c.updated DESC, c.created DESC",
                (user,)).fetchall()
        return [Conversation(*row) for row in rows]

    def get(self, user: str, conversation_id: str) -> Conversation | None:
        return next((c for c in self.conversations(user) if c.id == conversation_id), None)

    def _owns(self, db: sqlite3.Connection, user: str, conversation_id: str) -> bool:
        return db.execute("SELECT 1 FROM conversations WHERE id = ? AND user = ?",
                          (conversation_id, user)).fetchone() is not None

    def rename(self, user: str, conversation_id: str, title: str) -> bool:
        title = " ".join(str(title).split())
        if not title:
            return False
        with self._db() as db:
            cur = db.execute("UPDATE conversations SET title = ? WHERE id = ? AND user = ?",
                             (title[:200], conversation_id, user))
        return cur.rowcount == 1

    def delete(self, user: str, conversation_id: str) -> bool:
        """Delete a conversation with its turns and its feedback."""
        with self._db() as db:
            cur = db.execute("DELETE FROM conversations WHERE id = ? AND user = ?",
                             (conversation_id, user))
        return cur.rowcount == 1

    # -- turns --

    def save_turn(self, user: str, conversation_id: str, position: int,
                  answer: Answer) -> bool:
        """Store `answer` as turn `position` (0-based); turns from `position` on are replaced
        (a retried or edited question drops what followed it). False if not the user's."""
        now = time.time()
        with self._db() as db:
            if not self._owns(db, user, conversation_id):
                return False
            db.execute("DELETE FROM turns WHERE conversation_id = ? AND position >= ?",
                       (conversation_id, position))
            db.execute("INSERT INTO turns VALUES (?, ?, ?, ?, ?)",
                       (conversation_id, position, answer.question,
                        json.dumps(answer.to_json_dict()), now))
            db.execute("UPDATE conversations SET updated = ? WHERE id = ?",
                       (now, conversation_id))
        return True

    def truncate(self, user: str, conversation_id: str, turns: int) -> bool:
        """Keep the first `turns` turns (stop or undo of the last question)."""
        with self._db() as db:
            if not self._owns(db, user, conversation_id):
                return False
            db.execute("DELETE FROM turns WHERE conversation_id = ? AND position >= ?",
                       (conversation_id, turns))
        return True

    def answers(self, user: str, conversation_id: str) -> list[Answer]:
        """The conversation's answers in order ([] when it is not the user's)."""
        with self._db() as db:
            if not self._owns(db, user, conversation_id):
                return []
            rows = db.execute("SELECT answer_json FROM turns WHERE conversation_id = ? "
                              "ORDER BY position", (conversation_id,)).fetchall()
        return [Answer.model_validate_json(row[0]) for row in rows]

    # -- feedback --

    def set_feedback(self, user: str, conversation_id: str, position: int,
                     rating: Rating | None, reason: str | None = None) -> Feedback | None:
        """Record 👍/👎 (with an optional reason from REASONS) on turn `position`, storing the
        full Answer as it was shown; rating None withdraws it. None if there is no such turn
        of the user's (or the feedback was withdrawn)."""
        if rating not in ("up", "down", None):
            raise ValueError(f"rating must be 'up', 'down' or None, not {rating!r}")
        reason = normalize_reason(reason) if rating == "down" else None
        now = time.time()
        with self._db() as db:
            if not self._owns(db, user, conversation_id):
                return None
            row = db.execute("SELECT question, answer_json FROM turns WHERE conversation_id = ?"
                             " AND position = ?", (conversation_id, position)).fetchone()
            if row is None:
                return None
            question, answer_json = row
            db.execute("DELETE FROM feedback WHERE conversation_id = ? AND position = ? AND "
                       "answer_json = ?", (conversation_id, position, answer_json))
            if rating is None:
                return None
            cur = db.execute(
                "INSERT INTO feedback (user, conversation_id, position, rating, reason, "
                "question, answer_json, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (user, conversation_id, position, rating, reason, question, answer_json, now))
            fid = cur.lastrowid
        return Feedback(int(fid or 0), user, conversation_id, position, rating, reason,
                        question, Answer.model_validate_json(answer_json), now)

    def feedback(self, *, user: str | None = None, conversation_id: str | None = None,
                 rating: Rating | None = None) -> list[Feedback]:
        """Feedback records, oldest first, filtered by user / conversation / rating."""
        where, args = [], []
        for column, value in (("user", user), ("conversation_id", conversation_id),
                              ("rating", rating)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = ("SELECT id, user, conversation_id, position, rating, reason, question, "
               "answer_json, created FROM feedback"
               + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id")
        with self._db() as db:
            rows = db.execute(sql, args).fetchall()
        return [Feedback(r[0], r[1], r[2], r[3], r[4], r[5], r[6],
                         Answer.model_validate_json(r[7]), r[8]) for r in rows]

    def feedback_values(self, user: str, conversation_id: str,
                        answers: list[Answer]) -> list[str | None]:
        """Per answer of the conversation, the chat's feedback state: "Like", "Dislike", the
        reason (capitalised, as offered in the UI) or None."""
        current = {f.position: f for f in self.feedback(user=user,
                                                        conversation_id=conversation_id)}
        out: list[str | None] = []
        for i, a in enumerate(answers):
            f = current.get(i)
            if f is None or f.answer.to_json_dict() != a.to_json_dict():
                out.append(None)
            elif f.rating == "up":
                out.append("Like")
            else:
                out.append(f.reason.capitalize() if f.reason else "Dislike")
        return out
