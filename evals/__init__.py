"""Answer-quality evaluation: golden questions, deterministic metrics, baselines, reports.

    evals/metrics.py    pure metric functions (retrieval, citations, abstention, keywords)
    evals/baselines.py  the configurations compared: ours, plain llama-index dense, BM25 only
    evals/questions.py  the question sets: load (line-numbered errors), sample, near-misses
    evals/run.py        run a question set through every configuration, score, [judge, external]
    evals/summary.py    figures per configuration and question type; where a baseline leads
    evals/gate.py       the regression gate against evals/baseline.json
    evals/provenance.py what a run records about itself (commit, settings without secrets)
    evals/external.py   SciFact / PubMedQA retrieval benchmark on a separate index
    evals/judge.py      opt-in LLM judge (faithfulness, relevancy), cached verdicts
    evals/generate.py   draft new golden questions with the LLM, for human review
    evals/report.py     report.md, results.json and a chart under evals/reports/<timestamp>/
    evals/command.py    the `assistant eval` command (registered by assistant/cli.py)
"""

import os
from importlib import resources
from pathlib import Path

# Package data (in the wheel too): the question sets and the baseline, found through
# importlib.resources, never relative to a checkout.
EVALS_DIR = Path(str(resources.files(__name__)))
DATASETS_DIR = EVALS_DIR / "datasets"
# Tune on dev, report and gate on test (never tuned on; see evals/README.md).
DEV_DATASETS = (DATASETS_DIR / "dev.jsonl", DATASETS_DIR / "dev_styles.jsonl",
                DATASETS_DIR / "dev_paraphrase.jsonl", DATASETS_DIR / "dev_more.jsonl",
                DATASETS_DIR / "dev_themes2.jsonl", DATASETS_DIR / "dev_themes3.jsonl",
                DATASETS_DIR / "dev_themes4.jsonl", DATASETS_DIR / "dev_themes5.jsonl",
                DATASETS_DIR / "dev_offcorpus2.jsonl", DATASETS_DIR / "dev_lookup2.jsonl",
                DATASETS_DIR / "dev_offcorpus3.jsonl", DATASETS_DIR / "dev_others.jsonl")
TEST_DATASET = DATASETS_DIR / "test.jsonl"
DEFAULT_DATASET = TEST_DATASET
DEFAULT_BASELINE = EVALS_DIR / "baseline.json"
# Reports are written under the working directory (the checkout's evals/reports/ when run
# from its root, as make and CI do), never into the installed package.
REPORTS_DIR = Path("evals") / "reports"

# The external SciFact / PubMedQA files are not package data: pass --external-dir or set
# this variable (the Makefile points it at ../shared/external in this workspace).
EXTERNAL_DIR_ENV = "ASSISTANT_EXTERNAL_DIR"


def external_dir(explicit: Path | None = None) -> Path:
    """Where the external benchmark files are: `explicit`, else $ASSISTANT_EXTERNAL_DIR.

    Raises ValueError saying what to set when neither is given."""
    if explicit is not None:
        return Path(explicit)
    configured = os.environ.get(EXTERNAL_DIR_ENV)
    if configured:
        return Path(configured)
    raise ValueError(f"--external needs the SciFact / PubMedQA files: pass --external-dir DIR "
                     f"or set {EXTERNAL_DIR_ENV} (the folder holding scifact_test.jsonl and "
                     "pubmed_test.jsonl).")
