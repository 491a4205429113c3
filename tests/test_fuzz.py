"""Bad input, fuzzed with hypothesis: corpus readers and CLI arguments never crash.

Corpus readers (`assistant.corpus.read_file` / `read_corpus`) get random bytes, huge lines,
JSON nested 100,000 deep, wrong types, control characters, lone-surrogate escapes and
numbers past Python's 4,300-digit limit, mixed with good records. The only exception allowed
is CorpusError naming the file; good records are always kept and every skipped record names
its file and line.

The CLI (`assistant search | ask`, in process with CliRunner) gets random strings for -k,
--fusion, --mode and random --batch file content: the exit code is 0, 1 or 2 and no
traceback is ever printed.

Every property runs FUZZ_EXAMPLES cases (deadline off, no example database written);
`FUZZ_CASES` counts the cases actually run (bench/reliability.py reports it).
"""

from __future__ import annotations

import pytest

# The properties live in tests/support/fuzz.py (bench/reliability.py runs them too); imported
# here, pytest collects them as this module's tests.
from tests.support.fuzz import (  # noqa: F401  (the test_* properties are collected here)
    FUZZ_CASES,
    FUZZ_OUTCOMES,
    small_cli_index,
    test_cli_batch_content,
    test_cli_option_values,
    test_json_array_files,
    test_json_lines_keep_good_records_among_bad,
    test_random_bytes,
    test_random_text,
    test_read_corpus_keeps_good_files_next_to_bad,
)


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory, embedder):
    with small_cli_index(tmp_path_factory.mktemp("fuzz-cli"), embedder) as data_dir:
        yield data_dir


def test_report_fuzz_cases():
    """Runs last in this module: prints how many cases each property ran."""
    print("\nfuzz cases run:", dict(FUZZ_CASES), "total", sum(FUZZ_CASES.values()))
    print("CLI outcomes:", dict(sorted(FUZZ_OUTCOMES.items())))
