"""Synthetic corpus generator for scale benchmarks (deterministic for a given seed).

Titles and abstracts come from word-bigram models trained on the seed corpus, so vocabulary,
term frequencies and sentence shapes look like real ML abstracts; abstract lengths (in
sentences) are sampled from the seed distribution. Output is JSON Lines with `title` and
`abstract` (and an `id` that is not an arXiv id, so ids come from titles as usual; a serial
number in the title keeps them distinct).

Usage: .venv/bin/python bench/synth.py 10000 out.jsonl [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant.citations import sentences  # noqa: E402
from assistant.corpus import read_corpus  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
START, END = "<s>", "</s>"


class Bigram:
    def __init__(self, texts: list[str]) -> None:
        self.next: dict[str, list[str]] = defaultdict(list)
        for text in texts:
            words = [START, *text.split(), END]
            for a, b in zip(words, words[1:], strict=False):
                self.next[a].append(b)

    def sample(self, rng: random.Random, min_words: int, max_words: int) -> str:
        words: list[str] = []
        word = START
        while len(words) < max_words:
            word = rng.choice(self.next[word])
            if word == END:
                if len(words) >= min_words:
                    break
                word = START
                continue
            words.append(word)
        return " ".join(words)


def generate(n: int, seed: int = 7, seeds_dir: Path = ROOT / "seeds"):
    papers = read_corpus([seeds_dir]).papers
    title_model = Bigram([p.title for p in papers])
    sent_model = Bigram([s for p in papers for s in sentences(p.abstract)])
    lengths = [max(2, len(sentences(p.abstract))) for p in papers]
    rng = random.Random(seed)
    for i in range(n):
        title = f"{title_model.sample(rng, 4, 16)} ({i})"
        body = " ".join(sent_model.sample(rng, 8, 45).rstrip(".") + "."
                        for _ in range(rng.choice(lengths)))
        yield {"id": f"synth-{seed}-{i}", "title": title, "abstract": body}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int)
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w") as fh:
        for record in generate(args.n, args.seed):
            fh.write(json.dumps(record) + "\n")
    print(f"wrote {args.n} papers to {args.out}")


if __name__ == "__main__":
    main()
