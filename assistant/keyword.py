"""BM25 keyword index (bm25s), persisted beside the Chroma data and loaded, not rebuilt.

The saved index carries the catalog version it was built from; a reader that finds a stale
index (an ingest was killed between the catalog commit and the BM25 save) rebuilds it in
memory from the catalog rather than answering from the wrong set of chunks.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

_STOPWORDS = "en"


def _bm25s():
    import bm25s

    # bm25s sets its logger to DEBUG on import; once anything (Gradio) adds a root handler,
    # every index build prints "Building index from IDs objects" in the user's terminal.
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


class KeywordIndex:
    def __init__(self, retriever, chunk_ids: list[str], paper_ids: list[str], version: int):
        self._retriever = retriever
        self.chunk_ids = chunk_ids
        self.paper_ids = paper_ids
        self.version = version
        self._stem = _stemmer()

    @classmethod
    def build(cls, rows: list[tuple[str, str, str, str]], version: int) -> KeywordIndex:
        """rows: (chunk id, paper id, title, text) as given by Catalog.chunk_rows()."""
        bm25s = _bm25s()

        retriever = bm25s.BM25()
        if rows:
            corpus = [f"{title}\n{text}" for _, _, title, text in rows]
            tokens = bm25s.tokenize(corpus, stopwords=_STOPWORDS, stemmer=_stemmer(),
                                    show_progress=False)
            retriever.index(tokens, show_progress=False)
        return cls(retriever, [r[0] for r in rows], [r[1] for r in rows], version)

    def save(self, path: Path) -> None:
        """Write to a sibling folder, then swap it in, so readers never see half a save."""
        tmp = path.with_name(path.name + ".new")
        old = path.with_name(path.name + ".old")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if self.chunk_ids:
            self._retriever.save(str(tmp))
        (tmp / "ids.json").write_text(json.dumps(
            {"version": self.version, "chunk_ids": self.chunk_ids, "paper_ids": self.paper_ids}
        ))
        shutil.rmtree(old, ignore_errors=True)
        if path.exists():
            path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, path: Path) -> KeywordIndex | None:
        meta_file = path / "ids.json"
        if not meta_file.exists():
            old = path.with_name(path.name + ".old")  # killed between the two renames
            if (old / "ids.json").exists():
                path = old
                meta_file = old / "ids.json"
            else:
                return None
        bm25s = _bm25s()

        meta = json.loads(meta_file.read_text())
        retriever = bm25s.BM25.load(str(path)) if meta["chunk_ids"] else bm25s.BM25()
        return cls(retriever, meta["chunk_ids"], meta["paper_ids"], int(meta["version"]))

    def terms(self, text: str) -> list[str]:
        """The stemmed, stopword-free terms BM25 would look up for `text`."""
        bm25s = _bm25s()

        tokens = bm25s.tokenize([text], stopwords=_STOPWORDS, stemmer=self._stem,
                                show_progress=False, return_ids=False)
        return list(tokens[0]) if tokens else []

    def document_frequencies(self) -> dict[str, int]:
        """Stemmed term -> number of chunks containing it (from the index's posting lists)."""
        if not self.chunk_ids:
            return {}
        indptr = np.asarray(self._retriever.scores["indptr"])
        counts = np.diff(indptr)
        return {t: int(counts[i]) for t, i in self._retriever.vocab_dict.items()
                if i < len(counts) and t}

    def unknown_terms(self, text: str) -> list[str]:
        """Query terms that occur nowhere in the corpus."""
        if not self.chunk_ids:
            return []
        vocab = self._retriever.vocab_dict
        return list(dict.fromkeys(t for t in self.terms(text) if t not in vocab))

    def search(self, query: str, n: int, extra_terms: Sequence[str] = ()
               ) -> list[tuple[str, float]]:
        """Top-n (chunk id, BM25 score) with score > 0. `extra_terms`: stemmed terms added to
        the query's own (Retriever.search_around's feedback terms)."""
        if not self.chunk_ids:
            return []
        # Query tokens unseen in the corpus are dropped (bm25s would raise on them).
        vocab = self._retriever.vocab_dict
        known = [[t for t in [*self.terms(query), *extra_terms] if t in vocab]]
        if not known[0]:
            return []
        k = min(n, len(self.chunk_ids))
        docs, scores = self._retriever.retrieve(known, k=k, show_progress=False, n_threads=1)
        out = []
        for idx, score in zip(np.asarray(docs)[0], np.asarray(scores)[0], strict=True):
            if score > 0:
                out.append((self.chunk_ids[int(idx)], float(score)))
        return out
