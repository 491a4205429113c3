"""Answer-quality evaluation: golden questions, deterministic metrics, baselines, reports.

    evals/metrics.py    pure metric functions (retrieval, citations, abstention, keywords)
    evals/baselines.py  the configurations compared: ours, plain llama-index dense, BM25 only
    evals/run.py        run a dataset through every configuration, aggregate, regression gate
    evals/external.py   SciFact / PubMedQA retrieval benchmark on a separate index
    evals/judge.py      opt-in LLM judge (faithfulness, relevancy), cached verdicts
    evals/generate.py   draft new golden questions with the LLM, for human review
    evals/report.py     report.md, results.json and a chart under evals/reports/<timestamp>/
    evals/command.py    registers `assistant eval` on the CLI
"""

from pathlib import Path

EVALS_DIR = Path(__file__).resolve().parent
DATASETS_DIR = EVALS_DIR / "datasets"
# Tune on dev, report and gate on test (never tuned on; see evals/README.md).
DEV_DATASETS = (DATASETS_DIR / "dev.jsonl", DATASETS_DIR / "dev_styles.jsonl",
                DATASETS_DIR / "dev_paraphrase.jsonl")
TEST_DATASET = DATASETS_DIR / "test.jsonl"
DEFAULT_DATASET = TEST_DATASET
DEFAULT_BASELINE = EVALS_DIR / "baseline.json"
REPORTS_DIR = EVALS_DIR / "reports"
