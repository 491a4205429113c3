"""The catalog: papers and chunks in SQLite, the source of truth for what is indexed.

Chroma holds vectors, BM25 holds term statistics; both are rebuilt or reconciled from here.
A batch of papers is acknowledged when its catalog transaction commits, so a killed ingest
loses at most the batch in flight and never leaves half a paper behind.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

from assistant.types import Chunk, Paper

_SCHEMA = """
CREATE TABLE IF NOT EXISTS papers (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, abstract TEXT NOT NULL,
    sources TEXT NOT NULL, metadata TEXT NOT NULL, hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id TEXT PRIMARY KEY, paper_id TEXT NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
    position INTEGER NOT NULL, text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_paper ON chunks(paper_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('version', '0');
"""


# Ids per `IN (...)` query: SQLite's bound-parameter limit is 999 on older builds.
IN_BATCH = 500


class Catalog:
    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = path
        if readonly:
            uri = f"file:{path}?mode=ro"
            self.db = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, check_same_thread=False, timeout=30)
            # WAL: readers (search, UI) keep working while an ingest writes.
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(_SCHEMA)
        self.db.execute("PRAGMA foreign_keys=ON")

    def close(self) -> None:
        self.db.close()

    def _rows_in(self, sql: str, ids: Iterable[str]) -> Iterator[tuple]:
        """Rows of `sql` (with one `IN ({marks})`) for `ids`, IN_BATCH ids per query."""
        ids = list(ids)
        for i in range(0, len(ids), IN_BATCH):
            part = ids[i : i + IN_BATCH]
            yield from self.db.execute(sql.format(marks=",".join("?" * len(part))), part)

    # --- reads ---------------------------------------------------------------------------

    @property
    def version(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key='version'").fetchone()
        return int(row[0]) if row else 0

    def hashes(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT id, hash FROM papers"))

    def count(self) -> tuple[int, int]:
        papers = self.db.execute("SELECT COUNT(*) FROM papers").fetchone()[0]
        chunks = self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return papers, chunks

    def papers(self, ids: Iterable[str]) -> dict[str, Paper]:
        rows = self._rows_in("SELECT id, title, abstract, sources, metadata FROM papers "
                             "WHERE id IN ({marks})", dict.fromkeys(ids))
        return {pid: Paper(id=pid, title=title, abstract=abstract, sources=json.loads(sources),
                           metadata=json.loads(metadata))
                for pid, title, abstract, sources, metadata in rows}

    def all_papers(self) -> Iterator[Paper]:
        for pid, title, abstract, sources, metadata in self.db.execute(
            "SELECT id, title, abstract, sources, metadata FROM papers ORDER BY rowid"
        ):
            yield Paper(id=pid, title=title, abstract=abstract,
                        sources=json.loads(sources), metadata=json.loads(metadata))

    def titles(self) -> dict[str, str]:
        """paper id -> title, for every paper (known-item search reads only these)."""
        return dict(self.db.execute("SELECT id, title FROM papers ORDER BY rowid"))

    def chunk_rows(self) -> list[tuple[str, str, str, str]]:
        """(chunk id, paper id, title, text) for every chunk, in a stable order."""
        return self.db.execute(
            "SELECT c.id, c.paper_id, p.title, c.text FROM chunks c JOIN papers p "
            "ON p.id = c.paper_id ORDER BY c.rowid"
        ).fetchall()

    def chunk_ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT id FROM chunks")}

    def chunk_ids_of(self, paper_ids: Iterable[str]) -> list[str]:
        return [r[0] for r in self._rows_in(
            "SELECT id FROM chunks WHERE paper_id IN ({marks})", paper_ids)]

    def chunk_texts(self, chunk_ids: Iterable[str]) -> dict[str, str]:
        return dict(self._rows_in("SELECT id, text FROM chunks WHERE id IN ({marks})",
                                  chunk_ids))

    def chunk_papers(self, chunk_ids: Iterable[str]) -> dict[str, str]:
        """chunk id -> paper id, for ids known to the catalog (others are orphans)."""
        return dict(self._rows_in("SELECT id, paper_id FROM chunks WHERE id IN ({marks})",
                                  chunk_ids))

    # --- writes (each call is one transaction) -----------------------------------------

    def _merged_sources(self, papers: list[Paper]) -> dict[str, list[str]]:
        """Files a paper came from accumulate across ingests (A today, B tomorrow: both)."""
        known = {pid: json.loads(src) for pid, src in self._rows_in(
            "SELECT id, sources FROM papers WHERE id IN ({marks})", [p.id for p in papers])}
        return {p.id: list(dict.fromkeys(known.get(p.id, []) + p.sources)) for p in papers}

    def put(self, papers: list[Paper], chunks: list[Chunk]) -> None:
        """Insert or replace papers together with all their chunks, atomically."""
        sources = self._merged_sources(papers)
        with self.db:
            for p in papers:
                self.db.execute("DELETE FROM chunks WHERE paper_id=?", (p.id,))
                self.db.execute(
                    "INSERT OR REPLACE INTO papers VALUES (?,?,?,?,?,?)",
                    (p.id, p.title, p.abstract, json.dumps(sources[p.id]),
                     json.dumps(p.metadata), p.content_hash),
                )
            self.db.executemany(
                "INSERT INTO chunks VALUES (?,?,?,?)",
                [(c.id, c.paper_id, c.position, c.text) for c in chunks],
            )
            self._bump()

    def update_sources(self, papers: list[Paper]) -> None:
        """Unchanged text, but the set of files a paper came from may have grown."""
        for i in range(0, len(papers), IN_BATCH):
            part = papers[i : i + IN_BATCH]
            merged = self._merged_sources(part)
            with self.db:
                self.db.executemany(
                    "UPDATE papers SET sources=? WHERE id=? AND sources<>?",
                    [(json.dumps(merged[p.id]), p.id, json.dumps(merged[p.id])) for p in part],
                )

    def delete(self, paper_ids: list[str]) -> None:
        with self.db:
            for i in range(0, len(paper_ids), IN_BATCH):
                part = paper_ids[i : i + IN_BATCH]
                marks = ",".join("?" * len(part))
                self.db.execute(f"DELETE FROM chunks WHERE paper_id IN ({marks})", part)
                self.db.execute(f"DELETE FROM papers WHERE id IN ({marks})", part)
            self._bump()

    def _bump(self) -> None:
        self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='version'")
